"""Datapath pieces shared by the floating-point units: shifter, leading-zero counter, comparator.

Each circuit has a plain-Python reference model next to it (`reference_shift`,
`reference_leading_zeros`, `reference_compare`), which the tests drive against the hardware.

* `BarrelShifter`: significand alignment (right shift with a sticky bit feeding the guard,
  round and sticky bits of IEEE-754 addition) and normalization (left shift).
* `LeadingZeroCounter`: the normalization distance after a cancelling subtraction.
* `Comparator`: exponent comparison, and the ``cmp`` basic operation (ReLU, max-pool, argmax).
"""
import inspect

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .adders import Adder
from .registry import design_class, designs_for

__all__ = [
    "BarrelShifter",
    "LeadingZeroCounter",
    "Comparator",
    "reference_shift",
    "reference_leading_zeros",
    "reference_compare",
    "shift_amount_width",
]

_DIRECTIONS = ("right", "left")


def _check_width(width, what):
    if isinstance(width, bool) or not isinstance(width, int):
        raise TypeError(f"{what} width must be a positive integer, not {width!r}")
    if width < 1:
        raise ValueError(f"{what} width must be a positive integer, not {width!r}")
    return width


def _check_bool(value, what):
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, not {value!r}")
    return value


def _check_operand(name, value, width):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >> width:
        raise ValueError(f"Operand {name} must be an integer in [0, {(1 << width) - 1}], "
                         f"not {value!r}")


def shift_amount_width(width):
    """Bits of a shift amount that can say 0..width: ``ceil(log2(width + 1))``, at least 1."""
    return max(1, int(width).bit_length())


def reference_shift(data, amount, width, *, direction="right", arithmetic=False):
    """Plain-Python model of `BarrelShifter`: returns ``(out, sticky)``.

    ``sticky`` is the OR of every bit shifted out of the ``width``-bit word. An amount of
    ``width`` or more shifts everything out: the result is 0, or all copies of the sign bit for
    an arithmetic right shift.
    """
    _check_width(width, "Shifter")
    mask = (1 << width) - 1
    _check_operand("data", data, width)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError(f"Shift amount must be a non-negative integer, not {amount!r}")
    if direction == "right":
        if arithmetic and data >> (width - 1):
            # Sign-extend to twice the width first, so the fill comes in from the top.
            extended = data | (mask << width)
            out = (extended >> min(amount, width)) & mask
        else:
            out = data >> amount if amount < width else 0
        sticky = int(data & ((1 << min(amount, width)) - 1) != 0)
    elif direction == "left":
        out = (data << amount) & mask if amount < width else 0
        kept = width - min(amount, width)
        sticky = int(data >> kept != 0)
    else:
        raise ValueError(f"Shift direction must be one of 'right', 'left', not {direction!r}")
    return out, sticky


def reference_leading_zeros(data, width):
    """Plain-Python model of `LeadingZeroCounter`: returns ``(count, zero)``."""
    _check_width(width, "Leading-zero counter")
    _check_operand("data", data, width)
    return width - data.bit_length(), int(data == 0)


def reference_compare(a, b, width, *, signed=False):
    """Plain-Python model of `Comparator`: returns ``(lt, eq, gt)`` as 0/1 ints.

    With ``signed=True`` the operands are read as two's-complement numbers.
    """
    _check_width(width, "Comparator")
    _check_operand("a", a, width)
    _check_operand("b", b, width)
    if signed:
        a -= (a >> (width - 1)) << width
        b -= (b >> (width - 1)) << width
    return int(a < b), int(a == b), int(a > b)


