"""``tosim synth`` (a profile's cost table), ``tosim compare-adders`` (designs side by side) and
``tosim activity`` (switching activity, energy per operation, delay and area of units under
operand streams, :mod:`hwlib.activity`).

``synth`` and ``compare-adders`` synthesize what the cost cache (``$TOSIM_CACHE_DIR`` or
``~/.cache/tosim``) does not hold yet, with one progress line per synthesized circuit on stderr;
cached circuits print nothing. ``activity`` and ``compare-adders --power`` map every unit they
simulate (the mapped netlist is kept in memory only) and print one progress line per stream.
Files given with ``--csv`` (``.csv``) and ``--plot`` (``.png``) are checked before any
synthesis starts and written atomically (a temporary file renamed over the target). Operand
widths run from 1 to :data:`MAX_WIDTH` (256) bits: synthesis time grows fast with the width.
"""
import contextlib
import csv
import difflib
import io
import sys
import time

import hardware_profiles as hp

from ._io import check_output, json_text, write_atomic
from .cli import CommandError

__all__ = ["register"]

UNIT_KINDS = ("add", "mul", "div", "sqrt")
#: The widest operand compare-adders synthesizes, in bits.
MAX_WIDTH = 256


def register(subparsers):
    p_synth = subparsers.add_parser(
        "synth", help="a profile's cost table: transistors, gates and depth per (format, op)")
    p_synth.add_argument("--profile", default=hp.DEFAULT_PROFILE, metavar="P",
                         help=f"built-in profile name or YAML file (default {hp.DEFAULT_PROFILE})")
    p_synth.add_argument("--formats", nargs="+", metavar="FMT",
                         help="formats, space- or comma-separated (default: the profile's)")
    p_synth.add_argument("--ops", nargs="+", metavar="OP",
                         help=f"basic ops (default: all of {', '.join(hp.BASIC_OPS)})")
    p_synth.add_argument("--mac", nargs="+", metavar="A:C",
                         help="instead of the table, floating-point multiply-accumulate units a*b+c with one "
                              "rounding (hwlib.units.fma), each as PRODUCT_FORMAT:ACCUMULATOR_FORMAT, e.g. "
                              "bf16:fp32 fp8_e4m3:fp32 fp32:fp32 (an FMA)")
    p_synth.add_argument("--json", action="store_true", help="print JSON")
    _add_jobs(p_synth)
    p_synth.set_defaults(func=_synth)

    p_cmp = subparsers.add_parser(
        "compare-adders",
        help="designs of a unit side by side: transistors, gates, depth, area-delay product")
    p_cmp.add_argument("--widths", default=None, metavar="W,W,...",
                       help=f"operand widths in bits, 1 to {MAX_WIDTH} (radicand width for sqrt); "
                            "default 8,16,32,64 (4,8 for mac)")
    p_cmp.add_argument("--designs", nargs="+", metavar="DESIGN",
                       help="designs, space- or comma-separated (default: all of the unit)")
    p_cmp.add_argument("--unit", default="add", choices=UNIT_KINDS + ("mac", "fma"),
                       help="unit kind (default add); inner units follow the profile; mac: integer "
                            "multiply-accumulate, W-bit operands into an int32 accumulator (hwlib.units.mac); "
                            "fma: the adder designs inside floating-point MACs a*b+c (hwlib.units.fma), "
                            "per --formats pair")
    p_cmp.add_argument("--adders", action="store_true",
                       help="mac: compare the final-adder designs inside the MAC (on the profile's "
                            "multiplier) instead of its multiplier designs (--unit fma always does)")
    p_cmp.add_argument("--formats", nargs="+", metavar="A:C",
                       help="fma: PRODUCT_FORMAT:ACCUMULATOR_FORMAT pairs, e.g. bf16:fp32 fp32:fp32 "
                            "(default fp8_e4m3:fp32 bf16:fp32)")
    p_cmp.add_argument("--unsigned", action="store_true",
                       help="mac: unsigned operands (default two's complement)")
    p_cmp.add_argument("--profile", default=hp.DEFAULT_PROFILE, metavar="P",
                       help=f"built-in profile name or YAML file (default {hp.DEFAULT_PROFILE})")
    p_cmp.add_argument("--json", action="store_true", help="print JSON")
    p_cmp.add_argument("--csv", metavar="F.csv", help="also write the table as CSV to F.csv")
    p_cmp.add_argument("--plot", metavar="F.png",
                       help="also plot transistors and depth against width per design to F.png")
    p_cmp.add_argument("--power", action="store_true",
                       help="also simulate each circuit on an operand stream: critical-path delay "
                            "(ps), area (um^2), switching energy per op (fJ) and energy-delay "
                            "product (fJ*ns) columns (see tosim activity)")
    p_cmp.add_argument("--pareto", metavar="F.png",
                       help="also plot switching energy per op against delay per width, with "
                            "the Pareto front, to F.png (implies --power)")
    _add_stream_args(p_cmp, "uniform")
    _add_jobs(p_cmp)
    p_cmp.set_defaults(func=_compare)

    p_act = subparsers.add_parser(
        "activity",
        help="switching activity, energy per op, delay and area of units under operand streams")
    p_act.add_argument("--unit", default="add", choices=UNIT_KINDS,
                       help="integer unit kind (default add)")
    p_act.add_argument("--designs", nargs="+", metavar="DESIGN",
                       help="designs, space- or comma-separated (default: all of the unit)")
    p_act.add_argument("--widths", default=None, metavar="W,W,...",
                       help="operand widths in bits (default 8,16)")
    p_act.add_argument("--formats", nargs="+", metavar="FMT",
                       help="price the profile's floating-point units in these formats instead "
                            "of integer units (with --ops)")
    p_act.add_argument("--ops", nargs="+", metavar="OP",
                       help="basic ops for --formats (default add mul)")
    p_act.add_argument("--profile", default=hp.DEFAULT_PROFILE, metavar="P",
                       help=f"built-in profile name or YAML file (default {hp.DEFAULT_PROFILE}): "
                            "designs' inner units and the gate set of the mapping")
    p_act.add_argument("--json", action="store_true", help="print JSON")
    p_act.add_argument("--csv", metavar="F.csv", help="also write the table as CSV to F.csv")
    p_act.add_argument("--from-model", metavar="MODEL",
                       help="operand streams of a model's own layers through the profile's FP multiplier "
                            "and adder: an .onnx file is run (onnx.reference) and FILE.py:NAME (a "
                            "torch.nn.Module, or a function returning one or (module, example_inputs); "
                            "needs torch) is run for real weights and activations; zoo:NAME or a spec "
                            "gets synthetic per-layer distributions (ReLU-sparse after a ReLU); see "
                            "docs/power.md")
    p_act.add_argument("--input", metavar="F.npy",
                       help="--from-model with an .onnx file or FILE.py:NAME: the input array (.npy, or "
                            ".npz by input or argument name) instead of generated inputs (ONNX) or the "
                            "factory's example input (torch)")
    p_act.add_argument("--save-streams", metavar="F.npz",
                       help="--from-model: also save the multiplier's and adder's operand streams (all "
                            "layers, MAC-weighted, and per layer type) for a profile's power.distribution "
                            "(mul: streams:F.npz, or streams:F.npz#linear); see docs/power.md")
    _add_stream_args(p_act, "uniform", many=True)
    p_act.set_defaults(func=_activity)


