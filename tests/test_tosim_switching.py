"""The profile's ``power:`` section and switching-energy pricing in ``tosim score``."""
import csv
import io
import json
import os

import pytest

import hardware_profiles as hp
from hardware_profiles import schema as S
from hwlib import activity
from tosim.cli import main

import tosim

MODEL = """\
name: one-linear
input: [4]
format: fp16
layers:
  - {type: linear, out: 2}
"""

POWER = """\
extends: cmos-generic
name: switching-test
power:
  energy: activity
  vectors: 64
  seed: 5
  distribution: {default: normal, mul: ["normal:scale=0.05", "relu:zeros=0.5"]}
"""


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- the schema ---------------------------------------------------------------------------------

def test_defaults_are_the_documented_model(generic):
    power = generic.power
    assert {k: power[k] for k in S.POWER_DEFAULTS} == S.POWER_DEFAULTS
    assert activity.PowerModel.from_profile(generic) == activity.DEFAULT_MODEL
    assert power["energy"] == "transistors"
    assert set(S.POWER_DEFAULTS["pin_ff"]) == set(S.GATE_TYPES)
    assert set(S.DISTRIBUTIONS) == set(activity.DISTRIBUTIONS)
    for name, params in S.DISTRIBUTIONS.items():
        assert set(params) == set(activity.DISTRIBUTIONS[name])


def test_overrides_merge_gate_by_gate_and_distribution_is_replaced(tmp_path):
    base = write(tmp_path, "base.yaml", "extends: cmos-generic\npower:\n  vdd: 0.9\n  pin_ff: {XOR: 3.0}\n"
                                        "  distribution: {mul: relu}\n")
    child = write(tmp_path, "child.yaml", "extends: base.yaml\npower:\n  pin_ff: {NOT: 2.0}\n"
                                          "  distribution: uniform\n")
    power = hp.load(child).power
    assert power["vdd"] == 0.9
    assert power["pin_ff"]["XOR"] == 3.0 and power["pin_ff"]["NOT"] == 2.0
    assert power["pin_ff"]["NAND"] == S.POWER_DEFAULTS["pin_ff"]["NAND"]
    assert power["distribution"] == "uniform"
    model = activity.PowerModel.from_profile(hp.load(child))
    assert model.vdd == 0.9 and model.pin_ff["XOR"] == 3.0
    assert S.POWER_DEFAULTS["pin_ff"]["XOR"] == 2.3            # the defaults are not changed


@pytest.mark.parametrize("body, where, message", [
    ("  vdd: 0", "power.vdd", "must be a positive number"),
    ("  vdd: fast", "power.vdd", "expected a number"),
    ("  version: 2", "power.version", "unknown power section version 2"),
    ("  pin_ff: {NOTT: 1.0}", "power.pin_ff.NOTT", "unknown gate 'NOTT' (did you mean 'NOT'?)"),
    ("  delay_ps: {NAND: -1}", "power.delay_ps.NAND", "must be a non-negative number"),
    ("  energy: switching", "power.energy", "unknown energy pricing 'switching'"),
    ("  distribution: gauss", "power.distribution", "unknown distribution 'gauss'"),
    ("  distribution: 'relu:zeros=2'", "power.distribution", "zeros is a fraction from 0 to 1"),
    ("  distribution: [normal, relu, uniform]", "power.distribution", "not 3 item(s)"),
    ("  distribution: {mull: relu}", "power.distribution.mull", "unknown op 'mull'"),
    ("  vectors: 1", "power.vectors", "from 2 to"),
    ("  glitches: 1", "power.glitches", "expected"),
    ("  capacitance: 1", "power.capacitance", "unknown power key"),
])
def test_bad_power_section_is_one_line_naming_the_field(tmp_path, capsys, body, where, message):
    path = write(tmp_path, "bad.yaml", f"extends: cmos-generic\npower:\n{body}\n")
    with pytest.raises(hp.ProfileError) as info:
        hp.load(path)
    text = str(info.value)
    assert text.startswith(f"{path}:3: {where}: ") and message in text and "\n" not in text
    status, _, err = run(capsys, "profile", "validate", path)
    assert status == 2 and err.startswith("tosim: error: ") and err.count("\n") == 1


