"""Design-space exploration (``tosim explore``): adder x multiplier designs x formats, each
combination priced for switching energy, delay and area, and applied to models.

A combination is a variant of a base profile: its ``add``, ``sub`` and ``cmp`` units and the
multiplier's final adder use the adder design, its ``mul`` unit the multiplier design; the
divider and root keep the base profile's units. For each combination and format:

* the floating-point adder and multiplier are mapped onto the profile's gates and simulated on
  the profile's operand distributions (``power.distribution``; :func:`hwlib.activity.op_energies`,
  cached on disk): switching energy per op (fJ), critical-path delay (ps) and area (um^2) of
  each; ``delay_ps`` is the slower unit's, ``area_um2`` the sum of both;
* every model is counted in that format (:func:`opcount.count_model`) and its counts are priced
  by the switching energy per op of the combination's units (all ops the model uses, the
  divider and root of the base profile included), as ``tosim score`` does with
  ``power.energy: activity``: dynamic switching joules per model, an estimate;
* a point is on the Pareto front when no other point is at most as large in energy (the models'
  total joules, or without models the energy of one multiply and one add), delay and area, and
  smaller in one of them.

Combinations are independent jobs: ``jobs`` > 1 runs them in worker processes. A combination
that fails (a model that cannot be read, a circuit that cannot be built) is a row with its
``error``; the others go on.
"""
import os
import tempfile
from dataclasses import dataclass, field
from typing import Optional

__all__ = ["DesignPoint", "explore", "pareto_flags", "variant_profile"]


@dataclass
class DesignPoint:
    """One combination: designs, format, per-unit figures, per-model joules, Pareto flag."""

    adder: str
    multiplier: str
    format: str
    add_fj_per_op: Optional[float] = None
    mul_fj_per_op: Optional[float] = None
    add_delay_ps: Optional[float] = None
    mul_delay_ps: Optional[float] = None
    add_area_um2: Optional[float] = None
    mul_area_um2: Optional[float] = None
    models_j: dict = field(default_factory=dict)
    pareto: bool = False
    error: Optional[str] = None

    @property
    def delay_ps(self):
        return None if self.error else max(self.add_delay_ps, self.mul_delay_ps)

    @property
    def area_um2(self):
        return None if self.error else self.add_area_um2 + self.mul_area_um2

    @property
    def mac_fj(self):
        """Switching energy of one multiply and one add (fJ)."""
        return None if self.error else self.add_fj_per_op + self.mul_fj_per_op

    @property
    def energy_j(self):
        """The models' total switching joules (``None`` without models)."""
        return sum(self.models_j.values()) if self.models_j and not self.error else None

    def objective(self):
        energy = self.energy_j if self.models_j else self.mac_fj
        return (energy, self.delay_ps, self.area_um2)

    def to_json(self):
        return {"adder": self.adder, "multiplier": self.multiplier, "format": self.format,
                "add_fj_per_op": self.add_fj_per_op, "mul_fj_per_op": self.mul_fj_per_op,
                "mac_fj": self.mac_fj, "add_delay_ps": self.add_delay_ps, "mul_delay_ps": self.mul_delay_ps,
                "delay_ps": self.delay_ps, "add_area_um2": self.add_area_um2, "mul_area_um2": self.mul_area_um2,
                "area_um2": self.area_um2, "energy_j": self.energy_j, "models_j": dict(self.models_j),
                "pareto": self.pareto, "error": self.error}


def _base_reference(profile):
    if profile.source.startswith("builtin:"):
        return profile.source[len("builtin:"):]
    return os.path.abspath(profile.source)


