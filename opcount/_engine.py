"""The counting engine: walks a ModelIR, calls the handler of each layer, adds the loss row,
the gradient fan-out sums and the optimizer update, and returns a :class:`CountResult`.

Counts are exact Python integers for the whole batch. ``CountResult.as_array`` stacks them into
int64 and raises ``OverflowError`` rather than wrapping; totals (``totals``, ``to_json``) stay exact
Python integers at any scale (GPT-3 training is above 10^19, past int64).
"""
from __future__ import annotations

import math
import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from hardware_profiles.schema import BASIC_OPS, INT_ACCUMULATOR, INT_FORMAT_BITS, PHASES, STAGES

if TYPE_CHECKING:
    import numpy as np

from ._formulas import FORMULAS, Context, LayerCost
from . import _memo
from ._ir import (DEQUANTIZE_OPS, FORMATS, MODEL_INPUT, QUANT_FORMATS, QUANT_TYPES, QUANTIZE_OPS, ModelError, ModelIR,
                  with_default_format)
from ._memo import Unfreezable, freeze

__all__ = ["BASIC_OPS", "STAGES", "PHASES", "LayerCount", "CountResult", "count_model",
           "loss_cost", "update_cost", "REQUANTIZE_OPS"]

INT64_MAX = 2 ** 63 - 1     # numpy's int64 maximum (numpy is imported only by as_array)


@dataclass
class LayerCount:
    """Counts of one layer (or of the loss row) for a batch: ``stages[stage][op]`` (all stages and
    ops present, zeros included), its parameters, and MACs/FLOPs per stage."""
    name: str
    type: str
    format: str
    out_shape: tuple
    params: int
    stages: dict
    macs: dict
    complete: bool = True

    @property
    def flops(self):
        return {stage: 2 * n for stage, n in self.macs.items()}


@dataclass
class CountResult:
    """Per-layer, per-stage, per-op counts of one model under one profile, phase and batch.

    ``incomplete`` lists ``{layer, type, reason}`` for every layer that could not be fully counted
    (unknown type, missing recipe); such layers still appear in ``layers`` with what was counted.
    ``assumptions`` lists what the frontend assumed where the model did not say (an ONNX file's
    batch axis when no dimension is named). ``active_params`` are the parameters one token uses (``params`` but for mixture-of-experts
    layers, which count their router and ``top_k`` experts).
    It also lists what the frontend left out of the model (``ModelIR.left_out``: skipped nodes,
    parameters no counted layer owns), so ``complete`` is true only when nothing was.
    ``macs`` and ``flops`` are the phase's stages summed (forward only for inference and
    validation; forward + backward for training), FLOPs = 2 x MACs as in PyTorch's FLOP counter.
    """
    model: str
    profile: str
    phase: str
    batch: int
    params: int
    layers: list
    incomplete: list = field(default_factory=list)
    active_params: int | None = None
    assumptions: list = field(default_factory=list)
    #: the ops of the stage dicts: ``BASIC_OPS``, plus ``mac`` after :func:`opcount.with_macs`
    ops: tuple = BASIC_OPS

    def __post_init__(self):
        if self.active_params is None:
            self.active_params = self.params

    @property
    def complete(self):
        return not self.incomplete

    @property
    def incomplete_types(self):
        """``{type: number of layers}`` over the incomplete layers, e.g. ``{"FancyOp": 3}``."""
        counts = {}
        for item in self.incomplete:
            counts[item["type"]] = counts.get(item["type"], 0) + 1
        return counts

    @property
    def macs(self):
        return sum(layer.macs[s] for layer in self.layers for s in ("forward", "backward") if s in PHASES[self.phase])

    @property
    def flops(self):
        return 2 * self.macs

    @property
    def totals(self):
        """``{stage: {op: n}}`` for the four stages plus ``all``, exact integers."""
        out = {}
        for stage in STAGES:
            rows = [layer.stages[stage] for layer in self.layers]
            out[stage] = {op: sum(map(operator.itemgetter(op), rows)) for op in self.ops}
        out["all"] = {op: sum(out[stage][op] for stage in STAGES) for op in self.ops}
        return out

    def by_module(self, depth: int = 1) -> dict[str, dict[str, Any]]:
        """Counts rolled up by module path to ``depth`` (fvcore's ``by_module``, ptflops' per-module
        table): layers are grouped by the first ``depth`` dot-separated parts of their names
        (the PyTorch frontend names layers by module path; depth 0 is the whole model).
        Returns ``{path: {"layers", "params", "macs", "flops", "stages": {stage: {op: n}}}}`` in
        first-seen order; MACs and FLOPs cover the phase's stages, as ``macs`` does."""
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
            raise ValueError(f"depth must be a non-negative integer, not {depth!r}")
        stages = PHASES[self.phase]
        out: dict[str, dict[str, Any]] = {}
        for layer in self.layers:
            key = ".".join(layer.name.split(".")[:depth]) if depth else self.model
            row = out.get(key)
            if row is None:
                row = out[key] = {"layers": 0, "params": 0, "macs": 0, "flops": 0,
                                  "stages": {s: dict.fromkeys(self.ops, 0) for s in STAGES}}
            row["layers"] += 1
            row["params"] += layer.params
            macs = sum(layer.macs[s] for s in ("forward", "backward") if s in stages)
            row["macs"] += macs
            row["flops"] += 2 * macs
            for stage in STAGES:
                for op in self.ops:
                    row["stages"][stage][op] += layer.stages[stage][op]
        return out

    @property
    def formats(self):
        """The number format of each row of :meth:`as_array` (the loss row takes the model's)."""
        return [layer.format for layer in self.layers]

    def as_array(self) -> np.ndarray:
        """int64 array of shape (layers, 4 stages, 6 ops), stages in ``STAGES`` order and ops in
        ``BASIC_OPS`` order. Raises ``OverflowError`` if any entry does not fit int64, and
        ``ValueError`` for counts with ``mac`` ops (:func:`opcount.with_macs`), which six basic-op
        columns cannot hold."""
        import numpy as np
        if self.ops != BASIC_OPS:
            raise ValueError(f"{self.model}: counts with {', '.join(o for o in self.ops if o not in BASIC_OPS)} "
                             f"ops have no basic-op array")
        get = operator.itemgetter(*BASIC_OPS)
        rows = [get(st["forward"]) + get(st["loss"]) + get(st["backward"]) + get(st["update"])
                for st in (layer.stages for layer in self.layers)]
        try:
            array = np.array(rows, dtype=np.int64)
        except OverflowError:
            array = None      # numpy says only that some value is too large: find which
        if array is None:
            for layer in self.layers:
                for stage in STAGES:
                    for op in BASIC_OPS:
                        value = layer.stages[stage][op]
                        if value > INT64_MAX:
                            raise OverflowError(f"{self.model}: layer {layer.name!r} {stage} {op} count "
                                                f"{value} does not fit int64")
            raise OverflowError(f"{self.model}: a count does not fit int64")
        return array.reshape(len(self.layers), len(STAGES), len(BASIC_OPS))

    def to_json(self) -> dict[str, Any]:
        """The ``tosim count --json`` object (docs/counting.md; exact integers), plus ``profile``,
        ``complete`` and ``incomplete``; each layer also carries format, params, macs and flops."""
        stages = PHASES[self.phase]
        return {
            "model": self.model,
            "profile": self.profile,
            "phase": self.phase,
            "batch": self.batch,
            "params": self.params,
            "active_params": self.active_params,
            "macs": self.macs,
            "flops": self.flops,
            "complete": self.complete,
            "incomplete": [dict(item) for item in self.incomplete],
            "incomplete_types": self.incomplete_types,
            "layers": [{"name": layer.name, "type": layer.type, "format": layer.format,
                        "out_shape": list(layer.out_shape), "params": layer.params,
                        "macs": {s: layer.macs[s] for s in ("forward", "backward")},
                        "flops": {s: layer.flops[s] for s in ("forward", "backward")},
                        "stages": {s: dict(layer.stages[s]) for s in stages}}
                       for layer in self.layers],
            "totals": {key: value for key, value in self.totals.items() if key in stages or key == "all"},
            **({"assumptions": list(self.assumptions)} if self.assumptions else {}),
        }


