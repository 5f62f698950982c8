"""Validation of a profile, in two passes, each split by section of the schema
(:mod:`hardware_profiles.schema`).

:func:`check_file` checks one file on its own, before ``extends:`` is followed: every key it
gives must be known and well-typed, whatever it leaves out is inherited. :func:`check_resolved`
checks the merged profile (what only the whole can say: required keys, the default format among
the formats, recipes that name known ops and form no cycle); its errors name the file of the
chain that set the offending key. The first problem found raises; sections are checked in the
order of the schema's top-level keys.
"""
import math
import os

from . import schema as S
from ._checks import (MAX_GRID_INTENSITY, MAX_RECIPE_COUNT, MAX_TRANSISTORS_PER_GATE, big, check_choice,
                      check_design, check_energy, check_fields, check_format, check_keys, check_number,
                      check_positive_int, check_printable, check_type)
from ._doc import suggest

__all__ = ["check_file", "check_resolved"]


# --------------------------------------------------------------------------------------------
# one file, before extends: is followed

def check_file(doc):
    """Check one profile file (``doc``), which may be partial when it extends another."""
    data = doc.data
    check_printable(doc, data)
    check_fields(doc, (), data, S.TOP_KEYS)
    if "schema" in data and data["schema"] != S.SCHEMA_VERSION:
        raise doc.error(("schema",), f"unsupported schema version {data['schema']} "
                                     f"(this tosim reads version {S.SCHEMA_VERSION})")
    _technology(doc, data.get("technology", {}))
    _units(doc, data.get("units", {}))
    _datapath_and_formats(doc, data)
    _recipes(doc, data.get("recipes", {}))
    _devices(doc, data.get("devices", {}))
    _carbon(doc, data.get("carbon", {}))
    if "memory" in data:
        _memory(doc, data["memory"])
    if "power" in data:
        _power(doc, data["power"])


def _technology(doc, tech):
    """``technology:``: the counting mode and the transistor cost of each gate and cell."""
    check_keys(doc, ("technology",), tech, ("counting", "gates", "cells"))
    if "counting" in tech:
        check_type(doc, ("technology", "counting"), tech["counting"], str)
        if tech["counting"] not in S.COUNTING_MODES:
            raise doc.error(("technology", "counting"),
                            f"unknown counting mode {tech['counting']!r}"
                            f"{suggest(tech['counting'], S.COUNTING_MODES)}; "
                            f"known: {', '.join(S.COUNTING_MODES)}")
    for section, allowed, what in (("gates", S.GATE_TYPES, "gate"), ("cells", S.CELL_TYPES, "cell")):
        if section in tech:
            base = ("technology", section)
            check_type(doc, base, tech[section], dict)
            check_keys(doc, base, tech[section], allowed, what)
            for name, cost in tech[section].items():
                check_positive_int(doc, base + (name,), cost, "transistor cost", MAX_TRANSISTORS_PER_GATE)


def _units(doc, units):
    """``units:``: per basic op, a design of its kind and that design's options."""
    check_keys(doc, ("units",), units, S.BASIC_OPS + ("mac", "divsqrt"), "op")
    for op, unit in units.items():
        path = ("units", op)
        check_type(doc, path, unit, dict)
        if op == "mac":
            _mac_unit(doc, path, unit)
            continue
        if op == "divsqrt":
            _divsqrt_unit(doc, path, unit)
            continue
        check_keys(doc, path, unit, ("design",) + tuple(S.UNIT_OPTIONS[op]), "unit option")
        if "design" not in unit:
            raise doc.error(path, "missing key 'design'")
        check_design(doc, path + ("design",), unit["design"], S.UNIT_DESIGN_KIND[op])
        for option, kind in S.UNIT_OPTIONS[op].items():
            if option not in unit:
                continue
            if kind is int:
                value = unit[option]
                check_type(doc, path + (option,), value, int)
                if not 2 <= value <= 16:
                    raise doc.error(path + (option,), f"seed bits must be an integer in 2..16, not {value}")
            else:
                check_design(doc, path + (option,), unit[option], kind)


