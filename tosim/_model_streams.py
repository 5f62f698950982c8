"""Operand streams drawn from a model, and the switching energy of its multiplier and adder
under them (``tosim activity --from-model``, :func:`tosim.model_activity`).

A unit's switching energy depends on its data. For each matrix layer (linear / MatMul / Gemm,
2-D convolution) this module takes the operand pairs that a multiply-accumulate unit executing
the layer would see, in the order it sees them: for one output element, the multiplier gets
``(w[k], x[k])`` for k = 0, 1, ... (weights as operand a, activations as operand b) and the adder
gets ``(acc[k], w[k] * x[k])`` with ``acc[0] = 0`` and ``acc[k+1] = acc[k] + w[k] * x[k]``, products and
sums rounded to the format as the units would. Output elements (a sample, an output feature or
channel, a position) are picked at random (seeded) and their dot products concatenated until the
stream is ``vectors`` operations long. The streams run through the profile's floating-point
multiplier and adder (:func:`hwlib.activity.fp_stream_activity`).

Where the tensors come from, best first:

* ``onnx``: an ONNX file run with ``onnx.reference.ReferenceEvaluator`` (numpy; no runtime
  needed) on a given input (``.npy``, or ``.npz`` by input name) or on generated inputs (seeded
  N(0, 1) for float inputs, zeros for integer ones, dynamic dimensions 1): the real weights
  (initializers) and the real activations each layer receives, ReLU zeros included;
* ``torch``: a ``torch.nn.Module`` run on its example input, with forward hooks on
  ``nn.Linear`` and ``nn.Conv2d`` (ungrouped or grouped, any stride, padding and dilation). In
  Python the module itself; on the command line ``FILE.py:NAME`` (:func:`torch_factory`): the
  file is run and ``NAME`` in it is a module, or a function of no arguments returning a module
  or ``(module, example_inputs)``; the example input is that, or the array file given
  (``--input``);
* ``synthetic``: a model without weights (``zoo:NAME``, a spec): a documented per-layer
  distribution. Weights are N(0, 1 / (3 fan_in)) (the standard deviation of PyTorch's default
  initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in))); a layer's activations are ReLU outputs (half
  exact zeros, the rest half-normal of scale 1) when the nearest producing activation upstream
  (past pooling, flatten, dropout and reshape) is a ReLU or ReLU6, and N(0, 1) otherwise.

Layers of other kinds (batched matrix products of two activations, 1-D and 3-D convolutions)
are listed as skipped with the reason; the model-level figures weight each covered layer by
its MACs and say how many MACs they cover.
"""
import math
import os
import weakref
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LayerStreams", "ModelStreams", "streams_from_onnx", "streams_from_torch",
           "streams_from_spec", "model_streams", "ModelActivity", "model_activity", "torch_factory",
           "is_torch_factory", "stream_arrays", "save_streams", "remember_torch", "torch_origin"]

#: Layer types looked through on the way up to a layer's producing activation.
_PASS_THROUGH = {"maxpool2d", "avgpool2d", "adaptive_avgpool2d", "global_avgpool", "flatten", "dropout",
                 "reshape", "transpose", "select"}
_RELU = {"relu", "relu6"}


@dataclass
class LayerStreams:
    """The operand pairs of one matrix layer: ``mul_a`` (weights), ``mul_b`` (activations),
    ``add_a`` (running sums), ``add_b`` (products), float64 arrays of one length; ``zeros``
    (fraction of exact zeros among all the activations the layer receives) and ``macs``."""

    name: str
    type: str
    macs: int
    zeros: float
    mul_a: np.ndarray
    mul_b: np.ndarray
    add_a: np.ndarray
    add_b: np.ndarray


@dataclass
class ModelStreams:
    """Operand streams of a model's matrix layers; ``source`` says where they come from
    (``onnx``, ``torch`` or ``synthetic``, with the input used), ``skipped`` lists
    ``(layer, type, reason)`` of the layers left out."""

    model: str
    source: str
    format: str
    layers: list = field(default_factory=list)
    skipped: list = field(default_factory=list)


