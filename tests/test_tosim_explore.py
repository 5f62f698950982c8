"""``tosim explore``: design combinations priced for switching energy, delay and area."""
import concurrent.futures
import csv
import io
import json
import os
import sys

import pytest

import hardware_profiles as hp
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


def test_variant_profile_divider_and_root_axes(tmp_path):
    """A divider or root axis sets that unit's design and keeps the base unit's options the
    design takes (Newton-Raphson's seed bits and multiplier are not the digit recurrence's)."""
    base = hp.load("cmos-generic")
    variant = _explore.variant_profile(base, "sklansky", "array", str(tmp_path), divider="restoring",
                                       root="digit_recurrence")
    assert variant.units["div"] == {"design": "restoring", "adder": base.units["div"]["adder"]}
    assert variant.units["sqrt"] == {"design": "digit_recurrence", "adder": base.units["sqrt"]["adder"]}
    kept = _explore.variant_profile(base, "sklansky", "array", str(tmp_path / "k"), root="newton_raphson") \
        if (tmp_path / "k").mkdir() is None else None
    assert kept.units["sqrt"] == base.units["sqrt"] and kept.units["div"] == base.units["div"]
    point = _explore.DesignPoint("a", "m", "fp16", add_fj_per_op=1.0, mul_fj_per_op=2.0, add_delay_ps=5.0,
                                 mul_delay_ps=3.0, add_area_um2=1.0, mul_area_um2=1.0, divider="restoring",
                                 div_fj_per_op=4.0, div_delay_ps=9.0, div_area_um2=2.0)
    assert point.units == ["add", "mul", "div"]
    assert (point.mac_fj, point.units_fj, point.delay_ps, point.area_um2) == (3.0, 7.0, 9.0, 4.0)
    assert point.objective() == (7.0, 9.0, 4.0)


# --- a real grid: fp8_e4m3 units (small circuits), short streams ------------------------------

GRID_PROFILE = """\
extends: cmos-generic
name: explore-fp8
formats: [fp8_e4m3, fp16]
default_format: fp8_e4m3
power: {vectors: 48, seed: 3}
"""

GRID_MODEL = {"name": "norm-net", "input": [8], "format": "fp8_e4m3",
              "layers": [{"type": "linear", "out": 4}, {"type": "layernorm"}, {"type": "softmax"}]}

GRID = dict(adders=["carry_lookahead"], multipliers=["array"], formats=["fp8_e4m3"],
            dividers=["restoring", "srt_radix2"], roots=["digit_recurrence"])


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The GRID explored once in this process (jobs=1) on a private cache: 2 combinations of an
    fp8 adder, multiplier, two dividers and a root, applied to a model with every basic op."""
    folder = tmp_path_factory.mktemp("explore")
    profile = folder / "fp8.yaml"
    profile.write_text(GRID_PROFILE)
    old = os.environ.get("TOSIM_CACHE_DIR")
    os.environ["TOSIM_CACHE_DIR"] = str(folder / "cache")
    try:
        seen = []
        points = _explore.explore(str(profile), models=[GRID_MODEL], progress=lambda *a: seen.append(a), **GRID)
    finally:
        if old is None:
            del os.environ["TOSIM_CACHE_DIR"]
        else:
            os.environ["TOSIM_CACHE_DIR"] = old
    return {"profile": str(profile), "points": points, "progress": seen, "folder": folder}


def test_grid_with_divider_and_root_axes(grid, tmp_path, monkeypatch):
    """Each combination holds four units: delay the slowest, area the sum, and the model's joules
    its op counts times the per-op switching energies of the combination's units."""
    import opcount
    from hwlib.activity import op_energies
    points = grid["points"]
    assert [(p.adder, p.multiplier, p.divider, p.root) for p in points] == [
        ("carry_lookahead", "array", "restoring", "digit_recurrence"),
        ("carry_lookahead", "array", "srt_radix2", "digit_recurrence")]
    assert [done for done, _, _ in grid["progress"]] == [1, 2]
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(grid["folder"] / "cache"))
    counts = opcount.count_model(opcount.load_model(GRID_MODEL), hp.load(grid["profile"])).totals["all"]
    assert all(counts[op] > 0 for op in ("add", "sub", "mul", "div", "sqrt", "cmp"))
    for p in points:
        assert p.error is None and p.units == ["add", "mul", "div", "sqrt"]
        variant = _explore.variant_profile(hp.load(grid["profile"]), p.adder, p.multiplier, str(tmp_path),
                                           divider=p.divider, root=p.root)
        table = op_energies(variant, [(op, "fp8_e4m3") for op in counts if counts[op]])
        assert all(entry.cached for entry in table.values())        # the grid's own entries
        assert table[("div", "fp8_e4m3")].design == p.divider
        assert table[("sqrt", "fp8_e4m3")].design == p.root
        figures = {op: table[(op, "fp8_e4m3")] for op in p.units}
        assert p.delay_ps == max(f.delay_ps for f in figures.values())
        assert p.area_um2 == pytest.approx(sum(f.area_um2 for f in figures.values()), rel=1e-12)
        assert p.units_fj == pytest.approx(sum(f.energy_fj_per_op for f in figures.values()), rel=1e-12)
        by_hand = sum(n * table[(op, "fp8_e4m3")].energy_fj_per_op for op, n in counts.items() if n) * 1e-15
        assert p.models_j == {"norm-net": pytest.approx(by_hand, rel=1e-12)}
    # the dividers differ, the rest is the same circuit
    assert points[0].add_fj_per_op == points[1].add_fj_per_op and points[0].div_area_um2 != points[1].div_area_um2


