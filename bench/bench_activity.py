"""Switching-activity simulation throughput: operand pairs per second per unit, side by side.

    python bench/bench_activity.py [--pairs N] [--reference-pairs M] [--units add:kogge_stone:16,...]

For each unit (``kind:design:width``) the mapped netlist is built once (not timed), then:

* ``hwlib.activity.toggle_counts`` counts the zero-delay toggles of every net over ``N`` operand
  pairs (bit-parallel, 64 pairs per machine word; a warm-up call compiles the kernel first);
* the baseline is what a user of the peer tool would write: ``amaranth.sim`` stepping the
  same (RTL) component through ``M`` pairs in a testbench and counting the bit changes of its
  output ports, which sees only the ports, not the internal nets;
* ``hwlib.netsim.simulate_netlist`` (values only, no counting) shows what counting adds;
* ``toggle_counts(..., unit_delay=True)`` (glitches counted: one pass per gate level) on the
  same pairs.

Prints pairs per second (CPU and wall) and the ratio to the baseline per unit.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import hardware_profiles as hp  # noqa: E402
from hwlib import activity, registry  # noqa: E402
from hwlib.cost import integer_unit  # noqa: E402
from hwlib.netsim import simulate_netlist  # noqa: E402


def _timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def _amaranth_toggles(component, a, b, outputs):
    from amaranth.sim import Simulator
    last = {}
    toggles = {name: 0 for name in outputs}

    async def bench(ctx):
        for x, y in zip(a, b):
            ctx.set(component.a, x)
            ctx.set(component.b, y)
            for name in outputs:
                value = ctx.get(getattr(component, name))
                if name in last:
                    toggles[name] += bin(value ^ last[name]).count("1")
                last[name] = value

    sim = Simulator(component)
    sim.add_testbench(bench)
    sim.run()
    return toggles


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=200_000)
    ap.add_argument("--reference-pairs", type=int, default=2_000)
    ap.add_argument("--units", default="add:ripple_carry:16,add:kogge_stone:32,mul:array:8,"
                                       "mul:dadda:16")
    ap.add_argument("--profile", default="cmos-generic")
    args = ap.parse_args()
    profile = hp.load(args.profile)
    print(f"# {args.pairs:,} pairs through hwlib.activity, {args.reference_pairs:,} through "
          f"amaranth.sim; profile {args.profile}")
    print(f"{'unit':<22} {'gates':>6} {'toggle_counts/s CPU':>20} {'(wall)':>12} "
          f"{'simulate/s CPU':>15} {'unit-delay/s CPU':>17} {'amaranth.sim/s CPU':>19} {'(wall)':>10} {'ratio CPU':>10}")
    for item in args.units.split(","):
        kind, design, width = item.split(":")
        width = int(width)
        spec = integer_unit(kind, design, width, profile.units.get(kind) or {})
        net = activity.mapped_netlist(spec.build(), profile.technology)
        a = activity.operands("uniform", args.pairs, width=width, seed=1)
        b = activity.operands("uniform", args.pairs, width=width, seed=2)
        activity.toggle_counts(net, {"a": a[:100], "b": b[:100]})          # compile / warm
        activity.toggle_counts(net, {"a": a[:100], "b": b[:100]}, unit_delay=True)
        counts, cpu, wall = _timed(lambda: activity.toggle_counts(net, {"a": a, "b": b}))
        _, sim_cpu, _ = _timed(lambda: simulate_netlist(net, {"a": a, "b": b}))
        _, unit_cpu, _ = _timed(lambda: activity.toggle_counts(net, {"a": a, "b": b},
                                                               unit_delay=True))
        m = args.reference_pairs
        ref, ref_cpu, ref_wall = _timed(lambda: _amaranth_toggles(
            registry.build(design, width, kind=kind, **({"carry_in": False, "subtract": False}
                                                        if kind == "add" else {})),
            a[:m], b[:m], list(net.outputs)))
        # the baseline's port toggles must equal ours on the same prefix
        check = activity.toggle_counts(net, {"a": a[:m], "b": b[:m]})
        assert {n: int(check.of(nets).sum()) for n, nets in net.outputs.items()} == ref, item
        ours, theirs = args.pairs / cpu, m / ref_cpu
        print(f"{item:<22} {len(net.gates):>6} {ours:>20,.0f} {args.pairs / wall:>12,.0f} "
              f"{args.pairs / sim_cpu:>15,.0f} {args.pairs / unit_cpu:>17,.0f} {theirs:>19,.0f} {m / ref_wall:>10,.0f} "
              f"{ours / theirs:>9,.0f}x")


if __name__ == "__main__":
    main()
