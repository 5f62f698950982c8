"""Integer multiply-accumulate units: ``s = c + a * b`` modulo ``2**acc_width``.

The units quantized inference runs on: int8 x int8 + int32 and int4 x int4 + int32, signed
(two's complement operands) or unsigned. Each is one of the multipliers of
:mod:`hwlib.multipliers` with the accumulator *merged into its partial-product heap*, as MAC
units are built (a separate adder after the multiplier would pay a second carry-propagate
adder): the ``acc_width`` accumulator bits enter the bit heap beside the partial products, the
multiplier's reduction (Booth-Wallace, array or Dadda) brings the heap down to two rows, and
the multiplier's pluggable final adder (a design of ``designs_for("add")``) adds them over the
full ``acc_width`` bits. The heap is kept modulo ``2**acc_width``, so a signed product enters
sign-extended to the accumulator's width by the same constant-bit trick the multipliers use
for their sign bits (no sign-extension gates).

Ports: ``a: In(width)``, ``b: In(width)``, ``c: In(acc_width)`` (the accumulator read), ``s:
Out(acc_width)`` (the accumulator written). **Overflow wraps**: the sum is taken modulo
``2**acc_width`` (two's complement wrap-around for a signed accumulator, as the int32
accumulators of integer matrix engines and of ``numpy.int32`` arithmetic do); no saturation,
no overflow flag. The accumulator's own signedness does not matter modulo ``2**acc_width``,
so ``signed`` is about the operands only. ``reference_mac`` is the plain-Python model.
"""
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import checks
from ..multipliers import (ArrayMultiplier, BoothWallaceMultiplier, CellFactory, DaddaMultiplier, dadda_reduce,
                           resolve_final_adder)

__all__ = ["BoothWallaceMAC", "ArrayMAC", "DaddaMAC", "MAC_CLASSES", "MAC_DESIGNS", "reference_mac",
           "mac_unit", "mac_label"]


def _signed_value(x, width):
    return x - (1 << width) if x >> (width - 1) else x


def reference_mac(a, b, c, width, acc_width=32, signed=False):
    """Plain-Python model of the MAC units: the bit pattern of ``c + a * b`` modulo
    ``2**acc_width``.

    ``a`` and ``b`` are taken modulo ``2**width`` (raw bit patterns and negative Python integers
    both work) and read as two's complement when ``signed``; ``c`` is taken modulo
    ``2**acc_width`` (its signedness does not change the bits of the sum).
    """
    a &= (1 << width) - 1
    b &= (1 << width) - 1
    if signed:
        a, b = _signed_value(a, width), _signed_value(b, width)
    return (c + a * b) % (1 << acc_width)


class _Accumulating:
    """The accumulator merged into a multiplier: ports ``a``, ``b``, ``c``, ``s``, the heap
    ``acc_width`` bits wide with ``c`` in it. Mixed in before a multiplier class."""

    def __init__(self, width, acc_width=32, *, signed=False, final_adder="ripple_carry"):
        checks.positive_int(width, "Multiplier width")
        if isinstance(acc_width, bool) or not isinstance(acc_width, int):
            raise TypeError(f"Accumulator width must be an integer, not {acc_width!r}")
        if acc_width < 2 * width:
            raise ValueError(f"Accumulator width must hold the {2 * width}-bit product, not {acc_width!r}")
        checks.boolean(signed, "MAC signedness")
        self.a_width = self.b_width = width
        self.acc_width = acc_width
        self.signed = signed
        self.final_adder = resolve_final_adder(final_adder)
        self.cell_counts = {}
        wiring.Component.__init__(self, {"a": In(width), "b": In(width), "c": In(acc_width),
                                         "s": Out(acc_width)})

    @property
    def width(self):
        return self.a_width

    @property
    def p_width(self):
        # the multiplier's heap and final adder span the accumulator
        return self.acc_width

    @property
    def p(self):
        # the multiplier's final adder writes ``p``: here the accumulator output
        return self.s

    def _with_accumulator(self, heap):
        for k in range(self.acc_width):
            heap.add(self.c[k], k)
        return heap

    def _and_heap(self):
        return self._with_accumulator(super()._and_heap())

    def _booth_heap(self, m):
        return self._with_accumulator(super()._booth_heap(m))


class BoothWallaceMAC(_Accumulating, BoothWallaceMultiplier):
    """Radix-4 Booth partial products and the accumulator in one Wallace tree, then the final
    adder over ``acc_width`` bits (see :class:`hwlib.multipliers.BoothWallaceMultiplier`)."""


