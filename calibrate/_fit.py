"""Regression of measured joules on a model feature (TOs, FLOPs, MACs), and the metrics of li2022.

Polynomial fits follow li2022, section II.C and Figs. 6-7: ``E = c0 + c1 x + ... + cn x^n`` with
``n`` = 1..3 coefficients beyond the intercept, least squares. Non-negative multi-feature fits
(``E = c0 + sum_j c_j x_j`` with every ``c >= 0``) split a feature by op class, e.g. the TOs of
add, mul, div, ... separately, with :func:`scipy.optimize.lsq_linear`.

Numerical scaling. Whole-experiment TOs reach 1e15 and more, so ``x^3`` is near 1e45 and the
normal equations of a raw Vandermonde matrix lose every digit. Each feature is divided by a power
of two ``s = 2^k`` with ``x / s`` in [0.5, 1) before fitting; the fitted ``a_i`` convert back as
``c_i = a_i / s^i``. Dividing by a power of two only changes the binary exponent, so both the
scaling of x and the conversion of the coefficients are exact in floating point (no rounding),
and predictions from the converted coefficients on raw x equal the scaled model's up to the
rounding of evaluating the polynomial itself.

Measured joules are scaled the same way (``y / 2^m``, exact), so energies near the ends of the
float64 range (1e-300 J or 1e300 J) fit as well as everyday ones; a fit whose coefficients in
joules would not fit in float64 raises ValueError instead of returning infinities.

Weighting. ``weighting="relative"`` minimises the sum of ``((pred - meas) / meas)^2`` instead of
``(pred - meas)^2``: measured energies can span orders of magnitude (an MLP against a CNN), and
with absolute errors the largest runs would decide the fit alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["WEIGHTINGS", "PolyFit", "LinearFit", "fit_polynomial", "fit_nonnegative", "predict",
           "power_of_two_scale", "split_indices", "metrics"]

WEIGHTINGS = ("absolute", "relative")


def _exponent(values):
    """``k`` with ``max|values| / 2^k`` in [0.5, 1); 0 for all-zero input (finite values)."""
    top = float(np.max(np.abs(values))) if values.size else 0.0
    if top == 0.0 or not math.isfinite(top):
        return 0
    return math.frexp(top)[1]             # top = m * 2^k, m in [0.5, 1)


def power_of_two_scale(values: ArrayLike) -> float:
    """The power of two ``2^k`` with ``max|values| / 2^k`` in [0.5, 1); 1.0 for all-zero input."""
    return math.ldexp(1.0, _exponent(np.asarray(values, dtype=np.float64)))


def _unscale(values, exponents):
    """``values[i] * 2^exponents[i]``, exact; ValueError where a result leaves float64's range."""
    try:
        return [math.ldexp(v, e) for v, e in zip(values, exponents)]
    except OverflowError:
        raise ValueError("the fitted coefficients overflow float64: the measured energies are too "
                         "large for the features") from None


def predict(coefficients: Sequence[float], x: ArrayLike) -> float | np.ndarray:
    """Joules from a polynomial device model: ``c0 + c1 x + c2 x^2 + ...`` (Horner, float64).

    ``coefficients`` is intercept first, as stored under ``devices.<name>.coefficients`` of a
    profile; ``x`` is a number or an array of feature values (TOs, FLOPs or MACs). A value past
    float64 is ``inf`` or ``nan`` without a warning: scoring turns it into the row's error.
    """
    coefficients = [float(c) for c in coefficients]
    if not coefficients:
        raise ValueError("a device model needs at least one coefficient (the intercept)")
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, coefficients[-1], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):   # past float64: inf/nan, which callers refuse
        for c in reversed(coefficients[:-1]):
            out = out * x + c
    return float(out) if out.ndim == 0 else out


