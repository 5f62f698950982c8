"""Building cells: the leaf components every arithmetic unit in hwlib is made of.

Each cell is its own `wiring.Component`, so that the elaborated hierarchy (and the Yosys
netlist made from it, before flattening) shows one instance per cell. Structural counting
(`technology.counting: structural` in a profile) prices these instances at the profile's
`cells:` costs, e.g. the 10-transistor full adder of li2022 (section II.B.1), and prices the
glue logic around them gate by gate.

Cell names, used as module names in the netlist and as keys of a profile's `cells:` section:

=============  =====================================  ==================================
cell           function                               classic static-CMOS transistors
=============  =====================================  ==================================
full_adder     s = a^b^cin, cout = maj(a, b, cin)     28 (mirror adder)
half_adder     s = a^b, cout = a&b                    14 (XOR 8/12 + AND 6)
counter_3_2    a full adder used as a 3:2 compressor  28
mux2           y = b if sel else a                    12 (transmission-gate: 6)
=============  =====================================  ==================================
"""
from amaranth import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["FullAdder", "HalfAdder", "Counter32", "Mux2", "CELL_NAMES"]


class FullAdder(wiring.Component):
    """One-bit full adder: ``s = a ^ b ^ cin``, ``cout = majority(a, b, cin)``.

    The ripple-carry adder of the TOs paper is a chain of these (li2022, Fig. 3).
    """

    cell_name = "full_adder"

    def __init__(self):
        super().__init__({"a": In(1), "b": In(1), "cin": In(1), "s": Out(1), "cout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.s.eq(self.a ^ self.b ^ self.cin),
            self.cout.eq((self.a & self.b) | (self.cin & (self.a ^ self.b))),
        ]
        return m


class Counter32(FullAdder):
    """A 3:2 counter (carry-save adder cell) of a Wallace or Dadda tree.

    Logically a full adder; kept as its own cell so that a structural count can report how
    many counters a reduction tree uses (Wallace 1964; Dadda 1965).
    """

    cell_name = "counter_3_2"


class HalfAdder(wiring.Component):
    """One-bit half adder: ``s = a ^ b``, ``cout = a & b`` (a 2:2 counter)."""

    cell_name = "half_adder"

    def __init__(self):
        super().__init__({"a": In(1), "b": In(1), "s": Out(1), "cout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.s.eq(self.a ^ self.b), self.cout.eq(self.a & self.b)]
        return m


class Mux2(wiring.Component):
    """Two-input multiplexer: ``y = b if sel else a``."""

    cell_name = "mux2"

    def __init__(self):
        super().__init__({"a": In(1), "b": In(1), "sel": In(1), "y": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(Mux(self.sel, self.b, self.a))
        return m


CELL_NAMES = tuple(cls.cell_name for cls in (FullAdder, HalfAdder, Counter32, Mux2))
