"""The scoring pipeline behind :func:`tosim.score`: read and count models, price the counts.

Each model source becomes one *row*, a plain dict (picklable, so worker processes can return
it): the counting fields of :func:`count_source`, then the TOs of :func:`price` (the counts x the
profile's cost table, by :func:`opcount.kernel.tos_from_counts` over all models at once). A
model that cannot be read or counted becomes a row with its ``error`` message; the others go on.
:mod:`tosim.api` turns rows into :class:`tosim.ScoreResult` objects.

The whole-run rule (a run is ``epochs`` x the sum over its steps; :func:`whole_run_total`) is
written here once and used by scoring (:func:`combine_steps`) and by ``tosim fit``'s features.
"""
import contextlib
import gc
import operator
import os
import re

import opcount
from hardware_profiles.schema import INT_FORMAT_BITS
from opcount import BASIC_OPS as OPS, STAGES

__all__ = ["MODEL_EXTENSIONS", "expand_inputs", "name_of", "count_source", "count_all", "price",
           "whole_run_total", "combine_steps", "movement_fields"]

#: File types a folder input is searched for (recursively).
MODEL_EXTENSIONS = (".yaml", ".yml", ".json", ".onnx")

#: Worker processes are used automatically only for at least this many bytes of model files.
AUTO_JOBS_BYTES = 64 * 2 ** 20


def expand_inputs(inputs, skipped=None):
    """Model sources in order: ``zoo:all`` becomes every zoo name, a folder its model files
    (recursively, sorted); anything else is kept as given (a bad one fails on its own row).

    In a folder, a file that is plainly no model (a hardware profile, a JSON list such as the
    output of ``tosim score``; :func:`not_a_model`) is left out and, when ``skipped`` is a list,
    appended to it as ``(path, reason)``. Files named one by one are always kept."""
    out = []
    for item in inputs or ["zoo:all"]:
        if item == "zoo:all":
            out.extend(f"zoo:{name}" for name in opcount.zoo_names())
        elif isinstance(item, (str, os.PathLike)) and not str(item).startswith("zoo:") and os.path.isdir(item):
            found = []
            for root, dirs, files in os.walk(item):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(MODEL_EXTENSIONS) and not name.startswith("."):
                        path = os.path.join(root, name)
                        reason = not_a_model(path)
                        if reason is None:
                            found.append(path)
                        elif skipped is not None:
                            skipped.append((path, reason))
            out.extend(found)
        else:
            out.append(item)
    return out


_PROFILE_KEYS = re.compile(r"^(schema|technology|units|datapath|recipes|devices|extends|memory|power):", re.M)
_PROFILE_KEYS_JSON = re.compile(r'"(technology|units|datapath|recipes)"\s*:')
_MODEL_KEYS = re.compile(r"^(layers|model_type):|\"(layers|model_type)\"\s*:", re.M)


def not_a_model(path):
    """Why the file at ``path`` is plainly not a model (``None`` when it may be one): a hardware
    profile (profile keys and no ``layers``/``model_type``), or a JSON list (score rows). Reads
    at most the first 64 KB; a file that cannot be read is kept (it fails on its own row)."""
    if path.lower().endswith(".onnx") or not os.path.isfile(path):
        return None        # a FIFO or a device is never opened here (its own row refuses it)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(65536)
    except OSError:
        return None
    if _MODEL_KEYS.search(head):
        return None
    text = head.lstrip()
    if path.lower().endswith(".json") and text.startswith("["):
        return "a JSON list, not a model (an output of tosim score?)"
    if _PROFILE_KEYS.search(head) or _PROFILE_KEYS_JSON.search(head):
        return "a hardware profile, not a model"
    return None


def name_of(source):
    """The name a row gets when its model could not be read: the zoo name, the file stem, or
    the ``name`` of an in-memory model or spec."""
    if isinstance(source, opcount.ModelIR):
        return source.name
    if isinstance(source, dict):
        return str(source.get("name") or "model")
    if not isinstance(source, (str, os.PathLike)):
        return type(source).__name__
    source = os.fspath(source)
    if source.startswith("zoo:"):
        return source[4:]
    return os.path.splitext(os.path.basename(source))[0] or source


