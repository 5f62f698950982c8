"""Floating-point division and square root on one shared digit recurrence (radix-2 SRT).

Real FPUs do not build a divider and a separate square-root unit: both are digit recurrences
of the same shape, so one datapath computes either (Ercegovac and Lang, *Division and Square
Root*, 1994, ch. 6; *Digital Arithmetic*, 2004, section 6.6, "combined division and square
root"). :class:`FPDivSqrt` is that unit for one format: ports ``a``, ``b``, ``sqrt`` (0:
``result = a / b``; 1: ``result = sqrt(a)``, ``b`` ignored) and ``result``.

The shared recurrence
---------------------
Digits ``s`` in {-1, 0, 1}, residual ``w`` in carry-save form, ``n = F + 3`` iterations
(``F`` fraction bits of the format)::

    division      w[j+1] = 2 w[j] - s d                      w[0] = x / 2,   x, d in [1/2, 1)
    square root   w[j+1] = 2 w[j] - s (2 S[j] + s 2**-(j+1))  w[0] = x - 1,   x in [1/4, 1)
                                                              S[0] = 1

The square root's subtracted term plays the divisor's part, but it depends on the digit and on
the partial root ``S[j]``: for ``s = 1`` it is ``2 S[j] + 2**-(j+1)`` (the bits of ``S[j]``
followed by ``01``), for ``s = -1`` it is ``-(2 SM[j] + 3 * 2**-(j+1))`` with ``SM[j] = S[j] -
2**-j`` (the bits of ``SM[j]`` followed by ``11``). ``S`` and ``SM`` are exactly the two
registers of the on-the-fly conversion the division keeps for its quotient anyway
(Ercegovac and Lang, "On-the-fly conversion of redundant into conventional representations",
IEEE TC 1987), so the square root adds only a multiplexer per residual bit: each iteration is
one row of ``(F+7)`` carry-save cells whose addend is ``d`` or the root term, selected by
``sqrt``.

Digit selection is shared too: a 5-bit estimate ``y`` of ``2 w[j]`` (the top bits of both
words, weights -8 to 1/2, added in a 5-bit adder) gives ``s = 1`` for ``y >= 0``, ``s = 0`` for
``y = -1/2`` and ``s = -1`` for ``y <= -1``. The estimate is below ``2 w`` by less than 1.
Division keeps ``w`` in ``[-d, d)``, so this is the SRT divider of :mod:`hwlib.dividers` with
one more integer bit. The square root keeps ``w[j]`` in ``[-(2 S[j] - 2**-j), 2 S[j] +
2**-j)`` (the root lies within ``2**-j`` of ``S[j]``); ``s = 1`` is valid for ``2 w >= 0``,
``s = -1`` for ``2 w < 0`` and ``s = 0`` for ``2 w`` in ``[-(2 S[j] - 2**-j), 2 S[j] +
2**-j)``, which contains the ``[-1/2, 1/2)`` the estimate ``-1/2`` stands for whenever
``S[j] >= 1/4 + 2**-(j+1)``: true from ``j = 3`` on (the root is at least 1/2), and checked
for ``j < 3`` (``S[0] = 1``, ``S[1]`` in {1/2, 1}, ``S[2] = 1/4`` would need ``x = 1/4`` and
two digits -1, which the selection does not give). Since ``|2 w| < 5`` the residual needs four
integer bits, one more than the divider's.

After ``n`` digits one ``(F+7)``-bit adder of the profile's ``adder`` design assimilates the
residual: when it is negative the result is ``SM`` (``Q - 1`` ulp) and a second adder adds
back ``d`` (division) or ``2 SM + 2**-n`` (root) to tell an exact result (sticky bit 0). The
``F+3``-bit result is exactly :class:`hwlib.fp.FPDiv`'s quotient (``floor(2**(F+2) a_sig /
b_sig)``) or, one bit longer, :class:`hwlib.fp.FPSqrt`'s root, and goes through the same
normalization, exponent logic and round-to-nearest-even of :mod:`hwlib.fp`; special values as
those units (``x / 0`` infinity, ``0 / 0``, ``inf / inf`` and the root of a negative number
NaN, ``sqrt(-0) = -0``, every NaN the canonical quiet NaN). fp8_e4m3 (no infinities,
saturating) runs the unit on :mod:`hwlib.units.fp8`'s inner format between its re-encoders.

Cost and use: a profile with ``units: {divsqrt: {design: srt_radix2, adder: ...}}`` prices
its ``div`` and its ``sqrt`` by this one unit (:func:`hwlib.cost.unit_spec`): the same circuit,
synthesized once; **each op is charged the unit's full transistor count**, as a TO counts the
transistors of the circuit that completes the operation and a shared unit is the same
transistors whichever op it runs. Area O(n F) (``n`` rows of ``F+7`` cells, O(n**2)
conversion multiplexers), delay O(n) for the recurrence (each row a 5-bit estimate and one
carry-save cell) plus two adders and O(log F) normalization.

:func:`reference_divsqrt` is the exact plain-Python model (rationals; the root rounded from an
integer square root with a sticky bit).
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
from ..cells import Counter32, HalfAdder
from ..common import add_unit
from .fma import decode_value, round_ieee
from .fp8 import E4M3, E4M3_INNER, e4m3_decode, e4m3_encode, reference_fp8

__all__ = ["FPDivSqrt", "DIVSQRT_DESIGNS", "divsqrt_unit", "build_divsqrt_unit",
           "reference_divsqrt", "exact_sqrt_pattern"]

#: Designs of the shared unit (``units.divsqrt.design``).
DIVSQRT_DESIGNS = ("srt_radix2",)


# --- reference ------------------------------------------------------------------------------

def exact_sqrt_pattern(value, fmt):
    """The IEEE ``fmt`` pattern of ``sqrt(value)`` rounded to nearest even, for a positive
    Fraction ``value`` whose denominator is a power of two: ``r = isqrt(value * 4**p)`` for a
    ``p`` that gives ``r`` at least ``F + 4`` bits, and ``2 r + 1`` over ``2**(p+1)`` (odd: a
    sticky bit) when the root is inexact; rounding that to ``F + 1`` bits is the rounding of
    the exact root (it is the root rounded to odd two bits below)."""
    F = FORMAT_BITS[fmt][1]
    k = value.denominator.bit_length() - 1
    p = (k + 1) // 2 + F + 4
    scaled = value * 4 ** p
    assert scaled.denominator == 1
    radicand = scaled.numerator
    r = math.isqrt(radicand)
    odd = 0 if r * r == radicand else 1
    return round_ieee(Fraction(2 * r + odd, 2 ** (p + 1)), fmt)


def reference_divsqrt(op, a, b, fmt):
    """Plain-Python model of :class:`FPDivSqrt`: the ``fmt`` bit pattern of ``a / b`` (``op``
    ``"div"``) or ``sqrt(a)`` (``"sqrt"``, ``b`` ignored), rounded once to nearest even, with
    the IEEE specials and canonical NaNs of :mod:`hwlib.fp` (fp8_e4m3: of
    :mod:`hwlib.units.fp8`, saturating)."""
    if fmt == E4M3:
        return reference_fp8(op, a, b, fmt)
    x = decode_value(a, fmt)
    E, F = FORMAT_BITS[fmt]
    sa = a >> (E + F) & 1
    if op == "sqrt":
        if isinstance(x, float):                  # NaN or an infinity
            return round_ieee(x if x > 0 else math.nan, fmt)
        if x == 0:
            return round_ieee(Fraction(0), fmt, negative=bool(sa))
        if x < 0:
            return round_ieee(math.nan, fmt)
        return exact_sqrt_pattern(x, fmt)
    if op != "div":
        raise ValueError(f"Unknown operation {op!r}; expected div or sqrt")
    y = decode_value(b, fmt)
    sign = sa ^ (b >> (E + F) & 1)
    if any(isinstance(v, float) and math.isnan(v) for v in (x, y)):
        return round_ieee(math.nan, fmt)
    if isinstance(x, float):
        return round_ieee(math.nan if isinstance(y, float) else (-math.inf if sign else math.inf), fmt)
    if isinstance(y, float):
        return round_ieee(Fraction(0), fmt, negative=bool(sign))
    if y == 0:
        return round_ieee(math.nan if x == 0 else (-math.inf if sign else math.inf), fmt)
    return round_ieee(x / y, fmt, negative=bool(sign))


# --- circuit --------------------------------------------------------------------------------

class FPDivSqrt(wiring.Component):
    """``result = a / b`` (``sqrt = 0``) or ``sqrt(a)`` (``sqrt = 1``) on one radix-2 SRT
    recurrence (module doc).

    ``fmt``: an IEEE format name of ``hardware_profiles.FORMAT_BITS`` (for fp8_e4m3 use
    :func:`build_divsqrt_unit`, which wraps the inner format), or a format object with the
    attributes of :class:`hwlib.fp.FPFormat`. ``adder``: the design (registry name or class,
    ``Cls(width, carry_in=False, subtract=False)``) of the two final ``(F+7)``-bit adders.
    """

    def __init__(self, fmt, *, adder="ripple_carry", src_loc_at=0):
        self.format = _fp.FPFormat(fmt) if isinstance(fmt, str) else fmt
        self.adder = checks.design(adder, "add", "FP divide/square root's adder")
        w = self.format.width
        super().__init__({"a": In(w), "b": In(w), "sqrt": In(1), "result": Out(w)},
                         src_loc_at=src_loc_at + 1)

    def elaborate(self, platform):
        m = Module()
        fmt = self.format
        E, F, bias = fmt.exp_bits, fmt.frac_bits, fmt.bias
        A = _fp.Operand(m, self.a, fmt, "a")
        B = _fp.Operand(m, self.b, fmt, "b")
        root = self.sqrt
        lza, na = _fp.normalize_left(m, A.sig, "norm_a")
        lzb, nb = _fp.normalize_left(m, B.sig, "norm_b")

        L = F + 3              # fraction bits of the residual; also the number of digits
        n = L
        cw = L + 4             # residual words: weights -8, 4, 2, 1 and L fraction bits

        # Unbiased exponent of a's leading bit; the root halves it, an odd one shifts x left.
        e = Signal(signed(E + 3), name="exp_a")
        m.d.comb += e.eq(A.exp_eff - lza - bias)
        x_root = Signal(L, name="x_root")        # x = a_sig / 4 or a_sig / 2 in [1/4, 1)
        m.d.comb += x_root.eq(Mux(e[0], Cat(Const(0, 2), na), Cat(Const(0, 1), na)))
        w0 = Signal(cw, name="w0")               # root: x - 1; division: x / 2 (a_sig / 4)
        m.d.comb += w0.eq(Mux(root, Cat(x_root, Const(0b1111, 4)), Cat(Const(0, 1), na)))
        d = Signal(cw, name="d")                 # the divisor b_sig / 2 in [1/2, 1)
        m.d.comb += d.eq(Cat(Const(0, 2), nb))

        s_word, c_word = w0, None
        q_reg, qm_reg = Signal(1, name="q0"), Signal(1, name="qm0")
        m.d.comb += [q_reg.eq(root), qm_reg.eq(~root)]   # S[0] = 1 (root), Q[0] = 0 (division)
        for j in range(n):
            s_sh = Signal(cw, name=f"s{j}_sh")
            m.d.comb += s_sh.eq(Cat(Const(0, 1), s_word[:cw - 1]))
            if c_word is None:
                c_sh = Const(0, cw)
                est_in = s_sh[L - 1:]
            else:
                c_sh = Signal(cw, name=f"c{j}_sh")
                m.d.comb += c_sh.eq(Cat(Const(0, 1), c_word[:cw - 1]))
                est_in = s_sh[L - 1:] + c_sh[L - 1:]
            est = Signal(5, name=f"est{j}")
            m.d.comb += est.eq(est_in)
            q_pos, q_zero, q_neg = (Signal(name=f"{k}{j}") for k in ("qp", "qz", "qn"))
            m.d.comb += [q_pos.eq(~est[4]), q_zero.eq(est == 0b11111),
                         q_neg.eq(est[4] & (est != 0b11111))]

            # The root's term: S followed by 01 (s = 1) or SM followed by 11 (s = -1), the
            # last bit at 2**-(j+1).
            low = L - j - 1
            pad = [Const(0, low)] if low else []
            term_root = Signal(L + 2, name=f"troot{j}")
            m.d.comb += term_root.eq(Mux(q_pos, Cat(*pad, Const(0b01, 2), q_reg),
                                         Cat(*pad, Const(0b11, 2), qm_reg)))
            term = Signal(cw, name=f"t{j}")
            m.d.comb += term.eq(Mux(root, term_root, d))
            addend = Signal(cw, name=f"y{j}")      # -s term: ~term (+1 below), term or 0
            m.d.comb += addend.eq(Mux(q_pos, ~term, Mux(q_neg, term, 0)))
            sums, carries = [], []
            for i in range(cw):
                if i == 0 or c_word is None:
                    cell = HalfAdder()             # no carry word yet, or its free low bit
                else:
                    cell = Counter32()
                    m.d.comb += cell.cin.eq(c_sh[i])
                m.submodules[f"csa{j}_{i}"] = cell
                m.d.comb += [cell.a.eq(s_sh[i]), cell.b.eq(addend[i])]
                sums.append(cell.s)
                carries.append(cell.cout)
            s_word = Signal(cw, name=f"s{j + 1}")
            c_word = Signal(cw, name=f"c{j + 1}")
            m.d.comb += [s_word.eq(Cat(*sums)), c_word.eq(Cat(q_pos, *carries[:cw - 1]))]

            # On-the-fly conversion: Q' = 2Q + s, QM' = 2Q + s - 1, each from Q or QM.
            q_next = Signal(j + 2, name=f"q{j + 1}")
            qm_next = Signal(j + 2, name=f"qm{j + 1}")
            m.d.comb += [q_next.eq(Cat(~q_zero, Mux(q_neg, qm_reg, q_reg))),
                         qm_next.eq(Cat(q_zero, Mux(q_pos, q_reg, qm_reg)))]
            q_reg, qm_reg = q_next, qm_next

        # Final residual: its sign picks Q or QM; adding back d or 2 SM + 2**-n after a
        # negative one tells an exact result.
        rem, _ = add_unit(m, self.adder, "assimilate", s_word, c_word)
        negative = rem[cw - 1]
        back = Signal(cw, name="add_back")
        m.d.comb += back.eq(Mux(root, Cat(Const(1, 1), qm_reg), d))
        fixed, _ = add_unit(m, self.adder, "add_back_adder", rem, back)
        inexact = Signal(name="inexact")
        m.d.comb += inexact.eq(Mux(negative, fixed[:cw] != 0, rem[:cw] != 0))
        q = Signal(n, name="quot")
        m.d.comb += q.eq(Mux(negative, qm_reg[:n], q_reg[:n]))

        # As hwlib.fp.FPDiv from here (the root's result always has its top bit set).
        high = Signal(name="q_high")
        sig = Signal(F + 2, name="q_sig")
        sticky = Signal(name="sticky")
        m.d.comb += [high.eq(q[F + 2]), sig.eq(Mux(high, q[1:], q[:F + 2])),
                     sticky.eq(inexact | (high & q[0]))]
        exp_div = Signal(signed(E + 3), name="exp_div")
        exp_root = Signal(signed(E + 3), name="exp_root")
        exp_n = Signal(signed(E + 3), name="exp_q")
        sign = Signal(name="sign")
        m.d.comb += [exp_div.eq(A.exp_eff - lza - B.exp_eff + lzb + bias - 1 + high),
                     exp_root.eq((e >> 1) + bias),
                     exp_n.eq(Mux(root, exp_root, exp_div)),
                     sign.eq(Mux(root, A.sign, A.sign ^ B.sign))]
        rounded = _fp.round_pack(m, fmt, sign, exp_n, sig, sticky)

        nan, inf, zero = Signal(name="nan"), Signal(name="inf"), Signal(name="zero")
        m.d.comb += [
            nan.eq(A.nan | Mux(root, A.sign & ~A.zero,
                               B.nan | (A.zero & B.zero) | (A.inf & B.inf))),
            inf.eq(A.inf | (~root & B.zero)),
            zero.eq(A.zero | (~root & B.inf)),
        ]
        _fp.select_special(m, fmt, self.result, rounded, nan=nan, inf=inf, inf_sign=sign,
                            zero=zero, zero_sign=sign)
        return m


class _E4M3DivSqrt(wiring.Component):
    """:class:`FPDivSqrt` on e4m3's inner format between the e4m3 re-encoders
    (:mod:`hwlib.units.fp8`)."""

    def __init__(self, *, adder="ripple_carry", src_loc_at=0):
        self.adder = adder
        super().__init__({"a": In(8), "b": In(8), "sqrt": In(1), "result": Out(8)},
                         src_loc_at=src_loc_at + 1)

    def elaborate(self, platform):
        m = Module()
        inner = FPDivSqrt(E4M3_INNER, adder=self.adder)
        m.submodules.inner = inner
        m.d.comb += [inner.a.eq(e4m3_decode(m, self.a, "a")), inner.b.eq(e4m3_decode(m, self.b, "b")),
                     inner.sqrt.eq(self.sqrt), self.result.eq(e4m3_encode(m, inner.result, "out"))]
        return m


def _unit_options(units):
    unit = units.get("divsqrt")
    if not isinstance(unit, dict) or "design" not in unit:
        raise ValueError("The profile has no 'divsqrt' unit")
    if unit["design"] not in DIVSQRT_DESIGNS:
        raise ValueError(f"Unknown divide/square-root design {unit['design']!r}; expected one of "
                         f"{', '.join(DIVSQRT_DESIGNS)}")
    unknown = sorted(set(unit) - {"design", "adder"})
    if unknown:
        raise ValueError(f"Unknown option(s) {', '.join(map(repr, unknown))} for unit 'divsqrt'; "
                         f"expected adder")
    return unit["design"], unit.get("adder", "ripple_carry")


def build_divsqrt_unit(fmt, units):
    """The shared divide/square-root unit of a profile's ``units`` (``units.divsqrt``:
    ``design`` and the ``adder`` of its two final adders, default ripple_carry) in ``fmt``."""
    _design, adder = _unit_options(units)
    if fmt == E4M3:
        return _E4M3DivSqrt(adder=adder, src_loc_at=1)
    return FPDivSqrt(fmt, adder=adder, src_loc_at=1)


def divsqrt_unit(fmt, units, datapath="ieee"):
    """A :class:`hwlib.cost.CircuitSpec` of the profile's shared divide/square-root unit in
    ``fmt`` (``datapath`` must be ``ieee``), keyed by ``units.divsqrt`` and
    :func:`hwlib.units.units_digest`: the same spec, hence one synthesis, for the ``div`` and
    the ``sqrt`` row of a cost table."""
    from .. import CircuitError
    from .._specs import CircuitSpec
    from . import units_digest
    if datapath != "ieee":
        raise CircuitError(f"The shared divide/square-root unit is an ieee datapath unit, not {datapath!r}")
    if fmt not in FORMAT_BITS:
        raise CircuitError(f"Unknown FP format {fmt!r}; expected one of {', '.join(FORMAT_BITS)}")
    try:
        design, adder = _unit_options(units)
    except ValueError as exc:
        raise CircuitError(str(exc)) from None
    params = {"circuit": "fp_divsqrt", "kind": "divsqrt", "format": fmt, "datapath": datapath,
              "units": {"divsqrt": {"design": design, "adder": adder}}, "sources": units_digest()}
    return CircuitSpec(label=f"{fmt} div+sqrt (shared {design}, {datapath})",
                       design=f"divsqrt_{design}", params=params,
                       build=functools.partial(build_divsqrt_unit, fmt, units))
