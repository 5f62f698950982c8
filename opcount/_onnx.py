"""The ONNX frontend: an ``.onnx`` file to a ModelIR.

Shapes. ONNX shape inference runs with data propagation; where it stops (a Reshape whose target
is computed at run time from ``Shape`` nodes, as both PyTorch exporters write attention), the
nodes computed from constants and known shapes are evaluated here with ONNX's reference
implementation (bounded: a constant of more than a million elements keeps only its shape) and
inference runs again, until every tensor has a shape. A symbolic batch dimension is fixed to 1.

The batch axis. The first graph input is the model input and its first dimension the batch;
further inputs (masks, token types) enter as free views of it with the same batch. The batch's
position is tracked through every node: Transpose moves it, Reshape, Flatten, Squeeze and
Unsqueeze may merge it with other axes (PyTorch's multi-head attention works on
``(T, B*heads, head_dim)``) or split it off again, Gather/Slice/Concat/MatMul keep it. A layer's
per-sample shape is its ONNX shape with the batch axis removed (or divided by the batch where it
is merged), so a projection of a ``(T, B, D)`` tensor counts all T tokens of every sample. At
batch 1 any axis may hold the batch and every choice counts the same. A reduction over the batch
axis (DynamicQuantizeLinear's range, a ReduceMax over every axis) gives a whole-batch value, one
for the batch: its layers are counted once (``once``), the reduction itself on the batch's
elements, and elementwise arithmetic broadcasting it over a per-sample tensor per sample; other
ops reading one are uncounted layers saying so.

Layers. Gemm and MatMul with a constant weight (plus a following Add of a constant bias) become
``linear`` (``tied_to`` the first layer where the weight is shared), MatMul of two activations
``matmul``, the attention core as PyTorch's scaled_dot_product_attention writes it (MatMul, a
scale, optional mask, Softmax, MatMul) ``sdpa``, Conv/ConvTranspose, pools, norms and activations
theirs, Gather on a constant table ``embedding``, LSTM/GRU/RNN ``lstm``/``gru``/``rnn``, a learned
token concatenated to the sequence ``cls_token``, a learned table added to it
``positional_embedding``, and other weights read by arithmetic ``parameter`` layers. The
elementwise subgraphs PyTorch writes for GELU (Div-Erf-Add-Mul-Mul, or the Pow-Tanh form) and
SiLU (Sigmoid-Mul) are recognised by evaluating them numerically and become one ``gelu``/``silu``
layer, so they are priced by the profile's recipe like the same model written as a spec. Other
elementwise arithmetic is counted per output element, reductions per reduced element, shape
operations (Reshape, Transpose, Slice, Gather of indices, Concat with constants, ...) are free
(slices read only their part, so the disjoint parts of a split need no gradient sum), and nodes
computed from constants only are folded away. Any other op (TopK, custom domains, ...) becomes an
uncounted layer: the result says it is incomplete and :class:`IncompleteModelWarning` is issued.

Parameters are the floating-point initializer elements a layer reads (scalars excluded: they are
constants); a weight that feeds the graph but no layer is listed in ``left_out``. Malformed
initializers and attributes are one-line :class:`ModelError`. The model is named after the file.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np

from hardware_profiles import files as _bounded

from . import _onnx_flow as _flow
from hardware_profiles.schema import INT_ACCUMULATOR, INT_FORMAT_BITS as _INT_LAYER_FORMATS, MAC_LAYER_TYPES

from ._ir import DEQUANTIZE_OPS, QUANTIZE_OPS, ModelError, ModelIR, build_model

__all__ = ["load_onnx"]

_ZERO_COST = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Cast",
              "Slice", "Pad", "Expand", "Split", "Tile", "Gather", "GatherElements", "GatherND", "Concat", "CastLike",
              "Shape", "Size", "ConstantOfShape", "Range", "Constant", "NonZero", "Where", "ScatterND",
              "ScatterElements", "DepthToSpace", "SpaceToDepth", "Trilu", "Not", "And", "Or", "Xor"}
_COMPARE = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"}
_GATHERS = {"Gather", "GatherElements", "GatherND"}
_CONTROL_FLOW = {"Loop", "Scan", "If"}
_SHAPE_KEEPING = {"GroupNormalization", "InstanceNormalization", "LayerNormalization", "LpNormalization",
                  "MeanVarianceNormalization", "BatchNormalization"}
_UNROLL_ROUNDS = 8             # control flow nested deeper is left uncounted (and reported)
# integer and quantization ops (their scales and zero points are no parameters)
_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
              "MatMulInteger", "ConvInteger"}
# input positions of the quantized weights (integer initializers that count as parameters)
_QUANT_WEIGHTS = {"DequantizeLinear": (0,), "QLinearConv": (3, 8), "QLinearMatMul": (0, 3), "MatMulInteger": (0, 1),
                  "ConvInteger": (1,)}
_QUANT_DTYPES = ("int8", "uint8", "int16", "uint16", "int4", "uint4")
_NOT_COUNTED = "no formula for it here, so it is not counted"
_QDQ_REASON = ("quantized (QDQ): its operands are dequantized integers, which a runtime may compute in integer "
               "arithmetic (QLinearAdd and the like); counted as the floating-point ops the graph writes")
#: The integer matrix products: input positions of (data, weight, optional int32 bias) and of the
#: zero points (data's, weight's); QLinear* requantize their int32 sums to the output's type.
_INTEGER_PRODUCTS = {"QLinearConv": (0, 3, 8, (2, 5)), "ConvInteger": (0, 1, None, (2, 3)),
                     "QLinearMatMul": (0, 3, None, (2, 5)), "MatMulInteger": (0, 1, None, (2, 3))}
#: Integer element types of ONNX tensors -> tosim's format of that width (uint8 is priced as int8:
#: the same width, an unsigned operand on the signed unit).
_INT_FORMAT = {"int8": "int8", "uint8": "int8", "int4": "int4", "uint4": "int4"}
#: Per element: QuantizeLinear x / scale, rounded (the float-to-integer conversion, no basic op),
#: + zero point, saturated low and high; DequantizeLinear (x - zero point) x scale (one recipe
#: with the conversions count_model adds at the edges of a spec's integer layers).
_QUANTIZE_OPS = QUANTIZE_OPS
_DEQUANTIZE_OPS = DEQUANTIZE_OPS
#: The sum of two quantized tensors (onnxruntime's QLinearAdd, a QDQ Add group), in int32 per
#: output element, as a fixed-point kernel does it: each input less its zero point (2 sub) and
#: rescaled to the output scale (2 mul, fixed-point multipliers), the sum (1 add), the rounding
#: constant and the output zero point (2 add), saturation low and high (2 cmp).
_INTEGER_ADD = {"type": "elementwise", "op": "QLinearAdd", "ops": {"sub": 2, "mul": 2, "add": 3, "cmp": 2},
                "backward": {}, "no_grad": True, "format": "int32"}
#: A QDQ group (DequantizeLinear inputs -> Conv/Gemm/MatMul [-> Relu] -> QuantizeLinear) is the
#: integer product a runtime runs (ONNX Runtime fuses it into QLinearConv/QLinearMatMul).
_QDQ_PRODUCTS = ("Conv", "Gemm", "MatMul")
_VIEWS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity")
_DATA_INDEPENDENT = {"Shape", "Size", "Constant", "ConstantOfShape"}
_FUSABLE = {"Add", "Sub", "Mul", "Div", "Pow", "Erf", "Tanh", "Sigmoid", "Sqrt"}
_RESHAPES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}
_SAME_SHAPE_NCHW = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool",
                    "GlobalMaxPool", "BatchNormalization", "InstanceNormalization", "GroupNormalization",
                    "LRN", "DepthToSpace", "SpaceToDepth", "Resize", "Upsample", "MaxUnpool"}
_BROADCAST = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less",
              "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "PRelu", "Mod", "BitShift"}
# ops whose output has no more elements than their inputs together: evaluated even before their
# output shape is known
_NOT_LARGER = {"Constant", "Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Cast",
               "Identity", "Transpose", "Split", "Neg", "Abs", "Floor", "Ceil", "Sqrt", "Not", "Sign", "Reciprocal",
               "ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceMean", "Shape", "Size", "Squeeze"}
# ops whose output size _estimated_size bounds from their input values (the dynamo exporter's
# arange(seq) is a Range whose output shape ONNX inference leaves unknown)
_SIZED_BY_VALUES = {"ConstantOfShape", "Expand", "Tile", "Range"}
_FOLD_LIMIT = 1 << 20          # elements: larger constant results keep their shape, not their values
_MAX_ELEMENTS = 1 << 40        # an initializer larger than this cannot be a real model's
_RNN_KIND = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}


class _Node:
    def __init__(self, op, name, inputs, outputs, attrs, domain=""):
        self.op, self.name, self.inputs, self.outputs, self.attrs = op, name, list(inputs), list(outputs), attrs
        self.domain = domain


def _fail(where, message):
    raise ModelError(f"{where}: {message}")


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


# --- reading ------------------------------------------------------------------------------------

def _bad(where, message):
    raise ModelError(f"{where} {message}")


def _tensor_array(tensor, where):
    """A TensorProto as a numpy array, or a one-line ModelError naming ``where`` when its type,
    dimensions or data cannot make one."""
    import onnx
    from onnx import TensorProto, numpy_helper
    dtype = tensor.data_type
    if dtype == TensorProto.UNDEFINED or dtype not in TensorProto.DataType.values():
        _bad(where, f"has an undefined element type ({dtype})")
    if dtype == TensorProto.STRING:
        _bad(where, "holds strings; tosim reads numeric tensors only")
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        _bad(where, f"has negative dimensions {dims}")
    size = math.prod(dims)
    if size > _MAX_ELEMENTS:
        _bad(where, f"has dimensions {dims} ({size} elements), more than any model holds")
    if tensor.data_location == TensorProto.EXTERNAL:
        _bad(where, "its external data was not loaded (is the data file beside the model?)")
    try:
        np_dtype = onnx.helper.tensor_dtype_to_np_dtype(dtype)
    except Exception:
        _bad(where, f"has an element type tosim cannot read ({TensorProto.DataType.Name(dtype)})")
    if tensor.HasField("raw_data"):
        bits = 4 if dtype in (TensorProto.INT4, TensorProto.UINT4) + tuple(
            getattr(TensorProto, n) for n in ("FLOAT4E2M1",) if hasattr(TensorProto, n)) else 8 * np.dtype(
            np_dtype).itemsize
        need = (size * bits + 7) // 8
        if len(tensor.raw_data) != need:
            _bad(where, f"has {len(tensor.raw_data)} bytes of raw data; its shape {dims} of "
                         f"{TensorProto.DataType.Name(dtype)} needs {need}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return numpy_helper.to_array(tensor)
    except Exception as exc:  # numpy/onnx raise ValueError, TypeError, ... for malformed data
        _bad(where, f"cannot be read: {_one_line(exc)}")


def _attrs(node, where):
    import onnx
    out = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            out[a.name] = _tensor_array(a.t, f"{where}: attribute {a.name!r}")
            continue
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            out[a.name] = None                 # subgraphs (If, Loop, Scan): the node stays uncounted
            continue
        try:
            value = onnx.helper.get_attribute_value(a)
        except Exception as exc:
            _fail(where, f"attribute {a.name!r} cannot be read: {_one_line(exc)}")
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        elif isinstance(value, list):
            value = [v.decode(errors="replace") if isinstance(v, bytes) else v for v in value]
        out[a.name] = value
    return out


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
        _bounded.check_regular(target, f"{path}: tensor {tensor.name!r}: external data {location}")
    external_data_helper.load_external_data_for_model(model, folder)


def _read(path):
    import onnx
    try:
        if os.path.lexists(path):
            st = _bounded.check_regular(path)          # a FIFO or /dev/zero would never end
            if st.st_size >= 2 ** 31:
                raise ModelError(f"{path}: is {st.st_size:,} bytes; an ONNX file is at most 2 GiB "
                                 "(larger weights go in external data files)")
        model = onnx.load(path, load_external_data=False)
        _load_external_data(model, path)
    except _bounded.InputFileError as exc:
        raise ModelError(str(exc)) from None
    except ModelError:
        raise
    except FileNotFoundError:
        raise ModelError(f"{path}: cannot read: No such file or directory") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: cannot read: is a folder") from None
    except Exception as exc:  # onnx raises protobuf DecodeError and others for corrupt files
        raise ModelError(f"{path}: corrupt ONNX file: {_one_line(exc)}") from None
    if not model.graph.node:
        raise ModelError(f"{path}: corrupt ONNX file: the graph has no nodes")
    return model


def _shape_of(value):
    tt = value.type.tensor_type
    if not value.type.HasField("tensor_type") or not tt.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)


def _opset(model):
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return 13


def _run_node(node, values, opset):
    """Evaluate one standard node on numpy inputs with ONNX's reference implementation."""
    from onnx.reference import ReferenceEvaluator
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        feeds = {name: value for name, value in values.items() if name}
        return ReferenceEvaluator(node, opsets={"": opset}).run(None, feeds)


def _estimated_size(node, consts):
    """An upper bound on the elements a constant node would produce, or None if unknown."""
    def ints(i):
        value = consts.get(node.input[i]) if len(node.input) > i and node.input[i] else None
        return None if value is None else [int(v) for v in np.asarray(value).reshape(-1)]
    op = node.op_type
    if op == "ConstantOfShape":
        shape = ints(0)
        return None if shape is None else math.prod(max(d, 0) for d in shape)
    if op == "Expand":
        shape = ints(1)
        data = consts.get(node.input[0])
        if shape is None or data is None:
            return None
        return math.prod(max(d, 1) for d in shape) * max(np.asarray(data).size, 1)
    if op == "Tile":
        reps = ints(1)
        data = consts.get(node.input[0])
        return None if reps is None or data is None else math.prod(max(r, 0) for r in reps) * np.asarray(data).size
    if op == "Range":
        try:
            start, limit, delta = (float(np.asarray(consts[i]).reshape(-1)[0]) for i in node.input[:3])
            return max(0, math.ceil((limit - start) / delta)) if delta else None
        except (KeyError, IndexError, ValueError, OverflowError, TypeError):
            return None
    if op in ("Resize", "Upsample", "Pad", "OneHot", "EyeLike", "RandomNormal", "RandomUniform"):
        return None
    return sum(np.asarray(consts[i]).size for i in node.input if i) or 1


# --- shapes: inference with data propagation, and folding where it stops ------------------------

def _placeholder(shape, elem_type):
    """A read-only array of ``shape`` that takes no memory: the value of a constant too large to
    evaluate (only its shape is used)."""
    import onnx
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem_type) if elem_type else np.float32
    except Exception:
        dtype = np.float32
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)