def _mac_unit(doc, path, unit):
    """``units.mac``: ``design: fused`` and an optional ``accumulate:`` format."""
    check_keys(doc, path, unit, ("design", "accumulate"), "unit option")
    if "design" not in unit:
        raise doc.error(path, "missing key 'design'")
    check_type(doc, path + ("design",), unit["design"], str)
    if unit["design"] not in S.MAC_DESIGNS:
        raise doc.error(path + ("design",), f"unknown MAC design {unit['design']!r}"
                                            f"{suggest(unit['design'], S.MAC_DESIGNS)}; known: {', '.join(S.MAC_DESIGNS)}")
    if "accumulate" in unit:
        check_type(doc, path + ("accumulate",), unit["accumulate"], str)
        if unit["accumulate"] not in S.MAC_ACCUMULATOR_FORMATS:
            raise doc.error(path + ("accumulate",), f"unknown accumulator format {unit['accumulate']!r}"
                                                    f"{suggest(unit['accumulate'], S.MAC_ACCUMULATOR_FORMATS)}; "
                                                    f"known: {', '.join(S.MAC_ACCUMULATOR_FORMATS)}")


def _divsqrt_unit(doc, path, unit):
    """``units.divsqrt``: ``design: srt_radix2`` and an optional ``adder:`` design."""
    check_keys(doc, path, unit, ("design",) + tuple(S.DIVSQRT_OPTIONS), "unit option")
    if "design" not in unit:
        raise doc.error(path, "missing key 'design'")
    check_type(doc, path + ("design",), unit["design"], str)
    if unit["design"] not in S.DIVSQRT_DESIGNS:
        raise doc.error(path + ("design",), f"unknown divide/square-root design {unit['design']!r}"
                                            f"{suggest(unit['design'], S.DIVSQRT_DESIGNS)}; "
                                            f"known: {', '.join(S.DIVSQRT_DESIGNS)}")
    for option, kind in S.DIVSQRT_OPTIONS.items():
        if option in unit:
            check_design(doc, path + (option,), unit[option], kind)


def _datapath_and_formats(doc, data):
    """``datapath:``, ``formats:`` and ``default_format:``."""
    if "datapath" in data and data["datapath"] not in S.DATAPATHS:
        raise doc.error(("datapath",), f"unknown datapath {data['datapath']!r}"
                                       f"{suggest(data['datapath'], S.DATAPATHS)}; "
                                       f"known: {', '.join(S.DATAPATHS)}")
    for i, fmt in enumerate(data.get("formats", [])):
        check_format(doc, ("formats", i), fmt)
    if "default_format" in data:
        check_format(doc, ("default_format",), data["default_format"])


def _recipes(doc, recipes):
    """``recipes:``: per name, forward (and backward) op counts per element, and a note."""
    for name, recipe in recipes.items():
        path = ("recipes", name)
        if name in S.BASIC_OPS:
            raise doc.error(path, f"recipe name {name!r} is a basic operation; pick another name")
        check_type(doc, path, recipe, dict)
        check_keys(doc, path, recipe, ("forward", "backward", "note"), "recipe key")
        if "forward" not in recipe:
            raise doc.error(path, "missing key 'forward'")
        if "note" in recipe:
            check_type(doc, path + ("note",), recipe["note"], str)
        for direction in ("forward", "backward"):
            if direction not in recipe:
                continue
            check_type(doc, path + (direction,), recipe[direction], dict)
            for op, n in recipe[direction].items():
                p = path + (direction, op)
                if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                    raise doc.error(p, f"op count must be a non-negative integer, not {n!r}")
                if n > MAX_RECIPE_COUNT:
                    raise doc.error(p, f"op count must be at most {MAX_RECIPE_COUNT:,}, not {big(n)}")


