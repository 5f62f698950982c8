# amaranth: UnusedElaboratable=no
"""IEEE-754 datapath units (hwlib.fp) bit-exact against numpy, and the factory.

float16, float32 and float64 results come from numpy itself; bfloat16 results are computed in
float64 from the bfloat16 inputs and rounded to bfloat16 by `round_to_format` (innocuous
double rounding: 53 >= 2 * 8 + 2 for +, -, *, / and sqrt). NaN results are compared by
NaN-ness and must be the canonical quiet NaN the units document. The circuits are simulated
at gate level with hwlib.netsim; a few vectors also go through amaranth.sim.
"""
import sys

import numpy as np
import pytest
from amaranth import Module
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

import hardware_profiles
from hwlib import registry
from hwlib.fp import FPAdd, FPCmp, FPDiv, FPFormat, FPMul, FPSqrt, build_fp_unit
from hwlib.fp_minimal import MinimalFPAdd, MinimalFPMul
from hwlib.netsim import simulate

NUMPY_TYPES = {"fp16": (np.float16, np.uint16), "fp32": (np.float32, np.uint32),
               "fp64": (np.float64, np.uint64)}


# --- reference ------------------------------------------------------------------------------

def round_to_format(x, fmt):
    """Round float64 values to format ``fmt`` with round-to-nearest-even; returns the bit
    patterns (uint64). Handles subnormal results, overflow to infinity, signed zeros and
    NaN (canonical quiet NaN). Valid for formats whose range lies inside float64's."""
    f = FPFormat(fmt)
    E, F, bias = f.exp_bits, f.frac_bits, f.bias
    x = np.asarray(x, dtype=np.float64)
    sign = np.signbit(x).astype(np.int64)
    a = np.abs(x)
    finite = np.isfinite(a)
    a_f = np.where(finite, a, 0.0)
    _, k = np.frexp(a_f)                     # a = m * 2**k, m in [0.5, 1)
    emin = 1 - bias
    q = np.maximum(k.astype(np.int64) - 1, emin) - F       # exponent of the last place's unit
    scaled = np.ldexp(a_f, (-q).astype(np.int32))             # exact: a power-of-two scaling
    M = np.rint(scaled).astype(np.int64)                       # np.rint rounds half to even
    carry = M == (1 << (F + 1))
    M = np.where(carry, M >> 1, M)
    q = q + carry
    normal = M >= (1 << F)
    exp_field = np.where(normal, q + F + bias, 0)
    frac = np.where(normal, M - (1 << F), M)
    over = exp_field >= f.exp_max
    mag = np.where(over, f.exp_max << F, (exp_field << F) | frac)
    mag = np.where(np.isinf(x), f.exp_max << F, mag)
    bits = (sign << (E + F)) | mag
    bits = np.where(np.isnan(x), f.qnan, bits)
    return bits.astype(np.uint64)


def bits_to_float64(bits, fmt):
    """Exact float64 values of bit patterns in ``fmt``."""
    bits = np.asarray(bits, dtype=np.uint64)
    with np.errstate(invalid="ignore"):      # signaling NaNs become quiet ones
        if fmt == "bf16":
            return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
        if fmt == "tf32":        # fp32's sign, exponent and top 10 fraction bits
            return (bits.astype(np.uint32) << np.uint32(13)).view(np.float32).astype(np.float64)
        dt, it = NUMPY_TYPES[fmt]
        return bits.astype(it).view(dt).astype(np.float64)


def is_nan_bits(bits, fmt):
    f = FPFormat(fmt)
    bits = np.asarray(bits, dtype=np.uint64)
    exp = (bits >> np.uint64(f.frac_bits)) & np.uint64(f.exp_max)
    frac = bits & np.uint64((1 << f.frac_bits) - 1)
    return (exp == f.exp_max) & (frac != 0)


def reference(op, fmt, a, b):
    """Expected result bits (uint64) of ``op`` on bit patterns ``a`` (and ``b``)."""
    with np.errstate(all="ignore"):
        if fmt in NUMPY_TYPES:
            dt, it = NUMPY_TYPES[fmt]
            x = a.astype(it).view(dt)
            y = b.astype(it).view(dt) if b is not None else None
        else:
            x = bits_to_float64(a, fmt)
            y = bits_to_float64(b, fmt) if b is not None else None
        if op == "cmp":
            return {"lt": x < y, "eq": x == y, "gt": x > y,
                    "unordered": np.isnan(x) | np.isnan(y)}
        r = {"add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y,
             "div": lambda: x / y, "sqrt": lambda: np.sqrt(x)}[op]()
        if fmt in NUMPY_TYPES:
            return r.view(NUMPY_TYPES[fmt][1]).astype(np.uint64)
        return round_to_format(r, fmt)


