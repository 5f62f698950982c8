"""Design registry: the names a profile uses under ``units:`` mapped to hwlib constructors.

The names are the public vocabulary of profiles (``units: {add: {design: kogge_stone}}``); the
list of valid names per unit kind also lives in ``hardware_profiles`` (which may not import
hwlib), and ``tests/test_hwlib_registry.py`` keeps the two equal.

Entries are ``"module:Class"`` strings resolved on first use, so importing the registry does
not import every circuit.
"""
import importlib

__all__ = ["DESIGNS", "UNIT_KINDS", "design_class", "build", "designs_for"]

#: unit kind -> design name -> "module:Class"
DESIGNS = {
    "add": {
        "ripple_carry": "hwlib.adders:RippleCarryAdder",
        "carry_lookahead": "hwlib.adders:CarryLookaheadAdder",
        "carry_skip": "hwlib.adders:CarrySkipAdder",
        "carry_select": "hwlib.adders:CarrySelectAdder",
        "brent_kung": "hwlib.adders:BrentKungAdder",
        "kogge_stone": "hwlib.adders:KoggeStoneAdder",
        "sklansky": "hwlib.adders:SklanskyAdder",
    },
    "mul": {
        "booth_wallace": "hwlib.multipliers:BoothWallaceMultiplier",
        "array": "hwlib.multipliers:ArrayMultiplier",
        "dadda": "hwlib.multipliers:DaddaMultiplier",
    },
    "div": {
        "srt_radix2": "hwlib.dividers:SRTRadix2Divider",
        "restoring": "hwlib.dividers:RestoringDivider",
        "non_restoring": "hwlib.dividers:NonRestoringDivider",
    },
    "sqrt": {
        "newton_raphson": "hwlib.roots:NewtonRaphsonSqrt",
        "digit_recurrence": "hwlib.roots:DigitRecurrenceSqrt",
    },
}
UNIT_KINDS = tuple(DESIGNS)


def designs_for(kind):
    """Design names available for a unit kind (``add``, ``mul``, ``div``, ``sqrt``)."""
    if kind not in DESIGNS:
        raise ValueError(f"Unknown unit kind {kind!r}; expected one of {', '.join(UNIT_KINDS)}")
    return tuple(DESIGNS[kind])


def design_class(name, kind=None):
    """The component class registered under a design name, optionally within one unit kind."""
    kinds = [kind] if kind is not None else list(DESIGNS)
    for k in kinds:
        if k not in DESIGNS:
            raise ValueError(f"Unknown unit kind {k!r}; expected one of {', '.join(UNIT_KINDS)}")
        target = DESIGNS[k].get(name)
        if target is not None:
            module_name, _, cls_name = target.partition(":")
            return getattr(importlib.import_module(module_name), cls_name)
    known = sorted({n for k in kinds for n in DESIGNS[k]})
    where = f" for unit {kind!r}" if kind is not None else ""
    raise ValueError(f"Unknown design {name!r}{where}; expected one of {', '.join(known)}")


def build(name, *args, kind=None, **kwargs):
    """Construct the circuit registered under ``name`` with the given parameters."""
    return design_class(name, kind)(*args, **kwargs)
