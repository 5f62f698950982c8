"""Circuit specifications: what to price, described by parameters that key the caches.

A :class:`CircuitSpec` names a circuit by JSON parameters and carries a callable that builds
it; building (and with it Amaranth and the circuit modules) happens only when a circuit has to
be synthesized. :func:`_source_digest` fingerprints the sources that decide a circuit or its
count, and enters the index and bundled-table keys.
"""
import functools
import hashlib
import importlib.util
import inspect
import os
from dataclasses import dataclass, field

from hardware_profiles.schema import FORMAT_BITS, UNIT_DESIGN_KIND

from . import CircuitError, checks

__all__ = ["CircuitSpec", "integer_unit", "fp_unit", "significand_unit", "fp_units_available"]

#: hwlib modules left out of :func:`_source_digest`: they run Yosys, cache, schedule or read
#: tables, and decide no circuit and no count. Changing them needs no new bundled tables.
_PLUMBING = frozenset({"__init__.py", "_bundle.py", "_bundled.py", "_cache.py", "_pricer.py",
                       "_yosys.py", "cost.py"})


@functools.lru_cache(maxsize=None)
def _source_digest():
    """SHA-256 over the hwlib sources that decide a circuit or its count (every module but
    the plumbing in ``_PLUMBING``): a change to any of them invalidates the index and the
    bundled tables."""
    digest = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.endswith(".py") and name not in _PLUMBING:
            with open(os.path.join(here, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class CircuitSpec:
    """A circuit to price, described by its parameters: ``label`` for progress lines,
    ``design`` the design name, ``params`` a JSON-serializable mapping that identifies the
    circuit (part of the cache keys), ``build`` a callable that constructs the component."""

    label: str
    design: str
    params: dict
    build: object = field(repr=False)


def _accepted(cls, options):
    # Unit options a design's constructor does not take are not its business (e.g. the
    # Newton-Raphson root's multiplier for a digit-recurrence root).
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in parameters}


def integer_unit(kind, design, width, options=None):
    """An integer unit of ``kind`` (``add``, ``mul``, ``div``, ``sqrt``) and ``design`` at
    ``width`` (operand width; radicand width for ``sqrt``).

    Adders are built as plain two-operand adders (``carry_in=False, subtract=False``), as the
    paper counts them; ``options`` (a profile unit's options, e.g. ``final_adder``) go to the
    constructor where it takes them.
    """
    from . import registry
    if kind not in registry.DESIGNS:
        raise CircuitError(f"Unknown unit kind {kind!r}; expected one of "
                           f"{', '.join(registry.UNIT_KINDS)}")
    if design not in registry.DESIGNS[kind]:
        raise CircuitError(f"Unknown design {design!r} for unit {kind!r}; expected one of "
                           f"{', '.join(registry.DESIGNS[kind])}")
    checks.positive_int(width, "Unit width", error=CircuitError)
    cls = registry.design_class(design, kind)
    if kind == "add":
        kwargs = {"carry_in": False, "subtract": False}
    else:
        kwargs = _accepted(cls, {k: v for k, v in (options or {}).items() if k != "design"})
    params = {"circuit": "integer", "kind": kind, "design": design, "width": width,
              "options": dict(sorted(kwargs.items()))}
    return CircuitSpec(label=f"{design} {width}-bit", design=design, params=params,
                       build=functools.partial(cls, width, **kwargs))


def fp_units_available():
    """Whether the floating-point datapaths (:mod:`hwlib.fp`) are installed; found without
    importing them, so that reading a bundled table loads no Amaranth."""
    return importlib.util.find_spec("hwlib.fp") is not None


def design_of(units, op):
    unit = units.get(op)
    if not isinstance(unit, dict) or "design" not in unit:
        raise CircuitError(f"The profile has no {op!r} unit")
    return unit["design"]


def _build_fp_unit(op, fmt, units, datapath):
    from .fp import build_fp_unit
    return build_fp_unit(op, fmt, units, datapath)


def fp_unit(op, fmt, units, datapath):
    """The floating-point unit of basic operation ``op`` in format ``fmt``, built by
    :func:`hwlib.fp.build_fp_unit` from a profile's ``units`` and ``datapath``."""
    design = design_of(units, op)
    # The units an FP op's circuit may use: its own and the add unit (the minimal datapath's
    # exponent adder).
    relevant = {name: units[name] for name in sorted({op, "add"}) if name in units}
    params = {"circuit": "fp", "op": op, "format": fmt, "datapath": datapath, "units": relevant}
    return CircuitSpec(label=f"{fmt} {op} ({design}, {datapath})", design=design, params=params,
                       build=functools.partial(_build_fp_unit, op, fmt, units, datapath))


#: Unit kind that executes each basic op (sub and cmp run on an adder).
_OP_KIND = UNIT_DESIGN_KIND   # basic op -> the integer unit kind that executes it


def significand_unit(op, fmt, units):
    """The integer stand-in for an FP op while no FP datapath exists: the profile's unit for
    ``op`` at the format's significand width (fraction + 1 bits): an adder for add, sub and
    cmp, the multiplier, divider or root otherwise."""
    width = FORMAT_BITS[fmt][1] + 1
    unit = units.get(op) or {}
    spec = integer_unit(_OP_KIND[op], design_of(units, op), width, unit)
    return CircuitSpec(label=f"{fmt} {op} ({spec.design}, {width}-bit integer)",
                       design=spec.design, params={**spec.params, "op": op, "format": fmt},
                       build=spec.build)