def loss_cost(loss, shape, batch, ctx, *, with_gradient):
    """Basic ops of the loss (mean over the batch) on a model output of per-sample ``shape``.

    mse: per element sub, mul (square), the mean E-1 add + 1 div; gradient 2*(y-t)/E: the
    constant 1 div, then 1 mul per element (the difference is kept from the forward pass).
    cross_entropy (softmax included, R rows of C classes; see below for the class dim): per row logsumexp(x) - x_t:
    C-1 cmp, C sub, C exp, C-1 add, 1 log, 1 add (max back), 1 sub; the mean R-1 add + 1 div;
    gradient (softmax - onehot)/R: C div, 1 sub, C mul per row, 1 div for 1/R.
    bce (on probabilities): -(t log p + (1-t) log(1-p)): per element 2 log, 3 sub, 2 mul, 1 add;
    mean E-1 add + 1 div; gradient (p-t)/(p(1-p))/E: 2 sub, 2 mul, 1 div per element, 1 div.
    Returns ``(loss_ops, gradient_ops)``.
    """
    e = batch * math.prod(shape)
    fwd, grad = Counter(), Counter()
    if loss == "mse":
        fwd.update(sub=e, mul=e, add=e - 1, div=1)
        grad.update(div=1, mul=e)
    elif loss == "cross_entropy":
        # classes: the last dim of vectors and token sequences ([C], [T, V]), the channel dim of
        # dense predictions ([C, H, W], as torch's CrossEntropyLoss reads them)
        c = shape[0] if len(shape) >= 3 else shape[-1]
        rows = e // c
        fwd.update(cmp=rows * (c - 1), sub=rows * c + rows, add=rows * (c - 1) + rows + rows - 1, div=1)
        fwd.update(ctx.recipe("exp", "forward", rows * c))
        fwd.update(ctx.recipe("log", "forward", rows))
        grad.update(div=rows * c + 1, sub=rows, mul=rows * c)
    else:  # bce
        fwd.update(sub=3 * e, mul=2 * e, add=e + e - 1, div=1)
        fwd.update(ctx.recipe("log", "forward", 2 * e))
        grad.update(sub=2 * e, mul=2 * e, div=e + 1)
    if not with_gradient:
        grad = Counter()
    return +fwd, +grad


