"""Zero-delay toggle counting on a mapped netlist, 64 operations per machine word."""
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..netsim import GATE_TYPES, Netlist, _as_int_list, _pack

__all__ = ["ToggleCounts", "toggle_counts"]

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@njit(cache=True, nogil=True)
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@njit(cache=True, nogil=True)
def _count(gates, n_nets, in_nets, in_words, n_vectors, toggles):
    # Same gate semantics as hwlib.netsim._evaluate. Bit k of a word is vector 64*w + k;
    # a toggle is a net whose value differs between vectors j and j + 1.
    state = np.zeros(n_nets, dtype=np.uint64)
    last = np.zeros(n_nets, dtype=np.uint64)     # value of each net at the previous vector
    ones = ~np.uint64(0)
    one = np.uint64(1)
    for w in range(in_words.shape[0]):
        valid = min(64, n_vectors - 64 * w)
        if valid <= 0:
            break
        state[0] = np.uint64(0)
        state[1] = ones
        for i in range(in_nets.shape[0]):
            state[in_nets[i]] = in_words[w, i]
        for g in range(gates.shape[0]):
            op = gates[g, 0]
            a = state[gates[g, 2]]
            b = state[gates[g, 3]]
            c = state[gates[g, 4]]
            if op == 0:
                y = a
            elif op == 1:
                y = ~a
            elif op == 2:
                y = a & b
            elif op == 3:
                y = ~(a & b)
            elif op == 4:
                y = a | b
            elif op == 5:
                y = ~(a | b)
            elif op == 6:
                y = a ^ b
            elif op == 7:
                y = ~(a ^ b)
            elif op == 8:
                y = a & ~b
            elif op == 9:
                y = a | ~b
            elif op == 10:
                y = (a & ~c) | (b & c)
            elif op == 11:
                y = ~((a & ~c) | (b & c))
            elif op == 12:
                y = ~((a & b) | c)
            elif op == 13:
                y = ~((a | b) & c)
            elif op == 14:
                y = ~((a & b) | (c & state[gates[g, 5]]))
            else:
                y = ~((a | b) & (c | state[gates[g, 5]]))
            state[gates[g, 1]] = y
        # pairs (k, k+1) inside the word: valid - 1 of them
        if valid == 64:
            mask = ones >> one
        else:
            mask = (one << np.uint64(valid - 1)) - one
        top = np.uint64(valid - 1)
        for n in range(2, n_nets):
            s = state[n]
            t = _popcount((s ^ (s >> one)) & mask)
            if w > 0:
                t += (s & one) ^ last[n]
            last[n] = (s >> top) & one
            toggles[n] += np.int64(t)


@dataclass(frozen=True)
class ToggleCounts:
    """Zero-delay toggles of every net of a :class:`~hwlib.netsim.Netlist` over a stream.

    ``toggles``: int64 array indexed by net (0 and 1 are the constants and never toggle).
    ``operations``: transitions counted, the number of vectors minus one.
    """

    toggles: np.ndarray
    operations: int

    def of(self, nets):
        """Toggles of the given nets (e.g. ``netlist.outputs["s"]``), as an int64 array."""
        return self.toggles[np.asarray(nets, dtype=np.int64)]


def toggle_counts(net, inputs):
    """Count zero-delay toggles of every net of ``net`` (a :class:`~hwlib.netsim.Netlist`)
    between consecutive input vectors.

    ``inputs`` maps every input port to a sequence of non-negative ints (as for
    :func:`hwlib.netsim.simulate_netlist`); vector ``j`` and ``j + 1`` form one operation.
    Returns :class:`ToggleCounts`.
    """
    if not isinstance(net, Netlist):
        raise TypeError(f"Expected a hwlib.netsim.Netlist, not {net!r}")
    if not isinstance(inputs, dict) or set(inputs) != set(net.inputs):
        raise ValueError(f"Inputs must give every input port ({', '.join(net.inputs)}), "
                         f"not {sorted(inputs) if isinstance(inputs, dict) else inputs!r}")
    values = {name: _as_int_list(name, inputs[name]) for name in net.inputs}
    lengths = {len(v) for v in values.values()}
    if len(lengths) > 1:
        raise ValueError("Input sequences must have the same length")
    n = lengths.pop() if lengths else 1
    if n < 1:
        raise ValueError("At least one input vector is needed")
    for name, vals in values.items():
        width = len(net.inputs[name])
        if min(vals) < 0 or max(vals) >> width:
            raise ValueError(f"Input {name!r} has a value that does not fit an unsigned "
                             f"{width}-bit port")
    n_words = max(1, (n + 63) // 64)
    if values:
        in_words = np.concatenate([_pack(values[name], len(net.inputs[name]), n_words)
                                   for name in net.inputs], axis=1)
        in_nets = np.concatenate(list(net.inputs.values()))
    else:
        in_words = np.zeros((n_words, 0), dtype=np.uint64)
        in_nets = np.zeros(0, dtype=np.int64)
    toggles = np.zeros(net.n_nets, dtype=np.int64)
    assert len(GATE_TYPES) == 16  # the kernel's opcode switch follows netsim's table
    _count(net.gates, net.n_nets, in_nets, np.ascontiguousarray(in_words), n, toggles)
    return ToggleCounts(toggles=toggles, operations=n - 1)
