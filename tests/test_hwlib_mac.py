# amaranth: UnusedElaboratable=no
"""Tests of hwlib.units.mac: integer multiply-accumulate units against reference_mac.

int4 x int4 + int32 runs exhaustively over the products in amaranth.sim; int8 x int8 + int32
exhaustively over the 65,536 products in hwlib.netsim (the Yosys-mapped netlist), each product
with a seeded random accumulator and again with the corner accumulators (0, the int32 extremes,
-1), where the sum wraps modulo 2**32. The first line turns off amaranth's UnusedElaboratable
warning for the components built only to check parameters.
"""
import itertools
import json
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

import hardware_profiles as hp
from hwlib import cost
from hwlib._specs import _source_digest
from hwlib.netsim import simulate
from hwlib.units import units_digest
from hwlib.units.mac import MAC_CLASSES, MAC_DESIGNS, ArrayMAC, BoothWallaceMAC, DaddaMAC, mac_unit, reference_mac
from tosim.cli import main

SIGNEDNESS = pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
DESIGNS = pytest.mark.parametrize("cls", MAC_CLASSES, ids=lambda c: c.__name__)
CORNER_ACCS = [0, 1, (1 << 31) - 1, 1 << 31, (1 << 32) - 1]


def _signed(x, width):
    return x - (1 << width) if x >> (width - 1) else x


def test_reference_mac_values_and_wrap():
    assert reference_mac(3, 5, 7, 8) == 22
    assert reference_mac(0xFF, 0xFF, 0, 8, signed=True) == 1                      # -1 * -1
    assert reference_mac(0x80, 0x80, 0, 8, signed=True) == 16384                  # -128 * -128
    assert reference_mac(0x80, 0x7F, 0, 8, signed=True) == (1 << 32) - 16256      # -128 * 127
    assert reference_mac(0xFF, 0xFF, 0, 8, signed=False) == 65025
    # overflow wraps modulo 2**32: INT32_MAX + 1 is INT32_MIN, -1 + 1 is 0
    assert reference_mac(1, 1, (1 << 31) - 1, 8, signed=True) == 1 << 31
    assert reference_mac(1, 1, (1 << 32) - 1, 8) == 0
    assert reference_mac(0x8, 0x8, 0, 4, signed=True) == 64                       # -8 * -8 in int4
    assert reference_mac(-3, 5, 0, 4, signed=True) == (1 << 32) - 15              # negative ints wrap


def test_reference_mac_matches_numpy_int32_wrapping():
    rng = np.random.default_rng(18)
    a = rng.integers(-128, 128, 5000)
    b = rng.integers(-128, 128, 5000)
    c = rng.integers(-(1 << 31), 1 << 31, 5000)
    want = (c.astype(np.int32) + (a * b).astype(np.int32)).view(np.uint32)       # wraps, no warning for arrays
    got = [reference_mac(int(x), int(y), int(z) % (1 << 32), 8, signed=True) for x, y, z in zip(a, b, c)]
    assert got == [int(v) for v in want]


def test_designs_and_parameter_errors():
    assert MAC_DESIGNS == {"booth_wallace": BoothWallaceMAC, "array": ArrayMAC, "dadda": DaddaMAC}
    dut = DaddaMAC(8, signed=True)
    assert (dut.width, dut.acc_width, dut.p_width) == (8, 32, 32)
    assert [len(getattr(dut, port)) for port in "abcs"] == [8, 8, 32, 32]
    with pytest.raises(ValueError, match="hold the 16-bit product"):
        BoothWallaceMAC(8, 12)
    with pytest.raises(TypeError, match="signedness"):
        ArrayMAC(4, signed=1)
    with pytest.raises(ValueError):
        ArrayMAC(0)
    with pytest.raises(cost.CircuitError, match="Unknown MAC design"):
        mac_unit("wallace", 8)
    with pytest.raises(cost.CircuitError, match="cannot hold"):
        mac_unit("dadda", 8, 8)


def _amaranth_sim(dut, vectors):
    out = []

    async def bench(ctx):
        for a, b, c in vectors:
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            ctx.set(dut.c, c)
            out.append(ctx.get(dut.s))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return out


