"""``tosim explore``: adder x multiplier (x divider x root) designs x formats, switching energy,
delay and area per combination and applied to models, with the Pareto front (see
:mod:`tosim._explore`); on local processes or a Dask cluster (``--scheduler``)."""
import csv
import io
import sys
import time

import hardware_profiles as hp

from ._io import check_output, json_text, write_atomic
from .cli import CommandError

__all__ = ["register"]

DEFAULT_ADDERS = "ripple_carry,brent_kung,kogge_stone"


def register(subparsers):
    p = subparsers.add_parser(
        "explore",
        help="design-space exploration: adder x multiplier (x divider x root) designs x formats, "
             "switching energy, delay and area, Pareto front (CSV, PNG)")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="models to price (zoo:NAME, spec, ONNX, HF config); none: units only")
    p.add_argument("--profile", default=hp.DEFAULT_PROFILE, metavar="P",
                   help=f"base profile: gates, power section, divider and root (default {hp.DEFAULT_PROFILE})")
    p.add_argument("--adders", default=DEFAULT_ADDERS, metavar="A,B,...",
                   help=f"adder designs: add, sub and cmp units and the multiplier's final adder "
                        f"(default {DEFAULT_ADDERS})")
    p.add_argument("--multipliers", default=None, metavar="M,N,...",
                   help="multiplier designs (default all)")
    p.add_argument("--dividers", default=None, metavar="D,E,...",
                   help="divider designs as an axis of the grid (default: the base profile's divider, "
                        "outside the delay and area)")
    p.add_argument("--roots", default=None, metavar="R,S,...",
                   help="square-root designs as an axis of the grid (default: the base profile's root, "
                        "outside the delay and area)")
    p.add_argument("--formats", default="fp16", metavar="F,G,...", help="number formats (default fp16)")
    p.add_argument("--phase", default="inference", choices=tuple(hp.PHASES), help="phase of the models")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="batch size (default 1)")
    p.add_argument("--out", metavar="F.csv", help="write the table as CSV")
    p.add_argument("--plot", metavar="F.png", help="plot energy against delay per format, with the Pareto front")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--jobs", "-j", default="1", metavar="N", help="combinations run in N processes (default 1)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the combinations on a Dask cluster: its scheduler's address (tcp://host:8786); "
                        "needs dask[distributed] (pip install 'tosim[dask]') here and tosim on the workers")
    p.set_defaults(func=_run)


_FIELDS = ["adder", "multiplier", "divider", "root", "format", "add_fj_per_op", "mul_fj_per_op", "div_fj_per_op",
           "sqrt_fj_per_op", "mac_fj", "units_fj", "add_delay_ps", "mul_delay_ps", "div_delay_ps", "sqrt_delay_ps",
           "delay_ps", "add_area_um2", "mul_area_um2", "div_area_um2", "sqrt_area_um2", "area_um2", "energy_j",
           "pareto", "error"]


