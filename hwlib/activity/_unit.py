"""Capacitance, energy, delay and area of a mapped netlist, and whole-unit activity runs."""
from dataclasses import dataclass

import numpy as np

from .. import CircuitError
from ..netsim import GATE_TYPES
from ._model import DEFAULT_MODEL, PowerModel
from ._stream import operands, parse_distribution
from ._toggles import toggle_counts

__all__ = ["net_capacitance_ff", "switching_energy_fj", "critical_path_ps", "area_um2",
           "mapped_netlist", "UnitActivity", "unit_activity", "fp_activity"]

_ARITY = [len(ports) for ports in GATE_TYPES.values()]


def _gate_name(cell_type):
    from ..synth import GATE_NAMES
    if cell_type == "$_BUF_":
        return "BUF"
    for name, yosys_type in GATE_NAMES.items():
        if yosys_type == cell_type:
            return name
    raise CircuitError(f"No power model for gate type {cell_type}")


def _model(model):
    if model is None:
        return DEFAULT_MODEL
    if not isinstance(model, PowerModel):
        raise TypeError(f"Expected a PowerModel, not {model!r}")
    return model


def _fanout(net):
    fanout = np.zeros(net.n_nets, dtype=np.int64)
    for row in net.gates.tolist():
        for n in row[2:2 + _ARITY[row[0]]]:
            fanout[n] += 1
    return fanout


def net_capacitance_ff(net, model=None):
    """Capacitance of every net of ``net`` in fF (array indexed by net; the constants 0)."""
    model = _model(model)
    cap = np.zeros(net.n_nets, dtype=np.float64)
    for row, cell_type in zip(net.gates.tolist(), net.gate_types):
        name = _gate_name(cell_type)
        cap[row[1]] += model.drain_ff[name]
        for n in row[2:2 + _ARITY[row[0]]]:
            cap[n] += model.pin_ff[name] + model.wire_ff_per_fanout
    for nets in net.outputs.values():
        for n in nets.tolist():
            cap[n] += model.output_load_ff
    cap[:2] = 0.0
    return cap


def switching_energy_fj(net, counts, model=None):
    """Switching energy per operation in fJ: sum of 1/2 C V^2 toggles over nets, divided by
    ``counts.operations`` (a :class:`~hwlib.activity.ToggleCounts` of ``net``)."""
    model = _model(model)
    if counts.operations < 1:
        raise ValueError("At least two vectors (one operation) are needed to price switching")
    cap = net_capacitance_ff(net, model)
    return float(0.5 * model.vdd ** 2 * np.dot(cap, counts.toggles) / counts.operations)


def critical_path_ps(net, model=None):
    """Longest input-to-output delay in ps: each gate adds its ``delay_ps`` plus
    ``delay_ps_per_fanout`` per gate input its output drives (a buffer adds nothing)."""
    model = _model(model)
    fanout = _fanout(net)
    arrival = np.zeros(net.n_nets, dtype=np.float64)
    for row, cell_type in zip(net.gates.tolist(), net.gate_types):
        name = _gate_name(cell_type)
        start = max(arrival[n] for n in row[2:2 + _ARITY[row[0]]])
        extra = 0.0 if name == "BUF" else model.delay_ps[name] + \
            model.delay_ps_per_fanout * fanout[row[1]]
        arrival[row[1]] = start + extra
    return max((float(arrival[nets].max()) for nets in net.outputs.values() if len(nets)),
               default=0.0)


def area_um2(net, model=None):
    """Sum of the cell areas of the netlist's gates, um^2."""
    model = _model(model)
    return float(sum(model.area_um2[_gate_name(t)] for t in net.gate_types))


def _driven_nets(net):
    return np.unique(net.gates[:, 1]) if len(net.gates) else np.zeros(0, dtype=np.int64)


def mapped_netlist(component, technology):
    """The netlist of ``component`` mapped onto a profile ``technology``'s gate set: the gates
    :func:`hwlib.synth.synthesize` prices (cached in memory per circuit and gate set)."""
    from .._counting import _mapping_gates
    from ..synth import elaborate, synthesize
    gates = _mapping_gates(technology["gates"])
    return synthesize(elaborate(component).rtlil, gates).netlist


