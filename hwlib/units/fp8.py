"""8-bit floating-point units (OCP 8-bit FP, "OFP8"): ``fp8_e4m3`` and ``fp8_e5m2``.

The two formats of the OCP 8-bit floating point specification (v1.0, 2023), which the FP8
tensor cores of current accelerators read:

=============  ====  ====  ====  ===========================  =========  ===================
format         E     F     bias  largest finite               infinity   NaN
=============  ====  ====  ====  ===========================  =========  ===================
``fp8_e5m2``   5     2     15    57,344 (``0x7B``)            ``0x7C``   exponent 11111, f≠0
``fp8_e4m3``   4     3     7     448 (``0x7E``)               none       ``S.1111.111`` only
=============  ====  ====  ====  ===========================  =========  ===================

**fp8_e5m2** is an IEEE-754 binary format (infinities, NaNs, subnormals), so its units are
the IEEE units of :mod:`hwlib.fp` at E = 5, F = 2, unchanged (:func:`hwlib._specs.fp_unit`).

**fp8_e4m3** ("E4M3FN") gives up the infinities: exponent 1111 is an ordinary binade (256 to
448) except for the one NaN pattern per sign, ``S.1111.111``. The IEEE units cannot read it, so
an e4m3 unit here (:class:`E4M3Unit`) is the IEEE unit of :mod:`hwlib.fp` built on an *inner
format* with one more exponent bit and e4m3's bias (E = 5, F = 3, bias 7: every e4m3 value,
subnormals included, is a value of the inner format with the same subnormal spacing 2**-9, so
the inner unit's one rounding is e4m3's rounding), between two small re-encoders:

* in: the fields pass unchanged with a fifth exponent bit of 0, except that the NaN pattern
  gets exponent 11111 (an inner NaN);
* out: an inner NaN gives the canonical e4m3 NaN ``0x7F``; an inner result above 448 (exponent
  16 or more, an inner infinity, or exponent 15 with fraction 111, i.e. 480) **saturates** to
  ±448 (``0x7E``/``0xFE``); the rest passes with the fifth exponent bit dropped.

Semantics (both formats): the exact result rounded to nearest, ties to even, with subnormals;
NaN in, NaN out; every NaN result is the canonical NaN (e5m2: the quiet NaN of
:mod:`hwlib.fp`, ``0x7E``; e4m3: ``0x7F``). Overflow: e5m2 rounds to ±infinity as IEEE does;
**e4m3 saturates**: a result whose rounded magnitude exceeds 448, and an IEEE infinity
(``x / 0``), becomes ±448. That is the OCP specification's *saturating* conversion mode, the
``.satfinite`` conversions of NVIDIA's FP8 instructions and PyTorch's conversion to
``torch.float8_e4m3fn``; the specification's non-saturating mode (overflow to NaN) is not
built. ``reference_fp8`` is the exact plain-Python model.

Cost: the inner unit carries one exponent bit more than a dedicated e4m3 design (a 5-bit
exponent path and the inner unit's unused overflow test) plus the two re-encoders (a 7-input
AND in, a few gates out), so e4m3 prices a little above a dedicated unit.

Routing: :func:`hwlib.cost.unit_spec` sends e4m3 under ``datapath: ieee`` here
(:func:`fp8_unit`) and everything else to :func:`hwlib._specs.fp_unit`. ``hwlib.fp``'s
units themselves treat every format name as IEEE, so calling :func:`hwlib.fp.build_fp_unit`
with ``fp8_e4m3`` directly gives an IEEE-style unit with infinities at exponent 1111, not an
e4m3 unit; the ``minimal`` datapath (the paper's composition, which prices widths only) takes
both formats as they are.
"""
import functools
import math
from fractions import Fraction

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hardware_profiles import FORMAT_BITS

from .. import fp as _fp

__all__ = ["FP8_FORMATS", "E4M3", "E4M3Unit", "InnerFormat", "fp8_unit", "build_fp8_unit",
           "reference_fp8", "fp8_to_fraction", "round_fraction", "FP8_INFO"]

#: The OCP 8-bit formats by name.
FP8_FORMATS = ("fp8_e4m3", "fp8_e5m2")
#: The e4m3 format (the one that needs the re-encoding of this module).
E4M3 = "fp8_e4m3"

#: Per format: exponent bits, fraction bits, bias, whether it has infinities, largest finite
#: bit pattern, canonical NaN bit pattern of the units here.
FP8_INFO = {
    "fp8_e4m3": {"exp_bits": 4, "frac_bits": 3, "bias": 7, "infinities": False, "max": 0x7E,
                 "nan": 0x7F},
    "fp8_e5m2": {"exp_bits": 5, "frac_bits": 2, "bias": 15, "infinities": True, "max": 0x7B,
                 "nan": 0x7E},
}
assert all(FORMAT_BITS[name] == (i["exp_bits"], i["frac_bits"]) for name, i in FP8_INFO.items())


