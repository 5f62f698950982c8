# amaranth: UnusedElaboratable=no
import itertools
import random

import pytest
from amaranth.hdl import Fragment, Shape
from amaranth.sim import Simulator

from hwlib import netsim
from hwlib.adders import ADDER_CLASSES, KoggeStoneAdder, RippleCarryAdder
from hwlib.cells import FullAdder
from hwlib.common import (
    BarrelShifter,
    Comparator,
    LeadingZeroCounter,
    reference_compare,
    reference_leading_zeros,
    reference_shift,
    shift_amount_width,
)
from hwlib.registry import designs_for

WIDE_WIDTHS = [24, 53, 64, 106]
SHIFTS = [("right", False), ("right", True), ("left", False)]
SHIFT_IDS = ["right", "arithmetic", "left"]


def _simulate_amaranth(dut, inputs, outputs, vectors):
    results = []

    async def testbench(ctx):
        for vector in vectors:
            for name, value in zip(inputs, vector):
                ctx.set(getattr(dut, name), value)
            results.append(tuple(ctx.get(getattr(dut, name)) for name in outputs))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return results


def _simulate_netlist(dut, inputs, outputs, vectors):
    out = netsim.simulate(dut, {name: [v[i] for v in vectors] for i, name in enumerate(inputs)})
    return list(zip(*(out[name] for name in outputs)))


def _corners(width):
    mask = (1 << width) - 1
    return sorted({0, 1, mask, mask - 1, 1 << (width - 1), (1 << (width - 1)) - 1, mask // 3,
                   (mask // 3) << 1} | {1 << k for k in range(width)}
                  | {(1 << k) - 1 for k in range(width + 1)})


def _random_with_leading_zeros(rng, width, count):
    """Random words with a uniformly spread number of leading zeros (and a random tail)."""
    return [rng.getrandbits(width) >> rng.randrange(width + 1) for _ in range(count)]


# --- reference models ----------------------------------------------------------------------

def test_reference_shift_values():
    assert reference_shift(0b1011, 1, 4) == (0b0101, 1)
    assert reference_shift(0b1011, 2, 4) == (0b0010, 1)
    assert reference_shift(0b1000, 3, 4) == (0b0001, 0)
    assert reference_shift(0b1000, 4, 4) == (0, 1)
    assert reference_shift(0b1000, 7, 4) == (0, 1)
    assert reference_shift(0b1000, 2, 4, arithmetic=True) == (0b1110, 0)
    assert reference_shift(0b1001, 9, 4, arithmetic=True) == (0b1111, 1)
    assert reference_shift(0b0110, 9, 4, arithmetic=True) == (0, 1)
    assert reference_shift(0b1011, 1, 4, direction="left") == (0b0110, 1)
    assert reference_shift(0b0011, 2, 4, direction="left") == (0b1100, 0)
    assert reference_shift(0b0011, 3, 4, direction="left") == (0b1000, 1)
    assert reference_shift(0b0011, 0, 4, direction="left") == (0b0011, 0)


def test_reference_leading_zeros_and_compare_values():
    assert reference_leading_zeros(0, 5) == (5, 1)
    assert reference_leading_zeros(1, 5) == (4, 0)
    assert reference_leading_zeros(0b10000, 5) == (0, 0)
    assert reference_compare(3, 5, 4) == (1, 0, 0)
    assert reference_compare(5, 5, 4) == (0, 1, 0)
    assert reference_compare(0b1111, 1, 4) == (0, 0, 1)
    assert reference_compare(0b1111, 1, 4, signed=True) == (1, 0, 0)      # -1 < 1
    assert reference_compare(0b1000, 0b0111, 4, signed=True) == (1, 0, 0)  # -8 < 7


@pytest.mark.parametrize("call, error, message", [
    (lambda: reference_shift(16, 0, 4), ValueError,
     r"^Operand data must be an integer in \[0, 15\], not 16$"),
    (lambda: reference_shift(1, -1, 4), ValueError,
     r"^Shift amount must be a non-negative integer, not -1$"),
    (lambda: reference_shift(1, 1, 4, direction="up"), ValueError,
     r"^Shift direction must be one of 'right', 'left', not 'up'$"),
    (lambda: reference_leading_zeros(-1, 4), ValueError,
     r"^Operand data must be an integer in \[0, 15\], not -1$"),
    (lambda: reference_compare(0, 16, 4), ValueError,
     r"^Operand b must be an integer in \[0, 15\], not 16$"),
    (lambda: reference_compare(0, 0, 0), ValueError,
     r"^Comparator width must be a positive integer, not 0$"),
])
def test_reference_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- BarrelShifter ---------------------------------------------------------------------------

@pytest.mark.parametrize("width, amount_width", [(1, 1), (2, 2), (3, 2), (4, 3), (7, 3),
                                                 (8, 4), (24, 5), (53, 6), (64, 7), (106, 7)])
def test_shifter_ports(width, amount_width):
    assert shift_amount_width(width) == amount_width
    dut = BarrelShifter(width, sticky=True)
    members = dict(dut.signature.members.items())
    assert list(members) == ["data", "amount", "out", "sticky"]
    assert [Shape.cast(m.shape).width for m in members.values()] == [width, amount_width,
                                                                      width, 1]
    assert list(dict(BarrelShifter(width).signature.members.items())) == ["data", "amount",
                                                                          "out"]


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(width=0), ValueError, r"^Shifter width must be a positive integer, not 0$"),
    (dict(width=True), TypeError, r"^Shifter width must be a positive integer, not True$"),
    (dict(width=8, direction="up"), ValueError,
     r"^Shift direction must be one of 'right', 'left', not 'up'$"),
    (dict(width=8, sticky=1), TypeError, r"^Shifter sticky must be a bool, not 1$"),
    (dict(width=8, arithmetic="yes"), TypeError,
     r"^Shifter arithmetic must be a bool, not 'yes'$"),
    (dict(width=8, direction="left", arithmetic=True), ValueError,
     r"^Arithmetic shift is only defined for direction 'right'$"),
])
def test_shifter_errors(kwargs, error, message):
    width = kwargs.pop("width")
    with pytest.raises(error, match=message):
        BarrelShifter(width, **kwargs)


