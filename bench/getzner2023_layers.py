"""Turn the Getzner et al. (2023) layer benchmarks into tosim's measurement CSV.

    python bench/getzner2023_layers.py DATA_DIR OUT_DIR [--energy cpu|cpu+ram]

DATA_DIR holds the cleaned per-layer sets of JohannesGetzner/dl-energy-estimator
(``estimator/data/``: conv2d.csv, linear.csv, maxpool2d.csv, relu.csv, sigmoid.csv, tanh.csv,
softmax.csv; ``../shared/data/getzner2023-cpu/`` in this project's workspace). OUT_DIR receives
one single-layer model spec per distinct configuration (``specs/*.json``) and
``measurements.csv``: one row per measured configuration with the spec, the joules of ONE forward
pass of the batch (``cpu_energy`` kWh x 3.6e6, already per pass in those files), ``phase``
inference, ``batch`` and ``device`` xeon-gold-5120, ``fresh_outputs`` (below), plus the
``layer_type``, ``series`` (relu.csv's ``test`` column: ``test0``, ``test1``; empty elsewhere) and
``source`` columns (ignored by the fit; used by the bench's reports).

``fresh_outputs`` is the share of a run's layer calls that got fresh output memory (1) rather
than reusing it (0): the energy model charges outputs above glibc's 32 MiB mmap threshold cap a
page-fault price on every call only when fresh. The files do not say how each series was run;
the evidence is the step itself (wall time per output element; the analyst's notes of
2026-11-29, notes/energy-findings.md, 19:55 and 22:44-23:00 UTC):

* relu.csv has two series, told apart by its ``test`` column and by nothing in the configuration:
  ``test`` = 1 jumps from 0.35-0.52 to 1.80-1.97 ns per element between 28 and 38 MiB of output
  (glibc's cap: a fresh mapping, page-faulted and zeroed, on every call) and stays there at every
  larger size: 1; ``test`` = 0 shows no step (0.59-0.62 ns per element from 34 MiB to 1 GiB):
  reused;
* sigmoid.csv, tanh.csv and softmax.csv show no step at 32 MiB either: reused;
* the reused series' "climb" above ~1.1 GiB is the same page-fault price paid by some of the
  three repetitions each row averages (``rep_no`` 2.0: the mean of repetitions 1-3, each ~30 s):
  the run reused about 3.3 GiB of outputs in all, so repetition j reused its output only while
  j x output <= ~3.3 GiB. A reused row's share is therefore (3 - min(3, floor(3.3 GiB /
  output))) / 3: 0 up to 1.1 GiB, 1/3 to 1.65 GiB, 2/3 to 3.3 GiB, 1 above (the time of every
  such row >= 1 GiB matches this mixture of the all-reuse and all-fresh prices within 1.3-1.7 %
  median, with the number of fresh repetitions read from its time equal to the one read from its
  ``forward_passes``; this rule by size alone is within one repetition of it);
* conv2d.csv and maxpool2d.csv fit best with the price at 32 MiB (a threshold swept from 8 MiB
  to 2 GiB) and linear.csv has no output above 32 MiB: 1, the PyTorch eager default.

Getzner et al., "Accuracy is not the only Metric that matters: Estimating the Energy Consumption
of Deep Learning Models", ICLR 2023 workshop Tackling Climate Change with ML, arXiv 2304.00897.
"""
import argparse
import csv
import json
import os
import sys

DEVICE = "xeon-gold-5120"
JOULES_PER_KWH = 3.6e6
FILES = ("conv2d", "linear", "maxpool2d", "relu", "sigmoid", "tanh", "softmax")
#: Files whose runs show no fresh-output step at 32 MiB (see the module docstring).
REUSED_FILES = ("sigmoid", "tanh", "softmax")
#: Output bytes the reused series' harness kept for reuse over the three averaged repetitions.
REUSE_POOL_BYTES = 3.3 * 2 ** 30
#: Repetitions averaged per row.
REPETITIONS = 3


