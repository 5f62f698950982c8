"""The ONNX frontend: an ``.onnx`` file to a ModelIR, through ONNX shape inference.

The graph's one non-constant input is the model input and its first dimension the batch (it may
be symbolic); every other dimension must be known after shape inference. Nodes map to layer
types: Gemm and MatMul with a constant weight (plus a following Add of a constant bias) to
``linear``, MatMul of two activations to ``matmul``, Conv/ConvTranspose, pools, norms and
activations to theirs, Gather on a constant table to ``embedding``. The elementwise
subgraphs PyTorch writes for GELU (Div-Erf-Add-Mul-Mul, or the Pow-Tanh form) and SiLU
(Sigmoid-Mul) are recognised by evaluating them numerically and become one ``gelu``/``silu``
layer, so they are priced by the profile's recipe like the same model written as a spec.
Other elementwise arithmetic is counted per output element, reductions per reduced element,
shape operations (Reshape, Transpose, Slice, Gather of indices, Concat with constants, ...) are
free, and nodes computed from constants only (shape arithmetic) are folded away. Any other op
becomes an uncounted layer and the result says it is incomplete.

Parameters are the initializer elements a layer reads (scalars excluded: they are constants).
"""
import os

import numpy as np

from hardware_profiles import _read

from ._ir import ModelError, build_model

__all__ = ["load_onnx"]

_ZERO_COST = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Cast",
              "Slice", "Pad", "Expand", "Split", "Tile", "Gather", "GatherElements", "Concat", "CastLike",
              "Shape", "Size", "ConstantOfShape", "Range", "Constant", "NonZero", "Where", "ScatterND",
              "DepthToSpace", "SpaceToDepth", "Resize", "Upsample", "ArgMax"}
_DATA_INDEPENDENT = {"Shape", "Size", "Constant", "ConstantOfShape"}
_FUSABLE = {"Add", "Sub", "Mul", "Div", "Pow", "Erf", "Tanh", "Sigmoid", "Sqrt"}


class _Node:
    def __init__(self, op, name, inputs, outputs, attrs):
        self.op, self.name, self.inputs, self.outputs, self.attrs = op, name, list(inputs), list(outputs), attrs


def _attrs(node):
    import onnx
    out = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, onnx.TensorProto):
            value = onnx.numpy_helper.to_array(value)
        out[a.name] = value
    return out


def _fail(where, message):
    raise ModelError(f"{where}: {message}")


# --- numeric recognition of fused activations --------------------------------------------------

def _erf(x):
    from scipy.special import erf
    return erf(x)


_REFERENCE = {
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
    "silu": lambda x: x / (1 + np.exp(-x)),
}


def _evaluate(nodes, x_name, out_name, consts):
    env = {x_name: np.linspace(-4.0, 4.0, 33)}
    for node in nodes:
        args = [env[i] if i in env else np.asarray(consts[i], dtype=np.float64) for i in node.inputs]
        with np.errstate(all="ignore"):
            value = {"Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b,
                     "Div": lambda a, b: a / b, "Pow": lambda a, b: np.power(a, b), "Erf": _erf, "Tanh": np.tanh,
                     "Sigmoid": lambda a: 1 / (1 + np.exp(-a)), "Sqrt": np.sqrt}[node.op](*args)
        env[node.outputs[0]] = value
    return env[out_name]


