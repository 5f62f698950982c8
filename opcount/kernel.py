"""The scoring kernel: multiply circuit costs into op counts for whole batches of models.

Inputs are plain arrays so that opcount never needs hwlib (DESIGN.md):

- ``counts``: int64 ``(n_layers, n_stages, n_ops)``, the layers of all models stacked;
- ``costs``: float64 ``(n_ops, n_formats)``, transistors per basic op and format (a cost table);
- ``layer_format``: integer ``(n_layers,)``, the column of ``costs`` each layer runs in;
- ``offsets``: int64 ``(n_models + 1,)``, model ``m`` owns layers ``offsets[m]:offsets[m+1]``.

Outputs (float64): TOs per layer and stage ``(n_layers, n_stages)``, per model and stage
``(n_models, n_stages)`` and per model ``(n_models,)``.

The kernel runs in parallel over models; each model's sums live in registers of the thread that
owns it and are written once to that model's own output slot, so there are no races and no
temporary the size of the input (the numpy reference in the tests builds an
``n_layers x n_stages x n_ops`` product).
"""
import numpy as np
from numba import njit, prange

from ._numba_config import NJIT_PARALLEL

__all__ = ["tos_from_counts", "KernelInputError"]


class KernelInputError(ValueError):
    """Arrays of the wrong shape, type or range given to the kernel."""


@njit(**NJIT_PARALLEL)
def _tos_kernel(rows, row_costs, layer_format, offsets, layer_tos, model_stage_tos, model_tos):
    # rows: counts viewed as (layers, 4 stages x 6 ops), row_costs: (formats, 4 x 6) with the cost
    # of op o repeated for each stage, so one layer is one contiguous sweep over 24 numbers.
    # Within a stage the additions run in op order, as in the reference. Each model's stage sums
    # live in a thread-private 4-element accumulator and are written once to the model's own row.
    n_models = offsets.shape[0] - 1
    for m in prange(n_models):
        stage_sums = np.zeros(4)
        for layer in range(offsets[m], offsets[m + 1]):
            f = layer_format[layer]
            for stage in range(4):
                acc = 0.0
                for o in range(stage * 6, stage * 6 + 6):
                    acc += rows[layer, o] * row_costs[f, o]
                layer_tos[layer, stage] = acc
                stage_sums[stage] += acc
        for stage in range(4):
            model_stage_tos[m, stage] = stage_sums[stage]
        model_tos[m] = stage_sums[0] + stage_sums[1] + stage_sums[2] + stage_sums[3]


def tos_from_counts(counts, costs, layer_format, offsets=None, *, out=None):
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
    if (n_stages, n_ops) != (4, 6):
        raise KernelInputError(f"counts must have 4 stages (forward, loss, backward, update) and 6 ops "
                               f"(add, sub, mul, div, sqrt, cmp), not shape {counts.shape}")
    if costs.ndim != 2 or costs.shape[0] != n_ops:
        raise KernelInputError(f"costs must have shape ({n_ops}, formats), not {costs.shape}")
    if layer_format.shape != (n_layers,):
        raise KernelInputError(f"layer_format must have shape ({n_layers},), not {layer_format.shape}")
    if n_layers and (layer_format.min() < 0 or layer_format.max() >= costs.shape[1]):
        raise KernelInputError(f"layer_format values must lie in 0..{costs.shape[1] - 1}")
    if offsets is None:
        offsets = np.array([0, n_layers], dtype=np.int64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets[0] != 0 or offsets[-1] != n_layers \
            or np.any(np.diff(offsets) < 0):
        raise KernelInputError("offsets must rise from 0 to the number of layers")
    n_models = offsets.shape[0] - 1
    shapes = ((n_layers, n_stages), (n_models, n_stages), (n_models,))
    if out is None:
        out = tuple(np.empty(shape, dtype=np.float64) for shape in shapes)
    for array, shape in zip(out, shapes):
        if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != np.float64 \
                or not array.flags.c_contiguous:
            raise KernelInputError(f"out arrays must be C-contiguous float64 of shapes {shapes}")
    layer_tos, model_stage_tos, model_tos = out
    row_costs = np.ascontiguousarray(np.tile(costs.T, (1, n_stages)))     # (formats, stages*ops)
    _tos_kernel(counts.reshape(n_layers, n_stages * n_ops), row_costs, layer_format, offsets,
                layer_tos, model_stage_tos, model_tos)
    return layer_tos, model_stage_tos, model_tos
