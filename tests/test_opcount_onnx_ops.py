"""The ONNX frontend's coverage of the ops users' graphs hold, on small hand-built graphs (fast):
every count is checked against a hand count, and whatever is not counted (or only bounded) makes
the result incomplete with the op's name and the reason. Control flow is unrolled where its trip
count is known; invalid indices are one-line errors; the batch axis comes from the file's
symbolic dimension, the caller, or is listed as assumed."""
import numpy as np
import pytest

import opcount
from hardware_profiles import load
from opcount import IncompleteModelWarning, ModelError
from tosim.cli import main

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

F = TensorProto.FLOAT


def _vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def _init(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def _w(*shape, seed=0):
    return np.random.RandomState(seed).randn(*shape).astype(np.float32)


def _save(path, nodes, inputs, outputs, inits=(), opset=17, value_info=(), domains=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits), value_info=list(value_info))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]
                              + [helper.make_opsetid(d, 1) for d in domains])
    onnx.save(model, str(path))
    return str(path)


def _count(path, profile, batch, phase="inference", **kw):
    return opcount.count_model(opcount.load_onnx(path, **kw), profile, phase=phase, batch=batch)


def _incomplete(path, profile, match, batch=2, **kw):
    with pytest.warns(IncompleteModelWarning, match=match):
        model = opcount.load_onnx(path, **kw)
    return model, opcount.count_model(model, profile, phase="training", batch=batch)


# --- gathers -------------------------------------------------------------------------------------

def test_gather_with_an_out_of_range_constant_index_is_a_one_line_error(tmp_path, capsys):
    path = _save(tmp_path / "oor.onnx", [helper.make_node("Gather", ["x", "i"], ["y"], name="pick", axis=1)],
                 [_vi("x", ["N", 4])], [_vi("y", None)], [_init("i", np.array([1, 5], np.int64))])
    message = (f"{path}: layer 'pick' (Gather): index 5 is out of range for axis 1 of 'x' (size 4; valid indices "
               "are -4 to 3)")
    with pytest.raises(ModelError) as info:
        opcount.load_onnx(path)
    assert str(info.value) == message
    assert main(["count", path]) == 2
    assert capsys.readouterr().err == f"tosim: error: {message}\n"


def test_gather_by_a_tensor_index_counts_its_scatter_add_gradient(tmp_path, profile):
    """h = x @ W (4 -> 6); idx = ArgMax(h) (5 cmp per sample); g = GatherElements(h, idx, axis 1)
    is free forward, and in training each gathered element's gradient is added into h's (1 add
    per element: the embedding rule); a 1-D learned table t[10] read by idx sums its gradient the
    same way. Per sample: g and t[idx] have 1 element each."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
             helper.make_node("ArgMax", ["h"], ["idx"], name="best", axis=1, keepdims=1),
             helper.make_node("GatherElements", ["h", "idx"], ["g"], name="pick", axis=1),
             helper.make_node("Gather", ["t", "idx"], ["tg"], name="lookup", axis=0),
             helper.make_node("Mul", ["g", "tg"], ["y"], name="prod")]
    path = _save(tmp_path / "g.onnx", nodes, [_vi("x", ["N", 4])], [_vi("y", None)],
                 [_init("w", _w(4, 6)), _init("t", _w(10))])
    model = opcount.load_onnx(path)
    layers = {layer.name: layer for layer in model.layers}
    assert layers["pick"].attrs["grad"] == "gather" and layers["lookup"].attrs["grad"] == "gather"
    assert model.params == 4 * 6 + 10
    n = 3
    inference = opcount.count_model(model, profile, batch=n)
    assert inference.totals["forward"]["cmp"] == n * 5               # argmax over 6
    training = opcount.count_model(model, profile, phase="training", batch=n)
    rows = {layer.name: layer for layer in training.layers}
    assert rows["pick"].stages["backward"]["add"] == n
    assert rows["lookup"].stages["backward"]["add"] == n
    assert rows["best"].stages["backward"] == dict.fromkeys(opcount.BASIC_OPS, 0)


# --- copies and comparisons --------------------------------------------------------------------------

@pytest.mark.parametrize("op, const, shape", [("Expand", np.array([3, 4], np.int64), [1, 4]),
                                              ("Tile", np.array([3, 1], np.int64), [1, 4])])
def test_expand_and_tile_sum_their_gradient_back(tmp_path, profile, op, const, shape):
    """h = x @ W per sample [1, 4], copied to [3, 4]: free forward, and the gradient of the 12
    copies is summed back into 4 elements, 8 adds per sample."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
             helper.make_node(op, ["h", "r"], ["y"], name="copy")]
    path = _save(tmp_path / "e.onnx", nodes, [_vi("x", ["N", 1, 4])], [_vi("y", None)],
                 [_init("w", _w(4, 4)), _init("r", np.concatenate([[1], const]).astype(np.int64))])
    result = _count(path, profile, 5, "training")
    row = next(layer for layer in result.layers if layer.name == "copy")
    assert row.out_shape == (3, 4) and row.stages["forward"] == dict.fromkeys(opcount.BASIC_OPS, 0)
    assert row.stages["backward"]["add"] == 5 * 8


def test_comparisons_count_one_cmp_and_pass_no_gradient(tmp_path, profile):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
             helper.make_node("Less", ["h", "zero"], ["neg"], name="lt"),
             helper.make_node("Where", ["neg", "zero", "h"], ["y"], name="clamp")]
    path = _save(tmp_path / "c.onnx", nodes, [_vi("x", ["N", 4])], [_vi("y", None)],
                 [_init("w", _w(4, 3)), _init("zero", np.array(0, np.float32))])
    result = _count(path, profile, 2, "training")
    row = next(layer for layer in result.layers if layer.name == "lt")
    assert row.stages["forward"]["cmp"] == 2 * 3 and not any(row.stages["backward"].values())


def test_resize_nearest_copies_and_other_modes_are_reported(tmp_path, profile):
    scales = _init("sc", np.array([1, 1, 2, 2], np.float32))
    near = _save(tmp_path / "near.onnx", [helper.make_node("Conv", ["x", "w"], ["h"], name="conv"),
                                          helper.make_node("Resize", ["h", "", "sc"], ["y"], name="up",
                                                           mode="nearest")],
                 [_vi("x", ["N", 2, 4, 4])], [_vi("y", None)], [_init("w", _w(3, 2, 1, 1)), scales])
    model = opcount.load_onnx(near)
    assert model.params == 6                       # the scales are no parameter
    result = opcount.count_model(model, profile, phase="training", batch=2)
    row = next(layer for layer in result.layers if layer.name == "up")
    assert row.out_shape == (3, 8, 8) and row.stages["backward"]["add"] == 2 * 3 * (64 - 16)
    linear = _save(tmp_path / "lin.onnx", [helper.make_node("Resize", ["x", "", "sc"], ["y"], name="up",
                                                            mode="linear")],
                   [_vi("x", ["N", 2, 4, 4])], [_vi("y", None)], [scales])
    model, result = _incomplete(linear, profile, r"up \(Resize\): linear interpolation has no formula")
    assert model.params == 0


# --- control flow ----------------------------------------------------------------------------------

