"""``tosim count MODEL``: per-layer basic-operation counts per stage (opcount)."""
import json

__all__ = ["register", "run"]

DEFAULT_PROFILE = "cmos-generic"


def register(subparsers):
    parser = subparsers.add_parser(
        "count", help="per-layer basic-operation counts per stage",
        description="Count add, sub, mul, div, sqrt and cmp per layer and stage (forward, loss, backward, "
                    "update) for a model spec (.yaml/.json), a Hugging Face config.json, an ONNX file or a built-in zoo:NAME. Counts cover the whole "
                    "batch and are exact integers.")
    parser.add_argument("model", metavar="MODEL", help="model spec file or zoo:NAME")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help=f"profile name or YAML file (default {DEFAULT_PROFILE})")
    parser.add_argument("--phase", default="inference", choices=["inference", "validation", "training"],
                        help="inference = forward; validation = + loss; training = + backward + update")
    parser.add_argument("--batch", type=_positive, default=1, help="samples per batch (default 1)")
    parser.add_argument("--seq", type=_positive, default=None,
                        help="sequence length of a zoo transformer or Hugging Face config.json (default: its full context)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def _positive(text):
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def _load(args):
    import opcount
    return opcount.load_model(args.model, seq=args.seq)


def run(args):
    import hardware_profiles
    import opcount
    profile = hardware_profiles.load(args.profile)
    model = _load(args)
    result = opcount.count_model(model, profile, phase=args.phase, batch=args.batch)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_table(result))
    return 0


def _human(n):
    return f"{n:,}"


def format_table(result):
    """A readable per-layer table: each layer's counts summed over the phase's stages, then the
    totals per stage."""
    import opcount
    stages = opcount.PHASES[result.phase]
    ops = opcount.BASIC_OPS
    header = ["layer", "type", "output", "params"] + list(ops)
    rows = []
    for layer in result.layers:
        counts = [sum(layer.stages[s][op] for s in stages) for op in ops]
        shape = "x".join(map(str, layer.out_shape)) if layer.out_shape else "-"
        mark = "" if layer.complete else " (!)"
        rows.append([layer.name + mark, layer.type, shape, _human(layer.params)] + [_human(c) for c in counts])
    totals = result.totals
    footer = [[f"total {s}", "", "", ""] + [_human(totals[s][op]) for op in ops] for s in stages]
    footer.append(["total", "", "", _human(result.params)] + [_human(totals["all"][op]) for op in ops])
    widths = [max(len(str(r[i])) for r in [header] + rows + footer) for i in range(len(header))]

    def line(row):
        cells = [str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [f"model {result.model}  profile {result.profile}  phase {result.phase} ({', '.join(stages)})  "
           f"batch {result.batch}",
           f"params {_human(result.params)}  MACs {_human(result.macs)}  FLOPs {_human(result.flops)}",
           "", line(header), rule] + [line(r) for r in rows] + [rule] + [line(r) for r in footer]
    if result.incomplete:
        out.append("")
        types = ", ".join(f"{t} x{n}" for t, n in sorted(result.incomplete_types.items()))
        out.append(f"INCOMPLETE: {len(result.incomplete)} layer(s) not fully counted (marked (!)): {types}")
        for item in result.incomplete:
            out.append(f"  {item['layer']} ({item['type']}): {item['reason']}")
    return "\n".join(out)
