# amaranth: UnusedElaboratable=no
"""Square roots against `reference_isqrt`: exhaustive at 4 bits (amaranth.sim) and up to 10 bits
(netsim), seeded random vectors and corner cases at 16, 24, 32 and 106 bits (netsim)."""
import math
import random

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from hwlib import netsim, registry
from hwlib.adders import KoggeStoneAdder, RippleCarryAdder
from hwlib.multipliers import ArrayMultiplier, BoothWallaceMultiplier
from hwlib.roots import ROOT_CLASSES, DigitRecurrenceSqrt, NewtonRaphsonSqrt, reference_isqrt

NAMES = {NewtonRaphsonSqrt: "newton_raphson", DigitRecurrenceSqrt: "digit_recurrence"}


def _check_netsim(dut, radicands):
    out = netsim.simulate(dut, {"radicand": radicands})
    for i, x in enumerate(radicands):
        got = (out["root"][i], out["remainder"][i])
        assert got == reference_isqrt(x, dut.width), (type(dut).__name__, dut.width, x)


def _wide_radicands(width, seed, count=2000):
    rng = random.Random(seed)
    top = (1 << width) - 1
    values = {0, 1, 2, 3, top, top - 1}
    for i in range(width):
        values |= {1 << i, (1 << i) - 1, (1 << i) + 1}
    # Perfect squares and their neighbours, where a root that is off by one shows.
    for r in [math.isqrt(top), math.isqrt(top) - 1] + [rng.getrandbits(rng.randint(1, width // 2))
                                                      for _ in range(300)]:
        values |= {v for v in (r * r - 1, r * r, r * r + 1, r * r + 2 * r) if 0 <= v <= top}
    values = sorted(v for v in values if v <= top)
    return values + [rng.getrandbits(rng.randint(1, width)) for _ in range(count)]


# -- parameters and registry -------------------------------------------------------------------

@pytest.mark.parametrize("cls", ROOT_CLASSES)
def test_registry_names(cls):
    assert registry.design_class(NAMES[cls], "sqrt") is cls
    assert cls.design_name == NAMES[cls]


@pytest.mark.parametrize("cls", ROOT_CLASSES)
@pytest.mark.parametrize("width, root_width", [(1, 1), (2, 1), (7, 4), (8, 4), (53, 27)])
def test_ports(cls, width, root_width):
    dut = cls(width)
    assert dut.root_width == root_width
    assert [(name, len(getattr(dut, name))) for name in dut.signature.members] == [
        ("radicand", width), ("root", root_width), ("remainder", root_width + 1)]
    assert dut.adder is RippleCarryAdder


@pytest.mark.parametrize("cls", ROOT_CLASSES)
def test_parameter_errors(cls):
    for bad in (0, -2):
        with pytest.raises(ValueError,
                           match=rf"^Square root width must be a positive integer, not {bad}$"):
            cls(bad)
    with pytest.raises(TypeError,
                       match=r"^Square root width must be a positive integer, not 4\.0$"):
        cls(4.0)
    with pytest.raises(ValueError, match=r"^Unknown design 'dadda' for unit 'add'; "
                                         r"expected one of .*ripple_carry.*$"):
        cls(8, adder="dadda")
    with pytest.raises(TypeError, match=r"^Square root adder must be a design name or a class, "
                                        r"not None$"):
        cls(8, adder=None)


def test_newton_raphson_parameter_errors():
    for error, bad in [(ValueError, 1), (ValueError, 17), (ValueError, 0), (TypeError, True),
                       (TypeError, "8"), (TypeError, 8.0)]:
        with pytest.raises(error, match=rf"^Newton-Raphson seed bits must be an integer in "
                                        rf"2\.\.16, not {bad!r}$"):
            NewtonRaphsonSqrt(16, seed_bits=bad)
    with pytest.raises(ValueError, match=r"^Unknown design 'kogge_stone' for unit 'mul'; "
                                         r"expected one of .*booth_wallace.*$"):
        NewtonRaphsonSqrt(16, multiplier="kogge_stone")
    dut = NewtonRaphsonSqrt(16, multiplier="array", adder="kogge_stone")
    assert (dut.multiplier, dut.adder) == (ArrayMultiplier, KoggeStoneAdder)
    assert NewtonRaphsonSqrt(16).multiplier is BoothWallaceMultiplier


def test_reference_isqrt():
    assert reference_isqrt(0, 4) == (0, 0)
    assert reference_isqrt(15, 4) == (3, 6)
    assert reference_isqrt(16, 5) == (4, 0)
    assert reference_isqrt((1 << 106) - 1, 106) == ((1 << 53) - 1, (1 << 54) - 2)
    with pytest.raises(ValueError, match=r"^Radicand must be an integer in \[0, 15\], not 16$"):
        reference_isqrt(16, 4)


# -- Newton-Raphson iteration count ------------------------------------------------------------

@pytest.mark.parametrize("seed_bits", range(2, 17))
def test_seed_accuracy(seed_bits):
    # The seed ROM is good to about seed_bits bits (the "seed_bits - 1" of the usual rule).
    dut = NewtonRaphsonSqrt(8, seed_bits=seed_bits)
    assert seed_bits - 1 < dut.seed_accuracy_bits <= seed_bits + 0.5


@pytest.mark.parametrize("width, seed_bits, iterations", [
    (4, 8, 0), (8, 8, 0), (16, 8, 1), (24, 8, 1), (32, 8, 2), (64, 8, 3), (106, 8, 3),
    (8, 2, 2), (32, 2, 4), (106, 2, 6), (32, 16, 1), (106, 16, 2), (48, 4, 3),
])
def test_iterations(width, seed_bits, iterations):
    dut = NewtonRaphsonSqrt(width, seed_bits=seed_bits)
    assert dut.iterations == iterations
    # Never more than the doubling rule ceil(log2(needed / (seed_bits - 1))) asks for.
    needed = dut.root_width + 1
    assert iterations <= max(0, math.ceil(math.log2(needed / (seed_bits - 1))))
    if width <= 16 and seed_bits <= 8:
        names = [name for _, name, *_ in Fragment.get(dut, None).subfragments]
        assert sum(n.startswith("mul_y") and not n.startswith("mul_ysq") for n in names) == \
            iterations
        assert sum(n.startswith("mul") for n in names) == 3 * iterations + 2


@pytest.mark.parametrize("width, seed_bits, fractions", [
    (4, 8, ()), (26, 8, (18,)), (52, 8, (18, 31)), (110, 8, (19, 34, 60)), (106, 8, (18, 31, 58)),
    (32, 2, (7, 9, 14, 21)),
])
def test_tapered_iterations(width, seed_bits, fractions):
    # Precision doubling: only the last iteration runs at h + 5 fraction bits.
    dut = NewtonRaphsonSqrt(width, seed_bits=seed_bits)
    assert dut.iteration_fraction_bits == fractions
    assert len(fractions) == dut.iterations
    assert list(fractions) == sorted(fractions)
    if fractions:
        assert fractions[-1] == dut.root_width + dut.guard_bits == dut.fraction_bits
    # The error bound of the chosen widths reaches the target; one bit fewer in any earlier
    # iteration does not.
    def bound(bits):
        error = 2.0 ** -dut.seed_accuracy_bits
        for b in bits:
            error = 1.5 * error * error + 0.5 * error ** 3 + 2.0 ** -(b - 2)
        return error
    target = 2.0 ** -(dut.root_width + 1)
    assert bound(fractions) <= target
    for i in range(len(fractions) - 1):
        if fractions[i] > seed_bits:
            fewer = list(fractions[:i]) + [fractions[i] - 1] + [fractions[-1]] * (len(fractions) - i - 1)
            assert bound(fewer) > target


def test_tapered_multiplier_widths():
    # The FP64 significand root (h = 55): each iteration's multipliers take y at the precision
    # it was produced with (the 8-bit seed, then 19, 34 and 60 fraction bits, two integer bits)
    # and m at the iteration's own fraction bits + 2; the last iteration and the final m y and
    # r**2 are full width.
    frag = Fragment.get(NewtonRaphsonSqrt(110), None)
    widths = {}
    for sub, name, *_ in frag.subfragments:
        if name.startswith("mul"):
            unit = next(o for o in sub.origins if hasattr(o, "a_width"))
            widths[name] = (unit.a_width, unit.b_width)
    assert widths == {
        "mul_ysq0": (10, 10), "mul_mysq0": (21, 22), "mul_y0": (10, 21),
        "mul_ysq1": (21, 21), "mul_mysq1": (36, 37), "mul_y1": (21, 36),
        "mul_ysq2": (36, 36), "mul_mysq2": (62, 63), "mul_y2": (36, 62),
        "mul_root": (62, 62), "mul_square": (55, 55)}


def test_digit_recurrence_structure():
    dut = DigitRecurrenceSqrt(11)
    names = [name for _, name, *_ in Fragment.get(dut, None).subfragments]
    assert [n for n in names if n.startswith("sub")] == [f"sub{j}" for j in range(6)]


# -- exhaustive --------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, kwargs", [
    (NewtonRaphsonSqrt, {}), (NewtonRaphsonSqrt, {"seed_bits": 2}), (DigitRecurrenceSqrt, {}),
])
def test_exhaustive_4bit_amaranth_sim(cls, kwargs):
    dut = cls(4, **kwargs)
    results = []

    async def bench(ctx):
        for x in range(16):
            ctx.set(dut.radicand, x)
            results.append((x, (ctx.get(dut.root), ctx.get(dut.remainder))))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert len(results) == 16
    for x, got in results:
        assert got == reference_isqrt(x, 4), x


