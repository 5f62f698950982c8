"""Operand streams drawn from models (``tosim activity --from-model``, tosim._model_streams)
and the 8-bit float encodings of hwlib.activity's streams."""
import json

import numpy as np
import pytest

import hardware_profiles as hp
from hwlib import activity
from tosim import _model_streams as ms
from tosim.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _tiny_onnx(path):
    """x [3, 8] -> Gemm (W1 4x8, transB) -> Relu -> MatMul (W2 4x2) -> y."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(1)
    w1 = (rng.standard_normal((4, 8)) * 0.3).astype(np.float32)
    b1 = np.full(4, -0.1, np.float32)
    w2 = (rng.standard_normal((4, 2)) * 0.3).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], transB=1, name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "W2"], ["y"], name="fc2")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])],
                              [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(b1, "B1"),
                               numpy_helper.from_array(w2, "W2")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return w1, b1, w2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("streams") / "tiny.onnx"
    w1, b1, w2 = _tiny_onnx(path)
    x = np.random.default_rng(7).standard_normal((3, 8)).astype(np.float32)
    return {"path": str(path), "w1": w1, "b1": b1, "w2": w2, "x": x}


def _check_mac_order(layer, fmt):
    """The adder sees (running sum, product): sums start at 0 per dot product and products are
    the multiplier's results, both rounded to the format."""
    products = activity.fp_round(layer.mul_a * layer.mul_b, fmt)
    assert np.array_equal(layer.add_b, products)
    following = activity.fp_round(layer.add_a[:-1] + layer.add_b[:-1], fmt)
    restart = layer.add_a[1:] == 0
    assert np.all(restart | (layer.add_a[1:] == following))


def test_onnx_streams_are_the_layers_real_operands(tiny):
    streams = ms.streams_from_onnx(tiny["path"], "fp16", vectors=40, seed=3, inputs=tiny["x"])
    assert [(l.name, l.type, l.macs) for l in streams.layers] == [("fc1", "Gemm", 96), ("fc2", "MatMul", 24)]
    relu = np.maximum(tiny["x"].astype(np.float64) @ tiny["w1"].T.astype(np.float64) + tiny["b1"], 0)
    fc2 = streams.layers[1]
    assert fc2.zeros == pytest.approx(float(np.mean(relu == 0)))
    assert 0 < fc2.zeros < 1 and streams.layers[0].zeros == 0
    # each run of 4 operations is one dot product: a column of W2 against one sample's ReLU output
    weights = activity.fp_round(tiny["w2"].T, "fp16")
    acts = activity.fp_round(relu, "fp16")
    for start in range(0, 40, 4):
        a, b = fc2.mul_a[start:start + 4], fc2.mul_b[start:start + 4]
        assert any(np.array_equal(a, row) for row in weights)
        assert any(np.array_equal(b, row) for row in acts)
    for layer in streams.layers:
        assert len(layer.mul_a) == 40
        _check_mac_order(layer, "fp16")
    assert streams.source == "onnx run (onnx.reference) on x from the input file"
    generated = ms.streams_from_onnx(tiny["path"], "fp16", vectors=8, seed=3)
    assert generated.source == "onnx run (onnx.reference) on x [3, 8] seeded N(0, 1)"


def test_torch_conv_streams_are_dot_products_of_the_output():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False).double()
    x = torch.randn(1, 4, 7, 7, dtype=torch.float64)
    net = torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(6 * 16, 3).double())
    streams = ms.streams_from_torch(net, x, "fp64", vectors=18 * 5, seed=1)
    layer = streams.layers[0]
    assert layer.macs == 6 * 4 * 4 * (2 * 3 * 3)        # outputs x positions x taps per group
    outputs = conv(x).detach().numpy().ravel()
    for start in range(0, 90, 18):                      # one dot product: 2 channels x 3 x 3 taps
        dot = float(np.dot(layer.mul_a[start:start + 18], layer.mul_b[start:start + 18]))
        assert np.isclose(outputs, dot, rtol=1e-12, atol=1e-12).any()
    linear = streams.layers[1]
    relu = np.maximum(outputs, 0)
    assert linear.macs == 96 * 3 and linear.zeros == pytest.approx(float(np.mean(relu == 0)))
    _check_mac_order(linear, "fp64")


