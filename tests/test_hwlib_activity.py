"""Switching activity, energy, delay and area of mapped netlists (hwlib.activity)."""
import itertools
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

import hardware_profiles as hp
from hwlib import activity as act
from hwlib import registry
from hwlib.activity import DEFAULT_MODEL, operands, toggle_counts
from hwlib.cells import FullAdder
from hwlib.netsim import GATE_TYPES, simulate_netlist

GENERIC = hp.load("cmos-generic")
TECH = GENERIC.technology


def _adder(design, width):
    return registry.build(design, width, kind="add", carry_in=False, subtract=False)


def _net(component):
    return act.mapped_netlist(component, TECH)


# --- an independent reference: evaluate the netlist gate by gate in plain Python -------------

_FUNCS = {
    "$_BUF_": lambda a, b, c, d: a, "$_NOT_": lambda a, b, c, d: 1 - a,
    "$_AND_": lambda a, b, c, d: a & b, "$_NAND_": lambda a, b, c, d: 1 - (a & b),
    "$_OR_": lambda a, b, c, d: a | b, "$_NOR_": lambda a, b, c, d: 1 - (a | b),
    "$_XOR_": lambda a, b, c, d: a ^ b, "$_XNOR_": lambda a, b, c, d: 1 - (a ^ b),
    "$_ANDNOT_": lambda a, b, c, d: a & (1 - b), "$_ORNOT_": lambda a, b, c, d: a | (1 - b),
    "$_MUX_": lambda a, b, c, d: b if c else a, "$_NMUX_": lambda a, b, c, d: 1 - (b if c else a),
    "$_AOI3_": lambda a, b, c, d: 1 - ((a & b) | c), "$_OAI3_": lambda a, b, c, d: 1 - ((a | b) & c),
    "$_AOI4_": lambda a, b, c, d: 1 - ((a & b) | (c & d)),
    "$_OAI4_": lambda a, b, c, d: 1 - ((a | b) & (c | d)),
}
assert set(_FUNCS) == set(GATE_TYPES)


def _net_values(net, vector):
    """Value of every net for one input vector ({port: int})."""
    v = [0] * net.n_nets
    v[1] = 1
    for name, nets in net.inputs.items():
        for i, n in enumerate(nets.tolist()):
            v[n] = (vector[name] >> i) & 1
    for row, kind in zip(net.gates.tolist(), net.gate_types):
        v[row[1]] = _FUNCS[kind](*(v[n] for n in row[2:6]))
    return v


def _reference_toggles(net, inputs):
    names = list(inputs)
    vectors = [dict(zip(names, vals)) for vals in zip(*inputs.values())]
    states = [_net_values(net, vec) for vec in vectors]
    toggles = [0] * net.n_nets
    for before, after in zip(states, states[1:]):
        for n in range(net.n_nets):
            toggles[n] += before[n] != after[n]
    return toggles


# --- toggle counting -------------------------------------------------------------------------

def test_full_adder_toggles_by_hand():
    net = _net(FullAdder())
    # (a, b, cin): 000 -> 111 -> 011 -> 010 -> 110 -> 110 -> 001
    seq = [(0, 0, 0), (1, 1, 1), (0, 1, 1), (0, 1, 0), (1, 1, 0), (1, 1, 0), (0, 0, 1)]
    inputs = {"a": [s[0] for s in seq], "b": [s[1] for s in seq], "cin": [s[2] for s in seq]}
    counts = toggle_counts(net, inputs)
    assert counts.operations == 6
    # s    = a^b^cin:   0 1 0 1 0 0 1 -> 5 toggles
    # cout = maj:       0 1 1 0 1 1 0 -> 4 toggles
    # inputs: a 0 1 0 0 1 1 0 -> 4; b 0 1 1 1 1 1 0 -> 2; cin 0 1 1 0 0 0 1 -> 3
    assert counts.of(net.outputs["s"]).tolist() == [5]
    assert counts.of(net.outputs["cout"]).tolist() == [4]
    assert counts.of(net.inputs["a"]).tolist() == [4]
    assert counts.of(net.inputs["b"]).tolist() == [2]
    assert counts.of(net.inputs["cin"]).tolist() == [3]
    assert counts.toggles.tolist() == _reference_toggles(net, inputs)


@pytest.mark.parametrize("n", [2, 63, 64, 65, 130, 300])
def test_every_net_matches_a_gate_by_gate_reference(n):
    # word boundaries (64 vectors per word) are where a bit-parallel counter can slip
    net = _net(_adder("kogge_stone", 4))
    rng = random.Random(n)
    inputs = {"a": [rng.randrange(16) for _ in range(n)], "b": [rng.randrange(16) for _ in range(n)]}
    counts = toggle_counts(net, inputs)
    assert counts.operations == n - 1
    assert counts.toggles.tolist() == _reference_toggles(net, inputs)


