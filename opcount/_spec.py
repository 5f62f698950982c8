"""The YAML/JSON model-spec frontend (docs/counting.md, "Model specs").

A spec is a mapping with ``input`` (per-sample shape) and ``layers`` (a list of
``{type, name?, inputs?, format?, ...fields}``), and optionally ``name``, ``format`` (default
the scoring profile's ``default_format``; fp32 when read without a profile), ``loss`` (mse | cross_entropy | bce), ``optimizer`` (sgd | momentum | adam | adamw) and
``input_grad`` (false: the first layer computes no input gradient). Every error is one line
naming the file and the layer. Shapes are per sample: ``[C, H, W]``, ``[T, D]``, token ids ``[T]``.

Every layer takes ``type``, and optionally ``name`` (a string or number, not ``input``; default
``TYPE_INDEX``), ``inputs`` (a name or a list; default the previous layer; ``input`` is the model
input), ``format`` (fp16 | bf16 | fp32 | fp64 | tf32 | fp8_e4m3 | fp8_e5m2 | int8 | int4 | int32,
default the model's), ``quant`` (linear, conv, matmul, bmm and attention layers in int8 or int4:
accumulate [int32], requantize [true], core [fp32: an attention layer's core]; see
docs/counting.md, "Quantized models") and ``no_grad`` [false: true
for a layer no gradient flows through, a ``detach``; layers whose only readers are such get none
either], ``recompute`` [false: true for a layer whose forward runs again in the backward stage,
as in a checkpointed region], for linear, conv, conv_transpose and embedding layers,
``frozen`` [false: true for parameters that get no gradient and no update] and, for the
element-wise layers (relu, relu6, leaky_relu, sigmoid, tanh, gelu, silu, hardswish, hardsigmoid,
dropout, stochastic_depth, add, mul, elementwise), ``inplace`` [false: true for a layer that
writes its output over the tensor it reads and allocates none, PyTorch's ``ReLU(inplace=True)``
or ``out += identity``; the counts do not change, the device energy model reads it]; on any
other type it is an error. Fields per type (defaults in brackets):

- ``linear``: out, bias [true], tied_to [none: the name of an earlier linear or embedding layer
  whose weight it shares; that weight's shape must be this layer's ``[out, in]``], tied_bias
  [false: with tied_to, the bias is that linear layer's too, as when one Linear is called twice]
- ``conv1d|conv2d|conv3d``: out [C_in if depthwise], kernel, stride [1], padding [0 | "same"],
  dilation [1], groups [1], depthwise [false], bias [true]; ints or per-dimension lists
- ``conv_transpose1d|2d|3d``: the same plus output_padding [0]
- ``maxpool1d|2d|3d``: kernel, stride [kernel], padding [0], dilation [1], ceil_mode [false];
  ``avgpool1d|2d|3d``: the same without dilation
- ``adaptive_avgpool1d|2d|3d``, ``adaptive_maxpool1d|2d|3d``: out; ``global_avgpool``,
  ``global_maxpool``: no fields, output ``[C]``
- ``batchnorm``, ``groupnorm`` (groups), ``layernorm`` and ``rmsnorm`` (dims [1]: trailing
  dimensions normalized): affine [true], bias [true; rmsnorm false], eps [1e-5]
- ``embedding``: vocab, dim (input: token ids), tied_to [none: an earlier embedding or linear
  layer whose table it shares]; ``positional_embedding``: rows [offset + T] (a learned table
  added to the input, at least offset + T rows), offset [0: the position of the first token, as
  in a decode step], token_types [false: true makes it a token-type table, BERT's segment
  embedding, whose rows are types and may be fewer than T]; ``cls_token``: prepends one learned
  token
- ``attention`` (multi-head attention, ``nn.MultiheadAttention`` and the attention of
  transformer language models; one input ``[T, D]`` for self-attention, or inputs query,
  key/value (two: a cross-attention to a memory) or query, key, value (three), keys
  ``[S, kdim]``): heads, kv_heads [heads: grouped-query attention], head_dim [D / heads], bias
  [true: q, k, v and output projections], out_bias [bias], rope [false], scale [true: false for
  T5's unscaled scores], causal [false], mask [none | causal | additive], masks [1 with an
  additive mask; 2: an attention and a key-padding mask merged], weights [none | mean:
  need_weights, averaged over heads | heads], dropout [0: on the attention probabilities,
  training only], window [none: a sliding window of keys, each query seeing itself and the
  window-1 before it; needs causal], past [0: cached tokens before the T new ones, read from
  the KV cache; self-attention only], kv_cache [false: the layer stores its keys and values,
  priced in the data-movement model], memory_cached [false: a cross-attention reusing cached
  keys and values of its memory], position_bias [none | own | shared: T5's relative-position
  bias table, owned (buckets x heads parameters) or an earlier layer's], buckets [32].
  A causal mask counts only the score entries it keeps (see ``sdpa_cost``);
  ``sdpa`` (inputs q, k, v of ``[heads, T, head_dim]``; q may have a multiple of k's and v's
  heads, grouped-query attention as ``enable_gqa``): causal (PyTorch's ``is_causal``
  triangle), mask, scale [true]
- ``moe`` (a mixture-of-experts MLP on ``[T, D]``, Mixtral's): experts, top_k, ffn, act [silu |
  gelu | relu], gated [true], bias [false], normalize [true: the top-k weights renormalized]
- ``lstm``, ``gru``, ``rnn`` (input ``[T, features]``, output ``[T, directions x H_out]``): hidden,
  layers [1], bidirectional [false], bias [true], dropout [0: between layers, training only],
  proj [0] (lstm: proj_size, H_out), nonlinearity [tanh | relu] (rnn); optional inputs 2 and 3
  are the initial states h0 ``[layers x directions, H_out]`` and c0 (lstm) ``[layers x
  directions, hidden]``; training: output_grad [true], h_n_grad, c_n_grad [false] (which of
  the output and the final states the loss reads)
- ``matmul``/``bmm`` (two inputs), ``add`` and ``mul`` (two or more inputs of one shape),
  ``concat`` (axis [0])
- ``relu``, ``relu6``, ``leaky_relu`` (slope [0.01]), ``sigmoid``, ``tanh``, ``gelu``
  (approximate [none | tanh]), ``silu``, ``hardswish``, ``hardsigmoid``, ``softmax`` and
  ``log_softmax`` (axis [-1])
- ``dropout`` (p [0.5]), ``stochastic_depth`` (p [0.5], mode [row | batch]; training only),
  ``flatten`` (start [0]), ``reshape`` (shape, one -1 allowed), ``transpose`` (perm), ``select``
  (index [0] along the first dimension), ``identity``
- ``parameter``: shape (a bare learned tensor, read by the layers naming it; once per batch)
- ``elementwise``: ops (per output element, basic ops or recipe names), backward, out_shape
  [broadcast of the inputs], op (a label), params [0], once [false: computed once per batch],
  once_inputs [which inputs are batch-free]; ``reduce``: kind [sum | mean | max | min],
  out_shape, once [false], once_inputs [[once]: a per-sample input to a once output reduces over
  the whole batch]; ``cumsum``: axis [-1], once [false]; ``shape_op``: out_shape, op, params [0],
  reads [all: elements per sample of its input it reads, a slice], grad [none | broadcast: an expand, its gradient summed
  back | gather: a table lookup, each gathered gradient added in], once, once_inputs (free data
  movement forward)

A type not listed is accepted only with ``out_shape`` (and optionally ``params``): it is kept as
an uncounted layer and the count reports the model as incomplete.
"""
from __future__ import annotations