def _fuse_activations(nodes, consts, consumers, graph_outputs):
    """Replace GELU/SiLU subgraphs by single synthetic nodes.

    Around each Erf/Tanh/Sigmoid (the core), take the fusable elementwise nodes within five steps
    up and down; for each candidate source x above the core, grow the region of nodes computed
    from x and constants only, and for each possible end tensor evaluate the subgraph from x to
    it on sample points; the largest one equal to a reference function, whose inner tensors are
    used nowhere else, is replaced."""
    producer = {out: node for node in nodes for out in node.outputs}
    removed, replacements = set(), {}
    for core in nodes:
        if core.op not in ("Erf", "Tanh", "Sigmoid") or id(core) in removed:
            continue
        near, candidates = {id(core)}, []
        frontier = [core]
        for _ in range(5):                                   # upwards
            nxt = []
            for node in frontier:
                for i in node.inputs:
                    if not i or i in consts:
                        continue
                    if i not in candidates:
                        candidates.append(i)
                    p = producer.get(i)
                    if p is not None and p.op in _FUSABLE and id(p) not in near:
                        near.add(id(p))
                        nxt.append(p)
            frontier = nxt
        frontier = [core]
        for _ in range(5):                                   # downwards
            nxt = []
            for node in frontier:
                for c in consumers.get(node.outputs[0], []):
                    if c.op in _FUSABLE and id(c) not in near:
                        near.add(id(c))
                        nxt.append(c)
            frontier = nxt
        local = [n for n in nodes if id(n) in near and id(n) not in removed and len(n.outputs) == 1]
        best = None
        for x in candidates:
            region, outs = [], {x}
            changed = True
            while changed:
                changed = False
                for node in local:
                    if node in region:
                        continue
                    live = [i for i in node.inputs if i and i not in consts]
                    if live and all(i in outs for i in live):
                        region.append(node)
                        outs.add(node.outputs[0])
                        changed = True
            if core not in region:
                continue
            for end in region:
                sub = [n for n in region if _is_ancestor(n, end, producer, x)]
                if core not in sub or (best is not None and len(sub) <= len(best[1])):
                    continue
                internal = {n.outputs[0] for n in sub} - {end.outputs[0]}
                if internal & graph_outputs or any(c not in sub for t in internal for c in consumers.get(t, [])):
                    continue
                try:
                    got = _evaluate(sub, x, end.outputs[0], consts)
                except (KeyError, ValueError, TypeError):
                    continue
                sample = np.linspace(-4.0, 4.0, 33)
                for kind, reference in _REFERENCE.items():
                    want = reference(sample)
                    if np.shape(got) == want.shape and np.allclose(got, want, rtol=1e-4, atol=1e-5):
                        best = (kind, sub, x, end)
                        break
        if best is not None:
            kind, sub, x, end = best
            removed.update(id(n) for n in sub)
            attrs = {"approximate": "tanh" if kind == "gelu_tanh" else "none"}
            replacements[id(end)] = _Node("Silu" if kind == "silu" else "Gelu", core.name, [x], end.outputs, attrs)
    out = []
    for node in nodes:
        if id(node) in replacements:
            out.append(replacements[id(node)])
        elif id(node) not in removed:
            out.append(node)
    return out


def _is_ancestor(node, end, producer, x):
    """Whether ``node`` is ``end`` or computes one of its inputs (not looking above ``x``)."""
    stack, seen = [end], set()
    while stack:
        n = stack.pop()
        if n is node:
            return True
        for i in n.inputs:
            p = producer.get(i)
            if p is not None and i != x and id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return False


# --- loading ----------------------------------------------------------------------------------

def _load_external_data(model, path):
    """Load the tensors an ONNX file keeps in external data files, each checked first: a
    regular file (followed through links) inside the model's folder, recorded as read so that
    no output of the command can overwrite it."""
    from onnx import external_data_helper
    folder = os.path.dirname(os.path.abspath(path))
    external = [t for t in external_data_helper._get_all_tensors(model)
                if external_data_helper.uses_external_data(t)]
    if not external:
        return
    for tensor in external:
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        target = os.path.normpath(os.path.join(folder, location))
        if not location or os.path.isabs(location) or os.path.commonpath([folder, target]) != folder:
            raise ModelError(f"{path}: tensor {tensor.name!r}: external data location {location!r} is not a file "
                             "in the model's folder")
        _read.check_regular(target, f"{path}: tensor {tensor.name!r}: external data {location}")
    external_data_helper.load_external_data_for_model(model, folder)


