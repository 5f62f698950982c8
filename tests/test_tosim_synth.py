import csv
import json
import re

import pytest

from tosim.cli import main

PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] (.+) \.\.\. \d+\.\d s(?:, ~\d+ (?:s|min) left)?$")


pytestmark = pytest.mark.usefixtures("cache_dir")  # an empty synthesis cache per test (conftest)


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_compare_adders_json_progress_and_cache(capsys):
    argv = ["compare-adders", "--widths", "4,8", "--designs", "ripple_carry,kogge_stone",
            "--json"]
    status, out, err = run(capsys, *argv)
    assert status == 0
    records = json.loads(out)
    assert [(r["design"], r["width"]) for r in records] == [
        ("ripple_carry", 4), ("kogge_stone", 4), ("ripple_carry", 8), ("kogge_stone", 8)]
    for r in records:
        assert {"design", "width", "transistors", "gates", "depth", "adp"} <= set(r)
        assert r["adp"] == r["transistors"] * r["depth"]
        assert r["counting"] == "synthesized" and r["cells"] == {}
        assert r["gates"] == sum(r["gate_types"].values())
    assert records[2]["depth"] == 8 and records[3]["depth"] < 8
    lines = err.splitlines()
    # synthesized widest first, counted up, with the time left until the last
    assert [PROGRESS.match(line).groups() for line in lines] == [
        ("1", "4", "ripple_carry 8-bit"), ("2", "4", "kogge_stone 8-bit"),
        ("3", "4", "ripple_carry 4-bit"), ("4", "4", "kogge_stone 4-bit")]
    assert all(" left" in line for line in lines[:3]) and " left" not in lines[3]
    # second run: everything comes from the cache, silently and identically
    status, again, err = run(capsys, *argv)
    assert status == 0 and err == "" and json.loads(again) == records


def test_compare_adders_table_csv_and_plot(capsys, tmp_path):
    csv_path, png_path = tmp_path / "adders.csv", tmp_path / "adders.png"
    status, out, err = run(capsys, "compare-adders", "--widths", "4,6", "--designs",
                           "ripple_carry", "sklansky", "--profile", "li2022",
                           "--csv", str(csv_path), "--plot", str(png_path))
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == ("# add designs under profile li2022 (structural counting); "
                        "ADP = transistors x depth")
    assert lines[1].split() == ["design", "width", "transistors", "gates", "depth", "ADP"]
    # a ripple-carry adder without carry-in under li2022: (N-1) full adders + 1 half adder
    assert lines[2].split() == ["ripple_carry", "4", "36", "0", "4", "144"]
    assert lines[4].split() == ["ripple_carry", "6", "56", "0", "6", "336"]
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["design"], r["width"], r["transistors"], r["gates"], r["depth"], r["adp"])
            for r in rows][::2] == [("ripple_carry", "4", "36", "0", "4", "144"),
                                     ("ripple_carry", "6", "56", "0", "6", "336")]
    assert [r["design"] for r in rows] == ["ripple_carry", "sklansky"] * 2
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # outputs are written through temporary files that do not survive
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adders.csv", "adders.png", "cache"]


def test_compare_other_units(capsys):
    status, out, _ = run(capsys, "compare-adders", "--unit", "mul", "--widths", "4",
                         "--designs", "array", "--profile", "li2022", "--json")
    assert status == 0
    (record,) = json.loads(out)
    assert record["design"] == "array" and record["width"] == 4
    assert record["cells"]["full_adder"] > 0
    assert record["transistors"] == (10 * (record["cells"].get("full_adder", 0)
                                           + record["cells"].get("counter_3_2", 0))
                                     + 6 * record["cells"].get("half_adder", 0)
                                     + sum(n * {"NOT": 2, "NAND": 4, "NOR": 4, "AND": 6, "OR": 6,
                                                "XOR": 4, "XNOR": 4, "ANDNOT": 6, "ORNOT": 6,
                                                "MUX": 6, "NMUX": 8, "AOI3": 6, "OAI3": 6,
                                                "AOI4": 8, "OAI4": 8}[g]
                                           for g, n in record["gate_types"].items()))


@pytest.mark.parametrize("argv, message", [
    (["--designs", "kogge"], r"unknown add design 'kogge'; did you mean 'kogge_stone'\? "
                             r"\(expected one of ripple_carry, .*, sklansky\)"),
    (["--unit", "mul", "--designs", "booth"], r"unknown mul design 'booth'; did you mean "
                                              r"'booth_wallace'\? \(expected one of .*\)"),
    (["--widths", "8,0"], r"--widths must be comma-separated positive integers, not '8,0'"),
    (["--widths", "8,x"], r"--widths must be comma-separated positive integers, not '8,x'"),
    (["--widths", ""], r"--widths must be comma-separated positive integers, not ''"),
    (["--unit", "pow"], r"argument --unit: invalid choice: 'pow' .*"),
    (["--profile", "no-such-profile"], r".*no-such-profile.*"),
    (["--jobs", "0"], r"--jobs must be a positive integer, not '0'"),
])
def test_compare_adders_bad_arguments(capsys, argv, message):
    status, out, err = run(capsys, "compare-adders", *argv)
    assert status == 2 and out == ""
    assert re.fullmatch(rf"tosim: error: {message}\n", err)


