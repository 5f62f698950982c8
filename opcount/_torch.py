"""The PyTorch frontend (optional extra): an ``nn.Module`` to a ModelIR by running it on meta
tensors.

The module is run twice under a ``TorchFunctionMode`` on meta tensors (shapes only, no
arithmetic, so the cost does not depend on the batch or the model's arithmetic), at two batch
sizes; every torch function call and every call of a standard module is recorded with the
tensors it reads and returns. Comparing the two runs locates the batch axis of every tensor
(also after transpose, permute, reshape, flatten, or when the batch is merged with another
axis, as in ``[B*heads, T, d]``); the IR keeps per-sample shapes, and tensors without a batch
axis (parameters, masks built from constants) are counted once per batch.

Standard modules become one layer each (Linear, Conv*, ConvTranspose*, pools, norms, Embedding,
Dropout, activations, MultiheadAttention with or without ``batch_first`` and ``need_weights``,
LSTM/GRU/RNN with layers, directions and projections; their tuple outputs are followed);
other modules are entered and their torch functions recorded (add, matmul, softmax, F.linear,
F.layer_norm, scaled_dot_product_attention, split/chunk, indexing, ...). A bare ``nn.Parameter``
read by a function becomes a ``parameter`` layer (a class token, a position table, a layer
scale). ``custom_modules={MyBlock: fn}`` counts a module of the user's own with
``fn(module, in_shapes, out_shapes)``, which returns a layer spec (or a list of them, chained)
in the model-spec vocabulary, with per-sample shapes.

Completeness: the IR is complete only if every parameter of the module was attributed to a
counted layer and no call with arithmetic was left uncounted; otherwise ``ModelIR.left_out``
lists what was, the count is marked incomplete and an :class:`IncompleteModelWarning` is
issued.
"""
from __future__ import annotations

import dataclasses
import inspect
import math

from typing import TYPE_CHECKING, Any, Callable, Mapping

from ._ir import INPLACE_TYPES, MODEL_INPUT, ModelError, ModelIR, build_model

if TYPE_CHECKING:
    import torch

__all__ = ["load_torch"]

# The module is run at batch 65521 (a prime): an axis whose size it divides holds the batch (times
# the quotient, when merged with another axis). A tensor with two such axes is ambiguous; then a
# second run at 65519 tells them apart (the batch axis is the one whose size changes).
_BATCHES = (65521, 65519)
# functions whose output has their first input's shape: inside a standard module (whose output
# is all the frontend reads) they are not run, which spares the meta decompositions of the norms
_SAME_SHAPE = frozenset({"batch_norm", "instance_norm", "layer_norm", "group_norm", "rms_norm", "dropout",
                         "alpha_dropout", "feature_alpha_dropout", "dropout1d", "dropout2d", "dropout3d"})


class _Unsupported(Exception):
    """A call that cannot be expressed as a layer: it is recorded as left out."""


# --- recording ----------------------------------------------------------------------------------

def _flat_tensors(value, torch):
    """Tensors in a nested structure of tuples, lists and dicts, in order."""
    out = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            out.append(item)
        elif isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
    return out


class _Event:
    __slots__ = ("kind", "target", "path", "args", "kwargs", "inputs", "outputs", "module", "params", "checkpoint")

    def __init__(self, kind, target, path, args, kwargs, inputs, outputs, module=None, checkpoint=0):
        self.kind, self.target, self.path, self.checkpoint = kind, target, path, checkpoint
        self.args, self.kwargs, self.inputs, self.outputs, self.module = args, kwargs, inputs, outputs, module
        # the (meta) parameters of a module call, read while they are swapped in
        self.params = list(module.parameters()) if module is not None else []


