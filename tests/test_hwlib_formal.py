"""Formal proofs that every adder design equals ``a + b`` (the verification policy:
"Adders are also proven equal to a + b formally with Yosys at widths up to 32")."""
import pytest
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwlib.adders import ADDER_CLASSES, RippleCarryAdder, reference_add
from hwlib.netsim import simulate
from hwlib.synth import ProofResult, prove


class AdderMiter(wiring.Component):
    """Drives an adder and a reference ``a + b + cin`` / ``a + ~b + 1`` from the same inputs;
    ``ok`` is 1 when ``{cout, s}`` agree. Inputs are the adder's own (``a, b[, cin][, sub]``).

    ``bug`` (a dict of input values) makes the miter's adder output wrong for exactly that
    one input vector: a broken adder whose fault random testing would practically never hit.
    """

    def __init__(self, adder, *, bug=None):
        self.adder = adder
        self.bug = bug
        self.width = adder.width
        members = {"a": In(self.width), "b": In(self.width)}
        if adder.carry_in:
            members["cin"] = In(1)
        if adder.subtract:
            members["sub"] = In(1)
        members["ok"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        w = self.width
        m.submodules.adder = adder = self.adder
        m.d.comb += [adder.a.eq(self.a), adder.b.eq(self.b)]
        cin = Const(0, 1)
        if self.adder.carry_in:
            m.d.comb += adder.cin.eq(self.cin)
            cin = self.cin
        ref = Signal(w + 1)
        if self.adder.subtract:
            m.d.comb += adder.sub.eq(self.sub)
            m.d.comb += ref.eq(Mux(self.sub, self.a + ~self.b + 1, self.a + self.b + cin))
        else:
            m.d.comb += ref.eq(self.a + self.b + cin)
        got = Signal(w + 1)
        m.d.comb += got.eq(Cat(adder.s, adder.cout))
        if self.bug is not None:
            hit = Const(1, 1)
            for name, value in self.bug.items():
                hit = hit & (getattr(self, name) == value)
            m.d.comb += self.ok.eq((got ^ hit) == ref)
        else:
            m.d.comb += self.ok.eq(got == ref)
        return m


WIDTHS = [8, 16, 32]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("cls", ADDER_CLASSES, ids=lambda c: c.design_name)
def test_adder_equals_a_plus_b(cls, width):
    result = prove(AdderMiter(cls(width)))
    assert result == ProofResult(proven=True)
    assert result


@pytest.mark.parametrize("width", [16])
@pytest.mark.parametrize("cls", ADDER_CLASSES, ids=lambda c: c.design_name)
def test_adder_without_carry_in_or_subtract(cls, width):
    assert prove(AdderMiter(cls(width, carry_in=False, subtract=False))).proven


@pytest.mark.parametrize("cls", ADDER_CLASSES, ids=lambda c: c.design_name)
def test_adder_with_carry_in_only(cls):
    assert prove(AdderMiter(cls(12, subtract=False))).proven


def test_broken_adder_is_refuted_with_its_one_counterexample():
    bug = {"a": 0xDEADBEEF, "b": 0x12345678, "cin": 1, "sub": 0}
    result = prove(AdderMiter(RippleCarryAdder(32), bug=bug))
    assert not result
    assert result.proven is False
    assert result.counterexample == bug
    # The counterexample really breaks the miter.
    assert simulate(AdderMiter(RippleCarryAdder(32), bug=bug),
                    {k: [v] for k, v in bug.items()}) == {"ok": [0]}


def test_wrong_reference_is_refuted():
    class OffByOne(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(8), "b": In(8), "ok": Out(1)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.adder = adder = RippleCarryAdder(8, carry_in=False, subtract=False)
            m.d.comb += [adder.a.eq(self.a), adder.b.eq(self.b)]
            m.d.comb += self.ok.eq(Cat(adder.s, adder.cout) == self.a + self.b + 1)
            return m

    result = prove(OffByOne())
    assert not result.proven
    cex = result.counterexample
    assert set(cex) == {"a", "b"}
    s, cout = reference_add(cex["a"], cex["b"], 0, 0, 8)
    assert s + (cout << 8) != cex["a"] + cex["b"] + 1


def test_prove_rtlil_text_and_custom_output():
    class Tautology(wiring.Component):
        def __init__(self):
            super().__init__({"x": In(4), "fine": Out(1), "bad": Out(1)})

        def elaborate(self, platform):
            m = Module()
            m.d.comb += [self.fine.eq((self.x ^ self.x) == 0), self.bad.eq(self.x != 9)]
            return m

    assert prove(Tautology(), output="fine").proven
    result = prove(rtlil.convert(Tautology(), name="top"), output="bad")
    assert result == ProofResult(proven=False, counterexample={"x": 9})


def test_prove_argument_errors():
    miter = AdderMiter(RippleCarryAdder(4))
    with pytest.raises(ValueError, match=r"^Component has no output port 'nope'$"):
        prove(miter, output="nope")
    with pytest.raises(ValueError, match=r"^Component has no output port 'a'$"):
        prove(miter, output="a")
    with pytest.raises(ValueError, match=r"^Output must be a port name, not 'ok 1; sat'$"):
        prove(miter, output="ok 1; sat")
    adder = RippleCarryAdder(4)
    with pytest.raises(ValueError, match=r"^Output 's' must be 1 bit wide to be proven$"):
        prove(adder, output="s")
    # Both were only inspected; elaborate them so Amaranth does not warn they went unused.
    assert prove(miter).proven
    assert simulate(adder, {"a": [9], "b": [8], "cin": [1], "sub": [0]}) == {
        "s": [2], "cout": [1]}