# --- vectors ------------------------------------------------------------------------------

def encode(f, sign, exp, frac):
    return (np.asarray(sign, dtype=np.uint64) << np.uint64(f.exp_bits + f.frac_bits)) \
        | (np.asarray(exp, dtype=np.uint64) << np.uint64(f.frac_bits)) \
        | np.asarray(frac, dtype=np.uint64)


def special_values(f):
    """Both signs of: zero, subnormals (smallest, largest, a few more), smallest normal,
    one and its neighbours, two, 0.75, largest finite, infinity, quiet and signaling NaN."""
    F, bias, top = f.frac_bits, f.bias, f.exp_max
    full = (1 << F) - 1
    fields = [(0, 0), (0, 1), (0, 2), (0, 3), (0, full), (0, 1 << (F - 1)), (1, 0), (1, 1),
              (1, full), (2, 0), (bias, 0), (bias, 1), (bias, full), (bias - 1, full),
              (bias + 1, 0), (bias - 1, 1 << (F - 1)), (top - 1, full), (top - 1, 0),
              (top - 1, full - 1), (top, 0), (top, 1 << (F - 1)), (top, 1), (top, full)]
    return [int(encode(f, s, e, m)) for e, m in fields for s in (0, 1)]


def random_bits(rng, f, n):
    return rng.integers(0, 1 << f.width, n, dtype=np.uint64) if f.width < 64 else \
        rng.integers(0, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True)


def random_frac(rng, f, n):
    return random_bits(rng, f, n) & np.uint64((1 << f.frac_bits) - 1)


def clamp_exp(f, e):
    return np.clip(e, 0, f.exp_max - 1)