def update_cost(optimizer, params):
    """Optimizer step per parameter (independent of the batch).

    sgd: w -= lr*g, 1 mul + 1 sub. momentum: v = mu*v + g, w -= lr*v: 2 mul, 1 add, 1 sub.
    adam: m = b1*m + (1-b1)*g (2 mul, 1 add), v = b2*v + (1-b2)*g*g (3 mul, 1 add), bias
    corrections m/(1-b1^t), v/(1-b2^t) (2 div), w -= lr*mhat/(sqrt(vhat)+eps) (1 sqrt, 1 add,
    1 div, 1 mul, 1 sub): 6 mul, 3 add, 3 div, 1 sqrt, 1 sub. adamw: adam + w -= (lr*wd)*w, 1 mul
    + 1 sub more. The per-step scalars of adam/adamw (b1^t, b2^t, 1-b1^t, 1-b2^t: 2 mul, 2 sub)
    are counted once per model, on the first layer with parameters (see ``count_model``).
    """
    p = params
    if optimizer == "sgd":
        ops = {"mul": p, "sub": p}
    elif optimizer == "momentum":
        ops = {"mul": 2 * p, "add": p, "sub": p}
    elif optimizer == "adam":
        ops = {"mul": 6 * p, "add": 3 * p, "div": 3 * p, "sqrt": p, "sub": p}
    elif optimizer == "adamw":
        ops = {"mul": 7 * p, "add": 3 * p, "div": 3 * p, "sqrt": p, "sub": 2 * p}
    else:
        raise KeyError(optimizer)
    return +Counter(ops)


_ZERO_OPS = dict.fromkeys(BASIC_OPS, 0)
_OP_SET = frozenset(BASIC_OPS)


def _full(counter):
    """``{op: n}`` over all of ``BASIC_OPS`` (zeros included) from a Counter of basic ops."""
    if not counter:
        return dict(_ZERO_OPS)
    if not _OP_SET.issuperset(counter):
        for op in counter:
            if op not in _OP_SET:
                raise ValueError(f"unknown basic op {op!r}")
    get = counter.get
    return {"add": int(get("add", 0)), "sub": int(get("sub", 0)), "mul": int(get("mul", 0)),
            "div": int(get("div", 0)), "sqrt": int(get("sqrt", 0)), "cmp": int(get("cmp", 0))}


RECOMPUTE = ("full", "selective")

#: Requantization of one output element of a quantized matrix product (the int32 accumulator back
#: to the int8/int4 operand format, as integer inference runtimes do it, gemmlowp/TFLite/ONNX
#: Runtime's fixed-point path): 1 mul (the accumulator times the fixed-point multiplier M0 that
#: stands for input scale x weight scale / output scale), 1 add (the rounding constant
#: 2**(shift-1) before the right shift; the shift itself is wiring), 1 add (the output zero
#: point) and 2 cmp (saturation to the operand format's range, low and high). All in the
#: accumulator's format.
REQUANTIZE_OPS = {"mul": 1, "add": 2, "cmp": 2}


def _quantized_rows(layer, row, batch, convert=True):
    """The extra rows of a quantized matrix product (``layer`` in int8 or int4, a
    ``MAC_LAYER_TYPES`` type or ``attention``; its counts ``row``, changed in place): its adds
    (the int32 accumulation, the int32 bias included) move to a row ``NAME/accumulate`` in the
    accumulator format, leaving the products in the operand format; unless the layer's ``quant``
    says ``requantize: false`` (an ONNX MatMulInteger/ConvInteger, whose output stays int32), a
    row ``NAME/requantize`` in that format counts :data:`REQUANTIZE_OPS` per output element. The
    op numbers of the layer and its ``/accumulate`` row together are those of the same layer in
    a floating-point format. An attention layer's integer products are its q, k, v and output
    projections (requantized per projection output); the rest of its counts (the attention core:
    scores, softmax, the product with V, rotary embedding) form a row ``NAME/core`` in
    ``quant.core`` (a floating-point format, default fp32), as int8 deployments run it."""
    quant = layer.attrs.get("quant") or {}
    acc = quant.get("accumulate", INT_ACCUMULATOR)
    zero = _ZERO_OPS
    extra = []
    if layer.type == "attention":
        # the q, k, v and output projections are the integer products; the core (scores,
        # softmax, the product with V; rotary embedding, mask merging) moves to NAME/core
        projections, e = _attention_projections(layer, batch)
        core = {}
        for stage in STAGES:
            counts = row.stages[stage]
            if stage == "forward":
                core[stage] = {op: counts[op] - projections.get(op, 0) for op in BASIC_OPS}
                row.stages[stage] = dict(zero, mul=projections["mul"], add=projections["add"])
            else:
                core[stage] = dict(counts)
                row.stages[stage] = dict(zero)
        if min(core["forward"].values()) < 0:
            raise AssertionError(f"{layer.name}: attention projections exceed the layer's counts")
        core_format = quant.get("core", "fp32")
        extra.append(LayerCount(name=f"{layer.name}/core", type="attention_core", format=core_format,
                                out_shape=layer.out_shape, params=0, stages=core, macs={"forward": 0, "backward": 0}))
        if convert:
            # the core computes in floating point: it dequantizes the q, k, v projections'
            # outputs and quantizes its own for the output projection
            read, written = _attention_core_edges(layer, batch)
            dequantize = DEQUANTIZE_OPS if quant.get("requantize", True) else {"mul": 1}
            extra.append(_conversion_row(f"{layer.name}/core_dequantize", "dequantize", core_format, dequantize, read))
            extra.append(_conversion_row(f"{layer.name}/core_quantize", "quantize", core_format, QUANTIZE_OPS,
                                         written))
    else:
        e = batch * math.prod(layer.out_shape)
    moved = {}
    for stage in STAGES:
        counts = row.stages[stage]
        moved[stage] = dict(zero, add=counts["add"])
        counts["add"] = 0
    extra.insert(0, LayerCount(name=f"{layer.name}/accumulate", type="accumulate", format=acc,
                               out_shape=layer.out_shape, params=0, stages=moved, macs={"forward": 0, "backward": 0}))
    if quant.get("requantize", True):
        forward = dict(zero, **{op: n * e for op, n in REQUANTIZE_OPS.items()})
        extra.append(LayerCount(name=f"{layer.name}/requantize", type="requantize", format=acc,
                                out_shape=layer.out_shape, params=0,
                                stages={"forward": forward, "loss": dict(zero), "backward": dict(zero),
                                        "update": dict(zero)},
                                macs={"forward": 0, "backward": 0}))
    return extra