import difflib
import json
import os
from typing import Any, Mapping

import yaml

from hardware_profiles import UniqueKeyLoader
from hardware_profiles import files as _read

from ._ir import ModelError, ModelIR, build_model

__all__ = ["load_spec", "spec_to_model"]

_TOP_KEYS = {"name", "input", "format", "loss", "optimizer", "input_grad", "layers"}


def _one_line(text):
    return " ".join(str(text).split())


def spec_to_model(spec: Mapping[str, Any], source: str = "<spec>", default_name: str = "model",
                  lines: Mapping[tuple, int] | None = None) -> ModelIR:
    """Build a ModelIR from an already parsed spec mapping. ``lines`` (key path -> line, from
    the YAML reader) lets field errors name their line."""
    if not isinstance(spec, dict):
        raise ModelError(f"{source}: a model spec must be a mapping, not {type(spec).__name__}")
    extra = sorted(set(spec) - _TOP_KEYS, key=str)
    if extra:
        close = difflib.get_close_matches(str(extra[0]), sorted(_TOP_KEYS - set(spec)), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ModelError(f"{source}: unknown field {extra[0]!r} ({hint}expected {', '.join(sorted(_TOP_KEYS))})")
    for key in ("input", "layers"):
        if key not in spec:
            raise ModelError(f"{source}: missing field {key!r}")
    if not isinstance(spec["layers"], list) or not spec["layers"]:
        raise ModelError(f"{source}: 'layers' must be a non-empty list")
    input_grad = spec.get("input_grad", False)
    if not isinstance(input_grad, bool):
        raise ModelError(f"{source}: 'input_grad' must be true or false, not {input_grad!r}")
    return build_model(name=spec.get("name", default_name), input_shape=spec["input"], layers=spec["layers"],
                       format=spec.get("format"), loss=spec.get("loss", "mse"),
                       optimizer=spec.get("optimizer", "sgd"), input_grad=input_grad, source=source,
                       lines=lines)


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs):
    """``json.loads`` object hook: a key given twice in one object is an error (json keeps the
    last one silently)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def load_spec(path: str | os.PathLike[str], *, seq: int | None = None, **step: Any) -> ModelIR:
    """Read a ``.yaml``/``.yml``/``.json`` model spec into a ModelIR. A JSON file with a
    ``model_type`` and no ``layers`` is a Hugging Face config (see ``load_hf_config``); ``seq``
    sets its sequence length and ``step`` (past, kv_cache, logits) builds a serving step of it;
    both are refused for plain specs."""
    path = os.fspath(path)
    lines = None
    try:
        text = _read.read_text(path, what="model file")
        if path.lower().endswith(".json"):
            try:
                spec = _read.load_json(text, path, object_pairs_hook=_unique_keys)
            except json.JSONDecodeError as exc:
                raise ModelError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
            except _DuplicateKey as exc:
                raise ModelError(f"{path}: invalid JSON: duplicate key {exc.args[0]!r}") from None
        else:
            try:
                spec, node = _read.load_yaml(text, path, UniqueKeyLoader)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f"line {mark.line + 1}: " if mark is not None else ""
                problem = getattr(exc, "problem", None) or exc
                if isinstance(exc, yaml.composer.ComposerError) and problem == "but found another document":
                    raise ModelError(f"{path}: {where}a model file holds one YAML document") from None
                raise ModelError(f"{path}: {where}invalid YAML: {_one_line(problem)}") from None
            if node is not None:
                lines = _read.node_lines(node)
    except _read.InputFileError as exc:
        raise ModelError(str(exc)) from None
    from ._hf import config_to_spec, is_hf_config
    stem = os.path.splitext(os.path.basename(path))[0]
    if is_hf_config(spec):
        if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1):
            raise ModelError(f"{path}: sequence length must be a positive integer, not {seq!r}")
        return spec_to_model(config_to_spec(spec, path, seq=seq, **step), source=path, default_name=stem)
    if seq is not None:
        raise ModelError(f"{path}: has no sequence length to set (a model spec fixes its input shape)")
    if any(value != {"past": 0, "kv_cache": False, "logits": "all"}.get(key) for key, value in step.items()):
        raise ModelError(f"{path}: a model spec fixes its layers, so it has no serving step (prefill, decode) to "
                         "build; write the step's attention fields (past, kv_cache) in the spec")
    return spec_to_model(spec, source=path, default_name=stem, lines=lines)
