"""``tosim score --phase prefill|decode|generate``: the printing side of :func:`tosim.generate`.

- ``generate``: a request of ``--batch`` sequences, ``--prompt`` tokens each, ``--new-tokens``
  generated: the request's totals and the per-token figures; ``--per-token`` adds the curve over
  the generated positions (and with ``--per-token F.png`` a plot of it).
- ``prefill``: the prompt's forward alone (a request of one new token).
- ``decode``: one decode step against a KV cache of ``--context`` tokens.
"""
import os
import sys
import time

from hardware_profiles import BASIC_OPS

from ._io import check_output, json_text, write_atomic

__all__ = ["SERVING_PHASES", "add_arguments", "run"]

SERVING_PHASES = ("prefill", "decode", "generate")


def add_arguments(parser):
    group = parser.add_argument_group(
        "serving (causal language models: zoo GPT/LLaMA/Mistral/Mixtral, Hugging Face configs)",
        "--phase prefill: the forward over --prompt tokens, keeping the KV cache, logits of the last one; "
        "--phase decode: one token against a KV cache of --context tokens; --phase generate: a request, one "
        "prefill and --new-tokens - 1 decode steps, for --batch sequences")
    group.add_argument("--prompt", type=_positive, default=None, metavar="P", help="prompt tokens (prefill, generate)")
    group.add_argument("--new-tokens", type=_positive, default=None, metavar="N",
                       help="tokens generated per sequence (generate; default 1)")
    group.add_argument("--context", type=_non_negative, default=None, metavar="L",
                       help="KV cache length of a decode step (decode)")
    group.add_argument("--per-token", nargs="?", const="", default=None, metavar="F.png",
                       help="print the per-token curve (TOs, MACs, KV bytes, joules per generated position); "
                            "with F.png also plot it")


def _positive(text):
    from ._io import positive_int
    return positive_int(text)


def _non_negative(text):
    from ._io import non_negative_int
    return non_negative_int(text)


def _check(args):
    from .cli import CommandError
    if args.phase == "decode":
        if args.context is None:
            raise CommandError("--phase decode needs --context L (the KV cache length)")
        if args.prompt is not None or args.new_tokens is not None:
            raise CommandError("--phase decode takes --context, not --prompt or --new-tokens")
        return args.context if args.context else None, 2
    if args.context is not None:
        raise CommandError(f"--context is for --phase decode; --phase {args.phase} takes --prompt")
    if args.prompt is None:
        raise CommandError(f"--phase {args.phase} needs --prompt P (the prompt tokens)")
    if args.phase == "prefill":
        if args.new_tokens is not None:
            raise CommandError("--phase prefill takes --prompt only; --new-tokens is for --phase generate")
        return args.prompt, 1
    return args.prompt, args.new_tokens or 1


def run(args, profile, device, sources):
    """Score each source's serving phase; prints a table (or JSON), writes --out, returns the
    exit status (1 when some source failed)."""
    import opcount

    from . import api
    from .cli import CommandError
    for flag, used in (("--samples/--passes/--epochs", args.samples or args.passes or args.epochs),
                       ("--per-layer", args.per_layer), ("--plot", args.plot), ("--recompute", args.recompute),
                       ("--master-format", args.master_format), ("--seq", getattr(args, "seq", None)),
                       ("--loss", getattr(args, "loss", None)), ("--optimizer", getattr(args, "optimizer", None))):
        if used:
            raise CommandError(f"{flag} is not available with --phase {args.phase}")
    if args.per_token is not None and args.phase != "generate":
        raise CommandError(f"--per-token is for --phase generate (--phase {args.phase} is one step)")
    prompt, new_tokens = _check(args)
    context = None
    if args.phase == "decode":
        # a decode step at cache L is the second token of a request whose prompt is L tokens
        context, prompt = args.context, max(args.context, 1)
        if args.context == 0:
            raise CommandError("--context must be at least 1 for a decode step (a cache of 0 tokens is a prefill)")
    png = args.per_token or None
    if png:
        check_output(png, "--per-token", (".png",), inputs=[args.profile])
    if args.out:
        check_output(args.out, "--out", (".csv", ".json"), inputs=[args.profile])
    densities = {"weights": args.density_weights, "inputs": args.density_inputs} if profile.memory else None
    started = time.perf_counter()
    results, failed = [], []
    for source in sources:
        try:
            results.append(api.generate(source, profile, prompt=prompt, new_tokens=new_tokens, batch=args.batch,
                                        device=device, format=args.format, grid_intensity=args.grid_intensity,
                                        densities=densities))
        except opcount.ModelError as exc:
            failed.append((source, str(exc)))
    seconds = time.perf_counter() - started
    rows = [_row(r, args.phase, context, device) for r in results]
    if args.out:
        if os.path.splitext(args.out)[1].lower() == ".csv":
            write_atomic(args.out, _csv(rows))
        else:
            write_atomic(args.out, json_text(rows) + "\n")
    if args.json:
        sys.stdout.write(json_text(rows) + "\n")
    else:
        print(_table(rows, device is not None, profile.memory is not None, [source for source, _ in failed]))
        what = {"prefill": f"prefill of {prompt} tokens",
                "decode": f"decode step at a KV cache of {context} tokens",
                "generate": f"prompt {prompt} + {new_tokens} new tokens"}[args.phase]
        print(f"\n{len(results)} of {len(results) + len(failed)} models scored with {profile.name} ({what}, "
              f"batch {args.batch}) in {seconds:.2f} s"
              + (f"; energy from device {args.device} ({device['feature']})" if device is not None else ""))
        if any(not r.complete for r in results):
            print("(!) INCOMPLETE: some layers could not be fully counted (--json lists them)")
        if args.per_token is not None and args.phase == "generate":
            for r in results:
                print(f"\n{r.name}: per generated token (token 1 is the prefill)")
                print(_curve_table(r))
    if png:
        for r, path in zip(results, _plot_paths(png, [r.name for r in results])):
            _plot_curve(r, path)
            print(f"wrote {path}", file=sys.stderr)
    if args.out:
        print(f"wrote {len(rows)} rows to {args.out}", file=sys.stderr)
    for _, message in failed:
        print(f"tosim: error: {message}", file=sys.stderr)
    return 1 if failed else 0


