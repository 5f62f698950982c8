"""Scoring benchmarks, each measured side by side with its baseline in one run.

    python bench/bench_score.py [--layers 10000000] [--configs 1000000] [--skip kernel,sweep,zoo,torch]

1. kernel: TOs of 10 million stacked layers, the numba kernel vs the numpy reference vs a plain
   parallel read of the same counts (the bandwidth roof); targets >= 5x and >= 0.5x.
2. sweep: a ~1-million-configuration MLP sweep (width 4..5211 x depth 1..64 x sigmoid/tanh/gelu,
   training) counted by :mod:`opcount.sweep` and priced by the kernel, against
   :func:`opcount.count_model` on a sample of the same configurations (extrapolated);
   target < 2 s.
3. zoo: ``tosim score zoo:all`` end to end in a fresh process, warm (numba and cost caches
   filled by a first run), plus the in-process counting with 1 and 2 worker processes;
   target < 3 s.
4. torch: counting zoo models (load + count, and count alone) against running their torch twins
   under ``torch.utils.flop_counter.FlopCounterMode``, whose FLOPs they must equal, for inference
   and training at batch 1 and a larger batch; target >= 1000x.

Costs come from the real cost table of the profile (``tosim._costs.costs_array``); the zoo part
needs it cached, the others fall back to a fixed table when it is not (said in the output).
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from bench_kernel import _read_roof, best_of  # noqa: E402

import hardware_profiles  # noqa: E402
import opcount  # noqa: E402
from opcount import sweep  # noqa: E402
from opcount.kernel import tos_from_counts  # noqa: E402
from tests.naive import tos_reference  # noqa: E402


def _costs(profile, formats):
    """The profile's cost table when it is cached; a fixed stand-in otherwise (no synthesis in a
    benchmark)."""
    from hwlib.cost import Pricer, fp_unit, fp_units_available, significand_unit
    pricer = Pricer(profile.technology)
    table = np.zeros((len(opcount.BASIC_OPS), len(formats)))
    for j, fmt in enumerate(formats):
        for i, op in enumerate(opcount.BASIC_OPS):
            spec = (fp_unit(op, fmt, profile.units, profile.datapath) if fp_units_available()
                    else significand_unit(op, fmt, profile.units))
            cost = pricer.lookup(spec)
            if cost is None:
                print(f"  (cost table of {profile.name} {fmt} not cached: a fixed stand-in table is used)")
                return np.array([[300.0], [300.0], [9000.0], [1e5], [2e5], [300.0]]).repeat(len(formats), 1), False
            table[i, j] = cost.transistors
    return table, True


def bench_kernel(n_layers, n_models, repeat):
    print(f"== kernel: {n_layers:,} layers in {n_models:,} models")
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 10 ** 9, size=(n_layers, 4, 6), dtype=np.int64)
    costs = rng.uniform(10, 2e5, size=(6, 4))
    fmt = rng.integers(0, 4, size=n_layers)
    cuts = np.sort(rng.choice(np.arange(1, n_layers), size=n_models - 1, replace=False))
    offsets = np.concatenate([[0], cuts, [n_layers]]).astype(np.int64)
    tos_from_counts(counts[:1000], costs, fmt[:1000])
    _read_roof(counts[:1000])
    t_kernel = best_of(lambda: tos_from_counts(counts, costs, fmt, offsets), repeat)
    t_roof = best_of(lambda: _read_roof(counts), repeat)
    t_numpy = best_of(lambda: tos_reference(counts, costs, fmt, offsets), 1)
    got = tos_from_counts(counts, costs, fmt, offsets)[2]
    want = tos_reference(counts, costs, fmt, offsets)[2]
    err = float(np.max(np.abs(got - want) / np.abs(want)))
    gb = counts.nbytes / 1e9
    for label, t in (("numba kernel", t_kernel), ("numpy reference", t_numpy), ("read roof", t_roof)):
        print(f"  {label:<16} {t * 1e3:9.1f} ms  {n_layers / t / 1e6:8.1f} M layers/s  {gb / t:6.2f} GB/s")
    print(f"  kernel vs numpy reference: {t_numpy / t_kernel:6.1f}x (target >= 5x); kernel / roof "
          f"{t_roof / t_kernel:.2f} (target >= 0.5); max rel. difference {err:.1e}")


def bench_sweep(n_configs, repeat):
    print("== sweep: MLP width x depth 1..64 x {sigmoid, tanh, gelu}, training, batch 1")
    profile = hardware_profiles.load("cmos-generic")
    costs, real = _costs(profile, ["fp32"])
    widths = max(1, n_configs // (64 * 3))
    axes = sweep.grid(width=np.arange(4, 4 + widths), depth=np.arange(1, 65), activation=np.arange(3))
    n = axes["width"].size

    def run():
        result = sweep.sweep_mlp(profile, **axes, phase="training")
        return tos_from_counts(result.counts, costs, np.zeros(n, dtype=np.int64), np.arange(n + 1, dtype=np.int64))

    sweep.sweep_mlp(profile, width=4, depth=1, activation=0, phase="training")   # compile/load outside
    tos_from_counts(np.zeros((1, 4, 6), dtype=np.int64), costs, np.zeros(1, dtype=np.int64))
    t_sweep = best_of(run, repeat)
    rng = np.random.default_rng(1)
    sample = rng.choice(n, size=60, replace=False)
    t0 = time.perf_counter()
    for i in sample:
        spec = sweep.mlp_spec(width=axes["width"][i], depth=axes["depth"][i],
                              activation=sweep.ACTIVATIONS[axes["activation"][i]])
        opcount.count_model(opcount.load_model(spec), profile, phase="training").as_array()
    per_model = (time.perf_counter() - t0) / sample.size
    print(f"  {n:,} configurations: kernel sweep {t_sweep:.3f} s ({n / t_sweep / 1e6:.2f} M configs/s; target < 2 s)"
          f"{'' if real else ' [stand-in costs]'}")
    print(f"  count_model per configuration: {per_model * 1e3:.2f} ms -> {per_model * n / 60:.0f} min for the "
          f"same sweep ({per_model * n / t_sweep:,.0f}x slower)")


def bench_zoo(repeat):
    print("== zoo: tosim score zoo:all, end to end in a fresh process (warm caches)")
    from tosim._pipeline import count_all, expand_inputs
    profile = hardware_profiles.load("cmos-generic")
    _, real = _costs(profile, ["fp32"])
    command = [sys.executable, "-m", "tosim", "score", "zoo:all", "--jobs", "1"]
    if not real:
        print("  skipped: the cmos-generic fp32 cost table is not cached (run `tosim score` once)")
    else:
        subprocess.run(command, check=True, capture_output=True)                       # warm-up
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import tosim.cmd_score, opcount, hardware_profiles"], check=True)
        t_import = time.perf_counter() - t0
        print(f"  end to end {min(times):.2f} s (best of {repeat}; target < 3 s), of which Python start + "
              f"imports {t_import:.2f} s")
    sources = expand_inputs(["zoo:all"])
    for jobs in (1, 2):
        t = best_of(lambda: count_all(sources, profile, "inference", 1, jobs=jobs), repeat)
        print(f"  reading + counting {len(sources)} zoo models with {jobs} process(es): {t:.2f} s")


def _li2022_cnn_torch(depth):
    import torch
    kernel = 3 if depth <= 6 else depth - 3
    layers, c = [], 3
    for _ in range(depth):
        layers += [torch.nn.Conv2d(c, 32, kernel), torch.nn.GELU()]
        c = 32
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 2)]
    return torch.nn.Sequential(*layers)


def _li2022_mlp_torch(width, act):
    import torch
    activation = {"gelu": torch.nn.GELU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}[act]
    layers, c = [], 4
    for _ in range(3):
        layers += [torch.nn.Linear(c, width), activation()]
        c = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(c, 1))


def _resnet18_torch():
    """torchvision's resnet18, written out (torchvision is not a dependency): the same layers as
    ``zoo:resnet18``."""
    import torch
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.main = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                                      nn.ReLU(), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(c_out))
            self.shortcut = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
                             if stride != 1 or c_in != c_out else nn.Identity())

        def forward(self, x):
            return torch.relu(self.main(x) + self.shortcut(x))

    blocks, c = [], 64
    for stage, planes in enumerate((64, 128, 256, 512)):
        for b in range(2):
            blocks.append(Block(c, planes, 2 if stage > 0 and b == 0 else 1))
            c = planes
    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.MaxPool2d(3, 2, 1), *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000))


#: zoo model -> (torch twin, per-sample input shape, batches)
TORCH_TWINS = {
    "li2022-mlp-18-gelu": (lambda: _li2022_mlp_torch(18, "gelu"), (4,), (1, 32)),
    "li2022-cnn-6": (lambda: _li2022_cnn_torch(6), (3, 256, 256), (1, 8)),
    "li2022-cnn-10": (lambda: _li2022_cnn_torch(10), (3, 256, 256), (1, 8)),
    "resnet18": (_resnet18_torch, (3, 224, 224), (1, 32)),
}


def bench_torch(repeat, models=None):
    """Counting (load + count, and count alone) against running the zoo model's torch twin under
    FlopCounterMode, for inference and training at each batch of ``TORCH_TWINS``. opcount's cost
    does not depend on the batch (counts are closed forms in it); torch's grows with it."""
    print("== counting vs torch FlopCounterMode (target >= 1000x)")
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        print("  skipped: torch is not installed")
        return
    profile = hardware_profiles.load("cmos-generic")
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    # opcount and torch are both timed as the best of ``runs``: at least 20, and for torch's slow rows
    # as many as fit in about 2 s but never fewer than ``repeat``
    runs = max(repeat, 20)
    rows = [(name, phase, batch) for name in models or TORCH_TWINS for phase in ("inference", "training")
            for batch in TORCH_TWINS[name][2]]
    # all counting first, then all torch runs: torch's OpenMP workers keep spinning for a while
    # after a run and would take the CPU from a counting timed right after it
    ours = {}
    for name, phase, batch in rows:
        model = opcount.load_model(f"zoo:{name}")

        def load_and_count():
            return opcount.count_model(opcount.load_model(f"zoo:{name}"), profile, phase=phase, batch=batch).flops

        def count_only():
            return opcount.count_model(model, profile, phase=phase, batch=batch).flops

        ours[name, phase, batch] = (load_and_count(), len(model.layers), best_of(load_and_count, runs),
                                    best_of(count_only, runs))
    print(f"  {'model':<20} {'phase':<9} {'batch':>5} {'layers':>6} {'torch ms':>9} {'load+count ms':>13} "
          f"{'ratio':>8} {'count ms':>9} {'ratio':>8}  FLOPs")
    for name, phase, batch in rows:
        make, shape, _ = TORCH_TWINS[name]
        net = make()
        net.train(phase == "training")
        x = torch.randn(batch, *shape)

        def flop_counter():
            with FlopCounterMode(display=False) as mode:
                if phase == "training":
                    net(x).sum().backward()
                else:
                    with torch.no_grad():
                        net(x)
            return mode.get_total_flops()

        our_flops, n_layers, t_ours, t_count = ours[name, phase, batch]
        t0 = time.perf_counter()
        torch_flops = flop_counter()
        first = time.perf_counter() - t0
        t_torch = best_of(flop_counter, min(runs, max(repeat, int(2.0 / first))))
        same = "equal" if torch_flops == our_flops else f"DIFFER {torch_flops} vs {our_flops}"
        print(f"  {name:<20} {phase:<9} {batch:>5} {n_layers:>6} {t_torch * 1e3:9.2f} {t_ours * 1e3:13.3f} "
              f"{t_torch / t_ours:7,.0f}x {t_count * 1e3:9.3f} {t_torch / t_count:7,.0f}x  {same} ({our_flops:.3g})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=10_000_000)
    ap.add_argument("--models", type=int, default=100_000)
    ap.add_argument("--configs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: kernel,sweep,zoo,torch")
    ap.add_argument("--torch-models", default="", help=f"comma-separated subset of {', '.join(TORCH_TWINS)}")
    args = ap.parse_args()
    unknown = sorted(set(filter(None, args.torch_models.split(","))) - set(TORCH_TWINS))
    if unknown:
        ap.error(f"--torch-models: no torch twin for {', '.join(unknown)} (known: {', '.join(TORCH_TWINS)})")
    skip = set(filter(None, args.skip.split(",")))
    import numba
    print(f"{os.cpu_count()} cores, numba {numba.__version__} with {numba.config.NUMBA_NUM_THREADS} threads")
    if "kernel" not in skip:
        bench_kernel(args.layers, args.models, args.repeat)
    if "sweep" not in skip:
        bench_sweep(args.configs, args.repeat)
    if "zoo" not in skip:
        bench_zoo(args.repeat)
    if "torch" not in skip:
        bench_torch(args.repeat, list(filter(None, args.torch_models.split(","))) or None)


if __name__ == "__main__":
    main()
