"""Scoring kernel, side by side in one run: tosim's kernel vs what a numpy user would write, and a
plain read of the same memory (the roof).

    python bench/bench_kernel.py [--layers 10000000] [--models 100000] [--repeat 5]
    python bench/bench_kernel.py --crossover

Sides, each run ``--repeat`` times on the same arrays (interleaved: every round runs each side
once), reported as the median wall time and the median CPU time (``time.process_time``: all threads of the process, so a parallel side shows what
it costs the machine, and time other processes take does not count):

- ``tos_from_counts``: the public call (it picks numba past a size, numba's threads by size;
  the parallel form streams the per-layer TOs to memory with non-temporal stores);
- ``numba, 1 thread`` and ``numpy form``: tosim's two implementations forced;
- ``numpy einsum + reduceat``: the baseline a competent numpy user writes, per-layer costs picked
  by fancy indexing, ``np.einsum('lso,lo->ls')`` for layer TOs and ``np.add.reduceat`` for the
  per-model sums;
- ``read roof``: a numba pass that only reads (sums) the same counts array with every thread,
  and with one thread: memory bandwidth, not arithmetic; and the same pass with the kernel's
  software prefetch (``PREFETCH_LAYERS`` ahead), the strictest bar;
- ``traffic roof``: a numba pass that moves the bytes the kernel must move (reads the counts
  and the layer formats, writes one number per layer and stage, the size of ``layer_tos``, with
  the same streaming stores as the parallel kernel) with integer sums only: the roof of the
  kernel's own memory traffic. The kernel reads 192 bytes per layer plus 8 of format and writes
  32, about 1.2x the bytes of the read roof (1.4x with plain stores, where each line written is
  first read); where memory bandwidth is the limit (all threads of this 2-core VM) that caps
  roof/kernel near 0.83.

``--crossover`` measures what ``opcount.kernel``'s thresholds rest on: CPU per call of the numpy
form and of the numba kernel (1 thread and all threads) by size, and the CPU a process spends to
import numba and load the cached kernel.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from opcount import kernel  # noqa: E402
from opcount.kernel import tos_from_counts  # noqa: E402


def measure(fn, repeat):
    """``(median wall s, median CPU s)`` over ``repeat`` calls of ``fn``."""
    walls, cpus = [], []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def interleaved(sides, repeat):
    """``{label: (median wall s, median CPU s)}`` over ``repeat`` rounds, each round calling every
    side of ``sides`` (``(label, fn)`` pairs) once, in order."""
    runs = {label: [] for label, _ in sides}
    for _ in range(repeat):
        for label, fn in sides:
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            runs[label].append((time.perf_counter() - w0, time.process_time() - c0))
    return {label: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for label, r in runs.items()}


def einsum_reduceat(counts, costs, layer_format, offsets):
    """The baseline: what a numpy user writes for layer, model-stage and model TOs."""
    layer = np.einsum("lso,lo->ls", counts, costs.T[layer_format])
    starts = offsets[:-1]
    model_stage = np.add.reduceat(layer, np.minimum(starts, len(layer) - 1), axis=0)
    model_stage[starts == offsets[1:]] = 0.0       # reduceat gives an empty model a row, not zeros
    return layer, model_stage, model_stage.sum(axis=1)


def _read_roof_kernels():
    from numba import njit, prange

    def read(counts):
        total = 0
        for i in prange(counts.shape[0]):
            s = 0
            for j in range(counts.shape[1]):
                s += counts[i, j]
            total += s
        return total
    return njit(parallel=True, cache=True)(read), njit(cache=True)(read)


def _prefetching_read_roof():
    """The read roof with the kernel's software prefetch (the same three lines, as far ahead): the
    strictest bar, since the plain read roof leaves prefetching to the hardware."""
    from numba import njit, prange

    from opcount._kernel_numba import _prefetch_ahead

    def read(counts):
        total = 0
        last = counts.shape[0] - 1
        for i in prange(counts.shape[0]):
            _prefetch_ahead(counts, i, last)
            s = 0
            for j in range(counts.shape[1]):
                s += counts[i, j]
            total += s
        return total
    return njit(parallel=True, cache=True)(read)


def _traffic_roof_kernels():
    from numba import njit, prange

    from opcount._kernel_numba import _fence, _store_streaming

    def traffic(counts, layer_format, out):
        for i in prange(counts.shape[0]):
            f = layer_format[i]
            for stage in range(4):
                acc = 0
                for o in range(stage * 6, stage * 6 + 6):
                    acc += counts[i, o]
                _store_streaming(out, i, stage, float(acc + f))
        _fence()
    return njit(parallel=True, cache=True)(traffic), njit(cache=True)(traffic)


def _plain_store_kernel():
    """The parallel kernel's loop with plain stores of ``layer_tos`` (the ablation of its streaming
    stores): same chunks, same prefetch, same additions, same bits."""
    from numba import njit, prange

    from opcount._kernel_numba import _layer_stage_tos, _prefetch_ahead

    def plain(rows, row_costs, layer_format, offsets, chunks, layer_tos, model_stage_tos, model_tos):
        last = rows.shape[0] - 1
        for c in prange(chunks.shape[0] - 1):
            for m in range(chunks[c], chunks[c + 1]):
                s0 = s1 = s2 = s3 = 0.0
                for layer in range(offsets[m], offsets[m + 1]):
                    _prefetch_ahead(rows, layer, last)
                    a0, a1, a2, a3 = _layer_stage_tos(rows, row_costs, layer_format[layer], layer)
                    layer_tos[layer, 0] = a0
                    layer_tos[layer, 1] = a1
                    layer_tos[layer, 2] = a2
                    layer_tos[layer, 3] = a3
                    s0 += a0
                    s1 += a1
                    s2 += a2
                    s3 += a3
                model_stage_tos[m, 0] = s0
                model_stage_tos[m, 1] = s1
                model_stage_tos[m, 2] = s2
                model_stage_tos[m, 3] = s3
                model_tos[m] = s0 + s1 + s2 + s3
    return njit(parallel=True, cache=True, nogil=True)(plain)


def synthetic(n_layers, n_models, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 10 ** 9, size=(n_layers, 4, 6), dtype=np.int64)
    costs = rng.uniform(10, 2e5, size=(6, 4))
    fmt = rng.integers(0, 4, size=n_layers)
    cuts = np.sort(rng.choice(np.arange(1, n_layers), size=n_models - 1, replace=False)) if n_models > 1 else []
    offsets = np.concatenate([[0], cuts, [n_layers]]).astype(np.int64)
    return counts, costs, fmt, offsets


def _forced(use_numba, threads=None):
    def call(*args, **kwargs):
        saved = kernel._use_numba, kernel._threads
        kernel._use_numba = lambda n: use_numba
        if threads is not None:
            kernel._threads = lambda n: threads
        try:
            return tos_from_counts(*args, **kwargs)
        finally:
            kernel._use_numba, kernel._threads = saved
    return call


def bench(n_layers, n_models, repeat):
    import numba
    counts, costs, fmt, offsets = synthetic(n_layers, n_models)
    flat = counts.reshape(n_layers, -1)
    roof_parallel, roof_serial = _read_roof_kernels()
    small = synthetic(1000, 10)
    for side in (_forced(True, 1), _forced(True, 2)):
        side(*small)                                   # load the compiled kernels outside the timing
    roof_parallel(flat[:1000]), roof_serial(flat[:1000])
    roof_prefetching = _prefetching_read_roof()
    roof_prefetching(flat[:1000])
    traffic_parallel, traffic_serial = _traffic_roof_kernels()
    scratch = np.empty((n_layers, 4))
    traffic_parallel(flat[:1000], fmt[:1000], scratch[:1000]), traffic_serial(flat[:1000], fmt[:1000], scratch[:1000])
    out = (np.empty((n_layers, 4)), np.empty((n_models, 4)), np.empty(n_models))
    threads = numba.get_num_threads()
    from opcount._kernel_numba import _CHUNKS_PER_THREAD, _chunks
    plain = _plain_store_kernel()
    plain_out = tuple(np.empty_like(a) for a in out)
    rows = counts.reshape(n_layers, -1)
    row_costs = np.ascontiguousarray(np.tile(costs.T, (1, 4)))
    chunks = _chunks(offsets, threads * _CHUNKS_PER_THREAD)
    plain(rows[:1000], row_costs, fmt[:1000], np.array([0, 1000]), np.array([0, 1]), *(a[:1] for a in plain_out))
    sides = [
        (f"tos_from_counts ({'numba' if kernel._use_numba(n_layers) else 'numpy'}, "
         f"{min(kernel._threads(n_layers), threads)} thr.)",
         lambda: tos_from_counts(counts, costs, fmt, offsets, out=out)),
        ("numba, 1 thread", lambda: _forced(True, 1)(counts, costs, fmt, offsets, out=out)),
        (f"numba, {threads} thr., plain stores", lambda: plain(rows, row_costs, fmt, offsets, chunks, *plain_out)),
        ("numpy form", lambda: _forced(False)(counts, costs, fmt, offsets, out=out)),
        ("numpy einsum + reduceat", lambda: einsum_reduceat(counts, costs, fmt, offsets)),
        (f"read roof ({threads} threads)", lambda: roof_parallel(flat)),
        ("read roof (1 thread)", lambda: roof_serial(flat)),
        (f"read roof, prefetching ({threads} thr.)", lambda: roof_prefetching(flat)),
        (f"traffic roof ({threads} threads)", lambda: traffic_parallel(flat, fmt, scratch)),
        ("traffic roof (1 thread)", lambda: traffic_serial(flat, fmt, scratch)),
    ]
    # interleaved: each round runs every side once, so a change in the machine's load reaches all
    times = interleaved(sides, repeat)
    got = tos_from_counts(counts, costs, fmt, offsets)
    want = einsum_reduceat(counts, costs, fmt, offsets)
    err = max(float(np.max(np.abs(g - w) / np.maximum(np.abs(w), 1))) for g, w in zip(got, want))
    gb = counts.nbytes / 1e9
    print(f"== kernel: {n_layers:,} layers in {n_models:,} models, counts {gb:.2f} GB, {os.cpu_count()} cores, "
          f"numba {threads} threads; median of {repeat} runs each")
    print(f"  {'side':<32} {'wall ms':>9} {'CPU ms':>9} {'M layers/s':>11} {'GB/s':>6}")
    for label, (wall, cpu) in times.items():
        print(f"  {label:<32} {wall * 1e3:9.1f} {cpu * 1e3:9.1f} {n_layers / wall / 1e6:11.1f} {gb / wall:6.2f}")
    ours, base = times[sides[0][0]], times["numpy einsum + reduceat"]
    one = times["numba, 1 thread"]
    print(f"  tos_from_counts vs einsum + reduceat: {base[0] / ours[0]:.1f}x wall, {base[1] / ours[1]:.1f}x CPU")
    print(f"  numba 1 thread vs einsum + reduceat:  {base[0] / one[0]:.1f}x wall, {base[1] / one[1]:.1f}x CPU")
    roof, roof_one = times[sides[5][0]], times["read roof (1 thread)"]
    print(f"  roof / tos_from_counts: {roof[0] / ours[0]:.2f} wall, {roof[1] / ours[1]:.2f} CPU (goal >= 0.8); "
          f"1-thread roof / numba 1 thread: {roof_one[0] / one[0]:.2f} wall, {roof_one[1] / one[1]:.2f} CPU")
    traffic, traffic_one = times[sides[8][0]], times["traffic roof (1 thread)"]
    print(f"  read roof / traffic roof (the bytes the kernel moves): {roof[0] / traffic[0]:.2f} wall, "
          f"{roof[1] / traffic[1]:.2f} CPU ({threads} threads), {roof_one[0] / traffic_one[0]:.2f} wall, "
          f"{roof_one[1] / traffic_one[1]:.2f} CPU (1 thread)")
    print(f"  traffic roof / tos_from_counts: {traffic[0] / ours[0]:.2f} wall, {traffic[1] / ours[1]:.2f} CPU; "
          f"1 thread: {traffic_one[0] / one[0]:.2f} wall, {traffic_one[1] / one[1]:.2f} CPU")
    strict = times[sides[7][0]]
    print(f"  prefetching read roof / tos_from_counts: {strict[0] / ours[0]:.2f} wall, {strict[1] / ours[1]:.2f} CPU "
          f"(plain read roof / prefetching one: {roof[0] / strict[0]:.2f} wall, {roof[1] / strict[1]:.2f} CPU)")
    plain_t = times[sides[2][0]]
    print(f"  read roof / the parallel kernel with plain stores (the ablation of its streaming stores): "
          f"{roof[0] / plain_t[0]:.2f} wall, {roof[1] / plain_t[1]:.2f} CPU; same bits: "
          f"{all(np.array_equal(a, b) for a, b in zip(plain_out, got))}")
    print(f"  max relative difference to the baseline: {err:.1e}")


def _child_cpu(code, repeat):
    """Median CPU seconds of a fresh Python running ``code``."""
    cpus = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.join(HERE, ".."))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(cpus)


def crossover(repeat):
    print("== crossover: CPU per call by size (median), numpy form vs numba kernel (warm)")
    rows = []
    for n_layers, n_models in ((68, 1), (1_000, 10), (10_000, 80), (100_000, 1_000), (1_000_000, 10_000)):
        data = synthetic(n_layers, n_models)
        out = (np.empty((n_layers, 4)), np.empty((n_models, 4)), np.empty(n_models))
        runs = max(repeat, min(200, 2_000_000 // n_layers))
        serial, parallel = _forced(True, 1), _forced(True, 64)
        serial(*data, out=out), parallel(*data, out=out)
        t_np = measure(lambda: _forced(False)(*data, out=out), runs)
        t_1 = measure(lambda: serial(*data, out=out), runs)
        t_n = measure(lambda: parallel(*data, out=out), runs)
        rows.append((n_layers, t_np, t_1))
        print(f"  {n_layers:>9,} layers: numpy {t_np[1] * 1e6:10.0f} us CPU | numba 1 thread {t_1[1] * 1e6:9.0f} us CPU "
              f"{t_1[0] * 1e6:9.0f} us wall | numba all threads {t_n[1] * 1e6:9.0f} us CPU {t_n[0] * 1e6:9.0f} us wall")
    setup = ("import numpy as np\nfrom opcount import kernel\nc = np.ones((68, 4, 6), dtype=np.int64)\n"
             "args = (c, np.ones((6, 1)), np.zeros(68, dtype=np.int64))\n")
    plain = _child_cpu(setup + "kernel._use_numba = lambda n: False\nkernel.tos_from_counts(*args)\n", repeat)
    numba_ = _child_cpu(setup + "kernel._use_numba = lambda n: True\nkernel._threads = lambda n: 1\n"
                        "kernel.tos_from_counts(*args)\n", repeat)
    load = numba_ - plain
    n_big, t_np, t_1 = rows[-1]
    per_layer = (t_np[1] - t_1[1]) / n_big
    print(f"  importing numba and loading the cached kernel: {load:.2f} s CPU (a fresh process, median of {repeat})")
    print(f"  numpy costs {per_layer * 1e9:.0f} ns CPU per layer more than numba: numba repays its load past "
          f"~{load / per_layer / 1e6:.1f}M layers (opcount.kernel._NUMBA_MIN_LAYERS = "
          f"{kernel._NUMBA_MIN_LAYERS:,})")
    python_crossover(repeat)


def python_crossover(repeat):
    """Pricing in Python (tosim's small-job path: no numpy) against stacking the same exact
    integer rows into int64 and the numpy form, per layer, with every layer distinct (a zoo
    repeats layers, which the Python path prices once); and numpy's import in a fresh process."""
    from tosim import _pipeline
    n = 50_000
    counts, costs, fmt, offsets = synthetic(n, 50)
    rows = [tuple(r) for r in counts.reshape(n, -1).tolist()]
    names = [f"f{i}" for i in range(costs.shape[1])]
    rec = {"rows": rows, "formats": [names[i] for i in fmt.tolist()]}
    columns = [tuple(costs[:, j].tolist()) for j in range(costs.shape[1])]
    column = {name: j for j, name in enumerate(names)}
    out = (np.empty((n, 4)), np.empty((50, 4)), np.empty(50))

    def python():
        _pipeline._price_python(dict(rec), columns, column, {}, "stage_tos", "layer_tos")

    def stacked_numpy():
        array = np.array(rows, dtype=np.int64).reshape(n, 4, 6)
        _forced(False)(array, costs, fmt, offsets, out=out)
    t_py, t_np = measure(python, repeat), measure(stacked_numpy, repeat)
    numpy_import = _child_cpu("import numpy", repeat) - _child_cpu("pass", repeat)
    gain = (t_py[1] - t_np[1]) / n
    print(f"== Python pricing (no numpy) vs int64 stacking + numpy form, {n:,} distinct layers, CPU per layer: "
          f"Python {t_py[1] / n * 1e9:.0f} ns, numpy {t_np[1] / n * 1e9:.0f} ns; importing numpy "
          f"{numpy_import * 1e3:.0f} ms CPU (fresh process)")
    where = f"~{numpy_import / gain:,.0f} distinct layers" if gain > 0 else "any size (Python is not slower here)"
    print(f"  numpy repays its import past {where} (tosim._pipeline._PYTHON_MAX_LAYERS = "
          f"{_pipeline._PYTHON_MAX_LAYERS:,}; a zoo's repeated layers are priced once)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python-crossover", action="store_true", help="only the Python/numpy pricing crossover")
    ap.add_argument("--layers", type=int, default=10_000_000)
    ap.add_argument("--models", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--crossover", action="store_true", help="measure the numpy/numba crossover instead")
    args = ap.parse_args()
    if args.python_crossover:
        python_crossover(args.repeat)
    elif args.crossover:
        crossover(args.repeat)
    else:
        bench(args.layers, args.models, args.repeat)


if __name__ == "__main__":
    main()
