"""Integer formats and quantized layers in counting and pricing (issue 18): a matrix product in
int8/int4 counts its products in that format, its accumulation (bias included) in int32 and a
requantization per output element; everything else is counted as in a floating-point format.

Cost tables come from the fixed fake table (tests.fakes), so no test here synthesizes."""
import json
import math

import numpy as np
import pytest

import hardware_profiles
import opcount
import tosim
from opcount.movement import format_bytes
from tests.fakes import FORMAT_COST, OP_COST
from tosim.cli import main

PROFILE = "name: cmos-int\nextends: cmos-generic\nformats: [fp32, bf16, tf32, int8, int4, int32]\n"

# a 3x3 convolution (padding 1) of a 3x8x8 input to 4 channels, a ReLU, a linear layer to 10
CONV = """name: qconv
input: [3, 8, 8]
layers:
  - {type: conv2d, out: 4, kernel: 3, padding: 1, format: int8}
  - {type: relu, format: int8}
  - {type: flatten, format: int8}
  - {type: linear, out: 10, format: int8, quant: {requantize: false}}
"""


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "int.yaml"
    path.write_text(PROFILE)
    return str(path)


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "qconv.yaml"
    path.write_text(CONV)
    return str(path)


def _rows(result):
    return {layer.name: layer for layer in result.layers}


def test_int8_conv_hand_count(spec, profile):
    r = opcount.count_model(opcount.load_model(spec), hardware_profiles.load(profile))
    rows = _rows(r)
    # conv: 64 output positions x 4 channels = 256 outputs, each a dot product of K = 3 x 9 = 27
    assert rows["conv2d_0"].format == "int8"
    assert rows["conv2d_0"].stages["forward"] == {"add": 0, "sub": 0, "mul": 256 * 27, "div": 0, "sqrt": 0, "cmp": 0}
    # 26 accumulating adds per output and the int32 bias add
    acc = rows["conv2d_0/accumulate"]
    assert (acc.type, acc.format) == ("accumulate", "int32")
    assert acc.stages["forward"] == {"add": 256 * 27, "sub": 0, "mul": 0, "div": 0, "sqrt": 0, "cmp": 0}
    # requantization per output: 1 mul, 2 add (rounding, zero point), 2 cmp (saturation)
    req = rows["conv2d_0/requantize"]
    assert (req.type, req.format) == ("requantize", "int32")
    assert req.stages["forward"] == {"add": 512, "sub": 0, "mul": 256, "div": 0, "sqrt": 0, "cmp": 512}
    # the linear layer (256 -> 10, bias) keeps its int32 output: no requantization row
    assert rows["linear_3"].stages["forward"]["mul"] == 2560
    assert rows["linear_3/accumulate"].stages["forward"]["add"] == 10 * 255 + 10
    assert "linear_3/requantize" not in rows
    assert rows["relu_1"].format == "int8" and rows["relu_1"].stages["forward"]["cmp"] == 256
    # MACs and FLOPs are the products', as in a floating-point format
    assert r.macs == 256 * 27 + 2560


def test_int8_counts_are_fp32_counts_plus_requantization(spec, profile):
    prof = hardware_profiles.load(profile)
    for batch in (1, 3):
        q = opcount.count_model(opcount.load_model(spec), prof, batch=batch)
        f = opcount.count_model(opcount.load_model(spec, format="fp32"), prof, batch=batch)
        assert {layer.format for layer in f.layers} == {"fp32"}
        req = {op: sum(layer.stages["forward"][op] for layer in q.layers if layer.type == "requantize")
               for op in opcount.BASIC_OPS}
        assert req == {"add": 2 * 256 * batch, "sub": 0, "mul": 256 * batch, "div": 0, "sqrt": 0,
                       "cmp": 2 * 256 * batch}
        # the model (format fp32) reads its input in fp32: quantized (192 values: div, add, 2 cmp);
        # its int32 output (requantize: false) dequantized for its reader (10 values: 1 mul)
        conv = {op: sum(layer.stages["forward"][op] for layer in q.layers if layer.type in ("quantize", "dequantize"))
                for op in opcount.BASIC_OPS}
        assert conv == {"add": 192 * batch, "sub": 0, "mul": 10 * batch, "div": 192 * batch, "sqrt": 0,
                        "cmp": 2 * 192 * batch}
        assert {op: q.totals["all"][op] - req[op] - conv[op] for op in opcount.BASIC_OPS} == f.totals["all"]
        assert q.macs == f.macs
        assert len(q.assumptions) == 2 and "model input" in q.assumptions[0] and "model output" in q.assumptions[1]


