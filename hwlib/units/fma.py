"""Floating-point multiply-accumulate: ``result = a * b + c`` with one rounding.

:class:`FPMAC` ("fused multiply-add" when both formats are the same, "mixed-precision MAC"
otherwise): the operands ``a`` and ``b`` are in the *product format* (any format of
``hardware_profiles.FORMAT_BITS``: fp8_e4m3, fp8_e5m2, bf16, fp16, fp32, fp64), the addend
``c`` and the result in the *accumulator format* (an IEEE format with infinities: fp16, bf16,
fp32, fp64, fp8_e5m2), as the matrix units of accelerators do (bf16 x bf16 + fp32, fp8 x
fp8 + fp32, fp16 x fp16 + fp32).

**Rounding: one, of the exact ``a * b + c``, to the accumulator format**, to nearest, ties to
even, with subnormals, overflow to infinity. The product is never rounded (it is exact in
``2F_a + 2`` bits), so this is a fused multiply-add in the IEEE 754-2008 sense for equal
formats, and for mixed formats it is what an fp32 FMA returns for the operands widened
exactly to fp32 (widening a bf16, fp16 or fp8 value to fp32 is exact). Specials: NaN in, NaN
out; ``0 * inf`` is NaN; ``inf * x + (-inf)`` is NaN; an exact zero result is +0 unless the
product and ``c`` are both -0 (IEEE round-to-nearest rule); every NaN result is the canonical
quiet NaN of the accumulator format. e4m3 operands are read with their encoding (no
infinities, one NaN pattern, :mod:`hwlib.units.fp8`); e4m3 is not an accumulator format.

Datapath (a swap-based, single-path design):

1. the ``(F_a+1) x (F_a+1)``-bit significand product from the profile's multiplier
   (``units.mul``: design and final adder), normalized by a leading-zero count;
   ``c``'s significand normalized by a leading-zero count (subnormal addends);
2. both placed left-aligned in ``W = max(2F_a + 2, F_c + 1)`` bits with signed exponents in the
   accumulator's bias; the larger in magnitude is ``x``, the other ``y``;
3. ``y`` shifted right by the exponent difference into ``W + 2`` bits plus a sticky bit, and
   one ``(W+3)``-bit adder of the profile's ``units.add`` design adds or subtracts;
4. a leading-zero count normalizes the sum and the shared rounding of :mod:`hwlib.fp`
   (``hwlib.fp.round_pack``) rounds it to ``F_c`` fraction bits.

Why one rounding is exact here: both significands are normalized, so a cancellation of more
than one leading bit happens only when the shift is 0 or 1, where nothing was shifted out
and the sum is exact; otherwise the sticky bit makes the computed sum the exact sum *rounded
to odd* two bits below ``W`` significant bits, and rounding that to ``F_c + 1 <= W`` bits
to nearest even gives the correctly rounded exact sum (Boldo and Melquiond, "Emulation of FMA
and correctly rounded sums: proved algorithms using rounding to odd", IEEE TC 2008).

``reference_fma`` is the exact plain-Python model (rationals).
"""
import functools
import math
from fractions import Fraction

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hardware_profiles import FORMAT_BITS

from .. import checks
from .. import fp as _fp
from .fp8 import E4M3, E4M3_INNER, e4m3_decode, round_magnitude

__all__ = ["FPMAC", "ACCUMULATOR_FORMATS", "fp_mac_unit", "fma_label", "reference_fma",
           "decode_value", "round_ieee"]

#: Formats a MAC may accumulate in: IEEE formats with infinities (not fp8_e4m3).
ACCUMULATOR_FORMATS = tuple(f for f in FORMAT_BITS if f != E4M3)


# --- reference ------------------------------------------------------------------------------

def _fields(fmt):
    E, F = FORMAT_BITS[fmt]
    return E, F, (1 << (E - 1)) - 1