# --- reference ------------------------------------------------------------------------------

def fp8_to_fraction(bits, fmt):
    """The value of the 8-bit pattern ``bits`` in ``fmt``: a :class:`fractions.Fraction`, or
    ``float('inf')``/``-inf``/``nan`` for the special patterns."""
    info = FP8_INFO[fmt]
    E, F, bias = info["exp_bits"], info["frac_bits"], info["bias"]
    sign = -1 if bits >> 7 & 1 else 1
    exp, frac = bits >> F & ((1 << E) - 1), bits & ((1 << F) - 1)
    if info["infinities"] and exp == (1 << E) - 1:
        return sign * math.inf if frac == 0 else math.nan
    if not info["infinities"] and exp == (1 << E) - 1 and frac == (1 << F) - 1:
        return math.nan
    if exp == 0:
        return sign * Fraction(frac, 1 << F) * Fraction(2) ** (1 - bias)
    return sign * Fraction((1 << F) + frac, 1 << F) * Fraction(2) ** (exp - bias)


def round_magnitude(mag, F, bias):
    """A positive Fraction ``mag`` rounded to nearest even with ``F`` fraction bits and
    exponent ``bias`` (subnormals included, exponent unbounded above): ``(m, q)`` with
    ``mag ~ m * 2**q``, ``m`` below ``2**(F + 1)``, and ``m >= 2**F`` unless subnormal."""
    # the last place's exponent: that of the leading bit less F, but not below the subnormals'
    lead = mag.numerator.bit_length() - mag.denominator.bit_length()
    if Fraction(2) ** lead > mag:
        lead -= 1
    q = max(lead, 1 - bias) - F
    scaled = mag / Fraction(2) ** q
    m = scaled.numerator // scaled.denominator
    rest = scaled - m
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and m & 1):
        m += 1
    if m == 1 << (F + 1):        # rounded up into the next binade
        m, q = m >> 1, q + 1
    return m, q


def round_fraction(value, fmt, negative=False):
    """Bit pattern of ``value`` (a Fraction, int, float or a signed infinity/NaN float)
    rounded to nearest even in ``fmt`` with the overflow of the units here (e5m2: infinity,
    e4m3: saturation at 448). ``negative`` gives the sign of a zero ``value`` (``-0``)."""
    info = FP8_INFO[fmt]
    E, F, bias = info["exp_bits"], info["frac_bits"], info["bias"]
    if isinstance(value, float) and math.isnan(value):
        return info["nan"]
    sign = 1 if value < 0 or (value == 0 and negative) else 0
    top = sign << 7
    if isinstance(value, float) and math.isinf(value):
        return top | (0x7C if info["infinities"] else info["max"])
    mag = abs(Fraction(value))
    if mag == 0:
        return top
    m, q = round_magnitude(mag, F, bias)
    if m >= 1 << F:
        exp_field, frac = q + F + bias, m - (1 << F)
    else:
        exp_field, frac = 0, m
    pattern = exp_field << F | frac
    if pattern > info["max"]:
        return top | (0x7C if info["infinities"] else info["max"])
    return top | pattern