def vectors(op, fmt, seed, n_random=2000, n_moderate=2000):
    """Operand bit patterns ``(a, b)`` for ``op`` (``b`` None for sqrt): random patterns,
    random values of moderate exponent, every pair of special values, and op-specific cases
    (halfway ties, exact and near cancellation, gradual underflow, overflow)."""
    rng = np.random.default_rng(seed)
    f = FPFormat(fmt)
    F, bias = f.frac_bits, f.bias
    sign = lambda n: rng.integers(0, 2, n, dtype=np.uint64)
    specials = np.array(special_values(f), dtype=np.uint64)

    if op == "sqrt":
        m = n_moderate
        parts = [random_bits(rng, f, n_random), specials,
                 encode(f, 0, clamp_exp(f, bias + rng.integers(-20, 21, m)),
                        random_frac(rng, f, m)),
                 encode(f, 0, rng.integers(0, 3, 300), random_frac(rng, f, 300))]
        # Perfect squares of small integers: exact results.
        k = np.arange(1, 200, dtype=np.float64)
        parts.append(round_to_format(k * k, fmt))
        return np.concatenate(parts), None

    a = [random_bits(rng, f, n_random)]
    b = [random_bits(rng, f, n_random)]
    pa, pb = np.meshgrid(specials, specials)
    a.append(pa.ravel())
    b.append(pb.ravel())
    m = n_moderate
    ea = clamp_exp(f, bias + rng.integers(-8, 9, m))
    eb = clamp_exp(f, ea + rng.integers(-(F + 4), F + 5, m)) if op in ("add", "sub", "cmp") \
        else clamp_exp(f, bias + rng.integers(-8, 9, m))
    a.append(encode(f, sign(m), ea, random_frac(rng, f, m)))
    b.append(encode(f, sign(m), eb, random_frac(rng, f, m)))

    n = 300
    x = encode(f, sign(n), clamp_exp(f, bias + rng.integers(-8, 9, n)), random_frac(rng, f, n))
    subnormal = encode(f, sign(n), 0, random_frac(rng, f, n))
    sign_bit = np.uint64(1 << (f.width - 1))
    if op in ("add", "sub", "cmp"):
        flip = sign_bit if op == "add" else np.uint64(0)
        delta = rng.integers(-3, 4, n).astype(np.int64)
        near = (x.astype(np.int64) + delta).astype(np.uint64)
        # exact cancellation, near cancellation, equal values, subnormal sums
        a += [x, x, x, subnormal, subnormal]
        b += [x ^ flip, near ^ flip, x ^ sign_bit, subnormal[::-1] ^ flip,
              encode(f, sign(n), rng.integers(0, 3, n), random_frac(rng, f, n))]
        # halfway ties: y is half an ulp of x (and 3/2 of a half ulp: not a tie)
        ex = clamp_exp(f, bias + rng.integers(-8, 9, n))
        ulp_exp = ex - F - 1
        ok = ulp_exp >= 1
        xt = encode(f, sign(n), ex, random_frac(rng, f, n))[ok]
        a += [xt, xt]
        b += [encode(f, sign(n), ulp_exp, 0)[ok],
              encode(f, sign(n), ulp_exp, 1 << (F - 1))[ok]]
        # overflow of the sum
        big = encode(f, 0, f.exp_max - 1, random_frac(rng, f, n))
        a.append(big)
        b.append(big ^ (np.uint64(0) if op == "add" else sign_bit))
    else:
        # gradual underflow and overflow of the exponent
        e1 = rng.integers(1, bias + 1, n)
        if op == "mul":
            e2 = np.clip(bias - e1 + 1 + rng.integers(-(F + 3), 3, n), 1, f.exp_max - 1)
            e3 = np.clip(f.exp_max + bias - e1 + rng.integers(-3, 2, n), 1, f.exp_max - 1)
            e1o = e1
        else:
            e2 = np.clip(e1 + bias + rng.integers(-2, F + 4, n), 1, f.exp_max - 1)
            e1o = np.clip(e1 + bias - 1, 1, f.exp_max - 1)
            e3 = np.clip(e1o - f.exp_max + bias + rng.integers(-2, 3, n), 1, f.exp_max - 1)
        a += [encode(f, sign(n), e1, random_frac(rng, f, n)),
              encode(f, sign(n), e1o, random_frac(rng, f, n))]
        b += [encode(f, sign(n), e2, random_frac(rng, f, n)),
              encode(f, sign(n), e3, random_frac(rng, f, n))]
        # subnormal results that are exact halfway ties: k * min_subnormal scaled by 1/2, 1/4
        halves = encode(f, 0, bias - 1, 0) if op == "mul" else encode(f, 0, bias + 1, 0)
        quarters = encode(f, 0, bias - 2, 0) if op == "mul" else encode(f, 0, bias + 2, 0)
        a += [subnormal, subnormal]
        b += [np.full(n, halves, dtype=np.uint64), np.full(n, quarters, dtype=np.uint64)]
        if op == "mul":
            # products with exactly half an ulp left over: odd 1.f times 1.5
            ma = rng.integers(1 << F, (1 << (F + 1)) * 2 // 3, n) | 1
            a.append(encode(f, sign(n), clamp_exp(f, bias + rng.integers(-8, 9, n)),
                            ma - (1 << F)))
            b.append(encode(f, sign(n), clamp_exp(f, bias + rng.integers(-8, 9, n)),
                            1 << (F - 1)))
    return np.concatenate(a), np.concatenate(b)


# --- running a unit -----------------------------------------------------------------------

UNIT_CLASSES = {"add": FPAdd, "sub": FPAdd, "mul": FPMul, "div": FPDiv, "sqrt": FPSqrt,
                "cmp": FPCmp}


def run_unit(unit, op, a, b):
    inputs = {"a": a.tolist()}
    if b is not None:
        inputs["b"] = b.tolist()
    if op in ("add", "sub"):
        inputs["sub"] = [int(op == "sub")] * len(a)
    return simulate(unit, inputs)


def check_unit(unit, op, fmt, a, b):
    got = run_unit(unit, op, a, b)
    want = reference(op, fmt, a, b)
    if op == "cmp":
        for port in ("lt", "eq", "gt", "unordered"):
            g = np.array(got[port], dtype=bool)
            bad = np.nonzero(g != want[port])[0]
            assert len(bad) == 0, (port, [(hex(a[i]), hex(b[i])) for i in bad[:5]])
        total = sum(np.array(got[p]) for p in ("lt", "eq", "gt", "unordered"))
        assert (total == 1).all()
        return
    res = np.array(got["result"], dtype=np.uint64)
    nan_want = is_nan_bits(want, fmt)
    ok = np.where(nan_want, res == FPFormat(fmt).qnan, res == want)
    bad = np.nonzero(~ok)[0]
    assert len(bad) == 0, [(hex(a[i]), None if b is None else hex(b[i]), hex(want[i]),
                            hex(res[i])) for i in bad[:5]]


# The designs inside: the profile defaults (li2022) where synthesis is quick, cheaper designs
# where it is not (the float32 divider and root, the float16 root). The SRT
# divider is checked on fp16 and bf16, the Newton-Raphson root on bf16, the other designs in
# test_other_designs_fp16.
DESIGN_OPTIONS = {
    "add": {}, "sub": {}, "cmp": {},
    "mul": {"multiplier": "booth_wallace", "final_adder": "ripple_carry"},
    "div": {"divider": "srt_radix2", "adder": "ripple_carry"},
    "sqrt": {"root": "newton_raphson",
             "root_options": {"seed_bits": 8, "multiplier": "booth_wallace",
                              "adder": "ripple_carry"}},
}
WIDE_OPTIONS = {
    "div": {"divider": "non_restoring", "adder": "ripple_carry"},
    "sqrt": {"root": "digit_recurrence", "root_options": {"adder": "ripple_carry"}},
}


def make_unit(op, fmt):
    options = DESIGN_OPTIONS[op]
    if fmt == "fp32":
        options = WIDE_OPTIONS.get(op, options)
    if (op, fmt) == ("sqrt", "fp16"):
        options = WIDE_OPTIONS["sqrt"]
    return UNIT_CLASSES[op](fmt, **options)


OPS = ("add", "sub", "mul", "div", "sqrt", "cmp")


@pytest.mark.parametrize("fmt", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("op", OPS)
def test_bit_exact(op, fmt):
    a, b = vectors(op, fmt, seed=1000 + 10 * OPS.index(op) + ("fp16", "bf16", "fp32").index(fmt))
    assert len(a) >= 4000
    check_unit(make_unit(op, fmt), op, fmt, a, b)


@pytest.mark.slow
@pytest.mark.parametrize("op", OPS)
def test_bit_exact_tf32(op):
    """tf32 (8-bit exponent, 10-bit fraction) is one more format of the parametric IEEE units
    (measured 2-90 s per op on the shared machine: slow set)."""
    assert (FPFormat("tf32").width, FPFormat("tf32").bias) == (19, 127)
    a, b = vectors(op, "tf32", seed=2000 + OPS.index(op), n_random=1000, n_moderate=1000)
    check_unit(make_unit(op, "tf32"), op, "tf32", a, b)


# Ripple-carry rows unrolled 54 to 107 deep are too deep for Amaranth's netlist check (Python
# recursion) and for Yosys (wasm call stack); logarithmic adders keep float64 within reach.
FP64_OPTIONS = {
    "div": {"divider": "srt_radix2", "adder": "kogge_stone"},
    "sqrt": {"root": "digit_recurrence", "root_options": {"adder": "kogge_stone"}},
}


@pytest.fixture
def deep_recursion():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 50000))
    yield
    sys.setrecursionlimit(old)


