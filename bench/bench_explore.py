"""The cost of ``tosim explore`` on a grid: from an empty cache, then again from the cache.

    python bench/bench_explore.py [--adders A,B,...] [--multipliers M,...] [--dividers D,...]
                                  [--roots R,...] [--formats F,...] [--model SPEC_OR_ZOO] [--jobs N]

Runs :func:`tosim._explore.explore` twice in one process on a fresh cache folder
(``TOSIM_CACHE_DIR``): the first run synthesizes and simulates each distinct floating-point adder
and multiplier of the grid; the second reads every switching-energy entry back (no synthesis, no
simulation). Prints combinations, CPU and wall seconds of each run, seconds per combination and
the ratio. The default grid is 4 adders x 3 multipliers x 2 formats = 24 combinations; the
model (default a 784-256-10 ReLU MLP spec) is counted and priced in each. ``--dividers`` and
``--roots`` add those axes (default: the base profile's divider and root, not axes). With ``--jobs N`` the
first run uses N worker processes. CPU is this process's plus its finished children's (Yosys,
worker processes).
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

MLP = {"name": "mlp-784-256-10", "input": [784],
       "layers": [{"type": "linear", "out": 256}, {"type": "relu"}, {"type": "linear", "out": 10}]}


def _cpu():
    """CPU seconds of this process and of its finished children (Yosys runs as a child)."""
    import resource
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _timed(function):
    wall, cpu = time.perf_counter(), _cpu()
    result = function()
    return result, _cpu() - cpu, time.perf_counter() - wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adders", default="ripple_carry,brent_kung,kogge_stone,sklansky")
    ap.add_argument("--multipliers", default="booth_wallace,array,dadda")
    ap.add_argument("--dividers", default=None)
    ap.add_argument("--roots", default=None)
    ap.add_argument("--formats", default="fp16,bf16")
    ap.add_argument("--model", default=None, help="a model source (default a 784-256-10 ReLU MLP spec)")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tosim-bench-explore-") as folder:
        os.environ["TOSIM_CACHE_DIR"] = folder
        from tosim import _explore
        axes = dict(dividers=args.dividers.split(",") if args.dividers else None,
                    roots=args.roots.split(",") if args.roots else None)
        grid = dict(adders=args.adders.split(","), multipliers=args.multipliers.split(","),
                    formats=args.formats.split(","), models=[args.model or MLP])
        n = len(grid["adders"]) * len(grid["multipliers"]) * len(grid["formats"]) \
            * len(axes["dividers"] or [None]) * len(axes["roots"] or [None])
        names = " x ".join(x for x in (args.adders, args.multipliers, args.dividers, args.roots, args.formats) if x)
        print(f"grid: {n} combinations ({names}), model {args.model or MLP['name']}, jobs {args.jobs}")
        cold, cold_cpu, cold_wall = _timed(lambda: _explore.explore(
            "cmos-generic", grid["adders"], grid["multipliers"], grid["formats"], grid["models"], jobs=args.jobs,
            **axes))
        warm, warm_cpu, warm_wall = _timed(lambda: _explore.explore(
            "cmos-generic", grid["adders"], grid["multipliers"], grid["formats"], grid["models"], **axes))
        assert [p.to_json() for p in cold] == [p.to_json() for p in warm], "the cached run must give the same rows"
        failed = [p for p in cold if p.error]
        print(f"empty cache: {cold_cpu:8.1f} s CPU {cold_wall:8.1f} s wall  ({cold_wall / n:.2f} s wall per combination)")
        print(f"from cache:  {warm_cpu:8.1f} s CPU {warm_wall:8.1f} s wall  ({warm_wall / n:.3f} s wall per combination)")
        print(f"ratio (empty / cached): CPU x{cold_cpu / warm_cpu:.0f}, wall x{cold_wall / warm_wall:.0f}; "
              f"{len(failed)} failed; on the Pareto front: "
              + ", ".join(f"{p.format} " + "/".join(d for d in (p.adder, p.multiplier, p.divider, p.root) if d)
                          for p in cold if p.pareto))


if __name__ == "__main__":
    main()
