"""tosim fit --model end to end: a synthetic device recovered, written to a profile, scored back;
the constant comparison feature; CLI errors; the energy_model device schema; the built-in device."""
import json
import re

import numpy as np
import pytest

import calibrate
import hardware_profiles
import opcount
from tosim._device_model import layer_table
from tosim.cli import main

TRUTH = calibrate.EnergyModel(
    terms=("ops", "memory", "calls", "static"),
    op_j={"fp32": {"add": 2e-12, "sub": 2e-12, "mul": 5e-12, "div": 3e-11, "sqrt": 3e-11, "cmp": 1e-12}},
    byte_j={"inputs": 2e-11, "outputs": 4e-11, "weights": 1e-11}, call_j=1e-4,
    static_j_per_op={"conv2d": 1e-11, "relu": 2e-10, "maxpool2d": 5e-10},
    peak_ops_per_s=1e10, bandwidth_bytes_per_s=1e10, static_w=10.0)

CONFIGS = ([("conv2d", c, h, o, k) for c, h, o, k in ((3, 16, 8, 3), (4, 12, 16, 5), (8, 20, 4, 1), (2, 30, 6, 3),
                                                       (6, 10, 12, 3), (5, 24, 10, 5))]
           + [("relu", n) for n in (100, 3000, 20000, 700, 90000, 5000)]
           + [("maxpool2d", c, h, k) for c, h, k in ((3, 16, 2), (8, 24, 3), (2, 40, 2), (6, 12, 4), (4, 32, 3),
                                                      (1, 50, 2))])


def _spec(config):
    kind = config[0]
    if kind == "conv2d":
        _, c, h, o, k = config
        return {"name": f"conv-{c}-{h}-{o}-{k}", "input": [c, h, h],
                "layers": [{"type": "conv2d", "out": o, "kernel": k, "padding": 1}]}
    if kind == "relu":
        return {"name": f"relu-{config[1]}", "input": [config[1]], "layers": [{"type": "relu"}]}
    _, c, h, k = config
    return {"name": f"pool-{c}-{h}-{k}", "input": [c, h, h], "layers": [{"type": "maxpool2d", "kernel": k}]}


def truth_energy(path, batch, profile):
    model = opcount.load_model(path)
    table, _ = layer_table(model, opcount.count_model(model, profile, batch=batch))
    return float(TRUTH.predict_runs(table)[0][0])


@pytest.fixture(scope="module")
def layer_set(tmp_path_factory):
    """Single-layer specs and a measurement CSV whose energies are the TRUTH model's."""
    folder = tmp_path_factory.mktemp("layers")
    profile = hardware_profiles.load("cmos-generic")
    lines = ["model,energy_j,phase,batch,device"]
    for i, config in enumerate(CONFIGS):
        spec = _spec(config)
        path = folder / f"{spec['name']}.json"
        path.write_text(json.dumps(spec))
        for batch in (1, 3, 8, 32):
            lines.append(f"{path.name},{truth_energy(str(path), batch, profile)!r},inference,{batch},cpu0")
    (folder / "m.csv").write_text("\n".join(lines) + "\n")
    return folder


def fit_json(args, capsys):
    status = main(["fit", *args, "--json"])
    captured = capsys.readouterr()
    return status, (json.loads(captured.out) if captured.out else None), captured.err


