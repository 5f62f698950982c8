"""tosim fit end to end: workload scaling, fits, bad rows, CodeCarbon, --write-profile into score."""
import json
import os
import shutil

import pytest

import calibrate
import hardware_profiles
from tosim.cli import main
from tosim import score_many

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "measurements")
WIDTHS = (4, 6, 8, 10, 12, 14, 16, 18)


def step_tos(sources, phase, batch, profile="li2022"):
    results = score_many(sources, hardware_profiles.load(profile), phase=phase, batch=batch, jobs=1)
    return {s: r.to_dict() for s, r in zip(sources, results)}


@pytest.fixture(scope="module")
def truth():
    """Per-step TOs and FLOPs of the MLP set for the workload used below (batch 64 and 28)."""
    sources = [f"zoo:li2022-mlp-{w}-sigmoid" for w in WIDTHS]
    return {b: step_tos(sources, "training", b) for b in (64, 28)}


def run_tos(truth, source, epochs=3):
    # 1372 samples, batch 64: 21 full steps and one of 28 (paper Table II, Banknote)
    return epochs * (21 * truth[64][source]["tos"] + truth[28][source]["tos"])


def write_csv(tmp_path, truth, energy, extra="", name="m.csv"):
    lines = ["# synthetic test data: energies computed from TOs", "model,energy_j,phase,batch,samples,epochs,device"]
    for w in WIDTHS:
        source = f"zoo:li2022-mlp-{w}-sigmoid"
        for epochs in (2, 3):
            lines.append(f"li2022-mlp-{w}-sigmoid,{energy(run_tos(truth, source, epochs))!r},training,64,1372,"
                         f"{epochs},laptop")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n" + extra)
    return str(path)


def fit_json(args, capsys):
    status = main(["fit", *args, "--json"])
    captured = capsys.readouterr()
    return status, (json.loads(captured.out) if captured.out else None), captured.err


def test_fit_recovers_exact_coefficients_and_reports_metrics(tmp_path, truth, capsys):
    path = write_csv(tmp_path, truth, lambda tos: 1000.0 + 2e-9 * tos)
    status, out, err = fit_json([path, "--profile", "li2022"], capsys)
    assert status == 0 and err == ""
    assert out["feature"] == "tos" and out["degree"] == 1 and out["rows"] == 16
    assert out["coefficients"][0] == pytest.approx(1000.0, rel=1e-9)
    assert out["coefficients"][1] == pytest.approx(2e-9, rel=1e-9)
    assert out["train"]["n"] == 10 and out["validation"]["n"] == 6          # 60/40 of 16
    assert out["validation"]["r2"] == pytest.approx(1.0, abs=1e-12)
    assert out["validation"]["precision_min"] == pytest.approx(100.0, abs=1e-9)
    for key in ("rmse", "r2", "precision_min", "precision_max", "precision_avg", "abs_err_avg_j", "abs_err_max_j"):
        assert key in out["validation"] and key in out["train"]
    assert [c["feature"] for c in out["comparison"]] == ["tos", "flops", "macs"]
    assert out["device"] == "laptop" and out["phase"] == "training" and out["skipped"] == []


def test_split_seed_and_degree_options(tmp_path, truth, capsys):
    path = write_csv(tmp_path, truth, lambda tos: 500.0 + 1e-9 * tos + 1e-22 * tos ** 2)
    _, a, _ = fit_json([path, "--profile", "li2022", "--degree", "2", "--seed", "4", "--train-fraction", "0.5"],
                       capsys)
    assert a["train"]["n"] == 8 and len(a["coefficients"]) == 3
    assert a["coefficients"][2] == pytest.approx(1e-22, rel=1e-6)
    _, b, _ = fit_json([path, "--profile", "li2022", "--feature", "flops", "--weighting", "relative"], capsys)
    assert b["feature"] == "flops" and b["weighting"] == "relative"


def test_bad_rows_are_reported_and_the_rest_fitted(tmp_path, truth, capsys):
    extra = "zoo:li2022-mlp-4-sigmoid,-1,training,64,1372,2,laptop\nmissing.yaml,10,training,1,,,laptop\n"
    path = write_csv(tmp_path, truth, lambda tos: 1000.0 + 2e-9 * tos, extra=extra)
    status, out, err = fit_json([path, "--profile", "li2022"], capsys)
    assert status == 1
    assert out["rows"] == 16
    assert [s["line"] for s in out["skipped"]] == [19, 20]
    assert err.splitlines()[0] == f"tosim: warning: {path}:19: energy_j must be a positive number, not '-1' (row skipped)"