def source_label(source):
    """The ``source`` column of a row: the path or ``zoo:NAME`` as given; ``None`` for a model
    given in memory (a ModelIR or a spec mapping)."""
    if isinstance(source, os.PathLike):
        return os.fspath(source)
    return source if isinstance(source, str) else None


def movement_fields(profile):
    """Extra columns of a profile with a ``memory:`` section: compute and movement energy (J)
    and accesses per level; none without one."""
    memory = profile.memory
    if memory is None:
        return []
    return ["energy_compute_j", "energy_movement_j"] + [f"accesses_{lv['name']}" for lv in memory["levels"]]


# --- counting (in this process or in workers) -------------------------------------------------

_WORKER: dict = {}


def _init_worker(options):
    _WORKER.update(options)


def _count_indexed(item):
    from hardware_profiles import files as _read
    index, source = item
    with _read.track_reads() as reads:      # handed to the parent, which guards its outputs
        result = count_source(source, **_WORKER)
    return index, result, sorted(reads)


def read_model(source, load=None):
    """The ModelIR of ``source`` (:func:`opcount.load_model`) read with the options in ``load``:
    ``seq``, ``format`` (and any other keyword of ``load_model``), and ``loss`` and
    ``optimizer``, which replace the model's own. ``None`` values are left out."""
    options = {k: v for k, v in (load or {}).items() if v is not None}
    loss, optimizer = options.pop("loss", None), options.pop("optimizer", None)
    if isinstance(source, str) and source.rpartition(":")[0].lower().endswith(".py") and not os.path.exists(source):
        source = read_torch(source)         # FILE.py:NAME, a PyTorch module
    model = opcount.load_model(source, **options)
    if loss is not None or optimizer is not None:
        import dataclasses
        model = dataclasses.replace(model, loss=loss or model.loss, optimizer=optimizer or model.optimizer)
    return model


def read_torch(source):
    """The ModelIR of the PyTorch module ``FILE.py:NAME`` names (:func:`opcount.load_torch` on
    the module and example inputs :func:`tosim._model_streams.torch_factory` gives). What it
    leaves uncounted is in the model's ``left_out`` (the count's ``incomplete``, which the
    commands print); the IncompleteModelWarning saying so is not repeated."""
    import warnings
    from ._model_streams import remember_torch, torch_factory
    try:
        module, example, name = torch_factory(source)
    except ValueError as exc:
        raise opcount.ModelError(f"{source}: {exc}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", opcount.IncompleteModelWarning)
        model = opcount.load_torch(module, example, name=name)
    remember_torch(model, module, example)
    return model


_ROW = operator.itemgetter(*OPS)


def layer_rows(result):
    """The counts of each layer of a :class:`opcount.CountResult` as one tuple, the four stages'
    ops in ``STAGES`` x ``BASIC_OPS`` order (exact integers; :meth:`CountResult.as_array`'s rows)."""
    get = _ROW
    return [get(st["forward"]) + get(st["loss"]) + get(st["backward"]) + get(st["update"])
            for st in (layer.stages for layer in result.layers)]


def _totals(rows):
    """Per op, the count over all layers and stages (``CountResult.totals["all"]``, exact
    integers) from :func:`layer_rows`."""
    n_ops = len(OPS)
    if not rows:
        return [0] * n_ops
    columns = [sum(column) for column in zip(*rows)]
    return [sum(columns[o::n_ops]) for o in range(n_ops)]


