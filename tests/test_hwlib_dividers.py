# amaranth: UnusedElaboratable=no
"""Dividers against `reference_divide`: exhaustive at 4 bits (amaranth.sim) and 8 bits (netsim),
seeded random vectors and corner cases at 16, 24, 32 and 53 bits (netsim)."""
import itertools
import random

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hwlib import netsim, registry
from hwlib.adders import KoggeStoneAdder, RippleCarryAdder
from hwlib.dividers import (DIVIDER_CLASSES, NonRestoringDivider, RestoringDivider,
                            SRTRadix2Divider, reference_divide)

NAMES = {SRTRadix2Divider: "srt_radix2", RestoringDivider: "restoring",
         NonRestoringDivider: "non_restoring"}


def _check_netsim(dut, dividends, divisors):
    out = netsim.simulate(dut, {"dividend": dividends, "divisor": divisors})
    n, w = dut.dividend_width, dut.width
    for i, (x, d) in enumerate(zip(dividends, divisors)):
        got = (out["quotient"][i], out["remainder"][i], out["div_by_zero"][i])
        assert got == reference_divide(x, d, n, w, dut.quotient_width), \
            (type(dut).__name__, w, n, x, d)


def _corners(bits):
    values = {0, 1, 2, (1 << bits) - 1, (1 << bits) - 2, (1 << (bits - 1)) + 1}
    values |= {1 << i for i in range(bits)}
    values |= {(1 << i) - 1 for i in range(1, bits)}
    return sorted(v for v in values if v < 1 << bits)


def _wide_vectors(width, dividend_width, seed, count=2000):
    rng = random.Random(seed)
    pairs = list(itertools.product(_corners(dividend_width), _corners(width)))
    for _ in range(count):
        # Random lengths give every quotient size, divisors above the dividend included.
        x = rng.getrandbits(rng.randint(1, dividend_width))
        d = rng.getrandbits(rng.randint(1, width))
        pairs.append((x, d))
    # Exact multiples and remainder = divisor - 1.
    for _ in range(200):
        d = rng.getrandbits(rng.randint(1, width)) or 1
        q = rng.getrandbits(max(1, dividend_width - d.bit_length()))
        for x in (q * d, q * d + d - 1):
            if x < 1 << dividend_width:
                pairs.append((x, d))
    dividends, divisors = zip(*pairs)
    return list(dividends), list(divisors)


# -- parameters and registry -------------------------------------------------------------------

@pytest.mark.parametrize("cls", DIVIDER_CLASSES)
def test_registry_names(cls):
    assert registry.design_class(NAMES[cls], "div") is cls
    assert cls.design_name == NAMES[cls]


@pytest.mark.parametrize("cls", DIVIDER_CLASSES)
def test_ports_and_defaults(cls):
    dut = cls(6)
    assert (dut.width, dut.dividend_width, dut.quotient_width, dut.adder) == \
        (6, 6, 6, RippleCarryAdder)
    assert [(name, member.flow.value, len(getattr(dut, name)))
            for name, member in dut.signature.members.items()] == [
        ("dividend", "In", 6), ("divisor", "In", 6), ("quotient", "Out", 6),
        ("remainder", "Out", 6), ("div_by_zero", "Out", 1)]
    wide = cls(5, dividend_width=13, adder="kogge_stone")
    assert (len(wide.dividend), len(wide.quotient), len(wide.divisor), len(wide.remainder)) == \
        (13, 13, 5, 5)
    assert wide.adder is KoggeStoneAdder
    short = cls(5, dividend_width=13, quotient_width=9)
    assert (len(short.dividend), len(short.quotient), len(short.remainder)) == (13, 9, 5)