def test_several_devices_need_a_choice(tmp_path, truth, capsys):
    path = write_csv(tmp_path, truth, lambda tos: 1000.0 + 2e-9 * tos,
                     extra="zoo:li2022-mlp-4-sigmoid,3,training,64,1372,2,desktop\n")
    status, _, err = fit_json([path, "--profile", "li2022"], capsys)
    assert status == 2
    assert err == "tosim: error: measurements cover several devices (desktop, laptop); pick one with --device\n"
    status, out, _ = fit_json([path, "--profile", "li2022", "--device", "laptop"], capsys)
    assert status == 0 and out["rows"] == 16


def test_usage_errors_are_one_line(tmp_path, truth, capsys):
    path = write_csv(tmp_path, truth, lambda tos: 1000.0 + 2e-9 * tos)
    status, _, err = fit_json([path, "--feature", "tos-by-op", "--write-profile", str(tmp_path / "p.yaml")], capsys)
    assert status == 2 and err.startswith("tosim: error: --write-profile needs a polynomial feature") and \
        err.count("\n") == 1
    short = tmp_path / "short.csv"
    short.write_text("model,energy_j\nzoo:lenet5,3\nzoo:lenet5,4\n")
    status, _, err = fit_json([str(short), "--profile", "li2022"], capsys)
    assert status == 2
    assert err == f"tosim: error: {short}: need at least 3 measurements to split into train and validation, got 2\n"


def test_nonnegative_fit_by_op(tmp_path, truth, capsys):
    path = write_csv(tmp_path, truth, lambda tos: 1000.0 + 2e-9 * tos)
    status, out, _ = fit_json([path, "--profile", "li2022", "--feature", "tos-by-op"], capsys)
    assert status == 0
    assert out["feature"] == "tos-by-op" and out["intercept"] >= 0
    assert set(out["coefficients"]) <= {"add", "sub", "mul", "div", "sqrt", "cmp"}
    assert all(c >= 0 for c in out["coefficients"].values())
    assert out["validation"]["precision_min"] > 99.0


