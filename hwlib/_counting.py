"""Pricing one circuit under a profile's technology: :class:`Cost` and :func:`count`.

See :mod:`hwlib.cost` for the two counting modes. :class:`Cost` is plain data, so that reading
a bundled or cached cost needs no Amaranth; the synthesis functions are imported where a
circuit is actually counted.
"""
from dataclasses import dataclass, field

from hardware_profiles.schema import COUNTING_MODES

from . import CircuitError

__all__ = ["COUNTING_MODES", "Cost", "count"]


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
        return cls(transistors=data["transistors"], gates=dict(data["gates"]),
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
    from .synth import GATE_NAMES
    # BUF may be priced in a profile but never survives the mapping.
    return {name: cost for name, cost in gates.items() if name in GATE_NAMES}


def _count_elaborated(elab, technology):
    from .synth import synthesize, synthesize_glue
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
    from .synth import elaborate
    _check_technology(technology)
    return _count_elaborated(elaborate(component), technology)
