"""opcount: per-layer basic-operation counts (add, sub, mul, div, sqrt, cmp) for the forward,
loss, backward and update stages of a model.

Frontends turn a model description into a :class:`ModelIR` (layers with inferred per-sample
shapes, formats, parameters and ``inputs`` references for branches); :func:`count_model` applies
the per-layer formulas, pricing non-linear functions with a profile's recipes, and returns a
:class:`CountResult` with exact integer counts.

    >>> from hardware_profiles import load
    >>> result = count_model(load_model("zoo:lenet5"), load("li2022"), phase="training", batch=64)
    >>> result.as_array().shape[1:]
    (4, 6)

opcount never imports hwlib; costs enter later as a plain array.
"""
from __future__ import annotations

import os
from typing import Any

from hardware_profiles.schema import MAC_LAYER_TYPES

from ._engine import BASIC_OPS, PHASES, STAGES, CountResult, LayerCount, count_model
from ._formulas import FORMULAS, ZERO_COST
from ._ir import (FORMATS, LOSSES, OPTIMIZERS, IncompleteModelWarning, Layer, ModelError, ModelIR, build_model,
                  reformatted, with_default_format)
from ._spec import load_spec, spec_to_model
from ._zoo import CAUSAL_LMS, zoo_names, load_zoo