@pytest.mark.slow
@pytest.mark.parametrize("op", OPS)
def test_bit_exact_fp64(op, deep_recursion):
    a, b = vectors(op, "fp64", seed=640 + OPS.index(op))
    unit = UNIT_CLASSES[op]("fp64", **FP64_OPTIONS[op]) if op in FP64_OPTIONS \
        else make_unit(op, "fp64")
    check_unit(unit, op, "fp64", a, b)


@pytest.mark.parametrize("op, kwargs", [
    ("add", {"adder": "kogge_stone"}),
    ("sub", {"adder": "carry_select"}),
    ("mul", {"multiplier": "dadda", "final_adder": "kogge_stone"}),
    ("mul", {"multiplier": "array", "final_adder": "brent_kung"}),
    ("div", {"divider": "non_restoring", "adder": "sklansky"}),
    ("div", {"divider": "restoring", "adder": "ripple_carry"}),
    ("sqrt", {"root": "digit_recurrence", "root_options": {"adder": "carry_skip"}}),
    ("cmp", {"adder": "brent_kung"}),
])
def test_other_designs_fp16(op, kwargs):
    a, b = vectors(op, "fp16", seed=77, n_random=1000, n_moderate=1000)
    check_unit(UNIT_CLASSES[op]("fp16", **kwargs), op, "fp16", a, b)