def count_source(source, profile, phase, batch, per_layer, densities=None, keep=False, load=None,
                 layer_features=False):
    """Read and count one model: a dict with the row's counting fields, ``rows`` (each layer's
    counts, :func:`layer_rows`; ``counts`` is ``None`` until :func:`price` stacks them into an
    int64 array), ``formats``, and with a memory profile the data-movement fields (``movement`` keeps the
    :class:`opcount.MovementResult`; ``keep`` keeps the :class:`opcount.CountResult` as
    ``count_result``; ``load``: how to read the model, see :func:`read_model`; ``layer_features``
    keeps the per-layer features of a device energy model as ``layer_table``, see
    :mod:`tosim._device_model`); on failure ``{"source", "name", "error"}`` with the exact
    message."""
    label = source_label(source)
    operands = model_operands_used(profile)
    # a zoo model's plain row may be on disk already (tosim._count_cache: keyed by the sources,
    # the settings and the profile); the per-layer, kept and device-model forms are counted
    cache_key = None
    if not (per_layer or keep or layer_features or operands or densities is not None):
        from . import _count_cache
        cache_key = _count_cache.entry_key(source, profile, phase, batch, load)
        cached = _count_cache.read(cache_key) if cache_key is not None else None
        if cached is not None:
            cached["source"] = label
            return cached
    try:
        # recompute and master_format say how to count the training step, not how to read
        options = dict(load or {})
        counting = {key: options.pop(key) for key in ("recompute", "master_format") if key in options}
        # a model that names no format is counted (and moved) in the profile's default_format
        model = opcount.with_default_format(read_model(source, options), profile.default_format)
        result = opcount.count_model(model, profile, phase=phase, batch=batch, **counting)
        movement = opcount.count_movement(result, model, profile, densities=densities) \
            if profile.memory is not None else None
    except opcount.ModelError as exc:
        return {"source": label, "name": name_of(source), "error": str(exc)}
    except Exception as exc:     # noqa: BLE001 -- one input never ends a batch: its row says why
        where = label if label is not None else name_of(source)
        if isinstance(exc, MemoryError):
            message = "ran out of memory reading or counting this model"
        elif isinstance(exc, RecursionError):
            message = "the model is nested too deeply to count"
        else:
            message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        return {"source": label, "name": name_of(source), "error": f"{where}: {message}"}
    # each layer's counts as one flat tuple (stages x ops, exact integers); price() turns them
    # into an int64 array only when the job is large enough to go to numpy (see _PYTHON_MAX_LAYERS)
    rows = layer_rows(result)
    out = {"name": result.model, "source": label, "params": result.params, "macs": result.macs,
           "flops": result.flops, "counts_all": _totals(rows), "formats": result.formats,
           "layer_types": [layer.type for layer in result.layers],
           "incomplete": result.incomplete_types, "incomplete_items": [dict(item) for item in result.incomplete],
           "assumptions": list(getattr(result, "assumptions", ())), "error": None}
    if keep:
        out["count_result"] = result
    if operands:
        # power.distribution draws mul/add operands from this model (price_switching): an ONNX
        # file is run again (its weights), a traced torch module too, others give their layers
        # (synthetic streams)
        from ._model_streams import torch_origin
        path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else ""
        out["operand_source"] = path if path.lower().endswith(".onnx") else torch_origin(source) or model
    if layer_features:
        from ._device_model import layer_table
        out["layer_table"] = layer_table(model, result)
    out["rows"] = rows
    out["counts"] = None
    if per_layer:
        out["layers"] = [{"name": layer.name, "type": layer.type, "format": layer.format, "params": layer.params,
                          "macs": sum(layer.macs.values()), "flops": 2 * sum(layer.macs.values()),
                          "counts": [sum(layer.stages[s][op] for s in STAGES) for op in OPS]}
                         for layer in result.layers]
    if "mac" in profile.units:
        _move_to_macs(out, result)
    if movement is not None:
        _add_movement(out, movement)
    if cache_key is not None:       # a plain row: no per-layer detail, MACs or movement in it
        _count_cache.write(cache_key, out)
    return out


_MUL, _ADD = OPS.index("mul"), OPS.index("add")


def _move_to_macs(out, result):
    """A profile with a MAC unit: the multiply-accumulates of the matrix products
    (:func:`opcount.mac_counts`) leave the ``mul`` and ``add`` counts of the row and become
    ``mac`` counts (``mac_counts``: layers x stages; ``mac``: the total), priced by
    :func:`price` at the MAC unit's cost."""
    macs = opcount.mac_counts(result)
    adds = opcount.mac_add_rows(result)       # a quantized product's adds are in its NAME/accumulate row
    per_layer = macs.sum(axis=1)
    total = int(per_layer.sum())
    out["mac_counts"] = macs
    out["mac"] = total
    out["counts_all"][_MUL] -= total
    out["counts_all"][_ADD] -= total
    n_ops = len(OPS)
    rows = [list(row) for row in out["rows"]]
    for i, layer_macs in enumerate(macs.tolist()):
        for stage, n in enumerate(layer_macs):
            rows[i][stage * n_ops + _MUL] -= n
            rows[adds[i]][stage * n_ops + _ADD] -= n
    out["rows"] = [tuple(row) for row in rows]
    layers = out.get("layers") or []
    for i, (layer, n) in enumerate(zip(layers, per_layer.tolist())):
        layer["counts"][_MUL] -= n
        layers[adds[i]]["counts"][_ADD] -= n
        layer["mac"] = n


