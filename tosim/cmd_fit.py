"""``tosim fit MEASUREMENTS.csv``: fit a device's joule coefficients on TOs, FLOPs or MACs.

Wiring only: calibrate reads the measurements and fits, :func:`tosim.score_many` gives each
model's TOs, FLOPs and MACs for one step of a batch, and the whole-run rule of scoring sums them
over the workload each measurement row describes (``calibrate.workload_steps``).
"""
import datetime
import os
import sys

from ._io import check_output, json_text, non_negative_int, save_figure, write_atomic

__all__ = ["register", "run", "FEATURES"]

FEATURES = ("tos", "flops", "macs", "tos-by-op", "tos+movement")
POLY_FEATURES = ("tos", "flops", "macs")
from hardware_profiles.schema import DEFAULT_PROFILE, PHASES

#: --fresh-threshold's default: glibc's mmap threshold cap on 64-bit, 32 MiB (calibrate.FRESH_THRESHOLD_BYTES;
#: calibrate is imported lazily).
FRESH_THRESHOLD = float(2 ** 25)


def _fraction(text):
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), not {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), not {text!r}")
    return value


def _number(text, positive):
    import argparse
    import math
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"must be a {'positive' if positive else 'non-negative'} number, not {text!r}")
    return value


def _positive(text):
    return _number(text, True)


def _non_negative(text):
    return _number(text, False)


def _terms(text):
    """argparse type: comma-separated energy terms, each once."""
    import argparse
    from calibrate import ENERGY_TERMS
    terms = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in terms if t not in ENERGY_TERMS]
    if bad or not terms or len(set(terms)) != len(terms):
        raise argparse.ArgumentTypeError(f"must be a comma-separated subset of {', '.join(ENERGY_TERMS)} "
                                         f"(each once), not {text!r}")
    return tuple(terms)


