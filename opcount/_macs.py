"""Multiply-accumulate counts for a profile with a MAC unit (``units.mac``).

A matrix product's dot products are multiplies and accumulating adds; on a MAC unit each pair is
one op. :func:`mac_counts` says, per layer and stage, how many of a layer's counted multiplies
and adds a MAC unit executes as ``mac`` ops: for the layer types of
``hardware_profiles.schema.MAC_LAYER_TYPES`` (linear, convolutions, matmul, bmm), ``min(MACs,
mul, add)`` of the stage, where MACs are the layer's multiply-accumulates (``LayerCount.macs``,
those PyTorch's FLOP counter counts). The rest stays as it was: a dot product of ``n`` terms
without bias counts ``n`` multiplies and ``n - 1`` adds, so ``n - 1`` become MACs and one
multiply stays a multiply; with a bias all ``n`` do (the bias is the first accumulator value).
Bias gradients, activations, normalization, the loss and the optimizer update keep their adds
and multiplies, and attention's products (``attention``, ``sdpa`` layers) are not moved.

The counts are exact: reading every ``mac`` as one ``mul`` plus one ``add`` gives back the
counts without a MAC unit. Nothing is changed by default: :func:`count_model` still counts
separate multiplies and adds, and only a caller that prices a MAC unit (``tosim score`` with a
profile that has ``units.mac``) subtracts these from them.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from hardware_profiles.schema import BASIC_OPS, MAC_LAYER_TYPES, STAGES

if TYPE_CHECKING:
    from ._engine import CountResult

__all__ = ["mac_counts", "with_macs", "MAC_LAYER_TYPES"]


def mac_counts(result: CountResult) -> np.ndarray:
    """``(layers, stages)`` int64 array (stages in ``STAGES`` order) of the multiply-accumulates
    of ``result`` (a :class:`opcount.CountResult`) that a MAC unit executes; see the module doc.
    Each is also one of the layer's ``mul`` and one of its ``add`` in that stage."""
    out = np.zeros((len(result.layers), len(STAGES)), dtype=np.int64)
    for i, layer in enumerate(result.layers):
        if layer.type not in MAC_LAYER_TYPES:
            continue
        for j, stage in enumerate(STAGES):
            counts = layer.stages[stage]
            out[i, j] = min(int(layer.macs.get(stage, 0)), counts["mul"], counts["add"])
    return out


def with_macs(result: CountResult) -> CountResult:
    """A copy of ``result`` whose stage counts hold a ``mac`` op (``result.ops`` is ``BASIC_OPS``
    + ``("mac",)``): :func:`mac_counts` moved out of each layer's ``mul`` and ``add``. Totals,
    ``by_module`` and ``to_json`` include it; ``as_array`` refuses it (the kernel prices six
    basic ops; ``tosim score`` prices the MACs from :func:`mac_counts`)."""
    if result.ops != BASIC_OPS:
        raise ValueError(f"{result.model}: the counts already hold mac ops")
    macs = mac_counts(result)
    layers = []
    for layer, row in zip(result.layers, macs.tolist()):
        stages = {}
        for stage, k in zip(STAGES, row):
            counts = dict(layer.stages[stage])
            counts["mul"] -= k
            counts["add"] -= k
            counts["mac"] = k
            stages[stage] = counts
        layers.append(dataclasses.replace(layer, stages=stages))
    return dataclasses.replace(result, layers=layers, ops=BASIC_OPS + ("mac",))