def test_cli_divider_and_root_columns(grid, capsys, monkeypatch):
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(grid["folder"] / "cache"))
    status, out, err = run(capsys, "explore", "--profile", grid["profile"], "--formats", "fp8_e4m3",
                           "--adders", "carry_lookahead", "--multipliers", "array", "--dividers",
                           "restoring,srt_radix2", "--roots", "digit_recurrence")
    assert status == 0, err
    lines = out.splitlines()
    assert "delay = slowest of the add, mul, div, sqrt units" in lines[0] and "fJ per add + mul + div + sqrt" in lines[0]
    assert lines[1].split()[:9] == ["format", "adder", "multiplier", "divider", "root", "add", "fJ", "mul", "fJ"]
    row = lines[2].split()
    p = grid["points"][0]
    assert row[:5] == ["fp8_e4m3", "carry_lookahead", "array", "restoring", "digit_recurrence"]
    assert row[5:11] == [f"{p.add_fj_per_op:,.0f}", f"{p.mul_fj_per_op:,.0f}", f"{p.div_fj_per_op:,.0f}",
                         f"{p.sqrt_fj_per_op:,.0f}", f"{p.delay_ps:,.0f}", f"{p.area_um2:,.0f}"]


def test_dask_cluster_gives_the_local_result(grid, monkeypatch):
    """The same grid on a Dask LocalCluster (in-process workers, fresh cache: the units are
    simulated again there) gives the local run's rows exactly."""
    pytest.importorskip("distributed")
    from distributed import LocalCluster
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(grid["folder"] / "dask-cache"))
    seen = []
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster, \
            concurrent.futures.ThreadPoolExecutor(1) as waiting:
        # a hung cluster fails the test after two minutes instead of hanging the suite
        points = waiting.submit(_explore.explore, grid["profile"], models=[GRID_MODEL],
                                scheduler=cluster.scheduler_address, timeout=20,
                                progress=lambda *a: seen.append(a), **GRID).result(timeout=120)
    assert [p.to_json() for p in points] == [p.to_json() for p in grid["points"]]
    assert sorted(done for done, _, _ in seen) == [1, 2]
    assert any((grid["folder"] / "dask-cache" / "v1" / "activity").iterdir())   # computed there, not read


def test_scheduler_without_dask_is_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)        # import distributed fails
    status, out, err = run(capsys, "explore", "--adders", "ripple_carry", "--multipliers", "array",
                           "--scheduler", "tcp://127.0.0.1:8786")
    assert status == 2 and out == ""
    assert err == ("tosim: error: --scheduler tcp://127.0.0.1:8786: Dask's distributed scheduler is not "
                   "installed (pip install 'tosim[dask]', or dask[distributed])\n")


@pytest.mark.parametrize("argv, message", [
    (["--scheduler", "tcp://127.0.0.1:8786", "--jobs", "2"], "--jobs does not go with --scheduler"),
    (["--dividers", "srt"], "unknown divider design 'srt'"),
    (["--roots", "newton"], "did you mean 'newton_raphson'"),
])
def test_explore_bad_axes_and_scheduler(capsys, argv, message):
    status, _, err = run(capsys, "explore", *argv)
    assert status == 2 and err.startswith("tosim: error: ") and message in err and err.count("\n") == 1


def test_divider_axis_refuses_a_shared_divsqrt_unit(capsys, tmp_path):
    """A profile whose div and sqrt run on one shared unit would ignore a divider axis: refused."""
    profile = tmp_path / "shared.yaml"
    profile.write_text("extends: cmos-generic\nunits:\n  divsqrt: {design: srt_radix2}\n")
    status, _, err = run(capsys, "explore", "--profile", str(profile), "--dividers", "restoring")
    assert status == 2 and err.count("\n") == 1
    assert "prices div and sqrt with its shared unit (units.divsqrt)" in err
