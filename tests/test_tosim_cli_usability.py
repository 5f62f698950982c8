"""The command line as a new user meets it: --version, tosim zoo, parameter suffixes, folders with
other files, did-you-mean for spec fields, score's --seq/--loss/--optimizer."""
import json
import os
import shutil

import pytest

import opcount
import tosim
from tosim._render import count_text
from tosim.cli import main
from tosim.cmd_zoo import natural_key

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "models")
MLP = os.path.join(FIXTURES, "mlp-4x8.yaml")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.usefixtures("fixed_costs")


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"tosim {tosim.__version__}\n"


def test_zoo_lists_every_name_in_natural_order(capsys):
    assert main(["zoo", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [r["name"] for r in rows]
    assert sorted(names) == sorted(opcount.zoo_names())
    assert names.index("li2022-mlp-4-gelu") < names.index("li2022-mlp-10-gelu")
    assert names.index("li2022-cnn-2") < names.index("li2022-cnn-10")
    lenet = next(r for r in rows if r["name"] == "lenet5")
    assert lenet["params"] == 61_706
    assert sorted(["a10", "a9", "b1", "a"], key=natural_key) == ["a", "a9", "a10", "b1"]
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and f"{len(rows)} models" in out


def test_parameters_print_with_short_scale_suffixes(capsys):
    assert [count_text(v) for v in (49, 61_706, 11_689_512, 1_557_611_200, 174_604_259_328, None)] == [
        "49", "61.7k", "11.7M", "1.56B", "175B", "-"]
    assert main(["score", "zoo:gpt2-xl"]) == 0
    line = capsys.readouterr().out.splitlines()[2]
    assert line.split()[:2] == ["gpt2-xl", "1.56B"]


def test_numbers_keep_one_style_at_every_size():
    from tosim._render import si
    assert [si(v) for v in (2.81e-4, 0.0023, 0.228, 7, 999.9, 20.7e9, 0, None, 1e-18)] == [
        "281µ", "2.3m", "228m", "7", "1k", "20.7G", "0", "-", "1.00e-18"]
    assert count_text(999_999) == "1M"


def test_a_folder_gives_its_models_and_names_what_it_skipped(tmp_path, capsys):
    shutil.copy(MLP, tmp_path / "m.yaml")
    shutil.copy(os.path.join(ROOT, "hardware_profiles", "builtin", "cmos-fast.yaml"), tmp_path / "alu.yaml")
    (tmp_path / "rows.json").write_text('[{"name": "m"}]\n')
    assert main(["score", str(tmp_path), "--json"]) == 0
    captured = capsys.readouterr()
    assert [r["name"] for r in json.loads(captured.out)] == ["mlp-4x8"]
    assert f"tosim: note: skipped {tmp_path / 'alu.yaml'}: a hardware profile, not a model" in captured.err
    assert f"skipped {tmp_path / 'rows.json'}: a JSON list" in captured.err
    results = tosim.score_many([str(tmp_path)])
    assert len(results) == 1 and sorted(p for p, _ in results.skipped) == [str(tmp_path / "alu.yaml"),
                                                                           str(tmp_path / "rows.json")]
    # named one by one, a file is always tried (and fails on its own row)
    assert main(["score", str(tmp_path / "alu.yaml")]) == 1


@pytest.mark.parametrize("text, message", [
    ("input: [1, 8, 8]\nlayers:\n  - {type: conv2d, out: 4, kernal: 3}\n",
     "missing field 'kernel' (found 'kernal': did you mean 'kernel'?)"),
    ("input: [1, 8, 8]\nlayers:\n  - {type: conv2d, out: 4, kernel: 3, stide: 2}\n",
     "unknown field 'stide' (did you mean 'stride'?)"),
    ("input: [4]\noptimiser: adam\nlayers:\n  - {type: linear, out: 4}\n",
     "unknown field 'optimiser' (did you mean 'optimizer'? expected "),
])
def test_misspelt_spec_fields_get_a_did_you_mean(tmp_path, capsys, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    assert main(["count", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tosim: error: ") and message in err and err.count("\n") == 1


def test_score_takes_seq_loss_and_optimizer(capsys):
    def row(*argv):
        assert main(["score", *argv, "--json"]) == 0
        return json.loads(capsys.readouterr().out)[0]
    short, full = row("zoo:gpt2", "--seq", "8"), row("zoo:gpt2")
    assert short["macs"] < full["macs"] and short["params"] == full["params"]
    sgd, adam = row(MLP, "--phase", "training"), row(MLP, "--phase", "training", "--optimizer", "adam")
    assert adam["tos_update"] > sgd["tos_update"] and adam["tos_forward"] == sgd["tos_forward"]
    bce = row(MLP, "--phase", "validation", "--loss", "bce")
    assert bce["tos_loss"] != row(MLP, "--phase", "validation")["tos_loss"]
    assert main(["score", MLP, "--optimizer", "adma"]) == 2
    assert "argument --optimizer: unknown optimizer 'adma'; known: sgd, momentum, adam, adamw" in capsys.readouterr().err
    count = tosim.score(MLP, phase="training", optimizer="adam")
    assert count.tos_by_stage["update"] == adam["tos_update"]


def test_plots_leave_matplotlib_global_state_alone(tmp_path):
    """Plots are drawn on their own Agg canvas: no pyplot, and the caller's backend is kept."""
    import subprocess
    import sys
    png = tmp_path / "m.png"
    code = ("import sys, matplotlib\nmatplotlib.use('svg')\nfrom tosim.cli import main\n"
            f"assert main(['count', 'zoo:lenet5', '--profile', 'yang2017', '--plot', {str(png)!r}]) == 0\n"
            "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["svg", "False"]
    assert png.read_bytes().startswith(b"\x89PNG")


def test_plot_and_onnx_extras_missing_say_what_to_install(tmp_path, monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name in ("matplotlib", "onnx") else real(name, *a, **k))
    assert main(["count", "zoo:lenet5", "--profile", "yang2017", "--plot", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert "drawing a plot needs matplotlib, which is not installed (pip install 'tosim[plot]')" in err
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read")
    assert main(["count", str(model)]) == 2
    assert "reading an ONNX model needs the onnx package" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))
