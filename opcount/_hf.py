"""The Hugging Face ``config.json`` frontend: GPT-2, LLaMA/Mistral-family and BERT configs.

The config's ``model_type`` picks the architecture (``gpt2``; ``llama``, ``mistral``, ``qwen2``
share the LLaMA layout; ``bert``) and its fields give the sizes, with the transformers defaults
where a field is absent. The sequence length is a parameter (default: the config's maximum
positions). Mistral's sliding-window attention is counted as full causal attention over the
sequence, which is exact while the sequence is no longer than the window.
"""
import json
import os

from hardware_profiles import _read

from ._ir import ModelError
from ._spec import spec_to_model

__all__ = ["load_hf_config", "is_hf_config"]

_LLAMA_TYPES = ("llama", "mistral", "qwen2")


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


def config_to_spec(config, where, seq=None, name=None):
    """A model spec for a parsed config mapping."""
    from ._zoo import bert_spec, gpt2_spec, llama_spec
    model_type = config.get("model_type")
    label = name or config.get("_name_or_path") or model_type
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
                         act=act, approximate=approximate, tied=_flag(config, where, "tie_word_embeddings", True))
    if model_type in _LLAMA_TYPES:
        heads = _field(config, where, "num_attention_heads")
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
                          mlp_bias=_flag(config, where, "mlp_bias", False))
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
                         approximate=approximate)
    raise ModelError(f"{where}: unsupported model_type {model_type!r} (known: gpt2, {', '.join(_LLAMA_TYPES)}, bert)")


def load_hf_config(source, *, seq=None):
    """A ModelIR from a Hugging Face ``config.json`` path (or a parsed mapping)."""
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
    spec = config_to_spec(config, where, seq=seq)
    return spec_to_model(spec, source=where)
