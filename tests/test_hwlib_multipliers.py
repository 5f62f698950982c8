# amaranth: UnusedElaboratable=no
"""Tests of hwlib.multipliers: values against reference_multiply, structure, parameter checks.

Small widths run in amaranth.sim (exhaustive 4x4); 8x8 exhaustive and the wide checks run the
Yosys-synthesized netlist with hwlib.netsim, so they also check that Yosys reads each circuit
the way amaranth.sim does. The first line of this file turns off amaranth's
UnusedElaboratable warning, for the components built only to check parameters and ports.
"""
import itertools
import random
import re

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hwlib import registry
from hwlib.adders import SklanskyAdder
from hwlib.cells import Counter32, FullAdder, HalfAdder
from hwlib.multipliers import (
    MULTIPLIER_CLASSES,
    ArrayMultiplier,
    BoothWallaceMultiplier,
    DaddaMultiplier,
    dadda_heights,
    reference_multiply,
)
from hwlib.netsim import simulate

SIGNEDNESS = pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
DESIGNS = pytest.mark.parametrize("cls", MULTIPLIER_CLASSES, ids=lambda c: c.__name__)


def _to_signed(x, width):
    return x - (1 << width) if x >> (width - 1) else x


# --- reference model -------------------------------------------------------------------------

def test_reference_multiply_values():
    assert reference_multiply(15, 15, 4, 4, False) == 225
    assert reference_multiply(15, 15, 4, 4, True) == 1           # -1 * -1
    assert reference_multiply(-3, 5, 4, 4, True) == 256 - 15     # negative ints wrap to 4 bits
    assert reference_multiply(0b1101, 5, 4, 4, True) == 256 - 15
    assert reference_multiply(8, 8, 4, 4, True) == 64            # -8 * -8, the one overflow-free
    assert reference_multiply(8, 7, 4, 4, True) == 256 - 56      # extreme of 4x4 signed
    assert reference_multiply(1, 1, 1, 1, True) == 1             # -1 * -1 in 2 bits
    assert reference_multiply(1, 1, 1, 1, False) == 1
    assert reference_multiply(0x7FF, 3, 11, 2, True) == 1          # -1 * -1 in 13 bits
    assert reference_multiply(0x7FF, 1, 11, 2, True) == (1 << 13) - 1   # -1 * 1
    assert reference_multiply((1 << 53) - 1, (1 << 53) - 1, 53, 53, False) == ((1 << 53) - 1) ** 2


def test_reference_multiply_is_exact_product():
    rng = random.Random(11)
    for _ in range(500):
        n, m = rng.randint(1, 70), rng.randint(1, 70)
        a, b = rng.getrandbits(n), rng.getrandbits(m)
        assert reference_multiply(a, b, n, m, False) == a * b
        p = reference_multiply(a, b, n, m, True)
        assert _to_signed(p, n + m) == _to_signed(a, n) * _to_signed(b, m)


def test_dadda_heights():
    assert dadda_heights(2) == []
    assert dadda_heights(3) == [2]
    assert dadda_heights(8) == [6, 4, 3, 2]
    assert dadda_heights(9) == [6, 4, 3, 2]
    assert dadda_heights(10) == [9, 6, 4, 3, 2]
    assert dadda_heights(53) == [42, 28, 19, 13, 9, 6, 4, 3, 2]


# --- interface and parameter checks --------------------------------------------------------

def test_registry_names_resolve_to_these_classes():
    assert MULTIPLIER_CLASSES == (BoothWallaceMultiplier, ArrayMultiplier, DaddaMultiplier)
    assert registry.design_class("booth_wallace", "mul") is BoothWallaceMultiplier
    assert registry.design_class("array", "mul") is ArrayMultiplier
    assert registry.design_class("dadda", "mul") is DaddaMultiplier


@DESIGNS
def test_ports_and_attributes(cls):
    dut = cls(24, 11, signed=True, final_adder="kogge_stone")
    assert (len(dut.a), len(dut.b), len(dut.p)) == (24, 11, 35)
    assert (dut.a_width, dut.b_width, dut.p_width, dut.signed) == (24, 11, 35, True)
    assert dut.final_adder is registry.design_class("kogge_stone", "add")
    square = cls(7)
    assert (len(square.a), len(square.b), len(square.p)) == (7, 7, 14)
    assert square.signed is False
    assert square.final_adder is registry.design_class("ripple_carry", "add")
    assert cls(5, final_adder=SklanskyAdder).final_adder is SklanskyAdder