def _record(module, call, args, kwargs, leaf_of, torch):
    """Run ``call(*args, **kwargs)`` (``module`` with meta tensors) and return the recorded
    events and the output tensors."""
    from torch.overrides import TorchFunctionMode

    events = []
    state = {"depth": 0, "active": False, "stack": [], "checkpoint": [], "regions": 0}

    def to_meta(value):
        if isinstance(value, torch.Tensor) and value.device.type != "meta":
            return value.to("meta")
        if isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value):
            return type(value)(to_meta(v) for v in value) if isinstance(value, tuple) else [to_meta(v) for v in value]
        return value

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if not state["active"]:
                return func(*args, **kwargs)
            args = tuple(to_meta(a) for a in args)
            kwargs = {k: to_meta(v) for k, v in kwargs.items()}
            if state["depth"] and getattr(func, "__name__", "") in _SAME_SHAPE and args \
                    and isinstance(args[0], torch.Tensor):
                # the output keeps autograd's view of it: it needs a gradient if an input does
                grad = torch.is_grad_enabled() and any(t.requires_grad for t in _flat_tensors((args, kwargs), torch))
                # not a leaf when it needs a gradient (a leaf would refuse the in-place op that
                # commonly follows, ``ReLU(inplace=True)`` after a BatchNorm)
                return torch.empty_like(args[0], requires_grad=True).clone() if grad else torch.empty_like(args[0])
            out = func(*args, **kwargs)
            if state["depth"] == 0:
                name = getattr(func, "__name__", str(func))
                if name == "__get__":
                    name = getattr(getattr(func, "__self__", None), "__name__", name)
                outputs = _flat_tensors(out, torch)
                if name == "__setitem__" and args and isinstance(args[0], torch.Tensor):
                    outputs = [args[0]]
                events.append(_Event("fn", name, state["stack"][-1] if state["stack"] else "", args, kwargs,
                                     _flat_tensors((args, kwargs), torch), outputs,
                                     checkpoint=state["checkpoint"][-1] if state["checkpoint"] else 0))
            return out

    handles = []
    for path, sub in module.named_modules():
        leaf = leaf_of(sub)

        def pre(m, a, kw, path=path, leaf=leaf):
            if m is module:
                state["active"] = True
            if state["depth"] == 0:
                state["stack"].append(path)
                if leaf:
                    state["depth"] += 1
            elif leaf:
                state["depth"] += 1

        def post(m, a, kw, out, path=path, leaf=leaf):
            if leaf:
                state["depth"] -= 1
            if state["depth"] == 0:
                state["stack"].pop()
                if leaf:
                    events.append(_Event("module", type(m).__name__, path, a, kw, _flat_tensors((a, kw), torch),
                                         _flat_tensors(out, torch), m,
                                         checkpoint=state["checkpoint"][-1] if state["checkpoint"] else 0))
            if m is module:
                state["active"] = False

        handles.append(sub.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(sub.register_forward_hook(post, with_kwargs=True))
    restore = _watch_checkpoints(state)
    try:
        # autograd on, whatever the caller's context: which tensors get a gradient is the
        # module's own (its torch.no_grad regions, detach), never load_torch's caller's
        with torch.inference_mode(False), torch.enable_grad(), torch.device("meta"), Mode():
            output = call(*args, **kwargs)
    finally:
        restore()
        for handle in handles:
            handle.remove()
    return events, _flat_tensors(output, torch)


def _watch_checkpoints(state):
    """Mark the calls made inside ``torch.utils.checkpoint`` regions (``state["checkpoint"]``
    holds ``(number, reentrant)`` of the region being run) by wrapping its reentrant and non-reentrant
    implementations for the length of one recording; returns the function that undoes it."""
    from torch.utils import checkpoint as ckpt
    function = getattr(ckpt, "CheckpointFunction", None)
    generator = getattr(ckpt, "_checkpoint_without_reentrant_generator", None)
    if function is None or generator is None:
        return lambda: None
    forward = function.__dict__["forward"]

    def region(reentrant):
        state["regions"] += 1
        state["checkpoint"].append((state["regions"], reentrant))

    def reentrant(ctx, run_function, preserve_rng_state, *args):
        region(True)
        try:
            return forward.__func__(ctx, run_function, preserve_rng_state, *args)
        finally:
            state["checkpoint"].pop()

    def non_reentrant(*args, **kwargs):
        region(False)
        try:
            yield from generator(*args, **kwargs)
        finally:
            state["checkpoint"].pop()
    function.forward = staticmethod(reentrant)
    ckpt._checkpoint_without_reentrant_generator = non_reentrant

    def restore():
        function.forward = forward
        ckpt._checkpoint_without_reentrant_generator = generator
    return restore


# --- per-sample shapes ----------------------------------------------------------------------------

class _Ref:
    """A tracked tensor: the IR layer that produced it, its per-sample shape, where its batch
    axis is (None: batch-free, counted once per batch) and the batch factor merged into it."""
    __slots__ = ("layer", "shape", "axis", "factor", "full")

    def __init__(self, layer, shape, axis, factor, full):
        self.layer, self.shape, self.axis, self.factor, self.full = layer, shape, axis, factor, full

    @property
    def once(self):
        return self.axis is None


def _batch_axis(a, b, where):
    """``(axis, factor)`` of one tensor from its shape ``a`` at batch ``_BATCHES[0]`` (and ``b`` at
    ``_BATCHES[1]``, or None after a single run); raises ``_Ambiguous`` when one run cannot tell."""
    p = _BATCHES[0]
    if b is None:
        axes = [i for i, d in enumerate(a) if d and d % p == 0]
        if not axes:
            return None, 1
        if len(axes) == 1:
            return axes[0], a[axes[0]] // p
        raise _Ambiguous
    if len(a) != len(b):
        raise ModelError(f"{where}: the rank of a tensor changes with the batch size ({list(a)} vs {list(b)})")
    axes = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if not axes:
        return None, 1
    if len(axes) == 1:
        i = axes[0]
        q = _BATCHES[1]
        if a[i] % p == 0 and b[i] % q == 0 and a[i] // p == b[i] // q:
            return i, a[i] // p
    raise ModelError(f"{where}: cannot find the batch axis of a tensor of shape {list(a)} ({list(b)} at another "
                     "batch size)")


class _Ambiguous(Exception):
    pass


def _per_sample(full, axis, factor):
    if axis is None:
        return tuple(full)
    if factor == 1:
        return tuple(full[:axis]) + tuple(full[axis + 1:])
    return tuple(full[:axis]) + (factor,) + tuple(full[axis + 1:])


# --- the frontend ---------------------------------------------------------------------------------

_FREE = {
    "view", "view_as", "reshape", "reshape_as", "permute", "transpose", "swapaxes", "swapdims", "t", "T", "mT",
    "contiguous", "squeeze", "unsqueeze", "flatten", "unflatten", "narrow", "select", "roll", "flip", "clone",
    "detach", "to", "type", "float", "half", "double", "bfloat16", "bool", "long", "int", "type_as", "pad",
    "masked_fill", "movedim", "moveaxis", "__getitem__", "__setitem__", "index_select", "gather", "take_along_dim",
    "cat", "concat", "concatenate", "stack", "hstack", "vstack", "tril", "triu", "masked_select",
    "data", "zero_", "fill_", "copy_", "new_zeros", "new_ones", "new_full", "new_empty", "zeros_like", "ones_like",
    "empty_like", "full_like", "bitwise_not", "__invert__", "logical_not", "logical_and", "logical_or",
    "__and__", "__or__", "__xor__", "bitwise_and", "bitwise_or", "diagonal", "pixel_shuffle", "pixel_unshuffle",
    "channel_shuffle", "native_channel_shuffle",
}
# new tensors of a given shape (values not read from their input)
_FACTORIES = {"new_zeros", "new_ones", "new_full", "new_empty", "zeros_like", "ones_like", "empty_like", "full_like"}
# copies of their input: the backward sums each element's copies, out - in adds
_TRANSPOSES = {"t", "T", "mT", "transpose", "swapaxes", "swapdims", "permute", "adjoint", "H", "mH"}
_EXPAND = {"expand", "expand_as", "repeat", "broadcast_to", "tile", "repeat_interleave"}
_MULTI = {"split", "chunk", "unbind", "tensor_split", "split_with_sizes", "unsafe_chunk", "unsafe_split"}
_CMP = {"eq", "ne", "lt", "gt", "le", "ge", "__eq__", "__ne__", "__lt__", "__gt__", "__le__", "__ge__",
        "greater", "less", "equal", "not_equal", "greater_equal", "less_equal", "isnan", "isinf"}
# name: (forward per output element, backward per output element); recipe names are priced by
# the profile (their backward recipe in the backward column)
_ELEMENTWISE = {
    "add": ({"add": 1}, {}), "sub": ({"sub": 1}, {"sub": 1}), "rsub": ({"sub": 1}, {"sub": 1}),
    "mul": ({"mul": 1}, {"mul": 1}), "div": ({"div": 1}, {"div": 2, "mul": 1, "sub": 1}),
    "true_divide": ({"div": 1}, {"div": 2, "mul": 1, "sub": 1}), "rdiv": ({"div": 1}, {"div": 2, "mul": 1, "sub": 1}),
    "neg": ({"neg": 1}, {"neg": 1}), "negative": ({"neg": 1}, {"neg": 1}),
    "exp": ({"exp": 1}, {"exp": 1}), "log": ({"log": 1}, {"log": 1}), "erf": ({"erf": 1}, {"erf": 1}),
    "sqrt": ({"sqrt": 1}, {"mul": 1, "div": 1}), "rsqrt": ({"rsqrt": 1}, {"rsqrt": 1}),
    "reciprocal": ({"div": 1}, {"mul": 2, "sub": 1}), "abs": ({"cmp": 1}, {"cmp": 1}),
    "square": ({"mul": 1}, {"mul": 2}), "sigmoid": ({"sigmoid": 1}, {"sigmoid": 1}),
    "tanh": ({"tanh": 1}, {"tanh": 1}), "relu": ({"cmp": 1}, {"cmp": 1}), "relu6": ({"cmp": 2}, {"cmp": 2}),
    "silu": ({"silu": 1}, {"silu": 1}), "hardswish": ({"hardswish": 1}, {"hardswish": 1}),
    "hardsigmoid": ({"hardsigmoid": 1}, {"hardsigmoid": 1}), "maximum": ({"cmp": 1}, {"cmp": 1}),
    "minimum": ({"cmp": 1}, {"cmp": 1}), "clamp_min": ({"cmp": 1}, {"cmp": 1}), "clamp_max": ({"cmp": 1}, {"cmp": 1}),
    "hardtanh": ({"cmp": 2}, {"cmp": 2}), "sign": ({"cmp": 2}, {}), "floor": ({"cmp": 1}, {}), "round": ({"cmp": 1}, {}),
}
_ALIASES = {"__add__": "add", "__radd__": "add", "__iadd__": "add", "__sub__": "sub", "__isub__": "sub",
            "__rsub__": "rsub", "__mul__": "mul", "__rmul__": "mul", "__imul__": "mul", "__truediv__": "div",
            "__itruediv__": "div", "__rtruediv__": "rdiv", "__rdiv__": "rdiv", "__div__": "div", "__idiv__": "div", "__neg__": "neg", "__matmul__": "matmul",
            "__rmatmul__": "rmatmul", "__pow__": "pow", "__rpow__": "rpow", "__abs__": "abs", "divide": "div",
            "multiply": "mul", "subtract": "sub", "clip": "clamp", "amax": "max", "amin": "min",
            "linalg_vector_norm": "vector_norm"}
_ACTIVATIONS = {"relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid"}
_OWNING = {"embedding", "linear", "layer_norm", "rms_norm", "matmul", "bmm", "mm", "rmatmul", "scaled_dot_product_attention",
           "einsum", "baddbmm", "addmm", "addbmm", "instance_norm", "embedding_bag",
           "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell"}
_ACTIVATION_MODULES = {"ReLU": "relu", "ReLU6": "relu6", "Sigmoid": "sigmoid", "Tanh": "tanh", "SiLU": "silu",
                       "Hardswish": "hardswish", "Hardsigmoid": "hardsigmoid"}


def _name_of(target):
    name = _ALIASES.get(target, target)
    if name.endswith("_") and not name.endswith("__") and name[:-1] in _ELEMENTWISE | dict.fromkeys(
            ("clamp", "pow", "masked_fill", "div", "mul", "add", "sub", "leaky_relu")):
        name = name[:-1]
    return _ALIASES.get(name, name)


#: Python's in-place operators (``x += y``): they write their result into their left operand
_INPLACE_OPERATORS = frozenset({"__iadd__", "__isub__", "__imul__", "__itruediv__", "__idiv__", "__ipow__"})


def _in_place(event, torch):
    """The recorded function call writes its result into its first tensor argument and allocates
    no output: an in-place operator (``out += identity``), a method or function whose name ends in
    one underscore (``x.relu_()``, ``F.relu_``, ``x.add_(y)``), or a functional with
    ``inplace=True`` (``F.relu(x, inplace=True)``, ``F.dropout(x, p, training, True)``)."""
    target = event.target
    if target in _INPLACE_OPERATORS or (target.endswith("_") and not target.endswith("__")):
        return True
    if event.kwargs.get("inplace") is True:
        return True
    function = getattr(torch.nn.functional, target, None)
    if event.args and inspect.isfunction(function) and "inplace" in inspect.signature(function).parameters:
        return _bind(function, event.args, event.kwargs).get("inplace") is True
    return False


class _Builder:
    def __init__(self, torch, nn, label, param_names, custom_modules):
        self.torch, self.nn, self.label = torch, nn, label
        self.param_names = param_names          # id(meta tensor) -> parameter name
        self.custom = custom_modules
        self.refs = {}                          # id(tensor) -> _Ref
        self.specs = []
        self.names = set()
        self.attributed = {}                    # parameter name -> layer name
        self.param_layers = {}                  # parameter name -> layer name of its 'parameter' layer
        self.left_out = []
        self.checks = []                        # (layer name, expected per-sample shape)
        self.custom_params = []                 # (first layer, last layer, module params, path)
        self.shared = set()                     # layers reusing parameters another layer owns
        self.grad_in = False                    # the current call reads a tensor that needs a gradient
        self.rnn_states = {}                    # recurrent layer -> {1: its h_n view, 2: its c_n view}
        self.module_params = {}                 # layer of a standard module -> (parameters it owns, class)
        self.param_views = {}                   # id(transposed view of a 2-d parameter) -> (parameter, op, path)
        self.checkpoints = {}                   # non-reentrant checkpoint region -> where its first call is
        self.recompute = False                  # the current call is in a reentrant checkpoint region
        self.reused = set()                     # layers whose parameters a later call reuses
        self.format = None                      # the number format of the current call's result

    # names ------------------------------------------------------------------------------------
    def unique(self, base):
        base = base or "layer"
        name, i = base, 1
        while name in self.names or name == MODEL_INPUT:
            name = f"{base}_{i}"
            i += 1
        self.names.add(name)
        return name

    # tensors ----------------------------------------------------------------------------------
    def ref(self, tensor):
        return self.refs.get(id(tensor))

    def is_param(self, tensor):
        return id(tensor) in self.param_names

    def param_ref(self, tensor):
        """The layer of a bare parameter read as a tensor, created at its first use."""
        pname = self.param_names[id(tensor)]
        layer = self.param_layers.get(pname)
        if layer is None:
            owner = self.attributed.get(pname)
            layer = self.unique(pname)
            self.param_layers[pname] = layer
            shape = [int(d) for d in tensor.shape]
            if owner is not None:        # already owned by a layer: a shared read, no new parameters
                self.specs.append({"type": "shape_op", "name": layer, "inputs": [owner], "out_shape": shape or [1],
                                   "op": "parameter", "once": True})
            else:
                self.attributed[pname] = layer
                # a 0-d parameter (a learned temperature, CLIP's logit_scale) is held as [1]
                self.specs.append({"type": "parameter", "name": layer, "inputs": [MODEL_INPUT], "shape": shape or [1]})
            self.checks.append((layer, tuple(shape)))
        return _Ref(layer, tuple(int(d) for d in tensor.shape), None, 1, tuple(tensor.shape))

    def tracked(self, tensor):
        """The _Ref of a tensor that carries data through the model (a layer's output or a bare
        parameter, or a transposed view of one), or None for constants."""
        ref = self.ref(tensor)
        if ref is None and self.is_param(tensor):
            ref = self.param_ref(tensor)
        if ref is None and id(tensor) in self.param_views:
            # a transposed weight read other than by a product: the parameter and a free view
            param, op, path = self.param_views.pop(id(tensor))
            shape = tuple(int(d) for d in tensor.shape)
            ref = self.add({"type": "shape_op", "op": op, "out_shape": list(shape), "once": True,
                            "once_inputs": [True]}, [self.param_ref(param)], tensor, (shape, None, 1, shape), path)
        return ref

    def live(self, tensor):
        """The tensor carries data (a layer's output, a parameter or a view of one)."""
        return self.ref(tensor) is not None or self.is_param(tensor) or id(tensor) in self.param_views

    def own(self, tensors, layer):
        """Attribute parameters to ``layer``; returns the count newly attributed (0 for a
        parameter already owned: a shared weight)."""
        total = 0
        for t in tensors:
            if t is None or not self.is_param(t):
                continue
            pname = self.param_names[id(t)]
            if pname not in self.attributed:
                self.attributed[pname] = layer
                total += t.numel()
        return total

    # layers -------------------------------------------------------------------------------------
    def add(self, spec, inputs, out_tensor, out_ref, path_name=None):
        """Append a layer ``spec`` reading the layers of ``inputs``, producing ``out_tensor``; a
        tensor autograd gives no gradient although the call read one that has (``detach``,
        ``.data``, ``torch.no_grad``, a comparison) makes a ``no_grad`` layer."""
        name = self.unique(path_name)
        spec = dict(spec)
        if self.grad_in and out_tensor is not None and not out_tensor.requires_grad:
            spec["no_grad"] = True
        if self.recompute:
            spec["recompute"] = True
        if self.format is not None and "format" not in spec:
            spec["format"] = self.format
        spec["name"] = name
        spec["inputs"] = [r.layer for r in inputs] or [MODEL_INPUT]
        self.specs.append(spec)
        ref = _Ref(name, out_ref[0], out_ref[1], out_ref[2], out_ref[3])
        if out_tensor is not None:
            self.refs[id(out_tensor)] = ref
        self.checks.append((name, ref.shape))
        return ref

    def leave(self, what, type_, reason, params=0):
        self.left_out.append((what, type_, reason, params))

    def reuse(self, layer, type_, first, reason):
        """``layer`` uses parameters that layer ``first`` owns, in a way not counted exactly:
        left out for ``reason``, and both marked (``shared``, ``reused``)."""
        self.leave(layer, type_, reason)
        self.shared.add(layer)
        self.reused.add(first)


def _axis(ref, dim, where):
    """The per-sample axis of real axis ``dim`` of ``ref``'s tensor."""
    rank = len(ref.full)
    if dim < 0:
        dim += rank
    if not 0 <= dim < rank:
        raise _Unsupported(f"axis {dim} out of range")
    if ref.axis is None:
        return dim
    if dim == ref.axis:
        if ref.factor == 1:
            raise _Unsupported("reduces or normalizes over the batch axis")
        raise _Unsupported("works along the axis the batch is merged into")
    return dim - 1 if (dim > ref.axis and ref.factor == 1) else dim


def _bind(function, args, kwargs):
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return dict(kwargs)
    out = dict(bound.arguments)
    out.update(out.pop("kwargs", {}) or {})
    return out


def _module_spec(b, m, event, ins):
    """Layer spec and IR inputs of a standard module call (module event)."""
    nn = b.nn
    x = ins[0] if ins else None
    kind = type(m).__name__
    if x is None:
        raise _Unsupported("no tracked tensor input")

    def batch_first_axis():
        if x.axis != 0 or x.factor != 1:
            raise _Unsupported(f"{kind} needs the batch on axis 0 (found it on axis {x.axis})")

    if isinstance(m, nn.Linear):
        return {"type": "linear", "out": m.out_features, "bias": m.bias is not None}, [x]
    for prefix, base in (("conv", nn.modules.conv._ConvNd),):
        if isinstance(m, base):
            batch_first_axis()
            nd = len(m.kernel_size)
            padding = m.padding
            if padding == "valid":
                padding = [0] * nd
            transposed = isinstance(m, nn.modules.conv._ConvTransposeNd)
            if m.padding_mode != "zeros":
                if transposed:
                    raise _Unsupported(f"padding_mode {m.padding_mode!r}")
                # F.pad in that mode (copies; their gradients add back), then the convolution unpadded
                rp = list(m._reversed_padding_repeated_twice)
                grow = [rp[2 * (nd - 1 - i)] + rp[2 * (nd - 1 - i) + 1] for i in range(nd)]
                shape = (x.shape[0],) + tuple(d + g for d, g in zip(x.shape[1:], grow))
                x = b.add({"type": "shape_op", "op": f"pad ({m.padding_mode})", "out_shape": list(shape),
                           "grad": "broadcast"}, [x], None, (shape, 0, 1, None),
                          f"{event.path}.pad" if event.path else "pad")
                padding = [0] * nd
            spec = {"type": f"conv_transpose{nd}d" if transposed else f"conv{nd}d", "out": m.out_channels,
                    "kernel": list(m.kernel_size), "stride": list(m.stride),
                    "padding": padding if padding == "same" else list(padding), "dilation": list(m.dilation),
                    "groups": m.groups, "bias": m.bias is not None}
            if transposed:
                spec["output_padding"] = list(m.output_padding)
            return spec, [x]
    pools = {"MaxPool": "maxpool", "AvgPool": "avgpool"}
    for stem, prefix in pools.items():
        if kind.startswith(stem) and kind[-2:] in ("1d", "2d", "3d"):
            batch_first_axis()
            nd = int(kind[-2])
            tup = (lambda v: list(v) if isinstance(v, (tuple, list)) else [v] * nd)
            spec = {"type": f"{prefix}{nd}d", "kernel": tup(m.kernel_size),
                    "stride": tup(m.stride if m.stride is not None else m.kernel_size), "padding": tup(m.padding),
                    "ceil_mode": bool(m.ceil_mode)}
            if prefix == "maxpool":
                spec["dilation"] = tup(m.dilation)
            elif not m.count_include_pad and any(tup(m.padding)):
                raise _Unsupported("count_include_pad=False with padding")
            return spec, [x]
    for stem, prefix in (("AdaptiveAvgPool", "adaptive_avgpool"), ("AdaptiveMaxPool", "adaptive_maxpool")):
        if kind.startswith(stem) and kind[-2:] in ("1d", "2d", "3d"):
            batch_first_axis()
            nd = int(kind[-2])
            size = m.output_size if isinstance(m.output_size, (tuple, list)) else [m.output_size] * nd
            in_spatial = x.shape[1:]
            return {"type": f"{prefix}{nd}d", "out": [s if o is None else o for o, s in zip(size, in_spatial)]}, [x]
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        batch_first_axis()
        return {"type": "batchnorm", "affine": m.affine, "eps": m.eps}, [x]
    if isinstance(m, nn.LayerNorm):
        spec = {"type": "layernorm", "dims": len(m.normalized_shape), "affine": m.elementwise_affine, "eps": m.eps}
        if m.elementwise_affine:           # the field exists only with an affine (no weight: no bias either)
            spec["bias"] = m.bias is not None
        return spec, [x]
    if hasattr(nn, "RMSNorm") and isinstance(m, nn.RMSNorm):
        return {"type": "rmsnorm", "dims": len(m.normalized_shape), "affine": m.elementwise_affine}, [x]
    if isinstance(m, nn.GroupNorm):
        batch_first_axis()
        return {"type": "groupnorm", "groups": m.num_groups, "affine": m.affine, "eps": m.eps}, [x]
    if isinstance(m, nn.Embedding):
        if m.max_norm is not None:
            raise _Unsupported("Embedding with max_norm")
        return {"type": "embedding", "vocab": m.num_embeddings, "dim": m.embedding_dim}, [x]
    if isinstance(m, nn.modules.dropout._DropoutNd):
        return {"type": "dropout", "p": m.p}, [x]
    if kind in _ACTIVATION_MODULES and type(m).__module__.startswith("torch.nn"):
        return {"type": _ACTIVATION_MODULES[kind]}, [x]
    if isinstance(m, nn.LeakyReLU):
        return {"type": "leaky_relu", "slope": m.negative_slope}, [x]
    if isinstance(m, nn.GELU):
        return {"type": "gelu", "approximate": m.approximate}, [x]
    if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
        dim = -1 if m.dim is None else m.dim
        return {"type": "softmax" if isinstance(m, nn.Softmax) else "log_softmax",
                "axis": _axis(x, dim, "")}, [x]
    if kind == "StochasticDepth" and hasattr(m, "p") and hasattr(m, "mode"):
        return {"type": "stochastic_depth", "p": m.p, "mode": m.mode}, [x]
    if isinstance(m, nn.MultiheadAttention):
        return _mha_spec(b, m, event)
    if isinstance(m, nn.RNNBase):
        return _rnn_spec(b, m, event)
    raise _Unsupported(f"no formula for {kind}")


def _mha_spec(b, m, event):
    if m.bias_k is not None or m.add_zero_attn:
        raise _Unsupported("MultiheadAttention with add_bias_kv or add_zero_attn")
    a = _bind(type(m).forward, (m,) + tuple(event.args), event.kwargs)
    q, k, v = a.get("query"), a.get("key"), a.get("value")
    refs = [b.tracked(t) for t in (q, k, v)]
    if any(r is None for r in refs):
        raise _Unsupported("a query, key or value without a batch")
    if k is q and v is q:
        inputs = refs[:1]
    elif v is k:
        inputs = refs[:2]
    else:
        inputs = refs
    masks = sum(a.get(key) is not None for key in ("attn_mask", "key_padding_mask"))
    spec = {"type": "attention", "heads": m.num_heads, "bias": m.in_proj_bias is not None,
            "dropout": float(m.dropout)}
    if masks:
        spec.update(mask="additive", masks=masks)
    elif a.get("is_causal"):
        spec["causal"] = True
    if a.get("need_weights", True):
        spec["weights"] = "mean" if a.get("average_attn_weights", True) else "heads"
    return spec, inputs


def _rnn_spec(b, m, event):
    kind = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}.get(type(m).__name__)
    if kind is None or not isinstance(event.args[0], b.torch.Tensor):
        raise _Unsupported(f"{type(m).__name__} (packed sequences are not supported)")
    x = b.tracked(event.args[0])
    spec = {"type": kind, "hidden": m.hidden_size, "layers": m.num_layers, "bidirectional": m.bidirectional,
            "bias": m.bias, "dropout": float(m.dropout)}
    if kind == "lstm" and m.proj_size:
        spec["proj"] = m.proj_size
    if kind == "rnn":
        spec["nonlinearity"] = m.nonlinearity
    inputs = [x]
    hx = event.args[1] if len(event.args) > 1 else event.kwargs.get("hx")
    states = list(hx) if isinstance(hx, (tuple, list)) else ([hx] if hx is not None else [])
    for state in states:
        ref = b.tracked(state)
        if ref is None:            # a constant initial state: counted like zeros, no gradient
            break
        inputs.append(ref)
    if len(states) == 2 and len(inputs) == 2:
        raise _Unsupported("an LSTM whose h0 is computed and c0 constant")
    return spec, inputs


