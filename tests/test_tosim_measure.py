"""``tosim measure``: the layer benchmark (--suite layers) on fake counters, appends to one CSV
from concurrent processes, --out through a link, and counter failures in the middle of a run."""
import csv
import math
import os
import re
import subprocess
import sys
import threading
import time

import pytest

import calibrate
import opcount
from tosim import cmd_measure
from tosim._io import write_atomic
from tosim.cli import main

torch = pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "tests", "fixtures", "measurements")
HEADER = "model,energy_j,phase,batch,samples,epochs,passes,device,seconds,date"


class ClockCounter:
    """A RAPL-like counter computed from the clock when read: ``watts``, updated every ``update_s``."""
    kind = "rapl"
    channels = ["rapl:package-0"]
    ranges = [None]
    unit_j = 1e-6

    def __init__(self, watts=20.0, update_s=1e-4):
        self.watts, self.update_s = watts, update_s
        self.t0 = time.perf_counter()
        self.closed = False
        self.log = []

    def value(self):
        updates = math.floor((time.perf_counter() - self.t0) / self.update_s)
        return round(updates * self.update_s * self.watts / self.unit_j)

    def read(self):
        self.log.append(self.value())
        return [self.log[-1]]

    def close(self):
        self.closed = True


class FileCounter(calibrate.RaplCounter):
    """A real RaplCounter on a powercap tree whose energy_uj is written from a ClockCounter just
    before each read, or with garbage once ``broken`` is set."""

    def __init__(self, root):
        self.clock = ClockCounter()
        self.broken = False
        self.file = os.path.join(root, "intel-rapl:0", "energy_uj")
        super().__init__(root=root)

    def read(self):
        with open(self.file, "w") as fh:
            fh.write("garbage\n" if self.broken else f"{self.clock.value()}\n")
        return super().read()


