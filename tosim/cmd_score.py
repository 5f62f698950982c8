"""``tosim score INPUTS...``: batch scoring of model files, folders and built-in zoo models.

Argument parsing and printing only: the scoring is :func:`tosim.score_many` (:mod:`tosim.api`).
One row per model: params, MACs, FLOPs, basic-op counts of the phase, TOs per stage and in
total, and with ``--device`` the energy of the device's fitted polynomial and its carbon
(CodeCarbon's method, :mod:`tosim._energy`). A model that cannot be read or counted becomes a
row with its ``error``; the others are still scored and written, and the exit status is 1.
"""
import argparse
import math
import os
import sys
import time

from ._io import check_output, positive_int
from ._progress import ProgressBar
from ._render import format_score_table, si

__all__ = ["register", "run", "expand_inputs", "ProgressBar", "MODEL_EXTENSIONS", "plot_paths", "si"]


def __getattr__(name):
    # re-exported from the pipeline on first use: building the parser (``tosim --help``) must not
    # import opcount and numpy
    if name in ("MODEL_EXTENSIONS", "expand_inputs"):
        from . import _pipeline
        return getattr(_pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


from hardware_profiles.schema import DEFAULT_PROFILE, PHASES


# --- arguments --------------------------------------------------------------------------------

def register(subparsers):
    parser = subparsers.add_parser(
        "score", help="batch scoring: TOs, energy and carbon of models, files, folders and the zoo",
        description="Score models: params, MACs, FLOPs, basic-op counts, TOs per stage and in total, and with "
                    "--device the energy (joules) and carbon (gCO2e). INPUTS are model files (.yaml/.yml/.json "
                    "spec, Hugging Face config.json, .onnx), folders (searched recursively for those), zoo:NAME "
                    "or zoo:all. Without INPUTS the whole built-in zoo is scored. A bad input becomes a row "
                    "with its error (exit status 1); every good row is still written.")
    parser.add_argument("inputs", metavar="INPUTS", nargs="*", help="files, folders, zoo:NAME, zoo:all (default zoo:all)")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help=f"profile name or YAML file (default {DEFAULT_PROFILE})")
    parser.add_argument("--device", default=None,
                        help="a device of the profile whose fitted coefficients turn TOs/FLOPs/MACs into joules")
    parser.add_argument("--phase", default="inference",
                        choices=[*PHASES, "prefill", "decode", "generate"],
                        help="inference = forward; validation = + loss; training = + backward + update; "
                             "prefill, decode, generate: serving a causal language model (see below)")
    parser.add_argument("--batch", type=positive_int, default=1, help="samples per batch (default 1)")
    whole = parser.add_argument_group(
        "whole run", "score a whole run instead of one step, as a row of tosim fit's measurement CSV: "
                     "epochs x the steps of one epoch (devices fitted on whole runs, such as li2022's, need this)")
    whole.add_argument("--samples", type=positive_int, default=None,
                     help="samples per epoch: samples // batch full steps and one step of the rest")
    whole.add_argument("--passes", type=positive_int, default=None,
                     help="steps per epoch, each of --batch samples (not with --samples)")
    whole.add_argument("--epochs", type=positive_int, default=None,
                     help="epochs of the run (default 1); alone, an epoch is one step of --batch samples")
    from .cmd_count import add_format_arguments
    add_format_arguments(parser)
    from ._score_serving import add_arguments as add_serving_arguments
    add_serving_arguments(parser)
    parser.add_argument("--grid-intensity", type=_non_negative_float, default=None, metavar="G_PER_KWH",
                        help="grid carbon intensity in gCO2e/kWh (default: the profile's, 475 world average)")
    parser.add_argument("--out", default=None, metavar="FILE.csv|FILE.json",
                        help="write the rows to a CSV or JSON file (chosen by the extension)")
    parser.add_argument("--per-layer", action="store_true", help="add the per-layer breakdown")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--jobs", type=positive_int, default=None,
                        help="processes that read and count models (default: automatic; 1 = in this process)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: when stderr is a terminal)")
    from .cmd_count import add_model_arguments, add_movement_arguments
    add_model_arguments(parser)
    add_movement_arguments(parser)
    parser.add_argument("--plot", default=None, metavar="F.png",
                        help="with a memory profile: one stacked-bar PNG per model, F-<model>.png (a repeated "
                             "model name gets -2, -3, ...; characters other than letters, digits, '.', '_' and "
                             "'-' become '_'), compute vs data movement per layer; of a whole run, its first step")
    parser.set_defaults(func=run)