def load_onnx(path):
    """Read an ONNX file into a ModelIR (inference graph; loss mse, optimizer sgd)."""
    import onnx
    from onnx import numpy_helper
    path = os.fspath(path)
    try:
        if os.path.lexists(path):
            st = _read.check_regular(path)          # a FIFO or /dev/zero would never end
            if st.st_size >= 2 ** 31:
                raise ModelError(f"{path}: is {st.st_size:,} bytes; an ONNX file is at most 2 GiB "
                                 "(larger weights go in external data files)")
        model = onnx.load(path, load_external_data=False)
        _load_external_data(model, path)
    except _read.InputFileError as exc:
        raise ModelError(str(exc)) from None
    except ModelError:
        raise
    except FileNotFoundError:
        raise ModelError(f"{path}: cannot read: No such file or directory") from None
    except Exception as exc:  # onnx raises protobuf DecodeError and others for corrupt files
        raise ModelError(f"{path}: corrupt ONNX file: {' '.join(str(exc).split()) or type(exc).__name__}") from None
    if not model.graph.node:
        raise ModelError(f"{path}: corrupt ONNX file: the graph has no nodes")
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:
        raise ModelError(f"{path}: ONNX shape inference failed: {' '.join(str(exc).split())}") from None
    graph = model.graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    initializers = set(consts)
    shapes = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        tt = value.type.tensor_type
        if tt.HasField("shape"):
            shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    inputs = [v.name for v in graph.input if v.name not in initializers]
    if len(inputs) != 1:
        raise ModelError(f"{path}: expected one graph input, found {len(inputs)} ({', '.join(inputs)})")
    x_name = inputs[0]
    in_shape = shapes.get(x_name)
    if not in_shape or any(d is None for d in in_shape[1:]) or len(in_shape) < 2:
        raise ModelError(f"{path}: input {x_name!r} needs a batch dimension and fixed per-sample dimensions, "
                         f"has {in_shape}")
    nodes = []
    for i, node in enumerate(graph.node):
        nodes.append(_Node(node.op_type, node.name or f"{node.op_type}_{i}", node.input, node.output,
                           _attrs(node)))
    # fold nodes computed from constants and shape metadata
    live = []
    for node in nodes:
        if node.op == "Constant":
            value = node.attrs.get("value")
            if value is None:
                for key in ("value_float", "value_int", "value_floats", "value_ints"):
                    if key in node.attrs:
                        value = np.asarray(node.attrs[key])
            consts[node.outputs[0]] = value if value is not None else np.zeros(())
            continue
        real = [i for i in node.inputs if i]
        if node.op in _DATA_INDEPENDENT or all(i in consts for i in real):
            for out in node.outputs:
                consts.setdefault(out, np.zeros(()))
            continue
        live.append(node)
    consumers = {}
    for node in live:
        for i in node.inputs:
            consumers.setdefault(i, []).append(node)
    graph_outputs = {v.name for v in graph.output}
    live = _fuse_activations(live, consts, consumers, graph_outputs)
    return _to_model(path, model, live, consts, initializers, shapes, x_name, in_shape)


def _per_sample(shapes, name, where):
    shape = shapes.get(name)
    if shape is None or len(shape) < 2 or any(d is None or d < 1 for d in shape[1:]):
        _fail(where, f"output shape {shape} is not known after shape inference (export with fixed shapes)")
    return shape[1:]


def _to_model(path, model, nodes, consts, initializers, shapes, x_name, in_shape):
    layer_of = {x_name: "input"}
    specs = []
    used_names = {"input"}
    consumers = {}
    for node in nodes:
        for i in node.inputs:
            consumers.setdefault(i, []).append(node)
    skip = set()

    def param_count(node):
        return sum(int(consts[i].size) for i in node.inputs if i in initializers and consts[i].size > 1)

    for index, node in enumerate(nodes):
        if id(node) in skip:
            continue
        name = node.name
        while name in used_names:
            name = f"{name}_{index}"
        where = f"{path}: layer {name!r} ({node.op})"
        live = [i for i in node.inputs if i and i not in consts]
        for i in live:
            if i not in layer_of:
                _fail(where, f"input {i!r} is produced by no supported node")
        refs = [layer_of[i] for i in live]
        rank = len(shapes.get(node.inputs[0], in_shape)) if node.inputs and node.inputs[0] in shapes else None
        spec = _node_spec(node, where, consts, shapes, rank, refs, nodes, consumers, skip, param_count)
        outputs = node.outputs
        if spec is None:
            # a zero-cost op: one shape_op per output
            for k, out in enumerate(outputs):
                if not out:
                    continue
                oname = name if k == 0 else f"{name}:{k}"
                shape = _per_sample(shapes, out, where)
                specs.append({"type": "shape_op", "name": oname, "op": node.op, "out_shape": shape,
                              "inputs": refs or ["input"], "params": param_count(node)})
                layer_of[out] = oname
                used_names.add(oname)
            continue
        if len([o for o in outputs if o]) != 1:
            _fail(where, f"nodes with {len(outputs)} outputs are supported only for shape operations")
        out = spec.pop("_output", outputs[0])
        spec.setdefault("name", name)
        spec.setdefault("inputs", refs)
        if spec["type"] not in _SHAPE_CHECKED:
            spec["out_shape"] = _per_sample(shapes, out, where)
        expected = _per_sample(shapes, out, where)
        specs.append(spec)
        layer_of[out] = spec["name"]
        used_names.add(spec["name"])
        spec["_expected"] = tuple(expected)
    if not specs:
        raise ModelError(f"{path}: the graph has no operations that depend on the input")
    expected = {s["name"]: s.pop("_expected", None) for s in specs}
    stem = os.path.splitext(os.path.basename(path))[0]
    ir = build_model(name=model.graph.name or stem, input_shape=in_shape[1:], layers=specs, source=path)
    for layer in ir.layers:
        want = expected.get(layer.name)
        if want is not None and layer.out_shape != want:
            raise ModelError(f"{path}: layer {layer.name!r} ({layer.type}): shape mismatch: inferred "
                             f"{list(layer.out_shape)}, ONNX says {list(want)}")
    return ir


