"""The scoring kernel: multiply circuit costs into op counts for whole batches of models.

Inputs are plain arrays so that opcount never needs hwlib (the layering rule):

- ``counts``: int64 ``(n_layers, n_stages, n_ops)``, the layers of all models stacked;
- ``costs``: float64 ``(n_ops, n_formats)``, transistors per basic op and format (a cost table);
- ``layer_format``: integer ``(n_layers,)``, the column of ``costs`` each layer runs in;
- ``offsets``: int64 ``(n_models + 1,)``, model ``m`` owns layers ``offsets[m]:offsets[m+1]``.

Outputs (float64): TOs per layer and stage ``(n_layers, n_stages)``, per model and stage
``(n_models, n_stages)`` and per model ``(n_models,)``.

Two implementations give the same bits (the same products, added in the same order: within a
stage in op order, over a model's layers in layer order, then the four stages in order):

- numpy, for small jobs (one model, a zoo): no numba to load. It works in blocks of
  ``_NUMPY_BLOCK`` layers, so its temporaries stay small.
- numba (:mod:`opcount._kernel_numba`), for large batches and sweeps. It runs in parallel over
  models; each model's sums live in registers of the thread that owns it and are written once to
  that model's own output slot, so there are no races and no temporary the size of the input.
  It uses one thread per ``_LAYERS_PER_THREAD`` layers, and below twice that runs on the calling
  thread alone: waking numba's worker threads costs more than such a job (milliseconds on a
  loaded machine, against microseconds). Both forms prefetch the counts a few layers ahead; the
  parallel form streams the per-layer TOs to memory (non-temporal stores: a written line is not
  read first); and both check each layer's format in their one pass over the layers instead of
  two passes of ``min``/``max`` beforehand.

Which one runs (:func:`_use_numba`): numba once a job is large enough to repay loading it
(``_NUMBA_MIN_LAYERS``: importing numba and loading the cached kernel cost about 0.6 s of CPU,
what numpy needs for some 4 million layers), or whenever the numba kernel is already loaded in
the process (a call then costs less than numpy's at any size). The thresholds were measured
with ``python bench/bench_kernel.py --crossover``; see docs/benchmarks.md.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from hardware_profiles.schema import BASIC_OPS, STAGES

__all__ = ["tos_from_counts", "KernelInputError"]

#: numpy below, numba at or above this many layers while the numba kernel is not loaded yet (its
#: import and the cached kernel's load cost about as much CPU as numpy pricing this many layers).
_NUMBA_MIN_LAYERS = 4_000_000
#: Layers per numba thread: one thread below twice this, then one more thread per this many
#: layers, up to numba's thread count.
_LAYERS_PER_THREAD = 250_000
#: The numpy form sums models position by position up to this many layers per model.
_POSITIONS_MAX = 128
#: Layers per block of the numpy path (bounds its temporaries to about 12 MB).
_NUMPY_BLOCK = 1 << 16


class KernelInputError(ValueError):
    """Arrays of the wrong shape, type or range given to the kernel."""


def _use_numba(n_layers):
    """Whether the numba kernel should price ``n_layers`` layers (see the module docstring).
    Never with ``NUMBA_DISABLE_JIT`` set: its prefetch and streaming stores exist only compiled."""
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return False
    if n_layers >= _NUMBA_MIN_LAYERS:
        return True
    module = sys.modules.get("opcount._kernel_numba")
    return module is not None and module.loaded()


def _threads(n_layers):
    """numba threads for ``n_layers`` layers: 1 (the calling thread) for small jobs."""
    return max(1, n_layers // _LAYERS_PER_THREAD)


def _tos_numpy(rows, row_costs, layer_format, offsets, layer_tos, model_stage_tos, model_tos):
    """The kernel in numpy, adding in the numba kernel's order (see the module docstring)."""
    n_layers = rows.shape[0]
    n_stages = layer_tos.shape[1]
    n_ops = rows.shape[1] // n_stages
    for start in range(0, n_layers, _NUMPY_BLOCK):
        stop = min(start + _NUMPY_BLOCK, n_layers)
        products = (rows[start:stop] * row_costs[layer_format[start:stop]]).reshape(
            stop - start, n_stages, n_ops)
        block = layer_tos[start:stop]
        block[...] = 0.0
        for o in range(n_ops):             # within a stage: op after op
            block += products[:, :, o]
    # over a model's layers: layer after layer. Short models (sweeps: one layer each) go all at
    # once for each position in a model; longer ones model by model (np.add.accumulate is
    # sequential), which measured faster past about 200 layers per model
    starts, lengths = offsets[:-1], np.diff(offsets)
    model_stage_tos[...] = 0.0
    longest = int(lengths.max()) if lengths.size else 0
    if longest <= _POSITIONS_MAX:
        for k in range(longest):
            live = np.flatnonzero(lengths > k)
            model_stage_tos[live] += layer_tos[starts[live] + k]
    else:
        for m in np.flatnonzero(lengths):
            model_stage_tos[m] = np.add.accumulate(layer_tos[offsets[m]:offsets[m + 1]])[-1]
    model_tos[...] = 0.0
    for stage in range(n_stages):          # then the stages in order
        model_tos += model_stage_tos[:, stage]