def _channel_block(text):
    """argparse type: a channel block, an integer from 1 to 4096."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 4096, not {text!r}")
    return value


def _pack_rows(text):
    """argparse type: GEMM rows ``LO,HI`` (integers, 1 <= LO < HI)."""
    import argparse
    try:
        lo, hi = (int(v) for v in text.split(","))
    except ValueError:
        lo = hi = 0
    if not 1 <= lo < hi:
        raise argparse.ArgumentTypeError(f"must be two integers LO,HI with 1 <= LO < HI, not {text!r}")
    return lo, hi


def _narrow_window(text):
    """argparse type: a pooling window ``K,S`` (kernel K >= 1, least stride S >= 1)."""
    import argparse
    try:
        k, s = (int(v) for v in text.split(","))
    except ValueError:
        k = s = 0
    if not (k >= 1 and s >= 1):
        raise argparse.ArgumentTypeError(f"must be two integers K,S with K >= 1 and S >= 1, not {text!r}")
    return k, s


def _fresh_threshold(text):
    """argparse type: a fresh-output threshold in bytes (a non-negative number) or ``off``."""
    import argparse
    import math
    if text.strip().lower() == "off":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a non-negative number of bytes or 'off', not {text!r}")
    return value


def _energy_parts(text):
    """argparse type: ``total`` or a ``+``-joined subset of cpu, gpu, ram, each once."""
    import argparse

    from calibrate import MeasurementError, energy_parts
    try:
        energy_parts(text)
    except MeasurementError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def register(subparsers):
    parser = subparsers.add_parser(
        "fit", help="fit a device's joule coefficients from measured energies",
        description="Fit measured joules against TOs (or FLOPs, MACs) with a polynomial of 1..3 coefficients "
                    "beyond the intercept (li2022 section II.C) on a seeded random train/validation split, "
                    "and report RMSE, R^2, per-sample precision and errors in joules per split, with the "
                    "other features fitted on the same split beside it. Reads the measurement CSV "
                    "(model, energy_j, phase, batch, samples, epochs, passes) or CodeCarbon's emissions.csv.")
    parser.add_argument("measurements", metavar="MEASUREMENTS.csv", help="measurement CSV or CodeCarbon emissions.csv")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help=f"profile name or YAML file (default {DEFAULT_PROFILE})")
    parser.add_argument("--feature", default="tos", choices=FEATURES,
                        help="what energy is fitted on (tos-by-op: non-negative linear fit on the TOs of "
                             "each basic op; tos+movement: non-negative linear fit on TOs and the modelled "
                             "data-movement joules of a profile with a memory section; neither can be "
                             "written to a profile)")
    parser.add_argument("--degree", type=int, default=1, choices=[1, 2, 3],
                        help="coefficients beyond the intercept (default 1)")
    parser.add_argument("--train-fraction", type=_fraction, default=0.6, help="share of rows fitted (default 0.6)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random split (default 0)")
    parser.add_argument("--weighting", default=None, choices=["absolute", "relative"],
                        help="minimise errors relative to the measurement or absolute errors in joules (default: "
                             "relative when the measured energies span more than a decade, else absolute)")
    model = parser.add_argument_group(
        "device energy model", "--model fits joules per basic op (TOs-priced prior), per byte, per layer call and "
                               "static power x roofline time per layer type (docs/energy-model.md)")
    model.add_argument("--model", action="store_true", help="fit the device energy model instead of a polynomial")
    model.add_argument("--terms", default="ops,memory,calls,static", type=_terms,
                       help="comma-separated terms of the model (default ops,memory,calls,static)")
    model.add_argument("--prior-strength", type=_non_negative, default=1e-3,
                       help="weight of the prior that per-op energies follow the transistor prices (default 1e-3)")
    model.add_argument("--peak", type=_positive, default=None, metavar="OPS_PER_S",
                       help="device peak in basic ops per second (kept as given)")
    model.add_argument("--bandwidth", type=_positive, default=None, metavar="BYTES_PER_S",
                       help="device memory bandwidth in bytes per second (with --peak: fixes the balance)")
    model.add_argument("--static-power", type=_positive, default=None, metavar="W",
                       help="static power in watts (sets the time scale of the roofline)")
    model.add_argument("--channel-block", type=_channel_block, default=1, metavar="N",
                       help="pad convolutions' output channels to a multiple of N in the static term, as "
                            "vector-blocked kernels do (16: oneDNN fp32 on AVX-512; default 1, no padding)")
    model.add_argument("--pack-rows", type=_pack_rows, default=None, metavar="LO,HI",
                       help="fit a static price per weight byte of linear calls with LO <= GEMM rows < HI "
                            "(the GEMM packs its weight panel on each call; 4,16 on the Xeon; default off)")
    model.add_argument("--weight-cache", type=_positive, default=None, metavar="BYTES",
                       help="fit a static price per weight byte of linear calls whose weights exceed BYTES "
                            "(the last-level cache; default off)")
    model.add_argument("--narrow-window", type=_narrow_window, default=None, metavar="K,S",
                       help="fit a static price per output byte of poolings with a K-wide window and stride >= S "
                            "(an empirical price class: 2,2 for PyTorch's CPU max-pool; default off)")
    model.add_argument("--exposed-output", action="store_true",
                       help="fit a static price per output byte of convolutions that their ops do not hide, the "
                            "ops per hidden byte searched (off by default: the fresh-output price covers the "
                            "same outputs more robustly)")
    model.add_argument("--fresh-threshold", type=_fresh_threshold, default=FRESH_THRESHOLD, metavar="BYTES",
                       help="fit a static price per byte of outputs (and max-pool indices) larger than BYTES, "
                            "which the allocator maps fresh and page-faults on every call (default 33554432: "
                            "glibc's 32 MiB mmap threshold cap; 'off': no such price, e.g. for a GPU, whose "
                            "caching allocator reuses memory); rows whose run reused its outputs (CSV column "
                            "fresh_outputs, the share of calls with new output memory: 0 = reused) and in-place "
                            "layers pay nothing")
    parser.add_argument("--phase", default="inference", choices=list(PHASES),
                        help="phase of rows without a phase column (default inference)")
    parser.add_argument("--device", metavar="NAME",
                        help="device name: picks rows by the CSV's device column and names the fitted device")
    parser.add_argument("--map", metavar="MAP.csv", help="CodeCarbon: maps run_id/project_name/experiment_id to models")
    parser.add_argument("--energy-parts", default="total", type=_energy_parts,
                        help="CodeCarbon: total (energy_consumed) or a +-joined subset of cpu, gpu, ram")
    parser.add_argument("--write-profile", metavar="OUT.yaml",
                        help="write a profile that extends --profile and adds the fitted device (its folder "
                             "must exist)")
    parser.add_argument("--plot", metavar="F.png", help="measured against predicted, with residuals")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


# ---------------------------------------------------------------------------------------------
# features

class FeatureCache:
    """TOs, FLOPs, MACs and TOs per basic op of one step, per (model, phase, step batch).

    Thousands of measurement rows usually repeat a few dozen models and batch sizes, so each
    distinct step is scored once, by :func:`tosim.score_many` (one call per phase and batch size
    over all models). TOs per op are the per-layer op counts of that score times the same cost
    table (``tosim._costs.costs_array``), per layer format. A whole run is summed by the rule
    scoring uses (``tosim._pipeline.whole_run_total``).
    """

    def __init__(self, profile, jobs=None):
        self.profile = profile
        self.jobs = jobs
        self.steps = {}

    def prepare(self, measurements):
        """Score every step the measurements need that is not scored yet."""
        import numpy as np

        from opcount import BASIC_OPS as OPS
        from tosim._costs import costs_array, refuse_mac_unit
        from tosim.api import score_many
        refuse_mac_unit(self.profile, "tosim fit's per-op features")
        groups = {}
        for m in measurements:
            for batch, _ in m.steps:
                if (m.model, m.phase, batch) not in self.steps:
                    groups.setdefault((m.phase, batch), set()).add(m.model)
        for (phase, batch), sources in sorted(groups.items()):
            sources = sorted(sources)
            results = score_many(sources, self.profile, phase=phase, batch=batch, per_layer=True, jobs=self.jobs)
            for source, r in zip(sources, results):
                if r.error is not None:
                    value = r.error
                elif r.incomplete_types:
                    kinds = ", ".join(f"{t} x{n}" for t, n in sorted(r.incomplete_types.items()))
                    value = f"{source}: not fully counted ({kinds}); its TOs would be too low"
                else:
                    formats = sorted({layer.format for layer in r.layers})
                    costs = costs_array(self.profile, formats)
                    column = {f: i for i, f in enumerate(formats)}
                    by_op = np.zeros(len(OPS))
                    for layer in r.layers:
                        counts = np.asarray([layer.counts[op] for op in OPS], dtype=np.float64)
                        by_op += counts * costs[:, column[layer.format]]
                    value = {"tos": r.tos, "flops": float(r.flops), "macs": float(r.macs),
                             "tos_by_op": dict(zip(OPS, (float(v) for v in by_op))),
                             "movement": float(r.energy_movement_j or 0.0)}
                self.steps[(source, phase, batch)] = value

    def row(self, measurement):
        """Features of a whole measured run: ``epochs x sum over its steps of count x F(batch)``.
        Raises ValueError with the model's message when it could not be scored."""
        from tosim._pipeline import whole_run_total
        self.prepare([measurement])
        parts = []
        for batch, count in measurement.steps:
            f = self.steps[(measurement.model, measurement.phase, batch)]
            if isinstance(f, str):
                raise ValueError(f)
            parts.append((f, count))
        return whole_run_total(parts, measurement.epochs)


