"""``tosim explore``: design combinations priced for switching energy, delay and area."""
import csv
import io
import json

import pytest

from tosim import _explore
from tosim.cli import main

MODEL = """\
name: one-linear
input: [4]
format: fp16
layers:
  - {type: linear, out: 2}
"""


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _point(name, add, mul, delay_add, delay_mul, area, models=None):
    p = _explore.DesignPoint(name, "m", "fp16", add_fj_per_op=add, mul_fj_per_op=mul, add_delay_ps=delay_add,
                             mul_delay_ps=delay_mul, add_area_um2=area, mul_area_um2=0.0)
    p.models_j = dict(models or {})
    return p


def test_pareto_flags_by_hand():
    points = [_point("a", 10, 10, 100, 50, 5.0),     # energy 20, delay 100, area 5
              _point("b", 5, 10, 120, 50, 5.0),      # 15, 120, 5: cheaper, slower
              _point("c", 10, 11, 100, 90, 5.0),     # 21, 100, 5: dominated by a
              _point("d", 10, 11, 90, 80, 9.0),      # 21, 90, 9: fastest
              _point("e", 5, 10, 120, 50, 5.0)]      # a copy of b: neither dominates the other
    bad = _explore.DesignPoint("x", "m", "fp16", error="broken")
    flags = [p.pareto for p in _explore.pareto_flags(points + [bad])]
    assert flags == [True, True, False, True, True, False]
    with_models = [_point("a", 10, 10, 100, 50, 5.0, {"m": 3.0}), _point("b", 1, 1, 100, 50, 5.0, {"m": 4.0})]
    assert [p.pareto for p in _explore.pareto_flags(with_models)] == [True, False]   # the models' joules decide


def test_variant_profile_sets_the_designs(tmp_path):
    import hardware_profiles as hp
    variant = _explore.variant_profile(hp.load("cmos-generic"), "sklansky", "dadda", str(tmp_path))
    units = variant.units
    assert units["add"] == units["sub"] == units["cmp"] == {"design": "sklansky"}
    assert units["mul"] == {"design": "dadda", "final_adder": "sklansky"}
    assert units["div"] == hp.load("cmos-generic").units["div"]          # kept from the base
    assert variant.power["energy"] == "activity" and variant.technology == hp.load("cmos-generic").technology


@pytest.mark.slow     # synthesizes two fp16 multipliers and an adder (about 10 s of CPU)
@pytest.mark.usefixtures("cache_dir")
def test_explore_grid_prices_units_and_models(capsys, tmp_path):
    model = tmp_path / "m.yaml"
    model.write_text(MODEL)
    out_csv, out_png = tmp_path / "grid.csv", tmp_path / "grid.png"
    status, out, err = run(capsys, "explore", str(model), "--adders", "carry_lookahead",
                           "--multipliers", "booth_wallace,array", "--formats", "fp16", "--json",
                           "--out", str(out_csv), "--plot", str(out_png))
    assert status == 0, err
    records = json.loads(out)
    assert [(r["adder"], r["multiplier"]) for r in records] == [("carry_lookahead", "booth_wallace"),
                                                                 ("carry_lookahead", "array")]
    for r in records:
        assert r["error"] is None
        assert r["delay_ps"] == max(r["add_delay_ps"], r["mul_delay_ps"])
        assert r["area_um2"] == pytest.approx(r["add_area_um2"] + r["mul_area_um2"])
        # linear 4 -> 2 with bias: 8 multiplications and 8 additions
        assert r["models_j"]["one-linear"] == pytest.approx(8e-15 * (r["add_fj_per_op"] + r["mul_fj_per_op"]),
                                                            rel=1e-12)
    # the same adder in both: the add unit is the same circuit, the multipliers differ
    assert records[0]["add_fj_per_op"] == records[1]["add_fj_per_op"]
    assert records[0]["mul_area_um2"] != records[1]["mul_area_um2"]
    dominated = [all(y <= x for x, y in zip(a, b)) and a != b
                 for a, b in [[(r["energy_j"], r["delay_ps"], r["area_um2"]) for r in pair]
                              for pair in (records, records[::-1])]]
    assert [r["pareto"] for r in records] == [not dominated[0], not dominated[1]]
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [float(r["energy_j:one-linear"]) for r in rows] == [r["energy_j"] for r in records]
    assert out_png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("argv, message", [
    (["--adders", "ripple_cary"], "did you mean 'ripple_carry'"),
    (["--formats", "fp12"], "fp12"),
    (["--out", "grid.txt"], "--out"),
    (["no-such-model.yaml"], "no-such-model.yaml"),
    (["--jobs", "0"], "--jobs"),
])
def test_explore_bad_arguments(capsys, argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, "explore", *argv)
    assert status == 2 and err.startswith("tosim: error: ") and message in err and err.count("\n") == 1