def _loop_body(cond_out="Identity"):
    """v <- v @ W; scan output v @ W."""
    nodes = [helper.make_node("MatMul", ["v", "w"], ["v2"], name="mm")]
    if cond_out == "Identity":
        nodes.append(helper.make_node("Identity", ["cin"], ["cout"]))
    else:                                           # the loop stops when the sum turns negative
        nodes += [helper.make_node("ReduceSum", ["v2"], ["s"], keepdims=0),
                  helper.make_node("Greater", ["s", "zero"], ["cout"])]
    return helper.make_graph(nodes, "body", [_vi("i", [], TensorProto.INT64), _vi("cin", [], TensorProto.BOOL),
                                             _vi("v", None)],
                             [_vi("cout", [], TensorProto.BOOL), _vi("v2", None), _vi("v2", None)])


def test_loop_with_a_constant_trip_count_counts_its_body_each_iteration(tmp_path, profile):
    """3 iterations of a 4x4 product on [N, 4]: 3 * 16 MACs per sample; the shared weight counts
    once; the scan output stacks the 3 results (free)."""
    nodes = [helper.make_node("Loop", ["M", "c", "x"], ["v", "scan"], name="loop", body=_loop_body())]
    path = _save(tmp_path / "loop.onnx", nodes, [_vi("x", ["N", 4])], [_vi("v", None), _vi("scan", None)],
                 [_init("M", np.array(3, np.int64)), _init("c", np.array(True)), _init("w", _w(4, 4))])
    model = opcount.load_onnx(path)
    assert model.params == 16 and model.complete
    assert [layer.type for layer in model.layers if layer.name.endswith("/mm")] == ["linear"] * 3
    for n in (1, 5):
        assert opcount.count_model(model, profile, batch=n).macs == n * 3 * 16
    assert model.layer("loop/scan0/stack").out_shape == (3, 4)


@pytest.mark.parametrize("trip, body, reason", [
    ("live", _loop_body(), r"loop \(Loop\): its trip count is known only at run time"),
    ("const", _loop_body("data"), r"loop \(Loop\): it may exit early \(its loop condition depends on data; at most 3"),
])
def test_loop_that_cannot_be_unrolled_is_reported(tmp_path, profile, trip, body, reason):
    nodes = [helper.make_node("Loop", ["M", "c", "x"], ["v", "scan"], name="loop", body=body)]
    inits = [_init("c", np.array(True)), _init("w", _w(4, 4)), _init("zero", np.array(0, np.float32))]
    inputs = [_vi("x", [1, 4])]
    if trip == "live":                              # M computed from the data
        nodes = [helper.make_node("ReduceMax", ["x", "ax"], ["m"], keepdims=0),
                 helper.make_node("Cast", ["m"], ["M"], to=TensorProto.INT64)] + nodes
        inits.append(_init("ax", np.array([1], np.int64)))
    else:
        inits.append(_init("M", np.array(3, np.int64)))
    path = _save(tmp_path / "loop.onnx", nodes, inputs, [_vi("v", [1, 4]), _vi("scan", [3, 1, 4])], inits)
    model, result = _incomplete(path, profile, reason, batch=1)
    assert ("loop", "Loop") in [(i["layer"], i["type"]) for i in result.incomplete]


def test_if_with_a_constant_condition_counts_the_taken_branch_and_a_live_one_is_reported(tmp_path, profile):
    then = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["t"], name="mm")], "then", [], [_vi("t", None)])
    other = helper.make_graph([helper.make_node("Relu", ["x"], ["e"], name="relu")], "else", [], [_vi("e", None)])
    inits = [_init("w", _w(4, 4)), _init("zero", np.array(0, np.float32)), _init("ax", np.array([1], np.int64))]
    const = _save(tmp_path / "if.onnx", [helper.make_node("If", ["c"], ["y"], name="if", then_branch=then,
                                                          else_branch=other)],
                  [_vi("x", ["N", 4])], [_vi("y", None)], inits + [_init("c", np.array(True))])
    assert _count(const, profile, 3).macs == 3 * 16
    live = _save(tmp_path / "if_live.onnx", [helper.make_node("ReduceSum", ["x", "ax"], ["s"], keepdims=0),
                                             helper.make_node("Greater", ["s", "zero"], ["c"]),
                                             helper.make_node("If", ["c"], ["y"], name="if", then_branch=then,
                                                              else_branch=other)],
                 [_vi("x", [1, 4])], [_vi("y", [1, 4])], inits)
    _incomplete(live, profile, r"if \(If\): its condition is known only at run time, so neither branch is counted",
                batch=1)


def test_scan_counts_its_body_once_per_step(tmp_path, profile):
    """A running sum over the 3 steps of axis 1 of [N, 3, 4]: 3 * 4 adds per sample."""
    body = helper.make_graph([helper.make_node("Add", ["s", "xt"], ["s2"]), helper.make_node("Identity", ["s2"], ["o"])],
                             "body", [_vi("s", [2, 4]), _vi("xt", [2, 4])], [_vi("s2", [2, 4]), _vi("o", [2, 4])])
    nodes = [helper.make_node("Gather", ["x", "zero"], ["s0"], axis=1),
             helper.make_node("Scan", ["s0", "x"], ["sf", "y"], name="scan", body=body, num_scan_inputs=1,
                              scan_input_axes=[1], scan_output_axes=[1])]
    path = _save(tmp_path / "scan.onnx", nodes, [_vi("x", [2, 3, 4])], [_vi("sf", None), _vi("y", None)],
                 [_init("zero", np.array(0, np.int64))])
    model = opcount.load_onnx(path)
    assert model.layer("scan/scan0/stack").out_shape == (3, 4)
    assert opcount.count_model(model, profile, batch=2).totals["forward"]["add"] == 2 * 3 * 4


# --- quantized graphs --------------------------------------------------------------------------------

def _q(name):
    return [_init(f"{name}s", np.array(0.1, np.float32)), _init(f"{name}z", np.array(0, np.int8))]


@pytest.fixture(scope="module")
def int_profile(tmp_path_factory):
    path = tmp_path_factory.mktemp("int") / "int.yaml"
    path.write_text("name: cmos-int\nextends: cmos-generic\nformats: [fp32, int8, int4, int32]\n")
    return load(str(path))


def _rows(result):
    return {layer.name: (layer.format, {op: n for op, n in layer.stages["forward"].items() if n})
            for layer in result.layers}