#: Elementwise layers of a quantized ONNX graph whose output is an integer tensor, though their
#: arithmetic is counted in another format (QuantizeLinear's and DynamicQuantizeLinear's in the
#: float one, QLinearAdd's in int32).
_INTEGER_OUTPUT_OPS = ("QuantizeLinear", "DynamicQuantizeLinear", "QLinearAdd")


def _value_format(layer):
    """The format of the values ``layer`` outputs: a quantized matrix product's operand format
    when it requantizes, else its accumulator's; int8 for an ONNX QuantizeLinear or QLinearAdd;
    else the layer's format."""
    if layer.format in QUANT_FORMATS and layer.type in QUANT_TYPES and layer.known:
        quant = layer.attrs.get("quant") or {}
        return layer.format if quant.get("requantize", True) else quant.get("accumulate", INT_ACCUMULATOR)
    if layer.type == "elementwise" and layer.attrs.get("op") in _INTEGER_OUTPUT_OPS:
        return "int8"
    return layer.format


def _conversion_row(name, kind, fmt, ops, n):
    zero = _ZERO_OPS
    return LayerCount(name=name, type=kind, format=fmt, out_shape=(), params=0,
                      stages={"forward": dict(zero, **{op: k * n for op, k in ops.items()}), "loss": dict(zero),
                              "backward": dict(zero), "update": dict(zero)},
                      macs={"forward": 0, "backward": 0})


def _add_ops(row, ops, n):
    forward = row.stages["forward"]
    for op, k in ops.items():
        forward[op] += k * n


