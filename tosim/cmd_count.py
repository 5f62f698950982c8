"""``tosim count MODEL``: per-layer basic-operation counts per stage (opcount).

With a profile that has a ``memory:`` section (horowitz45, yang2017) it also prints the energy
split into compute and data movement per layer (:mod:`opcount.movement`), and ``--plot`` draws it.
"""
import sys

import hardware_profiles

from ._io import check_output, json_text, non_negative_int, positive_int

__all__ = ["register", "run"]

from hardware_profiles.schema import DEFAULT_PROFILE, FORMATS, PHASES


def register(subparsers):
    parser = subparsers.add_parser(
        "count", help="per-layer basic-operation counts per stage",
        description="Count add, sub, mul, div, sqrt and cmp per layer and stage (forward, loss, backward, "
                    "update) for a model spec (.yaml/.json), a Hugging Face config.json, an ONNX file or a built-in zoo:NAME. Counts cover the whole "
                    "batch and are exact integers.")
    parser.add_argument("model", metavar="MODEL", help="model spec file or zoo:NAME")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help=f"profile name or YAML file (default {DEFAULT_PROFILE})")
    parser.add_argument("--phase", default="inference", choices=list(PHASES),
                        help="inference = forward; validation = + loss; training = + backward + update")
    parser.add_argument("--batch", type=positive_int, default=1, help="samples per batch (default 1)")
    add_model_arguments(parser)
    add_format_arguments(parser)
    parser.add_argument("--depth", type=non_negative_int, default=None, metavar="N",
                        help="roll the counts up by module path to depth N (layer names split at '.', as "
                             "opcount.load_torch and ONNX exports name them; 0: the whole model) instead of "
                             "one row per layer; --json adds a 'modules' object")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_movement_arguments(parser)
    parser.add_argument("--plot", default=None, metavar="F.png",
                        help="stacked bars of compute and data-movement energy per layer (needs a profile "
                             "with a memory section, e.g. horowitz45 or yang2017)")
    parser.set_defaults(func=run)


def _dim(text):
    """argparse type of ``--dim NAME=N``: ``(name, n)``."""
    import argparse
    name, sep, value = text.partition("=")
    if not sep or not name or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be NAME=N with N a positive integer, not {text!r}")
    return name, int(value)


def dims(args):
    """The ``--dim`` options as a mapping (None when none was given)."""
    return dict(args.dim) if getattr(args, "dim", None) else None


def _density(text):
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], not {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], not {text!r}")
    return value


def _choice_of(names_attr, what):
    """argparse type: a value of ``opcount.<names_attr>`` (read when the flag is given, so that
    building the parser imports no package)."""
    def check(text):
        import argparse

        import opcount
        names = getattr(opcount, names_attr)
        if text not in names:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r}; known: {', '.join(names)}")
        return text
    check.__name__ = what
    return check


def add_format_arguments(parser):
    """The number-format flags shared by count and score: --format, --quantize, --master-format,
    --recompute."""
    parser.add_argument("--format", default=None, choices=list(FORMATS),
                        help="count every layer in this number format, one the profile lists (default: the model's "
                             "own, a spec's format or a Hugging Face config's torch_dtype; else the profile's "
                             "default_format)")
    parser.add_argument("--quantize", default=None, choices=["int8", "int4"],
                        help="quantized inference: the matrix products (conv, linear, matmul) and attention "
                             "projections in this integer format, accumulated in int32 and requantized; the other "
                             "layers in their own format, with the conversions between the two counted (the profile "
                             "must list it and int32)")
    parser.add_argument("--master-format", default=None, choices=["fp16", "bf16", "fp32", "fp64"],
                        help="training in mixed precision: the optimizer's master weights in this format (e.g. "
                             "fp32 with --format bf16); each layer's update is priced in it")
    parser.add_argument("--recompute", default=None, choices=["full", "selective"],
                        help="training: activation recomputation counted in the backward stage (full: every "
                             "layer's forward again; selective: the attention core only)")


def add_model_arguments(parser):
    """The model flags shared by count and score: sequence length, loss, optimizer."""
    parser.add_argument("--seq", type=positive_int, default=None,
                        help="sequence length of a zoo transformer or Hugging Face config.json (default: its full context)")
    parser.add_argument("--batch-axis", type=int, default=None, metavar="AXIS",
                        help="ONNX files: the batch axis of the first graph input (default: its symbolic "
                             "dimension, else axis 0, which the output lists as ASSUMED)")
    parser.add_argument("--dim", type=_dim, action="append", default=None, metavar="NAME=N",
                        help="ONNX files: the size of a symbolic dimension other than the batch (e.g. "
                             "--dim sequence_length=128); repeatable")
    parser.add_argument("--loss", type=_choice_of("LOSSES", "loss"), default=None,
                        help="loss of the validation and training phases instead of the model's own "
                             "(mse, cross_entropy, bce)")
    parser.add_argument("--optimizer", type=_choice_of("OPTIMIZERS", "optimizer"), default=None,
                        help="optimizer of the training phase instead of the model's own (sgd, momentum, adam, adamw)")


