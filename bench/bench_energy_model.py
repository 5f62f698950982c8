"""The device energy model against TOs, FLOPs and MACs on real layer measurements, side by side.

    python bench/bench_energy_model.py DATA_DIR [--seed 0]

DATA_DIR: Getzner et al. (2023)'s per-layer sets (bench/getzner2023_layers.py). Everything is fitted
on one seeded 60/40 split of the single-layer rows (relative loss for all five, the fit's default on
data spanning orders of magnitude) and reported on the held-out 40 %:

1. per layer type and jointly: li2022's precision (avg, min) and R^2 of the energy model
   (``tosim fit --model --channel-block 16 --pack-rows 4,16 --weight-cache 19.25e6 --narrow-window 2,2``,
   with its default fresh-output price above 32 MiB and without the exposed output bytes), of the
   previous version (``before``, commit 5f8cde4: no fresh-output price, the exposed output bytes of
   convolutions, ``--exposed-output``) and of degree-1
   polynomials of TOs, FLOPs and MACs (li2022 eq. 4);
2. leave one layer type out: each type's held-out rows predicted by fits on the other types only
   (the model's fits reuse the balance and spill capacity searched in 1, to keep the bench short);
3. composed whole models: AlexNet and VGG-11/13/16 (torchvision's layer lists, 224x224 inputs) at
   batch 1..256, each layer replaced by the held-out measured configuration of its type nearest to
   it (log-distance over batch and shape); measured = the sum of those layers' measured joules,
   predicted = the sum of each method's per-layer predictions. This is an analogue of the held-out
   whole-model test built only from layer data; it checks that per-layer errors do not pile up
   when layers of different types are summed at the mix of a real network, not that the isolated
   layers behave like layers inside a network. Its own noise is large: one random configuration
   stands for each real layer, with the configuration's own scatter (about +-20 % for conv2d).
   3b, the same composed at the real layers' sizes: each layer is replaced by its 5 nearest held-out
   configurations (kernel size and stride counted 4x in the distance), each scaled by the real layer's size over its own (MACs of conv2d and linear,
   window elements of max-pooling, elements of activations); measured and predicted are the sums
   of the scaled joules. It weighs the model's bias near each real layer by the network's energy
   mix and averages the configurations' scatter (scaling by size is exact for a model linear in
   size and puts no model of its own in the measured side's ratios).

The conv2d and maxpool2d rows most like the architectures' layers are reported on their own in 1
(conv2d 3x3-5x5 stride 1 with 32+ channels in and out; maxpool2d 2x2-3x3 stride 2), the maxpool2d
rows with 2x2 windows at stride 2 (VGG's pools) and at stride 3 or more, and ReLU's two series
(fresh outputs per call, ``test`` = 1, and reused outputs, ``test`` = 0: bench/getzner2023_layers.py).
3b also prints the model's and ``before``'s error per batch size ((pred - meas) / meas %, per
architecture).

CPU time is printed beside wall time.
"""
import argparse
import csv
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import getzner2023_layers  # noqa: E402

# torchvision layer lists: conv (out, kernel, stride, padding), "M" max-pool (kernel, stride)
_VGG = {"vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
        "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
        "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]}


def architecture(name):
    """[(type, config dict)] of one forward pass at 224x224 (classifier linears and their ReLUs)."""
    layers = []
    if name == "alexnet":
        c, h = 3, 224
        for out, k, s, p, pool in ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
                                   (256, 3, 1, 1, False), (256, 3, 1, 1, True)):
            ho = (h + 2 * p - k) // s + 1
            layers.append(("conv2d", dict(c=c, o=out, k=k, s=s, p=p, h=h)))
            layers.append(("relu", dict(n=out * ho * ho)))
            c, h = out, ho
            if pool:
                layers.append(("maxpool2d", dict(c=c, k=3, s=2, p=0, h=h)))
                h = (h - 3) // 2 + 1
        dims = [256 * 6 * 6, 4096, 4096, 1000]
    else:
        c, h = 3, 224
        for item in _VGG[name]:
            if item == "M":
                layers.append(("maxpool2d", dict(c=c, k=2, s=2, p=0, h=h)))
                h //= 2
            else:
                layers.append(("conv2d", dict(c=c, o=item, k=3, s=1, p=1, h=h)))
                layers.append(("relu", dict(n=item * h * h)))
                c = item
        dims = [512 * 7 * 7, 4096, 4096, 1000]
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(("linear", dict(i=a, o=b)))
        if i < 2:
            layers.append(("relu", dict(n=b)))
    return layers


