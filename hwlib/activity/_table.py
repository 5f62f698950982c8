"""Switching energy per basic op and format under a profile: the table ``tosim score`` prices
counted ops with when the profile says ``power: {energy: activity}``.

Each entry is one simulation: the operand stream of the op's distribution (the profile's
``power.distribution``: one for every op, a pair for operands a and b, or a mapping per op with a
``default``) run through the profile's floating-point unit of that op and format, mapped onto the
profile's gate set (:func:`hwlib.activity.fp_activity`), priced with the profile's power model.
Entries are cached on disk beside the synthesis results (``<cache>/v1/activity/<key>.json``),
keyed by everything that decides the number: the circuit's parameters, the gate set, the hwlib
circuit sources (as for cost tables), the sources of this package, the toolchain versions, the
power model, the distributions, the stream length, the seed and the glitch setting.
"""
import functools
import os
import time
from dataclasses import dataclass

from hardware_profiles import BASIC_OPS

import numpy as np

from .._cache import Cache, _canonical, _sha256, _toolchain, sources_digest
from ._model import PowerModel
from ._streams_file import is_model_operands, is_streams, model_group, read_streams, select_streams, streams_label
from ._unit import _distributions, _measure, fp_stream_activity, spec_netlist

__all__ = ["OpEnergy", "op_distribution", "op_energies", "ActivityCache", "ESTIMATE_NOTE"]

#: Version of the entries' layout and meaning; other versions are recomputed.
TABLE_VERSION = 1

#: What a switching energy is, in words (printed and stored beside every such number).
ESTIMATE_NOTE = ("estimate: dynamic switching energy (1/2 C V^2 per toggle) of the profile's units, "
                 "simulated on seeded synthetic operand streams (or on operands drawn from a model, where "
                 "an entry says so); no leakage, no data movement, no measured device")


class ActivityCache(Cache):
    """The disk cache of switching-energy entries (:class:`hwlib._cache.Cache`, kind
    ``activity``); ``directory`` defaults to the synthesis cache's."""

    KINDS = ("activity",)


