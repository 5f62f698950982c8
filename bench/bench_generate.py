"""Generation benchmark: counting a whole generation request of a large language model.

    python bench/bench_generate.py [--model llama2-70b] [--prompt 512] [--new-tokens 256] [--batch 8]

Counts a request (one prefill and new_tokens - 1 decode steps with a KV cache) with
:func:`opcount.generation.count_generation` in closed form (three decode steps counted, the rest
summed from the line they lie on), side by side with the baseline a user would write: build and
count every decode step (``per_step=True``, the same function counting each step as its own
model). Both give the same exact counts (checked here); target: the closed form well under one
second for LLaMA-2-70B and 256 new tokens. Wall and CPU (process) time are printed; the machine
may be shared, so CPU time is the steadier figure.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

import hardware_profiles  # noqa: E402
from opcount.generation import count_generation  # noqa: E402


def timed(fn, repeat):
    """(result, best wall seconds, CPU seconds of that run) over ``repeat`` runs."""
    best = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if best is None or wall < best[1]:
            best = (out, wall, cpu)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="llama2-70b")
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    profile = hardware_profiles.load("cmos-generic")
    source = f"zoo:{args.model}"
    count_generation(source, profile, prompt=8, new_tokens=3)            # imports and first-call costs
    kw = dict(prompt=args.prompt, new_tokens=args.new_tokens, batch=args.batch)
    fast, wall, cpu = timed(lambda: count_generation(source, profile, **kw), args.repeat)
    slow, slow_wall, slow_cpu = timed(lambda: count_generation(source, profile, per_step=True, **kw), 1)
    same = fast.macs == slow.macs and not any((fast.total - slow.total).ravel())
    print(f"{args.model}: prompt {args.prompt}, {args.new_tokens} new tokens, batch {args.batch} "
          f"({fast.steps} decode steps, {len(fast.layer_names)} layers per step)")
    print(f"  closed form ({fast.method}):   wall {wall:.3f} s   cpu {cpu:.3f} s")
    print(f"  every step counted (baseline): wall {slow_wall:.3f} s   cpu {slow_cpu:.3f} s")
    print(f"  speed-up: {slow_wall / wall:.0f}x wall, {slow_cpu / max(cpu, 1e-9):.0f}x cpu; "
          f"identical exact counts: {same}; target < 1 s: {'met' if wall < 1.0 else 'NOT met'}")
    print(f"  request: {fast.macs:.4g} MACs, KV cache {fast.kv_cache_bytes / 2**30:.2f} GiB at the end, "
          f"{fast.kv_read.sum() / 2**30:.1f} GiB read by the decode steps")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