@pytest.mark.parametrize("cls", DIVIDER_CLASSES)
def test_parameter_errors(cls):
    with pytest.raises(ValueError, match=r"^Divider width must be a positive integer, not 0$"):
        cls(0)
    with pytest.raises(ValueError, match=r"^Divider width must be a positive integer, not -3$"):
        cls(-3)
    with pytest.raises(TypeError, match=r"^Divider width must be a positive integer, not '8'$"):
        cls("8")
    with pytest.raises(TypeError, match=r"^Divider width must be a positive integer, not True$"):
        cls(True)
    with pytest.raises(ValueError,
                       match=r"^Divider dividend width must be a positive integer, not 0$"):
        cls(8, dividend_width=0)
    with pytest.raises(TypeError,
                       match=r"^Divider dividend width must be a positive integer, not 2\.5$"):
        cls(8, dividend_width=2.5)
    with pytest.raises(ValueError,
                       match=r"^Divider quotient width must be an integer in 1\.\.8, not 9$"):
        cls(8, quotient_width=9)
    with pytest.raises(ValueError,
                       match=r"^Divider quotient width must be an integer in 1\.\.12, not 0$"):
        cls(8, dividend_width=12, quotient_width=0)
    with pytest.raises(TypeError,
                       match=r"^Divider quotient width must be an integer in 1\.\.8, not '4'$"):
        cls(8, quotient_width="4")
    with pytest.raises(ValueError, match=r"^Unknown design 'wallace' for unit 'add'; "
                                         r"expected one of .*kogge_stone.*$"):
        cls(8, adder="wallace")
    with pytest.raises(TypeError, match=r"^Divider adder must be a design name or a class, "
                                        r"not 3$"):
        cls(8, adder=3)


def test_reference_divide():
    assert reference_divide(200, 7, 8, 8) == (28, 4, 0)
    assert reference_divide(5, 9, 8, 4) == (0, 5, 0)
    assert reference_divide(1000, 3, 10, 2) == (333, 1, 0)
    # Division by zero: all-ones quotient, the dividend's low bits as remainder.
    assert reference_divide(77, 0, 8, 8) == (255, 77, 1)
    assert reference_divide(0b1011_0110, 0, 8, 4) == (255, 0b0110, 1)
    with pytest.raises(ValueError, match=r"^Dividend must be an integer in \[0, 255\], not 256$"):
        reference_divide(256, 1, 8, 8)
    with pytest.raises(ValueError, match=r"^Divisor must be an integer in \[0, 15\], not -1$"):
        reference_divide(3, -1, 8, 4)
    assert reference_divide(0b1111_0000, 9, 8, 4, quotient_width=5) == (26, 6, 0)
    assert reference_divide(0b1111_0000, 0, 8, 4, quotient_width=5) == (31, 0, 1)
    with pytest.raises(ValueError, match=r"^Quotient of 240 / 7 does not fit in 5 bits$"):
        reference_divide(240, 7, 8, 4, quotient_width=5)


# -- structure: one stage per quotient bit -----------------------------------------------------

def _submodule_names(dut):
    return [name for _, name, *_ in Fragment.get(dut, None).subfragments]


def test_restoring_structure():
    names = _submodule_names(RestoringDivider(5, dividend_width=7))
    assert sum(n.startswith("sub") for n in names) == 7
    assert sum(n.startswith("p") for n in names) == 7 * 5     # Mux2 restore cells


def test_non_restoring_structure():
    names = _submodule_names(NonRestoringDivider(5, dividend_width=7))
    assert sum(n.startswith("row") for n in names) == 7
    assert names.count("fix") == 1


def test_short_quotient_structure():
    # Only quotient_width stages are built.
    names = _submodule_names(SRTRadix2Divider(5, dividend_width=11, quotient_width=7))
    assert sum(n.startswith("csa") for n in names) == 7 * (5 + 3)
    names = _submodule_names(RestoringDivider(5, dividend_width=11, quotient_width=7))
    assert sum(n.startswith("sub") for n in names) == 7


def test_srt_structure():
    names = _submodule_names(SRTRadix2Divider(5, dividend_width=7))
    # n stages of (w+3)-bit carry-save rows, then the assimilation and correction adders.
    assert sum(n.startswith("csa") for n in names) == 7 * (5 + 3)
    assert {n for n in names if not n.startswith("csa")} == {"assimilate", "fix"}


