import random

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwlib.adders import BrentKungAdder, KoggeStoneAdder, RippleCarryAdder, reference_add
from hwlib.cells import Counter32, FullAdder, HalfAdder, Mux2
from hwlib.netsim import simulate_netlist
from hwlib.synth import GATE_NAMES, SynthesisResult, cell_instances, synthesize

CMOS = {"NOT": 2, "NAND": 4, "NOR": 4, "AND": 6, "OR": 6, "XOR": 12, "XNOR": 12,
        "AOI3": 6, "OAI3": 6, "MUX": 12}


class AndGate(wiring.Component):
    def __init__(self):
        super().__init__({"a": In(1), "b": In(1), "y": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a & self.b)
        return m


class Multiply(wiring.Component):
    def __init__(self, width):
        super().__init__({"a": In(width), "b": In(width), "p": Out(2 * width)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(self.a * self.b)
        return m


def test_single_gate():
    assert synthesize(AndGate(), {"NOT": 2, "AND": 6}) == SynthesisResult(
        transistors=6, gates={"AND": 1}, depth=1)
    # Without AND, ABC builds it from a NAND (or NOR) and inverters.
    result = synthesize(AndGate(), {"NOT": 2, "NAND": 4})
    assert result == SynthesisResult(transistors=6, gates={"NAND": 1, "NOT": 1}, depth=2)
    assert result.gate_count == 2


def test_gate_set_limits_gate_types():
    result = synthesize(RippleCarryAdder(8), {"NOT": 2, "NAND": 4})
    assert set(result.gates) <= {"NOT", "NAND"}
    assert result.transistors == 2 * result.gates.get("NOT", 0) + 4 * result.gates["NAND"]


def test_cost_change_is_count_times_delta():
    base = synthesize(RippleCarryAdder(16), CMOS)
    assert base.transistors == sum(n * CMOS[g] for g, n in base.gates.items())
    for gate in base.gates:
        changed = synthesize(RippleCarryAdder(16), {**CMOS, gate: CMOS[gate] + 3})
        assert changed.gates == base.gates
        assert changed.depth == base.depth
        assert changed.transistors - base.transistors == 3 * base.gates[gate]
    # Fractional costs are allowed (e.g. a technology's effective transistor counts).
    half = synthesize(RippleCarryAdder(16), {g: c / 2 for g, c in CMOS.items()})
    assert half.transistors == base.transistors / 2


def test_kogge_stone_shallower_and_larger_than_ripple_carry():
    ripple = synthesize(RippleCarryAdder(32), CMOS)
    kogge = synthesize(KoggeStoneAdder(32), CMOS)
    brent = synthesize(BrentKungAdder(32), CMOS)
    assert kogge.depth < ripple.depth
    assert kogge.transistors > ripple.transistors
    assert kogge.gate_count > ripple.gate_count
    # The mapping keeps each architecture: Brent-Kung sits between the two.
    assert kogge.depth <= brent.depth < ripple.depth
    assert ripple.transistors < brent.transistors < kogge.transistors
    # A ripple-carry chain has at least one gate level per bit.
    assert ripple.depth >= 32


def test_mapped_netlist_computes_the_same_function():
    rng = random.Random(5)
    n = 2000
    a = [rng.getrandbits(32) for _ in range(n)] + [0xFFFFFFFF, 0, 0xFFFFFFFF]
    b = [rng.getrandbits(32) for _ in range(n)] + [1, 0, 0xFFFFFFFF]
    cin = [rng.getrandbits(1) for _ in range(n)] + [0, 1, 1]
    sub = [rng.getrandbits(1) for _ in range(n)] + [0, 1, 1]
    result = synthesize(KoggeStoneAdder(32), CMOS)
    got = simulate_netlist(result.netlist, {"a": a, "b": b, "cin": cin, "sub": sub})
    want = [reference_add(*v, 32) for v in zip(a, b, cin, sub)]
    assert got == {"s": [s for s, _ in want], "cout": [c for _, c in want]}

    result = synthesize(Multiply(8), {"NOT": 2, "NOR": 4})
    assert set(result.gates) <= {"NOT", "NOR"}
    a = [x for x in range(256) for _ in range(256)]
    b = [y for _ in range(256) for y in range(256)]
    assert simulate_netlist(result.netlist, {"a": a, "b": b}) == {
        "p": [x * y for x, y in zip(a, b)]}


def test_gate_names_are_yosys_cells():
    assert GATE_NAMES["NOT"] == "$_NOT_"
    assert GATE_NAMES["AOI3"] == "$_AOI3_"
    assert all(t == f"$_{name}_" for name, t in GATE_NAMES.items())


def test_gate_argument_errors():
    adder = RippleCarryAdder(4)
    with pytest.raises(TypeError, match=r"^Gate costs must be a non-empty dict of gate name "
                                        r"to transistors, not \{\}$"):
        synthesize(adder, {})
    with pytest.raises(ValueError, match=r"^Unknown gate 'NAND2'; expected one of NOT, AND, "
                                         r"NAND, OR, NOR, XOR, XNOR, ANDNOT, ORNOT, AOI3, "
                                         r"OAI3, AOI4, OAI4, MUX, NMUX$"):
        synthesize(adder, {"NOT": 2, "NAND2": 4})
    with pytest.raises(ValueError, match=r"^Transistors per NAND gate must be a non-negative "
                                         r"number, not -4$"):
        synthesize(adder, {"NOT": 2, "NAND": -4})
    with pytest.raises(ValueError, match=r"^Transistors per NAND gate must be a non-negative "
                                         r"number, not True$"):
        synthesize(adder, {"NOT": 2, "NAND": True})
    with pytest.raises(ValueError, match=r"^Transistors per NOT gate must be a non-negative "
                                         r"number, not nan$"):
        synthesize(adder, {"NOT": float("nan"), "NAND": 4})
    with pytest.raises(ValueError, match=r"^Gate set must include NOT; ABC always maps with "
                                         r"inverters$"):
        synthesize(adder, {"NAND": 4})
    with pytest.raises(ValueError, match=r"^Gate set must include at least one gate besides "
                                         r"NOT$"):
        synthesize(adder, {"NOT": 2})
    # ``adder`` was only inspected so far.
    assert cell_instances(adder) == {"full_adder": 4}


def test_cell_instances_of_cells():
    assert cell_instances(FullAdder()) == {"full_adder": 1}
    assert cell_instances(Counter32()) == {"counter_3_2": 1}
    assert cell_instances(HalfAdder()) == {"half_adder": 1}
    assert cell_instances(Mux2()) == {"mux2": 1}
    assert cell_instances(AndGate()) == {}


def test_cell_instances_of_ripple_carry():
    # li2022, section II.B.1: the 24-bit adder is 23 full adders and 1 half adder.
    assert cell_instances(RippleCarryAdder(24, carry_in=False, subtract=False)) == {
        "full_adder": 23, "half_adder": 1}
    assert cell_instances(RippleCarryAdder(8)) == {"full_adder": 8}


def test_cell_instances_through_nested_hierarchy():
    class Block(wiring.Component):
        def __init__(self):
            super().__init__({"x": In(3), "y": Out(2)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.c = c = Counter32()
            m.submodules.h = h = HalfAdder()
            m.submodules.sel = sel = Mux2()
            m.d.comb += [c.a.eq(self.x[0]), c.b.eq(self.x[1]), c.cin.eq(self.x[2]),
                         h.a.eq(c.s), h.b.eq(c.cout), sel.a.eq(h.s), sel.b.eq(h.cout),
                         sel.sel.eq(self.x[0]), self.y.eq(sel.y)]
            return m

    class Top(wiring.Component):
        def __init__(self):
            super().__init__({"x": In(3), "y": Out(2)})

        def elaborate(self, platform):
            m = Module()
            inner = Module()
            inner.submodules.b0 = b0 = Block()
            inner.submodules.b1 = b1 = Block()
            inner.submodules.adder = adder = RippleCarryAdder(2, subtract=False)
            inner.d.comb += [b0.x.eq(self.x), b1.x.eq(b0.y), adder.a.eq(b1.y),
                             adder.b.eq(self.x[:2]), adder.cin.eq(0)]
            m.submodules.inner = inner
            m.d.comb += self.y.eq(adder.s)
            return m

    assert cell_instances(Top()) == {"counter_3_2": 2, "full_adder": 2, "half_adder": 2,
                                     "mux2": 2}


class Undriven(wiring.Component):
    """An Out member nothing drives: its direction cannot be inferred from the netlist."""

    def __init__(self):
        super().__init__({"a": In(2), "y": Out(2), "spare": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.half = half = HalfAdder()
        m.d.comb += [half.a.eq(self.a[0]), half.b.eq(self.a[1]), self.y.eq(half.s)]
        return m


@pytest.mark.parametrize("make", [lambda: RippleCarryAdder(3), Undriven])
def test_elaboration_rtlil_equals_amaranth_convert(make):
    # elaborate() prepares the fragment itself (to read the cell hierarchy); its text must be
    # what the public amaranth.back.rtlil.convert writes, undriven outputs included.
    from amaranth.back import rtlil

    from hwlib.synth import elaborate
    elab = elaborate(make())
    assert elab.rtlil == rtlil.convert(make(), name="top")
    ports = [line.split() for line in elab.rtlil.splitlines() if line.lstrip().startswith("wire ")]
    if make is Undriven:
        assert ["output", "\\spare"] in [p[-3:-2] + p[-1:] for p in ports]
