"""Synthesis, transistor counting, structural cell counting and formal proofs.

Three questions asked of a circuit, each answered through Yosys (via :mod:`hwlib._yosys`):

* :func:`synthesize`: how many transistors, gates and gate levels does it take once mapped
  onto a gate set? Yosys techmapping to one-bit gates followed by ABC mapping onto the gate
  types named in the profile (``abc -g``); each gate is priced at the profile's transistors
  per gate.
  This is the "synthesized" counting mode of a profile (li2022, section II.B: the TOs of a
  basic operation are the transistors of the circuit that completes it).
* :func:`cell_instances`: how many building cells (:mod:`hwlib.cells`) does the circuit
  instantiate? The "structural" counting mode prices these.
* :func:`elaborate` and :func:`synthesize_glue`: the same mapping for the logic outside the
  cells only (the cells kept as black boxes), which the structural mode prices by gates.
* :func:`prove`: is a one-bit output of a miter circuit 1 for every input? A SAT proof with
  Yosys's ``sat -prove``; it returns a counterexample when the claim is false.
"""
import hashlib
import json
import math
import re
import sys
import threading
from dataclasses import dataclass, field

from amaranth.back import rtlil as _rtlil
from amaranth.hdl import Fragment, Shape
from amaranth.lib import wiring

from . import _yosys, cells
from .netsim import Netlist, load_netlist_json, rtlil_port_order

__all__ = ["GATE_NAMES", "SynthesisResult", "synthesize", "ProofResult", "prove",
           "cell_instances", "Elaboration", "elaborate", "synthesize_glue"]

#: Gate names a profile's ``technology.gates`` may use, mapped to Yosys's one-bit cell types.
#: Function of each (inputs ``A, B, C, D``; multiplexer select ``S``):
#: NOT ``~A``; AND, NAND, OR, NOR, XOR, XNOR on ``A, B``; ANDNOT ``A & ~B``; ORNOT ``A | ~B``;
#: AOI3 ``~((A & B) | C)``; OAI3 ``~((A | B) & C)``; AOI4 ``~((A & B) | (C & D))``;
#: OAI4 ``~((A | B) & (C | D))``; MUX ``S ? B : A``; NMUX ``~(S ? B : A)``.
GATE_NAMES = {
    "NOT": "$_NOT_",
    "AND": "$_AND_",
    "NAND": "$_NAND_",
    "OR": "$_OR_",
    "NOR": "$_NOR_",
    "XOR": "$_XOR_",
    "XNOR": "$_XNOR_",
    "ANDNOT": "$_ANDNOT_",
    "ORNOT": "$_ORNOT_",
    "AOI3": "$_AOI3_",
    "OAI3": "$_OAI3_",
    "AOI4": "$_AOI4_",
    "OAI4": "$_OAI4_",
    "MUX": "$_MUX_",
    "NMUX": "$_NMUX_",
}
_GATE_OF_TYPE = {cell_type: name for name, cell_type in GATE_NAMES.items()}

# ABC runs only "strash; map": structural hashing into an and-inverter graph (no logic
# restructuring), then delay-oriented technology mapping onto the gate set with area recovery.
# ABC's default script (fraiging, dc2 rewriting, choices) and Yosys's "synth" (opt -full, share)
# optimize harder, and in doing so erase the architectures being compared: they re-derive a
# ripple carry from Brent-Kung and carry-select networks. The circuit is priced as designed.
_SYNTH_SCRIPT = """\
hierarchy -top top
proc
flatten -noscopeinfo
opt
techmap
opt -fast
abc -g {gates} -script "+strash;map"
opt_clean -purge
write_json netlist.json
"""

_PROVE_SCRIPT = """\
hierarchy -top top
proc
flatten -noscopeinfo
opt -fast
sat -prove {output} 1 -show-inputs -dump_json counterexample.json
"""

_mapping_cache = {}
_mapping_lock = threading.Lock()


def _rtlil_of(component):
    if isinstance(component, str):
        return component
    return _rtlil.convert(component, name="top")


@dataclass(frozen=True)
class SynthesisResult:
    """A circuit mapped onto a gate set.

    ``transistors``: sum over gate types of count x transistors per gate. ``gates``: gate
    count per gate name (only names that occur). ``depth``: logic depth, the largest number of
    gates on any path from an input to an output. ``netlist``: the mapped gates, which
    :func:`hwlib.netsim.simulate_netlist` can evaluate.
    """

    transistors: float
    gates: dict = field(default_factory=dict)
    depth: int = 0
    netlist: Netlist = field(default=None, repr=False, compare=False)

    @property
    def gate_count(self):
        """Total number of gates."""
        return sum(self.gates.values())


