"""The numba form of the scoring kernel (see :mod:`opcount.kernel`); imported only when a job is
large enough to repay loading numba.

Two compiled forms of one loop: ``_tos_kernel`` runs in parallel over models, ``_tos_serial`` on
the calling thread: below a measured size a parallel launch (waking numba's worker threads, which
on a loaded machine may wait for a core) costs more than the whole job.
"""
import numba
import numpy as np
from numba import njit, prange

from ._numba_config import NJIT, NJIT_PARALLEL

__all__ = ["tos_kernel", "loaded"]


def _tos_loop(rows, row_costs, layer_format, offsets, layer_tos, model_stage_tos, model_tos):
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


_tos_kernel = njit(**NJIT_PARALLEL)(_tos_loop)


@njit(**NJIT)
def _tos_serial(rows, row_costs, layer_format, offsets, layer_tos, model_stage_tos, model_tos):
    # _tos_loop on the calling thread, written out again rather than compiled twice from one
    # function: numba's disk cache names entries by function, so two compiled forms of one
    # function would share (and swap) cache entries. Same additions in the same order.
    for m in range(offsets.shape[0] - 1):
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


def loaded():
    """Whether a compiled form of the kernel is in memory already (a call costs microseconds)."""
    return bool(_tos_serial.signatures or _tos_kernel.signatures)


def tos_kernel(rows, row_costs, layer_format, offsets, layer_tos, model_stage_tos, model_tos,
               threads):
    """Fill the three output arrays, on ``threads`` of numba's threads (at most the number it
    currently allows, :func:`numba.get_num_threads`); one thread runs on the calling thread."""
    threads = min(threads, numba.get_num_threads())
    if threads <= 1:
        _tos_serial(rows, row_costs, layer_format, offsets, layer_tos, model_stage_tos, model_tos)
        return
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        _tos_kernel(rows, row_costs, layer_format, offsets, layer_tos, model_stage_tos, model_tos)
    finally:
        numba.set_num_threads(before)
