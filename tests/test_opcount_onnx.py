"""The ONNX frontend on hand-built graphs: malformed initializers give one-line errors, ops it has
no formula for (TopK, multi-output ones included) become uncounted layers, shape subgraphs are
folded, the batch axis is followed through transposes and reshapes, and the model is named after
its file."""
import numpy as np
import pytest

import opcount
from hardware_profiles import load
from opcount import ModelError
from tosim.cli import main

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _save(path, nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "main_graph", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return str(path)


def _x(shape):
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)


def _y(shape=None):
    return helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)


def _linear_graph(path, weight):
    return _save(path, [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], [_x(["N", 4])], [_y()],
                 [weight])


def _short_raw():
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    w.raw_data = w.raw_data[:5]
    return w, "initializer 'w' has 5 bytes of raw data; its shape [4, 3] of FLOAT needs 48"


def _huge():
    w = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2 ** 31, 2 ** 31])
    return w, f"initializer 'w' has dimensions [{2 ** 31}, {2 ** 31}] ({2 ** 62} elements), more than any model holds"


def _strings():
    return (helper.make_tensor("w", TensorProto.STRING, [2], vals=[b"a", b"b"]),
            "initializer 'w' holds strings; tosim reads numeric tensors only")


def _undefined():
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    w.data_type = TensorProto.UNDEFINED
    return w, "initializer 'w' has an undefined element type (0)"


def _negative():
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    del w.dims[:]
    w.dims.extend([4, -3])
    return w, "initializer 'w' has negative dimensions [4, -3]"


@pytest.mark.parametrize("make", [_short_raw, _huge, _strings, _undefined, _negative])
def test_malformed_initializers_are_one_line_errors(tmp_path, capsys, make):
    weight, message = make()
    path = _linear_graph(tmp_path / "bad.onnx", weight)
    with pytest.raises(ModelError) as info:
        opcount.load_onnx(path)
    assert str(info.value) == f"{path}: {message}"
    assert main(["count", path]) == 2
    assert capsys.readouterr().err == f"tosim: error: {path}: {message}\n"


