"""Named, seeded operand distributions (see :mod:`hwlib.activity`, *Operand streams*)."""
import math
from dataclasses import dataclass, field

import numpy as np

from hardware_profiles import schema as S

__all__ = ["DISTRIBUTIONS", "Distribution", "parse_distribution", "operands", "fp_encode", "fp_round"]

#: distribution name -> {parameter: default for integer units, default for FP units}
DISTRIBUTIONS = {
    "uniform": {},
    "normal": {"scale": (0.25, 1.0)},
    "relu": {"zeros": (0.5, 0.5), "scale": (0.25, 1.0)},
    "zeros": {},
}

_FP_DTYPES = {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64}
_FP_WIDTH = {"fp16": 16, "bf16": 16, "fp32": 32, "fp64": 64, "fp8_e4m3": 8, "fp8_e5m2": 8}
#: The 8-bit formats: (exponent bits, fraction bits, largest finite value, has infinities).
_FP8 = {"fp8_e4m3": (4, 3, 448.0, False), "fp8_e5m2": (5, 2, 57344.0, True)}


@dataclass(frozen=True)
class Distribution:
    """A named operand distribution with its parameters (unset ones take the defaults)."""

    name: str
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.name not in DISTRIBUTIONS:
            raise ValueError(f"Unknown distribution {self.name!r}; expected one of "
                             f"{', '.join(DISTRIBUTIONS)}")
        allowed = DISTRIBUTIONS[self.name]
        for key, value in self.params.items():
            if key not in allowed:
                raise ValueError(f"Distribution {self.name!r} takes "
                                 f"{', '.join(allowed) or 'no parameters'}, not {key!r}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"{self.name}: {key} must be a non-negative number, "
                                 f"not {value!r}")
        if self.params.get("zeros", 0) > 1:
            raise ValueError(f"relu: zeros is a fraction from 0 to 1, not {self.params['zeros']}")

    def value(self, key, fp):
        return float(self.params.get(key, DISTRIBUTIONS[self.name][key][1 if fp else 0]))

    def label(self):
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v:g}" for k, v in sorted(self.params.items()))


def parse_distribution(text):
    """``"relu:zeros=0.7,scale=0.1"`` -> :class:`Distribution` (``ValueError`` on bad text)."""
    if isinstance(text, Distribution):
        return text
    name, params = S.split_distribution(text)
    return Distribution(name, params)


def _uniform_bits(rng, n, width):
    chunks = (width + 63) // 64
    words = rng.integers(0, np.iinfo(np.uint64).max, size=(n, chunks), dtype=np.uint64,
                         endpoint=True)
    if width <= 64:
        mask = np.uint64((1 << width) - 1) if width < 64 else ~np.uint64(0)
        return (words[:, 0] & mask).tolist()
    out = []
    for row in words.tolist():
        v = 0
        for i, w in enumerate(row):
            v |= int(w) << (64 * i)
        out.append(v & ((1 << width) - 1))
    return out


def fp_encode(values, fmt):
    """The IEEE encodings (non-negative ints) of real ``values`` rounded to ``fmt`` (nearest
    even); NaN and infinities stay what they are."""
    if fmt not in _FP_WIDTH:
        raise ValueError(f"Unknown format {fmt!r}; expected one of {', '.join(_FP_WIDTH)}")
    return _fp_bits(np.asarray(values, dtype=np.float64), fmt)


def _fp8_round(values, fmt):
    """(rounded magnitudes, signs, NaN mask) of ``values`` in an 8-bit format, nearest even;
    fp8_e4m3 (no infinities) saturates at 448, fp8_e5m2 overflows to infinity from
    57344 + half an ulp up."""
    exp_bits, frac_bits, largest, has_inf = _FP8[fmt]
    values = np.asarray(values, dtype=np.float64)
    nan = np.isnan(values)
    sign = np.signbit(values)
    mag = np.where(nan, 0.0, np.abs(values))
    emin = 2 - (1 << (exp_bits - 1))                 # 1 - bias
    _, e = np.frexp(np.where((mag > 0) & np.isfinite(mag), mag, 1.0))
    exponent = np.maximum(e - 1, emin)               # floor(log2 |x|), at least emin (subnormals)
    quantum = np.ldexp(1.0, exponent - frac_bits)
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.where(np.isfinite(mag), np.rint(mag / quantum) * quantum, np.inf)  # ties to even
        if has_inf:
            half_ulp = 2.0 ** (math.frexp(largest)[1] - 2 - frac_bits)
            rounded = np.where(mag >= largest + half_ulp, np.inf, np.minimum(rounded, largest))
        else:
            rounded = np.minimum(rounded, largest)
    return rounded, sign, nan


