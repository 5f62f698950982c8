"""opcount model-spec frontend (YAML/JSON) and the ``tosim count`` command."""
import json
import os
import re

import pytest

import opcount
from opcount import ModelError
import tosim
from tosim._render import si
from tosim.cli import main

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "models")


def fixture(name):
    return os.path.join(FIXTURES, name)


def test_design_example_mlp():
    model = opcount.load_model(fixture("mlp-4x8.yaml"))
    assert model.name == "mlp-4x8" and model.input_shape == (4,)
    assert [(layer.name, layer.type, layer.out_shape, layer.params) for layer in model.layers] == [
        ("linear_0", "linear", (8,), 40), ("sigmoid_1", "sigmoid", (8,), 0), ("linear_2", "linear", (1,), 9)]
    assert model.loss == "mse" and model.optimizer == "sgd" and model.params == 49


def test_json_branches_formats_and_params():
    model = opcount.load_model(fixture("resblock.json"))
    assert model.layer("sum").inputs == ("batchnorm_4", "a")
    assert model.layer("conv2d_3").format == "fp16" and model.layer("stem").format == "fp32"
    assert model.layer("concat_8").out_shape == (24, 6, 6)
    assert model.output_shape == (10,)
    assert model.params == 8 * 16 * 9 + 32 + 16 * 16 * 9 + 32 + 16 * 8 + 8 + 24 * 10 + 10
    result = opcount.count_model(model, _profile(), phase="training", batch=2)
    # 'a' feeds conv2d_3, the add and 'side': 2 extra adds per element in its backward
    a = next(layer for layer in result.layers if layer.name == "a")
    assert a.stages["backward"] == {"add": 2 * 2 * 16 * 36, "sub": 0, "mul": 0, "div": 0, "sqrt": 0,
                                    "cmp": 2 * 16 * 36}
    assert result.layers[-1].name == "loss"
    assert result.formats[3] == "fp16" and result.formats[-1] == "fp32" and len(result.formats) == len(result.layers)


def _profile():
    from hardware_profiles import load
    return load("cmos-generic")


@pytest.mark.parametrize("name, message", [
    ("bad-unknown-type.yaml", "layer 'act1' (sigmoidd): unknown layer type 'sigmoidd' "
                              "(give 'out_shape' to keep it as an uncounted layer)"),
    ("bad-shape-mismatch.yaml", "layer 'skip' (add): shape mismatch: [8] vs [6]"),
    ("bad-missing-field.yaml", "layer 'c1' (conv2d): missing field 'kernel'"),
])
def test_bad_files_name_file_and_layer(name, message):
    path = fixture(name)
    with pytest.raises(ModelError, match="^" + re.escape(f"{path}: {message}") + "$"):
        opcount.load_model(path)


