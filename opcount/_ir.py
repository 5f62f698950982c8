"""ModelIR: the layer graph every frontend produces and the counting engine reads.

Shapes are per sample (the batch dimension is left out): an image is ``[C, H, W]``, a token
sequence ``[T, D]``, token ids ``[T]``. A layer reads the outputs of the layers named in
``inputs`` (the name ``input`` is the model input; by default a layer reads the layer before it),
so residual adds and concats are written as references.
"""
from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Mapping, Sequence

from hardware_profiles.schema import FORMATS, INT_ACCUMULATOR, INT_FORMAT_BITS, LOSSES, MAC_LAYER_TYPES, OPTIMIZERS

__all__ = ["ModelError", "IncompleteModelWarning", "Layer", "ModelIR", "FORMATS", "LOSSES", "OPTIMIZERS",
           "INPLACE_TYPES", "build_model"]

MODEL_INPUT = "input"
# layer types whose parameters can be frozen (``frozen: true``: no weight gradient, no update)
FROZEN_TYPES = frozenset({"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                          "conv_transpose3d", "embedding"})

#: Layer types that can run in place (``inplace: true``): the element-wise ones, whose output can be
#: written over the tensor they read, so the call allocates no output (PyTorch's
#: ``ReLU(inplace=True)``, ``x.relu_()``, ``Dropout(inplace=True)``, ``out += identity``). The
#: counts do not depend on it; the device energy model reads it (``calibrate.LayerTable.inplace``).
INPLACE_TYPES = frozenset({"relu", "relu6", "leaky_relu", "sigmoid", "tanh", "gelu", "silu", "hardswish",
                           "hardsigmoid", "dropout", "stochastic_depth", "add", "mul", "elementwise"})


class ModelError(ValueError):
    """A bad model description: one line naming the file (or source) and the layer."""


ModelError.__module__ = "opcount"      # shown as opcount.ModelError, where users import it from


class IncompleteModelWarning(UserWarning):
    """A frontend loaded a model but left something out (a node with arithmetic it has no formula
    for, a parameter no counted layer owns); the IR's ``left_out`` lists what, and counts of it
    are marked incomplete."""


@dataclass(frozen=True)
class Layer:
    """One node of the model graph, with its shapes already inferred.

    ``attrs`` holds the type's resolved settings (kernel, stride, ...), ``params`` the number of
    trainable parameters the layer owns (shared weights are owned by one layer only), and
    ``in_shapes`` one per-sample shape per entry of ``inputs``.
    """
    name: str
    type: str
    inputs: tuple
    in_shapes: tuple
    out_shape: tuple
    attrs: dict = field(default_factory=dict)
    params: int = 0
    format: str = "fp32"
    known: bool = True
    format_given: bool = True   # False: the layer and its model named no format (fp32 stood in)
    #: Set by :func:`build_model`: equal for two layers of one model exactly when their type,
    #: fields and input shapes are equal (hence shapes, params and attrs), so the counting
    #: engine works a repeated layer out once. Not an ``__init__`` argument, so a layer made by
    #: ``dataclasses.replace`` (which may change attrs or shapes) has none.
    signature: object = field(default=None, init=False, compare=False, repr=False)

    @property
    def in_shape(self):
        return self.in_shapes[0]


@dataclass
class ModelIR:
    """A model: its per-sample input shape, default format, loss, optimizer and layers in
    topological order (every layer reads only the model input or earlier layers)."""
    name: str
    input_shape: tuple
    layers: list
    format: str = "fp32"
    loss: str = "mse"
    optimizer: str = "sgd"
    input_grad: bool = False
    source: str = "<model>"
    left_out: list = field(default_factory=list)
    format_given: bool = True   # False: the model named no format (fp32 stood in; see with_default_format)
    assumptions: list = field(default_factory=list)   # what a frontend assumed (strings), e.g. the batch axis
    #: Names of the integer layers whose conversions from and to floating point the model writes
    #: as layers of its own (a quantized ONNX graph's QuantizeLinear/DequantizeLinear nodes):
    #: count_model counts no conversion at their edges. Every other integer layer (a spec's
    #: ``format: int8``, ``--quantize``) gets its conversions counted (opcount._engine).
    conversions_written: frozenset = frozenset()

    @property
    def params(self):
        """Parameters owned by the layers (what the update stage counts); parameters a frontend
        could not attribute to a layer are listed in ``left_out`` instead."""
        return sum(layer.params for layer in self.layers)

    @property
    def active_params(self):
        """Parameters used per token: all of them, except that a mixture-of-experts layer counts
        its router and the experts one token runs (``top_k`` of them)."""
        return sum(layer.attrs.get("active_params", layer.params) if layer.known else layer.params
                   for layer in self.layers)

    @property
    def complete(self):
        """True when nothing was left out: every layer has a formula and a frontend skipped no
        node with arithmetic and no parameter (``left_out`` is empty)."""
        return not self.left_out and all(layer.known for layer in self.layers)

    def leave_out(self, what: str, type: str, reason: str, params: int = 0) -> None:
        """Record something a frontend could not count: ``what`` (a node or parameter name),
        its ``type``, the ``reason``, and the parameters it holds (0 if none). Each item is a
        dict ``{layer, type, reason, params}``; :func:`count_model` copies them into the
        result's ``incomplete`` list."""
        self.left_out.append({"layer": str(what), "type": str(type), "reason": str(reason), "params": int(params)})

    def warn_if_incomplete(self, label: str, stacklevel: int = 2) -> None:
        """Issue :class:`IncompleteModelWarning` naming ``label`` and the first three things left
        out (``left_out`` items and layers with no formula) when the model is not complete."""
        if self.complete:
            return
        items = self.left_out + [{"layer": layer.name, "type": layer.type,
                                  "reason": layer.attrs.get("reason") or "unknown layer type"}
                                 for layer in self.layers if not layer.known]
        shown = "; ".join(f"{i['layer']} ({i['type']}): {i['reason']}" for i in items[:3])
        more = f"; and {len(items) - 3} more" if len(items) > 3 else ""
        warnings.warn(f"{label}: the count is incomplete: {shown}{more}", IncompleteModelWarning,
                      stacklevel=stacklevel + 1)

    @property
    def output_shape(self):
        return self.layers[-1].out_shape if self.layers else self.input_shape

    def layer(self, name: str) -> Layer:
        """The layer called ``name``; KeyError if there is none."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def _new_layer(**values: Any) -> Layer:
    """``Layer(**values)`` with ``signature`` set, every field given: the frozen dataclass's
    ``__init__`` assigns its eleven fields one ``object.__setattr__`` at a time, a good part of
    building a large model; this fills the instance dict at once (the same object)."""
    layer = object.__new__(Layer)
    layer.__dict__.update(values)
    return layer


#: Integer operand formats of quantized layers: a matrix product (MAC_LAYER_TYPES) in one of them
#: multiplies in it, accumulates in int32 and requantizes its output (see opcount._engine).
QUANT_FORMATS = ("int8", "int4")
#: Per element, the conversions between a floating-point tensor and an integer one (ONNX's
#: QuantizeLinear and DequantizeLinear, and the edges between the integer and floating-point
#: layers of a quantized model, see opcount._engine): quantizing is x / scale, rounded (the
#: float-to-integer conversion, no basic op), + zero point, saturated low and high (2 cmp), in the
#: floating-point format; dequantizing is (x - zero point) x scale, in the floating-point format.
QUANTIZE_OPS = {"div": 1, "add": 1, "cmp": 2}
DEQUANTIZE_OPS = {"sub": 1, "mul": 1}
#: Keys of a layer's ``quant:`` field.
QUANT_KEYS = ("accumulate", "requantize", "core")
#: Layer types a ``quant:`` field applies to: the matrix products, and attention (its q, k, v and
#: output projections; the attention core stays in the floating-point format ``quant.core``).
QUANT_TYPES = MAC_LAYER_TYPES + ("attention",)


def _quant_field(quant, lformat, ltype, line_at):
    """The checked ``quant:`` mapping of a layer (``{accumulate, requantize}``, defaults filled)."""
    import difflib
    if not isinstance(quant, dict):
        raise ModelError(f"{line_at(None)}: 'quant' must be a mapping with {' and/or '.join(QUANT_KEYS)}, not {quant!r}")
    for key in quant:
        if key not in QUANT_KEYS:
            close = difflib.get_close_matches(str(key), QUANT_KEYS, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ModelError(f"{line_at(key)}: unknown quant field {key!r} ({hint}expected {', '.join(QUANT_KEYS)})")
    if ltype not in QUANT_TYPES:
        raise ModelError(f"{line_at(None)}: 'quant' applies to the matrix products ({', '.join(QUANT_TYPES)}), "
                         f"not to a {ltype} layer")
    if lformat not in QUANT_FORMATS:
        raise ModelError(f"{line_at(None)}: 'quant' applies to a layer in an integer format "
                         f"({', '.join(QUANT_FORMATS)}); this layer is in {lformat} (set its 'format')")
    acc = quant.get("accumulate", INT_ACCUMULATOR)
    wide = [f for f, bits in INT_FORMAT_BITS.items() if bits >= 2 * INT_FORMAT_BITS[lformat]]
    if acc not in wide:
        raise ModelError(f"{line_at('accumulate')}: quant.accumulate must be an integer format that holds the "
                         f"products of {lformat} ({', '.join(wide)}), not {acc!r}")
    requantize = quant.get("requantize", True)
    if not isinstance(requantize, bool):
        raise ModelError(f"{line_at('requantize')}: quant.requantize must be true or false, not {requantize!r}")
    out = {"accumulate": acc, "requantize": requantize}
    if ltype == "attention":
        core = quant.get("core", "fp32")
        floating = [f for f in FORMATS if f not in INT_FORMAT_BITS]
        if core not in floating:
            raise ModelError(f"{line_at('core')}: quant.core (the attention core's format) must be a floating-point "
                             f"format ({', '.join(floating)}), not {core!r}")
        out["core"] = core
    elif "core" in quant:
        raise ModelError(f"{line_at('core')}: quant.core applies to attention layers, not to a {ltype} layer")
    return out


def _where(source, lname, ltype):
    return f"{source}: layer {lname!r} ({ltype})"


def _is_name(value):
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _weight_shape(layer):
    """The ``[rows, columns]`` of the weight a layer can share: PyTorch's ``[out, in]`` for a
    linear layer, ``[vocab, dim]`` for an embedding; None for any other layer."""
    if layer.type == "linear":
        return [layer.attrs["out"], layer.attrs["in"]]
    if layer.type == "embedding":
        return [layer.attrs["vocab"], layer.attrs["dim"]]
    return None


def _check_tied(where, ref, this, built):
    """A ``tied_to`` reference must name a linear or embedding layer with this layer's weight shape."""
    target = next((layer for layer in built if layer.name == ref), None)
    if target is None:
        raise ModelError(f"{where}: 'tied_to' names the model input; it must name a linear or embedding layer")
    theirs, ours = _weight_shape(target), _weight_shape(this)
    if theirs is None:
        raise ModelError(f"{where}: 'tied_to' names {ref!r}, a {target.type} layer; it must name a linear or "
                         "embedding layer")
    if theirs != ours:
        raise ModelError(f"{where}: 'tied_to' names {ref!r}, whose weight has shape {theirs}; this layer's "
                         f"weight has shape {ours}")


def build_model(*, name: str, input_shape: int | Sequence[int], layers: Sequence[Mapping[str, Any]],
                format: str | None = None, loss: str = "mse", optimizer: str = "sgd", input_grad: bool = False,
                source: str = "<model>", lines: Mapping[tuple, int] | None = None) -> ModelIR:
    """Resolve ``inputs:`` references and infer every layer's shapes and parameters.

    ``layers`` is a list of dicts ``{type, name?, inputs?, format?, ...attrs}``. ``format``:
    the model's number format; ``None`` when the model names none, then fp32 stands in and the
    model and its layers without a format of their own are marked ``format_given=False`` (a
    profile's ``default_format`` replaces it, see :func:`opcount.with_default_format`). Raises
    :class:`ModelError` with a one-line message naming ``source`` and the layer (and the line,
    where ``lines`` maps key paths such as ``("layers", 2, "out")`` to lines).
    """
    from . import _memo, _shapes
    if not _is_name(name):
        raise ModelError(f"{source}: model 'name' must be a string or a number, not {name!r}")
    format_given = format is not None
    format = "fp32" if format is None else format
    if format not in FORMATS:
        raise ModelError(f"{source}: model format must be one of {', '.join(FORMATS)}, not {format!r}")
    if loss not in LOSSES:
        raise ModelError(f"{source}: loss must be one of {', '.join(LOSSES)}, not {loss!r}")
    if optimizer not in OPTIMIZERS:
        raise ModelError(f"{source}: optimizer must be one of {', '.join(OPTIMIZERS)}, not {optimizer!r}")
    model_input = _shapes.check_shape(input_shape, f"{source}: model input")
    shapes = {MODEL_INPUT: model_input}
    built: list[Layer] = []
    previous = MODEL_INPUT
    infer, shape_error = _shapes.infer_keyed, _shapes.ShapeError
    memo: dict | None = {} if _memo.ENABLED else None
    for index, spec in enumerate(layers):
        if not isinstance(spec, dict):
            raise ModelError(f"{source}: layer {index} must be a mapping, not {type(spec).__name__}")
        spec = dict(spec)
        ltype = spec.pop("type", None)
        if "name" in spec and spec["name"] is None:
            line = (lines or {}).get(("layers", index, "name"))
            at = f"{source}: line {line}" if line else source
            raise ModelError(f"{at}: layer {index}: field 'name' is empty; give it a value or leave it out")
        lname = spec.pop("name", None)
        if lname is not None and type(lname) is not str and not _is_name(lname):
            raise ModelError(f"{source}: layer {index}: 'name' must be a string or a number, not {lname!r}")
        if ltype is None:
            raise ModelError(f"{source}: layer {lname if lname is not None else index}: missing field 'type'")
        if not isinstance(ltype, str):
            raise ModelError(f"{source}: layer {lname if lname is not None else index}: 'type' must be a string, "
                             f"not {ltype!r}")
        lname = f"{ltype}_{index}" if lname is None else str(lname)
        if lname == MODEL_INPUT:
            raise ModelError(f"{_where(source, lname, ltype)}: the name 'input' is reserved for the model input")
        if lname in shapes:
            raise ModelError(f"{_where(source, lname, ltype)}: duplicate layer name")
        if any(map(operator.is_, spec.values(), repeat(None))):
            for key, value in spec.items():
                # YAML's empty value (``out:``) is null: an error for every field, never "absent"
                if value is None:
                    line = (lines or {}).get(("layers", index, str(key)))
                    at = f"{source}: line {line}" if line else source
                    raise ModelError(f"{_where(at, lname, ltype)}: field {key!r} is empty; give it a value or "
                                     "leave it out")
        inputs = spec.pop("inputs", None)
        if inputs is None:
            inputs = (previous,)
        else:
            if isinstance(inputs, str):
                inputs = [inputs]
            if not isinstance(inputs, list) or not inputs:
                raise ModelError(f"{_where(source, lname, ltype)}: 'inputs' must be a layer name or a non-empty "
                                 "list of names")
            for ref in inputs:
                if ref not in shapes:
                    raise ModelError(f"{_where(source, lname, ltype)}: input {ref!r} is not an earlier layer or "
                                     "'input'")
            inputs = tuple(inputs)
        lgiven = format_given or "format" in spec
        lformat = spec.pop("format", format)
        if lformat not in FORMATS:
            raise ModelError(f"{_where(source, lname, ltype)}: format must be one of {', '.join(FORMATS)}, "
                             f"not {lformat!r}")
        quant = spec.pop("quant", None)
        if quant is not None:
            def line_at(key, index=index, lname=lname, ltype=ltype):
                line = (lines or {}).get(("layers", index, "quant") + ((key,) if key is not None else ()))
                return _where(f"{source}: line {line}" if line else source, lname, ltype)
            quant = _quant_field(quant, lformat, ltype, line_at)
        in_shapes = tuple([shapes[ref] for ref in inputs])
        no_grad = spec.pop("no_grad", False)
        if not isinstance(no_grad, bool):
            raise ModelError(f"{_where(source, lname, ltype)}: 'no_grad' must be true or false, not {no_grad!r}")
        rerun = spec.pop("recompute", False)
        if not isinstance(rerun, bool):
            raise ModelError(f"{_where(source, lname, ltype)}: 'recompute' must be true or false, not {rerun!r}")
        frozen = spec.pop("frozen", False)
        if not isinstance(frozen, bool):
            raise ModelError(f"{_where(source, lname, ltype)}: 'frozen' must be true or false, not {frozen!r}")
        if frozen and ltype not in FROZEN_TYPES:
            raise ModelError(f"{_where(source, lname, ltype)}: 'frozen' applies to {', '.join(sorted(FROZEN_TYPES))} "
                             "layers")
        inplace = spec.pop("inplace", False)
        if inplace is not False:
            line = (lines or {}).get(("layers", index, "inplace"))
            at = _where(f"{source}: line {line}" if line else source, lname, ltype)
            if not isinstance(inplace, bool):
                raise ModelError(f"{at}: 'inplace' must be true or false, not {inplace!r}")
            if ltype not in INPLACE_TYPES:
                raise ModelError(f"{at}: 'inplace' applies to the element-wise layers "
                                 f"({', '.join(sorted(INPLACE_TYPES))}), not to a {ltype} layer")
        try:
            out_shape, params, attrs, known, signature = infer(ltype, spec, in_shapes, shapes, memo)
        except shape_error as exc:
            raise ModelError(f"{_where(source, lname, ltype)}: {exc}") from None
        inferred = attrs
        if no_grad:
            attrs = dict(attrs, no_grad=True)
            signature = None if signature is None else (signature, "no_grad")
        if frozen:
            attrs = dict(attrs, frozen=True)
            signature = None if signature is None else (signature, "frozen")
        if rerun:
            attrs = dict(attrs, recompute=True)
        if inplace:
            attrs = dict(attrs, inplace=True)
        if quant is not None:
            attrs = dict(attrs, quant=quant)
        if attrs is not inferred and signature is not None:
            # attrs set after inference (no_grad, frozen, ...): the key covers all of them
            try:
                signature = (signature, _memo.freeze(attrs))
            except _memo.Unfreezable:
                signature = None
        layer = _new_layer(name=lname, type=ltype, inputs=inputs, in_shapes=in_shapes, out_shape=out_shape,
                           attrs=attrs, params=params, format=lformat, known=known, format_given=lgiven,
                           signature=signature)
        if known and attrs.get("tied_to") is not None:
            _check_tied(_where(source, lname, ltype), attrs["tied_to"], layer, built)
        built.append(layer)
        shapes[lname] = out_shape
        previous = lname
    return ModelIR(name=str(name), input_shape=model_input, layers=built, format=format, loss=loss,
                   optimizer=optimizer, input_grad=bool(input_grad), source=source, format_given=format_given)


def with_default_format(model: ModelIR, fmt: str) -> ModelIR:
    """``model`` with number format ``fmt`` wherever it named none: the model's own format and
    each layer's that stood in as fp32 (``format_given`` false) become ``fmt``; formats the model
    or a layer named stay. This is how a profile's ``default_format`` applies (precedence: an
    explicit override such as ``--format``, then the model's own format, then the profile's
    ``default_format``)."""
    import dataclasses
    if fmt not in FORMATS:
        raise ModelError(f"{model.source}: format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if model.format_given and all(layer.format_given for layer in model.layers):
        return model
    layers = [layer if layer.format_given or layer.format == fmt else reformatted(layer, fmt, False)
              for layer in model.layers]
    return dataclasses.replace(model, layers=layers, format=model.format if model.format_given else fmt)


def reformatted(layer: Layer, fmt: str, given: bool) -> Layer:
    """``layer`` in number format ``fmt`` (``format_given`` set to ``given``), keeping its
    ``signature``: the format enters no shape and no formula, so the layer is still the same
    work as the others with its signature."""
    import dataclasses
    out = dataclasses.replace(layer, format=fmt, format_given=given)
    object.__setattr__(out, "signature", layer.signature)
    return out