def _add_movement(row, mv):
    """The data-movement fields of a row (and of its per-layer entries) from ``mv``."""
    row["movement"] = mv
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


def _auto_jobs(sources):
    """Processes pay only where reading dominates: measured on the 2-core shared machine, the 80
    zoo models count in ~1.05 s in one process and ~1.4 s with 2-3 forked workers (the results
    travel back by pickle and the few large models set the pace), so zoo names and small spec
    files stay in this process; large files (ONNX with weights, where protobuf parsing takes the
    time) go to one worker per core once there are at least 4 of them and
    :data:`AUTO_JOBS_BYTES` in all. ``jobs`` overrides."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    files = [s for s in sources if isinstance(s, str) and not s.startswith("zoo:") and os.path.isfile(s)]
    if cores < 2 or len(files) < 4 or sum(os.path.getsize(f) for f in files) < AUTO_JOBS_BYTES:
        return 1
    return min(cores, 8)


def count_all(sources, profile, phase, batch, per_layer=False, jobs=None, progress=None, densities=None,
              keep=False, load=None, layer_features=False):
    """:func:`count_source` of every source, in order; ``jobs`` processes (``None``: automatic).
    ``progress(done, source)`` is called after each source."""
    with _fewer_collections():
        return _count_all(sources, profile, phase, batch, per_layer, jobs, progress, densities, keep, load,
                          layer_features)


@contextlib.contextmanager
def _fewer_collections():
    """Python's cyclic garbage collector with a higher first threshold while models are read and
    counted. Counting allocates many small acyclic objects (layer dicts, counters; reference
    counting frees them) while the results of the models already counted stay alive, and at
    the default threshold (700 allocations) the collector ran often enough to take about a
    tenth of ``tosim score zoo:all``'s CPU time, scanning those results again and again. The
    setting is restored afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], _GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


#: The collector's first threshold while counting (see :func:`_fewer_collections`).
_GC_THRESHOLD = 50_000


def _count_all(sources, profile, phase, batch, per_layer, jobs, progress, densities, keep, load, layer_features):
    jobs = _auto_jobs(sources) if jobs is None else jobs
    if jobs > 1:
        import multiprocessing      # only then: its import costs a tenth of scoring the zoo
    options = dict(profile=profile, phase=phase, batch=batch, per_layer=per_layer, densities=densities, keep=keep,
                   load=load, layer_features=layer_features)
    results = [None] * len(sources)
    done = 0
    if jobs > 1 and len(sources) > 1 and "fork" in multiprocessing.get_all_start_methods():
        # fork: the workers start with the profile and every module already imported
        context = multiprocessing.get_context("fork")
        with context.Pool(min(jobs, len(sources)), initializer=_init_worker, initargs=(options,)) as pool:
            from hardware_profiles import files as _read
            for index, result, reads in pool.imap_unordered(_count_indexed, list(enumerate(sources))):
                results[index] = result
                for path in reads:
                    _read.note_read(path)
                done += 1
                if progress:
                    progress(done, sources[index])
        return results
    for index, source in enumerate(sources):
        results[index] = count_source(source, **options)
        if progress:
            progress(index + 1, source)
    return results


# --- pricing ----------------------------------------------------------------------------------

#: Jobs of up to this many layers are priced in plain Python, as the kernel adds (see
#: :func:`price`): numpy is not imported for them. Measured with ``python bench/bench_kernel.py
#: --python-crossover`` on the shared 2-core VM: Python 7.3 us of CPU per distinct layer,
#: stacking into int64 + the numpy form 2.0 us, importing numpy 0.08-0.21 s, so numpy repays
#: its import past some 15,000-40,000 distinct layers; models repeat layers (the zoo's 7,389
#: layers hold about 1,300 distinct ones), which the Python path prices once.
_PYTHON_MAX_LAYERS = 50_000