@pytest.mark.parametrize("text, message", [
    ("input: [4]\n", "missing field 'layers'"),
    ("layers: [{type: relu}]\n", "missing field 'input'"),
    ("input: [4]\nlayers: [{type: relu}]\nloss: hinge\n", "loss must be one of mse, cross_entropy, bce, not 'hinge'"),
    ("input: [4]\nlayers: [{type: relu}]\nextra: 1\n", "unknown field 'extra' (expected format, input, input_grad, "
                                                      "layers, loss, name, optimizer)"),
    ("input: [4]\nlayers: [{out: 3}]\n", "layer 0: missing field 'type'"),
    ("input: [4]\nlayers: [{type: linear, out: 3, kernal: 2}]\n", "layer 'linear_0' (linear): unknown field 'kernal'"),
    ("input: [4]\nlayers: [{type: linear, out: 0}]\n", "layer 'linear_0' (linear): 'out' must be an integer >= 1, not 0"),
    ("input: [4]\nlayers: [{type: relu, inputs: [nope]}]\n",
     "layer 'relu_0' (relu): input 'nope' is not an earlier layer or 'input'"),
    ("input: [4]\nlayers: [{type: relu, format: fp8}]\n",
     "layer 'relu_0' (relu): format must be one of fp16, bf16, fp32, fp64, fp8_e4m3, fp8_e5m2, tf32, int8, int4, int32, not 'fp8'"),
    ("input: [0]\nlayers: [{type: relu}]\n", "model input shape must be a non-empty list of positive integers, not [0]"),
    ("input: [3, 4, 4]\nlayers: [{type: conv2d, out: 2, kernel: 5}]\n",
     "layer 'conv2d_0' (conv2d): window of span 5 does not fit in length 4 with padding 0"),
    ("input: [2, 3]\nlayers: [{type: matmul, inputs: [input, input]}]\n",
     "layer 'matmul_0' (matmul): shape mismatch: [2, 3] @ [2, 3]"),
    ("input: [4]\nlayers: [{type: linear, out: 3\n", None),
    ("input: [3, 4]\nlayers: [{type: positional_embedding, rows: 2}]\n",
     "layer 'positional_embedding_0' (positional_embedding): the table has 2 positions ('rows'), fewer than the "
     "3 tokens of input shape [3, 4]"),
    ("input: [4]\nlayers:\n- {type: linear, out: 8, name: a}\n- {type: relu, name: r}\n"
     "- {type: linear, out: 4, tied_to: r}\n",
     "layer 'linear_2' (linear): 'tied_to' names 'r', a relu layer; it must name a linear or embedding layer"),
    ("input: [4]\nlayers:\n- {type: linear, out: 8, name: a}\n- {type: linear, out: 4, tied_to: a}\n",
     "layer 'linear_1' (linear): 'tied_to' names 'a', whose weight has shape [8, 4]; this layer's weight has "
     "shape [4, 8]"),
    ("input: [3]\nlayers:\n- {type: embedding, vocab: 10, dim: 4, name: e}\n- {type: linear, out: 9, tied_to: e}\n",
     "layer 'linear_1' (linear): 'tied_to' names 'e', whose weight has shape [10, 4]; this layer's weight has "
     "shape [9, 4]"),
    ("input: [4]\nlayers: [{type: linear, out: 4, tied_to: input}]\n",
     "layer 'linear_0' (linear): 'tied_to' names the model input; it must name a linear or embedding layer"),
    ("input: [4]\nlayers: [{type: linear, out: 8}]\n---\ninput: [4]\n",
     "line 3: a model file holds one YAML document"),
    ("input: [4]\nlayers: [{type: [linear], out: 8}]\n", "layer 0: 'type' must be a string, not ['linear']"),
    ("input: [4]\nlayers: [{type: linear, out: 8, name: input}]\n",
     "layer 'input' (linear): the name 'input' is reserved for the model input"),
    ("input: [4]\nname: [1, 2]\nlayers: [{type: linear, out: 8}]\n",
     "model 'name' must be a string or a number, not [1, 2]"),
    ("input: [4]\nlayers: [{type: linear, out: 8, name: [a]}]\n",
     "layer 0: 'name' must be a string or a number, not ['a']"),
    ("input: [4]\ninput: [8]\nlayers: [{type: linear, out: 8}]\n",
     "line 2: invalid YAML: duplicate key 'input' (first on line 1)"),
    ("input: [4]\nlayers:\n- {type: linear, out: 8, out: 2}\n",
     "line 3: invalid YAML: duplicate key 'out' (first on line 3)"),
])
def test_spec_errors_are_one_line(tmp_path, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ModelError) as info:
        opcount.load_model(str(path))
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}: ")
    if message is None:
        assert re.match(r"^.*: line \d+: invalid YAML: .+$", text)
    else:
        assert text == f"{path}: {message}"


