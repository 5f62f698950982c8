# amaranth: UnusedElaboratable=no
"""FP multiply-accumulate (hwlib.units.fma.FPMAC: a * b + c, one rounding) bit-exact against
references.

``reference_fma`` is the module's exact model (rationals). ``vector_fma`` below is a fast one:
the product is exact in float64 for every product format up to fp32, the sum ``s = p + c`` is
rounded by float64 but its error ``e`` is recovered exactly (TwoSum), and ``s`` is rounded to the
accumulator format with ``e`` breaking the one case float64's rounding can hide (``s`` exactly
on a tie of the accumulator format). The two agree on seeded samples and specials here; the
circuits run through hwlib.netsim: fp8 e4m3 products into fp16 over all 65,536 product pairs
here, fp8 into fp32 over all pairs with four accumulators each, bf16 and fp16 into fp32 and the
fp32 FMA on seeded vectors in the slow tests.
"""
import math
import random

import numpy as np
import pytest

import hardware_profiles as hp
from hardware_profiles import FORMAT_BITS
from hwlib import cost
from hwlib.netsim import simulate
from hwlib.units.fma import (ACCUMULATOR_FORMATS, FPMAC, build_fp_mac, decode_value, fp_mac_unit, reference_fma,
                             round_ieee)

ALL_A = np.repeat(np.arange(256), 256)
ALL_B = np.tile(np.arange(256), 256)
FLOAT = {"fp16": (np.float16, np.uint16), "fp32": (np.float32, np.uint32)}


def _bits(fmt):
    E, F = FORMAT_BITS[fmt]
    return E, F, (1 << (E - 1)) - 1


def decode(bits, fmt):
    """float64 values of the patterns ``bits`` in ``fmt`` (exact for the formats here)."""
    table = {}
    out = np.empty(len(bits))
    for i, b in enumerate(np.asarray(bits).tolist()):
        if b not in table:
            v = decode_value(b, fmt)
            E, F, _ = _bits(fmt)
            table[b] = -0.0 if v == 0 and b >> (E + F) else float(v)
        out[i] = table[b]
    return out


def round_sum(s, e, fmt):
    """Patterns of the exact ``s + e`` (``s`` a float64 sum, ``e`` its exact error, |e| at most
    half an ulp of ``s``) rounded to nearest even in the IEEE format ``fmt``."""
    E, F, bias = _bits(fmt)
    exp_max = (1 << E) - 1
    sign = np.signbit(s).astype(np.int64)
    a = np.abs(s)
    finite = np.isfinite(a) & (a > 0)
    a_f = np.where(finite, a, 1.0)
    _, k = np.frexp(a_f)
    q = np.maximum(k.astype(np.int64) - 1, 1 - bias) - F
    scaled = np.ldexp(a_f, (-q).astype(np.int32))
    M = np.floor(scaled).astype(np.int64)
    frac = scaled - M
    toward = np.where(sign == 1, -e, e)          # the error in the direction of |s|
    up = (frac > 0.5) | ((frac == 0.5) & ((toward > 0) | ((toward == 0) & (M & 1 == 1))))
    M = M + up
    carry = M == (1 << (F + 1))
    M = np.where(carry, M >> 1, M)
    q = q + carry
    normal = M >= (1 << F)
    exp_field = np.where(normal, q + F + bias, 0)
    mag = np.where(exp_field >= exp_max, exp_max << F, (exp_field << F) | (M & ((1 << F) - 1)))
    mag = np.where(a == 0, 0, mag)
    mag = np.where(np.isinf(s), exp_max << F, mag)
    bits = (sign << (E + F)) | mag
    return np.where(np.isnan(s), (exp_max << F) | (1 << (F - 1)), bits)


def vector_fma(a, b, c, pf, af):
    x, y, z = decode(a, pf), decode(b, pf), decode(c, af)
    with np.errstate(invalid="ignore"):
        p = x * y                                 # exact: at most 48 significant bits
        s = p + z
        bb = s - p
        e = (p - (s - bb)) + (z - bb)             # TwoSum: s + e == p + z exactly
    e = np.where(np.isfinite(s), e, 0.0)
    return round_sum(s, e, af)


def is_nan(bits, fmt):
    E, F, _ = _bits(fmt)
    bits = np.asarray(bits)
    return ((bits >> F) & ((1 << E) - 1) == (1 << E) - 1) & (bits & ((1 << F) - 1) != 0)


