import os

import numpy as np
import pytest

from calibrate import (Measurement, MeasurementError, read_any, read_codecarbon, read_measurements,
                       workload_steps)

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "measurements")
ZOO = ("lenet5", "alexnet")


def fixture(name):
    return os.path.join(HERE, name)


def write(tmp_path, text, name="m.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_workload_steps():
    assert workload_steps(64, samples=1372) == ((64, 21), (28, 1))
    assert workload_steps(64, samples=128) == ((64, 2),)
    assert workload_steps(64, samples=10) == ((10, 1),)
    assert workload_steps(8, passes=100) == ((8, 100),)
    assert workload_steps(8) == ((8, 1),)
    with pytest.raises(ValueError, match=r"^give samples or passes, not both$"):
        workload_steps(8, samples=10, passes=2)


def test_measurement_csv_rows_and_problems_with_line_numbers():
    result = read_measurements(fixture("bad_rows.csv"), default_phase="inference", zoo_names=ZOO)
    assert [r.line for r in result.rows] == [3, 4, 11]
    first = result.rows[0]
    assert first == Measurement(line=3, model=fixture("tiny-mlp.yaml"), energy_j=12.5, phase="training",
                                batch=4, samples=10, epochs=2, passes=None)
    assert first.steps == ((4, 2), (2, 1))
    assert result.rows[1].model == "zoo:lenet5" and result.rows[1].phase == "inference"
    assert result.rows[1].batch == 1 and result.rows[1].epochs == 1
    assert result.rows[2].model == "zoo:lenet5" and result.rows[2].steps == ((2, 5),)
    assert result.problems == [
        (5, "energy_j must be a positive number, not '-3'"),
        (7, f"model 'no-such-model.yaml': no file {fixture('no-such-model.yaml')} and not a built-in zoo name"),
        (8, "phase must be one of inference, validation, training, not 'testing'"),
        (9, "batch must be a positive integer, not '0'"),
        (10, "give samples or passes, not both"),
        (12, "energy_j must be a positive number, not 'abc'"),
        (13, "2 fields, the header has 7"),
    ]
    assert result.messages()[0] == f"{fixture('bad_rows.csv')}:5: energy_j must be a positive number, not '-3'"


def test_fresh_outputs_column_says_how_much_of_a_run_reused_its_outputs(tmp_path):
    """fresh_outputs: the share of a run's calls with fresh output memory, 0 to 1 (default 1, also
    when empty); anything else is its row's problem; TableCache gives it to every layer entry."""
    path = tmp_path / "m.csv"
    path.write_text("model,energy_j,fresh_outputs\nzoo:lenet5,1,0\nzoo:lenet5,2,\nzoo:lenet5,3,0.25\n"
                    "zoo:lenet5,4,kept\nzoo:lenet5,4,1.5\nzoo:lenet5,4,nan\n")
    result = read_measurements(str(path))
    assert [r.fresh_outputs for r in result.rows] == [0.0, 1.0, 0.25]
    assert result.problems == [(5, "fresh_outputs must be a share from 0 to 1, not 'kept'"),
                               (6, "fresh_outputs must be a share from 0 to 1, not '1.5'"),
                               (7, "fresh_outputs must be a share from 0 to 1, not 'nan'")]
    import hardware_profiles
    from tosim._device_model import TableCache
    cache = TableCache(hardware_profiles.load("cmos-generic"))
    reused, fresh, part = (cache.run(row)[0] for row in result.rows)
    assert len(reused.fresh_share) > 1 and np.all(reused.fresh_share == 0)
    assert np.all(fresh.fresh_share == 1) and np.all(part.fresh_share == 0.25)


def test_bare_zoo_names_need_the_zoo_list():
    result = read_measurements(fixture("bad_rows.csv"))
    assert 11 in [line for line, _ in result.problems]


def test_whole_file_errors(tmp_path):
    with pytest.raises(MeasurementError, match=r"^.*nope\.csv: no such file$"):
        read_measurements(str(tmp_path / "nope.csv"))
    path = write(tmp_path, "model,joules\nzoo:lenet5,3\n")
    with pytest.raises(MeasurementError, match=r"^.*m\.csv: missing column 'energy_j' \(columns: model, joules\)$"):
        read_measurements(path)
    path = write(tmp_path, "# only a comment\n")
    with pytest.raises(MeasurementError, match=r"^.*m\.csv: no header row$"):
        read_measurements(path)
    path = write(tmp_path, "model,energy_j,model\n")
    with pytest.raises(MeasurementError, match=r"^.*m\.csv:1: duplicate column 'model'$"):
        read_measurements(path)


def test_codecarbon_with_mapping_file():
    result = read_codecarbon(fixture("emissions.csv"), mapping=fixture("emissions_map.csv"), zoo_names=ZOO)
    assert [r.line for r in result.rows] == [2, 3]
    assert result.rows[0].energy_j == pytest.approx(0.0008 * 3.6e6)
    assert result.rows[0].model == fixture("tiny-mlp.yaml")
    assert result.rows[0].steps == ((4, 2), (2, 1)) and result.rows[0].epochs == 2
    assert result.rows[1].model == "zoo:lenet5" and result.rows[1].batch == 8
    assert result.problems == [(4, "no energy: energy_consumed is 0 kWh"),
                               (5, f"run_id 'run-4' is not in the mapping {fixture('emissions_map.csv')}")]
    assert result.kind == "codecarbon"


def test_codecarbon_energy_parts():
    gpu_cpu = read_codecarbon(fixture("emissions.csv"), mapping=fixture("emissions_map.csv"), parts="cpu+gpu")
    assert gpu_cpu.rows[0].energy_j == pytest.approx((0.0005 + 0.0002) * 3.6e6)
    with pytest.raises(MeasurementError, match=r"^energy part must be 'total' or a '\+'-joined subset of "
                                               r"cpu, gpu, ram \(each part once\), not 'disk'$"):
        read_codecarbon(fixture("emissions.csv"), parts="disk")
    with pytest.raises(MeasurementError, match=r"^energy part must be .* \(each part once\), not 'cpu\+cpu'$"):
        read_codecarbon(fixture("emissions.csv"), parts="cpu+cpu")


def test_codecarbon_model_column_and_errors(tmp_path):
    path = write(tmp_path, "run_id,energy_consumed,model,phase\nr1,0.001,zoo:lenet5,training\n", "emissions.csv")
    result = read_any(path)
    assert result.kind == "codecarbon"
    assert result.rows[0].energy_j == pytest.approx(3600.0) and result.rows[0].phase == "training"
    path = write(tmp_path, "run_id,energy_consumed\nr1,0.001\n", "e2.csv")
    with pytest.raises(MeasurementError, match=r"^.*e2\.csv: CodeCarbon file has no 'model' column; map its runs "
                                               r"to models with a mapping file$"):
        read_any(path)
    bad_map = write(tmp_path, "timestamp,model\nx,zoo:lenet5\n", "map.csv")
    with pytest.raises(MeasurementError, match=r"^.*map\.csv: first column must be one of run_id, project_name, "
                                               r"experiment_id, not 'timestamp'$"):
        read_any(path, mapping=bad_map)
    with pytest.raises(MeasurementError, match=r"^.*bad_rows\.csv: a mapping file and energy parts apply to "
                                               r"CodeCarbon's emissions\.csv only \(this file has an energy_j column\)$"):
        read_any(fixture("bad_rows.csv"), parts="cpu")
