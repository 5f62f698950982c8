import csv
import os

import pytest

torch = pytest.importorskip("torch")

import opcount  # noqa: E402
from calibrate import MeasurementError, build_torch_module, measure_runs  # noqa: E402
from tosim.cli import main  # noqa: E402

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "measurements")


class StepCounter:
    """A fake counter in joules that reads 1000 J more on every read."""
    kind = "fake"
    unit_j = 1.0
    channels = ["fake:0"]
    ranges = [None]

    def __init__(self):
        self.value = 0
        self.reads = 0

    def read(self):
        self.reads += 1
        self.value += 1000
        return [self.value]

    def close(self):
        pass


@pytest.mark.parametrize("name", ["zoo:lenet5", "zoo:li2022-mlp-6-gelu", "zoo:li2022-cnn-8"])
def test_built_module_matches_the_counted_model(name):
    model = opcount.load_model(name)
    net = build_torch_module(model)
    assert sum(p.numel() for p in net.parameters()) == model.params
    if name != "zoo:li2022-cnn-8":   # a forward pass of the 256x256 CNN would take seconds: parameters only
        assert tuple(net(torch.zeros((2,) + tuple(model.input_shape))).shape[1:]) == tuple(model.output_shape)


def test_non_sequential_and_unknown_layers_refused():
    residual = opcount.load_model({"name": "r", "input": [4], "layers": [
        {"type": "linear", "out": 4, "name": "a"}, {"type": "relu", "name": "b"},
        {"type": "add", "name": "c", "inputs": ["a", "b"]}]})
    with pytest.raises(MeasurementError, match=r"^r: layer 'c' reads a, b; measure runs sequential models only$"):
        build_torch_module(residual)
    model = opcount.load_model({"name": "n", "input": [4], "layers": [{"type": "linear", "out": 4},
                                                                       {"type": "log_softmax"}]})
    with pytest.raises(MeasurementError, match=r"^n: layer 'log_softmax_1' of type 'log_softmax' cannot be built for "
                                               r"measurement \(supported: linear, .*\)$"):
        build_torch_module(model)


def test_measure_runs_training_rows():
    model = opcount.load_model(os.path.join(HERE, "tiny-mlp.yaml"))
    counter = StepCounter()
    rows = measure_runs(model, counter, model_name="tiny-mlp.yaml", phase="training", batch=4, samples=10,
                        epochs=2, repeat=3, interval=0)
    assert len(rows) == 3
    for row in rows:
        assert row["energy_j"] == 1000.0          # start and stop reads, 1000 units apart
        assert (row["phase"], row["batch"], row["samples"], row["epochs"], row["passes"]) == \
            ("training", 4, 10, 2, "")
        assert row["device"] == "fake:0" and row["seconds"] >= 0
    assert counter.reads == 6


def test_measure_inference_and_validation_run():
    model = opcount.load_model("zoo:lenet5")
    for phase in ("inference", "validation"):
        rows = measure_runs(model, StepCounter(), model_name="zoo:lenet5", phase=phase, batch=2, passes=2,
                            interval=0)
        assert rows[0]["passes"] == 2 and rows[0]["samples"] == ""