def _add_jobs(parser):
    parser.add_argument("--jobs", "-j", default="1", metavar="N",
                        help="synthesize circuits that are not cached in N processes (default 1)")


def _add_stream_args(parser, default, many=False):
    from_ = "distributions" if many else "distribution"
    parser.add_argument("--dist", nargs="+" if many else None, default=[default] if many
                        else default, metavar="D",
                        help=f"operand {from_}: uniform, normal[:scale=S], "
                             f"relu[:zeros=F,scale=S], zeros (default {default})")
    parser.add_argument("--vectors", default="4096", metavar="N",
                        help="operand pairs per stream, at least 2 (default 4096)")
    parser.add_argument("--seed", default="0", metavar="S", help="stream seed (default 0)")
    parser.add_argument("--vdd", default=None, metavar="V",
                        help="supply voltage in volts (default 1.1, the generic 45 nm model)")
    parser.add_argument("--glitches", action="store_true",
                        help="count unit-delay toggles (every gate one time step), glitches "
                             "included, instead of zero-delay toggles")


# --- argument helpers -------------------------------------------------------------------------

def _split(values):
    items = []
    for value in values or ():
        items.extend(part.strip() for part in value.split(",") if part.strip())
    return list(dict.fromkeys(items))


def _names(values, allowed, what):
    """Comma/space-separated names checked against ``allowed``, with a did-you-mean."""
    if values is None:
        return None
    names = _split(values)
    if not names:
        raise CommandError(f"no {what}s given")
    for name in names:
        if name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise CommandError(f"unknown {what} {name!r}{hint} (expected one of "
                               f"{', '.join(allowed)})")
    return names