def add_movement_arguments(parser):
    """The sparsity flags shared by count and score (used when the profile has a memory section)."""
    parser.add_argument("--density-weights", type=_density, default=1.0, metavar="D",
                        help="fraction of non-zero weights (pruning); scales MACs and compressed accesses")
    parser.add_argument("--density-inputs", type=_density, default=1.0, metavar="D",
                        help="fraction of non-zero input activations (e.g. after ReLU)")


def densities(args):
    from opcount.movement import Densities
    return Densities(weights=args.density_weights, inputs=args.density_inputs)


def run(args):
    from . import api
    from ._costs import SynthesisProgress
    if args.plot is not None:
        check_output(args.plot, "--plot", (".png",), inputs=(args.model, args.profile))
    profile = hardware_profiles.load(args.profile)
    if profile.memory is None and (args.plot or args.density_weights != 1.0 or args.density_inputs != 1.0):
        from .cli import CommandError
        raise CommandError(f"profile {profile.name!r} has no memory section, so there is no data movement "
                           "to plot or sparsity to apply (try --profile horowitz45 or yang2017)")
    scored = api.score(args.model, profile, phase=args.phase, batch=args.batch, seq=args.seq, loss=args.loss,
                       optimizer=args.optimizer, per_layer=True,
                       densities=densities(args) if profile.memory is not None else None,
                       synth_progress=SynthesisProgress(), format=args.format, recompute=args.recompute,
                       master_format=args.master_format, batch_axis=args.batch_axis, dims=dims(args),
                       quantize=args.quantize)
    result, movement = scored.count_result, scored.movement
    if "mac" in profile.units:
        # the profile prices a MAC unit: the matrix products' multiply-accumulates show as mac ops
        import opcount
        result = opcount.with_macs(result)
    if args.json:
        out = result.to_json()
        if args.depth is not None:
            out["modules"] = [dict(module=path, **row) for path, row in result.by_module(args.depth).items()]
        if movement is not None:
            out["movement"] = movement.to_json()
        print(json_text(out))
    elif args.depth is not None:
        print(format_modules(result, args.depth, scored))
    else:
        print(format_table(result, scored))
        if movement is not None:
            print("\n" + format_movement(movement))
    if args.plot:
        from ._plots import movement_bars
        movement_bars(movement, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def format_movement(movement):
    """Per-layer compute and data-movement energy (joules) and accesses per memory level."""
    from ._render import si
    levels = movement.hierarchy.names
    header = ["layer", "type", "eff. MACs", "compute J", "movement J", "movement %"] + [f"{lv} acc." for lv in levels]
    rows = []
    for m in movement.layers:
        total = m.compute_j + m.movement_j
        rows.append([m.name + (" (~)" if m.approximate else ""), m.type, si(m.effective_macs), si(m.compute_j),
                     si(m.movement_j), f"{100 * m.movement_j / total:.1f}" if total else "-"]
                    + [si(movement.accesses(m, lv)) for lv in levels])
    total = movement.compute_j + movement.movement_j
    footer = ["total", "", si(sum(m.effective_macs for m in movement.layers)), si(movement.compute_j),
              si(movement.movement_j), f"{100 * movement.movement_j / total:.1f}" if total else "-"] + [
        si(sum(movement.accesses(m, lv) for m in movement.layers)) for lv in levels]
    widths = [max(len(str(r[i])) for r in [header] + rows + [footer]) for i in range(len(header))]

    def line(row):
        return "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    priced = "" if movement.compute_priced else " (the profile prices no arithmetic: compute 0)"
    out = [f"energy split under {movement.profile}: {movement.hierarchy.reuse}, levels {' > '.join(levels)}{priced}",
           line(header), rule] + [line(r) for r in rows] + [rule, line(footer)]
    if movement.approximate:
        out.append("(~) movement approximated (fused with level 0; see opcount.movement)")
    return "\n".join(out)


def _human(n):
    return f"{n:,}"


def format_modules(result, depth, scored=None):
    """Counts rolled up by module path to ``depth`` (:meth:`opcount.CountResult.by_module`):
    one row per module with its layers, parameters, MACs and each op summed over the phase's
    stages (and TOs with ``scored``), then the incomplete note of :func:`format_table`."""
    import opcount

    from ._render import si
    stages = opcount.PHASES[result.phase]
    ops = result.ops
    modules = result.by_module(depth)
    tos = {}
    if scored is not None:
        for layer, priced in zip(result.layers, scored.layers):
            key = ".".join(layer.name.split(".")[:depth]) if depth else result.model
            tos[key] = tos.get(key, 0.0) + priced.tos
    incomplete = {".".join(str(item["layer"]).split(".")[:depth]) if depth else result.model
                  for item in result.incomplete}
    header = ["module", "layers", "params", "MACs"] + list(ops) + (["TOs"] if scored is not None else [])
    rows = [[path + (" (!)" if path in incomplete else ""), str(row["layers"]), _human(row["params"]),
             _human(row["macs"])] + [_human(sum(row["stages"][s][op] for s in stages)) for op in ops]
            + ([si(tos.get(path, 0.0))] if scored is not None else []) for path, row in modules.items()]
    totals = result.totals
    footer = ["total", str(len(result.layers)), _human(result.params), _human(result.macs)] + [
        _human(totals["all"][op]) for op in ops] + ([si(scored.tos)] if scored is not None else [])
    widths = [max(len(str(r[i])) for r in [header] + rows + [footer]) for i in range(len(header))]

    def line(row):
        return "  ".join(str(c).ljust(w) if i < 1 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [f"model {result.model}  profile {result.profile}  phase {result.phase} ({', '.join(stages)})  "
           f"batch {result.batch}  modules to depth {depth}", "", line(header), rule] + [line(r) for r in rows] + [
        rule, line(footer)]
    out += _assumed(result)
    note = format_table(result, scored).split("\n\nINCOMPLETE", 1)
    if len(note) == 2:
        out.append("\nINCOMPLETE" + note[1])
    return "\n".join(out)


def _assumed(result):
    """The lines saying what the frontend assumed (an ONNX file's batch axis), if anything."""
    items = getattr(result, "assumptions", None) or []
    return [""] + [f"ASSUMED: {item}" for item in items] if items else []


def format_table(result, scored=None):
    """A readable per-layer table: each layer's counts summed over the phase's stages, then the
    totals per stage; with ``scored`` (the :class:`tosim.ScoreResult` of the same count, per
    layer) a last column of TOs."""
    import opcount

    from ._render import si
    stages = opcount.PHASES[result.phase]
    ops = result.ops
    header = ["layer", "type", "output", "params"] + list(ops) + (["TOs"] if scored is not None else [])
    rows = []
    for i, layer in enumerate(result.layers):
        counts = [sum(layer.stages[s][op] for s in stages) for op in ops]
        shape = "x".join(map(str, layer.out_shape)) if layer.out_shape else "-"
        mark = "" if layer.complete else " (!)"
        rows.append([layer.name + mark, layer.type, shape, _human(layer.params)] + [_human(c) for c in counts]
                    + ([si(scored.layers[i].tos)] if scored is not None else []))
    totals = result.totals
    footer = [[f"total {s}", "", "", ""] + [_human(totals[s][op]) for op in ops]
              + ([si(scored.tos_by_stage[s])] if scored is not None else []) for s in stages]
    footer.append(["total", "", "", _human(result.params)] + [_human(totals["all"][op]) for op in ops]
                  + ([si(scored.tos)] if scored is not None else []))
    widths = [max(len(str(r[i])) for r in [header] + rows + footer) for i in range(len(header))]

    def line(row):
        cells = [str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [f"model {result.model}  profile {result.profile}  phase {result.phase} ({', '.join(stages)})  "
           f"batch {result.batch}",
           f"params {_human(result.params)}  MACs {_human(result.macs)}  FLOPs {_human(result.flops)}"
           + (f"  TOs {si(scored.tos)}" if scored is not None else ""),
           "", line(header), rule] + [line(r) for r in rows] + [rule] + [line(r) for r in footer]
    out += _assumed(result)
    if result.incomplete:
        out.append("")
        types = ", ".join(f"{t} x{n}" for t, n in sorted(result.incomplete_types.items()))
        out.append(f"INCOMPLETE: {len(result.incomplete)} layer(s) not fully counted (marked (!)): {types}"
                   + ("; the TOs are too low" if scored is not None else ""))
        for item in result.incomplete:
            out.append(f"  {item['layer']} ({item['type']}): {item['reason']}")
    return "\n".join(out)