def _select_device(rows, name):
    devices = sorted({r.device for r in rows if r.device})
    if name is not None:
        if devices:
            picked = [r for r in rows if r.device == name]
            if not picked:
                from tosim.cli import CommandError
                raise CommandError(f"no measurement rows of device {name!r} (devices: {', '.join(devices)})")
            return picked, name
        return rows, name
    if len(devices) > 1:
        from tosim.cli import CommandError
        raise CommandError(f"measurements cover several devices ({', '.join(devices)}); pick one with --device")
    return rows, (devices[0] if devices else None)


def fit_all(measured, features, feature, degree, train, validation, weighting):
    """The chosen fit and, on the same split, the polynomial fits of every feature."""
    import numpy as np
    import calibrate
    y = np.asarray(measured, dtype=np.float64)

    def poly(name, deg):
        x = np.asarray([f[name] for f in features], dtype=np.float64)
        if name != feature and np.unique(x[train]).size < deg + 1:
            # a comparison on a feature that does not vary (the MACs of activation layers) is
            # reported, never a reason to stop the chosen fit
            return {"feature": name, "degree": deg, "coefficients": None, "status": "n/a (constant)",
                    "train": None, "validation": None}, None
        fit = calibrate.fit_polynomial(x[train], y[train], deg, weighting=weighting)
        pred = fit.predict(x)
        return {"feature": name, "degree": deg, "coefficients": fit.coefficients,
                "train": calibrate.metrics(y[train], pred[train]),
                "validation": calibrate.metrics(y[validation], pred[validation])}, pred

    comparison = []
    chosen, chosen_pred = None, None
    for name in POLY_FEATURES:
        entry, pred = poly(name, degree)
        comparison.append(entry)
        if name == feature:
            chosen, chosen_pred = entry, pred
    if feature == "tos-by-op":
        ops = sorted({op for f in features for op, v in f["tos_by_op"].items() if v})
        x = np.asarray([[f["tos_by_op"].get(op, 0.0) for op in ops] for f in features], dtype=np.float64)
        fit = calibrate.fit_nonnegative(x[train], y[train], names=ops, weighting=weighting)
        pred = fit.predict(x)
        chosen = {"feature": feature, "degree": 1, "intercept": fit.intercept,
                  "coefficients": dict(zip(ops, fit.coefficients)),
                  "train": calibrate.metrics(y[train], pred[train]),
                  "validation": calibrate.metrics(y[validation], pred[validation])}
        chosen_pred = pred
    if feature == "tos+movement":
        # E = c0 + c_tos TOs + c_mov E_movement: c_mov scales the memory model's joules (1 when the
        # profile's memory energies are right for the device), c_tos prices the arithmetic
        names = ["tos", "movement"]
        x = np.asarray([[f["tos"], f["movement"]] for f in features], dtype=np.float64)
        fit = calibrate.fit_nonnegative(x[train], y[train], names=names, weighting=weighting)
        pred = fit.predict(x)
        chosen = {"feature": feature, "degree": 1, "intercept": fit.intercept,
                  "coefficients": dict(zip(names, fit.coefficients)),
                  "train": calibrate.metrics(y[train], pred[train]),
                  "validation": calibrate.metrics(y[validation], pred[validation])}
        chosen_pred = pred
    return chosen, chosen_pred, comparison


