"""The basic ops of the integer formats (``int8``, ``int4``, ``int32``) on the profile's integer units.

An integer format's ops are priced on the same circuits ``tosim compare-adders`` compares, built
by :func:`hwlib._specs.integer_unit` at the format's width ``N`` (``hardware_profiles.schema.
INT_FORMAT_BITS``) from the profile's ``units`` section (design and options per kind):

======  ==============================================================================
op      circuit
======  ==============================================================================
add     the profile's adder (``units.add``), ``N`` bits; two's complement addition is
        the unsigned addition of the bit patterns (the sum wraps modulo ``2**N``)
sub     the adder of ``units.sub``, ``N`` bits (as the floating-point formats price it:
        ``sub`` and ``cmp`` run on an adder, ``hardware_profiles.schema.UNIT_DESIGN_KIND``,
        built as a plain two-operand adder as ``compare-adders`` builds it)
cmp     the adder of ``units.cmp``, ``N`` bits
mul     the profile's multiplier (``units.mul``, its ``final_adder``), ``N x N`` bits,
        **signed** (two's complement operands, Baugh-Wooley or Booth sign handling), the
        full ``2N``-bit product
div     the profile's divider (``units.div``), ``N``-bit dividend and divisor, unsigned: it
        prices the magnitude division; the sign logic of a signed division (negating the
        operands and the quotient) is not included
sqrt    the profile's root (``units.sqrt``), ``N``-bit radicand (unsigned)
======  ==============================================================================

Integer division and roots are rare in quantized inference (the ops of a quantized layer are its
products, int32 accumulation and the requantization, all adds, multiplies and compares), but a
recipe priced in an integer format may need them; they get the profile's own integer units rather
than an error.

The specs are exactly :func:`hwlib._specs.integer_unit`'s (the ``mul`` spec adds ``signed``), so
an ``int8 add`` costs what ``tosim compare-adders --widths 8`` prints for the profile's adder, and
shares its cache entries. These units live in :mod:`hwlib.units` so that no bundled table of the
built-in profiles changes (they list no integer format).
"""
from hardware_profiles.schema import INT_FORMAT_BITS, UNIT_DESIGN_KIND

__all__ = ["INT_FORMATS", "int_unit", "int_mac_unit", "int_mac_costs"]

#: The integer formats and their widths in bits.
INT_FORMATS = tuple(INT_FORMAT_BITS)


def int_unit(op, fmt, units):
    """The :class:`hwlib._specs.CircuitSpec` that prices basic op ``op`` in integer format ``fmt``
    (see the module doc), built from a profile's ``units``."""
    from .. import CircuitError
    from .._specs import CircuitSpec, design_of, integer_unit
    if fmt not in INT_FORMAT_BITS:
        raise CircuitError(f"Unknown integer format {fmt!r}; expected one of {', '.join(INT_FORMAT_BITS)}")
    if op not in UNIT_DESIGN_KIND:
        raise CircuitError(f"Unknown op {op!r}; expected one of {', '.join(UNIT_DESIGN_KIND)}")
    kind = UNIT_DESIGN_KIND[op]
    width = INT_FORMAT_BITS[fmt]
    # the profile's unit of this op (sub and cmp have their own entries, adder designs), as the
    # floating-point formats read it
    options = dict(units.get(op) or {})
    if kind == "mul":
        options["signed"] = True
    spec = integer_unit(kind, design_of(units, op), width, options)
    return CircuitSpec(label=f"{fmt} {op} ({spec.design}, {width}-bit integer)", design=spec.design,
                       params=spec.params, build=spec.build)


def int_mac_unit(fmt, units, acc="int32"):
    """The integer multiply-accumulate unit of a profile with ``units.mac`` for products in
    ``fmt`` (int8, int4): :func:`hwlib.units.mac.mac_unit` on the profile's multiplier design
    (its ``final_adder``), signed operands, an ``acc`` (int32) accumulator."""
    from .. import CircuitError
    from .._specs import design_of
    from .mac import MAC_DESIGNS, mac_unit
    if fmt not in ("int8", "int4"):
        raise CircuitError(f"An integer MAC multiplies int8 or int4, not {fmt!r}")
    design = design_of(units, "mul")
    if design not in MAC_DESIGNS:
        raise CircuitError(f"No integer MAC is built on multiplier {design!r}; expected one of "
                           f"{', '.join(MAC_DESIGNS)}")
    return mac_unit(design, INT_FORMAT_BITS[fmt], INT_FORMAT_BITS[acc], signed=True, options=units.get("mul"))


def int_mac_costs(profile, formats, *, cache=None, progress=None, jobs=1):
    """The :class:`hwlib.cost.Cost` of :func:`int_mac_unit` for each of ``formats`` under
    ``profile`` (synthesized where not cached)."""
    from ..cost import _price_all, _profile_pricer
    specs = [int_mac_unit(fmt, profile.units) for fmt in formats]
    return _price_all(_profile_pricer(profile, cache), specs, progress, jobs)