def _row(r, phase, context, device):
    """The printed row of one result: the request's figures, or for ``decode`` its one step."""
    row = r.to_dict()
    curve = row.pop("curve")
    if phase == "decode":
        step = curve[1]
        counts = r.counts_detail.decode_counts(0)
        row.update({op: int(sum(int(v) for v in counts[:, :, i].ravel()))
                    for i, op in enumerate(BASIC_OPS)})
        row.update(phase="decode", context=context, prompt=None, new_tokens=None, macs=step["macs"],
                   flops=2 * step["macs"], tos=step["tos"], tos_prefill=None, tos_decode=step["tos"],
                   tos_per_token=step["tos"] / r.batch, kv_read_bytes=step["kv_read_bytes"],
                   kv_write_bytes=step["kv_write_bytes"], kv_cache_bytes=r.kv_cache_bytes,
                   energy_compute_j=step["energy_compute_j"], energy_movement_j=step["energy_movement_j"])
        # a device's polynomial of this one step
        row["energy_j"] = row["energy_per_token_j"] = row["gco2e"] = None
        if device is not None:
            from . import _energy
            row["energy_j"] = float(_energy.energy_joules(device, step["tos"], 2 * step["macs"], step["macs"]))
            row["energy_per_token_j"] = row["energy_j"] / r.batch
        return row
    row["phase"] = phase
    if phase == "generate":
        row["curve"] = curve
    return row


_COLUMNS = ["name", "phase", "batch", "prompt", "new_tokens", "context", "format", "params", "active_params", "macs",
            "flops", *BASIC_OPS, "tos", "tos_prefill", "tos_decode", "tos_per_token",
            "energy_j", "energy_per_token_j", "gco2e", "kv_cache_bytes", "kv_read_bytes", "kv_write_bytes",
            "energy_compute_j", "energy_movement_j", "method"]


def _csv(rows):
    import csv
    import io
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else repr(row[k]) if isinstance(row[k], float) else row[k]
                         for k in _COLUMNS})
    return buffer.getvalue()


def _table(rows, with_energy, with_movement, failed=()):
    from ._render import count_text, si
    header = ["model", "params", "active", "MACs", "TOs", "TOs/token", "KV cache", "KV read", "KV written"]
    header += ["energy J", "J/token"] if with_energy else []
    header += ["compute J", "movement J"] if with_movement else []
    body = []
    for row in rows:
        line = [row["name"] + (" (!)" if row.get("incomplete") else ""), count_text(row["params"]), count_text(row["active_params"]), si(row["macs"]), si(row["tos"]),
                si(row["tos_per_token"]), si(row["kv_cache_bytes"], "B"), si(row["kv_read_bytes"], "B"),
                si(row["kv_write_bytes"], "B")]
        if with_energy:
            line += [si(row["energy_j"]), si(row["energy_per_token_j"])]
        if with_movement:
            line += [si(row["energy_compute_j"]), si(row["energy_movement_j"])]
        body.append(line)
    body += [[source, "error"] + [""] * (len(header) - 2) for source in failed]
    return _align(header, body)


def _align(header, body):
    widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in body])


def _curve_table(r):
    from ._render import si
    header = ["token", "step", "cache", "keys", "MACs", "TOs", "KV read", "KV written"]
    with_energy = r.curve and r.curve[0]["energy_j"] is not None
    with_movement = r.curve and r.curve[0]["energy_movement_j"] is not None
    header += ["energy J"] if with_energy else []
    header += ["compute J", "movement J"] if with_movement else []
    body = []
    for p in r.curve:
        line = [p["token"], p["step"], p["cache"], p["keys"], si(p["macs"]), si(p["tos"]), si(p["kv_read_bytes"], "B"),
                si(p["kv_write_bytes"], "B")]
        line += [si(p["energy_j"])] if with_energy else []
        line += [si(p["energy_compute_j"]), si(p["energy_movement_j"])] if with_movement else []
        body.append(line)
    return _align(header, body)


def _plot_paths(png, names):
    if len(names) == 1:
        return [png]
    from .cmd_score import plot_paths
    return plot_paths(png, names)


def _plot_curve(r, path):
    """TOs (and joules) per generated token over the positions: decode cost grows with the cache."""
    from ._plots import new_figure, save_png
    decode = r.curve[1:]
    fig = new_figure(figsize=(7.0, 4.2))
    ax = fig.subplots()
    if decode:
        x = [p["cache"] for p in decode]
        ax.plot(x, [p["tos"] for p in decode], label="TOs per decode step")
        ax.set_xlabel("KV cache length (tokens before the generated one)")
    ax.set_ylabel("TOs per step (all sequences of the batch)")
    ax.set_title(f"{r.name}: prompt {r.prompt}, {r.new_tokens} new tokens, batch {r.batch}\n"
                 f"(prefill, token 1: {r.curve[0]['tos']:.3g} TOs)", fontsize=9)
    if decode and decode[0]["energy_j"] is not None:
        twin = ax.twinx()
        twin.plot([p["cache"] for p in decode], [p["energy_j"] for p in decode], color="tab:red", linestyle="--",
                  label="joules (device)")
        twin.set_ylabel("joules per decode step")
        twin.legend(loc="lower right", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    save_png(fig, path, dpi=100)