def run(args):
    import numpy as np
    import calibrate
    import hardware_profiles
    import opcount
    from tosim.cli import CommandError

    if args.write_profile is not None and args.feature in ("tos-by-op", "tos+movement") and not args.model:
        raise CommandError("--write-profile needs a polynomial feature (tos, flops or macs): a profile device "
                           "is a polynomial in one feature")
    # outputs are checked before anything is read or fitted, against every file the command reads
    inputs = [args.measurements, args.map, args.profile]
    _check_outputs(args, inputs)
    profile = hardware_profiles.load(args.profile)
    if args.feature == "tos+movement" and profile.memory is None:
        raise CommandError(f"--feature tos+movement needs a profile with a memory section; {profile.name!r} "
                           "has none (try --profile horowitz45 or yang2017)")
    data = calibrate.read_any(args.measurements, mapping=args.map, parts=args.energy_parts,
                              default_phase=args.phase, zoo_names=opcount.zoo_names())
    # the profiles it extends and the model files of the rows are inputs too
    _check_outputs(args, inputs + list(profile.chain) + sorted({r.model for r in data.rows}))
    rows, device = _select_device(data.rows, args.device)
    if args.write_profile is not None and not device:
        raise CommandError("--write-profile needs a device name: give --device NAME")
    problems = list(data.problems)
    if len(rows) < args.degree + 2:
        # fail before scoring (which may have to synthesize the profile's circuits); the skipped
        # rows first, since they usually say why so few are left
        _warn_skipped(data.path, sorted(problems))
        raise CommandError(f"{args.measurements}: need at least {args.degree + 2} measurements to split into "
                           f"train and validation, got {len(rows)}")
    if args.model:
        return run_model(args, profile, data, rows, device, problems)
    cache = FeatureCache(profile)
    cache.prepare(rows)
    used, features = [], []
    for row in rows:
        try:
            features.append(cache.row(row))
        except ValueError as exc:
            problems.append((row.line, str(exc)))
            continue
        used.append(row)
    problems.sort()
    _warn_skipped(data.path, problems)
    args.weighting = resolve_weighting(args.weighting, [r.energy_j for r in used])
    try:
        train, validation = calibrate.split_indices(len(used), args.train_fraction, args.seed,
                                                    min_train=args.degree + 1)
        # over/underflow is checked on the results (numpy's warnings are not the user's business)
        with np.errstate(all="ignore"):
            chosen, pred, comparison = fit_all([r.energy_j for r in used], features, args.feature, args.degree,
                                               train, validation, args.weighting)
        _check_finite(chosen, pred, comparison)
    except ValueError as exc:
        raise CommandError(f"{args.measurements}: {exc}") from None
    phases = sorted({r.phase for r in used})
    result = {**chosen, "weighting": args.weighting, "device": device, "profile": profile.name,
              "phase": phases[0] if len(phases) == 1 else "mixed", "seed": args.seed,
              "train_fraction": args.train_fraction, "rows": len(used),
              "comparison": comparison,
              "skipped": [{"line": line, "reason": reason} for line, reason in problems]}
    if args.write_profile is not None:
        values = [f[args.feature] for f in features]
        write_profile(args, profile, result, data.path, fitted_range=[float(min(values)), float(max(values))])
        result["profile_written"] = args.write_profile
    if args.plot is not None:
        from ._plots import fit_scatter
        fit_scatter(args.plot, np.asarray([r.energy_j for r in used]), pred, train, validation, result)
    if args.json:
        print(json_text(result))
    else:
        print(format_report(result))
    return 1 if problems else 0


def resolve_weighting(weighting, energies):
    """The loss weighting: as given, else relative when the energies span more than a decade
    (absolute errors would let the largest runs decide the fit alone); a warning when absolute is
    forced on such a span."""
    span = max(energies) / min(energies) if energies and min(energies) > 0 else 1.0
    if weighting is None:
        return "relative" if span > 10 else "absolute"
    if weighting == "absolute" and span > 10:
        print(f"tosim: warning: the measured energies span {span:.3g}x; absolute weighting lets the largest "
              "runs decide the fit (relative weighting is the default for such data)", file=sys.stderr)
    return weighting


def _groups(types):
    """A run's group for per-type metrics: its layer types (views left out), '+'-joined."""
    from ._device_model import VIEW_TYPES
    kinds = sorted({t for t in types if t not in VIEW_TYPES and t != "dropout"})
    return "+".join(kinds) if kinds else "(none)"


def _metrics_or_none(y, p):
    import calibrate
    return calibrate.metrics(y, p) if len(y) else None