def _weights(y, weighting, exponent=0):
    """Row weights for the energies ``y / 2^exponent`` (the scaled ``y`` the fit works on)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, not {weighting!r}")
    if weighting == "absolute":
        return np.ones_like(y)
    if np.any(y <= 0):
        raise ValueError("relative weighting needs positive measured energies")
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        w = 1.0 / np.ldexp(y, -exponent)
    if not np.all(np.isfinite(w)):
        raise ValueError("relative weighting: the measured energies span too many orders of magnitude "
                         "for float64")
    return w


def _check_xy(x, y, columns):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != columns or y.ndim != 1 or x.shape[0] != y.shape[0]:
        shape = "(n,)" if columns == 1 else "(n, k)"
        raise ValueError(f"x must have shape {shape} and y shape (n,), not {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite")
    return x, y


@dataclass
class PolyFit:
    """A fitted polynomial ``E = sum coefficients[i] * x^i`` (joules), intercept first.

    ``scale`` is the power of two the feature was divided by while fitting and
    ``scaled_coefficients`` the coefficients in that scaled variable.
    """
    degree: int
    coefficients: list
    scale: float
    scaled_coefficients: list
    weighting: str = "absolute"

    def predict(self, x: ArrayLike) -> float | np.ndarray:
        """Joules at feature value(s) ``x``."""
        return predict(self.coefficients, x)


@dataclass
class LinearFit:
    """A fitted ``E = intercept + sum coefficients[j] * x_j`` with non-negative coefficients."""
    intercept: float
    coefficients: list
    names: list = field(default_factory=list)
    scales: list = field(default_factory=list)
    weighting: str = "absolute"

    def predict(self, x: ArrayLike) -> np.ndarray:
        """Joules of each row of ``x`` (one column per feature)."""
        x = np.asarray(x, dtype=np.float64)
        return self.intercept + x @ np.asarray(self.coefficients, dtype=np.float64)


def fit_polynomial(x: ArrayLike, y: ArrayLike, degree: int, *, weighting: str = "absolute") -> PolyFit:
    """Least-squares polynomial of ``degree`` (1..3) of joules ``y`` on feature ``x``.

    Needs at least ``degree + 1`` points with at least ``degree + 1`` distinct x values.
    """
    if isinstance(degree, bool) or not isinstance(degree, int) or not 1 <= degree <= 3:
        raise ValueError(f"Polynomial degree must be an integer in 1..3, not {degree!r}")
    x, y = _check_xy(x, y, 1)
    kx, ky = _exponent(x), _exponent(y)
    v = np.ldexp(y, -ky)
    w = _weights(y, weighting, ky)
    distinct = np.unique(x).size
    if distinct < degree + 1:
        raise ValueError(f"a degree-{degree} fit needs at least {degree + 1} distinct feature values, "
                         f"got {distinct}")
    scale = math.ldexp(1.0, kx) if kx < 1024 else math.inf
    u = np.ldexp(x, -kx)
    design = np.vander(u, degree + 1, increasing=True)
    with np.errstate(under="ignore"):
        a, *_ = np.linalg.lstsq(design * w[:, None], v * w, rcond=None)
    # back to joules (2^ky) and to raw x (c_i = a_i / 2^(i kx)): powers of two, so exact (no rounding)
    scaled = _unscale([float(c) for c in a], [ky] * len(a))
    coefficients = _unscale([float(c) for c in a], [ky - i * kx for i in range(len(a))])
    return PolyFit(degree=degree, coefficients=coefficients, scale=scale,
                   scaled_coefficients=scaled, weighting=weighting)


def fit_nonnegative(x: ArrayLike, y: ArrayLike, *, names: Sequence[str] | None = None, weighting: str = "absolute",
                    intercept: bool = True) -> LinearFit:
    """``E = c0 + sum_j c_j x_j`` with all ``c >= 0`` (bounded least squares, scipy ``lsq_linear``).

    ``x`` has one column per feature (e.g. the TOs of each op class); columns that are zero on
    every row get coefficient 0. The intercept (static energy of the run) is non-negative too;
    ``intercept=False`` fixes it at 0.
    """
    from scipy.optimize import lsq_linear
    data, y = _check_xy(x, y, 2)
    n, k = data.shape
    names = list(names) if names is not None else [f"x{j}" for j in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} names for {k} feature columns")
    ky = _exponent(y)
    v = np.ldexp(y, -ky)
    w = _weights(y, weighting, ky)
    exponents = [_exponent(data[:, j]) for j in range(k)]
    scales = [math.ldexp(1.0, e) if e < 1024 else math.inf for e in exponents]
    u = np.ldexp(data, -np.asarray(exponents, dtype=np.int64)) if k else data
    columns = ([np.ones(n)] if intercept else []) + [u[:, j] for j in range(k)]
    design = np.column_stack(columns) * w[:, None]
    if design.shape[0] < design.shape[1]:
        raise ValueError(f"a fit of {design.shape[1]} coefficients needs at least that many points, got {n}")
    with np.errstate(under="ignore"):
        result = lsq_linear(design, v * w, bounds=(0.0, np.inf), method="bvls")
    a = [float(c) for c in result.x]
    c0 = _unscale([a[0]], [ky])[0] if intercept else 0.0
    rest = a[1:] if intercept else a
    coefficients = _unscale(rest, [ky - e for e in exponents])
    return LinearFit(intercept=c0, coefficients=coefficients, names=names, scales=scales,
                     weighting=weighting)


def split_indices(n: int, train_fraction: float = 0.6, seed: int = 0, *,
                  min_train: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random train/validation split of ``n`` rows: ``(train, validation)`` index arrays.

    The train set has ``round(n * train_fraction)`` rows, clamped so both sets keep at least one
    row and the train set at least ``min_train`` (li2022 splits 60/40 at random).
    """
    if not (isinstance(train_fraction, (int, float)) and 0.0 < train_fraction < 1.0):
        raise ValueError(f"Train fraction must be a number in (0, 1), not {train_fraction!r}")
    if n < min_train + 1:
        raise ValueError(f"need at least {min_train + 1} measurements to split into train and "
                         f"validation, got {n}")
    n_train = min(max(int(round(n * train_fraction)), min_train), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:n_train]), np.sort(order[n_train:])