@pytest.mark.parametrize("width", range(1, 11))
def test_exhaustive_digit_recurrence(width):
    _check_netsim(DigitRecurrenceSqrt(width), list(range(1 << width)))


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 9])
def test_exhaustive_newton_raphson(width):
    _check_netsim(NewtonRaphsonSqrt(width), list(range(1 << width)))


@pytest.mark.parametrize("width, seed_bits", [(8, 2), (10, 4)])
def test_exhaustive_newton_raphson_iterating(width, seed_bits):
    # Small seeds force iterations at small widths, where every radicand can be tried.
    dut = NewtonRaphsonSqrt(width, seed_bits=seed_bits)
    assert dut.iterations >= 1
    _check_netsim(dut, list(range(1 << width)))


@pytest.mark.parametrize("cls, kwargs", [
    (NewtonRaphsonSqrt, {"multiplier": "dadda", "adder": "kogge_stone", "seed_bits": 2}),
    (DigitRecurrenceSqrt, {"adder": "carry_select"}),
])
def test_exhaustive_other_designs(cls, kwargs):
    _check_netsim(cls(6, **kwargs), list(range(64)))


# -- wide --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ROOT_CLASSES)
@pytest.mark.parametrize("width", [16, 24, 32])
def test_random_wide(cls, width):
    _check_netsim(cls(width), _wide_radicands(width, seed=width))


@pytest.mark.parametrize("width", [17, 31])
def test_random_odd_width_digit_recurrence(width):
    _check_netsim(DigitRecurrenceSqrt(width), _wide_radicands(width, seed=width))


@pytest.mark.slow
@pytest.mark.parametrize("cls", ROOT_CLASSES)
def test_random_fp64_shape(cls):
    # The FP64 significand root: a 106-bit radicand, a 53-bit root.
    _check_netsim(cls(106), _wide_radicands(106, seed=106))
