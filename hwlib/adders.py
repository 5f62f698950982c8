"""Integer adders: seven carry networks behind one interface.

Every adder here is an Amaranth `wiring.Component` built as ``Cls(width, *, carry_in=True,
subtract=True)`` with the ports

============  =========  =====================================================
port          width      meaning
============  =========  =====================================================
``a``         In(width)  first operand
``b``         In(width)  second operand
``cin``       In(1)      carry-in (only when ``carry_in=True``)
``sub``       In(1)      subtract mode (only when ``subtract=True``)
``s``         Out(width) sum (or difference) modulo ``2**width``
``cout``      Out(1)     carry-out
============  =========  =====================================================

and the semantics (checked against `reference_add`)

* ``sub = 0``: ``{cout, s} = a + b + cin``;
* ``sub = 1``: ``{cout, s} = a + ~b + 1``, the two's-complement difference ``a - b``.
  ``cout = 1`` means no borrow, i.e. ``a >= b`` as unsigned numbers. **``cin`` is ignored
  while ``sub = 1``**: the carry-in position is taken by the ``+1`` of the two's complement.

Subtraction is done the way an ALU does it (li2022, section II.B.1: "subtraction is processed
in adder by 2's complement"): ``b`` is XORed with ``sub`` and ``sub`` becomes the carry-in.
That glue lives in `Adder` (the shared base class), so each design only writes its carry
network from the operand bits and one carry-in bit.

With ``carry_in=False`` and ``subtract=False`` there is no carry-in at all and the designs
build a plain ``a + b``: the ripple-carry adder is then exactly ``width - 1`` `FullAdder`
cells and one `HalfAdder` cell (li2022, section II.B.1, counts the 24-bit significand adder
of FP32 as 23 full adders and 1 half adder).

Growth with the width ``n`` (``k`` is a block size):

==================  ==================  ==================  ============================
design              area                delay               origin
==================  ==================  ==================  ============================
ripple_carry        O(n)                O(n)                textbook chain of full adders
carry_lookahead     O(n)                O(log n)            Weinberger & Smith 1958
carry_skip          O(n)                O(k + n/k)          Lehman & Burla 1961
carry_select        O(n) (about 2x)     O(k + n/k)          Bedrij 1962
brent_kung          O(n)                O(log n) (2 log n)  Brent & Kung 1982
kogge_stone         O(n log n)          O(log n)            Kogge & Stone 1973
sklansky            O(n log n)          O(log n)            Sklansky 1960 (conditional sum)
==================  ==================  ==================  ============================
"""
import math

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import checks
from .cells import FullAdder, HalfAdder, Mux2

__all__ = [
    "Adder",
    "RippleCarryAdder",
    "CarryLookaheadAdder",
    "CarrySkipAdder",
    "CarrySelectAdder",
    "BrentKungAdder",
    "KoggeStoneAdder",
    "SklanskyAdder",
    "ADDER_CLASSES",
    "reference_add",
]


def reference_add(a, b, cin, sub, width):
    """Plain-Python model of every adder here: returns ``(s, cout)``.

    ``sub = 0``: ``a + b + cin``; ``sub = 1``: ``a + ~b + 1`` (``cin`` ignored). Operands are
    unsigned integers below ``2**width``; ``cin`` and ``sub`` are 0 or 1.
    """
    checks.positive_int(width, "Adder width")
    mask = (1 << width) - 1
    for name, value, limit in (("a", a, mask), ("b", b, mask), ("cin", cin, 1), ("sub", sub, 1)):
        checks.operand(value, limit, f"Operand {name}")
    total = a + (~b & mask) + 1 if sub else a + b + cin
    return total & mask, total >> width