class _Conversions:
    """The conversions at the edges between the integer layers of a model and its floating-point
    ones (and its input and output), followed through the data flow (``Layer.inputs``), as an
    integer runtime runs them:

    * a tensor in a floating-point format read by an integer layer is quantized once
      (:data:`QUANTIZE_OPS` per element, in the float format), counted in a row
      ``READER/quantize_input`` (type ``quantize``) of the first integer layer reading it;
    * an integer tensor read by a floating-point layer is dequantized once per float format
      (:data:`DEQUANTIZE_OPS` per element; an int32 accumulator, its zero points folded into the
      bias, 1 mul by its scale), in a row ``PRODUCER/dequantize_output`` (type ``dequantize``) in
      the reader's format;
    * between two integer formats (an int32 output into an int8 layer) a requantization
      (:data:`REQUANTIZE_OPS` in the wider format), in the reader's ``/quantize_input`` row;
    * an int8 tensor read by an int8 layer (a requantized product into the next one, an int8
      ReLU) needs none.

    A layer without arithmetic (a flatten, a reshape, a concat, a dropout at inference) passes
    its inputs' values through in their format when they agree; a parameter layer (``once``) is a
    weight, quantized ahead of time; an embedding's input is indices, never converted. Layers in ``ModelIR.conversions_written`` (a quantized ONNX
    graph's, whose QuantizeLinear and DequantizeLinear nodes are counted as layers) get none at
    their edges. The model input arrives in the model's format, and an integer model output is
    dequantized to the model's format (if that is a float one); both are listed in the count's
    ``assumptions`` when they apply."""

    def __init__(self, model, batch):
        self.batch = batch
        self.model = model
        self.written = getattr(model, "conversions_written", frozenset())
        self.value = {MODEL_INPUT: model.format}
        self.origins = {MODEL_INPUT: (MODEL_INPUT,)}
        self.elements = {MODEL_INPUT: batch * math.prod(model.input_shape)}
        self.implicit = {MODEL_INPUT: False}
        self.weights = set()
        self.done = set()
        self.assumptions = []

    def before(self, layer, forward):
        """The conversion rows of ``layer``'s inputs (counted before it); records its output."""
        name, fmt = layer.name, layer.format
        if layer.attrs.get("once"):
            self.weights.add(name)
            self.value[name], self.origins[name], self.implicit[name] = fmt, (name,), False
            self.elements[name] = math.prod(layer.out_shape)
            return []
        inputs = [ref for ref in dict.fromkeys(layer.inputs) if ref not in self.weights]
        values = {self.value[ref] for ref in inputs}
        if layer.known and len(values) == 1 and not any(forward.values()) and layer.type != "embedding":
            # no arithmetic: the values pass through in their format
            self.value[name] = values.pop()
            self.origins[name] = tuple(dict.fromkeys(o for ref in inputs for o in self.origins[ref]))
            return []
        rows = {}
        integer = fmt in INT_FORMAT_BITS
        implicit = integer and name not in self.written
        dequantizer = layer.type == "elementwise" and layer.attrs.get("op") == "DequantizeLinear"
        # an embedding reads indices (integers in any format), not values to convert
        for ref in (inputs if layer.type != "embedding" else ()):
            value = self.value[ref]
            if value == fmt:
                continue
            if implicit:
                for origin in self.origins[ref]:
                    self._quantize(rows, name, origin, value, fmt)
            elif not integer and value in INT_FORMAT_BITS and not dequantizer:
                for origin in self.origins[ref]:
                    if self.implicit[origin]:
                        self._dequantize(rows, origin, value, fmt)
        self.value[name] = _value_format(layer)
        self.origins[name] = (name,)
        self.elements[name] = self.batch * math.prod(layer.out_shape)
        self.implicit[name] = implicit
        return list(rows.values())

    def at_output(self, last):
        """The dequantization of an integer model output into the model's float format."""
        fmt = self.model.format
        if last is None or fmt in INT_FORMAT_BITS or self.value[last] not in INT_FORMAT_BITS:
            return []
        rows = {}
        for origin in self.origins[last]:
            if self.implicit[origin] and self._dequantize(rows, origin, self.value[last], fmt):
                self.assumptions.append(f"the model output ({origin!r}, {self.value[last]}) is dequantized to {fmt} "
                                        "for its reader (counted in its /dequantize_output row)")
        return list(rows.values())

    def _quantize(self, rows, reader, origin, value, fmt):
        if (origin, fmt) in self.done:
            return
        self.done.add((origin, fmt))
        n = self.elements[origin]
        if value in INT_FORMAT_BITS:
            # integer to integer: a requantization in the wider format
            kind_fmt = max(value, fmt, key=INT_FORMAT_BITS.__getitem__)
            ops = REQUANTIZE_OPS
        else:
            kind_fmt, ops = value, QUANTIZE_OPS
        row_name = f"{reader}/quantize_input"
        key = (row_name, kind_fmt)
        if key not in rows:
            suffix = "" if not any(k[0] == row_name for k in rows) else f":{kind_fmt}"
            rows[key] = _conversion_row(row_name + suffix, "quantize", kind_fmt, ops, 0)
        _add_ops(rows[key], ops, n)
        if origin == MODEL_INPUT:
            self.assumptions.append(f"the model input arrives in {value} and is quantized to {fmt} by {reader!r} "
                                    "(counted in its /quantize_input row)")

    def _dequantize(self, rows, origin, value, fmt):
        if (origin, fmt) in self.done:
            return False
        self.done.add((origin, fmt))
        ops = DEQUANTIZE_OPS if value in QUANT_FORMATS else {"mul": 1}
        first = not any((origin, f) in self.done for f in FORMATS if f != fmt and f not in INT_FORMAT_BITS)
        row_name = f"{origin}/dequantize_output" + ("" if first else f":{fmt}")
        rows[(row_name, fmt)] = _conversion_row(row_name, "dequantize", fmt, ops, self.elements[origin])
        return True


#: The built-in handlers, whose results are memoized per count (user-registered handlers may
#: read more of a layer, its name for one, and are always called).
_PURE_HANDLERS = dict(FORMULAS)


def _memo_key(layer, handler, input_grad):
    """The memo key of a layer's cost in :func:`count_model`, or ``None`` (not memoized)."""
    if not _memo.ENABLED or _PURE_HANDLERS.get(layer.type) is not handler:
        return None
    signature = layer.signature
    if signature is None:
        try:
            signature = freeze((layer.type, layer.attrs, layer.in_shapes, layer.out_shape, layer.params))
        except Unfreezable:
            return None
        return ("fields", signature, input_grad)
    return ("built", signature, input_grad)


