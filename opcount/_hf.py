"""The Hugging Face ``config.json`` frontend: GPT-2, LLaMA/Mistral-family and BERT configs.

The config's ``model_type`` picks the architecture (``gpt2``; ``llama``, ``mistral``, ``mixtral``,
``qwen2`` share the LLaMA layout; ``bert``) and its fields give the sizes, with the transformers
defaults where a field is absent. The sequence length is a parameter (default: the config's
maximum positions). Read as well: ``num_key_value_heads`` (grouped-query attention),
``head_dim``, Mistral's and Mixtral's ``sliding_window`` (each query sees itself and the
window-1 keys before it, as the eager and SDPA masks of transformers do), Mixtral's
``num_local_experts`` and ``num_experts_per_tok`` (a mixture-of-experts MLP), and
``torch_dtype`` (or ``dtype``), which sets the number format (the profile's
``default_format`` when absent).
Qwen2's q/k/v projections carry biases and its output projection none. ``t5`` configs (T5 v1.0
with ``feed_forward_proj: relu`` and tied embeddings; v1.1 and Flan-T5 with ``gated-gelu`` and an
LM head of their own) build the encoder-decoder of ``t5_spec``, ``seq`` tokens in the encoder and
the decoder (default 512: T5 has relative positions, no maximum).
"""
from __future__ import annotations

import json
import os
from typing import Any

from hardware_profiles import files as _read

from ._ir import ModelError, ModelIR
from ._spec import spec_to_model

__all__ = ["load_hf_config", "is_hf_config"]

_LLAMA_TYPES = ("llama", "mistral", "mixtral", "qwen2")
_DTYPES = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
           "float64": "fp64", "double": "fp64"}


def _format(config, where):
    """The number format of the config's ``torch_dtype`` (``dtype`` in newer configs); ``None``
    when it names none (then the profile's ``default_format`` applies, fp32 without one)."""
    for key in ("torch_dtype", "dtype"):
        value = config.get(key)
        if value is None:
            continue
        name = value[6:] if isinstance(value, str) and value.startswith("torch.") else value
        if not isinstance(name, str) or name not in _DTYPES:
            raise ModelError(f"{where}: {key!r} {value!r} is not a format tosim counts (known: "
                             f"{', '.join(sorted(_DTYPES))})")
        return _DTYPES[name]
    return None


def is_hf_config(data):
    return isinstance(data, dict) and "model_type" in data and "layers" not in data


#: Largest size a config may give (vocabulary, widths, positions), and the most layers: far past
#: any real model, and small enough that building and counting it stays bounded.
MAX_SIZE = 2 ** 31
MAX_LAYERS = 10_000
_LAYER_FIELDS = ("n_layer", "num_hidden_layers")


def _field(config, where, *names, default=None, kind=int):
    for name in names:
        if name in config and config[name] is not None:
            value = config[name]
            if kind is int and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ModelError(f"{where}: {name!r} must be a positive integer, not {value!r}")
            limit = MAX_LAYERS if name in _LAYER_FIELDS else MAX_SIZE
            if kind is int and value > limit:
                raise ModelError(f"{where}: {name!r} must be at most {limit:,}, not {value}")
            if kind is float and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise ModelError(f"{where}: {name!r} must be a number, not {value!r}")
            return value
    if default is None:
        raise ModelError(f"{where}: missing field {names[0]!r}")
    return default


def _flag(config, where, name, default):
    """A true/false field, strictly: ``"false"`` (a string) is an error, not a true value."""
    value = config.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ModelError(f"{where}: {name!r} must be true or false, not {value!r}")
    return value


def _optional_int(config, where, name):
    """A positive integer field whose absence (or null) means "the architecture's default";
    0 or a wrong type is an error, never the default."""
    if config.get(name) is None:
        return None
    return _field(config, where, name)


def _check_seq(config, where, seq, limit, *names):
    """A sequence longer than the model's maximum positions is an error naming the config field
    that sets them (the first of ``names`` present, or the first with its default)."""
    if seq is not None and seq > limit:
        field = next((name for name in names if config.get(name) is not None), None)
        told = f"{field!r} is {limit}" if field is not None else f"{names[0]!r} is {limit} (the default)"
        raise ModelError(f"{where}: sequence length {seq} is longer than the model's maximum positions: {told}")