# layer types whose own shape inference is checked against ONNX's (the rest take ONNX's shape)
_SHAPE_CHECKED = {"linear", "matmul", "embedding", "add", "mul", "relu", "leaky_relu", "sigmoid", "tanh", "gelu",
                  "silu", "softmax", "log_softmax", "batchnorm", "layernorm", "groupnorm", "flatten", "concat"}
for _nd in (1, 2, 3):
    _SHAPE_CHECKED |= {f"conv{_nd}d", f"conv_transpose{_nd}d", f"maxpool{_nd}d", f"avgpool{_nd}d",
                       f"adaptive_avgpool{_nd}d", f"adaptive_maxpool{_nd}d"}


def _sym_pads(pads, nd, where):
    if not pads:
        return [0] * nd
    begin, end = list(pads[:nd]), list(pads[nd:])
    if begin != end:
        _fail(where, f"asymmetric padding {list(pads)} is not supported")
    return begin


def _check_weight(node, where, shapes, weight, need, axis, what):
    """The weight must fit the inferred input: it needs ``need`` along input dimension ``axis``
    (ONNX's own shape inference lets a mismatch through, which would count wrong parameters)."""
    shape = shapes.get(node.inputs[0])
    if shape is None or len(shape) < 2 or shape[axis] in (None, need):
        return
    _fail(where, f"weight {node.inputs[1]!r} of shape {list(weight.shape)} needs {need} {what}, but input "
                 f"{node.inputs[0]!r} has per-sample shape {shape[1:]} ({shape[axis]} {what})")