def _check_gates(gates):
    if not isinstance(gates, dict) or not gates:
        raise TypeError(f"Gate costs must be a non-empty dict of gate name to transistors, "
                        f"not {gates!r}")
    for name, cost in gates.items():
        if name not in GATE_NAMES:
            raise ValueError(f"Unknown gate {name!r}; expected one of "
                             f"{', '.join(GATE_NAMES)}")
        if (isinstance(cost, bool) or not isinstance(cost, (int, float))
                or not 0 <= cost < math.inf):
            raise ValueError(f"Transistors per {name} gate must be a non-negative number, "
                             f"not {cost!r}")
    if "NOT" not in gates:
        raise ValueError("Gate set must include NOT; ABC always maps with inverters")
    if len(gates) < 2:
        raise ValueError("Gate set must include at least one gate besides NOT")


def _map(text, gate_names):
    """Gate counts per Yosys cell type and depth of ``text`` mapped onto ``gate_names``."""
    key = (hashlib.sha256(text.encode()).hexdigest(), gate_names)
    with _mapping_lock:
        if key in _mapping_cache:
            return _mapping_cache[key]
    abc_gates = ",".join(name for name in gate_names if name != "NOT")
    result = _yosys.run(text, _SYNTH_SCRIPT.format(gates=abc_gates), outputs=["netlist.json"])
    netlist = load_netlist_json(result.outputs["netlist.json"], port_order=rtlil_port_order(text))
    counts = {}
    for cell_type in netlist.gate_types:
        if cell_type == "$_BUF_":
            continue
        counts[cell_type] = counts.get(cell_type, 0) + 1
    mapping = (counts, netlist.depth(), netlist)
    with _mapping_lock:
        _mapping_cache[key] = mapping
    return mapping


def _price_gates(counts, gates):
    """``(transistors, {gate name: count})`` of mapped Yosys cell counts under a gate-cost table."""
    by_name = {}
    for cell_type, count in counts.items():
        name = _GATE_OF_TYPE.get(cell_type)
        if name is None or name not in gates:
            raise _yosys.YosysError(f"ABC produced gate type {cell_type} outside the gate set "
                                    f"{', '.join(sorted(gates))}")
        by_name[name] = count
    transistors = sum(count * gates[name] for name, count in by_name.items())
    return transistors, dict(sorted(by_name.items()))


def synthesize(component, gates):
    """Map ``component`` onto a gate set and price it in transistors.

    ``gates`` maps gate names (keys of :data:`GATE_NAMES`, as in a profile's
    ``technology.gates``) to transistors per gate. Its keys choose the gates ABC may use; it
    must include ``NOT``. The values only price the result, so the mapping for a gate set is
    computed once (and cached in memory) and changing one gate's cost changes the total by
    exactly that gate's count times the change.

    The flow: Yosys ``proc; flatten; opt; techmap; opt -fast`` (down to one-bit gates), then
    ABC ``strash; map`` onto the gate set (``abc -g``): a structure-preserving mapping, so a
    Kogge-Stone adder stays a Kogge-Stone adder (see the comment at ``_SYNTH_SCRIPT``).
    Depth counts gates, each gate one level, along the longest input-to-output path; false
    paths count (a carry-skip adder is as deep as the ripple chain it bypasses, topologically).

    ``component`` is an Amaranth component (or RTLIL text whose top module is ``top``).
    Returns a :class:`SynthesisResult`.
    """
    _check_gates(gates)
    counts, depth, netlist = _map(_rtlil_of(component), tuple(sorted(gates)))
    transistors, by_name = _price_gates(counts, gates)
    return SynthesisResult(transistors=transistors, gates=by_name, depth=depth, netlist=netlist)


@dataclass(frozen=True)
class ProofResult:
    """Outcome of :func:`prove`. ``proven`` is true when the output is 1 for every input;
    otherwise ``counterexample`` maps each input port to a value for which it is 0."""

    proven: bool
    counterexample: dict = None

    def __bool__(self):
        return self.proven


def _parse_counterexample(text):
    values = {}
    for signal in json.loads(text)["signal"]:
        name = signal.get("name")
        if not name:
            continue
        if signal.get("data"):
            bits = signal["data"][0]
        else:
            bits = signal["wave"][:1]
        values[name] = int("".join("1" if b == "1" else "0" for b in bits) or "0", 2)
    return values