class BarrelShifter(wiring.Component):
    """Logarithmic barrel shifter: one stage of 2:1 multiplexers per bit of the shift amount.

    Stage ``k`` shifts by ``2**k`` when bit ``k`` of ``amount`` is set, so any amount up to
    ``2**len(amount) - 1`` takes ``len(amount) = ceil(log2(width + 1))`` stages; amounts of
    ``width`` or more give 0 (or the sign fill of an arithmetic right shift). With
    ``sticky=True`` each stage also ORs together the bits it drops, and the OR over the stages
    is the sticky bit of the whole shift (the "S" of the guard/round/sticky bits in IEEE-754
    addition, where the smaller significand is right-shifted for alignment).

    Area O(n log n) (``width`` multiplexers per stage), delay O(log n) stages. The
    logarithmic shifter is the textbook form (Weste & Harris, *CMOS VLSI Design*, section on
    shifters; Lim, "Barrel shifter" 1972).

    Parameters
    ----------
    width : int
        Data width in bits, at least 1.
    direction : "right" or "left"
    sticky : bool
        Add the ``sticky`` output.
    arithmetic : bool
        Fill with the sign bit (right shifts only).

    Ports: ``data: In(width)``, ``amount: In(shift_amount_width(width))``,
    ``out: Out(width)``, and ``sticky: Out(1)`` when ``sticky``.
    """

    def __init__(self, width, *, direction="right", sticky=False, arithmetic=False):
        self._width = _check_width(width, "Shifter")
        if direction not in _DIRECTIONS:
            raise ValueError(f"Shift direction must be one of 'right', 'left', not {direction!r}")
        self._direction = direction
        self._sticky = _check_bool(sticky, "Shifter sticky")
        self._arithmetic = _check_bool(arithmetic, "Shifter arithmetic")
        if arithmetic and direction != "right":
            raise ValueError("Arithmetic shift is only defined for direction 'right'")
        members = {
            "data": In(width),
            "amount": In(shift_amount_width(width)),
            "out": Out(width),
        }
        if sticky:
            members["sticky"] = Out(1)
        super().__init__(members)

    @property
    def width(self):
        return self._width

    @property
    def direction(self):
        return self._direction

    @property
    def arithmetic(self):
        return self._arithmetic

    def elaborate(self, platform):
        m = Module()
        n = self._width
        value = self.data
        fill = self.data[-1] if self._arithmetic else Const(0, 1)
        dropped = []
        for k in range(len(self.amount)):
            step = 1 << k
            shifted = Signal(n, name=f"stage{k}")
            if step >= n:
                moved = fill.replicate(n)
                lost = value
            elif self._direction == "right":
                moved = Cat(value[step:], fill.replicate(step))
                lost = value[:step]
            else:
                moved = Cat(Const(0, step), value[:n - step])
                lost = value[n - step:]
            m.d.comb += shifted.eq(Mux(self.amount[k], moved, value))
            if self._sticky:
                dropped.append(self.amount[k] & lost.any())
            value = shifted
        m.d.comb += self.out.eq(value)
        if self._sticky:
            sticky = dropped[0]
            for bit in dropped[1:]:
                sticky = sticky | bit
            m.d.comb += self.sticky.eq(sticky)
        return m


