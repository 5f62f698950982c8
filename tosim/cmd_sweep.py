"""``tosim sweep mlp|cnn``: TOs (and joules) of model families over ranges of their parameters.

Configurations are the cartesian product of the axes; their counts come from
:mod:`opcount.sweep`'s numba kernels straight from the parameter arrays (no Python object per
model), their TOs from :func:`opcount.kernel.tos_from_counts`. Output: a CSV (``--out``) and a
PNG (``--plot``) of TOs and FLOPs (and joules with ``--device``) against one swept axis, one line
per combination of the other swept axes, as the paper's Fig. 6a (MLP width x activation) and
Fig. 7a (CNN depth).

Axis values: ``8`` | ``4,8,16`` | ``4:18`` (every integer) | ``4:64:+4`` (step) | ``4:4096:x2``
(geometric); activations as names separated by commas.

Limits, checked before anything is allocated (exit status 2 naming the option): at most
:data:`MAX_CONFIGS` (10 million) configurations in a sweep (counting takes about 0.5 KB per
configuration), with ``--out`` too: the CSV is written in chunks of :data:`CSV_CHUNK_ROWS` rows
to a temporary file renamed over the target, so its text is never held whole; :data:`MAX_ROWS`
(2 million) with ``--json``, which builds every row as a Python object (about 2 KB each); every value, ``--batch`` and the fixed sizes
at most 2**62 (:data:`opcount.sweep.MAX_VALUE`: they fit int64, and a count past int64 is
flagged, never wrapped); a CNN's ``--depth`` and ``--kernel`` at most :data:`MAX_CNN_LOOP`
(10,000: the kernel loops over the layers and the kernel taps of each configuration).
"""
import argparse
import math
import re
import sys
import time

from hardware_profiles.schema import BASIC_OPS as OPS, DEFAULT_PROFILE, STAGES

from ._io import check_output, json_text, write_atomic
from ._energy import FEATURE_LABELS, FIT_MARGIN, carbon_grams, energy_joules, resolve_device
from ._render import si
from .cmd_score import _non_negative_float

__all__ = ["register", "run", "parse_axis", "sweep_rows", "AXES", "MAX_CONFIGS", "MAX_ROWS", "MAX_VALUE",
           "MAX_CNN_LOOP"]


#: Axes of each family: (name, default, help); the first varying one is the plot's x by default.
AXES = {
    "mlp": [("width", "4:4096:x2", "hidden width"), ("depth", "3", "hidden blocks (linear + activation)"),
            ("activation", "sigmoid,tanh,gelu", "activation functions")],
    "cnn": [("depth", "2:10", "conv blocks (conv2d + activation)"), ("kernel", "3", "square kernel size"),
            ("channels", "32", "output channels of every conv"), ("image", "256", "square input size"),
            ("padding", "0", "padding of every conv"), ("activation", "gelu", "activation functions")],
}
# fixed (scalar) settings of each family: (name, default, help)
FIXED = {
    "mlp": [("inputs", 4, "input features"), ("outputs", 1, "output features")],
    "cnn": [("in_channels", 3, "input channels"), ("classes", 2, "output classes")],
}
DEFAULT_LOSS = {"mlp": "mse", "cnn": "cross_entropy"}
#: Sweeps with more configurations than this print a summary instead of a table.
TABLE_ROWS = 60
#: The most configurations a sweep may have (the parameter and count arrays take about 0.5 KB
#: per configuration).
MAX_CONFIGS = 10_000_000
#: The most configurations with ``--json`` (every row held as a Python object, about 2 KB more);
#: ``--out`` streams its rows and has :data:`MAX_CONFIGS`.
MAX_ROWS = 2_000_000
#: The largest value of an axis, ``--batch`` or a fixed size: :data:`opcount.sweep.MAX_VALUE`,
#: spelled out so that building the parser does not import numba (the tests check that the two agree).
MAX_VALUE = 2 ** 62
#: The largest CNN depth and kernel: the kernel loops over the layers, and over the taps of each.
MAX_CNN_LOOP = 10_000