def _jobs(text):
    if not (text.isascii() and text.isdigit()) or int(text) < 1:   # "²".isdigit() is true
        raise CommandError(f"--jobs must be a positive integer, not {text!r}")
    return int(text)


def _widths(text):
    parts = [part.strip() for part in text.split(",")]
    widths = []
    for part in parts:
        if not (part.isascii() and part.isdecimal()) or int(part) < 1:
            raise CommandError(f"--widths must be comma-separated positive integers, "
                               f"not {text!r}")
        if int(part) > MAX_WIDTH:
            raise CommandError(f"--widths: {int(part)} bits is above the limit of {MAX_WIDTH} bits")
        widths.append(int(part))
    return list(dict.fromkeys(widths))


@contextlib.contextmanager
def _synthesis_errors():
    """A Yosys failure ends the command with one line naming the circuit, not a traceback."""
    from hwlib import YosysError
    try:
        yield
    except YosysError as exc:
        sys.stderr.write("\n")  # end the open progress line
        raise CommandError(f"synthesis failed: {exc}") from None


class _Progress:
    """One stderr line per synthesized circuit: ``[3/28] kogge_stone 32-bit ... 1.2 s``,
    counting up the circuits to synthesize, with the time left once one is done
    (``1.2 s, ~3 min left``; :class:`tosim._progress.WorkCounter`)."""

    def __init__(self, stream=None):
        from ._progress import WorkCounter
        self.stream = stream or sys.stderr
        self.counter = WorkCounter()

    def planned(self, work):
        self.counter.plan(work)

    def start(self, index, total, label):
        k, n = self.counter.begin(index) or (index, total)
        self.stream.write(f"[{k}/{n}] {label} ... ")
        self.stream.flush()

    def done(self, index, total, label, seconds):
        left = self.counter.finish(index)
        self.stream.write(f"{seconds:.1f} s" + (f", {left}" if left else "") + "\n")
        self.stream.flush()

    def failed(self, index, total, label):
        self.stream.write("failed\n")
        self.stream.flush()


def _fmt(value):
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _table(headers, rows, right):
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    return "\n".join(lines)


def _mac_pairs(values):
    from hwlib.units.fma import ACCUMULATOR_FORMATS
    pairs = []
    for item in _split(values):
        product, sep, acc = item.partition(":")
        if not sep:
            raise CommandError(f"--mac {item!r}: expected PRODUCT_FORMAT:ACCUMULATOR_FORMAT, e.g. bf16:fp32")
        _names([product], hp.FORMATS, "product format")
        _names([acc], ACCUMULATOR_FORMATS, "accumulator format")
        pairs.append((product, acc))
    return pairs


