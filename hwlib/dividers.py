"""Unsigned integer dividers: SRT radix-2, restoring and non-restoring, fully unrolled.

Every divider here is an Amaranth `wiring.Component` built as ``Cls(width, *,
dividend_width=None, quotient_width=None, adder="ripple_carry")`` with the ports

================  =========================  ================================================
port              width                      meaning
================  =========================  ================================================
``dividend``      In(dividend_width)         the number divided (unsigned)
``divisor``       In(width)                  the number it is divided by (unsigned)
``quotient``      Out(quotient_width)        ``dividend // divisor``
``remainder``     Out(width)                 ``dividend % divisor``
``div_by_zero``   Out(1)                     ``divisor == 0``
================  =========================  ================================================

``dividend_width`` defaults to ``width``; a floating-point datapath uses a wider dividend
(the significand shifted left by the quotient's extra bits) over a significand divisor.
``quotient_width`` defaults to ``dividend_width``, which is exact for all inputs. A smaller
``quotient_width`` ``k`` builds only ``k`` stages, starting from ``dividend >> k`` as the
partial remainder; it is a promise that ``dividend < divisor * 2**k`` (as in a floating-point
divider, whose significand quotient has a known number of bits), and the outputs for
dividends that break it are unspecified (division by zero excepted).

**Division by zero** gives ``quotient = 2**quotient_width - 1`` (all ones) and ``remainder =
dividend mod 2**width`` (the dividend itself whenever it fits), the convention of the RISC-V
M extension. The restoring array produces exactly this by itself; the other two designs
select it with ``div_by_zero``. `reference_divide` is the plain-Python model of all three.

The dividers are combinational and unrolled, one stage per quotient bit, so that their
transistor count is the count of every step of the iterative unit (see the TOs of a stepping
circuit in the design notes). Every carry-propagate adder inside is the pluggable ``adder``:
a design name of ``hwlib.registry`` (``designs_for("add")``) or an adder class with the
interface ``Cls(width, *, carry_in, subtract)`` and ports ``a``, ``b``, ``sub``, ``s``,
``cout``.

Growth with the quotient width ``n`` and divisor width ``w`` (``A(w)``, ``T(w)``: area and
delay of one ``w``-bit pluggable adder):

==============  ====================================  ===============================  =====
design          area                                  delay                            notes
==============  ====================================  ===============================  =====
restoring       n A(w+1) + n w muxes                  n T(w+1)                         [1]
non_restoring   n A(w+1) + A(w)                       n T(w+1) + T(w)                  [2]
srt_radix2      n (w+3) counters + O(n**2) muxes      O(n) + T(w+1) + T(w) + O(log w)  [3]
                + A(w+1) + A(w) + O((n+w) log w)
==============  ====================================  ===============================  =====

[1] the pencil-and-paper method as a subtractor array (e.g. Hwang, *Computer Arithmetic*,
1979). [2] Non-performing/non-restoring division, after the ILLIAC and Robertson's analysis
of digit sets (Robertson 1958). [3] SRT division, found independently by Sweeney (IBM),
Robertson (1958) and Tocher (1958); carry-save remainder, quotient-digit selection from a
4-bit estimate and on-the-fly quotient conversion as in Ercegovac and Lang, *Division and
Square Root* (1994) and *Digital Arithmetic* (2004), ch. 5.
"""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import checks
from .cells import Counter32, HalfAdder
from .common import add_unit, mux_row, normalize, shift_left, shift_right

__all__ = [
    "SRTRadix2Divider",
    "RestoringDivider",
    "NonRestoringDivider",
    "DIVIDER_CLASSES",
    "reference_divide",
]


def reference_divide(dividend, divisor, dividend_width, width, quotient_width=None):
    """Plain-Python model of every divider here: ``(quotient, remainder, div_by_zero)``.

    Operands are unsigned and must fit their widths, and the quotient must fit
    ``quotient_width`` bits (default ``dividend_width``). Division by zero gives an all-ones
    quotient and the dividend modulo ``2**width`` as remainder.
    """
    if quotient_width is None:
        quotient_width = dividend_width
    if not 0 <= dividend < 1 << dividend_width:
        raise ValueError(f"Dividend must be an integer in [0, {(1 << dividend_width) - 1}], "
                         f"not {dividend!r}")
    if not 0 <= divisor < 1 << width:
        raise ValueError(f"Divisor must be an integer in [0, {(1 << width) - 1}], "
                         f"not {divisor!r}")
    if divisor == 0:
        return (1 << quotient_width) - 1, dividend & ((1 << width) - 1), 1
    if dividend >> quotient_width >= divisor:
        raise ValueError(f"Quotient of {dividend} / {divisor} does not fit in {quotient_width} "
                         f"bits")
    return dividend // divisor, dividend % divisor, 0


