"""Hostile and mistaken inputs through the ``tosim`` command (issue 16): lost data, batches that
keep going, empty fields, strict Hugging Face types, non-finite results, warnings. Every hostile
file is built here in tmp_path."""
import json
import os
import re
import signal
import sys
import warnings

import pytest

from hwlib import _yosys
from hwlib.cost import Cache, CacheWarning, Cost, Pricer
from tosim.cli import _WarningPrinter, main

SPEC = "input: [4]\nlayers:\n  - {type: linear, out: 8}\n  - {type: relu}\n  - {type: linear, out: 2}\n"


def _strict_json(text):
    def refuse(name):
        raise AssertionError(f"{name} in JSON output")
    return json.loads(text, parse_constant=refuse)


def _one_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tosim: error: "), err
    return err[0]


# --- lost data ------------------------------------------------------------------------------------

def test_an_output_never_overwrites_a_profile_reached_through_extends(tmp_path, capsys):
    base = tmp_path / "sub" / "base.csv"
    base.parent.mkdir()
    base.write_text("extends: cmos-generic\nname: base\n")
    (tmp_path / "mid.yaml").write_text("extends: sub/base.csv\nname: mid\n")
    (tmp_path / "child.yaml").write_text("extends: mid.yaml\nname: child\n")
    before = base.read_bytes()
    assert main(["score", "zoo:lenet5", "--profile", str(tmp_path / "child.yaml"), "--out", str(base)]) == 2
    assert "is also an input of this command" in _one_error(capsys)
    assert base.read_bytes() == before


