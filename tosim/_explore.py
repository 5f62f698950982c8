"""Design-space exploration (``tosim explore``): adder x multiplier (x divider x root) designs x
formats, each combination priced for switching energy, delay and area, and applied to models.

A combination is a variant of a base profile: its ``add``, ``sub`` and ``cmp`` units and the
multiplier's final adder use the adder design, its ``mul`` unit the multiplier design, and, when
the divider and root are axes of the grid (``dividers``, ``roots``), its ``div`` and ``sqrt``
units those designs (the base profile's options of the unit that the design takes, such as the
divider's inner adder or Newton-Raphson's seed bits, are kept); otherwise the divider and root are the base profile's units. For
each combination and format:

* the floating-point units of the combination (the adder and multiplier, and the divider and the
  root when they are axes) are mapped onto the profile's gates and simulated on the profile's
  operand distributions (``power.distribution``; :func:`hwlib.activity.op_energies`, cached on
  disk): switching energy per op (fJ), critical-path delay (ps) and area (um^2) of each;
  ``delay_ps`` is the slowest of these units', ``area_um2`` their sum;
* every model is counted in that format (:func:`opcount.count_model`) and its counts are priced
  by the switching energy per op of the combination's units (all ops the model uses, the
  divider and root of the base profile included when they are not axes), as ``tosim score``
  does with ``power.energy: activity``: dynamic switching joules per model, an estimate;
* a point is on the Pareto front when no other point is at most as large in energy (the models'
  total joules, or without models the energy of one op of each unit of the combination), delay
  and area, and smaller in one of them.

Combinations are independent jobs: ``jobs`` > 1 runs them in worker processes, ``scheduler``
(the address of a Dask scheduler, ``tcp://host:8786``, or a ``distributed.Client``) on a Dask
cluster's workers. A job carries everything it needs (the base profile's resolved data, the
models read into :class:`opcount.ModelIR`), so a remote worker needs tosim installed, not the
caller's files. A combination that fails (a circuit that cannot be built, a model that cannot be
counted in a format) is a row with its ``error``; the others go on.
"""
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Optional

__all__ = ["DesignPoint", "SchedulerError", "explore", "pareto_flags", "variant_profile"]

#: The units a combination may hold, in order: op -> the DesignPoint attribute naming its design.
UNITS = (("add", "adder"), ("mul", "multiplier"), ("div", "divider"), ("sqrt", "root"))


class SchedulerError(Exception):
    """The Dask path cannot run: Dask is not installed, or the scheduler cannot be reached."""


@dataclass
class DesignPoint:
    """One combination: designs, format, per-unit figures, per-model joules, Pareto flag.

    ``divider`` and ``root`` name designs only when they are axes of the grid; the ``div_*`` and
    ``sqrt_*`` figures are then set, otherwise ``None`` (the base profile's units price the
    models' divisions and roots, and count in neither the delay nor the area)."""

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
    divider: Optional[str] = None
    root: Optional[str] = None
    div_fj_per_op: Optional[float] = None
    div_delay_ps: Optional[float] = None
    div_area_um2: Optional[float] = None
    sqrt_fj_per_op: Optional[float] = None
    sqrt_delay_ps: Optional[float] = None
    sqrt_area_um2: Optional[float] = None

    @property
    def units(self):
        """The ops whose units belong to this combination (``add``, ``mul``, and ``div`` and
        ``sqrt`` when they are axes)."""
        return [op for op, attr in UNITS if getattr(self, attr) is not None]

    def _figures(self, kind):
        return [getattr(self, f"{op}_{kind}") for op in self.units]

    @property
    def delay_ps(self):
        """The slowest unit's critical-path delay."""
        return None if self.error else max(self._figures("delay_ps"))

    @property
    def area_um2(self):
        """The units' total area."""
        return None if self.error else sum(self._figures("area_um2"))

    @property
    def mac_fj(self):
        """Switching energy of one multiply and one add (fJ)."""
        return None if self.error else self.add_fj_per_op + self.mul_fj_per_op

    @property
    def units_fj(self):
        """Switching energy of one op of each unit of the combination (fJ; ``mac_fj`` when the
        divider and root are not axes)."""
        return None if self.error else sum(self._figures("fj_per_op"))

    @property
    def energy_j(self):
        """The models' total switching joules (``None`` without models)."""
        return sum(self.models_j.values()) if self.models_j and not self.error else None

    def objective(self):
        energy = self.energy_j if self.models_j else self.units_fj
        return (energy, self.delay_ps, self.area_um2)

    def to_json(self):
        out = {"adder": self.adder, "multiplier": self.multiplier, "divider": self.divider, "root": self.root,
               "format": self.format}
        for op in ("add", "mul", "div", "sqrt"):
            out.update({f"{op}_fj_per_op": getattr(self, f"{op}_fj_per_op"),
                        f"{op}_delay_ps": getattr(self, f"{op}_delay_ps"),
                        f"{op}_area_um2": getattr(self, f"{op}_area_um2")})
        out.update({"mac_fj": self.mac_fj, "units_fj": self.units_fj, "delay_ps": self.delay_ps,
                    "area_um2": self.area_um2, "energy_j": self.energy_j, "models_j": dict(self.models_j),
                    "pareto": self.pareto, "error": self.error})
        return out