def test_synthetic_streams_follow_the_layers():
    import opcount
    spec = {"name": "m", "input": [64], "layers": [{"type": "linear", "out": 32}, {"type": "relu"},
                                                   {"type": "dropout"}, {"type": "linear", "out": 8}]}
    streams = ms.streams_from_spec(opcount.load_model(spec), "fp32", vectors=2048, seed=0)
    first, second = streams.layers
    assert (first.macs, second.macs) == (64 * 32, 32 * 8)
    assert first.zeros == 0 and second.zeros == pytest.approx(0.5, abs=0.05)
    assert np.std(first.mul_a) == pytest.approx(1 / np.sqrt(3 * 64), rel=0.1)
    assert np.std(second.mul_a) == pytest.approx(1 / np.sqrt(3 * 32), rel=0.1)
    assert "synthetic" in streams.source


@pytest.fixture(scope="module")
def priced(tiny):
    profile = hp.load("cmos-generic")
    streams = ms.streams_from_onnx(tiny["path"], "fp16", vectors=64, seed=0, inputs=tiny["x"])
    return profile, streams, ms.model_activity(streams, profile)


def test_model_activity_prices_each_layer_and_weights_by_macs(priced):
    profile, streams, result = priced
    fc2 = streams.layers[1]
    direct = activity.fp_stream_activity("mul", "fp16", profile, fc2.mul_a, fc2.mul_b)
    assert result.layers[1]["mul"].energy_fj_per_op == direct.energy_fj_per_op
    expected = (96 * result.layers[0]["mul"].energy_fj_per_op + 24 * result.layers[1]["mul"].energy_fj_per_op) / 120
    assert result.mul_fj == pytest.approx(expected, rel=1e-12) and result.covered_macs == 120
    assert result.reference["mul"].distribution == "normal"


def test_from_model_cli(tiny, priced, capsys, tmp_path):
    np.save(tmp_path / "x.npy", tiny["x"])
    status, out, err = run(capsys, "activity", "--from-model", tiny["path"], "--input", str(tmp_path / "x.npy"),
                           "--formats", "fp16", "--vectors", "64", "--json")
    assert status == 0
    record = json.loads(out)
    assert record["mul_fj_per_op"] == priced[2].mul_fj and record["covered_macs"] == 120
    assert record["layers"][1]["zeros"] == priced[1].layers[1].zeros
    status, out, _ = run(capsys, "activity", "--from-model", tiny["path"], "--input", str(tmp_path / "x.npy"),
                         "--formats", "fp16", "--vectors", "64")
    assert status == 0 and "model (MAC-weighted)" in out and "estimate" in out


@pytest.mark.parametrize("argv, message", [
    (["--from-model", "nothing.onnx"], "--from-model nothing.onnx"),
    (["--from-model", "zoo:lenet5", "--widths", "8"], "--widths does not go with --from-model"),
    (["--from-model", "zoo:lenet5", "--formats", "fp16", "fp32"], "one format"),
    (["--input", "x.npy"], "--input goes with --from-model"),
    (["--from-model", "zoo:lenet5", "--dist", "relu"], "--dist does not go with --from-model"),
    (["--from-model", "zoo:lenet5", "--input", "missing.npy"], "--input missing.npy"),
    (["--save-streams", "s.npz"], "--save-streams goes with --from-model"),
    (["--from-model", "zoo:lenet5", "--save-streams", "s.npy"], "--save-streams s.npy: the extension must be .npz"),
])
def test_from_model_bad_arguments(capsys, argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, "activity", *argv)
    assert status == 2 and err.startswith("tosim: error: ") and message in err and err.count("\n") == 1


TORCH_FILE = """\
import torch
from torch import nn

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
not_a_module = 3


def build():
    torch.manual_seed(1)
    return net, torch.randn(5, 8)


def broken():
    raise RuntimeError("no weights here")
"""