def powercap(tmp_path, energy=12345):
    zone = tmp_path / "powercap" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text(f"{energy}\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    return str(tmp_path / "powercap")


@pytest.fixture
def fake_counter(monkeypatch):
    counter = ClockCounter()
    monkeypatch.setattr(calibrate, "detect_counter", lambda *args, **kwargs: counter)
    return counter


def suite_args(out, *more):
    return ["measure", "--suite", "layers", "--out", str(out), "--run-seconds", "0.02", *more]


def read_rows(path):
    with open(path) as fh:
        lines = [line for line in fh if not line.startswith("#")]
    return list(csv.DictReader(lines))


def test_suite_without_a_counter_is_one_line_exit_2(tmp_path, capsys):
    status = main(["measure", "--suite", "layers", "--out", str(tmp_path / "s.csv"), "--counter", "rapl",
                   "--powercap-root", str(tmp_path)])
    assert status == 2
    assert capsys.readouterr().err == (f"tosim: error: no energy counter can be read: no RAPL zone named package* "
                                       f"under {tmp_path}\n")
    assert os.listdir(tmp_path) == []


def test_suite_options_checked_before_anything_runs(tmp_path, capsys, fake_counter):
    out = str(tmp_path / "s.csv")
    cases = [
        (["measure"], "give a MODEL or --suite layers"),
        (["measure", "zoo:lenet5", "--suite", "layers", "--out", out], "give a MODEL or --suite layers, not both"),
        (["measure", "--suite", "layers"], "--suite needs --out F.csv (the model specs are written beside it)"),
        (["measure", "--suite", "layers", "--out", out, "--repeat", "2"],
         "--repeat: applies to a MODEL, not to --suite (the suite runs inference passes timed to the counter)"),
        (["measure", "--suite", "layers", "--out", out, "--phase", "training"],
         "--phase: applies to a MODEL, not to --suite (the suite runs inference passes timed to the counter)"),
        (["measure", "zoo:lenet5", "--types", "relu"], "--types: applies to --suite only"),
        (["measure", "zoo:lenet5", "--batch", "2-8"], "--batch 2-8: a range applies to --suite only"),
        (["measure", "--suite", "layers", "--out", out, "--types", "relu,lstm"],
         "argument --types: unknown layer type 'lstm' (types: conv2d, linear, maxpool2d, avgpool2d, relu, sigmoid, "
         "tanh, gelu, softmax, layernorm, batchnorm, attention, sdpa)"),
        (["measure", "--suite", "layers", "--out", out, "--types", "relu,relu"],
         "argument --types: must name each layer type once, not 'relu,relu'"),
        (["measure", "--suite", "layers", "--out", out, "--batch", "0-4"],
         "argument --batch: must be a positive integer or a range LOW-HIGH (1 <= LOW <= HIGH), not '0-4'"),
        (["measure", "--suite", "layers", "--out", out, "--budget", "-1"],
         "argument --budget: must be a positive number of seconds, not '-1'"),
        (["measure", "--suite", "layers", "--out", str(tmp_path / "s.txt")],
         f"--out {tmp_path / 's.txt'}: the extension must be .csv, not '.txt'"),
    ]
    for args, message in cases:
        assert main(args) == 2
        assert capsys.readouterr().err == f"tosim: error: {message}\n"
    assert os.listdir(tmp_path) == []


def test_suite_rows_are_read_back_and_counted(tmp_path, capsys, fake_counter):
    """The suite's CSV is what calibrate's loader reads, every row names a spec tosim counts, and
    the same seed gives the same configurations."""
    out = tmp_path / "runs" / "layers.csv"
    out.parent.mkdir()
    types = "relu,linear,softmax,sdpa,attention,maxpool2d"
    assert main(suite_args(out, "--count", "6", "--types", types, "--batch", "1-4", "--seed", "3")) == 0
    err = capsys.readouterr().err
    assert re.search(r"^tosim measure: counter updates every [0-9.]+ ms in steps of [0-9.e-]+ J; [0-9.]+ W while idle; "
                     r"measured runs of [0-9.]+ s each$", err, re.M)
    assert "6 configurations measured, 0 failed" in err and "Traceback" not in err
    assert fake_counter.closed
    text = out.read_text()
    assert text.startswith("# tosim measure --suite layers --seed 3 --batch 1-4 --types " + types + ": counter "
                           "rapl:package-0 (update ")
    assert text.splitlines()[1] == HEADER
    measured = calibrate.read_measurements(str(out), zoo_names=opcount.zoo_names())
    assert measured.problems == [] and len(measured.rows) == 6
    rows = read_rows(out)
    # each run reads the counter when it starts and when it stops (after the probe's reads): its
    # energy is the difference, in joules
    runs = fake_counter.log[-12:]
    assert [m.energy_j for m in measured.rows] == [(b - a) * 1e-6 for a, b in zip(runs[::2], runs[1::2])]
    for row, m, kind in zip(rows, measured.rows, types.split(",")):
        assert row["model"].startswith(f"tosim-layers/{kind}-") and row["model"].endswith(".yaml")
        assert m.model == str(out.parent / row["model"])
        assert (m.phase, m.epochs, m.samples) == ("inference", 1, None)
        assert 1 <= m.batch <= 4 and m.passes >= 1
        assert float(row["seconds"]) >= 0.02
        count = opcount.count_model(opcount.load_model(m.model), "cmos-generic", phase="inference", batch=m.batch)
        assert count.complete and count.totals["all"]
    again = tmp_path / "runs" / "again.csv"
    assert main(suite_args(again, "--count", "3", "--types", types, "--batch", "1-4", "--seed", "3")) == 0
    other = tmp_path / "runs" / "other.csv"
    assert main(suite_args(other, "--count", "3", "--types", types, "--batch", "1-4", "--seed", "4")) == 0
    configurations = [(r["model"], r["batch"]) for r in rows]
    assert [(r["model"], r["batch"]) for r in read_rows(again)] == configurations[:3]
    assert [(r["model"], r["batch"]) for r in read_rows(other)] != configurations[:3]
    # a spec file of a configuration's name that holds something else is never overwritten
    spec = out.parent / rows[0]["model"]
    spec.write_text("# mine\n" + spec.read_text())
    capsys.readouterr()
    assert main(suite_args(tmp_path / "runs" / "third.csv", "--count", "2", "--types", types, "--batch", "1-4",
                           "--seed", "3")) == 1
    err = capsys.readouterr().err
    assert f"[1/2] {spec.stem} batch {rows[0]['batch']}: failed: {spec} exists and holds something else; " \
           f"not overwritten\n" in err
    assert spec.read_text().startswith("# mine\n") and len(read_rows(tmp_path / "runs" / "third.csv")) == 1


def test_suite_budget_and_specs_folder(tmp_path, capsys, fake_counter):
    out = tmp_path / "b.csv"
    assert main(suite_args(out, "--budget", "3", "--types", "relu", "--batch", "1", "--specs",
                           str(tmp_path / "specs"))) == 0
    rows = read_rows(out)
    assert rows and all(r["model"].startswith("specs/relu-") and r["batch"] == "1" for r in rows)
    assert len(os.listdir(tmp_path / "specs")) == len({r["model"] for r in rows})
    assert "measured, 0 failed" in capsys.readouterr().err
    assert main(suite_args(tmp_path / "none.csv", "--budget", "0.001")) == 2
    assert re.fullmatch(r"tosim: error: --budget 0\.001: no configuration fits \(a measured run alone takes "
                        r"[0-9.e-]+ s\)\n", capsys.readouterr().err.splitlines(True)[-1])
    assert not (tmp_path / "none.csv").exists()


def test_suite_on_a_powercap_tree_advanced_by_a_writer(tmp_path, capsys):
    """The real RAPL reader on a zone another thread advances (20 W, a step per millisecond), with
    the run length the probe chooses."""
    root = powercap(tmp_path, energy=0)
    leaf = os.path.join(root, "intel-rapl:0", "energy_uj")
    stop = threading.Event()

    def writer():
        t0 = time.perf_counter()
        while not stop.is_set():
            write_atomic(leaf, f"{int((time.perf_counter() - t0) * 20e6) // 61 * 61}\n")
            time.sleep(0.001)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        status = main(["measure", "--suite", "layers", "--out", str(tmp_path / "r.csv"), "--counter", "rapl",
                       "--powercap-root", root, "--count", "2", "--types", "relu,linear", "--batch", "1-2"])
    finally:
        stop.set()
        thread.join()
    err = capsys.readouterr().err
    assert status == 0, err
    rows = calibrate.read_measurements(str(tmp_path / "r.csv")).rows
    assert len(rows) == 2 and all(r.energy_j > 0 and r.device == "rapl:package-0" for r in rows)


def test_suite_counter_garbage_mid_suite_keeps_the_rows_measured(tmp_path, capsys, monkeypatch):
    counter = FileCounter(powercap(tmp_path))
    monkeypatch.setattr(calibrate, "detect_counter", lambda *args, **kwargs: counter)
    append = cmd_measure._append

    def append_then_break(*args, **kwargs):
        append(*args, **kwargs)
        counter.broken = True

    monkeypatch.setattr(cmd_measure, "_append", append_then_break)
    out = tmp_path / "g.csv"
    assert main(suite_args(out, "--count", "10", "--types", "relu", "--batch", "1")) == 1
    err = capsys.readouterr().err.splitlines()
    leaf = os.path.join(str(tmp_path), "powercap", "intel-rapl:0", "energy_uj")
    assert [line.split(": ", 2)[-1] for line in err if ": failed: " in line] == \
        [f"failed: {leaf} read 'garbage', not a count of microjoules"] * 3
    assert err[-1] == "tosim: error: the counter failed in 3 configurations in a row; stopped after 1 measured"
    assert len(read_rows(out)) == 1


def test_model_counter_garbage_mid_run(tmp_path, capsys, monkeypatch):
    """A counter that returns garbage in the second of three runs: the first run's row is written,
    one error line, exit 1; in the first run: one line, exit 2, nothing written."""
    counter = FileCounter(powercap(tmp_path))
    monkeypatch.setattr(calibrate, "detect_counter", lambda *args, **kwargs: counter)
    reads = []
    original = FileCounter.read

    def read(self):
        reads.append(1)
        self.broken = len(reads) >= 4          # run 1 reads twice; run 2 starts with read 3
        return original(self)

    monkeypatch.setattr(FileCounter, "read", read)
    out = tmp_path / "m.csv"
    args = ["measure", os.path.join(HERE, "tiny-mlp.yaml"), "--batch", "2", "--repeat", "3", "--out", str(out)]
    assert main(args) == 1
    leaf = os.path.join(str(tmp_path), "powercap", "intel-rapl:0", "energy_uj")
    assert capsys.readouterr().err == (f"tosim: error: run 2 of 3: {leaf} read 'garbage', not a count of "
                                       f"microjoules (the 1 run before it was written)\n")
    assert len(read_rows(out)) == 1
    reads.extend([1] * 10)
    assert main(args[:-2] + ["--out", str(tmp_path / "none.csv")]) == 2
    assert capsys.readouterr().err == f"tosim: error: {leaf} read 'garbage', not a count of microjoules\n"
    assert not (tmp_path / "none.csv").exists()


APPENDER = """
import sys, time
from tosim.cmd_measure import _append
path, who, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
while time.time() < start:
    time.sleep(0.001)
for i in range(n):
    _append(path, [{"model": f"w{who}-{i}.yaml", "energy_j": 1.0 + i, "phase": "inference", "batch": 1,
                    "samples": "", "epochs": 1, "passes": 1, "device": who, "seconds": 0.1, "date": "d"}])
"""


def test_concurrent_appends_lose_no_rows(tmp_path):
    """Writers appending to one CSV at once (the old read-and-replace lost rows): every row of
    every writer is there once, under one header, and no temporary file is left."""
    out = tmp_path / "shared.csv"
    writers, rows_each = 6, 25
    env = {**os.environ, "PYTHONPATH": ROOT}
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(out), str(w), str(rows_each), str(start)],
                              env=env, stderr=subprocess.PIPE, text=True) for w in range(writers)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
        proc.stderr.close()
    lines = out.read_text().splitlines()
    assert lines.count(HEADER) == 1 and lines[0] == HEADER
    models = sorted(r["model"] for r in read_rows(out))
    assert models == sorted(f"w{w}-{i}.yaml" for w in range(writers) for i in range(rows_each))
    assert sorted(os.listdir(tmp_path)) == [".shared.csv.lock", "shared.csv"]


