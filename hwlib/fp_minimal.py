"""The ``minimal`` datapath: the TOs paper's counting composition of floating-point units.

li2022, section II.B.2 and Fig. 5, prices a floating-point basic operation by the integer
units it needs, "without considering bit shift in the exponent": adding two FP32 numbers
needs a 24-bit adder (23 full adders and one half adder); multiplying or dividing needs an XOR
gate for the sign, a 24-bit multiplier or divider for the fractions and an 8-bit adder for the
exponents. This module builds exactly those parts for any format (``F`` fraction bits, ``E``
exponent bits, ``w = 1 + E + F``) and wires them to the operand fields:

==============  ==========================================================================
unit            parts
==============  ==========================================================================
MinimalFPAdd    one ``(F+1)``-bit adder without carry-in (ripple-carry: ``F`` full adders
                and one half adder); add and sub alike (section II.B.1: subtraction runs on
                the adder in two's complement)
MinimalFPMul    sign XOR + ``(F+1) x (F+1)``-bit multiplier + ``E``-bit exponent adder
MinimalFPDiv    sign XOR + ``(F+1)``-bit divider + ``E``-bit exponent adder
MinimalFPSqrt   the profile's root unit over an ``(F+1)``-bit radicand (Newton-Raphson under
                li2022, section II.B.1)
MinimalFPCmp    a ``(w-1)``-bit subtractor on the magnitude fields plus sign logic
==============  ==========================================================================

**These are counting compositions, not correct floating-point units.** There is no alignment,
normalization, rounding, bias handling, subnormal or special-value logic; the hidden bit of
every significand is the constant 1 (the paper's model treats every operand as normal), and
the exponent adder adds the two exponent fields as they are, for division too (the difference
would be the same adder in two's-complement mode, which the paper counts as the same adder;
the complement is left out, like the bias, so that the count is exactly the paper's). Each
part does compute its integer function on the fields it is wired to, and the output ports show
the parts' results so that synthesis keeps every part. Only `MinimalFPCmp` is a correct
comparator for ordered (non-NaN) operands.

Area and delay are those of the parts: O(A(F)) and O(T(F)) for the adder, O(M(F) + A(E)) for
the multiplier, and so on, with ``A``, ``M``, ``T`` the area and delay of the profile's
designs.
"""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import checks
from .fp import FPFormat

__all__ = ["MinimalFPAdd", "MinimalFPMul", "MinimalFPDiv", "MinimalFPSqrt", "MinimalFPCmp"]


def _fields(fmt, word):
    """``(sign, exponent, significand with a constant-1 hidden bit)`` of an operand word."""
    E, F = fmt.exp_bits, fmt.frac_bits
    return word[E + F], word[F:E + F], Cat(word[:F], Const(1, 1))


class MinimalFPAdd(wiring.Component):
    """The paper's FP adder: one ``(F+1)``-bit adder on the significands (a counting
    composition, not a correct FP adder; see the module documentation).

    Ports: ``a``, ``b``: In(w); ``significand_sum``: Out(F+2), the sum of the two
    significands ``1.f`` as integers (with the carry-out).

    Part: ``significand_adder = adder(F+1, carry_in=False, subtract=False)``; for FP32 with
    the ripple-carry design, 23 full adders and 1 half adder (li2022, section II.B.2).
    Area A(F+1), delay T(F+1).
    """

    def __init__(self, fmt, *, adder="ripple_carry", src_loc_at=0):
        self.format = FPFormat(fmt)
        F, w = self.format.frac_bits, self.format.width
        self.adder = checks.design(adder, "add", "Minimal FP adder's adder")
        super().__init__({"a": In(w), "b": In(w), "significand_sum": Out(F + 2)},
                         src_loc_at=src_loc_at + 1)

    def elaborate(self, platform):
        m = Module()
        _, _, sig_a = _fields(self.format, self.a)
        _, _, sig_b = _fields(self.format, self.b)
        add = self.adder(self.format.frac_bits + 1, carry_in=False, subtract=False)
        m.submodules.significand_adder = add
        m.d.comb += [add.a.eq(sig_a), add.b.eq(sig_b),
                     self.significand_sum.eq(Cat(add.s, add.cout))]
        return m


