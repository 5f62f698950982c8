import itertools
import json
import random

import numpy as np
import pytest
from amaranth import Cat, Module, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hwlib import netsim
from hwlib.cells import Counter32, FullAdder, HalfAdder, Mux2
from hwlib.netsim import GATE_TYPES, load_netlist_json, netlist, simulate, simulate_netlist


class Ripple(wiring.Component):
    """A small ripple-carry adder made of FullAdder cells."""

    def __init__(self, width):
        self.width = width
        super().__init__({"a": In(width), "b": In(width), "cin": In(1),
                          "s": Out(width), "cout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        carry = self.cin
        for i in range(self.width):
            fa = m.submodules[f"fa{i}"] = FullAdder()
            m.d.comb += [fa.a.eq(self.a[i]), fa.b.eq(self.b[i]), fa.cin.eq(carry),
                         self.s[i].eq(fa.s)]
            carry = fa.cout
        m.d.comb += self.cout.eq(carry)
        return m


class Multiply(wiring.Component):
    def __init__(self, width):
        super().__init__({"a": In(width), "b": In(width), "p": Out(2 * width)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(self.a * self.b)
        return m


class Mixed(wiring.Component):
    """Wide add, signed compare, shifts and constant outputs in one circuit."""

    def __init__(self):
        super().__init__({"x": In(106), "y": In(106), "z": In(signed(8)),
                          "sum": Out(107), "neg": Out(1), "shl": Out(16), "k": Out(8),
                          "zero": Out(3), "pass_": Out(106)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.sum.eq(self.x + self.y),
            self.neg.eq(self.z < 0),
            self.shl.eq(self.x[:8] << self.y[:3]),
            self.k.eq(0xA5),
            self.zero.eq(0),
            self.pass_.eq(self.x),
        ]
        return m


class Counter(wiring.Component):
    def __init__(self):
        super().__init__({"en": In(1), "q": Out(4)})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.q.eq(self.q + 1)
        return m


def amaranth_sim(component, vectors):
    """Reference: step amaranth.sim through ``vectors`` (a list of input dicts)."""
    ports = [(path[0], member) for path, member, _ in component.signature.flatten(component)]
    outputs = [name for name, member in ports if member.flow == Out]
    results = {name: [] for name in outputs}

    async def bench(ctx):
        for vector in vectors:
            for name, value in vector.items():
                ctx.set(getattr(component, name), value)
            for name in outputs:
                results[name].append(ctx.get(getattr(component, name)))

    sim = Simulator(component)
    sim.add_testbench(bench)
    sim.run()
    return results


def exhaustive(widths):
    names = list(widths)
    ranges = [range(1 << widths[n]) for n in names]
    combos = list(itertools.product(*ranges))
    return {n: [c[i] for c in combos] for i, n in enumerate(names)}


@pytest.mark.parametrize("cell", [FullAdder, Counter32, HalfAdder, Mux2])
def test_cells_match_amaranth_sim(cell):
    component = cell()
    widths = {path[0]: Shape.cast(member.shape).width
              for path, member, _ in component.signature.flatten(component)
              if member.flow == In}
    inputs = exhaustive(widths)
    vectors = [dict(zip(inputs, v)) for v in zip(*inputs.values())]
    assert simulate(component, inputs) == amaranth_sim(cell(), vectors)


def test_ripple_adder_matches_amaranth_sim():
    inputs = exhaustive({"a": 4, "b": 4, "cin": 1})
    vectors = [dict(zip(inputs, v)) for v in zip(*inputs.values())]
    got = simulate(Ripple(4), inputs)
    assert got == amaranth_sim(Ripple(4), vectors)
    assert got["s"] == [(a + b + c) & 15 for a, b, c in zip(*inputs.values())]


def test_mixed_circuit_matches_amaranth_sim_and_python():
    rng = random.Random(7)
    n = 300
    x = [rng.getrandbits(106) for _ in range(n)] + [0, (1 << 106) - 1]
    y = [rng.getrandbits(106) for _ in range(n)] + [0, (1 << 106) - 1]
    z = [rng.getrandbits(8) for _ in range(n)] + [0x80, 0x7F]
    got = simulate(Mixed(), {"x": x, "y": y, "z": z})
    assert list(got) == ["sum", "neg", "shl", "k", "zero", "pass_"]
    assert got["sum"] == [a + b for a, b in zip(x, y)]
    assert got["neg"] == [v >> 7 for v in z]
    assert got["shl"] == [(a & 0xFF) << (b & 7) for a, b in zip(x, y)]
    assert got["k"] == [0xA5] * len(x)
    assert got["zero"] == [0] * len(x)
    assert got["pass_"] == x
    # amaranth.sim reads signed ports as negative ints; netsim returns raw bit patterns.
    vectors = [{"x": a, "y": b, "z": c - 256 if c >> 7 else c} for a, b, c in zip(x, y, z)]
    want = amaranth_sim(Mixed(), vectors[:40])
    assert {k: v[:40] for k, v in got.items()} == want


def test_multiply_16x16_65536_vectors():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 1 << 16, size=65536, dtype=np.uint64)
    b = rng.integers(0, 1 << 16, size=65536, dtype=np.uint64)
    got = simulate(Multiply(16), {"a": a, "b": b})
    assert got["p"] == (a * b).tolist()


def test_multiply_wider_than_64_bits():
    rng = random.Random(3)
    a = [rng.getrandbits(40) for _ in range(500)] + [(1 << 40) - 1, 0, 1]
    b = [rng.getrandbits(40) for _ in range(500)] + [(1 << 40) - 1, 5, 1]
    assert simulate(Multiply(40), {"a": a, "b": b}) == {"p": [x * y for x, y in zip(a, b)]}


def test_vector_counts_not_multiple_of_64_and_empty():
    for n in (0, 1, 63, 64, 65, 130):
        inputs = {"a": [i % 16 for i in range(n)], "b": [(3 * i) % 16 for i in range(n)],
                  "cin": [i % 2 for i in range(n)]}
        got = simulate(Ripple(4), inputs)
        assert got["s"] == [(a + b + c) & 15 for a, b, c in zip(*inputs.values())]
        assert got["cout"] == [(a + b + c) >> 4 for a, b, c in zip(*inputs.values())]


def test_outputs_selection():
    inputs = {"a": [3, 15], "b": [4, 1], "cin": [0, 0]}
    assert simulate(Ripple(4), inputs, outputs=["cout"]) == {"cout": [0, 1]}
    assert simulate(Ripple(4), inputs, outputs="s") == {"s": [7, 0]}


def test_netlist_cached_by_rtlil():
    first = netlist(Ripple(5))
    assert netlist(Ripple(5)) is first
    assert netlist(Ripple(6)) is not first
    assert list(first.inputs) == ["a", "b", "cin"]
    assert list(first.outputs) == ["s", "cout"]
    assert first.depth() >= 5


def test_input_errors():
    c = Ripple(4)
    with pytest.raises(ValueError, match=r"^Missing value\(s\) for input port\(s\) 'cin'$"):
        simulate(c, {"a": [1], "b": [2]})
    with pytest.raises(ValueError, match=r"^Unknown input port\(s\) 'd'; the inputs are "
                                         r"'a', 'b', 'cin'$"):
        simulate(c, {"a": [1], "b": [2], "cin": [0], "d": [1]})
    with pytest.raises(ValueError, match=r"^Input sequences must have the same length, not "
                                         r"\{'a': 2, 'b': 1, 'cin': 1\}$"):
        simulate(c, {"a": [1, 2], "b": [2], "cin": [0]})
    with pytest.raises(ValueError, match=r"^Input 'a' value 16 does not fit an unsigned "
                                         r"4-bit port$"):
        simulate(c, {"a": [1, 16], "b": [2, 2], "cin": [0, 0]})
    with pytest.raises(ValueError, match=r"^Input 'b' value -1 does not fit an unsigned "
                                         r"4-bit port$"):
        simulate(c, {"a": [1], "b": [-1], "cin": [0]})
    with pytest.raises(TypeError, match=r"^Input 'a' must hold integers, not 1\.5$"):
        simulate(c, {"a": [1.5], "b": [2], "cin": [0]})
    with pytest.raises(TypeError, match=r"^Input 'a' must hold integers, not float64$"):
        simulate(c, {"a": np.array([1.0]), "b": [2], "cin": [0]})
    with pytest.raises(TypeError, match=r"^Inputs must be a dict of port name to values, "
                                        r"not \[1\]$"):
        simulate(c, [1])
    with pytest.raises(ValueError, match=r"^Unknown output port\(s\) 'q'; the outputs are "
                                         r"'s', 'cout'$"):
        simulate(c, {"a": [1], "b": [2], "cin": [0]}, outputs=["q"])


def test_sequential_circuit_rejected():
    with pytest.raises(ValueError, match=r"^Cell \S+ of type \$_\w+_ is not a combinational "
                                         r"one-bit gate; only combinational circuits can be "
                                         r"simulated or synthesized$"):
        netlist(Counter())


def _gate_netlist_json(cells):
    """A hand-made Yosys JSON netlist: inputs A, B, C, D, S (nets 2-6), one output per cell."""
    ports = {p: {"direction": "input", "bits": [2 + i]} for i, p in enumerate("ABCDS")}
    module_cells = {}
    for i, (kind, y) in enumerate(cells):
        conns = {p: [2 + "ABCDS".index(p)] for p in GATE_TYPES[kind]}
        conns["Y"] = [y]
        module_cells[f"g{i}"] = {"type": kind, "connections": conns}
        ports[f"y{i}"] = {"direction": "output", "bits": [y]}
    return json.dumps({"modules": {"top": {"ports": ports, "cells": module_cells}}})


def test_every_gate_type_exhaustively():
    functions = {
        "$_BUF_": lambda a, b, c, d, s: a,
        "$_NOT_": lambda a, b, c, d, s: 1 - a,
        "$_AND_": lambda a, b, c, d, s: a & b,
        "$_NAND_": lambda a, b, c, d, s: 1 - (a & b),
        "$_OR_": lambda a, b, c, d, s: a | b,
        "$_NOR_": lambda a, b, c, d, s: 1 - (a | b),
        "$_XOR_": lambda a, b, c, d, s: a ^ b,
        "$_XNOR_": lambda a, b, c, d, s: 1 - (a ^ b),
        "$_ANDNOT_": lambda a, b, c, d, s: a & (1 - b),
        "$_ORNOT_": lambda a, b, c, d, s: a | (1 - b),
        "$_MUX_": lambda a, b, c, d, s: b if s else a,
        "$_NMUX_": lambda a, b, c, d, s: 1 - (b if s else a),
        "$_AOI3_": lambda a, b, c, d, s: 1 - ((a & b) | c),
        "$_OAI3_": lambda a, b, c, d, s: 1 - ((a | b) & c),
        "$_AOI4_": lambda a, b, c, d, s: 1 - ((a & b) | (c & d)),
        "$_OAI4_": lambda a, b, c, d, s: 1 - ((a | b) & (c | d)),
    }
    assert set(functions) == set(GATE_TYPES)
    kinds = list(functions)
    net = load_netlist_json(_gate_netlist_json([(k, 10 + i) for i, k in enumerate(kinds)]))
    inputs = exhaustive({p: 1 for p in "ABCDS"})
    got = simulate_netlist(net, inputs)
    for i, kind in enumerate(kinds):
        want = [functions[kind](*v) for v in zip(*inputs.values())]
        assert got[f"y{i}"] == want, kind
    assert net.depth() == 1


def test_levels_and_depth_of_a_chain():
    # y0 = ~A, y1 = y0 & B (through nets 10, 11, 12, 13)
    text = json.dumps({"modules": {"top": {
        "ports": {"A": {"direction": "input", "bits": [2]},
                  "B": {"direction": "input", "bits": [3]},
                  "Y": {"direction": "output", "bits": [12, "1", 3]}},
        "cells": {
            "c": {"type": "$_AND_", "connections": {"A": [11], "B": [3], "Y": [12]}},
            "b": {"type": "$_BUF_", "connections": {"A": [10], "Y": [11]}},
            "a": {"type": "$_NOT_", "connections": {"A": [2], "Y": [10]}},
        }}}})
    net = load_netlist_json(text)
    assert net.gate_types == ("$_NOT_", "$_BUF_", "$_AND_")
    assert net.depth() == 2
    got = simulate_netlist(net, {"A": [0, 0, 1, 1], "B": [0, 1, 0, 1]})
    assert got == {"Y": [0b010, 0b111, 0b010, 0b110]}


def test_netlist_errors():
    loop = json.dumps({"modules": {"top": {
        "ports": {"Y": {"direction": "output", "bits": [2]}},
        "cells": {"a": {"type": "$_NOT_", "connections": {"A": [3], "Y": [2]}},
                  "b": {"type": "$_NOT_", "connections": {"A": [2], "Y": [3]}}}}}})
    with pytest.raises(ValueError, match=r"^Netlist has a combinational loop$"):
        load_netlist_json(loop)
    with pytest.raises(ValueError, match=r"^Netlist has no module 'top'$"):
        load_netlist_json(json.dumps({"modules": {}}))
    word = json.dumps({"modules": {"top": {"ports": {}, "cells": {
        "x": {"type": "$add", "connections": {"A": [2], "B": [3], "Y": [4]}}}}}})
    with pytest.raises(ValueError, match=r"^Cell x of type \$add is not a combinational "
                                         r"one-bit gate; only combinational circuits can be "
                                         r"simulated or synthesized$"):
        load_netlist_json(word)


def test_simulate_rtlil_text():
    from amaranth.back import rtlil
    text = rtlil.convert(HalfAdder(), name="top")
    assert simulate(text, {"a": [0, 1, 0, 1], "b": [0, 0, 1, 1]}) == {
        "s": [0, 1, 1, 0], "cout": [0, 0, 0, 1]}
    assert netsim.rtlil_port_order(text) == ["a", "b", "s", "cout"]


def test_pack_unpack_round_trip():
    rng = random.Random(11)
    for width in (1, 7, 8, 63, 64, 65, 106, 200):
        values = [rng.getrandbits(width) for _ in range(150)] + [(1 << width) - 1, 0]
        n_words = (len(values) + 63) // 64
        words = netsim.pack_bits(values, width, n_words)
        assert words.shape == (n_words, width)
        assert int(words[0, 0]) & 1 == values[0] & 1
        assert netsim.unpack_bits(words, len(values)) == values


def test_concatenated_ports_and_signals():
    class Swap(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(70), "y": Out(70)})

        def elaborate(self, platform):
            m = Module()
            t = Signal(70)
            m.d.comb += [t.eq(Cat(self.a[35:], self.a[:35])), self.y.eq(t)]
            return m

    a = [random.Random(5).getrandbits(70) for _ in range(10)]
    want = [(v >> 35) | ((v & ((1 << 35) - 1)) << 35) for v in a]
    assert simulate(Swap(), {"a": a}) == {"y": want}
