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

A quantized matrix product (a layer in int8 or int4, opcount._engine's ``_quantized_rows``) has
its products in its own row and its int32 accumulating adds in the next row, ``NAME/accumulate``:
its MACs are ``min(MACs, mul, the accumulate row's add)`` per stage (an attention layer's: its
projections'), the ``mul`` leaving the layer's row and the ``add`` the accumulate row
(:func:`mac_add_rows` says which row gives the adds); the MAC unit is then an integer one
(int8 x int8 + int32).

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

__all__ = ["mac_counts", "mac_add_rows", "with_macs", "MAC_LAYER_TYPES"]


def _accumulated_in(result, i):
    """The row of ``result`` whose adds accumulate row ``i``'s products: the next row for a
    quantized product (``NAME/accumulate``), row ``i`` for a MAC layer type, else ``None``."""
    layers = result.layers
    layer = layers[i]
    if i + 1 < len(layers) and layers[i + 1].type == "accumulate" and layers[i + 1].name == f"{layer.name}/accumulate":
        return i + 1
    return i if layer.type in MAC_LAYER_TYPES else None


def mac_counts(result: CountResult) -> np.ndarray:
    """``(layers, stages)`` int64 array (stages in ``STAGES`` order) of the multiply-accumulates
    of ``result`` (a :class:`opcount.CountResult`) that a MAC unit executes; see the module doc.
    Each is also one of the layer's ``mul`` and one ``add`` of the row :func:`mac_add_rows`
    names, in that stage."""
    out = np.zeros((len(result.layers), len(STAGES)), dtype=np.int64)
    for i, layer in enumerate(result.layers):
        a = _accumulated_in(result, i)
        if a is None:
            continue
        adds = result.layers[a].stages
        for j, stage in enumerate(STAGES):
            out[i, j] = min(int(layer.macs.get(stage, 0)), layer.stages[stage]["mul"], adds[stage]["add"])
    return out


def mac_add_rows(result: CountResult) -> list:
    """Per row of ``result``, the row whose ``add`` counts give that row's MACs their accumulation
    (itself, or a quantized product's ``NAME/accumulate`` row)."""
    return [a if (a := _accumulated_in(result, i)) is not None else i for i in range(len(result.layers))]


def with_macs(result: CountResult) -> CountResult:
    """A copy of ``result`` whose stage counts hold a ``mac`` op (``result.ops`` is ``BASIC_OPS``
    + ``("mac",)``): :func:`mac_counts` moved out of each layer's ``mul`` and ``add``. Totals,
    ``by_module`` and ``to_json`` include it; ``as_array`` refuses it (the kernel prices six
    basic ops; ``tosim score`` prices the MACs from :func:`mac_counts`)."""
    if result.ops != BASIC_OPS:
        raise ValueError(f"{result.model}: the counts already hold mac ops")
    macs = mac_counts(result)
    adds = mac_add_rows(result)
    stages = [{stage: dict(layer.stages[stage], mac=0) for stage in STAGES} for layer in result.layers]
    for i, row in enumerate(macs.tolist()):
        for stage, k in zip(STAGES, row):
            stages[i][stage]["mul"] -= k
            stages[adds[i]][stage]["add"] -= k
            stages[i][stage]["mac"] = k
    layers = [dataclasses.replace(layer, stages=st) for layer, st in zip(result.layers, stages)]
    return dataclasses.replace(result, layers=layers, ops=BASIC_OPS + ("mac",))