def test_unwritable_output_is_one_line_error(capsys, tmp_path):
    # checked before anything is synthesized: no progress line, no output
    missing = tmp_path / "missing" / "x.csv"
    status, out, err = run(capsys, "compare-adders", "--widths", "2", "--designs",
                           "ripple_carry", "--csv", str(missing))
    assert (status, out) == (2, "")
    assert err == f"tosim: error: --csv {missing}: no folder {missing.parent}\n"


@pytest.mark.parametrize("argv, message", [
    (["--widths", "100000"], "--widths: 100000 bits is above the limit of 256 bits"),
    (["--widths", "8,257"], "--widths: 257 bits is above the limit of 256 bits"),
    (["--widths", "8,\u00b2"], "--widths must be comma-separated positive integers, not '8,\u00b2'"),
    (["--csv", "x.txt"], "--csv x.txt: the extension must be .csv, not '.txt'"),
    (["--plot", "x.jpg"], "--plot x.jpg: the extension must be .png, not '.jpg'"),
    (["--csv", "x"], "--csv x: the extension must be .csv, not '(none)'"),
])
def test_compare_adders_limits_and_extensions(capsys, argv, message):
    status, out, err = run(capsys, "compare-adders", *argv)
    assert (status, out, err) == (2, "", f"tosim: error: {message}\n")


def test_compare_adders_checks_every_output_before_work(capsys, tmp_path):
    csv_path, png_path = tmp_path / "a.csv", tmp_path / "nodir" / "x.png"
    status, out, err = run(capsys, "compare-adders", "--widths", "4", "--designs", "ripple_carry",
                           "--csv", str(csv_path), "--plot", str(png_path))
    assert (status, out) == (2, "")
    assert err == f"tosim: error: --plot {png_path}: no folder {png_path.parent}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_compare_adders_help_states_the_width_limit(capsys):
    with pytest.raises(SystemExit):
        main(["compare-adders", "--help"])
    assert "1 to 256" in " ".join(capsys.readouterr().out.split())


def test_synth_json(capsys, tmp_path):
    # a custom profile (not bundled): the circuit is synthesized, with a progress line
    custom = tmp_path / "mine.yaml"
    custom.write_text("extends: li2022\ntechnology:\n  gates: {XOR: 5}\n")
    status, out, err = run(capsys, "synth", "--profile", str(custom), "--formats", "fp16",
                           "--ops", "add", "--json")
    assert status == 0
    (record,) = json.loads(out)
    assert {k: record[k] for k in ("format", "op", "design", "transistors", "gates")} == {
        "format": "fp16", "op": "add", "design": "ripple_carry",
        "transistors": 10 * 10 + 6, "gates": 0}
    assert record["depth"] > 0
    assert record["circuit"] in ("minimal", "integer")
    assert PROGRESS.match(err.splitlines()[0]).groups()[:2] == ("1", "1")
    # the built-in profile reads its bundled table: same figures, nothing synthesized
    status, out, err = run(capsys, "synth", "--profile", "li2022", "--formats", "fp16",
                           "--ops", "add", "--json")
    assert status == 0 and err == ""
    assert json.loads(out) == [record]


def test_synth_table_header(capsys):
    status, out, _ = run(capsys, "synth", "--profile", "li2022", "--formats", "bf16",
                         "--ops", "add,sub")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("# cost table of profile li2022 (structural counting): ")
    assert lines[1].split() == ["format", "op", "design", "transistors", "gates", "depth"]
    # bf16: 7 fraction bits, an 8-bit adder = 7 full adders + 1 half adder
    assert lines[2].split()[:4] == ["bf16", "add", "ripple_carry", "76"]
    assert lines[3].split()[:4] == ["bf16", "sub", "ripple_carry", "76"]


@pytest.mark.parametrize("argv, message", [
    (["--formats", "fp17"], r"unknown format 'fp17'; did you mean 'fp16'\? "
                            r"\(expected one of fp16, bf16, fp32, fp64, fp8_e4m3, fp8_e5m2, tf32, int8, int4, int32\)"),
    (["--ops", "add,sqr"], r"unknown op 'sqr'; did you mean 'sqrt'\? \(expected one of "
                            r"add, sub, mul, div, sqrt, cmp\)"),
])
def test_synth_bad_arguments(capsys, argv, message):
    status, out, err = run(capsys, "synth", *argv)
    assert status == 2 and out == ""
    assert re.fullmatch(rf"tosim: error: {message}\n", err)


def test_jobs_synthesize_in_worker_processes(capsys):
    argv = ["compare-adders", "--widths", "5", "--designs", "brent_kung,sklansky", "--json"]
    status, out, err = run(capsys, *argv, "--jobs", "2")
    assert status == 0
    parallel = json.loads(out)
    assert sorted(PROGRESS.match(line).group(3) for line in err.splitlines()) == [
        "brent_kung 5-bit", "sklansky 5-bit"]
    # the workers filled the cache: a sequential run reads the same figures back
    status, out, err = run(capsys, *argv)
    assert status == 0 and err == "" and json.loads(out) == parallel
    assert [r["design"] for r in parallel] == ["brent_kung", "sklansky"]


def test_yosys_failure_is_one_line_error(capsys, monkeypatch):
    from hwlib import YosysError, _yosys

    def fail(*args, **kwargs):
        raise YosysError("Out of memory")
    monkeypatch.setattr(_yosys, "run", fail)
    status, out, err = run(capsys, "compare-adders", "--widths", "3", "--designs",
                           "carry_skip", "--profile", "cmos-small")
    assert status == 2 and out == ""
    assert err.splitlines()[-1] == ("tosim: error: synthesis failed: carry_skip 3-bit: "
                                    "Out of memory")