@DESIGNS
@pytest.mark.parametrize("args, exc, message", [
    ((0,), ValueError, "Multiplier width must be a positive integer, not 0"),
    ((-3,), ValueError, "Multiplier width must be a positive integer, not -3"),
    ((8, 0), ValueError, "Multiplier width must be a positive integer, not 0"),
    (("8",), TypeError, "Multiplier width must be a positive integer, not '8'"),
    ((8, 2.0), TypeError, "Multiplier width must be a positive integer, not 2.0"),
    ((True,), TypeError, "Multiplier width must be a positive integer, not True"),
])
def test_width_errors(cls, args, exc, message):
    with pytest.raises(exc, match=f"^{re.escape(message)}$"):
        cls(*args)


@DESIGNS
def test_signed_and_final_adder_errors(cls):
    with pytest.raises(TypeError, match=r"^Multiplier signedness must be a bool, not 1$"):
        cls(8, signed=1)
    known = ", ".join(sorted(registry.designs_for("add")))
    for name in ("nope", "booth_wallace"):
        message = f"Unknown design {name!r} for unit 'add'; expected one of {known}"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            cls(8, final_adder=name)
    with pytest.raises(TypeError, match=r"^Final adder must be an adder design name or an "
                                        r"adder class, not 3$"):
        cls(8, final_adder=3)


# --- exhaustive checks -----------------------------------------------------------------------

def _amaranth_sim_products(dut, pairs):
    results = []

    async def bench(ctx):
        for a, b in pairs:
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            results.append(ctx.get(dut.p))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return results


# Booth-Wallace with two final adders (and one given as a class); the others with one each
# at 8x8 and two at 4x4.
EXHAUSTIVE_CASES = [
    (BoothWallaceMultiplier, "ripple_carry"),
    (BoothWallaceMultiplier, "kogge_stone"),
    (BoothWallaceMultiplier, SklanskyAdder),
    (ArrayMultiplier, "brent_kung"),
    (DaddaMultiplier, "carry_lookahead"),
]
SMALL_ONLY_CASES = [
    (ArrayMultiplier, "ripple_carry"),
    (DaddaMultiplier, "ripple_carry"),
]


def _case_ids(cases):
    return [f"{c.__name__}-{a if isinstance(a, str) else a.__name__}" for c, a in cases]


@pytest.mark.parametrize("cls, adder", EXHAUSTIVE_CASES + SMALL_ONLY_CASES,
                         ids=_case_ids(EXHAUSTIVE_CASES + SMALL_ONLY_CASES))
@SIGNEDNESS
def test_exhaustive_4x4_amaranth_sim(cls, adder, signed):
    dut = cls(4, signed=signed, final_adder=adder)
    pairs = list(itertools.product(range(16), repeat=2))
    got = _amaranth_sim_products(dut, pairs)
    assert got == [reference_multiply(a, b, 4, 4, signed) for a, b in pairs]


@pytest.mark.parametrize("cls, adder", EXHAUSTIVE_CASES, ids=_case_ids(EXHAUSTIVE_CASES))
@SIGNEDNESS
def test_exhaustive_8x8_netsim(cls, adder, signed):
    dut = cls(8, signed=signed, final_adder=adder)
    a, b = zip(*itertools.product(range(256), repeat=2))
    got = simulate(dut, {"a": list(a), "b": list(b)})["p"]
    assert len(got) == 65536
    assert got == [reference_multiply(x, y, 8, 8, signed) for x, y in zip(a, b)]


@DESIGNS
@SIGNEDNESS
@pytest.mark.parametrize("n, m", [(1, 1), (1, 4), (5, 1), (3, 2), (5, 7), (6, 3)])
def test_exhaustive_small_shapes_netsim(cls, signed, n, m):
    """Every shape corner of the recoding (odd widths, one-bit operands, m > n and m < n)."""
    dut = cls(n, m, signed=signed)
    a, b = zip(*itertools.product(range(1 << n), range(1 << m)))
    got = simulate(dut, {"a": list(a), "b": list(b)})["p"]
    assert got == [reference_multiply(x, y, n, m, signed) for x, y in zip(a, b)]


# --- wide checks -------------------------------------------------------------------------------

def _corners(width):
    top = (1 << width) - 1
    values = {0, 1, top, top - 1, 1 << (width - 1), (1 << (width - 1)) - 1,
              (1 << (width - 1)) + 1, 0x5555555555555555 & top, 0xAAAAAAAAAAAAAAAA & top}
    values.update(1 << k for k in range(width))
    return sorted(values)


