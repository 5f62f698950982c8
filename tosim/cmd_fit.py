"""``tosim fit MEASUREMENTS.csv``: fit a device's joule coefficients on TOs, FLOPs or MACs.

Wiring only: calibrate reads the measurements and fits, :func:`tosim.score_many` gives each
model's TOs, FLOPs and MACs for one step of a batch, and the whole-run rule of scoring sums them
over the workload each measurement row describes (``calibrate.workload_steps``).
"""
import datetime
import os
import sys

from ._io import check_output, json_text, non_negative_int, write_atomic

__all__ = ["register", "run", "FEATURES"]

FEATURES = ("tos", "flops", "macs", "tos-by-op", "tos+movement")
POLY_FEATURES = ("tos", "flops", "macs")
from hardware_profiles.schema import DEFAULT_PROFILE, PHASES


def _fraction(text):
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), not {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), not {text!r}")
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
    parser.add_argument("--weighting", default="absolute", choices=["absolute", "relative"],
                        help="minimise absolute errors in joules (default) or errors relative to the measurement")
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
        from tosim._costs import costs_array
        from tosim.api import score_many
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
        fit = calibrate.fit_polynomial(x[train], y[train], deg, weighting=weighting)
        pred = fit.predict(x)
        return {"feature": name, "degree": deg, "coefficients": fit.coefficients,
                "train": calibrate.metrics(y[train], pred[train]),
                "validation": calibrate.metrics(y[validation], pred[validation])}, pred

    comparison = []
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

    if args.write_profile is not None and args.feature in ("tos-by-op", "tos+movement"):
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
        write_profile(args, profile, result, data.path)
        result["profile_written"] = args.write_profile
    if args.plot is not None:
        from ._plots import fit_scatter
        fit_scatter(args.plot, np.asarray([r.energy_j for r in used]), pred, train, validation, result)
    if args.json:
        print(json_text(result))
    else:
        print(format_report(result))
    return 1 if problems else 0


def _check_finite(chosen, pred, comparison):
    """ValueError when a coefficient, prediction or metric left float64's range."""
    import math
    import numpy as np
    for entry in [chosen] + list(comparison):
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


def write_profile(args, profile, result, csv_path):
    """Write a profile that extends the input profile and adds the fitted device; load it back."""
    import yaml
    import hardware_profiles
    from tosim.cli import CommandError
    name = args.device or result["device"]
    if not name:
        raise CommandError("--write-profile needs a device name: give --device NAME")
    keep = ("rmse", "r2", "precision_min", "precision_max", "precision_avg", "abs_err_avg_j", "abs_err_max_j", "n")
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
    stem = os.path.splitext(os.path.basename(args.write_profile))[0]
    doc = {"schema": 1, "name": stem, "extends": _extends(args.profile, profile, args.write_profile),
           "devices": {name: device}}
    text = ("# written by tosim fit; the device's coefficients turn a run's total "
            f"{result['feature']} into joules\n" + yaml.safe_dump(doc, sort_keys=False, width=100))
    write_atomic(args.write_profile, text)
    hardware_profiles.load_file(args.write_profile)   # what we write must load


def _coeffs(entry):
    if isinstance(entry["coefficients"], dict):
        return f"{entry['intercept']:.3e} + " + " + ".join(f"{c:.3e}·{op}" for op, c in entry["coefficients"].items())
    return ", ".join(f"{c:.3e}" for c in entry["coefficients"])


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
