"""tosim score / tosim sweep: rows, errors, energy and carbon, output files, the adapter.

Cost tables come from a fixed fake table (monkeypatched adapter), so no test synthesizes."""
import csv
import io
import json
import os
import shutil

import numpy as np
import pytest

import hardware_profiles
import opcount
import tosim
import tosim._costs
from opcount import sweep
from tosim import cmd_score, cmd_sweep
from tosim._io import write_atomic
from tests.fakes import FORMAT_COST, OP_COST, fake_costs
from tosim.cli import main

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "models")
MLP = os.path.join(FIXTURES, "mlp-4x8.yaml")
RESBLOCK = os.path.join(FIXTURES, "resblock.json")


pytestmark = pytest.mark.usefixtures("fixed_costs")  # tests.fakes.fake_costs, no synthesis (conftest)


def expected_tos(source, profile, phase="inference", batch=1):
    """Exact counts x the fake table, in Python."""
    result = opcount.count_model(opcount.load_model(source), hardware_profiles.load(profile), phase=phase, batch=batch)
    per_stage = {s: 0.0 for s in opcount.STAGES}
    for layer in result.layers:
        for s in opcount.STAGES:
            per_stage[s] += sum(n * OP_COST[op] * FORMAT_COST[layer.format] for op, n in layer.stages[s].items())
    return result, per_stage


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_rows_match_counts_times_costs(tmp_path):
    out = tmp_path / "rows.json"
    assert main(["score", MLP, RESBLOCK, "--profile", "li2022", "--phase", "training", "--batch", "3",
                 "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["name"] for r in rows] == ["mlp-4x8", "resblock"]
    for row, source in zip(rows, [MLP, RESBLOCK]):
        result, per_stage = expected_tos(source, "li2022", "training", 3)
        assert row["params"] == result.params and row["macs"] == result.macs and row["flops"] == 2 * result.macs
        assert {op: row[op] for op in opcount.BASIC_OPS} == result.totals["all"]
        for s in opcount.STAGES:
            assert row[f"tos_{s}"] == pytest.approx(per_stage[s], rel=1e-12)
        assert row["tos"] == pytest.approx(sum(per_stage.values()), rel=1e-12)
        assert row["energy_j"] is None and row["gco2e"] is None and row["error"] is None
        assert (row["profile"], row["phase"], row["batch"], row["source"]) == ("li2022", "training", 3, source)


def test_bad_files_become_rows_with_their_error(tmp_path, capsys):
    out = tmp_path / "rows.csv"
    status = main(["score", FIXTURES, "zoo:lenet5", "zoo:nope", "--out", str(out)])
    assert status == 1
    rows = read_csv(out)
    by_source = {r["source"]: r for r in rows}
    assert by_source[os.path.join(FIXTURES, "bad-missing-field.yaml")]["error"] == (
        f"{os.path.join(FIXTURES, 'bad-missing-field.yaml')}: layer 'c1' (conv2d): missing field 'kernel'")
    assert by_source["zoo:nope"]["error"].startswith("zoo:nope: unknown zoo model (known: ")
    assert by_source["zoo:nope"]["name"] == "nope" and by_source["zoo:nope"]["tos"] == ""
    good = [r for r in rows if not r["error"]]
    # every good row is written: the fixture folder's models (HF configs included) and lenet5
    assert {r["name"] for r in good} >= {"mlp-4x8", "resblock", "lenet5"}
    assert all(float(r["tos"]) > 0 for r in good)
    err = capsys.readouterr().err
    assert "tosim: error: zoo:nope: unknown zoo model" in err


def test_folder_expansion_is_recursive_and_sorted(tmp_path):
    (tmp_path / "b").mkdir()
    shutil.copy(MLP, tmp_path / "b" / "z.yaml")
    shutil.copy(MLP, tmp_path / "a.yml")
    (tmp_path / "notes.txt").write_text("not a model")
    assert cmd_score.expand_inputs([str(tmp_path), "zoo:lenet5"]) == [
        str(tmp_path / "a.yml"), str(tmp_path / "b" / "z.yaml"), "zoo:lenet5"]
    assert cmd_score.expand_inputs([])[:2] == ["zoo:alexnet", "zoo:bert-base"]
    assert len(cmd_score.expand_inputs(["zoo:all"])) == len(opcount.zoo_names())


def test_energy_and_carbon_from_the_device(tmp_path, capsys):
    out = tmp_path / "e.json"
    assert main(["score", MLP, "--profile", "li2022", "--device", "laptop-cpu-dnn-tos", "--phase", "training",
                 "--out", str(out)]) == 0
    row = json.loads(out.read_text())[0]
    assert row["energy_j"] == pytest.approx(1.71e3 + 3.65e-12 * row["tos"], rel=1e-12)
    assert row["gco2e"] == pytest.approx(row["energy_j"] / 3.6e6 * 475, rel=1e-12)
    assert main(["score", MLP, "--profile", "li2022", "--device", "laptop-cpu-dnn-flops", "--phase", "training",
                 "--grid-intensity", "50", "--out", str(out)]) == 0
    row = json.loads(out.read_text())[0]
    assert row["energy_j"] == pytest.approx(1.73e3 + 8.42e-8 * row["flops"], rel=1e-12)
    assert row["gco2e"] == pytest.approx(row["energy_j"] / 3.6e6 * 50, rel=1e-12)
    # a device fitted on training measurements, used for inference: a note, not an error
    assert main(["score", MLP, "--profile", "li2022", "--device", "laptop-cpu-dnn-tos"]) == 0
    assert "was fitted on training measurements" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--profile", "li2022", "--device", "laptop-cpu-dnn-to"],
     "tosim: error: profile 'li2022' has no device 'laptop-cpu-dnn-to'; did you mean 'laptop-cpu-dnn-tos'? "
     "(devices: "),
    (["--device", "gpu"], "tosim: error: profile 'cmos-generic' has no devices, so there is no 'gpu'"),
    (["--out", "rows.txt"], "tosim: error: --out rows.txt: the extension must be .csv or .json, not '.txt'"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    assert main(["score", MLP] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_per_layer_breakdown_sums_to_the_model(tmp_path):
    out = tmp_path / "layers.csv"
    assert main(["score", RESBLOCK, "--per-layer", "--phase", "training", "--out", str(out)]) == 0
    rows = read_csv(out)
    model, layers = rows[0], rows[1:]
    assert model["layer"] == "" and [r["layer"] for r in layers][:2] == ["stem", "batchnorm_1"]
    assert layers[-1]["layer"] == "loss"
    assert sum(float(r["tos"]) for r in layers) == pytest.approx(float(model["tos"]), rel=1e-12)
    assert sum(int(r["mul"]) for r in layers) == int(model["mul"])
    assert {r["format"] for r in layers} == {"fp32", "fp16"}
    json_out = tmp_path / "layers.json"
    assert main(["score", RESBLOCK, "--per-layer", "--out", str(json_out)]) == 0
    row = json.loads(json_out.read_text())[0]
    assert sum(layer["tos"]["total"] for layer in row["layers"]) == pytest.approx(row["tos"], rel=1e-12)


def test_whole_run_is_epochs_times_its_steps(tmp_path, capsys):
    """--samples 10 --batch 4 --epochs 3: two steps of 4 and one of 2 per epoch, three epochs;
    counts exact, TOs and energy on the whole run (the device polynomial is not additive)."""
    out = tmp_path / "run.json"
    assert main(["score", MLP, RESBLOCK, "zoo:nope", "--profile", "li2022", "--phase", "training", "--batch", "4",
                 "--samples", "10", "--epochs", "3", "--device", "laptop-cpu-dnn-tos", "--per-layer",
                 "--out", str(out)]) == 1
    rows = json.loads(out.read_text())
    for row, source in zip(rows, [MLP, RESBLOCK]):
        four, four_tos = expected_tos(source, "li2022", "training", 4)
        two, two_tos = expected_tos(source, "li2022", "training", 2)
        assert {op: row[op] for op in opcount.BASIC_OPS} == {
            op: 3 * (2 * four.totals["all"][op] + two.totals["all"][op]) for op in opcount.BASIC_OPS}
        assert row["macs"] == 3 * (2 * four.macs + two.macs) and row["flops"] == 2 * row["macs"]
        for s in opcount.STAGES:
            assert row[f"tos_{s}"] == pytest.approx(3 * (2 * four_tos[s] + two_tos[s]), rel=1e-12)
        assert row["energy_j"] == pytest.approx(1.71e3 + 3.65e-12 * row["tos"], rel=1e-12)
        assert (row["batch"], row["samples"], row["passes"], row["epochs"], row["steps"]) == (4, 10, None, 3, 9)
        assert row["params"] == four.params
        assert sum(layer["tos"]["total"] for layer in row["layers"]) == pytest.approx(row["tos"], rel=1e-12)
        assert sum(layer["counts"]["mul"] for layer in row["layers"]) == row["mul"]
    assert rows[2]["error"].startswith("zoo:nope: unknown zoo model") and rows[2]["tos"] is None
    assert (rows[2]["steps"], rows[2]["epochs"], rows[2]["energy_j"]) == (9, 3, None)
    assert "whole run: 3 epoch(s) of 10 samples = 9 steps" in capsys.readouterr().out


def test_whole_run_by_passes_and_epochs(tmp_path):
    one, _ = expected_tos(MLP, "cmos-generic", "training", 5)
    for argv, steps in ((["--passes", "7"], 7), (["--epochs", "4"], 4), (["--passes", "2", "--epochs", "3"], 6)):
        out = tmp_path / "run.csv"
        assert main(["score", MLP, "--phase", "training", "--batch", "5", *argv, "--out", str(out)]) == 0
        row = read_csv(out)[0]
        assert int(row["steps"]) == steps and int(row["batch"]) == 5
        assert int(row["mul"]) == steps * one.totals["all"]["mul"]
        assert int(row["macs"]) == steps * one.macs and row["epochs"] == (argv[-1] if "--epochs" in argv else "1")


def test_whole_run_adds_up_data_movement(tmp_path):
    def score_json(*argv):
        out = tmp_path / "m.json"
        assert main(["score", "zoo:lenet5", "--profile", "horowitz45", "--phase", "training", *argv,
                     "--out", str(out)]) == 0
        return json.loads(out.read_text())[0]

    run, eight, four = score_json("--batch", "8", "--samples", "20", "--epochs", "2"), score_json("--batch", "8"), \
        score_json("--batch", "4")
    # --plot draws the run's first step, also where that step is a remainder smaller than --batch
    small = score_json("--batch", "64", "--samples", "10", "--plot", str(tmp_path / "p.png"), "--per-layer")
    assert (tmp_path / "p-lenet5.png").stat().st_size > 1000
    assert small["batch"] == 64 and small["steps"] == 1
    assert "steps" not in small["layers"][0] and "energy_movement_j" in small["layers"][0]
    for key in ("energy_compute_j", "energy_movement_j", "accesses_dram", "accesses_rf"):
        assert run[key] == pytest.approx(2 * (2 * eight[key] + four[key]), rel=1e-12)


@pytest.mark.parametrize("samples, steps", [(3, {3: 1}), (10, {5: 2}), (12, {5: 2, 2: 1})])
def test_whole_run_step_sizes(tmp_path, capsys, samples, steps):
    """Fewer samples than --batch: one step of them; an exact multiple: no remainder step. The
    batch column stays --batch; per-layer CSV lines repeat the run columns."""
    out = tmp_path / "run.csv"
    assert main(["score", RESBLOCK, "--phase", "training", "--batch", "5", "--samples", str(samples), "--per-layer",
                 "--out", str(out)]) == 0
    model, *layers = read_csv(out)
    want = {op: sum(n * expected_tos(RESBLOCK, "cmos-generic", "training", b)[0].totals["all"][op]
                    for b, n in steps.items()) for op in opcount.BASIC_OPS}
    assert {op: int(model[op]) for op in opcount.BASIC_OPS} == want
    assert model["batch"] == "5" and model["steps"] == str(sum(steps.values()))
    assert all((r["batch"], r["samples"], r["epochs"], r["steps"]) == ("5", str(samples), "1", model["steps"])
               for r in layers)
    assert sum(int(r["add"]) for r in layers) == int(model["add"])
    total = sum(steps.values())
    assert (f"(training, batch 5, whole run: 1 epoch(s) of {samples} samples = {total} "
            f"step{'s' if total > 1 else ''}) in ") in capsys.readouterr().out


def test_whole_run_usage_error(capsys):
    assert main(["score", MLP, "--samples", "10", "--passes", "2"]) == 2
    assert capsys.readouterr().err == "tosim: error: give --samples or --passes, not both\n"


def test_past_int64_is_priced_from_exact_counts():
    profile = hardware_profiles.load("cmos-generic")
    rows = tosim.score_many(["zoo:gpt3-175b"], profile, phase="training", batch=2 ** 24).to_dicts()
    result, per_stage = expected_tos("zoo:gpt3-175b", "cmos-generic", "training", 2 ** 24)
    with pytest.raises(OverflowError):
        result.as_array()
    assert rows[0]["mul"] == result.totals["all"]["mul"] > 2 ** 63
    assert rows[0]["tos"] == pytest.approx(sum(per_stage.values()), rel=1e-12)


def test_worker_processes_give_the_same_rows():
    profile = hardware_profiles.load("cmos-generic")
    sources = [MLP, RESBLOCK, "zoo:lenet5", "zoo:nope"]
    one = tosim.score_many(sources, profile, jobs=1)
    two = tosim.score_many(sources, profile, jobs=2)
    assert one.to_dicts() == two.to_dicts() and one == two


def test_no_arguments_score_the_zoo(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["model", "params", "MACs", "FLOPs", "TOs"]
    n = len(opcount.zoo_names())
    assert lines[-1].startswith(f"{n} of {n} models scored with cmos-generic (inference, batch 1) in ")


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("old")
    write_atomic(str(path), "new\n")
    write_atomic(str(tmp_path / "b.png"), b"\x89PNG")
    assert path.read_text() == "new\n" and (tmp_path / "b.png").read_bytes() == b"\x89PNG"
    assert sorted(os.listdir(tmp_path)) == ["b.png", "x.csv"]


def test_progress_bar_draws_and_clears():
    stream = io.StringIO()
    bar = cmd_score.ProgressBar(4, "scoring", True, stream=stream, delay=0)
    for i in range(1, 5):
        bar.last = 0.0
        bar.update(i, f"zoo:m{i}")
    bar.close()
    text = stream.getvalue()
    assert "\rscoring [" + "#" * 22 + "." * 8 + "] 3/4 zoo:m3" in text
    assert "] 3/4 zoo:m3" in text and " s left" in text      # counts up, with the time left
    assert text.endswith("\r" + " " * 106 + "\r")
    silent = io.StringIO()
    quiet = cmd_score.ProgressBar(4, "scoring", False, stream=silent, delay=0)
    quiet.update(1)
    quiet.close()
    assert silent.getvalue() == ""


def test_synthesis_progress_counts_up_with_the_time_left():
    from tosim._costs import SynthesisProgress
    now = [100.0]
    stream = io.StringIO()
    progress = SynthesisProgress(stream, clock=lambda: now[0])
    # hwlib announces the circuits to synthesize in start order: table positions 16, 3, 9
    progress.planned([(16, 6.0), (3, 3.0), (9, 1.0)])
    for index, label, seconds in ((16, "fp64 div", 60.0), (3, "fp64 add", 30.0), (9, "fp16 add", 10.0)):
        progress.start(index, 18, label)
        now[0] += seconds
        progress.done(index, 18, label, seconds)
    assert stream.getvalue().splitlines() == [
        "tosim: synthesizing fp64 div (1/3; cached for next time) ...",
        "tosim: synthesized fp64 div in 60.0 s (~40 s left)",       # 60 s for 6 of 10 work units
        "tosim: synthesizing fp64 add (2/3; cached for next time) ...",
        "tosim: synthesized fp64 add in 30.0 s (~10 s left)",
        "tosim: synthesizing fp16 add (3/3; cached for next time) ...",
        "tosim: synthesized fp16 add in 10.0 s"]
    # a caller that plans nothing keeps its own numbering
    stream = io.StringIO()
    progress = SynthesisProgress(stream)
    progress.start(2, 5, "x")
    progress.done(2, 5, "x", 1.0)
    assert stream.getvalue() == ("tosim: synthesizing x (2/5; cached for next time) ...\n"
                                 "tosim: synthesized x in 1.0 s\n")


def test_costs_adapter_orders_rows_by_op_and_format(monkeypatch):
    import hwlib.cost

    class Row:
        def __init__(self, fmt, op):
            self.format, self.op = fmt, op
            self.cost = hwlib.cost.Cost(transistors=OP_COST[op] * FORMAT_COST[fmt])

    def table(profile, formats=None, ops=None, *, cache=None, progress=None):
        return [Row(f, op) for f in formats for op in reversed(ops)]

    monkeypatch.undo()
    monkeypatch.setattr(hwlib.cost, "cost_table", table)
    monkeypatch.setattr(tosim._costs, "_MEMO", {})
    monkeypatch.setattr(tosim._costs, "_COLUMNS", {})
    got = tosim._costs.costs_array(hardware_profiles.load("cmos-generic"), ["fp64", "fp16"])
    np.testing.assert_array_equal(got, fake_costs(None, ["fp64", "fp16"]))
    assert got.dtype == np.float64 and not got.flags.writeable
    # the same numbers without numpy, one tuple per format
    columns = tosim._costs.cost_columns(hardware_profiles.load("cmos-generic"), ["fp64", "fp16"])
    assert columns == [tuple(got[:, 0]), tuple(got[:, 1])]
    assert all(type(c) is float for column in columns for c in column)


# --- sweep ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, values", [
    ("8", [8]), ("4,8,16", [4, 8, 16]), ("4:7", [4, 5, 6, 7]), ("4:20:+5", [4, 9, 14, 19]),
    ("4:4096:x2", [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]), ("1:3,2,10", [1, 2, 3, 10]),
])
def test_parse_axis(text, values):
    assert cmd_sweep.parse_axis("width", text) == values


@pytest.mark.parametrize("text, message", [
    ("4:x", r"^--width: '4:x' is not a number or a range A:B, A:B:\+STEP, A:B:xFACTOR$"),
    ("9:4", r"^--width: range '9:4' ends before it starts$"),
    ("4:9:x1", r"^--width: the factor of '4:9:x1' must be above 1$"),
    ("0,4", r"^--width: values must be positive, not 0$"),
])
def test_parse_axis_errors(text, message):
    with pytest.raises(ValueError, match=message):
        cmd_sweep.parse_axis("width", text)


def test_sweep_csv_plot_and_energy(tmp_path, capsys):
    out, plot = tmp_path / "s.csv", tmp_path / "s.png"
    assert main(["sweep", "mlp", "--width", "4:18", "--profile", "li2022", "--phase", "training",
                 "--device", "laptop-cpu-dnn-tos", "--out", str(out), "--plot", str(plot)]) == 0
    rows = read_csv(out)
    assert len(rows) == 15 * 3
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    profile = hardware_profiles.load("li2022")
    for row in rows[::7]:
        spec = sweep.mlp_spec(width=int(row["width"]), depth=int(row["depth"]), activation=row["activation"])
        _, per_stage = expected_tos(spec, "li2022", "training")
        assert float(row["tos"]) == pytest.approx(sum(per_stage.values()), rel=1e-12)
        assert float(row["energy_j"]) == pytest.approx(1.71e3 + 3.65e-12 * float(row["tos"]), rel=1e-12)
        assert float(row["gco2e"]) == pytest.approx(float(row["energy_j"]) / 3.6e6 * profile.grid_gco2_per_kwh)
    assert "45 mlp configurations (15 x 1 x 3) counted and priced with li2022 fp32" in capsys.readouterr().out


def test_cnn_sweep_flags_configurations_that_do_not_fit(tmp_path, capsys):
    out = tmp_path / "c.csv"
    status = main(["sweep", "cnn", "--depth", "1:3", "--kernel", "5", "--image", "9", "--channels", "4",
                   "--out", str(out)])
    assert status == 1
    rows = read_csv(out)
    assert [r["error"] for r in rows] == ["", "", "kernel does not fit the image"]
    assert rows[2]["tos"] == "" and rows[2]["depth"] == "3"
    assert "3 cnn configurations (3 x 1 x 1 x 1 x 1 x 1)" in capsys.readouterr().out


def test_sweep_out_is_written_in_chunks(tmp_path, monkeypatch, capsys):
    """--out streams its rows: chunks of 2 rows give the same file as one piece, flagged rows
    included, and no temporary file is left beside it."""
    from tosim import cmd_sweep
    argv = ["sweep", "cnn", "--depth", "1:3", "--kernel", "3,5", "--image", "9", "--channels", "4"]
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    assert main([*argv, "--out", str(whole)]) == 1
    monkeypatch.setattr(cmd_sweep, "CSV_CHUNK_ROWS", 2)
    chunks = []
    real = cmd_sweep._csv_chunks
    monkeypatch.setattr(cmd_sweep, "_csv_chunks", lambda columns: chunks.append(1) or real(columns, 2))
    assert main([*argv, "--out", str(chunked)]) == 1
    assert chunks and chunked.read_bytes() == whole.read_bytes()
    assert len(read_csv(chunked)) == 6 and sorted(p.name for p in tmp_path.iterdir()) == ["chunked.csv", "whole.csv"]
    # header, then one piece per chunk of rows
    assert list(real(_tiny_columns(), 1)) == ["a,tos,error\n", "1,2.5,\n", "2,0.5,\n"]


def _tiny_columns():
    import numpy as np
    return {"a": np.array([1, 2]), "tos": np.array([2.5, 0.5]), "status": np.array([0, 0])}


def test_sweep_help_lists_the_kernel_activations():
    assert cmd_sweep.ACTIVATION_NAMES == sweep.ACTIVATIONS


def test_sweep_usage_errors(capsys):
    assert main(["sweep", "mlp", "--activation", "swish"]) == 2
    assert capsys.readouterr().err == (
        "tosim: error: --activation: 'swish' is not one of sigmoid, tanh, gelu, gelu_tanh, silu, relu\n")
    assert main(["sweep", "cnn", "--out", "x.json"]) == 2
    assert capsys.readouterr().err == "tosim: error: --out x.json: the extension must be .csv, not '.json'\n"


BIG = "99999999999999999999"


@pytest.mark.parametrize("argv, message", [
    # the number of configurations is checked before any list or array is built
    (["mlp", "--width", "4:100000000000", "--depth", "1", "--activation", "relu"],
     "--width: 99,999,999,997 values; a sweep has at most 10,000,000 configurations"),
    (["mlp", "--width", "1:1000000000:+1"], "--width: 1,000,000,000 values; a sweep has at most 10,000,000 "
                                            "configurations"),
    (["mlp", "--width", "4:4096:x1.0000000001"], "--width: 69,314,712,325 values; a sweep has at most 10,000,000 "
                                                 "configurations"),
    (["mlp", "--width", "1:3000000", "--depth", "1:4", "--activation", "relu"],
     "the sweep has 12,000,000 configurations (3000000 x 4 x 1); the limit is 10,000,000"),
    (["mlp", "--width", "1:3000000", "--activation", "relu", "--json"],
     "the sweep has 3,000,000 configurations (3000000 x 1 x 1); the limit is 2,000,000 with --json"),
    # values fit int64, and the kernels' products flag rather than wrap
    (["mlp", "--width", "4", "--depth", "1", "--batch", BIG],
     f"argument --batch: must be an integer from 1 to 2**62, not '{BIG}'"),
    (["cnn", "--batch", BIG], f"argument --batch: must be an integer from 1 to 2**62, not '{BIG}'"),
    (["mlp", "--inputs", BIG], f"argument --inputs: must be an integer from 1 to 2**62, not '{BIG}'"),
    (["cnn", "--classes", "0"], "argument --classes: must be an integer from 1 to 2**62, not '0'"),
    (["mlp", "--width", BIG], f"--width: values must be at most 2**62, not {BIG}"),
    (["cnn", "--image", BIG], f"--image: values must be at most 2**62, not {BIG}"),
    (["mlp", "--width", f"4:{BIG}:x2"], f"--width: values must be at most 2**62, not {BIG} (the end of '4:{BIG}:x2')"),
    (["cnn", "--kernel", "10001"], "--kernel: values must be at most 10,000, not 10001"),
    (["cnn", "--depth", "1:20000:+9999"], "--depth: values must be at most 10,000, not 20000 (the end of "
                                          "'1:20000:+9999')"),
    (["cnn", "--padding", "0:4:x2"], "--padding: a geometric range starts at 1 or more, not 0"),
    (["mlp", "--plot", "x.jpg"], "--plot x.jpg: the extension must be .png, not '.jpg'"),
])
def test_sweep_limits(argv, message, capsys):
    assert main(["sweep", *argv]) == 2
    assert capsys.readouterr().err == f"tosim: error: {message}\n"


def test_sweep_largest_values_are_flagged_not_wrapped(capsys):
    top = str(2 ** 62)
    assert main(["sweep", "mlp", "--width", top, "--depth", top, "--activation", "relu", "--batch", top,
                 "--inputs", top, "--phase", "training", "--json"]) == 1
    (row,) = json.loads(capsys.readouterr().out)
    assert row["width"] == 2 ** 62 and row["error"] == "counts exceed 2**62"
    assert row["params"] is None and row["tos"] is None
    assert cmd_sweep.MAX_VALUE == sweep.MAX_VALUE


def test_sweep_checks_every_output_before_work(tmp_path, capsys):
    out = tmp_path / "o.csv"
    assert main(["sweep", "mlp", "--width", "4", "--out", str(out), "--plot", str(tmp_path / "nodir" / "x.png")]) == 2
    assert capsys.readouterr().err == f"tosim: error: --plot {tmp_path / 'nodir' / 'x.png'}: no folder " \
                                      f"{tmp_path / 'nodir'}\n"
    assert not out.exists()
    profile = tmp_path / "p.csv"
    profile.write_text("extends: li2022\n")
    assert main(["sweep", "mlp", "--width", "4", "--profile", str(profile), "--out", str(profile)]) == 2
    assert capsys.readouterr().err == (f"tosim: error: --out {profile}: is also an input of this command; "
                                       "it would be overwritten\n")


def test_count_and_score_plots_must_be_png(tmp_path, capsys):
    for argv in (["count", MLP], ["score", MLP]):
        assert main([*argv, "--profile", "horowitz45", "--plot", str(tmp_path / "x.jpg")]) == 2
        assert capsys.readouterr().err == (f"tosim: error: --plot {tmp_path / 'x.jpg'}: the extension must be "
                                           ".png, not '.jpg'\n")
    assert main(["score", MLP, "--profile", "horowitz45", "--out", str(tmp_path / "r.csv"),
                 "--plot", str(tmp_path / "no" / "p.png")]) == 2
    assert capsys.readouterr().err == f"tosim: error: --plot {tmp_path / 'no' / 'p.png'}: no folder {tmp_path / 'no'}\n"
    assert main(["score", MLP, "--out", MLP]) == 2
    assert capsys.readouterr().err == f"tosim: error: --out {MLP}: the extension must be .csv or .json, not '.yaml'\n"
    assert list(tmp_path.iterdir()) == []


def test_score_plots_of_models_with_one_name_do_not_overwrite(tmp_path, capsys):
    # three models named mlp-4x8 (one a copy in another folder): three plot files, all reported
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(MLP, other / "mlp-4x8.yaml")
    plot = tmp_path / "pl.png"
    assert main(["score", "--profile", "horowitz45", "--plot", str(plot), MLP, str(other / "mlp-4x8.yaml"),
                 MLP]) == 0
    names = ["pl-mlp-4x8.png", "pl-mlp-4x8-2.png", "pl-mlp-4x8-3.png"]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(names)
    for name in names:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().err == "".join(f"wrote {tmp_path / name}\n" for name in names)


def test_plot_paths_are_distinct_and_safe():
    # names are compared without case (case-insensitive file systems); odd characters become _
    assert cmd_score.plot_paths("d/p.png", ["a", "a", "a-2", "b/c", "A", "", "a"]) == [
        "d/p-a.png", "d/p-a-2.png", "d/p-a-2-2.png", "d/p-b_c.png", "d/p-A-3.png", "d/p-model.png", "d/p-a-4.png"]


def test_flagged_sweep_rows_are_reported_on_stderr(capsys):
    assert main(["sweep", "cnn", "--depth", "2:3", "--kernel", "200"]) == 1
    err = capsys.readouterr().err
    assert err == ("tosim: error: 2 of 2 configurations not counted (kernel does not fit the image: 2); "
                   "their rows carry the error\n")


def test_grid_intensity_without_a_device_is_noted(capsys):
    assert main(["score", MLP, "--grid-intensity", "100"]) == 0
    assert capsys.readouterr().err == ("tosim: note: --grid-intensity prices the energy of a --device; without one "
                                       "there is no carbon to compute\n")
