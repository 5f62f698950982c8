"""Integer multipliers: Booth-Wallace (the TOs paper's multiplier), array and Dadda.

Every multiplier here has the same interface::

    Cls(a_width, b_width=None, *, signed=False, final_adder="ripple_carry")

with ports ``a: In(a_width)``, ``b: In(b_width)`` and ``p: Out(a_width + b_width)``; ``b_width``
defaults to ``a_width``. With ``signed=True`` the operands and the product are two's complement;
otherwise they are unsigned. The product always fits in ``a_width + b_width`` bits, so ``p`` is
exact in both modes (``reference_multiply`` is the plain-Python model).

A multiplier is built in three parts, after the usual textbook split (and PyRTL's
``tree_multiplier(A, B, reducer=..., adder_func=...)``):

1. *partial-product generation* puts bits of known weight into a **bit heap** (one list of bits
   per column of weight ``2**col``). Bits of negative weight (two's complement sign bits) enter
   the heap complemented, and the constant this leaves behind is added as constant-one bits, the
   general form of the sign-extension-prevention trick and of Baugh-Wooley's correction;
2. *reduction* brings every column to at most two bits with full and half adder cells
   (``hwlib.cells``): a Wallace tree, a Dadda tree, or a linear carry-save array;
3. the *final carry-propagate adder* adds the two remaining rows. It is pluggable: a design name
   from ``hwlib.registry`` (``designs_for("add")``) or an adder class with the interface
   ``Cls(width, *, carry_in, subtract)`` and ports ``a``, ``b``, ``s``, ``cout``.

Cells are instantiated as submodules (``Counter32`` in the trees, ``FullAdder`` in the array,
``HalfAdder`` where a reduction rule uses two-input cells) so that a structural count sees them;
partial-product gates and Booth recoders are glue logic. Columns at and above ``a_width +
b_width`` are dropped: all arithmetic is modulo ``2**(a_width + b_width)``.
"""
from amaranth import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import checks
from .cells import Counter32, FullAdder, HalfAdder

__all__ = [
    "BoothWallaceMultiplier",
    "ArrayMultiplier",
    "DaddaMultiplier",
    "MULTIPLIER_CLASSES",
    "reference_multiply",
    "dadda_heights",
]


def reference_multiply(a, b, a_width, b_width, signed):
    """Plain-Python model of every multiplier here.

    ``a`` and ``b`` are taken modulo ``2**a_width`` and ``2**b_width`` (so raw bit patterns and
    negative Python integers both work); with ``signed`` they are read as two's complement. The
    result is the product as a non-negative integer of ``a_width + b_width`` bits, i.e. the bit
    pattern the ``p`` port shows.
    """
    a &= (1 << a_width) - 1
    b &= (1 << b_width) - 1
    if signed:
        if a >> (a_width - 1):
            a -= 1 << a_width
        if b >> (b_width - 1):
            b -= 1 << b_width
    return (a * b) & ((1 << (a_width + b_width)) - 1)


