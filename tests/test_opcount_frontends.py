"""opcount frontends beyond the YAML spec: Hugging Face config.json, ONNX (hand-built graphs and
graphs exported by torch) and torch.fx; the same model through each gives the same counts."""
import os
import warnings

import numpy as np
import pytest

import opcount
from hardware_profiles import load
from opcount import ModelError
from tosim.cli import main

HF = os.path.join(os.path.dirname(__file__), "fixtures", "models", "hf")


@pytest.fixture(scope="module")
def profiles():
    return load("cmos-generic"), load("li2022")


# --- Hugging Face configs ---------------------------------------------------------------------

@pytest.mark.parametrize("name, params, zoo", [
    ("gpt2-config.json", 124_439_808, "gpt2"),
    ("llama-2-7b-config.json", 6_738_415_616, "llama2-7b"),
    ("mistral-7b-config.json", 7_241_732_096, None),
    ("bert-base-uncased-config.json", 109_482_240, "bert-base"),
])
def test_hf_configs(profiles, name, params, zoo):
    model = opcount.load_model(os.path.join(HF, name), seq=32)
    assert model.params == params and model.input_shape == (32,)
    if zoo is not None:
        same = opcount.load_model(f"zoo:{zoo}", seq=32)
        a = opcount.count_model(model, profiles[0], phase="training", batch=2)
        b = opcount.count_model(same, profiles[0], phase="training", batch=2)
        assert a.totals == b.totals and a.macs == b.macs


def test_hf_config_defaults_and_errors(tmp_path):
    assert opcount.load_model(os.path.join(HF, "gpt2-config.json")).input_shape == (1024,)
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "xlnet"}')
    with pytest.raises(ModelError, match=r"^.*config\.json: unsupported model_type 'xlnet' \(known: gpt2, llama, "
                                         r"mistral, mixtral, qwen2, bert, t5\)$"):
        opcount.load_model(str(bad))
    bad.write_text('{"model_type": "llama", "hidden_size": 64}')
    with pytest.raises(ModelError, match=r"^.*config\.json: missing field 'num_attention_heads'$"):
        opcount.load_model(str(bad))
    bad.write_text('{"model_type": "gpt2", "n_embd": -1}')
    with pytest.raises(ModelError, match=r"^.*config\.json: 'n_embd' must be a positive integer, not -1$"):
        opcount.load_model(str(bad))


@pytest.mark.parametrize("config, seq, told", [
    ('{"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "vocab_size": 10, "n_positions": 8}', 9,
     "'n_positions' is 8"),
    ('{"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "vocab_size": 10, "n_ctx": 8}', 9,
     "'n_ctx' is 8"),
    ('{"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "vocab_size": 10}', 1025,
     "'n_positions' is 1024 (the default)"),
    ('{"model_type": "llama", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, '
     '"intermediate_size": 8, "max_position_embeddings": 8}', 9, "'max_position_embeddings' is 8"),
    ('{"model_type": "bert"}', 513, "'max_position_embeddings' is 512 (the default)"),
])
def test_hf_seq_past_the_maximum_positions_names_the_field(tmp_path, capsys, config, seq, told):
    path = tmp_path / "config.json"
    path.write_text(config)
    message = f"{path}: sequence length {seq} is longer than the model's maximum positions: {told}"
    with pytest.raises(ModelError) as info:
        opcount.load_model(str(path), seq=seq)
    assert str(info.value) == message
    assert main(["count", str(path), "--seq", str(seq)]) == 2
    assert capsys.readouterr().err == f"tosim: error: {message}\n"
    assert opcount.load_model(str(path), seq=seq - 1).input_shape == (seq - 1,)


def test_cli_hf_config(capsys):
    assert main(["count", os.path.join(HF, "gpt2-config.json"), "--seq", "4"]) == 0
    assert "params 124,439,808" in capsys.readouterr().out


# --- ONNX, hand-built -------------------------------------------------------------------------

def _onnx_graph(path, with_value_info=True):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((6, 4)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(6, np.float32), "b")
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="act"),
             helper.make_node("FancyOp", ["r"], ["f"], name="fancy", domain="custom"),
             helper.make_node("ReduceSum", ["f"], ["y"], name="total", keepdims=1, axes=[1])]
    value_info = [helper.make_tensor_value_info("f", TensorProto.FLOAT, ["N", 6])] if with_value_info else []
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])], [w, b],
                              value_info=value_info)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11), helper.make_opsetid("custom", 1)])
    onnx.save(model, str(path))


