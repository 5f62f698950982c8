"""``tosim measure MODEL``: run a model with PyTorch on generated data around an energy counter and
write measurement-CSV rows (calibrate's harness and counters)."""
import argparse
import csv
import io
import math
import os
import sys

from ._io import check_output, non_negative_int, positive_int, write_atomic

__all__ = ["register", "run", "COLUMNS"]

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


def register(subparsers):
    parser = subparsers.add_parser(
        "measure", help="measure a model's energy with a hardware counter (RAPL or NVML)",
        description="Run MODEL with PyTorch on generated data and read an energy counter around each run: "
                    "Linux powercap/RAPL (package zones) or the NVIDIA NVML total-energy counter. Writes one "
                    "measurement-CSV row per run (the format tosim fit reads). Without a readable counter it "
                    "says so in one line and exits 2.")
    parser.add_argument("model", metavar="MODEL", help="model spec file or zoo:NAME (sequential models)")
    parser.add_argument("--phase", default="training", choices=["inference", "validation", "training"],
                        help="what each step runs (default training)")
    parser.add_argument("--batch", type=positive_int, default=1, help="samples per step (default 1)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--samples", type=positive_int, help="samples per epoch (last step partial, like a DataLoader)")
    size.add_argument("--passes", type=positive_int, help="steps of --batch samples per epoch")
    parser.add_argument("--epochs", type=positive_int, default=1, help="epochs per measured run (default 1)")
    parser.add_argument("--repeat", type=positive_int, default=1, help="measured runs, one row each (default 1)")
    parser.add_argument("--counter", default="auto", choices=["auto", "rapl", "nvml"],
                        help="energy counter (auto: NVML if a GPU answers, else RAPL)")
    parser.add_argument("--gpu", type=int, default=0, help="NVML GPU index (default 0)")
    parser.add_argument("--powercap-root", default="/sys/class/powercap",
                        help="where powercap zones are (default /sys/class/powercap)")
    parser.add_argument("--torch-device", default=None,
                        help="where the model runs (default: cuda:GPU for NVML, cpu for RAPL)")
    parser.add_argument("--device-name", default=None,
                        help="value of the device column (default: the counter's channels)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the generated data and weights")
    parser.add_argument("--interval", type=_interval, default=5.0, help="counter sampling interval in seconds")
    parser.add_argument("--out", metavar="F.csv", help="append the rows to this CSV (written with a header "
                        "if new; an existing file must have this command's header); default: print CSV on stdout")
    parser.set_defaults(func=run)


def _model_column(model_arg, out):
    """The model as the CSV should name it: zoo names as given, files relative to the CSV."""
    if model_arg.startswith("zoo:") or not os.path.exists(model_arg):
        return model_arg
    if out is None:
        return os.path.abspath(model_arg)
    return os.path.relpath(os.path.abspath(model_arg), os.path.dirname(os.path.abspath(out)))


def _existing_rows(path):
    """The text of an existing --out file (empty when new or blank); CommandError unless it is a
    measurement CSV this command wrote, i.e. its first non-comment line is :data:`COLUMNS`."""
    from .cli import CommandError
    if not os.path.exists(path):
        return ""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise CommandError(f"--out {path}: not a text CSV (not UTF-8); cannot append to it") from None
    except OSError as exc:
        raise CommandError(f"--out {path}: cannot read: {exc.strerror or exc}") from None
    if "\0" in text:
        raise CommandError(f"--out {path}: not a text CSV (NUL bytes); cannot append to it")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        header = [c.strip() for c in next(csv.reader([line]))]
        if header != COLUMNS:
            raise CommandError(f"--out {path}:{number}: header is not the measurement header "
                               f"{','.join(COLUMNS)}; cannot append to it")
        return text
    return ""


def _check_torch_device(name, option):
    """CommandError (naming ``option``) unless PyTorch can place a tensor on ``name``."""
    from calibrate._harness import _torch
    from .cli import CommandError
    torch = _torch()
    try:
        torch.zeros(1, device=torch.device(name))
    except (RuntimeError, AssertionError, ValueError, TypeError) as exc:
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        raise CommandError(f"{option}: not a usable torch device: {reason}") from None


def run(args):
    import calibrate
    import opcount
    # the output before any work: right extension, folder, header of an existing file
    if args.out is not None:
        check_output(args.out, "--out", (".csv",), inputs=(args.model,))
        _existing_rows(args.out)
    # the counter next: without one nothing else is worth loading
    counter = calibrate.detect_counter(args.counter, root=args.powercap_root, gpu_indices=(args.gpu,))
    try:
        model = opcount.load_model(args.model)
        if args.torch_device is not None:
            torch_device = args.torch_device
            _check_torch_device(torch_device, f"--torch-device {torch_device}")
        else:
            torch_device = f"cuda:{args.gpu}" if counter.kind == "nvml" else "cpu"
            _check_torch_device(torch_device, f"torch device {torch_device} (for the {counter.kind} counter)")
        try:
            rows = calibrate.measure_runs(model, counter, model_name=_model_column(args.model, args.out),
                                          phase=args.phase, batch=args.batch, samples=args.samples,
                                          passes=args.passes, epochs=args.epochs, repeat=args.repeat,
                                          torch_device=torch_device, seed=args.seed, interval=args.interval)
        except (RuntimeError, TypeError, OverflowError, MemoryError) as exc:
            # tensors too large to allocate or to index (a huge --batch or layer size)
            from .cli import CommandError
            lines = str(exc).strip().splitlines()
            reason = lines[0] if lines else type(exc).__name__
            raise CommandError(f"{args.model}: PyTorch cannot run it at batch {args.batch} on {torch_device}: "
                               f"{reason}") from None
    finally:
        counter.close()
    for row in rows:
        if args.device_name:
            row["device"] = args.device_name
        if row["energy_j"] <= 0:
            print(f"tosim: warning: the counter did not advance during a run of {row['seconds']} s; "
                  f"run longer (more --epochs or --samples)", file=sys.stderr)
    if args.out is not None:
        # append by rewriting: the old rows plus the new ones replace the file atomically
        old = _existing_rows(args.out)
        buffer = io.StringIO()
        _write(buffer, rows, header=not old)
        write_atomic(args.out, old + ("" if not old or old.endswith("\n") else "\n") + buffer.getvalue())
    else:
        buffer = io.StringIO()
        _write(buffer, rows, header=True)
        sys.stdout.write(buffer.getvalue())
    return 0


def _write(fh, rows, *, header):
    writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({**row, "energy_j": repr(float(row["energy_j"]))})
