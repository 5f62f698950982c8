"""Bit-parallel simulation of a component's gate-level netlist.

``amaranth.sim`` steps one input vector at a time through Python, which is too slow for tens
of thousands of vectors on a wide multiplier. Here the component goes through Yosys once
(``proc; flatten; opt; techmap``) down to one-bit gates (``$_AND_``, ``$_OR_``, ``$_XOR_``,
``$_NOT_``, ``$_MUX_``, ...), the gates are put in topological order, and a numba kernel
evaluates them on 64-bit words, each bit of a word being one input vector: 64 vectors per
gate evaluation.

What it simulates is the synthesized netlist, so a test that passes here also says Yosys reads
the circuit the way ``amaranth.sim`` does. Only combinational circuits are supported.

Parsed netlists are cached in memory, keyed by a hash of the RTLIL text, so simulating equal
components again does not run Yosys again.
"""
import collections
import hashlib
import json
import re
import threading

import numpy as np
from amaranth.back import rtlil as _rtlil
from numba import njit

from . import _yosys

__all__ = ["simulate", "simulate_netlist", "Netlist", "netlist", "load_netlist_json",
           "GATE_TYPES"]

#: One-bit Yosys gate types the simulator evaluates, with their input port names.
GATE_TYPES = {
    "$_BUF_": ("A",),
    "$_NOT_": ("A",),
    "$_AND_": ("A", "B"),
    "$_NAND_": ("A", "B"),
    "$_OR_": ("A", "B"),
    "$_NOR_": ("A", "B"),
    "$_XOR_": ("A", "B"),
    "$_XNOR_": ("A", "B"),
    "$_ANDNOT_": ("A", "B"),
    "$_ORNOT_": ("A", "B"),
    "$_MUX_": ("A", "B", "S"),
    "$_NMUX_": ("A", "B", "S"),
    "$_AOI3_": ("A", "B", "C"),
    "$_OAI3_": ("A", "B", "C"),
    "$_AOI4_": ("A", "B", "C", "D"),
    "$_OAI4_": ("A", "B", "C", "D"),
}
_OPCODES = {name: code for code, name in enumerate(GATE_TYPES)}

# Net indices 0 and 1 hold the constants; the netlist's nets follow.
_CONST0, _CONST1 = 0, 1

_NETSIM_SCRIPT = """\
hierarchy -top top
proc
flatten -noscopeinfo
opt
techmap
opt -fast
setundef -undriven -zero
opt_clean -purge
write_json netlist.json
"""

_CACHE_SIZE = 64
_cache = collections.OrderedDict()
_cache_lock = threading.Lock()


class Netlist:
    """A flattened one-bit gate netlist in evaluation order.

    ``gates`` is an ``(n, 6)`` int64 array with one row per gate: opcode, output net, and up to
    four input nets (``A, B, C, D``; for the multiplexers ``A, B, S``) padded with net 0, in
    topological order. ``inputs`` and ``outputs`` map port names to arrays of net indices, least
    significant bit first. ``gate_types`` are the Yosys cell types, one per row of ``gates``.
    """

    def __init__(self, gates, gate_types, n_nets, inputs, outputs):
        self.gates = gates
        self.gate_types = gate_types
        self.n_nets = n_nets
        self.inputs = inputs
        self.outputs = outputs

    def __repr__(self):
        return (f"Netlist({len(self.gates)} gates, inputs={list(self.inputs)}, "
                f"outputs={list(self.outputs)})")

    def levels(self):
        """Logic level of every net: 0 for primary inputs and constants, else 1 + the highest
        level among the inputs of the gate driving it (a ``$_BUF_`` adds no level)."""
        level = [0] * self.n_nets
        arity = [len(ports) for ports in GATE_TYPES.values()]
        buf = _OPCODES["$_BUF_"]
        for op, y, *ins in self.gates.tolist():
            level[y] = max(level[n] for n in ins[:arity[op]]) + (op != buf)
        return np.array(level, dtype=np.int64)

    def depth(self):
        """Longest path from any input to any output, counted in gates (buffers excluded)."""
        level = self.levels()
        return max((int(level[nets].max()) for nets in self.outputs.values() if len(nets)),
                   default=0)