def reference_fp8(op, a, b=None, fmt=E4M3):
    """Plain-Python model of the FP8 units: the result bit pattern of ``op`` (``add``,
    ``sub``, ``mul``, ``div``, ``sqrt``) on the bit patterns ``a`` and ``b`` in ``fmt``;
    for ``cmp`` one of ``"lt"``, ``"eq"``, ``"gt"``, ``"unordered"``.

    Exact: the result is computed as a rational (a float for ``sqrt``, whose rounding cannot
    meet an FP8 tie: a root of a 4-bit significand is at least 2**-11 relative away from any
    5-bit midpoint) and rounded once by :func:`round_fraction`. IEEE rules for the specials:
    ``inf - inf``, ``0 * inf``, ``0 / 0``, ``inf / inf`` and the root of a negative number are
    NaN; an exact zero sum is +0 unless both addends are -0; ``sqrt(-0) = -0``.
    """
    x = fp8_to_fraction(a, fmt)
    sa = a >> 7 & 1
    if op == "sqrt":
        if isinstance(x, float):
            return round_fraction(x if x > 0 else math.nan, fmt)
        if x == 0:
            return round_fraction(0, fmt, negative=bool(sa))
        if x < 0:
            return round_fraction(math.nan, fmt)
        return round_fraction(Fraction(math.sqrt(x)), fmt)
    y = fp8_to_fraction(b, fmt)
    sb = b >> 7 & 1
    if op == "cmp":
        if _isnan(x) or _isnan(y):
            return "unordered"
        return "lt" if x < y else "gt" if x > y else "eq"
    if _isnan(x) or _isnan(y):
        return round_fraction(math.nan, fmt)
    if op == "sub":
        y, sb = -y, sb ^ 1
        op = "add"
    if op == "add":
        if isinstance(x, float) or isinstance(y, float):      # an infinity
            if isinstance(x, float) and isinstance(y, float) and x != y:
                return round_fraction(math.nan, fmt)
            return round_fraction(x if isinstance(x, float) else y, fmt)
        total = x + y
        return round_fraction(total, fmt, negative=total == 0 and bool(sa & sb))
    sign = sa ^ sb
    if op == "mul":
        if isinstance(x, float) or isinstance(y, float):
            if x == 0 or y == 0:
                return round_fraction(math.nan, fmt)
            return round_fraction(-math.inf if sign else math.inf, fmt)
        return round_fraction(x * y, fmt, negative=bool(sign))
    if op == "div":
        if isinstance(x, float) and isinstance(y, float):
            return round_fraction(math.nan, fmt)
        if isinstance(x, float):
            return round_fraction(-math.inf if sign else math.inf, fmt)
        if isinstance(y, float):
            return round_fraction(0, fmt, negative=bool(sign))
        if y == 0:
            if x == 0:
                return round_fraction(math.nan, fmt)
            return round_fraction(-math.inf if sign else math.inf, fmt)
        return round_fraction(x / y, fmt, negative=bool(sign))
    raise ValueError(f"Unknown FP8 operation {op!r}")


def _isnan(v):
    return isinstance(v, float) and math.isnan(v)


# --- circuits -------------------------------------------------------------------------------

class InnerFormat:
    """A binary format by fields and bias, with IEEE special values at the top exponent: the
    inner format of the e4m3 units (the attributes :mod:`hwlib.fp`'s units read from a
    :class:`hwlib.fp.FPFormat`)."""

    def __init__(self, name, exp_bits, frac_bits, bias):
        self.name = name
        self.exp_bits, self.frac_bits, self.bias = exp_bits, frac_bits, bias
        self.width = 1 + exp_bits + frac_bits
        self.exp_max = (1 << exp_bits) - 1

    def __repr__(self):
        return f"InnerFormat({self.name!r}, {self.exp_bits}, {self.frac_bits}, bias={self.bias})"

    qnan = _fp.FPFormat.qnan
    inf = _fp.FPFormat.inf


#: e4m3's inner format: one more exponent bit, e4m3's bias (see the module doc).
E4M3_INNER = InnerFormat("fp8_e4m3 inner", 5, 3, 7)


class _InnerFormatUnit(_fp.FPUnit):
    """Placed after an :mod:`hwlib.fp` unit class in the bases, so that the unit's
    ``super().__init__(fmt, ...)`` lands here and takes an :class:`InnerFormat` instead of a
    format name."""

    def __init__(self, fmt, members, src_loc_at):
        self.format = fmt
        wiring.Component.__init__(self, members(fmt.width), src_loc_at=src_loc_at + 2)


class _InnerAdd(_fp.FPAdd, _InnerFormatUnit):
    pass


class _InnerMul(_fp.FPMul, _InnerFormatUnit):
    pass


class _InnerDiv(_fp.FPDiv, _InnerFormatUnit):
    pass


class _InnerSqrt(_fp.FPSqrt, _InnerFormatUnit):
    pass


class _InnerCmp(_fp.FPCmp, _InnerFormatUnit):
    pass


def e4m3_decode(m, word, name):
    """The inner-format (E = 5, bias 7) pattern of the e4m3 pattern ``word``: the fields with a
    fifth exponent bit that is 1 only for the NaN pattern."""
    nan = Signal(name=f"{name}_is_nan")
    inner = Signal(9, name=f"{name}_inner")
    m.d.comb += [nan.eq(word[:7] == 0x7F), inner.eq(Cat(word[:7], nan, word[7]))]
    return inner


def e4m3_encode(m, inner, name):
    """The e4m3 pattern of the inner-format result ``inner``: NaN to ``0x7F``, magnitudes
    above 448 (and infinities) saturated to ±448, the rest with the fifth exponent bit
    dropped."""
    exp, frac, sign = inner[3:8], inner[:3], inner[8]
    nan = Signal(name=f"{name}_nan")
    over = Signal(name=f"{name}_over")
    out = Signal(8, name=f"{name}_e4m3")
    m.d.comb += [
        nan.eq((exp == 31) & (frac != 0)),
        over.eq(exp[4] | ((exp == 15) & (frac == 7))),
    ]
    with m.If(nan):
        m.d.comb += out.eq(0x7F)
    with m.Elif(over):
        m.d.comb += out.eq(Cat(Const(0x7E, 7), sign))
    with m.Else():
        m.d.comb += out.eq(Cat(inner[:7], sign))
    return out