def test_all_fp16_sums_with_one_operand_fixed():
    # Exhaustive in one operand: every fp16 pattern plus 1.0, and minus the smallest
    # subnormal.
    a = np.arange(1 << 16, dtype=np.uint64)
    for fixed in (0x3C00, 0x8001):
        b = np.full(len(a), fixed, dtype=np.uint64)
        check_unit(make_unit("add", "fp16"), "add", "fp16", a, b)


# --- structure: the pluggable units are inside --------------------------------------------

def parts(unit):
    """Direct submodules of an elaborated unit: name -> component."""
    frag = Fragment.get(unit, None)
    out = {}
    for sub, name, _ in frag.subfragments:
        out[name] = next(o for o in sub.origins if hasattr(o, "signature"))
    return out


def test_units_contain_the_named_designs():
    cls = registry.design_class
    p = parts(FPAdd("fp32", adder="kogge_stone"))
    assert set(p) == {"significand_adder"}
    assert type(p["significand_adder"]) is cls("kogge_stone", "add")
    assert p["significand_adder"].width == 27 and not p["significand_adder"].carry_in

    p = parts(FPMul("bf16", multiplier="dadda", final_adder="sklansky"))
    mul = p["significand_multiplier"]
    assert type(mul) is cls("dadda", "mul")
    assert (mul.a_width, mul.b_width, mul.signed) == (8, 8, False)
    assert mul.final_adder is cls("sklansky", "add")

    p = parts(FPDiv("fp16", divider="restoring", adder="brent_kung"))
    div = p["significand_divider"]
    assert type(div) is cls("restoring", "div")
    assert (div.width, div.dividend_width, div.quotient_width) == (11, 23, 13)
    assert div.adder is cls("brent_kung", "add")

    p = parts(FPSqrt("fp16", root="newton_raphson", root_options={"seed_bits": 6}))
    root = p["significand_root"]
    assert type(root) is cls("newton_raphson", "sqrt")
    assert (root.width, root.root_width) == (24, 12)

    p = parts(FPCmp("fp64", adder="carry_lookahead"))
    assert type(p["magnitude_subtractor"]) is cls("carry_lookahead", "add")
    assert p["magnitude_subtractor"].width == 63


# --- amaranth.sim agrees on a few vectors -------------------------------------------------

def test_amaranth_sim_fp16_add_and_mul():
    cases = [(0x3C00, 0x3C00, 0), (0x3C00, 0x3C00, 1), (0x7BFF, 0x7BFF, 0), (0x0001, 0x8002, 0),
             (0x3555, 0xC000, 1), (0xFC00, 0x7C00, 0)]
    add, mul = FPAdd("fp16"), FPMul("fp16")
    a = np.array([c[0] for c in cases], dtype=np.uint64)
    b = np.array([c[1] for c in cases], dtype=np.uint64)
    want_add = reference("add", "fp16", a, b)
    want_sub = reference("sub", "fp16", a, b)
    want_mul = reference("mul", "fp16", a, b)
    got = {"add": [], "mul": []}

    async def bench(ctx):
        for x, y, s in cases:
            ctx.set(add.a, x)
            ctx.set(add.b, y)
            ctx.set(add.sub, s)
            ctx.set(mul.a, x)
            ctx.set(mul.b, y)
            got["add"].append(ctx.get(add.result))
            got["mul"].append(ctx.get(mul.result))

    top = Module()
    top.submodules.add = add
    top.submodules.mul = mul
    sim = Simulator(top)
    sim.add_testbench(bench)
    sim.run()
    for i, (_, _, s) in enumerate(cases):
        want = want_sub[i] if s else want_add[i]
        if is_nan_bits([want], "fp16")[0]:
            assert got["add"][i] == 0x7E00
        else:
            assert got["add"][i] == want
    assert got["mul"] == [0x7E00 if is_nan_bits([w], "fp16")[0] else int(w) for w in want_mul]