@pytest.mark.parametrize("op", ["QLinearMatMul", "MatMulInteger", "QLinearConv", "ConvInteger"])
def test_integer_products_are_counted_in_int8_with_int32_accumulation(tmp_path, int_profile, op):
    conv = "Conv" in op
    # conv: 3 output channels, 2 input channels, 3x3 kernel, no padding: a 4x4 input gives 2x2 outputs
    wq = _init("wq", np.ones((3, 2, 3, 3) if conv else (4, 3), np.int8))
    shape = ["N", 2, 4, 4] if conv else ["N", 4]
    qlinear = op.startswith("QLinear")
    if qlinear:
        nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="qx"),
                 helper.make_node(op, ["xq", "xs", "xz", "wq", "ws", "wz", "ys", "yz"], ["yq"], name="q"),
                 helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"], name="dq")]
        inits = [wq] + _q("x") + _q("w") + _q("y")
    else:
        nodes = [helper.make_node("Cast", ["x"], ["xq"], to=TensorProto.INT8),
                 helper.make_node(op, ["xq", "wq"], ["yi"], name="q"),
                 helper.make_node("Cast", ["yi"], ["y"], to=F)]
        inits = [wq]
    path = _save(tmp_path / "q.onnx", nodes, [_vi("x", shape)], [_vi("y", None)], inits)
    model = opcount.load_onnx(path)
    assert model.complete and model.params == wq.dims[0] * int(np.prod(wq.dims[1:]))
    result = opcount.count_model(model, int_profile, batch=2)
    rows = _rows(result)
    # per sample: conv 3 channels x 2x2 positions = 12 outputs of K = 2 x 9 = 18 products;
    # linear 3 outputs of 4 products; batch 2
    outputs, k = (2 * 12, 18) if conv else (2 * 3, 4)
    assert rows["q"] == ("int8", {"mul": outputs * k})
    assert rows["q/accumulate"] == ("int32", {"add": outputs * (k - 1)})
    if qlinear:
        assert rows["q/requantize"] == ("int32", {"mul": outputs, "add": 2 * outputs, "cmp": 2 * outputs})
        # the model input quantized (x / scale, + zero point, saturated) and the output dequantized, in fp32
        elements = 2 * int(np.prod(shape[1:]))
        assert rows["qx"] == ("fp32", {"div": elements, "add": elements, "cmp": 2 * elements})
        assert rows["dq"] == ("fp32", {"sub": outputs, "mul": outputs})
    else:
        assert "q/requantize" not in rows
    assert result.macs == outputs * k


def test_qlinearconv_hand_count_with_bias_and_uint8(tmp_path, int_profile):
    # uint8 activations, int8 weights (zero point 0), an int32 bias: 2 -> 4 channels, 3x3, pad 1, 5x5 input
    nodes = [helper.make_node("QLinearConv", ["x", "xs", "xz", "wq", "ws", "wz", "ys", "yz", "bq"], ["y"],
                              name="qconv", pads=[1, 1, 1, 1])]
    inits = [_init("wq", np.ones((4, 2, 3, 3), np.int8)), _init("bq", np.arange(4, dtype=np.int32)),
             _init("xs", np.array(0.1, np.float32)), _init("xz", np.array(128, np.uint8)),
             _init("ws", np.full(4, 0.1, np.float32)), _init("wz", np.zeros(4, np.int8)),
             _init("ys", np.array(0.2, np.float32)), _init("yz", np.array(128, np.uint8))]
    path = _save(tmp_path / "qc.onnx", nodes, [_vi("x", ["N", 2, 5, 5], TensorProto.UINT8)],
                 [_vi("y", None, TensorProto.UINT8)], inits)
    model = opcount.load_onnx(path)
    assert model.complete and model.params == 4 * 18 + 4
    rows = _rows(opcount.count_model(model, int_profile, batch=1))
    outputs = 4 * 25                         # 4 channels x 5x5 positions
    assert rows["qconv"] == ("int8", {"mul": outputs * 18})
    assert rows["qconv/accumulate"] == ("int32", {"add": outputs * 17 + outputs})      # + the int32 bias
    assert rows["qconv/requantize"] == ("int32", {"mul": outputs, "add": 2 * outputs, "cmp": 2 * outputs})


def test_a_nonzero_weight_zero_point_is_listed_as_approximated(tmp_path, int_profile):
    nodes = [helper.make_node("MatMulInteger", ["x", "wq", "", "wz"], ["y"], name="mmi")]
    path = _save(tmp_path / "z.onnx", nodes, [_vi("x", ["N", 4], TensorProto.UINT8)], [_vi("y", None, TensorProto.INT32)],
                 [_init("wq", np.ones((4, 3), np.uint8)), _init("wz", np.array(128, np.uint8))])
    with pytest.warns(IncompleteModelWarning, match=r"mmi \(linear\): non-zero zero point 'wz'"):
        model = opcount.load_onnx(path)
    assert model.layer("mmi").format == "int8"


def test_int16_operands_are_reported_not_counted(tmp_path, profile):
    nodes = [helper.make_node("MatMulInteger", ["x", "wq"], ["y"], name="mmi")]
    path = _save(tmp_path / "w.onnx", nodes, [_vi("x", ["N", 4], TensorProto.INT16)], [_vi("y", None, TensorProto.INT32)],
                 [_init("wq", np.ones((4, 3), np.int16))])
    with pytest.warns(IncompleteModelWarning, match=r"mmi \(MatMulInteger\): integer operands of type int16"):
        opcount.load_onnx(path)


# --- dynamic quantization and other whole-batch values ---------------------------------------------

def _dynamic_mlp(tmp_path):
    """onnxruntime's quantize_dynamic form of x @ W + b, 4 -> 3 features: DynamicQuantizeLinear
    (uint8, its scale and zero point from the range of the whole batch) -> MatMulInteger (int8
    weight, zero point 0; the data's zero point computed at run time) -> Cast -> Mul by the product
    of the scales (the weight's per output channel) -> Add bias."""
    w = np.arange(-6, 6, dtype=np.int8).reshape(4, 3)
    ws, bias = np.array([0.05, 0.1, 0.02], np.float32), np.array([0.1, 0.2, 0.3], np.float32)
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"], name="dq"),
             helper.make_node("MatMulInteger", ["xq", "wq", "xz", "wz"], ["yi"], name="mmi"),
             helper.make_node("Cast", ["yi"], ["yf"], name="cast", to=F),
             helper.make_node("Mul", ["xs", "ws"], ["s"], name="scales"),
             helper.make_node("Mul", ["yf", "s"], ["ym"], name="rescale"),
             helper.make_node("Add", ["ym", "b"], ["y"], name="add_bias")]
    inits = [_init("wq", w), _init("wz", np.array(0, np.int8)), _init("ws", ws), _init("b", bias)]
    path = _save(tmp_path / "dyn.onnx", nodes, [_vi("x", ["N", 4])], [_vi("y", ["N", 3])], inits)
    return path, w, ws, bias


@pytest.mark.parametrize("batch", [1, 4])
def test_dynamic_quantized_mlp_hand_count(tmp_path, int_profile, batch):
    """The range, scale and zero point are whole-batch values: the range reads every element of
    the batch (O(batch)), the scalar ops are counted once; everything per element or per output
    scales with the batch."""
    path, *_ = _dynamic_mlp(tmp_path)
    model = opcount.load_onnx(path)
    # the int8 weight and the float bias; the scales (the weight's included) and zero points are no parameters
    assert model.complete and model.params == 12 + 3
    rows = _rows(opcount.count_model(model, int_profile, batch=batch))
    n, o = 4 * batch, 3 * batch                  # elements quantized, outputs
    assert {name: row for name, row in rows.items() if row[1]} == {
        "dq/min": ("fp32", {"cmp": n - 1}),      # over the whole batch
        "dq/max": ("fp32", {"cmp": n - 1}),
        "dq/scale": ("fp32", {"cmp": 2, "sub": 1, "div": 1}),       # with 0: 2 cmp; (max - min) / 255
        "dq/zero_point": ("fp32", {"div": 1, "sub": 1, "cmp": 2}),  # -min / scale, saturated to [0, 255]
        "dq": ("fp32", {"div": n, "add": n, "cmp": 2 * n}),         # x / scale + zero point, saturated
        "mmi": ("int8", {"mul": o * 4}),
        "mmi/accumulate": ("int32", {"add": o * 3}),
        "mmi/zero_point_sums": ("int32", {"mul": 3}),   # the zero point times the weight's 3 column sums, once
        "mmi/zero_point": ("int32", {"sub": o}),        # subtracted from every output
        "scales": ("fp32", {"mul": 3}),                 # the data's scale times the weight's 3, once
        "rescale": ("fp32", {"mul": o}),
        "add_bias": ("fp32", {"add": o}),
    }