def _fn_spec(b, name, event, ins):
    """Layer spec and IR inputs of a recorded torch function; None for a free call."""
    torch = b.torch
    args, kwargs = event.args, event.kwargs
    out_ref = b._out
    tensor_args = [a for a in args if isinstance(a, torch.Tensor)]
    x = ins[0] if ins else None
    if name in ("linear",):
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        bias = args[2] if len(args) > 2 else kwargs.get("bias")
        xr = b.ref(args[0])
        if xr is None or not b.is_param(weight):
            raise _Unsupported("F.linear with a computed weight")
        return {"type": "linear", "out": int(weight.shape[0]), "bias": bias is not None,
                "_own": [weight, bias]}, [xr]
    if name in ("matmul", "bmm", "mm", "rmatmul"):
        first, second = (tensor_args[1], tensor_args[0]) if name == "rmatmul" else (tensor_args[0], tensor_args[1])
        ra, rb = b.ref(first), b.ref(second)
        if ra is not None and rb is None and b.is_param(second) and second.dim() == 2:
            # x @ W with a bare weight: a linear layer without bias
            return {"type": "linear", "out": int(second.shape[1]), "bias": False, "_weight_t": True,
                    "_own": [second]}, [ra]
        if ra is not None and rb is None and id(second) in b.param_views:
            # x @ W.t() (a tied output layer: h @ wte.weight.T): a linear layer owning W
            weight = b.param_views[id(second)][0]
            return {"type": "linear", "out": int(second.shape[1]), "bias": False, "_own": [weight]}, [ra]
        ra = ra or (b.param_ref(first) if b.is_param(first) else None)
        rb = rb or (b.param_ref(second) if b.is_param(second) else None)
        if ra is None or rb is None or ra.once or rb.once:
            raise _Unsupported("a product with a constant or batch-free operand")
        return {"type": "matmul"}, [ra, rb]
    if name == "scaled_dot_product_attention":
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")
        a = dict(zip(names, args))
        a.update(kwargs)
        refs = [b.tracked(a.get(k)) if a.get(k) is not None else None for k in ("query", "key", "value")]
        if any(r is None or r.once or len(r.shape) != 3 for r in refs):
            raise _Unsupported("attention inputs must be [batch, heads, length, head_dim]")
        if a.get("dropout_p", 0):
            raise _Unsupported("scaled_dot_product_attention with dropout_p")
        spec = {"type": "sdpa"}
        if a.get("attn_mask") is not None:
            spec["mask"] = "additive"
        elif a.get("is_causal"):
            spec["causal"] = True
        return spec, refs
    pool = _POOL_FUNCTION.match(name)
    if pool:
        return _pool_spec(b, pool, event), [x]
    if name in ("layer_norm", "rms_norm"):
        a = _bind(getattr(torch.nn.functional, name), args, kwargs)
        weight, bias = a.get("weight"), a.get("bias")
        if (weight is not None and not b.is_param(weight)) or (bias is not None and not b.is_param(bias)):
            raise _Unsupported(f"{name} with a computed weight")
        dims = len(a.get("normalized_shape"))
        if name == "layer_norm":
            spec = {"type": "layernorm", "dims": dims, "affine": weight is not None}
            if weight is not None:
                spec["bias"] = bias is not None
        else:
            spec = {"type": "rmsnorm", "dims": dims, "affine": weight is not None}
        if weight is None and bias is not None:
            raise _Unsupported("layer_norm with a bias and no weight")
        spec["_own"] = [weight, bias]
        x = b.tracked(args[0])
        if x is None:
            raise _Unsupported(f"{name} of a constant")
        return spec, [x]
    if name == "cumsum":
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if dim is None or x is None:
            raise _Unsupported("cumsum without dim")
        spec = {"type": "cumsum", "axis": _axis(x, dim, "")}
        if x.once:
            spec["once"] = True
        return spec, [x]
    if name == "instance_norm":
        # each channel of each sample normalized over its positions: group norm with one group per channel
        a = _bind(torch.nn.functional.instance_norm, args, kwargs)
        weight, bias = a.get("weight"), a.get("bias")
        x = b.ref(args[0])
        if x is None or x.axis != 0 or x.factor != 1 or not a.get("use_input_stats", True):
            raise _Unsupported("instance_norm with running statistics or the batch off axis 0")
        if (weight is None) != (bias is None) or any(t is not None and not b.is_param(t) for t in (weight, bias)):
            raise _Unsupported("instance_norm with a computed or partial affine")
        return {"type": "groupnorm", "groups": int(x.shape[0]), "affine": weight is not None,
                "eps": a.get("eps", 1e-5), "_own": [weight, bias]}, [x]
    if name == "embedding":
        ids, weight = (args + (None, None))[:2] if len(args) >= 2 else (args[0], kwargs.get("weight"))
        x = b.ref(ids)
        if not b.is_param(weight) or weight.dim() != 2:
            raise _Unsupported("F.embedding with a computed table")
        if x is None:
            raise _Unsupported("F.embedding of constant ids")
        return {"type": "embedding", "vocab": int(weight.shape[0]), "dim": int(weight.shape[1]),
                "_own": [weight]}, [x]
    if name in ("interpolate", "upsample", "upsample_nearest"):
        mode = kwargs.get("mode", args[3] if len(args) > 3 else "nearest")
        src = b.tracked(args[0])
        if mode != "nearest" or src is None or src.once:
            raise _Unsupported(f"no formula for {name} mode {mode!r}")
        if any(o % i for o, i in zip(out_ref[0][1:], src.shape[1:])):
            raise _Unsupported(f"{name} by a non-integer factor")
        # nearest by integer factors: copies forward; backward sums each source's copies
        return {"type": "shape_op", "op": name, "out_shape": list(out_ref[0]), "grad": "broadcast"}, [src]
    if name in ("softmax", "log_softmax"):
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if dim is None:
            raise _Unsupported("softmax without dim")
        return {"type": name, "axis": _axis(x, dim, "")}, [x]
    if name == "gelu":
        return {"type": "gelu", "approximate": kwargs.get("approximate", "none")}, [x]
    if name == "leaky_relu":
        return {"type": "leaky_relu", "slope": kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)}, [x]
    if name == "dropout" or name in ("dropout1d", "dropout2d", "dropout3d", "alpha_dropout"):
        p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
        return {"type": "dropout", "p": p}, [x]
    if name in ("mean", "sum", "max", "min", "argmax", "argmin", "nansum", "logsumexp", "var", "std"):
        if name in ("nansum", "logsumexp", "var", "std"):
            raise _Unsupported(f"no formula for {name}")
        kind = {"argmax": "max", "argmin": "min"}.get(name, name)
        if name in ("max", "min") and len(tensor_args) == 2:
            return _elementwise_spec(b, "maximum", ins, event)
        if out_ref[1] is None and not x.once:
            raise _Unsupported("reduces over the batch axis")
        spec = {"type": "reduce", "kind": kind, "out_shape": list(out_ref[0]) or [1]}
        if x.once:
            spec["once"] = True
        return spec, [x]
    if name == "pow" or name == "rpow":
        exponent = args[1] if len(args) > 1 else kwargs.get("exponent")
        if name == "pow" and not isinstance(exponent, torch.Tensor) and exponent in (2, 2.0):
            return _elementwise_spec(b, "square", ins, event)
        if name == "pow" and not isinstance(exponent, torch.Tensor) and exponent == 0.5:
            return _elementwise_spec(b, "sqrt", ins, event)
        # exponents PyTorch computes without exp and log (ATen's pow kernel: x*x*x, 1/x,
        # rsqrt); the backward grad * n * x^(n-1): x^2 (1 mul), times n, times grad
        if name == "pow" and not isinstance(exponent, torch.Tensor) and exponent in (3, -1, -0.5):
            if exponent == 3:
                return _elementwise_spec(b, None, ins, event, ops=({"mul": 2}, {"mul": 3}))
            return _elementwise_spec(b, "reciprocal" if exponent == -1 else "rsqrt", ins, event)
        return _elementwise_spec(b, None, ins, event, ops=({"log": 1, "mul": 1, "exp": 1}, {"mul": 2, "div": 1}))
    if name == "clamp":
        bounds = [v for v in list(args[1:3]) + [kwargs.get("min"), kwargs.get("max")] if v is not None]
        n = len(bounds)
        return _elementwise_spec(b, None, ins, event, ops=({"cmp": n}, {"cmp": n}))
    if name in _CMP:
        return _elementwise_spec(b, None, ins, event, ops=({"cmp": 1}, {}))
    if name == "where":
        # a select, free; each value operand's gradient is the output's where it was chosen
        # (zeros elsewhere), summed back where it was broadcast
        return _elementwise_spec(b, None, ins, event, ops=({}, {}))
    if name in _ELEMENTWISE:
        return _elementwise_spec(b, name, ins, event)
    raise _Unsupported(f"no formula for {name}")