def _node_spec(node, where, consts, shapes, rank, refs, nodes, consumers, skip, param_count):
    op, a = node.op, node.attrs
    const = lambda i: i < len(node.inputs) and node.inputs[i] in consts  # noqa: E731
    n_live = len(refs)
    if op in ("Conv", "ConvTranspose"):
        w = consts.get(node.inputs[1]) if const(1) else None
        if w is None:
            _fail(where, "weights must be constant")
        nd = w.ndim - 2
        kernel = list(w.shape[2:])
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            _fail(where, f"auto_pad {a['auto_pad']} is not supported; export with explicit pads")
        group = int(a.get("group", 1))
        in_channels = int(w.shape[1]) * group if op == "Conv" else int(w.shape[0])
        _check_weight(node, where, shapes, w, in_channels, 1, "input channels")
        out = int(w.shape[0]) if op == "Conv" else int(w.shape[1]) * group
        spec = {"type": f"conv{nd}d" if op == "Conv" else f"conv_transpose{nd}d", "out": out, "kernel": kernel,
                "stride": list(a.get("strides", [1] * nd)), "dilation": list(a.get("dilations", [1] * nd)),
                "padding": _sym_pads(a.get("pads"), nd, where), "groups": group,
                "bias": len(node.inputs) > 2 and bool(node.inputs[2])}
        if op == "ConvTranspose":
            spec["output_padding"] = list(a.get("output_padding", [0] * nd))
            if "output_shape" in a:
                _fail(where, "output_shape is not supported; export with explicit pads")
        return spec
    if op == "Gemm" and n_live == 1 and const(1):
        if a.get("transA", 0):
            _fail(where, "transA is not supported")
        w = consts[node.inputs[1]]
        if w.ndim != 2:
            _fail(where, f"weight {node.inputs[1]!r} must be a matrix, has shape {list(w.shape)}")
        _check_weight(node, where, shapes, w, int(w.shape[1] if a.get("transB", 0) else w.shape[0]), -1,
                      "input features")
        out = int(w.shape[0] if a.get("transB", 0) else w.shape[1])
        return {"type": "linear", "out": out, "bias": len(node.inputs) > 2 and bool(node.inputs[2])}
    if op == "MatMul" and n_live == 1 and const(1) and consts[node.inputs[1]].ndim == 2:
        w = consts[node.inputs[1]]
        _check_weight(node, where, shapes, w, int(w.shape[0]), -1, "input features")
        out = int(w.shape[1])
        spec = {"type": "linear", "out": out, "bias": False}
        users = consumers.get(node.outputs[0], [])
        if len(users) == 1 and users[0].op == "Add":
            add = users[0]
            other = [i for i in add.inputs if i != node.outputs[0]]
            if len(other) == 1 and other[0] in consts and consts[other[0]].shape in ((out,), (1, out)):
                spec["bias"] = True
                spec["_output"] = add.outputs[0]
                skip.add(id(add))
        return spec
    if op == "MatMul" and n_live == 2:
        return {"type": "matmul"}
    if op == "Gather" and const(0) and consts[node.inputs[0]].ndim == 2 and n_live == 1:
        vocab, dim = consts[node.inputs[0]].shape
        return {"type": "embedding", "vocab": int(vocab), "dim": int(dim)}
    if op in ("Add", "Mul") and n_live == 2 and len(node.inputs) == 2 and shapes.get(node.inputs[0]) == shapes.get(
            node.inputs[1]) and refs[0] != refs[1]:
        return {"type": op.lower()}
    if op in ("Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Erf", "Neg", "Reciprocal", "Abs", "Max",
              "Min", "Clip", "Sum", "Mean"):
        return _elementwise_spec(node, consts, n_live, param_count)
    if op == "Relu":
        return {"type": "relu"}
    if op == "LeakyRelu":
        return {"type": "leaky_relu", "slope": float(a.get("alpha", 0.01))}
    if op in ("Sigmoid", "Tanh"):
        return {"type": op.lower()}
    if op == "Gelu":
        return {"type": "gelu", "approximate": a.get("approximate", "none")}
    if op == "Silu":
        return {"type": "silu"}
    if op in ("Softmax", "LogSoftmax"):
        axis = int(a.get("axis", -1))
        if axis == 0 or (rank is not None and axis == -rank):
            _fail(where, "softmax over the batch dimension is not supported")
        return {"type": "softmax" if op == "Softmax" else "log_softmax", "axis": axis - 1 if axis > 0 else axis}
    if op in ("MaxPool", "AveragePool"):
        k = list(a["kernel_shape"])
        nd = len(k)
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            _fail(where, f"auto_pad {a['auto_pad']} is not supported")
        spec = {"type": f"{'max' if op == 'MaxPool' else 'avg'}pool{nd}d", "kernel": k,
                "stride": list(a.get("strides", [1] * nd)), "padding": _sym_pads(a.get("pads"), nd, where),
                "ceil_mode": bool(a.get("ceil_mode", 0))}
        if op == "MaxPool":
            spec["dilation"] = list(a.get("dilations", [1] * nd))
        return spec
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        nd = rank - 2
        return {"type": f"adaptive_{'avg' if op == 'GlobalAveragePool' else 'max'}pool{nd}d", "out": 1}
    if op == "BatchNormalization":
        return {"type": "batchnorm", "eps": float(a.get("epsilon", 1e-5))}
    if op == "LayerNormalization":
        axis = int(a.get("axis", -1))
        dims = -axis if axis < 0 else rank - axis
        return {"type": "layernorm", "dims": dims, "eps": float(a.get("epsilon", 1e-5)),
                "bias": len(node.inputs) > 2 and bool(node.inputs[2])}
    if op == "GroupNormalization":
        return {"type": "groupnorm", "groups": int(a["num_groups"]), "eps": float(a.get("epsilon", 1e-5))}
    if op == "InstanceNormalization":
        return {"type": "groupnorm", "groups": int(shapes[node.inputs[0]][1]), "eps": float(a.get("epsilon", 1e-5))}
    if op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"):
        return {"type": "reduce", "kind": op[6:].lower()}
    if op == "Flatten":
        axis = int(a.get("axis", 1))
        if axis < 1 or axis == rank:
            _fail(where, f"flatten at axis {axis} mixes the batch dimension")
        return {"type": "flatten", "start": axis - 1}
    if op == "Concat" and n_live == len([i for i in node.inputs if i]) and n_live > 1:
        axis = int(a["axis"])
        if axis == 0 or (rank is not None and axis == -rank):
            _fail(where, "concat over the batch dimension is not supported")
        return {"type": "concat", "axis": axis - 1 if axis > 0 else axis}
    if op in _ZERO_COST:
        return None
    return {"type": op, "params": param_count(node)}