@pytest.fixture
def torch_file(tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "net.py"
    path.write_text(TORCH_FILE)
    return path


def test_from_model_torch_factory_cli(torch_file, tmp_path, capsys):
    """FILE.py:NAME runs the file and the module on the factory's example input, or on --input:
    the same figures as the Python API on that module and input."""
    import runpy

    import torch
    namespace = runpy.run_path(str(torch_file))
    net, example = namespace["build"]()
    profile = hp.load("cmos-generic")
    direct = ms.model_activity(ms.streams_from_torch(net, example, "fp16", vectors=64), profile)
    status, out, err = run(capsys, "activity", "--from-model", f"{torch_file}:build", "--formats", "fp16",
                           "--vectors", "64", "--json")
    assert status == 0, err
    record = json.loads(out)
    assert record["model"] == "build" and record["source"] == f"torch run ({torch_file}:build) on its example input"
    assert [layer["layer"] for layer in record["layers"]] == ["0", "2"]
    assert record["mul_fj_per_op"] == direct.mul_fj and record["add_fj_per_op"] == direct.add_fj
    assert record["layers"][1]["zeros"] == direct.layers[1]["zeros"] > 0       # after the ReLU
    x = np.random.default_rng(2).standard_normal((4, 8))                       # float64 on file
    np.save(tmp_path / "x.npy", x)
    status, out, err = run(capsys, "activity", "--from-model", f"{torch_file}:net", "--input",
                           str(tmp_path / "x.npy"), "--formats", "fp16", "--vectors", "64", "--json")
    assert status == 0, err
    given = ms.model_activity(ms.streams_from_torch(net, torch.from_numpy(x).float(), "fp16", vectors=64), profile)
    record = json.loads(out)
    assert record["source"].endswith("on the input file") and record["layers"][0]["macs"] == 4 * 8 * 6
    assert record["mul_fj_per_op"] == given.mul_fj


@pytest.mark.parametrize("suffix, message", [
    (":net", "no example input for the module net: give an input array (--input F.npy"),
    (":nett", "no name 'nett' in "),
    (":not_a_module", "not_a_module is a int, not a torch.nn.Module"),
    (":broken", "broken() failed: RuntimeError: no weights here"),
])
def test_from_model_torch_factory_errors(torch_file, capsys, suffix, message):
    status, out, err = run(capsys, "activity", "--from-model", f"{torch_file}{suffix}", "--formats", "fp16")
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"tosim: error: --from-model {torch_file}{suffix}: ") and message in err


def test_from_model_torch_needs_torch_and_a_python_file(tmp_path, capsys, monkeypatch):
    import sys
    (tmp_path / "net.py").write_text("net = None\n")
    (tmp_path / "w.pt").write_bytes(b"not read")
    status, _, err = run(capsys, "activity", "--from-model", str(tmp_path / "w.pt"))
    assert status == 2 and "a saved PyTorch file is not read" in err and "FILE.py:NAME" in err
    monkeypatch.setitem(sys.modules, "torch", None)                 # as if torch were not installed
    status, _, err = run(capsys, "activity", "--from-model", f"{tmp_path / 'net.py'}:net")
    assert status == 2 and err.count("\n") == 1
    assert "needs PyTorch, which is not installed (pip install 'tosim[torch]')" in err


# --- saved streams: streams:FILE in a profile's power.distribution ---------------------------

STREAMS_PROFILE = """\
extends: cmos-generic
name: saved-streams
power:
  energy: activity
  vectors: 64
  distribution: {default: normal, mul: "streams:tiny.npz", add: "streams:tiny.npz#linear"}
"""