def _fp8_bits(values, fmt):
    exp_bits, frac_bits, _, _ = _FP8[fmt]
    rounded, sign, nan = _fp8_round(values, fmt)
    bias = (1 << (exp_bits - 1)) - 1
    emin = 1 - bias
    out = []
    for r, s, n in zip(rounded.tolist(), sign.tolist(), nan.tolist()):
        if n:
            code = (1 << 7) - 1                       # exponent and fraction all ones: a NaN in both
        elif math.isinf(r):
            code = ((1 << exp_bits) - 1) << frac_bits
        elif r == 0:
            code = 0
        elif r < 2.0 ** emin:                         # subnormal
            code = int(round(r / 2.0 ** (emin - frac_bits)))
        else:
            e = math.frexp(r)[1] - 1
            code = ((e + bias) << frac_bits) | (int(round(r / 2.0 ** (e - frac_bits))) - (1 << frac_bits))
        out.append(code | (int(s) << 7))
    return out


def fp_round(values, fmt):
    """``values`` rounded to ``fmt`` (nearest even), as float64."""
    values = np.asarray(values, dtype=np.float64)
    if fmt in _FP8:
        rounded, sign, nan = _fp8_round(values, fmt)
        return np.where(nan, np.nan, np.where(sign, -rounded, rounded))
    if fmt == "bf16":
        bits = np.asarray(_fp_bits(values, "bf16"), dtype=np.uint32) << np.uint32(16)
        return bits.view(np.float32).astype(np.float64)
    return values.astype(_FP_DTYPES[fmt]).astype(np.float64)


def _fp_bits(values, fmt):
    with np.errstate(over="ignore"):        # a value past the format's range becomes infinity
        return _fp_bits_of(values, fmt)


def _fp_bits_of(values, fmt):
    if fmt in _FP8:
        return _fp8_bits(values, fmt)
    if fmt == "bf16":
        bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
        # round to nearest even on the 16 dropped bits (no NaN in these draws)
        bits = (bits + np.uint64(0x7FFF) + ((bits >> np.uint64(16)) & np.uint64(1))) \
            >> np.uint64(16)
        return bits.tolist()
    dtype = _FP_DTYPES[fmt]
    raw = np.asarray(values, dtype=dtype)
    return raw.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[raw.itemsize]).tolist()


def operands(distribution, n, *, width=None, fmt=None, seed=0):
    """``n`` operand values (non-negative ints, the bits of a port) drawn from
    ``distribution`` (a :class:`Distribution` or its text, e.g. ``"relu:zeros=0.5"``), seeded.

    Give ``width`` for an integer port (``normal`` values are two's-complement, clipped to
    the range; ``relu`` values unsigned, clipped) or ``fmt`` (``fp16``, ``bf16``, ``fp32``,
    ``fp64``, ``fp8_e4m3``, ``fp8_e5m2``) for floating-point encodings (the 8-bit ones rounded to
    nearest even; fp8_e4m3 saturates at 448). ``uniform`` draws every bit of the port at random either way.
    """
    dist = parse_distribution(distribution)
    if (width is None) == (fmt is None):
        raise ValueError("Give exactly one of width (integer port) and fmt (IEEE format)")
    if fmt is not None and fmt not in _FP_WIDTH:
        raise ValueError(f"Unknown format {fmt!r}; expected one of {', '.join(_FP_WIDTH)}")
    if width is not None and (isinstance(width, bool) or not isinstance(width, int)
                              or width < 1):
        raise ValueError(f"Width must be a positive integer, not {width!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"The number of operands must be a positive integer, not {n!r}")
    rng = np.random.default_rng(seed)
    bits = width if width is not None else _FP_WIDTH[fmt]
    if dist.name == "uniform":
        return _uniform_bits(rng, n, bits)
    if dist.name == "zeros":
        return [0] * n
    fp = fmt is not None
    scale = dist.value("scale", fp)
    draws = rng.standard_normal(n) * scale
    if dist.name == "relu":
        draws = np.abs(draws)
        draws[rng.random(n) < dist.value("zeros", fp)] = 0.0
    if fp:
        return _fp_bits(draws, fmt)
    half = 1 << (width - 1)
    ints = [int(v) for v in np.rint(draws * half)]
    if dist.name == "relu":
        top = (1 << width) - 1
        return [min(max(v, 0), top) for v in ints]
    mask = (1 << width) - 1
    return [min(max(v, -half), half - 1) & mask for v in ints]