class _Divider(wiring.Component):
    """Shared constructor: parameter checks, ports and the adder design."""

    #: design name in hwlib.registry, set by each subclass
    design_name = None

    def __init__(self, width, *, dividend_width=None, quotient_width=None,
                 adder="ripple_carry"):
        self.width = checks.positive_int(width, "Divider width")
        if dividend_width is None:
            dividend_width = width
        self.dividend_width = checks.positive_int(dividend_width, "Divider dividend width")
        if quotient_width is None:
            quotient_width = self.dividend_width
        self.quotient_width = checks.int_in(quotient_width, 1, self.dividend_width,
                                            "Divider quotient width")
        self.adder = checks.design(adder, "add", "Divider adder")
        super().__init__({
            "dividend": In(self.dividend_width),
            "divisor": In(self.width),
            "quotient": Out(self.quotient_width),
            "remainder": Out(self.width),
            "div_by_zero": Out(1),
        })

    def _outputs(self, m, quotient, remainder, *, override_zero):
        """Drive the output ports; with ``override_zero`` select the division-by-zero values."""
        n, w = self.quotient_width, self.width
        m.d.comb += self.div_by_zero.eq(self.divisor == 0)
        if override_zero:
            m.d.comb += [
                self.quotient.eq(Mux(self.div_by_zero, Const((1 << n) - 1, n), quotient)),
                self.remainder.eq(Mux(self.div_by_zero, self.dividend[:w], remainder)),
            ]
        else:
            m.d.comb += [self.quotient.eq(quotient), self.remainder.eq(remainder)]


class RestoringDivider(_Divider):
    """Restoring array divider: one ``(w+1)``-bit subtractor row per quotient bit.

    Row ``j`` shifts the partial remainder left, brings in the next dividend bit and subtracts
    the divisor; no borrow means quotient bit 1 and the difference becomes the new partial
    remainder, a borrow means quotient bit 0 and a row of `Mux2` cells restores the shifted
    remainder. The partial remainder stays below the divisor, so ``w`` bits carry it between
    rows. With a zero divisor every row succeeds, which yields the all-ones quotient and the
    dividend's low bits as remainder without any extra logic.

    Area O(n w): ``n`` pluggable ``(w+1)``-bit subtractors and ``n w`` multiplexers. Delay
    O(n T(w+1)): every row waits for the borrow of the row above (O(n w) with ripple-carry
    rows). The pencil-and-paper algorithm as an array (e.g. Hwang, *Computer Arithmetic:
    Principles, Architecture and Design*, 1979).
    """

    design_name = "restoring"

    def elaborate(self, platform):
        m = Module()
        n, w = self.quotient_width, self.width
        # dividend >> n is below the divisor (the quotient fits n bits), so w bits hold it.
        partial = Signal(w, name="p_init")
        m.d.comb += partial.eq(self.dividend[n:])
        qbits = []
        for j in range(n):
            shifted = Signal(w + 1, name=f"t{j}")
            m.d.comb += shifted.eq(Cat(self.dividend[n - 1 - j], partial))
            diff, no_borrow = add_unit(m, self.adder, f"sub{j}", shifted, self.divisor, sub=1)
            qbits.append(no_borrow)
            partial = mux_row(m, f"p{j}", no_borrow, shifted[:w], diff[:w])
        self._outputs(m, Cat(*reversed(qbits)), partial, override_zero=False)
        return m