def decode_value(bits, fmt):
    """The value of the bit pattern ``bits`` in ``fmt``: a Fraction, or a float infinity/NaN
    (e4m3: no infinities, NaN only for ``S.1111.111``)."""
    E, F, bias = _fields(fmt)
    sign = -1 if bits >> (E + F) & 1 else 1
    exp, frac = bits >> F & ((1 << E) - 1), bits & ((1 << F) - 1)
    if exp == (1 << E) - 1:
        if fmt == E4M3:
            if frac == (1 << F) - 1:
                return math.nan
        else:
            return sign * math.inf if frac == 0 else math.nan
    if exp == 0:
        return sign * Fraction(frac, 1 << F) * Fraction(2) ** (1 - bias)
    return sign * Fraction((1 << F) + frac, 1 << F) * Fraction(2) ** (exp - bias)


def round_ieee(value, fmt, negative=False):
    """Bit pattern of ``value`` (a Fraction, or a float infinity/NaN) rounded to nearest even
    in the IEEE format ``fmt`` (overflow to infinity; NaN gives the canonical quiet NaN of
    :mod:`hwlib.fp`); ``negative`` signs a zero ``value``."""
    E, F, bias = _fields(fmt)
    exp_max = (1 << E) - 1
    qnan = exp_max << F | 1 << (F - 1)
    if isinstance(value, float) and math.isnan(value):
        return qnan
    sign = 1 if value < 0 or (value == 0 and negative) else 0
    top = sign << (E + F)
    if isinstance(value, float) and math.isinf(value):
        return top | exp_max << F
    mag = abs(Fraction(value))
    if mag == 0:
        return top
    m, q = round_magnitude(mag, F, bias)
    exp_field = q + F + bias if m >> F else 0
    if exp_field >= exp_max:
        return top | exp_max << F
    return top | exp_field << F | (m & ((1 << F) - 1))


def reference_fma(a, b, c, product_format, acc_format):
    """Plain-Python model of :class:`FPMAC`: the accumulator-format bit pattern of
    ``a * b + c`` rounded once (``a``, ``b`` patterns in ``product_format``, ``c`` in
    ``acc_format``)."""
    x, y, z = decode_value(a, product_format), decode_value(b, product_format), decode_value(c, acc_format)
    if any(isinstance(v, float) and math.isnan(v) for v in (x, y, z)):
        return round_ieee(math.nan, acc_format)
    wa = FORMAT_BITS[product_format][0] + FORMAT_BITS[product_format][1]
    ps = (a >> wa & 1) ^ (b >> wa & 1)
    if isinstance(x, float) or isinstance(y, float):           # an infinite product
        if x == 0 or y == 0:
            return round_ieee(math.nan, acc_format)
        p = -math.inf if ps else math.inf
        if isinstance(z, float) and z != p:
            return round_ieee(math.nan, acc_format)
        return round_ieee(p, acc_format)
    if isinstance(z, float):
        return round_ieee(z, acc_format)
    total = x * y + z
    wc = sum(FORMAT_BITS[acc_format])
    cs = c >> wc & 1
    return round_ieee(total, acc_format, negative=total == 0 and bool(ps & cs))


# --- circuit --------------------------------------------------------------------------------

def _check_formats(product_format, acc_format):
    if product_format not in FORMAT_BITS:
        raise ValueError(f"Unknown product format {product_format!r}; expected one of "
                         f"{', '.join(FORMAT_BITS)}")
    if acc_format not in ACCUMULATOR_FORMATS:
        raise ValueError(f"Unknown accumulator format {acc_format!r}; expected one of "
                         f"{', '.join(ACCUMULATOR_FORMATS)}")