#: The activations of :data:`opcount.sweep.ACTIVATIONS`, spelled out so that building the
#: parser does not import numba (the tests check that the two agree).
ACTIVATION_NAMES = ("sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "relu")


LIMITS = (f"Limits: {MAX_CONFIGS:,} configurations ({MAX_ROWS:,} with --json); values, --batch and "
          f"sizes at most 2**62; CNN depth and kernel at most {MAX_CNN_LOOP:,}.")


def _size(text):
    """argparse type: an integer from 1 to :data:`MAX_VALUE`."""
    value = int(text) if text.strip().isascii() and text.strip().isdecimal() else 0
    if not 1 <= value <= MAX_VALUE:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 2**62, not {text!r}")
    return value


def register(subparsers):
    from hardware_profiles import schema   # the names only: building the parser imports no numpy
    parser = subparsers.add_parser(
        "sweep", help="TOs of model families over parameter ranges (MLP width/depth/activation, CNN depth/kernel)",
        description="Count and price every configuration of a model family with a numba kernel (no Python object "
                    "per model). Axis values: 8 | 4,8,16 | 4:18 | 4:64:+4 | 4:4096:x2; activations: "
                    + ", ".join(ACTIVATION_NAMES) + ". " + LIMITS)
    families = parser.add_subparsers(dest="family", metavar="FAMILY", required=True, parser_class=type(parser))
    for family, axes in AXES.items():
        what = ("MLP: inputs -> depth x (linear(width) + activation) -> linear(outputs)" if family == "mlp" else
                "CNN: depth x (conv2d(channels, kernel) + activation) -> global average pool -> linear(classes)")
        p = families.add_parser(family, help=what, description=what, epilog=LIMITS)
        for name, default, text in axes:
            p.add_argument(f"--{name.replace('_', '-')}", dest=name, default=default, metavar="VALUES",
                           help=f"{text} (default {default})")
        for name, default, text in FIXED[family]:
            p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_size, default=default,
                           help=f"{text} (default {default})")
        p.add_argument("--x", default=None, choices=[a[0] for a in axes],
                       help="the axis on the plot's x (default: the first axis with more than one value)")
        p.add_argument("--profile", default=DEFAULT_PROFILE, help=f"profile name or YAML file (default {DEFAULT_PROFILE})")
        p.add_argument("--format", default=None, choices=list(schema.FORMATS),
                       help="number format of every layer (default: the profile's default format)")
        p.add_argument("--phase", default="inference", choices=list(schema.PHASES),
                       help="inference = forward; validation = + loss; training = + backward + update")
        p.add_argument("--batch", type=_size, default=1, help="samples per batch (default 1)")
        p.add_argument("--loss", default=DEFAULT_LOSS[family], choices=list(schema.LOSSES),
                       help=f"loss (default {DEFAULT_LOSS[family]})")
        p.add_argument("--optimizer", default="sgd", choices=list(schema.OPTIMIZERS), help="optimizer (default sgd)")
        p.add_argument("--device", default=None, help="a device of the profile: adds energy_j and gco2e")
        p.add_argument("--grid-intensity", type=_non_negative_float, default=None, metavar="G_PER_KWH",
                       help="grid carbon intensity in gCO2e/kWh (default: the profile's)")
        p.add_argument("--out", default=None, metavar="FILE.csv", help="write one row per configuration")
        p.add_argument("--plot", default=None, metavar="FILE.png", help="plot TOs and FLOPs (and joules) against --x")
        p.add_argument("--json", action="store_true", help="print the rows as JSON")
        p.set_defaults(func=run)


_RANGE = re.compile(r"^(\d+):(\d+)(?::([x+]?)(\d+(?:\.\d+)?))?$")


def _check_values(name, values, maximum, extra=0):
    if len(values) + extra > MAX_CONFIGS:
        raise ValueError(f"--{name}: {len(values) + extra:,} values; a sweep has at most {MAX_CONFIGS:,} "
                         "configurations")
    if values and max(values) > maximum:
        raise ValueError(f"--{name}: values must be at most {_limit_text(maximum)}, not {max(values)}")


def _limit_text(maximum):
    return "2**62" if maximum == MAX_VALUE else f"{maximum:,}"