def run_model(args, profile, data, rows, device, problems):
    """``tosim fit --model``: the device energy model (calibrate.fit_energy_model) on per-layer
    features, with per-group and joint metrics and the polynomial fits of TOs, FLOPs and MACs on
    the same split beside it."""
    import numpy as np
    import calibrate
    from tosim.cli import CommandError
    from ._device_model import TableCache, model_tos_per_op
    cache = TableCache(profile)
    used, tables, groups = [], [], []
    for row in rows:
        try:
            table, types = cache.run(row)
        except ValueError as exc:
            problems.append((row.line, str(exc)))
            continue
        used.append(row)
        tables.append(table)
        groups.append(_groups(types))
    problems.sort()
    _warn_skipped(data.path, problems)
    if len(used) < 3:
        raise CommandError(f"{args.measurements}: need at least 3 usable measurements to split into train and "
                           f"validation, got {len(used)}")
    y = np.asarray([r.energy_j for r in used], dtype=np.float64)
    weighting = resolve_weighting(args.weighting, list(y))
    table = calibrate.LayerTable.concat(tables)
    try:
        # every basic op of the counted formats: ops no row counts get the prior's price
        from opcount import BASIC_OPS
        tos_per_op = model_tos_per_op(profile, sorted({(fmt, op) for fmt, _op in table.op_keys for op in BASIC_OPS}))
        train, validation = calibrate.split_indices(len(used), args.train_fraction, args.seed, min_train=2)
        with np.errstate(all="ignore"):
            model, info = calibrate.fit_energy_model(
                table.subset(train), y[train], terms=args.terms, tos_per_op=tos_per_op, loss=weighting,
                prior_strength=args.prior_strength, peak_ops_per_s=args.peak,
                bandwidth_bytes_per_s=args.bandwidth, static_w=args.static_power,
                channel_block=args.channel_block, pack_rows=args.pack_rows, weight_cache_bytes=args.weight_cache,
                narrow_window=args.narrow_window, fresh_threshold_bytes=args.fresh_threshold,
                output_bound=args.exposed_output)
            pred, parts = model.predict_runs(table)
        if not np.all(np.isfinite(pred)):
            raise ValueError("the energy model's predictions leave float64's range")
        # the polynomial comparisons (li2022's TOs, FLOPs, MACs) on the same rows and split
        tos_col = table.per_run(table.ops @ np.asarray([tos_per_op[k] for k in table.op_keys]))
        features = [{"tos": float(tos_col[i]), "flops": 2.0 * cache.macs_of(r), "macs": cache.macs_of(r)}
                    for i, r in enumerate(used)]
        with np.errstate(all="ignore"):
            comparison = fit_all(list(y), features, None, 1, train, validation, weighting)[2]
    except ValueError as exc:
        raise CommandError(f"{args.measurements}: {exc}") from None
    groups = np.asarray(groups)
    by_group = {}
    for name in sorted(set(groups.tolist())):
        tr = train[groups[train] == name]
        va = validation[groups[validation] == name]
        share = {t: float(v[groups == name].sum() / pred[groups == name].sum()) if pred[groups == name].sum() else 0.0
                 for t, v in parts.items()}
        entry = {"rows": int(np.sum(groups == name)), "train": _metrics_or_none(y[tr], pred[tr]),
                 "validation": _metrics_or_none(y[va], pred[va]), "term_share": share, "comparison": {}}
        for comp in comparison:
            if comp.get("status"):
                entry["comparison"][comp["feature"]] = None
                continue
            p = calibrate.predict(comp["coefficients"], np.asarray([f[comp["feature"]] for f in features]))
            entry["comparison"][comp["feature"]] = _metrics_or_none(y[va], p[va])
        by_group[str(name)] = entry
    phases = sorted({r.phase for r in used})
    result = {"feature": "model", "model": model.to_dict(), "weighting": weighting, "device": device,
              "profile": profile.name, "phase": phases[0] if len(phases) == 1 else "mixed", "seed": args.seed,
              "train_fraction": args.train_fraction, "rows": len(used),
              "train": calibrate.metrics(y[train], pred[train]),
              "validation": calibrate.metrics(y[validation], pred[validation]),
              "fit": {k: v for k, v in info.items()}, "by_type": by_group, "comparison": comparison,
              "skipped": [{"line": line, "reason": reason} for line, reason in problems]}
    if info.get("time_scale") == "nominal":
        print("tosim: note: neither --peak nor --static-power given: the energies fix the static energy per op "
              "and the balance, not the time scale; the peak is a nominal 1e9 ops/s", file=sys.stderr)
    if args.write_profile is not None:
        write_profile(args, profile, result, data.path)
        result["profile_written"] = args.write_profile
    if args.plot is not None:
        plot_model(args.plot, y, pred, parts, groups, train, validation, result)
    if args.json:
        print(json_text(result))
    else:
        print(format_model_report(result))
    return 1 if problems else 0