def accumulators(a, b, pf, af, seed):
    """Four accumulators per product: a random pattern, a random value near the product's
    magnitude, the product rounded to the accumulator format and negated (near cancellation),
    and -0."""
    rng = np.random.default_rng(seed)
    E, F, bias = _bits(af)
    width = 1 + E + F
    n = len(a)
    uniform = rng.integers(0, 1 << width, n)
    with np.errstate(invalid="ignore"):                  # 0 * inf
        p = decode(a, pf) * decode(b, pf)
        _, k = np.frexp(np.where(np.isfinite(p) & (p != 0), p, 1.0))
    exp = np.clip(k.astype(np.int64) - 1 + bias + rng.integers(-F - 3, F + 4, n), 0, (1 << E) - 2)
    near = (rng.integers(0, 2, n) << (E + F)) | (exp << F) | rng.integers(0, 1 << F, n)
    with np.errstate(invalid="ignore"):
        negated = round_sum(-np.where(np.isfinite(p), p, 0.0), np.zeros(n), af)
    return [uniform, near, negated, np.full(n, 1 << (E + F))]


def run_mac(pf, af, a, b, c, units):
    unit = build_fp_mac(pf, af, units)
    return np.array(simulate(unit, {"a": list(map(int, a)), "b": list(map(int, b)), "c": list(map(int, c))})["result"])


def check(got, want, af):
    nan = is_nan(want, af)
    assert np.array_equal(is_nan(got, af), nan)
    bad = np.flatnonzero(got[~nan] != want[~nan])
    assert bad.size == 0, [(int(want[~nan][i]), int(got[~nan][i])) for i in bad[:5]]


# --- references -------------------------------------------------------------------------------

def test_reference_fma_cases():
    one, two = 0x38, 0x40                                     # e4m3 1.0 and 2.0
    assert reference_fma(one, two, 0x3F800000, "fp8_e4m3", "fp32") == 0x40400000      # 1*2+1 = 3
    assert reference_fma(0x7E, 0x7E, 0, "fp8_e4m3", "fp32") == 0x48440000              # 448**2 = 200704
    # one rounding: 1 + 2**-24 is exact in the FMA's sum, rounds to even (1.0) in fp32 ...
    assert reference_fma(0x3C00, 0x3C00, 0x33800000, "fp16", "fp32") == 0x3F800000
    # ... but (1 + 2**-10)**2 + 0 keeps its low bits: 1 + 2**-9 + 2**-20, exact in fp32
    assert reference_fma(0x3C01, 0x3C01, 0, "fp16", "fp32") == 0x3F804008
    # exact cancellation is +0; (-0)*(+1) + (-0) is -0
    assert reference_fma(0x38, 0x38, 0xBF800000, "fp8_e4m3", "fp32") == 0
    assert reference_fma(0x80, 0x38, 0x80000000, "fp8_e4m3", "fp32") == 0x80000000
    # specials: 0 * inf, inf - inf, NaN operands; e4m3 0x7F is NaN, e5m2 has infinities
    qnan = 0x7FC00000
    assert reference_fma(0x00, 0x7C, 0, "fp8_e5m2", "fp32") == qnan
    assert reference_fma(0x7C, 0x3C, 0xFF800000, "fp8_e5m2", "fp32") == qnan
    assert reference_fma(0x7C, 0x3C, 0x7F800000, "fp8_e5m2", "fp32") == 0x7F800000
    assert reference_fma(0x7F, 0x38, 0, "fp8_e4m3", "fp32") == qnan
    # overflow of the accumulator rounds to infinity
    assert reference_fma(0x7BFF, 0x7BFF, 0, "fp16", "fp16") == 0x7C00
    assert round_ieee(math.inf, "fp32") == 0x7F800000
    assert "fp8_e4m3" not in ACCUMULATOR_FORMATS and "fp32" in ACCUMULATOR_FORMATS


@pytest.mark.parametrize("pf, af", [("fp8_e4m3", "fp32"), ("fp8_e5m2", "fp16"), ("bf16", "fp32"),
                                    ("fp16", "fp32"), ("fp32", "fp32"), ("bf16", "bf16")])
def test_vector_reference_matches_the_exact_one(pf, af):
    rng = random.Random(18)
    wa, wc = 1 + sum(FORMAT_BITS[pf]), 1 + sum(FORMAT_BITS[af])
    a = np.array([rng.randrange(1 << wa) for _ in range(300)])
    b = np.array([rng.randrange(1 << wa) for _ in range(300)])
    cs = accumulators(a, b, pf, af, 1)
    for c in cs:
        want = [reference_fma(int(x), int(y), int(z), pf, af) for x, y, z in zip(a, b, c)]
        got = vector_fma(a, b, c, pf, af)
        check(got, np.array(want), af)


