"""ResNet-50 and a transformer scored in fp32, bf16 with fp32 accumulation, and int8, side by side
(issue 18): what moving a model's arithmetic to bf16 MACs or to int8 saves in TOs.

    python bench/bench_quant.py [--models zoo:resnet50 zoo:bert-base] [--batch 1]

Variants (each a profile extending cmos-generic, written to a temporary folder):

* ``fp32``: every layer in fp32, separate multiply and add units (cmos-generic's IEEE units).
* ``bf16``: every layer in bf16, separate units.
* ``bf16 x bf16 + fp32 MAC``: every layer in bf16; the matrix products' multiply-accumulates on
  the fused bf16 x bf16 + fp32 MAC (``units.mac: {design: fused, accumulate: fp32}``,
  hwlib.units.fma), the rest (bias, activations, normalization) on bf16 units.
* ``int8 products``: the matrix products (conv, linear, matmul, attention projections) in int8 with int32 accumulation
  and a requantization per output (:func:`opcount.with_quantized_products`: 1 mul, 2 add, 2 cmp
  in int32), the other layers in fp32, as int8 deployments keep normalization, softmax and
  residual adds in floating point; the conversions between the two (a float tensor quantized
  for an integer layer, an integer output dequantized for a float one; rows ``/quantize_input``,
  ``/dequantize_output``, ``/core_dequantize``, ``/core_quantize``) are counted, in fp32: the
  ``conv`` column is their share of the variant's TOs.
* ``int8 x int8 + int32 MAC``: the same on a profile with ``units.mac``: the products'
  multiply-accumulates run on the integer MAC (hwlib.units.mac: the profile's Booth-Wallace
  multiplier with the int32 accumulator merged into its partial-product heap).
* ``int4 products`` and ``int4 x int4 + int32 MAC``: the same with int4 operands.

Integer ops are priced on the profile's integer units at the format's width (hwlib.units.intfmt):
an int8 multiply is cmos-generic's 8x8 signed Booth-Wallace multiplier, an int32 add its 32-bit
carry-lookahead adder. Prints the unit costs used, then per model the TOs of each variant, the
ratio to fp32, and the CPU and wall seconds of each scoring run (counting and pricing; the first
run of a variant may synthesize units the bundled tables do not hold, cached afterwards: run twice
for warm times).
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import hardware_profiles as hp  # noqa: E402
import opcount  # noqa: E402
import tosim  # noqa: E402

BASE = "extends: cmos-generic\nformats: [fp32, bf16, int8, int4, int32]\n"
MAC = ("extends: cmos-generic\nformats: [bf16, fp32, int8, int4, int32]\n"
       "units:\n  mac: {design: fused, accumulate: fp32}\n")

#: (label, profile key, how the model is read and changed)
VARIANTS = [
    ("fp32", "base", "fp32"),
    ("bf16", "base", "bf16"),
    ("bf16 x bf16 + fp32 MAC", "mac", "bf16"),
    ("int8 products, int32 acc", "base", "int8"),
    ("int8 x int8 + int32 MAC", "mac", "int8"),
    ("int4 products, int32 acc", "base", "int4"),
    ("int4 x int4 + int32 MAC", "mac", "int4"),
]


def _profiles(folder):
    paths = {}
    for key, text in (("base", BASE), ("mac", MAC)):
        path = os.path.join(folder, f"quant-{key}.yaml")
        with open(path, "w") as f:
            f.write(f"name: quant-{key}\n{text}")
        paths[key] = path
    return paths


def _model(source, how):
    if how in ("int8", "int4"):
        return opcount.with_quantized_products(opcount.load_model(source, format="fp32"), how)
    return opcount.load_model(source, format=how)


def unit_table(paths):
    """The unit costs behind the table: transistors of one op per format, and of the MAC."""
    from hwlib.cost import cost_table, fp_mac_table
    base = hp.load(paths["base"])
    rows = {(r.format, r.op): r.cost.transistors
            for r in cost_table(base, ["fp32", "bf16", "int8", "int4", "int32"], ["add", "mul", "cmp"])}
    (mac,) = fp_mac_table(hp.load(paths["mac"]), [("bf16", "fp32")])
    from hwlib.units.intfmt import int_mac_costs
    int8_mac, int4_mac = int_mac_costs(base, ["int8", "int4"])
    print("unit costs (transistors of one op, cmos-generic):")
    print(f"  {'format':<8}{'add':>10}{'mul':>10}{'cmp':>10}")
    for fmt in ("fp32", "bf16", "int32", "int8", "int4"):
        print(f"  {fmt:<8}" + "".join(f"{rows[(fmt, op)]:>10,.0f}" for op in ("add", "mul", "cmp")))
    print(f"  bf16 x bf16 + fp32 MAC: {mac.cost.transistors:,.0f} (fp32 mul + add: "
          f"{rows[('fp32', 'mul')] + rows[('fp32', 'add')]:,.0f}; int8 mul + int32 add: "
          f"{rows[('int8', 'mul')] + rows[('int32', 'add')]:,.0f})")
    print(f"  int8 x int8 + int32 MAC: {int8_mac.transistors:,.0f}; int4 x int4 + int32 MAC: "
          f"{int4_mac.transistors:,.0f} (int4 mul + int32 add: {rows[('int4', 'mul')] + rows[('int32', 'add')]:,.0f})")
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["zoo:resnet50", "zoo:bert-base"])
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        paths = _profiles(folder)
        unit_table(paths)
        profiles = {key: hp.load(path) for key, path in paths.items()}
        print(f"{'model':<14}{'variant':<27}{'TOs':>12}{'x fp32':>9}{'conv':>7}{'cpu s':>8}{'wall s':>8}")
        for source in args.models:
            base_tos = None
            for label, key, how in VARIANTS:
                wall, cpu = time.perf_counter(), time.process_time()
                result = tosim.score(_model(source, how), profiles[key], batch=args.batch, per_layer=True)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                if not result.ok:
                    print(f"{source:<14}{label:<27}  error: {result.error}")
                    continue
                base_tos = result.tos if base_tos is None else base_tos
                conversions = sum(layer.tos for layer in result.layers if layer.type in ("quantize", "dequantize"))
                print(f"{source[4:] if source.startswith('zoo:') else source:<14}{label:<27}{result.tos:>12.4g}"
                      f"{result.tos / base_tos:>9.3f}{conversions / result.tos:>7.1%}{cpu:>8.2f}{wall:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