def parse_axis(name, text, maximum=MAX_VALUE):
    """Values of an integer axis from ``8``, ``4,8,16``, ``4:18``, ``4:64:+4``, ``4:4096:x2``
    (ranges inclusive of their end where the steps reach it), in the order written, duplicates
    dropped. Values lie from 1 (0 for padding) to ``maximum`` (default :data:`MAX_VALUE`), and an
    axis has at most :data:`MAX_CONFIGS` values, counted before any list is built. Raises
    ValueError with a one-line message."""
    values = []
    for item in str(text).split(","):
        item = item.strip()
        if item.isascii() and item.isdecimal():
            values.append(int(item))
            _check_values(name, values, maximum)
            continue
        match = _RANGE.match(item)
        if not match:
            raise ValueError(f"--{name}: {item!r} is not a number or a range A:B, A:B:+STEP, A:B:xFACTOR")
        start, stop, kind, step = int(match[1]), int(match[2]), match[3], match[4]
        if stop < start:
            raise ValueError(f"--{name}: range {item!r} ends before it starts")
        if stop > maximum:
            raise ValueError(f"--{name}: values must be at most {_limit_text(maximum)}, not {stop} (the end of "
                             f"{item!r})")
        if kind == "x":
            factor = float(step)
            if factor <= 1:
                raise ValueError(f"--{name}: the factor of {item!r} must be above 1")
            if start < 1:
                raise ValueError(f"--{name}: a geometric range starts at 1 or more, not {start}")
            # the number of steps before listing them: a factor just above 1 takes very many
            steps = math.log(stop / start) / math.log(factor) if math.isfinite(factor) else 0
            _check_values(name, values, maximum, extra=int(steps) + 1)
            value = float(start)
            while math.isfinite(value) and round(value) <= stop:
                values.append(int(round(value)))
                value *= factor
        else:
            if step is not None and (not (step.isascii() and step.isdecimal()) or int(step) < 1):
                raise ValueError(f"--{name}: the step of {item!r} must be a positive integer")
            items = range(start, stop + 1, int(step) if step else 1)
            _check_values(name, values, maximum, extra=len(items))
            values.extend(items)
        _check_values(name, values, maximum)
    out = list(dict.fromkeys(values))
    if name != "padding" and any(v < 1 for v in out):
        raise ValueError(f"--{name}: values must be positive, not {min(out)}")
    return out


def _activations(text):
    from opcount.sweep import ACTIVATIONS
    names = list(dict.fromkeys(n.strip() for n in str(text).split(",") if n.strip()))
    for n in names:
        if n not in ACTIVATIONS:
            raise ValueError(f"--activation: {n!r} is not one of {', '.join(ACTIVATIONS)}")
    if not names:
        raise ValueError("--activation: give at least one activation")
    return names


def sweep_rows(family, axes, profile, fmt, *, fixed, phase="inference", batch=1, loss=None, optimizer="sgd",
               device=None, grid=None):
    """Count and price a sweep. ``axes``: ``{name: list of values}`` (the cartesian product is
    swept, first axis slowest); returns ``(columns, seconds)``, ``columns`` a dict of equal-length
    numpy arrays (config, params, macs, flops, counts per op, TOs per stage and total, energy_j
    and gco2e with a device, status)."""
    import numpy as np

    from opcount import sweep
    from opcount.kernel import tos_from_counts

    from ._costs import SynthesisProgress, costs_array
    from opcount.sweep import ACTIVATIONS
    from ._costs import refuse_mac_unit
    refuse_mac_unit(profile, "tosim sweep")
    costs = costs_array(profile, [fmt], progress=SynthesisProgress())
    named = dict(axes)
    named["activation"] = [ACTIVATIONS.index(a) for a in named["activation"]]
    started = time.perf_counter()
    config = sweep.grid(**named)
    function = sweep.sweep_mlp if family == "mlp" else sweep.sweep_cnn
    result = function(profile, **config, **fixed, batch=batch, phase=phase, loss=loss or DEFAULT_LOSS[family],
                      optimizer=optimizer)
    n = len(result)
    _, stage_tos, tos = tos_from_counts(result.counts, costs, np.zeros(n, dtype=np.int64),
                                        np.arange(n + 1, dtype=np.int64))
    seconds = time.perf_counter() - started
    columns = {name: result.config[name] for name in axes}
    columns["activation"] = result.activation_names()
    columns.update(params=result.params, macs=result.macs, flops=result.flops)
    totals = result.counts.sum(axis=1)
    for i, op in enumerate(OPS):
        columns[op] = totals[:, i]
    for i, stage in enumerate(STAGES):
        columns[f"tos_{stage}"] = stage_tos[:, i]
    columns["tos"] = tos
    if device is not None:
        energy = energy_joules(device, tos, result.flops.astype(np.float64), result.macs.astype(np.float64))
        columns["energy_j"] = np.broadcast_to(np.asarray(energy, dtype=np.float64), (n,)).copy()
        if grid is not None:
            columns["gco2e"] = carbon_grams(columns["energy_j"], grid)
    columns["status"] = result.status
    return columns, seconds