# --- the reference rounding itself --------------------------------------------------------

@pytest.mark.parametrize("fmt", ["fp16", "fp32"])
def test_round_to_format_matches_numpy(fmt):
    rng = np.random.default_rng(5)
    dt, it = NUMPY_TYPES[fmt]
    f = FPFormat(fmt)
    # random doubles across and beyond the format's range, and exact midpoints between
    # neighbouring values of the format (ties), including subnormal ones
    x = np.ldexp(rng.random(5000) + 0.5, rng.integers(-f.bias - f.frac_bits - 3,
                                                     f.bias + 3, 5000))
    x *= np.where(rng.integers(0, 2, 5000) == 1, -1.0, 1.0)
    lo = random_bits(rng, f, 5000) & np.uint64((1 << (f.width - 1)) - 2)
    v = bits_to_float64(lo, fmt)
    w = bits_to_float64(lo + np.uint64(1), fmt)
    keep = np.isfinite(v) & np.isfinite(w)
    mid = (v[keep] + w[keep]) / 2
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e300, -1e300, 1e-300])
    values = np.concatenate([x, mid, specials])
    with np.errstate(over="ignore"):
        want = values.astype(dt)
    got = round_to_format(values, fmt)
    want_bits = want.view(it).astype(np.uint64)
    nan = np.isnan(want)
    assert (got[~nan] == want_bits[~nan]).all()
    assert (got[nan] == f.qnan).all()


def test_round_to_format_bf16_cases():
    cases = {
        1.0: 0x3F80, 1.0 + 2.0**-8: 0x3F80, 1.0 + 3 * 2.0**-8: 0x3F82,   # ties to even
        2.0**-133: 0x0001, 2.0**-134: 0x0000, 1.5 * 2.0**-134: 0x0001,   # subnormal rounding
        2.0**-126 - 2.0**-134: 0x0080,                           # up to the smallest normal
        3.3895313892515355e38: 0x7F7F,                                    # largest finite
        3.3961775292304854e38: 0x7F80,                                    # halfway above it: inf
        -0.0: 0x8000,
    }
    got = round_to_format(np.array(list(cases)), "bf16")
    assert [int(g) for g in got] == list(cases.values())


# --- errors and the factory ---------------------------------------------------------------

def test_format_errors():
    with pytest.raises(ValueError, match=r"^Unknown FP format 'fp8'; expected one of fp16, "
                                         r"bf16, fp32, fp64, fp8_e4m3, fp8_e5m2, tf32$"):
        FPAdd("fp8")
    with pytest.raises(TypeError, match=r"^FP format must be a format name, not 16$"):
        FPMul(16)
    with pytest.raises(TypeError, match=r"^FP adder's adder must be a design name or a class, "
                                        r"not 3$"):
        FPAdd("fp16", adder=3)
    with pytest.raises(ValueError, match=r"^Unknown design 'wallace' for unit 'mul'; "):
        FPMul("fp16", multiplier="wallace")
    with pytest.raises(TypeError, match=r"^FP square root's root options must be a dict, "
                                        r"not 8$"):
        FPSqrt("fp16", root_options=8)


def test_format_fields():
    f = FPFormat("bf16")
    assert (f.exp_bits, f.frac_bits, f.width, f.bias, f.qnan, f.inf(1)) == \
        (8, 7, 16, 127, 0x7FC0, 0xFF80)
    assert FPAdd("fp64").result.shape().width == 64


LI2022_UNITS = hardware_profiles.load("li2022").units


def main_design(unit):
    """The pluggable unit's class inside an ieee unit (read from its attributes)."""
    return {FPAdd: "adder", FPCmp: "adder", FPMul: "multiplier", FPDiv: "divider",
            FPSqrt: "root"}[type(unit)]