def test_dynamic_quantized_mlp_runs_and_its_scale_is_the_whole_batchs(tmp_path):
    """ONNX's reference runtime runs the graph, and its output is the one quantized with a single
    scale and zero point for the whole batch (per-sample ones give another)."""
    from onnx.reference import ReferenceEvaluator
    path, w, ws, bias = _dynamic_mlp(tmp_path)
    x = np.random.RandomState(0).randn(4, 4).astype(np.float32)
    (y,) = ReferenceEvaluator(path).run(None, {"x": x})

    def by_hand(rows):
        lo, hi = min(float(rows.min()), 0.0), max(float(rows.max()), 0.0)
        scale = np.float32((hi - lo) / 255)
        zero = np.clip(np.round(-lo / scale), 0, 255)
        q = np.clip(np.round(rows / scale) + zero, 0, 255)
        return ((q - zero) @ w.astype(np.float64)) * scale * ws + bias

    np.testing.assert_allclose(y, by_hand(x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(y, np.stack([by_hand(x[i:i + 1])[0] for i in range(4)]), rtol=1e-5, atol=1e-6)


def test_dynamic_quantized_conv_hand_count(tmp_path, int_profile):
    # ConvInteger 2 -> 3 channels, 3x3, no padding, 4x4 input: 2x2 outputs of K = 18 products per channel
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"], name="dq"),
             helper.make_node("ConvInteger", ["xq", "wq", "xz"], ["yi"], name="conv"),
             helper.make_node("Cast", ["yi"], ["yf"], name="cast", to=F),
             helper.make_node("Mul", ["yf", "xs"], ["y"], name="rescale")]
    path = _save(tmp_path / "dc.onnx", nodes, [_vi("x", ["N", 2, 4, 4])], [_vi("y", ["N", 3, 2, 2])],
                 [_init("wq", np.ones((3, 2, 3, 3), np.uint8))])
    model = opcount.load_onnx(path)
    assert model.complete and model.params == 3 * 18
    rows = _rows(opcount.count_model(model, int_profile, batch=2))
    n, o = 2 * 32, 2 * 12
    assert rows["dq/min"] == rows["dq/max"] == ("fp32", {"cmp": n - 1})
    assert rows["dq"] == ("fp32", {"div": n, "add": n, "cmp": 2 * n})
    assert rows["conv"] == ("int8", {"mul": o * 18})
    assert rows["conv/accumulate"] == ("int32", {"add": o * 17})
    assert rows["conv/zero_point_sums"] == ("int32", {"mul": 3})            # one per output channel, once
    assert rows["conv/zero_point"] == ("int32", {"sub": o})
    assert rows["rescale"] == ("fp32", {"mul": o})


def test_an_integer_product_of_two_dynamically_quantized_activations_is_listed_as_approximated(tmp_path, int_profile):
    nodes = [helper.make_node("DynamicQuantizeLinear", ["a"], ["aq", "as", "az"], name="qa"),
             helper.make_node("DynamicQuantizeLinear", ["b"], ["bq", "bs", "bz"], name="qb"),
             helper.make_node("MatMulInteger", ["aq", "bq", "az", "bz"], ["y"], name="mmi")]
    path = _save(tmp_path / "aa.onnx", nodes, [_vi("a", ["N", 2, 4]), _vi("b", ["N", 4, 3])],
                 [_vi("y", ["N", 2, 3], TensorProto.INT32)])
    with pytest.warns(IncompleteModelWarning, match=r"mmi \(matmul\): scale or zero point 'az' computed at run time"):
        model = opcount.load_onnx(path)
    rows = _rows(opcount.count_model(model, int_profile, batch=3))
    assert rows["mmi"] == ("int8", {"mul": 3 * 6 * 4}) and rows["qb/min"] == ("fp32", {"cmp": 3 * 12 - 1})


@pytest.mark.parametrize("keepdims", [0, 1])
def test_a_reduction_over_the_whole_batch_is_counted_once(tmp_path, profile, keepdims):
    """x / max|x| over the whole batch: the maximum reads every sample's elements, once per batch;
    the division broadcasts it over each sample's."""
    nodes = [helper.make_node("Abs", ["x"], ["a"], name="abs"),
             helper.make_node("ReduceMax", ["a"], ["m"], name="peak", keepdims=keepdims),
             helper.make_node("Div", ["x", "m"], ["y"], name="scale")]
    path = _save(tmp_path / "r.onnx", nodes, [_vi("x", ["N", 2, 3])], [_vi("y", ["N", 2, 3])])
    model = opcount.load_onnx(path)
    assert model.complete and model.layer("peak").out_shape == ((1, 1, 1) if keepdims else (1,))
    for batch in (1, 3):
        rows = _rows(_count(path, profile, batch))
        n = 6 * batch
        assert rows["peak"] == ("fp32", {"cmp": n - 1})
        assert rows["abs"] == ("fp32", {"cmp": n}) and rows["scale"] == ("fp32", {"div": n})


def test_a_reduction_without_axes_and_noop_with_empty_axes_is_per_sample(tmp_path, profile):
    # ReduceSum with no axes and noop_with_empty_axes=1 is the identity: no whole-batch value
    nodes = [helper.make_node("ReduceSum", ["x"], ["y"], name="same", noop_with_empty_axes=1)]
    path = _save(tmp_path / "n.onnx", nodes, [_vi("x", ["N", 4])], [_vi("y", ["N", 4])])
    model = opcount.load_onnx(path)
    assert model.layer("same").out_shape == (4,) and not model.layer("same").attrs["once"]
    assert _rows(_count(path, profile, 3))["same"] == ("fp32", {})


def test_a_whole_batch_value_read_by_an_op_without_placement_is_left_out_not_fatal(tmp_path, profile):
    # the batch mean of x ([N, 4] -> [4], counted once) through a Softmax (no once-per-batch formula here)
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], name="mean", axes=[0], keepdims=0),
             helper.make_node("Softmax", ["m"], ["p"], name="sm"),
             helper.make_node("Mul", ["x", "p"], ["y"], name="weigh")]
    path = _save(tmp_path / "u.onnx", nodes, [_vi("x", ["N", 4])], [_vi("y", ["N", 4])])
    with pytest.warns(IncompleteModelWarning, match=r"sm \(Softmax\): reads 'm', a value computed over the whole"):
        model = opcount.load_onnx(path)
    assert not model.complete
    rows = _rows(opcount.count_model(model, profile, batch=3))
    assert rows["mean"] == ("fp32", {"add": 3 * 4 - 4, "div": 4}) and rows["sm"] == ("fp32", {})
    assert rows["weigh"] == ("fp32", {"mul": 3 * 4})