def fresh_share(kind, row):
    """The share of a measured run's calls that got fresh output memory (module docstring)."""
    if kind == "relu":
        test = float(row["test"])
        if test not in (0.0, 1.0):
            raise ValueError(f"relu test must be 0 or 1, not {row['test']!r}")
        if test == 1.0:
            return 1.0
    elif kind not in REUSED_FILES:
        return 1.0
    out_bytes = 4.0 * float(row["batch_size"]) * float(row["input_size"])
    reusing = min(REPETITIONS, int(REUSE_POOL_BYTES // out_bytes))
    return (REPETITIONS - reusing) / REPETITIONS


def _int(value):
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"not an integer: {value!r}")
    return int(number)


def spec_of(kind, row):
    """(file stem, model spec) of one measured configuration (batch excluded: a CSV column)."""
    if kind == "conv2d":
        c, o, k, s, p, h = (_int(row[x]) for x in ("in_channels", "out_channels", "kernel_size", "stride",
                                                    "padding", "image_size"))
        stem = f"conv2d-c{c}-o{o}-k{k}-s{s}-p{p}-h{h}"
        layer = {"type": "conv2d", "out": o, "kernel": k, "stride": s, "padding": p}
        shape = [c, h, h]
    elif kind == "linear":
        i, o = _int(row["input_size"]), _int(row["output_size"])
        stem, layer, shape = f"linear-i{i}-o{o}", {"type": "linear", "out": o}, [i]
    elif kind == "maxpool2d":
        c, k, s, p, h = (_int(row[x]) for x in ("in_channels", "kernel_size", "stride", "padding", "image_size"))
        stem = f"maxpool2d-c{c}-k{k}-s{s}-p{p}-h{h}"
        layer = {"type": "maxpool2d", "kernel": k, "stride": s, "padding": p}
        shape = [c, h, h]
    else:
        n = _int(row["input_size"])
        stem, layer, shape = f"{kind}-n{n}", {"type": kind}, [n]
    return stem, {"name": stem, "input": shape, "format": "fp32", "layers": [layer]}


def convert(data_dir, out_dir, energy="cpu"):
    """Write OUT_DIR/specs/*.json and OUT_DIR/measurements.csv; returns the number of rows."""
    specs_dir = os.path.join(out_dir, "specs")
    os.makedirs(specs_dir, exist_ok=True)
    rows, written = [], set()
    for kind in FILES:
        path = os.path.join(data_dir, f"{kind}.csv")
        with open(path, newline="", encoding="utf-8") as fh:
            for number, row in enumerate(csv.DictReader(fh), start=2):
                stem, spec = spec_of(kind, row)
                if stem not in written:
                    with open(os.path.join(specs_dir, stem + ".json"), "w", encoding="utf-8") as f:
                        json.dump(spec, f)
                    written.add(stem)
                kwh = float(row["cpu_energy"]) + (float(row["ram_energy"]) if energy == "cpu+ram" else 0.0)
                rows.append({"model": f"specs/{stem}.json", "energy_j": repr(kwh * JOULES_PER_KWH),
                             "phase": "inference", "batch": _int(row["batch_size"]), "device": DEVICE,
                             "fresh_outputs": f"{fresh_share(kind, row):.6g}", "layer_type": kind,
                             "series": f"test{int(float(row['test']))}" if kind == "relu" else "",
                             "source": f"{kind}.csv:{number}"})
    with open(os.path.join(out_dir, "measurements.csv"), "w", newline="", encoding="utf-8") as fh:
        fh.write(f"# Getzner et al. 2023 layer benchmarks (arXiv 2304.00897), {energy} energy of one forward "
                 f"pass, converted by bench/getzner2023_layers.py\n")
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", metavar="DATA_DIR")
    parser.add_argument("out_dir", metavar="OUT_DIR")
    parser.add_argument("--energy", choices=["cpu", "cpu+ram"], default="cpu",
                        help="fitted energy: RAPL package (cpu, default) or plus CodeCarbon's RAM estimate")
    args = parser.parse_args(argv)
    missing = [f for f in FILES if not os.path.isfile(os.path.join(args.data_dir, f"{f}.csv"))]
    if missing:
        print(f"getzner2023_layers: error: {args.data_dir}: no {missing[0]}.csv", file=sys.stderr)
        return 2
    n = convert(args.data_dir, args.out_dir, args.energy)
    print(f"wrote {n} rows to {os.path.join(args.out_dir, 'measurements.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
