"""``tosim synth`` (a profile's cost table) and ``tosim compare-adders`` (designs side by side).

Both synthesize what the cost cache (``$TOSIM_CACHE_DIR`` or ``~/.cache/tosim``) does not hold
yet, with one progress line per synthesized circuit on stderr; cached circuits print nothing.
Files given with ``--csv`` (``.csv``) and ``--plot`` (``.png``) are checked before any
synthesis starts and written atomically (a temporary file renamed over the target). Operand
widths run from 1 to :data:`MAX_WIDTH` (256) bits: synthesis time grows fast with the width.
"""
import contextlib
import csv
import difflib
import io
import sys

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
    p_cmp.add_argument("--unit", default="add", choices=UNIT_KINDS + ("mac",),
                       help="unit kind (default add); inner units follow the profile; mac: integer "
                            "multiply-accumulate, W-bit operands into an int32 accumulator (hwlib.units.mac)")
    p_cmp.add_argument("--unsigned", action="store_true",
                       help="mac: unsigned operands (default two's complement)")
    p_cmp.add_argument("--profile", default=hp.DEFAULT_PROFILE, metavar="P",
                       help=f"built-in profile name or YAML file (default {hp.DEFAULT_PROFILE})")
    p_cmp.add_argument("--json", action="store_true", help="print JSON")
    p_cmp.add_argument("--csv", metavar="F.csv", help="also write the table as CSV to F.csv")
    p_cmp.add_argument("--plot", metavar="F.png",
                       help="also plot transistors and depth against width per design to F.png")
    _add_jobs(p_cmp)
    p_cmp.set_defaults(func=_compare)


def _add_jobs(parser):
    parser.add_argument("--jobs", "-j", default="1", metavar="N",
                        help="synthesize circuits that are not cached in N processes (default 1)")


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
    """One stderr line per synthesized circuit: ``[3/28] kogge_stone 32-bit ... 1.2 s``."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def start(self, index, total, label):
        self.stream.write(f"[{index}/{total}] {label} ... ")
        self.stream.flush()

    def done(self, index, total, label, seconds):
        self.stream.write(f"{seconds:.1f} s\n")
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


def _synth(args):
    from hwlib import cost

    jobs = _jobs(args.jobs)
    formats = _names(args.formats, hp.FORMATS, "format")
    ops = _names(args.ops, hp.BASIC_OPS, "op")
    profile = hp.load(args.profile)
    with _synthesis_errors():
        rows = cost.cost_table(profile, formats, ops, progress=_Progress(), jobs=jobs)
    if args.json:
        print(json_text([row.to_json() for row in rows]))
        return 0
    counting = profile.technology["counting"]
    if rows and rows[0].circuit == "integer":
        what = ("integer units at each format's significand width (hwlib.fp.build_fp_unit is "
                "not available): add/sub/cmp an adder of fraction+1 bits, mul a multiplier, "
                "div a divider, sqrt a root of that width")
    else:
        what = f"floating-point units of the {profile.datapath!r} datapath (hwlib.fp)"
    print(f"# cost table of profile {profile.name} ({counting} counting): {what}")
    body = [(r.format, r.op, r.design, _fmt(r.cost.transistors), _fmt(r.cost.gate_count),
             r.cost.depth) for r in rows]
    print(_table(("format", "op", "design", "transistors", "gates", "depth"), body, {3, 4, 5}))
    return 0


# --- tosim compare-adders ---------------------------------------------------------------------

def _compare(args):
    from hwlib import cost, registry

    jobs = _jobs(args.jobs)
    widths = _widths(args.widths if args.widths is not None else ("4,8" if args.unit == "mac" else "8,16,32,64"))
    if args.csv is not None:
        check_output(args.csv, "--csv", (".csv",), inputs=(args.profile,))
    if args.plot is not None:
        check_output(args.plot, "--plot", (".png",), inputs=(args.profile,))
    if args.unit == "mac":
        from hwlib.units.mac import MAC_DESIGNS
        known = tuple(MAC_DESIGNS)
    else:
        known = registry.designs_for(args.unit)
    designs = _names(args.designs, known, f"{args.unit} design")
    profile = hp.load(args.profile)
    designs = designs or list(known)
    with _synthesis_errors():
        rows = cost.compare_designs(args.unit, widths, profile, designs,
                                    progress=_Progress(), jobs=jobs, signed=not args.unsigned)
    records = [row.to_json() for row in rows]
    if args.csv:
        text = io.StringIO()
        fields = ["design", "width", "transistors", "gates", "depth", "adp"]
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
    body = [(r.design, r.width, _fmt(r.cost.transistors), _fmt(r.cost.gate_count),
             r.cost.depth, _fmt(r.adp)) for r in rows]
    print(_table(("design", "width", "transistors", "gates", "depth", "ADP"), body,
                 {1, 2, 3, 4, 5}))
    return 0