def price(counted, profile, synth_progress=None):
    """Fill ``stage_tos`` (per stage) and ``layer_tos`` (layers x stages) of every good row of
    ``counted``: counts x the profile's cost table per layer format.

    Small jobs (at most :data:`_PYTHON_MAX_LAYERS` layers: a zoo, a few models) are priced in
    Python floats, larger ones in one :func:`opcount.kernel.tos_from_counts` call over all rows
    that fit int64 (numpy, or numba for large batches); rows past int64 always in Python, from
    their exact integers. Every path multiplies and adds in the kernel's order (within a stage
    op after op, over a model's layers layer after layer), so the numbers are the same bits
    whichever runs. With ``power: {energy: activity}`` in the profile, also ``stage_switch_j``
    and ``layer_switch_j``: counts x the switching energy per op
    (:func:`tosim._costs.switching_array`) the same way, and ``switching`` (the basis of that
    estimate)."""
    good = [r for r in counted if r["error"] is None]
    formats = sorted({f for r in good for f in r["formats"]})
    unsimulated = [f for f in formats if f not in SWITCHING_FORMATS]
    if good and profile.power["energy"] == "activity" and unsimulated:
        # before any cost table is read or synthesized
        from ._errors import ScoreError
        raise ScoreError(f"switching energy (power: {{energy: activity}}) is simulated for "
                         f"{', '.join(SWITCHING_FORMATS)} operands, not {', '.join(unsimulated)}; score "
                         f"{unsimulated[0]} models with a profile without power.energy: activity")
    with_macs = [r for r in good if "mac_counts" in r]
    # the ops the counts use: an integer format's other ops are not synthesized (tosim._costs)
    needed = set(_used_ops(good)) if any(f in INT_FORMAT_BITS for f in formats) else None
    if not with_macs and sum(len(r["rows"]) for r in good) <= _PYTHON_MAX_LAYERS:
        from ._costs import cost_columns
        columns = cost_columns(profile, formats, progress=synth_progress, needed=needed) if formats else []
        memo: dict = {}
        column = {f: i for i, f in enumerate(formats)}
        for r in good:
            _price_python(r, columns, column, memo, "stage_tos", "layer_tos")
    else:
        import numpy as np

        from ._costs import costs_array
        costs = costs_array(profile, formats, progress=synth_progress, **({"needed": needed} if needed else {})) \
            if formats else np.zeros((len(OPS), 0))
        _apply_costs(good, costs, formats, "stage_tos", "layer_tos")
    if with_macs:
        # a MAC unit (numpy: the MAC counts are an array): its counts x its cost, added per layer
        from ._costs import mac_costs_array
        # the formats whose rows hold MACs (an int8 product's: the integer MAC unit); only those
        # are priced where integer formats are present (an int32 accumulate row has none)
        used = sorted({f for r in with_macs for f, n in zip(r["formats"], r["mac_counts"].sum(axis=1).tolist())
                       if n})
        mac_costs = mac_costs_array(profile, formats, progress=synth_progress,
                                    **({"used": used} if needed is not None else {}))
        column = {f: i for i, f in enumerate(formats)}
        for r in with_macs:
            per_format = np.array([mac_costs[column[f]] for f in r["formats"]], dtype=np.float64)
            r["layer_tos"] = np.asarray(r["layer_tos"], dtype=np.float64) \
                + r["mac_counts"].astype(np.float64) * per_format[:, None]
            r["stage_tos"] = r["layer_tos"].sum(axis=0)
    if good and profile.power["energy"] == "activity":
        from ._costs import refuse_mac_unit
        refuse_mac_unit(profile, "switching energy (power: {energy: activity})")
        price_switching(good, profile, synth_progress)
    return counted


#: The formats whose operand streams :mod:`hwlib.activity` draws (switching energy).
SWITCHING_FORMATS = ("fp16", "bf16", "fp32", "fp64", "fp8_e4m3", "fp8_e5m2")


def switching_keys(r, power):
    """Per layer of the counted row ``r``, the column of its switching energies: ``(format,
    layer type)`` for a layer type with its own distributions (``power.distribution.layers``),
    else ``(format, "")``."""
    dist = power["distribution"]
    groups = dist.get("layers", {}) if isinstance(dist, dict) else {}
    return [(fmt, kind if kind in groups else "") for fmt, kind in zip(r["formats"], r["layer_types"])]