def _extrapolated(device, columns):
    """How many counted configurations lie more than FIT_MARGIN times outside the device's
    ``fitted_range`` (0 when it gives none)."""
    import numpy as np
    if device.get("fitted_range") is None:
        return 0
    low, high = device["fitted_range"]
    x = np.asarray(columns[device["feature"]], dtype=np.float64)[columns["status"] == 0]
    return int(((x < low / FIT_MARGIN) | (x > high * FIT_MARGIN)).sum())


def _error_text(status):
    from opcount.sweep import STATUS_GEOMETRY, STATUS_OVERFLOW
    return {STATUS_GEOMETRY: "kernel does not fit the image", STATUS_OVERFLOW: "counts exceed 2**62"}.get(int(status),
                                                                                                          "")


#: Rows formatted and written at a time by ``--out``: the CSV text is never held whole.
CSV_CHUNK_ROWS = 65_536


def _csv_chunks(columns, chunk_rows=CSV_CHUNK_ROWS):
    """The CSV text of a sweep, header first, then ``chunk_rows`` rows per piece."""
    names = [k for k in columns if k != "status"] + ["error"]
    yield ",".join(names) + "\n"
    n = len(columns["status"])
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        bad = columns["status"][start:stop] != 0
        lists = []
        for k in names[:-1]:
            values = columns[k][start:stop]
            if values.dtype.kind == "f":
                values = [repr(v) for v in values.tolist()]
            else:
                values = [str(v) for v in values.tolist()]
            if bad.any() and k not in AXES_ALL:
                values = ["" if b else v for v, b in zip(values, bad.tolist())]
            lists.append(values)
        lists.append([_error_text(s) for s in columns["status"][start:stop].tolist()])
        yield "".join(",".join(row) + "\n" for row in zip(*lists))


def _csv_text(columns):
    """The whole CSV text of a sweep (small sweeps and tests; ``--out`` streams the chunks)."""
    return "".join(_csv_chunks(columns))


AXES_ALL = {name for axes in AXES.values() for name, _, _ in axes}


