"""Unsigned integer square roots: Newton-Raphson and digit recurrence, fully unrolled.

Every root unit here is an Amaranth `wiring.Component` built as ``Cls(width, *, ...)`` with
the ports (``h = ceil(width / 2)``)

==============  ==========  ==========================================
port            width       meaning
==============  ==========  ==========================================
``radicand``    In(width)   ``x``, unsigned
``root``        Out(h)      ``floor(sqrt(x))``
``remainder``   Out(h + 1)  ``x - root**2`` (at most ``2 root``)
==============  ==========  ==========================================

`reference_isqrt` is the plain-Python model of both. A floating-point square root takes the
root of its significand (shifted so that the exponent is even) with one of these.

Growth with the radicand width ``n`` (``M(k)``: area of one ``k x k`` pluggable multiplier,
``A(k)``, ``T(k)``: area and delay of one ``k``-bit pluggable adder; ``i`` iterations):

================  =============================================  ===============================
design            area                                           delay
================  =============================================  ===============================
newton_raphson    5 M(n/2) + 3 M(n/4) + 3 M(n/8) + ...           i (3 T_mul + T(n/2)) + 2 T_mul
                  (precision doubling) + seed ROM of             + O(log n) + 2 T(n)
                  2**seed_bits words + O(n log n)
                  normalization + 5 adders
digit_recurrence  sum of A(j + 3) for j < n/2: O(n**2)           n/2 T(n/2): O(n**2) with
                                                                 ripple-carry rows
================  =============================================  ===============================

The Newton-Raphson unit is the paper's root (li2022, section II.B.1: "Root operation is always
simulated with the Newton-Raphson method", citing Cornea-Hasegan, Golliver and Markstein 1999);
the digit recurrence is the pencil-and-paper method (e.g. Ercegovac and Lang, *Digital
Arithmetic* 2004, ch. 6).
"""
import math

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import checks
from .common import add_unit, mux_row, normalize, shift_right

__all__ = ["NewtonRaphsonSqrt", "DigitRecurrenceSqrt", "ROOT_CLASSES", "reference_isqrt"]


def reference_isqrt(radicand, width):
    """Plain-Python model of every root unit here: ``(root, remainder)``."""
    if not 0 <= radicand < 1 << width:
        raise ValueError(f"Radicand must be an integer in [0, {(1 << width) - 1}], "
                         f"not {radicand!r}")
    root = math.isqrt(radicand)
    return root, radicand - root * root


class _SquareRoot(wiring.Component):
    """Shared ports and width check."""

    #: design name in hwlib.registry, set by each subclass
    design_name = None

    def __init__(self, width):
        self.width = checks.positive_int(width, "Square root width")
        self.root_width = (width + 1) // 2
        super().__init__({
            "radicand": In(self.width),
            "root": Out(self.root_width),
            "remainder": Out(self.root_width + 1),
        })


class DigitRecurrenceSqrt(_SquareRoot):
    """Restoring digit-by-digit square root: one subtractor row per root bit.

    With the root ``Q`` known to ``j`` bits and the partial remainder ``R = X_j - Q**2``
    (``X_j`` the top ``2j`` radicand bits), row ``j`` brings in the next two radicand bits and
    tries to subtract ``4 Q + 1`` from ``4 R + pair``: the root bit is 1 when there is no
    borrow (``(2Q + 1)**2 = 4 Q**2 + 4 Q + 1``), and a row of `Mux2` cells restores ``R``
    otherwise. The partial remainder never exceeds ``2 Q``, so row ``j`` needs a ``(j+3)``-bit
    subtractor and the last remainder is exactly the ``h + 1``-bit ``remainder`` port.

    Area O(n**2): ``sum(A(j + 3) for j < h)`` plus as many multiplexers, about ``h**2 / 2`` full
    adders with ripple-carry rows. Delay O(n T(n/2)) (each row waits for the borrow of the row
    above). The classical method (e.g. Ercegovac and Lang, *Digital Arithmetic*, 2004, ch. 6),
    the square-root counterpart of `hwlib.dividers.RestoringDivider`.

    Parameters
    ----------
    width : int
        Radicand width in bits, at least 1.
    adder : str or class
        Subtractor design of each row (``hwlib.registry.designs_for("add")``).
    """

    design_name = "digit_recurrence"

    def __init__(self, width, *, adder="ripple_carry"):
        super().__init__(width)
        self.adder = checks.design(adder, "add", "Square root adder")

    def elaborate(self, platform):
        m = Module()
        h = self.root_width
        x = Signal(2 * h, name="x")
        m.d.comb += x.eq(self.radicand)
        rem = Const(0, 1)
        root = None
        for j in range(h):
            i = h - 1 - j
            shifted = Signal(j + 3, name=f"t{j}")
            m.d.comb += shifted.eq(Cat(x[2 * i:2 * i + 2], rem))
            trial = Signal(j + 3, name=f"trial{j}")
            m.d.comb += trial.eq(Const(1, 2) if root is None else Cat(Const(1, 2), root))
            diff, no_borrow = add_unit(m, self.adder, f"sub{j}", shifted, trial, sub=1)
            rem = mux_row(m, f"r{j}", no_borrow, shifted[:j + 2], diff[:j + 2])
            new_root = Signal(j + 1, name=f"q{j + 1}")
            m.d.comb += new_root.eq(no_borrow if root is None else Cat(no_borrow, root))
            root = new_root
        m.d.comb += [self.root.eq(root), self.remainder.eq(rem)]
        return m


