"""The numba form of the scoring kernel (see :mod:`opcount.kernel`); imported only when a job is
large enough to repay loading numba.

Two compiled forms of one loop: ``_tos_kernel`` runs in parallel over models, ``_tos_serial`` on
the calling thread: below a measured size a parallel launch (waking numba's worker threads, which
on a loaded machine may wait for a core) costs more than the whole job.

The parallel form is for large jobs, whose per-layer TOs (32 bytes a layer) do not stay in the
cache: it writes them with streaming (non-temporal) stores, so a written line is not first read
from memory. With both cores streaming the counts, memory bandwidth is the limit, and those reads
were an eighth of the kernel's traffic. Both forms prefetch the counts ``PREFETCH_LAYERS`` layers
ahead, which took the parallel form from about 0.8 of a plain read pass to that pass's speed
(``python bench/bench_kernel.py``; docs/benchmarks.md). None of this changes a value.
"""
import platform

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.core.extending import intrinsic

from ._numba_config import NJIT, NJIT_INLINE, NJIT_PARALLEL

__all__ = ["tos_kernel", "loaded"]

#: Streaming (non-temporal) stores of ``layer_tos`` in the parallel kernel: on x86-64, where the
#: ``sfence`` that orders them is known. Elsewhere the stores are plain.
STREAMING = platform.machine().lower() in ("x86_64", "amd64")
#: Chunks per thread of the parallel kernel (each a run of whole models, about equal in layers).
_CHUNKS_PER_THREAD = 8
#: Both kernels ask for the counts of the layer this many layers ahead (a software prefetch of
#: its three cache lines): measured on the 2-core VM, 16 to 96 all brought the parallel kernel
#: from about 0.8 to the read roof; 32 is about 6 KB ahead.
PREFETCH_LAYERS = 32


@intrinsic
def _store_streaming(typingctx, array, row, column, value):
    """``array[row, column] = value`` (a 2-D float64 array) as a non-temporal store: the line goes
    to memory without being read into the cache first, so writing the per-layer TOs costs the
    bytes written and not twice that. Needs :func:`_fence` before other threads read."""
    def codegen(context, builder, signature, args):
        array_v, row_v, column_v, value_v = args
        array_t = signature.args[0]
        view = context.make_array(array_t)(context, builder, array_v)
        pointer = cgutils.get_item_pointer(context, builder, array_t, view, [row_v, column_v], wraparound=False)
        if not STREAMING:
            builder.store(value_v, pointer)
            return context.get_dummy_value()
        # as a 64-bit integer (MOVNTI, any x86-64): a double's non-temporal store needs SSE4A
        word = builder.bitcast(pointer, ir.IntType(64).as_pointer())
        store = builder.store(builder.bitcast(value_v, ir.IntType(64)), word)
        store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
        return context.get_dummy_value()
    return types.void(array, row, column, value), codegen