def test_the_profile_model_prices_activity(tmp_path, capsys, cache_dir):
    low = write(tmp_path, "low.yaml", "extends: cmos-generic\npower: {vdd: 0.55}\n")
    runs = {}
    for name, profile in (("low", low), ("nominal", "cmos-generic")):
        status, out, _ = run(capsys, "activity", "--widths", "4", "--designs", "ripple_carry",
                             "--vectors", "100", "--profile", profile, "--json")
        assert status == 0
        runs[name] = json.loads(out)[0]
    assert runs["low"]["vdd"] == 0.55
    assert runs["low"]["energy_fj_per_op"] == pytest.approx(runs["nominal"]["energy_fj_per_op"] / 4)


# --- pricing counted ops -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A profile with activity pricing, a one-layer fp16 model, and its op energies computed
    once into a private cache (the FP units are synthesized once per test process)."""
    folder = tmp_path_factory.mktemp("switching")
    profile_path = folder / "power.yaml"
    profile_path.write_text(POWER)
    model_path = folder / "model.yaml"
    model_path.write_text(MODEL)
    cache = folder / "cache"
    old = os.environ.get("TOSIM_CACHE_DIR")
    os.environ["TOSIM_CACHE_DIR"] = str(cache)
    try:
        profile = hp.load(str(profile_path))
        table = activity.op_energies(profile, [("add", "fp16"), ("mul", "fp16")])
        result = tosim.score(str(model_path), str(profile_path), per_layer=True)
    finally:
        if old is None:
            del os.environ["TOSIM_CACHE_DIR"]
        else:
            os.environ["TOSIM_CACHE_DIR"] = old
    return {"profile": profile, "profile_path": str(profile_path), "model": str(model_path),
            "table": table, "result": result, "cache": cache}


def test_op_energy_is_the_unit_simulation(setup):
    profile, table = setup["profile"], setup["table"]
    mul = table[("mul", "fp16")]
    assert mul.distribution == "normal:scale=0.05 x relu:zeros=0.5"
    assert table[("add", "fp16")].distribution == "normal"
    direct = activity.fp_activity("mul", "fp16", profile, ("normal:scale=0.05", "relu:zeros=0.5"),
                                  vectors=64, seed=5, model=activity.PowerModel.from_profile(profile))
    assert mul.energy_fj_per_op == direct.energy_fj_per_op and mul.operations == 63
    assert mul.energy_fj_per_op > 0 and not mul.cached
    entries = list((setup["cache"] / "v1" / "activity").glob("*.json"))
    assert len(entries) == 2


def test_op_energies_are_read_back_from_the_cache(setup):
    again = activity.op_energies(setup["profile"], [("mul", "fp16"), ("add", "fp16")],
                                 cache=activity.ActivityCache(setup["cache"]))
    assert all(entry.cached for entry in again.values())
    for pair, entry in again.items():
        assert entry.energy_fj_per_op == setup["table"][pair].energy_fj_per_op


def test_score_prices_counts_by_switching_energy(setup):
    result, table = setup["result"], setup["table"]
    # linear 4 -> 2 with bias: 8 multiplications, 2 x 3 accumulations + 2 bias additions
    assert result.counts["mul"] == 8 and result.counts["add"] == 8
    expected = (8 * table[("mul", "fp16")].energy_fj_per_op
                + 8 * table[("add", "fp16")].energy_fj_per_op) * 1e-15
    assert result.switching_j == pytest.approx(expected, rel=1e-12)
    assert result.switching_by_stage["forward"] == pytest.approx(expected, rel=1e-12)
    assert sum(layer.switching_j for layer in result.layers) == pytest.approx(expected, rel=1e-12)
    assert result.tos > 0                                   # TOs are still there, beside it
    basis = result.switching_basis
    assert basis.startswith("estimate: ") and "fp16 mul (booth_wallace): normal:scale=0.05 x relu:zeros=0.5" in basis
    assert "fp16 add (carry_lookahead): normal operands" in basis and "63 operations" in basis
    assert [e["op"] for e in result.switching["ops"]] == ["add", "mul"]   # only the ops counted


def test_score_outputs_carry_the_estimate(setup, capsys, tmp_path, monkeypatch):
    out_csv = tmp_path / "rows.csv"
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(setup["cache"]))
    status, out, err = run(capsys, "score", setup["model"], "--profile", setup["profile_path"],
                           "--out", str(out_csv))
    status_json, text, _ = run(capsys, "score", setup["model"], "--profile", setup["profile_path"], "--json")
    assert status == 0 and status_json == 0
    assert "switching J (est.)" in out and "switching J: estimate: " in out
    assert "simulating" not in err                         # read from the cache
    row = next(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert float(row["switching_j"]) == setup["result"].switching_j
    assert row["switching_basis"] == setup["result"].switching_basis
    record = json.loads(text)[0]
    assert record["switching_j"] == setup["result"].switching_j
    assert record["switching"]["ops"][1]["distribution"] == "normal:scale=0.05 x relu:zeros=0.5"


def test_transistor_pricing_has_no_switching_fields(fixed_costs, tmp_path):
    model = write(tmp_path, "m.yaml", MODEL)
    result = tosim.score(model, "cmos-generic")
    assert result.switching_j is None and result.switching is None
    assert "switching_j" not in result.to_dict()


# --- distributions per layer type --------------------------------------------------------------

def test_op_distribution_by_hand():
    power = {"distribution": {"default": "normal", "mul": "relu",
                              "layers": {"add": "zeros", "linear": {"mul": "uniform"}, "conv2d": {"default": "relu"}}}}
    od = activity.op_distribution
    assert od(power, "mul") == "relu" and od(power, "add") == "normal"
    assert od(power, "mul", "add") == "zeros" and od(power, "add", "add") == "zeros"
    assert od(power, "mul", "linear") == "uniform" and od(power, "add", "linear") == "normal"
    assert od(power, "add", "conv2d") == "relu" and od(power, "mul", "relu") == "relu"
    assert od({"distribution": "uniform"}, "mul", "linear") == "uniform"


@pytest.mark.parametrize("body, where, message", [
    ("  distribution: {layers: {linear: gauss}}", "power.distribution.layers.linear", "unknown distribution"),
    ("  distribution: {layers: {linear: {mull: relu}}}", "power.distribution.layers.linear.mull", "unknown op"),
    ("  distribution: {layers: {linear: {layers: {}}}}", "power.distribution.layers.linear.layers", "unknown op"),
    ("  distribution: {layers: [linear]}", "power.distribution.layers", "expected a mapping"),
])
def test_bad_layer_distributions(tmp_path, body, where, message):
    path = write(tmp_path, "bad.yaml", f"extends: cmos-generic\npower:\n{body}\n")
    with pytest.raises(hp.ProfileError) as info:
        hp.load(path)
    assert str(info.value).startswith(f"{path}:3: {where}: ") and message in str(info.value)


def test_layer_type_distributions_price_their_layers(setup, tmp_path, monkeypatch):
    """A residual add priced with all-zero operands switches nothing; the linear layer keeps the
    profile's own distributions (the same entries as in the one-layer model)."""
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(setup["cache"]))
    profile = write(tmp_path, "layers.yaml", POWER.replace(
        'mul: ["normal:scale=0.05", "relu:zeros=0.5"]}',
        'mul: ["normal:scale=0.05", "relu:zeros=0.5"], layers: {add: {add: zeros}}}'))
    model = write(tmp_path, "res.yaml", "name: res\ninput: [4]\nformat: fp16\nlayers:\n"
                                        "  - {type: linear, out: 4, name: fc}\n"
                                        "  - {type: add, inputs: [input, fc], name: res}\n")
    result = tosim.score(model, profile, per_layer=True)
    fc, res = result.layers
    table = setup["table"]
    # fc: 16 multiplications, 4 x 3 accumulations + 4 bias additions; res: 4 additions of zeros
    assert fc.counts["mul"] == 16 and fc.counts["add"] == 16 and res.counts["add"] == 4
    assert fc.switching_j == pytest.approx(16e-15 * (table[("mul", "fp16")].energy_fj_per_op
                                                     + table[("add", "fp16")].energy_fj_per_op), rel=1e-12)
    assert res.switching_j == 0.0
    assert result.switching_j == pytest.approx(fc.switching_j, rel=1e-12)
    assert "fp16 add (carry_lookahead) in add layers: zeros operands, 0 fJ/op" in result.switching_basis
