"""bench/getzner2023_layers.py: the converted measurement CSV says which runs reused their outputs
(fresh_outputs), from the evidence in the Getzner files (its docstring), and tosim reads it back."""
import importlib.util
import os

import pytest

import calibrate

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def layers():
    path = os.path.join(os.path.dirname(HERE), "bench", "getzner2023_layers.py")
    spec = importlib.util.spec_from_file_location("getzner2023_layers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fresh_share_by_file_series_and_size(layers):
    gib = 2 ** 30 / 4          # elements of 1 GiB of fp32 output
    share = lambda kind, n, **extra: layers.fresh_share(kind, {"batch_size": "1", "input_size": str(n), **extra})
    # out-of-place series and the other files: every call allocated
    assert share("relu", 10 * gib, test="1.0") == 1.0
    assert share("conv2d", 10 * gib) == share("linear", 1) == share("maxpool2d", 1) == 1.0
    # reused series: none up to 1.1 GiB, then the repetitions beyond ~3.3 GiB of outputs in all
    for kind, extra in (("relu", {"test": "0.0"}), ("sigmoid", {}), ("tanh", {}), ("softmax", {})):
        assert [share(kind, x * gib, **extra) for x in (0.5, 1.0, 1.2, 2.0, 3.4)] == [0, 0, 1 / 3, 2 / 3, 1]
    with pytest.raises(ValueError, match="relu test must be 0 or 1"):
        share("relu", 1, test="2")


def test_converted_csv_carries_fresh_outputs(layers, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    energy = {"cpu_energy": "1e-6", "ram_energy": "0"}
    rows = {"conv2d": {"batch_size": "2", "image_size": "8", "kernel_size": "3", "in_channels": "3",
                       "out_channels": "4", "stride": "1", "padding": "1"},
            "linear": {"batch_size": "2", "input_size": "8", "output_size": "4"},
            "maxpool2d": {"batch_size": "2", "image_size": "8", "kernel_size": "2", "in_channels": "3",
                          "stride": "2", "padding": "0"},
            "relu": {"batch_size": "1", "input_size": str(2 ** 29), "test": "0.0"},
            "sigmoid": {"batch_size": "1", "input_size": "64"}, "tanh": {"batch_size": "1", "input_size": "64"},
            "softmax": {"batch_size": "1", "input_size": "64"}}
    for kind, row in rows.items():
        row = {**row, **energy}
        (data / f"{kind}.csv").write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n")
    out = tmp_path / "out"
    assert layers.convert(str(data), str(out)) == 7
    read = calibrate.read_measurements(str(out / "measurements.csv"))
    assert not read.problems
    got = {os.path.basename(r.model).split("-")[0]: r.fresh_outputs for r in read.rows}
    # relu test=0 at 2 GiB of output: 2 of the 3 repetitions paid fresh pages
    assert got == {"conv2d": 1.0, "linear": 1.0, "maxpool2d": 1.0, "relu": pytest.approx(2 / 3, abs=1e-6),
                   "sigmoid": 0.0, "tanh": 0.0, "softmax": 0.0}