def _rsqrt_seed_table(seed_bits):
    """Seed ROM of reciprocal square roots and its guaranteed accuracy in bits.

    Address ``a`` covers ``m`` in ``[a, a+1) / 2**seed_bits`` (``a >= 2**(seed_bits-2)``: the
    radicand is normalized into ``[1/4, 1)``); the word is the fraction of ``y = 1 + word /
    2**seed_bits``, the value ``2 / (sqrt(lo) + sqrt(hi))`` that balances the relative error
    ``y sqrt(m) - 1`` at both ends, rounded. Returns ``(words, bits)`` with ``bits = -log2``
    of the largest ``|y sqrt(m) - 1|`` over all addresses.
    """
    scale = 1 << seed_bits
    words = {}
    worst = 0.0
    for a in range(scale >> 2, scale):
        lo, hi = math.sqrt(a / scale), math.sqrt((a + 1) / scale)
        word = min(max(round((2 / (lo + hi) - 1) * scale), 0), scale - 1)
        y = 1 + word / scale
        worst = max(worst, abs(y * lo - 1), abs(y * hi - 1))
        words[a] = word
    return words, -math.log2(worst)


def _nr_error(error, fraction_bits):
    """Bound on the relative error of ``1/sqrt(m)`` after one fixed-point iteration that
    starts from relative error ``error`` and produces ``fraction_bits`` fraction bits: the
    exact iteration's ``1.5 e**2 + 0.5 |e|**3`` plus ``2**-(fraction_bits - 2)`` for the
    truncations (of ``y**2``, of ``m`` to ``fraction_bits + 2`` bits, of ``m y**2`` and of the
    new ``y``; see `NewtonRaphsonSqrt`)."""
    return 1.5 * error * error + 0.5 * error ** 3 + 2.0 ** -(fraction_bits - 2)


def _taper(seed_error, iterations, target, seed_bits, full):
    """Fraction bits per iteration: the last ``full``; each earlier one the fewest (from
    ``seed_bits``) for which the error bound, with every later iteration at ``full``, still
    ends at or below ``target``. Each iteration roughly doubles the correct bits, so only the
    last needs the full width (precision doubling)."""
    chosen = []

    def final_error(fractions):
        error = seed_error
        for bits in fractions:
            error = _nr_error(error, bits)
        return error

    for i in range(iterations - 1):
        rest = [full] * (iterations - i - 1)
        bits = next(b for b in range(seed_bits, full + 1)
                    if final_error(chosen + [b] + rest) <= target)
        chosen.append(bits)
    if iterations:
        chosen.append(full)
    return tuple(chosen)


