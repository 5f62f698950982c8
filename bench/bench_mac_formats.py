"""Model TOs per number format and MAC unit, side by side (issue 18): fp32 with separate multiply
and add units, fp32 with an FMA, bf16 products accumulated in fp32, fp8 e4m3 products accumulated
in fp32, fp8 e4m3 with separate fp8 units, and int8 and int4 matrix products on separate integer
units with int32 accumulation; and first, the MAC units themselves per format:
int4 x int4 + int32 and int8 x int8 + int32 (hwlib.units.mac), fp8 e4m3 / e5m2, bf16 and fp16
products accumulated in fp32 and the fp32 FMA (hwlib.units.fma), beside fp32's separate multiply
and add.

    python bench/bench_mac_formats.py [--models zoo:resnet50 zoo:bert-base] [--phase inference]
    python bench/bench_mac_formats.py --units-only        # the per-MAC table alone

Each variant is a profile extending cmos-generic (written to a temporary folder): its formats,
default format and ``units.mac``. The first run synthesizes the FP8 and MAC units the bundled
tables do not hold (about a minute per MAC unit; cached afterwards). Prints TOs per MAC unit
(transistors, gates, logic depth, the ratio to the fp32 FMA), then TOs per model and variant, the
ratio to the fp32 baseline, and the CPU and wall seconds of each scoring run (the cache warm after
the first). The int8 and int4 variants quantize the matrix products only
(:func:`opcount.with_quantized_products`, as bench/bench_quant.py does: int32 accumulation, a
requantization per output, the other layers in fp32, the conversions between them counted) and
price them on separate integer multipliers and int32 adders (bench/bench_quant.py prices them on
the integer MAC of a profile with ``units.mac`` too; the line printed says so).
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
    ("int8 products, int32 acc", "formats: [fp32, int8, int32]\n"),
    ("int4 products, int32 acc", "formats: [fp32, int4, int32]\n"),
]
#: The integer variants' matrix products in that format (opcount.with_quantized_products: int32
#: accumulation and a requantization per output), the other layers in fp32.
QUANTIZED = {"int8 products, int32 acc": "int8", "int4 products, int32 acc": "int4"}


#: (label, kind, product format or integer width, accumulator format)
MAC_UNITS = [
    ("int4 x int4 + int32", "int", 4, "int32"),
    ("int8 x int8 + int32", "int", 8, "int32"),
    ("e4m3 x e4m3 + fp32", "fp", "fp8_e4m3", "fp32"),
    ("e5m2 x e5m2 + fp32", "fp", "fp8_e5m2", "fp32"),
    ("bf16 x bf16 + fp32", "fp", "bf16", "fp32"),
    ("fp16 x fp16 + fp32", "fp", "fp16", "fp32"),
    ("fp32 x fp32 + fp32 (FMA)", "fp", "fp32", "fp32"),
]


def mac_unit_table(profile_name="cmos-generic"):
    """Print the MAC units per format under the profile: transistors (the TOs of one MAC),
    gates, logic depth, the ratio to the fp32 FMA; and fp32's separate mul + add."""
    import hardware_profiles as hp
    from hwlib import cost
    from hwlib.units.mac import mac_unit

    profile = hp.load(profile_name)
    mul = profile.units["mul"]
    wall, cpu = time.perf_counter(), time.process_time()
    rows = []
    for label, kind, operand, acc in MAC_UNITS:
        if kind == "int":
            spec = mac_unit(mul["design"], operand, 32, signed=True, options=mul)
            [c] = cost._price_all(cost._profile_pricer(profile, None), [spec], None)
        else:
            [row] = cost.fp_mac_table(profile, [(operand, acc)])
            c = row.cost
        rows.append((label, c))
    table = {(r.op, r.format): r.cost for r in cost.cost_table(profile, ["fp32"], ["mul", "add"])}
    separate = (table[("mul", "fp32")].transistors + table[("add", "fp32")].transistors,
                table[("mul", "fp32")].gate_count + table[("add", "fp32")].gate_count,
                table[("mul", "fp32")].depth + table[("add", "fp32")].depth)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    fma = rows[-1][1].transistors
    print(f"# one MAC per format under {profile.name} ({profile.technology['counting']} counting): multiplier "
          f"{mul['design']}, final adder {mul.get('final_adder', 'ripple_carry')}, FP adder "
          f"{profile.units['add']['design']}; TOs of a MAC = its transistors")
    width = max(len(label) for label, *_ in MAC_UNITS) + 2
    print(f"{'MAC unit':<{width}}{'transistors':>12}{'gates':>8}{'depth':>7}{'vs fp32 FMA':>13}")
    for label, c in rows:
        print(f"{label:<{width}}{c.transistors:>12,}{c.gate_count:>8,}{c.depth:>7}{c.transistors / fma:>12.3f}x")
    print(f"{'fp32 mul + fp32 add':<{width}}{separate[0]:>12,}{separate[1]:>8,}{separate[2]:>7}"
          f"{separate[0] / fma:>12.3f}x  (two units, depth in series)")
    print(f"(priced in {cpu:.2f} s CPU, {wall:.2f} s wall; uncached units are synthesized first)\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["zoo:resnet50", "zoo:bert-base"])
    parser.add_argument("--phase", default="inference")
    parser.add_argument("--units-only", action="store_true", help="print the per-MAC table only")
    args = parser.parse_args(argv)
    mac_unit_table()
    if args.units_only:
        return 0
    import hardware_profiles as hp
    variants = [v for v in VARIANTS if not v[0].startswith("int") or "int8" in hp.FORMATS]
    if len(variants) < len(VARIANTS):
        print("(int8 / int4 models are not scored: this build's hardware_profiles has no integer formats)\n")
    else:
        print("(int8 / int4 rows: the matrix products quantized (opcount.with_quantized_products), the rest in "
              "fp32, the conversions between them counted; on separate integer multipliers and int32 adders: "
              "bench/bench_quant.py prices them on the int MAC units above too)\n")
    with tempfile.TemporaryDirectory() as folder:
        profiles = []
        for i, (label, body) in enumerate(variants):
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
            if label in QUANTIZED:
                import opcount
                models = [opcount.with_quantized_products(opcount.load_model(m, format="fp32"), QUANTIZED[label])
                          for m in args.models]
                scores = [tosim.score(m, profile, phase=args.phase) for m in models]
            else:
                scores = tosim.score_many(args.models, profile, phase=args.phase)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            results[label] = (scores, cpu, wall)
    base = results[VARIANTS[0][0]][0]
    width = max(len(label) for label, _ in variants)
    print(f"{'variant':<{width}}  " + "  ".join(f"{m:>24}" for m in args.models) + "   CPU s  wall s")
    for label, _ in variants:
        scores, cpu, wall = results[label]
        cells = []
        for r, b in zip(scores, base):
            cells.append(f"{'error':>24}" if not r.ok else f"{r.tos:>12.4g} ({r.tos / b.tos:5.3f}x)")
        print(f"{label:<{width}}  " + "  ".join(f"{c:>24}" for c in cells) + f"  {cpu:6.2f}  {wall:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
