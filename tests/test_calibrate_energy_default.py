"""The static price of layer types a device fit never saw, and the peak rate: both come from the
compute-bound kernels (calibrate._energy.compute_bound_types), never from an element-wise kernel whose
static price is tiny because its energy sits in other terms."""
import numpy as np
import pytest

import calibrate
from calibrate import EnergyModel, LayerTable, fit_energy_model

KEYS = [("fp32", "add"), ("fp32", "cmp"), ("fp32", "mul")]


def _kernels(rng, n, kinds):
    """n single-layer runs; each kind's arithmetic intensity is its kernel's: dense (conv2d, linear)
    20-400 basic ops per byte moved, element-wise 0.25-3 (relu: 1 compare per 8 bytes)."""
    ops = np.zeros((n, len(KEYS)))
    data = np.zeros((n, 3))
    types = [kinds[i % len(kinds)] for i in range(n)]
    for i, kind in enumerate(types):
        size = 10.0 ** rng.uniform(5, 8)
        if kind in ("conv2d", "linear"):
            ops[i, 0] = ops[i, 2] = size
            moved = 2 * size / 10.0 ** rng.uniform(1.3, 2.6)
            data[i] = moved * np.asarray([0.3, 0.3, 0.4])
        else:
            ops[i, 1] = size * (1.0 if kind == "relu" else rng.uniform(4, 12))
            data[i] = [4 * size, 4 * size, 0.0]
    return LayerTable(run=np.arange(n), repeat=np.ones(n), op_keys=KEYS, ops=ops, bytes=data, calls=np.ones(n),
                      n_runs=n, types=types)


def test_compute_bound_types_by_arithmetic_intensity():
    table = _kernels(np.random.default_rng(1), 60, ("conv2d", "linear", "relu", "tanh", "sigmoid"))
    intensity = calibrate._energy.arithmetic_intensity(table)
    assert np.all(intensity[np.isin(table.types, ["conv2d", "linear"])] > 15)
    assert np.all(intensity[np.isin(table.types, ["relu", "tanh", "sigmoid"])] < 2)
    bound = calibrate._energy.compute_bound_types
    assert bound(table) == ["conv2d", "linear"]
    assert bound(table, ["linear", "relu", "tanh"]) == ["linear"]
    # element-wise kernels only: those within a decade of the most intense one (relu does 8x fewer ops per byte
    # than the others here, and still counts)
    assert bound(table, ["relu", "sigmoid", "tanh"]) == ["relu", "sigmoid", "tanh"]
    assert bound(table, ["relu", "sigmoid", "tanh"], ratio=0.5) == ["sigmoid", "tanh"]
    # no bytes moved anywhere: nothing to tell them apart by, every kind counts
    still = table.subset(range(table.n_runs))
    still.bytes = np.zeros_like(still.bytes)
    assert bound(still) == ["conv2d", "linear", "relu", "sigmoid", "tanh"]


@pytest.fixture(scope="module")
def fitted():
    """A static-only fit where tanh's static price is tiny but positive (the old rule's pick)."""
    table = _kernels(np.random.default_rng(2), 90, ("conv2d", "relu", "tanh"))
    truth = EnergyModel(terms=("static",), static_j_per_op={"conv2d": 1e-9, "relu": 5e-8, "tanh": 1e-12},
                        peak_ops_per_s=1e10, bandwidth_bytes_per_s=1e9)
    y, _ = truth.predict_runs(table)
    model, info = fit_energy_model(table, y, terms=("static",), static_w=20.0, prior_strength=0.0,
                                   peak_ops_per_s=1e10, bandwidth_bytes_per_s=1e9)
    return truth, model, info


def test_unseen_types_take_the_compute_bound_price_not_the_smallest(fitted):
    truth, model, info = fitted
    assert model.static_j_per_op["tanh"] == pytest.approx(1e-12, rel=1e-6)       # the smallest fitted price
    assert model.static_j_per_op_default == pytest.approx(1e-9, rel=1e-6)
    assert info["rate_reference"] == ["conv2d"]
    # an unseen dense kernel (linear) is priced like the convolution, not 1000x cheaper like tanh
    unseen = _kernels(np.random.default_rng(3), 8, ("linear",))
    pred, _ = model.predict_runs(unseen)
    as_conv = EnergyModel(terms=("static",), static_j_per_op={"linear": 1e-9}, peak_ops_per_s=1e10,
                          bandwidth_bytes_per_s=1e9).predict_runs(unseen)[0]
    assert np.allclose(pred, as_conv, rtol=1e-6)


def test_peak_comes_from_the_compute_bound_kernel(fitted):
    truth, model, info = fitted
    # static_w / peak is the convolution's J per op (it runs at the peak), not tanh's
    assert model.peak_ops_per_s == pytest.approx(20.0 / 1e-9, rel=1e-6)
    assert model.efficiency()["conv2d"] == pytest.approx(1.0)
    assert model.efficiency()["relu"] == pytest.approx(1e-9 / 5e-8, rel=1e-6)
    # the energies of the fitted types are the truth's whichever kernel sets the time scale
    table = _kernels(np.random.default_rng(4), 12, ("conv2d", "relu", "tanh"))
    assert np.allclose(model.predict_runs(table)[0], truth.predict_runs(table)[0], rtol=1e-6)
    # the profile form keeps the default and the peak
    back = EnergyModel.from_dict(model.to_dict())
    assert back.static_j_per_op_default == model.static_j_per_op_default
    assert back.peak_ops_per_s == pytest.approx(model.peak_ops_per_s)