def price_switching(good, profile, synth_progress=None):
    """Fill ``stage_switch_j``, ``layer_switch_j`` and ``switching`` (the basis of the estimate)
    of the counted rows ``good``: counts x the switching energy per op of each layer's format
    and layer type (:func:`tosim._costs.switching_array`). A profile whose distributions draw
    operands from the model itself (``model``) prices each row on its own operands."""
    from hwlib.activity import ModelOperandsError

    from ._costs import switching_array
    power = profile.power

    def keys_of(r):
        return switching_keys(r, power)

    if model_operands_used(profile):
        for r in good:
            keys = sorted(set(keys_of(r)))
            try:
                joules, basis = switching_array(profile, keys, _used_ops([r], keys_of), progress=synth_progress,
                                                operands=_operand_draw(r, power))
            except ModelOperandsError as exc:
                from ._errors import ScoreError
                raise ScoreError(f"{r['source'] or r['name']}: power.distribution: model: {exc}") from None
            _apply_costs([r], joules, keys, "stage_switch_j", "layer_switch_j", keys_of)
            r["switching"] = basis
        return
    keys = sorted({key for r in good for key in keys_of(r)})
    joules, basis = switching_array(profile, keys, _used_ops(good, keys_of), progress=synth_progress)
    _apply_costs(good, joules, keys, "stage_switch_j", "layer_switch_j", keys_of)
    for r in good:
        r["switching"] = basis


def _walk_distributions(dist):
    if isinstance(dist, dict):
        for value in dist.values():
            yield from _walk_distributions(value)
    elif isinstance(dist, list):
        yield from dist
    else:
        yield dist


def model_operands_named(power):
    """Whether a resolved power section names operands drawn from the scored model
    (``model[#TYPE]`` in ``power.distribution``)."""
    from hwlib.activity import is_model_operands
    return any(is_model_operands(d) for d in _walk_distributions(power["distribution"]))


def model_operands_used(profile):
    """Whether ``profile`` prices switching energy on operands drawn from the scored model."""
    return profile.power["energy"] == "activity" and model_operands_named(profile.power)


def _operand_draw(r, power):
    """The ``operands`` function of :func:`hwlib.activity.op_energies` for the counted row ``r``:
    per format, the stream arrays of its model as ``tosim activity --from-model`` draws them
    (:func:`tosim._model_streams.stream_arrays`: ``power.vectors`` operations, ``power.seed``);
    each drawing adds a line to the row's assumptions saying what it used."""
    from hwlib.activity import ModelOperandsError

    from . import _model_streams as ms
    source = r.get("operand_source")
    vectors, seed = power["vectors"], power["seed"]
    drawn = {}

    def draw(fmt):
        if fmt in drawn:
            return drawn[fmt]
        if source is None:
            raise ModelOperandsError("the model was counted without keeping it (count it again)")
        try:
            if isinstance(source, str):
                streams = ms.streams_from_onnx(source, fmt, vectors=vectors, seed=seed)
            elif isinstance(source, tuple):
                streams = ms.streams_from_torch(*source, fmt, vectors=vectors, seed=seed)
            else:
                streams = ms.streams_from_spec(source, fmt, vectors=vectors, seed=seed)
            arrays = ms.stream_arrays(streams)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:      # noqa: BLE001 -- the model cannot give its operands: one line
            text = " ".join(str(exc).split())
            if not isinstance(exc, (ValueError, OSError)):
                text = f"{type(exc).__name__}: {text}"
            raise ModelOperandsError(f"cannot draw the mul and add operands from the model: {text}") from None
        skipped = f"; {len(streams.skipped)} layer(s) without operands skipped" if streams.skipped else ""
        r["assumptions"].append(f"switching energy: mul and add operands drawn from the model itself ({fmt}, "
                                f"{vectors} operations, seed {seed}): {streams.source}{skipped}")
        drawn[fmt] = arrays
        return arrays
    return draw