def test_vector_reference_ties_broken_by_the_error():
    # 1 + 2**-24 (+ 2**-60 from the product): float64 holds 1 + 2**-24 exactly on fp32's tie, the
    # exact value lies above it and rounds up; without the 2**-60 it ties to even (down)
    a = np.array([0x3F800001])          # fp32 1 + 2**-23
    c = np.array([0xB3800000])          # fp32 -2**-24
    # (1 + 2**-23)**2 - 2**-24 = 1 + 2**-23 + 2**-24 + 2**-46
    assert vector_fma(a, a, c, "fp32", "fp32")[0] == reference_fma(0x3F800001, 0x3F800001, 0xB3800000,
                                                                   "fp32", "fp32") == 0x3F800002


# --- circuits ---------------------------------------------------------------------------------

def test_e4m3_into_fp16_all_products(generic):
    cs = accumulators(ALL_A, ALL_B, "fp8_e4m3", "fp16", 18)
    a = np.concatenate([ALL_A] * 2)
    b = np.concatenate([ALL_B] * 2)
    c = np.concatenate(cs[1:3])
    check(run_mac("fp8_e4m3", "fp16", a, b, c, generic.units), vector_fma(a, b, c, "fp8_e4m3", "fp16"), "fp16")


@pytest.mark.slow
@pytest.mark.parametrize("pf", ["fp8_e4m3", "fp8_e5m2"])
def test_fp8_into_fp32_all_products_four_accumulators(pf, generic):
    cs = accumulators(ALL_A, ALL_B, pf, "fp32", 18)
    a = np.concatenate([ALL_A] * 4)
    b = np.concatenate([ALL_B] * 4)
    c = np.concatenate(cs)
    check(run_mac(pf, "fp32", a, b, c, generic.units), vector_fma(a, b, c, pf, "fp32"), "fp32")


@pytest.mark.slow
@pytest.mark.parametrize("pf, af", [("bf16", "fp32"), ("fp16", "fp32"), ("fp32", "fp32"), ("fp16", "fp16")])
def test_wider_formats_seeded(pf, af, generic):
    rng = np.random.default_rng(18)
    wa = 1 + sum(FORMAT_BITS[pf])
    a = rng.integers(0, 1 << wa, 10000)
    b = rng.integers(0, 1 << wa, 10000)
    c = np.concatenate(accumulators(a, b, pf, af, 19))
    a, b = np.concatenate([a] * 4), np.concatenate([b] * 4)
    check(run_mac(pf, af, a, b, c, generic.units), vector_fma(a, b, c, pf, af), af)


def test_ports_errors_and_spec(generic):
    unit = FPMAC("bf16", "fp32")
    assert [len(getattr(unit, p)) for p in ("a", "b", "c", "result")] == [16, 16, 32, 32]
    with pytest.raises(ValueError, match="accumulator format 'fp8_e4m3'"):
        FPMAC("bf16", "fp8_e4m3")
    with pytest.raises(ValueError, match="product format 'int8'"):
        FPMAC("int8", "fp32")
    spec = fp_mac_unit("fp8_e4m3", "fp32", generic.units)
    assert spec.params["circuit"] == "fp_mac" and spec.params["product_format"] == "fp8_e4m3"
    assert spec.label == "fp8_e4m3*fp8_e4m3+fp32 MAC (booth_wallace)"
    with pytest.raises(cost.CircuitError, match="no 'mul' unit"):
        fp_mac_unit("bf16", "fp32", {"add": {"design": "ripple_carry"}})


def test_synth_mac_command_errors(capsys):
    from tosim.cli import main
    assert main(["synth", "--mac", "bf16"]) == 2
    assert "expected PRODUCT_FORMAT:ACCUMULATOR_FORMAT" in capsys.readouterr().err
    assert main(["synth", "--mac", "bf16:fp8_e4m3"]) == 2
    assert "unknown accumulator format 'fp8_e4m3'" in capsys.readouterr().err
    assert main(["synth", "--mac", "bf16:fp32", "--ops", "add"]) == 2
    assert "takes no --formats or --ops" in capsys.readouterr().err


@pytest.mark.slow
def test_synth_mac_command_json(cache_dir, capsys):
    import json

    from tosim.cli import main
    assert main(["synth", "--mac", "fp8_e5m2:fp8_e5m2", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["product_format"], row["acc_format"], row["design"]) == ("fp8_e5m2", "fp8_e5m2", "booth_wallace")
    assert row["transistors"] > 0 and row["depth"] > 0