def test_whole_zoo_model_in_int8(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE)
    prof = hardware_profiles.load(str(path))
    q = opcount.count_model(opcount.load_model("zoo:lenet5", format="int8"), prof)
    f = opcount.count_model(opcount.load_model("zoo:lenet5"), prof)
    products = [layer for layer in q.layers if layer.type in opcount.MAC_LAYER_TYPES]
    assert products and all(_rows(q)[f"{layer.name}/accumulate"].format == "int32" for layer in products)
    outputs = sum(math.prod(layer.out_shape) for layer in products)
    want = dict(f.totals["all"])
    want.update(mul=want["mul"] + outputs, add=want["add"] + 2 * outputs, cmp=want["cmp"] + 2 * outputs)
    assert q.totals["all"] == want


def test_int4_may_accumulate_in_int8(tmp_path, profile):
    path = tmp_path / "m.yaml"
    path.write_text("input: [16]\nlayers:\n  - {type: linear, out: 4, format: int4, quant: {accumulate: int8}}\n")
    r = opcount.count_model(opcount.load_model(str(path)), hardware_profiles.load(profile))
    assert [(layer.name, layer.format) for layer in r.layers] == [
        ("linear_0/quantize_input", "fp32"), ("linear_0", "int4"), ("linear_0/accumulate", "int8"),
        ("linear_0/requantize", "int8"), ("linear_0/dequantize_output", "fp32")]


@pytest.mark.parametrize("layer, message", [
    ("{type: linear, out: 4, format: int8, quant: {requantise: false}}",
     r"line 3: layer 'linear_0' \(linear\): unknown quant field 'requantise' \(did you mean 'requantize'\? "
     r"expected accumulate, requantize, core\)$"),
    ("{type: relu, format: int8, quant: {}}",
     r"layer 'relu_0' \(relu\): 'quant' applies to the matrix products \(linear, .*\), not to a relu layer$"),
    ("{type: linear, out: 4, quant: {accumulate: int32}}",
     r"layer 'linear_0' \(linear\): 'quant' applies to a layer in an integer format \(int8, int4\); this layer "
     r"is in fp32 \(set its 'format'\)$"),
    ("{type: linear, out: 4, format: int8, quant: {accumulate: int8}}",
     r"line 3: layer 'linear_0' \(linear\): quant.accumulate must be an integer format that holds the products "
     r"of int8 \(int32\), not 'int8'$"),
    ("{type: linear, out: 4, format: int8, quant: {requantize: 1}}",
     r"quant.requantize must be true or false, not 1$"),
    ("{type: linear, out: 4, format: int8, quant: int32}", r"'quant' must be a mapping"),
    ("{type: linear, out: 4, format: int8, quant: {core: fp32}}",
     r"quant.core applies to attention layers, not to a linear layer$"),
    ("{type: attention, heads: 2, format: int8, quant: {core: int8}}",
     r"quant.core \(the attention core's format\) must be a floating-point format \(fp16, .*\), not 'int8'$"),
])
def test_quant_field_errors(tmp_path, layer, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"input: [8]\nlayers:\n  - {layer}\n")
    with pytest.raises(opcount.ModelError, match=message):
        opcount.load_model(str(path))


