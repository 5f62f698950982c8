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
import os

from ._engine import BASIC_OPS, PHASES, STAGES, CountResult, LayerCount, count_model
from ._formulas import FORMULAS, ZERO_COST
from ._hf import load_hf_config
from ._ir import FORMATS, LOSSES, OPTIMIZERS, IncompleteModelWarning, Layer, ModelError, ModelIR, build_model
from ._onnx import load_onnx
from ._spec import load_spec, spec_to_model
from ._torch import load_torch
from ._zoo import zoo_names, load_zoo
from .movement import Densities, MemoryHierarchy, MovementResult, count_movement

__all__ = ["ModelError", "IncompleteModelWarning", "ModelIR", "Layer", "build_model", "load_model", "load_spec", "spec_to_model", "load_onnx",
           "load_torch", "load_hf_config",
           "count_model", "CountResult", "LayerCount", "zoo_names", "load_zoo", "layer_types",
           "BASIC_OPS", "STAGES", "PHASES", "FORMATS", "LOSSES", "OPTIMIZERS", "ZERO_COST",
           "count_movement", "MemoryHierarchy", "Densities", "MovementResult"]


def layer_types():
    """The layer types the spec frontend and the formulas know, sorted."""
    return sorted(FORMULAS)


def load_model(source, *, seq=None):
    """A ModelIR from ``zoo:NAME``, a ``.yaml``/``.yml``/``.json`` model spec path, a Hugging Face
    ``config.json``, an ``.onnx`` file, a spec mapping, or a ModelIR (returned as is).

    ``seq`` sets the sequence length of zoo transformers and Hugging Face configs. Raises
    :class:`ModelError` on bad input (one line naming the file and the layer).
    """
    if isinstance(source, ModelIR) and seq is None:
        return source
    if isinstance(source, dict) and seq is None:
        return spec_to_model(source)
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise ModelError(f"cannot load a model from {type(source).__name__}"
                         + (" with a sequence length" if seq is not None else ""))
    if source.startswith("zoo:"):
        return load_zoo(source[4:], seq=seq)
    extension = os.path.splitext(source)[1].lower()
    if extension in (".yaml", ".yml", ".json"):
        return load_spec(source, seq=seq)
    if seq is not None:
        raise ModelError(f"{source}: has no sequence length to set")
    if extension == ".onnx":
        return load_onnx(source)
    if not os.path.exists(source):
        raise ModelError(f"{source}: no such file (and not a zoo:NAME)")
    raise ModelError(f"{source}: unsupported model file type {extension or '(none)'!r}; "
                     "expected .yaml, .yml, .json, .onnx or zoo:NAME")