def test_tosim_measure_without_counter_is_one_line_exit_2(tmp_path, capsys):
    status = main(["measure", "zoo:li2022-mlp-4-sigmoid", "--counter", "rapl", "--powercap-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert err == f"tosim: error: no energy counter can be read: no RAPL zone named package* under {tmp_path}\n"


def test_tosim_measure_with_a_powercap_tree_writes_csv(tmp_path, capsys):
    zone = tmp_path / "powercap" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("12345\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    out = tmp_path / "runs" / "m.csv"
    out.parent.mkdir()
    model = os.path.join(HERE, "tiny-mlp.yaml")
    args = ["measure", model, "--counter", "rapl", "--powercap-root", str(tmp_path / "powercap"),
            "--batch", "4", "--samples", "10", "--epochs", "2", "--repeat", "2", "--out", str(out),
            "--device-name", "test-cpu"]
    assert main(args) == 0
    assert main(args[:-4] + ["--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "tosim: warning: the counter did not advance" in err   # the fake zone never changes
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4                     # two runs appended twice, one header
    assert rows[0]["model"] == os.path.relpath(model, out.parent)
    assert rows[1]["device"] == "test-cpu" and rows[2]["device"] == "rapl:package-0"
    assert float(rows[0]["energy_j"]) == 0.0 and rows[0]["samples"] == "10"


def _powercap(tmp_path):
    zone = tmp_path / "powercap" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("12345\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    return str(tmp_path / "powercap")


def test_tosim_measure_checks_out_and_options_before_measuring(tmp_path, capsys):
    root = _powercap(tmp_path)
    base = ["measure", os.path.join(HERE, "tiny-mlp.yaml"), "--counter", "rapl", "--powercap-root", root]
    other = tmp_path / "other.csv"
    other.write_text("model,energy_j\nzoo:lenet5,1\n")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    (tmp_path / "folder.csv").mkdir()
    header = "model,energy_j,phase,batch,samples,epochs,passes,device,seconds,date"
    cases = [
        (["--out", str(other)], f"--out {other}:1: header is not the measurement header {header}; cannot append to it"),
        (["--out", str(binary)], f"--out {binary}: not a text CSV (not UTF-8); cannot append to it"),
        (["--out", str(tmp_path / "folder.csv")], f"--out {tmp_path / 'folder.csv'}: is a folder"),
        (["--out", str(tmp_path / "m.txt")], f"--out {tmp_path / 'm.txt'}: the extension must be .csv, not '.txt'"),
        (["--out", str(tmp_path / "no" / "m.csv")], f"--out {tmp_path / 'no' / 'm.csv'}: no folder {tmp_path / 'no'}"),
        (["--out", ""], "--out: an empty path"),
        (["--torch-device", "frob"], "--torch-device frob: not a usable torch device: Expected one of cpu, cuda, "),
        (["--interval", "0"], "argument --interval: must be a positive number of seconds, not '0'"),
        (["--interval", "-1"], "argument --interval: must be a positive number of seconds, not '-1'"),
        (["--interval", "nan"], "argument --interval: must be a positive number of seconds, not 'nan'"),
        (["--interval", "inf"], "argument --interval: must be a positive number of seconds, not 'inf'"),
        (["--seed", "-1"], "argument --seed: must be a non-negative integer, not '-1'"),
    ]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    for args, message in cases:
        status = main(base + args)
        err = capsys.readouterr().err
        assert status == 2
        if args[0] == "--torch-device":      # torch's own list of device types follows
            assert err.startswith(f"tosim: error: {message}") and err.endswith(": frob\n") and err.count("\n") == 1
        else:
            assert err == f"tosim: error: {message}\n"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_tosim_measure_too_large_for_torch_is_one_line(tmp_path, capsys):
    root = _powercap(tmp_path)
    model = os.path.join(HERE, "tiny-mlp.yaml")
    status = main(["measure", model, "--counter", "rapl", "--powercap-root", root, "--batch", str(10 ** 30)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert err.startswith(f"tosim: error: {model}: PyTorch cannot run it at batch {10 ** 30} on cpu: ")


def test_tosim_measure_appends_after_comments_and_to_blank_files(tmp_path, capsys):
    root = _powercap(tmp_path)
    base = ["measure", os.path.join(HERE, "tiny-mlp.yaml"), "--counter", "rapl", "--powercap-root", root]
    header = "model,energy_j,phase,batch,samples,epochs,passes,device,seconds,date"
    commented = tmp_path / "commented.csv"
    commented.write_text(f"# my runs\n\n{header}\n")
    blank = tmp_path / "blank.csv"
    blank.write_text("")
    for out in (commented, blank):
        assert main(base + ["--out", str(out), "--interval", "0.5"]) == 0
    capsys.readouterr()
    lines = commented.read_text().splitlines()
    assert lines[:3] == ["# my runs", "", header] and len(lines) == 4
    lines = blank.read_text().splitlines()
    assert lines[0] == header and len(lines) == 2
