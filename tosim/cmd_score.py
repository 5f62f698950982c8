"""``tosim score INPUTS...``: batch scoring of model files, folders and built-in zoo models.

One row per model: params, MACs, FLOPs, basic-op counts of the phase, TOs per stage and in
total (counts x the profile's cost table, by :func:`opcount.kernel.tos_from_counts` over all
models at once), and with ``--device`` the energy of the device's fitted polynomial and its
carbon. A model that cannot be read or counted becomes a row with its ``error``; the others are
still scored and written, and the exit status is 1.

Carbon follows CodeCarbon's method (frasca2024 lecture): grams CO2e = energy in kWh (joules /
3.6e6) x the grid's carbon intensity in g/kWh, the profile's ``carbon.grid_gco2_per_kwh``
(475, the world average CodeCarbon uses, in the built-in profiles) unless
``--grid-intensity`` overrides it.
"""
import argparse
import csv
import difflib
import io
import json
import math
import os
import sys
import time

from ._io import check_output, positive_int, write_atomic

__all__ = ["register", "run", "ROW_FIELDS", "LAYER_FIELDS", "score", "expand_inputs", "resolve_device",
           "energy_joules", "carbon_grams", "ProgressBar", "MODEL_EXTENSIONS",
           "movement_fields", "add_movement", "plot_paths", "RUN_FIELDS", "combine_steps", "apply_energy"]

DEFAULT_PROFILE = "cmos-generic"
#: File types a folder input is searched for (recursively).
MODEL_EXTENSIONS = (".yaml", ".yml", ".json", ".onnx")
J_PER_KWH = 3.6e6
OPS = ("add", "sub", "mul", "div", "sqrt", "cmp")
STAGES = ("forward", "loss", "backward", "update")

#: Columns of a score row, in order (CSV header, JSON keys).
ROW_FIELDS = ["name", "source", "profile", "phase", "batch", "params", "macs", "flops", *OPS,
              *(f"tos_{s}" for s in STAGES), "tos", "energy_j", "gco2e", "incomplete", "error"]
#: Extra columns of the per-layer rows of a ``--per-layer`` CSV.
LAYER_FIELDS = ["layer", "layer_type", "format"]
#: Extra columns of a whole-run score (``--samples``, ``--passes``, ``--epochs``): the workload as
#: given and the number of steps of the whole run.
RUN_FIELDS = ["samples", "passes", "epochs", "steps"]


# --- arguments --------------------------------------------------------------------------------

def register(subparsers):
    parser = subparsers.add_parser(
        "score", help="batch scoring: TOs, energy and carbon of models, files, folders and the zoo",
        description="Score models: params, MACs, FLOPs, basic-op counts, TOs per stage and in total, and with "
                    "--device the energy (joules) and carbon (gCO2e). INPUTS are model files (.yaml/.yml/.json "
                    "spec, Hugging Face config.json, .onnx), folders (searched recursively for those), zoo:NAME "
                    "or zoo:all. Without INPUTS the whole built-in zoo is scored. A bad input becomes a row "
                    "with its error (exit status 1); every good row is still written.")
    parser.add_argument("inputs", metavar="INPUTS", nargs="*", help="files, folders, zoo:NAME, zoo:all (default zoo:all)")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help=f"profile name or YAML file (default {DEFAULT_PROFILE})")
    parser.add_argument("--device", default=None,
                        help="a device of the profile whose fitted coefficients turn TOs/FLOPs/MACs into joules")
    parser.add_argument("--phase", default="inference", choices=["inference", "validation", "training"],
                        help="inference = forward; validation = + loss; training = + backward + update")
    parser.add_argument("--batch", type=positive_int, default=1, help="samples per batch (default 1)")
    whole = parser.add_argument_group(
        "whole run", "score a whole run instead of one step, as a row of tosim fit's measurement CSV: "
                     "epochs x the steps of one epoch (devices fitted on whole runs, such as li2022's, need this)")
    whole.add_argument("--samples", type=positive_int, default=None,
                     help="samples per epoch: samples // batch full steps and one step of the rest")
    whole.add_argument("--passes", type=positive_int, default=None,
                     help="steps per epoch, each of --batch samples (not with --samples)")
    whole.add_argument("--epochs", type=positive_int, default=None,
                     help="epochs of the run (default 1); alone, an epoch is one step of --batch samples")
    parser.add_argument("--grid-intensity", type=_non_negative_float, default=None, metavar="G_PER_KWH",
                        help="grid carbon intensity in gCO2e/kWh (default: the profile's, 475 world average)")
    parser.add_argument("--out", default=None, metavar="FILE.csv|FILE.json",
                        help="write the rows to a CSV or JSON file (chosen by the extension)")
    parser.add_argument("--per-layer", action="store_true", help="add the per-layer breakdown")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--jobs", type=positive_int, default=None,
                        help="processes that read and count models (default: automatic; 1 = in this process)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: when stderr is a terminal)")
    from .cmd_count import add_movement_arguments
    add_movement_arguments(parser)
    parser.add_argument("--plot", default=None, metavar="F.png",
                        help="with a memory profile: one stacked-bar PNG per model, F-<model>.png (a repeated "
                             "model name gets -2, -3, ...; characters other than letters, digits, '.', '_' and "
                             "'-' become '_'), compute vs data movement per layer; of a whole run, its first step")
    parser.set_defaults(func=run)


