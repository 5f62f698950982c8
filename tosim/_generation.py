"""Scoring a generation request: TOs, joules and KV-cache bytes of the prefill, of every decode
step and of the whole request (:func:`generate`; ``tosim score --phase generate``).

The counts come from :func:`opcount.generation.count_generation` (exact, the decode steps in
closed form). TOs are the counts times the profile's cost table per layer format, like every
score; a decode step's TOs are affine in the keys its query sees, so the curve over the
generated positions is the first step's TOs plus the per-key TOs times the extra keys.

Energy with a device: the device's polynomial of the whole request's feature (TOs, FLOPs or
MACs), as for a whole training run (a fitted polynomial is not additive over steps). The
per-token curve gives each token the increase of that polynomial over the request so far,
E(X_k) - E(X_(k-1)) with X_k the feature of tokens 1..k, the first token (the prefill) taking
E(X_1); the curve sums to the request's energy, and for a linear device each later token costs
c1 times its own feature. ``energy_per_token_j`` divides the request by its batch x new tokens.
With a memory profile (``memory:`` section), compute and data-movement joules (KV cache reads
and writes included) are additive and given per step as well.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import os
from typing import Any, Mapping, Optional

import numpy as np

import hardware_profiles
import opcount
from opcount import BASIC_OPS as OPS, STAGES
from opcount.generation import count_generation

from . import _energy
from ._errors import ScoreError

__all__ = ["generate", "GenerationResult", "CURVE_FIELDS", "GENERATION_FIELDS"]

#: Columns of the per-token curve.
CURVE_FIELDS = ["token", "step", "cache", "keys", "macs", "tos", "kv_read_bytes", "kv_write_bytes", "energy_j",
                "energy_compute_j", "energy_movement_j"]
#: Fields of a generation row (``to_dict``), in order.
GENERATION_FIELDS = ["name", "source", "profile", "phase", "batch", "prompt", "new_tokens", "format", "params",
                     "active_params", "macs", "flops", *OPS, "tos", "tos_prefill", "tos_decode", "tos_per_token",
                     "energy_j", "energy_per_token_j", "gco2e", "kv_cache_bytes", "kv_read_bytes", "kv_write_bytes",
                     "energy_compute_j", "energy_movement_j", "method", "incomplete"]


@dataclass
class GenerationResult:
    """One generation request of ``batch`` sequences: ``prompt`` tokens, ``new_tokens`` generated.

    Totals of the request: ``macs``, ``flops``, ``counts`` (exact, per basic op), ``tos``
    (``tos_prefill`` + ``tos_decode``), ``energy_j`` and ``gco2e`` with a device; per generated
    token (batch x new_tokens of them) ``tos_per_token`` and ``energy_per_token_j``. KV cache:
    ``kv_cache_bytes`` held at the end, ``kv_read_bytes`` and ``kv_write_bytes`` moved in all.
    ``curve``: one dict per generated token (:data:`CURVE_FIELDS`): token 1 is the prefill
    (``step`` "prefill"), token k >= 2 the decode step at cache length ``cache`` = prompt + k - 2
    whose query sees ``keys`` keys. ``counts_detail`` is the :class:`opcount.generation.GenerationCount`.
    """
    name: str
    source: str
    profile: str
    batch: int
    prompt: int
    new_tokens: int
    format: str
    params: int
    active_params: int
    macs: int
    flops: int
    counts: dict
    tos: float
    tos_prefill: float
    tos_decode: float
    kv_cache_bytes: float
    kv_read_bytes: float
    kv_write_bytes: float
    curve: list
    method: str
    complete: bool = True
    incomplete: list = field(default_factory=list)
    energy_j: Optional[float] = None
    gco2e: Optional[float] = None
    energy_compute_j: Optional[float] = None
    energy_movement_j: Optional[float] = None
    counts_detail: Any = field(default=None, repr=False, compare=False)
    phase: str = "generate"

    @property
    def tokens(self) -> int:
        """Generated tokens of the request: batch x new_tokens."""
        return self.batch * self.new_tokens

    @property
    def tos_per_token(self) -> float:
        return self.tos / self.tokens

    @property
    def energy_per_token_j(self) -> Optional[float]:
        return None if self.energy_j is None else self.energy_j / self.tokens

    def to_dict(self) -> dict:
        """The row of ``tosim score --phase generate --json`` (:data:`GENERATION_FIELDS`), with the
        per-token ``curve``."""
        out = {"name": self.name, "source": self.source, "profile": self.profile, "phase": self.phase,
               "batch": self.batch, "prompt": self.prompt, "new_tokens": self.new_tokens, "format": self.format,
               "params": self.params, "active_params": self.active_params, "macs": self.macs, "flops": self.flops}
        out.update(self.counts)
        out.update(tos=self.tos, tos_prefill=self.tos_prefill, tos_decode=self.tos_decode,
                   tos_per_token=self.tos_per_token, energy_j=self.energy_j,
                   energy_per_token_j=self.energy_per_token_j, gco2e=self.gco2e,
                   kv_cache_bytes=self.kv_cache_bytes, kv_read_bytes=self.kv_read_bytes,
                   kv_write_bytes=self.kv_write_bytes, energy_compute_j=self.energy_compute_j,
                   energy_movement_j=self.energy_movement_j, method=self.method,
                   incomplete=[dict(item) for item in self.incomplete])
        out["curve"] = [dict(point) for point in self.curve]
        return out


def _tos(counts, costs):
    """TOs of per-layer counts (object array, layers x stages x ops) under per-layer costs
    (layers x ops)."""
    return float(np.einsum("lso,lo->", counts.astype(np.float64), costs))


def generate(model: str | os.PathLike[str], profile: Any = hardware_profiles.DEFAULT_PROFILE, *, prompt: int,
             new_tokens: int, batch: int = 1, device: str | Mapping[str, Any] | None = None, format: str | None = None,
             grid_intensity: float | None = None, densities: Any = None,
             synth_progress: Any = None) -> GenerationResult:
    """Score a generation request: ``batch`` sequences of ``prompt`` tokens each generating
    ``new_tokens`` tokens (one prefill and new_tokens - 1 decode steps with a KV cache).

    ``model``: ``zoo:NAME`` of a causal language model (GPT-2/3, LLaMA-2, Mistral, Mixtral) or a
    Hugging Face ``config.json`` of one. ``format`` overrides the model's number format (a
    config's ``torch_dtype``). ``device``, ``grid_intensity``, ``densities`` and ``profile`` as
    in :func:`tosim.score`. Raises :class:`opcount.ModelError` for a model that cannot be served
    this way and :class:`ScoreError` for a bad argument.
    """
    from ._costs import costs_array
    for key, value in (("prompt", prompt), ("new_tokens", new_tokens), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ScoreError(f"{key} must be a positive integer, not {value!r}")
    if format is not None and format not in opcount.FORMATS:
        raise ScoreError(f"format must be one of {', '.join(opcount.FORMATS)}, not {format!r}")
    if not isinstance(profile, hardware_profiles.Profile):
        profile = hardware_profiles.load(str(profile))
    if format is not None and format not in profile.formats:
        raise ScoreError(f"format {format} is not among the formats of profile {profile.name!r} "
                         f"({', '.join(profile.formats)}); add it to the profile's formats or choose a listed one")
    device = _energy.resolve_device(profile, device) if device is not None else None
    if device is not None and "energy_model" in device:
        raise _energy.DeviceError("generation scoring prices polynomial devices only; this device holds an energy "
                                  "model (score the step's model with tosim score / tosim.score)")
    memory = opcount.MemoryHierarchy.from_profile(profile) if profile.memory is not None else None
    if densities is not None and not isinstance(densities, opcount.Densities):
        densities = opcount.Densities(**densities)
    source = str(model)
    from ._costs import refuse_mac_unit
    refuse_mac_unit(profile, "the serving phases (prefill, decode, generate)")
    g = count_generation(source, profile, prompt=prompt, new_tokens=new_tokens, batch=batch, format=format,
                         memory=memory, densities=densities)
    formats = sorted(set(g.formats))
    table = costs_array(profile, formats, progress=synth_progress)
    column = {f: i for i, f in enumerate(formats)}
    per_layer = table[:, [column[f] for f in g.formats]].T          # layers x ops
    prefill_counts = opcount.generation.counts_array(g.prefill)
    tos_prefill = _tos(prefill_counts, per_layer)
    steps = g.steps
    if g.step_counts is not None:
        step_tos = np.array([_tos(c, per_layer) for c in g.step_counts])
    elif steps:
        first = _tos(opcount.generation.counts_array(g.first_decode), per_layer)
        step_tos = first + _tos(g.slope, per_layer) * (g.keys - g.keys[0]).astype(np.float64)
    else:
        step_tos = np.zeros(0)
    total = g.total
    counts = {op: int(sum(int(v) for v in total[:, :, i].ravel())) for i, op in enumerate(OPS)}
    tos_decode = _tos(g.decode_total, per_layer)
    macs = g.macs
    token_macs = np.concatenate([[g.prefill_macs], g.decode_macs]).astype(np.float64)
    token_tos = np.concatenate([[tos_prefill], step_tos])
    kv_write = g.kv_write_prefill + g.kv_write_step * steps
    kv_read = float(g.kv_read.sum())
    result = GenerationResult(
        name=g.model, source=source, profile=profile.name, batch=batch, prompt=prompt, new_tokens=new_tokens,
        format="/".join(formats), params=g.params, active_params=g.active_params, macs=macs, flops=2 * macs,
        counts=counts, tos=tos_prefill + tos_decode, tos_prefill=tos_prefill, tos_decode=tos_decode,
        kv_cache_bytes=g.kv_cache_bytes, kv_read_bytes=kv_read, kv_write_bytes=kv_write, curve=[],
        method=g.method, complete=g.complete,
        incomplete=[dict(t) for t in dict.fromkeys(tuple(sorted(i.items())) for i in g.incomplete)], counts_detail=g)
    energy_steps = None
    if device is not None:
        feature = {"tos": token_tos, "flops": 2 * token_macs, "macs": token_macs}[device["feature"]]
        cumulative = np.cumsum(feature)
        # the device's polynomial of the request so far (cumulative is already its feature)
        predicted = np.asarray(_energy.energy_joules(device, cumulative, cumulative, cumulative), dtype=np.float64)
        energy_steps = np.diff(predicted, prepend=0.0)
        result.energy_j = float(_energy.energy_joules(device, result.tos, result.flops, result.macs))
        grid = profile.grid_gco2_per_kwh if grid_intensity is None else grid_intensity
        if grid is not None:
            result.gco2e = _energy.carbon_grams(result.energy_j, grid)
    compute = movement = None
    if memory is not None:
        compute = np.concatenate([[g.prefill_movement.compute_j], g.decode_compute_j])
        movement = np.concatenate([[g.prefill_movement.movement_j], g.decode_movement_j])
        result.energy_compute_j = float(compute.sum())
        result.energy_movement_j = float(movement.sum())
    for k in range(new_tokens):
        decode = k > 0
        result.curve.append({
            "token": k + 1, "step": "decode" if decode else "prefill",
            "cache": int(g.caches[k - 1]) if decode else 0, "keys": int(g.keys[k - 1]) if decode else prompt,
            "macs": int(token_macs[k]), "tos": float(token_tos[k]),
            "kv_read_bytes": float(g.kv_read[k - 1]) if decode else 0.0,
            "kv_write_bytes": g.kv_write_step if decode else g.kv_write_prefill,
            "energy_j": None if energy_steps is None else float(energy_steps[k]),
            "energy_compute_j": None if compute is None else float(compute[k]),
            "energy_movement_j": None if movement is None else float(movement[k])})
    return result