class FPMAC(wiring.Component):
    """``result = a * b + c``, one rounding (module doc).

    Ports: ``a``, ``b``: In(product format width); ``c``: In(accumulator width); ``result``:
    Out(accumulator width). ``multiplier`` and ``final_adder`` build the significand
    multiplier (``Cls(F_a+1, F_a+1, signed=False, final_adder=...)``), ``adder`` the
    ``(W+3)``-bit significand adder (``Cls(W+3, carry_in=False, subtract=True)``); each a
    registry design name or a class.
    """

    def __init__(self, product_format, acc_format, *, multiplier="booth_wallace",
                 final_adder="ripple_carry", adder="ripple_carry", src_loc_at=0):
        _check_formats(product_format, acc_format)
        self.product_format, self.acc_format = product_format, acc_format
        self.multiplier = checks.design(multiplier, "mul", "FP MAC's multiplier")
        self.final_adder = checks.design(final_adder, "add", "FP MAC's final adder")
        self.adder = checks.design(adder, "add", "FP MAC's adder")
        wa = 1 + sum(FORMAT_BITS[product_format])
        wc = 1 + sum(FORMAT_BITS[acc_format])
        super().__init__({"a": In(wa), "b": In(wa), "c": In(wc), "result": Out(wc)},
                         src_loc_at=src_loc_at + 1)

    def elaborate(self, platform):
        m = Module()
        if self.product_format == E4M3:
            fa = E4M3_INNER
            a_word, b_word = e4m3_decode(m, self.a, "a"), e4m3_decode(m, self.b, "b")
        else:
            fa = _fp.FPFormat(self.product_format)
            a_word, b_word = self.a, self.b
        fc = _fp.FPFormat(self.acc_format)
        Fa, Fc, Ec = fa.frac_bits, fc.frac_bits, fc.exp_bits
        A = _fp.Operand(m, a_word, fa, "a")
        B = _fp.Operand(m, b_word, fa, "b")
        C = _fp.Operand(m, self.c, fc, "c")
        xw = max(fa.exp_bits + 3, Ec + 2) + 2        # signed exponent width: no overflow

        # 1. exact product, normalized; the addend normalized
        mul = self.multiplier(Fa + 1, Fa + 1, signed=False, final_adder=self.final_adder)
        m.submodules.significand_multiplier = mul
        m.d.comb += [mul.a.eq(A.sig), mul.b.eq(B.sig)]
        lzp, p_norm = _fp.normalize_left(m, mul.p, "pnorm")
        lzc, c_norm = _fp.normalize_left(m, C.sig, "cnorm")
        p_sign = Signal(name="p_sign")
        p_zero = Signal(name="p_zero")
        p_inf = Signal(name="p_inf")
        e_p = Signal(signed(xw), name="e_p")
        e_c = Signal(signed(xw), name="e_c")
        m.d.comb += [
            p_sign.eq(A.sign ^ B.sign), p_zero.eq(A.zero | B.zero), p_inf.eq(A.inf | B.inf),
            # leading bit of the product: 2**(ea + eb - 2 bias_a + 1 - lzp), in c's bias
            e_p.eq(A.exp_eff + B.exp_eff - 2 * fa.bias + fc.bias + 1 - lzp),
            e_c.eq(C.exp_eff - lzc),
        ]

        # 2. left-aligned W-bit significands, the larger magnitude first
        wp = 2 * Fa + 2
        W = max(wp, Fc + 1)
        sig_p = Signal(W, name="sig_p")
        sig_c = Signal(W, name="sig_c")
        m.d.comb += [sig_p.eq(Cat(Const(0, W - wp), p_norm) if W > wp else p_norm),
                     sig_c.eq(Cat(Const(0, W - Fc - 1), c_norm) if W > Fc + 1 else c_norm)]
        c_big = Signal(name="c_big")
        m.d.comb += c_big.eq(p_zero | (~C.zero & ((e_c > e_p) | ((e_c == e_p) & (sig_c >= sig_p)))))
        x_sig, y_sig = Signal(W, name="x_sig"), Signal(W, name="y_sig")
        x_exp, y_exp = Signal(signed(xw), name="x_exp"), Signal(signed(xw), name="y_exp")
        x_sign = Signal(name="x_sign")
        eff_sub = Signal(name="eff_sub")
        m.d.comb += [
            x_sig.eq(Mux(c_big, sig_c, sig_p)), y_sig.eq(Mux(c_big, sig_p, sig_c)),
            x_exp.eq(Mux(c_big, e_c, e_p)), y_exp.eq(Mux(c_big, e_p, e_c)),
            x_sign.eq(Mux(c_big, C.sign, p_sign)),
            eff_sub.eq(p_sign ^ C.sign),
        ]

        # 3. align y (a zero y aligns to zero whatever the difference) and add
        diff = Signal(signed(xw + 1), name="exp_diff")
        amount = Signal(xw, name="align_amount")
        m.d.comb += [diff.eq(x_exp - y_exp), amount.eq(Mux(diff < 0, 0, diff[:xw]))]
        y_aligned, y_sticky = _fp.shift_right_sticky(m, Cat(Const(0, 2), y_sig), amount, "align")
        adder = self.adder(W + 3, carry_in=False, subtract=True)
        m.submodules.significand_adder = adder
        m.d.comb += [adder.a.eq(Cat(Const(0, 3), x_sig)), adder.b.eq(Cat(y_sticky, y_aligned)),
                     adder.sub.eq(eff_sub)]
        total = Signal(W + 4, name="sum")
        m.d.comb += total.eq(Cat(adder.s, adder.cout & ~eff_sub))

        # 4. normalize and round once
        lz, norm = _fp.normalize_left(m, total, "norm")
        exp_n = Signal(signed(xw + 1), name="exp_norm")
        m.d.comb += exp_n.eq(x_exp + 1 - lz)
        keep = Fc + 2
        sticky = Signal(name="sticky")
        m.d.comb += sticky.eq(norm[:W + 4 - keep] != 0)
        rounded = _fp.round_pack(m, fc, x_sign, exp_n, norm[W + 4 - keep:], sticky)

        nan = Signal(name="nan")
        m.d.comb += nan.eq(A.nan | B.nan | C.nan | (A.inf & B.zero) | (A.zero & B.inf)
                           | (p_inf & C.inf & eff_sub))
        _fp.select_special(m, fc, self.result, rounded, nan=nan, inf=p_inf | C.inf,
                            inf_sign=Mux(p_inf, p_sign, C.sign), zero=total == 0,
                            zero_sign=p_sign & C.sign)
        return m