def variant_profile(profile, adder, multiplier, folder):
    """The variant of ``profile`` (a loaded profile) with ``adder`` in its add, sub and cmp
    units and the multiplier's final adder, ``multiplier`` as its mul unit and
    ``power.energy: activity``; written as a YAML file in ``folder`` and loaded."""
    import json

    import hardware_profiles as hp
    path = os.path.join(folder, f"{profile.name}--{adder}--{multiplier}.yaml")
    mul = dict(profile.units.get("mul") or {}, design=multiplier, final_adder=adder)
    data = {"extends": _base_reference(profile), "name": f"{profile.name}/{adder}/{multiplier}",
            "units": {"add": {"design": adder}, "sub": {"design": adder}, "cmp": {"design": adder},
                      "mul": mul},
            "power": {"energy": "activity"}}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh)                   # JSON is YAML
    return hp.load(path)


def _model_joules(source, variant, fmt, phase, batch):
    from . import _pipeline
    row = _pipeline.count_source(source, variant, phase, batch, False, load={"format": fmt})
    if row["error"] is not None:
        raise ValueError(row["error"])
    _pipeline.price_switching([row], variant)
    return row["name"], float(sum(row["stage_switch_j"]))


def _point(job):
    """One combination (a worker's job): ``(base source, adder, multiplier, format, models,
    phase, batch)`` -> :class:`DesignPoint`."""
    base, adder, multiplier, fmt, models, phase, batch = job
    import hardware_profiles as hp
    from hwlib.activity import op_energies
    point = DesignPoint(adder, multiplier, fmt)
    try:
        with tempfile.TemporaryDirectory(prefix="tosim-explore-") as folder:
            variant = variant_profile(hp.load(base), adder, multiplier, folder)
            units = op_energies(variant, [("add", fmt), ("mul", fmt)])
            add, mul = units[("add", fmt)], units[("mul", fmt)]
            point.add_fj_per_op, point.mul_fj_per_op = add.energy_fj_per_op, mul.energy_fj_per_op
            point.add_delay_ps, point.mul_delay_ps = add.delay_ps, mul.delay_ps
            point.add_area_um2, point.mul_area_um2 = add.area_um2, mul.area_um2
            for source in models:
                name, joules = _model_joules(source, variant, fmt, phase, batch)
                point.models_j[name] = joules
    except Exception as exc:   # noqa: BLE001 -- one combination never ends the exploration: its row says why
        point.error = f"{type(exc).__name__}: {' '.join(str(exc).split())}" \
            if not isinstance(exc, ValueError) else " ".join(str(exc).split())
        point.models_j = {}
    return point


def pareto_flags(points):
    """Mark each good point that no other good point dominates (at most as large in every
    objective and smaller in one); returns ``points``."""
    good = [p for p in points if p.error is None]
    for p in points:
        p.pareto = False
    for p in good:
        a = p.objective()
        p.pareto = not any(all(y <= x for x, y in zip(a, q.objective())) and q.objective() != a
                           for q in good if q is not p)
    return points


def explore(profile, adders, multipliers, formats, models=(), *, phase="inference", batch=1, jobs=1,
            progress=None):
    """Every ``adder`` x ``multiplier`` x ``format`` combination of ``profile`` (a built-in name,
    a YAML path or a loaded profile), applied to ``models`` (sources :func:`opcount.load_model`
    reads); a list of :class:`DesignPoint` with the Pareto flags set. ``progress(done, total,
    point)`` is called as combinations finish. Raises :class:`opcount.ModelError` for a model
    that cannot be read (before any combination runs)."""
    import hardware_profiles as hp
    import opcount
    profile = hp.load(profile)
    from ._costs import refuse_mac_unit
    refuse_mac_unit(profile, "tosim explore")
    base = _base_reference(profile)
    for source in models:            # a model that cannot be read is the caller's error, before any job
        opcount.load_model(source)
    jobs_list = [(base, a, m, f, tuple(models), phase, batch) for f in formats for a in adders for m in multipliers]
    points = []
    if jobs > 1 and len(jobs_list) > 1:
        import concurrent.futures
        import multiprocessing
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            for point in pool.map(_point, jobs_list):
                points.append(point)
                if progress is not None:
                    progress(len(points), len(jobs_list), point)
    else:
        for job in jobs_list:
            points.append(_point(job))
            if progress is not None:
                progress(len(points), len(jobs_list), points[-1])
    return pareto_flags(points)