class Adder(wiring.Component):
    """Base class of the adders: ports, parameter checks and the subtract-mode glue.

    A subclass implements ``_carry_network(m, a, b, c0)``, driving ``self.s`` and
    ``self.cout`` with ``a + b + c0`` (and may take extra keyword parameters). The
    effective carry-in handed to it is ``sub | cin`` (``sub`` alone without
    ``carry_in``, ``cin`` alone without ``subtract``, and ``None`` when the adder has neither,
    so a design can build a true two-operand adder with no carry-in logic at all).

    Parameters
    ----------
    width : int
        Operand width in bits, at least 1.
    carry_in : bool
        Add a ``cin`` input port.
    subtract : bool
        Add a ``sub`` input port selecting ``a - b``.
    """

    #: design name in hwlib.registry, set by each subclass
    design_name = None

    def __init__(self, width, *, carry_in=True, subtract=True):
        if type(self) is Adder:
            raise TypeError("Adder is the base class of the adder designs; construct one of "
                            "them (e.g. RippleCarryAdder)")
        self._width = checks.positive_int(width, "Adder width")
        self._carry_in = checks.boolean(carry_in, "Adder carry_in")
        self._subtract = checks.boolean(subtract, "Adder subtract")
        members = {"a": In(width), "b": In(width)}
        if carry_in:
            members["cin"] = In(1)
        if subtract:
            members["sub"] = In(1)
        members["s"] = Out(width)
        members["cout"] = Out(1)
        super().__init__(members)

    @property
    def width(self):
        return self._width

    @property
    def carry_in(self):
        return self._carry_in

    @property
    def subtract(self):
        return self._subtract

    def elaborate(self, platform):
        m = Module()
        if self._subtract:
            # Two's complement: invert b and add one through the carry-in position.
            b = Signal(self._width, name="b_eff")
            m.d.comb += b.eq(self.b ^ self.sub.replicate(self._width))
            if self._carry_in:
                c0 = Signal(name="c0")
                m.d.comb += c0.eq(self.sub | self.cin)
            else:
                c0 = self.sub
        else:
            b = self.b
            c0 = self.cin if self._carry_in else None
        self._carry_network(m, self.a, b, c0)
        return m


def _ripple_chain(m, a_bits, b_bits, c0, prefix):
    """A chain of full adders (a half adder at the bottom when ``c0`` is None).

    ``c0`` may be a signal, ``None`` or the Python int 1 (a chain computed for carry 1, as in
    carry-select). Returns ``(sum bits, carry-out)``.
    """
    sums = []
    carry = c0
    for i, (ai, bi) in enumerate(zip(a_bits, b_bits)):
        if carry is None:
            cell = HalfAdder()
        else:
            cell = FullAdder()
            m.d.comb += cell.cin.eq(carry)
        m.submodules[f"{prefix}{i}"] = cell
        m.d.comb += [cell.a.eq(ai), cell.b.eq(bi)]
        sums.append(cell.s)
        carry = cell.cout
    return sums, carry


class RippleCarryAdder(Adder):
    """Ripple-carry adder: a chain of `FullAdder` cells, bit ``i`` carrying into bit ``i+1``.

    Area O(n) (``n`` full adders; ``n - 1`` full adders and one half adder without carry-in),
    delay O(n) (the carry crosses every cell). The adder of li2022, Fig. 3 and section II.B.1.
    """

    design_name = "ripple_carry"

    def _carry_network(self, m, a, b, c0):
        sums, cout = _ripple_chain(m, list(a), list(b), c0, "fa")
        m.d.comb += [self.s.eq(Cat(*sums)), self.cout.eq(cout)]


def _gp(m, a, b, width):
    """Bitwise generate ``a & b`` and propagate ``a ^ b`` signals."""
    g = Signal(width, name="g")
    p = Signal(width, name="p")
    m.d.comb += [g.eq(a & b), p.eq(a ^ b)]
    return list(g), list(p)


def _lookahead_carries(g, p, cin):
    """Carries into positions ``0..len(g)`` by two-level lookahead (sum of products).

    ``c[i+1] = g[i] | p[i] g[i-1] | ... | p[i]..p[0] cin``; ``cin`` may be None.
    """
    carries = [cin]
    for i in range(len(g)):
        terms = []
        for j in range(i, -2, -1):
            if j == -1 and cin is None:
                break
            term = g[j] if j >= 0 else cin
            for k in range(j + 1, i + 1):
                term = term & p[k]
            terms.append(term)
        expr = terms[0]
        for term in terms[1:]:
            expr = expr | term
        carries.append(expr)
    return carries