def run(args):
    import json

    import hardware_profiles

    from .cli import CommandError
    family = args.family
    if args.out is not None:
        check_output(args.out, "--out", (".csv",), inputs=(args.profile,))
    if args.plot is not None:
        check_output(args.plot, "--plot", (".png",), inputs=(args.profile,))
    try:
        axes = {}
        for name, _, _ in AXES[family]:
            text = getattr(args, name)
            maximum = MAX_CNN_LOOP if family == "cnn" and name in ("depth", "kernel") else MAX_VALUE
            axes[name] = _activations(text) if name == "activation" else parse_axis(name, text, maximum)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    n = math.prod(len(values) for values in axes.values())
    limit, why = (MAX_ROWS, " with --json") if args.json else (MAX_CONFIGS, "")
    if n > limit:
        raise CommandError(f"the sweep has {n:,} configurations ({' x '.join(str(len(v)) for v in axes.values())}); "
                           f"the limit is {limit:,}{why}")
    profile = hardware_profiles.load(args.profile)
    device = resolve_device(profile, args.device) if args.device else None
    if device is not None and "energy_model" in device:
        raise CommandError(f"sweep prices polynomial devices only; device {args.device!r} holds an energy model "
                           "(score the configurations' models with tosim score)")
    fmt = args.format or profile.default_format
    fixed = {name: getattr(args, name) for name, _, _ in FIXED[family]}
    grid = profile.grid_gco2_per_kwh if args.grid_intensity is None else args.grid_intensity
    columns, seconds = sweep_rows(family, axes, profile, fmt, fixed=fixed, phase=args.phase, batch=args.batch,
                                  loss=args.loss, optimizer=args.optimizer, device=device, grid=grid)
    n = len(columns["tos"])
    x_name = args.x or next((name for name, values in axes.items() if len(values) > 1), AXES[family][0][0])
    if args.out:
        write_atomic(args.out, _csv_chunks(columns))
    if args.plot:
        title = (f"{family} sweep, {profile.name}, {fmt}, {args.phase}, batch {args.batch}"
                 + (f", device {args.device}" if device is not None else ""))
        from ._plots import sweep_lines
        sweep_lines(args.plot, columns, axes, x_name, device is not None, title)
    failed = int((columns["status"] != 0).sum())
    if args.json:
        keys = [k for k in columns if k != "status"]
        rows = []
        for i in range(n):
            row = {k: columns[k][i].item() if k in axes or not columns["status"][i] else None for k in keys}
            row["error"] = _error_text(columns["status"][i]) or None
            rows.append(row)
        sys.stdout.write(json_text(rows) + "\n")
    else:
        if n <= TABLE_ROWS:
            _print_table(columns, axes, device is not None)
        ok = columns["status"] == 0
        span = (f"; TOs from {si(columns['tos'][ok].min())} to {si(columns['tos'][ok].max())}" if ok.any() else "")
        print(f"{n:,} {family} configurations ({' x '.join(str(len(v)) for v in axes.values())}) counted and priced "
              f"with {profile.name} {fmt} ({args.phase}, batch {args.batch}) in {seconds:.3f} s{span}"
              + (f"; {failed} flagged" if failed else ""))
    for path in (args.out, args.plot):
        if path:
            print(f"wrote {path}", file=sys.stderr)
    far = _extrapolated(device, columns) if device is not None else 0
    if far:
        low, high = device["fitted_range"]
        print(f"tosim: warning: device {args.device!r} was fitted on runs of {low:.3g} to {high:.3g} "
              f"{FEATURE_LABELS[device['feature']]}; {far:,} of {n:,} configurations lie more than {FIT_MARGIN:g}x outside that "
              "range: their energy is an extrapolation, not a prediction", file=sys.stderr)
    if failed:
        kinds = {}
        for status in columns["status"][columns["status"] != 0]:
            kinds[_error_text(status)] = kinds.get(_error_text(status), 0) + 1
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(kinds.items()))
        print(f"tosim: error: {failed:,} of {n:,} configurations not counted ({reasons}); their rows carry the "
              "error", file=sys.stderr)
    return 1 if failed else 0


def _print_table(columns, axes, with_energy):
    names = list(axes) + ["params", "FLOPs", "TOs", "TOs/FLOP"] + (["energy J", "gCO2e"] if with_energy else [])
    body = []
    for i in range(len(columns["tos"])):
        line = [str(columns[a][i]) for a in axes]
        if columns["status"][i]:
            body.append(line + [_error_text(columns["status"][i])] + [""] * (len(names) - len(line) - 1))
            continue
        flops = int(columns["flops"][i])
        line += [si(int(columns["params"][i])), si(flops), si(columns["tos"][i]),
                 f"{columns['tos'][i] / flops:.0f}" if flops else "-"]
        if with_energy:
            line += [si(columns["energy_j"][i]), si(columns["gco2e"][i]) if "gco2e" in columns else "-"]
        body.append(line)
    widths = [max(len(r[k]) for r in [names] + body) for k in range(len(names))]
    print("  ".join(h.rjust(w) for h, w in zip(names, widths)))
    print("  ".join("-" * w for w in widths))
    for r in body:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