def _qdq_conv(tmp_path, relu=True, requantized=True):
    """x -> Q -> DQ -> Conv(DQ(int8 w), DQ(int32 b)) [-> Relu] [-> Q -> DQ] -> y: 2 -> 3 channels, 3x3, 4x4."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="qx"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dqx"),
             helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"], name="dqw"),
             helper.make_node("DequantizeLinear", ["bq", "bs"], ["b"], name="dqb"),
             helper.make_node("Conv", ["xd", "w", "b"], ["c"], name="conv")]
    last = "c"
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["r"], name="relu"))
        last = "r"
    if requantized:
        nodes += [helper.make_node("QuantizeLinear", [last, "s", "z"], ["yq"], name="qy"),
                  helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"], name="dqy")]
    else:
        nodes.append(helper.make_node("Identity", [last], ["y"], name="out"))
    inits = [_init("wq", np.ones((3, 2, 3, 3), np.int8)), _init("ws", np.array(0.05, np.float32)),
             _init("bq", np.arange(3, dtype=np.int32)), _init("bs", np.array(0.005, np.float32)),
             _init("s", np.array(0.1, np.float32)), _init("z", np.array(0, np.int8))]
    return _save(tmp_path / "qdq.onnx", nodes, [_vi("x", ["N", 2, 4, 4])], [_vi("y", None)], inits)


def test_qdq_conv_is_an_int8_conv_with_its_requantization(tmp_path, int_profile):
    model = opcount.load_onnx(_qdq_conv(tmp_path))
    assert model.complete and model.params == 3 * 18 + 3
    rows = _rows(opcount.count_model(model, int_profile, batch=2))
    outputs = 2 * 3 * 2 * 2                 # batch 2 x 3 channels x 2x2 positions
    assert rows["conv"] == ("int8", {"mul": outputs * 18})
    assert rows["conv/accumulate"] == ("int32", {"add": outputs * 17 + outputs})
    assert rows["conv/requantize"] == ("int32", {"mul": outputs, "add": 2 * outputs, "cmp": 2 * outputs})
    assert rows["relu"] == ("int8", {"cmp": outputs})
    # the input's quantization and the output's dequantization are real float ops; the DQ before the
    # conv and the Q after it are the integer conv's own (free)
    assert rows["qx"] == ("fp32", {"div": 2 * 32, "add": 2 * 32, "cmp": 2 * 2 * 32})
    assert rows["dqy"] == ("fp32", {"sub": outputs, "mul": outputs})
    assert rows["dqx"] == ("fp32", {}) and rows["qy"] == ("fp32", {})


def test_qdq_conv_without_a_closing_quantize_is_counted_in_float(tmp_path, int_profile):
    with pytest.warns(IncompleteModelWarning, match=r"conv \(conv2d\): quantized \(QDQ\)"):
        model = opcount.load_onnx(_qdq_conv(tmp_path, relu=False, requantized=False))
    rows = _rows(opcount.count_model(model, int_profile, batch=1))
    assert rows["conv"][0] == "fp32" and "conv/accumulate" not in rows
    assert rows["dqx"] == ("fp32", {"sub": 32, "mul": 32})


def test_qdq_with_an_asymmetric_weight_is_listed(tmp_path, int_profile):
    path = _qdq_conv(tmp_path)
    model = onnx.load(path)
    for init in model.graph.initializer:
        if init.name == "wq":
            init.CopyFrom(_init("wq", np.full((3, 2, 3, 3), 200, np.uint8)))
    model.graph.node[2].input.append("wz")              # dqw gets a weight zero point of 128
    model.graph.initializer.append(_init("wz", np.array(128, np.uint8)))
    onnx.save(model, path)
    with pytest.warns(IncompleteModelWarning, match=r"conv \(conv2d\): non-zero zero point 'wz'"):
        model = opcount.load_onnx(path)
    assert model.layer("conv").format == "int8"


def _residual(tmp_path, qoperator):
    """A residual block as onnxruntime's quantizer writes it (QDQ or QOperator format): x quantized,
    conv 2 -> 2 channels 3x3 pad 1 (ReLU folded into the requantization), the quantized sum of the
    block's input and output, a Flatten, a linear layer 32 -> 3 with an int32 bias, dequantized."""
    ms = "com.microsoft"
    inits = [_init("wq", np.ones((2, 2, 3, 3), np.int8)), _init("ws", np.array(0.05, np.float32)),
             _init("bq", np.arange(2, dtype=np.int32)), _init("bs", np.array(0.005, np.float32)),
             _init("fq", np.ones((32, 3), np.int8)), _init("cq", np.arange(3, dtype=np.int32)),
             _init("s", np.array(0.1, np.float32)), _init("z", np.array(0, np.int8)),
             _init("s2", np.array(0.2, np.float32))]
    if qoperator:
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="qx"),
                 helper.make_node("QLinearConv", ["xq", "s", "z", "wq", "ws", "z", "s", "z", "bq"], ["cq_"],
                                  name="conv", pads=[1, 1, 1, 1]),
                 helper.make_node("QLinearAdd", ["xq", "s", "z", "cq_", "s", "z", "s2", "z"], ["aq"], name="add",
                                  domain=ms),
                 helper.make_node("Flatten", ["aq"], ["fl"], name="flat"),
                 helper.make_node("QGemm", ["fl", "s2", "z", "fq", "ws", "z", "cq", "s", "z"], ["yq"], name="fc",
                                  domain=ms),
                 helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"], name="dqy")]
        return _save(tmp_path / "qop.onnx", nodes, [_vi("x", [1, 2, 4, 4])], [_vi("y", None)], inits,
                     domains=[ms])
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="qx"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dqx"),
             helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"], name="dqw"),
             helper.make_node("DequantizeLinear", ["bq", "bs"], ["b"], name="dqb"),
             helper.make_node("Conv", ["xd", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq_"], name="qc"),
             helper.make_node("DequantizeLinear", ["cq_", "s", "z"], ["cd"], name="dqc"),
             helper.make_node("Add", ["xd", "cd"], ["a"], name="add"),
             helper.make_node("QuantizeLinear", ["a", "s2", "z"], ["aq"], name="qa"),
             helper.make_node("DequantizeLinear", ["aq", "s2", "z"], ["ad"], name="dqa"),
             helper.make_node("Flatten", ["ad"], ["fl"], name="flat"),
             helper.make_node("QuantizeLinear", ["fl", "s2", "z"], ["flq"], name="qf"),
             helper.make_node("DequantizeLinear", ["flq", "s2", "z"], ["fd"], name="dqf"),
             helper.make_node("DequantizeLinear", ["fq", "ws"], ["fw"], name="dqfw"),
             helper.make_node("DequantizeLinear", ["cq", "bs"], ["fb"], name="dqfb"),
             helper.make_node("Gemm", ["fd", "fw", "fb"], ["g"], name="fc"),
             helper.make_node("QuantizeLinear", ["g", "s", "z"], ["yq"], name="qy"),
             helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"], name="dqy")]
    return _save(tmp_path / "qdq.onnx", nodes, [_vi("x", [1, 2, 4, 4])], [_vi("y", None)], inits)


@pytest.mark.parametrize("qoperator", [False, True])
def test_quantized_residual_block_in_both_formats(tmp_path, int_profile, qoperator):
    model = opcount.load_onnx(_residual(tmp_path, qoperator))
    assert model.complete and model.params == 2 * 18 + 2 + 32 * 3 + 3
    rows = _rows(opcount.count_model(model, int_profile, batch=1))
    outputs = 2 * 16                          # 2 channels x 4x4
    assert rows["conv"] == ("int8", {"mul": outputs * 18})
    assert rows["conv/accumulate"] == ("int32", {"add": outputs * 17 + outputs})
    assert rows["conv/requantize"] == ("int32", {"mul": outputs, "add": 2 * outputs, "cmp": 2 * outputs})
    # the quantized sum: per element 2 sub, 2 mul, 3 add, 2 cmp in int32
    assert rows["add"] == ("int32", {"sub": 2 * 32, "mul": 2 * 32, "add": 3 * 32, "cmp": 2 * 32})
    assert rows["fc"] == ("int8", {"mul": 3 * 32})
    assert rows["fc/accumulate"] == ("int32", {"add": 3 * 31 + 3})
    assert rows["fc/requantize"] == ("int32", {"mul": 3, "add": 6, "cmp": 6})
    assert rows["qx"] == ("fp32", {"div": 32, "add": 32, "cmp": 64})
    assert rows["dqy"] == ("fp32", {"sub": 3, "mul": 3})
    # every other Q and DQ (QDQ format) is free: the same totals in both formats
    free = {name: ops for name, (fmt, ops) in rows.items() if name.startswith(("dq", "q")) and name not in ("qx", "dqy")}
    assert all(not ops for ops in free.values())


# --- recurrent sequence lengths, the batch axis --------------------------------------------------------

def _lstm(tmp_path, x_shape, lens_shape):
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "", "lens"], ["y"], name="lstm", hidden_size=3)]
    return _save(tmp_path / "lstm.onnx", nodes, [_vi("x", x_shape), _vi("lens", lens_shape, TensorProto.INT32)],
                 [_vi("y", None)], [_init("W", _w(1, 12, 4)), _init("R", _w(1, 12, 3))])