class CarryLookaheadAdder(Adder):
    """Carry-lookahead adder with 4-bit groups and a lookahead tree for the group carries.

    Each group of 4 bits computes its internal carries by two-level lookahead from the bit
    generate/propagate signals and emits a group generate ``G`` and propagate ``P``. The group
    carries do not ripple: groups of 4 groups form a second lookahead level (and so on
    recursively, like 74182 lookahead units stacked on 74181 ALUs), so the carry into any
    group is a log4-deep tree of lookahead units.

    Area O(n), delay O(log n). Weinberger & Smith, "A logic for high-speed addition" (1958).
    """

    design_name = "carry_lookahead"
    group_size = 4

    def _carry_network(self, m, a, b, c0):
        g, p = _gp(m, a, b, self._width)
        carries = self._lookahead(m, g, p, c0, level=0)
        c = Signal(self._width + 1, name="c")
        m.d.comb += c.eq(Cat(*(x if x is not None else Const(0, 1) for x in carries)))
        m.d.comb += [self.s.eq(Cat(*p) ^ c[:self._width]), self.cout.eq(c[self._width])]

    def _lookahead(self, m, g, p, cin, level):
        """Carries into positions ``0..len(g)`` of a (group-)generate/propagate vector."""
        n = len(g)
        k = self.group_size
        if n <= k:
            return _lookahead_carries(g, p, cin)
        groups = [(i, min(i + k, n)) for i in range(0, n, k)]
        group_g = Signal(len(groups), name=f"G{level + 1}")
        group_p = Signal(len(groups), name=f"P{level + 1}")
        for index, (lo, hi) in enumerate(groups):
            # Group generate/propagate: the carry-out of the group with carry-in 0, and
            # whether a carry-in would travel through it.
            gg = _lookahead_carries(g[lo:hi], p[lo:hi], None)[-1]
            pp = p[lo]
            for bit in p[lo + 1:hi]:
                pp = pp & bit
            m.d.comb += [group_g[index].eq(gg), group_p[index].eq(pp)]
        group_carries = self._lookahead(m, list(group_g), list(group_p), cin, level + 1)
        carries = []
        for index, (lo, hi) in enumerate(groups):
            carries.extend(_lookahead_carries(g[lo:hi], p[lo:hi], group_carries[index])[:-1])
        carries.append(group_carries[-1])
        return carries


def _block_size(block_size, width, what):
    if block_size is None:
        return max(1, math.isqrt(width))
    return checks.positive_int(block_size, f"{what} block size")


