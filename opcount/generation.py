"""Serving a causal language model: the prefill of a prompt and the decode steps of a generation.

A request of ``batch`` sequences, each a prompt of P tokens followed by N generated tokens, runs

- one **prefill**: a forward over the P prompt tokens with causal attention, storing every
  layer's keys and values in the KV cache and computing the LM head on the last position only
  (the first new token comes from it; vLLM and Hugging Face ``generate`` with
  ``logits_to_keep=1`` do the same);
- N - 1 **decode** steps: step j (j = 0 .. N-2) feeds the j-th generated token, at position
  L = P + j, against a KV cache of L tokens: the projections, norms and MLP run for one token,
  the attention reads the n(L) = min(L + 1, W) keys its query sees (W the sliding window, or
  unbounded), and the step appends its own key and value to the cache. The last generated token
  is never fed back.

Counting. Each decode step is an exact count of a model built for that step
(:func:`opcount.load_model` with ``past=L``). Its counts are affine in n(L): every layer but
attention is independent of L, and attention over R = 1 query row and P = n keys counts
``a + b*n`` ops (``sdpa_cost``). So the N - 1 steps are not counted one by one: the steps at the
first and last cache lengths give the per-key slope (an exact integer division, checked), a third
step checks the line exactly, and the sum over the steps is N-1 times the first plus the slope
times the sum of n(L) - n(P), in closed form. Where a model's counts are not such a line (layers
with different windows), every step is counted (``method == "per-step"``).

``decode(L) + prefill(L) - prefill(L + 1)`` is exactly one LM-head row (the prefills compute the
head on their last position only) for every count; with ``logits="all"`` it is zero: the cache
saves recomputing the keys and values of the L earlier tokens, nothing else. What the cache costs
is data movement: :func:`opcount.movement.kv_cache_bytes`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._engine import BASIC_OPS, STAGES, CountResult, count_model
from ._ir import ModelError, ModelIR
from .movement import Densities, count_movement, format_bytes

__all__ = ["GenerationCount", "count_generation", "decode_keys", "kv_entry_bytes", "counts_array"]


def decode_keys(cache: ArrayLike, window: int | None = None) -> np.ndarray:
    """Keys the query of a decode step sees at cache length ``cache`` (numpy arrays welcome):
    min(cache + 1, window)."""
    keys = np.asarray(cache) + 1
    return keys if window is None else np.minimum(keys, window)


def kv_entry_bytes(model: ModelIR) -> dict[int | None, float]:
    """``{window: bytes}``: bytes of one token's keys and values, summed over the self-attention
    layers that share each sliding window (``None``: no window), for one sequence."""
    out: dict[int | None, float] = {}
    for layer in model.layers:
        if layer.type == "attention" and layer.known and not layer.attrs["cross"]:
            w = layer.attrs["window"]
            out[w] = out.get(w, 0) + 2 * layer.attrs["dkv"] * format_bytes(layer.format)
    return out


def counts_array(result: CountResult) -> np.ndarray:
    """Exact per-layer counts ``(layers, stages, ops)`` as Python integers (object array)."""
    return np.array([[[layer.stages[s][op] for op in BASIC_OPS] for s in STAGES] for layer in result.layers],
                    dtype=object).reshape(len(result.layers), len(STAGES), len(BASIC_OPS))


@dataclass
class GenerationCount:
    """Counts of one generation request (see the module docstring).

    ``prefill`` and ``first_decode`` are the :class:`CountResult` of the prefill and of the first
    decode step; ``slope`` the exact change of every per-layer count (object array, layers x
    stages x ops) per key a decode step's query sees; ``caches`` the cache length L of each decode
    step and ``keys`` its n(L). ``decode_total`` and ``total`` (prefill + decode) are exact
    per-layer counts. ``macs`` are the request's, ``prefill_macs`` and ``decode_macs`` per step.
    KV cache bytes (all sequences): ``kv_write_prefill``; per decode step ``kv_read`` (array) and
    ``kv_write_step``; ``kv_cache_bytes``, the cache held at the end. With a memory hierarchy,
    ``prefill_movement`` and per decode step ``decode_compute_j`` and ``decode_movement_j``.
    """
    model: str
    source: str
    prompt: int
    new_tokens: int
    batch: int
    prefill: CountResult
    first_decode: Any                  # a CountResult, or None without decode steps
    slope: np.ndarray
    caches: np.ndarray
    keys: np.ndarray
    decode_total: np.ndarray
    method: str
    formats: list
    layer_names: list
    params: int
    active_params: int
    prefill_macs: int
    decode_macs: np.ndarray
    macs_slope: int
    kv_write_prefill: float
    kv_write_step: float
    kv_read: np.ndarray
    kv_cache_bytes: float
    incomplete: list = field(default_factory=list)
    prefill_movement: Any = None       # a MovementResult with a memory hierarchy
    decode_compute_j: np.ndarray | None = None
    decode_movement_j: np.ndarray | None = None
    step_counts: list | None = None

    @property
    def steps(self):
        """Decode steps: new_tokens - 1."""
        return len(self.caches)

    @property
    def total(self):
        """Exact per-layer counts of the whole request (object array, layers x stages x ops)."""
        return counts_array(self.prefill) + self.decode_total

    @property
    def macs(self):
        return self.prefill_macs + int(sum(int(m) for m in self.decode_macs))

    @property
    def complete(self):
        return not self.incomplete

    def decode_counts(self, index: int) -> np.ndarray:
        """Exact per-layer counts of decode step ``index`` (0 .. steps-1)."""
        if self.step_counts is not None:
            return self.step_counts[index]
        return counts_array(self.first_decode) + self.slope * int(self.keys[index] - self.keys[0])


def _check_lm(model, where):
    attention = [layer for layer in model.layers if layer.type == "attention"]
    if not any(layer.attrs.get("causal") for layer in attention):
        raise ModelError(f"{where}: no causal self-attention layer: not a causal language model")


def count_generation(source: str | os.PathLike[str] | dict[str, Any], profile: Any, *, prompt: int, new_tokens: int,
                     batch: int = 1, format: str | None = None, memory: Any = None, densities: Densities | None = None,
                     per_step: bool = False) -> GenerationCount:
    """Count a generation request: ``prompt`` tokens of prefill, ``new_tokens`` generated, for
    ``batch`` sequences at once. ``source``: a zoo name (``zoo:llama2-7b``) or a Hugging Face
    config of a causal language model; ``format`` overrides the model's number format;
    ``memory``: a :class:`~opcount.movement.MemoryHierarchy` (or a profile with a memory
    section) to price data movement, KV cache included; ``per_step``: count every decode step
    instead of the closed form (for checking). Returns a :class:`GenerationCount`."""
    from . import load_model, with_default_format
    for name, value, least in (("prompt", prompt, 1), ("new_tokens", new_tokens, 1), ("batch", batch, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ModelError(f"{source}: {name} must be a positive integer, not {value!r}")

    def build(tokens, past):
        model = load_model(source, seq=tokens, past=past, kv_cache=True, logits="last", format=format)
        default = getattr(profile, "default_format", None)
        return with_default_format(model, default) if isinstance(default, str) else model

    def count(model):
        return count_model(model, profile, phase="inference", batch=batch)

    prefill_model = build(prompt, 0)
    _check_lm(prefill_model, source)
    prefill = count(prefill_model)
    entries = kv_entry_bytes(prefill_model)
    windows = set(entries)
    steps = new_tokens - 1
    caches = np.arange(prompt, prompt + steps, dtype=np.int64)
    window = next(iter(windows)) if len(windows) == 1 else None
    keys = decode_keys(caches, window)
    first: Any = prefill if steps == 0 else None
    layer_count = len(prefill.layers)
    slope = np.zeros((layer_count, len(STAGES), len(BASIC_OPS)), dtype=object)
    method = "closed-form"
    results = {}

    def decode_at(index):
        if index not in results:
            model = build(1, int(caches[index]))
            results[index] = (model, count(model))
        return results[index][1]

    macs_slope = 0
    step_counts = None
    if steps:
        first = decode_at(0)
        c0 = counts_array(first)
        if per_step and steps > 1:
            method = "per-step"
        elif steps > 1 and keys[-1] != keys[0]:
            closed = len(windows) == 1
            if closed:
                span = int(keys[-1] - keys[0])
                last = decode_at(steps - 1)
                diff = counts_array(last) - c0
                closed = (last.macs - first.macs) % span == 0 and all(int(v) % span == 0 for v in diff.ravel())
            if closed:
                slope = diff // span
                macs_slope = (last.macs - first.macs) // span
                mid = steps // 2
                offset = int(keys[mid] - keys[0])
                closed = (decode_at(mid).macs == first.macs + macs_slope * offset
                          and not any((counts_array(decode_at(mid)) - c0 - slope * offset).ravel()))
            if not closed:
                method = "per-step"
        if method == "per-step":
            total = np.zeros_like(c0)
            step_counts = [counts_array(decode_at(index)) for index in range(steps)]
            for counts in step_counts:
                total = total + counts
            slope = np.zeros_like(c0)
            macs_slope = 0
            decode_macs = np.array([decode_at(i).macs for i in range(steps)], dtype=np.int64)
        else:
            total = c0 * steps + slope * int((keys - keys[0]).sum())
            decode_macs = first.macs + macs_slope * (keys - keys[0])
    else:
        total = np.zeros((layer_count, len(STAGES), len(BASIC_OPS)), dtype=object)
        decode_macs = np.zeros(0, dtype=np.int64)
    entry = sum(entries.values()) * batch
    # a decode step reads the n(L) - 1 cached keys its query sees, per layer by its own window
    kv_read = sum(e * batch * (decode_keys(caches, w) - 1) for w, e in entries.items()) if steps else np.zeros(0)
    stored = prompt + steps
    kv_cache = sum(e * batch * (stored if w is None else min(stored, w)) for w, e in entries.items())
    out = GenerationCount(
        model=prefill.model, source=str(source), prompt=prompt, new_tokens=new_tokens, batch=batch, prefill=prefill,
        first_decode=first, slope=slope, caches=caches, keys=keys, decode_total=total, method=method,
        formats=prefill.formats, layer_names=[layer.name for layer in prefill.layers], params=prefill.params,
        active_params=prefill.active_params, prefill_macs=prefill.macs, decode_macs=np.asarray(decode_macs),
        macs_slope=macs_slope, kv_write_prefill=float(prompt * entry), kv_write_step=float(entry),
        kv_read=np.asarray(kv_read, dtype=np.float64), kv_cache_bytes=float(kv_cache),
        incomplete=list(prefill.incomplete) + ([] if not steps else list(first.incomplete)), step_counts=step_counts)
    if memory is not None:
        _add_movement(out, prefill_model, memory, densities, results, decode_at, steps)
    return out


def _add_movement(out, prefill_model, memory, densities, results, decode_at, steps):
    """Movement and compute energy of the prefill and of each decode step. Both are affine in
    n(L) like the counts (the KV reads grow by one entry per key; nothing else depends on L), so
    the steps at the first and last cache lengths give the line, checked at a third step."""
    out.prefill_movement = count_movement(out.prefill, prefill_model, memory, densities=densities)
    if not steps:
        out.decode_compute_j = np.zeros(0)
        out.decode_movement_j = np.zeros(0)
        return

    def energies(index):
        decode_at(index)
        model, result = results[index]
        mv = count_movement(result, model, memory, densities=densities)
        return mv.compute_j, mv.movement_j

    keys = out.keys.astype(np.float64)
    if out.method == "per-step":
        pairs = np.array([energies(i) for i in range(steps)], dtype=np.float64).reshape(steps, 2)
        out.decode_compute_j, out.decode_movement_j = pairs[:, 0], pairs[:, 1]
        return
    first = np.array(energies(0))
    if steps > 1 and keys[-1] != keys[0]:
        per_key = (np.array(energies(steps - 1)) - first) / (keys[-1] - keys[0])
        mid = steps // 2
        predicted = first + per_key * (keys[mid] - keys[0])
        if not np.allclose(np.array(energies(mid)), predicted, rtol=1e-9, atol=0.0):
            pairs = np.array([energies(i) for i in range(steps)], dtype=np.float64).reshape(steps, 2)
            out.decode_compute_j, out.decode_movement_j = pairs[:, 0], pairs[:, 1]
            return
    else:
        per_key = np.zeros(2)
    out.decode_compute_j = first[0] + per_key[0] * (keys - keys[0])
    out.decode_movement_j = first[1] + per_key[1] * (keys - keys[0])