@functools.lru_cache(maxsize=None)
def _package_digest():
    """SHA-256 over this package's sources: a change to how toggles are counted or priced
    invalidates the cached energies (and nothing else)."""
    return sources_digest(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class OpEnergy:
    """Switching energy of one basic op in one format under a profile's power section."""

    op: str
    format: str
    design: str
    distribution: str
    energy_fj_per_op: float
    activity: float
    delay_ps: float
    area_um2: float
    operations: int
    seed: int
    glitches: bool
    cached: bool = False

    @property
    def energy_j_per_op(self):
        return self.energy_fj_per_op * 1e-15

    def to_json(self):
        return {"op": self.op, "format": self.format, "design": self.design,
                "distribution": self.distribution, "energy_fj_per_op": self.energy_fj_per_op,
                "activity": self.activity, "delay_ps": self.delay_ps, "area_um2": self.area_um2,
                "operations": self.operations, "seed": self.seed, "glitches": self.glitches}


def op_distribution(power, op, layer_type=None):
    """The distribution (a text, or a pair for operands a and b) of ``op`` under a resolved
    power section (:attr:`hardware_profiles.Profile.power`): for a ``layer_type`` listed under
    ``distribution.layers``, that entry (a distribution for every op, or per op with its own
    ``default``), else the op's entry, the ``default``, or ``normal``."""
    return _op_distribution(power, op, layer_type)[0]


def _op_distribution(power, op, layer_type):
    """:func:`op_distribution` and whether it is the entry of ``layer_type`` (under ``layers``)."""
    dist = power["distribution"]
    if not isinstance(dist, dict):
        return dist, False
    own = dist.get("layers", {}).get(layer_type) if layer_type is not None else None
    if own is not None:
        if not isinstance(own, dict):
            return own, True
        if op in own:
            return own[op], True
        if "default" in own:
            return own["default"], True
    return dist.get(op, dist.get("default", "normal")), False


def _key(op, spec, technology, model, labels, vectors, seed, glitches):
    from .._counting import _mapping_gates
    from .._specs import _source_digest
    data = {"table": TABLE_VERSION, "op": op, "params": spec.params, "design": spec.design,
            "gates": _mapping_gates(technology["gates"]), "circuits": _source_digest(),
            "activity": _package_digest(), "toolchain": _toolchain(), "model": model.to_json(),
            "distribution": list(labels), "vectors": vectors, "seed": seed,
            "glitches": bool(glitches)}
    return _sha256(_canonical(data))


def op_energies(profile, pairs, *, layer_type=None, cache=None, progress=None, operands=None):
    """Switching energy of each ``(op, format)`` in ``pairs`` under ``profile`` (a loaded
    :class:`hardware_profiles.Profile`; its ``power`` section gives the model, distributions,
    stream length, seed and glitch setting; ``layer_type`` picks that layer type's distributions,
    see :func:`op_distribution`). Returns ``{(op, format): OpEnergy}``.

    ``cache``: an :class:`ActivityCache` (default: the synthesis cache's directory); ``False``
    for none. ``progress``: an object with ``start(index, total, label)`` and
    ``done(index, total, label, seconds)``, told about each entry that must be simulated
    (cached ones are silent).

    ``operands``: where a ``model[#TYPE]`` distribution takes its operands from: a function of
    the format returning the stream arrays of the model being priced (a mapping as a streams file
    holds them, :func:`tosim._model_streams.stream_arrays`); ``model`` takes the operands of all
    its layers, ``model#TYPE`` and ``model`` under ``distribution.layers.TYPE`` those of its
    layers of that type. The entry is keyed by the operand values (their digest). Without
    ``operands`` such a distribution is a ``ValueError``.
    """
    from ..cost import unit_spec
    power = profile.power
    model = PowerModel.from_profile(profile)
    vectors, seed, glitches = power["vectors"], power["seed"], power["glitches"]
    if cache is None:
        cache = ActivityCache()
    pairs = list(dict.fromkeys(pairs))
    for op, fmt in pairs:
        if op not in BASIC_OPS:
            raise ValueError(f"Unknown basic op {op!r}; expected one of {', '.join(BASIC_OPS)}")
    out, todo = {}, []
    for op, fmt in pairs:
        spec = unit_spec(op, fmt, profile.units, profile.datapath)
        dist, own = _op_distribution(power, op, layer_type)
        if is_model_operands(dist):
            group = model_group(dist) or (layer_type if own else "")
            if operands is None:
                raise ValueError(f"power.distribution: {op}: {dist} draws the operands from the model scored, "
                                 "and none is given here")
            a, b, digest = select_streams(operands(fmt), op, group, vectors)
            where = f"#{group}" if group else ""
            dists, label = (a, b), f"model{where} (drawn from the scored model)"
            labels = ["model" + where, digest]
        elif is_streams(dist):
            # operands saved from a model: the key holds the values themselves (their digest)
            a, b, digest = read_streams(dist, op, vectors)
            dists, label = (a, b), f"{streams_label(dist)} (saved from a model)"
            labels = [streams_label(dist), digest]
        else:
            dists, label = _distributions(dist)
            labels = [d.label() for d in dists]
        key = _key(op, spec, profile.technology, model, labels, vectors, seed, glitches)
        data = cache.read("activity", key) if cache else None
        if isinstance(data, dict) and data.get("op") == op and data.get("format") == fmt:
            try:
                out[(op, fmt)] = OpEnergy(**data, cached=True)
                continue
            except TypeError:
                pass
        todo.append((op, fmt, spec, dists, label, key))
    for index, (op, fmt, spec, dists, label, key) in enumerate(todo, 1):
        text = f"{fmt} {op} switching ({label} operands)"
        if progress is not None:
            progress.start(index, len(todo), text)
        started = time.perf_counter()
        net = spec_netlist(spec, profile.technology)
        if isinstance(dists[0], np.ndarray):
            result = fp_stream_activity(op, fmt, profile, dists[0], dists[1], label=label, seed=seed, model=model,
                                        glitches=glitches)
        else:
            result = _measure(net, op, spec.design, None, fmt, tuple(dists) if len(dists) > 1 else dists[0],
                              vectors, seed, model, {"sub": 1 if op == "sub" else 0}, glitches)
        entry = OpEnergy(op=op, format=fmt, design=spec.design, distribution=label,
                         energy_fj_per_op=result.energy_fj_per_op, activity=result.activity,
                         delay_ps=result.delay_ps, area_um2=result.area_um2,
                         operations=result.operations, seed=seed, glitches=bool(glitches))
        if cache:
            cache.write("activity", key, entry.to_json())
        out[(op, fmt)] = entry
        if progress is not None:
            progress.done(index, len(todo), text, time.perf_counter() - started)
    return {pair: out[pair] for pair in pairs}