def test_saved_streams_price_the_score(tiny, priced, tmp_path, capsys, monkeypatch):
    """--save-streams writes each layer's first operations in proportion to its MACs; a profile
    naming the file prices mul and add on exactly those operands in tosim score."""
    import tosim
    np.save(tmp_path / "x.npy", tiny["x"])
    status, _, err = run(capsys, "activity", "--from-model", tiny["path"], "--input", str(tmp_path / "x.npy"),
                         "--formats", "fp16", "--vectors", "64", "--json", "--save-streams",
                         str(tmp_path / "tiny.npz"))
    assert status == 0 and "wrote 8 operand streams" in err
    streams = priced[1]                                  # the same model, input, length and seed
    with np.load(tmp_path / "tiny.npz") as saved:
        # fc1 has 96 of the 120 MACs: 51 of the 64 operations, fc2 the other 13
        for name in ("mul_a", "mul_b", "add_a", "add_b"):
            expected = np.concatenate([getattr(streams.layers[0], name)[:51], getattr(streams.layers[1], name)[:13]])
            assert np.array_equal(saved[name], expected) and np.array_equal(saved[f"linear.{name}"], expected)
        mul_a, mul_b, add_a, add_b = (saved[n] for n in ("mul_a", "mul_b", "add_a", "add_b"))
        assert str(saved["model"]) == "tiny.onnx" and str(saved["format"]) == "fp16"
    profile_path = tmp_path / "saved.yaml"
    profile_path.write_text(STREAMS_PROFILE)
    profile = hp.load(str(profile_path))
    assert profile.power["distribution"]["mul"] == f"streams:{tmp_path / 'tiny.npz'}"     # the profile's folder
    monkeypatch.chdir("/")
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(tmp_path / "cache"))
    model = {"name": "lin", "input": [8], "format": "fp16", "layers": [{"type": "linear", "out": 4}]}
    result = tosim.score(model, str(profile_path))
    mul = activity.fp_stream_activity("mul", "fp16", profile, mul_a, mul_b)
    add = activity.fp_stream_activity("add", "fp16", profile, add_a, add_b)
    assert result.counts["mul"] == 32 and result.counts["add"] == 32
    assert result.switching_j == pytest.approx(32e-15 * (mul.energy_fj_per_op + add.energy_fj_per_op), rel=1e-12)
    assert "fp16 mul (booth_wallace): streams:tiny.npz (saved from a model) operands" in result.switching_basis
    assert "fp16 add (carry_lookahead): streams:tiny.npz#linear (saved from a model)" in result.switching_basis
    again = activity.op_energies(profile, [("mul", "fp16")])[("mul", "fp16")]
    assert again.cached and again.energy_fj_per_op == mul.energy_fj_per_op


@pytest.mark.parametrize("dist, where, message", [
    ('{sub: "streams:s.npz"}', "power.distribution.sub", "holds the operands of mul and add"),
    ('"streams:s.npz"', "power.distribution", "holds the operands of mul and add"),
    ('{mul: ["streams:s.npz", normal]}', "power.distribution.mul[0]", "not in a pair"),
    ('{layers: {linear: {add: "streams:"}}}', "power.distribution.layers.linear.add", "needs a file"),
    ("{sub: model}", "power.distribution.sub", "drawn for mul and add"),
    ("model", "power.distribution", "drawn for mul and add"),
    ("{mul: [model, normal]}", "power.distribution.mul[0]", "not in a pair"),
    ('{mul: "model#"}', "power.distribution.mul", "needs a layer type"),
])
def test_bad_streams_and_model_operand_entries(tmp_path, dist, where, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"extends: cmos-generic\npower:\n  distribution: {dist}\n")
    with pytest.raises(hp.ProfileError) as info:
        hp.load(str(path))
    assert str(info.value).startswith(f"{path}:3: {where}: ") and message in str(info.value)


def test_unreadable_streams_file_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "p.yaml").write_text(STREAMS_PROFILE)
    (tmp_path / "m.yaml").write_text("name: lin\ninput: [8]\nformat: fp16\nlayers: [{type: linear, out: 4}]\n")
    status, _, err = run(capsys, "score", str(tmp_path / "m.yaml"), "--profile", str(tmp_path / "p.yaml"))
    assert status == 2 and err.count("\n") == 1
    assert err.startswith(f"tosim: error: power.distribution: streams file {tmp_path / 'tiny.npz'}: cannot read")
    np.savez(tmp_path / "tiny.npz", mul_a=np.zeros(4), mul_b=np.zeros(4))
    status, _, err = run(capsys, "score", str(tmp_path / "m.yaml"), "--profile", str(tmp_path / "p.yaml"))
    assert status == 2 and "no add operands of 'linear' layers (layer types in the file: none)" in err