def test_onnx_hand_built_graph_unknown_op_is_incomplete(tmp_path, profiles):
    path = tmp_path / "tiny.onnx"
    _onnx_graph(path)
    with pytest.warns(opcount.IncompleteModelWarning, match=r"tiny\.onnx: the count is incomplete: fancy \(FancyOp\): "
                      r"no formula for op custom\.FancyOp \(a custom domain\)$"):
        model = opcount.load_model(str(path))
    assert [(layer.name, layer.type, layer.out_shape) for layer in model.layers] == [
        ("fc", "linear", (6,)), ("act", "relu", (6,)), ("fancy", "FancyOp", (6,)), ("total", "reduce", (1,))]
    assert model.params == 30
    result = opcount.count_model(model, profiles[0], batch=2)
    assert result.incomplete == [{"layer": "fancy", "type": "FancyOp",
                                  "reason": "no formula for op custom.FancyOp (a custom domain)"}]
    assert result.layers[-1].stages["forward"]["add"] == 2 * 5                # 6 values summed per sample


def test_onnx_errors(tmp_path, capsys):
    path = tmp_path / "tiny.onnx"
    _onnx_graph(path, with_value_info=False)
    with pytest.raises(ModelError, match=r"^.*tiny\.onnx: layer 'fancy' \(FancyOp\): ONNX shape inference does "
                                         r"not know op custom\.FancyOp: the graph must give the shape of its "
                                         r"output 'f' \(value_info\)$"):
        opcount.load_model(str(path))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage\xff\xff")
    with pytest.raises(ModelError, match=r"^.*corrupt\.onnx: corrupt ONNX file: .+$"):
        opcount.load_model(str(corrupt))
    assert main(["count", str(corrupt)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tosim: error: ") and "corrupt ONNX file" in err and err.count("\n") == 1


def _onnx_one_node(path, node, x_shape, weight):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones(weight, np.float32), "w")
    graph = helper.make_graph([node], "one", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.mark.parametrize("node, x_shape, weight, message", [
    (("MatMul", ["x", "w"], ["y"]), ["N", 5], (4, 8),
     "layer 'mm' (MatMul): weight 'w' of shape [4, 8] needs 4 input features, but input 'x' has per-sample "
     "shape [5] (5 input features)"),
    (("Gemm", ["x", "w"], ["y"], {"transB": 1}), [1, 4], (4, 8),
     "layer 'mm' (Gemm): weight 'w' of shape [4, 8] needs 8 input features, but input 'x' has per-sample "
     "shape [4] (4 input features)"),
    (("Gemm", ["x", "w"], ["y"]), [1, 3], (4, 8),
     "layer 'mm' (Gemm): weight 'w' of shape [4, 8] needs 4 input features, but input 'x' has per-sample "
     "shape [3] (3 input features)"),
    (("Conv", ["x", "w"], ["y"]), [1, 5, 8, 8], (4, 3, 3, 3),
     "layer 'mm' (Conv): weight 'w' of shape [4, 3, 3, 3] needs 3 input channels, but input 'x' has per-sample "
     "shape [5, 8, 8] (5 input channels)"),
    (("Conv", ["x", "w"], ["y"], {"group": 2}), [1, 4, 8, 8], (4, 3, 3, 3),
     "layer 'mm' (Conv): weight 'w' of shape [4, 3, 3, 3] needs 6 input channels, but input 'x' has per-sample "
     "shape [4, 8, 8] (4 input channels)"),
    (("ConvTranspose", ["x", "w"], ["y"]), [1, 5, 8, 8], (4, 3, 3, 3),
     "layer 'mm' (ConvTranspose): weight 'w' of shape [4, 3, 3, 3] needs 4 input channels, but input 'x' has "
     "per-sample shape [5, 8, 8] (5 input channels)"),
])
def test_onnx_weight_that_does_not_fit_the_input(tmp_path, capsys, node, x_shape, weight, message):
    from onnx import helper
    op, inputs, outputs, *attrs = node
    path = tmp_path / "bad.onnx"
    _onnx_one_node(path, helper.make_node(op, inputs, outputs, name="mm", **(attrs[0] if attrs else {})), x_shape,
                   weight)
    with pytest.raises(ModelError) as info:
        opcount.load_model(str(path))
    assert str(info.value) == f"{path}: {message}"
    assert main(["count", str(path)]) == 2
    assert capsys.readouterr().err == f"tosim: error: {path}: {message}\n"


def test_onnx_weights_that_fit_are_counted(tmp_path):
    from onnx import helper
    path = tmp_path / "ok.onnx"
    _onnx_one_node(path, helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1), ["N", 8], (4, 8))
    assert opcount.load_model(str(path)).params == 32
    _onnx_one_node(path, helper.make_node("Conv", ["x", "w"], ["y"], name="c", group=2), [1, 6, 8, 8], (4, 3, 3, 3))
    assert opcount.load_model(str(path)).params == 108


# --- torch: ONNX export and fx against the YAML spec ------------------------------------------

SPEC = {"name": "block", "input": [3, 8, 8], "layers": [
    {"type": "conv2d", "out": 4, "kernel": 3, "padding": 1, "name": "c1"},
    {"type": "relu", "name": "r"},
    {"type": "conv2d", "out": 4, "kernel": 3, "padding": 1},
    {"type": "add", "inputs": ["conv2d_2", "r"]},
    {"type": "maxpool2d", "kernel": 2},
    {"type": "flatten"},
    {"type": "linear", "out": 8},
    {"type": "gelu"},
    {"type": "layernorm"},
    {"type": "gelu", "approximate": "tanh"},
    {"type": "silu"},
    {"type": "linear", "out": 3},
    {"type": "softmax"},
]}


def _torch_block():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
            self.pool, self.fc, self.ln, self.fc2 = nn.MaxPool2d(2), nn.Linear(64, 8), nn.LayerNorm(8), nn.Linear(8, 3)
            self.g, self.gt, self.si = nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU()

        def forward(self, x):
            a = torch.relu(self.c1(x))
            b = self.pool(self.c2(a) + a)
            h = self.si(self.gt(self.ln(self.g(self.fc(torch.flatten(b, 1))))))
            return torch.softmax(self.fc2(h), -1)

    torch.manual_seed(0)
    return torch, Block().eval()


def _export(torch, module, x, path, opset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=opset)


@pytest.mark.parametrize("phase, batch", [("inference", 1), ("training", 4)])
def test_yaml_onnx_and_torch_agree(tmp_path, profiles, phase, batch):
    torch, block = _torch_block()
    x = torch.randn(1, 3, 8, 8)
    path = tmp_path / "block.onnx"
    _export(torch, block, x, path, 17)
    models = {"yaml": opcount.load_model(SPEC), "onnx": opcount.load_model(str(path)),
              "torch": opcount.load_torch(block, x)}
    params = sum(p.numel() for p in block.parameters())
    for name, model in models.items():
        assert model.params == params, name
    onnx_types = [layer.type for layer in models["onnx"].layers]
    assert onnx_types.count("gelu") == 2 and "silu" in onnx_types and "elementwise" not in onnx_types
    for profile in profiles:
        results = {name: opcount.count_model(m, profile, phase=phase, batch=batch) for name, m in models.items()}
        assert results["onnx"].totals == results["yaml"].totals == results["torch"].totals, profile.name
        assert results["onnx"].macs == results["yaml"].macs == results["torch"].macs
        assert all(r.complete for r in results.values())


def test_onnx_opset13_decomposed_layernorm(tmp_path, profiles):
    torch, block = _torch_block()
    x = torch.randn(1, 3, 8, 8)
    path = tmp_path / "block13.onnx"
    _export(torch, block, x, path, 13)
    model = opcount.load_model(str(path))
    types = [layer.type for layer in model.layers]
    assert "layernorm" not in types and types.count("reduce") == 2 and types.count("gelu") == 2
    result = opcount.count_model(model, profiles[1])
    assert result.complete
    # the decomposed layernorm divides by the standard deviation instead of multiplying by
    # rsqrt: same adds as the fused layer, 8 divs and 1 sqrt where the fused one has 1 rsqrt
    yaml = opcount.count_model(opcount.load_model(SPEC), profiles[1])
    assert result.totals["forward"]["add"] == yaml.totals["forward"]["add"]
    assert model.params == sum(p.numel() for p in block.parameters())


def test_torch_fx_unknown_module_is_incomplete(profiles):
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Odd(nn.Module):
        def forward(self, x):
            return x.cumprod(-1)

    net = nn.Sequential(nn.Linear(4, 4), Odd(), nn.ReLU())
    with pytest.warns(opcount.IncompleteModelWarning, match=r"1\.cumprod \(cumprod\): no formula for cumprod"):
        model = opcount.load_torch(net, torch.randn(2, 4))
    result = opcount.count_model(model, profiles[0])
    assert [layer.type for layer in model.layers] == ["linear", "cumprod", "relu"]
    assert result.incomplete == [{"layer": "1.cumprod", "type": "cumprod", "reason": "no formula for cumprod"}]