def _synth_mac(args, jobs):
    from hwlib import cost
    pairs = _mac_pairs(args.mac)
    profile = hp.load(args.profile)
    with _synthesis_errors():
        rows = cost.fp_mac_table(profile, pairs, progress=_Progress(), jobs=jobs)
    if args.json:
        print(json_text([row.to_json() for row in rows]))
        return 0
    print(f"# floating-point MACs a*b+c, one rounding (hwlib.units.fma) under profile {profile.name} "
          f"({profile.technology['counting']} counting): mul {profile.units['mul']['design']}, "
          f"add {profile.units['add']['design']}")
    body = [(f"{r.product_format}*{r.product_format}+{r.acc_format}", r.design, _fmt(r.cost.transistors),
             _fmt(r.cost.gate_count), r.cost.depth) for r in rows]
    print(_table(("mac", "multiplier", "transistors", "gates", "depth"), body, {2, 3, 4}))
    return 0


def _synth(args):
    from hwlib import cost

    jobs = _jobs(args.jobs)
    if args.mac:
        if args.formats or args.ops:
            raise CommandError("--mac prices MAC units; it takes no --formats or --ops")
        return _synth_mac(args, jobs)
    formats = _names(args.formats, hp.FORMATS, "format")
    ops = _names(args.ops, hp.BASIC_OPS, "op")
    profile = hp.load(args.profile)
    with _synthesis_errors():
        rows = cost.cost_table(profile, formats, ops, progress=_Progress(), jobs=jobs)
    if args.json:
        print(json_text([row.to_json() for row in rows]))
        return 0
    counting = profile.technology["counting"]
    fp_rows = [r for r in rows if r.format not in hp.INT_FORMAT_BITS]
    if fp_rows and fp_rows[0].circuit == "integer":
        what = ("integer units at each format's significand width (hwlib.fp.build_fp_unit is "
                "not available): add/sub/cmp an adder of fraction+1 bits, mul a multiplier, "
                "div a divider, sqrt a root of that width")
    else:
        what = f"floating-point units of the {profile.datapath!r} datapath (hwlib.fp)"
    if len(fp_rows) < len(rows):
        ints = ("integer formats on the profile's integer units at their width (add/sub/cmp an adder, "
                "mul a signed multiplier, div a divider, sqrt a root; hwlib.units.intfmt)")
        what = f"{what}; {ints}" if fp_rows else ints
    print(f"# cost table of profile {profile.name} ({counting} counting): {what}")
    body = [(r.format, r.op, r.design, _fmt(r.cost.transistors), _fmt(r.cost.gate_count),
             r.cost.depth) for r in rows]
    print(_table(("format", "op", "design", "transistors", "gates", "depth"), body, {3, 4, 5}))
    return 0


# --- tosim compare-adders ---------------------------------------------------------------------

def _compare_inner_adders(args, jobs):
    """``--unit fma`` and ``--unit mac --adders``: the adder designs inside a MAC unit."""
    from hwlib import registry
    from hwlib.units.inner_adders import compare_inner_adders
    if args.power or args.pareto is not None:
        raise CommandError(f"--power (and --pareto) does not cover --unit {args.unit} yet (hwlib.activity builds "
                           f"the units of add, mul, div and sqrt)")
    if args.unit == "fma":
        if args.widths is not None or args.unsigned:
            raise CommandError("--unit fma takes --formats PRODUCT:ACCUMULATOR pairs, not --widths or --unsigned")
        points = _mac_pairs(args.formats or ["fp8_e4m3:fp32", "bf16:fp32"])
    else:
        if args.formats is not None:
            raise CommandError("--formats goes with --unit fma; --unit mac takes --widths")
        points = _widths(args.widths if args.widths is not None else "4,8")
    if args.csv is not None:
        check_output(args.csv, "--csv", (".csv",), inputs=(args.profile,))
    if args.plot is not None:
        check_output(args.plot, "--plot", (".png",), inputs=(args.profile,))
    designs = _names(args.designs, registry.designs_for("add"), "adder design")
    profile = hp.load(args.profile)
    designs = designs or list(registry.designs_for("add"))
    with _synthesis_errors():
        try:
            rows = compare_inner_adders(args.unit, points, profile, designs, signed=not args.unsigned,
                                        progress=_Progress(), jobs=jobs)
        except ValueError as exc:       # hwlib.CircuitError: e.g. a multiplier with no MAC unit
            raise CommandError(str(exc)) from None
    records = [row.to_json() for row in rows]
    if args.csv:
        text = io.StringIO()
        fields = ["unit", "point", "design", "multiplier", "width", "transistors", "gates", "depth", "adp"]
        writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        write_atomic(args.csv, text.getvalue().encode())
    counting = profile.technology["counting"]
    what = ("the final adder of the integer MAC" if args.unit == "mac"
            else "both carry-propagate adders of the FP MAC (the multiplier's final adder and the significand adder)")
    multiplier = rows[0].multiplier if rows else (profile.units.get("mul") or {}).get("design")
    if args.plot:
        from ._plots import design_curves
        names = list(dict.fromkeys(r.point for r in rows))
        design_curves(rows, designs, f"adders inside {args.unit} units ({multiplier} multiplier), profile "
                      f"{profile.name} ({counting})", args.plot, points=names)
    if args.json:
        print(json_text(records))
        return 0
    print(f"# adder designs as {what}, multiplier {multiplier}, under profile {profile.name} "
          f"({counting} counting); ADP = transistors x depth")
    body = [[r.point, r.design, _fmt(r.cost.transistors), _fmt(r.cost.gate_count), r.cost.depth, _fmt(r.adp)]
            for r in rows]
    print(_table(["unit", "adder", "transistors", "gates", "depth", "ADP"], body, {2, 3, 4, 5}))
    return 0