def test_training_in_an_integer_format_is_refused(spec, profile, capsys):
    with pytest.raises(opcount.ModelError, match=r"model 'qconv' \(layer 'conv2d_0'\) is in int8: integer formats "
                                                 r"are counted for inference and validation only"):
        opcount.count_model(opcount.load_model(spec), hardware_profiles.load(profile), phase="training")
    assert main(["count", spec, "--profile", profile, "--phase", "training"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tosim: error: ") and "integer formats" in err[0]
    # an integer master format is no floating-point master copy
    with pytest.raises(ValueError, match=r"master_format must be a floating-point format"):
        opcount.count_model(opcount.load_model(spec, format="bf16"), hardware_profiles.load(profile),
                            phase="training", master_format="int32")


def test_quantized_attention_projections_and_core(tmp_path, profile):
    # self-attention over T = 4 tokens of D = 8, 2 heads: q, k, v and output projections 8 -> 8 with bias
    path = tmp_path / "att.yaml"
    path.write_text("input: [4, 8]\nlayers:\n  - {type: attention, heads: 2, format: int8, quant: {core: bf16}}\n")
    prof = hardware_profiles.load(profile)
    q = opcount.count_model(opcount.load_model(str(path)), prof, batch=2)
    f = opcount.count_model(opcount.load_model(str(path), format="fp32"), prof, batch=2)
    rows = _rows(q)
    rows_x_out = 2 * 4 * 8                   # batch 2 x 4 tokens x 8 outputs, per projection
    assert rows["attention_0"].stages["forward"] == {"add": 0, "sub": 0, "mul": 4 * rows_x_out * 8, "div": 0,
                                                     "sqrt": 0, "cmp": 0}
    assert rows["attention_0/accumulate"].stages["forward"]["add"] == 4 * rows_x_out * 8      # 7 adds + bias each
    assert rows["attention_0/requantize"].stages["forward"] == {
        "add": 2 * 4 * rows_x_out, "sub": 0, "mul": 4 * rows_x_out, "div": 0, "sqrt": 0, "cmp": 2 * 4 * rows_x_out}
    core = rows["attention_0/core"]
    assert (core.type, core.format) == ("attention_core", "bf16")
    # the core: the float layer's counts less the projections'
    fwd = f.layers[0].stages["forward"]
    assert core.stages["forward"] == {op: fwd[op] - {"mul": 4 * rows_x_out * 8, "add": 4 * rows_x_out * 8}.get(op, 0)
                                      for op in opcount.BASIC_OPS}
    assert core.stages["forward"]["div"] > 0 and core.stages["forward"]["cmp"] > 0     # the softmax


def test_with_quantized_products(profile):
    prof = hardware_profiles.load(profile)
    model = opcount.load_model("zoo:bert-base", seq=16)
    q = opcount.with_quantized_products(model)
    assert {layer.format for layer in q.layers if layer.type in ("linear", "attention")} == {"int8"}
    assert {layer.format for layer in q.layers if layer.type in ("layernorm", "gelu", "add")} == {"fp32"}
    rq, rf = opcount.count_model(q, prof), opcount.count_model(model, prof)
    req = {op: sum(layer.stages["forward"][op] for layer in rq.layers if layer.type == "requantize")
           for op in opcount.BASIC_OPS}
    conv = {op: sum(layer.stages["forward"][op] for layer in rq.layers if layer.type in ("quantize", "dequantize"))
            for op in opcount.BASIC_OPS}
    assert {op: rq.totals["all"][op] - req[op] - conv[op] for op in opcount.BASIC_OPS} == rf.totals["all"]
    assert {layer.format for layer in rq.layers if layer.type == "attention_core"} == {"fp32"}
    # the conversions of the first block (16 tokens, 768 wide, 3072 inside the MLP), by hand: each
    # integer layer quantizes its float input once and its int8 output is dequantized for the
    # float reader behind the (free) dropout; the attention core dequantizes q, k, v and
    # quantizes its output for the output projection
    rows = {layer.name: layer.stages["forward"] for layer in rq.layers if layer.type in ("quantize", "dequantize")}
    quantize = {"div": 1, "add": 1, "cmp": 2}
    dequantize = {"sub": 1, "mul": 1}
    for name, recipe, n in [("attention1/quantize_input", quantize, 16 * 768),
                            ("attention1/core_dequantize", dequantize, 3 * 16 * 768),
                            ("attention1/core_quantize", quantize, 16 * 768),
                            ("attention1/dequantize_output", dequantize, 16 * 768),
                            ("linear1/quantize_input", quantize, 16 * 768),
                            ("linear1/dequantize_output", dequantize, 16 * 3072),
                            ("linear2/quantize_input", quantize, 16 * 3072),
                            ("linear2/dequantize_output", dequantize, 16 * 768)]:
        assert rows[name] == {op: recipe.get(op, 0) * n for op in opcount.BASIC_OPS}, name
    # every integer layer reads a float tensor (a layernorm's, a gelu's, a pooled one) once
    assert sum(1 for name in rows if name.endswith("/quantize_input")) == sum(
        1 for layer in q.layers if layer.format == "int8")
    with pytest.raises(opcount.ModelError, match=r"quantized products take one of int8, int4, not 'int32'"):
        opcount.with_quantized_products(model, "int32")


def test_movement_prices_the_extra_rows(tmp_path, spec):
    prof = _mem_profile(tmp_path)
    model = opcount.load_model(spec)
    mv = opcount.count_movement(opcount.count_model(model, prof), model, prof)
    by_name = {m.name: m for m in mv.layers}
    assert by_name["conv2d_0/accumulate"].compute_j == pytest.approx(6912 * 4.0e-14)
    assert by_name["conv2d_0/requantize"].compute_j > 0 and by_name["conv2d_0/requantize"].movement_j == 0
    assert by_name["conv2d_0"].compute_j == pytest.approx(6912 * 1.0e-13)


def _mem_profile(tmp_path):
    path = tmp_path / "mem.yaml"
    path.write_text(PROFILE.replace("name: cmos-int", "name: cmos-int-mem") + """memory:
  levels:
    - {name: sram, capacity_bytes: 65536, energy_per_byte_j: 1.0e-12}
    - {name: dram, energy_per_byte_j: 1.0e-10}
  compute:
    op_energy_j: {int8: {add: 1.0e-14, mul: 1.0e-13}, int32: {add: 4.0e-14, mul: 1.0e-12}, fp32: {add: 1.0e-12}}
""")
    return hardware_profiles.load(str(path))


@pytest.mark.parametrize("requantize", [True, False])
def test_movement_of_a_quantized_product_sums_in_int32(tmp_path, requantize):
    """An int8 product's partial sums (and its int32 bias) move in 4 bytes; its output in 1 when
    it requantizes, in 4 when it keeps the int32 sums (an ONNX MatMulInteger/ConvInteger)."""
    prof = _mem_profile(tmp_path)
    path = tmp_path / "l.yaml"
    flag = "true" if requantize else "false"
    path.write_text(f"input: [8]\nformat: int8\nlayers:\n  - {{type: linear, out: 4, format: int8, "
                    f"quant: {{requantize: {flag}}}}}\n")
    model = opcount.load_model(str(path))
    result = opcount.count_model(model, prof, batch=2)
    row = {m.name: m for m in opcount.count_movement(result, model, prof).layers}["linear_0"]
    fwd = row.bytes["forward"]
    macs, outputs = 2 * 8 * 4, 2 * 4
    # level 0: each MAC reads a weight and an input (1 byte) and reads and writes its int32 sum;
    # the bias read once per output, in int32
    # everything fits in sram: one pass; dram holds the weights (1 byte), the int32 bias and the
    # inputs (1 byte), read once, and the output written once (1 byte requantized, 4 as int32
    # sums); sram is filled (drained) with the same bytes
    out_bytes = 1 if requantize else 4
    assert fwd["dram"]["weights"] == 8 * 4 * 1 + 4 * 4
    assert fwd["dram"]["inputs"] == 2 * 8 * 1
    assert fwd["dram"]["outputs"] == outputs * out_bytes
    assert fwd["sram"]["weights"] == macs * 1 + outputs * 4 + fwd["dram"]["weights"]
    assert fwd["sram"]["inputs"] == macs * 1 + fwd["dram"]["inputs"]
    assert fwd["sram"]["outputs"] == 2 * macs * 4 + outputs * out_bytes


def test_movement_of_an_onnx_integer_product(tmp_path):
    """MatMulInteger's output is int32: 4 bytes an element, ConvInteger's too."""
    from onnx import TensorProto, helper, numpy_helper
    prof = _mem_profile(tmp_path)
    for op, shape, w in [("MatMulInteger", [2, 8], np.ones((8, 4), np.int8)),
                         ("ConvInteger", [2, 2, 3, 3], np.ones((4, 2, 3, 3), np.int8))]:
        node = helper.make_node(op, ["x", "w"], ["y"], name="q")
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.INT8, shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                                  [numpy_helper.from_array(w, "w")])
        path = tmp_path / f"{op}.onnx"
        import onnx
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
        model = opcount.load_onnx(str(path))
        assert model.layer("q").format == "int8"
        result = opcount.count_model(model, prof, batch=1)
        row = {m.name: m for m in opcount.count_movement(result, model, prof).layers}["q"]
        outputs = 4             # per sample: [8] x [8, 4]; a 3x3 kernel over 3x3 to 4 channels
        assert row.bytes["forward"]["dram"]["outputs"] == outputs * 4, op


def test_hand_count_of_the_conversions_between_float_and_int8_layers(tmp_path, profile):
    """linear (fp32) -> relu (fp32) -> linear (int8) -> softmax (fp32), and an int8 chain: the
    relu's output is quantized once for the int8 layer, its int8 output dequantized once for the
    softmax; int8 into int8 converts nothing."""
    path = tmp_path / "edges.yaml"
    path.write_text("""input: [8]
layers:
  - {type: linear, out: 6}
  - {type: relu}
  - {type: linear, out: 4, format: int8}
  - {type: softmax}
  - {type: linear, out: 5, format: int8, name: a}
  - {type: relu, format: int8, name: b}
  - {type: linear, out: 3, format: int8, inputs: b, name: c}
  - {type: add, inputs: [c, c], name: d}
""")
    r = opcount.count_model(opcount.load_model(str(path)), hardware_profiles.load(profile), batch=2)
    rows = {layer.name: (layer.type, layer.format, {op: n for op, n in layer.stages["forward"].items() if n})
            for layer in r.layers}
    names = [layer.name for layer in r.layers]
    # 6 relu outputs x batch 2: x / scale (div), + zero point (add), 2 saturating cmp, in fp32
    assert rows["linear_2/quantize_input"] == ("quantize", "fp32", {"div": 12, "add": 12, "cmp": 24})
    # the int8 linear: 4 x 6 products per sample, requantized per output (4 x 2)
    assert rows["linear_2"] == ("linear", "int8", {"mul": 2 * 24})
    assert rows["linear_2/requantize"] == ("requantize", "int32", {"mul": 8, "add": 16, "cmp": 16})
    # its int8 output dequantized for the softmax: (x - zero point) x scale, in fp32
    assert rows["linear_2/dequantize_output"] == ("dequantize", "fp32", {"sub": 8, "mul": 8})
    assert names.index("linear_2/quantize_input") < names.index("linear_2") < names.index(
        "linear_2/dequantize_output") < names.index("softmax_3")
    # the softmax output quantized for a (4 values x 2), then a -> b -> c all int8: nothing
    assert rows["a/quantize_input"] == ("quantize", "fp32", {"div": 8, "add": 8, "cmp": 16})
    assert not [n for n in names if n.startswith(("b/", "c/quantize"))]
    # c's int8 output read twice by the fp32 add: dequantized once (3 values x 2)
    assert rows["c/dequantize_output"] == ("dequantize", "fp32", {"sub": 6, "mul": 6})
    assert sum(1 for layer in r.layers if layer.type in ("quantize", "dequantize")) == 4
    # a float model input (linear_0 is fp32) and a float output: nothing assumed
    assert r.assumptions == []


def test_validation_counts_the_loss(spec, profile):
    r = opcount.count_model(opcount.load_model(spec), hardware_profiles.load(profile), phase="validation")
    assert r.layers[-1].name == "loss" and any(r.layers[-1].stages["loss"].values())


@pytest.mark.usefixtures("fixed_costs")
def test_each_row_is_priced_in_its_own_format(spec, profile):
    r = tosim.score(spec, profile, per_layer=True)
    want = sum(n * OP_COST[op] * FORMAT_COST[layer.format]
               for layer in r.count_result.layers for s in opcount.STAGES
               for op, n in layer.stages[s].items())
    assert r.tos == pytest.approx(want)
    tos = {layer.name: layer.tos for layer in r.layers}
    assert tos["conv2d_0"] == pytest.approx(6912 * OP_COST["mul"] * FORMAT_COST["int8"])
    assert tos["conv2d_0/accumulate"] == pytest.approx(6912 * OP_COST["add"] * FORMAT_COST["int32"])
    assert tos["conv2d_0/requantize"] == pytest.approx(
        (256 * OP_COST["mul"] + 512 * OP_COST["add"] + 512 * OP_COST["cmp"]) * FORMAT_COST["int32"])
    fp32 = tosim.score(spec, profile, format="fp32")
    assert r.tos < fp32.tos


@pytest.mark.usefixtures("fixed_costs")
def test_format_flag_int8_and_tf32_on_the_command_line(spec, profile, capsys):
    assert main(["score", "zoo:lenet5", "--profile", profile, "--format", "int8", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["error"] is None and row["tos"] > 0
    assert main(["count", "zoo:lenet5", "--profile", profile, "--format", "tf32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {layer["format"] for layer in out["layers"]} == {"tf32"}


@pytest.mark.usefixtures("fixed_costs")
def test_an_unlisted_integer_format_names_both(spec, capsys):
    # cmos-generic lists fp16, bf16, fp32, fp64: the int8 layers cannot be priced
    assert main(["count", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "is in int8, which profile 'cmos-generic' does not list" in err[0]
    assert main(["count", "zoo:lenet5", "--format", "int16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'int16'" in err[0]


def test_storage_bytes_of_the_formats():
    assert {f: format_bytes(f) for f in ("fp32", "tf32", "bf16", "fp8_e4m3", "int8", "int4", "int32")} == {
        "fp32": 4, "tf32": 4, "bf16": 2, "fp8_e4m3": 1, "int8": 1, "int4": 0.5, "int32": 4}


@pytest.mark.usefixtures("fixed_costs")
def test_quantize_flag(profile, capsys):
    direct = tosim.score(opcount.with_quantized_products(opcount.load_model("zoo:lenet5")), profile)
    assert tosim.score("zoo:lenet5", profile, quantize="int8").tos == pytest.approx(direct.tos)
    assert main(["score", "zoo:lenet5", "--profile", profile, "--quantize", "int8", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["tos"] == pytest.approx(direct.tos)
    assert main(["count", "zoo:lenet5", "--profile", profile, "--quantize", "int4", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert {layer["format"] for layer in layers if layer["type"] in ("conv2d", "linear")} == {"int4"}
    # the profile must list the integer formats: one line, exit 2
    assert main(["score", "zoo:lenet5", "--quantize", "int8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tosim: error: quantize int8 (products in int8, accumulated in int32) needs int8, which profile "
                   "'cmos-generic' does not list (fp16, bf16, fp32, fp64); add it to the profile's formats, or use "
                   "the built-in profile cmos-quant (cmos-generic with int8, int4 and int32)"]
    with pytest.raises(tosim.ScoreError, match=r"^quantize must be int8 or int4, not 'int32'$"):
        tosim.score("zoo:lenet5", profile, quantize="int32")


@pytest.mark.parametrize("argv", [["activity", "--formats", "int8", "--ops", "add"],
                                  ["activity", "--formats", "tf32"],
                                  ["explore", "zoo:lenet5", "--formats", "int8"]])
def test_switching_commands_refuse_formats_they_cannot_draw(argv, profile, capsys):
    assert main(argv + ["--profile", profile]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tosim: error: --formats: switching activity is simulated for fp16")


@pytest.mark.usefixtures("fixed_costs")
def test_switching_pricing_refuses_integer_layers(tmp_path, spec):
    path = tmp_path / "act.yaml"
    path.write_text(PROFILE.replace("name: cmos-int", "name: cmos-int-act") + "power: {energy: activity}\n")
    with pytest.raises(tosim.ScoreError, match=r"switching energy \(power: \{energy: activity\}\) is simulated for "
                                               r"fp16, .* operands, not int32, int8"):
        tosim.score(spec, str(path))


def test_integer_formats_price_only_the_ops_counted(monkeypatch, spec, profile):
    """An int32 accumulator needs its adder, multiplier and comparator, never the 32-bit divider
    and root (the slowest circuits to synthesize): scoring asks the cost table for what is counted."""
    import types

    import hwlib.cost
    import tosim._costs
    asked = []

    def table(prof, formats=None, ops=None, **kw):
        asked.append((tuple(formats), tuple(ops)))
        return [types.SimpleNamespace(op=op, format=fmt, cost=types.SimpleNamespace(
            transistors=OP_COST[op] * FORMAT_COST[fmt])) for fmt in formats for op in ops]

    monkeypatch.setattr(hwlib.cost, "cost_table", table)
    monkeypatch.setattr(tosim._costs, "_COLUMNS", {})
    monkeypatch.setattr(tosim._costs, "_MEMO", {})
    r = tosim.score(spec, profile, per_layer=True)
    # fp32: the conversions of the model's fp32 input and output (a float format: every op priced)
    assert sorted(asked) == [(("fp32",), opcount.BASIC_OPS), (("int32",), ("add", "mul", "cmp")),
                             (("int8",), ("mul", "cmp"))]
    want = sum(n * OP_COST[op] * FORMAT_COST[layer.format]
               for layer in r.count_result.layers for s in opcount.STAGES
               for op, n in layer.stages[s].items())
    assert r.tos == pytest.approx(want)


def test_integer_products_on_a_mac_unit(tmp_path, spec, monkeypatch, fixed_costs):
    """With units.mac an int8 product's multiplies and its accumulate row's adds become MACs of
    the integer MAC unit (int8 x int8 + int32), priced per product row; read back as one mul plus
    one add, the counts are those without a MAC unit."""
    import tosim._costs
    path = tmp_path / "mac.yaml"
    path.write_text(PROFILE.replace("name: cmos-int", "name: cmos-int-mac")
                    + "units:\n  mac: {design: fused, accumulate: fp32}\n")
    prof = hardware_profiles.load(str(path))
    asked = []

    def fake(profile, formats, *, progress=None, used=None):
        asked.append(tuple(used))
        return np.array([1500.0 * FORMAT_COST[f] if f in used else 0.0 for f in formats])

    monkeypatch.setattr(tosim._costs, "mac_costs_array", fake)
    counted = opcount.count_model(opcount.load_model(spec), prof)
    macs = opcount.mac_counts(counted)
    rows = [layer.name for layer in counted.layers]
    assert macs[rows.index("conv2d_0")].tolist() == [6912, 0, 0, 0]
    assert opcount.mac_add_rows(counted)[rows.index("conv2d_0")] == rows.index("conv2d_0/accumulate")
    moved = opcount.with_macs(counted)
    by_name = {layer.name: layer.stages["forward"] for layer in moved.layers}
    assert (by_name["conv2d_0"]["mul"], by_name["conv2d_0"]["mac"], by_name["conv2d_0/accumulate"]["add"]) == (0, 6912, 0)
    back = {op: moved.totals["all"][op] + (moved.totals["all"]["mac"] if op in ("mul", "add") else 0)
            for op in opcount.BASIC_OPS}
    assert back == counted.totals["all"]
    r = tosim.score(spec, str(path), per_layer=True)
    assert asked == [("int8",)]
    tos = {layer.name: layer.tos for layer in r.layers}
    assert tos["conv2d_0"] == pytest.approx(6912 * 1500.0 * FORMAT_COST["int8"])
    assert tos["conv2d_0/accumulate"] == 0
    assert r.counts["mac"] == 6912 + 2560


def test_integer_mac_unit_spec(generic):
    from hwlib.units.intfmt import int_mac_unit
    from hwlib.units.mac import mac_unit
    spec = int_mac_unit("int8", generic.units)
    assert spec.params == mac_unit("booth_wallace", 8, 32, signed=True, options=generic.units["mul"]).params
    assert int_mac_unit("int4", generic.units).params["width"] == 4


def test_quantize_keeps_layers_already_in_an_integer_format(spec):
    model = opcount.load_model(spec)
    again = opcount.with_quantized_products(model, "int4")
    assert [(layer.format, layer.attrs.get("quant")) for layer in again.layers] == \
        [(layer.format, layer.attrs.get("quant")) for layer in model.layers]


def test_per_layer_formats_compose_with_a_master_format(tmp_path, profile):
    """Mixed precision per layer in training: a bf16 layer's update moves to a NAME/update row in
    the fp32 master format; an fp32 layer keeps its own update."""
    path = tmp_path / "mixed.yaml"
    path.write_text("input: [8]\nlayers:\n  - {type: linear, out: 16, format: bf16}\n  - {type: relu, format: bf16}\n"
                    "  - {type: linear, out: 4, format: fp32}\n")
    r = opcount.count_model(opcount.load_model(str(path)), hardware_profiles.load(profile), phase="training",
                            master_format="fp32")
    rows = _rows(r)
    assert rows["linear_0"].format == "bf16" and not any(rows["linear_0"].stages["update"].values())
    assert rows["linear_0/update"].format == "fp32"
    assert rows["linear_0/update"].stages["update"] == {"add": 0, "sub": 144, "mul": 144, "div": 0, "sqrt": 0, "cmp": 0}
    assert "linear_2/update" not in rows and rows["linear_2"].stages["update"]["mul"] == 68


def test_score_reports_what_count_reports_under_quantize(tmp_path, profile, capsys):
    """`tosim score --quantize int8` (text, CSV, JSON) and tosim.score(quantize=) list the same
    assumptions (the float input quantized, the int8 output dequantized) and incomplete layers
    as `tosim count`."""
    path = tmp_path / "u.yaml"
    path.write_text("name: u\ninput: [8]\nlayers:\n  - {type: linear, out: 4}\n  - {type: fancy, out_shape: [4]}\n"
                    "  - {type: linear, out: 3}\n")
    args = [str(path), "--profile", profile, "--quantize", "int8"]
    assert main(["count", *args, "--json"]) == 0
    counted = json.loads(capsys.readouterr().out)
    assumptions = counted["assumptions"]
    assert len(assumptions) == 2 and "model input arrives in fp32" in assumptions[0]
    assert "('linear_2', int8) is dequantized to fp32" in assumptions[1]
    assert [item["layer"] for item in counted["incomplete"]] == ["fancy_1"]
    api = tosim.score(str(path), profile, quantize="int8")
    assert api.assumptions == assumptions and not api.complete and api.incomplete_types == {"fancy": 1}
    assert main(["score", *args, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["assumptions"] == assumptions and row["incomplete"] == {"fancy": 1}
    assert row["tos"] == pytest.approx(api.tos)
    out = tmp_path / "s.csv"
    assert main(["score", *args, "--out", str(out)]) == 0
    capsys.readouterr()
    import csv
    with out.open() as f:
        (line,) = csv.DictReader(f)
    assert line["assumptions"].split("; ") == assumptions and line["incomplete"] == "fancy x1"
    assert main(["score", *args]) == 0
    text = capsys.readouterr().out
    assert [line for line in text.splitlines() if line.startswith("ASSUMED:")] == [
        f"ASSUMED: u: {item}" for item in assumptions]
    assert "INCOMPLETE: u: fancy x1; the TOs are too low" in text.splitlines()


def test_an_int8_embedding_reads_indices_and_outputs_int8(tmp_path, profile):
    # the token ids are not converted, the table's int8 values feed the int8 linear layer as they are
    path = tmp_path / "e.yaml"
    path.write_text("input: [5]\nlayers:\n  - {type: embedding, vocab: 10, dim: 4, format: int8}\n"
                    "  - {type: linear, out: 3, format: int8}\n")
    r = opcount.count_model(opcount.load_model(str(path)), hardware_profiles.load(profile))
    assert [(layer.name, layer.type) for layer in r.layers if layer.type in ("quantize", "dequantize")] == [
        ("linear_1/dequantize_output", "dequantize")]
    assert len(r.assumptions) == 1 and "model output" in r.assumptions[0]