class ArrayMAC(_Accumulating, ArrayMultiplier):
    """AND (Baugh-Wooley when signed) partial products and the accumulator summed row by row in
    a carry-save array, then the final adder (see :class:`hwlib.multipliers.ArrayMultiplier`).

    One difference from the multiplier's array: above the product's ``2 * width`` columns, a
    column that gets no bit from the row being added keeps its sum and carry as they are
    (carry-save) instead of passing them through a half adder. Those columns hold the
    accumulator bit and, when signed, the sign-extension constant, and the multiplier's rule
    (a half adder for every two-bit column, which below the product finishes a product bit)
    turned every later row into a row of half adders across them (a signed int4 unit had 102
    half adders against 9 unsigned): work the final adder does anyway. After the last row, one
    Dadda stage (:func:`hwlib.multipliers.dadda_reduce`) brings the columns that a carry raised
    to three bits back to two, in one cell level."""

    def elaborate(self, platform):
        m = Module()
        cells = CellFactory(m, "array")
        rows = self._and_heap().finish()
        width = self.p_width
        start = self.a_width + self.b_width     # the first column above the product
        sums = [[] for _ in range(width)]
        carries = [[] for _ in range(width)]
        for row in rows:
            new_carries = [[] for _ in range(width)]
            for c in range(width):
                bits = sums[c] + carries[c] + ([row[c]] if c in row else [])
                if c not in row and c >= start and len(bits) <= 2:
                    sums[c] = bits
                    continue
                while len(bits) >= 3:
                    s, co = cells.three(self._counter, *bits[:3])
                    bits = [s] + bits[3:]
                    if c + 1 < width:
                        new_carries[c + 1].append(co)
                if len(bits) == 2 and (c in row or c < start):
                    s, co = cells.two(*bits)
                    bits = [s]
                    if c + 1 < width:
                        new_carries[c + 1].append(co)
                sums[c] = bits
            carries = new_carries
        columns = dadda_reduce(cells, [sums[c] + carries[c] for c in range(width)], self._counter)
        self._final_add(m, columns)
        self.cell_counts = dict(cells.counts)
        return m


class DaddaMAC(_Accumulating, DaddaMultiplier):
    """AND (Baugh-Wooley when signed) partial products and the accumulator in one Dadda tree,
    then the final adder (see :class:`hwlib.multipliers.DaddaMultiplier`)."""


MAC_CLASSES = (BoothWallaceMAC, ArrayMAC, DaddaMAC)
#: MAC design names: the multiplier design each is built on
MAC_DESIGNS = {"booth_wallace": BoothWallaceMAC, "array": ArrayMAC, "dadda": DaddaMAC}


def mac_label(width, acc_width, signed):
    """``int8*int8+int32`` style name of a MAC's formats (``uint`` operands when unsigned)."""
    kind = "int" if signed else "uint"
    return f"{kind}{width}*{kind}{width}+int{acc_width}"


def mac_unit(design, width, acc_width=32, *, signed=True, options=None):
    """A :class:`hwlib.cost.CircuitSpec` of the MAC built on multiplier ``design`` with
    ``width``-bit operands and an ``acc_width``-bit accumulator; ``options`` (a profile's
    ``units.mul`` section) gives the ``final_adder``."""
    import functools

    from .. import CircuitError
    from .._specs import CircuitSpec
    from . import units_digest
    if design not in MAC_DESIGNS:
        raise CircuitError(f"Unknown MAC design {design!r}; expected one of {', '.join(MAC_DESIGNS)}")
    for what, value in (("MAC width", width), ("Accumulator width", acc_width)):
        checks.positive_int(value, what, error=CircuitError)
    if acc_width < 2 * width:
        raise CircuitError(f"Accumulator width {acc_width} cannot hold the {2 * width}-bit product of "
                           f"{width}-bit operands")
    final_adder = (options or {}).get("final_adder", "ripple_carry")
    params = {"circuit": "mac", "kind": "mac", "design": design, "width": width, "acc_width": acc_width,
              "signed": signed, "options": {"final_adder": final_adder}, "sources": units_digest()}
    return CircuitSpec(label=f"{design} MAC {mac_label(width, acc_width, signed)}", design=design,
                       params=params, build=functools.partial(MAC_DESIGNS[design], width, acc_width,
                                                              signed=signed, final_adder=final_adder))