class CarrySkipAdder(Adder):
    """Carry-skip (carry-bypass) adder: ripple-carry blocks whose carry can skip the block.

    Each block of ``block_size`` bits is a chain of `FullAdder` cells; when every bit of the
    block propagates (``P = p[lo] & ... & p[hi-1]``), a `Mux2` skip multiplexer passes the
    block's carry-in straight to its carry-out. The block without carry-in (the lowest one of
    an adder built with neither ``carry_in`` nor ``subtract``) has no skip multiplexer, since
    there is no carry to skip.

    Area O(n); worst-case delay O(k + n/k) for block size ``k``, O(sqrt n) at ``k ~ sqrt n``
    (the default is ``isqrt(width)``). Lehman & Burla, "Skip techniques for high-speed
    carry-propagation in binary arithmetic units" (1961).

    The speed-up rests on a false path: when a block generates or kills its carry its ripple
    output does not depend on its carry-in, but a static count of logic levels (the netlist
    depth that synthesis reports) still follows the ripple path through every block, so the
    depth reported for this design is that of ripple-carry plus the skip multiplexers.

    Parameters
    ----------
    block_size : int or None
        Bits per block; ``None`` picks ``isqrt(width)``. Larger than ``width`` means one block.
    """

    design_name = "carry_skip"

    def __init__(self, width, *, block_size=None, carry_in=True, subtract=True):
        super().__init__(width, carry_in=carry_in, subtract=subtract)
        self._block_size = _block_size(block_size, width, "Carry-skip")

    @property
    def block_size(self):
        return self._block_size

    def _carry_network(self, m, a, b, c0):
        p = Signal(self._width, name="p")
        m.d.comb += p.eq(a ^ b)
        sums = []
        carry = c0
        for block, lo in enumerate(range(0, self._width, self._block_size)):
            hi = min(lo + self._block_size, self._width)
            block_sums, ripple_out = _ripple_chain(m, list(a[lo:hi]), list(b[lo:hi]), carry,
                                                   f"b{block}_fa")
            sums.extend(block_sums)
            if carry is None:
                carry = ripple_out
                continue
            block_p = Signal(name=f"b{block}_P")
            pp = p[lo]
            for bit in p[lo + 1:hi]:
                pp = pp & bit
            m.d.comb += block_p.eq(pp)
            skip = Mux2()
            m.submodules[f"b{block}_skip"] = skip
            m.d.comb += [skip.a.eq(ripple_out), skip.b.eq(carry), skip.sel.eq(block_p)]
            carry = skip.y
        m.d.comb += [self.s.eq(Cat(*sums)), self.cout.eq(carry)]


class CarrySelectAdder(Adder):
    """Carry-select adder: each block is added twice, for carry-in 0 and 1, then selected.

    The lowest block is one ripple chain fed by the real carry-in. Every other block holds two
    ripple chains of `FullAdder` cells (the carry-0 chain starts with a `HalfAdder`; the
    carry-1 chain is fed a constant 1) and `Mux2` cells that pick the sums and the carry-out
    with the carry arriving from the block below.

    Area O(n), about twice a ripple-carry adder plus ``n`` multiplexers; delay O(k + n/k) for
    block size ``k`` (the default is ``isqrt(width)``). Bedrij, "Carry-select adder" (1962).

    Parameters
    ----------
    block_size : int or None
        Bits per block; ``None`` picks ``isqrt(width)``. Larger than ``width`` means one block.
    """

    design_name = "carry_select"

    def __init__(self, width, *, block_size=None, carry_in=True, subtract=True):
        super().__init__(width, carry_in=carry_in, subtract=subtract)
        self._block_size = _block_size(block_size, width, "Carry-select")

    @property
    def block_size(self):
        return self._block_size

    def _carry_network(self, m, a, b, c0):
        k = self._block_size
        first = min(k, self._width)
        sums, carry = _ripple_chain(m, list(a[:first]), list(b[:first]), c0, "b0_fa")
        for block, lo in enumerate(range(first, self._width, k), start=1):
            hi = min(lo + k, self._width)
            a_bits, b_bits = list(a[lo:hi]), list(b[lo:hi])
            sums0, cout0 = _ripple_chain(m, a_bits, b_bits, None, f"b{block}_c0_fa")
            sums1, cout1 = _ripple_chain(m, a_bits, b_bits, 1, f"b{block}_c1_fa")
            for i, (s0, s1) in enumerate(zip(sums0 + [cout0], sums1 + [cout1])):
                mux = Mux2()
                m.submodules[f"b{block}_sel{i}"] = mux
                m.d.comb += [mux.a.eq(s0), mux.b.eq(s1), mux.sel.eq(carry)]
                if i < hi - lo:
                    sums.append(mux.y)
                else:
                    carry = mux.y
        m.d.comb += [self.s.eq(Cat(*sums)), self.cout.eq(carry)]


