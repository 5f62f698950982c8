"""Device energy models in scoring and fitting: the per-layer features of
:class:`calibrate.LayerTable` from a model's counts, and joules per layer and per term
(:func:`model_energy`, used by :func:`tosim._energy.apply_energy`).

Features of one layer call (see :mod:`calibrate._energy` for the model):

* basic ops per ``(format, op)``: the layer's exact counts over the stages of the phase (opcount);
* bytes of ``inputs``, ``outputs`` and ``weights`` (format bytes: fp32 4, fp16/bf16 2, fp64 8),
  each tensor read or written once per stage: forward reads the inputs and weights and writes the
  outputs; training's backward reads the output gradient (outputs), the inputs and the weights and
  writes the input gradient (inputs) and the weight gradient (weights); the update reads each
  weight and its gradient and writes the weight. The loss is priced by its ops and one call;
* calls: one per stage that counts any op.

Views and identities (opcount's zero-cost types other than concat: flatten, reshape, transpose,
identity, select, shape ops; and dropout outside training) move no bytes and make no call. Every
other layer makes its calls even where it counts no op (a 1x1 max-pool still copies its input).
"""
import dataclasses
import math

import numpy as np

from opcount import BASIC_OPS, STAGES, ZERO_COST
from opcount.movement import format_bytes

from ._energy import is_energy_model

__all__ = ["layer_table", "run_table", "device_model", "layer_energy", "is_energy_model", "model_tos_per_op",
           "TableCache", "model_energy", "MODEL_FIELDS", "TERM_FIELDS", "VIEW_TYPES", "combine_tables"]

#: Extra score columns of an energy-model device: joules per term and the roofline time.
TERM_FIELDS = {"ops": "energy_ops_j", "memory": "energy_memory_j", "calls": "energy_calls_j",
               "static": "energy_static_j"}
MODEL_FIELDS = list(TERM_FIELDS.values()) + ["time_s"]

#: Layer types that are views (no data moved, no kernel call): opcount's zero-cost types but concat.
VIEW_TYPES = frozenset(ZERO_COST - {"concat"})


def device_model(device):
    """The :class:`calibrate.EnergyModel` of a profile device mapping."""
    import calibrate
    return calibrate.EnergyModel.from_dict(device["energy_model"])


#: Layer types whose kernels block output channels (padded to the device's ``channel_block``).
BLOCKED_TYPES = frozenset({"conv1d", "conv2d", "conv3d"})
#: Layer types whose kernel is one matrix product (GEMM) of the call's rows by the weights.
GEMM_TYPES = frozenset({"linear"})
#: Max poolings whose PyTorch CPU kernel allocates int64 argmax indices beside the output even when
#: they are not returned (``max_pool2d`` runs ``max_pool2d_with_indices``; checked with torch 2.13's
#: profiler: 3x the output's bytes allocated; ``max_pool1d`` has a kernel without indices).
INDEXED_TYPES = frozenset({"maxpool2d", "maxpool3d", "adaptive_maxpool1d", "adaptive_maxpool2d",
                           "adaptive_maxpool3d"})
#: Bytes of one argmax index (int64).
INDEX_BYTES = 8


def _kernel_shape(layer, batch):
    """(blocked output channels or 0, window share, window rows, blocked input channels or 0,
    valid share) of one call of a layer: convolutions without groups block their output and input
    channels (per group: all of them); convolutions and (non-adaptive) poolings have a window,
    whose new share along the innermost spatial dimension is ``min(stride, kernel) / kernel`` and
    whose rows are (output element, input channel of the group for a convolution, kernel row)
    triples; a convolution's valid share is that of its (output, tap) pairs whose tap lies inside
    the input (opcount counts the taps on the zero padding as MACs, a direct convolution skips
    them; poolings' counts already leave them out); and the GEMM rows M of a matrix-product layer
    (a linear layer: batch x its leading dimensions; 0 for other layers), and the window's innermost
    kernel size and stride (0 for layers without a window), whether the layer runs in place
    (its ``inplace`` attribute: it writes its output into its input and allocates none), and the
    bytes of the argmax indices a max pooling allocates beside its output (0 elsewhere)."""
    if layer is None:
        return 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, False, 0.0
    a = layer.attrs
    blocked = layer.type in BLOCKED_TYPES and a.get("groups", 1) == 1
    channels = float(a["out"]) if blocked else 0.0
    in_channels = float(a["in"]) if blocked else 0.0
    kernel, stride = a.get("kernel"), a.get("stride")
    window = rows = k_last = s_last = 0.0
    valid = 1.0
    if isinstance(kernel, (tuple, list)) and isinstance(stride, (tuple, list)) and kernel and stride:
        k, s = int(kernel[-1]), int(stride[-1])
        if k > 0 and s > 0:
            k_last, s_last = float(k), float(s)
            window = min(s, k) / k
            rows = float(batch) * math.prod(layer.out_shape) * math.prod(kernel[:-1])
            if layer.type in BLOCKED_TYPES or "groups" in a:
                rows *= a["in"] // max(1, a.get("groups", 1))
        taps = a.get("taps")
        spatial = math.prod(layer.out_shape[1:]) if len(layer.out_shape) > 1 else 0
        if taps and spatial and "pairs" in a and not a.get("transposed"):
            valid = min(1.0, max(0.0, a["pairs"] / (spatial * taps)))
    gemm_rows = float(batch) * math.prod(layer.out_shape[:-1]) if layer.type in GEMM_TYPES else 0.0
    index = float(batch * math.prod(layer.out_shape) * INDEX_BYTES) if layer.type in INDEXED_TYPES else 0.0
    return (channels, window, rows, in_channels, valid, gemm_rows, k_last, s_last, bool(a.get("inplace", False)),
            index)