def test_malformed_constant_node_is_a_one_line_error(tmp_path, capsys):
    value = numpy_helper.from_array(np.ones((4, 3), np.float32), "v")
    value.raw_data = value.raw_data[:7]
    nodes = [helper.make_node("Constant", [], ["w"], name="const", value=value),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")]
    path = _save(tmp_path / "bad.onnx", nodes, [_x(["N", 4])], [_y()])
    assert main(["count", path]) == 2
    assert capsys.readouterr().err == (f"tosim: error: {path}: node 'const' (Constant): attribute 'value' has 7 "
                                       f"bytes of raw data; its shape [4, 3] of FLOAT needs 48\n")


def test_topk_and_multi_output_ops_are_uncounted_layers(tmp_path, capsys):
    """TopK (two outputs) has no formula: an uncounted layer, reported, exit 0; its second output
    is a free view of it. Split's outputs are free slices."""
    k = numpy_helper.from_array(np.array([3], np.int64), "k")
    nodes = [helper.make_node("TopK", ["x", "k"], ["values", "indices"], name="top"),
             helper.make_node("Cast", ["indices"], ["fi"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Add", ["values", "fi"], ["s"], name="sum"),
             helper.make_node("Split", ["s"], ["a", "b", "c"], name="split", axis=1, num_outputs=3),
             helper.make_node("Mul", ["a", "b"], ["ab"], name="ab"),
             helper.make_node("Mul", ["ab", "c"], ["y"], name="abc")]
    path = _save(tmp_path / "topk.onnx", nodes, [_x([2, 8])], [_y()], [k], opset=18)
    with pytest.warns(opcount.IncompleteModelWarning, match=r"the count is incomplete: top \(TopK\): top-k "):
        model = opcount.load_onnx(path)
    assert [(layer.name, layer.type, layer.out_shape, layer.known) for layer in model.layers] == [
        ("top", "TopK", (3,), False), ("top:1", "shape_op", (3,), True), ("cast", "shape_op", (3,), True),
        ("sum", "add", (3,), True), ("split", "shape_op", (1,), True), ("split:1", "shape_op", (1,), True),
        ("split:2", "shape_op", (1,), True), ("ab", "mul", (1,), True), ("abc", "mul", (1,), True)]
    result = opcount.count_model(model, load("cmos-generic"), batch=4)
    assert result.incomplete == [{"layer": "top", "type": "TopK", "reason": "top-k selection: its comparisons depend "
                                                                      "on the algorithm, no formula"}]
    assert result.totals["forward"]["add"] == 4 * 3 and result.totals["forward"]["mul"] == 4 * 2
    assert main(["count", path]) == 0
    captured = capsys.readouterr()
    assert "INCOMPLETE: 1 layer(s) not fully counted (marked (!)): TopK x1" in captured.out
    assert captured.err == ""


def test_model_is_named_after_the_file(tmp_path):
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    path = _linear_graph(tmp_path / "my-classifier.onnx", w)
    model = opcount.load_onnx(path)
    assert model.name == "my-classifier" and model.params == 12


def test_reshape_target_computed_at_run_time_is_folded(tmp_path, profile_generic=None):
    """Reshape(x, Concat(Shape(x)[0], 2, 6)) as the TorchScript exporter writes ``x.view(B, 2, -1)``:
    the target is folded, the linear after it counts both rows of every sample."""
    consts = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
              numpy_helper.from_array(np.array([2, 6], np.int64), "rest"),
              numpy_helper.from_array(np.array([0], np.int64), "axes"),
              numpy_helper.from_array(np.ones((6, 5), np.float32), "w")]
    nodes = [helper.make_node("Shape", ["x"], ["shape"], name="shape"),
             helper.make_node("Gather", ["shape", "zero"], ["n"], name="n", axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="n1"),
             helper.make_node("Concat", ["n1", "rest"], ["target"], name="target", axis=0),
             helper.make_node("Reshape", ["x", "target"], ["r"], name="view"),
             helper.make_node("MatMul", ["r", "w"], ["y"], name="fc")]
    path = _save(tmp_path / "view.onnx", nodes, [_x([3, 12])], [_y()], consts)
    model = opcount.load_onnx(path)
    assert [(layer.type, layer.out_shape) for layer in model.layers] == [("shape_op", (2, 6)), ("linear", (2, 5))]
    result = opcount.count_model(model, load("cmos-generic"), batch=7)
    assert result.macs == 7 * 2 * 6 * 5


def test_batch_axis_followed_through_transpose_and_merged_reshape(tmp_path):
    """(N, T, D) -> transpose (T, N, D) -> reshape (T*N, D) -> Gemm -> reshape (T, N, E) ->
    transpose back: the Gemm counts all T*N rows (2,048 MACs would be one token per sample);
    per sample it is [T, D] -> [T, E]. Hand count: N*T*D*E MACs."""
    n, t, d, e = 2, 5, 8, 4
    consts = [numpy_helper.from_array(np.array([t * n, d], np.int64), "flat"),
              numpy_helper.from_array(np.array([t, n, e], np.int64), "back"),
              numpy_helper.from_array(np.ones((e, d), np.float32), "w"),
              numpy_helper.from_array(np.ones(e, np.float32), "b")]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], name="t1", perm=[1, 0, 2]),
             helper.make_node("Reshape", ["xt", "flat"], ["x2"], name="flat"),
             helper.make_node("Gemm", ["x2", "w", "b"], ["h"], name="proj", transB=1),
             helper.make_node("Reshape", ["h", "back"], ["h3"], name="back"),
             helper.make_node("Transpose", ["h3"], ["y"], name="t2", perm=[1, 0, 2])]
    path = _save(tmp_path / "seqfirst.onnx", nodes, [_x([n, t, d])], [_y()], consts)
    model = opcount.load_onnx(path)
    assert [(layer.name, layer.out_shape) for layer in model.layers] == [
        ("t1", (t, d)), ("flat", (t, d)), ("proj", (t, e)), ("back", (t, e)), ("t2", (t, e))]
    for batch in (1, 3):
        assert opcount.count_model(model, load("cmos-generic"), batch=batch).macs == batch * t * d * e


def test_softmax_over_the_batch_axis_is_refused(tmp_path):
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], name="t", perm=[1, 0]),
             helper.make_node("Softmax", ["xt"], ["y"], name="sm", axis=1)]
    path = _save(tmp_path / "mix.onnx", nodes, [_x([2, 4])], [_y()])
    with pytest.raises(ModelError, match=r"^.*mix\.onnx: layer 'sm' \(Softmax\): softmax works along the batch "
                                         r"axis \(axis 1 of shape \[4, 2\]\); per-sample counting needs the "
                                         r"samples kept apart$"):
        opcount.load_onnx(path)


@pytest.mark.parametrize("nodes, consts", [
    # Range(0, 2**40): ONNX's data propagation would build 2**40 dimensions and never return
    ([helper.make_node("Range", ["a", "b", "c"], ["r"]), helper.make_node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
      helper.make_node("Add", ["x", "rf"], ["y"])],
     [numpy_helper.from_array(np.array(0, np.int64), "a"), numpy_helper.from_array(np.array(2 ** 40, np.int64), "b"),
      numpy_helper.from_array(np.array(1, np.int64), "c")]),
    # a constant of 2**40 elements is never evaluated
    ([helper.make_node("ConstantOfShape", ["s"], ["c"], value=numpy_helper.from_array(np.array([1.0], np.float32))),
      helper.make_node("Add", ["x", "c"], ["y"])],
     [numpy_helper.from_array(np.array([2 ** 20, 2 ** 20], np.int64), "s")]),
])
def test_huge_constants_are_not_built(tmp_path, capsys, nodes, consts):
    path = _save(tmp_path / "huge.onnx", nodes, [_x([2, 4])], [_y()], consts)
    assert main(["count", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tosim: error: {path}: layer ") and err.count("\n") == 1
