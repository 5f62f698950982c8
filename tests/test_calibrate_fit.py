import math

import numpy as np
import pytest

import calibrate
from calibrate import fit_nonnegative, fit_polynomial, metrics, power_of_two_scale, predict, split_indices


def test_power_of_two_scale_puts_max_in_half_to_one():
    for top in (1.0, 3.0, 1e15, 7.5e-3, 2.0 ** 40):
        s = power_of_two_scale([0.0, -top / 3, top])
        assert math.frexp(s)[0] == 0.5
        assert 0.5 <= top / s < 1.0
    assert power_of_two_scale([0.0, 0.0]) == 1.0


def test_predict_is_the_polynomial():
    assert predict([1.71e3, 3.65e-12], 2e14) == pytest.approx(1.71e3 + 730.0, rel=1e-15)
    out = predict([1.0, 2.0, 3.0], np.array([0.0, 1.0, 2.0]))
    assert out.tolist() == [1.0, 6.0, 17.0]
    with pytest.raises(ValueError, match=r"^a device model needs at least one coefficient \(the intercept\)$"):
        predict([], 1.0)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_polynomial_fit_recovers_exact_coefficients_at_tos_scale(degree):
    true = [1.7e3, 3.65e-12, -2.0e-28, 4.0e-43][:degree + 1]
    x = np.linspace(1e14, 9e14, 12)
    y = predict(true, x)
    fit = fit_polynomial(x, y, degree)
    assert fit.degree == degree
    for got, want in zip(fit.coefficients, true):
        assert got == pytest.approx(want, rel=1e-6)
    assert np.max(np.abs(fit.predict(x) - y)) < 1e-8 * np.max(y)


def test_scaled_coefficients_convert_back_exactly():
    rng = np.random.default_rng(3)
    x = rng.uniform(1e14, 3e15, 40)
    y = 1.8e3 + 2.6e-15 * x + rng.normal(0, 50, 40)
    fit = fit_polynomial(x, y, 3)
    k = math.frexp(fit.scale)[1] - 1
    assert fit.scale == 2.0 ** k
    for i, (a, c) in enumerate(zip(fit.scaled_coefficients, fit.coefficients)):
        assert c * fit.scale ** i == a            # exact: only the binary exponent moves
    scaled_pred = predict(fit.scaled_coefficients, x / fit.scale)
    assert np.allclose(fit.predict(x), scaled_pred, rtol=1e-12, atol=0)


def test_unscaled_vandermonde_would_be_useless_but_scaled_fit_is_not():
    # the raw degree-3 Vandermonde at 1e15 has condition number far beyond 1/eps
    x = np.linspace(2e14, 2e15, 30)
    raw = np.vander(x, 4, increasing=True)
    assert np.linalg.cond(raw) > 1e16
    y = 2.5e3 + 4.29e-14 * x
    fit = fit_polynomial(x, y, 3)
    assert np.max(np.abs(fit.predict(x) - y)) < 1e-6


def test_relative_weighting_favours_small_energies():
    x = np.array([1.0, 2.0, 3.0, 100.0, 200.0, 300.0])
    y = np.array([2.0, 3.0, 4.2, 101.0, 205.0, 290.0])
    absolute = fit_polynomial(x, y, 1)
    relative = fit_polynomial(x, y, 1, weighting="relative")
    small = slice(0, 3)
    rel_err = lambda f: np.abs(f.predict(x[small]) - y[small]) / y[small]
    assert np.mean(rel_err(relative)) < np.mean(rel_err(absolute))
    assert relative.weighting == "relative"
    with pytest.raises(ValueError, match=r"^weighting must be one of absolute, relative, not 'log'$"):
        fit_polynomial(x, y, 1, weighting="log")


def test_polynomial_fit_errors():
    with pytest.raises(ValueError, match=r"^Polynomial degree must be an integer in 1\.\.3, not 4$"):
        fit_polynomial([1, 2, 3], [1, 2, 3], 4)
    with pytest.raises(ValueError, match=r"^a degree-2 fit needs at least 3 distinct feature values, got 2$"):
        fit_polynomial([1, 1, 2], [1, 2, 3], 2)
    with pytest.raises(ValueError, match=r"^x and y must be finite$"):
        fit_polynomial([1, 2, np.nan], [1, 2, 3], 1)


