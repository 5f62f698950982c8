"""Counting multiply-accumulates as ``mac`` ops for a profile with a MAC unit (``units.mac``).

Checked: the MAC counts of linear and conv layers against hand counts (with and without bias,
forward and backward); on zoo models in training, every ``mac`` read back as one ``mul`` plus
one ``add`` gives exactly the counts without a MAC unit; scoring prices the MACs at the MAC
unit's cost and everything else as before (fixed fake cost tables, no synthesis); a profile
without ``units.mac`` is unchanged; the profile checks and the commands that do not price MACs
refuse such a profile in one line.
"""
import json

import numpy as np
import pytest

import hardware_profiles as hp
import opcount
import tosim
import tosim._costs
from tests.fakes import FORMAT_COST, OP_COST
from tosim.cli import main

MAC_COST = 1500.0      # the fake MAC unit's transistors per format unit (a mul is 1000, an add 100)
PROFILE = "name: mac-generic\nextends: cmos-generic\nunits:\n  mac: {design: fused, accumulate: fp32}\n"


@pytest.fixture
def mac_profile(tmp_path):
    path = tmp_path / "mac.yaml"
    path.write_text(PROFILE)
    return str(path)


@pytest.fixture
def fake_mac_costs(monkeypatch, fixed_costs):
    def fake(profile, formats, *, progress=None):
        return np.array([MAC_COST * FORMAT_COST[f] for f in formats])
    monkeypatch.setattr(tosim._costs, "mac_costs_array", fake)
    return fake


def _model(tmp_path, bias=True):
    spec = tmp_path / "m.yaml"
    spec.write_text("input: [3, 8, 8]\nformat: fp32\nloss: mse\noptimizer: sgd\nlayers:\n"
                    f"  - {{type: conv2d, out: 4, kernel: 3, bias: {str(bias).lower()}}}\n"
                    "  - {type: relu}\n  - {type: flatten}\n"
                    f"  - {{type: linear, out: 5, bias: {str(bias).lower()}}}\n")
    return opcount.load_model(str(spec))


@pytest.mark.parametrize("bias", [True, False])
def test_mac_counts_by_hand(tmp_path, bias):
    result = opcount.count_model(_model(tmp_path, bias), hp.load("cmos-generic"), phase="training", batch=2)
    macs = opcount.mac_counts(result)
    fwd, bwd = opcount.STAGES.index("forward"), opcount.STAGES.index("backward")
    conv, relu, flatten, linear = result.layers[:4]
    conv_macs = 2 * 4 * 6 * 6 * 27          # batch x out channels x 6x6 outputs x 3*3*3 taps
    linear_macs = 2 * 5 * 144               # batch x out x in
    assert conv.macs["forward"] == conv_macs and linear.macs["forward"] == linear_macs
    # forward: with a bias every product is accumulated (the bias is the first value); without one
    # the first product of each dot product is a plain multiply
    assert macs[0, fwd] == (conv_macs if bias else conv_macs - 2 * 4 * 36)
    assert macs[3, fwd] == (linear_macs if bias else linear_macs - 2 * 5)
    assert macs[1].tolist() == macs[2].tolist() == [0, 0, 0, 0]         # relu and flatten
    assert macs[:, opcount.STAGES.index("update")].tolist() == [0] * len(result.layers)
    # backward: min(MACs, mul, add) of the stage
    for i in (0, 3):
        stage = result.layers[i].stages["backward"]
        assert macs[i, bwd] == min(result.layers[i].macs["backward"], stage["mul"], stage["add"]) > 0


@pytest.mark.parametrize("name", ["zoo:lenet5", "zoo:resnet18", "zoo:bert-base"])
def test_macs_read_as_mul_plus_add_give_the_counts_back(name):
    profile = hp.load("cmos-generic")
    model = opcount.with_default_format(opcount.load_model(name), "fp32")
    result = opcount.count_model(model, profile, phase="training", batch=2)
    fused = opcount.with_macs(result)
    assert fused.ops == opcount.BASIC_OPS + ("mac",)
    moved = 0
    for before, after in zip(result.layers, fused.layers):
        for stage in opcount.STAGES:
            b, a = before.stages[stage], after.stages[stage]
            assert a["mul"] + a["mac"] == b["mul"] and a["add"] + a["mac"] == b["add"]
            assert all(a[op] == b[op] for op in ("sub", "div", "sqrt", "cmp"))
            assert min(a.values()) >= 0
            moved += a["mac"]
            if before.type not in opcount.MAC_LAYER_TYPES:
                assert a["mac"] == 0
    assert moved == fused.totals["all"]["mac"] > 0
    assert fused.totals["all"]["mul"] + moved == result.totals["all"]["mul"]
    with pytest.raises(ValueError, match="no basic-op array"):
        fused.as_array()
    with pytest.raises(ValueError, match="already hold mac ops"):
        opcount.with_macs(fused)