@pytest.mark.parametrize("direction, arithmetic", SHIFTS, ids=SHIFT_IDS)
def test_shifter_exhaustive_small_widths_amaranth_sim(direction, arithmetic):
    for width in range(1, 7):
        for sticky in (True, False):
            dut = BarrelShifter(width, direction=direction, sticky=sticky,
                                arithmetic=arithmetic)
            vectors = list(itertools.product(range(1 << width),
                                             range(1 << shift_amount_width(width))))
            outputs = ("out", "sticky") if sticky else ("out",)
            expected = [reference_shift(d, s, width, direction=direction,
                                        arithmetic=arithmetic)[:len(outputs)]
                        for d, s in vectors]
            assert _simulate_amaranth(dut, ("data", "amount"), outputs, vectors) == expected, \
                (width, sticky)


@pytest.mark.parametrize("direction, arithmetic", SHIFTS, ids=SHIFT_IDS)
def test_shifter_exhaustive_11_bits(direction, arithmetic):
    # 11 bits (the fp16 significand with its guard bits): 2048 words x 16 amounts.
    dut = BarrelShifter(11, direction=direction, sticky=True, arithmetic=arithmetic)
    vectors = list(itertools.product(range(1 << 11), range(16)))
    expected = [reference_shift(d, s, 11, direction=direction, arithmetic=arithmetic)
                for d, s in vectors]
    assert _simulate_netlist(dut, ("data", "amount"), ("out", "sticky"), vectors) == expected


@pytest.mark.parametrize("direction, arithmetic", SHIFTS, ids=SHIFT_IDS)
@pytest.mark.parametrize("width", WIDE_WIDTHS)
def test_shifter_wide(width, direction, arithmetic):
    rng = random.Random(width * 3 + len(direction) + arithmetic)
    amount_max = (1 << shift_amount_width(width)) - 1
    vectors = [(rng.getrandbits(width), rng.randrange(amount_max + 1)) for _ in range(2000)]
    vectors += [(d, s) for d in _corners(width)
                for s in {0, 1, width - 1, width, amount_max, rng.randrange(width)}]
    dut = BarrelShifter(width, direction=direction, sticky=True, arithmetic=arithmetic)
    expected = [reference_shift(d, s, width, direction=direction, arithmetic=arithmetic)
                for d, s in vectors]
    assert _simulate_netlist(dut, ("data", "amount"), ("out", "sticky"), vectors) == expected


# --- LeadingZeroCounter ----------------------------------------------------------------------

@pytest.mark.parametrize("width, count_width", [(1, 1), (2, 2), (3, 2), (4, 3), (8, 4),
                                                (24, 5), (64, 7), (106, 7)])
def test_lzc_ports(width, count_width):
    members = dict(LeadingZeroCounter(width).signature.members.items())
    assert list(members) == ["data", "count", "zero"]
    assert [Shape.cast(m.shape).width for m in members.values()] == [width, count_width, 1]


@pytest.mark.parametrize("width, error", [(0, ValueError), (-1, ValueError), (False, TypeError),
                                          (4.0, TypeError)])
def test_lzc_errors(width, error):
    with pytest.raises(error, match=rf"^Leading-zero counter width must be a positive integer, "
                                    rf"not {width!r}$"):
        LeadingZeroCounter(width)


def test_lzc_exhaustive_small_widths_amaranth_sim():
    for width in range(1, 10):
        dut = LeadingZeroCounter(width)
        vectors = [(d,) for d in range(1 << width)]
        expected = [reference_leading_zeros(d, width) for d, in vectors]
        assert _simulate_amaranth(dut, ("data",), ("count", "zero"), vectors) == expected, width


@pytest.mark.parametrize("width", [13, 16])
def test_lzc_exhaustive_netlist(width):
    vectors = [(d,) for d in range(1 << width)]
    expected = [reference_leading_zeros(d, width) for d, in vectors]
    assert _simulate_netlist(LeadingZeroCounter(width), ("data",), ("count", "zero"),
                             vectors) == expected