def _write_base(data, folder):
    """The base profile's resolved data as a file of its own in ``folder`` (JSON is YAML): a
    job needs neither the caller's files nor its ``extends:`` chain."""
    path = os.path.join(folder, "base.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    return path


def _kept_options(kind, design, unit):
    """The options of the base profile's ``kind`` unit (``div``, ``sqrt``) that ``design`` takes
    (the root's seed bits and multiplier go to Newton-Raphson only)."""
    import inspect

    from hwlib import registry
    taken = inspect.signature(registry.design_class(design, kind=kind)).parameters
    return {key: value for key, value in (unit or {}).items() if key != "design" and key in taken}


def variant_profile(profile, adder, multiplier, folder, divider=None, root=None):
    """The variant of ``profile`` (a loaded profile) with ``adder`` in its add, sub and cmp
    units and the multiplier's final adder, ``multiplier`` as its mul unit, ``divider`` and
    ``root`` (when given) as the designs of its div and sqrt units, and ``power.energy:
    activity``; written as a YAML file in ``folder`` and loaded."""
    import hardware_profiles as hp
    base = _write_base(profile.data, folder)
    parts = [profile.name, adder, multiplier] + [d for d in (divider, root) if d is not None]
    path = os.path.join(folder, "--".join(parts) + ".yaml")
    units = profile.units
    mul = dict(units.get("mul") or {}, design=multiplier, final_adder=adder)
    changed = {"add": {"design": adder}, "sub": {"design": adder}, "cmp": {"design": adder}, "mul": mul}
    if divider is not None:
        changed["div"] = dict(_kept_options("div", divider, units.get("div")), design=divider)
    if root is not None:
        changed["sqrt"] = dict(_kept_options("sqrt", root, units.get("sqrt")), design=root)
    data = {"extends": base, "name": "/".join(parts), "units": changed, "power": {"energy": "activity"}}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh)                   # JSON is YAML
    return hp.load(path)


def _model_joules(model, variant, fmt, phase, batch):
    from . import _pipeline
    row = _pipeline.count_source(model, variant, phase, batch, False, load={"format": fmt})
    if row["error"] is not None:
        raise ValueError(row["error"])
    _pipeline.price_switching([row], variant)
    return row["name"], float(sum(row["stage_switch_j"]))


def _point(job):
    """One combination (a worker's job): ``(base profile data, adder, multiplier, divider, root,
    format, models, phase, batch)`` -> :class:`DesignPoint`; ``models`` are
    :class:`opcount.ModelIR`, ``divider`` and ``root`` ``None`` when they are not axes."""
    base, adder, multiplier, divider, root, fmt, models, phase, batch = job
    import hardware_profiles as hp
    from hwlib.activity import op_energies
    point = DesignPoint(adder, multiplier, fmt, divider=divider, root=root)
    try:
        with tempfile.TemporaryDirectory(prefix="tosim-explore-") as folder:
            variant = variant_profile(hp.load(_write_base(base, folder)), adder, multiplier, folder,
                                      divider=divider, root=root)
            ops = point.units
            units = op_energies(variant, [(op, fmt) for op in ops])
            for op in ops:
                unit = units[(op, fmt)]
                setattr(point, f"{op}_fj_per_op", unit.energy_fj_per_op)
                setattr(point, f"{op}_delay_ps", unit.delay_ps)
                setattr(point, f"{op}_area_um2", unit.area_um2)
            for model in models:
                name, joules = _model_joules(model, variant, fmt, phase, batch)
                point.models_j[name] = joules
    except Exception as exc:   # noqa: BLE001 -- one combination never ends the exploration: its row says why
        _fail(point, exc)
    return point


def _fail(point, exc):
    point.error = f"{type(exc).__name__}: {' '.join(str(exc).split())}" \
        if not isinstance(exc, ValueError) else " ".join(str(exc).split())
    point.models_j = {}
    for op in ("add", "mul", "div", "sqrt"):
        for kind in ("fj_per_op", "delay_ps", "area_um2"):
            setattr(point, f"{op}_{kind}", None)


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


