"""The one place scoring reads cost tables: ``costs_array(profile, formats)``, and
``cost_columns(profile, formats)``, the same numbers without numpy.

Scoring needs a plain float64 array, transistors per basic op (rows, ``BASIC_OPS`` order) and
number format (columns, in the order asked); small jobs, priced in Python, take them as one
tuple of floats per format. Where the numbers come from (the on-disk cache of
synthesized circuits, tables shipped for the built-in profiles, a fresh synthesis) is
:func:`hwlib.cost.cost_table`'s business; nothing else in scoring touches hwlib.
"""
import sys
import time

from opcount import BASIC_OPS

__all__ = ["costs_array", "cost_columns", "mac_costs_array", "mac_accumulator", "refuse_mac_unit",
           "SynthesisProgress", "SwitchingProgress", "switching_array"]

_MEMO: dict = {}
_COLUMNS: dict = {}


class SynthesisProgress:
    """Tells stderr about each circuit that has to be synthesized (cached ones are silent),
    counting up (``3/18``) and, once one is done, estimating the time left
    (:class:`tosim._progress.WorkCounter`)."""

    doing, did = "synthesizing", "synthesized"

    def __init__(self, stream=None, clock=time.perf_counter):
        from ._progress import WorkCounter
        self.stream = stream if stream is not None else sys.stderr
        self.counter = WorkCounter(clock)

    def planned(self, work):
        self.counter.plan(work)

    def start(self, index, total, label):
        k, n = self.counter.begin(index) or (index, total)
        print(f"tosim: {self.doing} {label} ({k}/{n}; cached for next time) ...",
              file=self.stream, flush=True)

    def done(self, index, total, label, seconds):
        left = self.counter.finish(index)
        print(f"tosim: {self.did} {label} in {seconds:.1f} s" + (f" ({left})" if left else ""),
              file=self.stream, flush=True)


def _memo_key(profile, formats):
    import json
    # a profile's technology and units decide its circuits; the name alone would confuse two
    # files that share one
    return (json.dumps({"technology": profile.technology, "units": profile.units,
                        "datapath": profile.datapath}, sort_keys=True), tuple(formats))


def _integer_ops(formats, needed):
    """``{integer format: ops to price}`` from ``needed`` (``(op, format)`` pairs with a count),
    for the integer formats among ``formats``; ``None`` when every op is to be priced."""
    if needed is None:
        return None
    from hardware_profiles.schema import INT_FORMAT_BITS
    return {fmt: tuple(op for op in BASIC_OPS if (op, fmt) in needed) for fmt in formats if fmt in INT_FORMAT_BITS}


def _read_columns(profile, formats, progress, needed=None):
    """Per format, the transistors of each basic op (a tuple in ``BASIC_OPS`` order), memoized.
    ``needed``: the ``(op, format)`` pairs the counts use; an integer format's other ops are not
    priced and stand at 0 (their counts are zero): an int32 accumulator never needs the 32-bit
    divider and root, the slowest circuits to synthesize (about a minute)."""
    only = _integer_ops(formats, needed)
    key = _memo_key(profile, formats) + (tuple(sorted(only.items())) if only else (),)
    if key not in _COLUMNS:
        from hwlib.cost import cost_table
        full = [fmt for fmt in formats if not only or fmt not in only]
        rows = cost_table(profile, formats=full, ops=list(BASIC_OPS), progress=progress) if full else []
        for fmt, ops in (only or {}).items():
            rows += cost_table(profile, formats=[fmt], ops=list(ops), progress=progress) if ops else []
        found = {(row.op, row.format): float(row.cost.transistors) for row in rows}
        for fmt, ops in (only or {}).items():
            found.update({(op, fmt): 0.0 for op in BASIC_OPS if op not in ops})
        missing = [(op, fmt) for fmt in formats for op in BASIC_OPS if (op, fmt) not in found]
        if missing:
            raise RuntimeError(f"cost table of {profile.name!r} lacks {missing[0][1]} {missing[0][0]}")
        _COLUMNS[key] = tuple(tuple(found[(op, fmt)] for op in BASIC_OPS) for fmt in formats)
    return _COLUMNS[key]