# -- exhaustive --------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", DIVIDER_CLASSES)
def test_exhaustive_4bit_amaranth_sim(cls):
    dut = cls(4)
    results = []

    async def bench(ctx):
        for x, d in itertools.product(range(16), repeat=2):
            ctx.set(dut.dividend, x)
            ctx.set(dut.divisor, d)
            results.append(((x, d), (ctx.get(dut.quotient), ctx.get(dut.remainder),
                                     ctx.get(dut.div_by_zero))))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert len(results) == 256
    for (x, d), got in results:
        assert got == reference_divide(x, d, 4, 4), (x, d)


@pytest.mark.parametrize("cls", DIVIDER_CLASSES)
def test_exhaustive_8bit(cls):
    dividends, divisors = zip(*itertools.product(range(256), repeat=2))
    _check_netsim(cls(8), list(dividends), list(divisors))


@pytest.mark.parametrize("cls", DIVIDER_CLASSES)
@pytest.mark.parametrize("width, dividend_width", [(1, 1), (1, 5), (3, 7), (6, 2)])
def test_exhaustive_odd_shapes(cls, width, dividend_width):
    dividends, divisors = zip(*itertools.product(range(1 << dividend_width),
                                                 range(1 << width)))
    _check_netsim(cls(width, dividend_width=dividend_width), list(dividends), list(divisors))


@pytest.mark.parametrize("cls", DIVIDER_CLASSES)
@pytest.mark.parametrize("width, dividend_width, quotient_width",
                         [(4, 8, 4), (4, 8, 6), (3, 7, 1), (5, 6, 2)])
def test_exhaustive_short_quotient(cls, width, dividend_width, quotient_width):
    # Every dividend/divisor pair whose quotient fits, and every dividend over zero.
    pairs = [(x, d) for x in range(1 << dividend_width) for d in range(1 << width)
             if d == 0 or x >> quotient_width < d]
    dividends, divisors = zip(*pairs)
    dut = cls(width, dividend_width=dividend_width, quotient_width=quotient_width)
    _check_netsim(dut, list(dividends), list(divisors))


@pytest.mark.parametrize("cls", DIVIDER_CLASSES)
@pytest.mark.parametrize("adder", ["kogge_stone", "carry_select"])
def test_exhaustive_other_adders(cls, adder):
    dividends, divisors = zip(*itertools.product(range(64), repeat=2))
    _check_netsim(cls(6, adder=adder), list(dividends), list(divisors))


# -- wide --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", DIVIDER_CLASSES)
@pytest.mark.parametrize("width", [16, 24, 32])
def test_random_wide(cls, width):
    dividends, divisors = _wide_vectors(width, width, seed=width)
    _check_netsim(cls(width), dividends, divisors)


def test_srt_wide_dividend():
    dividends, divisors = _wide_vectors(24, 50, seed=2450)
    _check_netsim(SRTRadix2Divider(24, dividend_width=50), dividends, divisors)


@pytest.mark.parametrize("cls", DIVIDER_CLASSES)
def test_fp32_significand_shape(cls):
    # An FP32 divider's shape: (a << 25) / b for normalized 24-bit significands, whose
    # quotient has 26 bits.
    rng = random.Random(24)
    top = (1 << 24) - 1
    significands = [1 << 23, (1 << 23) + 1, top, top - 1] + \
        [rng.getrandbits(23) | 1 << 23 for _ in range(1000)]
    pairs = [(a << 25, b) for a in significands[:4] for b in significands[:4]]
    pairs += [(rng.choice(significands) << 25, rng.choice(significands)) for _ in range(2000)]
    dividends, divisors = zip(*pairs)
    dut = cls(24, dividend_width=49, quotient_width=26)
    _check_netsim(dut, list(dividends), list(divisors))


@pytest.mark.slow
@pytest.mark.parametrize("cls", DIVIDER_CLASSES)
def test_random_fp64_shape(cls):
    dividends, divisors = _wide_vectors(53, 2 * 53 + 3, seed=53)
    _check_netsim(cls(53, dividend_width=2 * 53 + 3), dividends, divisors)