def test_write_profile_loads_and_scores_joules(tmp_path, truth, capsys):
    # the input profile is a file: the output extends it by a path relative to itself
    profile_dir = tmp_path / "profiles"
    profile_dir.mkdir()
    base = profile_dir / "mine.yaml"
    base.write_text("schema: 1\nname: mine\nextends: li2022\n")
    path = write_csv(tmp_path, truth, lambda tos: 1000.0 + 2e-9 * tos)
    out_file = tmp_path / "out" / "fitted.yaml"
    out_file.parent.mkdir()                  # like every output, its folder must exist
    plot = tmp_path / "fit.png"
    status, out, _ = fit_json([path, "--profile", str(base), "--write-profile", str(out_file),
                               "--plot", str(plot)], capsys)
    assert status == 0
    assert plot.stat().st_size > 1000
    profile = hardware_profiles.load_file(str(out_file))
    assert profile.chain[-2].endswith("mine.yaml")
    device = profile.devices["laptop"]
    assert device["feature"] == "tos" and device["unit"] == "J" and device["phase"] == "training"
    assert device["coefficients"] == out["coefficients"]
    assert device["metrics"]["validation"]["r2"] == pytest.approx(1.0)
    # the TOs of the measured runs, so that scoring far outside them warns
    runs = [run_tos(truth, f"zoo:li2022-mlp-{w}-sigmoid", epochs) for w in WIDTHS for epochs in (2, 3)]
    assert device["fitted_range"] == pytest.approx([min(runs), max(runs)], rel=1e-12)
    text = out_file.read_text()
    assert "extends: ../profiles/mine.yaml" in text
    # tosim score --device gives the polynomial of the scored TOs
    assert main(["score", "zoo:li2022-mlp-8-sigmoid", "--profile", str(out_file), "--device", "laptop",
                 "--phase", "training", "--batch", "64", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["energy_j"] == pytest.approx(calibrate.predict(device["coefficients"], row["tos"]), rel=1e-12)
    # a built-in input profile is extended by name
    assert main(["fit", path, "--profile", "li2022", "--write-profile", str(tmp_path / "b.yaml")]) == 0
    assert "extends: li2022\n" in (tmp_path / "b.yaml").read_text()


def test_codecarbon_input(tmp_path, capsys):
    for name in ("emissions.csv", "emissions_map.csv", "tiny-mlp.yaml"):
        shutil.copy(os.path.join(HERE, name), tmp_path / name)
    # a fourth mapped run so three rows are usable
    (tmp_path / "emissions_map.csv").write_text(
        (tmp_path / "emissions_map.csv").read_text() + "run-4,tiny-mlp.yaml,training,4,10,3\n")
    status, out, err = fit_json([str(tmp_path / "emissions.csv"), "--map", str(tmp_path / "emissions_map.csv"),
                                 "--profile", "li2022", "--feature", "flops"], capsys)
    assert status == 1                         # run-3 has no energy
    assert out["rows"] == 3 and [s["line"] for s in out["skipped"]] == [4]
    assert "0 kWh" in err


def test_score_of_the_whole_run_gives_back_the_fitted_energy(tmp_path, truth, capsys):
    """What tosim fit reads as a measured run (batch 64, 1372 samples, 3 epochs), tosim score
    --samples/--epochs scores the same way: the fitted device returns the measured joules."""
    path = write_csv(tmp_path, truth, lambda tos: 1000.0 + 2e-9 * tos)
    out_file = tmp_path / "fitted.yaml"
    assert main(["fit", path, "--profile", "li2022", "--write-profile", str(out_file)]) == 0
    capsys.readouterr()
    source = "zoo:li2022-mlp-10-sigmoid"
    assert main(["score", source, "--profile", str(out_file), "--device", "laptop", "--phase", "training",
                 "--batch", "64", "--samples", "1372", "--epochs", "3", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["tos"] == pytest.approx(run_tos(truth, source, 3), rel=1e-12)
    assert row["energy_j"] == pytest.approx(1000.0 + 2e-9 * run_tos(truth, source, 3), rel=1e-9)


def test_paper_coefficients_on_the_paper_workload(capsys):
    """The README's figures: li2022 eq. 4 (laptop CPU, TOs) on Table II's DNN runs (batch 64,
    1372 samples, 2000 epochs) counted under li2022 gives 1,727 J (width 4) to 1,900 J (width 18)."""
    assert main(["score", "zoo:li2022-mlp-4-sigmoid", "zoo:li2022-mlp-18-sigmoid", "--profile", "li2022",
                 "--device", "laptop-cpu-dnn-tos", "--phase", "training", "--batch", "64", "--samples", "1372",
                 "--epochs", "2000", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [round(row["energy_j"]) for row in rows] == [1727, 1900]


def test_outputs_are_checked_before_fitting(tmp_path, truth, capsys):
    path = write_csv(tmp_path, truth, lambda tos: 1000.0 + 2e-9 * tos)
    base = tmp_path / "base.yaml"
    base.write_text("schema: 1\nname: base\nextends: li2022\n")
    model = tmp_path / "tiny.yaml"
    model.write_text("input: [4]\nlayers:\n  - {type: linear, out: 2}\n")
    rows = tmp_path / "rows.csv"
    rows.write_text("model,energy_j,device\ntiny.yaml,1,d\ntiny.yaml,2,d\ntiny.yaml,3,d\n")
    (tmp_path / "folder.yaml").mkdir()
    cases = [
        ([path, "--profile", str(base), "--write-profile", str(base)],
         f"--write-profile {base}: is also an input of this command; it would be overwritten"),
        ([str(rows), "--write-profile", str(model)],        # a model file the rows name
         f"--write-profile {model}: is also an input of this command; it would be overwritten"),
        ([path, "--write-profile", path], f"--write-profile {path}: the extension must be .yaml or .yml, not '.csv'"),
        ([path, "--write-profile", ""], "--write-profile: an empty path"),
        ([path, "--write-profile", str(base / "sub" / "w.yaml")],
         f"--write-profile {base / 'sub' / 'w.yaml'}: no folder {base / 'sub'}"),
        ([path, "--write-profile", str(tmp_path / "no" / "w.yaml")],
         f"--write-profile {tmp_path / 'no' / 'w.yaml'}: no folder {tmp_path / 'no'}"),
        ([path, "--write-profile", str(tmp_path / "folder.yaml")], f"--write-profile {tmp_path / 'folder.yaml'}: is a folder"),
        ([path, "--plot", str(tmp_path / "p.jpg")], f"--plot {tmp_path / 'p.jpg'}: the extension must be .png, not '.jpg'"),
        ([path, "--plot", ""], "--plot: an empty path"),
        ([path, "--seed", "-1"], "argument --seed: must be a non-negative integer, not '-1'"),
    ]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    for args, message in cases:
        status = main(["fit", *args, "--profile", "li2022"] if "--profile" not in args else ["fit", *args])
        assert (status, capsys.readouterr().err) == (2, f"tosim: error: {message}\n")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_no_device_name_for_write_profile_fails_before_scoring(tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text("model,energy_j\nzoo:nope,1\nzoo:nope,2\nzoo:nope,3\n")
    status = main(["fit", str(rows), "--write-profile", str(tmp_path / "w.yaml")])
    assert (status, capsys.readouterr().err) == (2, "tosim: error: --write-profile needs a device name: give --device NAME\n")
    assert not (tmp_path / "w.yaml").exists()


def test_all_rows_skipped_says_why_before_the_error(tmp_path, capsys):
    rows = tmp_path / "zeros.csv"
    rows.write_text("model,energy_j\nzoo:lenet5,0\nzoo:lenet5,-1\nzoo:lenet5,x\n")
    status = main(["fit", str(rows)])
    assert status == 2
    assert capsys.readouterr().err == (
        f"tosim: warning: {rows}:2: energy_j must be a positive number, not '0' (row skipped)\n"
        f"tosim: warning: {rows}:3: energy_j must be a positive number, not '-1' (row skipped)\n"
        f"tosim: warning: {rows}:4: energy_j must be a positive number, not 'x' (row skipped)\n"
        f"tosim: error: {rows}: need at least 3 measurements to split into train and validation, got 0\n")


@pytest.mark.parametrize("weighting", ["absolute", "relative"])
@pytest.mark.parametrize("scale", [1e-320, 1e-300, 1e300])
def test_energies_at_the_ends_of_float64_fit_cleanly(tmp_path, truth, capsys, weighting, scale):
    """Joules near float64's limits: a clean fit (no numpy warnings, which pytest turns into errors)."""
    path = write_csv(tmp_path, truth, lambda tos: scale * (1000.0 + 2e-9 * tos))
    status, out, err = fit_json([path, "--profile", "li2022", "--weighting", weighting], capsys)
    assert (status, err) == (0, "")
    if scale > 1e-310:       # subnormal joules keep a few digits only
        assert out["coefficients"][0] == pytest.approx(1000.0 * scale, rel=1e-6)
        assert out["validation"]["r2"] == pytest.approx(1.0, abs=1e-9)
        assert out["validation"]["precision_min"] == pytest.approx(100.0, abs=1e-6)


def test_energies_beyond_float64_fit_are_one_line(tmp_path, capsys):
    # runs of 1e-320 J and of 1e308 J: relative weights (1 / energy) span more than float64, and
    # with absolute errors the tiny run's precision (error / energy) overflows
    rows = tmp_path / "wide.csv"
    rows.write_text("model,energy_j\nzoo:lenet5,1e-320\nzoo:li2022-mlp-4-sigmoid,1\n"
                    "zoo:li2022-mlp-6-sigmoid,1e308\nzoo:li2022-mlp-8-sigmoid,5\n")
    status, _, err = fit_json([str(rows), "--profile", "li2022", "--weighting", "relative"], capsys)
    assert (status, err) == (2, f"tosim: error: {rows}: relative weighting: the measured energies span too many "
                                "orders of magnitude for float64\n")
    # relative is also the default on such a span
    status, _, err = fit_json([str(rows), "--profile", "li2022"], capsys)
    assert (status, err) == (2, f"tosim: error: {rows}: relative weighting: the measured energies span too many "
                                "orders of magnitude for float64\n")
    status, _, err = fit_json([str(rows), "--profile", "li2022", "--weighting", "absolute"], capsys)
    warning, error = err.splitlines()
    assert warning.startswith("tosim: warning: the measured energies span ")
    assert (status, error) == (2, f"tosim: error: {rows}: the tos fit leaves float64's range (measured energies or "
                                  "features too large or too small)")


def test_energy_parts_option_is_checked_by_argparse(capsys):
    assert main(["fit", os.path.join(HERE, "emissions.csv"), "--energy-parts", "cpu+cpu"]) == 2
    assert capsys.readouterr().err.endswith(
        "argument --energy-parts: energy part must be 'total' or a '+'-joined subset of cpu, gpu, ram "
        "(each part once), not 'cpu+cpu'\n")
