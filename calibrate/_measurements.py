"""Measurement files: the measurement CSV (docs/calibration.md) and CodeCarbon's ``emissions.csv``.

Measurement CSV
---------------
Comma-separated, one header row, ``#`` comment lines allowed anywhere (they keep their line
numbers, so messages point at the right line). Columns:

``model`` (required)
    a model file path relative to the CSV's folder (or absolute), ``zoo:NAME``, or a bare zoo name
    (``lenet5``) when no file of that name exists.
``energy_j`` (required)
    measured energy of the whole run in joules, a positive number.
``phase``
    ``inference``, ``validation`` or ``training`` (default: the fit's ``--phase``).
``batch``
    samples per step (default 1).
``samples``
    samples per epoch (the dataset length); the epoch runs ``samples // batch`` full steps and one
    last step of ``samples % batch`` samples if that is not zero (PyTorch's DataLoader default,
    ``drop_last=False``).
``passes``
    steps per epoch, each of ``batch`` samples, for runs that loop a fixed number of times over
    one batch (timing loops); cannot be given together with ``samples``.
``epochs``
    how many times the epoch is repeated (default 1). With neither ``samples`` nor ``passes`` an
    epoch is one step of ``batch`` samples.
``device``
    optional: which device a row was measured on (``tosim fit --device`` picks rows by it).
``fresh_outputs``
    the share of the run's layer calls that got a fresh output tensor, a number from 0 to 1
    (default 1: PyTorch eager's ``model(x)`` in a loop allocates every output anew, and that is
    what ``tosim measure`` runs); 0 for a run that wrote into output memory it kept from call to
    call (preallocated ``out=`` tensors, an allocator that caches large blocks, CUDA graphs), a
    share in between for a row that averages repetitions of which only some reused. Outputs above
    the allocator's threshold cost page faults on every call only when fresh (the energy model's
    fresh-output term, docs/energy-model.md); a run that reused them must say so, or the fit
    charges that cost to rows that never paid it.

Any other column is kept but ignored. How the columns scale a model's counts is
:func:`workload_steps`: the feature of a row is ``epochs x sum over steps of F(step batch)``,
where ``F(b)`` is the TOs (FLOPs, MACs) of one step of ``b`` samples in the row's phase, as
counted by opcount for a batch of ``b`` (the optimizer update is counted once per step, not per
sample, which is why a partial last batch is counted as its own step).

CodeCarbon
----------
CodeCarbon's ``emissions.csv`` (one row per tracked run) gives ``energy_consumed`` in kWh and
its split ``cpu_energy``, ``gpu_energy``, ``ram_energy``. A file is read as CodeCarbon when it has
``energy_consumed`` and no ``energy_j``. Each row is mapped to a model by a ``model`` column in
the file itself (plus any of the workload columns above), or by a mapping CSV whose first column
is a CodeCarbon key column (``run_id``, ``project_name`` or ``experiment_id``) and whose other
columns are ``model`` and the optional workload columns. ``parts`` chooses which energy is fitted:
``total`` (``energy_consumed``) or a ``+``-joined subset of ``cpu``, ``gpu``, ``ram``.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from typing import Collection

from hardware_profiles import files as _read

__all__ = ["MeasurementError", "Measurement", "MeasurementSet", "PHASES", "CODECARBON_KEYS",
           "ENERGY_PARTS", "read_measurements", "read_codecarbon", "read_any", "workload_steps"]

PHASES = ("inference", "validation", "training")
CODECARBON_KEYS = ("run_id", "project_name", "experiment_id")
ENERGY_PARTS = ("cpu", "gpu", "ram")
JOULES_PER_KWH = 3.6e6
_WORKLOAD = ("phase", "batch", "samples", "epochs", "passes", "device", "fresh_outputs")


class MeasurementError(Exception):
    """A measurement file or request that cannot be used at all (one line, file and line named)."""


@dataclass(frozen=True)
class Measurement:
    """One usable row: ``energy_j`` joules for ``epochs`` repeats of ``steps`` on ``model``.

    ``model`` is what :func:`opcount.load_model` takes (a resolved path or ``zoo:NAME``);
    ``steps`` is a tuple of ``(batch size, number of steps)`` pairs per epoch; ``fresh_outputs``
    the share of its layer calls that got fresh output memory (the CSV's ``fresh_outputs`` column).
    """
    line: int
    model: str
    energy_j: float
    phase: str
    batch: int
    samples: object
    epochs: int
    passes: object
    device: object = None
    fresh_outputs: float = 1.0

    @property
    def steps(self):
        return workload_steps(self.batch, self.samples, self.passes)


@dataclass
class MeasurementSet:
    """The usable rows of a file and the rejected ones as ``(line, reason)``."""
    path: str
    rows: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    kind: str = "measurements"

    def messages(self) -> list[str]:
        """One line per rejected row: ``path:line: reason``."""
        return [f"{self.path}:{line}: {reason}" for line, reason in self.problems]


def workload_steps(batch: int, samples: int | None = None, passes: int | None = None) -> tuple[tuple[int, int], ...]:
    """Steps of one epoch as ``((batch size, count), ...)``.

    ``samples`` -> ``samples // batch`` full steps plus one step of ``samples % batch``;
    ``passes`` -> ``passes`` steps of ``batch``; neither -> one step of ``batch``.
    """
    if samples is not None and passes is not None:
        raise ValueError("give samples or passes, not both")
    if samples is not None:
        full, rest = divmod(samples, batch)
        return tuple(s for s in ((batch, full), (rest, 1)) if s[0] and s[1])
    return ((batch, 1 if passes is None else passes),)


def _resolve_model(text, folder, zoo):
    """A model column value as opcount.load_model takes it (``zoo`` is the set of zoo names)."""
    if text.startswith("zoo:"):
        return text
    path = text if os.path.isabs(text) else os.path.normpath(os.path.join(folder, text))
    if os.path.exists(path):
        return path
    if text in zoo:
        return f"zoo:{text}"
    raise ValueError(f"model {text!r}: no file {path} and not a built-in zoo name")


#: The largest batch, sample, epoch or step count of a measurement row (exact in float64), so
#: that a run's features (TOs, FLOPs, MACs of all its steps) stay finite.
MAX_COUNT = 2 ** 53


def _positive_int(text, column):
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} must be a positive integer, not {text!r}") from None
    if not value.is_integer() or value < 1:
        raise ValueError(f"{column} must be a positive integer, not {text!r}")
    if value > MAX_COUNT:
        raise ValueError(f"{column} must be at most 2^53, not {text!r}")
    return int(value)


def _energy(text, column="energy_j"):
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} must be a positive number, not {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{column} must be a positive number, not {text!r}")
    return value


def _row_fields(values, folder, default_phase, zoo):
    """(model, phase, batch, samples, epochs, passes, device, fresh_outputs) from a mapping of column values."""
    model_text = (values.get("model") or "").strip()
    if not model_text:
        raise ValueError("empty model")
    model = _resolve_model(model_text, folder, zoo)
    phase = (values.get("phase") or "").strip() or default_phase
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, not {phase!r}")
    get = {c: (values.get(c) or "").strip() for c in ("batch", "samples", "epochs", "passes")}
    batch = _positive_int(get["batch"], "batch") if get["batch"] else 1
    samples = _positive_int(get["samples"], "samples") if get["samples"] else None
    epochs = _positive_int(get["epochs"], "epochs") if get["epochs"] else 1
    passes = _positive_int(get["passes"], "passes") if get["passes"] else None
    if samples is not None and passes is not None:
        raise ValueError("give samples or passes, not both")
    device = (values.get("device") or "").strip() or None
    text = (values.get("fresh_outputs") or "").strip()
    try:
        fresh = float(text) if text else 1.0
    except ValueError:
        fresh = math.nan
    if not 0.0 <= fresh <= 1.0:
        raise ValueError(f"fresh_outputs must be a share from 0 to 1, not {text!r}")
    return model, phase, batch, samples, epochs, passes, device, fresh


def _read_table(path):
    """(header, [(line number, row list)]) of a CSV with '#' comment lines skipped."""
    if not os.path.lexists(path):
        raise MeasurementError(f"{path}: no such file")
    try:
        text = _read.read_text(path, encoding="utf-8-sig", what="measurement file")
    except _read.InputFileError as exc:
        raise MeasurementError(str(exc)) from None
    header, rows = None, []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = next(csv.reader([line]))
        if header is None:
            header = [c.strip() for c in cells]
            header_line = number
        else:
            rows.append((number, cells))
    if header is None:
        raise MeasurementError(f"{path}: no header row")
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise MeasurementError(f"{path}:{header_line}: duplicate column {duplicates[0]!r}")
    return header, rows


def _as_mapping(header, cells):
    if len(cells) != len(header):
        raise ValueError(f"{len(cells)} fields, the header has {len(header)}")
    return dict(zip(header, cells))


def read_measurements(path: str | os.PathLike[str], *, default_phase: str = "inference",
                      zoo_names: Collection[str] = ()) -> MeasurementSet:
    """Read a measurement CSV (see the module docstring). Rows that cannot be used are listed in
    ``problems`` with their line numbers; a file that cannot be used at all raises
    :class:`MeasurementError`. ``zoo_names`` are the bare model names taken as ``zoo:NAME`` (the
    caller passes :func:`opcount.zoo_names`; calibrate does not import opcount)."""
    zoo = frozenset(zoo_names)
    header, rows = _read_table(path)
    for column in ("model", "energy_j"):
        if column not in header:
            raise MeasurementError(f"{path}: missing column {column!r} (columns: {', '.join(header)})")
    folder = os.path.dirname(os.path.abspath(path))
    out = MeasurementSet(path=os.fspath(path))
    for number, cells in rows:
        try:
            values = _as_mapping(header, cells)
            energy = _energy(values["energy_j"].strip())
            model, phase, batch, samples, epochs, passes, device, fresh = _row_fields(values, folder,
                                                                                         default_phase, zoo)
        except ValueError as exc:
            out.problems.append((number, str(exc)))
            continue
        out.rows.append(Measurement(number, model, energy, phase, batch, samples, epochs, passes, device, fresh))
    return out


def energy_parts(parts: str) -> list[str] | None:
    """The CodeCarbon energy columns ``parts`` names: ``None`` for ``total`` (``energy_consumed``),
    else the list of a ``+``-joined subset of :data:`ENERGY_PARTS`, each once; a
    :class:`MeasurementError` otherwise."""
    if parts == "total":
        return None
    chosen = parts.split("+")
    if len(set(chosen)) != len(chosen) or not set(chosen) <= set(ENERGY_PARTS):
        raise MeasurementError(f"energy part must be 'total' or a '+'-joined subset of "
                               f"{', '.join(ENERGY_PARTS)} (each part once), not {parts!r}")
    return chosen


def read_codecarbon(path: str | os.PathLike[str], *, mapping: str | os.PathLike[str] | None = None,
                    parts: str = "total", default_phase: str = "inference", zoo_names: Collection[str] = ()) -> MeasurementSet:
    """Read CodeCarbon's ``emissions.csv``; energies are converted from kWh to joules.

    ``mapping`` is the path of a mapping CSV (first column a CodeCarbon key column, see the module
    docstring); without it the emissions file needs a ``model`` column.
    """
    zoo = frozenset(zoo_names)
    chosen = energy_parts(parts)
    header, rows = _read_table(path)
    columns = ["energy_consumed"] if chosen is None else [f"{p}_energy" for p in chosen]
    for column in columns:
        if column not in header:
            raise MeasurementError(f"{path}: missing CodeCarbon column {column!r}")
    table, key, map_folder = None, None, None
    if mapping is not None:
        map_header, map_rows = _read_table(mapping)
        key = map_header[0]
        if key not in CODECARBON_KEYS:
            raise MeasurementError(f"{mapping}: first column must be one of {', '.join(CODECARBON_KEYS)}, "
                                   f"not {key!r}")
        if "model" not in map_header:
            raise MeasurementError(f"{mapping}: missing column 'model'")
        if key not in header:
            raise MeasurementError(f"{path}: no column {key!r} to match the mapping {mapping}")
        table = {}
        for number, cells in map_rows:
            try:
                values = _as_mapping(map_header, cells)
            except ValueError as exc:
                raise MeasurementError(f"{mapping}:{number}: {exc}") from None
            if values[key] in table:
                raise MeasurementError(f"{mapping}:{number}: {key} {values[key]!r} mapped twice")
            table[values[key]] = values
        map_folder = os.path.dirname(os.path.abspath(mapping))
    elif "model" not in header:
        raise MeasurementError(f"{path}: CodeCarbon file has no 'model' column; map its runs to "
                               f"models with a mapping file")
    folder = os.path.dirname(os.path.abspath(path))
    out = MeasurementSet(path=os.fspath(path), kind="codecarbon")
    for number, cells in rows:
        try:
            values = _as_mapping(header, cells)
            kwh = 0.0
            for column in columns:
                text = values[column].strip()
                try:
                    part = float(text)
                except ValueError:
                    raise ValueError(f"{column} must be a number of kWh, not {text!r}") from None
                if not math.isfinite(part) or part < 0:
                    raise ValueError(f"{column} must be a non-negative number of kWh, not {text!r}")
                kwh += part
            if kwh <= 0:
                raise ValueError(f"no energy: {' + '.join(columns)} is 0 kWh")
            where: str | None = folder
            if table is not None:
                if values[key] not in table:
                    raise ValueError(f"{key} {values[key]!r} is not in the mapping {mapping}")
                values = {**values, **{c: v for c, v in table[values[key]].items() if c != key}}
                where = map_folder
            model, phase, batch, samples, epochs, passes, device, fresh = _row_fields(values, where,
                                                                                         default_phase, zoo)
        except ValueError as exc:
            out.problems.append((number, str(exc)))
            continue
        out.rows.append(Measurement(number, model, kwh * JOULES_PER_KWH, phase, batch, samples, epochs,
                                    passes, device, fresh))
    return out


def read_any(path: str | os.PathLike[str], *, mapping: str | os.PathLike[str] | None = None, parts: str = "total",
             default_phase: str = "inference", zoo_names: Collection[str] = ()) -> MeasurementSet:
    """A measurement CSV or a CodeCarbon ``emissions.csv``, told apart by their columns."""
    header, _ = _read_table(path)
    if "energy_j" not in header and "energy_consumed" in header:
        return read_codecarbon(path, mapping=mapping, parts=parts, default_phase=default_phase,
                               zoo_names=zoo_names)
    if mapping is not None or parts != "total":
        raise MeasurementError(f"{path}: a mapping file and energy parts apply to CodeCarbon's "
                               f"emissions.csv only (this file has an energy_j column)")
    return read_measurements(path, default_phase=default_phase, zoo_names=zoo_names)