class _MinimalProduct(wiring.Component):
    """Sign XOR and exponent adder shared by the multiplier and divider compositions."""

    def __init__(self, fmt, exponent_adder, members, src_loc_at):
        self.format = FPFormat(fmt)
        E, w = self.format.exp_bits, self.format.width
        self.exponent_adder = checks.design(exponent_adder, "add", "Minimal FP exponent adder")
        super().__init__({"a": In(w), "b": In(w), "sign": Out(1), "exponent_sum": Out(E + 1),
                          **members}, src_loc_at=src_loc_at + 2)

    def _sign_and_exponent(self, m):
        sign_a, exp_a, sig_a = _fields(self.format, self.a)
        sign_b, exp_b, sig_b = _fields(self.format, self.b)
        add = self.exponent_adder(self.format.exp_bits, carry_in=False, subtract=False)
        m.submodules.exponent_adder = add
        m.d.comb += [self.sign.eq(sign_a ^ sign_b), add.a.eq(exp_a), add.b.eq(exp_b),
                     self.exponent_sum.eq(Cat(add.s, add.cout))]
        return sig_a, sig_b


class MinimalFPMul(_MinimalProduct):
    """The paper's FP multiplier (li2022, Fig. 5): sign XOR, ``(F+1) x (F+1)``-bit multiplier,
    ``E``-bit exponent adder (a counting composition, not a correct FP multiplier; see the
    module documentation).

    Ports: ``a``, ``b``: In(w); ``sign``: Out(1) (``sa ^ sb``); ``exponent_sum``: Out(E+1)
    (``ea + eb``); ``significand_product``: Out(2F+2) (``1.fa * 1.fb`` as integers).

    Parts: ``significand_multiplier = multiplier(F+1, F+1, final_adder=...)`` and
    ``exponent_adder = exponent_adder(E, carry_in=False, subtract=False)``.
    Area M(F+1) + A(E) + 1 XOR, delay max(T_mul(F+1), T(E)).
    """

    def __init__(self, fmt, *, multiplier="booth_wallace", final_adder="ripple_carry",
                 exponent_adder="ripple_carry", src_loc_at=0):
        fmt_ = FPFormat(fmt)
        F = fmt_.frac_bits
        self.multiplier = checks.design(multiplier, "mul", "Minimal FP multiplier's multiplier")
        self.final_adder = checks.design(final_adder, "add", "Minimal FP multiplier's final adder")
        super().__init__(fmt, exponent_adder, {"significand_product": Out(2 * F + 2)},
                         src_loc_at)

    def elaborate(self, platform):
        m = Module()
        sig_a, sig_b = self._sign_and_exponent(m)
        F = self.format.frac_bits
        mul = self.multiplier(F + 1, F + 1, signed=False, final_adder=self.final_adder)
        m.submodules.significand_multiplier = mul
        m.d.comb += [mul.a.eq(sig_a), mul.b.eq(sig_b), self.significand_product.eq(mul.p)]
        return m


class MinimalFPDiv(_MinimalProduct):
    """The paper's FP divider (li2022, Fig. 5): sign XOR, ``(F+1)``-bit divider, ``E``-bit
    exponent adder (a counting composition, not a correct FP divider; see the module
    documentation).

    Ports: ``a``, ``b``: In(w); ``sign``: Out(1); ``exponent_sum``: Out(E+1) (``ea + eb``,
    the exponent adder as counted); ``significand_quotient``, ``significand_remainder``:
    Out(F+1) (``1.fa // 1.fb`` and ``1.fa % 1.fb`` as integers).

    Parts: ``significand_divider = divider(F+1, adder=...)`` and ``exponent_adder``.
    Area D(F+1) + A(E) + 1 XOR, delay max(T_div(F+1), T(E)).
    """

    def __init__(self, fmt, *, divider="srt_radix2", adder="ripple_carry",
                 exponent_adder="ripple_carry", src_loc_at=0):
        fmt_ = FPFormat(fmt)
        F = fmt_.frac_bits
        self.divider = checks.design(divider, "div", "Minimal FP divider's divider")
        self.adder = checks.design(adder, "add", "Minimal FP divider's adder")
        super().__init__(fmt, exponent_adder, {"significand_quotient": Out(F + 1),
                                                "significand_remainder": Out(F + 1)},
                         src_loc_at)

    def elaborate(self, platform):
        m = Module()
        sig_a, sig_b = self._sign_and_exponent(m)
        div = self.divider(self.format.frac_bits + 1, adder=self.adder)
        m.submodules.significand_divider = div
        m.d.comb += [div.dividend.eq(sig_a), div.divisor.eq(sig_b),
                     self.significand_quotient.eq(div.quotient),
                     self.significand_remainder.eq(div.remainder)]
        return m