@intrinsic
def _prefetch(typingctx, array, row, column):
    """A hint to load the cache line of ``array[row, column]`` (a 2-D array, ``row`` in range)
    for reading (``llvm.prefetch``; nothing on a target without one). Changes no value."""
    def codegen(context, builder, signature, args):
        array_v, row_v, column_v = args
        array_t = signature.args[0]
        view = context.make_array(array_t)(context, builder, array_v)
        pointer = cgutils.get_item_pointer(context, builder, array_t, view, [row_v, column_v], wraparound=False)
        byte = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        # the intrinsic's name carries the pointer type: p0i8 with typed pointers, p0 with opaque ones
        name = "llvm.prefetch.p0" if getattr(byte, "is_opaque", False) else "llvm.prefetch.p0i8"
        hint = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32]),
                                              name)
        # read, low temporal locality (x86: PREFETCHT2, into the outer caches; each count is
        # read once), data cache
        builder.call(hint, [builder.bitcast(pointer, byte), ir.Constant(i32, 0), ir.Constant(i32, 1),
                            ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.void(array, row, column), codegen


@intrinsic
def _fence(typingctx):
    """``sfence``: this thread's streaming stores become visible before its later stores (and so
    before the end of the parallel region); nothing off x86-64."""
    def codegen(context, builder, signature, args):
        if STREAMING:
            fence = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                   "llvm.x86.sse.sfence")
            builder.call(fence, [])
        return context.get_dummy_value()
    return types.void(), codegen


@njit(**NJIT_INLINE)
def _prefetch_ahead(rows, layer, last):
    """Prefetch the counts of the layer ``PREFETCH_LAYERS`` ahead (its 24 counts span 3 lines)."""
    ahead = min(layer + PREFETCH_LAYERS, last)
    _prefetch(rows, ahead, 0)
    _prefetch(rows, ahead, 8)
    _prefetch(rows, ahead, 16)


@njit(**NJIT_INLINE)
def _layer_stage_tos(rows, row_costs, f, layer):
    """One layer's TOs per stage: each stage's 6 counts times format ``f``'s costs, added in op
    order (the four stages advance together: four independent chains)."""
    a0 = a1 = a2 = a3 = 0.0
    for o in range(6):
        a0 += rows[layer, o] * row_costs[f, o]
        a1 += rows[layer, 6 + o] * row_costs[f, 6 + o]
        a2 += rows[layer, 12 + o] * row_costs[f, 12 + o]
        a3 += rows[layer, 18 + o] * row_costs[f, 18 + o]
    return a0, a1, a2, a3


@njit(**NJIT_PARALLEL)
def _tos_kernel(rows, row_costs, layer_format, offsets, chunks, layer_tos, model_stage_tos, model_tos, bad):
    # rows: counts viewed as (layers, 4 stages x 6 ops), row_costs: (formats, 4 x 6) with the cost
    # of op o repeated for each stage. Within a stage the additions run in op order, as in the
    # reference; the four stages' sums advance together (four independent chains). Each model's
    # stage sums live in registers and are written once to the model's own row. In parallel over
    # chunks of whole models (``chunks``: model boundaries, about equal in layers); the per-layer
    # TOs are streamed to memory (see _store_streaming), fenced once per chunk. A layer format
    # outside the cost table is counted in ``bad[chunk]`` (the caller raises), not read past.
    n_formats = row_costs.shape[0]
    last = rows.shape[0] - 1
    for c in prange(chunks.shape[0] - 1):
        wrong = 0
        for m in range(chunks[c], chunks[c + 1]):
            s0 = s1 = s2 = s3 = 0.0
            for layer in range(offsets[m], offsets[m + 1]):
                _prefetch_ahead(rows, layer, last)
                f = layer_format[layer]
                if f < 0 or f >= n_formats:
                    wrong += 1
                    continue
                a0, a1, a2, a3 = _layer_stage_tos(rows, row_costs, f, layer)
                _store_streaming(layer_tos, layer, 0, a0)
                _store_streaming(layer_tos, layer, 1, a1)
                _store_streaming(layer_tos, layer, 2, a2)
                _store_streaming(layer_tos, layer, 3, a3)
                s0 += a0
                s1 += a1
                s2 += a2
                s3 += a3
            model_stage_tos[m, 0] = s0
            model_stage_tos[m, 1] = s1
            model_stage_tos[m, 2] = s2
            model_stage_tos[m, 3] = s3
            model_tos[m] = s0 + s1 + s2 + s3
        bad[c] = wrong
        _fence()


@njit(**NJIT)
def _tos_serial(rows, row_costs, layer_format, offsets, layer_tos, model_stage_tos, model_tos):
    # the same loop on the calling thread with plain stores: its jobs are small, and the caller
    # reads the per-layer TOs straight back from the cache. Same additions in the same order.
    # Returns the number of layers whose format is outside the cost table (left unpriced).
    n_formats = row_costs.shape[0]
    last = rows.shape[0] - 1
    wrong = 0
    for m in range(offsets.shape[0] - 1):
        s0 = s1 = s2 = s3 = 0.0
        for layer in range(offsets[m], offsets[m + 1]):
            _prefetch_ahead(rows, layer, last)
            f = layer_format[layer]
            if f < 0 or f >= n_formats:
                wrong += 1
                continue
            a0, a1, a2, a3 = _layer_stage_tos(rows, row_costs, f, layer)
            layer_tos[layer, 0] = a0
            layer_tos[layer, 1] = a1
            layer_tos[layer, 2] = a2
            layer_tos[layer, 3] = a3
            s0 += a0
            s1 += a1
            s2 += a2
            s3 += a3
        model_stage_tos[m, 0] = s0
        model_stage_tos[m, 1] = s1
        model_stage_tos[m, 2] = s2
        model_stage_tos[m, 3] = s3
        model_tos[m] = s0 + s1 + s2 + s3
    return wrong


def _chunks(offsets, n):
    """``n + 1`` (at most) model boundaries splitting the models into runs of about equal layers."""
    n_models = offsets.shape[0] - 1
    targets = np.linspace(0, offsets[-1], n + 1)
    cuts = np.searchsorted(offsets, targets[1:-1], side="left")
    return np.unique(np.concatenate(([0], np.clip(cuts, 0, n_models), [n_models]))).astype(np.int64)


def loaded():
    """Whether a compiled form of the kernel is in memory already (a call costs microseconds)."""
    return bool(_tos_serial.signatures or _tos_kernel.signatures)


def tos_kernel(rows, row_costs, layer_format, offsets, layer_tos, model_stage_tos, model_tos,
               threads):
    """Fill the three output arrays, on ``threads`` of numba's threads (at most the number it
    currently allows, :func:`numba.get_num_threads`); one thread runs on the calling thread.
    Returns the number of layers whose ``layer_format`` is outside ``row_costs`` (checked in the
    same pass; the caller raises when it is not 0)."""
    threads = min(threads, numba.get_num_threads())
    if threads <= 1:
        return int(_tos_serial(rows, row_costs, layer_format, offsets, layer_tos, model_stage_tos, model_tos))
    chunks = _chunks(offsets, threads * _CHUNKS_PER_THREAD)
    bad = np.zeros(max(chunks.shape[0] - 1, 0), dtype=np.int64)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        _tos_kernel(rows, row_costs, layer_format, offsets, chunks, layer_tos, model_stage_tos, model_tos, bad)
    finally:
        numba.set_num_threads(before)
    return int(bad.sum())