def _compare(args):
    from hwlib import cost, registry

    jobs = _jobs(args.jobs)
    if args.unit == "fma" or (args.unit == "mac" and args.adders):
        return _compare_inner_adders(args, jobs)
    if args.adders:
        raise CommandError("--adders goes with --unit mac (--unit fma always compares adders)")
    if args.formats is not None:
        raise CommandError("--formats goes with --unit fma")
    widths = _widths(args.widths if args.widths is not None else ("4,8" if args.unit == "mac" else "8,16,32,64"))
    if args.csv is not None:
        check_output(args.csv, "--csv", (".csv",), inputs=(args.profile,))
    if args.plot is not None:
        check_output(args.plot, "--plot", (".png",), inputs=(args.profile,))
    if args.pareto is not None:
        check_output(args.pareto, "--pareto", (".png",), inputs=(args.profile,))
        args.power = True
    if args.unit == "mac":
        from hwlib.units.mac import MAC_DESIGNS
        known = tuple(MAC_DESIGNS)
    else:
        known = registry.designs_for(args.unit)
    if args.power and args.unit == "mac":
        raise CommandError("--power (and --pareto) does not cover --unit mac yet (hwlib.activity builds "
                           "the units of add, mul, div and sqrt)")
    designs = _names(args.designs, known, f"{args.unit} design")
    profile = hp.load(args.profile)
    designs = designs or list(known)
    with _synthesis_errors():
        rows = cost.compare_designs(args.unit, widths, profile, designs,
                                    progress=_Progress(), jobs=jobs, signed=not args.unsigned)
    power = _power(args, rows, args.unit, profile) if args.power else None
    records = [row.to_json() for row in rows]
    if power is not None:
        for record, result in zip(records, power):
            record.update(_power_json(result))
    if args.csv:
        text = io.StringIO()
        fields = ["design", "width", "transistors", "gates", "depth", "adp"]
        if power is not None:
            fields += _POWER_FIELDS
        writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        write_atomic(args.csv, text.getvalue().encode())
    if args.plot:
        counting = profile.technology["counting"]
        from ._plots import design_curves
        design_curves(rows, designs, f"{args.unit} designs, profile {profile.name} ({counting})",
              args.plot)
    if args.pareto:
        from ._plots import pareto_fronts
        pareto_fronts(rows, power, f"{args.unit} designs, profile {profile.name}: "
                      f"{power[0].distribution} operands, glitches {power[0].glitches}",
                      args.pareto)
    if args.json:
        print(json_text(records))
        return 0
    what = args.unit
    if args.unit == "mac":
        kind = "uint" if args.unsigned else "int"
        what = (f"mac (W-bit {kind} x {kind} + int{cost.mac_accumulator_width(min(widths))} accumulate, "
                f"final adder {(profile.units.get('mul') or {}).get('final_adder', 'ripple_carry')})")
    print(f"# {what} designs under profile {profile.name} "
          f"({profile.technology['counting']} counting); ADP = transistors x depth")
    headers = ["design", "width", "transistors", "gates", "depth", "ADP"]
    body = [[r.design, r.width, _fmt(r.cost.transistors), _fmt(r.cost.gate_count),
             r.cost.depth, _fmt(r.adp)] for r in rows]
    if power is not None:
        print(f"# power: {power[0].distribution} operands, {power[0].operations} operations, "
              f"seed {power[0].seed}, {power[0].vdd:g} V; glitches {power[0].glitches}; "
              f"technology: {profile.power['source']} (the profile's power section)")
        headers += ["delay_ps", "area_um2", "fJ/op", "EDP_fJ*ns"]
        for line, result in zip(body, power):
            line += [f"{result.delay_ps:,.0f}", f"{result.area_um2:,.1f}",
                     f"{result.energy_fj_per_op:,.1f}", f"{result.edp_fj_ns:,.2f}"]
    print(_table(headers, body, set(range(1, len(headers)))))
    return 0


