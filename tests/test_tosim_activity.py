"""``tosim activity`` and ``tosim compare-adders --power``."""
import csv
import json

import pytest

import hardware_profiles as hp
from hwlib import activity
from tosim.cli import main

pytestmark = pytest.mark.usefixtures("cache_dir")


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_activity_json_equals_the_python_api(capsys, tmp_path):
    out_csv = tmp_path / "act.csv"
    status, out, err = run(capsys, "activity", "--unit", "mul", "--widths", "4",
                           "--designs", "array", "--dist", "uniform", "relu:zeros=0.5",
                           "--vectors", "300", "--seed", "3", "--json", "--csv", str(out_csv))
    assert status == 0
    records = json.loads(out)
    assert [(r["design"], r["width"], r["distribution"]) for r in records] == [
        ("array", 4, "uniform"), ("array", 4, "relu:zeros=0.5")]
    expected = activity.unit_activity("mul", "array", 4, hp.load("cmos-generic"),
                                      "relu:zeros=0.5", vectors=300, seed=3)
    assert records[1] == expected.to_json()
    assert records[1]["operations"] == 299
    assert records[1]["energy_fj_per_op"] < records[0]["energy_fj_per_op"]
    rows = list(csv.DictReader(out_csv.read_text().splitlines()))
    assert [float(r["energy_fj_per_op"]) for r in rows] == pytest.approx(
        [r["energy_fj_per_op"] for r in records])
    assert err.count("\n") == 2       # one progress line per stream


def test_activity_table_and_vdd(capsys):
    status, out, _ = run(capsys, "activity", "--widths", "4", "--designs", "ripple_carry",
                         "--vectors", "200")
    assert status == 0 and "glitches not counted" in out and "ripple_carry" in out
    _, low, _ = run(capsys, "activity", "--widths", "4", "--designs", "ripple_carry",
                    "--vectors", "200", "--vdd", "0.55", "--json")
    _, nominal, _ = run(capsys, "activity", "--widths", "4", "--designs", "ripple_carry",
                        "--vectors", "200", "--json")
    assert json.loads(low)[0]["energy_fj_per_op"] == pytest.approx(
        json.loads(nominal)[0]["energy_fj_per_op"] / 4)


def test_compare_adders_power_columns(capsys, tmp_path):
    out_csv = tmp_path / "cmp.csv"
    status, out, _ = run(capsys, "compare-adders", "--widths", "4,8", "--designs",
                         "ripple_carry,sklansky", "--power", "--vectors", "200", "--json",
                         "--csv", str(out_csv))
    assert status == 0
    records = json.loads(out)
    for r in records:
        assert {"design", "width", "transistors", "gates", "depth", "adp"} <= set(r)
        assert r["edp_fj_ns"] == pytest.approx(r["energy_fj_per_op"] * r["delay_ps"] / 1000)
        assert r["delay_ps"] > 0 and r["area_um2"] > 0 and r["energy_fj_per_op"] > 0
    ripple8 = next(r for r in records if r["design"] == "ripple_carry" and r["width"] == 8)
    sklansky8 = next(r for r in records if r["design"] == "sklansky" and r["width"] == 8)
    assert sklansky8["delay_ps"] < ripple8["delay_ps"]
    header = next(csv.reader(out_csv.read_text().splitlines()))
    assert header[:6] == ["design", "width", "transistors", "gates", "depth", "adp"]
    assert {"delay_ps", "energy_fj_per_op", "edp_fj_ns"} <= set(header)
    # without --power nothing changes
    _, plain, _ = run(capsys, "compare-adders", "--widths", "4", "--designs", "ripple_carry",
                      "--json")
    assert "delay_ps" not in json.loads(plain)[0]


@pytest.mark.parametrize("argv,message", [
    (["--dist", "gauss"], "unknown distribution 'gauss'"),
    (["--dist", "relu:zeros=2"], "zeros is a fraction"),
    (["--vectors", "1"], "--vectors must be an integer of at least 2"),
    (["--seed", "x"], "--seed must be"),
    (["--vdd", "0"], "--vdd must be a positive number"),
    (["--formats", "fp16", "--widths", "8"], "--widths and --designs are for integer units"),
    (["--ops", "mul"], "--ops goes with --formats"),
    (["--designs", "koge_stone"], "did you mean 'kogge_stone'"),
    (["--csv", "out.txt"], "--csv"),
])
def test_activity_bad_arguments(capsys, argv, message):
    status, out, err = run(capsys, "activity", *argv)
    assert status == 2
    assert err.startswith("tosim: error: ") and message in err and err.count("\n") == 1


def test_glitches_flag_counts_unit_delay_toggles(capsys):
    argv = ["activity", "--widths", "6", "--designs", "ripple_carry", "--vectors", "300",
            "--json"]
    _, zero, _ = run(capsys, *argv)
    status, unit, _ = run(capsys, *argv, "--glitches")
    assert status == 0
    zero, unit = json.loads(zero)[0], json.loads(unit)[0]
    assert zero["glitches"].startswith("not counted") and unit["glitches"].startswith("counted")
    expected = activity.unit_activity("add", "ripple_carry", 6, hp.load("cmos-generic"),
                                      vectors=300, glitches=True)
    assert unit == expected.to_json()
    assert unit["energy_fj_per_op"] > zero["energy_fj_per_op"]
    _, out, _ = run(capsys, "compare-adders", "--widths", "6", "--designs", "ripple_carry",
                    "--power", "--glitches", "--vectors", "300", "--json")
    assert json.loads(out)[0]["energy_fj_per_op"] == pytest.approx(unit["energy_fj_per_op"])


def test_compare_adders_pareto_plot(capsys, tmp_path):
    png = tmp_path / "front.png"
    status, out, _ = run(capsys, "compare-adders", "--widths", "4,6", "--designs",
                         "ripple_carry,kogge_stone", "--pareto", str(png), "--vectors", "100")
    assert status == 0 and "fJ/op" in out            # --pareto implies --power
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    status, _, err = run(capsys, "compare-adders", "--pareto", str(tmp_path / "front.jpg"))
    assert status == 2 and "--pareto" in err
