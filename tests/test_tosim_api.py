"""tosim.score / tosim.score_many: the Python API gives what the CLI prints, for every kind of model.

Cost tables come from a fixed fake table (monkeypatched adapter), so no test synthesizes."""
import json
import os
import subprocess
import sys

import pytest

import hardware_profiles
import opcount
import tosim
from tests.fakes import FORMAT_COST, OP_COST
from tosim.cli import main

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "models")
MLP = os.path.join(FIXTURES, "mlp-4x8.yaml")


pytestmark = pytest.mark.usefixtures("fixed_costs")  # tests.fakes.fake_costs, no synthesis (conftest)


def by_hand(model, profile="li2022", phase="training", batch=4):
    result = opcount.count_model(opcount.load_model(model), hardware_profiles.load(profile), phase=phase, batch=batch)
    stages = {s: 0.0 for s in opcount.STAGES}
    for layer in result.layers:
        for s in opcount.STAGES:
            stages[s] += sum(n * OP_COST[op] * FORMAT_COST[layer.format] for op, n in layer.stages[s].items())
    return result, stages


def test_score_totals_stages_layers_and_completeness():
    r = tosim.score(MLP, profile="li2022", phase="training", batch=4, per_layer=True)
    result, stages = by_hand(MLP)
    assert (r.name, r.source, r.profile, r.phase, r.batch) == ("mlp-4x8", MLP, "li2022", "training", 4)
    assert (r.params, r.macs, r.flops) == (result.params, result.macs, 2 * result.macs)
    assert r.counts == result.totals["all"]
    assert r.tos_by_stage == pytest.approx(stages, rel=1e-12)
    assert r.tos == pytest.approx(sum(stages.values()), rel=1e-12)
    assert r.complete and r.incomplete == [] and r.ok and r.energy_j is None and r.gco2e is None
    assert [layer.name for layer in r.layers] == [layer.name for layer in result.layers]
    assert sum(layer.tos for layer in r.layers) == pytest.approx(r.tos, rel=1e-12)
    assert all(layer.tos == pytest.approx(sum(layer.tos_by_stage.values()), rel=1e-12) for layer in r.layers)


def test_every_kind_of_model_gives_the_same_score():
    spec = {"name": "mlp-4x8", "input": [4], "format": "fp32", "loss": "mse", "optimizer": "sgd",
            "layers": [{"type": "linear", "out": 8}, {"type": "sigmoid"}, {"type": "linear", "out": 1}]}
    ir = opcount.load_model(MLP)
    from pathlib import Path
    scores = [tosim.score(m, "li2022", phase="training", batch=4) for m in (MLP, Path(MLP), spec, ir)]
    assert len({(s.tos, s.params, tuple(s.counts.values())) for s in scores}) == 1
    assert [s.source for s in scores] == [MLP, MLP, None, None]


def test_torch_module_with_example_inputs():
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Sigmoid(), torch.nn.Linear(8, 1))
    x = torch.zeros(2, 4)
    r = tosim.score(net, "li2022", phase="training", batch=4, example_inputs=x)
    mlp = tosim.score(MLP, "li2022", phase="training", batch=4)
    assert (r.params, r.macs, r.counts["mul"]) == (mlp.params, mlp.macs, mlp.counts["mul"])
    assert tosim.score_many([(net, x)], "li2022", phase="training", batch=4)[0].tos == r.tos
    with pytest.raises(tosim.ScoreError, match="needs example inputs"):
        tosim.score(net)


def test_score_raises_and_score_many_keeps_going():
    with pytest.raises(opcount.ModelError, match="zoo:nope: unknown zoo model"):
        tosim.score("zoo:nope")
    results = tosim.score_many([MLP, "zoo:nope", "zoo:lenet5"], "li2022")
    assert [r.ok for r in results] == [True, False, True]
    assert results.failed == [results[1]] and results[1].name == "nope" and results[1].tos is None
    assert not results[1].complete
    assert tosim.score_many([]) == []
    assert [r.name for r in tosim.score_many(MLP)] == ["mlp-4x8"]      # one path, not its characters


@pytest.mark.parametrize("kwargs, message", [
    ({"phase": "train"}, "unknown phase 'train'; known: inference, validation, training"),
    ({"batch": 0}, "batch must be a positive integer, not 0"),
    ({"workload": {"samples": 10, "passes": 2}}, "give --samples or --passes, not both"),
    ({"workload": {"epoch": 2}}, "unknown workload key 'epoch'"),
    ({"workload": {"epochs": 0}}, "workload epochs must be a positive integer, not 0"),
    ({"device": "laptop-cpu-dnn-to", "profile": "li2022"}, "did you mean 'laptop-cpu-dnn-tos'?"),
    ({"grid_intensity": -5}, "grid_intensity must be a number of gCO2e per kWh in 0..1e+06, not -5"),
    ({"grid_intensity": float("nan")}, "grid_intensity must be a number of gCO2e per kWh in 0..1e+06, not nan"),
])
def test_bad_arguments_raise_score_error(kwargs, message):
    with pytest.raises(tosim.ScoreError, match=message.replace("(", r"\(").replace("?", r"\?").replace("+", r"\+")):
        tosim.score(MLP, **kwargs)


def test_bad_jobs_raise_and_errors_show_their_public_names():
    for jobs in (0, -1, 1.5, True):
        with pytest.raises(tosim.ScoreError, match="jobs must be a positive integer"):
            tosim.score_many([MLP], jobs=jobs)
    # a traceback names the class where users import it from, and the class survives pickling
    import pickle
    import hardware_profiles
    import opcount
    for error in (tosim.ScoreError, opcount.ModelError, hardware_profiles.ProfileError):
        assert f"{error.__module__}.{error.__name__}" in ("tosim.ScoreError", "opcount.ModelError",
                                                         "hardware_profiles.ProfileError")
        assert type(pickle.loads(pickle.dumps(error("x")))) is error