def test_fit_model_recovers_the_device_and_score_uses_it(layer_set, tmp_path, capsys):
    out_profile = tmp_path / "fitted.yaml"
    status, out, err = fit_json([str(layer_set / "m.csv"), "--model", "--prior-strength", "0", "--static-power",
                                 "10", "--write-profile", str(out_profile)], capsys)
    assert status == 0, err
    assert out["feature"] == "model" and out["rows"] == 72 and out["weighting"] == "relative"
    # the synthetic device is recovered: held-out rows predicted to the last digits
    assert out["validation"]["precision_min"] > 99.9
    assert set(out["by_type"]) == {"conv2d", "relu", "maxpool2d"}
    for entry in out["by_type"].values():
        assert entry["validation"]["precision_avg"] > 99.9
        assert sum(entry["term_share"].values()) == pytest.approx(1.0)
    assert [c["feature"] for c in out["comparison"]] == ["tos", "flops", "macs"]
    device = hardware_profiles.load(str(out_profile)).devices["cpu0"]
    assert device["energy_model"]["version"] == 1 and device["phase"] == "inference"
    assert device["metrics"]["validation"]["precision_min"] > 99.9
    # tosim score --device: a two-layer model is the sum of its layers, per term and per layer
    two = tmp_path / "two.json"
    two.write_text(json.dumps({"name": "two", "input": [3, 16, 16], "layers": [
        {"type": "conv2d", "out": 8, "kernel": 3, "padding": 1}, {"type": "relu"}, {"type": "flatten"}]}))
    assert main(["score", str(two), "--profile", str(out_profile), "--device", "cpu0", "--batch", "4",
                 "--per-layer", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    expected = truth_energy(str(two), 4, hardware_profiles.load("cmos-generic"))
    assert row["energy_j"] == pytest.approx(expected, rel=1e-4)
    parts = [row[f"energy_{t}_j"] for t in ("ops", "memory", "calls", "static")]
    assert sum(parts) == pytest.approx(row["energy_j"], rel=1e-12)
    layers = {layer["type"]: layer for layer in row["layers"]}
    assert layers["flatten"]["energy_j"] == 0.0               # a view costs nothing
    assert layers["conv2d"]["energy_j"] > 0 and layers["relu"]["energy_j"] > 0
    assert sum(layer["energy_j"] for layer in row["layers"]) == pytest.approx(row["energy_j"], rel=1e-12)
    assert row["time_s"] > 0


def test_fit_model_plot_and_report(layer_set, tmp_path, capsys):
    plot = tmp_path / "fit.png"
    assert main(["fit", str(layer_set / "m.csv"), "--model", "--plot", str(plot)]) == 0
    out = capsys.readouterr()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "layer type" in out.out and "joint" in out.out and "validation R2: model" in out.out
    assert "nominal 1e9 ops/s" in out.err                     # neither --peak nor --static-power
    # the price of types the fit never saw, and the compute-bound kernels it comes from
    assert "static J per roofline op, other types:" in out.out and "compute-bound kernels: conv2d)" in out.out


def test_constant_comparison_feature_is_reported_not_fatal(layer_set, tmp_path, capsys):
    """A relu-only set: MACs and FLOPs are 0 on every row; the TOs fit goes on (issue 14, item 5)."""
    rows = [line for line in (layer_set / "m.csv").read_text().splitlines() if line.startswith(("model", "relu"))]
    path = layer_set / "relu.csv"
    path.write_text("\n".join(rows) + "\n")
    status, out, err = fit_json([str(path)], capsys)
    assert status == 0, err
    flops, macs = out["comparison"][1], out["comparison"][2]
    assert flops["status"] == macs["status"] == "n/a (constant)" and macs["validation"] is None
    assert out["feature"] == "tos" and out["validation"]["r2"] is not None
    assert main(["fit", str(path)]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^macs n=1\s+n/a \(constant\)\s*$", text, re.M)
    # the chosen feature itself constant is still an error
    assert main(["fit", str(path), "--feature", "macs"]) == 2
    assert "distinct feature values" in capsys.readouterr().err


FRESH_TRUTH = calibrate.EnergyModel.from_dict(
    {**TRUTH.to_dict(), "fresh_j": {"conv2d": 3e-10, "relu": 2e-10, "maxpool2d": 1e-10}, "fresh_j_default": 2e-10,
     "fresh_threshold_bytes": 4000.0})


def test_fit_model_fresh_threshold_and_reused_outputs_column(layer_set, tmp_path, capsys):
    """Energies with a fresh-output price above 4000 bytes, half the runs measured with reused
    outputs (CSV column fresh_outputs 0, or a third of the calls fresh): --fresh-threshold 4000
    recovers the device and writes the price and threshold to the profile; 'off' leaves the term
    out and misses; a bad fresh_outputs value is a problem of its row."""
    profile = hardware_profiles.load("cmos-generic")
    lines = ["model,energy_j,batch,fresh_outputs"]
    for i, config in enumerate(CONFIGS):
        path = layer_set / f"{_spec(config)['name']}.json"
        model = opcount.load_model(str(path))
        for batch in (1, 3, 8, 32):
            share = (1.0, 0.0, 1.0, 1 / 3)[(i + batch) % 4]
            table, _ = layer_table(model, opcount.count_model(model, profile, batch=batch))
            table.fresh_share[:] = share
            energy = float(FRESH_TRUTH.predict_runs(table)[0][0])
            lines.append(f"{path.name},{energy!r},{batch},{share!r}")
    lines.append(f"{path.name},1.0,1,stale")
    csv_path = layer_set / "fresh.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    out_profile = tmp_path / "fresh.yaml"
    common = [str(csv_path), "--model", "--prior-strength", "0", "--peak", "1e10", "--bandwidth", "1e10", "--device",
              "cpu0"]
    status, out, err = fit_json(common + ["--fresh-threshold", "4000", "--write-profile", str(out_profile)], capsys)
    assert status == 1 and "fresh_outputs must be a share from 0 to 1, not 'stale'" in err
    assert out["validation"]["precision_min"] > 99.9
    fitted = hardware_profiles.load(str(out_profile)).devices["cpu0"]["energy_model"]
    assert fitted["fresh_threshold_bytes"] == 4000.0
    assert fitted["fresh_j"] == {k: pytest.approx(v, rel=1e-3) for k, v in FRESH_TRUTH.fresh_j.items()}
    status, out, err = fit_json(common + ["--fresh-threshold", "off", "--write-profile", str(out_profile)], capsys)
    assert status == 1 and out["validation"]["precision_min"] < 99
    assert "fresh_j" not in hardware_profiles.load(str(out_profile)).devices["cpu0"]["energy_model"]


def test_forced_absolute_weighting_on_a_wide_span_warns(layer_set, capsys):
    status, out, err = fit_json([str(layer_set / "m.csv"), "--model", "--weighting", "absolute", "--terms",
                                 "ops,calls"], capsys)
    assert status == 0 and out["weighting"] == "absolute"
    assert "tosim: warning: the measured energies span" in err


@pytest.mark.parametrize("args, message", [
    (["--terms", "ops,heat"], "argument --terms: must be a comma-separated subset of ops, memory, calls, static"),
    (["--terms", "ops,ops"], "argument --terms: must be a comma-separated subset"),
    (["--static-power", "0"], "argument --static-power: must be a positive number, not '0'"),
    (["--prior-strength", "-1"], "argument --prior-strength: must be a non-negative number, not '-1'"),
    (["--channel-block", "0"], "argument --channel-block: must be an integer from 1 to 4096, not '0'"),
    (["--channel-block", "1.5"], "argument --channel-block: must be an integer from 1 to 4096, not '1.5'"),
    (["--pack-rows", "16,4"], "argument --pack-rows: must be two integers LO,HI with 1 <= LO < HI, not '16,4'"),
    (["--pack-rows", "4"], "argument --pack-rows: must be two integers LO,HI"),
    (["--weight-cache", "0"], "argument --weight-cache: must be a positive number, not '0'"),
    (["--narrow-window", "2,0"], "argument --narrow-window: must be two integers K,S with K >= 1 and S >= 1, not '2,0'"),
    (["--narrow-window", "2"], "argument --narrow-window: must be two integers K,S"),
    (["--fresh-threshold", "-1"], "argument --fresh-threshold: must be a non-negative number of bytes or 'off', not '-1'"),
    (["--fresh-threshold", "big"], "argument --fresh-threshold: must be a non-negative number of bytes or 'off'"),
])
def test_model_options_are_checked(layer_set, capsys, args, message):
    assert main(["fit", str(layer_set / "m.csv"), "--model", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tosim: error: ") and message in err and len(err.splitlines()) == 1


def test_model_fit_needs_rows(tmp_path, capsys):
    path = tmp_path / "few.csv"
    path.write_text("model,energy_j\nzoo:lenet5,3\nzoo:nope,4\n")
    assert main(["fit", str(path), "--model"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("tosim: error: ") and "need at least 3" in err


@pytest.mark.parametrize("device, message", [
    ("{energy_model: {version: 1, call_j: 1.0}, feature: tos, coefficients: [1, 2]}",
     "devices.d.feature: a device holds a polynomial (feature, coefficients) or an energy_model, not both"),
    ("{energy_model: {call_j: 1.0}}", "devices.d.energy_model: missing key 'version'"),
    ("{energy_model: {version: 7}}", "devices.d.energy_model.version: unknown energy model version 7"),
    ("{energy_model: {version: 1, call_j: -1.0}}", "devices.d.energy_model.call_j: energy must be a non-negative"),
    ("{energy_model: {version: 1, byte_j: {stack: 1.0}}}", "energy_model.byte_j.stack: unknown tensor role 'stack'"),
    ("{energy_model: {version: 1, op_j: {fp32: {mac: 1.0}}}}", "energy_model.op_j.fp32.mac: unknown op 'mac'"),
    ("{energy_model: {version: 1, byte_j_by_type: {relu: {inputs: -1.0}}}}",
     "energy_model.byte_j_by_type.relu.inputs: energy must be a non-negative"),
    ("{energy_model: {version: 1, row_j: {maxpool2d: -1.0}}}",
     "energy_model.row_j.maxpool2d: energy must be a non-negative"),
    ("{energy_model: {version: 1, channel_block: 0}}", "energy_model.channel_block: must be an integer from 1"),
    ("{energy_model: {version: 1, terms: [ops, heat]}}", "energy_model.terms[1]: unknown energy term 'heat'"),
    ("{energy_model: {version: 1, peak_ops_per_s: 0}}", "energy_model.peak_ops_per_s: must be a positive number"),
    ("{energy_model: {version: 1, output_balance: 0}}", "energy_model.output_balance: must be a positive number"),
    ("{energy_model: {version: 1, exposed_j: {conv2d: -1.0}}}",
     "energy_model.exposed_j.conv2d: energy must be a non-negative"),
    ("{energy_model: {version: 1, pack_j: {linear: -1.0}, pack_rows: [4, 16]}}",
     "energy_model.pack_j.linear: energy must be a non-negative"),
    ("{energy_model: {version: 1, pack_j: {linear: 1.0}, pack_rows: [16, 4]}}",
     "energy_model.pack_rows: must be two integers [lo, hi] with 1 <= lo < hi"),
    ("{energy_model: {version: 1, pack_j: {linear: 1.0}, pack_rows: 4}}", "energy_model.pack_rows: "),
    ("{energy_model: {version: 1, pack_j: {linear: 1.0}}}", "energy_model.pack_rows: pack_j and pack_rows go together"),
    ("{energy_model: {version: 1, weight_spill_j: {linear: 1.0}}}",
     "energy_model.weight_cache_bytes: weight_spill_j and weight_cache_bytes go together"),
    ("{energy_model: {version: 1, weight_spill_j: {linear: 1.0}, weight_cache_bytes: 0}}",
     "energy_model.weight_cache_bytes: must be a positive number"),
    ("{energy_model: {version: 1, narrow_j: {maxpool2d: -1.0}, narrow_window: [2, 2]}}",
     "energy_model.narrow_j.maxpool2d: energy must be a non-negative"),
    ("{energy_model: {version: 1, narrow_j: {maxpool2d: 1.0}, narrow_window: [2, 0]}}",
     "energy_model.narrow_window: must be two integers [kernel, stride] with kernel >= 1 and stride >= 1"),
    ("{energy_model: {version: 1, narrow_j: {maxpool2d: 1.0}, narrow_window: [2]}}", "energy_model.narrow_window: "),
    ("{energy_model: {version: 1, narrow_j: {maxpool2d: 1.0}, narrow_window: 2}}", "energy_model.narrow_window: "),
    ("{energy_model: {version: 1, narrow_j: {maxpool2d: 1.0}}}",
     "energy_model.narrow_window: narrow_j and narrow_window go together"),
    ("{energy_model: {version: 1, narrow_window: [2, 2]}}",
     "energy_model.narrow_j: narrow_j and narrow_window go together"),
    ("{energy_model: {version: 1, fresh_j: {conv2d: -1.0}, fresh_threshold_bytes: 33554432}}",
     "energy_model.fresh_j.conv2d: energy must be a non-negative"),
    ("{energy_model: {version: 1, fresh_j: {conv2d: 1.0}, fresh_threshold_bytes: -1.0}}",
     "energy_model.fresh_threshold_bytes: must be a non-negative number"),
    ("{energy_model: {version: 1, fresh_j_default: -1.0, fresh_threshold_bytes: 1.0}}",
     "energy_model.fresh_j_default: "),
    ("{energy_model: {version: 1, fresh_j: {conv2d: 1.0}}}",
     "energy_model.fresh_threshold_bytes: fresh_j (or fresh_j_default) and fresh_threshold_bytes go together"),
    ("{energy_model: {version: 1, fresh_threshold_bytes: 1.0}}",
     "energy_model.fresh_j: fresh_j (or fresh_j_default) and fresh_threshold_bytes go together"),
    ("{energy_model: {version: 1, spill: 1.0}}", "energy_model.spill: unknown energy model key 'spill'"),
    ("{unit: J}", "devices.d: missing key 'feature' (or an energy_model)"),
])
def test_energy_model_schema_errors(tmp_path, device, message):
    path = tmp_path / "p.yaml"
    path.write_text(f"schema: 1\nname: p\nextends: cmos-generic\ndevices:\n  d: {device}\n")
    with pytest.raises(hardware_profiles.ProfileError) as exc:
        hardware_profiles.load(str(path))
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"{path}:5: ")


def test_builtin_getzner_device_scores_joules_per_layer_and_term(capsys):
    profile = hardware_profiles.load("getzner2023-cpu")
    assert profile.formats == ["fp32"] and profile.chain[0].endswith("cmos-generic")
    device = profile.devices["xeon-gold-5120"]
    assert "arXiv 2304.00897" in device["source"]
    assert main(["score", "zoo:alexnet", "--profile", "getzner2023-cpu", "--device", "xeon-gold-5120",
                 "--batch", "4", "--per-layer", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["energy_j"] > 0 and row["gco2e"] > 0
    parts = [row[f"energy_{t}_j"] for t in ("ops", "memory", "calls", "static")]
    assert sum(parts) == pytest.approx(row["energy_j"], rel=1e-12)
    kinds = {layer["type"] for layer in row["layers"] if layer["energy_j"] > 0}
    assert {"conv2d", "relu", "maxpool2d", "linear"} <= kinds
    # energy per sample falls with the batch (fixed per-call costs amortised) or stays: never grows
    assert main(["score", "zoo:alexnet", "--profile", "getzner2023-cpu", "--device", "xeon-gold-5120",
                 "--batch", "8", "--json"]) == 0
    row8 = json.loads(capsys.readouterr().out)[0]
    assert row8["energy_j"] / 8 <= row["energy_j"] / 4 * (1 + 1e-9)
    assert np.isfinite(row8["time_s"]) and row8["time_s"] > 0


def test_layer_table_gives_blocked_channels_and_window_shares():
    """zoo:alexnet: each conv's output channels (blocked kernels) and every conv's and pool's share
    of window ops whose input is new along the width, min(stride, kernel) / kernel."""
    profile = hardware_profiles.load("cmos-generic")
    model = opcount.load_model("zoo:alexnet")
    table, labels = layer_table(model, opcount.count_model(model, profile, batch=2))
    got = {name: (c, w, r) for (name, _type), c, w, r in zip(labels, table.channels, table.window, table.rows)}
    # rows: batch x output elements x kernel rows (x input channels for a convolution)
    assert got["conv2d1"] == (64, pytest.approx(4 / 11), 2 * 64 * 55 * 55 * 11 * 3)
    assert got["conv2d2"] == (192, pytest.approx(1 / 5), 2 * 192 * 27 * 27 * 5 * 64)
    assert got["conv2d3"] == (384, pytest.approx(1 / 3), 2 * 384 * 13 * 13 * 3 * 192)
    assert got["maxpool2d1"] == (0, pytest.approx(2 / 3), 2 * 64 * 27 * 27 * 3)
    assert got["relu1"] == (0, 0, 0) and got["linear1"] == (0, 0, 0)
    # the adaptive pooling has no fixed window; views (flatten, dropout at inference) are not calls
    assert got["adaptive_avgpool2d1"] == (0, 0, 0)
    assert "flatten1" not in got and "dropout1" not in got
    # input channels of blocked kernels; the share of (output, tap) pairs inside the image (the
    # pool's counts already leave the padding out: 1)
    shape = {name: (ci, v) for (name, _type), ci, v in zip(labels, table.in_channels, table.valid)}
    assert shape["conv2d1"][0] == 3 and shape["conv2d3"][0] == 192 and shape["maxpool2d1"] == (0, 1)
    # conv3: 3x3, padding 1 on 13x13: per dimension 13 x 3 taps less the 2 on the padding
    assert shape["conv2d3"][1] == pytest.approx(((13 * 3 - 2) / (13 * 3)) ** 2)
    # conv1: 11x11 stride 4 padding 2 on 224: taps on the padding at both ends
    assert 0.9 < shape["conv2d1"][1] < 1
    # GEMM rows: the batch for AlexNet's linear layers (2-D inputs), 0 for every other kernel
    gemm = {name: m for (name, _type), m in zip(labels, table.gemm_rows)}
    assert gemm["linear1"] == gemm["linear3"] == 2
    assert gemm["conv2d1"] == gemm["maxpool2d1"] == gemm["relu1"] == 0
    # innermost window size and stride (AlexNet's pools are 3x3 stride 2), 0 without a window
    window = {name: (k, s) for (name, _type), k, s in zip(labels, table.kernel, table.stride)}
    assert window["maxpool2d1"] == (3, 2) and window["conv2d1"] == (11, 4) and window["conv2d3"] == (3, 1)
    assert window["relu1"] == window["linear1"] == (0, 0)
    # PyTorch's CPU max-pool allocates int64 argmax indices beside its output: 8 bytes per output
    # element; nothing else does. Scored layers are not from a reused-output run.
    index = {name: b for (name, _type), b in zip(labels, table.index_bytes)}
    assert index["maxpool2d1"] == 2 * 64 * 27 * 27 * 8
    assert index["conv2d1"] == index["relu1"] == index["linear1"] == 0
    assert np.all(table.fresh_share == 1)


def test_builtin_getzner_device_prices_ops_and_types_the_layers_never_had(capsys):
    """zoo:resnet18 counts sqrt (batch norm) and layer types the benchmarks never measured: the
    sqrt gets the prior's price, the types the fastest kernel's static price and median bytes."""
    energy = hardware_profiles.load("getzner2023-cpu").devices["xeon-gold-5120"]["energy_model"]
    assert energy["op_j"]["fp32"]["sqrt"] > 0
    assert main(["score", "zoo:resnet18", "--profile", "getzner2023-cpu", "--device", "xeon-gold-5120",
                 "--batch", "2", "--per-layer", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["energy_j"] > 0 and not row.get("error")
    norms = [layer for layer in row["layers"] if layer["type"] == "batchnorm"]
    assert norms and all(layer["energy_j"] > 0 for layer in norms)


def test_builtin_getzner_device_prices_in_place_relu_without_fresh_pages(tmp_path, capsys):
    """A ReLU whose 64 MiB output is above the 32 MiB threshold: out of place it pays the built-in
    device's fresh-output price on every byte of its output, in place (ReLU(inplace=True)) nothing;
    the rest of its price is the same."""
    energy = hardware_profiles.load("getzner2023-cpu").devices["xeon-gold-5120"]["energy_model"]
    assert energy["fresh_threshold_bytes"] == 2 ** 25 and energy["fresh_j"]["relu"] > 0
    joules = {}
    for flag in (True, False):
        spec = tmp_path / f"relu-{flag}.json"
        layer = {"type": "relu", "inplace": True} if flag else {"type": "relu"}
        spec.write_text(json.dumps({"name": "r", "input": [2 ** 20], "layers": [layer]}))
        assert main(["score", str(spec), "--profile", "getzner2023-cpu", "--device", "xeon-gold-5120", "--batch",
                     "16", "--json"]) == 0
        joules[flag] = json.loads(capsys.readouterr().out)[0]["energy_j"]
    assert joules[False] - joules[True] == pytest.approx(energy["fresh_j"]["relu"] * 16 * 2 ** 20 * 4, rel=1e-9)