def fma_label(product_format, acc_format):
    """``bf16*bf16+fp32`` style name of a MAC's formats."""
    return f"{product_format}*{product_format}+{acc_format}"


def _design(units, op):
    unit = units.get(op)
    if not isinstance(unit, dict) or "design" not in unit:
        raise ValueError(f"The profile has no {op!r} unit; the FP MAC needs one")
    return unit["design"], unit


def build_fp_mac(product_format, acc_format, units):
    """The :class:`FPMAC` of a profile's ``units``: the ``mul`` unit's design and final adder,
    the ``add`` unit's adder."""
    mul_design, mul = _design(units, "mul")
    add_design, _ = _design(units, "add")
    return FPMAC(product_format, acc_format, multiplier=mul_design,
                 final_adder=mul.get("final_adder", "ripple_carry"), adder=add_design, src_loc_at=1)


def fp_mac_unit(product_format, acc_format, units):
    """A :class:`hwlib.cost.CircuitSpec` of the FP MAC of a profile's ``units`` (see
    :func:`build_fp_mac`), keyed by its parameters and :func:`hwlib.units.units_digest`."""
    from .. import CircuitError
    from .._specs import CircuitSpec
    from . import units_digest
    try:
        _check_formats(product_format, acc_format)
        mul_design, _ = _design(units, "mul")
        _design(units, "add")
    except ValueError as exc:
        raise CircuitError(str(exc)) from None
    relevant = {name: units[name] for name in ("add", "mul")}
    params = {"circuit": "fp_mac", "kind": "fp_mac", "format": acc_format,
              "product_format": product_format, "units": relevant, "sources": units_digest()}
    return CircuitSpec(label=f"{fma_label(product_format, acc_format)} MAC ({mul_design})",
                       design=mul_design, params=params,
                       build=functools.partial(build_fp_mac, product_format, acc_format, units))
