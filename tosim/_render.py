"""Text rendering shared by the commands: SI numbers and the ``tosim score`` table."""

__all__ = ["si", "count_text", "format_score_table"]


def si(value, unit=""):
    """A number with an SI prefix, 3 significant digits, one style at every size: 1.23G, 45.6k,
    7, 500m, 2.81µ (below 1e-15, an exponent)."""
    if value is None:
        return "-"
    value = float(f"{float(value):.3g}")       # round first, so that 999.9 reads 1k, not 1e+03
    if value == 0:
        return f"0{unit}"
    for factor, prefix in _SI_PREFIXES:
        if abs(value) >= factor:
            return f"{value / factor:.3g}{prefix}{unit}"
    return f"{value:.2e}{unit}"


_SI_PREFIXES = ((1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"),
                (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f"))


def count_text(value):
    """A count of things (parameters) with the short-scale suffixes k, M, B, T, 3 significant
    digits: 61.7k, 11.7M, 1.56B, 175B; SI prefixes stay for physical quantities (:func:`si`)."""
    if value is None:
        return "-"
    value = float(f"{float(value):.3g}")
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def format_score_table(results, with_energy, with_movement=False):
    """The table of ``tosim score``: one line per :class:`tosim.ScoreResult` (and one per layer
    of a per-layer result), failed models marked ``error``, incomplete ones ``(!)``."""
    header = ["model", "params", "MACs", "FLOPs", "TOs", "TOs/FLOP"] + (["energy J", "gCO2e"] if with_energy else [])
    header += ["compute J", "movement J"] if with_movement else []
    # a profile with power.energy: activity: simulated switching energy, an estimate (see the summary)
    with_switching = any(getattr(r, "switching_j", None) is not None for r in results)
    header += ["switching J (est.)"] if with_switching else []
    body = []
    for r in results:
        if r.error is not None:
            body.append([r.name, "error"] + [""] * (len(header) - 2))
            continue
        mark = " (!)" if r.incomplete_types else ""
        ratio = f"{r.tos / r.flops:.0f}" if r.flops else "-"
        line = [r.name + mark, count_text(r.params), si(r.macs), si(r.flops), si(r.tos), ratio]
        if with_energy:
            line += [si(r.energy_j), si(r.gco2e)]
        if with_movement:
            line += [si(r.energy_compute_j), si(r.energy_movement_j)]
        if with_switching:
            line += [si(r.switching_j) if r.switching_j is not None else ""]
        body.append(line)
        for layer in r.layers or []:
            flops = layer.flops
            body.append([f"  {layer.name} ({layer.type})", count_text(layer.params), si(layer.macs), si(flops),
                         si(layer.tos), f"{layer.tos / flops:.0f}" if flops else "-"]
                        + ([si(layer.energy_j) if layer.energy_j is not None else "", ""] if with_energy else [])
                        + ([si(layer.energy_compute_j), si(layer.energy_movement_j)] if with_movement else [])
                        + ([si(layer.switching_j) if layer.switching_j is not None else ""]
                           if with_switching else []))
    widths = [max(len(str(row[i])) for row in [header] + body) for i in range(len(header))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)] + [line(row) for row in body]
    return "\n".join(out)