def _activation(where, name, field="activation"):
    if not isinstance(name, str):
        raise ModelError(f"{where}: {field!r} must be a string, not {name!r}")
    table = {"gelu": ("gelu", "none"), "gelu_new": ("gelu", "tanh"), "gelu_pytorch_tanh": ("gelu", "tanh"),
             "gelu_fast": ("gelu", "tanh"), "relu": ("relu", "none"), "silu": ("silu", "none"),
             "swish": ("silu", "none"), "tanh": ("tanh", "none"), "sigmoid": ("sigmoid", "none")}
    if name not in table:
        raise ModelError(f"{where}: unsupported activation {name!r} (known: {', '.join(sorted(table))})")
    return table[name]


def config_to_spec(config, where, seq=None, name=None, **step):
    """A model spec for a parsed config mapping, in the format of its ``torch_dtype``. ``step``
    (``past``, ``kv_cache``, ``logits``) builds a serving step of a causal language model (see
    ``opcount.load_zoo``)."""
    from ._zoo import bert_spec, gpt2_spec, llama_spec, t5_spec
    model_type = config.get("model_type")
    label = name or config.get("_name_or_path") or model_type
    step = {key: value for key, value in step.items()
            if value != {"past": 0, "kv_cache": False, "logits": "all"}.get(key)}
    if step and model_type not in ("gpt2", *_LLAMA_TYPES):
        raise ModelError(f"{where}: model_type {model_type!r} is not a causal language model, so it has no "
                         "serving step (prefill, decode) to build")
    fmt = _format(config, where)
    if step.get("past"):
        limit = (_field(config, where, "n_positions", "n_ctx", default=1024) if model_type == "gpt2"
                 else _field(config, where, "max_position_embeddings",
                             default=512 if model_type == "bert" else 2048))
        _check_seq(config, where, step["past"] + (seq or 1), limit,
                   "n_positions", "n_ctx", "max_position_embeddings")
    if model_type == "gpt2":
        context = _field(config, where, "n_positions", "n_ctx", default=1024)
        _check_seq(config, where, seq, context, "n_positions", "n_ctx")
        act, approximate = _activation(where, config.get("activation_function") or "gelu_new", "activation_function")
        return gpt2_spec(label, d=_field(config, where, "n_embd", default=768),
                         depth=_field(config, where, "n_layer", default=12),
                         heads=_field(config, where, "n_head", default=12),
                         vocab=_field(config, where, "vocab_size", default=50257), context=context,
                         seq=seq or context, ffn=_optional_int(config, where, "n_inner"),
                         eps=_field(config, where, "layer_norm_epsilon", default=1e-5, kind=float),
                         act=act, approximate=approximate, tied=_flag(config, where, "tie_word_embeddings", True),
                         format=fmt, **step)
    if model_type in _LLAMA_TYPES:
        heads = _field(config, where, "num_attention_heads")
        window = None
        if model_type in ("mistral", "mixtral"):
            window = config.get("sliding_window")
            if window is not None:
                window = _field(config, where, "sliding_window")
        elif model_type == "qwen2" and _flag(config, where, "use_sliding_window", False):
            raise ModelError(f"{where}: 'use_sliding_window' true (Qwen2's window in some layers only) is not "
                             "supported; set it false to count full causal attention")
        experts = top_k = None
        if model_type == "mixtral":
            experts = _field(config, where, "num_local_experts", default=8)
            top_k = _field(config, where, "num_experts_per_tok", default=2)
            if top_k > experts:
                raise ModelError(f"{where}: 'num_experts_per_tok' {top_k} is more than 'num_local_experts' "
                                 f"{experts}")
        head_dim = config.get("head_dim")
        if head_dim is not None:
            head_dim = _field(config, where, "head_dim")
        act, _ = _activation(where, config.get("hidden_act") or "silu", "hidden_act")
        max_positions = _field(config, where, "max_position_embeddings", default=2048)
        _check_seq(config, where, seq, max_positions, "max_position_embeddings")
        return llama_spec(label, d=_field(config, where, "hidden_size"),
                          depth=_field(config, where, "num_hidden_layers"), heads=heads,
                          kv_heads=_field(config, where, "num_key_value_heads", default=heads),
                          ffn=_field(config, where, "intermediate_size"),
                          vocab=_field(config, where, "vocab_size", default=32000),
                          seq=seq or max_positions,
                          eps=_field(config, where, "rms_norm_eps", default=1e-6, kind=float),
                          tied=_flag(config, where, "tie_word_embeddings", False), act=act,
                          attention_bias=_flag(config, where, "attention_bias", model_type == "qwen2"),
                          out_bias=False if model_type == "qwen2" else None,
                          mlp_bias=_flag(config, where, "mlp_bias", False), head_dim=head_dim, window=window,
                          experts=experts, top_k=top_k, format=fmt, **step)
    if model_type == "bert":
        max_positions = _field(config, where, "max_position_embeddings", default=512)
        _check_seq(config, where, seq, max_positions, "max_position_embeddings")
        act, approximate = _activation(where, config.get("hidden_act") or "gelu", "hidden_act")
        return bert_spec(label, d=_field(config, where, "hidden_size", default=768),
                         depth=_field(config, where, "num_hidden_layers", default=12),
                         heads=_field(config, where, "num_attention_heads", default=12),
                         ffn=_field(config, where, "intermediate_size", default=3072),
                         vocab=_field(config, where, "vocab_size", default=30522), max_positions=max_positions,
                         type_vocab=_field(config, where, "type_vocab_size", default=2), seq=seq or max_positions,
                         eps=_field(config, where, "layer_norm_eps", default=1e-12, kind=float), act=act,
                         approximate=approximate, format=fmt)
    if model_type == "t5":
        # an encoder-decoder: relative positions, no maximum length; seq encoder and decoder tokens
        projection = config.get("feed_forward_proj", "relu")
        gated = isinstance(projection, str) and projection.startswith("gated-")
        act, approximate = _activation(where, projection[6:] if gated else projection)
        if gated and act == "gelu":
            approximate = "tanh"        # transformers maps "gated-gelu" to gelu_new
        depth = _field(config, where, "num_layers", default=6)
        rate = _field(config, where, "dropout_rate", default=0.1, kind=float)
        return t5_spec(label, d=_field(config, where, "d_model", default=512), depth=depth,
                       decoder_depth=_field(config, where, "num_decoder_layers", default=depth),
                       heads=_field(config, where, "num_heads", default=8), d_kv=_field(config, where, "d_kv", default=64),
                       ffn=_field(config, where, "d_ff", default=2048), vocab=_field(config, where, "vocab_size",
                                                                                     default=32128),
                       seq=seq or 512, eps=_field(config, where, "layer_norm_epsilon", default=1e-6, kind=float),
                       buckets=_field(config, where, "relative_attention_num_buckets", default=32), format=fmt,
                       act=act, approximate=approximate, gated=gated,
                       tied=bool(config.get("tie_word_embeddings", True)), dropout=rate)
    raise ModelError(f"{where}: unsupported model_type {model_type!r} (known: gpt2, {', '.join(_LLAMA_TYPES)}, bert, "
                     "t5)")


def load_hf_config(source: str | os.PathLike[str] | dict[str, Any], *, seq: int | None = None,
                   **step: Any) -> ModelIR:
    """A ModelIR from a Hugging Face ``config.json`` path (or a parsed mapping); ``step`` as in
    :func:`config_to_spec`."""
    if isinstance(source, dict):
        config, where = source, "<config>"
    else:
        where = os.fspath(source)
        try:
            config = _read.load_json(_read.read_text(where, what="config file"), where)
        except _read.InputFileError as exc:
            raise ModelError(str(exc)) from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"{where}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
    if not is_hf_config(config):
        raise ModelError(f"{where}: not a Hugging Face config (no 'model_type')")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1):
        raise ModelError(f"{where}: sequence length must be a positive integer, not {seq!r}")
    spec = config_to_spec(config, where, seq=seq, **step)
    return spec_to_model(spec, source=where)