def _config(model):
    """(type, config dict) of a single-layer spec model."""
    layer = model.layers[0]
    a = layer.attrs
    if layer.type == "conv2d":
        return "conv2d", dict(c=a["in"], o=a["out"], k=a["kernel"][0], s=a["stride"][0], p=a["padding"][0],
                              h=model.input_shape[1])
    if layer.type == "maxpool2d":
        return "maxpool2d", dict(c=model.input_shape[0], k=a["kernel"][0], s=a["stride"][0], p=a["padding"][0],
                                 h=model.input_shape[1])
    if layer.type == "linear":
        return "linear", dict(i=a["in"], o=a["out"])
    return layer.type, dict(n=int(np.prod(model.input_shape)))


def _size(kind, c):
    """The size a layer's energy scales with: MACs (conv2d, linear), window elements (maxpool2d),
    elements (activations), of the whole batch."""
    if kind == "conv2d":
        ho = (c["h"] + 2 * c["p"] - c["k"]) // c["s"] + 1
        return c["b"] * c["o"] * ho * ho * c["c"] * c["k"] ** 2
    if kind == "maxpool2d":
        ho = (c["h"] + 2 * c["p"] - c["k"]) // c["s"] + 1
        return c["b"] * c["c"] * ho * ho * c["k"] ** 2
    if kind == "linear":
        return c["b"] * c["i"] * c["o"]
    return c["b"] * c["n"]


def _like(kind, c):
    """Whether a measured configuration resembles the architectures' layers of its type."""
    if kind == "conv2d":
        return 3 <= c["k"] <= 5 and c["s"] == 1 and c["c"] >= 32 and c["o"] >= 32
    if kind == "maxpool2d":
        return c["k"] <= 3 and c["s"] == 2
    return False


#: The composed checks' batch sizes.
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _distance(a, b, weights=None):
    return sum((weights or {}).get(k, 1.0) * (np.log(a[k] + 1.0) - np.log(b[k] + 1.0)) ** 2 for k in a)


#: 3b's distance counts kernel size and stride 4x: they set a convolution's or pooling's
#: efficiency (a 1x1 stride-2 convolution costs 2x more per MAC than a 3x3 stride-1 one), so a
#: neighbour scaled to a real layer's size should share them first.
_KERNEL_FIRST = {"k": 4.0, "s": 4.0}


def _print_arch(arch, methods, rows, measured, summary):
    """One composed architecture's line: each method's precision % avg (min) over the batches;
    the precisions are added to ``summary`` for :func:`_print_all`."""
    cells = []
    for m in methods:
        p = 100.0 * (1.0 - np.abs(np.asarray(rows[m]) - measured) / measured)
        summary[m] += list(p)
        cells.append(f"{p.mean():7.2f} ({p.min():8.1f})")
    print(f"{arch:<8} " + "  ".join(f"{c:>18}" for c in cells) + f"   {measured[0]:.3g} .. {measured[-1]:.3g}")


def _print_all(methods, summary):
    print(f"{'all':<8} " + "  ".join(f"{np.mean(summary[m]):7.2f} ({np.min(summary[m]):8.1f})" for m in methods))


def precision(pred, meas):
    p = 100.0 * (1.0 - np.abs(pred - meas) / meas)
    return float(p.mean()), float(p.min())


def r2(pred, meas):
    return 1.0 - float(np.sum((pred - meas) ** 2) / np.sum((meas - meas.mean()) ** 2))