def prove(component, *, output="ok", timeout=600):
    """Prove that the one-bit output ``output`` of a combinational ``component`` is 1 for every
    input, with a SAT solver (Yosys ``sat -prove``).

    The usual ``component`` is a miter: it instantiates the circuit under test and a reference
    (e.g. ``a + b`` written in Amaranth) and drives ``ok`` with their equality. Returns a
    :class:`ProofResult`, true when proven; when the claim is false it carries a counterexample
    (every input port to an int). ``component`` may also be RTLIL text with top module ``top``.
    """
    if not isinstance(output, str) or not output.isidentifier():
        raise ValueError(f"Output must be a port name, not {output!r}")
    if isinstance(component, wiring.Component):
        members = dict(component.signature.members)
        member = members.get(output)
        if member is None or not member.is_port or member.flow != wiring.Out:
            raise ValueError(f"Component has no output port {output!r}")
        if Shape.cast(member.shape).width != 1:
            raise ValueError(f"Output {output!r} must be 1 bit wide to be proven")
    result = _yosys.run(_rtlil_of(component), _PROVE_SCRIPT.format(output=output),
                        optional_outputs=["counterexample.json"], timeout=timeout)
    if "SAT proof finished - no model found: SUCCESS!" in result.log:
        return ProofResult(proven=True)
    if "SAT proof finished - model found: FAIL!" in result.log:
        return ProofResult(proven=False, counterexample=_parse_counterexample(
            result.outputs["counterexample.json"]))
    raise _yosys.YosysError("Yosys finished the SAT proof without a verdict", result.log)


def _count_cells(fragment, counts):
    for origin in fragment.origins or ():
        name = getattr(origin, "cell_name", None)
        if isinstance(origin, wiring.Component) and name in cells.CELL_NAMES:
            counts[name] = counts.get(name, 0) + 1
            return
    for subfragment, _name, _src_loc in fragment.subfragments:
        _count_cells(subfragment, counts)


def cell_instances(component):
    """Instances of the :mod:`hwlib.cells` building cells in ``component``'s elaborated
    hierarchy, as ``{cell_name: count}`` (only cells that occur; a ``Counter32`` counts as
    ``counter_3_2``, not as ``full_adder``). A cell is any component whose ``cell_name`` is in
    :data:`hwlib.cells.CELL_NAMES`; it is a leaf: nothing inside it is counted. The hierarchy
    is read from Amaranth's elaboration (``Fragment.get``), before any flattening."""
    counts = {}
    _count_cells(Fragment.get(component, None), counts)
    return dict(sorted(counts.items()))


# --- structural counting: elaboration with cell module names, and glue-only synthesis --------

@dataclass(frozen=True)
class Elaboration:
    """A component elaborated once, for structural counting.

    ``rtlil``: the RTLIL text (top module ``top``), identical to
    ``amaranth.back.rtlil.convert(component, name="top")``. ``cells``: the building cells as
    :func:`cell_instances` counts them. ``cell_modules``: the RTLIL module names of those cell
    instances (Amaranth emits one module per instance, named by its hierarchy path), which
    :func:`synthesize_glue` keeps as black boxes.
    """

    rtlil: str = field(repr=False)
    cells: dict = field(default_factory=dict)
    cell_modules: frozenset = field(default_factory=frozenset, repr=False)


def _signature_ports(component):
    # The same ports amaranth.back.rtlil.convert derives from a component's signature.
    # Amaranth 0.5 has no public name for a port's direction: Fragment.prepare takes
    # PortDirection members or None, and None infers the direction from the netlist (an Out
    # member nothing drives would turn into an input, and the RTLIL would no longer match
    # rtlil.convert's). So this one private import stays, as in rtlil.convert itself;
    # tests/test_hwlib_synth.py checks that the text equals rtlil.convert's.
    from amaranth.hdl import ValueCastable
    from amaranth.hdl._ir import PortDirection
    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
        ports["__".join(map(str, path))] = (value, direction)
    return ports


# Amaranth's netlist builder checks for combinational cycles by walking every path
# recursively, and a fully unrolled datapath built from ripple-carry adders (a 64-bit restoring
# divider: thousands of gates in series) is deeper than Python's default recursion limit.
# elaborate() therefore runs in a thread of its own with a large stack and a high limit.
_DEEP_STACK_BYTES = 1 << 30
_DEEP_RECURSION_LIMIT = 200_000
_deep_lock = threading.Lock()