def count_model(model: ModelIR, profile: Any, phase: str = "inference", batch: int = 1, recompute: str | None = None,
                master_format: str | None = None) -> CountResult:
    """Count basic operations of ``model`` for ``phase`` and a batch of ``batch`` samples.

    ``recompute`` (training only): activation recomputation, counted in the backward stage (its
    MACs in the backward MACs). ``"full"``: every layer that computes a backward pass, except the
    last (whose output the loss holds), runs its forward again before its backward, as when each
    layer's input is checkpointed (Megatron-LM's full recomputation, ``torch.utils.checkpoint``
    around every block). ``"selective"`` (Korthikanti et al. 2022): only the attention core
    (QK^T, softmax, its dropout, the product with V) of ``attention`` and ``sdpa`` layers runs
    again; the projections' activations are kept.

    ``master_format`` (training): the optimizer keeps master weights in this format (mixed
    precision: forward and backward in the layers' bf16 or fp16, the update in fp32). The update
    of each layer whose format differs moves to a row of its own, ``NAME/update`` (type
    ``update``, that format, no parameters of its own), so it is priced in the master format;
    the casts between the two copies (a rounding, no basic operation) are not counted.

    ``profile`` is a loaded profile (an object with ``recipe_ops(name, direction)`` and
    ``has_recipe(name)``; its ``name`` is reported) or a profile name or YAML path for
    ``hardware_profiles.load``. Stages outside the phase are zero.
    Formats: a model (or layer) that names no format is counted in the profile's
    ``default_format`` (:func:`opcount.with_default_format`). A matrix product (or attention
    layer) in int8 or int4 is counted as integer inference runs it: its products in its own row,
    its accumulation in a ``NAME/accumulate`` row in int32, a ``NAME/requantize`` row
    (:data:`REQUANTIZE_OPS` per output) and, for attention, its core in a ``NAME/core`` row
    (see ``_quantized_rows``); integer layers are refused in training. Where integer and
    floating-point layers meet (and at a float model input or output), the conversions are
    counted in rows ``NAME/quantize_input`` and ``NAME/dequantize_output`` (types ``quantize``
    and ``dequantize``; see ``_Conversions``). A layer, loss or update row in a
    format the profile does not list raises :class:`ModelError` naming the model, the layer, the
    format and the profile (its cost table has no units for it).
    Backward rules: a layer computes an input gradient only for inputs whose value depends on
    trainable parameters (so the first layer computes none, unless the model sets
    ``input_grad``); a tensor read by c consumers that return gradients needs (c-1) adds per
    element to sum them, counted in its producer's backward stage. A layer marked ``no_grad``
    (a ``detach``, a call under ``torch.no_grad``, a comparison) has no backward and returns no
    gradient to its inputs; a layer marked ``recompute`` (a checkpointed region's) adds its
    forward to its backward stage; a ``frozen`` layer computes no weight gradient and no update.
    """
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, not {phase!r}")
    if recompute is not None and recompute not in RECOMPUTE:
        raise ValueError(f"recompute must be one of {', '.join(RECOMPUTE)}, not {recompute!r}")
    if recompute is not None and phase != "training":
        raise ValueError(f"recompute applies to the training phase, not {phase!r}")
    if master_format is not None and master_format not in FORMATS:
        raise ValueError(f"master_format must be one of {', '.join(FORMATS)}, not {master_format!r}")
    if master_format in INT_FORMAT_BITS:
        raise ValueError(f"master_format must be a floating-point format (the optimizer's master weights), "
                         f"not {master_format!r}")
    if master_format is not None and phase != "training":
        raise ValueError(f"master_format (the optimizer's weights) applies to the training phase, not {phase!r}")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch must be a positive integer, not {batch!r}")
    if isinstance(profile, str):
        from hardware_profiles import load
        profile = load(profile)
    default_format = getattr(profile, "default_format", None)
    if isinstance(default_format, str):
        model = with_default_format(model, default_format)
    stages = PHASES[phase]
    training = phase == "training"
    if training:
        _refuse_integer_training(model)
    has_backward = "backward" in stages
    has_update = "update" in stages
    layers = model.layers
    needs_grad = {MODEL_INPUT: bool(model.input_grad)}
    # gradient fan-in per tensor, in elements per sample read by its consumers: c consumers
    # reading all of it need (c-1) adds per element; slices (a ``reads`` count) add only what
    # overlaps, so the disjoint parts of a split need none (only a backward stage needs these)
    consumers: dict[str, int] = {}
    sizes: dict[str, int] = {}
    if has_backward:
        cut = _cut_off(model)
        for layer in layers:
            sizes[layer.name] = math.prod(layer.out_shape)
            if layer.name in cut:
                # no gradient flows through (detach, torch.no_grad, a comparison) or none reaches
                # it: no backward, and it returns none to its inputs, so it is no consumer in their sums
                needs_grad[layer.name] = False
                continue
            attrs = layer.attrs
            needs_grad[layer.name] = (layer.params > 0 and not attrs.get("frozen")) or (
                attrs.get("tied_to") is not None) or any(needs_grad[ref] for ref in layer.inputs)
            reads = attrs.get("reads")
            for position, ref in enumerate(layer.inputs):
                if ref in sizes:
                    consumers[ref] = consumers.get(ref, 0) + (sizes[ref] if reads is None or position else reads)
        if layers:
            last = layers[-1].name         # the loss reads the model output
            consumers[last] = consumers.get(last, 0) + sizes[last]
    profile_name = profile.name if hasattr(profile, "name") else str(profile)
    counted = []
    incomplete = []
    first_with_params = next((layer.name for layer in layers if layer.params and not layer.attrs.get("frozen")), None)
    last_layer = layers[-1].name if layers else None
    adam = model.optimizer in ("adam", "adamw")
    formulas = FORMULAS
    # a Context is shared by the layers with the same input gradients until a handler records
    # something missing in it; all share one recipe cache
    contexts: dict = {}
    recipe_cache: dict = {}
    # repeated layers (a transformer's blocks, a ResNet stage's bottlenecks) are worked out once:
    # a built-in handler is a pure function of the layer's type, attrs, shapes and params and of
    # the context (batch, mode, recipes: fixed in this call; input gradients: in the key), so
    # its LayerCost, with its forward and plain backward rows, is kept under the layer's exact
    # key (Layer.signature, or opcount._memo.freeze of those fields) and reused. A cost that
    # recorded something missing is never kept.
    memo: dict = {}
    updates: dict = {}
    zero = _ZERO_OPS
    no_grads: dict = {}
    # the conversions between integer and floating-point layers (only in a model with an integer layer)
    conversions = _Conversions(model, batch) if any(layer.format in INT_FORMAT_BITS for layer in layers) else None
    for layer in layers:
        name = layer.name
        # without a backward stage the handlers' input gradients would be thrown away: none asked
        if has_backward:
            input_grad: Any = tuple([needs_grad[ref] for ref in layer.inputs])
        else:
            n_inputs = len(layer.inputs)
            input_grad = no_grads.get(n_inputs)
            if input_grad is None:
                input_grad = no_grads[n_inputs] = (False,) * n_inputs
        ctx = contexts.get(input_grad)
        if ctx is None:
            ctx = contexts[input_grad] = Context(batch=batch, training=training, profile=profile,
                                                 input_grad=input_grad, recipe_cache=recipe_cache)
        entry = None
        missing: Any = ()
        if not layer.known:
            cost = LayerCost()
            incomplete.append({"layer": name, "type": layer.type, "reason": _unknown_reason(layer)})
        else:
            handler = formulas[layer.type]
            key = _memo_key(layer, handler, input_grad)
            entry = memo.get(key) if key is not None else None
            if entry is None:
                cost = handler(layer, ctx)
                missing = ctx.missing
                if missing:
                    del contexts[input_grad]
                    for reason in missing:
                        incomplete.append({"layer": name, "type": layer.type, "reason": reason})
                elif key is not None:
                    entry = memo[key] = [cost, _full(cost.forward), None]
            else:
                cost = entry[0]
        forward = dict(entry[1]) if entry is not None else _full(cost.forward)
        # a layer of a checkpointed region (``recompute``) runs its forward again in backward
        rerun = has_backward and layer.attrs.get("recompute")
        if has_backward and needs_grad[name]:
            backward: Any = cost.backward
            macs_backward = cost.macs_backward
            plain = True
            if (recompute == "full" and name != last_layer) or rerun:
                backward = backward + cost.forward
                macs_backward += cost.macs_forward
                plain = False
            elif recompute == "selective" and cost.recompute:
                backward = backward + cost.recompute
                macs_backward += cost.recompute_macs
                plain = False
            extra = consumers.get(name, 0) - sizes[name]
            if extra > 0:
                backward = backward + Counter(add=extra * (1 if layer.attrs.get("once") else batch))
                plain = False
            if plain and entry is not None:
                if entry[2] is None:
                    entry[2] = _full(backward)
                backward = dict(entry[2])
            else:
                backward = _full(backward)
        elif rerun:
            backward = _full(cost.forward)
            macs_backward = cost.macs_forward
        else:
            backward = dict(zero)
            macs_backward = 0
        if has_update:
            first = adam and name == first_with_params
            trained = 0 if layer.attrs.get("frozen") else layer.params      # frozen: no update
            update = updates.get((trained, first))
            if update is None:
                update = update_cost(model.optimizer, trained)
                if first:
                    update.update(mul=2, sub=2)
                update = updates[(trained, first)] = _full(update)
            update = dict(update)
        else:
            update = dict(zero)
        split = master_format is not None and layer.format != master_format and any(update.values())
        if conversions is not None:
            counted.extend(conversions.before(layer, forward))
        counted.append(LayerCount(
            name=name, type=layer.type, format=layer.format, out_shape=layer.out_shape, params=layer.params,
            stages={"forward": forward, "loss": dict(zero), "backward": backward,
                    "update": dict(zero) if split else update},
            macs={"forward": cost.macs_forward, "backward": macs_backward},
            complete=layer.known and not missing))
        if layer.format in QUANT_FORMATS and layer.type in QUANT_TYPES and layer.known:
            counted.extend(_quantized_rows(layer, counted[-1], batch, convert=conversions is not None and
                                           name not in conversions.written))
        if split:
            # the optimizer step on the master weights, in their own format
            counted.append(LayerCount(
                name=f"{name}/update", type="update", format=cast(str, master_format), out_shape=(), params=0,
                stages={"forward": dict(zero), "loss": dict(zero), "backward": dict(zero),
                        "update": update},
                macs={"forward": 0, "backward": 0}, complete=True))
    assumptions = list(getattr(model, "assumptions", ()))
    if conversions is not None:
        counted.extend(conversions.at_output(last_layer))
        assumptions.extend(conversions.assumptions)
    for item in model.left_out:
        incomplete.append({"layer": item["layer"], "type": item["type"], "reason": item["reason"]})
    if "loss" in stages:
        ctx = Context(batch=batch, training=training, profile=profile, input_grad=(True,))
        fwd, grad = loss_cost(model.loss, model.output_shape, batch, ctx, with_gradient=training)
        for reason in ctx.missing:
            incomplete.append({"layer": "loss", "type": model.loss, "reason": reason})
        counted.append(LayerCount(
            name="loss", type=model.loss, format=model.format, out_shape=(), params=0,
            stages={"forward": _full(Counter()), "loss": _full(fwd), "backward": _full(grad),
                    "update": _full(Counter())},
            macs={"forward": 0, "backward": 0}, complete=not ctx.missing))
    _check_listed(model, counted, profile, profile_name)
    return CountResult(model=model.name, profile=profile_name, phase=phase, batch=batch, params=model.params,
                       layers=counted, incomplete=incomplete, active_params=model.active_params,
                       assumptions=assumptions)


