"""hwlib: arithmetic circuits in Amaranth, synthesis with Yosys, transistor counting.

The public API, by module:

* :mod:`hwlib.registry`: design names to circuits (``build``, ``design_class``,
  ``designs_for``, ``DESIGNS``, ``UNIT_KINDS``);
* :mod:`hwlib.synth`: mapping onto a gate set (``synthesize``, ``SynthesisResult``,
  ``GATE_NAMES``), cell counts (``cell_instances``), SAT proofs (``prove``, ``ProofResult``);
* :mod:`hwlib.netsim`: gate-level simulation (``simulate``, ``netlist``);
* :mod:`hwlib.cost`: transistor counting under a profile's technology (``count``, ``Cost``),
  the disk cache (``Cache``, ``Pricer``, ``default_cache_dir``), cost tables (``cost_table``,
  ``cost_tables``, ``compare_designs``);
* :mod:`hwlib._yosys`: ``YosysError``, ``YosysWarning``, ``yosys_version``.

For circuit authors: :mod:`hwlib.checks` holds the argument checks every component uses
(``positive_int``, ``int_in``, ``operand``, ``boolean``, ``design``: one wording per
mistake), and the building blocks one circuit module lends another are public names of their
module (:mod:`hwlib.common`'s ``add_unit``, ``mux_row``, ``normalize``, ``shift_left``,
``shift_right``; :mod:`hwlib.multipliers`' ``CellFactory``, ``dadda_reduce``,
``resolve_final_adder``; :mod:`hwlib.fp`'s ``Operand``, ``normalize_left``,
``shift_right_sticky``, ``round_pack``, ``select_special``, ``FPUnit``, ``unit_design``), so
that no module imports another's private names.

Names are imported on first use, so ``import hwlib`` stays cheap (Amaranth, numba and the
circuits load only when something needs them).
"""
import importlib

__all__ = [
    "CircuitError",
    # registry
    "DESIGNS", "UNIT_KINDS", "build", "design_class", "designs_for",
    # synth
    "GATE_NAMES", "SynthesisResult", "synthesize", "ProofResult", "prove", "cell_instances",
    # netsim
    "simulate", "netlist",
    # cost
    "COUNTING_MODES", "Cost", "count", "Cache", "Pricer", "default_cache_dir", "cost_table",
    "cost_tables", "compare_designs",
    # Yosys
    "YosysError", "YosysWarning", "yosys_version",
]


class CircuitError(ValueError):
    """A circuit cannot be built or priced as asked: an unknown design, a bad width, a cell
    the profile does not price. The ``tosim`` command prints it as one line (exit status 2)."""


_LAZY = {
    "hwlib.registry": ("DESIGNS", "UNIT_KINDS", "build", "design_class", "designs_for"),
    "hwlib.synth": ("GATE_NAMES", "SynthesisResult", "synthesize", "ProofResult", "prove",
                    "cell_instances"),
    "hwlib.netsim": ("simulate", "netlist"),
    "hwlib.cost": ("COUNTING_MODES", "Cost", "count", "Cache", "Pricer", "default_cache_dir",
                   "cost_table", "cost_tables", "compare_designs"),
    "hwlib._yosys": ("YosysError", "YosysWarning", "yosys_version"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'hwlib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