# --- power columns and tosim activity ---------------------------------------------------------

_POWER_FIELDS = ["delay_ps", "area_um2", "energy_fj_per_op", "edp_fj_ns", "activity",
                 "distribution", "operations"]
def _model_note(model):
    return f"technology: {model.source} (the profile's power section)"



def _power_json(result):
    return {"delay_ps": result.delay_ps, "area_um2": result.area_um2,
            "energy_fj_per_op": result.energy_fj_per_op, "edp_fj_ns": result.edp_fj_ns,
            "activity": result.activity, "distribution": result.distribution,
            "operations": result.operations, "vdd": result.vdd, "glitches": result.glitches}


def _stream_options(args, profile):
    """(distributions, vectors, seed, model) from the stream arguments, checked; the model is
    the profile's power section (``--vdd`` replaces its supply)."""
    from hwlib import activity
    dists = args.dist if isinstance(args.dist, list) else [args.dist]
    parsed = []
    for text in _split(dists):
        try:
            parsed.append(activity.parse_distribution(text))
        except ValueError as exc:
            raise CommandError(f"--dist {text!r}: {exc}") from None
    if not parsed:
        raise CommandError("no --dist given")
    if not args.vectors.isdigit() or int(args.vectors) < 2:
        raise CommandError(f"--vectors must be an integer of at least 2, not {args.vectors!r}")
    if not args.seed.isdigit():
        raise CommandError(f"--seed must be a non-negative integer, not {args.seed!r}")
    model = activity.PowerModel.from_profile(profile)
    if args.vdd is not None:
        try:
            vdd = float(args.vdd)
            model = model.replace(vdd=vdd)
        except ValueError:
            raise CommandError(f"--vdd must be a positive number of volts, "
                               f"not {args.vdd!r}") from None
    return parsed, int(args.vectors), int(args.seed), model


def _power(args, rows, kind, profile):
    from hwlib import activity
    dists, vectors, seed, model = _stream_options(args, profile)
    if len(dists) != 1:
        raise CommandError("--dist takes one distribution here")
    progress = _Progress()
    results = []
    with _synthesis_errors():
        for i, row in enumerate(rows, 1):
            label = f"power {row.design} {row.width}-bit"
            progress.start(i, len(rows), label)
            started = time.perf_counter()
            results.append(activity.unit_activity(kind, row.design, row.width, profile, dists[0],
                                                  vectors=vectors, seed=seed, model=model,
                                                  glitches=args.glitches))
            progress.done(i, len(rows), label, time.perf_counter() - started)
    return results


def _activity_formats(text):
    """The formats of ``activity --formats``: floating-point ones whose operands hwlib.activity
    draws (an integer format's units are priced with --unit and --widths)."""
    formats = _names(text, hp.FORMATS, "format")
    _check_switching(formats or ())
    return formats


