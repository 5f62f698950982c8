"""Toggle counting on a mapped netlist (zero-delay or unit-delay), 64 operations per machine word."""
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..netsim import GATE_TYPES, Netlist, input_ints, pack_bits

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
def _gate(op, a, b, c, d):
    # Same gate semantics (and opcodes) as hwlib.netsim._evaluate.
    if op == 0:
        return a
    elif op == 1:
        return ~a
    elif op == 2:
        return a & b
    elif op == 3:
        return ~(a & b)
    elif op == 4:
        return a | b
    elif op == 5:
        return ~(a | b)
    elif op == 6:
        return a ^ b
    elif op == 7:
        return ~(a ^ b)
    elif op == 8:
        return a & ~b
    elif op == 9:
        return a | ~b
    elif op == 10:
        return (a & ~c) | (b & c)
    elif op == 11:
        return ~((a & ~c) | (b & c))
    elif op == 12:
        return ~((a & b) | c)
    elif op == 13:
        return ~((a | b) & c)
    elif op == 14:
        return ~((a & b) | (c & d))
    return ~((a | b) & (c | d))


@njit(cache=True, nogil=True)
def _count(gates, n_nets, in_nets, in_words, n_vectors, toggles, unit_delay, steps):
    # Bit k of a word is vector 64*w + k; an operation is the step from vector j to j + 1.
    # Zero delay: a toggle is a net whose settled value differs between j and j + 1.
    # Unit delay: from the settled state of vector j, the inputs take vector j + 1's values at
    # time 0 and every gate's output at time t is its function of its inputs at time t - 1;
    # every change of every net at every step counts, until the netlist settles (``steps``,
    # its depth in gates, buffers included).
    state = np.zeros(n_nets, dtype=np.uint64)
    prev = np.zeros(n_nets, dtype=np.uint64)
    nxt = np.zeros(n_nets, dtype=np.uint64)
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
            state[gates[g, 1]] = _gate(gates[g, 0], state[gates[g, 2]], state[gates[g, 3]],
                                       state[gates[g, 4]], state[gates[g, 5]])
        top = np.uint64(valid - 1)
        if not unit_delay:
            # pairs (k, k+1) inside the word: valid - 1 of them
            if valid == 64:
                mask = ones >> one
            else:
                mask = (one << np.uint64(valid - 1)) - one
            for n in range(2, n_nets):
                s = state[n]
                t = _popcount((s ^ (s >> one)) & mask)
                if w > 0:
                    t += (s & one) ^ last[n]
                last[n] = (s >> top) & one
                toggles[n] += np.int64(t)
            continue
        # bit k of prev: the settled value at vector 64*w + k - 1 (bit 0 of the first word has
        # no predecessor and is masked out)
        for n in range(n_nets):
            prev[n] = (state[n] << one) | last[n]
            last[n] = (state[n] >> top) & one
        prev[0] = np.uint64(0)
        prev[1] = ones
        mask = ones if valid == 64 else (one << np.uint64(valid)) - one
        if w == 0:
            mask &= ~one
        for i in range(in_nets.shape[0]):         # inputs switch once, at time 0
            n = in_nets[i]
            if n >= 2:
                toggles[n] += np.int64(_popcount((state[n] ^ prev[n]) & mask))
                prev[n] = state[n]
        for _t in range(steps):
            for g in range(gates.shape[0]):
                nxt[gates[g, 1]] = _gate(gates[g, 0], prev[gates[g, 2]], prev[gates[g, 3]],
                                         prev[gates[g, 4]], prev[gates[g, 5]])
            for g in range(gates.shape[0]):
                y = gates[g, 1]
                toggles[y] += np.int64(_popcount((nxt[y] ^ prev[y]) & mask))
                prev[y] = nxt[y]


@dataclass(frozen=True)
class ToggleCounts:
    """Toggles of every net of a :class:`~hwlib.netsim.Netlist` over a stream.

    ``toggles``: int64 array indexed by net (0 and 1 are the constants and never toggle).
    ``operations``: transitions counted, the number of vectors minus one. ``unit_delay``:
    whether glitches were counted (unit-delay simulation) or not (zero delay).
    """

    toggles: np.ndarray
    operations: int
    unit_delay: bool = False

    def of(self, nets):
        """Toggles of the given nets (e.g. ``netlist.outputs["s"]``), as an int64 array."""
        return self.toggles[np.asarray(nets, dtype=np.int64)]


def _steps(net):
    """Gates on the longest path, buffers included: unit-delay time steps until settled."""
    level = np.zeros(net.n_nets, dtype=np.int64)
    arity = [len(ports) for ports in GATE_TYPES.values()]
    for op, y, *ins in net.gates.tolist():
        level[y] = max(level[n] for n in ins[:arity[op]]) + 1
    return int(level.max()) if len(level) else 0


def toggle_counts(net, inputs, *, unit_delay=False):
    """Count toggles of every net of ``net`` (a :class:`~hwlib.netsim.Netlist`) between
    consecutive input vectors.

    Zero-delay (default): a net toggles when its settled value changes. ``unit_delay``: every
    gate takes one time step, the inputs switch at time 0 from the previous settled state, and
    every transition counts, glitches included (each net toggles at least as often as with
    zero delay, and by the same parity).

    ``inputs`` maps every input port to a sequence of non-negative ints (as for
    :func:`hwlib.netsim.simulate_netlist`); vector ``j`` and ``j + 1`` form one operation.
    Returns :class:`ToggleCounts`.
    """
    if not isinstance(net, Netlist):
        raise TypeError(f"Expected a hwlib.netsim.Netlist, not {net!r}")
    if not isinstance(inputs, dict) or set(inputs) != set(net.inputs):
        raise ValueError(f"Inputs must give every input port ({', '.join(net.inputs)}), "
                         f"not {sorted(inputs) if isinstance(inputs, dict) else inputs!r}")
    values = {name: input_ints(name, inputs[name]) for name in net.inputs}
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
        in_words = np.concatenate([pack_bits(values[name], len(net.inputs[name]), n_words)
                                   for name in net.inputs], axis=1)
        in_nets = np.concatenate(list(net.inputs.values()))
    else:
        in_words = np.zeros((n_words, 0), dtype=np.uint64)
        in_nets = np.zeros(0, dtype=np.int64)
    toggles = np.zeros(net.n_nets, dtype=np.int64)
    assert len(GATE_TYPES) == 16  # the kernel's opcode switch follows netsim's table
    _count(net.gates, net.n_nets, in_nets, np.ascontiguousarray(in_words), n, toggles,
           bool(unit_delay), _steps(net) if unit_delay else 0)
    return ToggleCounts(toggles=toggles, operations=n - 1, unit_delay=bool(unit_delay))