_POOL_FUNCTION = __import__("re").compile(r"^(adaptive_)?(max|avg)_pool([123])d(_with_indices)?$")


def _pool_spec(b, match, event):
    """``F.max_pool2d``, ``F.avg_pool1d``, ``F.adaptive_avg_pool2d``, ... as the pooling layers
    their modules are."""
    adaptive, kind, nd = bool(match.group(1)), match.group(2), int(match.group(3))
    x = b.ref(event.args[0]) if event.args else None
    out = b._out
    if x is None or x.axis != 0 or x.factor != 1 or len(x.full) != nd + 2:
        raise _Unsupported(f"{event.target} needs a batched input with the batch on axis 0")
    prefix = "maxpool" if kind == "max" else "avgpool"
    if adaptive:
        return {"type": f"adaptive_{prefix}{nd}d", "out": list(out[0][1:])}
    names = ("input", "kernel_size", "stride", "padding") + (
        ("dilation", "ceil_mode", "return_indices") if kind == "max" else
        ("ceil_mode", "count_include_pad", "divisor_override"))
    a = dict(zip(names, event.args))
    a.update(event.kwargs)
    tup = (lambda v: [int(d) for d in v] if isinstance(v, (tuple, list)) else [int(v)] * nd)
    kernel = tup(a["kernel_size"])
    stride = a.get("stride")
    spec = {"type": f"{prefix}{nd}d", "kernel": kernel, "stride": tup(stride) if stride not in (None, [], ()) else kernel,
            "padding": tup(a.get("padding", 0)), "ceil_mode": bool(a.get("ceil_mode", False))}
    if kind == "max":
        spec["dilation"] = tup(a.get("dilation", 1))
    elif a.get("divisor_override") is not None or (not a.get("count_include_pad", True) and any(spec["padding"])):
        raise _Unsupported(f"{event.target} with divisor_override, or count_include_pad=False with padding")
    return spec


def _einsum_letters(equation, ranks):
    """The subscripts of each operand and of the output of an einsum ``equation`` (``...``
    expanded to letters of their own, an implicit output made explicit), for operands of
    ``ranks``."""
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise _Unsupported("einsum: the equation and the operands differ in number")
    spare = iter(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in equation)
    ellipsis = ""
    out = []
    for term, rank in zip(terms, ranks):
        if "..." in term:
            n = rank - len(term) + 3
            if not ellipsis or len(ellipsis) < n:
                ellipsis = ellipsis + "".join(next(spare) for _ in range(n - len(ellipsis)))
            term = term.replace("...", ellipsis[len(ellipsis) - n:] if n else "")
        if len(term) != rank:
            raise _Unsupported("einsum: a subscript does not match its operand's rank")
        out.append(term)
    if arrow:
        result = rhs.replace("...", ellipsis)
    else:
        counts = {}
        for term in out:
            for c in term:
                counts[c] = counts.get(c, 0) + 1
        result = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis))
    return out, result


def _einsum(b, event, out_refs):
    """A two-operand einsum as the batched matrix product it is: letters in both operands and
    the output are batch axes, in one operand and the output rows or columns, in both operands
    only the contracted axes; per sample it is a ``matmul`` of ``[batch, M, K]`` by
    ``[batch, K, N]`` between free views (or, with a bare weight holding only contracted and
    column letters, a ``linear`` layer without bias). Other forms are left out."""
    torch = b.torch
    equation = event.args[0] if event.args and isinstance(event.args[0], str) else None
    operands = [a for a in event.args[1:] if isinstance(a, torch.Tensor)]
    if len(event.args) == 2 and isinstance(event.args[1], (tuple, list)):
        operands = list(event.args[1])
    if equation is None or len(operands) != 2 or not all(isinstance(t, torch.Tensor) for t in operands):
        raise _Unsupported("einsum of other than two tensor operands")
    (ta, tb), out = operands, out_refs[0]
    (la, lb), lc = _einsum_letters(equation, [ta.dim(), tb.dim()])
    if len(set(la)) != len(la) or len(set(lb)) != len(lb) or len(set(lc)) != len(lc):
        raise _Unsupported("einsum with a repeated subscript (a diagonal)")
    if set(lc) - set(la) - set(lb) or (set(la) ^ set(lb)) - set(lc):
        raise _Unsupported("einsum summing an axis of one operand alone")
    size = {c: int(d) for term, t in ((la, ta), (lb, tb)) for c, d in zip(term, t.shape)}
    ra, rb = b.ref(ta), b.ref(tb)
    weight = None
    if ra is not None and rb is None and b.is_param(tb):
        weight = tb
    elif rb is not None and ra is None and b.is_param(ta):
        weight = ta
    if (weight is None and (ra is None or rb is None)) or any(r is not None and r.factor != 1 for r in (ra, rb)) \
            or (out[1] is not None and out[2] != 1):
        raise _Unsupported("einsum with a constant operand or a merged batch axis")
    batch_letter = None
    for ref, term in ((ra, la), (rb, lb)):
        if ref is not None and ref.axis is not None:
            if batch_letter not in (None, term[ref.axis]):
                raise _Unsupported("einsum pairing two samples' batch axes")
            batch_letter = term[ref.axis]
    if batch_letter is None or out[1] is None or lc[out[1]] != batch_letter:
        raise _Unsupported("einsum without a batch axis in its output")
    per = {c: n for c, n in size.items() if c != batch_letter}
    both = [c for c in la if c in lb]
    batch = [c for c in both if c in lc and c != batch_letter]
    k = [c for c in both if c not in lc]
    m = [c for c in la if c not in lb and c != batch_letter]
    n = [c for c in lb if c not in la and c != batch_letter]
    dims = (lambda letters: math.prod(per[c] for c in letters))
    path = f"{event.path}.einsum" if event.path else "einsum"
    if weight is not None:
        x, tw, lx, lw = (ra, tb, la, lb) if weight is tb else (rb, ta, lb, la)
        rows = [c for c in lx if c not in lw and c != batch_letter]
        cols = [c for c in lw if c not in lx]
        if batch or set(lw) != set(k) | set(cols):
            raise _Unsupported("einsum with a weight sharing a batch axis")
        first_shared = b.param_names[id(tw)] in b.attributed
        view = b.add({"type": "shape_op", "op": "einsum view", "out_shape": [dims(rows) or 1, dims(k)]}, [x],
                     None, ((dims(rows) or 1, dims(k)), 0, 1, None), path)
        layer = b.add({"type": "linear", "out": dims(cols), "bias": False}, [view], None,
                      ((dims(rows) or 1, dims(cols)), 0, 1, None), path)
        if first_shared:
            first = b.attributed[b.param_names[id(tw)]]
            b.reuse(layer.layer, "einsum", first,
                    f"reuses the weight of {first!r}: the repeated use's weight gradient is not counted")
        b.own([tw], layer.layer)
        product_shape = (dims(rows) or 1, dims(cols))
    else:
        if ra.once or rb.once:
            raise _Unsupported("einsum of a per-sample tensor with a constant or batch-free one")
        shape_a = ((dims(batch),) if batch else ()) + (dims(m), dims(k))
        shape_b = ((dims(batch),) if batch else ()) + (dims(k), dims(n))
        va = b.add({"type": "shape_op", "op": "einsum view", "out_shape": list(shape_a)}, [ra], None,
                   (shape_a, 0, 1, None), path)
        vb = b.add({"type": "shape_op", "op": "einsum view", "out_shape": list(shape_b)}, [rb], None,
                   (shape_b, 0, 1, None), path)
        product_shape = shape_a[:-1] + (shape_b[-1],)
        if k:
            layer = b.add({"type": "matmul"}, [va, vb], None, (product_shape, 0, 1, None), path)
        else:
            # nothing contracted (an outer or elementwise product): torch multiplies, 1 mul per
            # output element, no accumulation (FlopCounterMode sees no matrix product either);
            # each operand's gradient is dy times the other, summed back where it was broadcast
            layer = b.add({"type": "elementwise", "op": "einsum product", "ops": {"mul": 1},
                           "backward": {"mul": 2}, "backward_inputs": [{"mul": 1}, {"mul": 1}],
                           "out_shape": list(product_shape)}, [va, vb], None, (product_shape, 0, 1, None), path)
    b.add({"type": "shape_op", "op": "einsum", "out_shape": list(out[0]) or [1]}, [layer], event.outputs[0], out,
          path)


def _embedding_bag(b, event, out_refs):
    """``F.embedding_bag`` of fixed-length bags (2-d ids, no offsets) in mode sum or mean: the
    lookup (an ``embedding`` layer on ``[L]`` ids) and the reduction over the L rows of each bag
    (a ``reduce`` layer). Mode max (its gradient goes to one row per dimension), offsets,
    per-sample weights, max_norm and padding_idx are left out."""
    a = _bind(b.torch.nn.functional.embedding_bag, event.args, event.kwargs)
    ids, weight, mode = a.get("input"), a.get("weight"), a.get("mode", "mean")
    x = b.ref(ids)
    if x is None or not b.is_param(weight) or weight.dim() != 2 or ids.dim() != 2 or x.axis != 0 or x.factor != 1:
        raise _Unsupported("embedding_bag other than of [batch, L] ids and a table")
    if mode not in ("sum", "mean") or any(a.get(k) is not None for k in ("offsets", "per_sample_weights",
                                                                          "max_norm", "padding_idx")):
        raise _Unsupported(f"embedding_bag with mode {mode!r}, offsets, per-sample weights, max_norm or padding_idx")
    path = f"{event.path}.embedding_bag" if event.path else "embedding_bag"
    shared = b.param_names[id(weight)] in b.attributed
    rows = (int(ids.shape[1]), int(weight.shape[1]))
    lookup = b.add({"type": "embedding", "vocab": int(weight.shape[0]), "dim": int(weight.shape[1])}, [x], None,
                   (rows, 0, 1, None), path)
    if shared:
        first = b.attributed[b.param_names[id(weight)]]
        b.reuse(lookup.layer, "embedding_bag", first,
                f"reuses the table of {first!r}: the repeated use's gradient is not counted")
    b.own([weight], lookup.layer)
    out = out_refs[0]
    b.add({"type": "reduce", "kind": mode, "out_shape": list(out[0])}, [lookup], event.outputs[0], out, path)