def _dask_client(scheduler, timeout):
    """``(client, close)``: a ``distributed.Client`` of ``scheduler`` (an address, or a client
    given by the caller, which is left open)."""
    try:
        import distributed
    except ImportError:
        raise SchedulerError(f"{scheduler}: Dask's distributed scheduler is not installed "
                             "(pip install 'tosim[dask]', or dask[distributed])") from None
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    try:
        return distributed.Client(scheduler, timeout=timeout), True
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerError(f"{scheduler}: cannot connect to the Dask scheduler: "
                             f"{' '.join(str(exc).split()) or type(exc).__name__}") from None


def _run_dask(jobs_list, scheduler, progress, timeout):
    """Every job on the workers of a Dask cluster; the points in job order."""
    client, close = _dask_client(scheduler, timeout)
    try:
        from distributed import as_completed
        futures = client.map(_point, jobs_list, pure=False)
        where = {future.key: i for i, future in enumerate(futures)}
        points = [None] * len(jobs_list)
        done = 0
        for future in as_completed(futures):
            i = where[future.key]
            try:
                point = future.result()
            except Exception as exc:   # noqa: BLE001 -- a worker lost with its job: that row says why
                job = jobs_list[i]
                point = DesignPoint(job[1], job[2], job[5], divider=job[3], root=job[4])
                _fail(point, exc)
            points[i] = point
            done += 1
            if progress is not None:
                progress(done, len(jobs_list), point)
        return points
    finally:
        if close:
            client.close()


def explore(profile, adders, multipliers, formats, models=(), *, dividers=None, roots=None, phase="inference",
            batch=1, jobs=1, scheduler=None, timeout=30, progress=None):
    """Every ``adder`` x ``multiplier`` (x ``divider`` x ``root``) x ``format`` combination of
    ``profile`` (a built-in name, a YAML path or a loaded profile), applied to ``models``
    (sources :func:`opcount.load_model` reads, or ModelIRs); a list of :class:`DesignPoint`
    with the Pareto flags set, in grid order (format, adder, multiplier, divider, root).

    ``dividers`` and ``roots``: designs of the div and sqrt units as axes of the grid (``None``:
    the base profile's units, which count in neither the delay nor the area). ``jobs`` > 1:
    combinations in that many local processes; ``scheduler``: a Dask scheduler's address
    (``tcp://host:8786``) or a ``distributed.Client``, whose workers run the combinations
    (``timeout``: seconds to connect). ``progress(done, total, point)`` is called as
    combinations finish. Raises :class:`opcount.ModelError` for a model that cannot be read
    (before any combination runs), :class:`SchedulerError` when the Dask path cannot run and
    :class:`tosim.ScoreError` for a profile the grid cannot vary (a MAC unit; divider or root
    axes with a shared ``units.divsqrt``)."""
    import hardware_profiles as hp
    import opcount
    profile = hp.load(profile)
    from ._costs import refuse_mac_unit
    refuse_mac_unit(profile, "tosim explore")
    from ._pipeline import model_operands_named
    if model_operands_named(profile.power):
        from ._errors import ScoreError
        raise ScoreError(f"profile {profile.name!r} draws mul/add operands from the scored model (power.distribution: "
                         "model), which tosim explore cannot (it prices units without a model); save a model's "
                         "operands with tosim activity --from-model MODEL --save-streams F.npz and name streams:F.npz")
    if (dividers or roots) and "divsqrt" in profile.units:
        from ._errors import ScoreError
        raise ScoreError(f"profile {profile.name!r} prices div and sqrt with its shared unit (units.divsqrt): "
                         "divider and root axes choose units.div and units.sqrt, which it does not use")
    # a model that cannot be read is the caller's error, before any job; the jobs carry the
    # models read, so that a worker (a process, a remote machine) needs none of the files
    read = tuple(opcount.load_model(source) for source in models)
    jobs_list = [(profile.data, a, m, d, r, f, read, phase, batch)
                 for f in formats for a in adders for m in multipliers
                 for d in (list(dividers) if dividers else [None]) for r in (list(roots) if roots else [None])]
    if scheduler is not None:
        points = _run_dask(jobs_list, scheduler, progress, timeout)
    elif jobs > 1 and len(jobs_list) > 1:
        import concurrent.futures
        import multiprocessing
        points = []
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            for point in pool.map(_point, jobs_list):
                points.append(point)
                if progress is not None:
                    progress(len(points), len(jobs_list), point)
    else:
        points = []
        for job in jobs_list:
            points.append(_point(job))
            if progress is not None:
                progress(len(points), len(jobs_list), points[-1])
    return pareto_flags(points)