def _devices(doc, devices):
    """``devices:``: per device, a polynomial (feature, coefficients) or an energy model."""
    for name, device in devices.items():
        path = ("devices", name)
        check_type(doc, path, device, dict)
        check_fields(doc, path, device, S.DEVICE_KEYS, "device key")
        if "unit" in device and device["unit"] not in S.DEVICE_UNITS:
            raise doc.error(path + ("unit",), f"unknown unit {device['unit']!r}: device coefficients "
                                              f"give joules, so unit can only be J")
        if "phase" in device:
            check_choice(doc, path + ("phase",), device["phase"], S.DEVICE_PHASES, "phase")
        if "energy_model" in device:
            for key in ("feature", "coefficients"):
                if key in device:
                    raise doc.error(path + (key,), f"a device holds a polynomial (feature, coefficients) "
                                                   f"or an energy_model, not both")
            if "fitted_range" in device:
                raise doc.error(path + ("fitted_range",), "fitted_range is the range of a polynomial's feature; "
                                                          "an energy_model has none")
            _energy_model(doc, path + ("energy_model",), device["energy_model"])
            continue
        for key in ("feature", "coefficients"):
            if key not in device:
                raise doc.error(path, f"missing key {key!r} (or an energy_model)")
        check_choice(doc, path + ("feature",), device["feature"], S.DEVICE_FEATURES, "feature")
        if not device["coefficients"]:
            raise doc.error(path + ("coefficients",), "needs at least one coefficient (the intercept)")
        for i, c in enumerate(device["coefficients"]):
            # any finite coefficient (tosim fit writes what the data gives, 1e300 J runs included);
            # an energy past float64 is the scored row's error, never inf
            check_number(doc, path + ("coefficients", i), c, limit=math.inf)
        if "fitted_range" in device:
            _fitted_range(doc, path + ("fitted_range",), device["fitted_range"])


def _fitted_range(doc, path, span):
    """``devices.<name>.fitted_range``: ``[low, high]``, the feature values of the measurements
    the polynomial was fitted on (scoring warns far outside them)."""
    if len(span) != 2:
        raise doc.error(path, f"needs two numbers [low, high], not {len(span)}")
    for i, value in enumerate(span):
        check_number(doc, path + (i,), value, limit=math.inf)
        if value < 0:
            raise doc.error(path + (i,), f"must be a non-negative number, not {value}")
    if span[0] > span[1]:
        raise doc.error(path, f"low must not exceed high, not [{span[0]:g}, {span[1]:g}]")


def _carbon(doc, carbon):
    """``carbon:``: the grid's carbon intensity and where it comes from."""
    check_keys(doc, ("carbon",), carbon, ("grid_gco2_per_kwh", "source"))
    if "grid_gco2_per_kwh" in carbon:
        value = carbon["grid_gco2_per_kwh"]
        check_number(doc, ("carbon", "grid_gco2_per_kwh"), value, MAX_GRID_INTENSITY)
        if value < 0:
            raise doc.error(("carbon", "grid_gco2_per_kwh"), f"grid intensity must not be negative, not {value}")
    if "source" in carbon:
        check_type(doc, ("carbon", "source"), carbon["source"], str)