def test_port_toggles_match_amaranth_sim():
    width, n = 5, 200
    rng = random.Random(7)
    a = [rng.randrange(1 << width) for _ in range(n)]
    b = [rng.randrange(1 << width) for _ in range(n)]
    component = _adder("carry_select", width)
    seen = {"s": [], "cout": []}

    async def bench(ctx):
        for x, y in zip(a, b):
            ctx.set(component.a, x)
            ctx.set(component.b, y)
            seen["s"].append(ctx.get(component.s))
            seen["cout"].append(ctx.get(component.cout))

    sim = Simulator(component)
    sim.add_testbench(bench)
    sim.run()
    net = _net(_adder("carry_select", width))
    counts = toggle_counts(net, {"a": a, "b": b})
    for port, port_width in (("s", width), ("cout", 1)):
        values = seen[port]
        expected = [sum(((u >> i) ^ (v >> i)) & 1 for u, v in zip(values, values[1:]))
                    for i in range(port_width)]
        assert counts.of(net.outputs[port]).tolist() == expected
    # and the simulated values themselves agree
    assert simulate_netlist(net, {"a": a, "b": b}) == seen


def test_all_zero_stream_has_no_toggles():
    net = _net(registry.build("array", 6, kind="mul"))
    counts = toggle_counts(net, {"a": [0] * 100, "b": [0] * 100})
    assert counts.toggles.sum() == 0
    result = act.unit_activity("mul", "array", 6, GENERIC, "zeros", vectors=100)
    assert result.energy_fj_per_op == 0.0 and result.activity == 0.0


def _one_probabilities(net, width):
    """Exact P(net = 1) of every net under uniform independent a, b (exhaustive)."""
    total = np.zeros(net.n_nets)
    for a, b in itertools.product(range(1 << width), repeat=2):
        total += _net_values(net, {"a": a, "b": b})
    return total / (1 << (2 * width))


@pytest.mark.parametrize("design", ["ripple_carry", "kogge_stone"])
def test_uniform_activity_matches_closed_form(design):
    # Consecutive operations are independent, so a net that is 1 with probability p toggles
    # with probability 2p(1-p). For a ripple-carry adder without carry-in the carry into bit k
    # is 1 with p_k = 1/2 - 2^-(k+1) (p_{k+1} = 1/4 + p_k/2, p_0 = 0); every sum bit has p = 1/2.
    width, n = 4, 40_000
    net = _net(_adder(design, width))
    a = operands("uniform", n, width=width, seed=1)
    b = operands("uniform", n, width=width, seed=2)
    counts = toggle_counts(net, {"a": a, "b": b})
    rate = counts.toggles / counts.operations
    p_out = 0.5 - 2.0 ** -(width + 1)
    assert rate[net.outputs["cout"]][0] == pytest.approx(2 * p_out * (1 - p_out), abs=0.015)
    assert rate[net.outputs["s"]] == pytest.approx([0.5] * width, abs=0.015)
    # every internal net against its exact probability
    p = _one_probabilities(net, width)
    expected = 2 * p * (1 - p)
    assert np.abs(rate - expected).max() < 0.015
    assert rate[:2].tolist() == [0.0, 0.0]


# --- energy, delay, area ---------------------------------------------------------------------

