"""Switching activity, switching energy, delay and area of a unit's mapped gate netlist.

A unit's energy depends on its data: the transistor count prices every gate once, whatever
the operands, while a CMOS gate draws dynamic energy only when its output net switches. This
module runs a stream of operand pairs through the *mapped* netlist (the gates
:func:`hwlib.synth.synthesize` prices, evaluated bit-parallel like :mod:`hwlib.netsim`),
counts the zero-delay toggles of every net between consecutive operations, and prices them:

    energy per operation = sum over nets of 1/2 * C_net * V^2 * toggles_net / operations

(each 0->1 transition charges C_net from the supply, ``C V^2`` drawn, half of it dissipated
then and half at the following 1->0 transition; per toggle that is ``C V^2 / 2``). A stream
of ``N`` operand pairs has ``N - 1`` operations (transitions): the state before the first
operation is not known, so it is not charged. By default glitches (transitions that settle
within one operation) are not counted: this is the zero-delay activity, a lower bound on the
real one; ``glitches=True`` (``toggle_counts(..., unit_delay=True)``) counts unit-delay toggles
instead (every gate one time step from the previous operation's settled state).

Besides energy it reports, from the same netlist, the critical-path delay (longest
input-to-output path through a per-gate-type delay table plus a load term per fan-out; false
paths count, as in :meth:`hwlib.netsim.Netlist.depth`) and the area (sum of per-gate-type
cell areas).

The technology model (:class:`PowerModel`, :data:`DEFAULT_MODEL`)
------------------------------------------------------------------
A generic 45 nm-class static-CMOS library at its nominal supply. The numbers are *assumptions
of the right order*, not sign-off data: they are rounded to the magnitude of the X1 (minimum
drive) cells of open 45 nm libraries of the FreePDK45 kind (NanGate's Open Cell Library: pin
capacitances of about 1 to 2.5 fF, an inverter delay of order 10-20 ps with a few ps more per
fan-out, cell areas in multiples of a 0.266 um^2 placement site, a 1.1 V nominal supply).
They were written down here for this model, not copied from a library file. A net's
capacitance is

    C_net = C_drain(driver type) + sum over the gate inputs it drives of C_pin(gate type)
            + C_wire * fan-out + C_load (once per primary-output bit it feeds)

with ``C_wire`` a wire-load estimate per fan-out and ``C_load`` the register input that takes
the result. Primary-input nets have no driver in the unit (``C_drain`` = 0) but their load is
charged: the unit's own input capacitance is part of the cost of an operation. Every number is
overridable: a profile's ``power:`` section (:attr:`hardware_profiles.Profile.power`,
:meth:`PowerModel.from_profile`; the defaults are :data:`hardware_profiles.schema.POWER_DEFAULTS`),
:meth:`PowerModel.replace` (Python) or ``--vdd`` on the command line.

Pricing counted ops (:func:`op_energies`)
-----------------------------------------
With ``power: {energy: activity}`` ``tosim score`` multiplies each layer's op counts by the
switching energy per op of the profile's floating-point unit of that op and format, simulated
under the op's distribution (``power.distribution``) and cached on disk like synthesis results.
The result is an estimate (:data:`ESTIMATE_NOTE`) and says so.

Operand streams (:func:`operands`)
----------------------------------
Named, seeded, synthetic distributions: ``uniform`` (random bits), ``normal`` (two's-complement
integers, or IEEE encodings for floating-point units, of normal draws with standard deviation
``scale``), ``relu`` (a fraction ``zeros`` of exact zeros, the rest half-normal of ``scale``),
``zeros`` (all-zero operands). For integer units ``scale`` is relative to the half range
``2^(w-1)`` (default 0.25); for floating-point units it is the value's standard deviation
(default 1.0). A pair of distributions gives operands a and b their own. Floating-point streams
are encoded in any profile format (fp8_e4m3 and fp8_e5m2 included: :func:`fp_encode`,
:func:`fp_round`, nearest even). :func:`fp_stream_activity` runs given operand values instead
(``tosim activity --from-model`` draws them from a model's layers), and ``streams:FILE[#TYPE]``
in a profile's ``power.distribution`` prices ``mul`` and ``add`` on operands saved from a model
(``--save-streams``; :mod:`hwlib.activity._streams_file`).

Package layout note: this is a sub-package of :mod:`hwlib` and outside the source digest of
:func:`hwlib.cost._source_digest` (which covers the top-level modules that decide a circuit or
its count): nothing here changes a circuit, a mapping or a transistor count, so changing it
must not invalidate the bundled cost tables.
"""
from ._model import DEFAULT_MODEL, PowerModel
from ._stream import DISTRIBUTIONS, Distribution, fp_encode, fp_round, operands, parse_distribution
from ._streams_file import ModelOperandsError, StreamsFileError, is_model_operands
from ._table import ESTIMATE_NOTE, ActivityCache, OpEnergy, op_distribution, op_energies
from ._toggles import ToggleCounts, toggle_counts
from ._unit import (UnitActivity, area_um2, critical_path_ps, fp_activity, fp_stream_activity,
                    mapped_netlist, net_capacitance_ff, switching_energy_fj, unit_activity)

__all__ = ["DEFAULT_MODEL", "PowerModel", "DISTRIBUTIONS", "Distribution", "operands",
           "parse_distribution", "ToggleCounts", "toggle_counts", "UnitActivity",
           "area_um2", "critical_path_ps", "fp_activity", "mapped_netlist",
           "net_capacitance_ff", "switching_energy_fj", "unit_activity", "ESTIMATE_NOTE",
           "ActivityCache", "OpEnergy", "op_distribution", "op_energies", "fp_encode", "fp_round",
           "fp_stream_activity", "StreamsFileError", "ModelOperandsError", "is_model_operands"]