def main(argv=None):
    import calibrate
    import hardware_profiles
    import opcount
    from tosim._device_model import TableCache, model_tos_per_op
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", metavar="DATA_DIR")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--channel-block", type=int, default=16,
                        help="the model's channel block (default 16, as bench/fit_getzner2023.py; 1: none)")
    args = parser.parse_args(argv)
    wall, cpu = time.perf_counter(), time.process_time()
    profile = hardware_profiles.load("cmos-generic")
    with tempfile.TemporaryDirectory() as tmp:
        getzner2023_layers.convert(args.data_dir, tmp)
        data = calibrate.read_measurements(os.path.join(tmp, "measurements.csv"), zoo_names=opcount.zoo_names())
        with open(os.path.join(tmp, "measurements.csv"), encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        header = next(csv.reader([lines[1]]))
        series = np.asarray([dict(zip(header, next(csv.reader([lines[r.line - 1]]))))["series"] for r in data.rows])
        cache = TableCache(profile)
        tables, types, configs, macs = [], [], [], []
        for row in data.rows:
            table, kinds = cache.run(row)
            tables.append(table)
            types.append(kinds[0])
            configs.append(_config(cache.models[row.model])[1] | {"b": row.batch})
            macs.append(cache.macs_of(row))
    y = np.asarray([r.energy_j for r in data.rows])
    types = np.asarray(types)
    table = calibrate.LayerTable.concat(tables)
    tos_per_op = model_tos_per_op(profile, table.op_keys)
    tos = table.per_run(table.ops @ np.asarray([tos_per_op[k] for k in table.op_keys]))
    feats = {"tos": tos, "flops": 2 * np.asarray(macs), "macs": np.asarray(macs)}
    train, val = calibrate.split_indices(len(y), 0.6, args.seed)
    print(f"{len(y)} single-layer runs ({len(train)} train / {len(val)} validation, seed {args.seed}); "
          f"setup {time.perf_counter() - wall:.1f} s wall")

    # the model, and the previous version (5f8cde4: no fresh-output price, exposed output bytes); the
    # constants are bench/fit_getzner2023.py's
    before = dict(channel_block=args.channel_block, pack_rows=(4, 16), weight_cache_bytes=19.25e6,
                  narrow_window=(2, 2), fresh_threshold_bytes=None, output_bound=True)
    variants = {"model": dict(before, fresh_threshold_bytes=calibrate.FRESH_THRESHOLD_BYTES, output_bound=False),
                "before": before}
    tables = {"model": table, "before": table}

    def fit_all(idx, reuse=None):
        out, models = {}, {}
        for name, options in variants.items():
            given = {}
            if reuse is not None:
                r = reuse[name]
                given = dict(peak_ops_per_s=r.peak_ops_per_s, bandwidth_bytes_per_s=r.bandwidth_bytes_per_s,
                             capacity_bytes=r.capacity_bytes, spill_search=r.capacity_bytes is not None)
            models[name], _ = calibrate.fit_energy_model(tables[name].subset(idx), y[idx], tos_per_op=tos_per_op,
                                                         **options, **given)
            out[name] = models[name].predict_runs(tables[name])[0]
        for name, x in feats.items():
            if np.unique(x[idx]).size < 2:
                out[name] = None
                continue
            fit = calibrate.fit_polynomial(x[idx], y[idx], 1, weighting="relative")
            out[name] = fit.predict(x)
        return out, models

    def fmt(pred, idx):
        if pred is None:
            return "n/a (constant)"
        a, m = precision(pred[idx], y[idx])
        return f"{a:7.2f} ({m:8.1f})"

    with np.errstate(all="ignore"):
        preds, model = fit_all(train)
    methods = ["model", "before", "tos", "flops", "macs"]
    print("\n1. held-out rows: precision % avg (min), per layer type and joint")
    print(f"{'type':<10} {'rows':>5}  " + "  ".join(f"{m:>18}" for m in methods))
    for kind in sorted(set(types)):
        idx = val[types[val] == kind]
        print(f"{kind:<10} {len(idx):>5}  " + "  ".join(f"{fmt(preds[m], idx):>18}" for m in methods))
    for kind in ("conv2d", "maxpool2d"):
        idx = np.asarray([i for i in val if types[i] == kind and _like(kind, configs[i])], dtype=np.int64)
        print(f"{kind[:4] + ' like':<10} {len(idx):>5}  " + "  ".join(f"{fmt(preds[m], idx):>18}" for m in methods)
              + "   (median pred/meas " + ", ".join(f"{m} {np.median(preds[m][idx] / y[idx]):.3f}" for m in methods
                                                 if preds[m] is not None) + ")")
    # max-pools with 2x2 windows at stride 2 (VGG's) and at stride >= 3
    for label, test in (("pool k2s2", lambda c: c["k"] == 2 and c["s"] == 2),
                        ("pool k2s3+", lambda c: c["k"] == 2 and c["s"] >= 3)):
        idx = np.asarray([i for i in val if types[i] == "maxpool2d" and test(configs[i])], dtype=np.int64)
        print(f"{label:<10} {len(idx):>5}  " + "  ".join(f"{fmt(preds[m], idx):>18}" for m in methods)
              + "   (median pred/meas " + ", ".join(f"{m} {np.median(preds[m][idx] / y[idx]):.3f}" for m in methods
                                                 if preds[m] is not None) + ")")
    # ReLU's two series: fresh outputs per call (test = 1) and reused outputs (test = 0; all calls
    # reused up to 1.1 GiB of output: bench/getzner2023_layers.py)
    for label, flag in (("relu fresh", "test1"), ("relu reuse", "test0")):
        idx = val[(types[val] == "relu") & (series[val] == flag)]
        print(f"{label:<10} {len(idx):>5}  " + "  ".join(f"{fmt(preds[m], idx):>18}" for m in methods)
              + "   (median pred/meas " + ", ".join(f"{m} {np.median(preds[m][idx] / y[idx]):.3f}" for m in methods
                                                 if preds[m] is not None) + ")")
    # linear calls at batch 4-15 (the GEMM packs its weight panel per call; AlexNet's classifier at batch 4-8)
    idx = np.asarray([i for i in val if types[i] == "linear" and 4 <= configs[i]["b"] < 16], dtype=np.int64)
    print(f"{'line b4-15':<10} {len(idx):>5}  " + "  ".join(f"{fmt(preds[m], idx):>18}" for m in methods)
          + "   (median pred/meas " + ", ".join(f"{m} {np.median(preds[m][idx] / y[idx]):.3f}" for m in methods
                                             if preds[m] is not None) + ")")
    print(f"{'joint':<10} {len(val):>5}  " + "  ".join(f"{fmt(preds[m], val):>18}" for m in methods))
    print("validation R^2: " + ", ".join(f"{m} {r2(preds[m][val], y[val]):.4f}" for m in methods))

    print("\n2. leave one layer type out: precision % avg (min) of the held-out type's validation rows")
    print(f"{'type':<10} " + "  ".join(f"{m:>18}" for m in methods))
    for kind in sorted(set(types)):
        others = train[types[train] != kind]
        with np.errstate(all="ignore"):
            loto, _ = fit_all(others, reuse=model)
        idx = val[types[val] == kind]
        print(f"{kind:<10} " + "  ".join(f"{fmt(loto[m], idx):>18}" for m in methods))

    print("\n3. composed AlexNet / VGG from held-out measured layers: precision % avg (min) over batch 1..256")
    pool = {kind: [i for i in val if types[i] == kind] for kind in set(types)}
    print(f"{'model':<8} " + "  ".join(f"{m:>18}" for m in methods) + "   measured J (batch 1 .. 256)")
    summary = {m: [] for m in methods}
    for arch in ("alexnet", "vgg11", "vgg13", "vgg16"):
        rows = {m: [] for m in methods}
        measured = []
        for batch in BATCHES:
            chosen = []
            for kind, config in architecture(arch):
                target = dict(config, b=batch)
                chosen.append(min(pool[kind], key=lambda i: _distance(target, configs[i])))
            measured.append(sum(y[i] for i in chosen))
            for m in methods:
                rows[m].append(sum(preds[m][i] for i in chosen) if preds[m] is not None else np.nan)
        _print_arch(arch, methods, rows, np.asarray(measured), summary)
    _print_all(methods, summary)

    print("\n3b. composed at the real layers' sizes from the 5 nearest held-out configurations: precision % avg (min)")
    print(f"{'model':<8} " + "  ".join(f"{m:>18}" for m in methods) + "   measured J (batch 1 .. 256)")
    summary = {m: [] for m in methods}
    sizes = np.asarray([_size(types[i], configs[i]) for i in range(len(y))], dtype=np.float64)
    errors = {}
    for arch in ("alexnet", "vgg11", "vgg13", "vgg16"):
        rows = {m: [] for m in methods}
        measured = []
        for batch in BATCHES:
            total = 0.0
            totals = dict.fromkeys(methods, 0.0)
            for kind, config in architecture(arch):
                target = dict(config, b=batch)
                near = sorted(pool[kind], key=lambda i: _distance(target, configs[i], _KERNEL_FIRST))[:5]
                scale = np.asarray([_size(kind, target) / sizes[i] for i in near]) / len(near)
                total += float(scale @ y[near])
                for m in methods:
                    totals[m] += float(scale @ preds[m][near]) if preds[m] is not None else np.nan
            measured.append(total)
            for m in methods:
                rows[m].append(totals[m])
        errors[arch] = {m: 100.0 * (np.asarray(rows[m]) / np.asarray(measured) - 1.0) for m in ("model", "before")}
        _print_arch(arch, methods, rows, np.asarray(measured), summary)
    _print_all(methods, summary)
    print("\n3b per batch: (pred - meas) / meas %, model [before], batch " + " ".join(str(b) for b in BATCHES))
    for arch, err in errors.items():
        print(f"{arch:<8} " + " ".join(f"{a:+5.1f} [{b:+5.1f}]" for a, b in zip(err["model"], err["before"])))
    print(f"\n{time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
