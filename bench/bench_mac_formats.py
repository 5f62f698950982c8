"""Model TOs per number format and MAC unit, side by side (issue 18): fp32 with separate multiply
and add units, fp32 with an FMA, bf16 products accumulated in fp32, fp8 e4m3 products accumulated
in fp32, and fp8 e4m3 with separate fp8 units.

    python bench/bench_mac_formats.py [--models zoo:resnet50 zoo:bert-base] [--phase inference]

Each variant is a profile extending cmos-generic (written to a temporary folder): its formats,
default format and ``units.mac``. The first run synthesizes the FP8 and MAC units the bundled
tables do not hold (about a minute per MAC unit; cached afterwards). Prints TOs per model and
variant, the ratio to the fp32 baseline, and the CPU and wall seconds of each scoring run (the
cache warm after the first).
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tosim  # noqa: E402

VARIANTS = [
    ("fp32, mul + add", None),
    ("fp32, FMA", "units:\n  mac: {design: fused}\n"),
    ("bf16 x bf16 + fp32", "formats: [bf16, fp32]\ndefault_format: bf16\nunits:\n  mac: {design: fused, accumulate: fp32}\n"),
    ("e4m3 x e4m3 + fp32", "formats: [fp8_e4m3, fp32]\ndefault_format: fp8_e4m3\n"
                           "units:\n  mac: {design: fused, accumulate: fp32}\n"),
    ("e4m3, mul + add", "formats: [fp8_e4m3, fp32]\ndefault_format: fp8_e4m3\n"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["zoo:resnet50", "zoo:bert-base"])
    parser.add_argument("--phase", default="inference")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        profiles = []
        for i, (label, body) in enumerate(VARIANTS):
            if body is None:
                profiles.append((label, "cmos-generic"))
                continue
            path = os.path.join(folder, f"variant{i}.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(f"name: variant{i}\nextends: cmos-generic\n{body}")
            profiles.append((label, path))
        results = {}
        for label, profile in profiles:
            wall, cpu = time.perf_counter(), time.process_time()
            scores = tosim.score_many(args.models, profile, phase=args.phase)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            results[label] = (scores, cpu, wall)
    base = results[VARIANTS[0][0]][0]
    width = max(len(label) for label, _ in VARIANTS)
    print(f"{'variant':<{width}}  " + "  ".join(f"{m:>24}" for m in args.models) + "   CPU s  wall s")
    for label, _ in VARIANTS:
        scores, cpu, wall = results[label]
        cells = []
        for r, b in zip(scores, base):
            cells.append(f"{'error':>24}" if r.error else f"{r.tos:>12.4g} ({r.tos / b.tos:5.3f}x)")
        print(f"{label:<{width}}  " + "  ".join(f"{c:>24}" for c in cells) + f"  {cpu:6.2f}  {wall:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