def test_out_through_a_link_writes_the_target(tmp_path, capsys):
    """--out link.csv appends to the file the link names and leaves the link a link; the model
    column is absolute (the link's folder and the target's differ)."""
    data = tmp_path / "data"
    data.mkdir()
    target = data / "target.csv"
    target.write_text(HEADER + "\nzoo:lenet5,1.5,inference,1,,1,,cpu,1,2024-01-01\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    model = os.path.join(HERE, "tiny-mlp.yaml")
    assert main(["measure", model, "--counter", "rapl", "--powercap-root", powercap(tmp_path), "--out", str(link),
                 "--phase", "inference"]) == 0
    capsys.readouterr()
    assert link.is_symlink() and os.readlink(link) == str(target)
    rows = read_rows(target)
    assert [r["model"] for r in rows] == ["zoo:lenet5", model]
    # a dangling link gets its target created; the lock lives beside the target
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(data / "new.csv")
    assert main(["measure", model, "--counter", "rapl", "--powercap-root", str(tmp_path / "powercap"),
                 "--out", str(dangling), "--phase", "inference"]) == 0
    capsys.readouterr()
    assert dangling.is_symlink() and len(read_rows(data / "new.csv")) == 1
    assert sorted(p.name for p in data.iterdir()) == [".new.csv.lock", ".target.csv.lock", "new.csv", "target.csv"]