def plot_paths(plot, names):
    """The per-model plot files of ``--plot F.png``: ``F-<name>.png`` for each name, in order,
    the name's characters other than letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``
    and a repeated name given ``-2``, ``-3``, ... so that no plot overwrites another."""
    import re
    root, ext = os.path.splitext(plot)
    used, out = set(), []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)) or "model"
        candidate, k = base, 2
        while candidate.lower() in used:
            candidate, k = f"{base}-{k}", k + 1
        used.add(candidate.lower())
        out.append(f"{root}-{candidate}{ext or '.png'}")
    return out


def _non_negative_float(text):
    """argparse type of a grid intensity (g/kWh): a number in 0..1e6, the profile's own bound
    (real grids are below 2,000), so that carbon stays finite."""
    from hardware_profiles.loader import MAX_GRID_INTENSITY
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= MAX_GRID_INTENSITY):
        raise argparse.ArgumentTypeError(f"must be a number in 0..{MAX_GRID_INTENSITY:g}, not {text!r}")
    return value


# --- the command ------------------------------------------------------------------------------

def run(args):
    import hardware_profiles

    from .cli import printable

    from . import api
    from ._costs import SynthesisProgress
    from ._energy import extrapolation_warning, resolve_device
    from .cmd_count import dims as onnx_dims
    from ._pipeline import movement_fields
    inputs = []
    if args.out is not None or args.plot is not None:
        from ._pipeline import expand_inputs
        inputs = [s for s in expand_inputs(args.inputs) if not s.startswith("zoo:")] + [args.profile]
        if args.out is not None:
            check_output(args.out, "--out", (".csv", ".json"), inputs=inputs)
        if args.plot is not None:
            check_output(args.plot, "--plot", (".png",), inputs=inputs)
    profile = hardware_profiles.load(args.profile)
    if args.out is not None or args.plot is not None:
        # the profile's extends: chain is read too; none of it may be an output
        inputs += [path for path in profile.chain if not path.startswith("builtin:")]
        for option, path, extensions in (("--out", args.out, (".csv", ".json")), ("--plot", args.plot, (".png",))):
            if path is not None:
                check_output(path, option, extensions, inputs=inputs)
    device = resolve_device(profile, args.device) if args.device else None
    if device is None and args.grid_intensity is not None:
        print("tosim: note: --grid-intensity prices the energy of a --device; without one there is no carbon "
              "to compute", file=sys.stderr)
    if device is not None and device.get("phase") and device["phase"] != args.phase:
        print(f"tosim: note: device {args.device!r} was fitted on {device['phase']} measurements; "
              f"these rows score the {args.phase} phase", file=sys.stderr)
    with_movement = bool(movement_fields(profile))
    from . import _score_serving
    if args.phase in _score_serving.SERVING_PHASES:
        from ._pipeline import expand_inputs as expand
        from opcount import CAUSAL_LMS
        # without INPUTS: every causal language model of the zoo
        return _score_serving.run(args, profile, device,
                                  expand(args.inputs or [f"zoo:{name}" for name in sorted(CAUSAL_LMS)]))
    for flag in ("prompt", "new_tokens", "context", "per_token"):
        if getattr(args, flag) is not None:
            from .cli import CommandError
            raise CommandError(f"--{flag.replace('_', '-')} is for --phase prefill, decode or generate")
    if not with_movement and (args.plot or args.density_weights != 1.0 or args.density_inputs != 1.0):
        from .cli import CommandError
        raise CommandError(f"profile {profile.name!r} has no memory section, so there is no data movement "
                           "to plot or sparsity to apply (try --profile horowitz45 or yang2017)")
    from ._pipeline import expand_inputs
    skipped = []
    sources = expand_inputs(args.inputs, skipped)
    for path, reason in skipped:
        print(f"tosim: note: skipped {path}: {reason}", file=sys.stderr)
    if not sources:
        from .cli import CommandError
        raise CommandError(f"no model files found in {', '.join(args.inputs)}"
                           + (f" ({len(skipped)} file(s) skipped as no model)" if skipped else ""))
    workload = None
    if args.samples is not None or args.passes is not None or args.epochs is not None:
        workload = api.Workload(samples=args.samples, passes=args.passes, epochs=args.epochs or 1)
    steps = workload.steps(args.batch) if workload is not None else ((args.batch, 1),)
    enabled = sys.stderr.isatty() if args.progress is None else args.progress
    started = time.perf_counter()
    bar = ProgressBar(len(sources) * len(steps), "scoring", enabled)
    try:
        results = api.score_many(sources, profile, phase=args.phase, batch=args.batch, device=device,
                                 workload=workload, per_layer=args.per_layer, grid_intensity=args.grid_intensity,
                                 seq=args.seq, loss=args.loss, optimizer=args.optimizer,
                                 densities={"weights": args.density_weights, "inputs": args.density_inputs}
                                 if with_movement else None,
                                 jobs=args.jobs, progress=bar, synth_progress=SynthesisProgress(), format=args.format,
                                 recompute=args.recompute, master_format=args.master_format,
                                 batch_axis=args.batch_axis, dims=onnx_dims(args), quantize=args.quantize)
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    plots = []
    if args.plot:
        from ._plots import movement_bars
        good = [r for r in results if r.error is None]
        paths = plot_paths(args.plot, [r.name for r in good])
        for path in paths:
            # every per-model plot path is checked before any plot or the --out file is written
            check_output(path, "--plot", (".png",), inputs=inputs)
        for r, path in zip(good, paths):
            movement_bars(r.movement, path)
            plots.append(path)
    if args.out:
        if os.path.splitext(args.out)[1].lower() == ".csv":
            results.to_csv(args.out)
        else:
            results.to_json(args.out)
    failed = results.failed
    if args.json:
        sys.stdout.write(results.to_json())
    else:
        print(format_score_table(results, device is not None, with_movement))
        grid = profile.grid_gco2_per_kwh if args.grid_intensity is None else args.grid_intensity
        text = f"batch {args.batch}"
        if workload is not None:
            total = workload.total_steps(args.batch)
            epoch = (f"{args.samples:,} samples" if args.samples is not None
                     else f"{args.passes or 1:,} step{'s' if (args.passes or 1) > 1 else ''}")
            text += (f", whole run: {workload.epochs:,} epoch(s) of {epoch} = {total:,} "
                     f"step{'s' if total > 1 else ''}")
        summary = (f"{len(results) - len(failed)} of {len(results)} models scored with {profile.name} "
                   f"({args.phase}, {text}) in {seconds:.2f} s")
        if device is not None:
            how = "energy model: joules per layer and per term" if "energy_model" in device else device["feature"]
            summary += f"; energy from device {args.device} ({how}), carbon at {grid:g} gCO2e/kWh"
        print("\n" + summary)
        bases = [(r.name, r.switching_basis) for r in results if r.switching is not None]
        if len({basis for _, basis in bases}) == 1:
            print(f"switching J: {printable(bases[0][1])}")
        else:           # models priced on their own operands (power.distribution: model): one each
            for name, basis in bases:
                print(f"switching J ({name}): {printable(basis)}")
        if any(r.incomplete_types for r in results):
            print("(!) INCOMPLETE: some layers could not be fully counted (see the incomplete column)")
            for r in results:
                if r.incomplete_types:
                    kinds = ", ".join(f"{t} x{n}" for t, n in sorted(r.incomplete_types.items()))
                    print(f"INCOMPLETE: {r.name}: {kinds}; the TOs are too low")
        for r in results:
            for item in r.assumptions:
                print(f"ASSUMED: {r.name}: {item}")
    if args.out:
        print(f"wrote {len(results)} rows to {args.out}", file=sys.stderr)
    far = extrapolation_warning(args.device, device, results) if device is not None else None
    if far is not None:
        print(f"tosim: warning: {far}", file=sys.stderr)
    for path in plots:
        print(f"wrote {path}", file=sys.stderr)
    from .cli import printable
    for r in failed:
        print(f"tosim: error: {printable(r.error)}", file=sys.stderr)
    return 1 if failed else 0