def test_an_output_never_overwrites_onnx_external_data(tmp_path, capsys):
    np = pytest.importorskip("numpy")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    weight = numpy_helper.from_array(np.ones((4, 3), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [weight])
    model = tmp_path / "m.onnx"
    onnx.save_model(helper.make_model(graph), str(model), save_as_external_data=True, location="weights.csv",
                    size_threshold=0)
    data = tmp_path / "weights.csv"
    before = data.read_bytes()
    assert main(["score", str(model), "--out", str(data)]) == 2
    assert re.search(r"cannot write .*weights\.csv: the command read it as an input", _one_error(capsys))
    assert data.read_bytes() == before
    # the same model scores normally, and a link from its external data to /dev/zero is its row's error
    assert main(["score", str(model), "--json"]) == 0
    assert _strict_json(capsys.readouterr().out)[0]["macs"] == 12
    data.unlink()
    os.symlink("/dev/zero", data)
    assert main(["score", str(model), "zoo:lenet5", "--out", str(tmp_path / "rows.json")]) == 1
    rows = _strict_json((tmp_path / "rows.json").read_text())
    assert "external data weights.csv: is a character device, not a regular file" in rows[0]["error"]
    assert rows[1]["error"] is None


def test_one_bad_input_never_ends_a_batch(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(SPEC)
    os.symlink("/dev/zero", tmp_path / "zero.yaml")
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "empty.yaml").write_text("input: [4]\nlayers:\n  - {type: linear, out: }\n")
    out = tmp_path / "rows.json"
    inputs = [str(good), str(tmp_path / "zero.yaml"), str(tmp_path / "pipe.yaml"), str(tmp_path / "empty.yaml"),
              "zoo:lenet5"]
    assert main(["score", *inputs, "--out", str(out)]) == 1
    rows = _strict_json(out.read_text())
    assert [row["error"] is None for row in rows] == [True, False, False, False, True]
    assert rows[1]["error"].endswith("zero.yaml: is a character device, not a regular file")
    assert rows[2]["error"].endswith("pipe.yaml: is a FIFO (named pipe), not a regular file")
    assert "line 3: layer 'linear_0' (linear): field 'out' is empty" in rows[3]["error"]
    assert rows[0]["macs"] == 4 * 8 + 8 * 2


def test_a_folder_with_a_fifo_is_scanned_without_blocking(tmp_path, capsys):
    (tmp_path / "good.yaml").write_text(SPEC)
    os.mkfifo(tmp_path / "pipe.yaml")
    assert main(["score", str(tmp_path), "--json"]) == 1
    rows = _strict_json(capsys.readouterr().out)
    assert [row["error"] is None for row in rows] == [True, False]
    assert rows[1]["error"].endswith("pipe.yaml: is a FIFO (named pipe), not a regular file")


def test_a_bad_per_model_plot_path_is_refused_before_anything_is_written(tmp_path, capsys):
    (tmp_path / "f-lenet5.png").mkdir()
    out = tmp_path / "rows.csv"
    assert main(["score", "zoo:lenet5", "--profile", "horowitz45", "--plot", str(tmp_path / "f.png"),
                 "--out", str(out)]) == 2
    assert "f-lenet5.png: is a folder" in _one_error(capsys)
    assert not out.exists()


# --- model specs and configs ----------------------------------------------------------------------

FIELDS = [
    ("linear", "out", "[4]", ""),
    ("linear", "bias", "[4]", "out: 3, "),
    ("conv2d", "kernel", "[3, 8, 8]", "out: 2, "),
    ("conv2d", "stride", "[3, 8, 8]", "out: 2, kernel: 3, "),
    ("conv2d", "padding", "[3, 8, 8]", "out: 2, kernel: 3, "),
    ("conv2d", "groups", "[3, 8, 8]", "out: 2, kernel: 3, "),
    ("conv2d", "dilation", "[3, 8, 8]", "out: 2, kernel: 3, "),
    ("conv_transpose2d", "output_padding", "[3, 8, 8]", "out: 2, kernel: 3, "),
    ("attention", "heads", "[4, 8]", ""),
    ("attention", "kv_heads", "[4, 8]", "heads: 2, "),
    ("embedding", "vocab", "[4]", "dim: 4, "),
    ("embedding", "dim", "[4]", "vocab: 10, "),
    ("softmax", "axis", "[4]", ""),
    ("layernorm", "dims", "[4, 8]", ""),
    ("flatten", "start", "[2, 4]", ""),
    ("select", "index", "[2, 4]", ""),
    ("dropout", "p", "[4]", ""),
    ("relu", "inputs", "[4]", ""),
    ("relu", "format", "[4]", ""),
    ("mystery", "out_shape", "[4]", ""),
]


@pytest.mark.parametrize("ltype, field, shape, before", FIELDS, ids=[f[1] for f in FIELDS])
def test_an_empty_field_names_file_line_and_field(tmp_path, capsys, ltype, field, shape, before):
    path = tmp_path / "m.yaml"
    path.write_text(f"input: {shape}\nlayers:\n  - {{type: relu}}\n  - {{type: {ltype}, {before}{field}: }}\n")
    assert main(["count", str(path)]) == 2
    assert _one_error(capsys) == (f"tosim: error: {path}: line 4: layer '{ltype}_1' ({ltype}): field {field!r} is "
                                  "empty; give it a value or leave it out")


def test_an_empty_layer_name_is_an_error_too(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text("input: [4]\nlayers:\n  - {type: relu, name: }\n")
    assert main(["count", str(path)]) == 2
    assert _one_error(capsys) == (f"tosim: error: {path}: line 3: layer 0: field 'name' is empty; give it a value "
                                  "or leave it out")


def test_transposed_conv_output_padding_as_pytorch(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text("input: [3, 8, 8]\nlayers: [{type: conv_transpose2d, out: 2, kernel: 3, stride: 2, "
                    "output_padding: 2}]\n")
    assert main(["count", str(path)]) == 2
    assert _one_error(capsys).endswith("'output_padding' 2 must be smaller than the stride 2 or the dilation 1")
    path.write_text("input: [3, 8, 8]\nlayers: [{type: conv_transpose2d, out: 2, kernel: 3, stride: 2, "
                    "output_padding: 1}]\n")
    assert main(["count", str(path), "--json"]) == 0
    assert _strict_json(capsys.readouterr().out)["layers"][0]["name"] == "conv_transpose2d_0"


GPT2 = {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 100, "n_positions": 32}


@pytest.mark.parametrize("patch, message", [
    ({"activation_function": ["gelu"]}, "'activation_function' must be a string, not ['gelu']"),
    ({"tie_word_embeddings": "false"}, "'tie_word_embeddings' must be true or false, not 'false'"),
    ({"n_inner": 0}, "'n_inner' must be a positive integer, not 0"),
    ({"n_layer": 10 ** 9}, "'n_layer' must be at most 10,000, not 1000000000"),
])
def test_hugging_face_fields_are_typed_strictly(tmp_path, capsys, patch, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(dict(GPT2, **patch)))
    assert main(["count", str(path)]) == 2
    assert _one_error(capsys) == f"tosim: error: {path}: {message}"


def test_n_inner_given_is_used_and_absent_is_the_default(tmp_path, capsys):
    path = tmp_path / "config.json"
    macs = []
    for patch in ({}, {"n_inner": 4 * 64}, {"n_inner": None}, {"n_inner": 128}):
        path.write_text(json.dumps(dict(GPT2, **patch)))
        assert main(["count", str(path), "--json"]) == 0
        macs.append(_strict_json(capsys.readouterr().out)["macs"])
    assert macs[0] == macs[1] == macs[2] > macs[3]


# --- numbers ---------------------------------------------------------------------------------------

def test_an_energy_past_float64_is_the_rows_error_never_infinity(capsys):
    import tosim
    from tosim._energy import DeviceError
    results = tosim.score_many(["zoo:lenet5", "zoo:alexnet"], "cmos-generic",
                               device={"feature": "tos", "coefficients": [1.0, 1e300, 1e300]})
    assert [r.error is not None for r in results] == [True, True]
    assert "the energy is past float64's range" in results[0].error
    _strict_json(results.to_json())
    with pytest.raises(DeviceError, match=r"^device coefficients must be a non-empty list of finite numbers"):
        tosim.score("zoo:lenet5", device={"feature": "tos", "coefficients": [float("nan")]})
    assert main(["score", "zoo:lenet5", "--profile", "li2022", "--device", "laptop-cpu-dnn-tos", "--json"]) == 0
    assert _strict_json(capsys.readouterr().out)[0]["energy_j"] > 0


def test_a_profile_device_past_float64_gives_error_rows(tmp_path, capsys):
    profile = tmp_path / "p.yaml"
    profile.write_text("extends: cmos-generic\ndevices: {d: {feature: tos, coefficients: [1.0, 1e308, 1e308]}}\n")
    out = tmp_path / "rows.json"
    assert main(["score", "zoo:lenet5", "--profile", str(profile), "--device", "d", "--out", str(out)]) == 1
    row, = _strict_json(out.read_text())
    assert row["energy_j"] is None and "the energy is past float64's range" in row["error"]


@pytest.mark.parametrize("argv, message", [
    (["score", "zoo:lenet5", "--grid-intensity", "1.7e308"], "--grid-intensity: must be a number in 0..1e+06"),
    (["synth", "--jobs", "\u00b2"], "--jobs must be a positive integer, not '\u00b2'"),
    (["compare-adders", "--widths", "\u00b2"], "--widths must be comma-separated positive integers"),
])
def test_arguments_are_checked_as_numbers(capsys, argv, message):
    assert main(argv) == 2
    assert message in _one_error(capsys)


# --- warnings, the cache, Yosys --------------------------------------------------------------------

def test_cache_warnings_are_one_line_once(capsys):
    printer = _WarningPrinter()
    for name in ("a", "b"):
        printer(CacheWarning(f"Could not write the cost cache entry /x/{name}: [Errno 13] Permission\n denied"),
                CacheWarning, "cost.py", 1)
    err = capsys.readouterr().err.splitlines()
    assert err == ["tosim: warning: Could not write the cost cache entry /x/a: [Errno 13] Permission denied; "
                   "results are computed but not cached (set TOSIM_CACHE_DIR to a writable folder)"]


def test_cache_entries_of_the_wrong_shape_are_rebuilt_and_entries_are_shared(tmp_path):
    cache = Cache(tmp_path)
    key = "ab" * 32
    good = Cost(transistors=120, gates={"NAND": 30}, depth=4).to_json()
    pricer = Pricer({"counting": "synthesized", "gates": {"NOT": 2, "NAND": 4}}, cache, bundled=False)
    for bad in ({**good, "transistors": "120"}, {**good, "depth": -1}, {**good, "gates": {"NAND": 10 ** 400}},
                {**good, "transistors": float("inf")}, {**good, "counting": "magic"}, ["not", "a", "mapping"],
                {**good, "extra": 1}):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                cache.write("result", key, {"cost": bad})
            except ValueError:       # json cannot even write it (inf): write the file by hand
                continue
        invalid = cache.stats.invalid
        assert pricer._read_result(key) is None
        assert cache.stats.invalid == invalid + 1
    cache.write("result", key, {"cost": good})
    assert pricer._read_result(key) == Cost.from_json(good)
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(cache.path("result", key)).st_mode & 0o777 == 0o666 & ~umask
    path = cache.path("index", key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mkfifo(path)                  # a FIFO in the cache is an invalid entry, not a hang
    assert cache.read("index", key) is None


def _fake_yosys(monkeypatch, script):
    monkeypatch.setattr(_yosys, "_yosys_argv", lambda *args: [sys.executable, "-c", script, *args])
    monkeypatch.setattr(_yosys, "prepare", lambda: dict(os.environ))


def test_a_yosys_crash_by_signal_is_named_and_tried_once_more(tmp_path, monkeypatch):
    marker = tmp_path / "crashed"
    _fake_yosys(monkeypatch, f"import os, signal, sys\nif not os.path.exists({str(marker)!r}):\n"
                             f"    open({str(marker)!r}, 'w').close()\n    os.kill(os.getpid(), signal.SIGBUS)\n"
                             "print('Yosys 9.9')\n")
    proc = _yosys._invoke(["-V"], str(tmp_path))
    assert proc.returncode == 0 and proc.stdout.strip() == "Yosys 9.9" and marker.exists()
    _fake_yosys(monkeypatch, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    proc = _yosys._invoke(["-V"], str(tmp_path))
    assert proc.returncode == -signal.SIGKILL
    assert _yosys._error_message("", "", proc.returncode) == "Yosys was killed by SIGKILL (likely out of memory)"
    assert _yosys._error_message("", "", -signal.SIGBUS) == "Yosys was killed by SIGBUS"
    assert _yosys._error_message("", "Traceback\n  x\nOSError: boom\n", 1) == "Yosys exited with status 1: OSError: boom"


def test_yosys_time_limit_and_module_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TOSIM_YOSYS_TIMEOUT", "2.5")
    assert _yosys.default_timeout() == 2.5
    monkeypatch.delenv("TOSIM_YOSYS_TIMEOUT")
    assert _yosys.default_timeout() == _yosys.DEFAULT_TIMEOUT
    for bad in ("0", "-1", "nan", "inf", "soon"):
        monkeypatch.setenv("TOSIM_YOSYS_TIMEOUT", bad)
        with pytest.raises(_yosys.YosysError, match=rf"^TOSIM_YOSYS_TIMEOUT='{bad}': must be a positive number"):
            _yosys.default_timeout()
    monkeypatch.setenv("TOSIM_YOSYS_TIMEOUT", "1")
    _fake_yosys(monkeypatch, "import time\ntime.sleep(30)\n")
    with pytest.raises(_yosys.YosysError, match=r"^Yosys did not finish within 1 s \(set TOSIM_YOSYS_TIMEOUT"):
        _yosys._invoke(["-V"], str(tmp_path))
    # an unwritable default cache (here: below a plain file) falls back to tosim's cache folder
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.delenv("YOWASP_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(tmp_path / "tosim"))
    assert _yosys._module_cache_dir() == str(tmp_path / "tosim" / "yowasp")
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path / "mine"))
    assert _yosys._module_cache_dir() == str(tmp_path / "mine")


def test_measurement_rows_are_bounded(tmp_path):
    from calibrate import read_measurements
    path = tmp_path / "m.csv"
    path.write_text("model,energy_j,samples\nzoo:lenet5,inf,\nzoo:lenet5,5,1e300\nzoo:lenet5,6,\n")
    data = read_measurements(str(path), zoo_names=("lenet5",))
    assert [r.energy_j for r in data.rows] == [6.0]
    assert [problem for _, problem in data.problems] == ["energy_j must be a positive number, not 'inf'",
                                                         "samples must be at most 2^53, not '1e300'"]