def test_energy_is_the_sum_over_nets_and_scales_with_v_squared_and_c():
    net = _net(_adder("brent_kung", 6))
    counts = toggle_counts(net, {"a": operands("uniform", 500, width=6, seed=3),
                                 "b": operands("uniform", 500, width=6, seed=4)})
    cap = act.net_capacitance_ff(net)
    base = act.switching_energy_fj(net, counts)
    by_hand = sum(0.5 * cap[i] * 1.1 ** 2 * counts.toggles[i] for i in range(net.n_nets)) / 499
    assert base == pytest.approx(by_hand, rel=1e-12)
    assert act.switching_energy_fj(net, counts, DEFAULT_MODEL.replace(vdd=2.2)) == \
        pytest.approx(4 * base, rel=1e-12)
    assert act.switching_energy_fj(net, counts, DEFAULT_MODEL.replace(vdd=0.55)) == \
        pytest.approx(base / 4, rel=1e-12)
    k = 3.0
    scaled = DEFAULT_MODEL.replace(
        pin_ff={g: k * c for g, c in DEFAULT_MODEL.pin_ff.items()},
        drain_ff={g: k * c for g, c in DEFAULT_MODEL.drain_ff.items()},
        wire_ff_per_fanout=k * DEFAULT_MODEL.wire_ff_per_fanout,
        output_load_ff=k * DEFAULT_MODEL.output_load_ff)
    assert act.switching_energy_fj(net, counts, scaled) == pytest.approx(k * base, rel=1e-12)
    # linear in each part: energy(C1 + C2) = energy(C1) + energy(C2)
    only_wire = DEFAULT_MODEL.replace(pin_ff={g: 0.0 for g in DEFAULT_MODEL.pin_ff},
                                      drain_ff={g: 0.0 for g in DEFAULT_MODEL.drain_ff},
                                      output_load_ff=0.0)
    no_wire = DEFAULT_MODEL.replace(wire_ff_per_fanout=0.0)
    assert act.switching_energy_fj(net, counts, only_wire) + \
        act.switching_energy_fj(net, counts, no_wire) == pytest.approx(base, rel=1e-12)
    fanout = np.zeros(net.n_nets)
    for row in net.gates.tolist():
        for n in row[2:2 + len(list(GATE_TYPES.values())[row[0]])]:
            fanout[n] += 1
    assert act.switching_energy_fj(net, counts, only_wire) == pytest.approx(
        0.5 * 1.1 ** 2 * 0.25 * float(fanout @ counts.toggles) / 499, rel=1e-12)


def test_relu_stream_costs_less_than_uniform_on_every_multiplier():
    ratios = {}
    for design in registry.designs_for("mul"):
        uniform = act.unit_activity("mul", design, 8, GENERIC, "uniform", vectors=2000)
        relu = act.unit_activity("mul", design, 8, GENERIC, "relu:zeros=0.5", vectors=2000)
        assert 0 < relu.energy_fj_per_op < uniform.energy_fj_per_op, design
        ratios[design] = relu.energy_fj_per_op / uniform.energy_fj_per_op
    print("relu/uniform energy per op, 8-bit multipliers:", ratios)


def test_ripple_delay_grows_linearly_and_kogge_stone_logarithmically():
    widths = [4, 8, 16, 32]
    ripple = [act.critical_path_ps(_net(_adder("ripple_carry", w))) for w in widths]
    prefix = [act.critical_path_ps(_net(_adder("kogge_stone", w))) for w in widths]
    # ripple: each doubling of the width doubles the increment (delay ~ c * width)
    steps = np.diff(ripple)
    assert steps[1] / steps[0] == pytest.approx(2, rel=0.15)
    assert steps[2] / steps[1] == pytest.approx(2, rel=0.15)
    # Kogge-Stone: each doubling adds about the same (delay ~ c * log2 width)
    steps = np.diff(prefix)
    assert all(0 < s < 2 * steps[0] for s in steps)
    assert prefix[-1] / prefix[0] < 2.5 < ripple[-1] / ripple[0]


def test_delay_and_area_by_hand_on_a_two_gate_chain():
    net = _net(_adder("ripple_carry", 1))      # s = a ^ b, cout = a & b
    kinds = sorted(act._unit._gate_name(t) for t in net.gate_types)
    m = DEFAULT_MODEL
    assert act.area_um2(net) == pytest.approx(sum(m.area_um2[k] for k in kinds))
    # one level of gates, each driving nothing but an output
    assert act.critical_path_ps(net) == pytest.approx(max(m.delay_ps[k] for k in kinds))


# --- operand streams -------------------------------------------------------------------------

def test_operand_streams_are_seeded_and_shaped():
    assert operands("uniform", 50, width=70, seed=5) == operands("uniform", 50, width=70, seed=5)
    assert operands("uniform", 50, width=70, seed=5) != operands("uniform", 50, width=70, seed=6)
    assert max(operands("uniform", 500, width=70, seed=5)) >> 64
    relu = operands("relu:zeros=0.7", 10_000, width=8, seed=0)
    assert min(relu) == 0 and max(relu) < 256
    assert sum(v == 0 for v in relu) / 10_000 == pytest.approx(0.7, abs=0.03)
    normal = operands("normal:scale=0.1", 10_000, width=8, seed=0)
    signed = [v - 256 if v >= 128 else v for v in normal]
    assert np.std(signed) == pytest.approx(12.8, rel=0.05)
    assert operands("zeros", 3, fmt="fp32") == [0, 0, 0]


@pytest.mark.parametrize("fmt,dtype", [("fp16", np.float16), ("fp32", np.float32),
                                       ("fp64", np.float64)])