def _check_wide(dut, n, m, signed, seed, count=2000):
    rng = random.Random(seed)
    a = [rng.getrandbits(n) for _ in range(count)]
    b = [rng.getrandbits(m) for _ in range(count)]
    corner_pairs = list(itertools.product(_corners(n), _corners(m)))
    a += [x for x, _ in corner_pairs]
    b += [y for _, y in corner_pairs]
    got = simulate(dut, {"a": a, "b": b})["p"]
    expected = [reference_multiply(x, y, n, m, signed) for x, y in zip(a, b)]
    bad = [(x, y) for x, y, g, e in zip(a, b, got, expected) if g != e]
    assert not bad, f"{len(bad)} wrong products, first a={bad[0][0]:#x} b={bad[0][1]:#x}"


# The final adder varies by design so that the wide runs also cover several adders.
WIDE_ADDERS = {BoothWallaceMultiplier: "kogge_stone", ArrayMultiplier: "ripple_carry",
               DaddaMultiplier: "sklansky"}


def _wide_cases():
    """Every design and signedness at 16, 24, 32 and 24x11; 11x24 (the Booth-recoded operand
    the wider one) for Booth-Wallace. 53x53 (the FP64 significand) for Booth-Wallace, the
    paper's multiplier, in both modes. The 53-bit array and Dadda trees and all 64x64 cases
    take several seconds each to synthesize (about two minutes together), so they are slow
    tests; the constructions are the same at every width."""
    cases = []
    for cls in MULTIPLIER_CLASSES:
        for signed in (False, True):
            shapes = [(16, 16), (24, 24), (32, 32), (53, 53), (24, 11), (64, 64)]
            if cls is BoothWallaceMultiplier:
                shapes.append((11, 24))
            for n, m in shapes:
                slow = (n, m) == (64, 64) or ((n, m) == (53, 53)
                                              and cls is not BoothWallaceMultiplier)
                cases.append(pytest.param(
                    cls, signed, n, m, marks=[pytest.mark.slow] if slow else [],
                    id=f"{cls.__name__}-{'signed' if signed else 'unsigned'}-{n}x{m}"))
    return cases


# The final adder varies by design so that the wide runs also cover several adders.
WIDE_ADDERS = {BoothWallaceMultiplier: "kogge_stone", ArrayMultiplier: "ripple_carry",
               DaddaMultiplier: "sklansky"}


@pytest.mark.parametrize("cls, signed, n, m", _wide_cases())
def test_wide_random_and_corners_netsim(cls, signed, n, m):
    """2,000 seeded random pairs plus every pair of corner values (0, 1, all ones, powers of
    two, the signed extremes, alternating bits)."""
    dut = cls(n, m, signed=signed, final_adder=WIDE_ADDERS[cls])
    _check_wide(dut, n, m, signed, seed=1000 * n + m + signed)


# --- structure -------------------------------------------------------------------------------

def _structure(dut):
    """Cells in the elaborated hierarchy, found by walking it (not from ``cell_counts``).

    Returns ``(own, adder, adder_width)``: ``{cell_name: count}`` of the multiplier's own cells,
    the same for its final adder's subtree, and the final adder's width (0 if it has none).
    """
    own, adder = {}, {}
    adder_width = 0

    def walk(fragment, into):
        nonlocal adder_width
        for sub, name, _ in fragment.subfragments:
            origin = sub.origins[0] if sub.origins else None
            target = into
            if name == "final_adder" and into is own:
                target, adder_width = adder, len(origin.a)
            if isinstance(origin, (FullAdder, HalfAdder)):
                target[origin.cell_name] = target.get(origin.cell_name, 0) + 1
            walk(sub, target)

    walk(Fragment.get(dut, None), own)
    return own, adder, adder_width


@pytest.mark.parametrize("n, m", [(4, 4), (8, 8), (16, 16), (8, 5), (5, 8)])
def test_array_structure_unsigned(n, m):
    """Rows 1..m-1 of the array: one row of half adders, then rows of n-1 full adders; the
    final ripple-carry adder merges n-1 columns. Square: n(n-2) FA and n HA in all (Braun)."""
    dut = ArrayMultiplier(n, m)
    own, adder, adder_width = _structure(dut)
    assert own == {"half_adder": n - 1, "full_adder": (m - 2) * (n - 1)}
    assert adder_width == n - 1
    assert adder == {"half_adder": 1, "full_adder": n - 2}    # ripple carry, no carry-in
    if n == m:
        assert own["full_adder"] + adder["full_adder"] == n * (n - 2)
        assert own["half_adder"] + adder["half_adder"] == n


@pytest.mark.parametrize("n", [4, 8, 16, 24])
def test_dadda_structure_unsigned(n):
    """Dadda's counts for an unsigned n x n tree: n^2 - 4n + 3 counters, n - 1 half adders,
    and a 2n - 2 bit final adder."""
    dut = DaddaMultiplier(n)
    own, _, adder_width = _structure(dut)
    assert own == {"counter_3_2": n * n - 4 * n + 3, "half_adder": n - 1}
    assert adder_width == 2 * n - 2
    assert dut.cell_counts == {Counter32: n * n - 4 * n + 3, HalfAdder: n - 1}


