"""The Python API for the main job: :func:`score` and :func:`score_many`.

One call runs the whole pipeline: read the model (a :class:`opcount.ModelIR`, a spec file or
mapping, an ONNX file, a Hugging Face ``config.json``, ``zoo:NAME``, or a ``torch.nn.Module``
with example inputs), count its basic operations per layer and stage (opcount), price them with
the profile's cost table (hwlib, bundled or cached for the built-in profiles), and with a device
turn the TOs into joules and grams of CO2e (calibrate's fitted polynomial).

    >>> import tosim
    >>> r = tosim.score("zoo:lenet5", profile="li2022", phase="training", batch=64)
    >>> r.complete, r.params, r.counts["mul"] > 0, r.tos == sum(r.tos_by_stage.values())
    (True, 61706, True, True)

The ``tosim score`` and ``tosim count`` commands are this API plus argument parsing and
printing; ``to_dict()`` is a row of ``tosim score --json`` and ``to_csv()`` the rows of
``--out F.csv``.
"""
from __future__ import annotations

import csv
import io
import math
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import hardware_profiles
import opcount
from opcount import BASIC_OPS as OPS, STAGES

from . import _energy, _pipeline
from ._errors import ScoreError

_GENERATION = ("generate", "GenerationResult")


def __getattr__(name):
    # the serving pipeline (opcount.generation, numpy) is imported on first use
    if name in _GENERATION:
        from . import _generation
        return getattr(_generation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

if TYPE_CHECKING:
    import pandas

__all__ = ["score", "score_many", "generate", "GenerationResult", "ScoreResult", "LayerScore", "Scores", "Workload",
           "ScoreError",
           "DEFAULT_PROFILE", "PHASES", "ROW_FIELDS", "LAYER_FIELDS", "RUN_FIELDS", "expand_inputs"]

DEFAULT_PROFILE = hardware_profiles.DEFAULT_PROFILE
#: The phases a model can be scored in, and the stages each covers.
PHASES = tuple(opcount.PHASES)

#: Columns of a score row, in order (CSV header, JSON keys).
ROW_FIELDS = ["name", "source", "profile", "phase", "batch", "params", "macs", "flops", *OPS,
              *(f"tos_{s}" for s in STAGES), "tos", "energy_j", "gco2e", "incomplete", "assumptions", "error"]
#: Extra columns of the per-layer rows of a per-layer CSV.
LAYER_FIELDS = ["layer", "layer_type", "format"]
#: Extra columns of a whole-run score: the workload as given and the number of steps of the run.
RUN_FIELDS = ["samples", "passes", "epochs", "steps"]

expand_inputs = _pipeline.expand_inputs


# --- the workload -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """A whole run instead of one step: ``epochs`` x the steps of one epoch.

    ``samples``: samples per epoch (``samples // batch`` full steps and one step of the rest);
    ``passes``: steps of ``batch`` samples per epoch (not with ``samples``); neither: one step
    per epoch. Counts, TOs, MACs and FLOPs of a run are ``epochs x sum over the steps``, each
    step counted at its own batch size, exactly as ``tosim fit`` reads a measurement row, and a
    device's polynomial is applied to the run's total.
    """
    samples: Optional[int] = None
    passes: Optional[int] = None
    epochs: int = 1

    def __post_init__(self):
        for key in ("samples", "passes", "epochs"):
            value = getattr(self, key)
            if value is None and key != "epochs":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ScoreError(f"workload {key} must be a positive integer, not {value!r}")
        if self.samples is not None and self.passes is not None:
            raise ScoreError("give --samples or --passes, not both")

    def steps(self, batch: int) -> tuple:
        """The steps of one epoch as ``((batch size, count), ...)``."""
        import calibrate
        return calibrate.workload_steps(batch, self.samples, self.passes)

    def total_steps(self, batch: int) -> int:
        return self.epochs * sum(n for _, n in self.steps(batch))

    @classmethod
    def of(cls, value) -> Optional["Workload"]:
        """A Workload from ``None``, a Workload or a mapping with ``samples``, ``passes``, ``epochs``."""
        if value is None or isinstance(value, Workload):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"samples", "passes", "epochs"})
            if unknown:
                raise ScoreError(f"unknown workload key {unknown[0]!r}; known: samples, passes, epochs")
            epochs = value.get("epochs")
            return cls(samples=value.get("samples"), passes=value.get("passes"), epochs=1 if epochs is None else epochs)
        raise ScoreError(f"workload must be a mapping or tosim.Workload, not {type(value).__name__}")


# --- results ----------------------------------------------------------------------------------

@dataclass
class LayerScore:
    """One layer of a :class:`ScoreResult` (``per_layer=True``): counts summed over the phase's
    stages, TOs per stage and in total, and with a memory profile its data-movement split; with a
    device energy model its joules (``energy_j``), per term (``energy_terms``) and roofline time."""
    name: str
    type: str
    format: str
    params: int
    macs: int
    flops: int
    counts: dict
    tos_by_stage: dict
    tos: float
    energy_compute_j: Optional[float] = None
    energy_movement_j: Optional[float] = None
    accesses: dict = field(default_factory=dict)
    energy_j: Optional[float] = None
    energy_terms: Optional[dict] = None
    time_s: Optional[float] = None
    switching_j: Optional[float] = None

    def __repr__(self) -> str:
        from ._render import count_text, si
        return (f"<LayerScore {self.name} ({self.type}, {self.format}): params {count_text(self.params)}, "
                f"MACs {si(self.macs)}, TOs {si(self.tos)}>")


@dataclass
class ScoreResult:
    """The score of one model under one profile, phase, batch and workload.

    Totals: ``params``, ``macs``, ``flops`` (2 x MACs), ``counts`` (basic op -> exact count over
    the phase's stages), ``tos_by_stage`` (stage -> TOs), ``tos``; ``energy_j`` and ``gco2e`` with
    a device (else ``None``). ``complete`` is False when anything was left out: ``incomplete``
    lists ``{layer, type, reason}`` of each layer not fully counted and ``incomplete_types`` counts
    them by type; the TOs of such a model are too low. ``assumptions`` lists what the frontend
    assumed where the model did not say (an ONNX file's batch axis). ``error`` is the message of a model that
    could not be read or counted (then the numbers are ``None``; :func:`score` raises instead).
    ``energy_extrapolated`` is True when the device's polynomial was applied more than 10x outside
    the feature range it was fitted on (its ``fitted_range``): the joules are then an
    extrapolation (``None`` without a device or a range).
    With a device energy model (``devices.<name>.energy_model``), ``energy_terms`` splits
    ``energy_j`` into ops, memory, calls and static joules and ``time_s`` is its roofline time.
    ``layers`` holds :class:`LayerScore` items with ``per_layer=True``. With a profile that has a
    ``memory:`` section, ``energy_compute_j``, ``energy_movement_j`` and ``accesses`` (per level
    of ``levels``) give the data-movement split, and ``movement`` the full
    :class:`opcount.MovementResult` (of the run's first step). ``workload`` and ``steps`` describe a
    whole run. ``count_result`` (from :func:`score` only) is the :class:`opcount.CountResult`
    with the exact counts of every layer and stage (of the run's first step).
    With a profile whose ``power.energy`` is ``activity``, ``switching_j`` (and
    ``switching_by_stage``, and each layer's ``switching_j``) is the dynamic switching energy of
    the counted ops, an estimate from simulated switching of the profile's units under the
    operand distributions that ``switching`` names (``note``, ``ops``: fJ per op, distribution
    and activity per op and format, ``source``, ``vdd``, ``vectors``, ``seed``, ``glitches``).
    """
    name: str
    source: Optional[str]
    profile: str
    phase: str
    batch: int
    params: Optional[int] = None
    macs: Optional[int] = None
    flops: Optional[int] = None
    counts: Optional[dict] = None
    tos_by_stage: Optional[dict] = None
    tos: Optional[float] = None
    energy_j: Optional[float] = None
    gco2e: Optional[float] = None
    energy_extrapolated: Optional[bool] = None
    energy_terms: Optional[dict] = None
    time_s: Optional[float] = None
    complete: bool = False
    incomplete: list = field(default_factory=list)
    incomplete_types: dict = field(default_factory=dict)
    assumptions: list = field(default_factory=list)
    error: Optional[str] = None
    layers: Optional[list] = None
    per_layer: bool = False
    levels: tuple = ()
    energy_compute_j: Optional[float] = None
    energy_movement_j: Optional[float] = None
    accesses: dict = field(default_factory=dict)
    workload: Optional[Workload] = None
    steps: Optional[int] = None
    movement: Any = field(default=None, repr=False, compare=False)
    count_result: Any = field(default=None, repr=False, compare=False)
    switching_j: Optional[float] = None
    switching_by_stage: Optional[dict] = None
    switching: Optional[dict] = None

    @property
    def switching_basis(self) -> Optional[str]:
        """The switching estimate in words: the note, then each op and format's distribution
        and fJ per op (``None`` without switching pricing)."""
        return switching_basis(self.switching)

    @property
    def ok(self) -> bool:
        """True when the model was read and counted (it may still be incomplete)."""
        return self.error is None

    def __repr__(self) -> str:
        """One line (the fields are attributes; :meth:`to_dict` has them all)."""
        from ._render import count_text, si
        head = f"<ScoreResult {self.name}: {self.profile} {self.phase} batch {self.batch}"
        if self.steps is not None:
            head += f" x {self.steps:,} steps"
        if self.error is not None:
            return f"{head}, error: {self.error}>"
        text = (f"{head}, params {count_text(self.params)}, MACs {si(self.macs)}, FLOPs {si(self.flops)}, "
                f"TOs {si(self.tos)}")
        if self.energy_j is not None:
            text += f", {si(self.energy_j)}J" + (f", {si(self.gco2e)}g CO2e" if self.gco2e is not None else "")
        if self.energy_extrapolated:
            text += " (extrapolated)"
        if not self.complete:
            text += f", INCOMPLETE ({len(self.incomplete)} left out)"
        if self.layers is not None:
            text += f", {len(self.layers)} layers"
        return text + ">"

    @property
    def extra_fields(self) -> list:
        """Columns beyond :data:`ROW_FIELDS`: ``mac`` (a profile with a MAC unit), data movement
        (memory profile) and whole run."""
        out = ["mac"] if self.counts and "mac" in self.counts else []
        if self.levels:
            out += ["energy_compute_j", "energy_movement_j"] + [f"accesses_{lv}" for lv in self.levels]
        if self.energy_terms is not None:
            from ._device_model import MODEL_FIELDS
            out += MODEL_FIELDS
        if self.switching is not None:
            out += SWITCHING_FIELDS
        if self.workload is not None:
            out += RUN_FIELDS
        return out

    def to_dict(self) -> dict:
        """The row of ``tosim score --json``: :data:`ROW_FIELDS`, the extra columns, and
        ``layers`` with ``per_layer``. ``incomplete`` is ``{type: layers}`` (``{}`` when complete,
        ``None`` for a failed model), ``assumptions`` the list of what was assumed (``[]`` when
        nothing, ``None`` for a failed model; in the CSV joined by ``"; "``)."""
        item: dict[str, Any] = {"name": self.name, "source": self.source, "profile": self.profile, "phase": self.phase,
                "batch": self.batch, "params": self.params, "macs": self.macs, "flops": self.flops}
        item.update({op: (self.counts or {}).get(op) for op in OPS})
        if self.counts and "mac" in self.counts:
            item["mac"] = self.counts["mac"]
        item.update({f"tos_{s}": (self.tos_by_stage or {}).get(s) for s in STAGES})
        item.update(tos=self.tos, energy_j=self.energy_j, gco2e=self.gco2e,
                    incomplete=None if self.error else dict(self.incomplete_types),
                    assumptions=None if self.error else list(self.assumptions), error=self.error)
        if self.levels:
            item.update(energy_compute_j=self.energy_compute_j, energy_movement_j=self.energy_movement_j)
            item.update({f"accesses_{lv}": self.accesses.get(lv) for lv in self.levels})
        if self.energy_terms is not None:
            from ._device_model import TERM_FIELDS
            item.update({field_: self.energy_terms.get(term) for term, field_ in TERM_FIELDS.items()})
            item["time_s"] = self.time_s
        if self.switching is not None:
            item.update(switching_j=self.switching_j, switching_basis=self.switching_basis,
                        switching=self.switching)
            item.update({f"switching_j_{s}": (self.switching_by_stage or {}).get(s) for s in STAGES})
        if self.workload is not None:
            item.update(samples=self.workload.samples, passes=self.workload.passes, epochs=self.workload.epochs,
                        steps=self.steps)
        if self.layers is not None:
            item["layers"] = [_layer_dict(layer, self.levels) for layer in self.layers]
        return item

    def to_csv(self, path: Optional[str] = None) -> str:
        """The CSV rows of this model (a model row, then one row per layer with ``per_layer``);
        written atomically to ``path`` when given. Returns the text."""
        return Scores([self], per_layer=self.per_layer).to_csv(path)

    def to_dataframe(self) -> pandas.DataFrame:
        """The rows of :meth:`to_csv` as a pandas DataFrame (needs pandas)."""
        return Scores([self], per_layer=self.per_layer).to_dataframe()


def _layer_dict(layer, levels):
    out = {"name": layer.name, "type": layer.type, "format": layer.format, "params": layer.params,
           "macs": layer.macs, "flops": layer.flops, "counts": dict(layer.counts),
           "tos": dict(layer.tos_by_stage, total=layer.tos)}
    if levels:
        out.update(energy_compute_j=layer.energy_compute_j, energy_movement_j=layer.energy_movement_j)
        out.update({f"accesses_{lv}": layer.accesses.get(lv) for lv in levels})
    if layer.energy_terms is not None:
        from ._device_model import TERM_FIELDS
        out["energy_j"] = layer.energy_j
        out.update({field_: layer.energy_terms.get(term) for term, field_ in TERM_FIELDS.items()})
        out["time_s"] = layer.time_s
    if layer.switching_j is not None:
        out["switching_j"] = layer.switching_j
    return out


#: CSV columns of the switching-energy estimate (profiles with ``power.energy: activity``).
SWITCHING_FIELDS = ["switching_j", "switching_basis"]


def switching_basis(switching):
    """One line naming the estimate and, per op and format, its distribution and fJ per op."""
    if switching is None:
        return None
    ops = "; ".join(f"{e['format']} {e['op']} ({e['design']})"
                    + (f" in {e['layers']} layers" if e.get("layers") else "")
                    + f": {e['distribution']} operands, {e['energy_fj_per_op']:.4g} fJ/op" for e in switching["ops"])
    glitches = "glitches counted" if switching["glitches"] else "zero-delay, no glitches"
    return (f"{switching['note']}; {switching['vectors'] - 1} operations per stream, seed {switching['seed']}, "
            f"{glitches}, {switching['vdd']:g} V, {switching['source']}; {ops or 'no ops counted'}")


class Scores(list):
    """The results of :func:`score_many`, in input order (a list of :class:`ScoreResult`), with
    the batch outputs of ``tosim score``: :meth:`to_json`, :meth:`to_csv`, :meth:`to_dataframe`."""

    def __init__(self, results=(), per_layer=False, skipped=()):
        super().__init__(results)
        self.per_layer = per_layer
        #: ``(path, reason)`` of the files in the folders given that were left out as no model.
        self.skipped = list(skipped)

    def __repr__(self) -> str:
        """The table ``tosim score`` prints (one line per model, and per layer with ``per_layer``)."""
        from ._render import format_score_table
        if not self:
            return "Scores([])"
        return format_score_table(self, any(r.energy_j is not None for r in self),
                                  any(r.levels for r in self))

    @property
    def failed(self) -> list:
        """The results whose model could not be read or counted."""
        return [r for r in self if r.error is not None]

    def _extra(self):
        fields = self[0].extra_fields if self else []
        if "mac" not in fields and any("mac" in (r.counts or {}) for r in self):
            fields = ["mac"] + fields     # the first model failed; the others were counted with MACs
        return fields

    def to_dicts(self) -> list:
        return [r.to_dict() for r in self]

    def to_json(self, path: Optional[str] = None) -> str:
        """``tosim score --json``: a JSON list of :meth:`ScoreResult.to_dict`; written atomically
        to ``path`` when given. Returns the text."""
        from ._io import json_text
        text = json_text(self.to_dicts()) + "\n"
        if path is not None:
            from ._io import write_atomic
            write_atomic(path, text)
        return text

    def _fields(self):
        return ROW_FIELDS[:2] + (LAYER_FIELDS if self.per_layer else []) + ROW_FIELDS[2:] + self._extra()

    def _flat_rows(self):
        """CSV rows as Python values (``None`` for empty): a model row, then its layers."""
        extra = self._extra()
        for r in self:
            row = r.to_dict()
            flat = {k: row.get(k) for k in ROW_FIELDS + extra}
            flat["incomplete"] = ", ".join(f"{t} x{n}" for t, n in sorted((row["incomplete"] or {}).items())) or None
            flat["assumptions"] = "; ".join(row["assumptions"] or ()) or None
            yield flat
            for layer in row.get("layers") or []:
                line = {"name": r.name, "source": r.source, "layer": layer["name"], "layer_type": layer["type"],
                        "format": layer["format"], "profile": r.profile, "phase": r.phase, "batch": r.batch,
                        "params": layer["params"], "macs": layer["macs"], "flops": layer["flops"]}
                line.update(layer["counts"])
                line.update({f"tos_{s}": v for s, v in layer["tos"].items() if s != "total"})
                line["tos"] = layer["tos"]["total"]
                if "energy_j" in layer:
                    line["energy_j"] = layer["energy_j"]
                line.update({k: row.get(k) if k in RUN_FIELDS else layer.get(k) for k in extra if k != "mac"})
                yield line

    def to_csv(self, path: Optional[str] = None) -> str:
        """The CSV of ``tosim score --out F.csv`` (floats written exactly, by ``repr``);
        written atomically to ``path`` when given. Returns the text."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self._fields(), lineterminator="\n")
        writer.writeheader()
        for flat in self._flat_rows():
            writer.writerow({k: "" if v is None else repr(v) if isinstance(v, float) else v for k, v in flat.items()})
        text = buffer.getvalue()
        if path is not None:
            from ._io import write_atomic
            write_atomic(path, text)
        return text

    def to_dataframe(self) -> pandas.DataFrame:
        """The rows of :meth:`to_csv` as a pandas DataFrame, with Python values (needs pandas)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("to_dataframe() needs pandas (pip install pandas); to_csv() and to_dict() "
                              "need nothing") from None
        return pandas.DataFrame(list(self._flat_rows()), columns=self._fields())


# --- the calls --------------------------------------------------------------------------------

def _load_profile(profile):
    if isinstance(profile, hardware_profiles.Profile):
        return profile
    return hardware_profiles.load(os.fspath(profile))


def _is_torch_module(model):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _source(model, example_inputs=None):
    """What the pipeline reads: a path or ``zoo:NAME`` as a string, a spec mapping or a ModelIR;
    a torch module (alone with ``example_inputs``, or as a ``(module, example_inputs)`` pair) is
    traced here. Raises :class:`opcount.ModelError` for a module that cannot be traced."""
    if isinstance(model, tuple) and len(model) == 2 and _is_torch_module(model[0]):
        model, example_inputs = model
    if _is_torch_module(model):
        if example_inputs is None:
            raise ScoreError(f"a torch module ({type(model).__name__}) needs example inputs: "
                             "score(module, example_inputs=x) or score((module, x))")
        traced = opcount.load_torch(model, example_inputs)
        from ._model_streams import remember_torch
        remember_torch(traced, model, example_inputs)     # its weights, for power.distribution: model
        return traced
    if isinstance(model, (str, os.PathLike, dict, opcount.ModelIR)):
        return os.fspath(model) if isinstance(model, os.PathLike) else model
    raise ScoreError(f"cannot score a {type(model).__name__}: give a ModelIR, a model file path, 'zoo:NAME', "
                     "a spec mapping, or a torch module with example inputs")


def _check(phase, batch, load):
    if phase not in opcount.PHASES:
        raise ScoreError(f"unknown phase {phase!r}; known: {', '.join(opcount.PHASES)}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ScoreError(f"batch must be a positive integer, not {batch!r}")
    for key, names in (("loss", opcount.LOSSES), ("optimizer", opcount.OPTIMIZERS)):
        value = load.get(key)
        if value is not None and value not in names:
            raise ScoreError(f"unknown {key} {value!r}; known: {', '.join(names)}")
    if load.get("format") is not None and load["format"] not in opcount.FORMATS:
        raise ScoreError(f"format must be one of {', '.join(opcount.FORMATS)}, not {load['format']!r}")
    if load.get("quantize") is not None and load["quantize"] not in ("int8", "int4"):
        raise ScoreError(f"quantize must be int8 or int4, not {load['quantize']!r}")
    recompute, master = load.get("recompute"), load.get("master_format")
    if recompute is not None and recompute not in ("full", "selective"):
        raise ScoreError(f"recompute must be 'full' or 'selective', not {recompute!r}")
    if recompute is not None and phase != "training":
        raise ScoreError(f"recompute applies to the training phase, not {phase!r}")
    if master is not None and master not in opcount.FORMATS:
        raise ScoreError(f"master format must be one of {', '.join(opcount.FORMATS)}, not {master!r}")
    if master is not None and phase != "training":
        raise ScoreError(f"a master format (the optimizer's weights) applies to the training phase, not {phase!r}")


def _check_run_options(grid_intensity, jobs):
    """``grid_intensity`` (gCO2e/kWh) within a profile's own bound, ``jobs`` a positive count."""
    from hardware_profiles.loader import MAX_GRID_INTENSITY
    if grid_intensity is not None and not (
            isinstance(grid_intensity, (int, float)) and not isinstance(grid_intensity, bool)
            and math.isfinite(grid_intensity) and 0 <= grid_intensity <= MAX_GRID_INTENSITY):
        raise ScoreError(f"grid_intensity must be a number of gCO2e per kWh in 0..{MAX_GRID_INTENSITY:g}, "
                         f"not {grid_intensity!r}")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ScoreError(f"jobs must be a positive integer (worker processes) or None (automatic), not {jobs!r}")


def _check_listed(profile, load):
    """A format asked for (``format``, ``master_format``) must be one the profile lists: its cost
    table has units for those only."""
    for key, label in (("format", "format"), ("master_format", "master format")):
        fmt = load.get(key)
        if fmt is not None and fmt not in profile.formats:
            raise ScoreError(f"{label} {fmt} is not among the formats of profile {profile.name!r} "
                             f"({', '.join(profile.formats)}); add it to the profile's formats or choose a listed one")
    quantize = load.get("quantize")
    for fmt in (quantize, "int32") if quantize is not None else ():
        if fmt not in profile.formats:
            raise ScoreError(f"quantize {quantize} (products in {quantize}, accumulated in int32) needs {fmt}, which "
                             f"profile {profile.name!r} does not list ({', '.join(profile.formats)}); add it to the "
                             f"profile's formats, or use the built-in profile cmos-quant (cmos-generic with int8, int4 "
                             f"and int32)")


def _densities(densities):
    if densities is None or isinstance(densities, opcount.Densities):
        return densities
    if isinstance(densities, Mapping):
        return opcount.Densities(**densities)
    raise ScoreError(f"densities must be a mapping (weights, inputs) or opcount.Densities, "
                     f"not {type(densities).__name__}")


ModelLike = Union[str, "os.PathLike[str]", dict, "opcount.ModelIR", Any]
#: A built-in profile name, a profile YAML path or a loaded profile.
ProfileLike = Union[str, "os.PathLike[str]", "hardware_profiles.Profile"]
#: A whole run: ``{"samples": N | "passes": P, "epochs": E}`` or a :class:`Workload`.
WorkloadLike = Union[Mapping[str, int], "Workload", None]
#: Densities of a memory profile: ``{"weights": d, "inputs": d}`` or an :class:`opcount.Densities`.
DensitiesLike = Union[Mapping[str, Any], "opcount.Densities", None]


def score_many(models: Iterable[ModelLike], profile: ProfileLike = DEFAULT_PROFILE, *, phase: str = "inference",
               batch: int = 1, device: Union[str, Mapping, None] = None, workload: WorkloadLike = None,
               per_layer: bool = False, grid_intensity: Optional[float] = None, seq: Optional[int] = None,
               densities: DensitiesLike = None, loss: Optional[str] = None, optimizer: Optional[str] = None,
               format: Optional[str] = None, jobs: Optional[int] = None, progress: Optional[Callable[[int, int, Any], None]] = None,
               synth_progress: Any = None, recompute: Optional[str] = None,
               master_format: Optional[str] = None, batch_axis: Optional[int] = None,
               dims: Optional[Mapping[str, int]] = None, quantize: Optional[str] = None) -> Scores:
    """Score many models at once; a model that cannot be read or counted becomes a result with
    its ``error`` and the others go on. Returns :class:`Scores` (a list, in input order).

    ``models``: items as :func:`score` takes them; strings are expanded first (``zoo:all`` to
    every zoo name, a folder to its model files, recursively; files in a folder that are plainly
    no model, such as profiles and earlier outputs, are listed in ``skipped``); a torch module comes as a
    ``(module, example_inputs)`` pair. ``jobs``: worker processes that read and count (``None``:
    automatic, 1: this process). ``progress(done, total, source)`` is called as models are
    counted (``total`` covers every step of a whole run). The other arguments are :func:`score`'s.
    Raises :class:`ScoreError` for a bad argument (phase, batch, device, workload) and
    :class:`hardware_profiles.ProfileError` for a bad profile, before any counting.
    """
    return _score_many(models, profile, phase=phase, batch=batch, device=device, workload=workload,
                       per_layer=per_layer, grid_intensity=grid_intensity, densities=densities, jobs=jobs,
                       progress=progress, synth_progress=synth_progress,
                       load={"seq": seq, "format": format, "loss": loss, "optimizer": optimizer,
                             "recompute": recompute, "master_format": master_format, "batch_axis": batch_axis,
                                "quantize": quantize,
                             "dims": dict(dims) if dims else None})


def _score_many(models, profile, *, phase, batch, device, workload, per_layer, grid_intensity, densities, jobs,
                progress, synth_progress, load, keep=False):
    """:func:`score_many` with ``load``, the options that say how to read each model
    (:func:`tosim._pipeline.read_model`: seq, format, loss, optimizer) and count it (recompute,
    master_format: :func:`opcount.count_model`)."""
    _check(phase, batch, load)
    _check_run_options(grid_intensity, jobs)
    workload = Workload.of(workload)
    densities = _densities(densities)
    profile = _load_profile(profile)
    _check_listed(profile, load)
    device = _energy.resolve_device(profile, device) if device is not None else None
    models = [models] if isinstance(models, (str, os.PathLike, dict)) else list(models)
    skipped = []
    items = _pipeline.expand_inputs(models, skipped) if models else []
    sources = []
    for item in items:
        if isinstance(item, _Single):
            sources.append(item.source)
            continue
        try:
            sources.append(_source(item))
        except opcount.ModelError as exc:
            sources.append(_Failed(_pipeline.name_of(item[0] if isinstance(item, tuple) else item), str(exc)))
    from ._energy import is_energy_model
    rows = _score_rows(sources, profile, phase, batch, per_layer, workload, jobs, progress, synth_progress,
                       densities, keep, load, layer_features=is_energy_model(device))
    _energy.apply_energy(rows, profile, device, grid_intensity)
    levels = tuple(lv["name"] for lv in profile.memory["levels"]) if profile.memory is not None else ()
    return Scores([_result(row, profile.name, phase, batch, per_layer, levels, workload) for row in rows],
                  per_layer=per_layer, skipped=skipped)


def score(model: ModelLike, profile: ProfileLike = DEFAULT_PROFILE, *, phase: str = "inference", batch: int = 1,
          device: Union[str, Mapping, None] = None, workload: WorkloadLike = None, per_layer: bool = False,
          grid_intensity: Optional[float] = None, seq: Optional[int] = None, densities: DensitiesLike = None,
          loss: Optional[str] = None, optimizer: Optional[str] = None, format: Optional[str] = None,
          example_inputs: Any = None, synth_progress: Any = None, recompute: Optional[str] = None,
          master_format: Optional[str] = None, batch_axis: Optional[int] = None,
          dims: Optional[Mapping[str, int]] = None, quantize: Optional[str] = None) -> ScoreResult:
    """Score one model: counts, TOs per stage and in total, MACs, FLOPs, params, and with a
    ``device`` joules and gCO2e. Returns a :class:`ScoreResult`.

    ``model``: a :class:`opcount.ModelIR`, a model file path (YAML/JSON spec, Hugging Face
    ``config.json``, ONNX), ``"zoo:NAME"``, a spec mapping, or a ``torch.nn.Module`` with
    ``example_inputs`` (a tensor whose first dimension is the batch). ``profile``: a built-in
    name, a YAML path or a loaded :class:`hardware_profiles.Profile`. ``phase``: inference
    (forward), validation (+ loss) or training (+ backward + update). ``batch``: samples per step.
    ``device``: a device name of the profile, or a mapping ``{"feature": "tos", "coefficients":
    [c0, c1, ...]}``. ``workload``: a whole run, ``{"samples": N | "passes": P, "epochs": E}``
    or a :class:`Workload`. ``per_layer``: fill ``layers``. ``grid_intensity``: gCO2e per kWh
    (default the profile's). ``seq``: sequence length of a zoo transformer or Hugging Face config.
    ``densities``: ``{"weights": d, "inputs": d}`` for a profile with a memory section.
    ``loss``, ``optimizer``: replace the model's own (validation and training phases).
    ``format``: count every layer in this number format (fp16, bf16, fp32, fp64) instead of the
    model's own (a spec's ``format``, a Hugging Face config's ``torch_dtype``); a model that names
    none (the zoo, ONNX, torch modules, specs without ``format``) is counted in the profile's
    ``default_format``. Every format counted must be among the profile's ``formats``: a format
    asked for that is not raises :class:`ScoreError`, a model in one is an error (a
    :class:`opcount.ModelError` here, an ``error`` row in :func:`score_many`).
    ``recompute``: activation recomputation in training, ``"full"`` or ``"selective"`` (see
    :func:`opcount.count_model`), counted in the backward stage. ``master_format``: mixed
    precision in training, the optimizer's master weights in this format (fp32) while forward
    and backward run in the layers' format (``format="bf16"``); each such layer's update becomes a
    ``NAME/update`` row priced in the master format.
    ``quantize``: ``"int8"`` or ``"int4"``: the matrix products (conv, linear, matmul) and
    attention projections in that integer format, accumulating in int32 and requantized, the
    other layers in their format (:func:`opcount.with_quantized_products`; the profile must list
    it and int32), the conversions between the two counted in rows of their own
    (``NAME/quantize_input``, ``NAME/dequantize_output``; see :func:`opcount.count_model`).
    ``batch_axis``: the batch axis of an ONNX file's first input, where the file names no
    symbolic batch dimension (default axis 0, listed in the result's assumptions). ``dims``:
    sizes of an ONNX file's other symbolic dimensions (``{"sequence_length": 128}``).
    ``synth_progress``: told about circuits a custom profile must synthesize (see
    :class:`tosim._costs.SynthesisProgress`); silent by default.

    Raises :class:`opcount.ModelError` when the model cannot be read or counted,
    :class:`ScoreError` for a bad argument, :class:`hardware_profiles.ProfileError` for a bad
    profile. An incomplete count does not raise: check ``result.complete``.
    """
    source = _source(model, example_inputs)
    results = _score_many([_Single(source)], profile, phase=phase, batch=batch, device=device, workload=workload,
                          per_layer=per_layer, grid_intensity=grid_intensity, densities=densities, jobs=1,
                          progress=None, synth_progress=synth_progress, keep=True,
                          load={"seq": seq, "format": format, "loss": loss, "optimizer": optimizer,
                                "recompute": recompute, "master_format": master_format, "batch_axis": batch_axis,
                                "quantize": quantize,
                                "dims": dict(dims) if dims else None})
    result = results[0]
    if result.error is not None:
        raise opcount.ModelError(result.error)
    return result


class _Single:
    """One already-resolved source given to :func:`score_many` (not expanded again)."""

    def __init__(self, source):
        self.source = source


class _Failed:
    """A source that failed before counting (a torch module that cannot be traced)."""

    def __init__(self, name, error):
        self.name, self.error = name, error


def _score_rows(sources, profile, phase, batch, per_layer, workload, jobs, progress, synth_progress, densities,
                keep, load, layer_features=False):
    live = [s for s in sources if not isinstance(s, _Failed)]
    steps = workload.steps(batch) if workload is not None else ((batch, 1),)
    total = len(live) * len(steps)
    step_rows = []
    for index, (step_batch, n) in enumerate(steps):
        offset = index * len(live)
        report = None
        if progress is not None:
            def report(done, source, offset=offset):
                progress(offset + done, total, source)
        counted = _pipeline.count_all(live, profile, phase, step_batch, per_layer=per_layer, jobs=jobs,
                                      progress=report, densities=densities, keep=keep, load=load,
                                      layer_features=layer_features)
        _pipeline.price(counted, profile, synth_progress)
        finished = iter(_pipeline.finish_row(r, per_layer) for r in counted)
        rows = [{"name": s.name, "source": None, "error": s.error} if isinstance(s, _Failed) else next(finished)
                for s in sources]
        step_rows.append((rows, n))
    if workload is None:
        return step_rows[0][0]
    return _pipeline.combine_steps(step_rows, workload.epochs)


def _with_mac(counts, row):
    """``counts`` with the row's ``mac`` count when the profile has a MAC unit."""
    if "mac" in row:
        counts["mac"] = row["mac"]
    return counts


def _result(row, profile_name, phase, batch, per_layer, levels, workload):
    common = dict(name=row["name"], source=row["source"], profile=profile_name, phase=phase, batch=batch,
                  per_layer=per_layer, levels=levels, workload=workload, steps=row.get("steps"))
    if row["error"] is not None:
        return ScoreResult(error=row["error"], **common)
    layers = None
    if per_layer:
        layers = [LayerScore(name=layer["name"], type=layer["type"], format=layer["format"], params=layer["params"],
                             macs=layer["macs"], flops=layer["flops"], counts=_with_mac(dict(zip(OPS, layer["counts"])), layer),
                             tos_by_stage=dict(layer["tos"]), tos=layer["tos_total"],
                             energy_compute_j=layer.get("energy_compute_j"),
                             energy_movement_j=layer.get("energy_movement_j"),
                             energy_j=layer.get("energy_j"), energy_terms=layer.get("energy_terms"),
                             time_s=layer.get("time_s"), switching_j=layer.get("switching_j"),
                             accesses={lv: layer[f"accesses_{lv}"] for lv in levels if f"accesses_{lv}" in layer})
                  for layer in row["layers"]]
    return ScoreResult(params=row["params"], macs=row["macs"], flops=row["flops"],
                       counts=_with_mac({op: row[op] for op in OPS}, row), tos_by_stage={s: row[f"tos_{s}"] for s in STAGES},
                       tos=row["tos"], energy_j=row["energy_j"], gco2e=row["gco2e"],
                       energy_extrapolated=row.get("energy_extrapolated"),
                       energy_terms=row.get("energy_terms"), time_s=row.get("time_s"),
                       complete=not row["incomplete_items"], incomplete=row["incomplete_items"],
                       incomplete_types=dict(row["incomplete"] or {}), layers=layers,
                       assumptions=list(row.get("assumptions") or []),
                       energy_compute_j=row.get("energy_compute_j"), energy_movement_j=row.get("energy_movement_j"),
                       accesses={lv: row[f"accesses_{lv}"] for lv in levels if f"accesses_{lv}" in row},
                       movement=row.get("movement"), count_result=row.get("count_result"),
                       switching_j=row.get("switching_j"), switching=row.get("switching"),
                       switching_by_stage={s: row[f"switching_j_{s}"] for s in STAGES} if "switching_j" in row else None,
                       **common)
