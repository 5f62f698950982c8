"""tosim count/score/fit with a memory profile: the compute/movement split, --plot, sparsity flags,
the tos+movement fit feature; profiles without memory keep their output."""
import json

import numpy as np
import pytest

import opcount
import tosim._costs
from tosim.cli import main
from tosim.cmd_fit import fit_all


def fake_costs(profile, formats, *, progress=None):
    return np.ones((len(opcount.BASIC_OPS), len(formats)))


@pytest.fixture(autouse=True)
def costs(monkeypatch):
    monkeypatch.setattr(tosim._costs, "costs_array", fake_costs)


def run_json(args, capsys):
    status = main(args + ["--json"])
    out, err = capsys.readouterr()
    return status, json.loads(out), err


def test_count_adds_movement_only_with_a_memory_section(capsys):
    status, plain, _ = run_json(["count", "zoo:lenet5"], capsys)
    assert status == 0 and "movement" not in plain
    status, split, _ = run_json(["count", "zoo:lenet5", "--profile", "horowitz45"], capsys)
    assert status == 0
    mv = split["movement"]
    assert mv["levels"] == ["rf", "local_buffer", "global_buffer", "dram"]
    assert mv["energy_j"] == pytest.approx(mv["energy_compute_j"] + mv["energy_movement_j"])
    assert mv["energy_movement_j"] > mv["energy_compute_j"] > 0
    assert sum(layer["energy_movement_j"] for layer in mv["layers"]) == pytest.approx(mv["energy_movement_j"])
    assert {k: v for k, v in split.items() if k != "movement"} == {
        k: v for k, v in plain.items() if k != "profile"} | {"profile": "horowitz45"}


def test_count_text_plot_and_density(tmp_path, capsys):
    png = tmp_path / "split.png"
    assert main(["count", "zoo:lenet5", "--profile", "yang2017", "--plot", str(png), "--density-inputs", "0.5"]) == 0
    out, _ = capsys.readouterr()
    assert "energy split under yang2017: weight_stationary, levels rf > array > buffer > dram" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _, dense, _ = run_json(["count", "zoo:lenet5", "--profile", "yang2017"], capsys)
    _, sparse, _ = run_json(["count", "zoo:lenet5", "--profile", "yang2017", "--density-inputs", "0.5"], capsys)
    assert sparse["movement"]["energy_movement_j"] < dense["movement"]["energy_movement_j"]
    assert sparse["movement"]["energy_compute_j"] < dense["movement"]["energy_compute_j"]


def test_plot_without_memory_is_a_one_line_error(tmp_path, capsys):
    assert main(["count", "zoo:lenet5", "--plot", str(tmp_path / "x.png")]) == 2
    _, err = capsys.readouterr()
    assert err == ("tosim: error: profile 'cmos-generic' has no memory section, so there is no data movement to "
                   "plot or sparsity to apply (try --profile horowitz45 or yang2017)\n")


def test_score_columns(tmp_path, capsys):
    status, rows, _ = run_json(["score", "zoo:lenet5", "--profile", "yang2017", "--per-layer"], capsys)
    assert status == 0
    row = rows[0]
    assert row["energy_compute_j"] > 0 and row["energy_movement_j"] > 0
    assert set(row) >= {"accesses_rf", "accesses_array", "accesses_buffer", "accesses_dram"}
    assert sum(layer["energy_movement_j"] for layer in row["layers"]) == pytest.approx(row["energy_movement_j"])
    status, plain, _ = run_json(["score", "zoo:lenet5"], capsys)
    assert "energy_movement_j" not in plain[0]
    out = tmp_path / "s.csv"
    assert main(["score", "zoo:lenet5", "--profile", "horowitz45", "--out", str(out), "--plot",
                 str(tmp_path / "p.png")]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header[-6:] == ["energy_compute_j", "energy_movement_j", "accesses_rf", "accesses_local_buffer",
                           "accesses_global_buffer", "accesses_dram"]
    assert (tmp_path / "p-lenet5.png").exists()


def test_fit_tos_plus_movement_recovers_coefficients():
    rng = np.random.default_rng(7)
    features = [{"tos": float(t), "movement": float(m)} for t, m in zip(rng.uniform(1e12, 1e13, 12),
                                                                        rng.uniform(0.1, 5.0, 12))]
    y = [20.0 + 3e-12 * f["tos"] + 1.5 * f["movement"] for f in features]
    for f in features:
        f.update(flops=f["tos"] / 100, macs=f["tos"] / 200, tos_by_op={})
    train, validation = np.arange(8), np.arange(8, 12)
    chosen, pred, _ = fit_all(y, features, "tos+movement", 1, train, validation, "absolute")
    assert chosen["intercept"] == pytest.approx(20.0, rel=1e-6)
    assert chosen["coefficients"]["tos"] == pytest.approx(3e-12, rel=1e-6)
    assert chosen["coefficients"]["movement"] == pytest.approx(1.5, rel=1e-6)


def test_fit_tos_plus_movement_needs_memory(tmp_path, capsys):
    csv = tmp_path / "m.csv"
    csv.write_text("model,energy_j\nzoo:lenet5,1.0\nzoo:lenet5,2.0\nzoo:lenet5,3.0\nzoo:lenet5,4.0\n")
    assert main(["fit", str(csv), "--feature", "tos+movement"]) == 2
    _, err = capsys.readouterr()
    assert err == ("tosim: error: --feature tos+movement needs a profile with a memory section; 'cmos-generic' "
                   "has none (try --profile horowitz45 or yang2017)\n")