def test_position_tables_tied_weights_and_names_that_fit():
    layers = [{"type": "embedding", "vocab": 10, "dim": 4, "name": "e"},
              {"type": "positional_embedding", "rows": 3, "name": "pos"},
              {"type": "positional_embedding", "rows": 2, "token_types": True, "name": "types"},
              {"type": "linear", "out": 10, "bias": False, "tied_to": "e", "name": 7},
              {"type": "linear", "out": 10, "bias": False, "tied_to": "7", "name": "again",
               "inputs": "types"}]
    model = opcount.load_model({"name": 3, "input": [3], "layers": layers})
    assert model.name == "3" and [layer.name for layer in model.layers] == ["e", "pos", "types", "7", "again"]
    assert [layer.params for layer in model.layers] == [40, 12, 8, 0, 0]
    assert model.layer("pos").attrs == {"rows": 3, "dim": 4, "token_types": False}
    with pytest.raises(ModelError, match=r"^<spec>: layer 'p' \(positional_embedding\): 'token_types' must be true "
                                         r"or false, not 'yes'$"):
        opcount.load_model({"input": [3, 4], "layers": [
            {"type": "positional_embedding", "token_types": "yes", "name": "p"}]})


def test_cli_rejects_a_short_position_table(tmp_path, capsys):
    path = tmp_path / "pos.yaml"
    path.write_text("input: [3, 4]\nlayers: [{type: positional_embedding, rows: 2, name: p}]\n")
    assert main(["count", str(path)]) == 2
    assert capsys.readouterr().err == (f"tosim: error: {path}: layer 'p' (positional_embedding): the table has "
                                       "2 positions ('rows'), fewer than the 3 tokens of input shape [3, 4]\n")


def test_load_model_sources(tmp_path):
    with pytest.raises(ModelError, match=r"^zoo:nope: unknown zoo model \(known: .*\)$"):
        opcount.load_model("zoo:nope")
    with pytest.raises(ModelError, match=r"^missing\.yaml: cannot read: No such file or directory$"):
        opcount.load_model("missing.yaml")
    other = tmp_path / "m.txt"
    other.write_text("x")
    with pytest.raises(ModelError, match=r"^.*m\.txt: unsupported model file type '\.txt'; expected \.yaml, "
                                         r"\.yml, \.json, \.onnx or zoo:NAME$"):
        opcount.load_model(str(other))
    bad_json = tmp_path / "m.json"
    bad_json.write_text("{")
    with pytest.raises(ModelError, match=r"^.*m\.json: line 1: invalid JSON: .+$"):
        opcount.load_model(str(bad_json))
    assert opcount.load_model({"input": [2], "layers": [{"type": "relu"}]}).params == 0


def test_same_padding_and_layer_types():
    model = opcount.load_model({"input": [3, 7, 7], "layers": [
        {"type": "conv2d", "out": 4, "kernel": 5, "padding": "same", "dilation": 2}]})
    assert model.output_shape == (4, 7, 7)
    assert {"linear", "conv2d", "attention", "softmax", "layernorm"} <= set(opcount.layer_types())


# --- the command ------------------------------------------------------------------------------

