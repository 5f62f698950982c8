"""Graphs as PyTorch's exporters write them (the ONNX export audit), on small graphs built with
onnx.helper (fast).

Attention masks as PyTorch's exporters write ``scaled_dot_product_attention(..., is_causal=True)``:
a dense product plus a constant mask (0 kept, -inf or the lowest float dropped; the dynamo
exporter folds it into an initializer, the TorchScript exporter computes it from Trilu/Where). The
mask is no learned weight (not a parameter), and a top-left causal one counts as load_torch counts
``is_causal`` (the triangle); any other constant mask stays a dense additive mask.
BatchNorm exported with ``training=TrainingMode.TRAINING`` (``training_mode=1``, running statistics
as outputs) is a batchnorm layer (its running statistics no parameters), listed as counted on the
running statistics outside the training phase."""
import numpy as np
import pytest

import opcount

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

H, T, D = 2, 4, 8


def _attention(path, extra_nodes, scores, inits, opset=18):
    """q = k = v = the input [N, H, T, D], q and k each scaled by D**-0.25 (as both exporters write
    it), then ``scores`` -> Softmax -> MatMul v."""
    root = np.array(D ** -0.25, np.float32)
    nodes = [helper.make_node("Mul", ["x", "r"], ["q"], name="sq"),
             helper.make_node("Transpose", ["x"], ["kt0"], name="kt", perm=[0, 1, 3, 2]),
             helper.make_node("Mul", ["kt0", "r"], ["kt1"], name="sk"),
             helper.make_node("MatMul", ["q", "kt1"], ["s"], name="qk")] + extra_nodes + [
             helper.make_node("Softmax", [scores], ["p"], name="sm", axis=-1),
             helper.make_node("MatMul", ["p", "x"], ["y"], name="pv")]
    inits = [numpy_helper.from_array(root, "r")] + [numpy_helper.from_array(v, k) for k, v in inits.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", H, T, D])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return str(path)


def _spec(**sdpa):
    return opcount.spec_to_model({"name": "ref", "input": [H, T, D], "layers": [
        {"type": "sdpa", "inputs": ["input", "input", "input"], **sdpa}]})


def _causal(dtype=np.float32, fill=None):
    fill = np.finfo(dtype).min if fill is None else fill
    return np.triu(np.full((T, T), fill, dtype), 1)


@pytest.mark.parametrize("fill", [None, -np.inf])
def test_constant_causal_mask_counts_as_is_causal_and_is_no_parameter(tmp_path, profile, fill):
    """The dynamo exporter's folded causal mask: no parameters (it used to count T*T of them, with
    their gradient and update), one sdpa layer counted as PyTorch's is_causal triangle."""
    path = _attention(tmp_path / "causal.onnx", [helper.make_node("Add", ["s", "mask"], ["sm_in"], name="mask")],
                      "sm_in", {"mask": _causal(fill=fill)})
    model = opcount.load_onnx(path)
    assert model.params == 0 and model.complete
    assert [(layer.type, layer.attrs["causal"]) for layer in model.layers] == [("sdpa", True)]
    for phase in ("inference", "training"):
        got = opcount.count_model(model, profile, phase=phase, batch=3)
        want = opcount.count_model(_spec(causal=True), profile, phase=phase, batch=3)
        assert got.totals == want.totals
    # hand count: T(T+1)/2 = 10 score entries per head, each D products for scores and for P V
    assert opcount.count_model(model, profile, batch=3).macs == 3 * H * 10 * 2 * D


def test_masked_fill_with_a_constant_causal_condition_counts_as_is_causal(tmp_path, profile):
    """Where(upper triangle, lowest float, scores): the condition is a constant boolean."""
    upper = np.triu(np.ones((T, T), bool), 1)
    path = _attention(tmp_path / "fill.onnx", [helper.make_node("Where", ["c", "fill", "s"], ["sm_in"], name="w")],
                      "sm_in", {"c": upper, "fill": np.array(-np.inf, np.float32)})
    model = opcount.load_onnx(path)
    assert [(layer.type, layer.attrs["causal"]) for layer in model.layers] == [("sdpa", True)]
    assert opcount.count_model(model, profile, phase="training", batch=2).totals == \
        opcount.count_model(_spec(causal=True), profile, phase="training", batch=2).totals


def test_other_constant_masks_stay_dense_and_are_no_parameters(tmp_path, profile):
    """A band mask (not causal) is counted dense with its add; a mask is never a parameter."""
    band = _causal() + np.tril(np.full((T, T), np.finfo(np.float32).min, np.float32), -2)
    path = _attention(tmp_path / "band.onnx", [helper.make_node("Add", ["s", "mask"], ["sm_in"], name="mask")],
                      "sm_in", {"mask": band})
    model = opcount.load_onnx(path)
    assert model.params == 0
    assert [(layer.type, layer.attrs["mask"], layer.attrs["causal"]) for layer in model.layers] == [
        ("sdpa", "additive", False)]
    assert opcount.count_model(model, profile, phase="training", batch=2).totals == \
        opcount.count_model(_spec(mask="additive"), profile, phase="training", batch=2).totals


def test_a_learned_bias_added_to_the_scores_is_still_a_parameter(tmp_path, profile):
    """A finite table (a relative position bias) is a weight: a parameter layer, not absorbed."""
    bias = np.random.RandomState(0).randn(T, T).astype(np.float32)
    path = _attention(tmp_path / "bias.onnx", [helper.make_node("Add", ["s", "bias"], ["sm_in"], name="bias")],
                      "sm_in", {"bias": bias})
    model = opcount.load_onnx(path)
    assert model.params == T * T
    assert "parameter" in [layer.type for layer in model.layers]


def test_training_mode_batchnorm_is_a_batchnorm_layer_and_says_so(tmp_path, profile):
    """The TorchScript exporter's training-mode BatchNormalization (three outputs) used to be an
    uncounted op whose running mean and variance counted as 2C parameters."""
    c = 4
    rs = np.random.RandomState(0)
    inits = {"w": rs.randn(c, 3, 3, 3).astype(np.float32), "g": rs.randn(c).astype(np.float32),
             "be": rs.randn(c).astype(np.float32), "mean": rs.randn(c).astype(np.float32),
             "var": rs.rand(c).astype(np.float32) + 1, "mom": np.array(0.9, np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["h"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["h", "g", "be", "mean", "var"], ["y", "rm", "rv"], name="bn",
                              training_mode=1, epsilon=1e-5, momentum=0.9)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items() if k != "mom"])
    path = tmp_path / "bn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), str(path))
    with pytest.warns(opcount.IncompleteModelWarning, match="training-mode BatchNormalization"):
        model = opcount.load_onnx(path)
    spec = opcount.spec_to_model({"name": "ref", "input": [3, 5, 5], "layers": [
        {"type": "conv2d", "out": c, "kernel": 3, "padding": 1, "bias": False}, {"type": "batchnorm"}]})
    assert model.params == spec.params == c * 27 + 2 * c
    for phase in ("inference", "training"):
        got = opcount.count_model(model, profile, phase=phase, batch=2)
        assert got.totals == opcount.count_model(spec, profile, phase=phase, batch=2).totals
        assert [(i["layer"], i["type"]) for i in got.incomplete] == [("bn", "batchnorm")]


def _lm_graph(path, tied_copy=True):
    """A GPT-2 style input end and output layer as the dynamo exporter writes them with a dynamic
    sequence: token table ``wte`` read by ids, position table ``wpe`` read by arange(seq) (Shape
    -> Squeeze -> Range; the exporter's value_info gives arange the symbolic shape [seq], which ONNX
    inference keeps, so its size is known only from the Range's values), their sum, and the
    output layer tied to the token table (a second initializer holding ``wte.T``)."""
    v, p, d = 11, 8, 4
    rs = np.random.RandomState(1)
    wte, wpe = rs.randn(v, d).astype(np.float32), rs.randn(p, d).astype(np.float32)
    head = wte.T.copy() if tied_copy else rs.randn(d, v).astype(np.float32)
    i64 = lambda k, x: numpy_helper.from_array(np.array(x, np.int64), k)  # noqa: E731
    nodes = [helper.make_node("Shape", ["ids"], ["s1"], name="shape", start=1, end=2),
             helper.make_node("Squeeze", ["s1"], ["seq"], name="squeeze"),
             helper.make_node("Range", ["zero", "seq", "one"], ["arange"], name="arange"),
             helper.make_node("Gather", ["wte", "ids"], ["tok"], name="wte_gather"),
             helper.make_node("Gather", ["wpe", "arange"], ["pos"], name="wpe_gather"),
             helper.make_node("Add", ["tok", "pos"], ["h"], name="add"),
             helper.make_node("MatMul", ["h", "head"], ["y"], name="head")]
    inits = [numpy_helper.from_array(wte, "wte"), numpy_helper.from_array(wpe, "wpe"),
             numpy_helper.from_array(head, "head"), i64("zero", 0), i64("one", 1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
                              value_info=[helper.make_tensor_value_info("arange", TensorProto.INT64, ["seq"]),
                                          helper.make_tensor_value_info("pos", TensorProto.FLOAT, ["seq", d])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return str(path), v, p, d


def test_position_table_read_by_a_computed_arange_is_a_parameter(tmp_path, profile):
    """wpe[arange(seq)]: it used to be a constant of no weight (the Add counted, the table's 32
    parameters, gradient and update silently dropped)."""
    path, v, p, d = _lm_graph(tmp_path / "lm.onnx", tied_copy=False)
    model = opcount.load_onnx(path, dims={"seq": 5})
    assert model.complete
    assert model.params == v * d + p * d + d * v
    assert [layer.type for layer in model.layers if layer.params] == ["embedding", "parameter", "linear"]
    pos = [layer for layer in model.layers if layer.name == "pos"][0]
    assert pos.attrs.get("grad") == "gather"          # its gradient goes back into the table


def test_output_layer_tied_to_the_embedding_by_a_transposed_copy(tmp_path, profile):
    """The exporters store a tied output layer's weight as the table transposed: one weight,
    counted (and updated) once, as load_torch counts a tied GPT-2; a head with other values
    stays its own weight."""
    path, v, p, d = _lm_graph(tmp_path / "tied.onnx")
    model = opcount.load_onnx(path, dims={"seq": 5})
    assert model.params == v * d + p * d
    head = [layer for layer in model.layers if layer.type == "linear"][0]
    assert head.attrs["tied_to"] == "wte_gather" and head.params == 0
    untied = opcount.load_onnx(_lm_graph(tmp_path / "untied.onnx", tied_copy=False)[0], dims={"seq": 5})
    tied_training = opcount.count_model(model, profile, phase="training", batch=2)
    untied_training = opcount.count_model(untied, profile, phase="training", batch=2)
    assert tied_training.macs == untied_training.macs
    # the update (sgd: 1 mul + 1 sub per parameter) is one table's, not two
    assert untied_training.totals["update"]["sub"] - tied_training.totals["update"]["sub"] == d * v