class NewtonRaphsonSqrt(_SquareRoot):
    """Square root by Newton-Raphson iteration on the reciprocal square root.

    1. *Normalization.* The radicand (padded to ``2h`` bits) is shifted left by its
       leading-zero count rounded down to even, ``2k``, so that ``m = x' / 2**(2h)`` lies in
       ``[1/4, 1)`` and ``sqrt(x) = sqrt(x') / 2**k``.
    2. *Seed.* The top ``seed_bits`` bits of ``x'`` address a ROM of ``y0 ~ 1/sqrt(m)`` (see
       `seed_accuracy_bits`).
    3. *Iterations* ``y' = y (3 - m y**2) / 2`` in fixed point, three pluggable
       multipliers each (``y**2``, ``m y**2``, ``y (3 - m y**2)``) and a subtractor. An
       iteration producing ``F`` fraction bits truncates ``y**2``, ``m`` (to ``F + 2`` bits),
       ``m y**2`` and the new ``y`` to about ``F`` bits, so the relative error obeys
       ``e' <= 1.5 e**2 + 0.5 |e|**3 + 2**-(F-2)``: each iteration roughly doubles the
       correct bits. `iterations` is the fewest that bring the seed's error below
       ``2**-(h+1)`` with ``F = h + 5``, about ``ceil(log2((h + 1) / (seed_bits - 1)))``.
       Only the last iteration runs at ``F = h + 5``; each earlier one at the fewest bits
       that still reach the target (`iteration_fraction_bits`, precision doubling: 19, 34
       and 60 bits for the FP64 significand's 55-bit root with an 8-bit seed), and ``y``
       enters each multiplier at the precision it was produced with. The iterations are
       unrolled, which prices every pass of the multiplier the same as an iterating unit
       would use it.
    4. *Root.* ``r = floor(m y 2**h) >> k`` is within one of ``floor(sqrt(x))``; a squarer and
       three adders compare ``x - r**2`` with ``0`` and ``2 r + 1`` and pick ``r - 1``, ``r``
       or ``r + 1``, which also gives the exact remainder.

    Area: ``3 i + 2`` multipliers (``i`` = `iterations`): the last iteration's three and the
    final two about ``h`` bits wide, each earlier iteration's about half as wide as the next's
    (so under ``6 M(h)`` in all for a quadratic multiplier), plus the
    seed ROM (``2**seed_bits`` words), five adders and O(n log n) shifters; delay ``3 i + 2``
    multiplier delays (three in series per iteration, then ``m y`` and the squarer) plus the
    adders. As in the software and microcode
    square roots of Markstein-style and Goldschmidt-style FP units (Goldschmidt 1964; Cornea,
    Golliver and Markstein 1999), the root unit of li2022, section II.B.1.

    Parameters
    ----------
    width : int
        Radicand width in bits, at least 1.
    seed_bits : int
        Address and data bits of the seed ROM, 2..16.
    multiplier : str or class
        Multiplier design (``hwlib.registry.designs_for("mul")``), built as ``Cls(a_width,
        b_width)``.
    adder : str or class
        Design of the subtractors and correction adders (``designs_for("add")``).
    """

    design_name = "newton_raphson"

    #: Extra fraction bits of the iteration over the root width.
    guard_bits = 5

    def __init__(self, width, *, seed_bits=8, multiplier="booth_wallace", adder="ripple_carry"):
        super().__init__(width)
        self.seed_bits = checks.int_in(seed_bits, 2, 16, "Newton-Raphson seed bits")
        self.multiplier = checks.design(multiplier, "mul", "Square root multiplier")
        self.adder = checks.design(adder, "add", "Square root adder")
        self._seed_words, self.seed_accuracy_bits = _rsqrt_seed_table(seed_bits)

        h = self.root_width
        full = h + self.guard_bits
        target = 2.0 ** -(h + 1)
        seed_error = 2.0 ** -self.seed_accuracy_bits
        iterations, error = 0, seed_error
        while error > target:
            error = _nr_error(error, full)
            iterations += 1
        #: Number of unrolled Newton-Raphson iterations, derived from the root width.
        self.iterations = iterations
        #: Fraction bits of the reciprocal square root each iteration produces: the last one
        #: ``h + guard_bits``, the earlier ones the fewest that still let the remaining
        #: iterations (at full precision) reach the target error.
        self.iteration_fraction_bits = _taper(seed_error, iterations, target, seed_bits, full)
        #: Fraction bits of the reciprocal square root (the seed's own when not iterating).
        self.fraction_bits = (self.iteration_fraction_bits[-1] if iterations else seed_bits)

    def _mul(self, m, name, a, b):
        cell = self.multiplier(len(a), len(b))
        m.submodules[name] = cell
        m.d.comb += [cell.a.eq(a), cell.b.eq(b)]
        return cell.p

    def elaborate(self, platform):
        m = Module()
        h = self.root_width
        n2 = 2 * h
        p = self.seed_bits
        f = self.fraction_bits

        x = Signal(n2, name="x")
        m.d.comb += x.eq(self.radicand)
        shift, xn = normalize(m, x, "x", even=True)

        # Seed ROM; addresses below 2**(p-2) occur only for a zero radicand, where m = 0
        # makes the seed irrelevant.
        address = Signal(p, name="seed_addr")
        m.d.comb += address.eq(xn[n2 - p:] if n2 >= p else Cat(Const(0, p - n2), xn))
        word = Signal(p, name="seed_word")
        with m.Switch(address):
            for a, value in self._seed_words.items():
                with m.Case(a):
                    m.d.comb += word.eq(value)
        # y0 = 1 + word / 2**p, with p fraction bits; each iteration widens y to its own.
        y = Signal(p + 2, name="y0")
        m.d.comb += y.eq(Cat(word, Const(1, 1)))
        y_bits = p

        truncated = {}

        def mantissa(g):
            """m truncated to ``g`` fraction bits (at most all ``2h`` of them)."""
            g = min(n2, g)
            if g not in truncated:
                truncated[g] = Signal(g, name=f"m{g}")
                m.d.comb += truncated[g].eq(xn[n2 - g:])
            return truncated[g], g

        for i, fi in enumerate(self.iteration_fraction_bits):
            # y**2 has 2 y_bits fraction bits; kept to fi (truncated, or exact when shorter).
            square = self._mul(m, f"mul_ysq{i}", y, y)
            y_sq = Signal(fi + 3, name=f"ysq{i}")
            m.d.comb += y_sq.eq(square[2 * y_bits - fi:] if 2 * y_bits >= fi
                                else Cat(Const(0, fi - 2 * y_bits), square))
            mant, g = mantissa(fi + 2)                             # m to fi + 2 fraction bits
            my_sq = Signal(fi + 2, name=f"mysq{i}")                # m y**2, fi fraction bits
            m.d.comb += my_sq.eq(self._mul(m, f"mul_mysq{i}", mant, y_sq)[g:])
            three_minus, _ = add_unit(m, self.adder, f"sub{i}", Const(3 << fi, fi + 2), my_sq, sub=1)
            y_next = Signal(fi + 2, name=f"y{i + 1}")              # y (3 - m y**2) / 2
            m.d.comb += y_next.eq(self._mul(m, f"mul_y{i}", y, three_minus)[y_bits + 1:])
            y, y_bits = y_next, fi

        mant, g = mantissa(f + 2)
        # r = m y 2**h = sqrt(x'), then undo the normalization: sqrt(x) = sqrt(x') / 2**k.
        r_norm = Signal(h + 1, name="r_norm")
        m.d.comb += r_norm.eq(self._mul(m, "mul_root", mant, y)[f + g - h:])
        r_shifted = shift_right(m, r_norm, shift[1:], "r")
        r = Signal(h, name="r")
        m.d.comb += r.eq(Mux(r_shifted[h], Const((1 << h) - 1, h), r_shifted[:h]))

        # Final correction: root is r - 1, r or r + 1, decided by x - r**2 against 0 and 2r + 1.
        r_sq = self._mul(m, "mul_square", r, r)
        diff, not_below = add_unit(m, self.adder, "rem", Cat(x, Const(0, 1)),
                               Cat(r_sq, Const(0, 1)), sub=1)
        r_minus, _ = add_unit(m, self.adder, "dec", r, Const(1, h), sub=1)
        r_plus, _ = add_unit(m, self.adder, "inc", r, Const(1, h))
        over, no_borrow = add_unit(m, self.adder, "rem_up", diff, Cat(Const(1, 1), r), sub=1)
        under, _ = add_unit(m, self.adder, "rem_down", diff, Cat(Const(1, 1), r_minus))
        with m.If(~not_below):
            m.d.comb += [self.root.eq(r_minus), self.remainder.eq(under)]
        with m.Elif(no_borrow):
            m.d.comb += [self.root.eq(r_plus), self.remainder.eq(over)]
        with m.Else():
            m.d.comb += [self.root.eq(r), self.remainder.eq(diff)]
        return m


ROOT_CLASSES = (NewtonRaphsonSqrt, DigitRecurrenceSqrt)