# Imported on first use: the ONNX and PyTorch frontends, Hugging Face configs, the data-movement
# model and MAC counts (numpy) are modules that counting a spec or a zoo model never needs.
_LAZY = {"load_onnx": "._onnx", "load_torch": "._torch", "load_hf_config": "._hf",
         "Densities": ".movement", "MemoryHierarchy": ".movement", "MovementResult": ".movement",
         "count_movement": ".movement", "mac_counts": "._macs", "with_macs": "._macs",
         "mac_add_rows": "._macs"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'opcount' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__all__ = ["ModelError", "IncompleteModelWarning", "ModelIR", "Layer", "build_model", "load_model", "load_spec",
           "spec_to_model", "load_onnx", "load_torch", "load_hf_config", "with_format",
           "with_default_format",
           "count_model", "CountResult", "LayerCount", "zoo_names", "load_zoo", "layer_types",
           "BASIC_OPS", "STAGES", "PHASES", "FORMATS", "LOSSES", "OPTIMIZERS", "ZERO_COST",
           "count_movement", "MemoryHierarchy", "Densities", "MovementResult", "CAUSAL_LMS",
           "mac_counts", "mac_add_rows", "with_macs", "MAC_LAYER_TYPES", "with_quantized_products"]


def layer_types() -> list[str]:
    """The layer types the spec frontend and the formulas know, sorted."""
    return sorted(FORMULAS)


_STEP_DEFAULTS = {"past": 0, "kv_cache": False, "logits": "all"}


def with_format(model: ModelIR, fmt: str) -> ModelIR:
    """``model`` with every layer (and the model default) in number format ``fmt`` (an explicit
    choice: a profile's ``default_format`` no longer replaces it)."""
    import dataclasses
    if fmt not in FORMATS:
        raise ModelError(f"{model.source}: format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    layers = [layer if layer.format == fmt and layer.format_given
              else reformatted(layer, fmt, True) for layer in model.layers]
    return dataclasses.replace(model, layers=layers, format=fmt, format_given=True)


def with_quantized_products(model: ModelIR, fmt: str = "int8", accumulate: str = "int32",
                            requantize: bool = True) -> ModelIR:
    """``model`` with its matrix products (``MAC_LAYER_TYPES``: linear, convolutions, matmul, bmm;
    and the projections of ``attention`` layers, whose core keeps the layer's format) in integer
    format ``fmt`` (int8 or int4), accumulating in ``accumulate`` and requantized (their
    ``quant`` field), the other layers (normalization, activations, softmax, residual adds)
    unchanged, as int8 deployments usually keep them in floating point. :func:`count_model`
    counts the conversions between the two (quantizing a product's float input, dequantizing
    its output for a float layer) in rows of their own, ``NAME/quantize_input`` and
    ``NAME/dequantize_output``, following the data flow; a model quantized by its exporter (ONNX
    QDQ or QLinear* nodes) writes its own, and its integer layers get none."""
    import dataclasses

    from hardware_profiles.schema import INT_FORMAT_BITS

    from ._ir import QUANT_FORMATS, QUANT_TYPES, _quant_field
    if fmt not in QUANT_FORMATS:
        raise ModelError(f"{model.source}: quantized products take one of {', '.join(QUANT_FORMATS)}, not {fmt!r}")
    layers = []
    for layer in model.layers:
        # a layer already in an integer format (a quantized ONNX graph's) keeps its own
        if layer.type in QUANT_TYPES and layer.known and layer.format not in INT_FORMAT_BITS:
            quant = {"accumulate": accumulate, "requantize": requantize}
            if layer.type == "attention":
                # the core stays in the layer's floating-point format
                quant["core"] = layer.format
            quant = _quant_field(quant, fmt, layer.type,
                                 lambda key, layer=layer: f"{model.source}: layer {layer.name!r} ({layer.type})")
            # the format and the quant field enter no layer formula: the signature (the engine's
            # memo key of the layer's cost) stays, as reformatted() keeps it
            new = reformatted(layer, fmt, True)
            object.__setattr__(new, "attrs", dict(layer.attrs, quant=quant))
            layer = new
        layers.append(layer)
    return dataclasses.replace(model, layers=layers)


def load_model(source: str | os.PathLike[str] | dict[str, Any] | ModelIR, *, seq: int | None = None,
               format: str | None = None, past: int = 0, kv_cache: bool = False, logits: str = "all",
               batch_axis: int | dict[str, int] | None = None, dims: dict[str, int] | None = None,
               quantize: str | None = None) -> ModelIR:
    """A ModelIR from ``zoo:NAME``, a ``.yaml``/``.yml``/``.json`` model spec path, a Hugging Face
    ``config.json``, an ``.onnx`` file, a spec mapping, or a ModelIR (returned as is).

    ``seq`` sets the sequence length of zoo transformers and Hugging Face configs. ``format``
    counts every layer in that number format (otherwise the model's own: a spec's ``format``, a
    Hugging Face config's ``torch_dtype``; a model that names none is read in fp32 and marked
    ``format_given=False``, and :func:`count_model` then counts it in the profile's
    ``default_format``). For causal language models (zoo
    GPT/LLaMA/Mistral/Mixtral, Hugging Face gpt2/llama/mistral/mixtral/qwen2 configs) ``past``,
    ``kv_cache`` and ``logits`` build one serving step: ``seq`` new tokens after ``past`` cached
    ones, storing their keys and values when ``kv_cache``, the LM head over ``"all"`` positions
    or the ``"last"`` one. ``batch_axis``: the batch axis of an ONNX file's first input;
    ``dims``: sizes of its other symbolic dimensions (see :func:`load_onnx`; both an error for
    other sources). ``quantize`` (int8, int4): then its matrix products and attention projections
    in that integer format (:func:`with_quantized_products`). Raises :class:`ModelError` on bad
    input (one line naming the file and the layer).
    """
    model = _load(source, seq, {"past": past, "kv_cache": kv_cache, "logits": logits}, batch_axis, dims)
    model = model if format is None else with_format(model, format)
    return model if quantize is None else with_quantized_products(model, quantize)


def _load(source, seq, step, batch_axis=None, dims=None):
    if batch_axis is not None or dims:
        path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
        if path is None or os.path.splitext(path)[1].lower() != ".onnx":
            raise ModelError(f"{path if path is not None else type(source).__name__}: a batch axis or symbolic "
                             "dimensions can be given for ONNX files only")
    if not isinstance(step["past"], int) or isinstance(step["past"], bool) or step["past"] < 0:
        raise ModelError(f"past (cached tokens) must be a non-negative integer, not {step['past']!r}")
    if step["logits"] not in ("all", "last"):
        raise ModelError(f"logits must be 'all' or 'last', not {step['logits']!r}")
    stepped = step != _STEP_DEFAULTS
    if isinstance(source, ModelIR) and seq is None and not stepped:
        return source
    if isinstance(source, dict) and seq is None and not stepped:
        return spec_to_model(source)
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise ModelError(f"cannot load a model from {type(source).__name__}"
                         + (" with a sequence length" if seq is not None else "")
                         + (" as a serving step" if stepped else ""))
    if source.startswith("zoo:"):
        return load_zoo(source[4:], seq=seq, **step)
    extension = os.path.splitext(source)[1].lower()
    if extension in (".yaml", ".yml", ".json"):
        return load_spec(source, seq=seq, **step)
    if seq is not None:
        raise ModelError(f"{source}: has no sequence length to set")
    if stepped:
        raise ModelError(f"{source}: not a causal language model (a zoo name or a Hugging Face config), so it has "
                         "no serving step (prefill, decode) to build")
    if extension == ".onnx":
        import importlib.util
        if importlib.util.find_spec("onnx") is None:
            raise ModelError(f"{source}: reading an ONNX model needs the onnx package, which is not installed "
                             "(pip install 'tosim[onnx]')")
        from ._onnx import load_onnx
        return load_onnx(source, batch_axis=batch_axis, dims=dims or None)
    if not os.path.exists(source):
        raise ModelError(f"{source}: no such file (and not a zoo:NAME)")
    raise ModelError(f"{source}: unsupported model file type {extension or '(none)'!r}; "
                     "expected .yaml, .yml, .json, .onnx or zoo:NAME")
