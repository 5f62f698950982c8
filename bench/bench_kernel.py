"""Kernel throughput, side by side in one run: numba kernel vs the numpy reference vs a plain read.

    python bench/bench_kernel.py [--layers 10000000] [--models 100000]

Prints layers per second for each, and the ratios the targets are stated in (kernel >= 5x the
numpy reference, kernel >= half the bandwidth roof). The roof is a parallel numba pass that only
reads the same counts array (sums it), so it measures memory bandwidth, not arithmetic.
"""
import argparse
import os
import sys
import time

import numpy as np
from numba import njit, prange

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from opcount.kernel import tos_from_counts  # noqa: E402
from tests.naive import tos_reference  # noqa: E402


@njit(parallel=True, cache=True)
def _read_roof(counts):
    n = counts.shape[0]
    flat = counts.reshape(n, -1)
    total = 0
    for i in prange(n):
        s = 0
        for j in range(flat.shape[1]):
            s += flat[i, j]
        total += s
    return total


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=10_000_000)
    ap.add_argument("--models", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.layers
    counts = rng.integers(0, 10**9, size=(n, 4, 6), dtype=np.int64)
    costs = rng.uniform(10, 2e5, size=(6, 4))
    fmt = rng.integers(0, 4, size=n)
    cuts = np.sort(rng.choice(np.arange(1, n), size=args.models - 1, replace=False))
    offsets = np.concatenate([[0], cuts, [n]]).astype(np.int64)

    tos_from_counts(counts[:1000], costs, fmt[:1000])          # compile outside the timing
    _read_roof(counts[:1000])
    out = (np.empty((n, 4)), np.empty((args.models, 4)), np.empty(args.models))
    t_fresh = best_of(lambda: tos_from_counts(counts, costs, fmt, offsets), args.repeat)
    t_kernel = best_of(lambda: tos_from_counts(counts, costs, fmt, offsets, out=out), args.repeat)
    t_roof = best_of(lambda: _read_roof(counts), args.repeat)
    t_numpy = best_of(lambda: tos_reference(counts, costs, fmt, offsets), 1)
    got = tos_from_counts(counts, costs, fmt, offsets)[2]
    want = tos_reference(counts, costs, fmt, offsets)[2]
    err = float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1)))

    gb = counts.nbytes / 1e9
    print(f"{n:,} layers in {args.models:,} models, counts array {gb:.2f} GB, {os.cpu_count()} cores")
    for label, t in (("numba kernel", t_kernel), ("  fresh outputs", t_fresh), ("numpy reference", t_numpy),
                     ("read roof", t_roof)):
        print(f"  {label:<16} {t * 1e3:9.1f} ms  {n / t / 1e6:8.1f} M layers/s  {gb / t:6.2f} GB/s")
    print("  (kernel: output arrays reused across calls; 'fresh outputs' allocates them each call,\n"
          "   and faulting in the new pages is part of that time)")
    print(f"  kernel / numpy reference: {t_numpy / t_kernel:6.1f}x   (target >= 5x)")
    print(f"  kernel / read roof:       {t_roof / t_kernel:6.2f}    (target >= 0.5)")
    print(f"  max relative difference to the reference: {err:.1e}")


if __name__ == "__main__":
    main()