def _used_ops(good, keys_of=None):
    """The ``(op, key)`` pairs with a non-zero count in any layer of the rows ``good``; a layer's
    key is its format, or what ``keys_of(r)`` gives per layer."""
    n_ops = len(OPS)
    used = set()
    for r in good:
        for fmt, row in zip(keys_of(r) if keys_of is not None else r["formats"], r["rows"]):
            used.update((op, fmt) for o, op in enumerate(OPS) if any(row[o::n_ops]))
    return sorted(used, key=lambda pair: (pair[1], OPS.index(pair[0])))


def _stack(good):
    """``counts`` (int64 ``(layers, stages, ops)``) of every row of ``good`` whose counts fit
    int64; the others keep ``None`` (priced from their exact integers)."""
    import numpy as np
    for r in good:
        if r["counts"] is None:
            try:
                r["counts"] = np.array(r["rows"], dtype=np.int64).reshape(len(r["rows"]), len(STAGES), len(OPS))
            except OverflowError:
                pass


def _apply_costs(good, costs, formats, stage_key, layer_key, keys_of=None):
    """Counts x ``costs`` (ops x ``formats``) per layer format for every row of ``good``, into
    ``r[stage_key]`` (per stage) and ``r[layer_key]`` (layers x stages): the kernel for the rows
    that fit int64, Python floats in the kernel's order for the others. ``keys_of(r)``, when
    given, names each layer's column instead of its format (``formats`` then lists those keys)."""
    import numpy as np

    from opcount.kernel import tos_from_counts
    _stack(good)
    column = {f: i for i, f in enumerate(formats)}
    stacked = [r for r in good if r["counts"] is not None]
    if stacked:
        counts = np.concatenate([r["counts"] for r in stacked]) if len(stacked) > 1 else stacked[0]["counts"]
        layer_format = np.fromiter((column[f] for r in stacked
                                    for f in (keys_of(r) if keys_of is not None else r["formats"])), dtype=np.int64,
                                   count=counts.shape[0])
        offsets = np.zeros(len(stacked) + 1, dtype=np.int64)
        np.cumsum([r["counts"].shape[0] for r in stacked], out=offsets[1:])
        layer_tos, model_stage, _ = tos_from_counts(counts, costs, layer_format, offsets)
        for i, r in enumerate(stacked):
            r[stage_key] = model_stage[i]
            r[layer_key] = layer_tos[offsets[i]:offsets[i + 1]]
    rest = [r for r in good if r["counts"] is None]
    if rest:
        # past int64: exact Python integers times float64 costs, in the kernel's order
        columns = [tuple(costs[:, j].tolist()) for j in range(len(formats))]
        memo: dict = {}
        for r in rest:
            _price_python(r, columns, column, memo, stage_key, layer_key,
                          keys_of(r) if keys_of is not None else None)


def _price_python(r, columns, column, memo, stage_key, layer_key, keys=None):
    """``r[layer_key]`` (a tuple of per-stage values per layer) and ``r[stage_key]`` of one row,
    in Python floats from the exact integer counts and ``columns`` (per format, the cost of each
    op), in the kernel's order. A repeated layer (same counts, same format) is priced once
    (``memo``, shared by the rows of one cost table)."""
    n_ops = len(OPS)
    layer_tos = []
    s0 = s1 = s2 = s3 = 0.0
    for counts, fmt in zip(r["rows"], keys if keys is not None else r["formats"]):
        key = (counts, fmt)
        tos = memo.get(key)
        if tos is None:
            cost = columns[column[fmt]]
            stages = []
            for start in range(0, len(counts), n_ops):
                acc = 0.0
                for n, c in zip(counts[start:start + n_ops], cost):
                    acc += n * c            # int x float: the int rounded to float64 first, as numpy does
                stages.append(acc)
            tos = memo[key] = tuple(stages)
        layer_tos.append(tos)
        s0 += tos[0]
        s1 += tos[1]
        s2 += tos[2]
        s3 += tos[3]
    r[layer_key] = layer_tos
    r[stage_key] = (s0, s1, s2, s3)


def _layer_total(tos):
    """A layer's TOs over its stages, added in stage order (numpy's sum of four, as the kernel's
    ``layer_tos`` rows are summed)."""
    return float(tos[0]) + float(tos[1]) + float(tos[2]) + float(tos[3])