# --- dot products into operand pairs ----------------------------------------------------------

def _dot_streams(pick, n_rows, vectors, fmt, rng):
    """Concatenate dot products ``pick(i) -> (w, x)`` (1-D arrays of one length) of randomly
    chosen rows until ``vectors`` multiply-accumulates: (mul_a, mul_b, add_a, add_b)."""
    from hwlib.activity import fp_round
    parts = [[], [], [], []]
    total = 0
    while total < vectors:
        w, x = pick(int(rng.integers(n_rows)))
        w = fp_round(np.asarray(w, dtype=np.float64).ravel(), fmt)
        x = fp_round(np.asarray(x, dtype=np.float64).ravel(), fmt)
        take = min(len(w), vectors - total)
        if take == 0:
            continue
        w, x = w[:take], x[:take]
        with np.errstate(over="ignore", invalid="ignore"):
            products = fp_round(w * x, fmt)
            sums = np.empty(take, dtype=np.float64)
            acc = 0.0
            for k in range(take):            # sequential rounding, as the accumulator sees it
                sums[k] = acc
                acc = float(fp_round(acc + products[k], fmt))
        for part, values in zip(parts, (w, x, sums, products)):
            part.append(values)
        total += take
    return tuple(np.concatenate(p) for p in parts)


def _matrix_layer(name, kind, weights, activations, macs, vectors, fmt, rng):
    """A layer ``y = W x`` over the rows of ``activations`` (samples x K): ``weights`` (M x K)."""
    weights = np.asarray(weights, dtype=np.float64)
    activations = np.asarray(activations, dtype=np.float64).reshape(-1, weights.shape[1])
    m, samples = weights.shape[0], activations.shape[0]
    streams = _dot_streams(lambda i: (weights[i % m], activations[i // m]), m * samples, vectors, fmt, rng)
    zeros = float(np.mean(activations == 0)) if activations.size else 0.0
    return LayerStreams(name, kind, int(macs), zeros, *streams)


def _conv_layer(name, kind, weights, x, stride, padding, dilation, groups, macs, vectors, fmt, rng):
    """A 2-D convolution: ``weights`` (M, C/groups, kh, kw), ``x`` (N, C, H, W), ``padding``
    (top, left, bottom, right); the padded zeros are operands too."""
    weights = np.asarray(weights, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    m, cg, kh, kw = weights.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[2]), (padding[1], padding[3])))
    oh = (padded.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (padded.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    per_group = m // groups

    def pick(i):
        n, rest = divmod(i, m * oh * ow)
        ch, pos = divmod(rest, oh * ow)
        r, c = divmod(pos, ow)
        g = ch // per_group
        patch = padded[n, g * cg:(g + 1) * cg,
                       r * stride[0]: r * stride[0] + dilation[0] * (kh - 1) + 1: dilation[0],
                       c * stride[1]: c * stride[1] + dilation[1] * (kw - 1) + 1: dilation[1]]
        return weights[ch], patch

    streams = _dot_streams(pick, x.shape[0] * m * oh * ow, vectors, fmt, rng)
    zeros = float(np.mean(x == 0)) if x.size else 0.0
    return LayerStreams(name, kind, int(macs), zeros, *streams)


# --- ONNX -------------------------------------------------------------------------------------

def _onnx_inputs(model, given, rng):
    from onnx import helper
    init = {t.name for t in model.graph.initializer}
    feeds, described = {}, []
    for value in model.graph.input:
        if value.name in init:
            continue
        tensor = value.type.tensor_type
        dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                      for d in tensor.shape.dim)
        if given is not None:
            if isinstance(given, dict):
                if value.name not in given:
                    raise ValueError(f"the input file has no array {value.name!r} (it has "
                                     f"{', '.join(sorted(given)) or 'none'})")
                array = given[value.name]
            else:
                array = given
            feeds[value.name] = np.asarray(array).astype(dtype, copy=False)
            described.append(f"{value.name} from the input file")
        elif np.issubdtype(dtype, np.floating):
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
            described.append(f"{value.name} {list(shape)} seeded N(0, 1)")
        else:
            feeds[value.name] = np.zeros(shape, dtype=dtype)
            described.append(f"{value.name} {list(shape)} zeros")
    return feeds, "; ".join(described)


def _attr(node, name, default):
    from onnx import helper
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def streams_from_onnx(path, fmt, *, vectors=1024, seed=0, inputs=None):
    """:class:`ModelStreams` of an ONNX file, run with ``onnx.reference`` on ``inputs`` (an
    array for a single-input model, or a mapping name -> array; default generated, see the
    module docstring)."""
    import onnx
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator
    model = onnx.load(os.fspath(path))
    rng = np.random.default_rng(seed)
    feeds, described = _onnx_inputs(model, inputs, rng)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    wanted, nodes = [], []
    for i, node in enumerate(model.graph.node):
        if node.op_type in ("MatMul", "Gemm", "Conv"):
            nodes.append((i, node))
            wanted.extend(n for n in node.input[:2] if n and n not in weights and n not in wanted)
    known = {o.name for o in model.graph.output}
    for name in wanted:
        if name not in known and name not in feeds:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    # the evaluator's own outputs are the model's plus the layer inputs asked for
    names = [o.name for o in model.graph.output]
    values = dict(zip(names, ReferenceEvaluator(model).run(None, feeds)))
    values.update(feeds)
    values.update(weights)
    out = ModelStreams(model=os.path.basename(os.fspath(path)), format=fmt,
                       source=f"onnx run (onnx.reference) on {described}")
    for i, node in nodes:
        name = node.name or f"{node.op_type.lower()}_{i}"
        a, b = (values.get(n) for n in node.input[:2])
        if a is None or b is None:
            out.skipped.append((name, node.op_type, "an input was not computed"))
            continue
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if node.op_type == "Conv":
            if _attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or a.ndim != 4:
                out.skipped.append((name, "Conv", "only explicit padding of 2-D convolutions is read"))
                continue
            strides = list(_attr(node, "strides", [1, 1]))
            pads = list(_attr(node, "pads", [0, 0, 0, 0]))
            dilations = list(_attr(node, "dilations", [1, 1]))
            groups = int(_attr(node, "group", 1))
            n, _, _, _ = a.shape
            m = b.shape[0]
            oh = (a.shape[2] + pads[0] + pads[2] - dilations[0] * (b.shape[2] - 1) - 1) // strides[0] + 1
            ow = (a.shape[3] + pads[1] + pads[3] - dilations[1] * (b.shape[3] - 1) - 1) // strides[1] + 1
            macs = n * m * oh * ow * int(np.prod(b.shape[1:]))
            out.layers.append(_conv_layer(name, "Conv", b, a, strides, pads, dilations, groups, macs,
                                          vectors, fmt, rng))
            continue
        if node.op_type == "Gemm":
            if _attr(node, "transA", 0):
                a = a.T
            if _attr(node, "transB", 0):
                b = b.T
        if b.ndim != 2:
            out.skipped.append((name, node.op_type, "a batched product of two activations"))
            continue
        rows = a.reshape(-1, a.shape[-1])
        if node.input[0] in weights and node.input[1] not in weights:
            # weights first: the activations are the columns of b
            w, x = rows, b.T
        else:
            w, x = b.T, rows
        macs = x.shape[0] * w.shape[0] * w.shape[1]
        out.layers.append(_matrix_layer(name, node.op_type, w, x, macs, vectors, fmt, rng))
    return out


# --- torch ------------------------------------------------------------------------------------

def is_torch_factory(source):
    """Whether ``source`` names a module in a Python file: ``FILE.py:NAME``."""
    if not isinstance(source, str) or ":" not in source:
        return False
    path, _, name = source.rpartition(":")
    return path.lower().endswith(".py") and bool(name)


def _as_tensors(value, torch):
    """Arrays (one, a tuple, a mapping) as tensors: floating arrays in torch's default dtype
    (the dtype of a module's parameters unless it changed them), others as they are."""
    import numpy as np
    if isinstance(value, dict):
        return {k: _as_tensors(v, torch) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return tuple(_as_tensors(v, torch) for v in value)
    if isinstance(value, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(value))
        return tensor.to(torch.get_default_dtype()) if tensor.is_floating_point() else tensor
    return value


def torch_factory(source, inputs=None):
    """``(module, example_inputs, name)`` of ``FILE.py:NAME``: the file is run (as a script
    would be, with its folder importable) and ``NAME`` is a ``torch.nn.Module``, or a function of
    no arguments returning a module or ``(module, example_inputs)``. ``inputs`` (an array, or a
    mapping name -> array for keyword inputs) replaces the example input; floating arrays
    become tensors of torch's default dtype. Raises ``ValueError`` (one line) for a file that
    cannot be run, a missing name, no example input, and when PyTorch is not installed."""
    import importlib.util
    import runpy
    import sys
    path, _, name = source.rpartition(":")
    if importlib.util.find_spec("torch") is None:
        raise ValueError("a PyTorch module needs PyTorch, which is not installed (pip install 'tosim[torch]')")
    if not os.path.isfile(path):
        raise ValueError(f"no such file {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)
    try:
        namespace = runpy.run_path(path, run_name="__tosim_model__")
    except (MemoryError, KeyboardInterrupt):
        raise
    except BaseException as exc:      # noqa: BLE001 -- the user's file failed: one line naming it
        raise ValueError(f"running {path} failed: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    import torch
    if name not in namespace:
        found = sorted(k for k, v in namespace.items()
                       if not k.startswith("_") and (isinstance(v, torch.nn.Module) or callable(v)))
        raise ValueError(f"no name {name!r} in {path}"
                         + (f" (it defines {', '.join(found[:8])})" if found else ""))
    value, example = namespace[name], None
    if not isinstance(value, torch.nn.Module):
        if not callable(value):
            raise ValueError(f"{name} is a {type(value).__name__}, not a torch.nn.Module or a function "
                             "returning one")
        try:
            value = value()
        except (MemoryError, KeyboardInterrupt):
            raise
        except BaseException as exc:   # noqa: BLE001 -- the user's factory failed: one line naming it
            raise ValueError(f"{name}() failed: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], torch.nn.Module):
            value, example = value
        elif not isinstance(value, torch.nn.Module):
            raise ValueError(f"{name}() returned a {type(value).__name__}, not a torch.nn.Module or "
                             "(module, example_inputs)")
    if inputs is not None:
        example = _as_tensors(inputs, torch)
    if example is None:
        raise ValueError(f"no example input for the module {name}: give an input array (--input F.npy, or .npz "
                         "by argument name), or name a function returning (module, example_inputs)")
    return value, example, name


def streams_from_torch(module, example_inputs, fmt, *, vectors=1024, seed=0, name=None):
    """:class:`ModelStreams` of a ``torch.nn.Module`` run on ``example_inputs`` (a tensor, a
    tuple of them, or a mapping of keyword inputs), read by forward hooks on its ``nn.Linear``
    and ``nn.Conv2d`` layers; ``name``: the model's name (default the module's class)."""
    import torch
    from torch import nn
    rng = np.random.default_rng(seed)
    model_name = name or type(module).__name__
    seen, handles = [], []

    def hook(name):
        def record(mod, args, _output):
            seen.append((name, mod, args[0].detach().to(torch.float64).cpu().numpy()))
        return record

    for name, mod in module.named_modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            handles.append(mod.register_forward_hook(hook(name or type(mod).__name__)))
    try:
        with torch.no_grad():
            if isinstance(example_inputs, dict):
                module(**example_inputs)
            else:
                module(*(example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)))
    finally:
        for handle in handles:
            handle.remove()
    out = ModelStreams(model=model_name, format=fmt, source="torch run on the example input")
    for name, mod, x in seen:
        w = mod.weight.detach().to(torch.float64).cpu().numpy()
        if isinstance(mod, nn.Linear):
            rows = x.reshape(-1, w.shape[1])
            out.layers.append(_matrix_layer(name, "Linear", w, rows, rows.shape[0] * w.size, vectors, fmt, rng))
            continue
        if isinstance(mod.padding, str):
            out.skipped.append((name, "Conv2d", f"padding={mod.padding!r} is not read"))
            continue
        pad = tuple(mod.padding)
        if x.ndim == 3:
            x = x[None]
        oh = (x.shape[2] + 2 * pad[0] - mod.dilation[0] * (w.shape[2] - 1) - 1) // mod.stride[0] + 1
        ow = (x.shape[3] + 2 * pad[1] - mod.dilation[1] * (w.shape[3] - 1) - 1) // mod.stride[1] + 1
        macs = x.shape[0] * w.shape[0] * oh * ow * int(np.prod(w.shape[1:]))
        out.layers.append(_conv_layer(name, "Conv2d", w, x, tuple(mod.stride), (pad[0], pad[1], pad[0], pad[1]),
                                      tuple(mod.dilation), mod.groups, macs, vectors, fmt, rng))
    return out


#: id(traced ModelIR) -> (module, example inputs): the module a ModelIR was traced from, while
#: the ModelIR lives (tosim.score(module, ...) with power.distribution: model draws its operands
#: from the module's own weights and activations)
_TORCH_ORIGINS = {}


def remember_torch(model, module, example_inputs):
    """Remember that the :class:`opcount.ModelIR` ``model`` was traced from ``module`` run on
    ``example_inputs`` (as long as ``model`` lives; in this process)."""
    key = id(model)
    _TORCH_ORIGINS[key] = (module, example_inputs)
    weakref.finalize(model, _TORCH_ORIGINS.pop, key, None)


def torch_origin(model):
    """``(module, example_inputs)`` that ``model`` was traced from (:func:`remember_torch`), or ``None``."""
    return _TORCH_ORIGINS.get(id(model))


# --- specs and the zoo: synthetic per-layer distributions -------------------------------------

def _after_relu(model, layer):
    by_name = {item.name: item for item in model.layers}
    current = layer
    while current.inputs:
        producer = by_name.get(current.inputs[0])
        if producer is None:
            return False
        if producer.type in _RELU:
            return True
        if producer.type not in _PASS_THROUGH:
            return False
        current = producer
    return False


def streams_from_spec(model, fmt, *, vectors=1024, seed=0):
    """:class:`ModelStreams` of a model without weights (an :class:`opcount.ModelIR`): the
    synthetic per-layer distributions of the module docstring, for its ``linear`` and
    ``conv2d`` layers."""
    rng = np.random.default_rng(seed)
    out = ModelStreams(model=model.name, format=fmt,
                       source="synthetic per-layer distributions (weights N(0, 1/(3 fan_in)); activations "
                              "relu:zeros=0.5 after a ReLU, else N(0, 1))")
    for layer in model.layers:
        if layer.type == "linear":
            fan_in, outputs = layer.attrs["in"], layer.attrs["out"]
        elif layer.type == "conv2d" and not layer.attrs.get("transposed"):
            fan_in = layer.attrs["in"] // layer.attrs["groups"] * math.prod(layer.attrs["kernel"])
            outputs = layer.attrs["out"]
        else:
            if layer.type.startswith(("conv", "matmul", "bmm", "attention")):
                out.skipped.append((layer.name, layer.type, "no synthetic stream for this layer type"))
            continue
        relu = _after_relu(model, layer)
        length = min(fan_in, vectors)
        rows = max(1, -(-vectors // length))       # enough dot products for the stream
        weights = rng.standard_normal((rows, length)) / math.sqrt(3 * fan_in)
        x = rng.standard_normal((rows, length))
        if relu:
            x = np.abs(x)
            x[rng.random(x.shape) < 0.5] = 0.0
        streams = _dot_streams(lambda i: (weights[i], x[i]), rows, vectors, fmt, rng)
        per_sample = outputs * fan_in * (math.prod(layer.out_shape[1:]) if layer.type == "conv2d" else
                                         math.prod(layer.out_shape[:-1]) if len(layer.out_shape) > 1 else 1)
        out.layers.append(LayerStreams(layer.name, layer.type, int(per_sample), float(np.mean(x == 0)), *streams))
    return out


def model_streams(source, fmt, *, vectors=1024, seed=0, inputs=None, example_inputs=None):
    """:class:`ModelStreams` of ``source``: an ``.onnx`` path (run), a ``torch.nn.Module`` (with
    ``example_inputs``; run), ``FILE.py:NAME`` (a module in a Python file, see
    :func:`torch_factory`; run on its example input or ``inputs``), or anything
    :func:`opcount.load_model` reads (synthetic)."""
    if hasattr(source, "named_modules") and hasattr(source, "forward"):
        if example_inputs is None:
            raise ValueError("a torch module needs example_inputs")
        return streams_from_torch(source, example_inputs, fmt, vectors=vectors, seed=seed)
    if is_torch_factory(source):
        module, example, name = torch_factory(source, inputs)
        out = streams_from_torch(module, example, fmt, vectors=vectors, seed=seed, name=name)
        out.source = f"torch run ({source}) on " + ("the input file" if inputs is not None else "its example input")
        return out
    if isinstance(source, (str, os.PathLike)) and os.fspath(source).lower().endswith(".onnx"):
        return streams_from_onnx(source, fmt, vectors=vectors, seed=seed, inputs=inputs)
    if isinstance(source, (str, os.PathLike)) and os.fspath(source).lower().endswith((".pt", ".pth")):
        raise ValueError("a saved PyTorch file is not read (a state dict holds no architecture, and loading a "
                         "pickled or TorchScript module runs code tosim cannot hook): name the module in a "
                         "Python file, FILE.py:NAME, or export it to .onnx")
    if inputs is not None:
        raise ValueError("an input file goes with an ONNX model or FILE.py:NAME (the others are not run)")
    import opcount
    return streams_from_spec(opcount.load_model(source), fmt, vectors=vectors, seed=seed)


# --- pricing ----------------------------------------------------------------------------------

@dataclass
class ModelActivity:
    """The switching energy of a model's multiplier and adder under its own operand streams.

    ``layers``: per covered layer ``{layer, type, macs, zeros, mul, add}`` with ``mul``/``add``
    the :class:`hwlib.activity.UnitActivity` of the profile's unit. ``mul_fj``/``add_fj``: the
    MAC-weighted means over the covered layers; ``reference``: the same units under the
    synthetic ``normal`` distribution, for comparison; ``covered_macs`` of ``total_macs``.
    """

    streams: ModelStreams
    profile: str
    layers: list
    mul_fj: float
    add_fj: float
    reference: dict
    covered_macs: int

    def to_json(self):
        return {"model": self.streams.model, "source": self.streams.source, "format": self.streams.format,
                "profile": self.profile, "mul_fj_per_op": self.mul_fj, "add_fj_per_op": self.add_fj,
                "reference": {k: v.to_json() for k, v in self.reference.items()},
                "covered_macs": self.covered_macs,
                "skipped": [{"layer": n, "type": t, "reason": r} for n, t, r in self.streams.skipped],
                "layers": [{"layer": item["layer"], "type": item["type"], "macs": item["macs"],
                            "zeros": item["zeros"], "mul": item["mul"].to_json(), "add": item["add"].to_json()}
                           for item in self.layers]}


def model_activity(streams, profile, *, model=None, glitches=False, seed=0, progress=None):
    """Price :class:`ModelStreams` on ``profile``'s floating-point multiplier and adder in the
    streams' format; see :class:`ModelActivity`. Raises ``ValueError`` when no layer is covered."""
    from hwlib.activity import fp_activity, fp_stream_activity
    if not streams.layers:
        raise ValueError(f"{streams.model}: no linear, MatMul/Gemm or 2-D convolution layer to draw operands from"
                         + (f" ({len(streams.skipped)} skipped)" if streams.skipped else ""))
    fmt = streams.format
    layers = []
    for index, item in enumerate(streams.layers, 1):
        if progress is not None:
            progress(index, len(streams.layers), item.name)
        label = f"{item.name} ({streams.source.split(' ')[0]})"
        mul = fp_stream_activity("mul", fmt, profile, item.mul_a, item.mul_b, label=label, seed=seed,
                                 model=model, glitches=glitches)
        add = fp_stream_activity("add", fmt, profile, item.add_a, item.add_b, label=label, seed=seed,
                                 model=model, glitches=glitches)
        layers.append({"layer": item.name, "type": item.type, "macs": item.macs, "zeros": item.zeros,
                       "mul": mul, "add": add})
    covered = sum(item["macs"] for item in layers)
    weight = [item["macs"] / covered if covered else 1 / len(layers) for item in layers]
    mul_fj = float(sum(w * item["mul"].energy_fj_per_op for w, item in zip(weight, layers)))
    add_fj = float(sum(w * item["add"].energy_fj_per_op for w, item in zip(weight, layers)))
    vectors = len(streams.layers[0].mul_a)
    reference = {op: fp_activity(op, fmt, profile, "normal", vectors=vectors, seed=seed, model=model,
                                 glitches=glitches) for op in ("mul", "add")}
    return ModelActivity(streams=streams, profile=profile.name, layers=layers, mul_fj=mul_fj, add_fj=add_fj,
                         reference=reference, covered_macs=int(covered))


# --- saved streams (``--save-streams``; ``streams:FILE`` in a profile's power.distribution) ------

#: Layer types of the streams in opcount's vocabulary (the ``layers:`` keys of a profile).
_GROUP = {"Gemm": "linear", "MatMul": "linear", "Linear": "linear", "linear": "linear",
          "Conv": "conv2d", "Conv2d": "conv2d", "conv2d": "conv2d"}


def _weighted(layers, vectors):
    """One stream per array from ``layers``: each layer's first operations in proportion to its
    MACs (largest remainders; at least 2 for a layer that gets any), in layer order."""
    total = sum(item.macs for item in layers)
    shares = [vectors * item.macs / total if total else vectors / len(layers) for item in layers]
    counts = [int(x) for x in shares]
    for i in sorted(range(len(layers)), key=lambda i: shares[i] - counts[i], reverse=True)[:vectors - sum(counts)]:
        counts[i] += 1
    counts = [0 if n == 0 else max(2, min(n, len(item.mul_a))) for n, item in zip(counts, layers)]
    return {name: np.concatenate([getattr(item, name)[:n] for n, item in zip(counts, layers) if n])
            for name in ("mul_a", "mul_b", "add_a", "add_b")}


def stream_arrays(streams, vectors=None):
    """The arrays of a streams file: ``mul_a``, ``mul_b``, ``add_a``, ``add_b`` over all the
    covered layers and ``TYPE.mul_a`` ... over the layers of each type (``linear``,
    ``conv2d``); each layer contributes its first operations in proportion to its MACs, about
    ``vectors`` in all (default the streams' length per layer)."""
    if not streams.layers:
        raise ValueError(f"{streams.model}: no linear, MatMul/Gemm or 2-D convolution layer to draw operands from")
    vectors = vectors or len(streams.layers[0].mul_a)
    out = dict(_weighted(streams.layers, vectors))
    groups = {}
    for item in streams.layers:
        groups.setdefault(_GROUP.get(item.type, item.type.lower()), []).append(item)
    for group, layers in sorted(groups.items()):
        out.update({f"{group}.{name}": values for name, values in _weighted(layers, vectors).items()})
    return out


def save_streams(streams, path, vectors=None):
    """Write :func:`stream_arrays` of ``streams`` to ``path`` (``.npz``, atomically), with the
    model, format and source as text arrays; returns the array names."""
    import io

    from ._io import write_atomic
    arrays = stream_arrays(streams, vectors)
    meta = {"model": np.array(streams.model), "format": np.array(streams.format), "source": np.array(streams.source)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **meta)
    write_atomic(path, buffer.getvalue())
    return sorted(arrays)