def _layer_rows(model, result):
    """(labels, op_keys, ops rows, bytes rows, calls, kernel shapes (:func:`_kernel_shape`)) of one counted step."""
    by_name = {layer.name: layer for layer in model.layers}
    batch = result.batch
    training = result.phase == "training"
    keys, rows_ops, rows_bytes, calls, labels, shapes = [], [], [], [], [], []
    for counted in result.layers:
        ops = {op: sum(counted.stages[s][op] for s in STAGES) for op in BASIC_OPS}
        if counted.type in VIEW_TYPES or (counted.type == "dropout" and not training):
            continue
        active = max(1, sum(1 for s in STAGES if any(counted.stages[s].values())))
        layer = by_name.get(counted.name)
        width = format_bytes(counted.format)
        if layer is not None:
            inputs = batch * sum(math.prod(shape) for shape in layer.in_shapes) * width
            outputs = batch * math.prod(layer.out_shape) * width
            weights = layer.params * width
        else:   # the loss: priced by its ops and call only
            inputs = outputs = weights = 0.0
        b_in, b_out, b_w = float(inputs), float(outputs), float(weights)
        if training and layer is not None:
            backward = any(counted.stages["backward"].values())
            update = any(counted.stages["update"].values())
            b_in, b_out, b_w = (b_in * (3 if backward else 1), b_out * (2 if backward else 1),
                                b_w * (1 + (2 if backward else 0) + (3 if update else 0)))
        row = {}
        for op, n in ops.items():
            if n:
                row[(counted.format, op)] = float(n)
                if (counted.format, op) not in keys:
                    keys.append((counted.format, op))
        rows_ops.append(row)
        rows_bytes.append((b_in, b_out, b_w))
        calls.append(float(active))
        labels.append((counted.name, counted.type))
        shapes.append(_kernel_shape(layer, batch))
    return labels, keys, rows_ops, rows_bytes, calls, shapes


def layer_table(model, result):
    """The :class:`calibrate.LayerTable` of one counted step (one run, repeat 1) and the
    ``(name, type)`` of each of its entries (layers without ops are left out)."""
    import calibrate
    labels, keys, rows_ops, rows_bytes, calls, shapes = _layer_rows(model, result)
    keys = sorted(keys)
    ops = np.array([[r.get(k, 0.0) for k in keys] for r in rows_ops], dtype=np.float64).reshape(len(rows_ops),
                                                                                                len(keys))
    table = calibrate.LayerTable(run=np.zeros(len(rows_ops), dtype=np.int64), repeat=np.ones(len(rows_ops)),
                                 op_keys=keys, ops=ops, bytes=np.asarray(rows_bytes).reshape(-1, 3),
                                 calls=np.asarray(calls), n_runs=1, types=[t for _n, t in labels],
                                 channels=[x[0] for x in shapes], window=[x[1] for x in shapes],
                                 rows=[x[2] for x in shapes], in_channels=[x[3] for x in shapes],
                                 valid=[x[4] for x in shapes], gemm_rows=[x[5] for x in shapes],
                                 kernel=[x[6] for x in shapes], stride=[x[7] for x in shapes],
                                 inplace=[x[8] for x in shapes], index_bytes=[x[9] for x in shapes])
    return table, labels


def run_table(steps, fresh_share=1.0):
    """One run's table from ``[(step table, times it runs), ...]`` (times = steps x epochs);
    ``fresh_share``: the share of the run's layer calls that got fresh output memory (a
    measurement's ``fresh_outputs`` column; 1 unless the run reused its outputs)."""
    import calibrate
    parts = [dataclasses.replace(table, run=np.zeros(len(table.run), dtype=np.int64), repeat=table.repeat * times,
                                 n_runs=1, fresh_share=np.full(len(table.run), float(fresh_share)))
             for table, times in steps]
    merged = calibrate.LayerTable.concat(parts)
    merged.run[:] = 0
    merged.n_runs = 1
    return merged