def _energy_model(doc, path, model):
    """``devices.<name>.energy_model`` (schema.ENERGY_MODEL_KEYS; calibrate.EnergyModel)."""
    check_fields(doc, path, model, S.ENERGY_MODEL_KEYS, "energy model key")
    if "version" not in model:
        raise doc.error(path, "missing key 'version'")
    if model["version"] not in S.ENERGY_MODEL_VERSIONS:
        raise doc.error(path + ("version",), f"unknown energy model version {model['version']!r}; "
                                             f"known: {', '.join(map(str, S.ENERGY_MODEL_VERSIONS))}")
    terms = model.get("terms", list(S.ENERGY_TERMS))
    for i, term in enumerate(terms):
        check_choice(doc, path + ("terms", i), term, S.ENERGY_TERMS, "energy term")
    if len(set(terms)) != len(terms) or not terms:
        raise doc.error(path + ("terms",), "needs each energy term at most once, and at least one")
    for key, value in model.items():
        if S.ENERGY_MODEL_KEYS[key] is float:
            # joules are energies; watts, bytes, rates and seconds are non-negative numbers
            if key.endswith("_j") or key.endswith("_per_byte") or key == "static_j_per_op_default":
                check_energy(doc, path + (key,), value)
            else:
                check_number(doc, path + (key,), value)
                if value < 0:
                    raise doc.error(path + (key,), f"must be a non-negative number, not {value}")
    for fmt, ops in model.get("op_j", {}).items():
        check_format(doc, path + ("op_j", fmt), fmt)
        check_type(doc, path + ("op_j", fmt), ops, dict)
        check_keys(doc, path + ("op_j", fmt), ops, S.BASIC_OPS, "op")
        for op, value in ops.items():
            check_energy(doc, path + ("op_j", fmt, op), value)
    check_keys(doc, path + ("byte_j",), model.get("byte_j", {}), S.BYTE_ROLES, "tensor role")
    for role, value in model.get("byte_j", {}).items():
        check_energy(doc, path + ("byte_j", role), value)
    for kind, prices in model.get("byte_j_by_type", {}).items():
        check_type(doc, path + ("byte_j_by_type", kind), prices, dict)
        check_keys(doc, path + ("byte_j_by_type", kind), prices, S.BYTE_ROLES, "tensor role")
        for role, value in prices.items():
            check_energy(doc, path + ("byte_j_by_type", kind, role), value)
    for key in ("static_j_per_op", "window_j_per_op", "row_j", "exposed_j", "pack_j", "weight_spill_j", "narrow_j",
                "fresh_j"):
        for kind, value in model.get(key, {}).items():
            check_energy(doc, path + (key, kind), value)
    if "channel_block" in model and not 1 <= model["channel_block"] <= 4096:
        raise doc.error(path + ("channel_block",), f"must be an integer from 1 to 4096, not {model['channel_block']}")
    if "pack_rows" in model:
        rows = model["pack_rows"]
        if not (len(rows) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in rows)
                and 1 <= rows[0] < rows[1]):
            raise doc.error(path + ("pack_rows",), f"must be two integers [lo, hi] with 1 <= lo < hi, not {rows}")
    if bool(model.get("pack_j")) != ("pack_rows" in model):
        raise doc.error(path + ("pack_rows" if model.get("pack_j") else "pack_j",),
                        "pack_j and pack_rows go together")
    if "narrow_window" in model:
        window = model["narrow_window"]
        if not (len(window) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in window)
                and window[0] >= 1 and window[1] >= 1):
            raise doc.error(path + ("narrow_window",),
                            f"must be two integers [kernel, stride] with kernel >= 1 and stride >= 1, not {window}")
    if bool(model.get("narrow_j")) != ("narrow_window" in model):
        raise doc.error(path + ("narrow_window" if model.get("narrow_j") else "narrow_j",),
                        "narrow_j and narrow_window go together")
    if bool(model.get("weight_spill_j")) != ("weight_cache_bytes" in model):
        raise doc.error(path + ("weight_cache_bytes" if model.get("weight_spill_j") else "weight_spill_j",),
                        "weight_spill_j and weight_cache_bytes go together")
    if ("fresh_j" in model or "fresh_j_default" in model) != ("fresh_threshold_bytes" in model):
        raise doc.error(path + ("fresh_threshold_bytes" if "fresh_threshold_bytes" not in model else "fresh_j",),
                        "fresh_j (or fresh_j_default) and fresh_threshold_bytes go together")
    for key in ("peak_ops_per_s", "bandwidth_bytes_per_s", "output_balance", "weight_cache_bytes"):
        if key in model and model[key] <= 0:
            raise doc.error(path + (key,), f"must be a positive number, not {model[key]}")


#: Largest capacitance (fF), delay (ps) or area (um^2) of one gate, and largest supply (V).
MAX_POWER_NUMBER = 1e9
MAX_VDD = 1e3
#: Most operand pairs one simulated stream of the power section may run.
MAX_POWER_VECTORS = 10 ** 7


def _power(doc, power):
    """The ``power:`` section (schema.POWER_KEYS): switching energy, delay and area numbers and
    the switching-energy pricing of ``tosim score``."""
    base = ("power",)
    check_fields(doc, base, power, S.POWER_KEYS, "power key")
    if "version" in power and power["version"] not in S.POWER_VERSIONS:
        raise doc.error(base + ("version",), f"unknown power section version {power['version']!r}; "
                                             f"known: {', '.join(map(str, S.POWER_VERSIONS))}")
    for key, value in power.items():
        if S.POWER_KEYS[key] is float:
            check_number(doc, base + (key,), value, MAX_VDD if key == "vdd" else MAX_POWER_NUMBER)
            if value < 0 or (key == "vdd" and value == 0):
                kind = "positive" if key == "vdd" else "non-negative"
                raise doc.error(base + (key,), f"must be a {kind} number, not {value}")
    for table in S.POWER_TABLES:
        for gate, value in power.get(table, {}).items():
            path = base + (table, gate)
            if gate not in S.GATE_TYPES:
                raise doc.error(path, f"unknown gate {gate!r}{suggest(gate, S.GATE_TYPES)}; "
                                      f"known: {', '.join(S.GATE_TYPES)}")
            check_number(doc, path, value, MAX_POWER_NUMBER)
            if value < 0:
                raise doc.error(path, f"must be a non-negative number, not {value}")
    if "energy" in power:
        check_choice(doc, base + ("energy",), power["energy"], S.POWER_ENERGY, "energy pricing")
    if "vectors" in power and not 2 <= power["vectors"] <= MAX_POWER_VECTORS:
        raise doc.error(base + ("vectors",), f"operand pairs per stream must be an integer from 2 to "
                                             f"{MAX_POWER_VECTORS:,}, not {power['vectors']}")
    if "seed" in power and power["seed"] < 0:
        raise doc.error(base + ("seed",), f"seed must be a non-negative integer, not {power['seed']}")
    if "distribution" in power:
        dist = power["distribution"]
        if isinstance(dist, dict):
            _distribution_map(doc, base + ("distribution",), dist, top=True)
        else:
            power["distribution"] = _distribution(doc, base + ("distribution",), dist)