def finish_row(r, per_layer):
    """The priced row of one counted source: scalar fields, TOs per stage and in total, and with
    ``per_layer`` each layer's TOs per stage and in total."""
    row = {"name": r["name"], "source": r["source"], "error": r["error"]}
    if r["error"] is not None:
        return row
    row.update(params=r["params"], macs=r["macs"], flops=r["flops"], incomplete=r["incomplete"] or None,
               incomplete_items=r["incomplete_items"], movement=r.get("movement"), count_result=r.get("count_result"),
               assumptions=r.get("assumptions") or [])
    row.update(zip(OPS, r["counts_all"]))
    if "mac" in r:
        row["mac"] = r["mac"]
    row.update({f"tos_{s}": float(v) for s, v in zip(STAGES, r["stage_tos"])})
    row["tos"] = float(sum(r["stage_tos"]))
    row.update({k: v for k, v in r.items() if k.startswith(("energy_", "accesses_"))})
    if "layer_table" in r:
        row["layer_table"] = r["layer_table"]
    if "stage_switch_j" in r:
        row.update({f"switching_j_{s}": float(v) for s, v in zip(STAGES, r["stage_switch_j"])})
        row["switching_j"] = float(sum(r["stage_switch_j"]))
        row["switching"] = r["switching"]
    if per_layer:
        row["layers"] = [dict(layer, tos={s: float(v) for s, v in zip(STAGES, lt)}, tos_total=_layer_total(lt))
                         for layer, lt in zip(r["layers"], r["layer_tos"])]
        if "layer_switch_j" in r:
            for layer, lj in zip(row["layers"], r["layer_switch_j"]):
                layer["switching_j"] = _layer_total(lj)
    return row


# --- whole runs -------------------------------------------------------------------------------

def whole_run_total(parts, epochs):
    """A whole run's value from its steps: ``epochs x sum(n x value)`` over ``parts``, a list of
    ``(value, n)`` (the value of one step of a batch size and how many such steps an epoch
    has). Values are numbers (exact integers stay exact), mappings or lists of them (summed
    key by key, item by item), or ``None`` (the result is ``None``)."""
    first = parts[0][0]
    if first is None:
        return None
    if isinstance(first, dict):
        return {key: whole_run_total([(value[key], n) for value, n in parts], epochs) for key in first}
    if isinstance(first, (list, tuple)):
        return [whole_run_total([(value[i], n) for value, n in parts], epochs) for i in range(len(first))]
    return epochs * sum(n * value for value, n in parts)


#: Row and per-layer fields that add up over the steps of a run.
_ADDITIVE = ("macs", "flops", *OPS, "mac", *(f"tos_{s}" for s in STAGES), "tos", "energy_compute_j",
             "energy_movement_j", "counts", "tos_total", "switching_j", *(f"switching_j_{s}" for s in STAGES))


def _is_additive(key):
    return key in _ADDITIVE or key.startswith("accesses_")


def _combine(parts, step_rows, epochs):
    out = dict(parts[0])
    for key in parts[0]:
        if _is_additive(key):
            out[key] = whole_run_total([(part[key], n) for part, (_, n) in zip(parts, step_rows)], epochs)
    return out


def combine_steps(step_rows, epochs):
    """One row per model for a whole run from the rows of its distinct steps.

    ``step_rows`` is ``[(rows, n), ...]``: the rows of one step of a batch size (same models, same
    order) and how many such steps an epoch has. Counts, MACs, FLOPs, TOs (per stage and per
    layer) and movement energies and accesses become :func:`whole_run_total`; exact integers
    stay exact. A model that failed in any step keeps that step's error. Energy and carbon are
    left to the device, since its polynomial is not additive.
    """
    steps = epochs * sum(n for _, n in step_rows)
    out = []
    for parts in zip(*(rows for rows, _ in step_rows)):
        failed = next((row for row in parts if row["error"] is not None), None)
        if failed is not None:
            out.append(dict(failed, steps=steps))
            continue
        row = _combine(parts, step_rows, epochs)
        if "layer_table" in row:
            from ._device_model import combine_tables
            row["layer_table"] = combine_tables([(part["layer_table"], n) for part, (_, n) in zip(parts, step_rows)],
                                                epochs)
        if "layers" in row:
            row["layers"] = [_combine(layers, step_rows, epochs) for layers in zip(*(part["layers"] for part in parts))]
        row["steps"] = steps
        out.append(row)
    return out