@pytest.mark.parametrize("profile", ["li2022", "cmos-generic", "cmos-small", "cmos-fast"])
def test_factory_uses_the_profile_units(profile):
    units = hardware_profiles.load(profile).units
    cls = registry.design_class
    for op in OPS:
        kind = {"sub": "add", "cmp": "add"}.get(op, op)
        design = cls(units[op]["design"], kind)
        unit = build_fp_unit(op, "fp32", units, "ieee")
        assert type(unit) is UNIT_CLASSES[op]
        assert unit.format.name == "fp32"
        assert getattr(unit, main_design(unit)) is design
        minimal = build_fp_unit(op, "fp16", units, "minimal")
        inner = next(c for n, c in parts(minimal).items() if n != "exponent_adder")
        assert type(inner) is design
    mul = build_fp_unit("mul", "fp32", units, "ieee")
    assert mul.final_adder is cls(units["mul"]["final_adder"], "add")
    div = build_fp_unit("div", "fp32", units, "ieee")
    assert div.adder is cls(units["div"]["adder"], "add")
    sqrt = build_fp_unit("sqrt", "fp32", units, "ieee")
    assert sqrt.root_options == {k: v for k, v in units["sqrt"].items() if k != "design"}
    mul = parts(build_fp_unit("mul", "fp16", units, "minimal"))
    assert mul["significand_multiplier"].final_adder is cls(units["mul"]["final_adder"], "add")
    assert type(mul["exponent_adder"]) is cls(units["add"]["design"], "add")


def test_factory_sub_uses_the_sub_adder():
    units = dict(LI2022_UNITS, sub={"design": "kogge_stone"})
    assert isinstance(build_fp_unit("sub", "fp16", units, "ieee"), FPAdd)
    assert build_fp_unit("sub", "fp16", units, "ieee").adder is \
        registry.design_class("kogge_stone", "add")
    assert build_fp_unit("add", "fp16", units, "ieee").adder is \
        registry.design_class("ripple_carry", "add")
    assert isinstance(build_fp_unit("sub", "fp16", units, "minimal"), MinimalFPAdd)
    assert isinstance(build_fp_unit("mul", "bf16", units, "minimal"), MinimalFPMul)


def test_factory_errors():
    units = LI2022_UNITS
    with pytest.raises(ValueError, match=r"^Unknown FP operation 'pow'; expected one of add, "
                                         r"sub, mul, div, sqrt, cmp$"):
        build_fp_unit("pow", "fp32", units, "ieee")
    with pytest.raises(ValueError, match=r"^Unknown FP format 'fp128'; expected one of fp16, "
                                         r"bf16, fp32, fp64, fp8_e4m3, fp8_e5m2, tf32$"):
        build_fp_unit("add", "fp128", units, "ieee")
    with pytest.raises(ValueError, match=r"^Unknown FP datapath 'exact'; expected one of "
                                         r"ieee, minimal$"):
        build_fp_unit("add", "fp32", units, "exact")
    with pytest.raises(TypeError, match=r"^Units must be a mapping of operation to unit, "
                                        r"not None$"):
        build_fp_unit("add", "fp32", None, "ieee")
    with pytest.raises(ValueError, match=r"^Units have no 'div' unit; the FP div needs one$"):
        build_fp_unit("div", "fp32", {"add": {"design": "ripple_carry"}}, "ieee")
    with pytest.raises(ValueError, match=r"^Units have no 'add' unit; the FP mul needs one$"):
        build_fp_unit("mul", "fp32", {"mul": {"design": "array"}}, "minimal")
    with pytest.raises(ValueError, match=r"^Unit 'cmp' has no design$"):
        build_fp_unit("cmp", "fp32", {"cmp": {}}, "ieee")
    with pytest.raises(ValueError, match=r"^Unknown option\(s\) 'adder' for unit 'mul'; "
                                         r"expected final_adder$"):
        build_fp_unit("mul", "fp32", {"mul": {"design": "array", "adder": "x"}}, "ieee")
    with pytest.raises(ValueError, match=r"^Unknown option\(s\) 'seed_bits' for unit 'add'; "
                                         r"expected no options$"):
        build_fp_unit("add", "fp32", {"add": {"design": "ripple_carry", "seed_bits": 3}},
                      "ieee")


# The square root the cmos-generic and li2022 tables price, Newton-Raphson with tapered
# precision (hwlib.roots), bit-exact at the two widest formats too.
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["fp32", "fp64"])
def test_bit_exact_newton_raphson_wide(fmt, deep_recursion):
    a, b = vectors("sqrt", fmt, seed=770 + len(fmt))
    unit = FPSqrt(fmt, root="newton_raphson", root_options={
        "seed_bits": 8, "multiplier": "booth_wallace", "adder": "carry_lookahead"})
    check_unit(unit, "sqrt", fmt, a, b)