def _with_deep_stack(function, *args):
    outcome = {}

    def target():
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # re-raised in the calling thread
            outcome["error"] = exc

    with _deep_lock:
        old_limit = sys.getrecursionlimit()
        old_stack = threading.stack_size()
        sys.setrecursionlimit(max(old_limit, _DEEP_RECURSION_LIMIT))
        try:
            threading.stack_size(_DEEP_STACK_BYTES)  # applies to threads started after it
            try:
                thread = threading.Thread(target=target, name="tosim-elaborate", daemon=True)
                thread.start()
            finally:
                threading.stack_size(old_stack)
            thread.join()
        finally:
            sys.setrecursionlimit(old_limit)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def elaborate(component):
    """Elaborate ``component`` (a ``wiring.Component``) once and return an
    :class:`Elaboration`: its RTLIL text, its cell counts and its cell module names.

    Runs in a helper thread with a deep stack (see ``_with_deep_stack``), so that circuits
    with very long combinational paths convert too."""
    if not isinstance(component, wiring.Component):
        raise TypeError(f"Component must be an amaranth.lib.wiring.Component, not {component!r}")
    return _with_deep_stack(_elaborate, component)


def _elaborate(component):
    fragment = Fragment.get(component, None)
    design = fragment.prepare(ports=_signature_ports(component), hierarchy=("top",))
    text, _name_map = _rtlil.convert_fragment(design, name="top")

    def cell_of(frag):
        for origin in frag.origins or ():
            name = getattr(origin, "cell_name", None)
            if isinstance(origin, wiring.Component) and name in cells.CELL_NAMES:
                return name
        return None

    counts, modules = {}, set()
    for frag, info in design.fragments.items():
        name = cell_of(frag)
        if name is None:
            continue
        parent, nested = info.parent, False
        while parent is not None:  # a cell is a leaf: cells inside a cell are not counted
            if cell_of(parent) is not None:
                nested = True
                break
            parent = design.fragments[parent].parent
        if not nested:
            counts[name] = counts.get(name, 0) + 1
            modules.add(".".join(info.name))
    return Elaboration(rtlil=text, cells=dict(sorted(counts.items())),
                       cell_modules=frozenset(modules))


# The structural flow's glue logic: the same mapping as _SYNTH_SCRIPT, with every cell module
# turned into a black box first, so that flattening leaves the cell instances in place and
# only the logic outside them is mapped onto gates.
_GLUE_SCRIPT = _SYNTH_SCRIPT.replace("hierarchy -top top\n",
                                     "hierarchy -top top\nblackbox A:tosim_cell\n", 1)
_MODULE_LINE = re.compile(r"^module \\(\S+)$", re.MULTILINE)


def synthesize_glue(elaboration, gates):
    """Map the glue logic of an elaborated circuit (everything outside its building cells)
    onto a gate set and price it, as :func:`synthesize` does for a whole circuit.

    The cell instances stay black boxes: they are neither mapped nor counted, and no
    optimization crosses their boundaries (a constant input of a cell stays a wire into the
    cell instead of simplifying it). Returns a :class:`SynthesisResult` whose ``gates`` and
    ``transistors`` cover the glue only; its ``depth`` is 0 and it has no ``netlist``: the
    depth of a circuit is that of its full mapping (:func:`synthesize`).
    """
    _check_gates(gates)
    if not isinstance(elaboration, Elaboration):
        raise TypeError(f"Elaboration must be an hwlib.synth.Elaboration, not {elaboration!r}")
    if "top" in elaboration.cell_modules:
        return SynthesisResult(transistors=0, gates={}, depth=0)
    if not elaboration.cell_modules:
        result = synthesize(elaboration.rtlil, gates)
        return SynthesisResult(transistors=result.transistors, gates=result.gates, depth=0)
    marked = _MODULE_LINE.sub(
        lambda match: (f"attribute \\tosim_cell 1\n{match.group(0)}"
                       if match.group(1) in elaboration.cell_modules else match.group(0)),
        elaboration.rtlil)
    gate_names = tuple(sorted(gates))
    key = ("glue", hashlib.sha256(marked.encode()).hexdigest(), gate_names)
    with _mapping_lock:
        counts = _mapping_cache.get(key)
    if counts is None:
        abc_gates = ",".join(name for name in gate_names if name != "NOT")
        result = _yosys.run(marked, _GLUE_SCRIPT.format(gates=abc_gates),
                            outputs=["netlist.json"])
        top = json.loads(result.outputs["netlist.json"])["modules"]["top"]
        counts = {}
        for cell in top.get("cells", {}).values():
            cell_type = cell["type"]
            if cell_type == "$_BUF_" or not cell_type.startswith("$"):
                continue  # buffers are wires; non-$ types are the black-boxed cells
            counts[cell_type] = counts.get(cell_type, 0) + 1
        with _mapping_lock:
            _mapping_cache[key] = counts
    transistors, by_name = _price_gates(counts, gates)
    return SynthesisResult(transistors=transistors, gates=by_name, depth=0)