def test_incomplete_model_says_what_was_left_out(tmp_path):
    path = tmp_path / "odd.yaml"
    path.write_text("input: [4]\nlayers:\n  - {type: linear, out: 8}\n  - {type: fancy, out_shape: [8]}\n")
    r = tosim.score(str(path))
    assert not r.complete and r.incomplete_types == {"fancy": 1}
    assert r.incomplete[0]["type"] == "fancy" and r.incomplete[0]["layer"]
    assert r.to_dict()["incomplete"] == {"fancy": 1}


def test_outputs_equal_the_cli(tmp_path, capsys):
    """to_dict/to_json and to_csv are the rows tosim score writes (whole run, device, per layer)."""
    argv = [MLP, "zoo:lenet5", "zoo:nope", "--profile", "li2022", "--device", "laptop-cpu-dnn-tos", "--phase",
            "training", "--batch", "32", "--samples", "100", "--epochs", "3", "--per-layer"]
    assert main(["score", *argv, "--out", str(tmp_path / "rows.csv")]) == 1
    assert main(["score", *argv, "--out", str(tmp_path / "rows.json")]) == 1
    capsys.readouterr()
    results = tosim.score_many([MLP, "zoo:lenet5", "zoo:nope"], "li2022", device="laptop-cpu-dnn-tos",
                               phase="training", batch=32, workload={"samples": 100, "epochs": 3}, per_layer=True)
    assert results.to_csv() == (tmp_path / "rows.csv").read_text()
    assert results.to_json() == (tmp_path / "rows.json").read_text()
    row = json.loads(results.to_json())[0]
    assert row["steps"] == 12 and row["energy_j"] == pytest.approx(1.71e3 + 3.65e-12 * row["tos"], rel=1e-12)
    single = results[0].to_csv(str(tmp_path / "one.csv"))
    assert (tmp_path / "one.csv").read_text() == single
    assert single.splitlines()[0] == results.to_csv().splitlines()[0]


def test_whole_run_is_epochs_times_the_steps():
    step = {b: tosim.score(MLP, "li2022", phase="training", batch=b, per_layer=True) for b in (32, 4)}
    run = tosim.score(MLP, "li2022", phase="training", batch=32, workload=tosim.Workload(samples=100, epochs=3),
                      per_layer=True)
    assert run.steps == 12 and run.workload == tosim.Workload(samples=100, epochs=3)
    assert run.counts == {op: 3 * (3 * step[32].counts[op] + step[4].counts[op]) for op in opcount.BASIC_OPS}
    assert run.tos == pytest.approx(3 * (3 * step[32].tos + step[4].tos), rel=1e-12)
    assert run.layers[0].tos == pytest.approx(3 * (3 * step[32].layers[0].tos + step[4].layers[0].tos), rel=1e-12)


def test_device_mapping_and_grid():
    r = tosim.score(MLP, device={"feature": "flops", "coefficients": [1.0, 2.0]}, grid_intensity=100)
    assert r.energy_j == 1.0 + 2.0 * r.flops
    assert r.gco2e == pytest.approx(r.energy_j / 3.6e6 * 100, rel=1e-12)


def test_movement_fields_with_a_memory_profile():
    r = tosim.score("zoo:lenet5", "horowitz45", per_layer=True, densities={"weights": 0.5})
    assert r.levels and set(r.accesses) == set(r.levels)
    assert r.energy_compute_j > 0 and r.energy_movement_j > 0
    assert r.movement.movement_j == r.energy_movement_j
    assert sum(layer.energy_movement_j for layer in r.layers) == pytest.approx(r.energy_movement_j, rel=1e-9)


def test_dataframe_or_a_clear_message():
    results = tosim.score_many([MLP], "li2022", per_layer=True)
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="needs pandas"):
            results.to_dataframe()
        return
    frame = results.to_dataframe()
    assert list(frame.columns)[:5] == ["name", "source", "layer", "layer_type", "format"]
    assert len(frame) == 1 + len(results[0].layers)


def test_import_tosim_is_light():
    code = ("import sys, tosim; heavy = [m for m in ('numba', 'amaranth', 'opcount', 'numpy', 'torch') "
            "if m in sys.modules]; print(heavy, tosim.__version__, callable(tosim.score))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("[] ") and out.rstrip().endswith("True")


def test_reprs_are_one_line_per_result_and_the_cli_table_for_many():
    r = tosim.score("zoo:li2022-mlp-8-sigmoid", "li2022", phase="training", batch=64, device="laptop-cpu-dnn-tos",
                    workload={"samples": 1372, "epochs": 2000}, per_layer=True)
    from tosim._render import si
    assert repr(r) == ("<ScoreResult li2022-mlp-8-sigmoid: li2022 training batch 64 x 44,000 steps, params 193, "
                       f"MACs 1.3G, FLOPs 2.59G, TOs {si(r.tos)}, {si(r.energy_j)}J, {si(r.gco2e)}g CO2e, 8 layers>")
    assert repr(r.layers[0]).startswith("<LayerScore linear1 (linear, fp32): params 40, MACs ")
    rows = tosim.score_many([MLP, "missing.onnx"])
    assert repr(rows).splitlines()[0].split() == ["model", "params", "MACs", "FLOPs", "TOs", "TOs/FLOP"]
    assert repr(rows).splitlines()[-1].split() == ["missing", "error"]
    assert repr(rows[1]) == ("<ScoreResult missing: cmos-generic inference batch 1, error: missing.onnx: cannot read: "
                             "No such file or directory>")