def _bit_index(bit, net_index):
    if bit == "0" or bit == "x" or bit == "z":
        return _CONST0
    if bit == "1":
        return _CONST1
    if bit not in net_index:
        net_index[bit] = len(net_index) + 2
    return net_index[bit]


def load_netlist_json(text, top="top", *, port_order=()):
    """Build a :class:`Netlist` from Yosys ``write_json`` output of a flattened one-bit netlist.

    Ports come in the order of ``port_order`` (names missing from it follow, sorted).

    Raises ``ValueError`` for cells other than the one-bit gates of :data:`GATE_TYPES`
    (flip-flops, latches, unmapped word-level cells) and for combinational loops.
    """
    design = json.loads(text)
    if top not in design["modules"]:
        raise ValueError(f"Netlist has no module {top!r}")
    module = design["modules"][top]
    net_index = {}
    inputs, outputs = {}, {}
    rank = {name: i for i, name in enumerate(port_order)}
    ports = sorted(module["ports"].items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))
    for name, port in ports:
        nets = np.array([_bit_index(b, net_index) for b in port["bits"]], dtype=np.int64)
        if port["direction"] == "input":
            inputs[name] = nets
        elif port["direction"] == "output":
            outputs[name] = nets
        else:
            raise ValueError(f"Port {name!r} is bidirectional; only inputs and outputs can be "
                             f"simulated")

    rows, types, driver = [], [], {}
    for cell_name, cell in module["cells"].items():
        kind = cell["type"]
        if kind not in GATE_TYPES:
            raise ValueError(f"Cell {cell_name} of type {kind} is not a combinational one-bit "
                             f"gate; only combinational circuits can be simulated or "
                             f"synthesized")
        conns = cell["connections"]
        ins = [_bit_index(conns[p][0], net_index) for p in GATE_TYPES[kind]]
        y = _bit_index(conns["Y"][0], net_index)
        if y < 2 or y in driver:
            raise ValueError(f"Net driven twice or by a constant at cell {cell_name}")
        driver[y] = len(rows)
        rows.append([_OPCODES[kind], y] + ins + [_CONST0] * (4 - len(ins)))
        types.append(kind)

    # Kahn's algorithm over gates: a gate is ready when every gate driving its inputs is done.
    n = len(rows)
    fanout = [[] for _ in range(n)]
    pending = [0] * n
    for g, row in enumerate(rows):
        for net in set(row[2:2 + len(GATE_TYPES[types[g]])]):
            src = driver.get(net)
            if src is not None:
                fanout[src].append(g)
                pending[g] += 1
    ready = collections.deque(g for g in range(n) if pending[g] == 0)
    order = []
    while ready:
        g = ready.popleft()
        order.append(g)
        for h in fanout[g]:
            pending[h] -= 1
            if pending[h] == 0:
                ready.append(h)
    if len(order) != n:
        raise ValueError("Netlist has a combinational loop")

    gates = np.array([rows[g] for g in order], dtype=np.int64).reshape(n, 6)
    return Netlist(gates=gates, gate_types=tuple(types[g] for g in order),
                   n_nets=len(net_index) + 2, inputs=inputs, outputs=outputs)


def _rtlil_of(component):
    if isinstance(component, str):
        return component
    return _rtlil.convert(component, name="top")


def rtlil_port_order(text):
    """Port names of RTLIL module ``top`` in declaration order (Yosys's JSON does not keep it)."""
    match = re.search(r"^module \\top\n(.*?)^end$", text, re.MULTILINE | re.DOTALL)
    if match is None:
        return []
    ports = re.findall(r"^\s*wire (?:width \d+ |signed |offset -?\d+ )*(?:input|output|inout) "
                       r"(\d+) +\\(\S+)", match.group(1), re.MULTILINE)
    return [name for _, name in sorted(ports, key=lambda p: int(p[0]))]