def _run(args):
    from . import _explore
    from .cmd_synth import _check_switching, _jobs, _names
    for option, path, ext in (("--out", args.out, (".csv",)), ("--plot", args.plot, (".png",))):
        if path is not None:
            check_output(path, option, ext, inputs=(args.profile,))
    if args.batch < 1:
        raise CommandError(f"--batch must be a positive integer, not {args.batch}")
    jobs = _jobs(args.jobs)
    profile = hp.load(args.profile)
    adders = _names([args.adders], hp.DESIGNS["add"], "adder design")
    multipliers = _names([args.multipliers], hp.DESIGNS["mul"], "multiplier design") \
        if args.multipliers is not None else list(hp.DESIGNS["mul"])
    dividers = _names([args.dividers], hp.DESIGNS["div"], "divider design") if args.dividers is not None else None
    roots = _names([args.roots], hp.DESIGNS["sqrt"], "root design") if args.roots is not None else None
    formats = _names([args.formats], hp.FORMATS, "format")
    _check_switching(formats or ())         # explore prices the FP units' switching energy
    missing = [f for f in formats if f not in profile.formats]
    if missing:
        raise CommandError(f"--formats: {missing[0]} is not among the formats of profile {profile.name!r} "
                           f"({', '.join(profile.formats)})")
    if not (adders and multipliers and formats):
        raise CommandError("--adders, --multipliers and --formats each need at least one name")
    if args.scheduler is not None:
        if args.jobs != "1":
            raise CommandError("--jobs does not go with --scheduler (the cluster's workers run the combinations)")
        if not args.scheduler.strip():
            raise CommandError("--scheduler needs an address (tcp://host:8786)")
    started = time.perf_counter()

    def progress(done, total, point):
        what = "error" if point.error else f"{point.units_fj:,.0f} fJ per {_ops(point)}, {point.delay_ps:,.0f} ps"
        print(f"[{done}/{total}] {point.format} {_designs(point)}: {what} "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    import opcount
    try:
        points = _explore.explore(profile, adders, multipliers, formats, args.models, dividers=dividers,
                                  roots=roots, phase=args.phase, batch=args.batch, jobs=jobs,
                                  scheduler=args.scheduler, progress=progress)
    except opcount.ModelError as exc:
        raise CommandError(str(exc)) from None
    except _explore.SchedulerError as exc:
        raise CommandError(f"--scheduler {exc}") from None
    names = sorted({name for p in points for name in p.models_j})
    records = [p.to_json() for p in points]
    if args.out:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=_FIELDS + [f"energy_j:{n}" for n in names], lineterminator="\n",
                                extrasaction="ignore")
        writer.writeheader()
        for p, record in zip(points, records):
            writer.writerow(dict(record, **{f"energy_j:{n}": v for n, v in p.models_j.items()}))
        write_atomic(args.out, text.getvalue().encode())
    if args.plot:
        from ._plots import explore_fronts
        good = [p for p in points if p.error is None]
        if good:
            explore_fronts(good, f"profile {profile.name}: "
                           + (f"switching J of {', '.join(names)}" if names
                              else f"switching fJ per {_ops(good[0])}")
                           + " (estimate) against the slowest unit's delay", args.plot)
    if args.json:
        print(json_text(records))
    else:
        ops = [op for op in ("add", "mul", "div", "sqrt") if any(op in p.units for p in points)]
        what = "models' switching J" if names else f"fJ per {' + '.join(ops)}"
        print(f"# {len(points)} combinations under profile {profile.name}; energy = {what} (an estimate: "
              f"dynamic switching of the units, {profile.power['source']}); delay = slowest of the "
              f"{', '.join(ops)} units; area = their sum; * = on the Pareto front"
              + ("" if "div" in ops and "sqrt" in ops else
                 f"; {' and '.join(n for o, n in (('div', 'divider'), ('sqrt', 'root')) if o not in ops)}: "
                 f"the base profile's"))
        designs = ["adder", "multiplier"] + [n for o, n in (("div", "divider"), ("sqrt", "root")) if o in ops]
        header = ["format", *designs, *(f"{op} fJ" for op in ops), "delay ps", "area um2", "energy", ""]
        first = 1 + len(designs)
        body = []
        for p in points:
            names_of = [p.format] + [getattr(p, d) for d in designs]
            if p.error:
                body.append(names_of + ["error"] + [""] * (len(header) - len(names_of) - 1))
                continue
            energy = f"{p.energy_j:.4g} J" if names else f"{p.units_fj:,.0f} fJ"
            body.append(names_of + [f"{getattr(p, f'{op}_fj_per_op'):,.0f}" for op in ops]
                        + [f"{p.delay_ps:,.0f}", f"{p.area_um2:,.0f}", energy, "*" if p.pareto else ""])
        widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
        for row in [header] + body:
            print("  ".join(str(c).rjust(w) if first <= i < len(header) - 1 else str(c).ljust(w)
                            for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    if args.out:
        print(f"wrote {len(points)} rows to {args.out}", file=sys.stderr)
    if args.plot and any(p.error is None for p in points):
        print(f"wrote {args.plot}", file=sys.stderr)
    failed = [p for p in points if p.error]
    from .cli import printable
    for p in failed:
        print(f"tosim: error: {p.format} {_designs(p)}: {printable(p.error)}", file=sys.stderr)
    return 1 if failed else 0


def _designs(point):
    """``adder x multiplier[ x divider][ x root]`` of a combination."""
    return " x ".join(d for d in (point.adder, point.multiplier, point.divider, point.root) if d is not None)


def _ops(point):
    return " + ".join(point.units)