def test_fp8_encodings_match_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(4000) * s for s in (1e-3, 0.05, 1.0, 30.0)]
                       + [np.array([0.0, -0.0, 448.0, 1e-9, -2.0 ** -9, 240.0, 57344.0, 61439.0, 61440.0, 1e6])])
    e5m2 = np.array(activity.fp_encode(x, "fp8_e5m2"), dtype=np.uint8)
    assert np.array_equal(e5m2, x.astype(ml_dtypes.float8_e5m2).view(np.uint8))
    inside = np.abs(x) <= 448                           # e4m3 saturates beyond (ml_dtypes gives NaN)
    e4m3 = np.array(activity.fp_encode(x[inside], "fp8_e4m3"), dtype=np.uint8)
    assert np.array_equal(e4m3, x[inside].astype(ml_dtypes.float8_e4m3fn).view(np.uint8))
    assert activity.fp_encode([1e6, -1e6], "fp8_e4m3") == [0x7E, 0xFE]
    assert np.array_equal(activity.fp_round(x[inside], "fp8_e4m3"),
                          x[inside].astype(ml_dtypes.float8_e4m3fn).astype(np.float64))


# --- model operands: mul: model in a profile's power.distribution (tosim score) ------------------

def _operands_profile(folder, name, dist):
    path = folder / f"{name}.yaml"
    path.write_text(f"extends: cmos-generic\nname: {name}\npower:\n  energy: activity\n  vectors: 16\n"
                    f"  distribution: {dist}\n")
    return str(path)


@pytest.fixture(scope="module")
def operands_spec(tmp_path_factory):
    folder = tmp_path_factory.mktemp("operands")
    spec = folder / "mlp.yaml"
    spec.write_text("name: mlp\ninput: [8]\nformat: fp16\nlayers: [{type: linear, out: 4}, {type: linear, out: 2}]\n")
    return folder, str(spec)


def test_model_operands_equal_the_saved_streams_of_a_spec(operands_spec, monkeypatch):
    """mul: model draws the operands of the scored spec itself, exactly as --save-streams saves them
    (synthetic weights, said in the assumptions): the same switching joules, bit for bit."""
    import tosim
    folder, spec = operands_spec
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(folder / "cache"))
    ms.save_streams(ms.model_streams(spec, "fp16", vectors=16, seed=0), str(folder / "mlp.npz"))
    own = tosim.score(spec, _operands_profile(folder, "own", "{default: zeros, mul: model, add: model}"),
                      per_layer=True)
    saved = tosim.score(spec, _operands_profile(folder, "saved", '{default: zeros, mul: "streams:mlp.npz", '
                                                                 'add: "streams:mlp.npz"}'), per_layer=True)
    assert own.switching_j == saved.switching_j > 0
    assert [layer.switching_j for layer in own.layers] == [layer.switching_j for layer in saved.layers]
    assert "fp16 mul (booth_wallace): model (drawn from the scored model) operands" in own.switching_basis
    assert [a for a in own.assumptions if "switching" in a] == [
        "switching energy: mul and add operands drawn from the model itself (fp16, 16 operations, seed 0): "
        "synthetic per-layer distributions (weights N(0, 1/(3 fan_in)); activations relu:zeros=0.5 after a ReLU, "
        "else N(0, 1))"]


def test_model_operands_of_an_onnx_file_are_its_real_ones(tiny, tmp_path, monkeypatch):
    """An ONNX file is run (its initializers, generated input): the same operands as
    activity --from-model saves; model#linear and model under layers: take the linear layers'."""
    import tosim
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(tmp_path / "cache"))
    ms.save_streams(ms.model_streams(tiny["path"], "fp16", vectors=16, seed=0), str(tmp_path / "tiny.npz"))
    own = tosim.score(tiny["path"], _operands_profile(
        tmp_path, "own", '{default: zeros, mul: model, layers: {linear: {add: model}}}'), format="fp16")
    saved = tosim.score(tiny["path"], _operands_profile(
        tmp_path, "saved", '{default: zeros, mul: "streams:tiny.npz", add: "streams:tiny.npz#linear"}'),
        format="fp16")
    assert own.switching_j == saved.switching_j > 0
    assert any(a.startswith("switching energy: mul and add operands drawn from the model itself (fp16, 16 "
                            "operations, seed 0): onnx run (onnx.reference) on x [3, 8] seeded N(0, 1)")
               for a in own.assumptions)
    assert "fp16 add (carry_lookahead) in linear layers: model#linear (drawn from the scored model) operands" \
        in own.switching_basis