def test_score_prices_macs_at_the_mac_unit(tmp_path, mac_profile, fake_mac_costs):
    spec = tmp_path / "m.yaml"
    spec.write_text("input: [16]\nformat: bf16\nlayers:\n  - {type: linear, out: 8}\n  - {type: sigmoid}\n"
                    "  - {type: linear, out: 2, bias: false}\n")
    profile = hp.load(mac_profile)
    plain = tosim.score(str(spec), "cmos-generic", per_layer=True, batch=3)
    fused = tosim.score(str(spec), profile, per_layer=True, batch=3)
    macs = fused.counts["mac"]
    # 16 -> 8 with a bias: every product; 8 -> 2 without: all but the first of each dot product
    assert macs == 3 * 16 * 8 + (3 * 8 * 2 - 3 * 2) and "mac" not in plain.counts
    assert fused.counts["mul"] + macs == plain.counts["mul"] and fused.counts["add"] + macs == plain.counts["add"]
    f = FORMAT_COST["bf16"]
    expected = sum(fused.counts[op] * OP_COST[op] * f for op in OP_COST) + macs * MAC_COST * f
    assert fused.tos == pytest.approx(expected, rel=1e-12)
    # the MACs replace one mul (1000) and one add (100) at 1500 each
    assert fused.tos - plain.tos == pytest.approx(macs * (MAC_COST - 1100) * f, rel=1e-12)
    assert [layer.counts["mac"] for layer in fused.layers] == [3 * 16 * 8, 0, 3 * 8 * 2 - 3 * 2]
    assert sum(layer.tos for layer in fused.layers) == pytest.approx(fused.tos, rel=1e-12)
    row = fused.to_dict()
    assert row["mac"] == macs and "mac" in fused.to_csv().splitlines()[0].split(",")


def test_profile_without_mac_unit_is_unchanged(tmp_path, fixed_costs):
    result = tosim.score("zoo:lenet5", "cmos-generic")
    assert "mac" not in result.counts and "mac" not in result.to_dict()
    assert opcount.count_model(opcount.load_model("zoo:lenet5"), hp.load("cmos-generic")).ops == opcount.BASIC_OPS


def test_count_command_shows_mac_ops(mac_profile, fake_mac_costs, capsys):
    assert main(["count", "zoo:lenet5", "--profile", mac_profile, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"]["all"]["mac"] == out["macs"] == 416520
    assert out["layers"][0]["stages"]["forward"]["mac"] == 117600
    assert main(["count", "zoo:lenet5", "--profile", mac_profile]) == 0
    header = [line for line in capsys.readouterr().out.splitlines() if line.startswith("layer ")][0]
    assert header.split()[-2:] == ["mac", "TOs"]


@pytest.mark.parametrize("units, message", [
    ("  mac: {design: fusd}\n", "units.mac.design: unknown MAC design 'fusd' (did you mean 'fused'?); known: fused"),
    ("  mac: {design: fused, accumulate: fp8_e4m3}\n", "units.mac.accumulate: unknown accumulator format 'fp8_e4m3'"),
    ("  mac: {accumulate: fp32}\n", "units.mac: missing key 'design'"),
    ("  mac: {design: fused, width: 8}\n", "units.mac.width: unknown unit option 'width'"),
])
def test_bad_mac_units(tmp_path, units, message, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nextends: cmos-generic\nunits:\n" + units)
    assert main(["profile", "validate", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_mac_unit_needs_the_ieee_datapath(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nextends: li2022\nunits:\n  mac: {design: fused}\n")
    assert main(["profile", "validate", str(path)]) == 2
    assert "a MAC unit is an IEEE datapath unit" in capsys.readouterr().err


def test_e4m3_needs_an_accumulator(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nextends: cmos-generic\nformats: [fp8_e4m3, fp32]\nunits:\n  mac: {design: fused}\n")
    profile = hp.load(str(path))
    assert tosim._costs.mac_accumulator(profile, "fp32") == "fp32"
    with pytest.raises(ValueError, match="cannot accumulate in fp8_e4m3; set units.mac.accumulate"):
        tosim._costs.mac_accumulator(profile, "fp8_e4m3")


def test_paths_that_do_not_price_macs_refuse(mac_profile, fixed_costs, capsys):
    assert main(["score", "zoo:gpt2", "--profile", mac_profile, "--phase", "prefill", "--prompt", "4"]) == 2
    assert "has a MAC unit (units.mac), which the serving phases" in capsys.readouterr().err
    assert main(["sweep", "mlp", "--profile", mac_profile]) == 2
    assert "which tosim sweep does not price yet" in capsys.readouterr().err


def test_switching_energy_refuses_a_mac_unit(tmp_path, fake_mac_costs, capsys):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nextends: cmos-generic\npower: {energy: activity}\nunits:\n  mac: {design: fused}\n")
    assert main(["score", "zoo:lenet5", "--profile", str(path)]) == 2
    assert "which switching energy (power: {energy: activity}) does not price yet" in capsys.readouterr().err