def _attention_projections(layer, batch):
    """The forward counts of an ``attention`` layer's q, k, v and output projections (as
    ``opcount._formulas._attention`` counts them, with ``linear_cost``) and the number of their
    output elements, for a batch of ``batch``."""
    from ._formulas import linear_cost
    a = layer.attrs
    rows = batch * a["t"]
    kv_rows = batch * a["s"] if a["cross"] else rows
    parts = [(rows, a["dim"], a["inner"], a["bias"]), (rows, a["inner"], a["dim"], a["out_bias"])]
    if not a["memory_cached"]:
        parts += [(kv_rows, a["kdim"], a["dkv"], a["bias"]), (kv_rows, a["vdim"], a["dkv"], a["bias"])]
    total = Counter()
    for r, i, o, bias in parts:
        total.update(linear_cost(r, i, o, bias=bias, input_grad=False, weight_grad=False).forward)
    return total, sum(r * o for r, _, o, _ in parts)


def _attention_core_edges(layer, batch):
    """``(read, written)``: elements of the q, k and v projections' outputs the attention core
    reads, and of the core's output the output projection reads, for a batch of ``batch``."""
    a = layer.attrs
    rows = batch * a["t"]
    kv_rows = batch * a["s"] if a["cross"] else rows
    read = rows * a["inner"] + (0 if a["memory_cached"] else 2 * kv_rows * a["dkv"])
    return read, rows * a["inner"]


