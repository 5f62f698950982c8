"""Named, seeded operand distributions (see :mod:`hwlib.activity`, *Operand streams*)."""
import math
from dataclasses import dataclass, field

import numpy as np

from hardware_profiles import schema as S

__all__ = ["DISTRIBUTIONS", "Distribution", "parse_distribution", "operands"]

#: distribution name -> {parameter: default for integer units, default for FP units}
DISTRIBUTIONS = {
    "uniform": {},
    "normal": {"scale": (0.25, 1.0)},
    "relu": {"zeros": (0.5, 0.5), "scale": (0.25, 1.0)},
    "zeros": {},
}

_FP_DTYPES = {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64}
_FP_WIDTH = {"fp16": 16, "bf16": 16, "fp32": 32, "fp64": 64}


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


def _fp_bits(values, fmt):
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
    ``fp64``) for IEEE encodings. ``uniform`` draws every bit of the port at random either way.
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
