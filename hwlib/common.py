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

from . import checks
from .adders import Adder
from .cells import Mux2
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


def shift_amount_width(width):
    """Bits of a shift amount that can say 0..width: ``ceil(log2(width + 1))``, at least 1."""
    return max(1, int(width).bit_length())


def reference_shift(data, amount, width, *, direction="right", arithmetic=False):
    """Plain-Python model of `BarrelShifter`: returns ``(out, sticky)``.

    ``sticky`` is the OR of every bit shifted out of the ``width``-bit word. An amount of
    ``width`` or more shifts everything out: the result is 0, or all copies of the sign bit for
    an arithmetic right shift.
    """
    checks.positive_int(width, "Shifter width")
    mask = (1 << width) - 1
    checks.operand(data, (1 << width) - 1, "Operand data")
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
    checks.positive_int(width, "Leading-zero counter width")
    checks.operand(data, (1 << width) - 1, "Operand data")
    return width - data.bit_length(), int(data == 0)


def reference_compare(a, b, width, *, signed=False):
    """Plain-Python model of `Comparator`: returns ``(lt, eq, gt)`` as 0/1 ints.

    With ``signed=True`` the operands are read as two's-complement numbers.
    """
    checks.positive_int(width, "Comparator width")
    checks.operand(a, (1 << width) - 1, "Operand a")
    checks.operand(b, (1 << width) - 1, "Operand b")
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
        self._width = checks.positive_int(width, "Shifter width")
        if direction not in _DIRECTIONS:
            raise ValueError(f"Shift direction must be one of 'right', 'left', not {direction!r}")
        self._direction = direction
        self._sticky = checks.boolean(sticky, "Shifter sticky")
        self._arithmetic = checks.boolean(arithmetic, "Shifter arithmetic")
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
        self._width = checks.positive_int(width, "Leading-zero counter width")
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
        self._width = checks.positive_int(width, "Comparator width")
        self._signed = checks.boolean(signed, "Comparator signed")
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


# --- inline datapath helpers of the dividers and square roots ------------------------------
#
# Functions that add logic to a module ``m`` under signal names derived from ``name``
# (shared by hwlib.dividers and hwlib.roots; not components of their own).

def add_unit(m, adder_cls, name, a, b, *, sub=None):
    """Instantiate a ``len(a)``-bit pluggable adder; ``sub`` (1 bit or int) selects ``a - b``.

    Returns ``(sum, carry-out)``; with ``sub`` high, carry-out 1 means no borrow.
    """
    width = len(a)
    cell = adder_cls(width, carry_in=False, subtract=sub is not None)
    m.submodules[name] = cell
    m.d.comb += [cell.a.eq(a), cell.b.eq(b)]
    if sub is not None:
        m.d.comb += cell.sub.eq(sub)
    return cell.s, cell.cout


def mux_row(m, name, sel, a, b):
    """``b if sel else a`` bit by bit from `Mux2` cells (the restore multiplexers of an array)."""
    out = Signal(len(a), name=name)
    for i in range(len(a)):
        cell = Mux2()
        m.submodules[f"{name}_{i}"] = cell
        m.d.comb += [cell.a.eq(a[i]), cell.b.eq(b[i]), cell.sel.eq(sel), out[i].eq(cell.y)]
    return out


def lzc_bits(width):
    """Bits of a leading-zero count over a ``width``-bit value padded to a power of two."""
    return (width - 1).bit_length()


def normalize(m, value, name, *, even=False):
    """Leading-zero count and left normalization in one logarithmic pass.

    Stage ``k`` (from the widest) shifts left by ``2**k`` when the top ``2**k`` bits are all
    zero and records that as bit ``k`` of the count, the classic normalizer of floating-point
    adders. Returns ``(count, normalized)``: for a nonzero value ``count`` is the number of
    leading zeros and ``normalized`` has its top bit set; for zero both are don't-cares
    (``normalized`` is zero). With ``even`` the one-bit stage is left out, so the shift is
    the leading-zero count rounded down to even and one of the top two bits is set (the
    normalization of a square root, which must halve the shift exactly). Area O(w log w)
    (2:1 multiplexers), delay O(log w) stages.
    """
    width = len(value)
    bits = lzc_bits(width)
    padded = 1 << bits
    count = Signal(max(bits, 1), name=f"{name}_lzc")
    cur = Signal(padded, name=f"{name}_n{bits}")
    m.d.comb += cur.eq(Cat(Const(0, padded - width), value))
    if even:
        m.d.comb += count[0].eq(0)
    for k in reversed(range(1 if even else 0, bits)):
        step = 1 << k
        zero = Signal(name=f"{name}_z{k}")
        nxt = Signal(padded, name=f"{name}_n{k}")
        m.d.comb += [
            zero.eq(cur[padded - step:] == 0),
            nxt.eq(Mux(zero, cur << step, cur)),
            count[k].eq(zero),
        ]
        cur = nxt
    if bits == 0 and not even:
        m.d.comb += count.eq(0)
    normalized = Signal(width, name=f"{name}_norm")
    m.d.comb += normalized.eq(cur[padded - width:])
    return count, normalized


def shift_left(m, value, amount, width, name):
    """Logarithmic (barrel) left shift of ``value`` by the unsigned ``amount``, to ``width``
    bits. Area O(width log max-shift), delay O(log max-shift)."""
    cur = Signal(width, name=f"{name}_s")
    m.d.comb += cur.eq(value)
    for k in range(len(amount)):
        nxt = Signal(width, name=f"{name}_l{k}")
        m.d.comb += nxt.eq(Mux(amount[k], cur << (1 << k), cur))
        cur = nxt
    return cur


def shift_right(m, value, amount, name):
    """Logarithmic (barrel) logical right shift of ``value`` by the unsigned ``amount``."""
    width = len(value)
    cur = Signal(width, name=f"{name}_s")
    m.d.comb += cur.eq(value)
    for k in range(len(amount)):
        nxt = Signal(width, name=f"{name}_r{k}")
        m.d.comb += nxt.eq(Mux(amount[k], cur >> (1 << k), cur))
        cur = nxt
    return cur
