"""``tosim measure MODEL``: run a model with PyTorch on generated data around an energy counter and
write measurement-CSV rows (calibrate's harness and counters).

``tosim measure --suite layers``: a seeded benchmark of single-layer configurations
(:func:`calibrate.layer_suite`), each written as a one-layer model spec beside the CSV and
measured in inference passes, as many as the counter needs to resolve the run's energy (its
update interval and step, probed at the start, :func:`calibrate.probe_counter`). One row per
configuration is appended as soon as it is measured.

Appends to ``--out`` hold a lock (``tosim._io.locked``) around re-reading and replacing the file,
so concurrent runs writing one CSV lose no rows; a link is written through to its target.
"""
import argparse
import csv
import io
import math
import os
import sys
import time

from hardware_profiles.schema import PHASES

from ._io import check_output, locked, non_negative_int, positive_int, write_atomic

__all__ = ["register", "run", "COLUMNS"]

#: the relative accuracy the suite's runs are sized for (each end of a run off by one counter step)
ACCURACY = 0.02

COLUMNS = ["model", "energy_j", "phase", "batch", "samples", "epochs", "passes", "device", "seconds", "date"]


def _interval(text):
    """argparse type: a positive finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _batch(text):
    """argparse type: a batch size ``N`` or, for --suite, a range ``LOW-HIGH``; (low, high)."""
    parts = text.split("-")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(v < 1 for v in values) or values[0] > values[-1]:
        raise argparse.ArgumentTypeError(f"must be a positive integer or a range LOW-HIGH (1 <= LOW <= HIGH), "
                                         f"not {text!r}")
    return values[0], values[-1]


def _seconds(text):
    """argparse type: a positive finite number of seconds."""
    return _interval(text)


def _types(text):
    """argparse type: a comma-separated list of suite layer types."""
    from calibrate import SUITE_LAYER_TYPES
    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        if name not in SUITE_LAYER_TYPES:
            raise argparse.ArgumentTypeError(f"unknown layer type {name!r} (types: {', '.join(SUITE_LAYER_TYPES)})")
    if not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"must name each layer type once, not {text!r}")
    return tuple(names)


def register(subparsers):
    parser = subparsers.add_parser(
        "measure", help="measure a model's energy with a hardware counter (RAPL or NVML)",
        description="Run MODEL with PyTorch on generated data and read an energy counter around each run: "
                    "Linux powercap/RAPL (package zones) or the NVIDIA NVML total-energy counter. Writes one "
                    "measurement-CSV row per run (the format tosim fit reads). With --suite layers, measures a "
                    "seeded benchmark of single-layer configurations instead (conv2d, linear, pooling, "
                    "activations, softmax, normalization, attention), each written as a model spec beside the "
                    "CSV. Without a readable counter it says so in one line and exits 2.")
    parser.add_argument("model", metavar="MODEL", nargs="?",
                        help="model spec file or zoo:NAME (sequential models); or --suite")
    parser.add_argument("--phase", default=None, choices=list(PHASES),
                        help="what each step runs (default training; the suite runs inference)")
    parser.add_argument("--batch", type=_batch, default=None,
                        help="samples per step (default 1); for --suite a range LOW-HIGH drawn from (default 1-256)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--samples", type=positive_int, help="samples per epoch (last step partial, like a DataLoader)")
    size.add_argument("--passes", type=positive_int, help="steps of --batch samples per epoch")
    parser.add_argument("--epochs", type=positive_int, default=None, help="epochs per measured run (default 1)")
    parser.add_argument("--repeat", type=positive_int, default=None, help="measured runs, one row each (default 1)")
    suite = parser.add_argument_group("layer benchmark (--suite layers)")
    suite.add_argument("--suite", choices=["layers"], help="measure the seeded single-layer benchmark instead of MODEL "
                       "(needs --out)")
    suite.add_argument("--count", type=positive_int, default=None,
                       help="configurations to measure (default 50, or as many as --budget allows)")
    suite.add_argument("--budget", type=_seconds, default=None, metavar="SECONDS",
                       help="stop starting configurations once this much time would be passed")
    suite.add_argument("--types", type=_types, default=None,
                       help="comma-separated layer types, taking turns (default all: conv2d, linear, maxpool2d, "
                            "avgpool2d, relu, sigmoid, tanh, gelu, softmax, layernorm, batchnorm, attention, sdpa)")
    suite.add_argument("--run-seconds", type=_seconds, default=None,
                       help="shortest measured run per configuration (default 1); longer where the counter's update "
                            "interval and step need it for 2%% accuracy")
    suite.add_argument("--specs", metavar="DIR", default=None,
                       help="folder of the configurations' model specs (default tosim-layers/ beside --out)")
    parser.add_argument("--counter", default="auto", choices=["auto", "rapl", "nvml"],
                        help="energy counter (auto: NVML if a GPU answers, else RAPL)")
    parser.add_argument("--gpu", type=int, default=0, help="NVML GPU index (default 0)")
    parser.add_argument("--powercap-root", default="/sys/class/powercap",
                        help="where powercap zones are (default /sys/class/powercap)")
    parser.add_argument("--torch-device", default=None,
                        help="where the model runs (default: cuda:GPU for NVML, cpu for RAPL)")
    parser.add_argument("--device-name", default=None,
                        help="value of the device column (default: the counter's channels)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the generated data and weights (and of the suite's configurations)")
    parser.add_argument("--interval", type=_interval, default=5.0, help="counter sampling interval in seconds")
    parser.add_argument("--out", metavar="F.csv", help="append the rows to this CSV (written with a header "
                        "if new; an existing file must have this command's header; concurrent runs may share it; "
                        "a link is written through); default: print CSV on stdout")
    parser.set_defaults(func=run)


def _model_column(model_arg, out):
    """The model as the CSV should name it: zoo names as given, files relative to the CSV; absolute
    when there is no CSV or it is reached through a link (a reader may open the link or its
    target, whose folders differ)."""
    if model_arg.startswith("zoo:") or not os.path.exists(model_arg):
        return model_arg
    if out is None or os.path.islink(out):
        return os.path.abspath(model_arg)
    return os.path.relpath(os.path.abspath(model_arg), os.path.dirname(os.path.abspath(out)))


def _existing_rows(path, shown=None):
    """The text of an existing --out file (empty when new or blank); CommandError unless it is a
    measurement CSV this command wrote, i.e. its first non-comment line is :data:`COLUMNS`.
    ``shown`` is the path as the user gave it (``path`` may be a link's target)."""
    from .cli import CommandError
    shown = path if shown is None else shown
    if not os.path.exists(path):
        return ""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise CommandError(f"--out {shown}: not a text CSV (not UTF-8); cannot append to it") from None
    except OSError as exc:
        raise CommandError(f"--out {shown}: cannot read: {exc.strerror or exc}") from None
    if "\0" in text:
        raise CommandError(f"--out {shown}: not a text CSV (NUL bytes); cannot append to it")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        header = [c.strip() for c in next(csv.reader([line]))]
        if header != COLUMNS:
            raise CommandError(f"--out {shown}:{number}: header is not the measurement header "
                               f"{','.join(COLUMNS)}; cannot append to it")
        return text
    return ""


def _check_torch_device(name, option):
    """CommandError (naming ``option``) unless PyTorch can place a tensor on ``name``."""
    from calibrate import require_torch

    from .cli import CommandError
    torch = require_torch()
    try:
        torch.zeros(1, device=torch.device(name))
    except (RuntimeError, AssertionError, ValueError, TypeError) as exc:
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        raise CommandError(f"{option}: not a usable torch device: {reason}") from None


_MODEL_ONLY = ("phase", "samples", "passes", "epochs", "repeat")
_SUITE_ONLY = ("count", "budget", "types", "run_seconds", "specs")


def _check_mode(args):
    """CommandError unless MODEL or --suite is given (not both) with options that apply to it."""
    from .cli import CommandError
    if (args.model is None) == (args.suite is None):
        raise CommandError("give a MODEL or --suite layers" + (", not both" if args.model else ""))
    if args.suite:
        for name in _MODEL_ONLY:
            if getattr(args, name) is not None and not (name == "phase" and args.phase == "inference"):
                raise CommandError(f"--{name}: applies to a MODEL, not to --suite (the suite runs inference passes "
                                   f"timed to the counter)")
        if args.out is None:
            raise CommandError("--suite needs --out F.csv (the model specs are written beside it)")
    else:
        for name in _SUITE_ONLY:
            if getattr(args, name) is not None:
                raise CommandError(f"--{name.replace('_', '-')}: applies to --suite only")
        if args.batch is not None and args.batch[0] != args.batch[1]:
            raise CommandError(f"--batch {args.batch[0]}-{args.batch[1]}: a range applies to --suite only")


def run(args):
    import calibrate
    _check_mode(args)
    # the output before any work: right extension, folder, header of an existing file
    if args.out is not None:
        check_output(args.out, "--out", (".csv",), inputs=(args.model,))
        _existing_rows(args.out)
    if args.suite:
        return _run_suite(args)
    import opcount
    batch = args.batch[0] if args.batch else 1
    phase = args.phase or "training"
    # the counter next: without one nothing else is worth loading
    counter = calibrate.detect_counter(args.counter, root=args.powercap_root, gpu_indices=(args.gpu,))
    rows, failure = [], None
    try:
        model = opcount.load_model(args.model)
        torch_device = _torch_device(args, counter)
        try:
            for row in calibrate.iter_runs(model, counter, model_name=_model_column(args.model, args.out),
                                           phase=phase, batch=batch, samples=args.samples,
                                           passes=args.passes, epochs=args.epochs or 1, repeat=args.repeat or 1,
                                           torch_device=torch_device, seed=args.seed, interval=args.interval):
                rows.append(row)
        except calibrate.CounterError as exc:
            failure = exc       # the runs measured before it are kept
        except (RuntimeError, TypeError, OverflowError, MemoryError) as exc:
            # tensors too large to allocate or to index (a huge --batch or layer size)
            from .cli import CommandError
            raise CommandError(f"{args.model}: PyTorch cannot run it at batch {batch} on {torch_device}: "
                               f"{_first_line(exc)}") from None
    finally:
        counter.close()
    if failure is not None and not rows:
        raise failure
    for row in rows:
        if args.device_name:
            row["device"] = args.device_name
        if row["energy_j"] <= 0:
            print(f"tosim: warning: the counter did not advance during a run of {row['seconds']} s; "
                  f"run longer (more --epochs or --samples)", file=sys.stderr)
    if args.out is not None:
        _append(args.out, rows)
    else:
        buffer = io.StringIO()
        _write(buffer, rows, header=True)
        sys.stdout.write(buffer.getvalue())
    if failure is not None:
        print(f"tosim: error: run {len(rows) + 1} of {args.repeat or 1}: {failure} (the {len(rows)} run"
              f"{'s' if len(rows) != 1 else ''} before it {'were' if len(rows) != 1 else 'was'} written)",
              file=sys.stderr)
        return 1
    return 0


def _first_line(exc):
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _torch_device(args, counter):
    if args.torch_device is not None:
        _check_torch_device(args.torch_device, f"--torch-device {args.torch_device}")
        return args.torch_device
    name = f"cuda:{args.gpu}" if counter.kind == "nvml" else "cpu"
    _check_torch_device(name, f"torch device {name} (for the {counter.kind} counter)")
    return name


def _append(path, rows, comment=None):
    """Append ``rows`` (and a ``# comment`` line before them) to the measurement CSV ``path`` under
    its lock: re-read, check the header, replace atomically (through a link to its target)."""
    with locked(path) as real:
        old = _existing_rows(real, shown=path)
        buffer = io.StringIO()
        if comment:
            buffer.write(f"# {comment}\n")
        _write(buffer, rows, header=not old)
        write_atomic(real, old + ("" if not old or old.endswith("\n") else "\n") + buffer.getvalue())


def _write(fh, rows, *, header):
    writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({**row, "energy_j": repr(float(row["energy_j"]))})


def _progress(text):
    print(f"tosim measure: {text}", file=sys.stderr, flush=True)


def _spec_text(spec):
    import yaml
    return yaml.safe_dump(spec, default_flow_style=None, sort_keys=False)


def _write_spec(folder, spec):
    """The path of the configuration's spec file in ``folder``, written unless it already holds
    this configuration; MeasurementError if a file of that name holds something else."""
    import calibrate
    path = os.path.join(folder, spec["name"] + ".yaml")
    text = _spec_text(spec)
    if os.path.lexists(path):
        try:
            with open(path, encoding="utf-8") as fh:
                same = fh.read() == text
        except (OSError, UnicodeDecodeError):
            same = False
        if not same:
            raise calibrate.MeasurementError(f"{path} exists and holds something else; not overwritten")
        return path
    write_atomic(path, text)
    return path


def _run_suite(args):
    """``--suite layers``: probe the counter, then measure configurations until --count or
    --budget, appending one row per configuration. Exit 0, or 1 when some configurations failed
    (each named on stderr; the others' rows are written)."""
    import calibrate
    import opcount
    from .cli import CommandError
    t_start = time.monotonic()
    lo, hi = args.batch or (1, 256)
    types = args.types or calibrate.SUITE_LAYER_TYPES
    count = args.count if args.count is not None else (None if args.budget is not None else 50)
    folder = os.path.dirname(os.path.realpath(args.out))
    specs = os.path.abspath(args.specs) if args.specs else os.path.join(folder, "tosim-layers")
    if os.path.exists(specs) and not os.path.isdir(specs):
        raise CommandError(f"--specs {specs}: not a folder")
    counter = calibrate.detect_counter(args.counter, root=args.powercap_root, gpu_indices=(args.gpu,))
    failures = done = 0
    try:
        torch_device = _torch_device(args, counter)
        _progress(f"probing the counter {'+'.join(counter.channels)} (keep the machine otherwise idle)")
        probe = calibrate.probe_counter(counter)
        # never shorter than the counter needs: each end of a run may be off by one update or step
        run_seconds = probe.run_seconds(ACCURACY, floor=args.run_seconds or 1.0)
        resolution_j = 2 * probe.quantum_j / ACCURACY
        _progress(f"counter updates every {probe.update_s * 1e3:.3g} ms in steps of {probe.quantum_j:.3g} J; "
                  f"{probe.power_w:.3g} W while idle; measured runs of {run_seconds:.3g} s each")
        try:
            os.makedirs(specs, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot create the specs folder {specs}: {exc.strerror or exc}") from None
        comment = (f"tosim measure --suite layers --seed {args.seed} --batch {lo}-{hi} --types {','.join(types)}: "
                   f"counter {'+'.join(counter.channels)} (update {probe.update_s:.3g} s, "
                   f"step {probe.quantum_j:.3g} J, "
                   f"idle {probe.power_w:.4g} W), torch device {torch_device}, runs of {run_seconds:.3g} s")
        overhead = None          # seconds a configuration takes beyond its measured run, running mean
        in_a_row = 0
        suite = calibrate.layer_suite(args.seed, types=types, batch=(lo, hi))
        while count is None or done + failures < count:
            if args.budget is not None:
                estimate = run_seconds + (overhead if overhead is not None else 0.5)
                if time.monotonic() - t_start + estimate > args.budget:
                    break
            config = next(suite)
            name = config.spec["name"]
            label = f"[{config.index + 1}{'/' + str(count) if count else ''}] {name} batch {config.batch}"
            t0 = time.monotonic()
            try:
                path = _write_spec(specs, config.spec)
                model = opcount.load_model(path)
                row, _ = calibrate.measure_forward(
                    model, counter, model_name=_model_column(path, args.out), batch=config.batch,
                    run_seconds=run_seconds, torch_device=torch_device, seed=args.seed, interval=args.interval)
                if row["energy_j"] < resolution_j:
                    raise calibrate.MeasurementError(
                        f"{row['energy_j']:.3g} J over {row['seconds']:.3g} s is less than the {resolution_j:.3g} J "
                        f"(100 counter steps) the counter resolves to {ACCURACY:.0%}; not written "
                        f"(use a longer --run-seconds)")
            except (calibrate.MeasurementError, opcount.ModelError, RuntimeError, MemoryError) as exc:
                failures += 1
                in_a_row = in_a_row + 1 if isinstance(exc, calibrate.CounterError) else 0
                _progress(f"{label}: failed: {_first_line(exc)}")
                if in_a_row >= 3:
                    print(f"tosim: error: the counter failed in 3 configurations in a row; stopped after "
                          f"{done} measured", file=sys.stderr)
                    return 1
                continue
            in_a_row = 0
            if args.device_name:
                row["device"] = args.device_name
            _append(args.out, [row], comment=comment if done == 0 else None)
            done += 1
            spent = time.monotonic() - t0
            extra = max(0.0, spent - row["seconds"])
            overhead = extra if overhead is None else 0.8 * overhead + 0.2 * extra
            seconds = row["seconds"]
            _progress(f"{label}: {row['passes']} passes in {seconds:.3g} s, {row['energy_j']:.4g} J "
                      f"({row['energy_j'] / seconds:.4g} W, {seconds / row['passes'] * 1e3:.3g} ms a pass)")
    finally:
        counter.close()
    if done + failures == 0:
        raise CommandError(f"--budget {args.budget:g}: no configuration fits (a measured run alone takes "
                           f"{run_seconds:.3g} s)")
    _progress(f"{done} configuration{'s' if done != 1 else ''} measured, {failures} failed, in "
              f"{time.monotonic() - t_start:.3g} s; rows in {args.out}, specs in {specs}")
    return 1 if failures else 0