_SPEC_NETLISTS = {}


def spec_netlist(spec, technology):
    """:func:`mapped_netlist` of a :class:`hwlib._specs.CircuitSpec`, kept in memory per
    design, circuit parameters and gate set, so that a unit simulated again is neither
    elaborated nor synthesized again."""
    import json

    from .._counting import _mapping_gates
    key = json.dumps([spec.design, spec.params, _mapping_gates(technology["gates"])], sort_keys=True,
                     default=str)
    if key not in _SPEC_NETLISTS:
        _SPEC_NETLISTS[key] = mapped_netlist(spec.build(), technology)
    return _SPEC_NETLISTS[key]


@dataclass(frozen=True)
class UnitActivity:
    """Activity, switching energy, delay and area of one unit under one operand stream.

    ``unit``: ``add``/``mul``/``div``/``sqrt`` for integer units, the op for floating-point
    ones; ``width`` or ``format`` says which. ``activity``: mean toggles per operation of the
    gate-driven nets (0 to 1 with zero delay; above 1 is possible with ``unit_delay``, where
    glitches count). ``toggles_per_op``: all nets, inputs included.
    """

    unit: str
    design: str
    width: int
    format: str
    distribution: str
    seed: int
    operations: int
    nets: int
    gates: int
    toggles_per_op: float
    activity: float
    energy_fj_per_op: float
    delay_ps: float
    area_um2: float
    vdd: float
    unit_delay: bool = False

    @property
    def edp_fj_ns(self):
        """Energy-delay product: fJ per operation x critical-path delay in ns."""
        return self.energy_fj_per_op * self.delay_ps / 1000.0

    def to_json(self):
        return {"unit": self.unit, "design": self.design, "width": self.width,
                "format": self.format, "distribution": self.distribution, "seed": self.seed,
                "operations": self.operations, "nets": self.nets, "gates": self.gates,
                "toggles_per_op": self.toggles_per_op, "activity": self.activity,
                "energy_fj_per_op": self.energy_fj_per_op, "delay_ps": self.delay_ps,
                "area_um2": self.area_um2, "edp_fj_ns": self.edp_fj_ns, "vdd": self.vdd,
                "glitches": self.glitches}

    @property
    def glitches(self):
        """How the toggles were counted, in words."""
        return ("counted (unit-delay toggles)" if self.unit_delay
                else "not counted (zero-delay toggles)")


def _distributions(distribution):
    """One distribution for every operand port, or a pair (port a, port b): a tuple of
    :class:`Distribution` and its label."""
    if isinstance(distribution, (list, tuple)):
        if len(distribution) != 2:
            raise ValueError(f"A distribution pair gives operands a and b: two items, "
                             f"not {len(distribution)}")
        dists = tuple(parse_distribution(d) for d in distribution)
        if dists[0] == dists[1]:
            return dists[:1], dists[0].label()
        return dists, " x ".join(d.label() for d in dists)
    dist = parse_distribution(distribution)
    return (dist,), dist.label()


def _measure(net, unit, design, width, fmt, distribution, vectors, seed, model, controls,
             unit_delay):
    dists, label = _distributions(distribution)
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 2:
        raise ValueError(f"vectors must be an integer of at least 2, not {vectors!r}")
    inputs = {}
    operand = 0
    for i, (name, nets) in enumerate(net.inputs.items()):
        if name in controls:
            inputs[name] = [controls[name]] * vectors
        elif len(nets) == 1 and name not in ("a", "b"):
            inputs[name] = [0] * vectors
        else:
            # each operand port its own stream (seeded from the run's seed and its position);
            # with a pair of distributions the first operand port takes the first, the others
            # the second
            dist = dists[min(operand, len(dists) - 1)]
            operand += 1
            inputs[name] = operands(dist, vectors, seed=[seed, i],
                                    **({"fmt": fmt} if fmt else {"width": len(nets)}))
    return _price_inputs(net, inputs, unit, design, width, fmt, label, seed, model, unit_delay)