def tos_from_counts(counts: np.ndarray, costs: np.ndarray, layer_format: np.ndarray, offsets: np.ndarray | None = None,
                    *, out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TOs per layer/stage, per model/stage and per model; see the module docstring for shapes.

    ``offsets`` defaults to one model holding every layer. ``out`` may pass the three float64
    output arrays to fill (a batch pipeline reuses them instead of faulting in fresh pages for
    every call); they are returned.
    """
    counts = np.ascontiguousarray(counts)
    costs = np.ascontiguousarray(costs, dtype=np.float64)
    layer_format = np.ascontiguousarray(layer_format, dtype=np.int64)
    if counts.dtype != np.int64 or counts.ndim != 3:
        raise KernelInputError(f"counts must be an int64 array (layers, stages, ops), not "
                               f"{counts.dtype} with shape {counts.shape}")
    n_layers, n_stages, n_ops = counts.shape
    if (n_stages, n_ops) != (len(STAGES), len(BASIC_OPS)):
        raise KernelInputError(f"counts must have {len(STAGES)} stages ({', '.join(STAGES)}) and {len(BASIC_OPS)} ops "
                               f"({', '.join(BASIC_OPS)}), not shape {counts.shape}")
    if costs.ndim != 2 or costs.shape[0] != n_ops:
        raise KernelInputError(f"costs must have shape ({n_ops}, formats), not {costs.shape}")
    if layer_format.shape != (n_layers,):
        raise KernelInputError(f"layer_format must have shape ({n_layers},), not {layer_format.shape}")
    if offsets is None:
        offsets = np.array([0, n_layers], dtype=np.int64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets[0] != 0 or offsets[-1] != n_layers \
            or np.any(np.diff(offsets) < 0):
        raise KernelInputError("offsets must rise from 0 to the number of layers")
    n_models = offsets.shape[0] - 1
    shapes = ((n_layers, n_stages), (n_models, n_stages), (n_models,))
    arrays = out if out is not None else tuple(np.empty(shape, dtype=np.float64) for shape in shapes)
    for array, shape in zip(arrays, shapes):
        if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != np.float64 \
                or not array.flags.c_contiguous:
            raise KernelInputError(f"out arrays must be C-contiguous float64 of shapes {shapes}")
    layer_tos, model_stage_tos, model_tos = arrays
    row_costs = np.ascontiguousarray(np.tile(costs.T, (1, n_stages)))     # (formats, stages*ops)
    args = (counts.reshape(n_layers, n_stages * n_ops), row_costs, layer_format, offsets,
            layer_tos, model_stage_tos, model_tos)
    bad_format = f"layer_format values must lie in 0..{costs.shape[1] - 1}"
    if _use_numba(n_layers):
        from ._kernel_numba import tos_kernel
        # the numba kernel checks each layer's format in its own pass over the layers
        if tos_kernel(*args, threads=_threads(n_layers)):
            raise KernelInputError(bad_format)
    else:
        if n_layers and (layer_format.min() < 0 or layer_format.max() >= costs.shape[1]):
            raise KernelInputError(bad_format)
        _tos_numpy(*args)
    return layer_tos, model_stage_tos, model_tos
