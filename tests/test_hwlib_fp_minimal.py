# amaranth: UnusedElaboratable=no
"""The minimal datapath (hwlib.fp_minimal): its parts, their widths, and their integer
functions on the operand fields."""
import math

import numpy as np
import pytest
from amaranth.hdl import Fragment

from hwlib import registry
from hwlib.fp import FPFormat, build_fp_unit
from hwlib.fp_minimal import (MinimalFPAdd, MinimalFPCmp, MinimalFPDiv, MinimalFPMul,
                              MinimalFPSqrt)
from hwlib.netsim import simulate
from hwlib.synth import cell_instances


def parts(unit):
    """Direct submodules of an elaborated unit: name -> component."""
    frag = Fragment.get(unit, None)
    return {name: next(o for o in sub.origins if hasattr(o, "signature"))
            for sub, name, _ in frag.subfragments}


def fields(fmt, bits):
    f = FPFormat(fmt)
    bits = [int(x) for x in bits]
    sign = [x >> (f.width - 1) for x in bits]
    exp = [(x >> f.frac_bits) & f.exp_max for x in bits]
    sig = [(x & ((1 << f.frac_bits) - 1)) | (1 << f.frac_bits) for x in bits]
    return sign, exp, sig


def random_words(fmt, n, seed):
    f = FPFormat(fmt)
    rng = np.random.default_rng(seed)
    return [int(x) for x in rng.integers(0, 1 << f.width, n, dtype=np.uint64)]


@pytest.mark.parametrize("fmt, fa, ha", [("fp16", 10, 1), ("bf16", 7, 1), ("fp32", 23, 1),
                                         ("fp64", 52, 1)])
def test_add_is_one_significand_adder(fmt, fa, ha):
    # li2022 II.B.2: the FP32 add is a 24-bit adder, 23 full adders and 1 half adder.
    unit = MinimalFPAdd(fmt)
    p = parts(unit)
    assert list(p) == ["significand_adder"]
    add = p["significand_adder"]
    assert type(add) is registry.design_class("ripple_carry", "add")
    assert (add.width, add.carry_in, add.subtract) == (FPFormat(fmt).frac_bits + 1, False, False)
    assert cell_instances(unit) == {"full_adder": fa, "half_adder": ha}


def test_add_sums_the_significands():
    a, b = random_words("fp16", 500, 1), random_words("fp16", 500, 2)
    got = simulate(MinimalFPAdd("fp16", adder="kogge_stone"), {"a": a, "b": b})
    want = [x + y for x, y in zip(fields("fp16", a)[2], fields("fp16", b)[2])]
    assert got["significand_sum"] == want


@pytest.mark.parametrize("fmt", ["fp16", "bf16", "fp32"])
def test_mul_is_xor_multiplier_and_exponent_adder(fmt):
    f = FPFormat(fmt)
    unit = MinimalFPMul(fmt, multiplier="booth_wallace", final_adder="ripple_carry",
                        exponent_adder="ripple_carry")
    p = parts(unit)
    assert set(p) == {"exponent_adder", "significand_multiplier"}
    mul, exp = p["significand_multiplier"], p["exponent_adder"]
    assert type(mul) is registry.design_class("booth_wallace", "mul")
    assert (mul.a_width, mul.b_width, mul.signed) == (f.frac_bits + 1, f.frac_bits + 1, False)
    assert (exp.width, exp.carry_in, exp.subtract) == (f.exp_bits, False, False)
    # the composition's cells are exactly the multiplier's plus the exponent adder's
    alone = cell_instances(registry.build("booth_wallace", f.frac_bits + 1, kind="mul",
                                          final_adder="ripple_carry"))
    expected = dict(alone)
    expected["full_adder"] = expected.get("full_adder", 0) + f.exp_bits - 1
    expected["half_adder"] = expected.get("half_adder", 0) + 1
    assert cell_instances(unit) == expected


def test_mul_parts_compute_their_functions():
    a, b = random_words("bf16", 400, 3), random_words("bf16", 400, 4)
    got = simulate(MinimalFPMul("bf16", multiplier="dadda"), {"a": a, "b": b})
    sa, ea, ma = fields("bf16", a)
    sb, eb, mb = fields("bf16", b)
    assert got["sign"] == [x ^ y for x, y in zip(sa, sb)]
    assert got["exponent_sum"] == [x + y for x, y in zip(ea, eb)]
    assert got["significand_product"] == [x * y for x, y in zip(ma, mb)]


@pytest.mark.parametrize("fmt", ["fp16", "fp32"])
def test_div_is_xor_divider_and_exponent_adder(fmt):
    f = FPFormat(fmt)
    unit = MinimalFPDiv(fmt, divider="srt_radix2", adder="ripple_carry",
                        exponent_adder="brent_kung")
    p = parts(unit)
    assert set(p) == {"exponent_adder", "significand_divider"}
    div, exp = p["significand_divider"], p["exponent_adder"]
    assert type(div) is registry.design_class("srt_radix2", "div")
    assert (div.width, div.dividend_width) == (f.frac_bits + 1, f.frac_bits + 1)
    assert div.adder is registry.design_class("ripple_carry", "add")
    assert type(exp) is registry.design_class("brent_kung", "add")
    assert exp.width == f.exp_bits