def _distribution_map(doc, path, dist, top):
    """Distributions per op (``default`` and basic ops); at the top also ``layers``: layer type ->
    a distribution, a pair, or a mapping per op."""
    check_keys(doc, path, dist, ("default",) + S.BASIC_OPS + (("layers",) if top else ()), "op")
    for op, value in dist.items():
        if op != "layers":
            dist[op] = _distribution(doc, path + (op,), value)
            continue
        check_type(doc, path + ("layers",), value, dict)
        for kind, spec in value.items():
            where = path + ("layers", kind)
            if not isinstance(kind, str) or not kind:
                raise doc.error(where, f"a layer type must be a non-empty name, not {kind!r}")
            if isinstance(spec, dict):
                _distribution_map(doc, where, spec, top=False)
            else:
                value[kind] = _distribution(doc, where, spec)


def _distribution(doc, path, value):
    """One op's operand distribution: a text (both operands) or a list of two (operand a, b).
    Returns it, with the file of a ``streams:FILE[#TYPE]`` text made absolute (relative to the
    profile's folder)."""
    check_type(doc, path, value, (str, list))
    if isinstance(value, list) and len(value) != 2:
        raise doc.error(path, f"a list gives the distributions of the two operands, a and b; "
                              f"not {len(value)} item(s)")
    items = [(path, value)] if isinstance(value, str) else [(path + (i,), v) for i, v in enumerate(value)]
    for where, item in items:
        check_type(doc, where, item, str)
        if item.strip().startswith(S.STREAMS_PREFIX):
            return _streams_file(doc, where, item, paired=isinstance(value, list))
        if item.strip().partition("#")[0].strip() == S.MODEL_OPERANDS:
            return _model_operands(doc, where, item, paired=isinstance(value, list))
        try:
            S.split_distribution(item)
        except ValueError as exc:
            raise doc.error(where, str(exc)) from None
    return value


def _streams_file(doc, path, text, paired):
    """``streams:FILE[#TYPE]``: operand streams saved from a model (``tosim activity --from-model
    ... --save-streams FILE``), for the ``mul`` or ``add`` entry they were drawn for."""
    if paired:
        raise doc.error(path, "a streams file gives both operands: not in a pair")
    if path[-1] not in S.STREAMS_OPS:
        raise doc.error(path, f"a streams file holds the operands of {' and '.join(S.STREAMS_OPS)}: give it "
                              f"under {' or '.join(o + ':' for o in S.STREAMS_OPS)}, not here")
    file, _, group = text.strip()[len(S.STREAMS_PREFIX):].partition("#")
    if not file.strip():
        raise doc.error(path, "streams: needs a file (streams:FILE.npz or streams:FILE.npz#TYPE)")
    return S.STREAMS_PREFIX + os.path.join(doc.directory, os.path.expanduser(file.strip())) \
        + (f"#{group.strip()}" if group.strip() else "")


def _model_operands(doc, path, text, paired):
    """``model[#TYPE]``: the ``mul`` or ``add`` operands drawn from the scored model itself."""
    if paired:
        raise doc.error(path, "model operands give both operands: not in a pair")
    if path[-1] not in S.STREAMS_OPS:
        raise doc.error(path, f"a model's operands are drawn for {' and '.join(S.STREAMS_OPS)}: give them "
                              f"under {' or '.join(o + ':' for o in S.STREAMS_OPS)}, not here")
    _, hash_, group = text.strip().partition("#")
    if hash_ and not group.strip():
        raise doc.error(path, "model# needs a layer type (model, or model#TYPE such as model#conv2d)")
    return S.MODEL_OPERANDS + (f"#{group.strip()}" if group.strip() else "")