class _PrefixAdder(Adder):
    """Parallel-prefix adder: a prefix network of ``(g, p)`` operators over the bit positions.

    The carry-in is folded into position 0 (``g0 = g0 | p0 & cin``), the network computes the
    group generate ``G[i:0]`` for every ``i`` (the carry out of bit ``i``), and
    ``s[i] = p[i] ^ G[i-1:0]``. The operator is ``(g, p) o (g', p') = (g | p & g', p & p')``.
    A design implements ``_network(m, nodes)``, turning the per-bit ``(g, p)`` list into the
    prefixes ``(G[i:0], P[i:0])`` with `_combine`.
    """

    def _carry_network(self, m, a, b, c0):
        n = self._width
        g, p = _gp(m, a, b, n)
        if c0 is not None:
            g0 = Signal(name="g0_cin")
            m.d.comb += g0.eq(g[0] | (p[0] & c0))
            g = [g0] + g[1:]
        self._node_count = 0
        nodes = self._network(m, list(zip(g, p)))
        carries = [c0 if c0 is not None else Const(0, 1)] + [node[0] for node in nodes]
        c = Signal(n + 1, name="c")
        m.d.comb += c.eq(Cat(*carries))
        m.d.comb += [self.s.eq(Cat(*p) ^ c[:n]), self.cout.eq(c[n])]

    def _combine(self, m, hi, lo):
        """The prefix operator: ``hi`` spans the more significant bits."""
        index = self._node_count
        self._node_count += 1
        g = Signal(name=f"pg{index}_g")
        p = Signal(name=f"pg{index}_p")
        m.d.comb += [g.eq(hi[0] | (hi[1] & lo[0])), p.eq(hi[1] & lo[1])]
        return g, p


class BrentKungAdder(_PrefixAdder):
    """Brent-Kung parallel-prefix adder: a binary up-sweep tree, then a down-sweep tree.

    Area O(n) (fewer than ``2n`` prefix operators), delay O(log n) (``2 log2 n - 1`` operator
    levels), fanout 2. Brent & Kung, "A regular layout for parallel adders" (1982).
    """

    design_name = "brent_kung"

    def _network(self, m, nodes):
        n = len(nodes)
        d = 1
        while 2 * d <= n:
            for i in range(2 * d - 1, n, 2 * d):
                nodes[i] = self._combine(m, nodes[i], nodes[i - d])
            d *= 2
        d //= 2
        while d >= 1:
            for i in range(3 * d - 1, n, 2 * d):
                nodes[i] = self._combine(m, nodes[i], nodes[i - d])
            d //= 2
        return nodes


class KoggeStoneAdder(_PrefixAdder):
    """Kogge-Stone parallel-prefix adder: at level ``l`` every position combines with the one
    ``2**l`` below it.

    Area O(n log n) (about ``n log2 n`` operators), delay O(log n) (``ceil(log2 n)`` levels,
    the minimum), fanout 2 but many long wires. Kogge & Stone, "A parallel algorithm for the
    efficient solution of a general class of recurrence equations" (1973).
    """

    design_name = "kogge_stone"

    def _network(self, m, nodes):
        n = len(nodes)
        d = 1
        while d < n:
            nodes = nodes[:d] + [self._combine(m, nodes[i], nodes[i - d]) for i in range(d, n)]
            d *= 2
        return nodes


class SklanskyAdder(_PrefixAdder):
    """Sklansky (divide-and-conquer) parallel-prefix adder: at level ``l`` the upper half of
    every ``2**(l+1)``-bit block combines with the top position of its lower half.

    Area O(n log n) (``(n/2) log2 n`` operators), delay O(log n) (``ceil(log2 n)`` levels),
    fanout up to ``n/2``. Sklansky, "Conditional-sum addition logic" (1960).
    """

    design_name = "sklansky"

    def _network(self, m, nodes):
        n = len(nodes)
        d = 1
        while d < n:
            for i in range(n):
                if (i // d) % 2 == 1:
                    nodes[i] = self._combine(m, nodes[i], nodes[(i // d) * d - 1])
            d *= 2
        return nodes


#: every adder design, in the order of hwlib.registry
ADDER_CLASSES = (
    RippleCarryAdder,
    CarryLookaheadAdder,
    CarrySkipAdder,
    CarrySelectAdder,
    BrentKungAdder,
    KoggeStoneAdder,
    SklanskyAdder,
)