def test_a_model_without_operands_is_one_line(operands_spec, tmp_path, capsys, monkeypatch):
    folder, spec = operands_spec
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(folder / "cache"))
    # multiplies (a normalization) but no matrix layer to draw them from: refused before any simulation
    (tmp_path / "pool.yaml").write_text("name: pool\ninput: [4, 8, 8]\nformat: fp16\n"
                                        "layers: [{type: batchnorm}, {type: maxpool2d, kernel: 2}]\n")
    profile = _operands_profile(tmp_path, "p", "{default: zeros, mul: model}")
    status, _, err = run(capsys, "score", str(tmp_path / "pool.yaml"), "--profile", profile)
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith(f"tosim: error: {tmp_path / 'pool.yaml'}: power.distribution: model: cannot draw the mul "
                          "and add operands from the model: pool: no linear, MatMul/Gemm or 2-D convolution layer")
    status, _, err = run(capsys, "score", spec, "--profile",
                         _operands_profile(tmp_path, "q", '{default: zeros, mul: "model#conv2d"}'))
    assert status == 2 and err.count("\n") == 1
    assert "no mul operands of 'conv2d' layers (layer types with operands: linear)" in err


def test_explore_refuses_model_operands(tmp_path):
    from tosim import ScoreError
    from tosim._explore import explore
    with pytest.raises(ScoreError, match="draws mul/add operands from the scored model"):
        explore(_operands_profile(tmp_path, "p", "{mul: model}"), ["ripple_carry"], ["array"], ["fp16"])


def test_each_model_of_a_batch_on_its_own_operands(operands_spec, tmp_path, capsys, monkeypatch):
    folder, spec = operands_spec
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(folder / "cache"))
    other = tmp_path / "wide.yaml"
    other.write_text("name: wide\ninput: [12]\nformat: fp16\nlayers: [{type: linear, out: 3}]\n")
    profile = _operands_profile(tmp_path, "own", "{default: zeros, mul: model, add: model}")
    status, out, _ = run(capsys, "score", spec, str(other), "--profile", profile, "--json")
    rows = json.loads(out)
    assert status == 0 and [r["name"] for r in rows] == ["mlp", "wide"]
    muls = [next(e for e in r["switching"]["ops"] if e["op"] == "mul") for r in rows]
    assert muls[0]["energy_fj_per_op"] != muls[1]["energy_fj_per_op"]
    status, out, _ = run(capsys, "score", spec, str(other), "--profile", profile)
    assert status == 0 and "switching J (mlp): estimate" in out and "switching J (wide): estimate" in out


def test_model_operands_of_a_torch_module_are_its_own(operands_spec, monkeypatch):
    """tosim.score(module, example_inputs=x) draws from the module run on x (its weights), as
    activity --from-model FILE.py:NAME saves them."""
    torch = pytest.importorskip("torch")
    import tosim
    folder, _ = operands_spec
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(folder / "cache"))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).eval()
    x = torch.randn(3, 8)
    ms.save_streams(ms.streams_from_torch(net, x, "fp16", vectors=16, seed=0), str(folder / "net.npz"))
    own = tosim.score(net, _operands_profile(folder, "own", "{default: zeros, mul: model, add: model}"),
                      example_inputs=x, format="fp16")
    saved = tosim.score(net, _operands_profile(folder, "saved", '{default: zeros, mul: "streams:net.npz", '
                                                                 'add: "streams:net.npz"}'), example_inputs=x,
                        format="fp16")
    assert own.switching_j == saved.switching_j > 0
    assert any("operands drawn from the model itself (fp16, 16 operations, seed 0): torch run on the example input"
               in a for a in own.assumptions)