def _addmm(b, event, out_refs):
    """``baddbmm``/``addmm``: ``beta * input + alpha * (A @ B)``, a ``matmul`` of two per-sample
    operands and an elementwise layer adding the input (1 add per output element, 1 mul for each
    of alpha and beta that is not 1, forward and backward; nothing added when beta is 0)."""
    torch = b.torch
    a = dict(zip(("input", "mat1", "mat2"), event.args))
    a.update(event.kwargs)
    first, second = a.get("mat1", a.get("batch1")), a.get("mat2", a.get("batch2"))
    ra, rb = (b.ref(t) if isinstance(t, torch.Tensor) else None for t in (first, second))
    if event.target == "addmm" and ra is not None and rb is None and isinstance(second, torch.Tensor):
        linear = _addmm_linear(b, event, a, ra, second, out_refs)
        if linear:
            return
    if ra is None or rb is None or ra.once or rb.once:
        raise _Unsupported(f"{event.target} of a constant or batch-free operand")
    alpha, beta = a.get("alpha", 1), a.get("beta", 1)
    if isinstance(alpha, torch.Tensor) or isinstance(beta, torch.Tensor):
        raise _Unsupported(f"{event.target} with tensor alpha or beta")
    out = out_refs[0]
    path = f"{event.path}.{event.target}" if event.path else event.target
    product = b.add({"type": "matmul"}, [ra, rb], None if beta else event.outputs[0],
                    (out[0], out[1], out[2], None), path)
    if not beta:
        if alpha != 1:
            raise _Unsupported(f"{event.target} with beta 0 and alpha {alpha}")
        return
    src = a.get("input")
    rs = b.tracked(src) if isinstance(src, torch.Tensor) else None
    scalars = (alpha != 1) + (beta != 1)
    ins = [product] + ([rs] if rs is not None else [])
    spec = {"type": "elementwise", "op": event.target, "ops": {"add": 1, "mul": scalars}, "backward": {"mul": scalars},
            "out_shape": list(out[0]) or [1]}
    if any(r.once for r in ins):
        spec["once_inputs"] = [r.once for r in ins]
    b.add(spec, ins, event.outputs[0], out, path)


def _norm_chain(b, name, event, out_refs):
    """``var``/``std`` (two-pass: mean, x - mean, square, sum, / (n - correction), sqrt for std),
    ``norm``/``linalg.vector_norm`` with p = 2 (square, sum, sqrt) and ``F.normalize`` with p = 2
    (that norm kept per row, clamped to eps from below, x / norm) over per-sample axes, written as
    the elementwise and reduce layers they are made of, so their backward follows autograd's
    through each step. Other orders p, reductions over the batch axis and batch-free inputs are
    left out."""
    torch = b.torch
    function = {"var": torch.var, "std": torch.std, "normalize": torch.nn.functional.normalize,
                "norm": torch.norm, "vector_norm": torch.linalg.vector_norm}[name]
    if name in ("var", "std", "vector_norm"):
        # builtins without a signature: (input, dim | unbiased, ...) and (input, ord, dim, keepdim)
        a = dict(event.kwargs)
        rest = list(event.args[1:])
        if name == "vector_norm":
            a.update(zip(("ord", "dim", "keepdim"), rest))
        elif rest and isinstance(rest[0], bool):
            a.setdefault("unbiased", rest[0])
        elif rest:
            a.update(zip(("dim", "unbiased" if len(rest) > 1 and isinstance(rest[1], bool) else "correction",
                          "keepdim"), rest))
    else:
        a = _bind(function, event.args, event.kwargs)
    src = event.args[0] if event.args and isinstance(event.args[0], torch.Tensor) else a.get("input")
    x = b.ref(src) if isinstance(src, torch.Tensor) else None
    if x is None or x.once:
        raise _Unsupported(f"{name} of a constant or batch-free tensor")
    order = a.get("p", a.get("ord", 2)) if name != "var" and name != "std" else 2
    if order not in (2, 2.0, "fro", None) or a.get("dtype") is not None or a.get("out") is not None:
        raise _Unsupported(f"{name} other than the 2-norm")
    dim = a.get("dim", 1 if name == "normalize" else None)
    if dim is None:
        raise _Unsupported(f"{name} over every axis (the batch axis included)")
    dims = [dim] if isinstance(dim, int) else list(dim)
    axes = {_axis(x, d, "") for d in dims}
    kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    count = math.prod(x.shape[i] for i in axes)
    out = out_refs[0]
    path = f"{event.path}.{name}" if event.path else name
    steps = []
    # computed without gradient (torch.no_grad, a detached input): no step runs a backward
    stopped = b.grad_in and not event.outputs[0].requires_grad

    def step(spec, inputs, shape):
        spec = dict(spec, out_shape=list(shape) or [1])
        if stopped:
            spec["no_grad"] = True
        ref = b.add(spec, inputs, None, (tuple(shape), 0, 1, None), path)
        steps.append(ref)
        return ref
    if name in ("var", "std"):
        correction = a.get("correction")
        if correction is None:
            correction = 1 if a.get("unbiased", True) is not False else 0
        # torch's var backward is 2 (x - mean) dy / (n - correction): no gradient through the mean
        mean = step({"type": "reduce", "kind": "mean", "no_grad": True}, [x], kept)
        centred = step({"type": "elementwise", "op": "sub", "ops": {"sub": 1}, "backward": {"sub": 1},
                        "backward_inputs": [{}, {"sub": 1}]}, [x, mean], x.shape)
        square = step({"type": "elementwise", "op": "square", "ops": {"mul": 1}, "backward": {"mul": 2}},
                      [centred], x.shape)
        total = step({"type": "reduce", "kind": "sum"}, [square], out[0] if not a.get("keepdim") else kept)
        if count - correction != 1:
            total = step({"type": "elementwise", "op": "div", "ops": {"div": 1}, "backward": {"div": 1}}, [total],
                         total.shape)
        if name == "std":
            total = step({"type": "elementwise", "op": "sqrt", "ops": {"sqrt": 1}, "backward": {"mul": 1, "div": 1}},
                         [total], total.shape)
    else:
        square = step({"type": "elementwise", "op": "square", "ops": {"mul": 1}, "backward": {"mul": 2}}, [x],
                      x.shape)
        keep = name == "normalize" or a.get("keepdim")
        total = step({"type": "reduce", "kind": "sum"}, [square], kept if keep else out[0])
        total = step({"type": "elementwise", "op": "sqrt", "ops": {"sqrt": 1}, "backward": {"mul": 1, "div": 1}},
                     [total], total.shape)
        if name == "normalize":
            total = step({"type": "elementwise", "op": "clamp_min", "ops": {"cmp": 1}, "backward": {"cmp": 1}},
                         [total], total.shape)
            total = step({"type": "elementwise", "op": "div", "ops": {"div": 1}, "backward": {"div": 2, "mul": 1,
                                                                                               "sub": 1},
                          "backward_inputs": [{"div": 1}, {"div": 1, "mul": 1, "sub": 1}]}, [x, total], x.shape)
    if tuple(total.shape) != tuple(out[0]):
        raise _Unsupported(f"{name}: unexpected output shape")
    # the last step is the call's result
    b.refs[id(event.outputs[0])] = _Ref(total.layer, out[0], out[1], out[2], out[3])


def _unary(op, ops, backward=None):
    """An elementwise step on the previous step's result (backward: the same table, priced
    by the backward recipes of recipe names)."""
    return {"type": "elementwise", "op": op, "ops": ops, "backward": dict(ops if backward is None else backward)}


# activations written as the steps torch's definitions compute (each step's backward is the
# one autograd gives the decomposed form): (spec, inputs) per step, inputs by index, 0 the
# input x and k the k-th step's result; the last step is the activation's result
_SELECT = {"type": "elementwise", "op": "where", "ops": {}, "backward": {}, "backward_inputs": [{}, {}, {}]}
_SOFTPLUS = [(_unary("exp", {"exp": 1}), [0]), (_unary("add", {"add": 1}, {}), [1]),
             (_unary("log", {"log": 1}), [2])]
_ACTIVATION_STEPS = {
    # x > threshold ? x : log(1 + exp(x)) (beta 1): the compare, exp, + 1, log, the select
    "softplus": [(_unary("cmp", {"cmp": 1}, {}), [0])] + [(spec, [i + 1 if i else 0 for i in ins])
                                                          for spec, ins in _SOFTPLUS] + [(_SELECT, [1, 0, 4])],
    # x * tanh(softplus(x))
    "mish": _SOFTPLUS + [(_unary("tanh", {"tanh": 1}), [3]),
                         ({"type": "elementwise", "op": "mul", "ops": {"mul": 1}, "backward": {"mul": 2},
                           "backward_inputs": [{"mul": 1}, {"mul": 1}]}, [0, 4])],
    # x > 0 ? x : alpha (exp(x) - 1): the compare, exp, - 1, * alpha, the select
    "elu": [(_unary("cmp", {"cmp": 1}, {}), [0]), (_unary("exp", {"exp": 1}), [0]),
            (_unary("sub", {"sub": 1}, {}), [2]), (_unary("mul", {"mul": 1}), [3]), (_SELECT, [1, 0, 4])],
    # x / (1 + |x|)
    "softsign": [(_unary("abs", {"cmp": 1}), [0]), (_unary("add", {"add": 1}, {}), [1]),
                 ({"type": "elementwise", "op": "div", "ops": {"div": 1}, "backward": {"div": 2, "mul": 1, "sub": 1},
                   "backward_inputs": [{"div": 1}, {"div": 1, "mul": 1, "sub": 1}]}, [0, 2])],
}


_CELLS = {"lstm_cell": "lstm", "gru_cell": "gru", "rnn_tanh_cell": "rnn", "rnn_relu_cell": "rnn"}