def cost_columns(profile, formats, *, progress=None, needed=None):
    """The columns of :func:`costs_array` without numpy: a list with one tuple of floats per
    format, the transistors of each basic op in ``BASIC_OPS`` order (the same numbers).
    A :func:`costs_array` replaced on this module (the tests' fixed costs) is followed."""
    formats = list(formats)
    if costs_array is not _costs_array:
        # only with integer formats (a replacement written before ``needed`` existed still works)
        table = costs_array(profile, formats, progress=progress, **({"needed": needed} if needed else {}))
        return [tuple(float(table[i][j]) for i in range(len(BASIC_OPS))) for j in range(len(formats))]
    return list(_read_columns(profile, formats, progress, needed))


def costs_array(profile, formats, *, progress=None, needed=None):
    """Transistors per basic op and format: float64 array ``(len(BASIC_OPS), len(formats))``.

    ``profile``: a loaded :class:`hardware_profiles.Profile`. ``formats``: format names
    (``fp32``, ...), one column each. ``progress``: told about circuits that must be
    synthesized (see :class:`SynthesisProgress`); ``None`` for silence. ``needed``: the ``(op,
    format)`` pairs with a non-zero count, or ``None``; an integer format's ops outside it are 0
    (not synthesized), so the table must multiply zero counts only there. Raises
    :class:`hwlib.CircuitError` when the profile's circuits cannot be built.
    """
    import numpy as np
    formats = list(formats)
    only = _integer_ops(formats, needed)
    key = _memo_key(profile, formats) + (tuple(sorted(only.items())) if only else (),)
    if key not in _MEMO:
        table = np.zeros((len(BASIC_OPS), len(formats)), dtype=np.float64)
        for j, column in enumerate(_read_columns(profile, formats, progress, needed)):
            table[:, j] = column
        table.setflags(write=False)
        _MEMO[key] = table
    return _MEMO[key]


_costs_array = costs_array


def mac_accumulator(profile, fmt):
    """The accumulator format of the profile's MAC unit for products in ``fmt``: ``units.mac``'s
    ``accumulate``, else ``fmt`` itself (a fused multiply-add). ``ValueError`` when ``fmt``
    cannot accumulate (fp8_e4m3 has no infinities) and the profile names no accumulator."""
    acc = profile.units["mac"].get("accumulate", fmt)
    from hardware_profiles.schema import MAC_ACCUMULATOR_FORMATS
    if acc not in MAC_ACCUMULATOR_FORMATS:
        raise ValueError(f"profile {profile.name!r}: the MAC unit cannot accumulate in {fmt}; set "
                         f"units.mac.accumulate to one of {', '.join(MAC_ACCUMULATOR_FORMATS)}")
    return acc


def mac_costs_array(profile, formats, *, progress=None, used=None):
    """Transistors of the profile's MAC unit (``units.mac``) per product format: float64 array
    ``(len(formats),)``, each the :class:`hwlib.units.fma.FPMAC` of that format into
    :func:`mac_accumulator` built from the profile's mul and add units; for an integer format
    (int8, int4) the integer MAC of :mod:`hwlib.units.mac` on the profile's multiplier, signed
    operands into an int32 accumulator (:func:`hwlib.units.intfmt.int_mac_unit`), whatever
    ``units.mac.accumulate`` says (that is the floating-point products' accumulator).
    ``used``: the formats with MAC counts (default all); the others are 0 (not built)."""
    from hardware_profiles.schema import INT_FORMAT_BITS
    formats = list(formats)
    used = formats if used is None else [f for f in formats if f in set(used)]
    key = ("mac",) + _memo_key(profile, formats) + (tuple(used),)
    if key not in _MEMO:
        import numpy as np

        from hwlib.cost import fp_mac_table
        from hwlib.units.intfmt import int_mac_costs
        found = {}
        fp = [fmt for fmt in used if fmt not in INT_FORMAT_BITS]
        ints = [fmt for fmt in used if fmt in INT_FORMAT_BITS]
        if fp:
            rows = fp_mac_table(profile, [(fmt, mac_accumulator(profile, fmt)) for fmt in fp], progress=progress)
            found.update((fmt, float(row.cost.transistors)) for fmt, row in zip(fp, rows))
        if ints:
            found.update((fmt, float(cost.transistors)) for fmt, cost in zip(ints, int_mac_costs(profile, ints,
                                                                                                 progress=progress)))
        table = np.array([found.get(fmt, 0.0) for fmt in formats], dtype=np.float64)
        table.setflags(write=False)
        _MEMO[key] = table
    return _MEMO[key]