class MinimalFPSqrt(wiring.Component):
    """The paper's FP root: the profile's root unit over the ``(F+1)``-bit significand
    (li2022, section II.B.1; a counting composition, not a correct FP square root).

    Ports: ``a``: In(w); ``significand_root``: Out(h) (``isqrt(1.f)`` of the significand as
    an integer) and ``significand_remainder``: Out(h+1), ``h = ceil((F+1)/2)``.

    Part: ``significand_root = root(F+1, **root_options)`` (``seed_bits``, ``multiplier``,
    ``adder`` for Newton-Raphson). Area and delay those of the root unit.
    """

    def __init__(self, fmt, *, root="newton_raphson", root_options=None, src_loc_at=0):
        self.format = FPFormat(fmt)
        F, w = self.format.frac_bits, self.format.width
        self.root = checks.design(root, "sqrt", "Minimal FP square root's root unit")
        if root_options is None:
            root_options = {}
        if not isinstance(root_options, dict):
            raise TypeError(f"Minimal FP square root's root options must be a dict, not "
                            f"{root_options!r}")
        self.root_options = dict(root_options)
        h = (F + 2) // 2
        super().__init__({"a": In(w), "significand_root": Out(h),
                          "significand_remainder": Out(h + 1)}, src_loc_at=src_loc_at + 1)

    def elaborate(self, platform):
        m = Module()
        _, _, sig = _fields(self.format, self.a)
        unit = self.root(self.format.frac_bits + 1, **self.root_options)
        m.submodules.significand_root = unit
        m.d.comb += [unit.radicand.eq(sig), self.significand_root.eq(unit.root),
                     self.significand_remainder.eq(unit.remainder)]
        return m


class MinimalFPCmp(wiring.Component):
    """The paper-style FP comparator: a ``(w-1)``-bit subtractor on the magnitude fields plus
    sign logic (a compare is a subtraction's sign, li2022 section II.B.1).

    Ports: ``a``, ``b``: In(w); ``lt``, ``eq``, ``gt``: Out(1). Correct for ordered operands
    (``+0 == -0`` included); there is no NaN detection, so a NaN compares by its bits.

    Part: ``magnitude_subtractor = adder(w-1, carry_in=False, subtract=True)`` with ``sub``
    tied to 1. Area A(w-1) + O(1), delay T(w-1) + O(1).
    """

    def __init__(self, fmt, *, adder="ripple_carry", src_loc_at=0):
        self.format = FPFormat(fmt)
        w = self.format.width
        self.adder = checks.design(adder, "add", "Minimal FP comparator's adder")
        super().__init__({"a": In(w), "b": In(w), "lt": Out(1), "eq": Out(1), "gt": Out(1)},
                         src_loc_at=src_loc_at + 1)

    def elaborate(self, platform):
        m = Module()
        w = self.format.width
        sub = self.adder(w - 1, carry_in=False, subtract=True)
        m.submodules.magnitude_subtractor = sub
        m.d.comb += [sub.a.eq(self.a[:w - 1]), sub.b.eq(self.b[:w - 1]), sub.sub.eq(1)]
        mag_lt, mag_eq = Signal(name="mag_lt"), Signal(name="mag_eq")
        # With sub = 1, carry-out 1 means no borrow: |a| >= |b|.
        m.d.comb += [mag_lt.eq(~sub.cout), mag_eq.eq(sub.s == 0)]
        sa, sb = self.a[w - 1], self.b[w - 1]
        both_zero, equal, less = Signal(), Signal(), Signal()
        m.d.comb += [
            both_zero.eq(mag_eq & (self.a[:w - 1] == 0)),
            equal.eq(both_zero | ((sa == sb) & mag_eq)),
            less.eq(Mux(sa, Mux(sb, ~mag_lt & ~mag_eq, 1), Mux(sb, 0, mag_lt))),
            self.eq.eq(equal),
            self.lt.eq(~equal & less),
            self.gt.eq(~equal & ~less),
        ]
        return m
