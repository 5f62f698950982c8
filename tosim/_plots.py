"""The PNG plots of the commands, drawn on a :class:`matplotlib.figure.Figure` with its own Agg
canvas: no pyplot state and no change of matplotlib's global backend, so tosim can be used from
a notebook or another program that has its own. Each plot is written atomically.
"""
import io

from ._io import write_atomic

__all__ = ["new_figure", "save_png", "movement_bars", "fit_scatter", "sweep_lines", "design_curves",
           "pareto_fronts"]


def new_figure(**kwargs):
    """A matplotlib Figure on its own Agg canvas (``kwargs`` go to ``Figure``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path, dpi=110):
    """Render ``fig`` to PNG and write it to ``path`` atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    write_atomic(path, buffer.getvalue())


def movement_bars(movement, path):
    """A stacked-bar PNG: compute and data-movement energy per layer (like yang2017 Fig. 6);
    movement split by data type (weights, inputs, outputs incl. partial sums)."""
    import numpy as np
    from opcount.movement import DATA_TYPES
    per_byte = {lv.name: lv.energy_per_byte_j for lv in movement.hierarchy.levels}
    layers = [m for m in movement.layers if m.compute_j + m.movement_j > 0]
    names = [m.name for m in layers]
    parts = {"compute": np.array([m.compute_j for m in layers])}
    for t in DATA_TYPES:
        parts[f"{t} movement"] = np.array([sum(m.bytes[s][lv][t] * per_byte[lv] for s in m.bytes for lv in per_byte)
                                           for m in layers])
    fig = new_figure(figsize=(max(6.0, 0.45 * len(names) + 2), 4.5))
    ax = fig.subplots()
    bottom = np.zeros(len(names))
    x = np.arange(len(names))
    for label, values in parts.items():
        ax.bar(x, values, bottom=bottom, label=label)
        bottom += values
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("energy per batch (J)")
    ax.set_title(f"{movement.model}: compute vs data movement ({movement.profile}, {movement.phase}, "
                 f"batch {movement.batch})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path, dpi=100)


def fit_scatter(path, measured, predicted, train, validation, result):
    """``tosim fit --plot``: measured against predicted joules (train and validation rows), with
    the residuals below."""
    fig = new_figure(figsize=(6, 7))
    ax, res = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for idx, label, marker in ((train, "train", "o"), (validation, "validation", "^")):
        ax.scatter(measured[idx], predicted[idx], s=14, marker=marker, label=label)
        res.scatter(measured[idx], predicted[idx] - measured[idx], s=14, marker=marker)
    lo, hi = float(min(measured.min(), predicted.min())), float(max(measured.max(), predicted.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1)
    res.axhline(0.0, color="grey", linewidth=1)
    v = result["validation"]
    r2 = "n/a" if v["r2"] is None else f"{v['r2']:.3f}"
    ax.set_title(f"{result['feature']} degree {result['degree']}: validation RMSE {v['rmse']:.3g} J, R² {r2}")
    ax.set_ylabel("predicted energy (J)")
    res.set_ylabel("residual (J)")
    res.set_xlabel("measured energy (J)")
    ax.legend()
    fig.tight_layout()
    save_png(fig, path, dpi=120)


def sweep_lines(path, columns, axes, x_name, with_energy, title):
    """``tosim sweep --plot``: TOs beside FLOPs (and joules) against the swept parameter, one line
    per combination of the other varying axes (at most 8)."""
    import numpy as np
    others = [name for name, values in axes.items() if name != x_name and len(values) > 1]
    ok = columns["status"] == 0
    keys = list(zip(*(columns[o].tolist() for o in others))) if others else [()] * len(ok)
    groups = list(dict.fromkeys(k for k, good in zip(keys, ok.tolist()) if good))
    if len(groups) > 8:
        groups = [groups[i] for i in np.linspace(0, len(groups) - 1, 8).round().astype(int)]
    categorical = x_name == "activation"
    panels = [("tos", "TOs"), ("flops", "FLOPs")] + ([("energy_j", "energy (J)")] if with_energy else [])
    fig = new_figure(figsize=(5.2 * len(panels), 4.2))
    axs = fig.subplots(1, len(panels), squeeze=False)
    xs_all = axes[x_name]
    for ax, (key, label) in zip(axs[0], panels):
        for group in groups:
            mask = ok.copy()
            for o, v in zip(others, group):
                mask &= columns[o] == v
            xv = columns[x_name][mask]
            yv = columns[key][mask]
            pos = np.array([xs_all.index(v) for v in xv.tolist()]) if categorical else xv
            text = ", ".join(f"{o}={v}" for o, v in zip(others, group)) or label
            ax.plot(pos, yv, marker="o", markersize=3, label=text)
        if categorical:
            ax.set_xticks(range(len(xs_all)), xs_all)
        elif max(xs_all) / max(min(xs_all), 1) >= 16:
            ax.set_xscale("log", base=2)
        shown = columns[key][ok]
        if shown.size and shown.min() > 0 and shown.max() / shown.min() >= 10:
            ax.set_yscale("log")
        ax.set_xlabel(x_name)
        ax.set_ylabel(label)
        ax.grid(True, which="major", alpha=0.3)
        if len(groups) > 1:
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, path, dpi=120)


def design_curves(rows, designs, title, path, points=None):
    """``tosim compare-adders --plot``: transistors and logic depth against width, per design.
    ``points``: instead of widths, the units compared (``row.point`` names, in order), one
    evenly spaced tick each (``--unit fma``: one per pair of formats)."""
    fig = new_figure(figsize=(10, 4.2))
    ax_t, ax_d = fig.subplots(1, 2)

    def x_of(r):
        return points.index(r.point) if points is not None else r.width
    for design in designs:
        drawn = sorted((x_of(r), r.cost.transistors, r.cost.depth) for r in rows
                       if r.design == design)
        widths = [p[0] for p in drawn]
        ax_t.plot(widths, [p[1] for p in drawn], marker="o", label=design)
        ax_d.plot(widths, [p[2] for p in drawn], marker="o", label=design)
    widths = sorted({x_of(r) for r in rows})
    for ax, ylabel in ((ax_t, "transistors"), (ax_d, "logic depth (gates)")):
        if points is not None:
            ax.set_xticks(widths, [points[w] for w in widths], fontsize="small")
            ax.set_xlabel("unit")
        else:
            if len(widths) > 1:
                ax.set_xscale("log", base=2)
            ax.set_xticks(widths, [str(w) for w in widths])
            ax.set_xlabel("width (bits)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    if len(widths) > 1 and points is None:
        ax_t.set_yscale("log")
    ax_d.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def pareto_fronts(rows, power, title, path):
    """``tosim compare-adders --pareto``: switching energy per operation against critical-path
    delay, one panel per width, every design a labelled point and the Pareto front (designs
    that no other beats on both) joined by a line."""
    widths = sorted({r.width for r in rows})
    fig = new_figure(figsize=(4.2 * len(widths), 4.0))
    axes = fig.subplots(1, len(widths), squeeze=False)[0]
    for ax, width in zip(axes, widths):
        points = [(p.delay_ps, p.energy_fj_per_op, r.design) for r, p in zip(rows, power)
                  if r.width == width]
        for delay, energy, design in points:
            ax.plot([delay], [energy], marker="o", linestyle="none")
            ax.annotate(design, (delay, energy), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        front = sorted(p for p in points
                       if not any(q[0] <= p[0] and q[1] <= p[1] and q[:2] != p[:2]
                                  for q in points))
        ax.plot([p[0] for p in front], [p[1] for p in front], color="black", alpha=0.5,
                drawstyle="steps-post" if len(front) > 1 else "default")
        ax.set_title(f"{width}-bit")
        ax.set_xlabel("critical-path delay (ps)")
        ax.set_ylabel("switching energy per op (fJ)")
        ax.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def explore_fronts(points, title, path):
    """``tosim explore --plot``: energy (the models' switching joules, or fJ per op of each unit of
    a combination) against the slowest unit's delay, one panel per format, every combination a
    labelled point (marker area grows with the units' area) and the energy-delay Pareto front
    joined by a line."""
    formats = list(dict.fromkeys(p.format for p in points))
    with_models = any(p.models_j for p in points)
    fig = new_figure(figsize=(4.6 * len(formats), 4.2))
    axes = fig.subplots(1, len(formats), squeeze=False)[0]
    largest = max(p.area_um2 for p in points)
    for ax, fmt in zip(axes, formats):
        mine = [p for p in points if p.format == fmt]
        coords = [(p.delay_ps, p.energy_j if with_models else p.units_fj,
                   "/".join(d for d in (p.adder, p.multiplier, p.divider, p.root) if d is not None), p.area_um2)
                  for p in mine]
        for delay, energy, label, area in coords:
            ax.scatter([delay], [energy], s=20 + 80 * area / largest, alpha=0.7)
            ax.annotate(label, (delay, energy), fontsize=6, xytext=(3, 3), textcoords="offset points")
        front = sorted(c[:2] for c in coords
                       if not any(d[0] <= c[0] and d[1] <= c[1] and d[:2] != c[:2] for d in coords))
        ax.plot([c[0] for c in front], [c[1] for c in front], color="black", alpha=0.5,
                drawstyle="steps-post" if len(front) > 1 else "default")
        ax.set_title(fmt)
        ax.set_xlabel("slowest unit's critical-path delay (ps)")
        ax.set_ylabel("switching energy (J)" if with_models
                      else f"switching energy per {' + '.join(points[0].units)} (fJ)")
        ax.grid(True, alpha=0.3)
    import textwrap
    fig.suptitle("\n".join(textwrap.wrap(title, 40 + 55 * (len(formats) - 1) + 20)), fontsize=8)
    fig.tight_layout()
    save_png(fig, path, dpi=110)
