"""A device's fitted_range: the feature values it was fitted on; scoring far outside them says
the energy is an extrapolation (Python: ``energy_extrapolated``; CLI: a warning line)."""
import pytest

import hardware_profiles
import tosim
from tosim.cli import main

# li2022 Table II: the DNN set (sigmoid, widths 4-18) and the CNN set (depths 2-10)
DNN = [f"zoo:li2022-mlp-{w}-sigmoid" for w in range(4, 19)]
CNN = [f"zoo:li2022-cnn-{d}" for d in range(2, 11)]
FITS = {"laptop-cpu-dnn": (DNN, 64, {"samples": 1372, "epochs": 2000}),
        "desktop-cpu-dnn": (DNN, 64, {"samples": 1372, "epochs": 5000}),
        "desktop-gpu-cnn": (CNN, 16, {"samples": 120, "epochs": 100}),
        "desktop-cpu-cnn": (CNN, 64, {"samples": 120, "epochs": 20})}


def test_li2022_fitted_ranges_are_the_counts_of_the_papers_runs(li2022):
    # the profile stores 3 significant digits of what tosim counts for the fit's workloads
    for prefix, (models, batch, workload) in FITS.items():
        results = tosim.score_many(models, li2022, phase="training", batch=batch, workload=workload, jobs=1)
        for feature in ("tos", "flops"):
            values = [getattr(r, feature) for r in results]
            stored = li2022.devices[f"{prefix}-{feature}"]["fitted_range"]
            assert stored == pytest.approx([min(values), max(values)], rel=6e-3), (prefix, feature)


def test_energy_extrapolated_flags_workloads_far_outside_the_fit(li2022):
    inside = tosim.score("zoo:li2022-mlp-8-sigmoid", li2022, phase="training", batch=64,
                         device="laptop-cpu-dnn-tos", workload={"samples": 1372, "epochs": 2000})
    assert inside.energy_extrapolated is False
    far = tosim.score("zoo:li2022-mlp-8-sigmoid", li2022, phase="training", batch=64, device="laptop-cpu-dnn-tos")
    low = li2022.devices["laptop-cpu-dnn-tos"]["fitted_range"][0]
    assert far.tos < low / 10 and far.energy_extrapolated is True
    # no range known (a mapping without one) or no device: None
    assert tosim.score("zoo:lenet5", li2022, device={"feature": "tos", "coefficients": [1.0, 1e-12]}) \
        .energy_extrapolated is None
    assert tosim.score("zoo:lenet5", li2022).energy_extrapolated is None
    # the margin is 10x on either side, from the mapping's own range
    device = {"feature": "tos", "coefficients": [0.0, 1e-12], "fitted_range": [inside.tos / 10, inside.tos / 10]}
    assert tosim.score("zoo:li2022-mlp-8-sigmoid", li2022, phase="training", batch=64, device=device,
                       workload={"samples": 1372, "epochs": 2000}).energy_extrapolated is False
    device["fitted_range"] = [inside.tos / 10.5, inside.tos / 10.5]
    assert tosim.score("zoo:li2022-mlp-8-sigmoid", li2022, phase="training", batch=64, device=device,
                       workload={"samples": 1372, "epochs": 2000}).energy_extrapolated is True


def test_score_warns_once_naming_the_models_outside(capsys):
    argv = ["score", "zoo:gpt2", "zoo:li2022-mlp-8-sigmoid", "--profile", "li2022", "--device", "laptop-cpu-dnn-tos",
            "--phase", "training", "--batch", "64", "--samples", "1372", "--epochs", "2000", "--json"]
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "warning" in line] == [
        f"tosim: warning: device 'laptop-cpu-dnn-tos' was fitted on runs of 4.67e+12 to 5.2e+13 TOs; the energy of "
        f"gpt2 ({tosim.score('zoo:gpt2', 'li2022', phase='training', batch=64, workload={'samples': 1372, 'epochs': 2000}).tos:.3g}) "
        f"lies more than 10x outside that range: an extrapolation, not a prediction"]
    assert main(argv[:1] + argv[2:]) == 0                      # the MLP alone: inside, no warning
    assert "warning" not in capsys.readouterr().err


def test_sweep_counts_the_configurations_outside():
    import numpy as np
    from tosim import cmd_sweep
    device = {"feature": "flops", "coefficients": [1.0, 1.0], "fitted_range": [100.0, 1000.0]}
    columns = {"flops": np.array([9, 10, 10_000, 10_001, 5, 20_000]), "status": np.array([0, 0, 0, 0, 1, 0])}
    assert cmd_sweep._extrapolated(device, columns) == 3          # 9, 10,001 and 20,000; the flagged 5 is no result
    assert cmd_sweep._extrapolated({"feature": "flops", "coefficients": [1.0]}, columns) == 0


@pytest.mark.parametrize("entry, message", [
    ("[1.0]", "devices.d.fitted_range: needs two numbers [low, high], not 1"),
    ("[-1.0, 2.0]", "devices.d.fitted_range[0]: must be a non-negative number, not -1.0"),
    ("[3.0, 2.0]", "devices.d.fitted_range: low must not exceed high, not [3, 2]"),
    ("[1.0, .nan]", "devices.d.fitted_range[1]: expected a finite number, not nan"),
    ("{a: 1}", "devices.d.fitted_range: expected a list, not mapping"),
])
def test_a_bad_fitted_range_is_one_line_naming_it(tmp_path, entry, message):
    path = tmp_path / "p.yaml"
    path.write_text("schema: 1\nname: p\nextends: li2022\ndevices:\n"
                    f"  d: {{feature: tos, coefficients: [1.0, 2.0],\n      fitted_range: {entry}}}\n")
    with pytest.raises(hardware_profiles.ProfileError) as info:
        hardware_profiles.load_file(str(path))
    assert str(info.value) == f"{path}:6: {message}"


def test_an_energy_model_device_has_no_fitted_range(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("schema: 1\nname: p\nextends: li2022\ndevices:\n"
                    "  d: {energy_model: {version: 1}, fitted_range: [1.0, 2.0]}\n")
    with pytest.raises(hardware_profiles.ProfileError, match=r"p.yaml:5: devices.d.fitted_range: fitted_range is "
                                                            r"the range of a polynomial's feature"):
        hardware_profiles.load_file(str(path))