def netlist(component):
    """The cached one-bit gate :class:`Netlist` of ``component`` (or of RTLIL text whose top
    module is named ``top``)."""
    text = _rtlil_of(component)
    key = hashlib.sha256(text.encode()).hexdigest()
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    result = _yosys.run(text, _NETSIM_SCRIPT, outputs=["netlist.json"])
    parsed = load_netlist_json(result.outputs["netlist.json"], port_order=rtlil_port_order(text))
    with _cache_lock:
        _cache[key] = parsed
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return parsed


@njit(cache=True, nogil=True)
def _evaluate(gates, n_nets, in_nets, in_words, out_nets, out_words):
    # One word of input bits at a time through the whole netlist: the per-word net state is
    # small enough to stay in cache, and memory does not grow with the number of vectors.
    state = np.zeros(n_nets, dtype=np.uint64)
    ones = ~np.uint64(0)
    n_words = in_words.shape[0]
    for w in range(n_words):
        state[0] = np.uint64(0)
        state[1] = ones
        for i in range(in_nets.shape[0]):
            state[in_nets[i]] = in_words[w, i]
        for g in range(gates.shape[0]):
            op = gates[g, 0]
            a = state[gates[g, 2]]
            b = state[gates[g, 3]]
            c = state[gates[g, 4]]
            if op == 0:      # BUF
                y = a
            elif op == 1:    # NOT
                y = ~a
            elif op == 2:    # AND
                y = a & b
            elif op == 3:    # NAND
                y = ~(a & b)
            elif op == 4:    # OR
                y = a | b
            elif op == 5:    # NOR
                y = ~(a | b)
            elif op == 6:    # XOR
                y = a ^ b
            elif op == 7:    # XNOR
                y = ~(a ^ b)
            elif op == 8:    # ANDNOT
                y = a & ~b
            elif op == 9:    # ORNOT
                y = a | ~b
            elif op == 10:   # MUX: S ? B : A
                y = (a & ~c) | (b & c)
            elif op == 11:   # NMUX
                y = ~((a & ~c) | (b & c))
            elif op == 12:   # AOI3
                y = ~((a & b) | c)
            elif op == 13:   # OAI3
                y = ~((a | b) & c)
            elif op == 14:   # AOI4
                y = ~((a & b) | (c & state[gates[g, 5]]))
            else:            # OAI4
                y = ~((a | b) & (c | state[gates[g, 5]]))
            state[gates[g, 1]] = y
        for j in range(out_nets.shape[0]):
            out_words[w, j] = state[out_nets[j]]


def pack_bits(values, width, n_words):
    """Column ``i`` of the result holds bit ``i`` of every value, 64 values per uint64 word."""
    n = len(values)
    n_bytes = max(1, (width + 7) // 8)
    if width <= 64:
        arr = np.zeros((n_words * 64,), dtype=np.uint64)
        arr[:n] = np.array(values, dtype=np.uint64)
        raw = arr.view(np.uint8).reshape(-1, 8)[:, :n_bytes]
    else:
        raw = np.zeros((n_words * 64, n_bytes), dtype=np.uint8)
        joined = b"".join(v.to_bytes(n_bytes, "little") for v in values)
        raw[:n] = np.frombuffer(joined, dtype=np.uint8).reshape(n, n_bytes)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :width]        # (vectors, width)
    packed = np.packbits(bits.T, axis=1, bitorder="little")                # (width, bytes)
    return np.ascontiguousarray(packed).view(np.uint64).T                  # (words, width)


def unpack_bits(words, n):
    """Inverse of :func:`pack_bits`: ``(words, width)`` uint64 -> list of ``n`` Python ints."""
    width = words.shape[1]
    if width == 0:
        return [0] * n
    raw = np.ascontiguousarray(words.T).view(np.uint8)                     # (width, bytes)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :n]            # (width, vectors)
    packed = np.packbits(bits.T, axis=1, bitorder="little")                # (vectors, bytes)
    n_bytes = packed.shape[1]
    if width <= 64:
        padded = np.zeros((n, 8), dtype=np.uint8)
        padded[:, :n_bytes] = packed
        return padded.view(np.uint64).ravel().tolist()
    buf = packed.tobytes()
    return [int.from_bytes(buf[i * n_bytes:(i + 1) * n_bytes], "little") for i in range(n)]


