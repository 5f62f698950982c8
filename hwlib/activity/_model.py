"""The technology numbers of the power, delay and area model (see :mod:`hwlib.activity`)."""
import dataclasses
import math
from dataclasses import dataclass, field

from hardware_profiles import schema as S

__all__ = ["PowerModel", "DEFAULT_MODEL"]

# The documented defaults live in the profile schema (hardware_profiles.schema.POWER_DEFAULTS),
# so that a profile's ``power:`` section and this model read one table. Keyed by the gate names
# of hwlib.synth.GATE_NAMES (profile vocabulary); BUF is a wire.
_PIN_FF = S.POWER_DEFAULTS["pin_ff"]
_DRAIN_FF = S.POWER_DEFAULTS["drain_ff"]
_DELAY_PS = S.POWER_DEFAULTS["delay_ps"]
_AREA_UM2 = S.POWER_DEFAULTS["area_um2"]
_MODEL_KEYS = ("vdd", "pin_ff", "drain_ff", "wire_ff_per_fanout", "output_load_ff", "delay_ps",
               "delay_ps_per_fanout", "area_um2", "source")


def _check_table(name, table):
    if not isinstance(table, dict):
        raise ValueError(f"{name} must be a mapping of gate name to a number, not {table!r}")
    for gate, value in table.items():
        if gate not in _PIN_FF:
            raise ValueError(f"{name}: unknown gate {gate!r}; expected one of "
                             f"{', '.join(_PIN_FF)}")
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not 0 <= value < math.inf):
            raise ValueError(f"{name}.{gate} must be a non-negative number, not {value!r}")


def _check_number(name, value, positive=False):
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0 <= value < math.inf or (positive and value == 0)):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be a {kind} number, not {value!r}")


@dataclass(frozen=True)
class PowerModel:
    """Technology numbers for switching energy, delay and area of a mapped netlist.

    ``vdd`` (V); ``pin_ff``, ``drain_ff`` (fF per gate input / output, by gate name);
    ``wire_ff_per_fanout`` (fF); ``output_load_ff`` (fF per primary-output bit);
    ``delay_ps`` (intrinsic delay per gate, ps); ``delay_ps_per_fanout`` (ps per fan-out of
    the driven net); ``area_um2`` (per gate). Tables given to :meth:`replace` are merged into
    the defaults gate by gate.
    """

    vdd: float = S.POWER_DEFAULTS["vdd"]
    pin_ff: dict = field(default_factory=lambda: dict(_PIN_FF))
    drain_ff: dict = field(default_factory=lambda: dict(_DRAIN_FF))
    wire_ff_per_fanout: float = S.POWER_DEFAULTS["wire_ff_per_fanout"]
    output_load_ff: float = S.POWER_DEFAULTS["output_load_ff"]
    delay_ps: dict = field(default_factory=lambda: dict(_DELAY_PS))
    delay_ps_per_fanout: float = S.POWER_DEFAULTS["delay_ps_per_fanout"]
    area_um2: dict = field(default_factory=lambda: dict(_AREA_UM2))
    source: str = S.POWER_DEFAULTS["source"]

    def __post_init__(self):
        _check_number("vdd", self.vdd, positive=True)
        _check_number("wire_ff_per_fanout", self.wire_ff_per_fanout)
        _check_number("output_load_ff", self.output_load_ff)
        _check_number("delay_ps_per_fanout", self.delay_ps_per_fanout)
        for name in ("pin_ff", "drain_ff", "delay_ps", "area_um2"):
            _check_table(name, getattr(self, name))
            missing = [g for g in _PIN_FF if g not in getattr(self, name)]
            if missing:
                raise ValueError(f"{name} lacks gate(s) {', '.join(missing)}")

    def replace(self, **changes):
        """A copy with ``changes``; table arguments are merged into this model's tables."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"Unknown power-model field(s) {', '.join(unknown)}; expected "
                             f"{', '.join(sorted(known))}")
        for name in ("pin_ff", "drain_ff", "delay_ps", "area_um2"):
            if name in changes:
                _check_table(name, changes[name])
                changes[name] = {**getattr(self, name), **changes[name]}
        return dataclasses.replace(self, **changes)

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_profile(cls, profile):
        """The model of a loaded profile's ``power:`` section (:attr:`Profile.power`, the
        documented defaults where the section is silent)."""
        power = profile.power
        return cls(**{key: power[key] for key in _MODEL_KEYS})


#: The documented default: a generic 45 nm-class library at 1.1 V (see :mod:`hwlib.activity`).
DEFAULT_MODEL = PowerModel()
