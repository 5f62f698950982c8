"""Cost-table synthesis time of the built-in profiles, cold and warm, side by side in one run.

    python bench/bench_synth.py [--profiles li2022,cmos-generic,...] [--formats fp16,...]
                                [--ops add,...] [--jobs N]

Cold: every profile's cost table (its formats, all basic ops, unless narrowed) computed into a
fresh temporary cache directory, one profile after the other in this process (so a circuit two
profiles share is synthesized once, as with a shared cache). Warm: the same tables read back
from that cache through new `Cache` and `Pricer` objects (a warm lookup reads only the cache
files: no elaboration and no Yosys, so no in-memory state of the cold run helps it). The
bundled tables shipped in ``hwlib/tables/`` are bypassed in both runs. Prints seconds per
profile and the cold/warm ratio. Targets (issue 4): cold under 10 minutes on a
2-core machine, warm under a second.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import hardware_profiles as hp  # noqa: E402
from hwlib import YosysError, cost  # noqa: E402
from tosim.cmd_synth import _Progress  # noqa: E402  (one stderr line per circuit)

def _names(text):
    return [part.strip() for part in text.split(",") if part.strip()] if text else []


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", default=",".join(hp.builtin_names()))
    ap.add_argument("--formats", default="", help="default: each profile's formats")
    ap.add_argument("--ops", default="", help="default: all basic ops")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes for the cold run")
    args = ap.parse_args()
    profiles, formats, ops = _names(args.profiles), _names(args.formats), _names(args.ops)

    cache_dir = tempfile.mkdtemp(prefix="tosim_bench_cache_")
    os.environ["TOSIM_CACHE_DIR"] = cache_dir
    try:
        cold, failed, skip = {}, [], set()
        for name in profiles:
            profile = hp.load(name)
            print(f"cold: {name}", file=sys.stderr)
            started = time.perf_counter()
            circuits = 0
            # format by format, so that a circuit Yosys cannot map is reported, not fatal
            for fmt in formats or profile.formats:
                try:
                    circuits += len(cost.cost_table(profile, [fmt], ops or None, bundled=False,
                                                    progress=_Progress(), jobs=args.jobs))
                except YosysError as exc:
                    sys.stderr.write("failed\n")
                    failed.append(f"{name} {fmt}: {exc.message.splitlines()[0][:160]}")
                    skip.add((name, fmt))
            cold[name] = time.perf_counter() - started
            print(f"  {circuits} circuits in {cold[name]:.1f} s", file=sys.stderr)
        warm = {}
        for name in profiles:
            profile = hp.load(name)
            started = time.perf_counter()
            for fmt in formats or profile.formats:
                if (name, fmt) not in skip:  # a failed format is not in the cache
                    cost.cost_table(profile, [fmt], ops or None, cache=cost.Cache(cache_dir),
                                    bundled=False)
            warm[name] = time.perf_counter() - started
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    what = (f"formats {','.join(formats) or 'of each profile'}, ops {','.join(ops) or 'all'}, "
            f"{args.jobs} job(s)")
    print(f"cost-table synthesis, {what} (cold: fresh cache; warm: from the cache)")
    print(f"{'profile':<14} {'cold s':>10} {'warm s':>10} {'cold/warm':>10}")
    for name in profiles:
        print(f"{name:<14} {cold[name]:>10.2f} {warm[name]:>10.4f} "
              f"{cold[name] / max(warm[name], 1e-9):>10.0f}")
    total_cold, total_warm = sum(cold.values()), sum(warm.values())
    print(f"{'all':<14} {total_cold:>10.2f} {total_warm:>10.4f} "
          f"{total_cold / max(total_warm, 1e-9):>10.0f}")
    for line in failed:
        print(f"FAILED (that format's table is left out of the warm run): {line}")
    print(f"targets: cold < 600 s ({'met' if total_cold < 600 else 'NOT met'}), "
          f"warm < 1 s ({'met' if total_warm < 1 else 'NOT met'})")


if __name__ == "__main__":
    main()