def _rnn_cell(b, name, event, out_refs):
    """``nn.LSTMCell``/``GRUCell``/``RNNCell`` (``torch.lstm_cell(x, (h, c), w_ih, w_hh, b_ih,
    b_hh)``, ...): one step of a one-layer recurrent layer, as that layer on a sequence of
    length 1 (free views of ``[D]`` as ``[1, D]``, of the states as ``[1, H]``, of the result
    back), owning the four weights; the LSTM's new cell state is the layer's ``c_n``."""
    torch = b.torch
    kind = _CELLS[name]
    args = list(event.args)
    x = b.ref(args[0]) if args and isinstance(args[0], torch.Tensor) else None
    if x is None or x.once or x.axis != 0 or x.factor != 1 or len(x.shape) != 1 or len(args) < 4:
        raise _Unsupported(f"{name} of other than a batch of vectors")
    states = list(args[1]) if isinstance(args[1], (tuple, list)) else [args[1]]
    weights = [t for t in args[2:6] if isinstance(t, torch.Tensor)]
    if not all(b.is_param(t) for t in weights):
        raise _Unsupported(f"{name} with computed weights")
    hidden = int(weights[1].shape[1])
    path = f"{event.path}.{kind}_cell" if event.path else f"{kind}_cell"

    def view(ref, shape):
        return b.add({"type": "shape_op", "op": "view", "out_shape": list(shape)}, [ref], None,
                     (tuple(shape), 0, 1, None), path)
    inputs = [view(x, (1, int(x.shape[0])))]
    refs = [b.ref(t) if isinstance(t, torch.Tensor) else None for t in states]
    if any(r is not None and (r.once or r.axis != 0 or r.factor != 1) for r in refs):
        raise _Unsupported(f"{name} with states without the batch on axis 0")
    if refs and refs[0] is not None:
        inputs.append(view(refs[0], (1, hidden)))
        if len(refs) == 2:
            if refs[1] is None:
                raise _Unsupported("an LSTM cell whose h is computed and c constant")
            inputs.append(view(refs[1], (1, hidden)))
    elif len(refs) == 2 and refs[1] is not None:
        raise _Unsupported("an LSTM cell whose c is computed and h constant")
    spec = {"type": kind, "hidden": hidden, "layers": 1, "bidirectional": False, "bias": len(weights) == 4,
            "dropout": 0.0}
    if kind == "rnn":
        spec["nonlinearity"] = "tanh" if name == "rnn_tanh_cell" else "relu"
    layer = b.add(spec, inputs, None, ((1, hidden), 0, 1, None), path)
    shared = [t for t in weights if b.param_names[id(t)] in b.attributed]
    if shared:
        first = b.attributed[b.param_names[id(shared[0])]]
        b.reuse(layer.layer, name, first, f"reuses the weights of {first!r} (the cell run step by step): its weight "
                "gradients are counted, the adds summing them into the first step's are not")
    b.own(weights, layer.layer)
    _mark_frozen(b, weights)
    b.add({"type": "shape_op", "op": "view", "out_shape": list(out_refs[0][0])}, [layer], event.outputs[0],
          out_refs[0], path)
    if kind == "lstm" and len(event.outputs) > 1:
        c_n = b.add({"type": "shape_op", "op": "output 2", "out_shape": [1, hidden], "reads": 0}, [layer], None,
                    ((1, hidden), 0, 1, None), f"{layer.layer}:2")
        b.rnn_states.setdefault(layer.layer, {})[2] = c_n.layer
        b.add({"type": "shape_op", "op": "view", "out_shape": list(out_refs[1][0])}, [c_n], event.outputs[1],
              out_refs[1], path)


