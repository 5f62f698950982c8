"""The technology numbers of the power, delay and area model (see :mod:`hwlib.activity`)."""
import dataclasses
import math
from dataclasses import dataclass, field

__all__ = ["PowerModel", "DEFAULT_MODEL"]

# Keyed by the gate names of hwlib.synth.GATE_NAMES (profile vocabulary); BUF is a wire.
# Input-pin capacitance per gate input, fF (minimum-drive cells; XOR/XNOR and the multiplexer
# inputs load their drivers more, the inverting 2-input gates least).
_PIN_FF = {"BUF": 0.0, "NOT": 1.6, "NAND": 1.6, "NOR": 1.7, "AND": 0.9, "OR": 0.9,
           "XOR": 2.3, "XNOR": 2.3, "ANDNOT": 1.2, "ORNOT": 1.2, "AOI3": 1.6, "OAI3": 1.6,
           "AOI4": 1.6, "OAI4": 1.6, "MUX": 1.5, "NMUX": 1.5}
# Drain (diffusion) capacitance at the gate's output, fF.
_DRAIN_FF = {"BUF": 0.0, "NOT": 0.8, "NAND": 1.1, "NOR": 1.2, "AND": 1.0, "OR": 1.0,
             "XOR": 1.6, "XNOR": 1.6, "ANDNOT": 1.1, "ORNOT": 1.1, "AOI3": 1.4, "OAI3": 1.4,
             "AOI4": 1.6, "OAI4": 1.6, "MUX": 1.5, "NMUX": 1.5}
# Intrinsic delay per gate, ps (the fan-out term comes on top).
_DELAY_PS = {"BUF": 0.0, "NOT": 12.0, "NAND": 16.0, "NOR": 20.0, "AND": 28.0, "OR": 32.0,
             "XOR": 38.0, "XNOR": 38.0, "ANDNOT": 26.0, "ORNOT": 30.0, "AOI3": 24.0,
             "OAI3": 24.0, "AOI4": 28.0, "OAI4": 28.0, "MUX": 36.0, "NMUX": 32.0}
# Cell area, um^2 (multiples of a 0.266 um^2 site: inverter 2 sites, NAND2 3, AND2 4, ...).
_AREA_UM2 = {"BUF": 0.0, "NOT": 0.532, "NAND": 0.798, "NOR": 0.798, "AND": 1.064, "OR": 1.064,
             "XOR": 1.596, "XNOR": 1.596, "ANDNOT": 1.064, "ORNOT": 1.064, "AOI3": 1.064,
             "OAI3": 1.064, "AOI4": 1.330, "OAI4": 1.330, "MUX": 1.862, "NMUX": 1.862}


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

    vdd: float = 1.1
    pin_ff: dict = field(default_factory=lambda: dict(_PIN_FF))
    drain_ff: dict = field(default_factory=lambda: dict(_DRAIN_FF))
    wire_ff_per_fanout: float = 0.25
    output_load_ff: float = 1.5
    delay_ps: dict = field(default_factory=lambda: dict(_DELAY_PS))
    delay_ps_per_fanout: float = 4.0
    area_um2: dict = field(default_factory=lambda: dict(_AREA_UM2))
    source: str = ("generic 45 nm-class static CMOS, X1 cells at 1.1 V (hwlib.activity "
                   "defaults; order-of-magnitude assumptions)")

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


#: The documented default: a generic 45 nm-class library at 1.1 V (see :mod:`hwlib.activity`).
DEFAULT_MODEL = PowerModel()