def _check_switching(formats):
    from ._pipeline import SWITCHING_FORMATS
    other = [f for f in formats if f not in SWITCHING_FORMATS]
    if other:
        raise CommandError(f"--formats: switching activity is simulated for {', '.join(SWITCHING_FORMATS)}, "
                           f"not {other[0]}" + (f" (an {other[0]} unit is an integer unit: --unit add|mul "
                                                f"--widths {hp.INT_FORMAT_BITS[other[0]]})"
                                                if other[0] in hp.INT_FORMAT_BITS else ""))


def _activity(args):
    from hwlib import activity, registry
    if args.csv is not None:
        check_output(args.csv, "--csv", (".csv",), inputs=(args.profile,))
    if args.save_streams is not None:
        check_output(args.save_streams, "--save-streams", (".npz",), inputs=(args.profile,))
    profile = hp.load(args.profile)
    if args.from_model is not None or args.input is not None:
        return _activity_from_model(args, profile)
    if args.save_streams is not None:
        raise CommandError("--save-streams goes with --from-model")
    dists, vectors, seed, model = _stream_options(args, profile)
    jobs = []
    if args.formats is not None:
        if args.widths is not None or args.designs is not None:
            raise CommandError("--formats prices the profile's floating-point units; "
                               "--widths and --designs are for integer units")
        from hwlib.cost import fp_units_available
        if not fp_units_available():
            raise CommandError("the floating-point units (hwlib.fp) are not installed")
        formats = _activity_formats(args.formats)
        ops = _names(args.ops, hp.BASIC_OPS, "op") or ["add", "mul"]
        for fmt in formats:
            for op in ops:
                for dist in dists:
                    jobs.append((f"{fmt} {op} {dist.label()}", activity.fp_activity,
                                 (op, fmt, profile, dist)))
    else:
        if args.ops is not None:
            raise CommandError("--ops goes with --formats; integer units take --unit")
        widths = _widths(args.widths or "8,16")
        designs = _names(args.designs, registry.designs_for(args.unit), f"{args.unit} design")
        designs = designs or list(registry.designs_for(args.unit))
        for width in widths:
            for design in designs:
                for dist in dists:
                    jobs.append((f"{design} {width}-bit {dist.label()}", activity.unit_activity,
                                 (args.unit, design, width, profile, dist)))
    progress = _Progress()
    results = []
    with _synthesis_errors():
        for i, (label, function, fargs) in enumerate(jobs, 1):
            progress.start(i, len(jobs), label)
            started = time.perf_counter()
            results.append(function(*fargs, vectors=vectors, seed=seed, model=model,
                                    glitches=args.glitches))
            progress.done(i, len(jobs), label, time.perf_counter() - started)
    records = [r.to_json() for r in results]
    if args.csv:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        write_atomic(args.csv, text.getvalue().encode())
    if args.json:
        print(json_text(records))
        return 0
    print(f"# switching activity under profile {profile.name}: {vectors - 1} operations per "
          f"stream, seed {seed}, {model.vdd:g} V; glitches {results[0].glitches}; "
          f"{_model_note(model)}")
    body = [(r.unit, r.design, r.width if r.format is None else r.format, r.distribution,
             f"{r.activity:.3f}", f"{r.energy_fj_per_op:,.1f}", f"{r.delay_ps:,.0f}",
             f"{r.area_um2:,.1f}", f"{r.edp_fj_ns:,.2f}") for r in results]
    print(_table(("unit", "design", "width", "distribution", "activity", "fJ/op", "delay_ps",
                  "area_um2", "EDP_fJ*ns"), body, {2, 4, 5, 6, 7, 8}))
    return 0


def _load_input(path):
    import numpy as np
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CommandError(f"--input {path}: cannot read an array: {' '.join(str(exc).split())}") from None
    if hasattr(data, "files"):
        with data:
            return {name: data[name] for name in data.files}
    return data