def refuse_mac_unit(profile, what):
    """Raise :class:`tosim.ScoreError` when the profile has a MAC unit (``units.mac``): ``what``
    (a command or path that prices separate multiplies and adds only) would price the matrix
    products without it, differently from ``tosim score``."""
    if "mac" in profile.units:
        from ._errors import ScoreError
        raise ScoreError(f"profile {profile.name!r} has a MAC unit (units.mac), which {what} does not price "
                         f"yet; use a profile without units.mac")


class SwitchingProgress(SynthesisProgress):
    """Tells stderr about each switching-energy entry that has to be simulated."""

    doing, did = "simulating", "simulated"


def switching_array(profile, keys, pairs, *, progress=None, operands=None):
    """Switching energy per basic op and column in joules, float64 ``(len(BASIC_OPS),
    len(keys))``, for a profile with ``power: {energy: activity}``, and the basis of the
    estimate (a dict: ``note``, ``source``, ``vdd``, ``vectors``, ``seed``, ``glitches`` and
    ``ops``, one :meth:`hwlib.activity.OpEnergy.to_json` per entry, with ``layers``: the layer
    type whose distributions it used, or ``None``). A column is a format, or a ``(format,
    layer type)`` pair (layer type ``""``: the distributions that are not per layer type).
    Only the ``(op, column)`` ``pairs`` are simulated (:func:`hwlib.activity.op_energies`,
    cached on disk); the other entries are 0 and must be multiplied by zero counts only.
    ``progress``: a :class:`SynthesisProgress` (its stream is told about each simulation), or
    ``None``. ``operands``: the stream arrays of the one model priced, for ``model``
    distributions (see :func:`hwlib.activity.op_energies`)."""
    import numpy as np

    from hwlib.activity import ESTIMATE_NOTE, op_energies
    keys = list(keys)
    told = SwitchingProgress(progress.stream) if progress is not None else None
    table = np.zeros((len(BASIC_OPS), len(keys)), dtype=np.float64)
    column = {key: i for i, key in enumerate(keys)}
    by_group = {}
    for op, key in pairs:
        fmt, group = key if isinstance(key, tuple) else (key, "")
        by_group.setdefault(group, []).append((op, fmt, key))
    entries = []
    for group, items in sorted(by_group.items()):
        energies = op_energies(profile, [(op, fmt) for op, fmt, _ in items], layer_type=group or None,
                               progress=told, **({"operands": operands} if operands is not None else {}))
        for op, fmt, key in items:
            entry = energies[(op, fmt)]
            table[BASIC_OPS.index(op), column[key]] = entry.energy_j_per_op
            entries.append(dict(entry.to_json(), layers=group or None))
    table.setflags(write=False)
    power = profile.power
    basis = {"note": ESTIMATE_NOTE, "source": power["source"], "vdd": power["vdd"],
             "vectors": power["vectors"], "seed": power["seed"], "glitches": bool(power["glitches"]),
             "ops": entries}
    return table, basis