def _price_inputs(net, inputs, unit, design, width, fmt, label, seed, model, unit_delay):
    counts = toggle_counts(net, inputs, unit_delay=unit_delay)
    driven = _driven_nets(net)
    ops = counts.operations
    return UnitActivity(
        unit=unit, design=design, width=width, format=fmt, distribution=label,
        seed=seed, operations=ops, nets=int(net.n_nets - 2), gates=len(net.gates),
        toggles_per_op=float(counts.toggles.sum() / ops),
        activity=float(counts.toggles[driven].sum() / (ops * max(1, len(driven)))),
        energy_fj_per_op=switching_energy_fj(net, counts, model),
        delay_ps=critical_path_ps(net, model), area_um2=area_um2(net, model),
        vdd=float(model.vdd), unit_delay=bool(unit_delay))


def unit_activity(kind, design, width, profile, distribution="uniform", *, vectors=4096,
                  seed=0, model=None, glitches=False):
    """Run ``vectors`` operands drawn from ``distribution`` through the mapped netlist of the
    integer unit ``kind``/``design`` at ``width`` (as :func:`hwlib.cost.compare_designs`
    builds it under ``profile``) and return a :class:`UnitActivity`. Every operand port gets
    its own seeded stream; one-bit control inputs are held at 0. ``glitches``: count
    unit-delay toggles (every gate one time step) instead of zero-delay ones."""
    from .._specs import integer_unit
    model = _model(model)
    spec = integer_unit(kind, design, width, profile.units.get(kind) or {})
    net = spec_netlist(spec, profile.technology)
    return _measure(net, kind, design, width, None, distribution, vectors, seed, model, {},
                    glitches)


def _controls(op):
    """The one-bit control inputs of an op's FP unit: ``sub`` of the adder (1 for sub), ``sqrt``
    of a shared divide/square-root unit (1 for sqrt; hwlib.units.divsqrt)."""
    return {"sub": int(op == "sub"), "sqrt": int(op == "sqrt")}


def fp_activity(op, fmt, profile, distribution="uniform", *, vectors=4096, seed=0, model=None,
                glitches=False):
    """:func:`unit_activity` for the profile's floating-point unit of basic op ``op`` in
    ``fmt`` (``hwlib.fp``, the profile's datapath); operands are IEEE encodings. A ``sub``
    runs on the adder with its ``sub`` input held at 1."""
    from ..cost import unit_spec
    model = _model(model)
    spec = unit_spec(op, fmt, profile.units, profile.datapath)
    net = spec_netlist(spec, profile.technology)
    controls = _controls(op)
    return _measure(net, op, spec.design, None, fmt, distribution, vectors, seed, model,
                    controls, glitches)


def fp_stream_activity(op, fmt, profile, a, b=None, *, label="given operands", seed=0, model=None,
                       glitches=False):
    """:func:`fp_activity` on given operand values instead of a named distribution: ``a`` and
    ``b`` are sequences of real numbers of the same length (at least 2; ``b`` is left out for
    ``sqrt``), rounded to ``fmt`` (round to nearest even) and fed to the profile's
    floating-point unit of ``op`` in that order, one operation per pair. ``label`` names the
    stream in the result (its ``distribution``); ``seed`` is only recorded."""
    from ..cost import unit_spec
    from ._stream import fp_encode
    model = _model(model)
    spec = unit_spec(op, fmt, profile.units, profile.datapath)
    net = spec_netlist(spec, profile.technology)
    values = [np.asarray(a, dtype=np.float64).ravel()]
    if b is not None:
        values.append(np.asarray(b, dtype=np.float64).ravel())
    if len({len(v) for v in values}) != 1 or len(values[0]) < 2:
        raise ValueError("The operand sequences must have one length, at least 2")
    controls = _controls(op)
    inputs, operand = {}, 0
    for name, nets in net.inputs.items():
        if name in controls:
            inputs[name] = [controls[name]] * len(values[0])
        elif len(nets) == 1 and name not in ("a", "b"):
            inputs[name] = [0] * len(values[0])
        else:
            inputs[name] = fp_encode(values[min(operand, len(values) - 1)], fmt)
            operand += 1
    return _price_inputs(net, inputs, op, spec.design, None, fmt, label, seed, model, glitches)