def test_nonnegative_fit_recovers_per_class_coefficients_and_clamps():
    rng = np.random.default_rng(7)
    x = rng.uniform(1e13, 1e15, (60, 3))
    x[:, 2] *= 1e-3
    y = 500.0 + 2e-12 * x[:, 0] + 5e-13 * x[:, 1]    # third class costs nothing
    fit = fit_nonnegative(x, y, names=["add", "mul", "div"])
    assert fit.intercept == pytest.approx(500.0, rel=1e-6)
    assert fit.coefficients[0] == pytest.approx(2e-12, rel=1e-6)
    assert fit.coefficients[1] == pytest.approx(5e-13, rel=1e-6)
    assert fit.coefficients[2] == pytest.approx(0.0, abs=1e-16)
    assert all(c >= 0 for c in fit.coefficients)
    # a feature that only lowers the energy would need a negative coefficient: clamped at 0
    y2 = 500.0 + 2e-12 * x[:, 0] - 1e-13 * x[:, 1]
    fit2 = fit_nonnegative(x, y2)
    assert fit2.coefficients[1] == 0.0
    assert fit2.names == ["x0", "x1", "x2"]
    assert np.allclose(fit.predict(x), y, rtol=1e-9)


def test_split_is_seeded_and_60_40():
    train, val = split_indices(50, 0.6, seed=1)
    assert len(train) == 30 and len(val) == 20
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(50))
    again, _ = split_indices(50, 0.6, seed=1)
    other, _ = split_indices(50, 0.6, seed=2)
    assert train.tolist() == again.tolist() and train.tolist() != other.tolist()
    train, val = split_indices(3, 0.9, seed=0)
    assert (len(train), len(val)) == (2, 1)
    with pytest.raises(ValueError, match=r"^Train fraction must be a number in \(0, 1\), not 1\.5$"):
        split_indices(10, 1.5)
    with pytest.raises(ValueError, match=r"^need at least 3 measurements to split into train and validation, got 2$"):
        split_indices(2)


def test_metrics_match_hand_computation():
    y = np.array([100.0, 200.0, 400.0])
    p = np.array([110.0, 190.0, 400.0])
    m = metrics(y, p)
    assert m["n"] == 3
    assert m["rmse"] == pytest.approx(math.sqrt(200.0 / 3))
    assert m["r2"] == pytest.approx(1 - 200.0 / np.sum((y - y.mean()) ** 2))
    assert m["precision_min"] == pytest.approx(90.0)
    assert m["precision_max"] == pytest.approx(100.0)
    assert m["precision_avg"] == pytest.approx((90.0 + 95.0 + 100.0) / 3)
    assert m["abs_err_avg_j"] == pytest.approx(20.0 / 3)
    assert m["abs_err_max_j"] == 10.0
    assert metrics([5.0, 5.0], [5.0, 6.0])["r2"] is None


def test_public_api_listed():
    for name in calibrate.__all__:
        assert hasattr(calibrate, name), name


@pytest.mark.parametrize("weighting", ["absolute", "relative"])
@pytest.mark.parametrize("joules", [1e-300, 1e300])
def test_energies_near_float64_limits_are_scaled_exactly(joules, weighting):
    x = np.array([1e9, 2e9, 3e9, 5e9])
    fit = fit_polynomial(x, joules * (3.0 + 2e-9 * x), 1, weighting=weighting)
    assert fit.coefficients == pytest.approx([3.0 * joules, 2e-9 * joules], rel=1e-12)
    m = metrics(joules * np.array([1.0, 2.0]), joules * np.array([1.5, 2.0]))
    assert m["rmse"] == pytest.approx(joules * math.sqrt(0.125), rel=1e-12)
    assert m["abs_err_max_j"] == pytest.approx(0.5 * joules, rel=1e-12)
    assert m["precision_min"] == pytest.approx(50.0) and m["r2"] == pytest.approx(0.5)


def test_coefficients_beyond_float64_are_an_error():
    with pytest.raises(ValueError, match=r"^the fitted coefficients overflow float64: the measured energies are "
                                         r"too large for the features$"):
        fit_polynomial([1e-300, 2e-300, 3e-300], [1e300, 2e300, 3.5e300], 1)
