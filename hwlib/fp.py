"""Floating-point datapaths: IEEE-754 units around the pluggable integer units, and the factory.

Two datapaths price a floating-point basic operation (DESIGN.md, ``datapath:`` of a profile):

* ``ieee`` (this module): complete IEEE-754 binary units, one component per operation
  (`FPAdd` for add and sub, `FPMul`, `FPDiv`, `FPSqrt`, `FPCmp`), for the formats of
  ``hardware_profiles.FORMAT_BITS`` (fp16, bf16, fp32, fp64; bfloat16 is the IEEE-754 layout
  with 8 exponent and 7 fraction bits). Round-to-nearest-even is the only rounding mode.
  Subnormal inputs and outputs, signed zeros (``x + (-x) = +0``, ``sqrt(-0) = -0``),
  infinities, overflow to infinity and NaN are handled. **Every NaN result is the canonical
  quiet NaN** (sign 0, exponent all ones, fraction ``10...0``); NaN payloads are not
  propagated, and the tests compare NaN-ness, not payloads.
* ``minimal`` (:mod:`hwlib.fp_minimal`): the TOs paper's counting composition.

`build_fp_unit` picks the component for an (op, format) from a resolved profile's ``units``.

Every unit is built as ``Cls(fmt, *, <designs>, src_loc_at=0)``: ``fmt`` a format name, the
designs either registry design names or classes, and ``src_loc_at`` as in Amaranth (how many
stack frames up the unit counts as created, for source locations and unused-unit warnings).

Which parts are pluggable
-------------------------
The integer unit that does an operation's main work is the one the profile names, built from
:mod:`hwlib.registry`, so that the transistor count follows the profile:

=========  ==============================================================================
unit       main integer unit inside
=========  ==============================================================================
FPAdd      one ``(F+4)``-bit adder in add/subtract mode (significands with guard, round
           and sticky bits); ``F`` is the number of fraction bits
FPMul      one ``(F+1) x (F+1)``-bit multiplier (with its final adder)
FPDiv      one divider of an ``(F+1)``-bit divisor and a ``(2F+3)``-bit dividend (the
           normalized dividend significand shifted left by ``F+2``), built with only the
           ``F+3`` quotient rows the result needs (``quotient_width=F+3``)
FPSqrt     one root unit with a ``(2F+4)``-bit radicand, root ``F+2`` bits
FPCmp      one ``(E+F)``-bit subtractor on the magnitude fields
=========  ==============================================================================

The rest is glue written as plain Amaranth and mapped by Yosys: unpacking and special-value
detection, the exponent arithmetic (a few ``E+2``-bit additions and comparisons, written with
``+``/``-``), the FPAdd operand swap (an ``(E+F)``-bit magnitude comparison), logarithmic
shifters (alignment with sticky collection, normalization with leading-zero count, the
subnormal right shift before rounding) and the rounding incrementer, an ``(E+F)``-bit
increment of the packed exponent and fraction whose carry moves a rounded-up significand into
the exponent (and a rounded-up largest finite value into infinity).

Rounding (shared by every unit): the unit delivers a sign, a biased exponent (as a signed
value, possibly below 1 or above the largest) and an ``F+2``-bit significand ``1.f g`` with
its leading one in the top bit plus a sticky bit. Below the normal range the significand is
shifted right with sticky collection and the exponent field becomes 0 (gradual underflow);
then ``round up = g & (lsb | sticky)`` (Santoro, Bewick and Horowitz 1989; Goldberg, "What
every computer scientist should know about floating-point arithmetic", 1991).

Area and delay, ``w`` the format width: O(w log w) glue (shifters, leading-zero counts) plus
the main unit, whose growth dominates for mul, div and sqrt; delay O(log w) glue levels plus
the main unit's delay. The algorithms are the textbook ones (Muller et al., *Handbook of
Floating-Point Arithmetic*, 2nd ed. 2018, ch. 7 and 8; Ercegovac and Lang, *Digital
Arithmetic*, 2004, ch. 8).
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hardware_profiles.schema import BASIC_OPS as FP_OPS, DATAPATHS, FORMAT_BITS

from . import checks

__all__ = [
    "FPFormat", "FPAdd", "FPMul", "FPDiv", "FPSqrt", "FPCmp", "build_fp_unit", "FP_OPS",
    "DATAPATHS",
]

# FP_OPS (the basic operations a floating-point unit executes) and DATAPATHS (the datapath
# names of a profile) are hardware_profiles.schema's BASIC_OPS and DATAPATHS, imported above
# so that each has one definition; this comment keeps the lines below where they were (their
# source lines are in the RTLIL, and so in the keys of the synthesis cache).


class FPFormat:
    """An IEEE-754 binary interchange format (or bfloat16) by name: field widths and bias.

    ``exp_bits`` (``E``) and ``frac_bits`` (``F``) come from
    ``hardware_profiles.FORMAT_BITS``; ``width = 1 + E + F``, ``bias = 2**(E-1) - 1``.
    """

    def __init__(self, name):
        if not isinstance(name, str):
            raise TypeError(f"FP format must be a format name, not {name!r}")
        if name not in FORMAT_BITS:
            raise ValueError(f"Unknown FP format {name!r}; expected one of "
                             f"{', '.join(FORMAT_BITS)}")
        self.name = name
        self.exp_bits, self.frac_bits = FORMAT_BITS[name]
        self.width = 1 + self.exp_bits + self.frac_bits
        self.bias = (1 << (self.exp_bits - 1)) - 1
        self.exp_max = (1 << self.exp_bits) - 1

    def __repr__(self):
        return f"FPFormat({self.name!r})"

    @property
    def qnan(self):
        """Bit pattern of the canonical quiet NaN every unit here produces."""
        return (self.exp_max << self.frac_bits) | (1 << (self.frac_bits - 1))

    def inf(self, sign=0):
        """Bit pattern of an infinity."""
        return (sign << (self.width - 1)) | (self.exp_max << self.frac_bits)


# --- glue helpers -------------------------------------------------------------------------

class Operand:
    """Fields and classification of one unpacked operand."""

    def __init__(self, m, word, fmt, name):
        E, F = fmt.exp_bits, fmt.frac_bits
        self.sign = Signal(name=f"{name}_sign")
        self.frac = Signal(F, name=f"{name}_frac")
        self.exp = Signal(E, name=f"{name}_exp")
        m.d.comb += [self.sign.eq(word[E + F]), self.frac.eq(word[:F]),
                     self.exp.eq(word[F:E + F])]
        exp_zero = Signal(name=f"{name}_exp_zero")
        exp_ones = Signal(name=f"{name}_exp_ones")
        frac_zero = Signal(name=f"{name}_frac_zero")
        m.d.comb += [exp_zero.eq(self.exp == 0), exp_ones.eq(self.exp == fmt.exp_max),
                     frac_zero.eq(self.frac == 0)]
        self.zero = Signal(name=f"{name}_is_zero")
        self.inf = Signal(name=f"{name}_is_inf")
        self.nan = Signal(name=f"{name}_is_nan")
        m.d.comb += [self.zero.eq(exp_zero & frac_zero), self.inf.eq(exp_ones & frac_zero),
                     self.nan.eq(exp_ones & ~frac_zero)]
        #: significand with the hidden bit (0 for zero and subnormals)
        self.sig = Signal(F + 1, name=f"{name}_sig")
        #: effective biased exponent: subnormals have exponent 1 with hidden bit 0
        self.exp_eff = Signal(E, name=f"{name}_exp_eff")
        m.d.comb += [self.sig.eq(Cat(self.frac, ~exp_zero)),
                     self.exp_eff.eq(Cat(self.exp[0] | exp_zero, self.exp[1:]))]


def shift_right_sticky(m, value, amount, name):
    """Logical right shift of ``value`` by the unsigned ``amount`` (any width, saturating),
    returning ``(shifted, sticky)`` where ``sticky`` is the OR of every bit shifted out.
    Logarithmic: O(w log w) area, O(log w) delay."""
    width = len(value)
    stages = min(len(amount), width.bit_length())
    cur = value
    sticky = Const(0, 1)
    for k in range(stages):
        step = 1 << k
        nxt = Signal(width, name=f"{name}_r{k}")
        lost = Signal(name=f"{name}_lost{k}")
        m.d.comb += [nxt.eq(Mux(amount[k], cur >> step, cur)),
                     lost.eq(amount[k] & (cur[:min(step, width)] != 0))]
        sticky = sticky | lost
        cur = nxt
    if len(amount) > stages:
        # 2**stages > width: any higher amount bit shifts everything out.
        big = Signal(name=f"{name}_all_out")
        nxt = Signal(width, name=f"{name}_r_sat")
        lost = Signal(name=f"{name}_lost_sat")
        m.d.comb += [big.eq(amount[stages:] != 0), nxt.eq(Mux(big, 0, cur)),
                     lost.eq(big & (cur != 0))]
        sticky = sticky | lost
        cur = nxt
    out_sticky = Signal(name=f"{name}_sticky")
    m.d.comb += out_sticky.eq(sticky)
    return cur, out_sticky


def normalize_left(m, value, name):
    """Leading-zero count and left normalization in one logarithmic pass.

    Stage ``k`` (widest first) shifts left by ``2**k`` when the top ``2**k`` bits are zero and
    records that as bit ``k`` of the count. Returns ``(count, normalized)``: for a nonzero
    value the count of leading zeros and the value with its top bit set; for zero the count
    is a don't-care and ``normalized`` is 0. O(w log w) area, O(log w) delay.
    """
    width = len(value)
    bits = max(1, (width - 1).bit_length())
    padded = 1 << bits
    count = Signal(bits, name=f"{name}_lzc")
    cur = Signal(padded, name=f"{name}_n{bits}")
    m.d.comb += cur.eq(Cat(Const(0, padded - width), value))
    for k in reversed(range(bits)):
        step = 1 << k
        zero = Signal(name=f"{name}_z{k}")
        nxt = Signal(padded, name=f"{name}_n{k}")
        m.d.comb += [zero.eq(cur[padded - step:] == 0),
                     nxt.eq(Mux(zero, cur << step, cur)),
                     count[k].eq(zero)]
        cur = nxt
    normalized = Signal(width, name=f"{name}_norm")
    m.d.comb += normalized.eq(cur[padded - width:])
    return count, normalized


def round_pack(m, fmt, sign, exp, sig, sticky, *, subnormal=True, overflow=True):
    """Round to nearest even and pack; returns the ``width``-bit result (see module doc).

    ``exp`` is a signed biased exponent of the leading bit of ``sig`` (``F+2`` bits, top bit
    set unless the value is zero). ``subnormal``/``overflow`` leave out the underflow shifter
    or the overflow test where a unit cannot produce them (square root).
    """
    E, F = fmt.exp_bits, fmt.frac_bits
    if subnormal:
        under = Signal(name="rnd_under")
        amount = Signal(len(exp), name="rnd_shift")
        m.d.comb += [under.eq(exp < 1), amount.eq(Mux(under, 1 - exp, 0))]
        sig_s, sticky_s = shift_right_sticky(m, sig, amount, "rnd")
        exp_field = Signal(E, name="rnd_exp_field")
        m.d.comb += exp_field.eq(Mux(under, 0, exp[:E]))
        sticky = sticky | sticky_s
    else:
        sig_s = sig
        exp_field = exp[:E]
    inc = Signal(name="rnd_inc")
    m.d.comb += inc.eq(sig_s[0] & (sig_s[1] | sticky))
    # The hidden bit is dropped; a carry out of the fraction increments the exponent field
    # (1.11..1 -> 10.0, largest subnormal -> smallest normal, largest finite -> infinity).
    packed = Signal(E + F, name="rnd_packed")
    m.d.comb += packed.eq(Cat(sig_s[1:F + 1], exp_field) + inc)
    result = Signal(fmt.width, name="rnd_result")
    if overflow:
        over = Signal(name="rnd_overflow")
        m.d.comb += [over.eq(exp >= fmt.exp_max),
                     result.eq(Mux(over, Cat(Const(fmt.exp_max << F, E + F), sign),
                                   Cat(packed, sign)))]
    else:
        m.d.comb += result.eq(Cat(packed, sign))
    return result


def select_special(m, fmt, out, rounded, *, nan, inf, inf_sign, zero, zero_sign):
    """Drive ``out`` with NaN, a signed infinity, a signed zero or the rounded result."""
    F, E = fmt.frac_bits, fmt.exp_bits
    m.d.comb += out.eq(
        Mux(nan, Const(fmt.qnan, fmt.width),
            Mux(inf, Cat(Const(fmt.exp_max << F, E + F), inf_sign),
                Mux(zero, Cat(Const(0, E + F), zero_sign), rounded))))


class FPUnit(wiring.Component):
    """Shared format check and ports for the two-operand units."""

    def __init__(self, fmt, members, src_loc_at):
        self.format = FPFormat(fmt)
        super().__init__(members(self.format.width), src_loc_at=src_loc_at + 2)


# --- the units ----------------------------------------------------------------------------

class FPAdd(FPUnit):
    """IEEE-754 addition and subtraction, round to nearest even: ``result = a + b`` or
    ``a - b`` (``sub = 1``).

    Ports: ``a``, ``b``: In(w); ``sub``: In(1); ``result``: Out(w), ``w`` the format width.

    The operands are swapped so that ``|x| >= |y|`` (magnitude-field comparison), ``y``'s
    significand is aligned right by the exponent difference with guard, round and sticky
    bits, and one ``(F+4)``-bit pluggable ``adder`` (``Cls(F+4, carry_in=False,
    subtract=True)``) adds or subtracts; a leading-zero count normalizes the sum (exact:
    massive cancellation only happens when the alignment lost nothing), and the shared RNE
    rounding packs it. Exact cancellation gives ``+0`` (``-0`` only for ``(-0) + (-0)``);
    ``inf - inf`` gives NaN.

    Area O(A(F) + w log w), delay O(T(F) + log w) with ``A``, ``T`` the adder's area and
    delay. The classic single-path adder (Muller et al., *Handbook of Floating-Point
    Arithmetic*, 2018, section 7.3).
    """

    def __init__(self, fmt, *, adder="ripple_carry", src_loc_at=0):
        self.adder = checks.design(adder, "add", "FP adder's adder")
        super().__init__(fmt, lambda w: {"a": In(w), "b": In(w), "sub": In(1),
                                         "result": Out(w)}, src_loc_at)

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        E, F = fmt.exp_bits, fmt.frac_bits
        A = Operand(m, self.a, fmt, "a")
        B = Operand(m, self.b, fmt, "b")
        b_sign = Signal(name="b_sign_eff")
        m.d.comb += b_sign.eq(B.sign ^ self.sub)

        swap = Signal(name="swap")
        m.d.comb += swap.eq(self.b[:E + F] > self.a[:E + F])
        x_sig, y_sig = Signal(F + 1, name="x_sig"), Signal(F + 1, name="y_sig")
        x_exp, y_exp = Signal(E, name="x_exp"), Signal(E, name="y_exp")
        x_sign = Signal(name="x_sign")
        eff_sub = Signal(name="eff_sub")
        m.d.comb += [
            x_sig.eq(Mux(swap, B.sig, A.sig)), y_sig.eq(Mux(swap, A.sig, B.sig)),
            x_exp.eq(Mux(swap, B.exp_eff, A.exp_eff)), y_exp.eq(Mux(swap, A.exp_eff, B.exp_eff)),
            x_sign.eq(Mux(swap, b_sign, A.sign)),
            eff_sub.eq(A.sign ^ b_sign),
        ]
        # |x| >= |y| implies x_exp >= y_exp, so the difference is non-negative.
        diff = Signal(E, name="exp_diff")
        m.d.comb += diff.eq(x_exp - y_exp)
        y_aligned, y_sticky = shift_right_sticky(m, Cat(Const(0, 2), y_sig), diff, "align")

        adder = self.adder(F + 4, carry_in=False, subtract=True)
        m.submodules.significand_adder = adder
        m.d.comb += [adder.a.eq(Cat(Const(0, 3), x_sig)),
                     adder.b.eq(Cat(y_sticky, y_aligned)),
                     adder.sub.eq(eff_sub)]
        total = Signal(F + 5, name="sum")
        m.d.comb += total.eq(Cat(adder.s, adder.cout & ~eff_sub))

        lzc, norm = normalize_left(m, total, "norm")
        exp_n = Signal(signed(E + 2), name="exp_norm")
        m.d.comb += exp_n.eq(x_exp + 1 - lzc)
        sticky = Signal(name="sticky")
        m.d.comb += sticky.eq(norm[:3] != 0)
        rounded = round_pack(m, fmt, x_sign, exp_n, norm[3:], sticky)

        nan = Signal(name="nan")
        m.d.comb += nan.eq(A.nan | B.nan | (A.inf & B.inf & eff_sub))
        select_special(m, fmt, self.result, rounded,
                        nan=nan, inf=A.inf | B.inf, inf_sign=x_sign,
                        zero=total == 0, zero_sign=A.sign & b_sign)
        return m


class FPMul(FPUnit):
    """IEEE-754 multiplication, round to nearest even: ``result = a * b``.

    Ports: ``a``, ``b``: In(w); ``result``: Out(w).

    The ``(F+1)``-bit significands (hidden bit 0 for subnormals) go through one pluggable
    ``multiplier`` (``Cls(F+1, F+1, signed=False, final_adder=...)``); the ``2F+2``-bit
    product is normalized by a leading-zero count (a subnormal operand leaves leading zeros),
    the exponent is ``ea + eb - bias + 1 - lzc``, and the shared RNE rounding handles
    underflow to subnormals or zero and overflow to infinity. ``0 * inf`` is NaN.

    Area O(M(F) + w log w), delay O(T_mul(F) + log w) with ``M``, ``T_mul`` the multiplier's
    area and delay (Muller et al., *Handbook of Floating-Point Arithmetic*, 2018, section
    8.4).
    """

    def __init__(self, fmt, *, multiplier="booth_wallace", final_adder="ripple_carry",
                 src_loc_at=0):
        self.multiplier = checks.design(multiplier, "mul", "FP multiplier's multiplier")
        self.final_adder = checks.design(final_adder, "add", "FP multiplier's final adder")
        super().__init__(fmt, lambda w: {"a": In(w), "b": In(w), "result": Out(w)}, src_loc_at)

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        E, F = fmt.exp_bits, fmt.frac_bits
        A = Operand(m, self.a, fmt, "a")
        B = Operand(m, self.b, fmt, "b")
        sign = Signal(name="sign")
        m.d.comb += sign.eq(A.sign ^ B.sign)

        mul = self.multiplier(F + 1, F + 1, signed=False, final_adder=self.final_adder)
        m.submodules.significand_multiplier = mul
        m.d.comb += [mul.a.eq(A.sig), mul.b.eq(B.sig)]
        lzc, norm = normalize_left(m, mul.p, "norm")
        exp_n = Signal(signed(E + 3), name="exp_norm")
        m.d.comb += exp_n.eq(A.exp_eff + B.exp_eff - fmt.bias + 1 - lzc)
        sticky = Signal(name="sticky")
        m.d.comb += sticky.eq(norm[:F] != 0)
        rounded = round_pack(m, fmt, sign, exp_n, norm[F:], sticky)

        nan = Signal(name="nan")
        m.d.comb += nan.eq(A.nan | B.nan | (A.inf & B.zero) | (A.zero & B.inf))
        select_special(m, fmt, self.result, rounded, nan=nan, inf=A.inf | B.inf,
                        inf_sign=sign, zero=A.zero | B.zero, zero_sign=sign)
        return m


class FPDiv(FPUnit):
    """IEEE-754 division, round to nearest even: ``result = a / b``.

    Ports: ``a``, ``b``: In(w); ``result``: Out(w).

    Both significands are normalized (leading-zero count and left shift, for subnormals);
    then one pluggable ``divider`` (``Cls(F+1, dividend_width=2F+3, quotient_width=F+3,
    adder=...)``) divides the
    dividend significand shifted left by ``F+2`` by the divisor significand. The quotient lies
    in ``(2**(F+1), 2**(F+3))``: its top ``F+2`` significant bits and a sticky bit (the rest
    of the quotient and ``remainder != 0``) go to the shared RNE rounding. Normalized
    significands guarantee ``dividend < divisor * 2**(F+3)``, so the divider unrolls only
    ``F+3`` quotient rows (an integer divider would unroll ``2F+3``). ``x / 0`` is a signed infinity for ``x != 0``; ``0 / 0``
    and ``inf / inf`` are NaN.

    Area O(D(F) + w log w), delay O(T_div(F) + log w) with ``D``, ``T_div`` the divider's
    area and delay (Muller et al., *Handbook of Floating-Point Arithmetic*, 2018, section 8.6;
    Ercegovac and Lang, *Division and Square Root*, 1994).
    """

    def __init__(self, fmt, *, divider="srt_radix2", adder="ripple_carry", src_loc_at=0):
        self.divider = checks.design(divider, "div", "FP divider's divider")
        self.adder = checks.design(adder, "add", "FP divider's adder")
        super().__init__(fmt, lambda w: {"a": In(w), "b": In(w), "result": Out(w)}, src_loc_at)

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        E, F = fmt.exp_bits, fmt.frac_bits
        A = Operand(m, self.a, fmt, "a")
        B = Operand(m, self.b, fmt, "b")
        sign = Signal(name="sign")
        m.d.comb += sign.eq(A.sign ^ B.sign)
        lza, na = normalize_left(m, A.sig, "norm_a")
        lzb, nb = normalize_left(m, B.sig, "norm_b")

        div = self.divider(F + 1, dividend_width=2 * F + 3, quotient_width=F + 3, adder=self.adder)
        m.submodules.significand_divider = div
        m.d.comb += [div.dividend.eq(Cat(Const(0, F + 2), na)), div.divisor.eq(nb)]
        q = div.quotient[:F + 3]
        rem_nonzero = Signal(name="rem_nonzero")
        m.d.comb += rem_nonzero.eq(div.remainder != 0)
        high = Signal(name="q_high")
        m.d.comb += high.eq(q[F + 2])
        sig = Signal(F + 2, name="q_sig")
        sticky = Signal(name="sticky")
        m.d.comb += [sig.eq(Mux(high, q[1:], q[:F + 2])),
                     sticky.eq(rem_nonzero | (high & q[0]))]
        exp_n = Signal(signed(E + 3), name="exp_q")
        m.d.comb += exp_n.eq(A.exp_eff - lza - B.exp_eff + lzb + fmt.bias - 1 + high)
        rounded = round_pack(m, fmt, sign, exp_n, sig, sticky)

        nan = Signal(name="nan")
        m.d.comb += nan.eq(A.nan | B.nan | (A.zero & B.zero) | (A.inf & B.inf))
        select_special(m, fmt, self.result, rounded, nan=nan, inf=A.inf | B.zero,
                        inf_sign=sign, zero=A.zero | B.inf, zero_sign=sign)
        return m


class FPSqrt(FPUnit):
    """IEEE-754 square root, round to nearest even: ``result = sqrt(a)``.

    Ports: ``a``: In(w); ``result``: Out(w).

    The significand is normalized (subnormals), shifted left by one more when the unbiased
    exponent is odd, and placed as a ``(2F+4)``-bit radicand whose integer root, from one
    pluggable ``root`` unit (``Cls(2F+4, **root_options)``), has exactly ``F+2`` bits with
    the top one set; ``remainder != 0`` is the sticky bit. The exponent is halved (an
    arithmetic shift). The result is always a normal number, so the rounding has no
    underflow shifter and no overflow test. ``sqrt(-0) = -0``, ``sqrt(+inf) = +inf``, the
    root of any other negative number or of NaN is NaN.

    ``root_options`` are the root design's keyword parameters from the profile
    (``seed_bits``, ``multiplier``, ``adder`` for Newton-Raphson, ``adder`` for the digit
    recurrence).

    Area O(R(F) + w log w), delay O(T_root(F) + log w) with ``R``, ``T_root`` the root unit's
    area and delay (Muller et al., *Handbook of Floating-Point Arithmetic*, 2018, section 8.7).
    """

    def __init__(self, fmt, *, root="newton_raphson", root_options=None, src_loc_at=0):
        self.root = checks.design(root, "sqrt", "FP square root's root unit")
        if root_options is None:
            root_options = {}
        if not isinstance(root_options, dict):
            raise TypeError(f"FP square root's root options must be a dict, not "
                            f"{root_options!r}")
        self.root_options = dict(root_options)
        super().__init__(fmt, lambda w: {"a": In(w), "result": Out(w)}, src_loc_at)

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        E, F = fmt.exp_bits, fmt.frac_bits
        A = Operand(m, self.a, fmt, "a")
        lz, na = normalize_left(m, A.sig, "norm")
        # Unbiased exponent of the leading bit: exp_eff - lz - bias.
        e = Signal(signed(E + 2), name="exp_unbiased")
        m.d.comb += e.eq(A.exp_eff - lz - fmt.bias)
        odd = e[0]
        root = self.root(2 * F + 4, **self.root_options)
        m.submodules.significand_root = root
        m.d.comb += root.radicand.eq(Mux(odd, Cat(Const(0, F + 3), na),
                                         Cat(Const(0, F + 2), na)))
        sticky = Signal(name="sticky")
        m.d.comb += sticky.eq(root.remainder != 0)
        exp_r = Signal(signed(E + 2), name="exp_root")
        m.d.comb += exp_r.eq((e >> 1) + fmt.bias)
        rounded = round_pack(m, fmt, Const(0, 1), exp_r, root.root, sticky,
                              subnormal=False, overflow=False)

        nan = Signal(name="nan")
        m.d.comb += nan.eq(A.nan | (A.sign & ~A.zero))
        select_special(m, fmt, self.result, rounded, nan=nan, inf=A.inf, inf_sign=Const(0, 1),
                        zero=A.zero, zero_sign=A.sign)
        return m


class FPCmp(FPUnit):
    """IEEE-754 comparison: ``lt``, ``eq``, ``gt`` and ``unordered`` of ``a`` and ``b``.

    Ports: ``a``, ``b``: In(w); ``lt``, ``eq``, ``gt``, ``unordered``: Out(1).

    Exactly one output is 1. ``unordered`` when either operand is NaN; ``+0 == -0``. The
    magnitude fields (``w-1`` bits, ordered like the numbers they encode) go through one
    pluggable ``adder`` in subtract mode (``Cls(w-1, carry_in=False, subtract=True)``): the
    borrow says ``|a| < |b|`` and a zero difference ``|a| == |b|``; sign logic finishes.

    Area O(A(w) + w), delay O(T(w) + log w) with ``A``, ``T`` the adder's area and delay (a
    compare is a subtraction's sign, li2022 section II.B.1).
    """

    def __init__(self, fmt, *, adder="ripple_carry", src_loc_at=0):
        self.adder = checks.design(adder, "add", "FP comparator's adder")
        super().__init__(fmt, lambda w: {"a": In(w), "b": In(w), "lt": Out(1), "eq": Out(1),
                                         "gt": Out(1), "unordered": Out(1)}, src_loc_at)

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        A = Operand(m, self.a, fmt, "a")
        B = Operand(m, self.b, fmt, "b")
        mag_lt, mag_eq = _magnitude_compare(m, self.adder, self.a, self.b, fmt.width - 1)
        unordered = Signal(name="unord")
        both_zero = Signal(name="both_zero")
        m.d.comb += [unordered.eq(A.nan | B.nan), both_zero.eq(A.zero & B.zero)]
        equal = Signal(name="equal")
        less = Signal(name="less")
        m.d.comb += [
            equal.eq(both_zero | ((A.sign == B.sign) & mag_eq)),
            less.eq(Mux(A.sign, Mux(B.sign, ~mag_lt & ~mag_eq, 1), Mux(B.sign, 0, mag_lt))),
            self.unordered.eq(unordered),
            self.eq.eq(~unordered & equal),
            self.lt.eq(~unordered & ~equal & less),
            self.gt.eq(~unordered & ~equal & ~less),
        ]
        return m


def _magnitude_compare(m, adder_cls, a, b, width):
    """``|a| < |b|`` and ``|a| == |b|`` from one ``width``-bit pluggable subtractor."""
    sub = adder_cls(width, carry_in=False, subtract=True)
    m.submodules.magnitude_subtractor = sub
    m.d.comb += [sub.a.eq(a[:width]), sub.b.eq(b[:width]), sub.sub.eq(1)]
    lt = Signal(name="mag_lt")
    eq = Signal(name="mag_eq")
    # With sub = 1, carry-out 1 means no borrow: a >= b.
    m.d.comb += [lt.eq(~sub.cout), eq.eq(sub.s == 0)]
    return lt, eq


# --- factory ------------------------------------------------------------------------------

def unit_design(units, op, needed_by=None):
    if op not in units:
        raise ValueError(f"Units have no {op!r} unit; the FP {needed_by or op} needs one")
    spec = units[op]
    if not isinstance(spec, dict):
        raise TypeError(f"Unit {op!r} must be a mapping, not {spec!r}")
    if "design" not in spec:
        raise ValueError(f"Unit {op!r} has no design")
    options = {k: v for k, v in spec.items() if k != "design"}
    if op != "sqrt":
        allowed = {"mul": ("final_adder",), "div": ("adder",)}.get(op, ())
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            expected = ", ".join(allowed) if allowed else "no options"
            raise ValueError(f"Unknown option(s) {', '.join(map(repr, unknown))} for unit "
                             f"{op!r}; expected {expected}")
    return spec["design"], options


def build_fp_unit(op, fmt, units, datapath):
    """The floating-point unit executing basic operation ``op`` in format ``fmt``.

    ``op`` is one of ``add, sub, mul, div, sqrt, cmp``; ``fmt`` one of ``fp16, bf16, fp32,
    fp64``; ``units`` a resolved profile's ``units`` mapping (``{"mul": {"design":
    "booth_wallace", "final_adder": "ripple_carry"}, ...}``); ``datapath`` ``"ieee"``
    (`FPAdd`, `FPMul`, `FPDiv`, `FPSqrt`, `FPCmp`) or ``"minimal"``
    (:mod:`hwlib.fp_minimal`).

    add and sub are both `FPAdd` (or `MinimalFPAdd`), built with the adder of the ``add`` or
    the ``sub`` unit; cmp uses the ``cmp`` unit's adder. The minimal multiplier and divider
    take their exponent adder from the ``add`` unit. The sqrt unit's options other than
    ``design`` (``seed_bits``, ``multiplier``, ``adder``) go to the root design.
    """
    if not isinstance(op, str) or op not in FP_OPS:
        raise ValueError(f"Unknown FP operation {op!r}; expected one of {', '.join(FP_OPS)}")
    FPFormat(fmt)
    if not isinstance(datapath, str) or datapath not in DATAPATHS:
        raise ValueError(f"Unknown FP datapath {datapath!r}; expected one of "
                         f"{', '.join(DATAPATHS)}")
    if not isinstance(units, dict):
        raise TypeError(f"Units must be a mapping of operation to unit, not {units!r}")
    design, options = unit_design(units, op)
    if datapath == "ieee":
        if op in ("add", "sub"):
            return FPAdd(fmt, adder=design, src_loc_at=1)
        if op == "mul":
            return FPMul(fmt, multiplier=design, **options, src_loc_at=1)
        if op == "div":
            return FPDiv(fmt, divider=design, **options, src_loc_at=1)
        if op == "sqrt":
            return FPSqrt(fmt, root=design, root_options=options, src_loc_at=1)
        return FPCmp(fmt, adder=design, src_loc_at=1)

    from . import fp_minimal
    if op in ("add", "sub"):
        return fp_minimal.MinimalFPAdd(fmt, adder=design, src_loc_at=1)
    if op == "sqrt":
        return fp_minimal.MinimalFPSqrt(fmt, root=design, root_options=options,
                                         src_loc_at=1)
    if op == "cmp":
        return fp_minimal.MinimalFPCmp(fmt, adder=design, src_loc_at=1)
    exponent_adder, _ = unit_design(units, "add", op)
    if op == "mul":
        return fp_minimal.MinimalFPMul(fmt, multiplier=design, exponent_adder=exponent_adder,
                                       **options, src_loc_at=1)
    return fp_minimal.MinimalFPDiv(fmt, divider=design, exponent_adder=exponent_adder,
                                   **options, src_loc_at=1)