def movement_fields(profile):
    """Extra columns of a profile with a ``memory:`` section: compute and movement energy (J)
    and accesses per level, appended after :data:`ROW_FIELDS`; none without one."""
    memory = profile.memory
    if memory is None:
        return []
    return ["energy_compute_j", "energy_movement_j"] + [f"accesses_{lv['name']}" for lv in memory["levels"]]


def plot_paths(plot, names):
    """The per-model plot files of ``--plot F.png``: ``F-<name>.png`` for each name, in order,
    the name's characters other than letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``
    and a repeated name given ``-2``, ``-3``, ... so that no plot overwrites another."""
    import re
    root, ext = os.path.splitext(plot)
    used, out = set(), []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", str(name)) or "model"
        candidate, k = base, 2
        while candidate.lower() in used:
            candidate, k = f"{base}-{k}", k + 1
        used.add(candidate.lower())
        out.append(f"{root}-{candidate}{ext or '.png'}")
    return out


def add_movement(rows, sources, profile, phase, batch, densities=None, plot=None):
    """Fill :func:`movement_fields` of each good row (recounting its model; opcount.movement);
    with ``plot`` (``F.png``) also draw each good row's plot to its :func:`plot_paths` file.
    Returns the plot files written, in order."""
    import opcount
    good = [row for row in rows if row["error"] is None]
    paths = iter(plot_paths(plot, [row["name"] for row in good]) if plot else [])
    written = []
    for row, source in zip(rows, sources):
        if row["error"] is not None:
            continue
        model = opcount.load_model(source)
        result = opcount.count_model(model, profile, phase=phase, batch=batch)
        mv = opcount.count_movement(result, model, profile, densities=densities)
        row["energy_compute_j"] = mv.compute_j
        row["energy_movement_j"] = mv.movement_j
        for lv in mv.hierarchy.names:
            row[f"accesses_{lv}"] = float(sum(mv.accesses(m, lv) for m in mv.layers))
        by_name = {m.name: m for m in mv.layers}
        for layer in row.get("layers") or []:
            m = by_name.get(layer["name"])
            if m is not None:
                layer["energy_compute_j"], layer["energy_movement_j"] = m.compute_j, m.movement_j
                layer.update({f"accesses_{lv}": mv.accesses(m, lv) for lv in mv.hierarchy.names})
        if plot:
            from .cmd_count import plot_movement
            path = next(paths)
            plot_movement(mv, path)
            written.append(path)
    return written


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, not {text!r}")
    return value


# --- inputs, devices, energy ------------------------------------------------------------------

def expand_inputs(inputs):
    """Model sources in order: ``zoo:all`` becomes every zoo name, a folder its model files
    (recursively, sorted); anything else is kept as given (a bad one fails on its own row)."""
    import opcount
    out = []
    for item in inputs or ["zoo:all"]:
        if item == "zoo:all":
            out.extend(f"zoo:{name}" for name in opcount.zoo_names())
        elif not item.startswith("zoo:") and os.path.isdir(item):
            found = []
            for root, dirs, files in os.walk(item):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(MODEL_EXTENSIONS) and not name.startswith("."):
                        found.append(os.path.join(root, name))
            out.extend(found)
        else:
            out.append(item)
    return out