def input_ints(name, values):
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "iu":
            raise TypeError(f"Input {name!r} must hold integers, not {values.dtype}")
        values = values.tolist()
    else:
        values = list(values)
    for v in values:
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"Input {name!r} must hold integers, not {v!r}")
    return [int(v) for v in values]


def simulate(component, inputs, *, outputs=None):
    """Evaluate ``component`` on many input vectors at once.

    ``inputs`` maps every input port name (as in the component's signature; nested members
    joined with ``__``) to a sequence of non-negative ints, one per vector, all sequences of
    the same length. Values of any width are accepted, and must fit their port. Returns a dict
    mapping each output port name (or only those in ``outputs``) to a list of non-negative
    ints, one per vector.

    ``component`` may also be RTLIL text with a top module named ``top``. A circuit without
    inputs is evaluated once (each output list then holds one value).
    """
    return simulate_netlist(netlist(component), inputs, outputs=outputs)


def simulate_netlist(net, inputs, *, outputs=None):
    """:func:`simulate` on a :class:`Netlist`, e.g. the mapped netlist of
    :func:`hwlib.synth.synthesize`."""
    if not isinstance(inputs, dict):
        raise TypeError(f"Inputs must be a dict of port name to values, not {inputs!r}")
    unknown = sorted(set(inputs) - set(net.inputs))
    if unknown:
        raise ValueError(f"Unknown input port(s) {', '.join(map(repr, unknown))}; the inputs "
                         f"are {', '.join(map(repr, net.inputs)) or 'none'}")
    missing = [name for name in net.inputs if name not in inputs]
    if missing:
        raise ValueError(f"Missing value(s) for input port(s) "
                         f"{', '.join(map(repr, missing))}")
    if outputs is None:
        outputs = list(net.outputs)
    else:
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        bad = [name for name in outputs if name not in net.outputs]
        if bad:
            raise ValueError(f"Unknown output port(s) {', '.join(map(repr, bad))}; the "
                             f"outputs are {', '.join(map(repr, net.outputs)) or 'none'}")

    values = {name: input_ints(name, inputs[name]) for name in net.inputs}
    lengths = {len(v) for v in values.values()}
    if len(lengths) > 1:
        raise ValueError(f"Input sequences must have the same length, not "
                         f"{ {name: len(v) for name, v in values.items()} }")
    n = lengths.pop() if lengths else 1
    for name, vals in values.items():
        width = len(net.inputs[name])
        if vals and (min(vals) < 0 or max(vals) >> width):
            bad = next(v for v in vals if v < 0 or v >> width)
            raise ValueError(f"Input {name!r} value {bad} does not fit an unsigned "
                             f"{width}-bit port")

    n_words = max(1, (n + 63) // 64)
    if values:
        in_words = np.concatenate(
            [pack_bits(values[name], len(net.inputs[name]), n_words) for name in net.inputs],
            axis=1)
        in_nets = np.concatenate(list(net.inputs.values()))
    else:
        in_words = np.zeros((n_words, 0), dtype=np.uint64)
        in_nets = np.zeros(0, dtype=np.int64)
    out_nets = np.concatenate([net.outputs[name] for name in outputs] or
                              [np.zeros(0, dtype=np.int64)])
    out_words = np.zeros((n_words, len(out_nets)), dtype=np.uint64)
    _evaluate(net.gates, net.n_nets, in_nets, np.ascontiguousarray(in_words), out_nets,
              out_words)

    result, start = {}, 0
    for name in outputs:
        width = len(net.outputs[name])
        result[name] = unpack_bits(out_words[:, start:start + width], n)
        start += width
    return result