@pytest.mark.parametrize("width", WIDE_WIDTHS)
def test_lzc_wide(width):
    rng = random.Random(width)
    values = _random_with_leading_zeros(rng, width, 2000) + _corners(width)
    values += [rng.getrandbits(width) for _ in range(500)]
    vectors = [(d,) for d in values]
    expected = [reference_leading_zeros(d, width) for d in values]
    assert _simulate_netlist(LeadingZeroCounter(width), ("data",), ("count", "zero"),
                             vectors) == expected


def test_lzc_depth_is_logarithmic():
    # A tree: doubling the width adds a level of a few gates, not a chain.
    depth = [netsim.netlist(LeadingZeroCounter(w)).depth() for w in (16, 64)]
    assert depth[1] <= depth[0] + 8
    assert depth[1] <= 24


# --- Comparator ------------------------------------------------------------------------------

def test_comparator_ports_and_adder_choice():
    dut = Comparator(12)
    members = dict(dut.signature.members.items())
    assert list(members) == ["a", "b", "lt", "eq", "gt"]
    assert [Shape.cast(m.shape).width for m in members.values()] == [12, 12, 1, 1, 1]
    assert dut.adder_class is RippleCarryAdder and not dut.signed
    assert Comparator(12, adder="kogge_stone").adder_class is KoggeStoneAdder
    assert Comparator(12, adder=KoggeStoneAdder).adder_class is KoggeStoneAdder
    # The default subtractor is a ripple-carry chain of full adders.
    fragment = Fragment.get(Comparator(12), None)
    (sub_fragment, name, _), = fragment.subfragments
    assert name == "subtractor"
    assert sum(type(f.origins[0]) is FullAdder for f, _, _ in sub_fragment.subfragments) == 12


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(width=0), ValueError, r"^Comparator width must be a positive integer, not 0$"),
    (dict(width="8"), TypeError, r"^Comparator width must be a positive integer, not '8'$"),
    (dict(width=8, signed=0), TypeError, r"^Comparator signed must be a bool, not 0$"),
    (dict(width=8, adder="wallace"), ValueError,
     r"^Comparator adder must be one of ripple_carry, carry_lookahead, carry_skip, "
     r"carry_select, brent_kung, kogge_stone, sklansky or an adder class, not 'wallace'$"),
    (dict(width=8, adder=FullAdder), ValueError,
     r"^Comparator adder must be one of .* or an adder class, not <class "
     r"'hwlib\.cells\.FullAdder'>$"),
])
def test_comparator_errors(kwargs, error, message):
    width = kwargs.pop("width")
    with pytest.raises(error, match=message):
        Comparator(width, **kwargs)


@pytest.mark.parametrize("adder", designs_for("add"))
def test_comparator_exhaustive_small_widths_amaranth_sim(adder):
    for width in (1, 2, 4):
        for signed in (False, True):
            dut = Comparator(width, signed=signed, adder=adder)
            vectors = list(itertools.product(range(1 << width), repeat=2))
            expected = [reference_compare(a, b, width, signed=signed) for a, b in vectors]
            assert _simulate_amaranth(dut, ("a", "b"), ("lt", "eq", "gt"), vectors) \
                == expected, (width, signed)


@pytest.mark.parametrize("signed", [False, True])
def test_comparator_exhaustive_8_bits(signed):
    dut = Comparator(8, signed=signed)
    vectors = list(itertools.product(range(256), repeat=2))
    expected = [reference_compare(a, b, 8, signed=signed) for a, b in vectors]
    assert _simulate_netlist(dut, ("a", "b"), ("lt", "eq", "gt"), vectors) == expected


def _compare_vectors(width, seed):
    rng = random.Random(seed)
    corners = _corners(width)
    vectors = [(rng.getrandbits(width), rng.getrandbits(width)) for _ in range(2000)]
    vectors += [(a, a) for a in corners] + [(a, b) for a in corners[::3] for b in corners[::3]]
    # Operands that differ in one low bit: the decision rests on the whole carry chain.
    for _ in range(300):
        a = rng.getrandbits(width)
        vectors.append((a, a ^ (1 << rng.randrange(min(width, 4)))))
    return vectors


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("width", WIDE_WIDTHS)
def test_comparator_wide(width, signed):
    vectors = _compare_vectors(width, seed=width + signed)
    expected = [reference_compare(a, b, width, signed=signed) for a, b in vectors]
    dut = Comparator(width, signed=signed)
    assert _simulate_netlist(dut, ("a", "b"), ("lt", "eq", "gt"), vectors) == expected


@pytest.mark.parametrize("adder", ADDER_CLASSES[1:], ids=designs_for("add")[1:])
def test_comparator_wide_other_adders(adder):
    vectors = _compare_vectors(53, seed=53)
    expected = [reference_compare(a, b, 53, signed=True) for a, b in vectors]
    dut = Comparator(53, signed=True, adder=adder)
    assert _simulate_netlist(dut, ("a", "b"), ("lt", "eq", "gt"), vectors) == expected
