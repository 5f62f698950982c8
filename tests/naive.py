"""Slow, obviously-correct reference implementations the kernels are compared against."""
import numpy as np


def tos_reference(counts, costs, layer_format, offsets):
    """Plain numpy: per-layer cost rows, a full layers x stages x ops product, segment sums."""
    per_op_cost = costs.T[layer_format]                                # (layers, ops)
    layer_tos = (counts.astype(np.float64) * per_op_cost[:, None, :]).sum(axis=2)
    model_stage = np.stack([layer_tos[a:b].sum(axis=0) for a, b in zip(offsets[:-1], offsets[1:])]) \
        if len(offsets) > 1 else np.zeros((0, counts.shape[1]))
    return layer_tos, model_stage, model_stage.sum(axis=1)
