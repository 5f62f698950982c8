"""``tosim explore``: adder x multiplier designs x formats, switching energy, delay and area per
combination and applied to models, with the Pareto front (see :mod:`tosim._explore`)."""
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
        help="design-space exploration: adder x multiplier designs x formats, switching energy, "
             "delay and area, Pareto front (CSV, PNG)")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="models to price (zoo:NAME, spec, ONNX, HF config); none: units only")
    p.add_argument("--profile", default=hp.DEFAULT_PROFILE, metavar="P",
                   help=f"base profile: gates, power section, divider and root (default {hp.DEFAULT_PROFILE})")
    p.add_argument("--adders", default=DEFAULT_ADDERS, metavar="A,B,...",
                   help=f"adder designs: add, sub and cmp units and the multiplier's final adder "
                        f"(default {DEFAULT_ADDERS})")
    p.add_argument("--multipliers", default=None, metavar="M,N,...",
                   help="multiplier designs (default all)")
    p.add_argument("--formats", default="fp16", metavar="F,G,...", help="number formats (default fp16)")
    p.add_argument("--phase", default="inference", choices=tuple(hp.PHASES), help="phase of the models")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="batch size (default 1)")
    p.add_argument("--out", metavar="F.csv", help="write the table as CSV")
    p.add_argument("--plot", metavar="F.png", help="plot energy against delay per format, with the Pareto front")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--jobs", "-j", default="1", metavar="N", help="combinations run in N processes (default 1)")
    p.set_defaults(func=_run)


_FIELDS = ["adder", "multiplier", "format", "add_fj_per_op", "mul_fj_per_op", "mac_fj", "add_delay_ps",
           "mul_delay_ps", "delay_ps", "add_area_um2", "mul_area_um2", "area_um2", "energy_j", "pareto", "error"]


def _run(args):
    from . import _explore
    from .cmd_synth import _jobs, _names
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
    formats = _names([args.formats], hp.FORMATS, "format")
    missing = [f for f in formats if f not in profile.formats]
    if missing:
        raise CommandError(f"--formats: {missing[0]} is not among the formats of profile {profile.name!r} "
                           f"({', '.join(profile.formats)})")
    if not (adders and multipliers and formats):
        raise CommandError("--adders, --multipliers and --formats each need at least one name")
    started = time.perf_counter()

    def progress(done, total, point):
        what = "error" if point.error else f"{point.mac_fj:,.0f} fJ per MAC, {point.delay_ps:,.0f} ps"
        print(f"[{done}/{total}] {point.format} {point.adder} x {point.multiplier}: {what} "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    import opcount
    try:
        points = _explore.explore(profile, adders, multipliers, formats, args.models, phase=args.phase,
                                  batch=args.batch, jobs=jobs, progress=progress)
    except opcount.ModelError as exc:
        raise CommandError(str(exc)) from None
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
                           + (f"switching J of {', '.join(names)}" if names else "switching fJ per multiply + add")
                           + " (estimate) against the slower unit's delay", args.plot)
    if args.json:
        print(json_text(records))
    else:
        what = "models' switching J" if names else "fJ per MAC"
        print(f"# {len(points)} combinations under profile {profile.name}; energy = {what} (an estimate: "
              f"dynamic switching of the units, {profile.power['source']}); delay = slower of adder and "
              f"multiplier; area = both; * = on the Pareto front")
        header = ["format", "adder", "multiplier", "add fJ", "mul fJ", "delay ps", "area um2", "energy", ""]
        body = []
        for p in points:
            if p.error:
                body.append([p.format, p.adder, p.multiplier, "error", "", "", "", "", ""])
                continue
            energy = f"{p.energy_j:.4g} J" if names else f"{p.mac_fj:,.0f} fJ"
            body.append([p.format, p.adder, p.multiplier, f"{p.add_fj_per_op:,.0f}", f"{p.mul_fj_per_op:,.0f}",
                         f"{p.delay_ps:,.0f}", f"{p.area_um2:,.0f}", energy, "*" if p.pareto else ""])
        widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
        for row in [header] + body:
            print("  ".join(str(c).rjust(w) if 3 <= i <= 7 else str(c).ljust(w)
                            for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    if args.out:
        print(f"wrote {len(points)} rows to {args.out}", file=sys.stderr)
    if args.plot and any(p.error is None for p in points):
        print(f"wrote {args.plot}", file=sys.stderr)
    failed = [p for p in points if p.error]
    from .cli import printable
    for p in failed:
        print(f"tosim: error: {p.format} {p.adder} x {p.multiplier}: {printable(p.error)}", file=sys.stderr)
    return 1 if failed else 0