def resolve_device(profile, name):
    """The device mapping of ``profile`` named ``name``; a one-line
    :class:`tosim.cli.CommandError` with a did-you-mean when it has none of that name."""
    from .cli import CommandError
    devices = profile.devices or {}
    if name in devices:
        return devices[name]
    if not devices:
        raise CommandError(f"profile {profile.name!r} has no devices, so there is no {name!r}; "
                           "a profile with fitted devices (e.g. li2022) or tosim fit gives them")
    close = difflib.get_close_matches(name, list(devices), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise CommandError(f"profile {profile.name!r} has no device {name!r}{hint} "
                       f"(devices: {', '.join(sorted(devices))})")


def energy_joules(device, tos, flops, macs):
    """Joules of a device's fitted polynomial E = c0 + c1 x + c2 x^2 + ... (:func:`calibrate.predict`),
    x its feature (TOs, FLOPs or MACs); works on numbers and numpy arrays."""
    import calibrate
    x = {"tos": tos, "flops": flops, "macs": macs}[device["feature"]]
    return calibrate.predict(device["coefficients"], float(x) if isinstance(x, int) else x)


def carbon_grams(energy_j, grid_g_per_kwh):
    """gCO2e of ``energy_j`` joules at a grid intensity in g/kWh (CodeCarbon's method)."""
    return energy_j / J_PER_KWH * grid_g_per_kwh


# --- output helpers ---------------------------------------------------------------------------

class ProgressBar:
    """A one-line progress bar on stderr, drawn only when enabled and the batch has run for a
    moment (short batches stay silent), redrawn at most ten times a second."""

    def __init__(self, total, label, enabled, stream=None, delay=0.3):
        self.total, self.label, self.enabled = total, label, enabled and total > 1
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self.delay = delay
        self.last = 0.0
        self.drawn = False

    def update(self, done, note=""):
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.start < self.delay or (now - self.last < 0.1 and done < self.total):
            return
        self.last = now
        width = 30
        filled = int(width * done / self.total)
        note = note if len(note) <= 30 else note[:27] + "..."
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {note:<30}")
        self.stream.flush()
        self.drawn = True

    def close(self):
        if self.drawn:
            self.stream.write("\r" + " " * 90 + "\r")
            self.stream.flush()


# --- counting (in this process or in workers) -------------------------------------------------

_WORKER = {}


def _init_worker(profile, phase, batch, per_layer):
    _WORKER.update(profile=profile, phase=phase, batch=batch, per_layer=per_layer)


def _count_indexed(item):
    index, source = item
    return index, count_source(source, **_WORKER)


def count_source(source, profile, phase, batch, per_layer):
    """Read and count one model: a dict with the row's counting fields, ``counts`` (int64
    ``(layers, 4, 6)``, or ``None`` past int64, then ``layer_counts`` holds exact lists) and
    ``formats``; on failure ``{"source", "error"}`` with the exact message."""
    import opcount
    try:
        model = opcount.load_model(source)
        result = opcount.count_model(model, profile, phase=phase, batch=batch)
    except opcount.ModelError as exc:
        return {"source": source, "error": str(exc)}
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        return {"source": source, "error": f"{source}: {type(exc).__name__}: {exc}"}
    totals = result.totals["all"]
    out = {"name": result.model, "source": source, "params": result.params, "macs": result.macs,
           "flops": result.flops, "counts_all": [totals[op] for op in OPS], "formats": result.formats,
           "incomplete": result.incomplete_types, "error": None}
    try:
        out["counts"] = result.as_array()
    except OverflowError:
        out["counts"] = None
        out["layer_counts"] = [[[layer.stages[s][op] for op in OPS] for s in STAGES] for layer in result.layers]
    if per_layer:
        out["layers"] = [{"name": layer.name, "type": layer.type, "format": layer.format, "params": layer.params,
                          "macs": sum(layer.macs.values()), "flops": 2 * sum(layer.macs.values()),
                          "counts": [sum(layer.stages[s][op] for s in STAGES) for op in OPS]}
                         for layer in result.layers]
    return out


#: Worker processes are used automatically only for at least this many bytes of model files.
AUTO_JOBS_BYTES = 64 * 2 ** 20


def _auto_jobs(sources):
    """Processes pay only where reading dominates: measured on the 2-core shared machine, the 80
    zoo models count in ~1.05 s in one process and ~1.4 s with 2-3 forked workers (the results
    travel back by pickle and the few large models set the pace), so zoo names and small spec
    files stay in this process; large files (ONNX with weights, where protobuf parsing takes the
    time) go to one worker per core once there are at least 4 of them and
    :data:`AUTO_JOBS_BYTES` in all. ``--jobs`` overrides."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    files = [s for s in sources if not s.startswith("zoo:") and os.path.isfile(s)]
    if cores < 2 or len(files) < 4 or sum(os.path.getsize(f) for f in files) < AUTO_JOBS_BYTES:
        return 1
    return min(cores, 8)


def count_all(sources, profile, phase, batch, per_layer=False, jobs=None, progress=None):
    """:func:`count_source` of every source, in order; ``jobs`` processes (``None``: automatic)."""
    import multiprocessing
    jobs = _auto_jobs(sources) if jobs is None else jobs
    results = [None] * len(sources)
    done = 0
    if jobs > 1 and len(sources) > 1 and "fork" in multiprocessing.get_all_start_methods():
        # fork: the workers start with the profile and every module already imported
        context = multiprocessing.get_context("fork")
        with context.Pool(min(jobs, len(sources)), initializer=_init_worker,
                          initargs=(profile, phase, batch, per_layer)) as pool:
            for index, result in pool.imap_unordered(_count_indexed, list(enumerate(sources))):
                results[index] = result
                done += 1
                if progress:
                    progress.update(done, sources[index])
        return results
    for index, source in enumerate(sources):
        results[index] = count_source(source, profile, phase, batch, per_layer)
        if progress:
            progress.update(index + 1, source)
    return results


# --- scoring ----------------------------------------------------------------------------------

def score(sources, profile, *, phase="inference", batch=1, device=None, grid=None, per_layer=False, jobs=None,
          progress=None, synth_progress=None):
    """Score model sources; returns ``(rows, seconds)`` where each row is a dict with
    :data:`ROW_FIELDS` (plus ``layers`` with ``per_layer``). ``device``: a device mapping of the
    profile (see :func:`resolve_device`) or ``None``; ``grid``: g/kWh (default the profile's)."""
    import numpy as np

    from opcount.kernel import tos_from_counts

    from ._costs import costs_array
    started = time.perf_counter()
    counted = count_all(sources, profile, phase, batch, per_layer=per_layer, jobs=jobs, progress=progress)
    good = [r for r in counted if r["error"] is None]
    formats = sorted({f for r in good for f in r["formats"]})
    costs = costs_array(profile, formats, progress=synth_progress) if formats else np.zeros((len(OPS), 0))
    column = {f: i for i, f in enumerate(formats)}
    stacked = [r for r in good if r["counts"] is not None]
    layer_tos = None
    if stacked:
        counts = np.concatenate([r["counts"] for r in stacked]) if len(stacked) > 1 else stacked[0]["counts"]
        layer_format = np.fromiter((column[f] for r in stacked for f in r["formats"]), dtype=np.int64,
                                   count=counts.shape[0])
        offsets = np.zeros(len(stacked) + 1, dtype=np.int64)
        np.cumsum([r["counts"].shape[0] for r in stacked], out=offsets[1:])
        layer_tos, model_stage, _ = tos_from_counts(counts, costs, layer_format, offsets)
        for i, r in enumerate(stacked):
            r["stage_tos"] = model_stage[i]
            r["layer_tos"] = layer_tos[offsets[i]:offsets[i + 1]]
    for r in good:
        if r["counts"] is None:
            # past int64: exact Python integers times float64 costs, summed in float64
            per_layer_tos = [[sum(float(n) * costs[o, column[fmt]] for o, n in enumerate(stage)) for stage in layer]
                             for layer, fmt in zip(r["layer_counts"], r["formats"])]
            r["layer_tos"] = np.array(per_layer_tos, dtype=np.float64).reshape(-1, len(STAGES))
            r["stage_tos"] = r["layer_tos"].sum(axis=0)
    rows = []
    for r in counted:
        row = dict.fromkeys(ROW_FIELDS)
        row.update(profile=profile.name, phase=phase, batch=batch, source=r["source"])
        if r["error"] is not None:
            row["name"] = _name_of(r["source"])
            row["error"] = r["error"]
            rows.append(row)
            continue
        row.update(name=r["name"], params=r["params"], macs=r["macs"], flops=r["flops"],
                   incomplete=r["incomplete"] or None)
        row.update(zip(OPS, r["counts_all"]))
        row.update({f"tos_{s}": float(v) for s, v in zip(STAGES, r["stage_tos"])})
        row["tos"] = float(sum(r["stage_tos"]))
        if per_layer:
            row["layers"] = [dict(layer, tos={s: float(v) for s, v in zip(STAGES, lt)}, tos_total=float(lt.sum()))
                             for layer, lt in zip(r["layers"], r["layer_tos"])]
        rows.append(row)
    apply_energy(rows, profile, device, grid)
    return rows, time.perf_counter() - started


def apply_energy(rows, profile, device, grid=None):
    """Fill ``energy_j`` (the device's polynomial of the row's TOs, FLOPs or MACs) and ``gco2e``
    (at ``grid`` g/kWh, default the profile's) of every good row; nothing without a device."""
    if device is None:
        return
    grid = profile.grid_gco2_per_kwh if grid is None else grid
    from ._energy import apply_model_energy, is_energy_model
    if is_energy_model(device):
        # the device energy model: joules per layer and per term (tosim._energy)
        apply_model_energy(rows, profile, device)
    for row in rows:
        if row["error"] is None and is_energy_model(device):
            if grid is not None:
                row["gco2e"] = carbon_grams(row["energy_j"], grid)
        elif row["error"] is None:
            row["energy_j"] = float(energy_joules(device, row["tos"], row["flops"], row["macs"]))
            if grid is not None:
                row["gco2e"] = carbon_grams(row["energy_j"], grid)


#: Row and per-layer fields that add up over the steps of a run.
_ADDITIVE = ("macs", "flops", *OPS, *(f"tos_{s}" for s in STAGES), "tos", "energy_compute_j",
             "energy_movement_j")


def _is_additive(key):
    return key in _ADDITIVE or key.startswith("accesses_")


def combine_steps(step_rows, epochs):
    """One row per model for a whole run from the rows of its distinct steps.

    ``step_rows`` is ``[(rows, n), ...]``: the rows of one step of a batch size (same models, same
    order) and how many such steps an epoch has. Counts, MACs, FLOPs, TOs (per stage and per
    layer) and movement energies and accesses become ``epochs x sum(n x step value)``; exact
    integers stay exact. A model that failed in any step keeps that step's error. Energy and
    carbon are left to :func:`apply_energy`, since a device's polynomial is not additive.
    """
    steps = epochs * sum(n for _, n in step_rows)
    out = []
    for parts in zip(*(rows for rows, _ in step_rows)):
        failed = next((row for row in parts if row["error"] is not None), None)
        if failed is not None:
            out.append(dict(failed, steps=steps))
            continue
        row = dict(parts[0], energy_j=None, gco2e=None)
        for key, value in parts[0].items():
            if _is_additive(key) and value is not None:
                row[key] = epochs * sum(n * part[key] for part, (_, n) in zip(parts, step_rows))
        if "layers" in row:
            row["layers"] = [_combine_layer(layers, step_rows, epochs)
                             for layers in zip(*(part["layers"] for part in parts))]
        row["steps"] = steps
        out.append(row)
    return out


def _combine_layer(layers, step_rows, epochs):
    weights = [epochs * n for _, n in step_rows]
    layer = dict(layers[0])
    for key, value in layers[0].items():
        if _is_additive(key) and key != "tos" and value is not None:
            layer[key] = sum(w * part[key] for part, w in zip(layers, weights))
    layer["counts"] = [sum(w * part["counts"][i] for part, w in zip(layers, weights))
                       for i in range(len(layers[0]["counts"]))]
    layer["tos"] = {s: sum(w * part["tos"][s] for part, w in zip(layers, weights)) for s in layers[0]["tos"]}
    layer["tos_total"] = sum(w * part["tos_total"] for part, w in zip(layers, weights))
    return layer


def _name_of(source):
    if source.startswith("zoo:"):
        return source[4:]
    return os.path.splitext(os.path.basename(source))[0] or source


# --- rendering --------------------------------------------------------------------------------

def _incomplete_text(value):
    if not value:
        return ""
    return ", ".join(f"{t} x{n}" for t, n in sorted(value.items()))


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def rows_to_csv(rows, per_layer=False, extra=()):
    buffer = io.StringIO()
    fields = ROW_FIELDS[:2] + (LAYER_FIELDS if per_layer else []) + ROW_FIELDS[2:] + list(extra)
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = {k: _csv_value(row.get(k)) for k in ROW_FIELDS + list(extra)}
        flat["incomplete"] = _incomplete_text(row.get("incomplete"))
        writer.writerow(flat)
        for layer in row.get("layers") or []:
            line = {"name": row["name"], "source": row["source"], "layer": layer["name"],
                    "layer_type": layer["type"], "format": layer["format"], "profile": row["profile"],
                    "phase": row["phase"], "batch": row["batch"], "params": layer["params"],
                    "macs": layer["macs"], "flops": layer["flops"]}
            line.update(zip(OPS, layer["counts"]))
            line.update({f"tos_{s}": repr(v) for s, v in layer["tos"].items()})
            line["tos"] = repr(layer["tos_total"])
            if layer.get("energy_j") is not None:
                line["energy_j"] = repr(layer["energy_j"])
            line.update({k: _csv_value(row.get(k) if k in RUN_FIELDS else layer.get(k)) for k in extra})
            writer.writerow(line)
    return buffer.getvalue()


def rows_to_json(rows, extra=()):
    out = []
    for row in rows:
        item = {k: row.get(k) for k in ROW_FIELDS + list(extra)}
        item["incomplete"] = None if row.get("error") else (row.get("incomplete") or {})
        if "layers" in row:
            item["layers"] = [{"name": layer["name"], "type": layer["type"], "format": layer["format"],
                               "params": layer["params"], "macs": layer["macs"], "flops": layer["flops"],
                               "counts": dict(zip(OPS, layer["counts"])),
                               "tos": dict(layer["tos"], total=layer["tos_total"]),
                               **({"energy_j": layer["energy_j"]} if "energy_j" in layer else {}),
                               **{k: layer.get(k) for k in extra if k not in RUN_FIELDS}}
                              for layer in row["layers"]]
        out.append(item)
    return json.dumps(out, indent=2) + "\n"


def si(value, unit=""):
    """A number with an SI prefix, 3 significant digits: 1.23G, 45.6k, 0.5."""
    if value is None:
        return "-"
    value = float(value)
    if value == 0:
        return f"0{unit}"
    for factor, prefix in ((1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"),
                           (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{prefix}{unit}"
    if abs(value) >= 1e-3:
        return f"{value:.3g}{unit}"
    return f"{value:.2e}{unit}"


def format_table(rows, with_energy, per_layer=False, with_movement=False):
    header = ["model", "params", "MACs", "FLOPs", "TOs", "TOs/FLOP"] + (["energy J", "gCO2e"] if with_energy else [])
    header += ["compute J", "movement J"] if with_movement else []
    body = []
    for row in rows:
        if row["error"] is not None:
            body.append([row["name"], "error"] + [""] * (len(header) - 2))
            continue
        mark = " (!)" if row.get("incomplete") else ""
        ratio = f"{row['tos'] / row['flops']:.0f}" if row["flops"] else "-"
        line = [row["name"] + mark, si(row["params"]), si(row["macs"]), si(row["flops"]), si(row["tos"]), ratio]
        if with_energy:
            line += [si(row["energy_j"]), si(row["gco2e"])]
        if with_movement:
            line += [si(row.get("energy_compute_j")), si(row.get("energy_movement_j"))]
        body.append(line)
        for layer in row.get("layers") or []:
            flops = layer["flops"]
            body.append([f"  {layer['name']} ({layer['type']})", si(layer["params"]), si(layer["macs"]), si(flops),
                         si(layer["tos_total"]), f"{layer['tos_total'] / flops:.0f}" if flops else "-"]
                        + ([si(layer["energy_j"]) if layer.get("energy_j") is not None else "", ""]
                           if with_energy else [])
                        + ([si(layer.get("energy_compute_j")), si(layer.get("energy_movement_j"))]
                           if with_movement else []))
    widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in body]
    return "\n".join(out)


# --- the command ------------------------------------------------------------------------------

def run(args):
    import hardware_profiles
    kind = None
    if args.out is not None or args.plot is not None:
        inputs = [s for s in expand_inputs(args.inputs) if not s.startswith("zoo:")] + [args.profile]
        if args.out is not None:
            check_output(args.out, "--out", (".csv", ".json"), inputs=inputs)
            kind = os.path.splitext(args.out)[1].lower()[1:]
        if args.plot is not None:
            check_output(args.plot, "--plot", (".png",), inputs=inputs)
    profile = hardware_profiles.load(args.profile)
    device = resolve_device(profile, args.device) if args.device else None
    if device is None and args.grid_intensity is not None:
        print("tosim: note: --grid-intensity prices the energy of a --device; without one there is no carbon "
              "to compute", file=sys.stderr)
    if device is not None and device.get("phase") and device["phase"] != args.phase:
        print(f"tosim: note: device {args.device!r} was fitted on {device['phase']} measurements; "
              f"these rows score the {args.phase} phase", file=sys.stderr)
    extra = movement_fields(profile)
    from ._energy import MODEL_FIELDS, is_energy_model
    model_extra = MODEL_FIELDS if is_energy_model(device) else []
    if not extra and (args.plot or args.density_weights != 1.0 or args.density_inputs != 1.0):
        from .cli import CommandError
        raise CommandError(f"profile {profile.name!r} has no memory section, so there is no data movement "
                           "to plot or sparsity to apply (try --profile horowitz45 or yang2017)")
    sources = expand_inputs(args.inputs)
    if not sources:
        from .cli import CommandError
        raise CommandError(f"no model files found in {', '.join(args.inputs)}")
    whole_run = args.samples is not None or args.passes is not None or args.epochs is not None
    if args.samples is not None and args.passes is not None:
        from .cli import CommandError
        raise CommandError("give --samples or --passes, not both")
    if whole_run:
        import calibrate
        steps = calibrate.workload_steps(args.batch, args.samples, args.passes)
    else:
        steps = ((args.batch, 1),)
    enabled = sys.stderr.isatty() if args.progress is None else args.progress
    from ._costs import SynthesisProgress
    started = time.perf_counter()
    step_rows = []
    plots = []
    for index, (batch, n) in enumerate(steps):
        bar = ProgressBar(len(sources), "scoring" if len(steps) == 1 else f"scoring batch {batch}", enabled)
        try:
            rows, _ = score(sources, profile, phase=args.phase, batch=batch, per_layer=args.per_layer,
                            jobs=args.jobs, progress=bar, synth_progress=SynthesisProgress())
        finally:
            bar.close()
        if extra:
            from .cmd_count import densities
            plots += add_movement(rows, sources, profile, args.phase, batch, densities(args),
                                  args.plot if index == 0 else None)
        step_rows.append((rows, n))
    with_movement = bool(extra)
    if whole_run:
        rows = combine_steps(step_rows, args.epochs or 1)
        total = (args.epochs or 1) * sum(n for _, n in steps)
        for row in rows:
            # the batch column is --batch also where the only step is a smaller remainder
            row.update(batch=args.batch, samples=args.samples, passes=args.passes, epochs=args.epochs or 1)
        extra = extra + RUN_FIELDS
    apply_energy(rows, profile, device, args.grid_intensity)
    extra = extra + model_extra
    seconds = time.perf_counter() - started
    if args.out:
        text = rows_to_csv(rows, args.per_layer, extra) if kind == "csv" else rows_to_json(rows, extra)
        write_atomic(args.out, text)
    failed = [row for row in rows if row["error"] is not None]
    if args.json:
        sys.stdout.write(rows_to_json(rows, extra))
    else:
        print(format_table(rows, device is not None, args.per_layer, with_movement))
        grid = profile.grid_gco2_per_kwh if args.grid_intensity is None else args.grid_intensity
        workload = f"batch {args.batch}"
        if whole_run:
            epoch = (f"{args.samples:,} samples" if args.samples is not None
                     else f"{args.passes or 1:,} step{'s' if (args.passes or 1) > 1 else ''}")
            workload += (f", whole run: {args.epochs or 1:,} epoch(s) of {epoch} = {total:,} "
                         f"step{'s' if total > 1 else ''}")
        summary = (f"{len(rows) - len(failed)} of {len(rows)} models scored with {profile.name} "
                   f"({args.phase}, {workload}) in {seconds:.2f} s")
        if device is not None:
            how = "energy model" if is_energy_model(device) else device["feature"]
            summary += f"; energy from device {args.device} ({how}), carbon at {grid:g} gCO2e/kWh"
        print("\n" + summary)
        if any(row.get("incomplete") for row in rows):
            print("(!) incomplete: some layers could not be fully counted (see the incomplete column)")
    if args.out:
        print(f"wrote {len(rows)} rows to {args.out}", file=sys.stderr)
    for path in plots:
        print(f"wrote {path}", file=sys.stderr)
    for row in failed:
        print(f"tosim: error: {row['error']}", file=sys.stderr)
    return 1 if failed else 0