@DESIGNS
@SIGNEDNESS
def test_int4_exhaustive_amaranth_sim(cls, signed):
    rng = random.Random(4)
    dut = cls(4, 32, signed=signed, final_adder="kogge_stone")
    products = list(itertools.product(range(16), repeat=2))
    vectors = [(a, b, rng.getrandbits(32)) for a, b in products]
    vectors += [(a, b, c) for c in CORNER_ACCS for a, b in [(0, 0), (15, 15), (8, 8), (8, 7), (7, 7), (15, 1)]]
    assert _amaranth_sim(dut, vectors) == [reference_mac(a, b, c, 4, 32, signed) for a, b, c in vectors]


@pytest.mark.parametrize("cls, adder", [(BoothWallaceMAC, "carry_lookahead"), (ArrayMAC, "ripple_carry"),
                                        (DaddaMAC, "sklansky")], ids=lambda v: getattr(v, "__name__", v))
@SIGNEDNESS
def test_int8_exhaustive_netsim(cls, adder, signed):
    rng = random.Random(8)
    dut = cls(8, 32, signed=signed, final_adder=adder)
    a, b = (list(v) for v in zip(*itertools.product(range(256), repeat=2)))
    c = [rng.getrandbits(32) for _ in a] + [acc for acc in CORNER_ACCS for _ in a]
    a, b = a * (1 + len(CORNER_ACCS)), b * (1 + len(CORNER_ACCS))
    got = simulate(dut, {"a": a, "b": b, "c": c})["s"]
    assert len(got) == 65536 * 6
    assert got == [reference_mac(x, y, z, 8, 32, signed) for x, y, z in zip(a, b, c)]
    if signed:   # the wrap is seen: INT32_MAX + 127 * 127 comes out negative
        i = (1 + CORNER_ACCS.index((1 << 31) - 1)) * 65536 + 127 * 256 + 127
        assert _signed(got[i], 32) == -(1 << 31) + 127 * 127 - 1


def test_mac_specs_key_their_own_sources():
    spec = mac_unit("booth_wallace", 8, options={"design": "booth_wallace", "final_adder": "kogge_stone"})
    assert spec.params == {"circuit": "mac", "kind": "mac", "design": "booth_wallace", "width": 8, "acc_width": 32,
                           "signed": True, "options": {"final_adder": "kogge_stone"}, "sources": units_digest()}
    assert mac_unit("booth_wallace", 8, signed=False).params["signed"] is False
    # the built-in tables' digest does not cover hwlib/units (no built-in table uses a MAC)
    assert len(_source_digest()) == len(units_digest()) == 64 and _source_digest() != units_digest()


def test_compare_mac_prices_the_synthesized_unit(capsys):
    profile = hp.load("cmos-generic")
    rows = cost.compare_designs("mac", [4], profile, ["dadda"], signed=False)
    direct = cost.count(DaddaMAC(4, 32, signed=False, final_adder="carry_lookahead"), profile.technology)
    assert rows[0].design == "dadda" and rows[0].width == 4 and rows[0].cost == direct
    assert main(["compare-adders", "--unit", "mac", "--widths", "4", "--designs", "dadda", "--unsigned",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["design"], r["width"], r["transistors"]) for r in out] == [("dadda", 4, direct.transistors)]
    assert main(["compare-adders", "--unit", "mac", "--designs", "wallace"]) == 2
    assert "wallace" in capsys.readouterr().err
    assert main(["compare-adders", "--unit", "mac", "--power"]) == 2
    assert "does not cover --unit mac" in capsys.readouterr().err


def test_array_mac_keeps_carry_save_above_the_product():
    # Above the product's columns a row that does not reach a column leaves its sum and carry
    # alone; the multiplier's rule put a half adder there in every row (a signed int4 unit had
    # 102 half adders, a row of 24 per row of partial products). The unsigned unit is unchanged.
    from hwlib.synth import elaborate
    counts = {}
    for signed in (False, True):
        dut = ArrayMAC(4, 32, signed=signed, final_adder="carry_lookahead")
        elaborate(dut)
        counts[signed] = {cls.__name__: n for cls, n in dut.cell_counts.items()}
    assert counts[False] == {"HalfAdder": 9, "FullAdder": 11}
    assert counts[True] == {"HalfAdder": 57, "FullAdder": 12}