def _check_finite(chosen, pred, comparison):
    """ValueError when a coefficient, prediction or metric left float64's range."""
    import math
    import numpy as np
    for entry in [chosen] + list(comparison):
        if entry.get("status"):
            continue
        coefficients = entry["coefficients"]
        values = list(coefficients.values()) if isinstance(coefficients, dict) else list(coefficients)
        values += [entry.get("intercept", 0.0)]
        values += [v for split in ("train", "validation") for v in entry[split].values() if v is not None]
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"the {entry['feature']} fit leaves float64's range (measured energies or "
                             "features too large or too small)")
    if not np.all(np.isfinite(pred)):
        raise ValueError(f"the {chosen['feature']} fit's predictions leave float64's range")


def _check_outputs(args, inputs):
    """--write-profile and --plot: right extension, existing folder, not a folder, no input."""
    if args.write_profile is not None:
        check_output(args.write_profile, "--write-profile", (".yaml", ".yml"), inputs)
    if args.plot is not None:
        check_output(args.plot, "--plot", (".png",), inputs)


def _warn_skipped(path, problems):
    for line, reason in problems:
        print(f"tosim: warning: {path}:{line}: {reason} (row skipped)", file=sys.stderr)


# ---------------------------------------------------------------------------------------------

def _extends(profile_arg, profile, out):
    import hardware_profiles
    if not os.path.isfile(str(profile_arg)) and str(profile_arg) in hardware_profiles.builtin_names():
        return str(profile_arg)
    return os.path.relpath(os.path.abspath(profile_arg), os.path.dirname(os.path.abspath(out)))


def write_profile(args, profile, result, csv_path, fitted_range=None):
    """Write a profile that extends the input profile and adds the fitted device; load it back.
    ``fitted_range``: ``[low, high]`` of the polynomial's feature over the measured runs."""
    from tosim.cli import CommandError
    name = args.device or result["device"]
    if not name:
        raise CommandError("--write-profile needs a device name: give --device NAME")
    keep = ("rmse", "r2", "precision_min", "precision_max", "precision_avg", "abs_err_avg_j", "abs_err_max_j", "n")
    if result["feature"] == "model":
        device = model_device(result, csv_path, profile.name, keep)
        _write_device(args, profile, name, device, "the device's energy model turns each layer's counts, bytes, "
                                                   "calls and roofline time into joules")
        return
    device = {
        "feature": result["feature"],
        "coefficients": [float(c) for c in result["coefficients"]],
        "unit": "J",
        "phase": result["phase"],
        "date": datetime.date.today().isoformat(),
        "source": (f"tosim fit of {os.path.basename(csv_path)}: {result['rows']} runs, degree {result['degree']}, "
                   f"{result['weighting']} weighting, split {result['train_fraction']:g} seed {result['seed']}, "
                   f"features under profile {profile.name}"),
        "metrics": {"train": {k: result["train"][k] for k in keep},
                    "validation": {k: result["validation"][k] for k in keep}},
        "description": ("joules of one measured run = polynomial in the run's total "
                        f"{result['feature']} (epochs x steps x one step's count)"),
    }
    if fitted_range is not None:
        device["fitted_range"] = fitted_range
    _write_device(args, profile, name, device, "the device's coefficients turn a run's total "
                                               f"{result['feature']} into joules")


def model_device(result, csv_path, profile_name, keep=None):
    """The profile device mapping of an energy-model fit result."""
    keep = keep or ("rmse", "r2", "precision_min", "precision_max", "precision_avg", "abs_err_avg_j",
                    "abs_err_max_j", "n")
    by_type = {name: {"rows": entry["rows"], "validation_precision_avg":
                      (entry["validation"]["precision_avg"] if entry["validation"] else None)}
               for name, entry in result["by_type"].items()}
    return {
        "energy_model": result["model"],
        "unit": "J",
        "phase": result["phase"],
        "date": datetime.date.today().isoformat(),
        "source": (f"tosim fit --model of {os.path.basename(csv_path)}: {result['rows']} runs, "
                   f"{result['weighting']} weighting, prior strength {result['fit']['prior_strength']:g}, split "
                   f"{result['train_fraction']:g} seed {result['seed']}, features under profile {profile_name}"),
        "metrics": {"train": {k: result["train"][k] for k in keep},
                    "validation": {k: result["validation"][k] for k in keep},
                    "validation_by_type": by_type},
        "description": ("joules of a run = sum over its layer calls of ops x J/op + bytes x J/byte (+ spill) "
                        "+ J/call + static J/op of the layer type x max(ops, balance x bytes) (+ J per window "
                        "op x ops new to the window + J per window row x window rows + J per output byte not "
                        "hidden by the ops (if fitted) + J per weight byte of matrix-product calls that pack their "
                        "weights (pack_rows) or whose weights exceed weight_cache_bytes + J per output byte of poolings "
                        "with the narrow_window (kernel, least stride) + J per byte of outputs and max-pool "
                        "indices above fresh_threshold_bytes, freshly allocated on each call; convolutions' ops on "
                        "valid taps, blocked channels padded to channel_block)"),
    }