class NonRestoringDivider(_Divider):
    """Non-restoring array divider: one controlled add/subtract row per quotient bit.

    The partial remainder is kept in two's complement, ``w+1`` bits, in ``[-d, d)``; a row
    subtracts the divisor when the remainder above it is non-negative and adds it when negative,
    so no restoring multiplexers are needed. The remainder after row ``j`` equals the restoring
    trial difference, so quotient bit ``j`` is simply its sign inverted (no digit conversion).
    One final ``w``-bit adder adds the divisor back to a negative last remainder. A zero divisor
    is caught by ``div_by_zero`` multiplexers.

    Area O(n w): ``n`` pluggable ``(w+1)``-bit adders in add/subtract mode, one ``w``-bit adder
    for the correction. Delay O(n T(w+1)) like the restoring array, without the multiplexer in
    each row. After Robertson's analysis of the digit set {-1, 1} (Robertson 1958) and the
    non-performing division of the early stored-program machines.
    """

    design_name = "non_restoring"

    def elaborate(self, platform):
        m = Module()
        n, w = self.quotient_width, self.width
        rem = Signal(w + 1, name="r_init")
        m.d.comb += rem.eq(self.dividend[n:][:w])
        qbits = []
        for j in range(n):
            shifted = Signal(w + 1, name=f"t{j}")
            # 2r + bit is taken modulo 2**(w+1): the row's true result lies in [-d, d), so
            # it is exact in w+1 bits even where 2r + bit itself would need w+2.
            m.d.comb += shifted.eq(Cat(self.dividend[n - 1 - j], rem[:w]))
            subtract = 1 if j == 0 else ~rem[w]
            result, _ = add_unit(m, self.adder, f"row{j}", shifted, self.divisor, sub=subtract)
            qbits.append(~result[w])
            rem = result
        fixed, _ = add_unit(m, self.adder, "fix", rem[:w], self.divisor)
        remainder = Signal(w, name="rem_fixed")
        m.d.comb += remainder.eq(Mux(rem[w], fixed, rem[:w]))
        quotient = Signal(n, name="q")
        m.d.comb += quotient.eq(Cat(*reversed(qbits)))
        self._outputs(m, quotient, remainder, override_zero=True)
        return m