def test_lstm_with_sequence_lens_is_counted_at_full_length_and_reported(tmp_path, profile):
    path = _lstm(tmp_path, [5, "batch", 4], ["batch"])
    model, result = _incomplete(path, profile, r"lstm \(lstm\): sequence_lens given: every sample counted at the "
                                               r"full length 5 \(an upper bound")
    assert model.input_shape == (5, 4) and not model.assumptions
    assert opcount.count_model(model, profile, batch=2).macs == 2 * 5 * 12 * (4 + 3)


def test_batch_axis_from_the_symbolic_dimension_or_the_caller_else_listed_as_assumed(tmp_path, profile, capsys):
    """[T=5, batch, 4] @ W(4x3): the symbolic dimension is the batch, 5 rows per sample. The same
    graph with fixed shapes takes axis 0 and says so (Python and CLI), unless batch_axis is given."""
    def graph(name, shape):
        return _save(tmp_path / name, [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
                     [_vi("x", shape)], [_vi("y", None)], [_init("w", _w(4, 3))])
    named = graph("named.onnx", [5, "batch", 4])
    result = _count(named, profile, 2)
    assert result.macs == 2 * 5 * 12 and result.assumptions == [] and "assumptions" not in result.to_json()
    fixed = graph("fixed.onnx", [5, 2, 4])
    result = _count(fixed, profile, 2)
    assert result.macs == 2 * 2 * 12                                 # axis 0 taken: 2 rows per sample
    assert result.assumptions == result.to_json()["assumptions"] == [
        "batch on axis 0 of input 'x' [5, 2, 4]: the file names no symbolic batch dimension (a dim_param); "
        "--batch-axis (batch_axis= in Python) or a named dimension says otherwise"]
    assert _count(fixed, profile, 2, batch_axis=1).macs == 2 * 5 * 12
    assert main(["count", fixed]) == 0
    assert "\nASSUMED: batch on axis 0 of input 'x' [5, 2, 4]" in capsys.readouterr().out
    assert main(["count", fixed, "--batch-axis", "1", "--json"]) == 0
    assert '"macs": 60' in capsys.readouterr().out
    two = graph("two.onnx", ["batch", "seq", 4])
    with pytest.raises(ModelError, match=r"input 'x' has shape \[batch, seq, 4\]; its dimensions other than the "
                                         r"batch \(axis 0\) must be fixed: export with fixed shapes or give their "
                                         r"sizes \(--dim seq=N; dims=\{'seq': N\} in Python\)$"):
        opcount.load_onnx(two)
    assert _count(two, profile, 2, dims={"seq": 7}).macs == 2 * 7 * 12
    assert main(["count", two, "--dim", "seq=7", "--batch", "2", "--json"]) == 0
    assert '"macs": 168' in capsys.readouterr().out
    with pytest.raises(ModelError, match=r"dims names 'len', which no graph input has"):
        opcount.load_onnx(two, dims={"seq": 7, "len": 3})
    assert main(["count", str(tmp_path / "named.onnx"), "--batch-axis", "5"]) == 2
    assert capsys.readouterr().err.startswith("tosim: error: ")


@pytest.mark.parametrize("opset, affine", [(21, 4), (18, 2)])
def test_group_normalization_gets_its_shape_and_per_group_affines_are_reported(tmp_path, profile, opset, affine):
    """GroupNormalization (a function op ONNX's inference leaves without a shape) on [4, 3, 3] in 2
    groups: counted like the spec's groupnorm. Opset 21 scales per channel (4, as PyTorch); opsets
    18-20 per group (2), counted as per channel and reported."""
    nodes = [helper.make_node("GroupNormalization", ["x", "g", "b"], ["y"], name="gn", num_groups=2)]
    path = _save(tmp_path / "gn.onnx", nodes, [_vi("x", ["N", 4, 3, 3])], [_vi("y", None)],
                 [_init("g", _w(affine)), _init("b", _w(affine, seed=1))], opset=opset)
    spec = opcount.spec_to_model({"name": "gn", "input": [4, 3, 3], "layers": [{"type": "groupnorm", "groups": 2}]})
    want = opcount.count_model(spec, profile, phase="training", batch=3).totals
    if affine == 4:
        model = opcount.load_onnx(path)
    else:
        model, _ = _incomplete(path, profile, r"gn \(groupnorm\): scale and bias per group \(2\), as opsets 18-20 "
                                              r"define them: counted as a per-channel affine \(4\), so its "
                                              r"parameters are over by 4")
    assert opcount.count_model(model, profile, phase="training", batch=3).totals == want


def test_instance_norm_with_a_constant_identity_affine_has_no_parameters(tmp_path, profile):
    """The TorchScript exporter writes nn.GroupNorm as InstanceNormalization with scale ones and
    bias zeros (constants, not weights), then the learned affine as Mul + Add: the constants
    were counted as 4 parameters (GroupNorm(2, 4) then gave 12 instead of 8)."""
    nodes = [helper.make_node("InstanceNormalization", ["x", "one", "zero"], ["y"], name="inorm")]
    path = _save(tmp_path / "in.onnx", nodes, [_vi("x", ["N", 2, 18])], [_vi("y", None)],
                 [_init("one", np.ones(2, np.float32)), _init("zero", np.zeros(2, np.float32))])
    model = opcount.load_onnx(path)
    spec = opcount.spec_to_model({"name": "in", "input": [2, 18],
                                  "layers": [{"type": "groupnorm", "groups": 2, "affine": False}]})
    assert model.params == 0
    assert (opcount.count_model(model, profile, phase="training", batch=3).totals
            == opcount.count_model(spec, profile, phase="training", batch=3).totals)


# --- einsum and onnxruntime's fused ops --------------------------------------------------------------

def test_einsum_counts_as_the_batched_product_it_is(tmp_path, profile):
    """'bhtd,bhsd->bhts' (scores) and 'bhts,bhsd->bhtd' of [N, 2, 3, 4]: 2*3*3*4 = 72 MACs each per
    sample, as FlopCounterMode counts torch.einsum; 'btd,de->bte' with a constant [4, 6] is a
    linear layer (3*4*6 MACs, 24 parameters); in training every product's operand gradients cost
    its MACs again."""
    nodes = [helper.make_node("Einsum", ["x", "w"], ["h"], name="proj", equation="btd,de->bte"),
             helper.make_node("Reshape", ["h", "heads"], ["hh"], name="split"),
             helper.make_node("Einsum", ["hh", "hh"], ["s"], name="scores", equation="bhtd,bhsd->bhts"),
             helper.make_node("Einsum", ["s", "hh"], ["y"], name="mix", equation="bhts,bhsd->bhtd")]
    path = _save(tmp_path / "ein.onnx", nodes, [_vi("x", ["N", 3, 4])], [_vi("y", None)],
                 [_init("w", _w(4, 8)), _init("heads", np.array([0, 2, 3, 4], np.int64))])
    model = opcount.load_onnx(path)
    assert model.params == 32 and model.complete
    assert {layer.name: layer.type for layer in model.layers if "/" not in layer.name} == {
        "proj": "linear", "split": "shape_op", "scores": "matmul", "mix": "matmul"}
    n = 3
    forward = 3 * 4 * 8 + 2 * 72
    assert opcount.count_model(model, profile, batch=n).macs == n * forward
    # backward: the weight gradient (96), both operands of both products (2 * 2 * 72); the
    # model input needs none
    assert opcount.count_model(model, profile, phase="training", batch=n).macs == n * (forward + 96 + 4 * 72)


@pytest.mark.parametrize("equation, reason", [
    ("bi,bj->ij", r"the operands do not share one batch letter that the output keeps"),
    ("bii->bi", r"only einsums of two operands"),
])
def test_einsums_that_mix_samples_are_errors_and_others_are_reported(tmp_path, profile, equation, reason):
    ins = ["x", "x"] if "," in equation else ["x"]
    shape = [2, 3] if "," in equation else [2, 3, 3]
    out = [3, 3] if "," in equation else [2, 3]
    path = _save(tmp_path / "e.onnx", [helper.make_node("Einsum", ins, ["y"], name="es", equation=equation)],
                 [_vi("x", shape)], [_vi("y", out)])
    if "," in equation:
        with pytest.raises(ModelError, match=r"Einsum sums over the batch axis"):
            opcount.load_onnx(path)
    else:
        _incomplete(path, profile, r"es \(Einsum\): " + reason)


def test_onnxruntime_fused_ops_count_as_the_layers_they_fuse(tmp_path, profile):
    """com.microsoft Attention (qkv projection + attention core), SkipLayerNormalization (skip add,
    bias add, layernorm), FusedMatMul (a linear) and FastGelu, as onnxruntime's transformer
    optimizer writes a BERT layer, count the same as the spec of the layers they fuse; their
    output shapes are inferred (no value_info needed)."""
    t, d, heads = 3, 8, 2
    ms = "com.microsoft"
    nodes = [helper.make_node("Attention", ["x", "wqkv", "bqkv"], ["a"], name="att", domain=ms, num_heads=heads),
             helper.make_node("SkipLayerNormalization", ["a", "x", "g", "be", "bias"], ["h"], name="ln", domain=ms),
             helper.make_node("FusedMatMul", ["h", "w1"], ["f"], name="fc", domain=ms, transB=1),
             helper.make_node("FastGelu", ["f"], ["y"], name="act", domain=ms)]
    path = _save(tmp_path / "bert.onnx", nodes, [_vi("x", ["N", t, d])], [_vi("y", None)],
                 [_init("wqkv", _w(d, 3 * d)), _init("bqkv", _w(3 * d, seed=1)), _init("g", _w(d, seed=2)),
                  _init("be", _w(d, seed=3)), _init("bias", _w(d, seed=4)), _init("w1", _w(16, d, seed=5))],
                 domains=[ms])
    model = opcount.load_onnx(path)
    spec = opcount.spec_to_model({"name": "bert", "input": [t, d], "layers": [
        {"type": "linear", "name": "qkv", "out": 3 * d},
        {"type": "shape_op", "name": "q", "inputs": "qkv", "out_shape": [heads, t, d // heads], "reads": t * d},
        {"type": "shape_op", "name": "k", "inputs": "qkv", "out_shape": [heads, t, d // heads], "reads": t * d},
        {"type": "shape_op", "name": "v", "inputs": "qkv", "out_shape": [heads, t, d // heads], "reads": t * d},
        {"type": "sdpa", "name": "core", "inputs": ["q", "k", "v"]},
        {"type": "shape_op", "name": "merge", "out_shape": [t, d]},
        {"type": "add", "name": "skip", "inputs": ["merge", "input"]},
        {"type": "parameter", "name": "bias", "inputs": "input", "shape": [d]},
        {"type": "elementwise", "name": "bias_add", "inputs": ["skip", "bias"], "op": "Add", "ops": {"add": 1},
         "backward": {}, "once_inputs": [False, True]},
        {"type": "layernorm", "name": "ln", "eps": 1e-12},
        {"type": "linear", "name": "fc", "out": 16, "bias": False},
        {"type": "gelu", "name": "act", "approximate": "tanh"}]})
    assert model.complete and model.params == spec.params == 3 * d * d + 3 * d + 3 * d + 16 * d
    for phase in ("inference", "training"):
        assert (opcount.count_model(model, profile, phase=phase, batch=2).totals
                == opcount.count_model(spec, profile, phase=phase, batch=2).totals)


def test_custom_domain_ops_without_a_formula_are_reported_by_name(tmp_path, profile):
    nodes = [helper.make_node("MatMulNBits", ["x", "wq", "sc"], ["y"], name="q4", domain="com.microsoft", K=4, N=3,
                              bits=4, block_size=16),
             helper.make_node("Frobnicate", ["y"], ["z"], name="odd", domain="example.org")]
    path = _save(tmp_path / "c.onnx", nodes, [_vi("x", ["N", 4])], [_vi("z", ["N", 3])],
                 [_init("wq", np.ones((3, 1, 8), np.uint8)), _init("sc", np.ones(3, np.float32))],
                 value_info=[_vi("y", ["N", 3])], domains=["com.microsoft", "example.org"])
    _, result = _incomplete(path, profile, r"q4 \(MatMulNBits\): integer or block-quantized arithmetic")
    assert {i["layer"]: i["reason"] for i in result.incomplete}["odd"] == (
        "no formula for op example.org.Frobnicate (a custom domain)")


def test_a_table_read_at_constant_indices_is_its_own_parameter_with_a_scatter_add_gradient(tmp_path, profile):
    """swin's relative position bias: a learned [9, 2] table gathered at 16 constant indices,
    reshaped to [2, 4, 4] and added to [N, 2, 4, 4] scores. The parameters are the table's 18
    (not the 32 gathered elements); training sums the bias gradient over the batch (3 * 32 - 32
    adds) and scatters it into the table, 1 add per gathered element (32), as load_torch counts
    the indexing."""
    idx = np.random.RandomState(0).randint(0, 9, 16).astype(np.int64)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["s"], name="scores"),
             helper.make_node("Gather", ["table", "idx"], ["g"], name="lookup", axis=0),
             helper.make_node("Reshape", ["g", "shape"], ["g3"], name="view"),
             helper.make_node("Transpose", ["g3"], ["bias"], name="perm", perm=[2, 0, 1]),
             helper.make_node("Add", ["s", "bias"], ["y"], name="add_bias")]
    path = _save(tmp_path / "rel.onnx", nodes, [_vi("x", ["N", 2, 4, 4])], [_vi("y", None)],
                 [_init("w", _w(4, 4)), _init("table", _w(9, 2)), _init("idx", idx),
                  _init("shape", np.array([4, 4, 2], np.int64))])
    model = opcount.load_onnx(path)
    assert model.params == 16 + 18 and model.complete
    result = opcount.count_model(model, profile, phase="training", batch=3)
    rows = {layer.name: layer for layer in result.layers}
    assert rows["table"].params == 18 and rows["bias"].out_shape == (2, 4, 4)
    assert rows["bias"].stages["backward"]["add"] == 32
    assert rows["add_bias"].stages["backward"]["add"] == 3 * 32 - 32


def test_hardswish_and_pytorch_hardsigmoid_use_their_recipes(tmp_path, profile):
    """HardSwish and HardSigmoid(alpha 1/6, beta 0.5), as both PyTorch exporters write
    nn.Hardswish and nn.Hardsigmoid, count like the spec's types; another HardSigmoid is reported."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
             helper.make_node("HardSwish", ["h"], ["a"], name="hs"),
             helper.make_node("HardSigmoid", ["a"], ["y"], name="hsig", alpha=1 / 6, beta=0.5)]
    path = _save(tmp_path / "hs.onnx", nodes, [_vi("x", ["N", 4])], [_vi("y", None)], [_init("w", _w(4, 3))])
    spec = opcount.spec_to_model({"name": "hs", "input": [4], "layers": [
        {"type": "linear", "out": 3, "bias": False}, {"type": "hardswish"}, {"type": "hardsigmoid"}]})
    model = opcount.load_onnx(path)
    assert (opcount.count_model(model, profile, phase="training", batch=2).totals
            == opcount.count_model(spec, profile, phase="training", batch=2).totals)
    other = _save(tmp_path / "hsig.onnx", [helper.make_node("HardSigmoid", ["x"], ["y"], name="hsig")],
                  [_vi("x", ["N", 4])], [_vi("y", None)])
    _incomplete(other, profile, r"hsig \(HardSigmoid\): HardSigmoid with alpha 0.2 and beta 0.5 has no recipe")


def test_samples_reordered_by_a_run_time_index_keep_their_counts(tmp_path, profile):
    """The TorchScript exporter sorts a packed batch by length: TopK of the lengths, then a Gather
    along the batch axis. One sample out per index, so the product after it counts per sample;
    the sort itself (TopK) is reported."""
    nodes = [helper.make_node("TopK", ["lens", "k"], ["sorted", "order"], name="sort"),
             helper.make_node("Gather", ["x", "order"], ["xs"], name="reorder", axis=0),
             helper.make_node("MatMul", ["xs", "w"], ["y"], name="fc")]
    path = _save(tmp_path / "sort.onnx", nodes, [_vi("x", [2, 5, 4]), _vi("lens", [2], TensorProto.INT64)],
                 [_vi("y", None)], [_init("w", _w(4, 3)), _init("k", np.array([2], np.int64))])
    model, _ = _incomplete(path, profile, r"sort \(TopK\): top-k selection")
    assert model.layer("fc").out_shape == (5, 3)
    assert opcount.count_model(model, profile, batch=2).macs == 2 * 5 * 12


def test_score_carries_and_prints_the_assumed_batch_axis(tmp_path, capsys):
    import tosim
    fixed = _save(tmp_path / "fixed.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
                  [_vi("x", [5, 2, 4])], [_vi("y", None)], [_init("w", _w(4, 3))])
    result = tosim.score(fixed)
    assert result.assumptions and result.assumptions[0].startswith("batch on axis 0 of input 'x' [5, 2, 4]")
    assert tosim.score(fixed, batch_axis=1).assumptions == []
    assert main(["score", fixed]) == 0
    assert "\nASSUMED: fixed: batch on axis 0 of input 'x' [5, 2, 4]" in capsys.readouterr().out


@pytest.mark.parametrize("qoperator", [False, True])
def test_quantized_graphs_count_no_conversion_twice(tmp_path, int_profile, qoperator):
    """A quantized graph writes its conversions (QuantizeLinear, DequantizeLinear, the QLinear ops'
    scales): counting adds no conversion row of its own at its integer layers' edges, and
    quantizing its products again (--quantize) changes nothing."""
    model = opcount.load_onnx(_residual(tmp_path, qoperator))
    assert model.conversions_written == {"conv", "add", "fc"}
    result = opcount.count_model(model, int_profile, batch=1)
    assert not [layer.name for layer in result.layers if layer.type in ("quantize", "dequantize")]
    assert result.assumptions == model.assumptions       # the frontend's only (its batch axis)
    again = opcount.count_model(opcount.with_quantized_products(model), int_profile, batch=1)
    assert again.totals == result.totals


def test_a_float_product_of_a_qdq_graph_quantized_converts_at_its_edges(tmp_path, int_profile):
    # the conv is counted in float (no closing QuantizeLinear); --quantize makes it int8: its input
    # (dqx's float output) is quantized again and its output dequantized for the model's reader
    with pytest.warns(IncompleteModelWarning):
        model = opcount.load_onnx(_qdq_conv(tmp_path, relu=False, requantized=False))
    assert model.conversions_written == frozenset()
    rows = _rows(opcount.count_model(opcount.with_quantized_products(model), int_profile, batch=1))
    assert rows["dqx"] == ("fp32", {"sub": 32, "mul": 32})
    assert rows["conv/quantize_input"] == ("fp32", {"div": 32, "add": 32, "cmp": 64})
    assert rows["conv/dequantize_output"] == ("fp32", {"sub": 12, "mul": 12})
