"""Cost-table synthesis time of the built-in profiles, cold and warm, side by side in one run.

    python bench/bench_synth.py [--profiles li2022,cmos-generic,...] [--formats fp16,...]
                                [--ops add,...] [--jobs N]

Cold: every profile's cost table (its formats, all basic ops, unless narrowed) computed into a
fresh temporary cache directory, all profiles in one pool of ``--jobs`` worker processes
(:func:`hwlib.cost.cost_tables`: widest circuits first; a circuit two profiles share is
synthesized once). Warm: the same tables read back from that cache through new `Cache` and
`Pricer` objects (a warm lookup reads only the cache files: no elaboration and no Yosys, so no
in-memory state of the cold run helps it). The bundled tables shipped in ``hwlib/tables/`` are
bypassed in both runs. Prints the cold wall time, the synthesis seconds spent on each profile's
circuits (summed over workers), the warm time per profile and the cold/warm ratio. Targets
(issue 4): cold under 10 minutes on a 2-core machine, warm under a second.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import hardware_profiles as hp  # noqa: E402
from hwlib import cost  # noqa: E402
from tosim.cmd_synth import _Progress  # noqa: E402  (one stderr line per circuit)

class _Timed(_Progress):
    """tosim synth's progress lines, plus the synthesis seconds per profile and the count."""

    def __init__(self):
        super().__init__()
        self.seconds, self.count = {}, 0

    def done(self, index, total, label, seconds):
        super().done(index, total, label, seconds)
        name = label.split(":", 1)[0]
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.count += 1


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
    loaded = [hp.load(name) for name in profiles]
    try:
        progress = _Timed()
        failures = []
        print(f"cold: {', '.join(profiles)}", file=sys.stderr)
        started = time.perf_counter()
        tables = cost.cost_tables(loaded, formats or None, ops or None, bundled=False,
                                  progress=progress, jobs=args.jobs, failures=failures)
        cold = time.perf_counter() - started
        failed = {(name, fmt) for name, fmt, _op, _error in failures}
        warm = {}
        for profile in loaded:
            started = time.perf_counter()
            for fmt in formats or profile.formats:
                if (profile.name, fmt) not in failed:  # a failed circuit is not in the cache
                    cost.cost_table(profile, [fmt], ops or None, cache=cost.Cache(cache_dir),
                                    bundled=False)
            warm[profile.name] = time.perf_counter() - started
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    what = (f"formats {','.join(formats) or 'of each profile'}, ops {','.join(ops) or 'all'}, "
            f"{args.jobs} job(s)")
    circuits = sum(len(rows) for rows in tables.values())
    print(f"cost-table synthesis, {what} (cold: fresh cache; warm: from the cache)")
    print(f"{'profile':<14} {'synth s':>10} {'warm s':>10}")
    for name in profiles:
        print(f"{name:<14} {progress.seconds.get(name, 0.0):>10.1f} {warm[name]:>10.4f}")
    total_warm = sum(warm.values())
    print(f"cold: {circuits} table rows, {progress.count} circuits synthesized in {cold:.1f} s "
          f"wall ({sum(progress.seconds.values()):.1f} s of synthesis over {args.jobs} "
          f"worker(s)); warm: {total_warm:.4f} s; cold/warm {cold / max(total_warm, 1e-9):.0f}x")
    print("(synth s: seconds spent on the circuits first asked for by that profile; a circuit "
          "shared with an earlier profile counts there)")
    for name, fmt, op, error in failures:
        print(f"FAILED (left out of the warm run): {name} {fmt} {op}: "
              f"{error.message.splitlines()[0][:160]}")
    print(f"targets: cold < 600 s ({'met' if cold < 600 else 'NOT met'}), "
          f"warm < 1 s ({'met' if total_warm < 1 else 'NOT met'})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