_ELEMENTWISE = {
    # op: (forward per output element, backward per output element)
    "Add": ({"add": 1}, {}),
    "Sum": (None, {}),
    "Sub": ({"sub": 1}, {"sub": 1}),
    "Mul": ({"mul": 1}, {"mul": 1}),
    "Div": ({"div": 1}, {"div": 2, "mul": 1, "sub": 1}),
    "Sqrt": ({"sqrt": 1}, {"mul": 1, "div": 1}),
    "Exp": ({"exp": 1}, {"exp": 1}),
    "Log": ({"log": 1}, {"log": 1}),
    "Erf": ({"erf": 1}, {"erf": 1}),
    "Neg": ({"sub": 1}, {"sub": 1}),
    "Reciprocal": ({"div": 1}, {"mul": 2, "sub": 1}),
    "Abs": ({"cmp": 1}, {"cmp": 1}),
    "Clip": ({"cmp": 2}, {"cmp": 2}),
}


def _elementwise_spec(node, consts, n_live, param_count):
    """Per-element costs of ONNX elementwise arithmetic. Backward tables are per output element:
    Sub/Neg negate (1 sub); Mul multiplies dy by the other operand (1 mul per operand needing a
    gradient); a/b: dy/b (1 div) and -dy*out/b (1 mul, 1 div, 1 sub); sqrt: dy/(2*out) (1 mul,
    1 div); Pow by a constant: x^2 1 mul fwd / 2 mul bwd, x^3 2 mul / 3 mul, x^0.5 as sqrt, any
    other exponent exp(log(x)*p) fwd and p*out/x*dy (2 mul, 1 div) bwd."""
    op = node.op
    params = param_count(node)
    if op == "Pow":
        p = consts.get(node.inputs[1]) if len(node.inputs) > 1 else None
        p = float(np.asarray(p).reshape(-1)[0]) if p is not None and np.asarray(p).size == 1 else None
        if p == 2:
            fwd, bwd = {"mul": 1}, {"mul": 2}
        elif p == 3:
            fwd, bwd = {"mul": 2}, {"mul": 3}
        elif p == 0.5:
            fwd, bwd = {"sqrt": 1}, {"mul": 1, "div": 1}
        else:
            fwd, bwd = {"log": 1, "mul": 1, "exp": 1}, {"mul": 2, "div": 1}
    elif op in ("Max", "Min"):
        k = len([i for i in node.inputs if i]) - 1
        fwd, bwd = {"cmp": k}, {"cmp": k}
    elif op == "Mean":
        k = len([i for i in node.inputs if i]) - 1
        fwd, bwd = {"add": k, "div": 1}, {"div": 1}
    elif op == "Sum":
        k = len([i for i in node.inputs if i]) - 1
        fwd, bwd = {"add": k}, {}
    else:
        fwd, bwd = _ELEMENTWISE[op]
        if op == "Mul":
            bwd = {"mul": n_live}
        elif op == "Sub" and node.inputs[1] in consts:
            bwd = {}
        elif op == "Div" and node.inputs[1] in consts:
            bwd = {"div": 1}
    spec = {"type": "elementwise", "op": op, "ops": dict(fwd), "backward": dict(bwd)}
    if params:
        spec["params"] = params
    return spec