def _glu(b, event, out_refs):
    """``F.glu(x, dim)``: the two halves of x along dim (free slices), a sigmoid of the second,
    their product."""
    x = b.ref(event.args[0]) if event.args and isinstance(event.args[0], b.torch.Tensor) else None
    if x is None or x.once:
        raise _Unsupported("glu of a constant or batch-free tensor")
    dim = event.args[1] if len(event.args) > 1 else event.kwargs.get("dim", -1)
    axis = _axis(x, dim, "")
    half = tuple(n // 2 if i == axis else n for i, n in enumerate(x.shape))
    path = f"{event.path}.glu" if event.path else "glu"
    parts = [b.add({"type": "shape_op", "op": "glu half", "out_shape": list(half), "reads": math.prod(half)}, [x],
                   None, (half, 0, 1, None), path) for _ in range(2)]
    gate = b.add({"type": "sigmoid"}, [parts[1]], None, (half, 0, 1, None), path)
    b.add({"type": "elementwise", "op": "mul", "ops": {"mul": 1}, "backward": {"mul": 2},
           "backward_inputs": [{"mul": 1}, {"mul": 1}], "out_shape": list(half)}, [parts[0], gate],
          event.outputs[0], out_refs[0], path)


def _activation_chain(b, name, event, out_refs):
    """``F.softplus`` (beta 1), ``F.mish``, ``F.elu`` and ``F.softsign`` as the steps of
    ``_ACTIVATION_STEPS``, on a per-sample input; other settings are left out."""
    x = b.ref(event.args[0]) if event.args and isinstance(event.args[0], b.torch.Tensor) else None
    out = out_refs[0]
    if x is None or x.once or tuple(out[0]) != tuple(x.shape):
        raise _Unsupported(f"{name} of a constant or batch-free tensor")
    if name == "softplus" and (list(event.args[1:2]) + [event.kwargs.get("beta", 1)])[0] != 1:
        raise _Unsupported("softplus with beta other than 1")
    path = f"{event.path}.{name}" if event.path else name
    stopped = b.grad_in and not event.outputs[0].requires_grad
    results = [x]
    steps = _ACTIVATION_STEPS[name]
    for k, (spec, inputs) in enumerate(steps):
        spec = dict(spec, out_shape=list(x.shape))
        if k == 0 and spec.get("op") == "cmp" or stopped:
            spec["no_grad"] = True              # a comparison carries no gradient
        last = k == len(steps) - 1
        ref = b.add(spec, [results[i] for i in inputs], event.outputs[0] if last else None,
                    out if last else (x.shape, 0, 1, None), path)
        results.append(ref)


def _addmm_linear(b, event, a, ra, second, out_refs):
    """``addmm(bias, x, W)`` with a bare weight ``W`` (or ``W.t()``) and a bare bias (or none,
    beta 0) and alpha = beta = 1: a linear layer with bias (Hugging Face's GPT-2 ``Conv1D``,
    ``torch.addmm(self.bias, x.view(-1, nx), self.weight)``). Returns False when it is not one."""
    torch = b.torch
    if b.is_param(second) and second.dim() == 2:
        weight = second
    elif id(second) in b.param_views:
        weight = b.param_views[id(second)][0]
    else:
        return False
    bias, alpha, beta = a.get("input"), a.get("alpha", 1), a.get("beta", 1)
    out_features = int(second.shape[1])
    if alpha != 1 or beta not in (0, 1) or isinstance(alpha, torch.Tensor) or isinstance(beta, torch.Tensor):
        return False
    if beta == 1 and not (isinstance(bias, torch.Tensor) and b.is_param(bias) and bias.dim() == 1
                          and int(bias.shape[0]) == out_features):
        return False
    has_bias = beta == 1
    own = [weight, bias] if has_bias else [weight]
    path = f"{event.path}.{event.target}" if event.path else event.target
    shared = [t for t in own if b.param_names[id(t)] in b.attributed]
    layer = b.add({"type": "linear", "out": out_features, "bias": has_bias}, [ra], event.outputs[0], out_refs[0],
                  path)
    if shared:
        first = b.attributed[b.param_names[id(shared[0])]]
        b.reuse(layer.layer, "addmm", first,
                f"reuses the parameters of {first!r}: the repeated use's weight gradients are not counted")
    b.own(own, layer.layer)
    _mark_frozen(b, own)
    return True


def _elementwise_spec(b, name, ins, event, ops=None):
    """An ``elementwise`` layer. Backward per output element: mul multiplies dy by the other
    operand for each operand with a gradient; a - b negates for b only (1 sub when b is
    tracked); a / b: dy/b for a (1 div), -dy*out/b for b (1 mul, 1 div, 1 sub)."""
    fwd, bwd = ops if ops is not None else _ELEMENTWISE[name]
    args = event.args
    second = args[1] if len(args) > 1 else None
    live = [a is not None and (b.ref(a) is not None or b.is_param(a)) if isinstance(a, b.torch.Tensor) else False
            for a in (args[0] if args else None, second)]
    if name == "mul":
        bwd = {"mul": len(ins)}
    elif name == "sub":
        bwd = {"sub": 1} if live[1] else {}
    elif name in ("div", "rdiv"):
        numerator, denominator = (live[0], live[1]) if name == "div" else (live[1], live[0])
        bwd = {}
        if numerator:
            bwd["div"] = 1
        if denominator:
            bwd["div"] = bwd.get("div", 0) + 1
            bwd.update(mul=1, sub=1)
    out_shape, out_axis = b._out[0], b._out[1]
    if out_axis is None and any(not r.once for r in ins):
        raise _Unsupported("reduces over the batch axis")
    if ops is None and name in _ACTIVATIONS and len(ins) == 1 and tuple(out_shape) == ins[0].shape \
            and not ins[0].once:
        return {"type": name}, ins
    spec = {"type": "elementwise", "op": name or event.target, "ops": dict(fwd), "backward": dict(bwd),
            "out_shape": list(out_shape) or [1]}
    # per operand (a, b): only operands that need a gradient cost their backward (x * mask: one mul)
    per_operand = {"mul": ({"mul": 1}, {"mul": 1}), "add": ({}, {}), "sub": ({}, {"sub": 1}),
                   "rsub": ({"sub": 1}, {}), "div": ({"div": 1}, {"div": 1, "mul": 1, "sub": 1}),
                   "rdiv": ({"div": 1, "mul": 1, "sub": 1}, {"div": 1})}.get(name)
    if ops is None and per_operand is not None and len(ins) == sum(live):
        spec["backward_inputs"] = [dict(t) for t, used in zip(per_operand, live) if used]
    if out_axis is None:
        spec["once"] = True
    if any(r.once for r in ins):
        spec["once_inputs"] = [r.once for r in ins]
    return spec, ins


def _handle(b, event, out_refs):
    """Turn one event into IR layers."""
    torch = b.torch
    if not event.outputs:
        return
    b._out = out_refs[0]
    # a module run in half precision (model.half(), .to(torch.bfloat16)) is counted in that format;
    # float32 results name none (the profile's default_format stands in, as for other sources)
    # (a comparison's boolean result: the format of the values it compares)
    floating = [t for t in event.outputs[:1] + list(event.inputs) if t.is_floating_point()]
    b.format = _DTYPE_FORMATS.get(str(floating[0].dtype)) if floating else None
    # inside a checkpointed region the reentrant implementation runs without gradient: that
    # stops none (the region's backward recomputes it with gradient)
    b.grad_in = not event.checkpoint and any(t.requires_grad for t in list(event.inputs) + list(event.params)
                                             if b.live(t))
    # a reentrant region's backward runs all of its forward again (recompute: counted); the
    # non-reentrant one stops once it has what backward needs (left out, reported)
    b.recompute = bool(event.checkpoint) and event.checkpoint[1]
    if event.checkpoint and not event.checkpoint[1] and event.checkpoint[0] not in b.checkpoints:
        b.checkpoints[event.checkpoint[0]] = event.path or event.target
    if event.kind == "module":
        m = event.module
        ins = [b.tracked(t) for t in event.inputs]
        ins = [r for r in ins if r is not None]
        custom = next((fn for cls, fn in b.custom.items() if isinstance(m, cls)), None)
        if custom is not None:
            return _custom(b, m, event, ins, out_refs, custom)
        kind = type(m).__name__
        if isinstance(m, b.nn.Embedding) and not ins:
            params = _module_params(b, event)
            if len(params) == 1 and m.max_norm is None:
                # ids without a batch axis (GPT-2's position embedding, ``wpe(arange(t))``)
                return _constant_lookup(b, params[0], event, out_refs, event.path or kind)
        if isinstance(m, (b.nn.Identity, b.nn.Flatten, b.nn.Unflatten)) or (
                kind == "StochasticDepth" and getattr(m, "p", 1) == 0):
            spec, inputs = {"type": "shape_op", "op": kind, "out_shape": list(out_refs[0][0]) or [1]}, ins[:1]
        else:
            spec, inputs = _module_spec(b, m, event, ins)
        if spec["type"] in INPLACE_TYPES and getattr(m, "inplace", False) is True:
            spec = dict(spec, inplace=True)         # ReLU(inplace=True), Dropout(inplace=True), ...
        params = [p for p in _module_params(b, event)]
        shared = [p for p in params if b.param_names[id(p)] in b.attributed]
        layer = b.add(spec, inputs, event.outputs[0], out_refs[0], event.path or kind)
        if shared:
            first = b.attributed[b.param_names[id(shared[0])]]
            owners = {b.attributed[b.param_names[id(p)]] for p in shared}
            if spec["type"] == "linear" and len(shared) == len(params) and owners == {first} and _ties(b, first) \
                    and (not spec["bias"] or _tied_bias(b, first)):
                # the same Linear called again: its weight (and bias) gradients add into the first call's
                b.specs[-1]["tied_to"] = first
                if spec["bias"]:
                    b.specs[-1]["tied_bias"] = True
            else:
                b.reuse(layer.layer, kind, first, f"module called again (its parameters are owned by {first!r}): "
                        "the repeated call's weight gradients are not counted")
        b.module_params[layer.layer] = (b.own(params, layer.layer), kind)
        _mark_frozen(b, params)
        if getattr(m, "parametrizations", None):
            b.leave(layer.layer, kind, "its weight is computed by a parametrization (weight_norm, spectral_norm, "
                    f"...: {', '.join(m.parametrizations)}) whose arithmetic is not counted")
        _extra_outputs(b, event, out_refs, layer)
        return
    name = _name_of(event.target)
    live = [t for t in event.inputs if b.live(t)]
    if not live:
        return                                     # constants, shapes, factories: nothing per sample
    if name in _TRANSPOSES and len(event.inputs) == 1 and b.is_param(event.inputs[0]) \
            and event.inputs[0].dim() == 2 and event.outputs[0].dim() == 2:
        # W.t() of a bare weight: kept as a view until read (``x @ W.t()`` is a linear layer)
        b.param_views[id(event.outputs[0])] = (event.inputs[0], name, f"{event.path}.{name}" if event.path else name)
        return
    # a function that owns the parameters it reads resolves its own inputs; elsewhere a bare
    # parameter is a data input (a 'parameter' layer)
    ins = [] if name in _OWNING else [b.tracked(t) for t in live]
    if (name in _MULTI or name in _FREE or name in _EXPAND) and name not in _FACTORIES \
            and any(r is not None and not r.once for r in ins) \
            and any(r[1] is None for r in out_refs):
        # a slice, split or selection of the batch axis itself (y[:B // 2], y[::2], y.chunk(2, 0)):
        # its result has no batch axis to count per sample, and counting it once would be wrong
        raise ModelError(f"{b.label}: {event.path + ': ' if event.path else ''}{event.target} takes part of the "
                         "batch axis (a slice, split or selection of samples); tosim counts per sample and cannot "
                         "follow it")
    if name in _MULTI:
        src = b.tracked(event.args[0])
        if src is None:
            return
        for k, (t, r) in enumerate(zip(event.outputs, out_refs)):
            b.add({"type": "shape_op", "op": name, "out_shape": list(r[0]) or [1],
                             "reads": math.prod(r[0]), "once": r[1] is None, "once_inputs": [src.once]},
                  [src], t, r, f"{event.path}.{name}" if event.path else name)
        return
    if name in _FREE or name in _EXPAND:
        spec = {"type": "shape_op", "op": name, "out_shape": list(out_refs[0][0]) or [1]}
        inputs = ins
        src = ins[0]
        mode = event.kwargs.get("mode", event.args[2] if len(event.args) > 2 else "constant")
        if name in _EXPAND or (name == "pad" and mode != "constant"):
            # reflect, replicate and circular padding copy elements: their gradients add back
            spec["grad"] = "broadcast"
            inputs = [src]
        elif name in ("__getitem__", "index_select", "gather", "take_along_dim", "select", "narrow",
                      "masked_select", "diagonal"):
            index = [a for a in event.inputs[1:] if isinstance(a, torch.Tensor)]
            if index and name != "masked_select":
                # indexing by a tensor (a learned table, or an activation): the backward adds each
                # gathered element's gradient into the zeroed source gradient (index_put_ with
                # accumulate, index_add_, scatter_add_), 1 add per output element; masked_select's
                # backward is masked_scatter, a copy
                spec["grad"] = "gather"
            elif not index and src.once == (out_refs[0][1] is None):
                # a slice: its gradient fills its part of the source's, no sum with other slices
                spec["reads"] = math.prod(out_refs[0][0])
            inputs = [src]
        spec["once"] = out_refs[0][1] is None
        spec["once_inputs"] = [r.once for r in inputs]
        layer = b.add(spec, inputs, event.outputs[0], out_refs[0],
                      f"{event.path}.{name}" if event.path else name)
        for t, r in zip(event.outputs[1:], out_refs[1:]):
            b.add({"type": "shape_op", "op": name, "out_shape": list(r[0]) or [1], "once": r[1] is None},
                  [layer], t, r, f"{event.path}.{name}" if event.path else name)
        return
    if name in ("var", "std", "normalize", "norm", "vector_norm"):
        return _norm_chain(b, name, event, out_refs)
    if name in _ACTIVATION_STEPS:
        return _activation_chain(b, name, event, out_refs)
    if name == "glu":
        return _glu(b, event, out_refs)
    if name in _CELLS:
        return _rnn_cell(b, name, event, out_refs)
    if name == "einsum":
        return _einsum(b, event, out_refs)
    if name in ("baddbmm", "addmm"):
        return _addmm(b, event, out_refs)
    if name == "embedding_bag":
        return _embedding_bag(b, event, out_refs)
    spec, inputs = _fn_spec(b, name, event, ins)
    if spec["type"] in INPLACE_TYPES and _in_place(event, torch):
        spec["inplace"] = True
    own = spec.pop("_own", [])
    spec.pop("_weight_t", None)
    layer = b.add(spec, [r for r in inputs if r is not None], event.outputs[0], out_refs[0],
                  f"{event.path}.{name}" if event.path else name)
    shared = [t for t in own if t is not None and b.param_names[id(t)] in b.attributed]
    if shared:
        first = b.attributed[b.param_names[id(shared[0])]]
        if spec["type"] == "linear" and not spec["bias"] and len(shared) == len([t for t in own if t is not None]) \
                and _ties(b, first):
            b.specs[-1]["tied_to"] = first
        else:
            b.reuse(layer.layer, name, first,
                    f"reuses the parameters of {first!r}: the repeated use's weight gradients are not counted")
    b.own(own, layer.layer)
    _mark_frozen(b, [t for t in own if t is not None])
    if spec["type"] not in ("elementwise", "reduce", "shape_op", "cumsum") and layer.once:
        b.leave(layer.layer, spec["type"], "computed once per batch (no batch axis); counted as per sample")
    _extra_outputs(b, event, out_refs, layer)


def _constant_lookup(b, weight, event, out_refs, path):
    """An embedding table read at ids without a batch axis (``wpe(torch.arange(t))``): the table
    (a ``parameter`` layer owning it) gathered once per batch, free forward; the backward sums
    the rows' gradients over the batch where the result is broadcast (in its reader) and adds
    each gathered row's gradient into the table's (1 add per element, as ``embedding`` counts)."""
    out = out_refs[0]
    if out[1] is not None:
        raise _Unsupported("an embedding of constant ids with a batch axis")
    table = b.param_ref(weight)
    spec = {"type": "shape_op", "op": "embedding", "out_shape": list(out[0]) or [1], "grad": "gather",
            "once": True, "once_inputs": [True]}
    layer = b.add(spec, [table], event.outputs[0], out, path)
    _mark_frozen(b, [weight])
    _extra_outputs(b, event, out_refs, layer)


#: torch dtypes counted in a format of their own (float32 is the default format's)
_DTYPE_FORMATS = {"torch.float16": "fp16", "torch.bfloat16": "bf16", "torch.float64": "fp64"}


def _mark_frozen(b, params):
    """The layer just added is ``frozen`` when every parameter it reads has requires_grad=False
    and its type can be (FROZEN_TYPES); otherwise frozen parameters are reported at the end."""
    from ._ir import FROZEN_TYPES
    spec = b.specs[-1]
    if params and not any(p.requires_grad for p in params) and spec["type"] in FROZEN_TYPES:
        spec["frozen"] = True


def _tied_bias(b, owner):
    """The layer ``owner`` is a linear layer with a bias (that a second call can share)."""
    return any(spec["name"] == owner and spec["type"] == "linear" and spec.get("bias") for spec in b.specs)


def _ties(b, owner):
    """A weight shared with layer ``owner`` can be a ``tied_to`` reference (the owner is a linear
    or embedding layer)."""
    return any(spec["name"] == owner and spec["type"] in ("linear", "embedding") for spec in b.specs)


def _extra_outputs(b, event, out_refs, layer):
    """Further tensors of a tuple output (LSTM's h_n and c_n, MHA's weights, max's indices):
    free views of the layer's result. A recurrent layer's final states are its last steps' states:
    their gradients add into those steps' (1 add per element, the ``reads``), not a whole
    output's."""
    rnn = event.kind == "module" and isinstance(event.module, (b.nn.RNNBase, b.nn.MultiheadAttention))
    for k, (t, r) in enumerate(zip(event.outputs[1:], out_refs[1:]), start=1):
        spec = {"type": "shape_op", "op": f"output {k}", "out_shape": list(r[0]) or [1], "once": r[1] is None}
        if rnn:
            spec["reads"] = 0
        ref = b.add(spec, [layer], t, r, f"{layer.layer}:{k}")
        if rnn:
            b.rnn_states.setdefault(layer.layer, {})[k] = ref.layer


def _rnn_gradients(b, specs, states, final):
    """Tell each recurrent layer which of its results the loss reads (after pruning): its output
    (read by a layer other than its final states' views), h_n, c_n. A reader marked ``no_grad``
    returns no gradient. An attention layer whose weights output is read is reported (their
    gradient into the attention core is not counted)."""
    readers = {}
    for spec in specs:
        if not spec.get("no_grad"):
            for ref in spec.get("inputs", ()):
                readers.setdefault(ref, set()).add(spec["name"])

    def read(name):
        return name == final or bool(readers.get(name))
    for spec in specs:
        if spec["name"] in states and spec["type"] == "attention" and read(states[spec["name"]].get(1)):
            b.leave(spec["name"], "attention", "its attention weights are read: the gradient they carry back into "
                    "the attention core is not counted")
        if spec["name"] not in states or spec["type"] not in ("lstm", "gru", "rnn"):
            continue
        views = states[spec["name"]]
        spec["output_grad"] = spec["name"] == final or bool(readers.get(spec["name"], set()) - set(views.values()))
        spec["h_n_grad"] = 1 in views and read(views[1])
        if spec["type"] == "lstm":
            spec["c_n_grad"] = 2 in views and read(views[2])


def _leaf_classes(nn):
    """Standard modules counted as one layer each (others are entered and their functions
    recorded)."""
    names = ["Linear", "Identity", "Flatten", "Unflatten", "LayerNorm", "GroupNorm", "Embedding", "LeakyReLU",
             "GELU", "Softmax", "LogSoftmax", "MultiheadAttention", "RNNBase", "RMSNorm"]
    names += list(_ACTIVATION_MODULES)
    names += [f"{stem}{nd}d" for nd in (1, 2, 3) for stem in ("MaxPool", "AvgPool", "AdaptiveAvgPool",
                                                                "AdaptiveMaxPool")]
    classes = [getattr(nn, n) for n in names if hasattr(nn, n)]
    classes += [nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd]
    return tuple(classes)


def _module_params(b, event):
    out, seen = [], set()
    for p in event.params:
        if id(p) in b.param_names and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _custom(b, m, event, ins, out_refs, fn):
    in_shapes = [list(r.shape) for r in ins]
    out_shapes = [list(r[0]) for r in out_refs]
    try:
        specs = fn(m, in_shapes, out_shapes)
    except Exception as exc:
        raise ModelError(f"{b.label}: custom_modules handler for {type(m).__name__} ({event.path!r}) failed: "
                         f"{type(exc).__name__}: {exc}") from None
    if isinstance(specs, dict):
        specs = [specs]
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) for s in specs):
        raise ModelError(f"{b.label}: custom_modules handler for {type(m).__name__} must return a layer spec "
                         f"(a dict) or a non-empty list of them, not {specs!r}")
    first = len(b.specs)
    previous = ins
    layer = None
    for k, spec in enumerate(specs):
        spec = dict(spec)
        last = k == len(specs) - 1
        r = out_refs[0] if last else (None, 0, 1, None)
        name = b.unique(event.path if len(specs) == 1 else f"{event.path}.{spec.get('type', 'layer')}")
        spec["name"] = name
        spec.setdefault("inputs", [p.layer for p in previous] or [MODEL_INPUT])
        b.specs.append(spec)
        layer = _Ref(name, r[0], r[1], r[2], r[3])
        if last:
            b.refs[id(event.outputs[0])] = layer
            b.checks.append((name, layer.shape))
        previous = [layer]
    params = _module_params(b, event)
    b.custom_params.append((first, len(b.specs), sum(p.numel() for p in params), event.path, type(m).__name__))
    b.own(params, layer.layer)
    _extra_outputs(b, event, out_refs, layer)


def _inputs(example_inputs, forward, torch, label):
    """``(args, kwargs)`` of the example inputs: a tensor, a tuple/list (positional) or a dict
    (keywords)."""
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,), {}
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs), {}
    if isinstance(example_inputs, dict):
        return (), dict(example_inputs)
    raise ModelError(f"{label}: example inputs must be a tensor, a tuple of inputs or a dict of keyword inputs, "
                     f"not {type(example_inputs).__name__}")