class SRTRadix2Divider(_Divider):
    """SRT radix-2 divider: digits {-1, 0, 1}, carry-save remainder, on-the-fly conversion.

    1. *Normalization.* A leading-zero count ``s`` of the divisor and a logarithmic shifter
       give ``D' = divisor << s`` with its top bit set, i.e. ``d = D'/2**w`` in ``[1/2, 1)``;
       the dividend is shifted by the same ``s`` (``X' = dividend << s``, ``dividend_width +
       w - 1`` bits). Then ``X' // D'`` equals the quotient, and ``X' % D' = remainder << s``.
    2. *Recurrence.* ``r[j+1] = 2 r[j] + x[j] - q[j+1] D'`` with the partial remainder kept
       in carry-save form (a sum and a carry word of ``w+3`` bits, two's complement modulo
       ``2**(w+3)``), so each stage is one row of `Counter32` cells with no carry
       propagation. ``q = 1`` adds ``~D'`` and puts the ``+1`` into the free low bit of the
       shifted carry word.
    3. *Digit selection* looks only at the top four bits (weights -4, 2, 1, 1/2 in units of
       ``2**w``) of the two words, added in a 4-bit adder: estimate ``y >= 0`` gives
       ``q = 1``, ``y = -1/2`` gives ``q = 0``, ``y <= -1`` gives ``q = -1``. The estimate
       is at most one unit below the true ``2 r + x``, which the redundancy of the digit set
       covers for every ``d`` in ``[1/2, 1)`` (Ercegovac and Lang, *Digital Arithmetic*
       2004, ch. 5), so the remainder stays in ``[-D', D')``.
    4. *On-the-fly conversion* keeps ``Q`` and ``QM = Q - 1`` as the digits arrive
       (Ercegovac and Lang, "On-the-fly conversion of redundant into conventional
       representations", 1987): each stage selects each of the two from ``Q`` or ``QM`` and
       appends one bit, so no carry-propagate subtraction of the signed digits is needed.
    5. *Final correction.* One ``(w+1)``-bit adder assimilates the carry-save remainder; if it
       is negative the quotient is ``QM`` and a ``w``-bit adder adds ``D'`` back. The
       remainder is shifted right by ``s``. A zero divisor is caught by ``div_by_zero``
       multiplexers.

    Area O(n w): ``n (w+3)`` carry-save cells, O(n**2) conversion multiplexers, two pluggable
    adders and O((n + w) log w) shifter multiplexers. Delay O(n) for the recurrence (each stage
    is a 4-bit estimate and one carry-save cell, independent of ``w``) plus the final adders
    and O(log w) normalization. SRT division after Sweeney, Robertson (1958) and Tocher (1958);
    the paper's divider (li2022, section II.B.1, citing Kuninobu et al. 1987).
    """

    design_name = "srt_radix2"

    def elaborate(self, platform):
        m = Module()
        n, w = self.quotient_width, self.width
        cs = w + 3

        shift, dnorm = normalize(m, self.divisor, "d")
        xs = shift_left(m, self.dividend, shift, self.dividend_width + w - 1, "x")
        d_ext = Signal(cs, name="d_ext")
        m.d.comb += d_ext.eq(dnorm)

        # X' >> n is below D' (the quotient fits n bits), so w bits of it hold the value.
        s_word = Signal(cs, name="s0")
        m.d.comb += s_word.eq(xs[n:][:w])
        c_word = Const(0, cs)
        q_word = q_minus = None
        for j in range(n):
            # 2r + next bit of X', in carry-save form.
            s_sh = Signal(cs, name=f"s{j}_sh")
            c_sh = Signal(cs, name=f"c{j}_sh")
            m.d.comb += [s_sh.eq(Cat(xs[n - 1 - j], s_word[:cs - 1])),
                         c_sh.eq(Cat(Const(0, 1), c_word[:cs - 1]))]

            est = Signal(4, name=f"est{j}")
            m.d.comb += est.eq(s_sh[w - 1:] + c_sh[w - 1:])
            q_pos = Signal(name=f"qp{j}")
            q_zero = Signal(name=f"qz{j}")
            q_neg = Signal(name=f"qn{j}")
            m.d.comb += [q_pos.eq(~est[3]),
                         q_zero.eq(est == 0b1111),
                         q_neg.eq(est[3] & (est != 0b1111))]

            # -q D': ~D' (plus one below) for q = 1, D' for q = -1, zero for q = 0.
            addend = Signal(cs, name=f"y{j}")
            m.d.comb += addend.eq(Mux(q_pos, ~d_ext, Mux(q_neg, d_ext, 0)))
            sums, carries = [], []
            for i in range(cs):
                if i == 0:
                    # The low bit of the shifted carry word is always zero.
                    cell = HalfAdder()
                else:
                    cell = Counter32()
                    m.d.comb += cell.cin.eq(c_sh[i])
                m.submodules[f"csa{j}_{i}"] = cell
                m.d.comb += [cell.a.eq(s_sh[i]), cell.b.eq(addend[i])]
                sums.append(cell.s)
                carries.append(cell.cout)
            s_word = Signal(cs, name=f"s{j + 1}")
            c_word = Signal(cs, name=f"c{j + 1}")
            m.d.comb += [s_word.eq(Cat(*sums)), c_word.eq(Cat(q_pos, *carries[:cs - 1]))]

            # On-the-fly conversion: Q' = 2Q + q, QM' = 2Q + q - 1, from Q or QM.
            q_next = Signal(j + 1, name=f"q{j + 1}")
            qm_next = Signal(j + 1, name=f"qm{j + 1}")
            if j == 0:
                m.d.comb += [q_next.eq(~q_zero), qm_next.eq(q_zero)]
            else:
                m.d.comb += [q_next.eq(Cat(~q_zero, Mux(q_neg, q_minus, q_word))),
                             qm_next.eq(Cat(q_zero, Mux(q_pos, q_word, q_minus)))]
            q_word, q_minus = q_next, qm_next

        # The final remainder lies in [-D', D'): w+1 bits hold it exactly.
        rem, _ = add_unit(m, self.adder, "assimilate", s_word[:w + 1], c_word[:w + 1])
        negative = rem[w]
        fixed, _ = add_unit(m, self.adder, "fix", rem[:w], dnorm)
        rem_norm = Signal(w, name="rem_norm")
        m.d.comb += rem_norm.eq(Mux(negative, fixed, rem[:w]))
        remainder = shift_right(m, rem_norm, shift, "r")
        quotient = Signal(n, name="quot")
        m.d.comb += quotient.eq(Mux(negative, q_minus, q_word))
        self._outputs(m, quotient, remainder, override_zero=True)
        return m


DIVIDER_CLASSES = (SRTRadix2Divider, RestoringDivider, NonRestoringDivider)