def dadda_heights(max_height):
    """Dadda's sequence of stage heights below ``max_height``, largest first.

    ``d_1 = 2`` and ``d_{j+1} = floor(1.5 * d_j)``: 2, 3, 4, 6, 9, 13, 19, 28, 42, 63, ...
    (Dadda 1965). A tree for a heap of height ``max_height`` has one stage per element.
    """
    heights = [2]
    while heights[-1] < max_height:
        heights.append(heights[-1] * 3 // 2)
    return [d for d in reversed(heights) if d < max_height]


# Bits are either the Python integers 0/1 (known constants, folded while building) or 1-bit
# Amaranth values. Folding keeps known-zero partial-product bits out of the heap, so that no
# cell is spent on them (e.g. the zero extension of unsigned Booth operands).

def _and(x, y):
    if isinstance(x, int) and isinstance(y, int):
        return x & y
    if isinstance(x, int):
        return y if x else 0
    if isinstance(y, int):
        return x if y else 0
    return x & y


def _or(x, y):
    if isinstance(x, int) and isinstance(y, int):
        return x | y
    if isinstance(x, int):
        return 1 if x else y
    if isinstance(y, int):
        return 1 if y else x
    return x | y


def _xor(x, y):
    if isinstance(x, int) and isinstance(y, int):
        return x ^ y
    if isinstance(x, int):
        return ~y if x else y
    if isinstance(y, int):
        return ~x if y else x
    return x ^ y


def _not(x):
    return 1 - x if isinstance(x, int) else ~x


class _BitHeap:
    """Columns of bits of weight ``2**col``, ``col < width``, plus a constant kept aside.

    Bits are also kept as ``rows`` (dicts column -> bit), which the linear array reduces one
    row at a time: a bit goes into the row it is given, or else the first row with its column
    free. The trees only look at the ``columns()``.
    """

    def __init__(self, width):
        self.width = width
        self.constant = 0
        self.rows = []

    def add(self, bit, col, *, negative=False, row=None):
        """Add ``bit * 2**col``, or ``-bit * 2**col`` with ``negative``.

        ``-x * 2**c == (1 - x) * 2**c - 2**c``: a negative-weight bit enters complemented and
        leaves ``-2**c`` in the constant. ``row`` places the bit in that row (which must have
        its column free) instead of the first free one.
        """
        if negative:
            bit = _not(bit)
            self.constant -= 1 << col
        if isinstance(bit, int):
            self.constant += bit << col
            return
        if col >= self.width:
            return
        if row is not None:
            while len(self.rows) <= row:
                self.rows.append({})
            assert col not in self.rows[row]
            self.rows[row][col] = bit
            return
        for row in self.rows:
            if col not in row:
                row[col] = bit
                return
        self.rows.append({col: bit})

    def finish(self):
        """Place the constant's one bits (modulo ``2**width``) and return the rows."""
        constant = self.constant % (1 << self.width)
        self.constant = 0
        for col in range(self.width):
            if constant >> col & 1:
                self.add(Const(1, 1), col)
        return self.rows

    def columns(self):
        rows = self.finish()
        return [[row[col] for row in rows if col in row] for col in range(self.width)]


class CellFactory:
    """Instantiates reduction cells as named submodules and counts them."""

    def __init__(self, m, prefix):
        self.m = m
        self.prefix = prefix
        self.counts = {}

    def _add(self, cls, inputs):
        k = self.counts.get(cls, 0)
        self.counts[cls] = k + 1
        cell = cls()
        self.m.submodules[f"{self.prefix}_{cls.cell_name}_{k}"] = cell
        ports = ("a", "b", "cin")
        self.m.d.comb += [getattr(cell, port).eq(bit) for port, bit in zip(ports, inputs)]
        return cell.s, cell.cout

    def three(self, cls, x, y, z):
        return self._add(cls, (x, y, z))

    def two(self, x, y):
        return self._add(HalfAdder, (x, y))


def resolve_final_adder(final_adder):
    """The adder class of a multiplier's (or MAC's) final carry-propagate adder: a design name
    of ``hwlib.registry`` or a class."""
    return checks.design(final_adder, "add", "Final adder",
                         expected="an adder design name or an adder class")


class _Multiplier(wiring.Component):
    """Shared constructor, partial-product generation and final adder.

    Attributes: ``a_width``, ``b_width``, ``p_width`` (their sum), ``signed``, ``final_adder``
    (the resolved adder class) and ``cell_counts`` (``{cell class: count}`` of the reduction
    cells made by the last elaboration, not counting the final adder's own cells).
    """

    #: Reduction cell for groups of three bits; a subclass may override.
    _counter = Counter32

    def __init__(self, a_width, b_width=None, *, signed=False, final_adder="ripple_carry"):
        checks.positive_int(a_width, "Multiplier width")
        if b_width is None:
            b_width = a_width
        checks.positive_int(b_width, "Multiplier width")
        checks.boolean(signed, "Multiplier signedness")
        self.a_width = a_width
        self.b_width = b_width
        self.signed = signed
        self.final_adder = resolve_final_adder(final_adder)
        self.cell_counts = {}
        super().__init__({
            "a": In(a_width),
            "b": In(b_width),
            "p": Out(a_width + b_width),
        })

    @property
    def p_width(self):
        return self.a_width + self.b_width

    def _and_heap(self):
        """AND partial products; for signed operands in Baugh-Wooley form (1973).

        ``a_i b_j`` has weight ``2**(i+j)``, negative when exactly one of ``a_i``, ``b_j`` is a
        sign bit. Such bits enter complemented (``NAND``), and their ``-2**(i+j)`` terms sum
        with the rest to the constant ``2**(n-1) + 2**(m-1) + 2**(n+m-1)`` (mod ``2**(n+m)``,
        for ``n, m > 1``).
        """
        n, m = self.a_width, self.b_width
        heap = _BitHeap(self.p_width)
        for j in range(m):
            for i in range(n):
                negative = self.signed and ((i == n - 1) != (j == m - 1))
                heap.add(self.a[i] & self.b[j], i + j, negative=negative, row=j)
        return heap

    def _final_add(self, m, columns):
        """Add the (at most two) bits left in each column with the final adder."""
        width = self.p_width
        out = [0] * width
        lo = next((c for c in range(width) if len(columns[c]) == 2), None)
        hi = max((c for c in range(width) if columns[c]), default=-1)
        for c in range(width if lo is None else lo):
            assert len(columns[c]) <= 1
            if columns[c]:
                out[c] = columns[c][0]
        if lo is not None:
            adder_width = hi - lo + 1
            adder = self.final_adder(adder_width, carry_in=False, subtract=False)
            m.submodules.final_adder = adder
            for k, c in enumerate(range(lo, hi + 1)):
                bits = columns[c]
                assert len(bits) <= 2
                if bits:
                    m.d.comb += adder.a[k].eq(bits[0])
                if len(bits) == 2:
                    m.d.comb += adder.b[k].eq(bits[1])
            for k, c in enumerate(range(lo, hi + 1)):
                out[c] = adder.s[k]
            if hi + 1 < width:
                out[hi + 1] = adder.cout
        for c in range(width):
            m.d.comb += self.p[c].eq(out[c])


def _wallace_reduce(cells, columns, counter):
    """Wallace's rule (1964), column by column, until no column holds more than two bits.

    In each stage every column of height three or more is split into groups of three, each
    taken by a 3:2 counter, and a leftover pair, taken by a half adder; a leftover single bit
    and columns of height two or less pass to the next stage unchanged. Sums stay in their
    column, carries go one column up in the next stage.
    """
    width = len(columns)
    while any(len(col) > 2 for col in columns):
        nxt = [[] for _ in range(width)]
        for c, bits in enumerate(columns):
            if len(bits) <= 2:
                nxt[c].extend(bits)
                continue
            k = 0
            while len(bits) - k >= 3:
                s, co = cells.three(counter, *bits[k:k + 3])
                nxt[c].append(s)
                if c + 1 < width:
                    nxt[c + 1].append(co)
                k += 3
            if len(bits) - k == 2:
                s, co = cells.two(*bits[k:k + 2])
                nxt[c].append(s)
                if c + 1 < width:
                    nxt[c + 1].append(co)
            elif len(bits) - k == 1:
                nxt[c].append(bits[k])
        columns = nxt
    return columns


def dadda_reduce(cells, columns, counter):
    """Dadda's rule (1965): per stage, reduce each column to the next height with the fewest
    counters.

    Stage heights are ``dadda_heights(max height)``. Going from the least significant column
    up, a column holding ``h`` bits plus ``c`` carries from the column below (made in this same
    stage) needs ``h + c - d`` bits removed to reach the target ``d``: a 3:2 counter removes two,
    a half adder one, and half adders are used only for an odd leftover of one.
    """
    width = len(columns)
    for target in dadda_heights(max((len(col) for col in columns), default=0)):
        nxt = [[] for _ in range(width)]
        for c in range(width):
            bits = list(columns[c])
            k = 0
            # nxt[c] already holds this stage's carries from below and the sums made so far.
            while len(bits) - k + len(nxt[c]) > target:
                excess = len(bits) - k + len(nxt[c]) - target
                assert len(bits) - k >= 2
                if excess >= 2 and len(bits) - k >= 3:
                    s, co = cells.three(counter, *bits[k:k + 3])
                    k += 3
                else:
                    s, co = cells.two(*bits[k:k + 2])
                    k += 2
                nxt[c].append(s)
                if c + 1 < width:
                    nxt[c + 1].append(co)
            nxt[c].extend(bits[k:])
        columns = nxt
    return columns


class BoothWallaceMultiplier(_Multiplier):
    """Radix-4 modified Booth multiplier with a Wallace tree: the TOs paper's multiplier.

    li2022 (section II.B.1) prices a multiplication with a Booth-Wallace multiplier (90k
    transistors at 64 bits, after its reference [36]). Here:

    * **Recoding** (Booth 1951; radix 4 by MacSorley 1961): the multiplier ``b`` (sign-extended
      to an even width when signed; zero-extended by one bit first when unsigned, so that it
      reads as a non-negative two's complement number) is split into overlapping triples
      ``(b[2j+1], b[2j], b[2j-1])``, ``b[-1] = 0``, each recoded to a digit ``d_j`` in
      ``{-2, -1, 0, 1, 2}`` as the signals ``one`` (``|d| = 1``), ``two`` (``|d| = 2``) and
      ``neg`` (``b[2j+1]``). ``b = sum_j d_j 4**j``, so there are ``ceil(m/2)`` partial products
      (``ceil((m+1)/2)`` unsigned) instead of ``m``.
    * **Partial products**: ``|d_j| * a`` is selected from ``a`` and ``2a``, inverted when
      ``neg``, and the ``+1`` that completes the two's complement negation enters column
      ``2j``. Each partial product's sign bit enters complemented and the leftover constants
      are summed into one constant added as fixed one bits (sign-extension prevention: no
      partial product is sign-extended to the full width).
    * **Reduction**: a Wallace tree (1964) of ``Counter32`` cells (3:2 counters), with a
      ``HalfAdder`` for a leftover pair in a column, until two rows remain;
    * **Final adder**: the pluggable carry-propagate adder over the two rows.

    Growth, for an ``n``-bit by ``m``-bit multiplier: area O(n m): about ``n m / 2``
    partial-product bits, and as each counter removes one bit from the heap, about as many
    counters, half of what an AND-array tree needs (53x53 unsigned: 1,366 counters and 124 half
    adders, against Dadda's 2,600 and 52); delay O(log m) counter levels (the heap height,
    about ``m / 2``, shrinks by a factor 3/2 per level) plus the final adder's delay: O(n + m)
    with a ripple-carry adder, O(log(n + m)) with a parallel-prefix one.
    """

    def _booth_heap(self, m):
        a_bits = [self.a[i] for i in range(self.a_width)]
        b_bits = [self.b[i] for i in range(self.b_width)]
        if self.signed:
            ext = b_bits[-1]
        else:
            # A zero bit on top makes the unsigned operands non-negative two's complement.
            a_bits.append(0)
            b_bits.append(0)
            ext = 0
        if len(b_bits) % 2:
            b_bits.append(ext)
        a_len = len(a_bits)

        def a_at(i):  # two's complement sign extension of the multiplicand
            if i < 0:
                return 0
            return a_bits[min(i, a_len - 1)]

        heap = _BitHeap(self.p_width)
        for j in range(len(b_bits) // 2):
            hi, mid = b_bits[2 * j + 1], b_bits[2 * j]
            lo = b_bits[2 * j - 1] if j else 0
            one = _xor(mid, lo)
            two = _or(_and(hi, _and(_not(mid), _not(lo))),
                      _and(_not(hi), _and(mid, lo)))
            neg = hi
            # Named recoder outputs keep the netlist readable; constants stay folded.
            if not isinstance(one, int):
                sig = Signal(name=f"booth{j}_one")
                m.d.comb += sig.eq(one)
                one = sig
            if not isinstance(two, int):
                sig = Signal(name=f"booth{j}_two")
                m.d.comb += sig.eq(two)
                two = sig
            # |d_j| * a fits in a_len + 1 bits of two's complement; bit a_len is its sign.
            for i in range(a_len + 1):
                mag = _or(_and(one, a_at(i)), _and(two, a_at(i - 1)))
                heap.add(_xor(mag, neg), 2 * j + i, negative=(i == a_len))
            heap.add(neg, 2 * j)
        return heap

    def elaborate(self, platform):
        m = Module()
        cells = CellFactory(m, "wallace")
        columns = _wallace_reduce(cells, self._booth_heap(m).columns(), self._counter)
        self._final_add(m, columns)
        self.cell_counts = dict(cells.counts)
        return m


class ArrayMultiplier(_Multiplier):
    """Array multiplier: AND partial products summed row by row in a carry-save array.

    The partial-product rows (for signed operands in Baugh-Wooley form, Baugh and Wooley 1973,
    with the correction constant as one more set of fixed one bits) are accumulated one row at
    a time, each row of ``FullAdder`` cells (``HalfAdder`` where a column has only two bits)
    adding the next row to the carry-save sum of the rows above it; carries move one column up
    into the next row. The last sum and carry rows are merged by the final adder, a
    ripple-carry adder by default, which gives the classic rectangular array (Braun 1963):
    an unsigned ``n x n`` array has ``n (n - 2)`` full and ``n`` half adders in all, counting the
    final ripple-carry row.

    Growth, for an ``n``-bit by ``m``-bit multiplier: area O(n m) (``(m - 1)(n - 1)`` cells in
    the array, unsigned), delay O(n + m): ``m - 1`` cell rows plus the final adder.
    """

    _counter = FullAdder

    def elaborate(self, platform):
        m = Module()
        cells = CellFactory(m, "array")
        rows = self._and_heap().finish()
        width = self.p_width
        sums = [[] for _ in range(width)]
        carries = [[] for _ in range(width)]
        for row in rows:
            new_carries = [[] for _ in range(width)]
            for c in range(width):
                bits = sums[c] + carries[c] + ([row[c]] if c in row else [])
                if len(bits) == 3:
                    s, co = cells.three(self._counter, *bits)
                elif len(bits) == 2:
                    s, co = cells.two(*bits)
                else:
                    sums[c] = bits
                    continue
                sums[c] = [s]
                if c + 1 < width:
                    new_carries[c + 1].append(co)
            carries = new_carries
        columns = [sums[c] + carries[c] for c in range(width)]
        self._final_add(m, columns)
        self.cell_counts = dict(cells.counts)
        return m


class DaddaMultiplier(_Multiplier):
    """Dadda multiplier: AND partial products, a Dadda tree, the pluggable final adder.

    Partial products are the ``n m`` AND terms (Baugh-Wooley form when signed, Baugh and Wooley
    1973). The heap is reduced through Dadda's stage heights 2, 3, 4, 6, 9, 13, ... (Dadda 1965),
    each stage using just enough ``Counter32`` cells and ``HalfAdder`` cells to bring every
    column down to that stage's height. For unsigned ``n x n`` this is ``n**2 - 4n + 3`` counters
    and ``n - 1`` half adders, and a final adder of ``2n - 2`` bits: fewer counters than
    Wallace's rule, which reduces as early as it can, in as many stages.

    Growth, for an ``n``-bit by ``m``-bit multiplier: area O(n m), delay O(log min(n, m))
    counter stages (about ``log_1.5(min(n, m) / 2)``) plus the final adder's delay: O(n + m)
    ripple-carry, O(log(n + m)) with a parallel-prefix adder.
    """

    def elaborate(self, platform):
        m = Module()
        cells = CellFactory(m, "dadda")
        columns = dadda_reduce(cells, self._and_heap().columns(), self._counter)
        self._final_add(m, columns)
        self.cell_counts = dict(cells.counts)
        return m


MULTIPLIER_CLASSES = (BoothWallaceMultiplier, ArrayMultiplier, DaddaMultiplier)