def load_torch(module: torch.nn.Module, example_inputs: Any, *, name: str | None = None, loss: str = "mse",
               optimizer: str = "sgd", batch_dim: int = 0,
               custom_modules: Mapping[type, Callable[..., Any]] | None = None) -> ModelIR:
    """A ModelIR of ``module`` called on ``example_inputs``: a tensor, a tuple of positional
    inputs or a dict of keyword inputs (non-tensor values are passed as they are). Every tensor
    input has its batch on axis ``batch_dim`` (its size there does not matter: the module is run
    on meta tensors at two batch sizes of its own). ``custom_modules`` maps module classes to
    ``fn(module, in_shapes, out_shapes) -> spec | [spec, ...]`` (per-sample shapes; specs in the
    model-spec vocabulary, the first reading the module's inputs, the last giving its output).

    Raises :class:`ModelError` for a module that cannot be run on meta tensors or whose batch
    axis cannot be followed; issues :class:`IncompleteModelWarning` when something was left out
    (see ``ModelIR.left_out``)."""
    import torch
    # the meta stand-ins must be ordinary tensors even when the caller is in inference mode
    with torch.inference_mode(False):
        return _load_torch(module, example_inputs, name=name, loss=loss, optimizer=optimizer, batch_dim=batch_dim,
                           custom_modules=custom_modules)


def _load_torch(module, example_inputs, *, name, loss, optimizer, batch_dim, custom_modules):
    import torch
    from torch import nn
    label = str(name or type(module).__name__)
    if not isinstance(module, nn.Module):
        raise ModelError(f"{label}: expected a torch.nn.Module, not {type(module).__name__}")
    custom_modules = dict(custom_modules or {})
    for cls, fn in custom_modules.items():
        if not isinstance(cls, type) or not callable(fn):
            raise ModelError(f"{label}: custom_modules maps module classes to functions, not {cls!r}: {fn!r}")
    args, kwargs = _inputs(example_inputs, module.forward, torch, label)
    tensors = [(k, v) for k, v in list(enumerate(args)) + list(kwargs.items()) if isinstance(v, torch.Tensor)]
    if not tensors:
        raise ModelError(f"{label}: the example inputs hold no tensor")
    for key, t in tensors:
        if t.dim() <= batch_dim:
            raise ModelError(f"{label}: input {key!r} of shape {list(t.shape)} has no batch axis {batch_dim}")

    # meta stand-ins for every parameter and buffer, shared ones shared
    meta_of: dict[int, Any] = {}
    state = {}
    param_names = {}
    for pname, p in module.named_parameters(remove_duplicate=False):
        if id(p) not in meta_of:
            meta_of[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
            param_names[id(meta_of[id(p)])] = pname
        state[pname] = meta_of[id(p)]
    for bname, buf in module.named_buffers(remove_duplicate=False):
        if id(buf) not in meta_of:
            meta_of[id(buf)] = torch.empty_like(buf, device="meta")
        state[bname] = meta_of[id(buf)]

    custom = tuple(custom_modules)

    def leaf_of(m):
        if isinstance(m, custom):
            return True
        if type(m).__name__ == "StochasticDepth" and hasattr(m, "p") and hasattr(m, "mode"):
            return True
        return type(m).__module__.startswith("torch.nn") and isinstance(m, _leaf_classes(nn))

    def run(batch):
        made = {}

        def meta(v):                       # one meta tensor per example tensor (the same one passed twice stays one)
            if not isinstance(v, torch.Tensor):
                return v
            if id(v) not in made:
                shape = list(v.shape)
                shape[batch_dim] = batch
                made[id(v)] = torch.empty(shape, dtype=v.dtype, device="meta")
            return made[id(v)]
        run_args = tuple(meta(a) for a in args)
        run_kwargs = {k: meta(v) for k, v in kwargs.items()}
        try:
            events, outputs = _run(module, state, run_args, run_kwargs, leaf_of, torch)
        except ModelError:
            raise
        except Exception as exc:
            message = " ".join(str(exc).split())[:300]
            if "meta" in message.lower():
                # a value was read (.item(), .tolist(), .cpu() of pack_padded_sequence's lengths)
                message += (" (load_torch runs the module on shapes only: it cannot read tensor values, such as "
                            "the lengths of a packed sequence; count the padded batch instead)")
            raise ModelError(f"{label}: cannot run the module on meta tensors: {type(exc).__name__}: "
                             f"{message}") from None
        inputs = [run_args[k] if isinstance(k, int) else run_kwargs[k] for k, _ in tensors]
        return events, outputs, inputs

    events, outputs, inputs = run(_BATCHES[0])
    try:
        axes = [[_batch_axis(tuple(t.shape), None, "") for t in event.outputs] for event in events]
    except _Ambiguous:
        events2 = run(_BATCHES[1])[0]
        if len(events) != len(events2) or any(e.target != f.target or len(e.outputs) != len(f.outputs)
                                              for e, f in zip(events, events2)):
            raise ModelError(f"{label}: the module runs different operations at two batch sizes; its batch axis "
                             "cannot be followed") from None
        axes = [[_batch_axis(tuple(t.shape), tuple(t2.shape),
                             f"{label}: {event.path + ': ' if event.path else ''}{event.target}")
                 for t, t2 in zip(event.outputs, event2.outputs)] for event, event2 in zip(events, events2)]

    b = _Builder(torch, nn, label, param_names, custom_modules)
    input_shape: Any = None                # set by the first input
    for position, ((key, t), meta_t) in enumerate(zip(tensors, inputs)):
        full = tuple(meta_t.shape)
        shape = full[:batch_dim] + full[batch_dim + 1:]
        if not shape:
            raise ModelError(f"{label}: input {key!r} has no per-sample dimensions")
        if b.ref(meta_t) is not None:
            continue                       # the same tensor given again
        if position == 0:
            input_shape = shape
            b.refs[id(meta_t)] = _Ref(MODEL_INPUT, shape, batch_dim, 1, full)
        else:
            name_ = b.unique(f"input.{key}")
            b.specs.append({"type": "shape_op", "name": name_, "inputs": [MODEL_INPUT], "out_shape": list(shape),
                            "op": "input"})
            b.refs[id(meta_t)] = _Ref(name_, shape, batch_dim, 1, full)
    for event, event_axes in zip(events, axes):
        out_refs = []
        for t, (axis, factor) in zip(event.outputs, event_axes):
            out_refs.append((_per_sample(tuple(t.shape), axis, factor), axis, factor, tuple(t.shape)))
        try:
            _handle(b, event, out_refs)
        except _Unsupported as exc:
            _unknown(b, event, out_refs, str(exc))
    _finish_params(b, module)
    for where in b.checkpoints.values():
        b.leave(where, "checkpoint", "starts a non-reentrant torch.utils.checkpoint region: the part of its "
                "forward that its backward recomputes (up to the last activation it needs) is not counted")
    final = b.ref(outputs[0]) if outputs else None
    specs = _prune(b.specs, final.layer if final is not None else None)
    _rnn_gradients(b, specs, b.rnn_states, final.layer if final is not None else None)
    if not specs:
        specs = [{"type": "identity", "name": b.unique("identity")}]
    if final is not None and specs[-1]["name"] != final.layer and final.layer != MODEL_INPUT:
        specs.append({"type": "identity", "name": b.unique("output"), "inputs": [final.layer]})
    ir = build_model(name=label, input_shape=input_shape, layers=specs, loss=loss, optimizer=optimizer,
                     source=label)
    if b.shared:                           # their parameters are owned (and counted) elsewhere
        ir.layers = [dataclasses.replace(layer, params=0) if layer.name in b.shared else layer for layer in ir.layers]
    shapes = {layer.name: layer.out_shape for layer in ir.layers}
    for lname, want in b.checks:
        want = tuple(want) or (1,)         # a scalar is kept as [1]
        if lname in shapes and shapes[lname] != want:
            raise ModelError(f"{label}: layer {lname!r} ({ir.layer(lname).type}): shape mismatch: inferred "
                             f"{list(shapes[lname])}, torch says {list(want)}")
    for lname, (expected, kind) in b.module_params.items():
        got = ir.layer(lname).params if lname in shapes else expected
        if lname not in b.shared and got != expected:
            b.leave(lname, kind, f"the module holds {expected} parameters; its {ir.layer(lname).type} layer counts "
                    f"{got}", max(expected - got, 0))
    for first, last, expected, path, kind in b.custom_params:
        got = sum(layer.params for layer in ir.layers[first:last])
        if got != expected:
            b.leave(path, kind, f"the custom_modules handler's layers hold {got} parameters; the module has "
                    f"{expected}", max(expected - got, 0))
    for what, type_, reason, params in b.left_out:
        ir.leave_out(what, type_, reason, params)
    ir.warn_if_incomplete(label, stacklevel=3)
    return ir


def _run(module, state, args, kwargs, leaf_of, torch):
    """Record one call of ``module`` with its parameters and buffers replaced by ``state``."""
    from torch.func import functional_call
    return _record(module, lambda *a, **kw: functional_call(module, state, a, kw), args, kwargs, leaf_of, torch)


def _unknown(b, event, out_refs, reason):
    """A call without a formula: an uncounted layer (the count is incomplete), its parameters
    attributed to it so they are not reported twice."""
    ins = [b.tracked(t) for t in event.inputs]
    ins = [r for r in ins if r is not None]
    kind = event.target if event.kind == "fn" else type(event.module).__name__
    path = event.path if event.kind == "module" else (f"{event.path}.{kind}" if event.path else kind)
    params = _module_params(b, event) if event.kind == "module" else [
        t for t in event.inputs if b.is_param(t)]
    name = b.unique(path)
    first_out = out_refs[0] if out_refs else ((1,), None, 1, (1,))
    count = b.own(params, name)
    spec = {"type": kind if kind not in _KNOWN_TYPES else f"{kind} ({reason})", "name": name,
            "inputs": [r.layer for r in ins] or [MODEL_INPUT], "out_shape": list(first_out[0]) or [1], "params": count}
    if reason:
        spec["reason"] = reason             # said in the count's incomplete list and the warning
    b.specs.append(spec)
    if event.outputs:
        b.refs[id(event.outputs[0])] = _Ref(name, first_out[0], first_out[1], first_out[2], first_out[3])
        _extra_outputs(b, event, out_refs, b.refs[id(event.outputs[0])])


def _prune(specs, final):
    """Drop free layers whose result nothing reads (an LSTM's unused h_n, a split part left
    unused): they carry no gradient back, so they must not count as consumers."""
    if not specs:
        return specs
    live = {final if final is not None else specs[-1]["name"]}
    keep = []
    for spec in reversed(specs):
        if spec["name"] in live or spec["type"] != "shape_op":
            keep.append(spec)
            live.update(spec.get("inputs", ()))
    return keep[::-1]


def _finish_params(b, module):
    """Parameters no counted layer owns (never read, or read only inside an uncounted call);
    frozen ones (counted as trainable); and those of layers that ran without gradient (their
    update is counted, though they get no gradient)."""
    no_grad = {spec["name"] for spec in b.specs if spec.get("no_grad")}
    frozen = {spec["name"] for spec in b.specs if spec.get("frozen")}
    held = {}
    for pname, p in module.named_parameters():
        if pname not in b.attributed:
            b.leave(pname, "parameter", f"{p.numel()} parameters not attributed to a counted layer (never read "
                    "by a counted operation)", p.numel())
        elif not p.requires_grad and b.attributed[pname] not in frozen:
            b.leave(pname, "parameter", f"requires_grad=False (frozen): its {p.numel()} parameters are counted as "
                    "trainable, with a weight gradient and an update")
        elif b.attributed[pname] in no_grad and p.requires_grad:
            held[b.attributed[pname]] = held.get(b.attributed[pname], 0) + p.numel()
    from ._ir import FROZEN_TYPES
    tied = {spec.get("tied_to") for spec in b.specs}
    for layer, count in held.items():
        spec = next(spec for spec in b.specs if spec["name"] == layer)
        if spec["type"] in FROZEN_TYPES and layer not in b.reused and layer not in tied:
            # its parameters get no gradient in this step: the optimizer skips them (grad None)
            spec["frozen"] = True
            continue
        b.leave(layer, "no_grad", f"runs without gradient (torch.no_grad or detached weights): its {count} "
                "parameters get no gradient, but their optimizer update is counted")


def _known_types():
    from ._formulas import FORMULAS
    return frozenset(FORMULAS)


_KNOWN_TYPES = _known_types()
