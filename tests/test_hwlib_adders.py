# amaranth: UnusedElaboratable=no
import functools
import itertools
import random

import pytest
from amaranth.hdl import Fragment, Shape
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hwlib import netsim
from hwlib.adders import (
    ADDER_CLASSES,
    Adder,
    BrentKungAdder,
    CarryLookaheadAdder,
    CarrySelectAdder,
    CarrySkipAdder,
    KoggeStoneAdder,
    RippleCarryAdder,
    SklanskyAdder,
    reference_add,
)
from hwlib.cells import FullAdder, HalfAdder, Mux2
from hwlib.registry import design_class, designs_for

CONFIGS = [(True, True), (True, False), (False, True), (False, False)]
WIDE_WIDTHS = [16, 24, 32, 53, 64]
DESIGN_IDS = [cls.design_name for cls in ADDER_CLASSES]


def _expected(vectors, width):
    return [reference_add(a, b, cin, sub, width) for a, b, cin, sub in vectors]


def _simulate_amaranth(dut, vectors):
    """Drive ``(a, b, cin, sub)`` vectors through amaranth.sim; returns ``(s, cout)`` pairs."""
    results = []

    async def testbench(ctx):
        for a, b, cin, sub in vectors:
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            if dut.carry_in:
                ctx.set(dut.cin, cin)
            if dut.subtract:
                ctx.set(dut.sub, sub)
            results.append((ctx.get(dut.s), ctx.get(dut.cout)))

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return results


def _simulate_netlist(dut, vectors):
    """The same through the synthesized gate netlist (hwlib.netsim), 64 vectors per word."""
    inputs = {"a": [v[0] for v in vectors], "b": [v[1] for v in vectors]}
    if dut.carry_in:
        inputs["cin"] = [v[2] for v in vectors]
    if dut.subtract:
        inputs["sub"] = [v[3] for v in vectors]
    out = netsim.simulate(dut, inputs)
    return list(zip(out["s"], out["cout"]))


def _all_vectors(width, carry_in, subtract):
    return list(itertools.product(range(1 << width), range(1 << width),
                                  (0, 1) if carry_in else (0,), (0, 1) if subtract else (0,)))


@functools.lru_cache(maxsize=None)
def _exhaustive_case(width, carry_in, subtract):
    """All vectors and their reference results, shared by the seven designs."""
    vectors = _all_vectors(width, carry_in, subtract)
    return vectors, _expected(vectors, width)


@functools.lru_cache(maxsize=None)
def _wide_case(width, carry_in, subtract, seed):
    vectors = _wide_vectors(width, carry_in, subtract, seed)
    return vectors, _expected(vectors, width)