def test_cli_table(capsys):
    assert main(["count", fixture("mlp-4x8.yaml"), "--profile", "li2022"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "model mlp-4x8  profile li2022  phase inference (forward)  batch 1"
    scored = tosim.score(fixture("mlp-4x8.yaml"), "li2022", per_layer=True)
    assert lines[1] == f"params 49  MACs 40  FLOPs 80  TOs {si(scored.tos)}"
    assert lines[3].split()[-1] == "TOs"
    assert re.match(rf"^linear_0 +linear +8 +40 +32 +0 +32 +0 +0 +0 +{si(scored.layers[0].tos)}$", lines[5])
    assert re.match(rf"^sigmoid_1 +sigmoid +8 +0 +8 +8 +0 +8 +8 +0 +{si(scored.layers[1].tos)}$", lines[6])
    assert re.match(rf"^total forward +48 +8 +40 +8 +8 +0 +{si(scored.tos_by_stage['forward'])}$", lines[9])


def test_cli_json_training(capsys):
    assert main(["count", fixture("mlp-4x8.yaml"), "--profile", "li2022", "--phase", "training",
                 "--batch", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "mlp-4x8" and data["phase"] == "training" and data["batch"] == 4
    assert data["params"] == 49 and data["macs"] == 4 * (32 + 8) + 4 * 32 + 2 * 4 * 8
    assert data["flops"] == 2 * data["macs"]
    assert [layer["name"] for layer in data["layers"]] == ["linear_0", "sigmoid_1", "linear_2", "loss"]
    assert set(data["layers"][0]["stages"]) == {"forward", "loss", "backward", "update"}
    assert data["totals"]["update"]["mul"] == 49
    assert data["totals"]["all"]["mul"] == sum(data["totals"][s]["mul"] for s in
                                               ("forward", "loss", "backward", "update"))


@pytest.mark.parametrize("argv, message", [
    ([fixture("bad-unknown-type.yaml")], "unknown layer type 'sigmoidd'"),
    (["zoo:nope"], "zoo:nope: unknown zoo model"),
    ([fixture("mlp-4x8.yaml"), "--batch", "0"], "argument --batch: must be a positive integer, not '0'"),
    ([fixture("mlp-4x8.yaml"), "--profile", "no-such-profile"], ""),
    ([fixture("mlp-4x8.yaml"), "--seq", "8"], "has no sequence length to set"),
])
def test_cli_errors_exit_2(capsys, argv, message):
    assert main(["count"] + argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("tosim: error: ") and err.count("\n") == 1 and message in err
    assert captured.out == ""


def test_cli_incomplete_is_reported(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text("input: [4]\nlayers:\n  - {type: fancy, out_shape: [4], name: f}\n  - {type: relu}\n")
    assert main(["count", str(path)]) == 0
    out = capsys.readouterr().out
    assert "f (!)" in out
    assert out.rstrip().endswith("INCOMPLETE: 1 layer(s) not fully counted (marked (!)): fancy x1; the TOs are too "
                                 "low\n"
                                 "  f (fancy): unknown layer type")


def test_cli_zoo_with_seq(capsys):
    assert main(["count", "zoo:gpt2", "--seq", "8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == 124_439_808 and data["profile"] == "cmos-generic"


def test_json_spec_with_a_key_twice_is_refused(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"input": [4], "layers": [{"type": "linear", "out": 2, "out": 3}]}')
    with pytest.raises(ModelError, match=r"^.*m\.json: invalid JSON: duplicate key 'out'$"):
        opcount.load_model(str(path))


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("base: &b {type: linear, out: 8}\ninput: [4]\nlayers:\n- {<<: *b, out: 2}\n")
    with pytest.raises(ModelError, match=r"unknown field 'base'"):
        opcount.load_model(str(path))
    path.write_text("input: [4]\nlayers:\n- &b {type: linear, out: 8, name: a}\n- {<<: *b, out: 2, name: c}\n")
    assert opcount.load_model(str(path)).layers[1].out_shape == (2,)


def test_no_grad_layer_stops_the_gradient():
    from .test_opcount_formulas import FAKE
    layers = [{"type": "linear", "out": 4}, {"type": "shape_op", "op": "detach", "no_grad": True},
              {"type": "linear", "out": 2}]
    model = opcount.load_model({"input": [3], "layers": layers})
    result = opcount.count_model(model, FAKE, phase="training", batch=2)
    backward = {layer.name: layer.stages["backward"] for layer in result.layers}
    # the first linear's result is read by the detach only: no backward; the last one computes its
    # weight (2*4*2 mul, 1*8 add) and bias (1*2 add) gradients and no input gradient
    assert not any(backward["linear_0"].values()) and not any(backward["shape_op_1"].values())
    assert backward["linear_2"]["mul"] == 16 and backward["linear_2"]["add"] == 10
    with pytest.raises(opcount.ModelError, match=r"layer 'linear_0' \(linear\): 'no_grad' must be true or false"):
        opcount.load_model({"input": [3], "layers": [{"type": "linear", "out": 4, "no_grad": "yes"}]})
