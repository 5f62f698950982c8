"""Loading, validating and resolving hardware profiles (YAML, schema version 1).

Every problem is reported as one :class:`ProfileError` whose message names the file, the line and
the key path: ``my.yaml:7: units.mul.design: unknown multiplier design 'boothwallace' (did you mean
'booth_wallace'?)``.

Resolution (``extends:``): the base is a built-in profile name or a path relative to the extending
file. The child is merged into the base key by key; a mapping in the base can only be overridden
by a mapping, and these entries are replaced whole instead of merged, because a partial merge would
mix two designs or two formulas: ``units.<op>``, ``recipes.<name>``, ``devices.<name>``,
``power.distribution`` and lists (``formats``, ``coefficients``). ``name``, ``description`` and
``extends`` are never inherited.
"""
import difflib
import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources

import yaml

from . import _read
from ._yaml import UniqueKeyLoader

from . import schema as S

__all__ = ["ProfileError", "Profile", "load", "load_file", "builtin_names", "builtin_path"]


class ProfileError(Exception):
    """A profile that cannot be used; the message is one line naming file, line and key path."""


_BUILTIN_DIR = "builtin"
_BUILTIN_PREFIX = "builtin:"


def builtin_names():
    """Names of the profiles shipped inside the package, sorted."""
    folder = resources.files(__package__) / _BUILTIN_DIR
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def builtin_path(name):
    """Filesystem path of a built-in profile's YAML file."""
    return str(resources.files(__package__) / _BUILTIN_DIR / f"{name}.yaml")


# --------------------------------------------------------------------------------------------
# reading YAML with line numbers

def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _expected_name(types):
    if not isinstance(types, tuple):
        types = (types,)
    names = {dict: "a mapping", list: "a list", str: "a string", int: "an integer",
             float: "a number", type(None): "null", bool: "true or false"}
    return " or ".join(names[t] for t in types)


def _fmt_path(path):
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class _Doc:
    """One YAML file: its data, where each key path sits, and how to name it in messages."""

    display: str                      # file name as shown in messages
    data: object
    lines: dict = field(default_factory=dict)   # key path (tuple of str/int) -> line number
    directory: str = "."
    identity: str = ""                # canonical identity for extends-cycle detection

    def line(self, path):
        path = tuple(path)
        while path:
            key = tuple(str(p) if not isinstance(p, int) else p for p in path)
            if key in self.lines:
                return self.lines[key]
            path = path[:-1]
        return self.lines.get((), 1)

    def error(self, path, message):
        where = f"{self.display}:{self.line(path)}"
        if path:
            return ProfileError(f"{where}: {_fmt_path(path)}: {message}")
        return ProfileError(f"{where}: {message}")


class _ProfileLoader(UniqueKeyLoader):
    """PyYAML's safe loader, plus YAML 1.2 floats written with an exponent but without a dot or an
    exponent sign (``1e-12``, ``5E3``, ``-2e+5``, ``1.5e3``), which YAML 1.1 reads as strings;
    energies are naturally written that way. A key given twice is an error (``UniqueKeyLoader``).
    Used only to read profiles."""


_ProfileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def _read_doc(path, display, identity):
    if not os.path.lexists(path):
        raise ProfileError(f"{display}: no such file")
    try:
        text = _read.read_text(path, display, what="profile file")
    except _read.InputFileError as exc:
        raise ProfileError(str(exc)) from None
    doc = _Doc(display=display, data=None, directory=os.path.dirname(os.path.abspath(path)),
               identity=identity)
    try:
        data, node = _read.load_yaml(text, display, _ProfileLoader)
    except _read.InputFileError as exc:
        raise ProfileError(str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise ProfileError(f"{display}:{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{display}:1: invalid YAML: {' '.join(str(exc).split())}") from None
    if node is None or data is None:
        raise ProfileError(f"{display}:1: profile is empty")
    _read.node_lines(node, (), doc.lines)
    if not isinstance(data, dict):
        raise ProfileError(f"{display}:{node.start_mark.line + 1}: top level must be a mapping of "
                           f"profile keys, not {_type_name(data)}")
    doc.data = data
    return doc


# --------------------------------------------------------------------------------------------
# validation of one file (partial when it extends another)

def _suggest(word, choices):
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _check_type(doc, path, value, types):
    if not isinstance(types, tuple):
        types = (types,)
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise doc.error(path, f"expected {_expected_name(types)}, not {_type_name(value)}")


def _is_finite(value):
    try:
        return math.isfinite(value)
    except OverflowError:       # an integer too large for a float
        return False


#: Largest magnitude of a profile's real numbers (coefficients, energies, grid intensity): far
#: beyond any physical value, and small enough that a result built from them stays finite in the
#: usual ranges (results are checked for finiteness again where they are computed).
MAX_NUMBER = 1e100


def _check_number(doc, path, value, limit=MAX_NUMBER):
    """A finite number (integer or float) of magnitude at most ``limit``: NaN, infinities and
    values near the float range would turn every score into nan/inf."""
    _check_type(doc, path, value, float)
    if not _is_finite(value):
        shown = value if isinstance(value, float) else "an integer too large for a float"
        raise doc.error(path, f"expected a finite number, not {shown}")
    if abs(value) > limit:
        raise doc.error(path, f"expected a number of magnitude at most {limit:g}, not {value:g}")


def _check_choice(doc, path, value, choices, what):
    _check_type(doc, path, value, str)
    if value not in choices:
        raise doc.error(path, f"unknown {what} {value!r}{_suggest(value, choices)}; "
                              f"known: {', '.join(choices)}")


def _check_keys(doc, path, mapping, allowed, what="key"):
    for key in mapping:
        if key not in allowed:
            raise doc.error(path + (key,), f"unknown {what} {key!r}{_suggest(key, allowed)}")


#: Upper bounds of a profile's integers, so that counts times costs stay exact in int64/float64.
MAX_TRANSISTORS_PER_GATE = 10 ** 6
MAX_RECIPE_COUNT = 10 ** 6
MAX_BYTES_VALUE = 2 ** 62


def _check_positive_int(doc, path, value, what, limit=MAX_BYTES_VALUE):
    if isinstance(value, bool) or not isinstance(value, int):
        shown = value if isinstance(value, float) else _type_name(value)   # 2.5, nan and inf shown as such
        raise doc.error(path, f"{what} must be a positive integer, not {shown}")
    if value <= 0:
        raise doc.error(path, f"{what} must be a positive integer, not {value}")
    if value > limit:
        raise doc.error(path, f"{what} must be at most {limit:,}, not {_big(value)}")


def _big(value):
    text = str(value)
    return text if len(text) <= 24 else f"an integer of {len(text)} digits"


_KIND_WORD = {"add": "adder", "mul": "multiplier", "div": "divider", "sqrt": "square-root"}


def _check_design(doc, path, value, kind):
    _check_type(doc, path, value, str)
    if value not in S.DESIGNS[kind]:
        raise doc.error(path, f"unknown {_KIND_WORD[kind]} design {value!r}"
                              f"{_suggest(value, S.DESIGNS[kind])}; "
                              f"known: {', '.join(S.DESIGNS[kind])}")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _check_printable(doc, value, path=()):
    """No key and no string of a profile holds a control character (an escape sequence in a
    name would be sent to the terminal by every command that prints it); tabs and newlines are
    allowed in strings, not in keys."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str) and _CONTROL.search(item):
            raise doc.error(where, f"holds a control character: {item!r}")
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and (_CONTROL.search(key) or "\t" in key or "\n" in key):
                    raise doc.error(where, f"key {key!r} holds a control character")
                stack.append((child, where + (key,)))
        elif isinstance(item, list):
            stack.extend((child, where + (i,)) for i, child in enumerate(item))


def _validate_partial(doc):
    data = doc.data
    _check_printable(doc, data)
    _check_keys(doc, (), data, S.TOP_KEYS)
    for key, value in data.items():
        _check_type(doc, (key,), value, S.TOP_KEYS[key])
    if "schema" in data and data["schema"] != S.SCHEMA_VERSION:
        raise doc.error(("schema",), f"unsupported schema version {data['schema']} "
                                     f"(this tosim reads version {S.SCHEMA_VERSION})")

    tech = data.get("technology", {})
    _check_keys(doc, ("technology",), tech, ("counting", "gates", "cells"))
    if "counting" in tech:
        _check_type(doc, ("technology", "counting"), tech["counting"], str)
        if tech["counting"] not in S.COUNTING_MODES:
            raise doc.error(("technology", "counting"),
                            f"unknown counting mode {tech['counting']!r}"
                            f"{_suggest(tech['counting'], S.COUNTING_MODES)}; "
                            f"known: {', '.join(S.COUNTING_MODES)}")
    for section, allowed, what in (("gates", S.GATE_TYPES, "gate"), ("cells", S.CELL_TYPES, "cell")):
        if section in tech:
            base = ("technology", section)
            _check_type(doc, base, tech[section], dict)
            _check_keys(doc, base, tech[section], allowed, what)
            for name, cost in tech[section].items():
                _check_positive_int(doc, base + (name,), cost, "transistor cost", MAX_TRANSISTORS_PER_GATE)

    units = data.get("units", {})
    _check_keys(doc, ("units",), units, S.BASIC_OPS, "op")
    for op, unit in units.items():
        path = ("units", op)
        _check_type(doc, path, unit, dict)
        _check_keys(doc, path, unit, ("design",) + tuple(S.UNIT_OPTIONS[op]), "unit option")
        if "design" not in unit:
            raise doc.error(path, "missing key 'design'")
        _check_design(doc, path + ("design",), unit["design"], S.UNIT_DESIGN_KIND[op])
        for option, kind in S.UNIT_OPTIONS[op].items():
            if option not in unit:
                continue
            if kind is int:
                value = unit[option]
                _check_type(doc, path + (option,), value, int)
                if not 2 <= value <= 16:
                    raise doc.error(path + (option,), f"seed bits must be an integer in 2..16, not {value}")
            else:
                _check_design(doc, path + (option,), unit[option], kind)

    if "datapath" in data and data["datapath"] not in S.DATAPATHS:
        raise doc.error(("datapath",), f"unknown datapath {data['datapath']!r}"
                                       f"{_suggest(data['datapath'], S.DATAPATHS)}; "
                                       f"known: {', '.join(S.DATAPATHS)}")
    for i, fmt in enumerate(data.get("formats", [])):
        _check_format(doc, ("formats", i), fmt)
    if "default_format" in data:
        _check_format(doc, ("default_format",), data["default_format"])

    for name, recipe in data.get("recipes", {}).items():
        path = ("recipes", name)
        if name in S.BASIC_OPS:
            raise doc.error(path, f"recipe name {name!r} is a basic operation; pick another name")
        _check_type(doc, path, recipe, dict)
        _check_keys(doc, path, recipe, ("forward", "backward", "note"), "recipe key")
        if "forward" not in recipe:
            raise doc.error(path, "missing key 'forward'")
        if "note" in recipe:
            _check_type(doc, path + ("note",), recipe["note"], str)
        for direction in ("forward", "backward"):
            if direction not in recipe:
                continue
            _check_type(doc, path + (direction,), recipe[direction], dict)
            for op, n in recipe[direction].items():
                p = path + (direction, op)
                if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                    raise doc.error(p, f"op count must be a non-negative integer, not {n!r}")
                if n > MAX_RECIPE_COUNT:
                    raise doc.error(p, f"op count must be at most {MAX_RECIPE_COUNT:,}, not {_big(n)}")

    for name, device in data.get("devices", {}).items():
        path = ("devices", name)
        _check_type(doc, path, device, dict)
        _check_keys(doc, path, device, S.DEVICE_KEYS, "device key")
        for key, value in device.items():
            _check_type(doc, path + (key,), value, S.DEVICE_KEYS[key])
        if "unit" in device and device["unit"] not in S.DEVICE_UNITS:
            raise doc.error(path + ("unit",), f"unknown unit {device['unit']!r}: device coefficients "
                                              f"give joules, so unit can only be J")
        if "phase" in device:
            _check_choice(doc, path + ("phase",), device["phase"], S.DEVICE_PHASES, "phase")
        if "energy_model" in device:
            for key in ("feature", "coefficients"):
                if key in device:
                    raise doc.error(path + (key,), f"a device holds a polynomial (feature, coefficients) "
                                                   f"or an energy_model, not both")
            _validate_energy_model(doc, path + ("energy_model",), device["energy_model"])
            continue
        for key in ("feature", "coefficients"):
            if key not in device:
                raise doc.error(path, f"missing key {key!r} (or an energy_model)")
        _check_choice(doc, path + ("feature",), device["feature"], S.DEVICE_FEATURES, "feature")
        if not device["coefficients"]:
            raise doc.error(path + ("coefficients",), "needs at least one coefficient (the intercept)")
        for i, c in enumerate(device["coefficients"]):
            # any finite coefficient (tosim fit writes what the data gives, 1e300 J runs included);
            # an energy past float64 is the scored row's error, never inf
            _check_number(doc, path + ("coefficients", i), c, limit=math.inf)

    carbon = data.get("carbon", {})
    _check_keys(doc, ("carbon",), carbon, ("grid_gco2_per_kwh", "source"))
    if "grid_gco2_per_kwh" in carbon:
        value = carbon["grid_gco2_per_kwh"]
        _check_number(doc, ("carbon", "grid_gco2_per_kwh"), value, MAX_GRID_INTENSITY)
        if value < 0:
            raise doc.error(("carbon", "grid_gco2_per_kwh"), f"grid intensity must not be negative, not {value}")
    if "source" in carbon:
        _check_type(doc, ("carbon", "source"), carbon["source"], str)
    if "memory" in data:
        _validate_memory(doc, data["memory"])
    if "power" in data:
        _validate_power(doc, data["power"])


#: Largest capacitance (fF), delay (ps) or area (um^2) of one gate, and largest supply (V).
MAX_POWER_NUMBER = 1e9
MAX_VDD = 1e3
#: Most operand pairs one simulated stream of the power section may run.
MAX_POWER_VECTORS = 10 ** 7


def _validate_power(doc, power):
    """The ``power:`` section (schema.POWER_KEYS): switching energy, delay and area numbers."""
    base = ("power",)
    _check_keys(doc, base, power, S.POWER_KEYS, "power key")
    for key, value in power.items():
        _check_type(doc, base + (key,), value, S.POWER_KEYS[key])
    if "version" in power and power["version"] not in S.POWER_VERSIONS:
        raise doc.error(base + ("version",), f"unknown power section version {power['version']!r}; "
                                             f"known: {', '.join(map(str, S.POWER_VERSIONS))}")
    for key, value in power.items():
        if S.POWER_KEYS[key] is float:
            _check_number(doc, base + (key,), value, MAX_VDD if key == "vdd" else MAX_POWER_NUMBER)
            if value < 0 or (key == "vdd" and value == 0):
                kind = "positive" if key == "vdd" else "non-negative"
                raise doc.error(base + (key,), f"must be a {kind} number, not {value}")
    for table in S.POWER_TABLES:
        for gate, value in power.get(table, {}).items():
            path = base + (table, gate)
            if gate not in S.GATE_TYPES:
                raise doc.error(path, f"unknown gate {gate!r}{_suggest(gate, S.GATE_TYPES)}; "
                                      f"known: {', '.join(S.GATE_TYPES)}")
            _check_number(doc, path, value, MAX_POWER_NUMBER)
            if value < 0:
                raise doc.error(path, f"must be a non-negative number, not {value}")
    if "energy" in power:
        _check_choice(doc, base + ("energy",), power["energy"], S.POWER_ENERGY, "energy pricing")
    if "vectors" in power:
        value = power["vectors"]
        if not 2 <= value <= MAX_POWER_VECTORS:
            raise doc.error(base + ("vectors",), f"operand pairs per stream must be an integer from 2 to "
                                                 f"{MAX_POWER_VECTORS:,}, not {value}")
    if "seed" in power and power["seed"] < 0:
        raise doc.error(base + ("seed",), f"seed must be a non-negative integer, not {power['seed']}")
    if "distribution" in power:
        dist = power["distribution"]
        if isinstance(dist, dict):
            _check_keys(doc, base + ("distribution",), dist, ("default",) + S.BASIC_OPS, "op")
            for op, value in dist.items():
                _check_distribution(doc, base + ("distribution", op), value)
        else:
            _check_distribution(doc, base + ("distribution",), dist)


def _check_distribution(doc, path, value):
    """One op's operand distribution: a text (both operands) or a list of two (operand a, b)."""
    _check_type(doc, path, value, (str, list))
    items = [value] if isinstance(value, str) else value
    if isinstance(value, list) and len(value) != 2:
        raise doc.error(path, f"a list gives the distributions of the two operands, a and b; "
                              f"not {len(value)} item(s)")
    for i, item in enumerate(items):
        where = path if isinstance(value, str) else path + (i,)
        _check_type(doc, where, item, str)
        try:
            S.split_distribution(item)
        except ValueError as exc:
            raise doc.error(where, str(exc)) from None


#: Largest energy of one access, byte or operation (J); real ones are pJ to nJ.
MAX_ENERGY_J = 1e3
#: Largest grid carbon intensity (g/kWh); real grids are below 2,000.
MAX_GRID_INTENSITY = 1e6


def _validate_energy_model(doc, path, model):
    """``devices.<name>.energy_model`` (schema.ENERGY_MODEL_KEYS; calibrate.EnergyModel)."""
    _check_keys(doc, path, model, S.ENERGY_MODEL_KEYS, "energy model key")
    for key, value in model.items():
        _check_type(doc, path + (key,), value, S.ENERGY_MODEL_KEYS[key])
    if "version" not in model:
        raise doc.error(path, "missing key 'version'")
    if model["version"] not in S.ENERGY_MODEL_VERSIONS:
        raise doc.error(path + ("version",), f"unknown energy model version {model['version']!r}; "
                                             f"known: {', '.join(map(str, S.ENERGY_MODEL_VERSIONS))}")
    terms = model.get("terms", list(S.ENERGY_TERMS))
    for i, term in enumerate(terms):
        _check_choice(doc, path + ("terms", i), term, S.ENERGY_TERMS, "energy term")
    if len(set(terms)) != len(terms) or not terms:
        raise doc.error(path + ("terms",), "needs each energy term at most once, and at least one")
    for key, value in model.items():
        if S.ENERGY_MODEL_KEYS[key] is float:
            # joules are energies; watts, bytes, rates and seconds are non-negative numbers
            if key.endswith("_j") or key.endswith("_per_byte") or key == "static_j_per_op_default":
                _check_energy(doc, path + (key,), value)
            else:
                _check_number(doc, path + (key,), value)
                if value < 0:
                    raise doc.error(path + (key,), f"must be a non-negative number, not {value}")
    for fmt, ops in model.get("op_j", {}).items():
        _check_format(doc, path + ("op_j", fmt), fmt)
        _check_type(doc, path + ("op_j", fmt), ops, dict)
        _check_keys(doc, path + ("op_j", fmt), ops, S.BASIC_OPS, "op")
        for op, value in ops.items():
            _check_energy(doc, path + ("op_j", fmt, op), value)
    _check_keys(doc, path + ("byte_j",), model.get("byte_j", {}), S.BYTE_ROLES, "tensor role")
    for role, value in model.get("byte_j", {}).items():
        _check_energy(doc, path + ("byte_j", role), value)
    for kind, prices in model.get("byte_j_by_type", {}).items():
        _check_type(doc, path + ("byte_j_by_type", kind), prices, dict)
        _check_keys(doc, path + ("byte_j_by_type", kind), prices, S.BYTE_ROLES, "tensor role")
        for role, value in prices.items():
            _check_energy(doc, path + ("byte_j_by_type", kind, role), value)
    for kind, value in model.get("static_j_per_op", {}).items():
        _check_energy(doc, path + ("static_j_per_op", kind), value)
    for key in ("peak_ops_per_s", "bandwidth_bytes_per_s"):
        if key in model and model[key] <= 0:
            raise doc.error(path + (key,), f"must be a positive number, not {model[key]}")


def _check_energy(doc, path, value):
    _check_number(doc, path, value, MAX_ENERGY_J)
    if value < 0:
        raise doc.error(path, f"energy must be a non-negative number of joules, not {value}")


def _validate_memory(doc, memory):
    """The ``memory:`` section: a memory hierarchy (innermost level first), a reuse model and
    optional compute energies; see :mod:`opcount.movement` for how they are used."""
    base = ("memory",)
    _check_keys(doc, base, memory, S.MEMORY_KEYS, "memory key")
    for key, value in memory.items():
        _check_type(doc, base + (key,), value, S.MEMORY_KEYS[key])
    if "reuse" in memory and memory["reuse"] not in S.REUSE_MODELS:
        raise doc.error(base + ("reuse",), f"unknown reuse model {memory['reuse']!r}"
                                           f"{_suggest(memory['reuse'], S.REUSE_MODELS)}; "
                                           f"known: {', '.join(S.REUSE_MODELS)}")
    levels = memory.get("levels")
    if levels is not None and not levels:
        raise doc.error(base + ("levels",), "needs at least one level")
    names = set()
    inner = None
    for i, level in enumerate(levels or []):
        path = base + ("levels", i)
        _check_type(doc, path, level, dict)
        _check_keys(doc, path, level, S.MEMORY_LEVEL_KEYS, "level key")
        for key, value in level.items():
            _check_type(doc, path + (key,), value, S.MEMORY_LEVEL_KEYS[key])
        if "name" not in level:
            raise doc.error(path, "missing key 'name'")
        if level["name"] in names:
            raise doc.error(path + ("name",), f"duplicate level name {level['name']!r}")
        names.add(level["name"])
        outermost = i == len(levels) - 1
        if "capacity_bytes" in level:
            _check_positive_int(doc, path + ("capacity_bytes",), level["capacity_bytes"], "capacity")
            if inner is not None and level["capacity_bytes"] <= inner[1]:
                raise doc.error(path + ("capacity_bytes",),
                                f"capacity must be larger than the level inside it "
                                f"({inner[0]}, {inner[1]} bytes), not {level['capacity_bytes']}")
            inner = (level["name"], level["capacity_bytes"])
        elif not outermost:
            raise doc.error(path, "missing key 'capacity_bytes' (every level but the outermost needs one)")
        if "bytes_per_access" in level:
            _check_positive_int(doc, path + ("bytes_per_access",), level["bytes_per_access"], "bytes per access",
                                2 ** 32)
        has_access, has_byte = "energy_per_access_j" in level, "energy_per_byte_j" in level
        if has_access and has_byte:
            raise doc.error(path, "give energy_per_access_j or energy_per_byte_j, not both")
        if not has_access and not has_byte:
            raise doc.error(path, "missing key 'energy_per_access_j' or 'energy_per_byte_j'")
        if has_access and "bytes_per_access" not in level:
            raise doc.error(path, "missing key 'bytes_per_access' (energy_per_access_j prices one access)")
        _check_energy(doc, path + ("energy_per_access_j" if has_access else "energy_per_byte_j",),
                      level["energy_per_access_j" if has_access else "energy_per_byte_j"])
    compute = memory.get("compute", {})
    _check_keys(doc, base + ("compute",), compute, S.MEMORY_COMPUTE_KEYS, "compute key")
    for key, table in compute.items():
        path = base + ("compute", key)
        _check_type(doc, path, table, dict)
        for fmt, entry in table.items():
            _check_format(doc, path + (fmt,), fmt)
            if key == "mac_energy_j":
                _check_energy(doc, path + (fmt,), entry)
                continue
            _check_type(doc, path + (fmt,), entry, dict)
            _check_keys(doc, path + (fmt,), entry, S.BASIC_OPS, "op")
            for op, value in entry.items():
                _check_energy(doc, path + (fmt, op), value)


def _check_format(doc, path, fmt):
    _check_type(doc, path, fmt, str)
    if fmt not in S.FORMATS:
        raise doc.error(path, f"unknown format {fmt!r}{_suggest(fmt, S.FORMATS)}; "
                              f"known: {', '.join(S.FORMATS)}")


# --------------------------------------------------------------------------------------------
# merge with provenance

_REPLACE_WHOLE_AT_DEPTH2 = {"units", "recipes", "devices"}
#: Further key paths replaced whole: the operand distributions of the power section (a text, a
#: pair or a per-op mapping; one never merges into another).
_REPLACE_WHOLE = {("power", "distribution")}
_NOT_INHERITED = {"name", "description", "extends"}


def _merge_into(merged, child, doc, src, path=()):
    """Merge ``child`` (from ``doc``) into ``merged`` in place, recording in ``src`` which file
    set each key path, so errors found after resolution name the right file and line."""
    for key, value in child.items():
        p = path + (key,)
        whole = (len(p) == 2 and p[0] in _REPLACE_WHOLE_AT_DEPTH2) or p in _REPLACE_WHOLE
        if key in merged and isinstance(merged[key], dict) != isinstance(value, dict) \
                and p not in _REPLACE_WHOLE:
            raise doc.error(p, f"cannot override {_type_name(merged[key])} of the base "
                               f"with {_type_name(value)}")
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and not whole:
            merged[key] = dict(merged[key])
            src[p] = doc
            _merge_into(merged[key], value, doc, src, p)
        else:
            for k in [k for k in src if k[:len(p)] == p]:
                del src[k]
            merged[key] = value
            _mark(src, p, value, doc)


def _mark(src, path, value, doc):
    src[path] = doc
    if isinstance(value, dict):
        for k, v in value.items():
            _mark(src, path + (k,), v, doc)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _mark(src, path + (i,), v, doc)


# --------------------------------------------------------------------------------------------
# resolution

def _resolve_target(spec, doc):
    """(path, display, identity) of the base named by ``extends:`` in doc, or raise."""
    looks_like_path = spec.endswith((".yaml", ".yml")) or "/" in spec or os.sep in spec
    if not looks_like_path and spec in builtin_names():
        return builtin_path(spec), f"{_BUILTIN_PREFIX}{spec}", f"{_BUILTIN_PREFIX}{spec}"
    if doc.identity.startswith(_BUILTIN_PREFIX) and looks_like_path:
        raise doc.error(("extends",), f"a built-in profile can only extend built-in profiles, not {spec!r}")
    candidate = os.path.normpath(os.path.join(doc.directory, spec))
    if doc.display.startswith(_BUILTIN_PREFIX):
        display = candidate
    else:
        display = os.path.normpath(os.path.join(os.path.dirname(doc.display), spec))
    if os.path.isfile(candidate):
        return candidate, display, os.path.realpath(candidate)
    hint = _suggest(spec, builtin_names()) if not looks_like_path else ""
    raise doc.error(("extends",), f"base profile {spec!r} not found: not a built-in profile{hint} "
                                  f"and no file {display}")


def _load_chain(path, display, identity, seen):
    doc = _read_doc(path, display, identity)
    _validate_partial(doc)
    spec = doc.data.get("extends")
    if spec is None:
        return [doc]
    base_path, base_display, base_identity = _resolve_target(spec, doc)
    if base_identity in seen:
        names = [d for d in seen] + [base_identity]
        start = names.index(base_identity)
        pretty = " -> ".join(_pretty_identity(n) for n in names[start:])
        raise doc.error(("extends",), f"cycle {pretty}")
    return _load_chain(base_path, base_display, base_identity, seen + [base_identity]) + [doc]


def _pretty_identity(identity):
    if identity.startswith(_BUILTIN_PREFIX):
        return identity
    return os.path.basename(identity)


def _resolve(chain):
    data, src = {}, {}
    for doc in chain:
        part = doc.data if doc is chain[-1] else {k: v for k, v in doc.data.items()
                                                  if k not in _NOT_INHERITED}
        _merge_into(data, part, doc, src)
    top = chain[-1]
    data.pop("extends", None)
    data.setdefault("name", os.path.splitext(os.path.basename(top.display.replace(_BUILTIN_PREFIX, "")))[0])
    data.setdefault("schema", S.SCHEMA_VERSION)
    ordered = {key: data[key] for key in S.TOP_KEYS if key in data}
    return ordered, src


def _complete(data, src, chain):
    """Checks that need the whole resolved profile; errors name the file that set the key."""
    top = chain[-1]

    def err(path, message):
        doc = src.get(tuple(path))
        probe = tuple(path)
        while doc is None and probe:
            probe = probe[:-1]
            doc = src.get(probe)
        return (doc or top).error(path, message)

    def missing(path, what=None):
        parent = tuple(path[:-1])
        return err(parent, f"missing key {path[-1]!r}" + (f" ({what})" if what else ""))

    for key in ("technology", "units", "datapath", "formats", "recipes"):
        if key not in data:
            raise top.error((), f"missing key {key!r} (a profile that extends nothing must "
                                f"define technology, units, datapath, formats and recipes)")
    tech = data["technology"]
    if "counting" not in tech:
        raise missing(("technology", "counting"))
    if "gates" not in tech:
        raise missing(("technology", "gates"), "both counting modes price glue logic by gates")
    if tech["counting"] == "structural" and "cells" not in tech:
        raise missing(("technology", "cells"), "structural counting prices cells")
    gates = tech["gates"]
    if "NOT" not in gates or not ({"NAND", "NOR", "AND", "OR"} & set(gates)):
        raise err(("technology", "gates"), "the gate set must include NOT and one of AND, NAND, OR, NOR")
    for op in S.BASIC_OPS:
        if op not in data["units"]:
            raise missing(("units", op))
    if not data["formats"]:
        raise err(("formats",), "at least one format is needed")
    fmt = data.get("default_format")
    if fmt is None:
        data["default_format"] = "fp32" if "fp32" in data["formats"] else data["formats"][0]
    elif fmt not in data["formats"]:
        fmt_doc, formats_doc = src.get(("default_format",), top), src.get(("formats",), top)
        if chain.index(formats_doc) > chain.index(fmt_doc):
            # the formats list was replaced after the default was set: the later file caused it
            raise formats_doc.error(("formats",), f"the default format {fmt!r} inherited from "
                                                  f"{fmt_doc.display} is not among these formats "
                                                  f"({', '.join(data['formats'])}); set default_format too")
        raise err(("default_format",), f"default format {fmt!r} is not among formats "
                                       f"({', '.join(data['formats'])})")

    memory = data.get("memory")
    if memory is not None:
        if "levels" not in memory:
            raise missing(("memory", "levels"), "a memory section describes its hierarchy")
        data["memory"] = dict(memory)
        data["memory"].setdefault("reuse", "weight_stationary")

    recipes = data["recipes"]
    for name in S.REQUIRED_RECIPES:
        if name not in recipes:
            raise missing(("recipes", name), "opcount's layer formulas use it")
        if "backward" not in recipes[name]:
            raise missing(("recipes", name, "backward"), "training counts need the derivative")
    known = set(S.BASIC_OPS) | set(recipes)
    for name, recipe in recipes.items():
        for direction in ("forward", "backward"):
            for op in recipe.get(direction, {}):
                if op not in known:
                    raise err(("recipes", name, direction, op),
                              f"unknown op or recipe {op!r}{_suggest(op, sorted(known))}")
    # cycles: a recipe's forward (and backward) may use other recipes' forward costs
    state = {}

    def visit(name, trail):
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            cycle = trail[trail.index(name):] + [name]
            raise err(("recipes", cycle[0]), f"recipe cycle: {' -> '.join(cycle)}")
        state[name] = "active"
        for op in recipes[name]["forward"]:
            if op in recipes:
                visit(op, trail + [name])
        state[name] = "done"

    for name in recipes:
        visit(name, [])
    for name, recipe in recipes.items():
        for op in recipe.get("backward", {}):
            if op == name:
                continue  # the derivative may reuse the function's own forward value's cost
            if op in recipes:
                visit(op, [name])


@dataclass
class Profile:
    """A resolved hardware profile.

    ``data`` is the merged, validated mapping (what ``tosim profile show --json`` prints);
    ``chain`` lists the files it was resolved from, base first.
    """

    name: str
    data: dict
    source: str
    chain: list
    _expanded: dict = field(default_factory=dict, repr=False)

    @property
    def formats(self):
        return list(self.data["formats"])

    @property
    def default_format(self):
        return self.data["default_format"]

    @property
    def technology(self):
        return self.data["technology"]

    @property
    def units(self):
        return self.data["units"]

    @property
    def datapath(self):
        return self.data["datapath"]

    @property
    def recipes(self):
        return self.data["recipes"]

    @property
    def devices(self):
        return self.data.get("devices", {})

    @property
    def memory(self):
        """The ``memory:`` section (levels innermost first, reuse model, compute energies), or
        ``None`` when the profile has none (then only TOs are priced)."""
        return self.data.get("memory")

    @property
    def power(self):
        """The ``power:`` section resolved against the documented defaults
        (:data:`hardware_profiles.schema.POWER_DEFAULTS`, a generic 45 nm-class library): every
        key present, the per-gate tables merged gate by gate. A profile without the section gets
        the defaults (``energy: transistors``)."""
        own = self.data.get("power", {})
        out = {key: (dict(value) if isinstance(value, dict) else value)
               for key, value in S.POWER_DEFAULTS.items()}
        for key, value in own.items():
            if key in S.POWER_TABLES:
                out[key].update(value)
            elif isinstance(value, (dict, list)):
                out[key] = _copy(value)
            else:
                out[key] = value
        return out

    @property
    def grid_gco2_per_kwh(self):
        return self.data.get("carbon", {}).get("grid_gco2_per_kwh")

    def has_recipe(self, name):
        return name in self.data["recipes"]

    def recipe_ops(self, name, direction="forward"):
        """Basic-op counts per element of a recipe, other recipes expanded (their forward costs).

        Returns only the ops with a non-zero count, e.g. ``{"sub": 1, "add": 1, "div": 1,
        "sqrt": 1}`` for li2022's sigmoid (paper eq. 2).
        """
        if direction not in ("forward", "backward"):
            raise ValueError(f"direction must be 'forward' or 'backward', not {direction!r}")
        key = (name, direction)
        if key not in self._expanded:
            recipes = self.data["recipes"]
            if name not in recipes:
                raise ProfileError(f"{self.source}: profile {self.name!r} has no recipe {name!r}")
            if direction not in recipes[name]:
                raise ProfileError(f"{self.source}: recipe {name!r} of profile {self.name!r} "
                                   f"has no {direction} entry")
            total = {}
            for op, n in recipes[name][direction].items():
                if op in S.BASIC_OPS:
                    total[op] = total.get(op, 0) + n
                else:
                    for sub_op, m in self.recipe_ops(op, "forward").items():
                        total[sub_op] = total.get(sub_op, 0) + n * m
            self._expanded[key] = {op: total[op] for op in S.BASIC_OPS if total.get(op)}
        return dict(self._expanded[key])

    def to_dict(self):
        return dict(self.data)


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def load_file(path, display=None):
    """Load, resolve and validate the profile in a YAML file."""
    display = display or path
    identity = os.path.realpath(path)
    chain = _load_chain(path, display, identity, [identity])
    data, src = _resolve(chain)
    _complete(data, src, chain)
    return Profile(name=data["name"], data=data, source=display, chain=[d.display for d in chain])


def load(name_or_path):
    """Load a built-in profile by name (``li2022``) or a profile file by path."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    spec = str(name_or_path)
    if spec in builtin_names():
        identity = f"{_BUILTIN_PREFIX}{spec}"
        chain = _load_chain(builtin_path(spec), identity, identity, [identity])
        data, src = _resolve(chain)
        _complete(data, src, chain)
        return Profile(name=data["name"], data=data, source=identity, chain=[d.display for d in chain])
    if os.path.isfile(spec):
        return load_file(spec)
    raise ProfileError(f"{spec}: no such profile: not a built-in profile{_suggest(spec, builtin_names())} "
                       f"({', '.join(builtin_names())}) and not a file")