#: Ports of each op's unit besides the FP operands, and the FP operand ports.
_OPERANDS = {"add": ("a", "b"), "sub": ("a", "b"), "mul": ("a", "b"), "div": ("a", "b"),
             "sqrt": ("a",), "cmp": ("a", "b")}


class E4M3Unit(wiring.Component):
    """An e4m3 unit of ``op``: the :mod:`hwlib.fp` unit on the inner format between the
    e4m3 re-encoders (module doc).

    Ports as the IEEE unit of the op, 8 bits wide: ``a``, ``b`` (not for sqrt), ``sub`` (add
    and sub), ``result`` (not for cmp), ``lt``, ``eq``, ``gt``, ``unordered`` (cmp).
    ``design`` and ``options`` are those :func:`hwlib.fp.build_fp_unit` would pass the IEEE
    unit (the profile's unit of ``op``).
    """

    def __init__(self, op, design, options=None, *, src_loc_at=0):
        if op not in _OPERANDS:
            raise ValueError(f"Unknown FP operation {op!r}; expected one of {', '.join(_OPERANDS)}")
        self.op = "add" if op == "sub" else op
        self.design = design
        self.options = dict(options or {})
        members = {name: In(8) for name in _OPERANDS[op]}
        if self.op == "add":
            members["sub"] = In(1)
        if self.op == "cmp":
            members.update({"lt": Out(1), "eq": Out(1), "gt": Out(1), "unordered": Out(1)})
        else:
            members["result"] = Out(8)
        super().__init__(members, src_loc_at=src_loc_at + 1)

    def _inner(self):
        fmt, design, options = E4M3_INNER, self.design, self.options
        if self.op == "add":
            return _InnerAdd(fmt, adder=design)
        if self.op == "mul":
            return _InnerMul(fmt, multiplier=design, **options)
        if self.op == "div":
            return _InnerDiv(fmt, divider=design, **options)
        if self.op == "sqrt":
            return _InnerSqrt(fmt, root=design, root_options=options)
        return _InnerCmp(fmt, adder=design)

    def elaborate(self, platform):
        m = Module()
        inner = self._inner()
        m.submodules.inner = inner
        for port in _OPERANDS[self.op]:
            m.d.comb += getattr(inner, port).eq(e4m3_decode(m, getattr(self, port), port))
        if self.op == "add":
            m.d.comb += inner.sub.eq(self.sub)
        if self.op == "cmp":
            m.d.comb += [self.lt.eq(inner.lt), self.eq.eq(inner.eq), self.gt.eq(inner.gt),
                         self.unordered.eq(inner.unordered)]
        else:
            m.d.comb += self.result.eq(e4m3_encode(m, inner.result, "out"))
        return m


def build_fp8_unit(op, fmt, units):
    """The e4m3 unit of basic operation ``op`` from a profile's ``units`` (the options the
    IEEE factory accepts, checked by it)."""
    if fmt != E4M3:
        raise ValueError(f"build_fp8_unit builds {E4M3} units, not {fmt!r} (fp8_e5m2 is IEEE: hwlib.fp)")
    design, options = _fp.unit_design(units, op)
    return E4M3Unit(op, design, options, src_loc_at=1)


def fp8_unit(op, fmt, units, datapath="ieee"):
    """A :class:`hwlib.cost.CircuitSpec` of the e4m3 unit of ``op`` (``datapath`` must be
    ``ieee``), keyed by the unit's parameters and :func:`hwlib.units.units_digest`."""
    from .. import CircuitError
    from .._specs import CircuitSpec, design_of
    from . import units_digest
    if fmt != E4M3 or datapath != "ieee":
        raise CircuitError(f"fp8_unit prices {E4M3} on the ieee datapath, not {fmt!r} on {datapath!r}")
    if op not in _OPERANDS:
        raise CircuitError(f"Unknown FP operation {op!r}; expected one of {', '.join(_OPERANDS)}")
    design = design_of(units, op)
    relevant = {name: units[name] for name in sorted({op, "add"}) if name in units}
    params = {"circuit": "fp8", "op": op, "format": fmt, "datapath": datapath, "units": relevant,
              "sources": units_digest()}
    return CircuitSpec(label=f"{fmt} {op} ({design}, {datapath})", design=design, params=params,
                       build=functools.partial(build_fp8_unit, op, fmt, units))
