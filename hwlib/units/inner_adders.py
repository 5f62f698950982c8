"""The carry-propagate adder designs inside a multiply-accumulate unit, side by side
(``tosim compare-adders --unit mac --adders`` and ``--unit fma``).

A MAC's own cost depends on the adder that finishes it as much as on its multiplier: the
integer MACs of :mod:`hwlib.units.mac` end in one final adder over the whole accumulator
(``acc_width`` bits), the floating-point MAC of :mod:`hwlib.units.fma` has two carry-propagate
adders, the significand multiplier's final adder and the ``(W+3)``-bit adder that adds the
aligned addend. :func:`compare_inner_adders` builds the unit once per adder design of
``hwlib.registry.designs_for("add")`` and prices each:

* ``mac``: the integer MAC on the profile's multiplier (``units.mul.design``), ``W``-bit operands
  into an ``hwlib.cost.mac_accumulator_width(W)`` accumulator, the design as its final adder;
* ``fma``: :class:`hwlib.units.fma.FPMAC` of a (product format, accumulator format) pair with the
  profile's multiplier, **both** of its carry-propagate adders of the design (the multiplier's
  final adder and the significand adder).
"""
from dataclasses import dataclass, replace

from hardware_profiles import FORMAT_BITS

__all__ = ["InnerAdderRow", "compare_inner_adders", "INNER_ADDER_UNITS"]

#: Units whose adders :func:`compare_inner_adders` compares.
INNER_ADDER_UNITS = ("mac", "fma")


@dataclass(frozen=True)
class InnerAdderRow:
    """One adder design inside one unit: ``point`` names the unit (``int8*int8+int32``,
    ``bf16*bf16+fp32``), ``width`` its operand width in bits (the product format's width for
    ``fma``), ``multiplier`` the multiplier design it is built on; ``adp`` is transistors x
    depth."""

    unit: str
    design: str
    point: str
    width: int
    multiplier: str
    cost: object

    @property
    def adp(self):
        from .._counting import _number
        return _number(self.cost.transistors * self.cost.depth)

    def to_json(self):
        from .._counting import _number
        return {"unit": self.unit, "design": self.design, "point": self.point, "width": self.width,
                "multiplier": self.multiplier, "transistors": _number(self.cost.transistors),
                "gates": self.cost.gate_count, "depth": self.cost.depth, "adp": self.adp,
                "gate_types": dict(self.cost.gates), "cells": dict(self.cost.cells),
                "counting": self.cost.counting}


def _specs(unit, points, profile, designs, signed):
    from .. import CircuitError, checks
    mul = profile.units.get("mul") or {}
    multiplier = mul.get("design")
    out = []
    if unit == "mac":
        from ..cost import mac_accumulator_width
        from .mac import MAC_DESIGNS, mac_label, mac_unit
        if multiplier not in MAC_DESIGNS:
            raise CircuitError(f"The profile's multiplier {multiplier!r} has no MAC unit; expected one of "
                               f"{', '.join(MAC_DESIGNS)}")
        for width in points:
            acc = mac_accumulator_width(checks.positive_int(width, "Width", error=CircuitError))
            for design in designs:
                spec = mac_unit(multiplier, width, acc, signed=signed, options={"final_adder": design})
                out.append((design, mac_label(width, acc, signed), width,
                            replace(spec, label=f"{spec.label}, {design} final adder")))
        return multiplier, out
    if unit == "fma":
        from .fma import fma_label, fp_mac_unit
        for product, acc in points:
            for design in designs:
                units = dict(profile.units, mul=dict(mul, final_adder=design), add={"design": design})
                spec = fp_mac_unit(product, acc, units)
                out.append((design, fma_label(product, acc), 1 + sum(FORMAT_BITS[product]),
                            replace(spec, label=f"{spec.label}, {design} adders")))
        return multiplier, out
    raise CircuitError(f"Unknown unit {unit!r}; expected one of {', '.join(INNER_ADDER_UNITS)}")


def compare_inner_adders(unit, points, profile, designs=None, *, signed=True, cache=None, progress=None,
                         jobs=1):
    """Every adder design (or the named ``designs``) inside ``unit`` (``"mac"``: ``points`` are
    operand widths; ``"fma"``: ``(product format, accumulator format)`` pairs), priced under
    ``profile``: a list of :class:`InnerAdderRow`, points outer, designs in the given order.
    ``signed``: two's complement operands of the integer MAC. ``progress`` and ``jobs`` as for
    :func:`hwlib.cost.cost_table`."""
    from .. import registry
    from ..cost import _check_names, _price_all, _profile_pricer
    designs = _check_names(designs, registry.designs_for("add"), "design", " for the adder inside a MAC")
    multiplier, specs = _specs(unit, list(points), profile, designs, signed)
    costs = _price_all(_profile_pricer(profile, cache), [s for *_, s in specs], progress, jobs)
    return [InnerAdderRow(unit, design, point, width, multiplier, c)
            for (design, point, width, _s), c in zip(specs, costs)]