def layer_energy(device, model, result):
    """Joules of each layer of one counted step under a device's energy model:
    ``{layer name: {"energy_j": J, "terms": {term: J}, "time_s": s}}`` (layers without ops
    cost 0 and are absent), and the step's total and per-term joules."""
    energy_model = device_model(device)
    table, labels = layer_table(model, result)
    terms = energy_model.layer_terms(table)
    times = energy_model.layer_time(table)
    per_layer = {}
    for i, (name, _type) in enumerate(labels):
        split = {t: float(v[i]) for t, v in terms.items()}
        per_layer[name] = {"energy_j": float(sum(split.values())), "terms": split, "time_s": float(times[i])}
    totals = {t: float(v.sum()) for t, v in terms.items()}
    return per_layer, float(sum(totals.values())), totals


def model_tos_per_op(profile, op_keys):
    """Transistors of each ``(format, op)`` under the profile's cost table (the prior)."""
    from ._costs import costs_array, refuse_mac_unit
    refuse_mac_unit(profile, "a device energy model")
    formats = sorted({fmt for fmt, _ in op_keys})
    if not formats:
        return {}
    costs = costs_array(profile, formats)
    return {(fmt, op): float(costs[BASIC_OPS.index(op), formats.index(fmt)]) for fmt, op in op_keys}


class TableCache:
    """Per-step layer tables of measured runs, each distinct (model, phase, batch) counted once
    and each model file read once."""

    def __init__(self, profile):
        self.profile = profile
        self.models = {}
        self.steps = {}

    def _model(self, source):
        import opcount
        if source not in self.models:
            try:
                self.models[source] = opcount.load_model(source)
            except opcount.ModelError as exc:
                self.models[source] = str(exc)
            except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
                self.models[source] = f"{source}: {type(exc).__name__}: {exc}"
        return self.models[source]

    def step(self, source, phase, batch):
        """(table, labels) of one step, or the model's error message (a string)."""
        import opcount
        key = (source, phase, batch)
        if key not in self.steps:
            model = self._model(source)
            if isinstance(model, str):
                self.steps[key] = model
            else:
                try:
                    result = opcount.count_model(model, self.profile, phase=phase, batch=batch)
                except (opcount.ModelError, ValueError, OverflowError) as exc:
                    self.steps[key] = f"{source}: {exc}"
                else:
                    if result.incomplete:
                        kinds = ", ".join(sorted({f"{i['type']}" for i in result.incomplete}))
                        self.steps[key] = f"{source}: not fully counted ({kinds}); its energy would be too low"
                    else:
                        self.steps[key] = (layer_table(model, result), [l.type for l in model.layers],
                                           float(result.macs))
        return self.steps[key]

    def run(self, measurement):
        """(one-run table, layer types of the model) of a measurement row; ValueError with the
        model's message when it cannot be counted."""
        parts, types = [], None
        for batch, count in measurement.steps:
            got = self.step(measurement.model, measurement.phase, batch)
            if isinstance(got, str):
                raise ValueError(got)
            (table, _labels), types, _macs = got
            parts.append((table, count * measurement.epochs))
        return run_table(parts, fresh_share=measurement.fresh_outputs), types

    def macs_of(self, measurement):
        """MACs of a whole measured run (``epochs x sum over steps of count x MACs``)."""
        total = 0.0
        for batch, count in measurement.steps:
            got = self.step(measurement.model, measurement.phase, batch)
            if isinstance(got, str):
                raise ValueError(got)
            total += count * got[2]
        return measurement.epochs * total




def combine_tables(parts, epochs):
    """The ``(table, labels)`` of a whole run from ``[((table, labels), n), ...]`` (one step of a
    batch size and how many such steps an epoch has)."""
    labels = [label for (_table, step_labels), _n in parts for label in step_labels]
    return run_table([(table, epochs * n) for (table, _labels), n in parts]), labels


def model_energy(device, features):
    """Joules of a scored workload under an energy-model device: ``(total, {term: J}, time_s,
    {layer name: {"energy_j", "terms", "time_s"}})`` from its ``(table, labels)``. ValueError
    when the model prices no op of a format the workload counts."""
    energy_model = device_model(device)
    table, labels = features
    terms = energy_model.layer_terms(table)
    times = energy_model.layer_time(table) * table.repeat
    per_layer = {}
    for i, (name, _type) in enumerate(labels):
        entry = per_layer.setdefault(name, {"energy_j": 0.0, "terms": {}, "time_s": 0.0})
        for t, v in terms.items():
            value = float(v[i] * table.repeat[i])
            entry["terms"][t] = entry["terms"].get(t, 0.0) + value
            entry["energy_j"] += value
        entry["time_s"] += float(times[i])
    totals = {t: float(np.sum(v * table.repeat)) for t, v in terms.items()}
    return float(sum(totals.values())), totals, float(np.sum(times)), per_layer
