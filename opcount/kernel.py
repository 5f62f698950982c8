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
def _tos_kernel(counts, costs, layer_format, offsets, layer_tos, model_stage_tos, model_tos):
    n_models = offsets.shape[0] - 1
    n_stages = counts.shape[1]
    n_ops = counts.shape[2]
    for m in prange(n_models):
        total = 0.0
        for s in range(n_stages):
            model_stage_tos[m, s] = 0.0
        for layer in range(offsets[m], offsets[m + 1]):
            f = layer_format[layer]
            for s in range(n_stages):
                acc = 0.0
                for o in range(n_ops):
                    acc += counts[layer, s, o] * costs[o, f]
                layer_tos[layer, s] = acc
                model_stage_tos[m, s] += acc
                total += acc
        model_tos[m] = total


def tos_from_counts(counts, costs, layer_format, offsets=None):
    """TOs per layer/stage, per model/stage and per model; see the module docstring for shapes.

    ``offsets`` defaults to one model holding every layer.
    """
    counts = np.ascontiguousarray(counts)
    costs = np.ascontiguousarray(costs, dtype=np.float64)
    layer_format = np.ascontiguousarray(layer_format, dtype=np.int64)
    if counts.dtype != np.int64 or counts.ndim != 3:
        raise KernelInputError(f"counts must be an int64 array (layers, stages, ops), not "
                               f"{counts.dtype} with shape {counts.shape}")
    n_layers, n_stages, n_ops = counts.shape
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
    layer_tos = np.empty((n_layers, n_stages), dtype=np.float64)
    model_stage_tos = np.empty((n_models, n_stages), dtype=np.float64)
    model_tos = np.empty(n_models, dtype=np.float64)
    _tos_kernel(counts, costs, layer_format, offsets, layer_tos, model_stage_tos, model_tos)
    return layer_tos, model_stage_tos, model_tos
