"""A whole training run priced by switching energy (``power.energy: activity``), end to end:
every layer's joules are its op counts (counted here independently, per step and batch size)
times the per-op switching energies of the profile's units (:func:`hwlib.activity.op_energies`)."""
import os

import pytest

import hardware_profiles as hp
import opcount
from hardware_profiles import schema as S
from hwlib import activity

import tosim

# fp8 units are small circuits (fast to synthesize); the mse loss layer has its own operands
PROFILE = """\
extends: cmos-generic
name: switching-run
formats: [fp8_e4m3, fp16]
default_format: fp8_e4m3
power:
  energy: activity
  vectors: 40
  seed: 2
  distribution:
    default: normal
    mul: ["normal:scale=0.05", "relu:zeros=0.5"]
    layers: {mse: {default: uniform}}
"""

MODEL = {"name": "mlp-6-4-3", "input": [6], "format": "fp8_e4m3",
         "layers": [{"type": "linear", "out": 4}, {"type": "relu"}, {"type": "linear", "out": 3}]}

BATCH, SAMPLES, EPOCHS = 4, 10, 3          # an epoch: 2 steps of batch 4 and 1 of batch 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("switching-run")
    profile = folder / "run.yaml"
    profile.write_text(PROFILE)
    old = os.environ.get("TOSIM_CACHE_DIR")
    os.environ["TOSIM_CACHE_DIR"] = str(folder / "cache")
    try:
        result = tosim.score(MODEL, str(profile), phase="training", batch=BATCH,
                             workload={"samples": SAMPLES, "epochs": EPOCHS}, per_layer=True)
        loaded = hp.load(str(profile))
        # the unit tables, read back from the run's own cache: per (op, format), and for the
        # mse layer its own distributions
        ops = [op for op in S.BASIC_OPS if op != "sqrt"]
        plain = activity.op_energies(loaded, [(op, "fp8_e4m3") for op in ops])
        mse = activity.op_energies(loaded, [(op, "fp8_e4m3") for op in ops], layer_type="mse")
    finally:
        if old is None:
            del os.environ["TOSIM_CACHE_DIR"]
        else:
            os.environ["TOSIM_CACHE_DIR"] = old
    return {"result": result, "profile": loaded, "plain": plain, "mse": mse}


def _step_counts(profile, batch):
    """Per layer, per stage, per op: the counts of one training step of ``batch`` samples."""
    counted = opcount.count_model(opcount.load_model(MODEL), profile, phase="training", batch=batch)
    return [(layer.name, layer.type, layer.stages) for layer in counted.layers]


def test_whole_run_layers_are_counts_times_unit_energies(run):
    result, profile = run["result"], run["profile"]
    assert result.steps == EPOCHS * 3
    full, rest = _step_counts(profile, BATCH), _step_counts(profile, SAMPLES % BATCH)
    assert [layer.name for layer in result.layers] == [name for name, _, _ in full]
    assert [layer.type for layer in result.layers] == ["linear", "relu", "linear", "mse"]
    by_stage = dict.fromkeys(S.STAGES, 0.0)
    total = 0.0
    for layer, (_, kind, a), (_, _, b) in zip(result.layers, full, rest):
        table = run["mse"] if kind == "mse" else run["plain"]
        expected = 0.0
        for stage in S.STAGES:
            for op in S.BASIC_OPS:
                n = EPOCHS * (2 * a[stage][op] + b[stage][op])         # the run's count, by hand
                if n:
                    joules = n * table[(op, "fp8_e4m3")].energy_fj_per_op * 1e-15
                    expected += joules
                    by_stage[stage] += joules
        assert sum(layer.counts.values()) == sum(EPOCHS * (2 * a[s][op] + b[s][op])
                                                 for s in S.STAGES for op in S.BASIC_OPS)
        assert expected > 0
        assert layer.switching_j == pytest.approx(expected, rel=1e-12), layer.name
        total += expected
    assert result.switching_j == pytest.approx(total, rel=1e-12)
    for stage in S.STAGES:
        assert result.switching_by_stage[stage] == pytest.approx(by_stage[stage], rel=1e-12, abs=0.0)
    assert result.switching_by_stage["loss"] > 0 and result.switching_by_stage["update"] > 0


def test_whole_run_basis_names_every_entry_used(run):
    result = run["result"]
    used = {(e["op"], e["layers"]) for e in result.switching["ops"]}
    # training uses add, sub, mul, cmp (ReLU), div (the loss's mean); the mse layer has its own entries
    assert {("add", None), ("sub", None), ("mul", None), ("cmp", None)} <= used
    assert {("div", "mse"), ("mul", "mse"), ("sub", "mse"), ("add", "mse")} <= used
    for entry in result.switching["ops"]:
        table = run["mse"] if entry["layers"] == "mse" else run["plain"]
        unit = table[(entry["op"], entry["format"])]
        assert entry["energy_fj_per_op"] == unit.energy_fj_per_op and unit.cached
        assert entry["distribution"] == ("uniform" if entry["layers"] == "mse" else unit.distribution)
    assert result.switching_basis.startswith("estimate: ") and "in mse layers: uniform operands" in \
        result.switching_basis
    assert result.tos > 0 and result.complete