def _booth_heights(n, m, signed):
    """Column heights of the radix-4 Booth partial-product heap, derived from the recoding.

    Per digit j: the n (signed) or n + 1 (unsigned: a zero-extended) magnitude bits from
    column 2j, the complemented sign bit above them, and the +1 (``neg``) in column 2j; the
    sign bits' -2^k terms are summed into one constant. Unsigned operands are zero-extended
    by a bit, so the top digit never is negative (its ``neg`` and sign bit are constants) and,
    for even m, never is +-2 (its top magnitude bit is zero).
    """
    width = n + m
    heights = [0] * width
    constant = 0

    def put(col):
        if col < width:
            heights[col] += 1

    if signed:
        digits = (m + 1) // 2
        for j in range(digits):
            for i in range(n + 1):
                put(2 * j + i)
            put(2 * j)
            constant -= 1 << (2 * j + n)
    else:
        digits = (m + 2) // 2
        for j in range(digits):
            top = j == digits - 1
            neg_is_variable = 2 * j + 1 < m
            two_is_variable = not (top and (m % 2 == 0 or m == 1))
            for i in range(n):
                put(2 * j + i)
            if two_is_variable:
                put(2 * j + n)
            if neg_is_variable:
                put(2 * j + n + 1)                    # complemented sign bit (= ~neg)
                constant -= 1 << (2 * j + n + 1)
                put(2 * j)                            # the +1
    constant %= 1 << width
    for col in range(width):
        if constant >> col & 1:
            heights[col] += 1
    return heights


def _wallace_prediction(heights):
    """Counters, half adders and final-adder width of Wallace's rule on these heights."""
    width = len(heights)
    counters = halves = 0
    while max(heights) > 2:
        nxt = [0] * width
        for c, h in enumerate(heights):
            if h <= 2:
                nxt[c] += h
                continue
            fa, rest = divmod(h, 3)
            ha = 1 if rest == 2 else 0
            counters += fa
            halves += ha
            nxt[c] += fa + ha + (1 if rest == 1 else 0)
            if c + 1 < width:
                nxt[c + 1] += fa + ha
        heights = nxt
    lo = next((c for c, h in enumerate(heights) if h == 2), None)
    hi = max(c for c, h in enumerate(heights) if h)
    return counters, halves, 0 if lo is None else hi - lo + 1


@SIGNEDNESS
@pytest.mark.parametrize("n, m", [(4, 4), (8, 8), (16, 16), (24, 11), (11, 24), (5, 7), (7, 1)])
def test_booth_wallace_structure(signed, n, m):
    heights = _booth_heights(n, m, signed)
    counters, halves, adder_width = _wallace_prediction(heights)
    dut = BoothWallaceMultiplier(n, m, signed=signed)
    own, _, got_adder_width = _structure(dut)
    assert own == {k: v for k, v in (("counter_3_2", counters), ("half_adder", halves)) if v}
    assert got_adder_width == adder_width
    # Radix 4 halves the partial products: far fewer counters than an AND-array tree.
    if n >= 8:
        dadda = DaddaMultiplier(n, m, signed=signed)
        Fragment.get(dadda, None)
        assert counters < dadda.cell_counts[Counter32]


def test_booth_wallace_structure_known_8x8():
    """Hand count. Unsigned 8x8: five digits; digits 0-3 give 9 magnitude bits from column 2j,
    ~sign at 2j+9 and +1 at 2j; digit 4 (never negative, never +-2) gives 8 bits from column 8;
    the constant -(2^9 + 2^11 + 2^13 + 2^15) mod 2^16 sets columns 9, 10, 12, 14. Signed 8x8:
    four digits of 8 magnitude bits, ~sign at 2j+8 and +1 at 2j; the constant
    -(2^8 + 2^10 + 2^12 + 2^14) mod 2^16 sets columns 8, 9, 11, 13, 15."""
    unsigned = [2, 1, 3, 2, 4, 3, 5, 4, 5, 6, 5, 4, 4, 3, 3, 2]
    signed = [2, 1, 3, 2, 4, 3, 5, 4, 5, 4, 3, 3, 2, 2, 1, 1]
    assert _booth_heights(8, 8, False) == unsigned
    assert _booth_heights(8, 8, True) == signed
    assert _wallace_prediction(unsigned) == (32, 3, 16)
    assert _wallace_prediction(signed) == (23, 2, 16)