def _wide_vectors(width, carry_in, subtract, seed, count=2000):
    rng = random.Random(seed)
    mask = (1 << width) - 1
    special = sorted({0, 1, 2, mask, mask - 1, 1 << (width - 1), (1 << (width - 1)) - 1,
                      mask // 3, (mask // 3) << 1})          # 0x5555..., 0xaaaa...
    corners = sorted(set(special) | {1 << k for k in range(width)}
                     | {(1 << k) - 1 for k in range(width + 1)})
    pairs = set(itertools.product(special, corners)) | set(itertools.product(corners, special))
    pairs |= {(rng.getrandbits(width), rng.getrandbits(width)) for _ in range(count)}
    # Long carry chains: b close to ~a, so that a + b propagates across most positions.
    pairs |= {(x, ~x & mask ^ (1 << rng.randrange(width))) for x in
              (rng.getrandbits(width) for _ in range(count // 4))}
    cins = (0, 1) if carry_in else (0,)
    subs = (0, 1) if subtract else (0,)
    return [(a, b, cin, sub) for a, b in sorted(pairs) for cin in cins for sub in subs]


def _cell_counts(elaboratable):
    """Count FullAdder, HalfAdder and Mux2 instances in the whole elaborated hierarchy."""
    counts = {FullAdder: 0, HalfAdder: 0, Mux2: 0}
    stack = [Fragment.get(elaboratable, None)]
    while stack:
        fragment = stack.pop()
        origin = fragment.origins[0] if fragment.origins else None
        for cls in counts:
            if type(origin) is cls:
                counts[cls] += 1
        stack.extend(sub for sub, _name, _loc in fragment.subfragments)
    return counts[FullAdder], counts[HalfAdder], counts[Mux2]


# --- reference model ------------------------------------------------------------------------

def test_reference_add_values():
    assert reference_add(3, 5, 0, 0, 4) == (8, 0)
    assert reference_add(15, 1, 0, 0, 4) == (0, 1)
    assert reference_add(15, 0, 1, 0, 4) == (0, 1)
    assert reference_add(7, 7, 1, 0, 4) == (15, 0)
    assert reference_add(5, 3, 0, 1, 4) == (2, 1)           # no borrow
    assert reference_add(3, 5, 0, 1, 4) == (14, 0)          # borrow: -2 mod 16
    assert reference_add(3, 5, 1, 1, 4) == (14, 0)          # cin ignored when subtracting
    assert reference_add(0, 0, 0, 1, 4) == (0, 1)
    assert reference_add(0, 0, 0, 0, 1) == (0, 0)
    assert reference_add(1, 1, 1, 0, 1) == (1, 1)


@pytest.mark.parametrize("args, message", [
    ((16, 0, 0, 0, 4), r"^Operand a must be an integer in \[0, 15\], not 16$"),
    ((0, -1, 0, 0, 4), r"^Operand b must be an integer in \[0, 15\], not -1$"),
    ((0, 0, 2, 0, 4), r"^Operand cin must be an integer in \[0, 1\], not 2$"),
    ((0, 0, 0, True, 4), r"^Operand sub must be an integer in \[0, 1\], not True$"),
])
def test_reference_add_rejects_bad_operands(args, message):
    with pytest.raises(ValueError, match=message):
        reference_add(*args)


def test_reference_add_rejects_bad_width():
    with pytest.raises(ValueError, match=r"^Adder width must be a positive integer, not 0$"):
        reference_add(0, 0, 0, 0, 0)


# --- registry, ports and parameters --------------------------------------------------------

def test_adder_classes_match_registry():
    assert tuple(design_class(name, "add") for name in designs_for("add")) == ADDER_CLASSES
    assert DESIGN_IDS == list(designs_for("add"))
    assert all(issubclass(cls, Adder) for cls in ADDER_CLASSES)


@pytest.mark.parametrize("cls", ADDER_CLASSES, ids=DESIGN_IDS)
@pytest.mark.parametrize("carry_in, subtract", CONFIGS)
def test_ports(cls, carry_in, subtract):
    dut = cls(13, carry_in=carry_in, subtract=subtract)
    members = dict(dut.signature.members.items())
    expected = ["a", "b"] + ["cin"] * carry_in + ["sub"] * subtract + ["s", "cout"]
    assert list(members) == expected
    widths = {"a": 13, "b": 13, "cin": 1, "sub": 1, "s": 13, "cout": 1}
    for name, member in members.items():
        assert Shape.cast(member.shape).width == widths[name]
        assert member.flow is (Out if name in ("s", "cout") else In)
    assert (dut.width, dut.carry_in, dut.subtract) == (13, carry_in, subtract)


def test_defaults_have_carry_in_and_subtract():
    dut = KoggeStoneAdder(8)
    assert dut.carry_in and dut.subtract
    assert CarrySkipAdder(64).block_size == 8
    assert CarrySelectAdder(24).block_size == 4
    assert CarrySkipAdder(1).block_size == 1
    assert CarrySelectAdder(10, block_size=3).block_size == 3


@pytest.mark.parametrize("cls", ADDER_CLASSES, ids=DESIGN_IDS)
@pytest.mark.parametrize("width, error, shown", [
    (0, ValueError, "0"),
    (-3, ValueError, "-3"),
    (True, TypeError, "True"),
    (8.0, TypeError, "8.0"),
    ("8", TypeError, "'8'"),
    (None, TypeError, "None"),
])
def test_width_errors(cls, width, error, shown):
    with pytest.raises(error, match=rf"^Adder width must be a positive integer, not {shown}$"):
        cls(width)


@pytest.mark.parametrize("cls", ADDER_CLASSES, ids=DESIGN_IDS)
def test_flag_errors(cls):
    with pytest.raises(TypeError, match=r"^Adder carry_in must be a bool, not 1$"):
        cls(8, carry_in=1)
    with pytest.raises(TypeError, match=r"^Adder subtract must be a bool, not None$"):
        cls(8, subtract=None)


@pytest.mark.parametrize("cls, what", [(CarrySkipAdder, "Carry-skip"),
                                       (CarrySelectAdder, "Carry-select")])
@pytest.mark.parametrize("block_size, error, shown", [
    (0, ValueError, "0"),
    (-2, ValueError, "-2"),
    (False, TypeError, "False"),
    (2.5, TypeError, "2.5"),
])
def test_block_size_errors(cls, what, block_size, error, shown):
    with pytest.raises(error, match=rf"^{what} block size must be a positive integer, "
                                    rf"not {shown}$"):
        cls(8, block_size=block_size)


def test_base_class_is_not_a_design():
    with pytest.raises(TypeError, match=r"^Adder is the base class of the adder designs; "
                                        r"construct one of them \(e.g. RippleCarryAdder\)$"):
        Adder(8)


def test_block_size_is_keyword_only():
    with pytest.raises(TypeError):
        CarrySkipAdder(8, 2)


# --- structure -----------------------------------------------------------------------------

@pytest.mark.parametrize("width", [1, 2, 8, 24, 53])
def test_ripple_carry_plain_adder_is_n_minus_1_full_adders_and_1_half_adder(width):
    # li2022 section II.B.1: the FP32 significand add (24 bits) is 23 full adders + 1 half adder.
    dut = RippleCarryAdder(width, carry_in=False, subtract=False)
    assert _cell_counts(dut) == (width - 1, 1, 0)


@pytest.mark.parametrize("carry_in, subtract", CONFIGS[:3])
def test_ripple_carry_with_carry_in_is_n_full_adders(carry_in, subtract):
    dut = RippleCarryAdder(24, carry_in=carry_in, subtract=subtract)
    assert _cell_counts(dut) == (24, 0, 0)


def test_carry_skip_cells():
    # 8 bits in blocks 3+3+2: one ripple chain, one skip multiplexer per block.
    assert _cell_counts(CarrySkipAdder(8, block_size=3)) == (8, 0, 3)
    # Without a carry-in the lowest block has nothing to skip.
    assert _cell_counts(CarrySkipAdder(8, block_size=3, carry_in=False, subtract=False)) \
        == (7, 1, 2)


def test_carry_select_cells():
    # Blocks 3+3+2. Block 0: one chain. Blocks 1 and 2: a carry-0 chain (half adder at the
    # bottom), a carry-1 chain, and a multiplexer per sum bit plus one for the carry.
    full = 2 + (2 + 3) + (1 + 2)
    assert _cell_counts(CarrySelectAdder(8, block_size=3, carry_in=False, subtract=False)) \
        == (full, 3, 4 + 3)
    assert _cell_counts(CarrySelectAdder(8, block_size=3)) == (full + 1, 2, 4 + 3)


@pytest.mark.parametrize("cls", [CarryLookaheadAdder, BrentKungAdder, KoggeStoneAdder,
                                 SklanskyAdder])
def test_lookahead_and_prefix_designs_use_no_cells(cls):
    assert _cell_counts(cls(16)) == (0, 0, 0)


# --- function: amaranth.sim at small widths ---------------------------------------------------

@pytest.mark.parametrize("cls", ADDER_CLASSES, ids=DESIGN_IDS)
def test_exhaustive_small_widths_amaranth_sim(cls):
    for width in range(1, 5):
        for carry_in, subtract in CONFIGS:
            vectors, expected = _exhaustive_case(width, carry_in, subtract)
            dut = cls(width, carry_in=carry_in, subtract=subtract)
            assert _simulate_amaranth(dut, vectors) == expected, \
                (width, carry_in, subtract)


@pytest.mark.parametrize("cls", [CarrySkipAdder, CarrySelectAdder])
@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 7])
def test_block_sizes_exhaustive_amaranth_sim(cls, block_size):
    vectors = _all_vectors(5, True, True)
    dut = cls(5, block_size=block_size)
    assert _simulate_amaranth(dut, vectors) == _expected(vectors, 5)


def test_amaranth_sim_agrees_with_netlist_at_full_width():
    vectors = _wide_vectors(64, True, True, seed=7, count=100)[::97]
    dut = KoggeStoneAdder(64)
    assert _simulate_amaranth(dut, vectors) == _simulate_netlist(dut, vectors) \
        == _expected(vectors, 64)


# --- function: gate netlist, exhaustive at 8 bits and random at full width -------------------

@pytest.mark.parametrize("cls", ADDER_CLASSES, ids=DESIGN_IDS)
@pytest.mark.parametrize("carry_in, subtract", [(True, True), (False, False)])
def test_exhaustive_8_bits(cls, carry_in, subtract):
    vectors, expected = _exhaustive_case(8, carry_in, subtract)
    assert len(vectors) == 65536 * (4 if carry_in else 1)
    dut = cls(8, carry_in=carry_in, subtract=subtract)
    assert _simulate_netlist(dut, vectors) == expected


@pytest.mark.parametrize("cls", ADDER_CLASSES, ids=DESIGN_IDS)
@pytest.mark.parametrize("width", WIDE_WIDTHS)
def test_wide_random_and_corners(cls, width):
    vectors, expected = _wide_case(width, True, True, seed=width)
    dut = cls(width)
    assert _simulate_netlist(dut, vectors) == expected


@pytest.mark.parametrize("cls", ADDER_CLASSES, ids=DESIGN_IDS)
@pytest.mark.parametrize("width", [53])
def test_wide_plain_adder(cls, width):
    vectors, expected = _wide_case(width, False, False, seed=1000 + width)
    dut = cls(width, carry_in=False, subtract=False)
    assert _simulate_netlist(dut, vectors) == expected


def test_logic_depth_growth():
    # Ripple-carry depth grows linearly; the lookahead and prefix designs logarithmically,
    # Kogge-Stone and Sklansky (minimum levels) at or below Brent-Kung (2 log n levels).
    depth = {cls: netsim.netlist(cls(64)).depth() for cls in ADDER_CLASSES}
    assert depth[RippleCarryAdder] >= 2 * 64
    assert netsim.netlist(RippleCarryAdder(32)).depth() >= 2 * 32
    for cls in (CarryLookaheadAdder, BrentKungAdder, KoggeStoneAdder, SklanskyAdder):
        assert depth[cls] <= 30, cls
    assert depth[KoggeStoneAdder] <= depth[SklanskyAdder] <= depth[BrentKungAdder]
    assert depth[CarrySelectAdder] < depth[RippleCarryAdder] // 2