def _activity_from_model(args, profile):
    from . import _model_streams as ms
    if args.from_model is None:
        raise CommandError("--input goes with --from-model")
    for flag in ("widths", "designs", "ops"):
        if getattr(args, flag) is not None:
            raise CommandError(f"--{flag} does not go with --from-model (it prices the profile's FP "
                               f"multiplier and adder)")
    if args.dist != ["uniform"]:
        raise CommandError("--dist does not go with --from-model (the model gives the operands)")
    formats = _activity_formats(args.formats) or [profile.default_format]
    if len(formats) != 1:
        raise CommandError("--from-model takes one format")
    _check_switching(formats)
    _, vectors, seed, model = _stream_options(args, profile)
    inputs = _load_input(args.input) if args.input is not None else None
    from hwlib.cost import fp_units_available
    if not fp_units_available():
        raise CommandError("the floating-point units (hwlib.fp) are not installed")
    try:
        streams = ms.model_streams(args.from_model, formats[0], vectors=vectors, seed=seed, inputs=inputs)
    except (MemoryError, RecursionError, KeyboardInterrupt):
        raise
    except Exception as exc:       # noqa: BLE001 -- a model that cannot be read or run is the user's input
        import opcount
        text = " ".join(str(exc).split())
        if not isinstance(exc, (opcount.ModelError, ValueError, OSError)):
            text = f"{type(exc).__name__}: {text}"      # e.g. a protobuf error of a corrupt file
        raise CommandError(f"--from-model {args.from_model}: {text}") from None

    if args.save_streams is not None:
        try:
            saved = ms.save_streams(streams, args.save_streams)
        except ValueError as exc:
            raise CommandError(f"--from-model {args.from_model}: {exc}") from None
        print(f"wrote {len(saved)} operand streams of {streams.model} to {args.save_streams} (use as "
              f"streams:{args.save_streams} under power.distribution's mul: and add:)", file=sys.stderr)

    def progress(index, total, name):
        print(f"[{index}/{total}] {name}: {formats[0]} mul and add streams ...", file=sys.stderr, flush=True)

    try:
        with _synthesis_errors():
            result = ms.model_activity(streams, profile, model=model, glitches=args.glitches, seed=seed,
                                       progress=progress)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    record = result.to_json()
    if args.csv:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["layer", "type", "macs", "zeros", "mul_fj_per_op", "mul_activity", "add_fj_per_op",
                         "add_activity", "source"])
        for item in result.layers:
            writer.writerow([item["layer"], item["type"], item["macs"], item["zeros"],
                             item["mul"].energy_fj_per_op, item["mul"].activity, item["add"].energy_fj_per_op,
                             item["add"].activity, streams.source])
        write_atomic(args.csv, text.getvalue().encode())
    if args.json:
        print(json_text(record))
        return 0
    total = sum(item["macs"] for item in result.layers)
    print(f"# {streams.model}: {formats[0]} multiply-accumulate operand streams from {streams.source}; "
          f"{vectors - 1} operations per stream, seed {seed}, {model.vdd:g} V; glitches "
          f"{result.reference['mul'].glitches}; {_model_note(model)}")
    body = [(item["layer"], item["type"], _fmt(item["macs"]), f"{item['zeros']:.2f}",
             f"{item['mul'].energy_fj_per_op:,.1f}", f"{item['add'].energy_fj_per_op:,.1f}")
            for item in result.layers]
    ref_mul, ref_add = result.reference["mul"].energy_fj_per_op, result.reference["add"].energy_fj_per_op
    body.append(("model (MAC-weighted)", "", _fmt(total), "", f"{result.mul_fj:,.1f}", f"{result.add_fj:,.1f}"))
    body.append(("reference: normal operands", "", "", "", f"{ref_mul:,.1f}", f"{ref_add:,.1f}"))
    print(_table(("layer", "type", "MACs", "zeros", "mul fJ/op", "add fJ/op"), body, {2, 3, 4, 5}))
    print(f"\nmodel streams / normal operands: mul x{result.mul_fj / ref_mul:.2f}, add x{result.add_fj / ref_add:.2f} "
          f"({result.reference['mul'].design} multiplier, {result.reference['add'].design} adder); an estimate of "
          f"dynamic switching energy, no leakage or data movement")
    for name, kind, reason in streams.skipped:
        print(f"(!) skipped {name} ({kind}): {reason}")
    return 0