def _inference_model(model, nodes, consts, real, x_names, batch):
    """A light copy of ``model`` for shape inference: ``nodes`` only, constants small enough to
    matter for shapes as initializers, larger ones as typed inputs (their data is not needed).
    ``x_names`` maps each graph input to its batch axis."""
    import onnx
    from onnx import helper, numpy_helper
    graph = model.graph
    model_inputs = []
    for name, axis in x_names.items():
        x_copy = onnx.ValueInfoProto()
        x_copy.CopyFrom(next(v for v in graph.input if v.name == name))
        x_copy.type.tensor_type.shape.dim[axis].Clear()
        x_copy.type.tensor_type.shape.dim[axis].dim_value = batch
        model_inputs.append(x_copy)
    first = next(iter(x_names))
    x = next(v for v in graph.input if v.name == first)
    # Range is never given to ONNX's data propagation, which would materialise it whatever its
    # length (a hostile Range(0, 2**40) never returns): small ones are folded here, the others
    # enter as inputs of their known length
    ranges = [n for n in nodes if n.op_type == "Range" and n.domain in ("", "ai.onnx")]
    nodes = [n for n in nodes if not (n.op_type == "Range" and n.domain in ("", "ai.onnx"))]
    inits, extra_inputs = [], []
    for node in ranges:
        try:
            start, limit, delta = (np.asarray(consts[i]).reshape(-1)[0] for i in node.input[:3])
            length = [max(0, math.ceil((float(limit) - float(start)) / float(delta)))] if float(delta) else [None]
            elem = helper.np_dtype_to_tensor_dtype(np.asarray(consts[node.input[0]]).dtype)
        except (KeyError, IndexError, ValueError, OverflowError, TypeError):
            length, elem = [None], onnx.TensorProto.INT64
        extra_inputs.append(helper.make_tensor_value_info(node.output[0], elem, length))
    needed = {i for n in nodes for i in n.input if i} | {o.name for o in graph.output}
    for name in sorted(needed & set(consts)):
        value = consts[name]
        if name in real and value.size <= _FOLD_LIMIT:
            try:
                inits.append(numpy_helper.from_array(np.array(value, copy=True, order="C"), name))
                continue
            except Exception:
                pass
        try:
            elem = helper.np_dtype_to_tensor_dtype(value.dtype)
        except Exception:
            elem = onnx.TensorProto.FLOAT
        extra_inputs.append(helper.make_tensor_value_info(name, elem, list(value.shape)))
    symbol = x.type.tensor_type.shape.dim[x_names[first]].dim_param

    def at_batch(v):
        """A copy of value info ``v`` with the input's batch symbol fixed to ``batch``."""
        v_copy = onnx.ValueInfoProto()
        v_copy.CopyFrom(v)
        for d in v_copy.type.tensor_type.shape.dim:
            if symbol and d.dim_param == symbol:
                d.Clear()
                d.dim_value = batch
        return v_copy

    # shapes the file states, and its outputs: the batch symbol there is the batch too
    given = [at_batch(v) for v in graph.value_info if v.name not in consts]
    outputs = [at_batch(v) for v in graph.output]
    g = helper.make_graph(nodes, graph.name or "g", model_inputs + extra_inputs, outputs, inits,
                          value_info=given)
    m = helper.make_model(g, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    for f in model.functions:
        m.functions.append(f)
    return m


def _long_vector(model, limit=1 << 16):
    """Whether a 1-D tensor of the inferred model is longer than ``limit``."""
    g = model.graph
    for value in list(g.input) + list(g.value_info) + list(g.output):
        shape = _shape_of(value)
        if shape is not None and len(shape) == 1 and shape[0] is not None and shape[0] > limit:
            return True
    return any(len(t.dims) == 1 and t.dims[0] > limit for t in g.initializer)


def _resolve(model, consts, x_names, batch, path):
    """Shapes of every tensor and the values of every constant one (folded shape arithmetic).

    Returns ``(shapes, consts, real, origin)``: ``real`` names the constants whose values are
    known (the rest are placeholders of the right shape), ``origin`` maps each constant to the
    initializers it was computed from."""
    import onnx
    opset = _opset(model)
    nodes = list(model.graph.node)
    real = set(consts)
    origin = {name: {name} for name in consts}
    folded = set()
    elem_types = {}
    shapes = {}
    for _ in range(100):                    # until nothing more folds
        remaining = [n for k, n in enumerate(nodes) if k not in folded]
        work = _inference_model(model, remaining, consts, real, x_names, batch)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plain = onnx.shape_inference.infer_shapes(work)
                # data propagation carries the values of 1-D tensors (shapes) through the graph;
                # on a long one it would build millions of dimensions, so it runs only without
                work = plain if _long_vector(plain) else onnx.shape_inference.infer_shapes(work, data_prop=True)
        except Exception as exc:
            raise ModelError(f"{path}: ONNX shape inference failed: {_one_line(exc)}") from None
        shapes = {}
        for value in list(work.graph.input) + list(work.graph.value_info) + list(work.graph.output):
            shape = _shape_of(value)
            if shape is not None:
                shapes[value.name] = shape
            elem_types[value.name] = value.type.tensor_type.elem_type
        for name, value in consts.items():
            shapes[name] = tuple(value.shape)
        progress = False
        for node in nodes:
            # normalizations keep their input's shape; ONNX's inference leaves some (the function
            # op GroupNormalization, onnxruntime's contrib ops) without one, so it is stated for
            # the next round
            if not node.output or not node.output[0] or shapes.get(node.output[0]) is not None:
                continue
            if node.op_type in _SHAPE_KEEPING and node.domain in ("", "ai.onnx"):
                known = {0: shapes.get(node.input[0]) if node.input else None}
            elif node.domain == "com.microsoft":
                known = _ms_shapes(node, shapes, consts)
            else:
                continue
            for k, shape in known.items():
                if (k < len(node.output) and node.output[k] and shape is not None and None not in shape
                        and shapes.get(node.output[k]) is None):
                    model.graph.value_info.append(onnx.helper.make_tensor_value_info(
                        node.output[k], elem_types.get(node.input[0]) or onnx.TensorProto.FLOAT, list(shape)))
                    progress = True
        for k, node in enumerate(nodes):
            if k in folded or node.domain not in ("", "ai.onnx") or node.op_type in _CONTROL_FLOW:
                continue
            ins = [i for i in node.input if i]
            outs = [o for o in node.output if o]
            op = node.op_type
            values = None
            if op in ("Shape", "Size"):
                shape = shapes.get(ins[0]) if ins else None
                if shape is None or any(d is None for d in shape):
                    continue
                values = {ins[0]: _placeholder(shape, elem_types.get(ins[0]))}
            elif all(i in consts for i in ins) and op not in ("RandomNormal", "RandomUniform", "Multinomial",
                                                               "RandomNormalLike", "RandomUniformLike"):
                values = {i: consts[i] for i in ins}
            else:
                continue
            size = _estimated_size(node, consts) if op not in ("Shape", "Size") else 1
            known = [shapes.get(o) for o in outs]
            if all(k is not None and None not in k for k in known):
                size = max([size or 0] + [math.prod(k) for k in known])
            elif op not in _NOT_LARGER and (size is None or op not in _SIZED_BY_VALUES):
                size = None                          # an output of unknown size: not evaluated
            result = None
            if all(i in real for i in ins) or op in ("Shape", "Size"):
                if size is not None and size <= _FOLD_LIMIT:
                    try:
                        result = _run_node(node, values, opset)
                    except Exception:
                        result = None
            if result is not None and len(result) >= len(node.output):
                for out, value in zip(node.output, result):
                    if out:
                        consts[out] = np.asarray(value)
                        real.add(out)
            else:
                if any(shapes.get(o) is None or None in shapes[o] for o in outs):
                    continue                   # not yet: a later round may know the shape
                for out in outs:
                    consts[out] = _placeholder(shapes[out], elem_types.get(out))
            source = set()
            for i in (ins if op not in ("Shape", "Size") else ()):      # a shape reads no values
                source |= origin.get(i, set())
            for out in outs:
                origin[out] = source
                shapes[out] = tuple(consts[out].shape)
            folded.add(k)
            progress = True
        if not progress:
            break
    return shapes, consts, real, origin


# --- the batch axis -----------------------------------------------------------------------------

def _reshape_batch(s_in, b, inner, s_out, batch):
    """Where the batch axis lands when ``s_in`` (batch on axis ``b``, ``inner`` elements of that
    axis per batch step) is laid out as ``s_out``: ``(axis, inner)``, or None if it is split.

    In row-major order the batch index advances every ``stride`` elements and spans
    ``stride * batch``; output axis j holds it if its own stride divides that stride and its span
    covers the batch's span. A pure batch axis (size ``batch``) is preferred, then the innermost
    candidate (several exist only with batch 1, where any choice counts the same)."""
    stride = inner * math.prod(s_in[b + 1:])
    best = None
    for j in range(len(s_out)):
        r = math.prod(s_out[j + 1:])
        if r and stride % r == 0 and (r * s_out[j]) % (stride * batch) == 0:
            if s_out[j] == batch and r == stride:
                return j, 1
            best = (j, stride // r)
    return best


def _norm_axis(axis, rank):
    return axis + rank if axis < 0 else axis


class _Batch:
    """The batch axis of every tensor: ``axes[name] = (axis, inner)`` where the axis holds
    ``outer * batch * inner`` (1 and 1 for a plain batch axis). Constants have none, and neither
    have the whole-batch values in ``whole``: tensors computed by reducing over the batch
    (DynamicQuantizeLinear's scale and zero point, a ReduceMax over every axis) and what is
    computed from them and constants alone, one value for the whole batch, counted once."""

    def __init__(self, shapes, consts, batch, path):
        self.shapes, self.consts, self.batch, self.path = shapes, consts, batch, path
        self.axes = {}
        self.whole = set()

    def _known(self, name, where):
        shape = self.shapes.get(name)
        if shape is None or any(d is None or d < 0 for d in shape):
            _fail(where, f"the shape of {name!r} is not known after ONNX shape inference and folding "
                         f"(it has {list(shape) if shape is not None else 'no shape'})")
        return shape

    def counted(self, name, where):
        """The shape a layer writing ``name`` is counted on: the whole tensor's for a whole-batch
        value (counted once), else the per-sample shape."""
        if name in self.whole:
            shape = self._known(name, where)
            if any(d == 0 for d in shape):
                _fail(where, f"{name!r} has an empty dimension (shape {list(shape)})")
            return tuple(shape) or (1,)
        return self.per_sample(name, where)

    def per_sample(self, name, where):
        shape = self._known(name, where)
        if name in self.whole:
            _fail(where, f"{name!r} (shape {list(shape)}) is computed over the whole batch; it has no per-sample "
                         "shape here")
        if name not in self.axes:
            _fail(where, f"cannot tell which axis of {name!r} (shape {list(shape)}) holds the batch")
        b, _ = self.axes[name]
        if shape[b] == self.batch:
            out = shape[:b] + shape[b + 1:]
        else:
            out = shape[:b] + (shape[b] // self.batch,) + shape[b + 1:]
        if any(d == 0 for d in out):
            _fail(where, f"{name!r} has an empty dimension (shape {list(shape)})")
        return tuple(out) or (1,)

    def axis(self, name, axis, where, what="the op"):
        """The per-sample index of full axis ``axis`` of tensor ``name``; an error if it is the
        batch axis."""
        shape = self.shapes[name]
        rank = len(shape)
        a = _norm_axis(int(axis), rank)
        b, _ = self.axes[name]
        if a == b and (self.batch != 1 or shape[b] == 1):
            _fail(where, f"{what} works along the batch axis (axis {axis} of shape {list(shape)}); "
                         "per-sample counting needs the samples kept apart")
        return a - 1 if (a > b and shape[b] == self.batch) else a

    def removed(self, name):
        b, _ = self.axes[name]
        return self.shapes[name][b] == self.batch

    def track(self, node, where):
        """Set the batch axis of ``node``'s outputs from its inputs'. With an export at batch 1 any
        axis may be taken to hold the batch (every choice counts the same), so where the tracked
        one is contracted, reduced or split, the batch moves to the output's first axis instead of
        being an error."""
        try:
            self._track(node, where)
        except ModelError:
            if self.batch != 1:
                raise
            for o in node.outputs:
                if o and self.shapes.get(o):
                    self.axes[o] = (0, 1)

    def _gather_within_samples(self, node, s_in, b, inner):
        """Gather along the batch axis with constant indices that keep every sample's elements
        together (how the dynamo exporter writes ``as_strided`` on a flattened tensor): the
        output's batch axis is the index axis whose position gives the sample, or None."""
        idx = self.consts.get(node.inputs[1]) if len(node.inputs) > 1 else None
        if idx is None or idx.ndim == 0 or idx.strides == (0,) * idx.ndim:
            return None
        idx = np.asarray(idx).astype(np.int64)
        idx = np.where(idx < 0, idx + s_in[b], idx)
        sample = (idx // inner) % self.batch
        for j in range(idx.ndim):
            n = idx.shape[j]
            if n % self.batch:
                continue
            k = n // self.batch
            want = (np.arange(n) // k).reshape([n if d == j else 1 for d in range(idx.ndim)])
            if np.array_equal(sample, np.broadcast_to(want, sample.shape)):
                return b + j, k
        return None

    def _track(self, node, where):
        axes, shapes = self.axes, self.shapes
        live = [i for i in node.inputs if i in axes]
        op, a = node.op, node.attrs
        outs = [o for o in node.outputs if o]
        if not live:
            # computed from whole-batch values (and constants) alone: one value for the batch
            if any(i in self.whole for i in node.inputs):
                self.whole.update(outs)
            return
        if op == "DynamicQuantizeLinear" and node.domain in ("", "ai.onnx"):
            # y per element, like x; its scale and zero point from the range of the whole tensor
            axes[node.outputs[0]] = axes[live[0]]
            self.whole.update(o for o in node.outputs[1:] if o)
            return
        first = live[0]
        b, inner = axes[first]
        s_in = shapes.get(first)
        result = {}
        out_shape = shapes.get(outs[0]) if outs else None
        if out_shape is None or None in out_shape:
            return
        r_out = len(out_shape)
        unsqueeze_axes = None
        if op == "Unsqueeze":
            unsqueeze_axes = a.get("axes")
            if unsqueeze_axes is None and len(node.inputs) > 1 and node.inputs[1] in self.consts:
                unsqueeze_axes = [int(v) for v in np.asarray(self.consts[node.inputs[1]]).reshape(-1)]
        if unsqueeze_axes is not None and r_out == len(s_in) + len(unsqueeze_axes):
            # the inserted axes are named: the batch keeps its place among the others (at batch 1
            # the generic rule below could not tell a new axis of size 1 from the batch)
            new = {_norm_axis(int(x), r_out) for x in unsqueeze_axes}
            kept = [j for j in range(r_out) if j not in new]
            result = {outs[0]: (kept[b], inner)}
        elif op in _RESHAPES:
            got = _reshape_batch(s_in, b, inner, out_shape, self.batch)
            if got is None:
                _fail(where, f"the reshape from {list(s_in)} to {list(out_shape)} splits the batch axis "
                             f"(axis {b}) across several axes")
            result = {outs[0]: got}
        elif op == "Transpose":
            perm = list(a.get("perm", range(len(s_in) - 1, -1, -1)))
            result = {outs[0]: (perm.index(b), inner)}
        elif op == "Gather" or op == "GatherElements":
            axis = _norm_axis(int(a.get("axis", 0)), len(s_in))
            if node.inputs[0] not in axes:                          # a table read by live indices
                idx_rank = len(shapes[node.inputs[1]])
                b_idx, inner_idx = axes[node.inputs[1]]
                result = {outs[0]: (axis + b_idx, inner_idx)} if op == "Gather" else {outs[0]: (b_idx, inner_idx)}
            elif axis == b:
                got = self._gather_within_samples(node, s_in, b, inner) if op == "Gather" else None
                idx = node.inputs[1] if len(node.inputs) > 1 else ""
                if (got is None and op == "Gather" and idx in axes and shapes.get(idx) == (self.batch,)
                        and inner == 1 and s_in[b] == self.batch):
                    # the samples reordered by indices computed at run time (the TorchScript
                    # exporter sorts a packed batch by length): one sample out per index, so the
                    # per-sample counts are unchanged
                    got = (b, 1)
                if got is None:
                    _fail(where, f"{op} selects along the batch axis (axis {b} of shape {list(s_in)})")
                result = {outs[0]: got}
            elif op == "GatherElements":
                result = {outs[0]: (b, inner)}
            else:
                idx_rank = len(shapes.get(node.inputs[1], ()))
                result = {outs[0]: (b if b < axis else b + idx_rank - 1, inner)}
        elif op == "Einsum":
            eq = str(a.get("equation", "")).replace(" ", "")
            lhs, arrow, rhs = eq.partition("->")
            terms = lhs.split(",")
            if not arrow:
                rhs = "".join(sorted(c for c in set(lhs.replace(",", "")) if lhs.count(c) == 1))
            letters = dict(zip(node.inputs, terms))
            if "." not in eq and first in letters and len(letters[first]) == len(s_in):
                ch = letters[first][b]
                if ch not in rhs or len(rhs) != r_out:
                    _fail(where, f"Einsum sums over the batch axis (letter {ch!r} of {a.get('equation')!r})")
                result = {outs[0]: (rhs.index(ch), inner)}
        elif op in _CONTROL_FLOW:
            # an uncounted Loop/Scan/If: an output shaped like a live input keeps its batch axis,
            # one with an extra leading axis (stacked scan outputs) has it one further
            for o in outs:
                so = shapes.get(o)
                same = [n for n in live if shapes.get(n) == so]
                stacked = [n for n in live if so is not None and tuple(so[1:]) == shapes.get(n)]
                if same:
                    result[o] = axes[same[0]]
                elif stacked:
                    result[o] = (axes[stacked[0]][0] + 1, axes[stacked[0]][1])
        elif op in ("LSTM", "GRU", "RNN"):
            layout = int(a.get("layout", 0))
            want = 0 if layout else 1
            if b != want or node.inputs[0] not in axes:
                _fail(where, f"the batch is on axis {b} of the sequence input {list(s_in)}; {op} with layout "
                             f"{layout} reads it on axis {want}")
            result = {o: (want if k else (0 if layout else 2), inner) for k, o in enumerate(node.outputs) if o}
        elif op in ("Gemm",):
            if b != (1 if a.get("transA", 0) else 0):
                _fail(where, "the batch axis is the contracted axis of Gemm")
            result = {outs[0]: (0, inner)}
        elif op == "MatMul":
            found = None
            for k, name in enumerate(node.inputs[:2]):
                if name not in axes:
                    continue
                shape = shapes[name]
                rank, (bb, ii) = len(shape), axes[name]
                if rank == 1 or (k == 0 and bb == rank - 1) or (k == 1 and bb == rank - 2):
                    _fail(where, f"MatMul contracts over the batch axis of {name!r} (shape {list(shape)})")
                pos = r_out - rank + bb if not (k == 1 and bb == rank - 1) else r_out - 1
                if found is None:
                    found = (pos, ii)
            result = {outs[0]: found}
        elif op in _SAME_SHAPE_NCHW:
            if b != 0:
                _fail(where, f"{op} needs the batch on axis 0; it is on axis {b} of shape {list(s_in)}")
            result = {o: (0, inner) for o in outs}
        elif op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                    "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin"):
            rank = len(s_in)
            axes_ = a.get("axes")
            if axes_ is None and len(node.inputs) > 1 and node.inputs[1]:
                if node.inputs[1] not in self.consts:
                    _fail(where, f"{op} reduces over axes computed at run time ({node.inputs[1]!r})")
                axes_ = [int(v) for v in np.asarray(self.consts[node.inputs[1]]).reshape(-1)]
            if op in ("ArgMax", "ArgMin"):
                axes_ = [int(a.get("axis", 0))]
            if not axes_ and int(a.get("noop_with_empty_axes", 0)) and op not in ("ArgMax", "ArgMin"):
                axes_ = []
            else:
                axes_ = list(range(rank)) if not axes_ else sorted(_norm_axis(int(x), rank) for x in axes_)
            if b in axes_:
                # a reduction over the batch: one value (or one row) for the whole batch
                self.whole.update(outs)
                return
            keep = int(a.get("keepdims", 1))
            result = {outs[0]: (b if keep else b - sum(1 for x in axes_ if x < b), inner)}
        elif op == "TopK" or op == "Split" or op in ("Slice", "Pad", "Tile", "Concat", "CumSum", "Trilu",
                                                     "LayerNormalization", "Softmax", "LogSoftmax", "Hardmax"):
            rank = len(s_in)
            for o in outs:
                so = shapes.get(o)
                if so is None or len(so) != rank:
                    continue
                if so[b] != s_in[b] and op != "Concat":
                    _fail(where, f"{op} changes the batch axis (axis {b}: {s_in[b]} -> {so[b]})")
                result[o] = (b, inner)
            if op == "Concat":
                for name in live:
                    if axes[name][0] != b:
                        _fail(where, "Concat inputs hold the batch on different axes")
                if _norm_axis(int(a.get("axis", 0)), rank) == b:
                    _fail(where, f"Concat joins along the batch axis (axis {b})")
        elif op in _BROADCAST or op == "Expand":
            found = None
            for name in live:
                shape = shapes[name]
                pos = (r_out - len(shape) + axes[name][0], axes[name][1])
                if found is None:
                    found = pos
                elif pos[0] != found[0] and self.batch > 1:
                    _fail(where, f"inputs hold the batch on different axes ({found[0]} and {pos[0]} of the output)")
            result = {o: found for o in outs}
        else:
            # same-shape ops (activations, norms, Cast, Dropout, Clip, ...) keep the axis; an op that
            # changes the shape but keeps the batch dimension where it was keeps it too
            for o in outs:
                so = shapes.get(o)
                if so is None:
                    continue
                if len(so) == len(s_in) and so[b] == s_in[b]:
                    result[o] = (b, inner)
                elif so and len(so) != len(s_in) and b == 0 and so[0] == s_in[0]:
                    result[o] = (0, inner)
        for o, value in result.items():
            if value is not None:
                axes[o] = value
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
    order = {id(node): k for k, node in enumerate(nodes)}
    by_id = {id(node): node for node in nodes}
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
        # the nodes near the core in graph order (not a scan of the whole graph per core: an
        # unrolled loop has thousands of cores)
        local = [by_id[i] for i in sorted((i for i in near - removed if i in by_id), key=order.__getitem__)
                 if len(by_id[i].outputs) == 1]
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
    return _rewritten(nodes, replacements, removed)


def _rewritten(nodes, replacements, removed):
    """``nodes`` in order with each node in ``replacements`` (by id) swapped for its fused node and
    the nodes in ``removed`` (ids) dropped: the last step of every fusion pass."""
    return [replacements.get(id(node), node) for node in nodes
            if id(node) in replacements or id(node) not in removed]


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


# --- the attention core ---------------------------------------------------------------------------

def _is_mask(value):
    """Whether a constant is an additive attention mask: 0 where a score is kept, -inf or the
    format's lowest value where it is dropped (the dynamo exporter folds ``is_causal`` into such
    a constant). It is no learned weight: not a parameter, and the attention core absorbs it."""
    if value is None or value.dtype.kind != "f" or value.size < 2:
        return False
    dropped = value <= np.finfo(value.dtype).min / 2
    return bool(dropped.any()) and bool(np.all(dropped | (value == 0)))


def _is_weight(value):
    """Whether an initializer can be a learned weight: floating point, more than one element, no
    attention mask."""
    return value is not None and value.dtype.kind in "fc" and value.size > 1 and not _is_mask(value)


def _transposed_tables(nodes, consts, weights):
    """``{copy: table}``: 2-D weights read as a product's right operand (MatMul B, Gemm B without
    transB) that equal the transpose of a table an embedding Gather reads, value for value (not
    a constant fill, which could match by chance)."""
    tables = {}
    for n in nodes:
        if n.op == "Gather" and n.inputs and n.inputs[0] in weights and consts[n.inputs[0]].ndim == 2:
            tables.setdefault(consts[n.inputs[0]].T.shape, []).append(n.inputs[0])
    found = {}
    for n in nodes:
        if len(n.inputs) < 2 or not (n.op == "MatMul" or (n.op == "Gemm" and not n.attrs.get("transB"))):
            continue
        w = n.inputs[1]
        value = consts.get(w)
        if w not in weights or w in found or value.ndim != 2 or value.min() == value.max():
            continue
        for table in tables.get(value.shape, ()):
            if table != w and consts[table].dtype == value.dtype and np.array_equal(consts[table].T, value):
                found[w] = table
                break
    return found


def _scalar_operand(node, consts):
    """The live input of a Mul (either side) or Div (divisor constant) by a constant scalar."""
    if node.op not in ("Mul", "Div") or len(node.inputs) != 2:
        return None
    live = [i for i in node.inputs if i not in consts]
    if len(live) != 1 or np.asarray(consts[node.inputs[1] if live[0] == node.inputs[0] else node.inputs[0]]).size != 1:
        return None
    if node.op == "Div" and node.inputs[1] == live[0]:
        return None
    return live[0]


def _fuse_attention(nodes, consts, graph_outputs, bt, origin):
    """Replace each scaled dot-product attention core by one ``SDPA`` node.

    The core is MatMul(q, k^T), a scale by a constant scalar (on the scores, or on q and/or k as
    PyTorch's exporters write it), optionally an additive mask (Add) or a masked fill (Where),
    Softmax over the last axis and MatMul with v; every inner tensor used only by the next step.
    Counted as ``sdpa`` (the scale once per score, as PyTorch's own attention), it gives the same
    counts as the module through ``load_torch``. Cores without a scale stay separate layers."""
    producer = {o: n for n in nodes for o in n.outputs if o}
    consumers = {}
    for n in nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)

    def only_user(t, node):
        users = consumers.get(t, [])
        return t not in graph_outputs and len(users) == 1 and users[0] is node

    removed, replacements = set(), {}
    for sm in nodes:
        if sm.op != "Softmax" or id(sm) in removed or not sm.inputs or sm.inputs[0] not in bt.shapes:
            continue
        rank = len(bt.shapes[sm.inputs[0]])
        if _norm_axis(int(sm.attrs.get("axis", -1)), rank) != rank - 1 or rank < 2:
            continue
        chain = [sm]
        p, last = sm.outputs[0], sm
        users = consumers.get(p, [])
        while len(users) == 1 and users[0].op in ("Dropout", "Identity", "Cast") and only_user(p, users[0]):
            last = users[0]
            chain.append(last)
            p = last.outputs[0]
            users = consumers.get(p, [])
        if len(users) != 1 or users[0].op != "MatMul" or users[0].inputs[0] != p or not only_user(p, users[0]):
            continue
        mm2 = users[0]
        v = mm2.inputs[1]
        if v in consts:
            continue
        chain.append(mm2)
        scaled, mask, absorbed, fill_if_true = False, "none", [], None
        t, nxt = sm.inputs[0], sm
        while True:
            node = producer.get(t)
            if node is None or not only_user(t, nxt) or node.op == "MatMul":
                break
            x = _scalar_operand(node, consts)
            if x is not None and not scaled:
                scaled = True                    # the scores scaled: the same count fused or not
            elif node.op == "Add" and len(node.inputs) == 2 and mask == "none":
                mask = "additive"
                x = next((i for i in node.inputs if producer.get(i) is not None and producer[i].op in (
                    "MatMul", "Mul", "Div")), None)
                if x is None:
                    break
                absorbed += [i for i in node.inputs if i != x]
            elif node.op == "Where" and len(node.inputs) == 3 and mask == "none":
                x = node.inputs[1] if node.inputs[2] in consts else node.inputs[2]
                absorbed += [i for i in node.inputs if i != x]
                fill_if_true = x == node.inputs[2]
            else:
                break
            chain.append(node)
            t, nxt = x, node
        mm1 = producer.get(t)
        if mm1 is None or mm1.op != "MatMul" or not only_user(t, nxt):
            continue
        q, kt = mm1.inputs[:2]
        if q in consts or kt in consts:
            continue
        chain.append(mm1)
        operand_scales = []
        for which in (0, 1):
            name = q if which == 0 else kt
            node = producer.get(name)
            x = _scalar_operand(node, consts) if node is not None and only_user(name, mm1) else None
            if x is not None:
                operand_scales.append(which)
                chain.append(node)
                if which == 0:
                    q = x
                else:
                    kt = x
        # q and k both scaled (by the root of the scale) is how both exporters write PyTorch's
        # scaled_dot_product_attention; q alone scaled is explicit code (swin's q * scale), which
        # load_torch counts as the elementwise product it is, so it is left as written
        if not (scaled or len(operand_scales) == 2) or any(i not in bt.axes for i in (q, kt, v)):
            continue
        if any(_is_weight(consts.get(s)) for i in absorbed for s in origin.get(i, ())):
            continue                             # a learned bias added to the scores stays a layer
        shapes = bt.shapes
        sq, skt, sv = shapes.get(q), shapes.get(kt), shapes.get(v)
        if (sq is None or skt is None or sv is None or not (len(sq) == len(skt) == len(sv) >= 2)
                or not (sq[:-2] == skt[:-2] == sv[:-2]) or sq[-1] != skt[-2] or skt[-1] != sv[-2]
                or not (bt.axes[q][0] == bt.axes[kt][0] == bt.axes[v][0] < len(sq) - 2)):
            continue
        k, k_transposed = kt, True
        node = producer.get(kt)
        if node is not None and node.op == "Transpose" and only_user(kt, [n for n in chain if kt in n.inputs][0]):
            perm = list(node.attrs.get("perm", []))
            r = len(skt)
            if perm == list(range(r - 2)) + [r - 1, r - 2] and node.inputs[0] in bt.axes:
                k, k_transposed = node.inputs[0], False
                chain.append(node)
        removed.update(id(n) for n in chain)
        replacements[id(mm2)] = _Node("SDPA", mm2.name, [q, k, v], mm2.outputs,
                                      {"mask": mask, "k_transposed": k_transposed, "absorbed": absorbed,
                                       "fill_if_true": fill_if_true})
    return _rewritten(nodes, replacements, removed)


# --- loading ------------------------------------------------------------------------------------

def _outer_names(graph):
    """Names a subgraph (a Loop/Scan body, an If branch) reads from the enclosing scope: used
    by its nodes (or nested subgraphs) but defined by none of its inputs, initializers, nodes."""
    import onnx
    defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    used = []
    for node in graph.node:
        for i in node.input:
            if i and i not in defined:
                used.append(i)
        for a in node.attribute:
            subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else (
                list(a.graphs) if a.type == onnx.AttributeProto.GRAPHS else [])
            for sub in subs:
                used += [n for n in _outer_names(sub) if n not in defined]
        defined.update(o for o in node.output if o)
    used += [o.name for o in graph.output if o.name not in defined]
    return list(dict.fromkeys(used))


def _implicit_inputs(node):
    """The enclosing-scope tensors a control-flow node's subgraphs read (they are inputs of the
    node as far as its dependencies go: a Loop whose listed inputs are constants but whose body
    reads the model input is not a constant)."""
    import onnx
    out = []
    for a in node.attribute:
        subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else (
            list(a.graphs) if a.type == onnx.AttributeProto.GRAPHS else [])
        for sub in subs:
            out += _outer_names(sub)
    return [n for n in dict.fromkeys(out) if n not in node.input]


def _check_gather(node, name, shapes, consts, real, path):
    """A Gather (or GatherElements) whose constant indices fall outside the gathered axis is an
    invalid model (ONNX's shape inference lets it through): a one-line error naming the node."""
    if len(node.input) < 2 or node.input[1] not in real or node.domain not in ("", "ai.onnx"):
        return
    shape = shapes.get(node.input[0])
    idx = np.asarray(consts[node.input[1]])
    if shape is None or idx.size == 0 or idx.dtype.kind not in "iu":
        return
    axis = _attr_int(node, "axis", 0)
    if not -len(shape) <= axis < len(shape) or shape[axis] is None:
        return
    n = shape[axis]
    bad = idx[(idx < -n) | (idx >= n)]
    if bad.size:
        raise ModelError(f"{path}: layer {name!r} ({node.op_type}): index {int(bad.reshape(-1)[0])} is out of range "
                         f"for axis {axis} of {node.input[0]!r} (size {n}; valid indices are {-n} to {n - 1})")


def _attr_int(node, key, default):
    for a in node.attribute:
        if a.name == key:
            return int(a.i)
    return default


def load_onnx(path: str | os.PathLike[str], *, batch_axis: int | dict[str, int] | None = None,
              dims: dict[str, int] | None = None) -> ModelIR:
    """Read an ONNX file into a ModelIR (inference graph; loss mse, optimizer sgd).

    The batch axis of each graph input: ``batch_axis`` where given (an int for the first input,
    or ``{input name: axis}``); else the input's symbolic dimension where the file names one (the
    only one, or the one called ``batch``, ``batch_size``, ``N``, ...; further inputs use the first
    one's symbol); else axis 0, which the result then lists in ``assumptions``. ``dims`` fixes other
    symbolic dimensions (``{"sequence": 128}``)."""
    path = os.fspath(path)
    model = _read(path)
    graph = model.graph
    if len(graph.sparse_initializer):
        raise ModelError(f"{path}: sparse initializers are not supported")
    consts = {}
    for init in graph.initializer:
        consts[init.name] = _tensor_array(init, f"{path}: initializer {init.name!r}")
    initializers = set(consts)
    inputs = [v.name for v in graph.input if v.name not in initializers]
    if not inputs:
        raise ModelError(f"{path}: the graph has no input")
    axes, batch, assumptions = _batch_axes(path, graph, inputs, batch_axis, dims)
    # control flow: Loop/Scan/If with known trip counts and conditions are unrolled (nested ones
    # in later rounds); the shapes and constants are resolved again on the rewritten graph
    base = consts
    reasons = {}
    for round_ in range(_UNROLL_ROUNDS + 1):
        consts = dict(base)
        shapes, consts, real, origin = _resolve(model, consts, axes, batch, path)
        if not any(n.op_type in _CONTROL_FLOW for n in graph.node):
            break
        if round_ == _UNROLL_ROUNDS:
            reasons = {n.name or f"{n.op_type}_{i}": f"control flow nested more than {_UNROLL_ROUNDS} deep is not "
                       "unrolled, so its body is not counted" for i, n in enumerate(graph.node)}
            break
        changed, added, reasons = _flow.unroll(model, shapes, consts, real, _opset(model))
        if not changed:
            break
        for name, value in added:
            base[name] = value
            initializers.add(name)
    raw = []
    for i, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{i}"
        implicit = _implicit_inputs(node) if node.op_type in _CONTROL_FLOW else []
        raw.append(_Node(node.op_type, name, list(node.input) + implicit, node.output,
                         _attrs(node, f"{path}: node {name!r} ({node.op_type})"), node.domain))
        if name in reasons and node.op_type in _CONTROL_FLOW:
            raw[-1].attrs["_reason"] = reasons[name]
    for i, node in enumerate(graph.node):
        if node.op_type in ("Gather", "GatherElements"):
            _check_gather(node, raw[i].name, shapes, consts, real, path)
    bt = _Batch(shapes, consts, batch, path)
    for name in inputs:
        bt.axes[name] = (axes[name], 1)
    nodes = []
    for node in raw:
        real_inputs = [i for i in node.inputs if i]
        if all(o in consts for o in node.outputs if o) or (
                node.op in _DATA_INDEPENDENT or all(i in consts for i in real_inputs)):
            for out in node.outputs:
                if out and out not in consts:
                    consts[out] = _placeholder(shapes[out], 0) if shapes.get(out) and None not in shapes[out] \
                        else np.zeros(())
                    # a constant not evaluated still reads the weights its inputs come from
                    origin.setdefault(out, set() if node.op in _DATA_INDEPENDENT else set().union(
                        *(origin.get(i, set()) for i in real_inputs)))
            continue
        bt.track(node, f"{path}: layer {node.name!r} ({node.op})")
        nodes.append(node)
    consumers: dict[str, list] = {}
    for node in nodes:
        for i in node.inputs:
            consumers.setdefault(i, []).append(node)
    graph_outputs = {v.name for v in graph.output}
    nodes = _fuse_activations(nodes, consts, consumers, graph_outputs)
    nodes = _fuse_attention(nodes, consts, graph_outputs, bt, origin)
    weights = {name: int(consts[name].size) for name in initializers
               if _is_weight(consts[name])}
    # an output layer tied to the embedding: both exporters fold its weight.t() into a second
    # initializer, the table transposed; read it as the table, so the layer is tied to it
    for copy, table in _transposed_tables(raw, consts, weights).items():
        del weights[copy]
        for name, sources in origin.items():
            if copy in sources:
                origin[name] = (sources - {copy}) | {table}
    # a dynamic quantization's scale times a constant is the weight's scale (onnxruntime's
    # quantize_dynamic rescales an integer product by their product): a constant, not a parameter
    dynamic_scales = {n.outputs[1] for n in raw if n.op == "DynamicQuantizeLinear" and len(n.outputs) > 1}
    for node in raw:
        if node.op == "Mul" and dynamic_scales & set(node.inputs):
            for name in node.inputs:
                for source in set(origin.get(name, ())) | {name}:
                    weights.pop(source, None)
    for node in raw:
        # quantized weights (int8 and the like) are parameters too; scales, zero points and a
        # resize's scales are not
        for k in _QUANT_WEIGHTS.get(node.op, ()):
            name = node.inputs[k] if k < len(node.inputs) else ""
            if name in initializers and str(consts[name].dtype) in _QUANT_DTYPES + ("int32",) \
                    and consts[name].size > 1:
                weights[name] = int(consts[name].size)
        aux = {"Resize": (1, 2, 3), "Upsample": (1,)}.get(node.op, ())
        if node.op in _QUANT_OPS:
            aux = tuple(k for k in range(1, len(node.inputs)) if k not in _QUANT_WEIGHTS.get(node.op, ()))
        for k in aux:
            if k < len(node.inputs) and node.inputs[k] in initializers and node.inputs[k] in weights:
                del weights[node.inputs[k]]
    producers = {o: (n.op, n.inputs[0] if n.inputs else None) for n in raw for o in n.outputs if o}
    return _to_model(path, nodes, consts, origin, weights, bt, inputs, [v.name for v in graph.output],
                     assumptions, producers)


_BATCH_NAMES = {"batch", "batch_size", "batchsize", "bs", "n", "b", "nbatch", "num_batch", "batch_dim"}


def _batch_axes(path, graph, inputs, batch_axis, dims):
    """``({input: batch axis}, batch, assumptions)`` for the graph inputs (see :func:`load_onnx`);
    ``dims`` is applied to the inputs' symbolic dimensions first."""
    if dims is not None:
        if not isinstance(dims, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
                for k, v in dims.items()):
            raise ModelError(f"{path}: dims must map symbolic dimension names to positive integers, not {dims!r}")
    if batch_axis is not None and not isinstance(batch_axis, dict):
        batch_axis = {inputs[0]: batch_axis}
    for name, axis in (batch_axis or {}).items():
        if name not in inputs:
            raise ModelError(f"{path}: batch_axis names {name!r}, which is not a graph input "
                             f"(inputs: {', '.join(inputs)})")
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise ModelError(f"{path}: the batch axis of input {name!r} must be an integer, not {axis!r}")
    used = set()
    info = {}
    for name in inputs:
        value = next(v for v in graph.input if v.name == name)
        if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
            raise ModelError(f"{path}: input {name!r} has no shape; export with fixed shapes")
        symbols = []
        for d in value.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                symbols.append(None)
            elif d.dim_param and dims and d.dim_param in dims:
                used.add(d.dim_param)
                size = dims[d.dim_param]
                d.Clear()
                d.dim_value = size
                symbols.append(None)
            else:
                symbols.append(d.dim_param or "?")
        info[name] = (_shape_of(value), symbols)
    if dims:
        unknown = sorted(set(dims) - used)
        if unknown:
            raise ModelError(f"{path}: dims names {', '.join(map(repr, unknown))}, which no graph input has")
    axes, assumptions, batch, symbol = {}, [], None, None
    for k, name in enumerate(inputs):
        shape, symbols = info[name]
        rank = len(shape)
        free = [j for j, s in enumerate(symbols) if s is not None]
        how = None
        if batch_axis and name in batch_axis:
            axis = batch_axis[name]
            if not -rank <= axis < rank:
                raise ModelError(f"{path}: batch axis {axis} is out of range for input {name!r} of shape "
                                 f"{_shown(shape, symbols)}")
            axis %= rank
        elif symbol is not None and symbol in symbols:
            axis = symbols.index(symbol)
        elif len(free) == 1:
            axis = free[0]
        elif len(free) > 1:
            named = [j for j in free if symbols[j].lower() in _BATCH_NAMES]
            if len(named) != 1:
                raise ModelError(f"{path}: input {name!r} has shape {_shown(shape, symbols)}, with several symbolic "
                                 "dimensions and none named as the batch; give the sizes of all but the batch "
                                 "(--dim NAME=N, dims= in Python) or say which is the batch (--batch-axis, "
                                 "batch_axis=)")
            axis = named[0]
        elif rank == 0:
            raise ModelError(f"{path}: input {name!r} is a scalar; it needs a batch dimension")
        else:
            axis = 0
            if k == 0:
                how = (f"batch on axis 0 of input {name!r} {_shown(shape, symbols)}: the file names no symbolic batch "
                       "dimension (a dim_param); --batch-axis (batch_axis= in Python) or a named dimension says otherwise")
        rest = [j for j in free if j != axis]
        if rest:
            raise ModelError(f"{path}: input {name!r} has shape {_shown(shape, symbols)}; its dimensions other than "
                             f"the batch (axis {axis}) must be fixed: export with fixed shapes or give their sizes ("
                             f"{' '.join('--dim ' + symbols[j] + '=N' for j in rest)}; dims="
                             f"{{{', '.join(repr(symbols[j]) + ': N' for j in rest)}}} in Python)")
        size = shape[axis] or 1
        if batch is None:
            batch = size
            symbol = symbols[axis] if symbols[axis] not in (None, "?") else None
            if how:
                assumptions.append(how)
        elif shape[axis] and size != batch:
            hint = f" (assumed on axis {axes[inputs[0]]}; say which with --batch-axis, batch_axis=)" if assumptions else ""
            raise ModelError(f"{path}: input {name!r} has batch {size} (axis {axis}), the first input "
                             f"{inputs[0]!r} {batch}{hint}")
        axes[name] = axis
    return axes, batch, assumptions


def _shown(shape, symbols):
    return "[" + ", ".join(str(d) if s is None else (s if s != "?" else "?") for d, s in zip(shape, symbols)) + "]"


class _Builder:
    """Collects layer specs: names, input references, per-sample shapes, owned initializers."""

    def __init__(self, path, consts, origin, weights, bt, x_name):
        self.path, self.consts, self.origin, self.weights, self.bt = path, consts, origin, weights, bt
        self.layer_of = {x_name: "input"}
        self.specs, self.used, self.expected = [], {"input"}, {}
        self.owned = {}                      # initializer -> layer that owns it
        self.weight_shape = {}               # linear/embedding layer -> [rows, columns] of its weight
        self.param_layers = {}               # constant -> its parameter layer
        self.producers = {}                  # tensor -> (op, first input) of the node that computes it
        self.by_name = {}                    # layer name -> its spec
        self.quant_inits = set()             # initializers of integer (quantized) types
        self.approximated = []               # (layer, type, reason): counted, but not exactly as run

    def unique(self, name):
        base, k = name, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def sources(self, node, inputs=None):
        out = set()
        for i in (node.inputs if inputs is None else inputs):
            if i in self.consts:
                out |= self.origin.get(i, set())
        return out

    def weight_sources(self, name):
        """The weight initializers a constant is computed from."""
        return {s for s in self.origin.get(name, ()) if s in self.weights}

    def parameter(self, name, where):
        """The ``parameter`` layer of constant ``name`` (made at its first use; a weight another
        layer already owns is read as a free view of that layer's parameters)."""
        layer = self.param_layers.get(name)
        if layer is None:
            value = self.consts[name]
            sources = self.weight_sources(name)
            owners = {self.owned[s] for s in sources if s in self.owned}
            shape = list(value.shape) or [1]
            total = sum(self.weights[s] for s in sources)
            if owners:
                layer = self.add({"type": "shape_op", "name": f"{name}", "op": "parameter", "inputs": [owners.pop()],
                                  "out_shape": shape, "once": True})
            elif value.size != total and len(sources) == 1:
                # a weight gathered or expanded into a constant of another size (swin's relative
                # position bias: a [169, heads] table read at constant indices): the table is the
                # parameter, and the constant a view of it whose gradient goes back to it
                layer = self._derived(name, next(iter(sources)), shape, where)
            else:
                layer = self.add({"type": "parameter", "name": f"{name}", "inputs": ["input"], "shape": shape},
                                 reads=sources)
                if value.size != total:
                    self.approximated.append((layer, "parameter", f"computed from {len(sources)} weights "
                                              f"({total} elements) folded into one constant of {value.size}: counted "
                                              "as a parameter of that size"))
            self.param_layers[name] = layer
        return layer

    def _derived(self, name, source, shape, where):
        """A constant computed from one weight by data movement: a ``parameter`` layer owning the
        weight, then a free view of it whose gradient is a scatter-add into the weight (a
        gather: 1 add per element, as ``load_torch`` counts an indexed table), a sum of copies
        (an expand or tile) or nothing (a slice)."""
        op, tensor = None, name
        for _ in range(50):                  # back through free reshapes to the op that made it
            op, tensor = self.producers.get(tensor, (None, None))
            if op not in ("Reshape", "Transpose", "Unsqueeze", "Squeeze", "Flatten", "Identity", "Cast"):
                break
        else:
            op = None
        table = self.add({"type": "parameter", "name": source, "inputs": ["input"],
                          "shape": list(self.consts[source].shape) or [1]}, reads={source})
        spec = {"type": "shape_op", "name": name, "op": op or "constant", "inputs": [table], "out_shape": shape,
                "once": True}
        size = math.prod(shape)
        if op in _GATHERS:
            spec["grad"] = "gather"
        elif op in ("Expand", "Tile") and size > self.weights[source]:
            spec["grad"] = "broadcast"
        elif op in ("Slice", "Split"):
            pass
        else:
            layer = self.add(spec)
            self.approximated.append((layer, "shape_op", f"a weight turned into a constant of another size by {op or 'an op'} "
                                      "whose gradient has no formula here"))
            return layer
        return self.add(spec)

    def own(self, names, layer):
        for name in names:
            self.owned.setdefault(name, layer)

    def free_params(self, names):
        """Weight elements among ``names`` that no layer owns yet."""
        return sum(self.weights.get(n, 0) for n in names if n not in self.owned)

    def add(self, spec, output=None, expected=None, reads=()):
        spec["name"] = self.unique(spec["name"])
        self.specs.append(spec)
        self.by_name[spec["name"]] = spec
        if output is not None:
            self.layer_of[output] = spec["name"]
        if expected is not None:
            self.expected[spec["name"]] = tuple(expected)
        self.own(reads, spec["name"])
        return spec["name"]

    def shape_op(self, name, op, ref, out_shape, params=0, reads=(), output=None):
        spec = {"type": "shape_op", "name": name, "op": op, "out_shape": list(out_shape), "inputs": [ref]}
        if params:
            spec["params"] = params
        return self.add(spec, output, reads=reads)


def _to_model(path, nodes, consts, origin, weights, bt, inputs, graph_outputs, assumptions=(), producers=None):
    from ._formulas import FORMULAS
    x_name = inputs[0]
    b = _Builder(path, consts, origin, weights, bt, x_name)
    b.producers = producers or {}
    b.quant_inits = {n for n in origin if n in consts and {n} == origin[n] and str(consts[n].dtype) in _QUANT_DTYPES}
    for name in inputs[1:]:
        b.shape_op(f"input:{name}", "input", "input", bt.per_sample(name, f"{path}: input {name!r}"), output=name)
    consumers = {}
    for node in nodes:
        for i in node.inputs:
            consumers.setdefault(i, []).append(node)
    skip = set()
    integer = _qdq_groups(nodes, consts, b, consumers)
    for node in nodes:
        if id(node) in skip:
            continue
        where = f"{path}: layer {node.name!r} ({node.op})"
        for out in node.outputs:
            if out and node.domain not in ("", "ai.onnx") and b.bt.shapes.get(out) is None:
                _fail(where, f"ONNX shape inference does not know op {node.domain}.{node.op}: the graph must give "
                             f"the shape of its output {out!r} (value_info)")
        live = [i for i in node.inputs if i and i not in consts]
        for i in live:
            if i not in b.layer_of:
                _fail(where, f"input {i!r} is produced by no supported node")
        refs = [b.layer_of[i] for i in live]
        reads = b.sources(node)
        standard = node.domain in ("", "ai.onnx")
        if (node.op == "DynamicQuantizeLinear" and standard) or not (node.op in _INTEGER_PRODUCTS and standard) and (
                any(i in b.bt.whole for i in live) or any(o in b.bt.whole for o in node.outputs if o)):
            _whole_batch_layers(b, node, where, live, refs, reads)
            continue
        if node.op == "SDPA":
            _sdpa_layers(b, node, where, reads)
            continue
        if node.op in _RNN_KIND and node.domain in ("", "ai.onnx"):
            if _rnn_layers(b, node, where, refs, reads):
                continue
        if node.domain == "com.microsoft" and node.op in _MS_COUNTED:
            why = _ms_layers(b, node, where, reads)
            if why is None:
                continue
            node.attrs["_reason"] = why
        if node.op == "Einsum" and node.domain in ("", "ai.onnx"):
            why = _einsum_layers(b, node, where, reads)
            if why is None:
                continue
            node.attrs["_reason"] = why
        spec = _node_spec(node, where, b, refs, consumers, skip)
        if id(node) in integer and spec is not None:
            # a QDQ group's product (or its Relu, or an Add), in the integer format a runtime runs it in
            if integer[id(node)] == "add":
                spec = dict(_INTEGER_ADD)
            else:
                spec["format"] = integer[id(node)]
                if spec["type"] in MAC_LAYER_TYPES:
                    spec["quant"] = {"requantize": True}
                if node.attrs.get("_qdq_note"):
                    spec["_note"] = node.attrs["_qdq_note"]
        if node.outputs and node.outputs[0] and b.bt.shapes.get(node.outputs[0]) is None:
            given = ", ".join(f"{i!r} {list(b.bt.shapes[i]) if b.bt.shapes.get(i) is not None else '?'}"
                              for i in node.inputs if i)
            _fail(where, f"ONNX shape inference gives no shape for its output {node.outputs[0]!r} (inputs: {given}); "
                         "the node or its attributes do not fit its inputs, or the opset is too old")
        outs = [o for o in node.outputs if o]
        if spec is None or spec["type"] == "elementwise":
            # weights read by elementwise arithmetic or data movement (a layer scale, a learned
            # bias added to attention scores) are 'parameter' layers read as inputs, so their
            # gradient and update are counted like any layer's
            params_in = [i for i in node.inputs if i in consts and b.weight_sources(i)]
            if params_in:
                prefs = [b.parameter(i, where) for i in params_in]
                refs = refs + prefs
                if spec is not None:
                    spec = _elementwise_spec(node, consts, len(refs), fixed=set(consts) - set(params_in))
                    spec["inputs"] = refs
                    spec["once_inputs"] = [False] * (len(refs) - len(prefs)) + [True] * len(prefs)
                reads = reads - {s for i in params_in for s in b.origin.get(i, ())}
        if spec is None:
            # a zero-cost op: one shape_op per output, the first owns the weights it reads; a
            # slice (Gather of constant indices, Slice, Split) reads only its own elements, so
            # disjoint slices of one tensor need no gradient sum
            first = None
            slicing = node.op in ("Slice", "Split") or (node.op == "Gather" and node.inputs[0] not in consts
                                                        and node.inputs[1] in consts)
            grad = None
            if node.op in ("Expand", "Tile"):
                grad = "broadcast"             # the gradient sums each element's copies back
            elif node.op in _GATHERS and len(node.inputs) > 1 and node.inputs[1] not in consts:
                # indices known at run time: each gathered element's gradient is added into the
                # source's (a scatter-add, 1 add per element, the embedding rule); the source
                # (a learned table or an activation) is the layer's first input
                grad = "gather"
                src = node.inputs[0]
                first_ref = b.param_layers.get(src) if src in consts else b.layer_of.get(src)
                if first_ref is not None and first_ref in refs:
                    refs = [first_ref] + [r for r in refs if r != first_ref]
            for k, out in enumerate(node.outputs):
                if not out:
                    continue
                params = b.free_params(reads) if first is None else 0
                shape = b.bt.per_sample(out, where)
                first = b.shape_op(node.name if k == 0 else f"{node.name}:{k}", node.op,
                                   refs[0] if refs else "input", shape,
                                   params=params, reads=reads if first is None else ())
                b.specs[-1]["inputs"] = refs or ["input"]
                if slicing:
                    b.specs[-1]["reads"] = math.prod(shape)
                if grad and k == 0:
                    b.specs[-1]["grad"] = grad
                b.layer_of[out] = first
            continue
        out = spec.pop("_output", outs[0] if outs else None)
        spec.setdefault("name", node.name)
        spec.setdefault("inputs", refs or ["input"])
        known = spec["type"] in FORMULAS
        per_sample = b.bt.per_sample(out, where)
        if not known or spec["type"] in ("elementwise", "reduce", "shape_op"):
            spec.setdefault("out_shape", list(per_sample))
        if not known:
            spec["params"] = b.free_params(reads)
        elif spec["type"] in ("elementwise", "shape_op") and "params" not in spec:
            params = b.free_params(reads)
            if params:
                spec["params"] = params
        note = spec.pop("_note", None)
        zero_point = spec.pop("_zero_point", None)
        name = b.add(spec, out, expected=per_sample, reads=reads)
        if note:
            b.approximated.append((name, spec["type"], note))
        if zero_point is not None:
            _zero_point_correction(b, name, spec, zero_point, out, per_sample)
        if known and spec["type"] != "shape_op" and "format" not in spec and node.op not in _QUANT_OPS and (
                reads & b.quant_inits or any(
                _dequantized(b, r) for r in spec["inputs"])):
            b.approximated.append((name, spec["type"], _QDQ_REASON))
        if spec["type"] == "linear" and not spec.get("tied_to"):
            b.weight_shape[name] = [spec["out"], b.bt.per_sample(live[0], where)[-1]]
        elif spec["type"] == "embedding":
            b.weight_shape[name] = [spec["vocab"], spec["dim"]]
        # further outputs of a multi-output node (TopK's indices, ...) read its first one
        for k, extra in enumerate(node.outputs[1:], start=1):
            if extra and extra != out:
                b.shape_op(f"{node.name}:{k}", node.op, name, b.bt.per_sample(extra, where), output=extra)
    if not b.specs:
        raise ModelError(f"{path}: the graph has no operations that depend on the input")
    _prune(b, graph_outputs)
    stem = os.path.splitext(os.path.basename(path))[0] or "model"
    ir = build_model(name=stem, input_shape=b.bt.per_sample(x_name, path), layers=b.specs, source=path)
    for layer in ir.layers:
        want = b.expected.get(layer.name)
        if want is not None and layer.out_shape != want:
            raise ModelError(f"{path}: layer {layer.name!r} ({layer.type}): shape mismatch: inferred "
                             f"{list(layer.out_shape)}, ONNX says {list(want)} per sample")
    # completeness: every weight that feeds the graph belongs to a layer (an uncounted layer is
    # reported as such by the counting); one that does not is listed as left out
    for name in sorted(n for n in weights if n not in b.owned and _feeds_graph(n, nodes, origin, consts)):
        ir.leave_out(name, "initializer", "a weight no layer reads (folded into a constant that is not counted)",
                     params=weights[name])
    ir.assumptions.extend(assumptions)
    # the graph writes its conversions (QuantizeLinear/DequantizeLinear nodes, QLinear* ops'
    # scales): count_model adds none at its integer layers' edges
    ir.conversions_written = frozenset(layer.name for layer in ir.layers if layer.format in _INT_LAYER_FORMATS)
    for name, ltype, reason in b.approximated:
        ir.leave_out(name, ltype, reason)
    ir.warn_if_incomplete(path, stacklevel=3)
    return ir


def _dequantized(b, ref, steps=6):
    """Whether layer ``ref`` is a DequantizeLinear, or free views of one."""
    for _ in range(steps):
        spec = b.by_name.get(ref)
        if spec is None:
            return False
        if spec.get("op") == "DequantizeLinear" and spec["type"] == "elementwise":
            return True
        if spec["type"] != "shape_op" or not spec.get("inputs"):
            return False
        ref = spec["inputs"][0]
    return False


def _prune(b, graph_outputs):
    """Drop free views nothing reads (an LSTM's unused Y_h and Y_c, a split part left unused):
    each reader of a tensor adds to its gradient sum."""
    keep = {b.layer_of[o] for o in graph_outputs if o in b.layer_of}
    while True:
        used = {ref for spec in b.specs for ref in spec.get("inputs", ())}
        kept = [spec for spec in b.specs if spec["type"] != "shape_op" or spec.get("params")
                or spec["name"] in used or spec["name"] in keep]
        if len(kept) == len(b.specs):
            return
        b.specs[:] = kept


def _feeds_graph(name, nodes, origin, consts):
    """Whether initializer ``name`` reaches a live node (directly or through folded constants)."""
    for node in nodes:
        for i in node.inputs:
            if i in consts and name in origin.get(i, ()):
                return True
        for i in node.attrs.get("absorbed", ()) if node.op == "SDPA" else ():
            if i in consts and name in origin.get(i, ()):
                return True
    return False


def _causal_mask(node, consts, t, s):
    """Whether the mask an ``SDPA`` node absorbed is a constant top-left causal mask (query i sees
    keys 0..i, the same for every head): an additive 0/-inf mask, or a masked fill's condition."""
    absorbed = [i for i in node.attrs["absorbed"] if i]
    mask = node.attrs["mask"]
    if mask == "additive" and len(absorbed) == 1 and _is_mask(consts.get(absorbed[0])):
        kept = consts[absorbed[0]] == 0
    elif mask == "none" and len(absorbed) == 2 and absorbed[0] in consts and consts[absorbed[0]].dtype == bool:
        fill = consts.get(absorbed[1])
        if fill is None or fill.size != 1 or not float(fill.reshape(-1)[0]) <= np.finfo(np.float16).min:
            return False
        cond = consts[absorbed[0]]
        kept = ~cond if node.attrs.get("fill_if_true") else cond
    else:
        return False
    if kept.ndim < 2 or kept.shape[-2:] not in ((t, s), (1, s), (t, 1)):
        return False
    want = np.tril(np.ones((t, s), dtype=bool))
    return bool(np.all(np.broadcast_to(kept, kept.shape[:-2] + (t, s)) == want))


def _sdpa_layers(b, node, where, reads):
    """The attention core as an ``sdpa`` layer on ``[heads, length, head_dim]``, with free
    reshapes around it where the per-sample shapes have another rank."""
    q, k, v = node.inputs
    bt, name = b.bt, node.name
    qs, ks, vs = (bt.per_sample(t, where) for t in (q, k, v))
    qref, kref, vref = b.layer_of[q], b.layer_of[k], b.layer_of[v]
    if node.attrs["k_transposed"]:
        ks = ks[:-2] + (ks[-1], ks[-2])
        kref = b.shape_op(f"{name}/k", "Transpose", kref, ks)

    def as3(ref, shape, what):
        lead = math.prod(shape[:-2]) if len(shape) > 2 else 1
        if len(shape) == 3:
            return ref, shape
        if len(shape) < 2:
            _fail(where, f"attention {what} has per-sample shape {list(shape)}, needs [length, dim]")
        three = (lead, shape[-2], shape[-1])
        return b.shape_op(f"{name}/{what}", "Reshape", ref, three), three

    (qref, q3), (kref, k3), (vref, v3) = as3(qref, qs, "q"), as3(kref, ks, "k"), as3(vref, vs, "v")
    out = node.outputs[0]
    want = bt.per_sample(out, where)
    spec = {"type": "sdpa", "name": name, "inputs": [qref, kref, vref], "mask": node.attrs["mask"]}
    three = (q3[0], q3[1], v3[2])
    if _causal_mask(node, b.consts, q3[1], k3[1]):
        # PyTorch's is_causal, which both exporters write as a dense product and a constant
        # mask: counted as load_torch counts it, the triangle a causal kernel computes
        del spec["mask"]
        spec["causal"] = True
    absorbed = set()
    for i in node.attrs["absorbed"]:
        absorbed |= b.origin.get(i, set())
    if tuple(want) == three:
        b.add(spec, out, expected=want, reads=reads | absorbed)
    else:
        ref = b.add(spec, expected=three, reads=reads | absorbed)
        b.shape_op(f"{name}/out", "Reshape", ref, want, output=out)


def _rnn_layers(b, node, where, refs, reads):
    """ONNX LSTM/GRU/RNN (one layer, one or two directions) as an ``lstm``/``gru``/``rnn`` layer
    on ``[T, features]``, its outputs Y ``[T, directions, H]`` and Y_h/Y_c ``[directions, H]`` per
    sample as free views of it. Variants PyTorch does not have (peepholes, clipping, other
    activations, coupled input/forget gates) stay uncounted: returns False."""
    from ._formulas import FORMULAS
    kind = _RNN_KIND[node.op]
    if kind not in FORMULAS:
        return False
    a = node.attrs
    inputs = list(node.inputs) + [""] * 8
    defaults = {"lstm": ["Sigmoid", "Tanh", "Tanh"], "gru": ["Sigmoid", "Tanh"], "rnn": ["Tanh"]}[kind]
    activations = a.get("activations")
    directions = 2 if a.get("direction", "forward") == "bidirectional" else 1
    nonlinearity = "tanh"
    if activations:
        acts = [x.capitalize() if x.lower() != "relu" else "Relu" for x in activations]
        if kind == "rnn" and acts[:1] == ["Relu"] and acts == ["Relu"] * len(acts):
            nonlinearity = "relu"
        elif acts != defaults * directions and acts != defaults:
            return False
    if a.get("clip") is not None or int(a.get("input_forget", 0)) or (kind == "lstm" and inputs[7]):
        return False
    x = node.inputs[0]
    if x in b.consts:
        return False
    hidden = int(a.get("hidden_size", 0))
    if hidden < 1:
        _fail(where, "hidden_size is missing")
    spec = {"type": kind, "name": node.name, "hidden": hidden, "bidirectional": directions == 2,
            "bias": bool(inputs[3])}
    if kind == "rnn":
        spec["nonlinearity"] = nonlinearity
    ins = [b.layer_of[x]]
    for k in ((5, 6) if kind == "lstm" else (5,)):
        if inputs[k] and inputs[k] not in b.consts:
            if len(ins) != k - 4:
                return False
            ins.append(b.layer_of[inputs[k]])
    spec["inputs"] = ins
    w = b.consts.get(node.inputs[1])
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    xs = b.bt.per_sample(x, where)
    if w is not None and tuple(w.shape) != (directions, gates * hidden, xs[-1]):
        _fail(where, f"weight {node.inputs[1]!r} of shape {list(w.shape)} does not fit hidden_size {hidden}, "
                     f"{directions} direction(s) and {xs[-1]} input features")
    name = b.add(spec, expected=(xs[0], directions * hidden), reads=reads)
    if inputs[4]:
        b.approximated.append((name, kind, f"sequence_lens given: every sample counted at the full length {xs[0]} "
                                            "(an upper bound; shorter sequences run fewer steps)"))
    for k, out in enumerate(node.outputs):
        if out:
            b.shape_op(f"{node.name}:{'Y' if k == 0 else ('Y_h', 'Y_c')[k - 1]}", node.op, name,
                       b.bt.per_sample(out, where), output=out)
    return True


# --- onnxruntime's contrib ops (com.microsoft), as its transformer optimizer writes them ------------

_MS_COUNTED = {"FusedMatMul", "SkipLayerNormalization", "Attention", "Gelu", "FastGelu", "BiasGelu"}


def _custom_reason(node):
    op = node.op
    if node.domain == "com.microsoft" and (op.startswith("Q") or "Integer" in op or "NBits" in op
                                           or "Quant" in op or "QOrdered" in op):
        return f"integer or block-quantized arithmetic: {_NOT_COUNTED}"
    return f"no formula for op {node.domain}.{op} (a custom domain)"


def _ms_shapes(node, shapes, consts):
    """Output shapes (by output index) of the contrib ops tosim counts, which ONNX's shape
    inference does not know."""
    op = node.op_type
    ins = [shapes.get(i) if i else None for i in node.input]
    if not ins or ins[0] is None:
        return {}
    if op in ("SkipLayerNormalization", "Gelu", "FastGelu", "BiasGelu"):
        return {0: ins[0], 3: ins[0]} if op == "SkipLayerNormalization" else {0: ins[0]}
    if op == "FusedMatMul" and len(ins) > 1 and ins[1] is not None:
        attrs = {a.name: a.i for a in node.attribute if a.type == a.INT}
        sa, sb = list(ins[0]), list(ins[1])
        if len(sa) < 2 or len(sb) < 2 or attrs.get("transBatchA") or attrs.get("transBatchB"):
            return {}
        if attrs.get("transA"):
            sa[-2:] = sa[-1:-3:-1]
        if attrs.get("transB"):
            sb[-2:] = sb[-1:-3:-1]
        try:
            lead = np.broadcast_shapes(tuple(sa[:-2]), tuple(sb[:-2]))
        except ValueError:
            return {}
        return {0: tuple(lead) + (sa[-2], sb[-1])}
    if op == "QLinearAdd" and len(ins) > 3 and ins[3] is not None:
        try:
            return {0: tuple(np.broadcast_shapes(tuple(ins[0]), tuple(ins[3])))}
        except ValueError:
            return {}
    if op == "QGemm" and len(ins) > 3 and ins[3] is not None and len(ins[0]) == 2 and len(ins[3]) == 2:
        attrs = {a.name: a.i for a in node.attribute if a.type == a.INT}
        m = ins[0][1] if attrs.get("transA") else ins[0][0]
        n = ins[3][0] if attrs.get("transB") else ins[3][1]
        return {0: (m, n)}
    if op == "Attention" and len(ins) > 1 and ins[1] is not None and len(ins[0]) == 3:
        sizes = next((list(a.ints) for a in node.attribute if a.name == "qkv_hidden_sizes"), None)
        hidden_v = sizes[2] if sizes else ins[1][1] // 3
        return {0: (ins[0][0], ins[0][1], hidden_v)}
    return {}


def _ms_layers(b, node, where, reads):
    """onnxruntime's fused ops as the layers they fuse (None), or why not: FusedMatMul a linear or
    matmul (times alpha), SkipLayerNormalization the adds and a layernorm, Attention the qkv
    projection and the attention core (as nn.MultiheadAttention without its output projection),
    Gelu/FastGelu/BiasGelu a bias add and a gelu."""
    op, a, bt, consts = node.op, node.attrs, b.bt, b.consts
    ins = list(node.inputs) + [""] * 8
    name = node.name
    x = ins[0]
    if not x or x in consts or x not in b.layer_of:
        return "its first input is not an activation"
    xs = bt.per_sample(x, where)

    def param_add(ref, bias, what):
        pref = b.parameter(bias, where)
        return b.add({"type": "elementwise", "name": f"{name}/{what}", "op": "Add", "ops": {"add": 1}, "backward": {},
                      "inputs": [ref, pref], "once_inputs": [False, True]})

    if op in ("Gelu", "FastGelu", "BiasGelu"):
        ref = b.layer_of[x]
        if ins[1]:
            if ins[1] not in consts or not b.weight_sources(ins[1]):
                return "its bias is not a weight"
            ref = param_add(ref, ins[1], "bias")
        b.add({"type": "gelu", "name": name, "inputs": [ref], "approximate": "tanh" if op == "FastGelu" else "none"},
              node.outputs[0])
        return None
    if op == "FusedMatMul":
        if a.get("transA") or a.get("transBatchA") or a.get("transBatchB"):
            return "transA and transBatch variants are not counted"
        w = ins[1]
        alpha = float(a.get("alpha", 1.0))
        if w in consts:
            value = consts[w]
            if value.ndim != 2:
                return f"its constant operand has shape {list(value.shape)}, not a matrix"
            out, n_in = (value.shape[0], value.shape[1]) if a.get("transB") else (value.shape[1], value.shape[0])
            if xs[-1] != n_in:
                return f"its weight {list(value.shape)} does not fit the input's {xs[-1]} features"
            ref = b.add({"type": "linear", "name": name, "inputs": [b.layer_of[x]], "out": int(out), "bias": False},
                        reads=reads)
            b.weight_shape[ref] = [int(out), int(n_in)]
        elif w in b.layer_of:
            ws = bt.per_sample(w, where)
            wref = b.layer_of[w]
            if a.get("transB"):
                ws = ws[:-2] + (ws[-1], ws[-2])
                wref = b.shape_op(f"{name}/bT", "Transpose", wref, ws)
            if len(xs) < 2 or xs[:-2] != ws[:-2] or xs[-1] != ws[-2]:
                return f"operands {list(xs)} and {list(ws)} are not a batched product"
            ref = b.add({"type": "matmul", "name": name, "inputs": [b.layer_of[x], wref]})
        else:
            return "its second operand is produced by no supported node"
        if alpha != 1.0:
            ref = b.add({"type": "elementwise", "name": f"{name}/alpha", "op": "Mul", "ops": {"mul": 1},
                         "backward": {"mul": 1}, "inputs": [ref]})
        b.layer_of[node.outputs[0]] = ref
        return None
    if op == "SkipLayerNormalization":
        skip, gamma, beta, bias = ins[1], ins[2], ins[3], ins[4]
        if not skip or skip not in b.layer_of or bt.per_sample(skip, where) != xs:
            return "its skip input is not an activation of the input's shape"
        if gamma not in consts or (beta and beta not in consts):
            return "its gamma and beta are not constants"
        ref = b.add({"type": "add", "name": f"{name}/skip", "inputs": [b.layer_of[x], b.layer_of[skip]]})
        if bias:
            if bias not in consts or not b.weight_sources(bias):
                return "its bias is not a weight"
            ref = param_add(ref, bias, "bias")
        if len(node.outputs) > 3 and node.outputs[3]:
            b.layer_of[node.outputs[3]] = ref
        b.add({"type": "layernorm", "name": name, "inputs": [ref], "dims": 1, "eps": float(a.get("epsilon", 1e-12)),
               "bias": bool(beta)}, node.outputs[0], reads=b.sources(node, [gamma, beta]))
        return None
    if op == "Attention":
        weights, bias, mask, past, rel = ins[1], ins[2], ins[3], ins[4], ins[5]
        heads = int(a.get("num_heads", 0))
        if past or a.get("qkv_hidden_sizes") or a.get("past_present_share_buffer") or a.get("do_rotary"):
            return "past state, rotary embedding and unequal q/k/v sizes are not counted"
        if weights not in consts or consts[weights].ndim != 2 or len(xs) != 2 or heads < 1:
            return "its weights are not a constant [input, 3 * hidden] matrix on a [length, input] sequence"
        n_in, three = consts[weights].shape
        hidden = three // 3
        if n_in != xs[-1] or three % 3 or hidden % heads:
            return f"its weights {list(consts[weights].shape)} do not fit {heads} heads on {xs[-1]} features"
        t, d = xs[0], hidden // heads
        qkv = b.add({"type": "linear", "name": f"{name}/qkv", "inputs": [b.layer_of[x]], "out": int(three),
                     "bias": bool(bias)}, reads=b.sources(node, [weights, bias]))
        parts = []
        for k, what in enumerate("qkv"):
            parts.append(b.shape_op(f"{name}/{what}", "Split", qkv, (heads, t, d)))
            b.specs[-1]["reads"] = t * hidden
        masked = "additive" if (mask or rel) else "none"
        core = b.add({"type": "sdpa", "name": name, "inputs": parts, "mask": masked,
                      "causal": bool(a.get("unidirectional", 0))})
        b.shape_op(f"{name}/out", "Reshape", core, (t, hidden), output=node.outputs[0])
        return None
    return "no formula"


def _einsum_terms(equation, n_inputs):
    """``(operand letters, output letters)`` of an einsum equation tosim counts, or a reason: two
    operands, no ellipsis, no repeated letter within a term, and every letter in at least two of
    the three terms (no letter summed out of one operand alone)."""
    eq = equation.replace(" ", "")
    if n_inputs != 2 or "..." in eq:
        return "only einsums of two operands without an ellipsis are counted"
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != 2 or not all(t.isalpha() for t in terms) or (rhs and not rhs.isalpha()):
        return f"equation {equation!r} is not of the form 'ab,bc->ac'"
    if not arrow:
        rhs = "".join(sorted(c for c in set(lhs.replace(",", "")) if lhs.count(c) == 1))
    a, c = terms
    if any(len(set(t)) != len(t) for t in (a, c, rhs)):
        return f"equation {equation!r} repeats a letter within a term (a diagonal)"
    if not set(rhs) <= set(a) | set(c) or any(x not in c and x not in rhs for x in a) or any(
            x not in a and x not in rhs for x in c):
        return f"equation {equation!r} sums a letter out of one operand alone"
    return (a, c), rhs


def _einsum_layers(b, node, where, reads):
    """A two-operand Einsum as the batched product it is: the letters both operands and the
    output share are its batch (L), those of one operand and the output its rows (m) and
    columns (n), those of both operands only the contraction (k): a ``matmul`` of ``[L, m, k]``
    by ``[L, k, n]`` between free reshapes, or with a constant operand (a weight shared by every
    sample, no letter of its own in the output's batch) a ``linear`` of ``[m, k]`` to
    ``[m, n]``. Counts as FlopCounterMode does (L*m*k*n MACs). Returns None, or why it is not
    counted."""
    got = _einsum_terms(str(node.attrs.get("equation", "")), len([i for i in node.inputs if i]))
    if isinstance(got, str):
        return got
    (ta, tc), ty = got
    bt, consts = b.bt, b.consts
    x_a, x_c = node.inputs[:2]
    out = node.outputs[0]
    size = {}
    for letters, name in ((ta, x_a), (tc, x_c)):
        shape = bt.shapes.get(name)
        if shape is None or len(shape) != len(letters) or None in shape:
            return f"the shape of {name!r} does not fit the equation"
        for ch, d in zip(letters, shape):
            if size.setdefault(ch, d) != d:
                return f"letter {ch!r} has sizes {size[ch]} and {d}"
    live = [i for i in (x_a, x_c) if i not in consts]
    batch_letters = set()
    for name, letters in ((x_a, ta), (x_c, tc)):
        if name in bt.axes:
            axis, inner = bt.axes[name]
            if inner != 1 or bt.shapes[name][axis] != bt.batch:
                return "the batch is merged with another axis of an operand"
            batch_letters.add(letters[axis])
    if len(batch_letters) != 1 or next(iter(batch_letters)) not in ty:
        return "the operands do not share one batch letter that the output keeps"
    (batch_letter,) = batch_letters
    per = {ch: d for ch, d in size.items() if ch != batch_letter}

    def prod(letters):
        return math.prod(per[ch] for ch in letters if ch != batch_letter)

    out_shape = bt.per_sample(out, where)
    name = node.name
    if len(live) == 2:
        both = [ch for ch in ta if ch in tc and ch in ty]
        rows = [ch for ch in ta if ch in ty and ch not in tc]
        cols = [ch for ch in tc if ch in ty and ch not in ta]
        inner_ = [ch for ch in ta if ch in tc and ch not in ty]
        lead, m, k, n = prod(both), prod(rows), prod(inner_), prod(cols)
        a_ref = b.shape_op(f"{name}/a", "Einsum", b.layer_of[x_a], (lead, m, k))
        c_ref = b.shape_op(f"{name}/b", "Einsum", b.layer_of[x_c], (lead, k, n))
        ref = b.add({"type": "matmul", "name": name, "inputs": [a_ref, c_ref]}, expected=(lead, m, n), reads=reads)
    else:
        x, tx, tw = (x_a, ta, tc) if x_a in live else (x_c, tc, ta)
        if any(ch in tx and ch in ty for ch in tw):
            return "its constant operand has a letter the other operand and the output share (a weight per " \
                   "batch index)"
        inner_ = [ch for ch in tx if ch in tw]
        rows = [ch for ch in tx if ch not in tw]
        cols = [ch for ch in tw if ch not in tx]
        m, k, n = prod(rows), prod(inner_), prod(cols)
        x_ref = b.shape_op(f"{name}/x", "Einsum", b.layer_of[x], (m, k))
        ref = b.add({"type": "linear", "name": name, "inputs": [x_ref], "out": n, "bias": False},
                    expected=(m, n), reads=reads)
        b.weight_shape[ref] = [n, k]
    b.shape_op(f"{name}/out", "Einsum", ref, out_shape, output=out)
    return None


def _sym_pads(pads, nd, where):
    if not pads:
        return [0] * nd
    begin, end = list(pads[:nd]), list(pads[nd:])
    if begin != end:
        _fail(where, f"asymmetric padding {list(pads)} is not supported")
    return begin


def _check_weight(node, where, bt, weight, need, axis, what, w_name=None):
    """The weight must fit the inferred input: it needs ``need`` along input dimension ``axis``
    (ONNX's own shape inference lets a mismatch through, which would count wrong parameters)."""
    shape = bt.shapes.get(node.inputs[0])
    if shape is None or len(shape) < 2 or shape[axis] in (None, need):
        return
    _fail(where, f"weight {w_name or node.inputs[1]!r} of shape {list(weight.shape)} needs {need} {what}, but input "
                 f"{node.inputs[0]!r} has per-sample shape {list(bt.per_sample(node.inputs[0], where))} "
                 f"({shape[axis]} {what})")


def _broadcast_param(value, batch_axis, batch):
    """``value`` without a batch axis that only repeats one sample (an exporter's expanded
    parameter), or None."""
    if batch_axis is None or value.ndim <= batch_axis or value.shape[batch_axis] not in (1, batch):
        return None
    first = np.take(value, [0], axis=batch_axis)
    if value.shape[batch_axis] != 1 and not np.array_equal(np.broadcast_to(first, value.shape), value):
        return None
    return first


def _node_spec(node, where, b, refs, consumers, skip):
    op, a = node.op, node.attrs
    consts, bt = b.consts, b.bt
    shapes = bt.shapes
    const = lambda i: i < len(node.inputs) and node.inputs[i] in consts  # noqa: E731
    n_live = len(refs)
    x = node.inputs[0] if node.inputs else None
    rank = len(shapes[x]) if x in shapes and x in bt.axes else None
    if node.domain == "com.microsoft" and op == "QGemm":
        return _qgemm_spec(node, where, b, n_live)
    if node.domain == "com.microsoft" and op == "QLinearAdd" and n_live == 2:
        return dict(_INTEGER_ADD)
    if node.domain not in ("", "ai.onnx"):
        return {"type": op, "reason": a.get("_reason") or _custom_reason(node)}
    if op in _INTEGER_PRODUCTS:
        return _integer_product_spec(node, where, b)
    if op in ("QuantizeLinear", "DequantizeLinear"):
        if a.get("_qdq_free"):
            return None             # part of an integer product's group: its requantization or a free read
        quantize = op == "QuantizeLinear"
        # a quantized value passes no gradient (rounding); a dequantization's is dy x scale
        return {"type": "elementwise", "op": op, "ops": dict(_QUANTIZE_OPS if quantize else _DEQUANTIZE_OPS),
                "backward": {} if quantize else {"mul": 1}, **({"no_grad": True} if quantize else {})}
    if op in ("Conv", "ConvTranspose"):
        w = consts.get(node.inputs[1]) if const(1) else None
        if w is None:
            _fail(where, "weights must be constant")
        return _conv_spec(node, where, b, w, len(node.inputs) > 2 and bool(node.inputs[2]))
    if op == "Gemm" and n_live == 1 and const(1) and not const(0):
        if a.get("transA", 0):
            _fail(where, "transA is not supported")
        w = consts[node.inputs[1]]
        if w.ndim != 2:
            _fail(where, f"weight {node.inputs[1]!r} must be a matrix, has shape {list(w.shape)}")
        _check_weight(node, where, bt, w, int(w.shape[1] if a.get("transB", 0) else w.shape[0]), -1,
                      "input features")
        if float(a.get("alpha", 1.0)) != 1.0 or (float(a.get("beta", 1.0)) != 1.0 and len(node.inputs) > 2):
            return {"type": "Gemm"}
        out = int(w.shape[0] if a.get("transB", 0) else w.shape[1])
        spec = {"type": "linear", "out": out, "bias": len(node.inputs) > 2 and bool(node.inputs[2])}
        spec = _tie(spec, node, b, int(w.size) // out)
        if spec["bias"]:
            _tie_bias(spec, b, b.sources(node, node.inputs[2:3]))
        return spec
    if op == "MatMul" and n_live == 1 and const(1) and consts[node.inputs[1]].ndim == 2:
        w = consts[node.inputs[1]]
        _check_weight(node, where, bt, w, int(w.shape[0]), -1, "input features")
        out = int(w.shape[1])
        spec = _tie({"type": "linear", "out": out, "bias": False}, node, b, int(w.shape[0]))
        users = consumers.get(node.outputs[0], [])
        if len(users) == 1 and users[0].op == "Add":
            add = users[0]
            other = [i for i in add.inputs if i != node.outputs[0]]
            if len(other) == 1 and other[0] in consts and consts[other[0]].shape in ((out,), (1, out)):
                spec["bias"] = True
                _tie_bias(spec, b, b.sources(add, other))
                spec["_output"] = add.outputs[0]
                skip.add(id(add))
                b.own(b.sources(add), node.name)
        return spec
    if op == "MatMul" and n_live == 2:
        sa, sb = (bt.per_sample(i, where) for i in node.inputs[:2])
        if len(sa) >= 2 and len(sb) >= 2 and sa[:-2] == sb[:-2] and sa[-1] == sb[-2]:
            return {"type": "matmul"}
        return {"type": "MatMul"}                 # broadcast batch dimensions: uncounted
    if op == "Gather" and const(0) and consts[node.inputs[0]].ndim == 2 and n_live == 1 and int(a.get("axis", 0)) == 0:
        vocab, dim = consts[node.inputs[0]].shape
        return {"type": "embedding", "vocab": int(vocab), "dim": int(dim)}
    if op in ("Add", "Mul") and n_live == 2 and len(node.inputs) == 2 and shapes.get(node.inputs[0]) == shapes.get(
            node.inputs[1]) and bt.axes[node.inputs[0]] == bt.axes[node.inputs[1]] and refs[0] != refs[1]:
        return {"type": op.lower()}
    if op == "Add" and n_live == 1 and len(node.inputs) == 2:
        spec = _position_table(node, where, b)
        if spec is not None:
            return spec
    if op in ("Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Erf", "Neg", "Reciprocal", "Abs", "Max",
              "Min", "Clip", "Sum", "Mean"):
        return _elementwise_spec(node, consts, n_live)
    if op == "Relu":
        return {"type": "relu"}
    if op == "LeakyRelu":
        return {"type": "leaky_relu", "slope": float(a.get("alpha", 0.01))}
    if op in ("Sigmoid", "Tanh"):
        return {"type": op.lower()}
    if op == "Gelu":
        return {"type": "gelu", "approximate": a.get("approximate", "none")}
    if op == "HardSwish":
        return {"type": "hardswish"}
    if op == "HardSigmoid":
        if abs(float(a.get("alpha", 0.2)) - 1 / 6) < 1e-6 and float(a.get("beta", 0.5)) == 0.5:
            return {"type": "hardsigmoid"}               # PyTorch's: relu6(x + 3) / 6
        return {"type": op, "reason": f"HardSigmoid with alpha {a.get('alpha', 0.2)} and beta {a.get('beta', 0.5)} "
                                      "has no recipe (PyTorch's is alpha 1/6, beta 0.5)"}
    if op == "Silu":
        return {"type": "silu"}
    if op in ("Softmax", "LogSoftmax"):
        axis = bt.axis(x, a.get("axis", -1), where, "softmax")
        return {"type": "softmax" if op == "Softmax" else "log_softmax", "axis": axis}
    if op in ("MaxPool", "AveragePool"):
        k = list(a["kernel_shape"])
        nd = len(k)
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            _fail(where, f"auto_pad {a['auto_pad']} is not supported")
        if len([o for o in node.outputs if o]) > 1:
            return {"type": op}
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
        spec = {"type": "batchnorm", "eps": float(a.get("epsilon", 1e-5))}
        if a.get("training_mode") or len([o for o in node.outputs if o]) > 1:
            # as the TorchScript exporter writes BatchNorm with training=TrainingMode.TRAINING: the
            # batch statistics and the running statistics' update, which the training phase counts
            spec["_note"] = ("training-mode BatchNormalization (batch statistics): the training phase counts it as "
                             "run; inference and validation count a batchnorm on its running statistics")
        return spec
    if op == "LayerNormalization":
        axis = bt.axis(x, a.get("axis", -1), where, "layer normalization")
        per = bt.per_sample(x, where)
        if len([o for o in node.outputs if o]) > 1:
            return {"type": op}
        return {"type": "layernorm", "dims": len(per) - axis, "eps": float(a.get("epsilon", 1e-5)),
                "bias": len(node.inputs) > 2 and bool(node.inputs[2])}
    if op == "GroupNormalization":
        spec = {"type": "groupnorm", "groups": int(a["num_groups"]), "eps": float(a.get("epsilon", 1e-5))}
        scale = consts.get(node.inputs[1]) if const(1) else None
        channels = shapes[x][1] if rank and rank > 1 else None
        if scale is not None and scale.size != channels:
            # opsets 18-20 scale and shift per group (G values); PyTorch and opset 21 per channel
            spec["_note"] = (f"scale and bias per group ({scale.size}), as opsets 18-20 define them: counted as a "
                             f"per-channel affine ({channels}), so its parameters are over by "
                             f"{2 * (channels - scale.size)}")
        return spec
    if op == "InstanceNormalization":
        spec = {"type": "groupnorm", "groups": int(shapes[x][1]), "eps": float(a.get("epsilon", 1e-5))}
        scale = consts.get(node.inputs[1]) if const(1) else None
        shift = consts.get(node.inputs[2]) if const(2) else None
        if scale is not None and shift is not None and np.all(scale == 1) and np.all(shift == 0):
            # the TorchScript exporter writes GroupNorm as an instance norm with a constant
            # identity affine (ones and zeros, no parameters), then the learned affine as Mul + Add
            spec["affine"] = False
        return spec
    if op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"):
        return {"type": "reduce", "kind": op[6:].lower()}
    if op == "Concat" and n_live == len([i for i in node.inputs if i]) and n_live > 1:
        return {"type": "concat", "axis": bt.axis(x, a["axis"], where, "concat")}
    if op == "Concat" and n_live == 1:
        spec = _class_token(node, where, b)
        if spec is not None:
            return spec
    if op in _COMPARE:
        return _elementwise_spec(node, consts, n_live)
    if op in ("ArgMax", "ArgMin"):
        # D - 1 comparisons per index found along an axis of D elements; indices pass no gradient
        d = shapes[x][_norm_axis(int(a.get("axis", 0)), len(shapes[x]))]
        return {"type": "elementwise", "op": op, "ops": {"cmp": d - 1}, "backward": {}, "no_grad": True}
    if op in ("Resize", "Upsample"):
        return _resize_spec(node, where, b)
    if op in _QUANT_OPS:
        return {"type": op, "reason": f"no formula for ONNX op {op} here"}
    if op == "Einsum":
        return {"type": op, "reason": a.get("_reason") or "no formula for this equation"}
    if op in _CONTROL_FLOW:
        return {"type": op, "reason": _control_flow_reason(node, consts)}
    if op in ("ScatterElements", "ScatterND") and a.get("reduction", "none") != "none":
        return {"type": op, "reason": f"a scatter with reduction {a['reduction']!r} has no formula"}
    if op in _ZERO_COST:
        return None
    return {"type": op, "reason": _OTHER_REASONS.get(op, f"no formula for ONNX op {op}")}


def _conv_spec(node, where, b, w, bias, w_name=None):
    """The ``conv*``/``conv_transpose*`` spec of a Conv, ConvTranspose, QLinearConv or ConvInteger
    node with constant weight ``w``."""
    op, a = node.op, node.attrs
    transpose = op == "ConvTranspose"
    nd = w.ndim - 2
    kernel = list(w.shape[2:])
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        _fail(where, f"auto_pad {a['auto_pad']} is not supported; export with explicit pads")
    group = int(a.get("group", 1))
    in_channels = int(w.shape[0]) if transpose else int(w.shape[1]) * group
    _check_weight(node, where, b.bt, w, in_channels, 1, "input channels", w_name)
    out = int(w.shape[1]) * group if transpose else int(w.shape[0])
    spec = {"type": f"conv_transpose{nd}d" if transpose else f"conv{nd}d", "out": out, "kernel": kernel,
            "stride": list(a.get("strides", [1] * nd)), "dilation": list(a.get("dilations", [1] * nd)),
            "padding": _sym_pads(a.get("pads"), nd, where), "groups": group, "bias": bias}
    if transpose:
        spec["output_padding"] = list(a.get("output_padding", [0] * nd))
        if "output_shape" in a:
            _fail(where, "output_shape is not supported; export with explicit pads")
    return spec


def _int_format(consts, names):
    """The integer format (int8, int4) of a quantized product from the element types of the
    constants among ``names`` (its weight, its zero points): int4 when all are 4-bit, else int8
    (also when none is a constant: ONNX's default zero point is uint8); ``None`` for another
    integer type (int16, ...), which has no format here."""
    kinds = {str(consts[n].dtype) for n in names if n and n in consts}
    if kinds - set(_INT_FORMAT):
        return None
    formats = {_INT_FORMAT[k] for k in kinds}
    return "int4" if formats == {"int4"} else "int8"


def _integer_product_spec(node, where, b):
    """QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger: the conv, linear (constant weight)
    or matmul layer of the float op, in the operands' integer format, accumulating in int32 (the
    int32 bias of QLinearConv included), requantized when the op is a QLinear* one (its output is
    8-bit again) and not otherwise (the int32 sums are the output). Zero points: the data
    operand's is folded into the bias ahead of time where the weight is constant (its correction,
    zero point x the weight's sums, is a constant per output channel), so it costs nothing; one
    computed at run time for the whole batch (DynamicQuantizeLinear's) cannot be folded: its
    correction is counted (``_zero_point``, see :func:`_zero_point_correction`). A non-zero
    weight zero point (or, for two activations, any non-zero zero point, and any other zero point
    or scale computed at run time) needs correction terms at run time (a sum of the data per
    output, times the zero point, subtracted), which are not counted: the layer is then listed as
    approximated. The layer reads the data and weight operands only."""
    op, consts = node.op, b.consts
    data, weight, bias_at, zero_points = _INTEGER_PRODUCTS[op]
    inputs = node.inputs
    at = lambda k: inputs[k] if k is not None and k < len(inputs) else ""  # noqa: E731
    operands = [at(k) for k in (data, weight) if at(k) and at(k) not in consts]
    n_live = len(operands)
    # scales and zero points computed at run time (not constants)
    computed = [name for k, name in enumerate(inputs) if name and name not in consts and k not in (data, weight)]
    fmt = _int_format(consts, [at(weight)] + [at(k) for k in zero_points])
    if fmt is None:
        kinds = sorted({str(consts[at(k)].dtype) for k in (weight, *zero_points) if at(k) in consts})
        return {"type": op, "reason": f"integer operands of type {', '.join(kinds)}: no format of that width here "
                                      "(int8, int4), so it is not counted"}
    w_name = at(weight)
    if "Conv" in op:
        if w_name not in consts:
            _fail(where, "weights must be constant")
        spec = _conv_spec(node, where, b, consts[w_name], bool(at(bias_at)), w_name)
    elif n_live == 1 and w_name in consts and at(data) not in consts and consts[w_name].ndim == 2:
        w = consts[w_name]
        _check_weight(node, where, b.bt, w, int(w.shape[0]), -1, "input features", w_name)
        spec = {"type": "linear", "out": int(w.shape[1]), "bias": False}
    elif n_live == 2:
        sa, sb = (b.bt.per_sample(i, where) for i in (at(data), w_name))
        if not (len(sa) >= 2 and len(sb) >= 2 and sa[:-2] == sb[:-2] and sa[-1] == sb[-2]):
            return {"type": op, "reason": "an integer matrix product with broadcast batch dimensions has no "
                                          "formula here"}
        spec = {"type": "matmul"}
    else:
        return {"type": op, "reason": "an integer matrix product of a constant by an activation has no formula here"}
    spec["format"] = fmt
    spec["quant"] = {"requantize": op.startswith("QLinear")}
    spec["inputs"] = [b.layer_of[name] for name in operands]
    nonzero = [at(k) for k in (zero_points if n_live == 2 else zero_points[1:])
               if at(k) in consts and np.any(np.asarray(consts[at(k)]).astype(np.int64) != 0)]
    data_zp = at(zero_points[0])
    if n_live == 1 and data_zp in computed and data_zp in b.bt.whole and spec["type"] != "matmul":
        spec["_zero_point"] = data_zp
        computed.remove(data_zp)
    if nonzero:
        spec["_note"] = (f"non-zero zero point {nonzero[0]!r}: its correction terms (a sum of the other operand per "
                         "output, times the zero point, subtracted) are not counted")
    elif computed:
        spec["_note"] = (f"scale or zero point {computed[0]!r} computed at run time: its correction terms or "
                         "requantization multiplier are not counted")
    return spec


def _zero_point_correction(b, name, spec, zero_point, out, per_sample):
    """The correction of an integer product whose data zero point is computed at run time, one
    value for the whole batch (DynamicQuantizeLinear's): sum_k (x - zp) w = sum_k x w - zp x
    (the weight's column sums, a constant), so per batch the zero point times each output
    channel's weight sum (a row ``NAME/zero_point_sums``, 1 mul per channel, once) and per output
    element its subtraction (a row ``NAME/zero_point``, 1 sub), both in the accumulator's format,
    as a runtime does it (MLAS starts the accumulators from the correction). The corrected sums
    are the product's output."""
    acc = INT_ACCUMULATOR
    channels = spec["out"] if spec["type"] == "linear" else per_sample[0]
    shape = [channels] if spec["type"] == "linear" else [channels] + [1] * (len(per_sample) - 1)
    sums = b.add({"type": "elementwise", "name": f"{name}/zero_point_sums", "op": "zero point x weight sums",
                  "inputs": [b.layer_of[zero_point]], "ops": {"mul": 1}, "backward": {}, "no_grad": True,
                  "once": True, "once_inputs": [True], "out_shape": shape, "format": acc})
    b.add({"type": "elementwise", "name": f"{name}/zero_point", "op": "zero point correction",
           "inputs": [name, sums], "ops": {"sub": 1}, "backward": {}, "no_grad": True, "once_inputs": [False, True],
           "out_shape": list(per_sample), "format": acc}, out, expected=per_sample)


def _qgemm_spec(node, where, b, n_live):
    """onnxruntime's QGemm (A, scale, zero point, B, scale, zero point, C, y scale, y zero point)
    with a constant B: a linear layer in the operands' integer format, the int32 C its bias,
    requantized when it has an output scale (else its output is float, scaled: counted as the
    requantization too, a multiply per output, with the rest as an upper bound)."""
    consts, inputs, a = b.consts, node.inputs, node.attrs
    at = lambda k: inputs[k] if k < len(inputs) else ""  # noqa: E731
    fmt = _int_format(consts, [at(3), at(2), at(5)])
    w = consts.get(at(3))
    if fmt is None or w is None or w.ndim != 2 or n_live != 1 or a.get("transA", 0) or \
            float(a.get("alpha", 1.0)) != 1.0:
        return {"type": node.op, "reason": "a QGemm other than int8/int4 activations times a constant matrix (no "
                                           "transA, alpha 1): " + _NOT_COUNTED}
    out = int(w.shape[0] if a.get("transB", 0) else w.shape[1])
    _check_weight(node, where, b.bt, w, int(w.size) // out, -1, "input features", at(3))
    spec = {"type": "linear", "out": out, "bias": bool(at(6)), "format": fmt, "quant": {"requantize": True}}
    if at(5) in consts and np.any(np.asarray(consts[at(5)]).astype(np.int64) != 0):
        spec["_note"] = (f"non-zero zero point {at(5)!r}: its correction terms (a sum of the other operand per "
                         "output, times the zero point, subtracted) are not counted")
    return spec


def _qdq_groups(nodes, consts, b, consumers):
    """Mark the QDQ groups among ``nodes`` (ONNX's QDQ format: DequantizeLinear -> Conv, Gemm or
    MatMul -> optional Relu -> QuantizeLinear, with a constant weight dequantized from an integer
    initializer, or two dequantized activations): ``{id(node): format}`` for the product (and the
    Relu), counted as integer layers (``quant``: int32 accumulation, requantized: the closing
    QuantizeLinear is the requantization); that QuantizeLinear, and every DequantizeLinear whose
    readers are all such products, get ``_qdq_free`` (no op of their own). The other Q and DQ
    nodes are counted as they are written (:data:`_QUANTIZE_OPS`, :data:`_DEQUANTIZE_OPS`)."""
    standard = ("", "ai.onnx")
    producer = {o: n for n in nodes for o in n.outputs if o}

    def dequantized(tensor):
        for _ in range(8):
            n = producer.get(tensor)
            if n is None or n.domain not in standard:
                return None
            if n.op == "DequantizeLinear":
                return n
            if n.op not in _VIEWS:
                return None
            tensor = n.inputs[0]
        return None

    def only_user(tensor, op):
        users = consumers.get(tensor, [])
        return users[0] if len(users) == 1 and users[0].op == op and users[0].domain in standard else None

    fused: dict[int, str] = {}
    dqs = []
    for n in nodes:
        if n.op not in _QDQ_PRODUCTS or n.domain not in standard or len(n.inputs) < 2:
            continue
        x, w = n.inputs[0], n.inputs[1]
        if x in consts:
            continue
        if w in consts:
            ints = b.origin.get(w, set()) & b.quant_inits
            if not ints:
                continue
            found = [dequantized(x)]
            names = list(ints)
        else:
            found = [dequantized(x), dequantized(w)]
            names = []
        if any(d is None for d in found):
            continue
        out = n.outputs[0]
        add = only_user(out, "Add") if n.op == "MatMul" and w in consts else None
        if add is not None and any(i in consts for i in add.inputs):
            out = add.outputs[0]
        relu = only_user(out, "Relu")
        q = only_user(relu.outputs[0] if relu is not None else out, "QuantizeLinear")
        if q is None:
            continue
        names += [d.inputs[2] for d in found if len(d.inputs) > 2] + ([q.inputs[2]] if len(q.inputs) > 2 else [])
        fmt = _int_format(consts, names)
        if fmt is None:
            continue
        # zero points needing run-time corrections (see _integer_product_spec): the weight's (the
        # integer constants folded into it besides the weight itself), or, for two activations, any
        if w in consts:
            big = max(ints, key=lambda name: consts[name].size)
            zps = [name for name in ints if name != big]
        else:
            zps = [d.inputs[2] for d in found if len(d.inputs) > 2]
        nonzero = [z for z in zps if z in consts and np.any(np.asarray(consts[z]).astype(np.int64) != 0)]
        if nonzero:
            n.attrs["_qdq_note"] = (f"non-zero zero point {nonzero[0]!r}: its correction terms (a sum of the other "
                                    "operand per output, times the zero point, subtracted) are not counted")
        fused[id(n)] = fmt
        if relu is not None:
            fused[id(relu)] = fmt
        q.attrs["_qdq_free"] = True
        dqs.extend(found)

    def same(x, y):
        return (x in consts) == (y in consts) and (x not in consts or np.array_equal(consts[x], consts[y]))

    for n in nodes:
        if n.op != "QuantizeLinear" or n.domain not in standard or n.attrs.get("_qdq_free"):
            continue
        # an Add of two dequantized tensors requantized: an integer add (QLinearAdd)
        add = producer.get(n.inputs[0])
        if add is not None and add.op == "Add" and add.domain in standard and only_user(add.outputs[0],
                                                                                     "QuantizeLinear") is n:
            found = [dequantized(i) for i in add.inputs[:2]]
            names = [d.inputs[2] for d in found if d is not None and len(d.inputs) > 2]
            fmt = _int_format(consts, names + ([n.inputs[2]] if len(n.inputs) > 2 else []))
            if len(found) == 2 and None not in found and all(i not in consts for i in add.inputs) and fmt:
                fused[id(add)] = "add"
                n.attrs["_qdq_free"] = True
                dqs.extend(found)
                continue
        # DequantizeLinear -> free views -> QuantizeLinear at the same scale and zero point: the
        # integers pass through unchanged (a Flatten or Reshape between two quantized layers)
        d = dequantized(n.inputs[0])
        if d is not None and len(n.inputs) > 1 and same(d.inputs[1], n.inputs[1]) and (
                len(d.inputs) > 2) == (len(n.inputs) > 2) and (len(d.inputs) < 3 or same(d.inputs[2], n.inputs[2])):
            n.attrs["_qdq_free"] = True
            dqs.append(d)

    def read_by_products(tensor, depth=0):
        users = consumers.get(tensor, [])
        return bool(users) and depth < 8 and all(
            id(u) in fused or (u.op == "QuantizeLinear" and u.attrs.get("_qdq_free") and u.domain in standard)
            or (u.op in _VIEWS and read_by_products(u.outputs[0], depth + 1)) for u in users)

    for d in dqs:
        if read_by_products(d.outputs[0]):
            d.attrs["_qdq_free"] = True
    return fused


#: Reductions counted as ``reduce`` layers (the other ONNX reductions have no formula here).
_REDUCE_KINDS = {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "max", "ReduceMin": "min"}
#: Per batch, once: DynamicQuantizeLinear's scale from the range of its input (the minimum and
#: maximum of every element, counted as reductions): min(x_min, 0) and max(x_max, 0) (2 cmp), their
#: difference (1 sub), / 255 (1 div); its zero point: 0 - x_min / scale (1 div, 1 sub), rounded
#: (no basic op) and saturated to [0, 255] (2 cmp). The rounding of y = x / scale + zero point is
#: no basic op either, as for QuantizeLinear (:data:`_QUANTIZE_OPS`, per element).
_DYNAMIC_SCALE_OPS = {"cmp": 2, "sub": 1, "div": 1}
_DYNAMIC_ZERO_POINT_OPS = {"div": 1, "sub": 1, "cmp": 2}


def _whole_batch_layers(b, node, where, live, refs, reads):
    """The layers of a node that reads or writes whole-batch values (``_Batch.whole``: one value
    for the batch, counted once). DynamicQuantizeLinear: see :func:`_dynamic_quantize`. A
    reduction over the batch axis is a ``reduce`` layer whose output is counted once and whose
    input, per sample, the batch's elements (ArgMax/ArgMin: D - 1 cmp per index, D the whole
    axis); elementwise arithmetic is counted per element of its output, once where every input
    is a whole-batch value (a product of two scales), per sample where it broadcasts one over a
    per-sample tensor (x times a scale), the whole-batch inputs read once (``once_inputs``); data
    movement is free. Any other op reading a whole-batch value has no placement here: an
    uncounted layer saying so (the result is incomplete)."""
    bt, consts, op = b.bt, b.consts, node.op
    standard = node.domain in ("", "ai.onnx")
    if op == "DynamicQuantizeLinear" and standard and len(live) == 1 and live[0] == node.inputs[0]:
        _dynamic_quantize(b, node, where, refs[0])
        return
    outs = [o for o in node.outputs if o]
    once_in = [i in bt.whole for i in live]
    out = outs[0]
    shape = bt.counted(out, where)
    whole_out = out in bt.whole
    spec = None
    if not standard:
        spec = {"type": op, "reason": node.attrs.get("_reason") or _custom_reason(node)}
    elif op in _REDUCE_KINDS and whole_out and len(live) == 1:
        spec = {"type": "reduce", "kind": _REDUCE_KINDS[op], "once": True, "once_inputs": once_in}
    elif op in ("ArgMax", "ArgMin") and whole_out and len(live) == 1:
        full = bt.shapes[live[0]]
        d = full[_norm_axis(int(node.attrs.get("axis", 0)), len(full))]
        spec = {"type": "elementwise", "op": op, "ops": {"cmp": d - 1}, "backward": {}, "no_grad": True,
                "once": True, "once_inputs": once_in}
    elif op in ("QuantizeLinear", "DequantizeLinear") and not node.attrs.get("_qdq_free"):
        # with a scale or zero point computed at run time (a DynamicQuantizeLinear's): as written
        spec = _node_spec(node, where, b, refs, {}, set())
        spec.update(once=whole_out, once_inputs=once_in)
    elif op in _ELEMENTWISE or op in ("Pow", "Max", "Min", "Mean"):
        params_in = [i for i in node.inputs if i in consts and b.weight_sources(i)]
        prefs = [b.parameter(i, where) for i in params_in]
        spec = _elementwise_spec(node, consts, len(refs) + len(prefs), fixed=set(consts) - set(params_in))
        refs, once_in = refs + prefs, once_in + [True] * len(prefs)
        reads = reads - {s for i in params_in for s in b.origin.get(i, ())}
        spec.update(once=whole_out, once_inputs=once_in)
    elif op in _ZERO_COST or op in ("QuantizeLinear", "DequantizeLinear"):
        first = None
        for k, o in enumerate(node.outputs):
            if not o:
                continue
            params = b.free_params(reads) if first is None else 0
            made = b.shape_op(node.name if k == 0 else f"{node.name}:{k}", op, refs[0], bt.counted(o, where),
                              params=params, reads=reads if first is None else ())
            b.specs[-1].update(inputs=list(refs), once=o in bt.whole, once_inputs=list(once_in))
            b.layer_of[o] = made
            first = first or made
        return
    else:
        what = ", ".join(repr(i) for i in live if i in bt.whole)
        why = (f"reads {what}, a value computed over the whole batch (a reduction over the batch, a dynamic "
               "quantization's scale or zero point)" if what else f"{op} over the batch axis, one value for the batch")
        spec = {"type": op, "reason": f"{why}: {_NOT_COUNTED}"}
    spec.update(name=node.name, inputs=list(refs), out_shape=list(shape))
    if spec["type"] == op:
        spec["params"] = b.free_params(reads)
    else:
        params = b.free_params(reads)
        if params and spec["type"] == "elementwise":
            spec["params"] = params
    name = b.add(spec, out, expected=shape, reads=reads)
    for k, extra in enumerate(node.outputs[1:], start=1):
        if extra and extra != out:
            b.shape_op(f"{node.name}:{k}", op, name, bt.counted(extra, where), output=extra)
            b.specs[-1].update(once=extra in bt.whole, once_inputs=[whole_out])


def _dynamic_quantize(b, node, where, ref):
    """DynamicQuantizeLinear (x -> y uint8, y_scale, y_zero_point), as ONNX defines it: the scale
    and zero point from the minimum and maximum of the whole tensor (every sample's elements, and
    0), then y = saturate(round(x / scale) + zero point) per element. Rows: ``NAME/min`` and
    ``NAME/max``, reductions over the whole batch (batch x E - 1 cmp each for E elements per
    sample); ``NAME/scale`` and ``NAME/zero_point``, once per batch (:data:`_DYNAMIC_SCALE_OPS`,
    :data:`_DYNAMIC_ZERO_POINT_OPS`); ``NAME``, the quantization per element in the input's
    floating-point format, as QuantizeLinear's (:data:`_QUANTIZE_OPS`: 1 div, 1 add, 2 cmp).
    In all 4 cmp, 1 div and 1 add per element, 2 sub, 2 div and 2 cmp per batch. Rounding passes
    no gradient: no backward."""
    bt, name = b.bt, node.name
    x, y = node.inputs[0], node.outputs[0]
    once = x in bt.whole
    shape = bt.counted(y, where) if y else bt.counted(x, where)
    quiet = {"backward": {}, "no_grad": True}
    lo, hi = (b.add({"type": "reduce", "name": f"{name}/{kind}", "kind": kind, "inputs": [ref], "out_shape": [1],
                     "once": True, "once_inputs": [once], "no_grad": True}) for kind in ("min", "max"))
    scale = b.add({"type": "elementwise", "name": f"{name}/scale", "op": "DynamicQuantizeLinear scale",
                   "inputs": [lo, hi], "ops": dict(_DYNAMIC_SCALE_OPS), "once": True, "out_shape": [1], **quiet},
                  node.outputs[1] if len(node.outputs) > 1 and node.outputs[1] else None)
    zero = b.add({"type": "elementwise", "name": f"{name}/zero_point", "op": "DynamicQuantizeLinear zero point",
                  "inputs": [lo, scale], "ops": dict(_DYNAMIC_ZERO_POINT_OPS), "once": True, "out_shape": [1], **quiet},
                 node.outputs[2] if len(node.outputs) > 2 and node.outputs[2] else None)
    b.add({"type": "elementwise", "name": name, "op": "DynamicQuantizeLinear", "inputs": [ref, scale, zero],
           "ops": dict(_QUANTIZE_OPS), "once": once, "once_inputs": [once, True, True], "out_shape": list(shape),
           **quiet}, y or None, expected=shape)


_OTHER_REASONS = {
    "TopK": "top-k selection: its comparisons depend on the algorithm, no formula",
    "CumSum": "prefix sums (D-1 adds per row, forward and backward): no formula here yet",
}


def _control_flow_reason(node, consts):
    """Why a Loop, Scan or If left in the graph is not counted (those whose trip count or
    condition is known are unrolled or inlined before counting)."""
    if node.attrs.get("_reason"):
        return node.attrs["_reason"]
    if node.op == "If":
        return "its condition is known only at run time, so neither branch is counted"
    if node.op == "Scan":
        return "its sequence length is not known, so its body is not counted"
    return "its trip count is known only at run time (or its loop condition depends on data), so its body is not counted"


def _resize_spec(node, where, b):
    """Resize/Upsample: nearest-neighbour by integer factors copies each element (free forward;
    backward sums each source's copies, as ``load_torch`` counts ``interpolate``); other modes and
    factors interpolate, which has no formula here: an uncounted layer."""
    mode = str(node.attrs.get("mode", "nearest"))
    x, out = node.inputs[0], node.outputs[0]
    s_in, s_out = b.bt.shapes.get(x), b.bt.shapes.get(out)
    if mode != "nearest":
        return {"type": node.op, "reason": f"{mode} interpolation has no formula"}
    if s_in is None or s_out is None or len(s_in) != len(s_out) or any(
            i is None or o is None or o % i for i, o in zip(s_in, s_out)):
        return {"type": node.op, "reason": "nearest resize by a non-integer factor has no formula"}
    return {"type": "shape_op", "op": node.op, "grad": "broadcast"}


def _tie(spec, node, b, in_features):
    """A linear layer whose weight another linear or embedding layer already owns (a weight shared
    between time steps, an output layer tied to the embedding) is ``tied_to`` it."""
    owners = {b.owned[s] for s in b.sources(node, node.inputs[1:2]) if s in b.owned}
    if len(owners) == 1:
        owner = owners.pop()
        if b.weight_shape.get(owner) == [spec["out"], in_features]:
            spec["tied_to"] = owner
    return spec


def _tie_bias(spec, b, sources):
    """A tied linear layer whose bias is the owner's too (an unrolled loop or RNN reading one
    Gemm's weight and bias every step) has ``tied_bias``: its bias is counted once."""
    owner = spec.get("tied_to")
    if owner and sources and all(b.owned.get(s) == owner for s in sources if s in b.weights):
        if any(s in b.weights for s in sources):
            spec["tied_bias"] = True


def _position_table(node, where, b):
    """x + P with P a learned table of one sample's shape [T, D] (ViT's position embedding):
    ``positional_embedding``, whose table gradient sums the batch."""
    consts, bt = b.consts, b.bt
    live = [i for i in node.inputs if i not in consts]
    table = [i for i in node.inputs if i in consts]
    if len(live) != 1 or len(table) != 1:
        return None
    x, p = live[0], consts[table[0]]
    if not b.sources(node) or p.dtype.kind != "f" or not bt.removed(x):
        return None
    per = bt.per_sample(x, where)
    shape = tuple(p.shape)
    while shape and shape[0] == 1 and len(shape) > len(per):
        shape = shape[1:]
    if len(per) != 2 or shape != per or b.free_params(b.sources(node)) != p.size:
        return None
    if bt.axes[x][0] != 0:
        return None
    return {"type": "positional_embedding", "rows": per[0]}


def _class_token(node, where, b):
    """Concat(token, x) along the sequence, the token a learned [1, 1, D] (or its copy per
    sample, as the dynamo exporter writes it): ``cls_token``."""
    consts, bt = b.consts, b.bt
    ins = [i for i in node.inputs if i]
    if len(ins) != 2 or ins[0] not in consts or ins[1] in consts:
        return None
    x = ins[1]
    if not bt.removed(x) or bt.axes[x][0] != 0:
        return None
    per = bt.per_sample(x, where)
    if len(per) != 2 or bt.axis(x, node.attrs.get("axis", 0), where, "concat") != 0:
        return None
    token = _broadcast_param(np.asarray(consts[ins[0]]), 0, bt.batch)
    sources = b.sources(node)
    if token is None or token.shape != (1, 1, per[-1]) or not sources:
        return None
    if sum(b.weights.get(n, 0) for n in sources) not in (per[-1], per[-1] * bt.batch):
        return None
    return {"type": "cls_token"}
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
    "Equal": ({"cmp": 1}, {}),
    "Less": ({"cmp": 1}, {}),
    "Greater": ({"cmp": 1}, {}),
    "LessOrEqual": ({"cmp": 1}, {}),
    "GreaterOrEqual": ({"cmp": 1}, {}),
}


def _elementwise_spec(node, consts, n_live, fixed=None):
    """Per-element costs of ONNX elementwise arithmetic. Backward tables are per output element:
    Sub/Neg negate (1 sub); Mul multiplies dy by the other operand (1 mul per operand needing a
    gradient); a/b: dy/b (1 div) and -dy*out/b (1 mul, 1 div, 1 sub); sqrt: dy/(2*out) (1 mul,
    1 div); Pow by a constant: x^2 1 mul fwd / 2 mul bwd, x^3 2 mul / 3 mul, x^0.5 as sqrt, any
    other exponent exp(log(x)*p) fwd and p*out/x*dy (2 mul, 1 div) bwd."""
    op = node.op

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
        elif op == "Sub" and node.inputs[1] in (consts if fixed is None else fixed):
            bwd = {}
        elif op == "Div" and node.inputs[1] in (consts if fixed is None else fixed):
            bwd = {"div": 1}
    spec = {"type": "elementwise", "op": op, "ops": dict(fwd), "backward": dict(bwd)}
    if op in _COMPARE:
        spec["no_grad"] = True                   # a boolean output passes no gradient back
    return spec