class LeadingZeroCounter(wiring.Component):
    """Leading-zero counter as a binary tree (the recursive LZC).

    The data is padded at the bottom with zeros to a power of two ``2**L``. A leaf is one bit
    (all-zero flag ``~x``, an empty count); a node joins an upper half ``(zH, cH)`` and a lower
    half ``(zL, cL)`` into ``z = zH & zL`` and ``c = {zH, zH ? cL : cH}``. The root's ``c`` is
    the count whenever the data is non-zero; ``count = zero ? width : c``.

    Area O(n log n) at most (O(n) nodes, each a multiplexer of up to ``log n`` bits), delay
    O(log n). Oklobdzija, "An algorithmic and novel design of a leading zero detector
    circuit" (1994).

    Ports: ``data: In(width)``, ``count: Out(width.bit_length())`` (0..width),
    ``zero: Out(1)``.
    """

    def __init__(self, width):
        self._width = _check_width(width, "Leading-zero counter")
        super().__init__({
            "data": In(width),
            "count": Out(max(1, width.bit_length())),
            "zero": Out(1),
        })

    @property
    def width(self):
        return self._width

    def elaborate(self, platform):
        m = Module()
        n = self._width
        levels = (n - 1).bit_length()
        padded = Cat(Const(0, (1 << levels) - n), self.data)
        # Each node is (all-zero flag, count bits); bit lists are most significant last.
        nodes = [(~padded[i], []) for i in range(1 << levels)]
        for level in range(levels):
            joined = []
            for j in range(0, len(nodes), 2):
                (z_lo, c_lo), (z_hi, c_hi) = nodes[j], nodes[j + 1]
                z = Signal(name=f"z{level + 1}_{j // 2}")
                m.d.comb += z.eq(z_hi & z_lo)
                if c_hi:
                    c = Signal(len(c_hi), name=f"c{level + 1}_{j // 2}")
                    m.d.comb += c.eq(Mux(z_hi, Cat(*c_lo), Cat(*c_hi)))
                    bits = list(c)
                else:
                    bits = []
                joined.append((z, bits + [z_hi]))
            nodes = joined
        (zero, bits), = nodes
        m.d.comb += self.zero.eq(zero)
        if bits:
            m.d.comb += self.count.eq(Mux(zero, n, Cat(*bits)))
        else:
            m.d.comb += self.count.eq(zero)
        return m


def _adder_class(adder):
    if inspect.isclass(adder) and issubclass(adder, Adder):
        return adder
    names = designs_for("add")
    if isinstance(adder, str) and adder in names:
        return design_class(adder, "add")
    raise ValueError(f"Comparator adder must be one of {', '.join(names)} or an adder class, "
                     f"not {adder!r}")


class Comparator(wiring.Component):
    """Magnitude comparator built on a subtractor plus equality logic.

    ``a - b`` is computed by the chosen adder design in subtract mode; its carry-out is 1
    exactly when ``a >= b`` (unsigned), so ``lt = ~cout``. For signed operands, flipping both
    sign bits maps two's-complement order onto unsigned order, which amounts to
    ``lt = ~cout ^ a[-1] ^ b[-1]``. ``eq`` is an XNOR per bit and an AND tree
    (``eq = ~|(a ^ b)``), and ``gt = ~lt & ~eq``.

    Area and delay are those of the subtractor (O(n) and O(n) for ripple-carry, O(log n)
    delay for the prefix designs) plus O(n) area and O(log n) delay for the equality tree.

    Parameters
    ----------
    width : int
    signed : bool
    adder : str or adder class
        A design name of ``hwlib.registry.designs_for("add")`` or a subclass of
        `hwlib.adders.Adder`; default ``"ripple_carry"``.

    Ports: ``a, b: In(width)``; ``lt, eq, gt: Out(1)``.
    """

    def __init__(self, width, *, signed=False, adder="ripple_carry"):
        self._width = _check_width(width, "Comparator")
        self._signed = _check_bool(signed, "Comparator signed")
        self._adder_class = _adder_class(adder)
        super().__init__({"a": In(width), "b": In(width),
                          "lt": Out(1), "eq": Out(1), "gt": Out(1)})

    @property
    def width(self):
        return self._width

    @property
    def signed(self):
        return self._signed

    @property
    def adder_class(self):
        return self._adder_class

    def elaborate(self, platform):
        m = Module()
        m.submodules.subtractor = subtractor = self._adder_class(
            self._width, carry_in=False, subtract=True)
        m.d.comb += [subtractor.a.eq(self.a), subtractor.b.eq(self.b), subtractor.sub.eq(1)]
        lt = ~subtractor.cout
        if self._signed:
            lt = lt ^ self.a[-1] ^ self.b[-1]
        diff = Signal(self._width, name="diff")
        m.d.comb += diff.eq(self.a ^ self.b)
        eq = ~diff.any()
        m.d.comb += [self.lt.eq(lt), self.eq.eq(eq), self.gt.eq(~lt & ~eq)]
        return m