def _write_device(args, profile, name, device, comment):
    import yaml
    import hardware_profiles
    stem = os.path.splitext(os.path.basename(args.write_profile))[0]
    doc = {"schema": 1, "name": stem, "extends": _extends(args.profile, profile, args.write_profile),
           "devices": {name: device}}
    text = f"# written by tosim fit; {comment}\n" + yaml.safe_dump(doc, sort_keys=False, width=100)
    write_atomic(args.write_profile, text)
    hardware_profiles.load_file(args.write_profile)   # what we write must load


def _coeffs(entry):
    if isinstance(entry["coefficients"], dict):
        return f"{entry['intercept']:.3e} + " + " + ".join(f"{c:.3e}·{op}" for op, c in entry["coefficients"].items())
    return ", ".join(f"{c:.3e}" for c in entry["coefficients"])


def plot_model(path, measured, predicted, parts, groups, train, validation, result):
    """Measured against predicted joules per run (log-log, by layer type) and the per-term split
    of the predicted energy per layer type."""
    import numpy as np
    from matplotlib.figure import Figure
    fig = Figure(figsize=(12, 5.5))
    ax, bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    names = sorted(set(groups))
    for name in names:
        idx = validation[groups[validation] == name]
        ax.scatter(measured[idx], predicted[idx], s=8, label=name)
    lo = float(min(measured.min(), predicted[predicted > 0].min() if np.any(predicted > 0) else measured.min()))
    hi = float(max(measured.max(), predicted.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured energy (J)")
    ax.set_ylabel("predicted energy (J)")
    v = result["validation"]
    ax.set_title(f"validation: precision avg {v['precision_avg']:.1f} %, min {v['precision_min']:.1f} %")
    ax.legend(fontsize=7)
    bottom = np.zeros(len(names))
    for term, values in parts.items():
        share = np.asarray([values[groups == n].sum() / max(predicted[groups == n].sum(), 1e-300) for n in names])
        bars.bar(range(len(names)), share, bottom=bottom, label=term)
        bottom += share
    bars.set_xticks(range(len(names)))
    bars.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
    bars.set_ylabel("share of predicted energy")
    bars.set_title("per-term split")
    bars.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def _precision(m):
    return "n/a" if m is None else f"{m['precision_avg']:.2f} ({m['precision_min']:.1f})"


def format_model_report(result):
    m = result["model"]
    v, t = result["validation"], result["train"]
    lines = [f"energy model fit of {result['rows']} runs ({t['n']} train / {v['n']} validation, seed {result['seed']}), "
             f"profile {result['profile']}, phase {result['phase']}"
             + (f", device {result['device']}" if result["device"] else "") + f", {result['weighting']} weighting",
             f"terms: {', '.join(m['terms'])}"]
    if "op_j" in m:
        lines.append("  J per op: " + ", ".join(f"{fmt} {op} {e:.3g}" for fmt, ops in m["op_j"].items()
                                               for op, e in ops.items()))
    if "byte_j" in m:
        spill = (f"; beyond {m['capacity_bytes']:.3g} B per call +{m['spill_j_per_byte']:.3g}"
                 if m.get("capacity_bytes") else "")
        if m.get("byte_j_by_type"):
            for kind, prices in m["byte_j_by_type"].items():
                lines.append(f"  J per byte, {kind}: " + ", ".join(f"{r} {e:.3g}" for r, e in prices.items()))
            lines.append("  J per byte, other types: " + ", ".join(f"{r} {e:.3g}" for r, e in m["byte_j"].items())
                         + spill)
        else:
            lines.append("  J per byte: " + ", ".join(f"{r} {e:.3g}" for r, e in m["byte_j"].items()) + spill)
    if "call_j" in m:
        lines.append(f"  J per layer call: {m['call_j']:.3g}")
    if "static_j_per_op" in m:
        lines.append(f"  static: {m['static_w']:.3g} W, peak {m['peak_ops_per_s']:.3g} ops/s, bandwidth "
                     f"{m['bandwidth_bytes_per_s']:.3g} B/s ({result['fit']['time_scale']} time scale); J per "
                     "roofline op: " + ", ".join(f"{k} {e:.3g}" for k, e in m["static_j_per_op"].items()))
        reference = result["fit"].get("rate_reference")
        lines.append(f"  static J per roofline op, other types: {m['static_j_per_op_default']:.3g}"
                     + (f" (the fastest of the compute-bound kernels: {', '.join(reference)})"
                        if reference else ""))
        if m.get("window_j_per_op"):
            lines.append("  static J per window op (input new to the window"
                         + (f", channels padded to {m['channel_block']}" if m.get("channel_block") else "") + "): "
                         + ", ".join(f"{k} {e:.3g}" for k, e in m["window_j_per_op"].items()))
        if m.get("row_j"):
            lines.append("  static J per window row: " + ", ".join(f"{k} {e:.3g}" for k, e in m["row_j"].items()))
        if m.get("exposed_j"):
            lines.append(f"  static J per output byte not hidden by the ops (1 byte per {m['output_balance']:.3g} ops): "
                         + ", ".join(f"{k} {e:.3g}" for k, e in m["exposed_j"].items()))
        if m.get("pack_j"):
            lines.append(f"  static J per weight byte packed (GEMM rows {m['pack_rows'][0]}-{m['pack_rows'][1] - 1}): "
                         + ", ".join(f"{k} {e:.3g}" for k, e in m["pack_j"].items()))
        if m.get("weight_spill_j"):
            lines.append(f"  static J per weight byte of weights over {m['weight_cache_bytes']:.4g} B: "
                         + ", ".join(f"{k} {e:.3g}" for k, e in m["weight_spill_j"].items()))
        if m.get("narrow_j"):
            lines.append(f"  static J per output byte of {m['narrow_window'][0]}-wide windows at stride >= "
                         f"{m['narrow_window'][1]} (empirical): "
                         + ", ".join(f"{k} {e:.3g}" for k, e in m["narrow_j"].items()))
        if m.get("fresh_threshold_bytes") is not None:
            lines.append(f"  static J per byte of fresh outputs over {m['fresh_threshold_bytes']:.4g} B: "
                         + ", ".join(f"{k} {e:.3g}" for k, e in m["fresh_j"].items())
                         + f", other types {m['fresh_j_default']:.3g}")
    lines.append("")
    header = ["layer type", "rows", "model val prec % avg (min)", "tos", "flops", "macs", "terms (ops/mem/calls/static)"]
    rows = []
    for name, e in result["by_type"].items():
        share = "/".join(f"{e['term_share'].get(k, 0.0):.2f}" for k in ("ops", "memory", "calls", "static"))
        rows.append([name, str(e["rows"]), _precision(e["validation"])]
                    + [_precision(e["comparison"].get(f)) for f in POLY_FEATURES] + [share])
    joint = {c["feature"]: c["validation"] for c in result["comparison"]}
    rows.append(["joint", str(result["rows"]), _precision(v)] + [_precision(joint.get(f)) for f in POLY_FEATURES]
                + [""])
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    lines += [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows]
    r2 = lambda m: "n/a" if m is None or m["r2"] is None else f"{m['r2']:.4f}"
    lines.append(f"validation R2: model {r2(v)}, " + ", ".join(f"{f} {r2(joint.get(f))}" for f in POLY_FEATURES)
                 + " (tos/flops/macs: degree-1 polynomials on the same split; n/a: the feature is constant)")
    lines.append("(precision = 100 x (1 - |pred - meas| / meas) on the validation split, li2022 Table III)")
    if result["skipped"]:
        lines.append(f"{len(result['skipped'])} row(s) skipped (see warnings)")
    if result.get("profile_written"):
        lines.append(f"wrote {result['profile_written']}")
    return "\n".join(lines)


def format_report(result):
    def r2(m):
        return "n/a" if m["r2"] is None else f"{m['r2']:.4f}"

    head = (f"fit of {result['rows']} runs ({result['train']['n']} train / {result['validation']['n']} validation, "
            f"seed {result['seed']}), profile {result['profile']}, phase {result['phase']}"
            + (f", device {result['device']}" if result["device"] else "")
            + f", {result['weighting']} weighting")
    lines = [head, f"{result['feature']} degree {result['degree']}: coefficients {_coeffs(result)} (intercept first)", ""]
    header = ["feature", "train RMSE J", "train R2", "val RMSE J", "val R2", "precision % min-max (avg)",
              "abs err avg/max J"]
    rows = []
    entries = list(result["comparison"])
    if result["feature"] in ("tos-by-op", "tos+movement"):
        entries = [result] + entries
    for e in entries:
        if e.get("status"):
            rows.append([f"{e['feature']} n={e['degree']}", e["status"], "", "", "", "", ""])
            continue
        t, v = e["train"], e["validation"]
        rows.append([f"{e['feature']} n={e['degree']}", f"{t['rmse']:.4g}", r2(t), f"{v['rmse']:.4g}", r2(v),
                     f"{v['precision_min']:.2f}-{v['precision_max']:.2f} ({v['precision_avg']:.2f})",
                     f"{v['abs_err_avg_j']:.4g}/{v['abs_err_max_j']:.4g}"])
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    lines += [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows]
    lines.append("(precision and errors on the validation split; precision = 100 x (1 - |pred - meas| / meas), "
                 "li2022 Table III)")
    if result["skipped"]:
        lines.append(f"{len(result['skipped'])} row(s) skipped (see warnings)")
    if result.get("profile_written"):
        lines.append(f"wrote {result['profile_written']}")
    return "\n".join(lines)