def _memory(doc, memory):
    """The ``memory:`` section: a memory hierarchy (innermost level first), a reuse model and
    optional compute energies; see :mod:`opcount.movement` for how they are used."""
    base = ("memory",)
    check_fields(doc, base, memory, S.MEMORY_KEYS, "memory key")
    if "reuse" in memory and memory["reuse"] not in S.REUSE_MODELS:
        raise doc.error(base + ("reuse",), f"unknown reuse model {memory['reuse']!r}"
                                           f"{suggest(memory['reuse'], S.REUSE_MODELS)}; "
                                           f"known: {', '.join(S.REUSE_MODELS)}")
    levels = memory.get("levels")
    if levels is not None and not levels:
        raise doc.error(base + ("levels",), "needs at least one level")
    names = set()
    inner = None
    for i, level in enumerate(levels or []):
        path = base + ("levels", i)
        check_type(doc, path, level, dict)
        check_fields(doc, path, level, S.MEMORY_LEVEL_KEYS, "level key")
        if "name" not in level:
            raise doc.error(path, "missing key 'name'")
        if level["name"] in names:
            raise doc.error(path + ("name",), f"duplicate level name {level['name']!r}")
        names.add(level["name"])
        outermost = i == len(levels) - 1
        if "capacity_bytes" in level:
            check_positive_int(doc, path + ("capacity_bytes",), level["capacity_bytes"], "capacity")
            if inner is not None and level["capacity_bytes"] <= inner[1]:
                raise doc.error(path + ("capacity_bytes",),
                                f"capacity must be larger than the level inside it "
                                f"({inner[0]}, {inner[1]} bytes), not {level['capacity_bytes']}")
            inner = (level["name"], level["capacity_bytes"])
        elif not outermost:
            raise doc.error(path, "missing key 'capacity_bytes' (every level but the outermost needs one)")
        if "bytes_per_access" in level:
            check_positive_int(doc, path + ("bytes_per_access",), level["bytes_per_access"], "bytes per access",
                                2 ** 32)
        has_access, has_byte = "energy_per_access_j" in level, "energy_per_byte_j" in level
        if has_access and has_byte:
            raise doc.error(path, "give energy_per_access_j or energy_per_byte_j, not both")
        if not has_access and not has_byte:
            raise doc.error(path, "missing key 'energy_per_access_j' or 'energy_per_byte_j'")
        if has_access and "bytes_per_access" not in level:
            raise doc.error(path, "missing key 'bytes_per_access' (energy_per_access_j prices one access)")
        check_energy(doc, path + ("energy_per_access_j" if has_access else "energy_per_byte_j",),
                      level["energy_per_access_j" if has_access else "energy_per_byte_j"])
    compute = memory.get("compute", {})
    check_keys(doc, base + ("compute",), compute, S.MEMORY_COMPUTE_KEYS, "compute key")
    for key, table in compute.items():
        path = base + ("compute", key)
        check_type(doc, path, table, dict)
        for fmt, entry in table.items():
            check_format(doc, path + (fmt,), fmt)
            if key == "mac_energy_j":
                check_energy(doc, path + (fmt,), entry)
                continue
            check_type(doc, path + (fmt,), entry, dict)
            check_keys(doc, path + (fmt,), entry, S.BASIC_OPS, "op")
            for op, value in entry.items():
                check_energy(doc, path + (fmt, op), value)


# --------------------------------------------------------------------------------------------
# the resolved profile, after the extends: chain is merged

class _Resolved:
    """The merged profile (``data``), which file of ``chain`` set each key path (``src``), and
    the errors, raised against the file that set the key (or the last file of the chain)."""

    def __init__(self, data, src, chain):
        self.data, self.src, self.chain, self.top = data, src, chain, chain[-1]

    def error(self, path, message):
        doc = self.src.get(tuple(path))
        probe = tuple(path)
        while doc is None and probe:
            probe = probe[:-1]
            doc = self.src.get(probe)
        return (doc or self.top).error(path, message)

    def missing(self, path, what=None):
        parent = tuple(path[:-1])
        return self.error(parent, f"missing key {path[-1]!r}" + (f" ({what})" if what else ""))