def test_div_parts_compute_their_functions():
    a, b = random_words("fp16", 400, 5), random_words("fp16", 400, 6)
    got = simulate(MinimalFPDiv("fp16", divider="restoring"), {"a": a, "b": b})
    sa, ea, ma = fields("fp16", a)
    sb, eb, mb = fields("fp16", b)
    assert got["sign"] == [x ^ y for x, y in zip(sa, sb)]
    assert got["exponent_sum"] == [x + y for x, y in zip(ea, eb)]
    assert got["significand_quotient"] == [x // y for x, y in zip(ma, mb)]
    assert got["significand_remainder"] == [x % y for x, y in zip(ma, mb)]


@pytest.mark.parametrize("fmt", ["fp16", "fp32"])
def test_sqrt_is_the_root_unit(fmt):
    f = FPFormat(fmt)
    unit = MinimalFPSqrt(fmt, root="newton_raphson",
                         root_options={"seed_bits": 8, "multiplier": "booth_wallace",
                                       "adder": "ripple_carry"})
    p = parts(unit)
    assert list(p) == ["significand_root"]
    root = p["significand_root"]
    assert type(root) is registry.design_class("newton_raphson", "sqrt")
    assert root.width == f.frac_bits + 1
    assert len(unit.significand_root) == root.root_width


def test_sqrt_part_computes_its_function():
    a = random_words("fp16", 300, 7)
    got = simulate(MinimalFPSqrt("fp16", root="digit_recurrence"), {"a": a})
    sig = fields("fp16", a)[2]
    assert got["significand_root"] == [math.isqrt(x) for x in sig]
    assert got["significand_remainder"] == [x - math.isqrt(x) ** 2 for x in sig]


@pytest.mark.parametrize("fmt", ["fp16", "fp64"])
def test_cmp_is_one_magnitude_subtractor(fmt):
    f = FPFormat(fmt)
    unit = MinimalFPCmp(fmt)
    p = parts(unit)
    assert list(p) == ["magnitude_subtractor"]
    sub = p["magnitude_subtractor"]
    assert type(sub) is registry.design_class("ripple_carry", "add")
    assert (sub.width, sub.subtract) == (f.width - 1, True)
    assert cell_instances(unit) == {"full_adder": f.width - 1}     # carry-in = sub


def test_cmp_orders_non_nan_operands():
    rng = np.random.default_rng(8)
    a = rng.integers(0, 1 << 16, 3000, dtype=np.uint64).astype(np.uint16)
    b = rng.integers(0, 1 << 16, 3000, dtype=np.uint64).astype(np.uint16)
    b[:500] = a[:500]                       # equal values
    b[500:700] = a[500:700] ^ 0x8000        # opposite signs (zeros among them below)
    a[700:710] = [0, 0x8000] * 5
    b[700:710] = [0x8000, 0] * 5
    x, y = a.view(np.float16), b.view(np.float16)
    keep = ~(np.isnan(x) | np.isnan(y))
    a, b, x, y = a[keep], b[keep], x[keep], y[keep]
    got = simulate(MinimalFPCmp("fp16", adder="sklansky"), {"a": a.tolist(), "b": b.tolist()})
    assert got["lt"] == (x < y).astype(int).tolist()
    assert got["eq"] == (x == y).astype(int).tolist()
    assert got["gt"] == (x > y).astype(int).tolist()


def test_factory_minimal_under_li2022_counts_as_the_paper():
    # li2022 II.B.2: FP32 add = 23 full adders + 1 half adder; FP32 mul = 24-bit multiplier +
    # 8-bit adder (+ the sign XOR, which is glue).
    import hardware_profiles
    units = hardware_profiles.load("li2022").units
    add = build_fp_unit("add", "fp32", units, "minimal")
    assert isinstance(add, MinimalFPAdd)
    assert cell_instances(add) == {"full_adder": 23, "half_adder": 1}
    sub = build_fp_unit("sub", "fp32", units, "minimal")
    assert cell_instances(sub) == {"full_adder": 23, "half_adder": 1}
    mul = build_fp_unit("mul", "fp32", units, "minimal")
    p = parts(mul)
    assert p["significand_multiplier"].a_width == 24 and p["exponent_adder"].width == 8
    assert isinstance(build_fp_unit("div", "fp32", units, "minimal"), MinimalFPDiv)
    assert isinstance(build_fp_unit("sqrt", "fp32", units, "minimal"), MinimalFPSqrt)
    assert isinstance(build_fp_unit("cmp", "fp32", units, "minimal"), MinimalFPCmp)


def test_errors():
    with pytest.raises(ValueError, match=r"^Unknown FP format 'fp8'; expected one of fp16, "
                                         r"bf16, fp32, fp64, fp8_e4m3, fp8_e5m2, tf32$"):
        MinimalFPAdd("fp8")
    with pytest.raises(TypeError, match=r"^Minimal FP multiplier's multiplier must be a design "
                                        r"name or a class, not None$"):
        MinimalFPMul("fp16", multiplier=None)
    with pytest.raises(ValueError, match=r"^Unknown design 'fast' for unit 'div'; "):
        MinimalFPDiv("fp16", divider="fast")
    with pytest.raises(TypeError, match=r"^Minimal FP square root's root options must be a "
                                        r"dict, not \[\]$"):
        MinimalFPSqrt("fp16", root_options=[])
    with pytest.raises(ValueError, match=r"^Unknown design 'x' for unit 'add'; "):
        MinimalFPCmp("fp16", adder="x")