def _refuse_integer_training(model):
    """ModelError for a model with a layer (or a loss) in an integer format counted for training."""
    fmt, what = next(((layer.format, f"layer {layer.name!r}") for layer in model.layers
                      if layer.format in INT_FORMAT_BITS), (model.format, "its loss"))
    if fmt in INT_FORMAT_BITS:
        raise ModelError(f"{model.source}: model {model.name!r} ({what}) is in {fmt}: integer formats are counted "
                         "for inference and validation only (quantized training, with integer backward and update, "
                         "is not modelled); count training in a floating-point format (--format)")


def _cut_off(model):
    """Layers that get no gradient: those marked ``no_grad``, and those whose every reader is
    one of them (a layer whose result only a ``detach`` reads runs no backward). The model's
    last layer (the loss reads it) and a layer nothing reads are not cut."""
    cut = {layer.name for layer in model.layers if layer.attrs.get("no_grad")}
    if not cut:
        return cut
    readers = {}
    for layer in model.layers:
        for ref in layer.inputs:
            readers.setdefault(ref, []).append(layer.name)
    last = model.layers[-1].name
    for layer in reversed(model.layers):
        if layer.name != last and layer.name in readers and all(r in cut for r in readers[layer.name]):
            cut.add(layer.name)
    return cut


def _unknown_reason(layer):
    """Why a layer without a formula was not counted: the frontend's ``reason`` where it gave one
    (an ONNX loop whose trip count is known only at run time, an integer op), else the default."""
    reason = layer.attrs.get("reason")
    return reason if isinstance(reason, str) and reason else "unknown layer type"


def _check_listed(model, counted, profile, profile_name):
    """ModelError when a counted row is in a format the profile does not list (its cost table has
    no units for it: pricing would synthesize units the profile never asked for)."""
    listed = getattr(profile, "formats", None)
    if not isinstance(listed, (list, tuple)):
        return
    for row in counted:
        if row.format not in listed:
            what = "the loss" if row.name == "loss" and row.type == model.loss else f"layer {row.name!r}"
            raise ModelError(f"{model.source}: model {model.name!r} ({what}) is in {row.format}, which profile "
                             f"{profile_name!r} does not list (its formats: {', '.join(listed)}); add {row.format} "
                             f"to the profile's formats or count in a listed one (--format)")