def check_resolved(data, src, chain):
    """Checks that need the whole resolved profile; errors name the file that set the key.
    Fills in the defaults (``default_format``, ``memory.reuse``) in ``data``."""
    r = _Resolved(data, src, chain)
    for key in ("technology", "units", "datapath", "formats", "recipes"):
        if key not in data:
            raise r.top.error((), f"missing key {key!r} (a profile that extends nothing must "
                                  f"define technology, units, datapath, formats and recipes)")
    _resolved_technology(r, data["technology"])
    for op in S.BASIC_OPS:
        if op not in data["units"]:
            raise r.missing(("units", op))
    _resolved_formats(r, data)
    if "mac" in data["units"] and data["datapath"] != "ieee":
        raise r.error(("units", "mac"), f"a MAC unit is an IEEE datapath unit (hwlib.units.fma); datapath "
                                        f"{data['datapath']!r} has none")
    if "divsqrt" in data["units"] and data["datapath"] != "ieee":
        raise r.error(("units", "divsqrt"), f"the shared divide/square-root unit is an IEEE datapath unit "
                                            f"(hwlib.units.divsqrt); datapath {data['datapath']!r} has none")
    memory = data.get("memory")
    if memory is not None:
        if "levels" not in memory:
            raise r.missing(("memory", "levels"), "a memory section describes its hierarchy")
        data["memory"] = dict(memory)
        data["memory"].setdefault("reuse", "weight_stationary")
    _resolved_recipes(r, data["recipes"])


def _resolved_technology(r, tech):
    if "counting" not in tech:
        raise r.missing(("technology", "counting"))
    if "gates" not in tech:
        raise r.missing(("technology", "gates"), "both counting modes price glue logic by gates")
    if tech["counting"] == "structural" and "cells" not in tech:
        raise r.missing(("technology", "cells"), "structural counting prices cells")
    gates = tech["gates"]
    if "NOT" not in gates or not ({"NAND", "NOR", "AND", "OR"} & set(gates)):
        raise r.error(("technology", "gates"), "the gate set must include NOT and one of AND, NAND, OR, NOR")


def _resolved_formats(r, data):
    """At least one format; the default format (``fp32`` when there, else the first) among them."""
    if not data["formats"]:
        raise r.error(("formats",), "at least one format is needed")
    fmt = data.get("default_format")
    if fmt is None:
        data["default_format"] = "fp32" if "fp32" in data["formats"] else data["formats"][0]
    elif fmt not in data["formats"]:
        fmt_doc, formats_doc = r.src.get(("default_format",), r.top), r.src.get(("formats",), r.top)
        if r.chain.index(formats_doc) > r.chain.index(fmt_doc):
            # the formats list was replaced after the default was set: the later file caused it
            raise formats_doc.error(("formats",), f"the default format {fmt!r} inherited from "
                                                  f"{fmt_doc.display} is not among these formats "
                                                  f"({', '.join(data['formats'])}); set default_format too")
        raise r.error(("default_format",), f"default format {fmt!r} is not among formats "
                                           f"({', '.join(data['formats'])})")


def _resolved_recipes(r, recipes):
    """The recipes opcount needs, with derivatives; every op named is known; no cycle."""
    for name in S.REQUIRED_RECIPES:
        if name not in recipes:
            raise r.missing(("recipes", name), "opcount's layer formulas use it")
        if "backward" not in recipes[name]:
            raise r.missing(("recipes", name, "backward"), "training counts need the derivative")
    known = set(S.BASIC_OPS) | set(recipes)
    for name, recipe in recipes.items():
        for direction in ("forward", "backward"):
            for op in recipe.get(direction, {}):
                if op not in known:
                    raise r.error(("recipes", name, direction, op),
                                  f"unknown op or recipe {op!r}{suggest(op, sorted(known))}")
    # cycles: a recipe's forward (and backward) may use other recipes' forward costs
    state = {}

    def visit(name, trail):
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            cycle = trail[trail.index(name):] + [name]
            raise r.error(("recipes", cycle[0]), f"recipe cycle: {' -> '.join(cycle)}")
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
