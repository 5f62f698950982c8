"""Refit the built-in profile ``getzner2023-cpu`` (device ``xeon-gold-5120``) from the layer data.

    python bench/fit_getzner2023.py DATA_DIR OUT.yaml [--train-fraction 0.8] [--seed 0]

DATA_DIR: the Getzner et al. (2023) per-layer sets (see bench/getzner2023_layers.py). The rows are
converted to a measurement CSV in a temporary folder and fitted with

    tosim fit measurements.csv --model --device xeon-gold-5120 --static-power W \\
        --channel-block 16 --pack-rows 4,16 --weight-cache 19.25e6 --narrow-window 2,2 \\
        --fresh-threshold 33554432 --train-fraction 0.8 --write-profile OUT.yaml

where W is the median RAPL package power of the runs (their ``cpu_power`` column): it sets the time
scale of the roofline (the energies alone fix joules, not seconds). The written profile is then
given the description, citation and fp32 format of the shipped one
(``hardware_profiles/builtin/getzner2023-cpu.yaml``).
"""
import argparse
import csv
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import getzner2023_layers  # noqa: E402

#: oneDNN's fp32 convolutions on AVX-512 (the Xeon Gold 5120) block channels by 16 (512-bit vectors).
CHANNEL_BLOCK = 16
#: Linear calls with 4 <= batch < 16 pack the GEMM's weight panel on every call (measured: batch 4 costs
#: 1.8x batch 2 per weight byte; from batch ~16 the multiply-adds hide the copy).
PACK_ROWS = "4,16"
#: The Xeon Gold 5120's last-level cache (14 x 1.375 MB): larger weights stream from DRAM.
WEIGHT_CACHE_BYTES = 19.25e6
#: Max-pools with 2-wide windows at stride >= 2 (VGG's pools) get their own per-output price: an empirical
#: price class of PyTorch's scalar max-pool loop (measured ~3 ns more per output; cause not established).
NARROW_WINDOW = "2,2"
#: Outputs (and max-pool indices) above glibc's mmap threshold cap (32 MiB on 64-bit) are new pages on every call
#: (measured: ReLU's fresh-output series steps by +1.35 ns per element between 28 and 38 MiB of output);
#: the runs that reused their outputs are marked in the converted CSV (bench/getzner2023_layers.py).
FRESH_THRESHOLD_BYTES = 2 ** 25

CITATION = ("Getzner, Charpentier, Guennemann: Accuracy is not the only Metric that matters: Estimating the "
            "Energy Consumption of Deep Learning Models, ICLR 2023 workshop Tackling Climate Change with "
            "Machine Learning, arXiv 2304.00897; data: github.com/JohannesGetzner/dl-energy-estimator "
            "estimator/data (5,414 single-layer forward passes on 2 cores of an Intel Xeon Gold 5120, RAPL "
            "via CodeCarbon)")


def median_power(data_dir):
    powers = []
    for kind in getzner2023_layers.FILES:
        with open(os.path.join(data_dir, f"{kind}.csv"), newline="", encoding="utf-8") as fh:
            powers += [float(r["cpu_power"]) for r in csv.DictReader(fh) if float(r["cpu_power"]) > 0]
    return statistics.median(powers)


def main(argv=None):
    import yaml
    from tosim.cli import main as tosim_main
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", metavar="DATA_DIR")
    parser.add_argument("out", metavar="OUT.yaml")
    parser.add_argument("--train-fraction", default="0.8")
    parser.add_argument("--seed", default="0")
    args = parser.parse_args(argv)
    power = median_power(args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        getzner2023_layers.convert(args.data_dir, tmp)
        written = os.path.join(tmp, "getzner2023-cpu.yaml")
        status = tosim_main(["fit", os.path.join(tmp, "measurements.csv"), "--model", "--device",
                             getzner2023_layers.DEVICE, "--static-power", f"{power:.6g}",
                             "--channel-block", str(CHANNEL_BLOCK), "--pack-rows", PACK_ROWS,
                             "--weight-cache", f"{WEIGHT_CACHE_BYTES:g}", "--narrow-window", NARROW_WINDOW,
                             "--fresh-threshold", str(FRESH_THRESHOLD_BYTES), "--train-fraction",
                             args.train_fraction, "--seed", args.seed, "--write-profile", written])
        if status != 0:
            return status
        with open(written, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    device = doc["devices"][getzner2023_layers.DEVICE]
    device["source"] = CITATION + "; " + device["source"].replace("measurements.csv", "the converted CSV")
    out = {"schema": 1, "name": "getzner2023-cpu",
           "description": ("cmos-generic's circuits and recipes, fp32 only, with a device energy model "
                           "of an Intel Xeon Gold 5120 (2 cores, PyTorch CPU inference) fitted on "
                           "Getzner et al. (2023)'s single-layer benchmarks"),
           "extends": "cmos-generic", "formats": ["fp32"], "default_format": "fp32",
           "devices": doc["devices"]}
    text = ("# getzner2023-cpu: written by bench/fit_getzner2023.py (tosim fit --model); do not edit by hand,\n"
            "# refit with: python bench/fit_getzner2023.py DATA_DIR hardware_profiles/builtin/getzner2023-cpu.yaml\n"
            + yaml.safe_dump(out, sort_keys=False, width=100))
    from tosim._io import write_atomic
    write_atomic(args.out, text)
    print(f"wrote {args.out} (static power {power:.4g} W, median RAPL package power of the runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
