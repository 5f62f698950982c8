"""A fixed fake cost table for tests of scoring (no synthesis): transistors per op x per format."""
import numpy as np

import opcount

OP_COST = {"add": 100.0, "sub": 110.0, "mul": 1000.0, "div": 5000.0, "sqrt": 7000.0, "cmp": 30.0}
FORMAT_COST = {"fp16": 1.0, "bf16": 1.5, "fp32": 2.0, "fp64": 4.0, "tf32": 1.25, "int8": 0.25, "int4": 0.125,
               "int32": 0.5}


def fake_costs(profile, formats, *, progress=None, needed=None):
    """``tosim._costs.costs_array`` with :data:`OP_COST` x :data:`FORMAT_COST` for any profile."""
    return np.array([[OP_COST[op] * FORMAT_COST[f] for f in formats] for op in opcount.BASIC_OPS])