def test_fp_streams_are_ieee_encodings(fmt, dtype):
    bits = operands("normal:scale=2", 1000, fmt=fmt, seed=9)
    uint = {np.float16: np.uint16, np.float32: np.uint32, np.float64: np.uint64}[dtype]
    values = np.array(bits, dtype=uint).view(dtype).astype(np.float64)
    assert np.all(np.isfinite(values)) and np.std(values) == pytest.approx(2, rel=0.1)
    relu = np.array(operands("relu", 1000, fmt=fmt, seed=9), dtype=uint).view(dtype)
    assert np.all(relu >= 0) and 0.4 < np.mean(relu == 0) < 0.6


def test_bf16_rounds_to_nearest_even():
    from hwlib.activity._stream import _fp_bits
    assert _fp_bits([1.0, -2.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8], "bf16") == \
        [0x3F80, 0xC000, 0x3F80, 0x3F82]


@pytest.mark.parametrize("text", ["gauss", "relu:zeros=2", "relu:zeros", "uniform:scale=1",
                                  "normal:scale=x", "normal:scale=-1"])
def test_bad_distributions_are_refused(text):
    with pytest.raises(ValueError):
        act.parse_distribution(text)


def test_bad_model_values_are_refused():
    with pytest.raises(ValueError):
        DEFAULT_MODEL.replace(vdd=0)
    with pytest.raises(ValueError):
        DEFAULT_MODEL.replace(pin_ff={"NAND3": 1.0})
    with pytest.raises(ValueError):
        DEFAULT_MODEL.replace(volts=1.0)


# --- unit-delay toggles (glitches) -----------------------------------------------------------

def _reference_unit_delay(net, inputs):
    """Unit-delay toggles by direct simulation, one operation at a time."""
    names = list(inputs)
    vectors = [dict(zip(names, vals)) for vals in zip(*inputs.values())]
    toggles = [0] * net.n_nets
    for before, after in zip(vectors, vectors[1:]):
        cur = _net_values(net, before)
        settled = _net_values(net, after)
        for name, nets in net.inputs.items():
            for i, n in enumerate(nets.tolist()):
                bit = (after[name] >> i) & 1
                toggles[n] += cur[n] != bit
                cur[n] = bit
        for _ in range(len(net.gates) + 1):
            nxt = list(cur)
            for row, kind in zip(net.gates.tolist(), net.gate_types):
                nxt[row[1]] = _FUNCS[kind](*(cur[n] for n in row[2:6]))
            for n in range(net.n_nets):
                toggles[n] += nxt[n] != cur[n]
            cur = nxt
        assert cur == settled
    return toggles


def _hazard_netlist():
    """y = a & ~a through an inverter: always 0 when settled, a glitch on every rise of a."""
    from hwlib.netsim import load_netlist_json
    import json
    module = {"ports": {"a": {"direction": "input", "bits": [2]},
                        "y": {"direction": "output", "bits": [4]}},
              "cells": {"inv": {"type": "$_NOT_", "connections": {"A": [2], "Y": [3]}},
                        "and": {"type": "$_AND_", "connections": {"A": [2], "B": [3], "Y": [4]}}}}
    return load_netlist_json(json.dumps({"modules": {"top": module}}))


def test_unit_delay_glitch_by_hand():
    net = _hazard_netlist()
    inputs = {"a": [0, 1, 0, 1, 1, 0]}
    zero = toggle_counts(net, inputs)
    unit = toggle_counts(net, inputs, unit_delay=True)
    y = net.outputs["y"]
    assert zero.of(y).tolist() == [0]
    # two rises of a, each: y goes 1 at t=1 (the inverter still 1) and back to 0 at t=2
    assert unit.of(y).tolist() == [4]
    assert unit.of(net.inputs["a"]).tolist() == zero.of(net.inputs["a"]).tolist() == [4]
    assert unit.toggles.tolist() == _reference_unit_delay(net, inputs)


@pytest.mark.parametrize("design,n", [("ripple_carry", 130), ("carry_skip", 70),
                                      ("kogge_stone", 65)])
def test_unit_delay_matches_the_reference_and_bounds_zero_delay(design, n):
    net = _net(_adder(design, 5))
    rng = random.Random(n)
    inputs = {"a": [rng.randrange(32) for _ in range(n)], "b": [rng.randrange(32) for _ in range(n)]}
    unit = toggle_counts(net, inputs, unit_delay=True)
    zero = toggle_counts(net, inputs)
    assert unit.toggles.tolist() == _reference_unit_delay(net, inputs)
    assert np.all(unit.toggles >= zero.toggles)
    assert np.all((unit.toggles - zero.toggles) % 2 == 0)
    assert unit.toggles.sum() > zero.toggles.sum()     # a 5-bit adder does glitch
