"""Scoring benchmarks, each measured side by side with its baseline in one run, CPU time beside
wall time (``time.process_time`` in this process; ``getrusage`` of the children for commands).

    python bench/bench_score.py [--layers 10000000] [--configs 1000000] [--repeat 5]
                                [--skip kernel,sweep,cli,torch]

1. kernel: :func:`bench_kernel.bench` (tosim's kernel vs numpy ``einsum`` + ``add.reduceat``
   and a plain read of the same memory).
2. sweep: a ~1-million-configuration MLP sweep (width x depth 1..64 x sigmoid/tanh/gelu,
   training) counted by :mod:`opcount.sweep` and priced by the kernel, against
   :func:`opcount.count_model` on a sample of the same configurations (extrapolated).
3. cli: the ``tosim`` command in fresh processes (warm caches, bytecode written), CPU time of
   the process: ``--help`` against a bare ``python -c pass``, ``score zoo:resnet18`` against
   ``count zoo:resnet18``, and ``score zoo:all`` warm (its counts read from tosim's count
   cache, :mod:`tosim._count_cache`) and with ``TOSIM_COUNT_CACHE=off`` (every model read and
   counted); every command run ``--repeat`` times, interleaved, median. Then where
   ``score zoo:all``'s CPU goes (imports, profile, reading and counting, pricing), timed inside
   fresh processes, with and without the count cache.
4. torch: counting zoo models (load + count, and count alone) against
   ``torch.utils.flop_counter.FlopCounterMode`` running their torch twins **on meta tensors**
   (shapes only, no arithmetic: the fastest way to get FLOPs from torch), whose FLOPs they must
   equal, for inference and training at batch 1 and a larger batch. fvcore and ptflops are
   timed too when they are installed (they are not dependencies; the output says so).

Costs come from the real cost table of the profile (bundled or cached); the sweep falls back to a
fixed table when it is not (said in the output).
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
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from bench_kernel import bench as bench_kernel, measure  # noqa: E402

import hardware_profiles  # noqa: E402
import opcount  # noqa: E402
from opcount.kernel import tos_from_counts  # noqa: E402


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


def bench_sweep(n_configs, repeat):
    from opcount import sweep
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
    wall, cpu = measure(run, repeat)
    rng = np.random.default_rng(1)
    sample = rng.choice(n, size=60, replace=False)

    def one_by_one():
        for i in sample:
            spec = sweep.mlp_spec(width=axes["width"][i], depth=axes["depth"][i],
                                  activation=sweep.ACTIVATIONS[axes["activation"][i]])
            opcount.count_model(opcount.load_model(spec), profile, phase="training").as_array()
    each_wall, each_cpu = (t / sample.size for t in measure(one_by_one, repeat))
    print(f"  {n:,} configurations, median of {repeat}: kernel sweep {wall:.3f} s wall, {cpu:.3f} s CPU "
          f"({n / wall / 1e6:.2f} M configs/s){'' if real else ' [stand-in costs]'}")
    print(f"  count_model per configuration (60 sampled, median of {repeat}): {each_wall * 1e3:.2f} ms wall, "
          f"{each_cpu * 1e3:.2f} ms CPU -> {each_cpu * n / 60:.0f} min CPU for the same sweep "
          f"({each_cpu * n / cpu:,.0f}x the sweep's CPU)")


def _child_cpu(argv, **env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                   env=_child_env(**env))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _child_env(**extra):
    # warm means compiled bytecode too: an installed package has it, so the children may write
    # it (PYTHONDONTWRITEBYTECODE, set in some sandboxes, would make every run compile tosim)
    env = dict(os.environ, PYTHONPATH=ROOT, **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


#: What ``tosim score zoo:all`` spends its CPU on, measured inside one fresh process.
_BREAKDOWN = r"""
import time, io, contextlib, sys
t = [time.process_time()]
import tosim.cli, tosim.api, tosim.cmd_score, hardware_profiles, opcount
from tosim import _pipeline
t.append(time.process_time())
profile = hardware_profiles.load("cmos-generic")
t.append(time.process_time())
sources = _pipeline.expand_inputs(["zoo:all"])
counted = _pipeline.count_all(sources, profile, "inference", 1, jobs=1)
t.append(time.process_time())
_pipeline.price(counted, profile)
rows = [_pipeline.finish_row(r, False) for r in counted]
t.append(time.process_time())
layers = sum(len(r["rows"]) for r in counted)
print(*(b - a for a, b in zip(t, t[1:])), layers, "numpy" in sys.modules)
"""


def _breakdown(repeat):
    """Median CPU of each part of ``score zoo:all`` over ``repeat`` fresh processes, with the
    count cache (warm) and without it (``TOSIM_COUNT_CACHE=off``), interleaved."""
    for cache in ("on", "off"):
        _child_cpu([sys.executable, "-c", _BREAKDOWN], TOSIM_COUNT_CACHE=cache)     # warm-up
    parts = {"on": [], "off": []}
    for _ in range(repeat):
        for cache in parts:
            done = subprocess.run([sys.executable, "-c", _BREAKDOWN], capture_output=True, text=True, cwd=ROOT,
                                  env=_child_env(TOSIM_COUNT_CACHE=cache), check=True)
            parts[cache].append(done.stdout.split())
    for cache, what in (("on", "from the count cache"), ("off", "without the count cache")):
        cols = list(zip(*parts[cache]))
        imports, profile, count, price = (statistics.median(float(x) for x in col) for col in cols[:4])
        print(f"  score zoo:all inside one process, {what} (median of {repeat}): imports {imports:.3f} s CPU, "
              f"profile {profile:.3f}, reading + counting {cols[4][0]} layers {count:.3f} "
              f"({count / int(cols[4][0]) * 1e6:.1f} us/layer), pricing + rows {price:.3f}; numpy imported: "
              f"{cols[5][0]}")


def bench_cli(repeat):
    print(f"== cli: fresh processes, warm caches; median of {repeat}, runs interleaved")
    tosim = [sys.executable, "-m", "tosim"]
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "tosim --help": tosim + ["--help"],
                "tosim count zoo:resnet18": tosim + ["count", "zoo:resnet18"],
                "tosim score zoo:resnet18": tosim + ["score", "zoo:resnet18"],
                "tosim score zoo:all": tosim + ["score", "zoo:all"],
                "  the same, count cache off": tosim + ["score", "zoo:all"]}
    env = {name: {"TOSIM_COUNT_CACHE": "off" if "cache off" in name else "on"} for name in commands}
    for name, argv in commands.items():
        _child_cpu(argv, **env[name])                      # warm-up: caches, bytecode
    runs = {name: [] for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            runs[name].append(_child_cpu(argv, **env[name]))
    med = {name: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for name, r in runs.items()}
    for name, (wall, cpu) in med.items():
        print(f"  {name:<26} {cpu:6.3f} s CPU  {wall:6.3f} s wall")
    cpu = {name: c for name, (_, c) in med.items()}
    print(f"  --help / python -c pass: {cpu['tosim --help'] / cpu['python -c pass']:.2f}x CPU (target <= 3)")
    print(f"  score / count zoo:resnet18: {cpu['tosim score zoo:resnet18'] / cpu['tosim count zoo:resnet18']:.2f}x "
          "CPU (target <= 1.5)")
    print(f"  score zoo:all: {cpu['tosim score zoo:all']:.3f} s CPU (target <= 0.5 s; warm: counts read from "
          f"tosim's count cache), {cpu['  the same, count cache off']:.3f} s with TOSIM_COUNT_CACHE=off; "
          f"{cpu['tosim score zoo:all'] - cpu['python -c pass']:.3f} s more than a bare Python")
    _breakdown(repeat)


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


def _peers():
    """fvcore and ptflops, where installed (neither is a dependency of tosim)."""
    found = {}
    for name in ("fvcore", "ptflops"):
        try:
            found[name] = __import__(name)
        except ImportError:
            pass
    return found


def bench_torch(repeat, models=None):
    """Counting (load + count, and count alone) against FlopCounterMode running the zoo model's
    torch twin on meta tensors, for inference and training at each batch of ``TORCH_TWINS``; every
    side run the same number of times, median wall and CPU."""
    print("== counting vs torch FlopCounterMode on meta tensors (shapes only, no arithmetic)")
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        print("  skipped: torch is not installed")
        return
    peers = _peers()
    print("  fvcore, ptflops: " + (", ".join(sorted(peers)) + " installed but not timed here (their API needs "
                                   "real tensors)" if peers else "not installed, not timed"))
    profile = hardware_profiles.load("cmos-generic")
    torch.manual_seed(0)
    runs = max(repeat, 10)
    rows = [(name, phase, batch) for name in models or TORCH_TWINS for phase in ("inference", "training")
            for batch in TORCH_TWINS[name][2]]
    print(f"  median of {runs} runs per side; ratio = FlopCounterMode time / ours (wall, CPU)")
    print(f"  {'model':<20} {'phase':<9} {'batch':>5} {'torch ms':>17} {'load+count ms':>17} {'ratio':>13} "
          f"{'count ms':>15} {'ratio':>13}  FLOPs")
    for name, phase, batch in rows:
        model = opcount.load_model(f"zoo:{name}")

        def load_and_count():
            return opcount.count_model(opcount.load_model(f"zoo:{name}"), profile, phase=phase, batch=batch).flops

        def count_only():
            return opcount.count_model(model, profile, phase=phase, batch=batch).flops

        make, shape, _ = TORCH_TWINS[name]
        with torch.device("meta"):
            net = make()
        net.train(phase == "training")
        x = torch.empty(batch, *shape, device="meta")

        def flop_counter():
            with FlopCounterMode(display=False) as mode:
                if phase == "training":
                    net(x).sum().backward()
                else:
                    with torch.no_grad():
                        net(x)
            return mode.get_total_flops()

        our_flops, torch_flops = load_and_count(), flop_counter()
        t_ours, t_count, t_torch = (measure(fn, runs) for fn in (load_and_count, count_only, flop_counter))
        same = "equal" if torch_flops == our_flops else f"DIFFER {torch_flops} vs {our_flops}"

        def pair(t):
            return f"{t[0] * 1e3:7.2f} /{t[1] * 1e3:7.2f}"

        def ratio(a, b):
            return f"{a[0] / b[0]:5.0f}x /{a[1] / b[1]:5.0f}x"
        print(f"  {name:<20} {phase:<9} {batch:>5} {pair(t_torch):>17} {pair(t_ours):>17} {ratio(t_torch, t_ours):>13} "
              f"{pair(t_count):>15} {ratio(t_torch, t_count):>13}  {same} ({our_flops:.3g})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=10_000_000)
    ap.add_argument("--models", type=int, default=100_000)
    ap.add_argument("--configs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: kernel,sweep,cli,torch")
    ap.add_argument("--torch-models", default="", help=f"comma-separated subset of {', '.join(TORCH_TWINS)}")
    args = ap.parse_args()
    unknown = sorted(set(filter(None, args.torch_models.split(","))) - set(TORCH_TWINS))
    if unknown:
        ap.error(f"--torch-models: no torch twin for {', '.join(unknown)} (known: {', '.join(TORCH_TWINS)})")
    skip = set(filter(None, args.skip.split(",")))
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, numpy {np.__version__}")
    if "kernel" not in skip:
        bench_kernel(args.layers, args.models, args.repeat)
    if "sweep" not in skip:
        bench_sweep(args.configs, args.repeat)
    if "cli" not in skip:
        bench_cli(args.repeat)
    if "torch" not in skip:
        bench_torch(args.repeat, list(filter(None, args.torch_models.split(","))) or None)


if __name__ == "__main__":
    main()