def metrics(measured: ArrayLike, predicted: ArrayLike) -> dict[str, float | None]:
    """The fit metrics of li2022 (Figs. 6-7, Table III) for one split.

    ``rmse`` and ``abs_err_avg_j``/``abs_err_max_j`` in joules; ``r2`` = 1 - SS_res / SS_tot
    (None when the measurements are all equal); per-sample precision = 100 x (1 - |pred - meas|
    / meas) in percent, its min, max and average (Table III); ``n`` the number of samples.
    """
    y = np.asarray(measured, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1 or y.size == 0:
        raise ValueError("measured and predicted must be equal-length non-empty 1-D arrays")
    # computed on y and p divided by a common power of two, so squares neither overflow nor
    # underflow for energies near the ends of float64; results that exceed float64 are inf
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        k = _exponent(np.concatenate([y, p])) if np.all(np.isfinite(p)) else 0
        ys, ps = np.ldexp(y, -k), np.ldexp(p, -k)
        err = ps - ys
        abs_err = np.abs(err)
        ss_res = float(np.sum(err ** 2))
        ss_tot = float(np.sum((ys - ys.mean()) ** 2))
        precision = 100.0 * (1.0 - abs_err / ys)
        back = lambda value: float(np.ldexp(value, k))
        return {
            "n": int(y.size),
            "rmse": back(np.sqrt(ss_res / y.size)),
            "r2": (1.0 - ss_res / ss_tot) if ss_tot > 0 else None,
            "precision_min": float(np.min(precision)),
            "precision_max": float(np.max(precision)),
            "precision_avg": float(np.mean(precision)),
            "abs_err_avg_j": back(np.mean(abs_err)),
            "abs_err_max_j": back(np.max(abs_err)),
        }
