"""Data movement: accesses per layer, stage and memory level, and the compute/movement energy split.

The TOs model prices computation only (li2022 Table I names the gap); yang2017 and puangpontip
show that moving data often costs more. This module counts, for every layer of a
:class:`~opcount.CountResult`, how many bytes each level of a memory hierarchy (a profile's
``memory:`` section, innermost level first) reads and writes, and prices them and the arithmetic
in joules (``E_layer = E_comp + E_data``, yang2017 section III.A).

Reuse model (documented, analytical; in the spirit of yang2017 section III.B and puangpontip's
per-layer access formulas, not an optimizing mapper)
-------------------------------------------------------------------------------------------------
Convolutions, linear layers and matrix products are written as one product
``O[rows, cols] = A[rows, K] x W[K, cols]`` (conv: rows = output pixels of the batch, cols =
output channels, K = C_in/groups x kernel taps). Its tensors have *unique* sizes: weights
``S_w`` (+ the bias), inputs ``S_i`` (the input feature map, so convolutional reuse is assumed
captured inside a tile), outputs ``S_o``.

* Level 0 (the innermost, e.g. the register file) serves the ALU: each effective MAC reads one
  weight and one input and reads and writes one partial sum (yang2017 Fig. 1); the bias is read
  once per output.
* Between level k-1 and level k, the inner level holds a tile of the *stationary* operand that
  fills its capacity; the other operands stream through it once per tile ("tiles that fit a level
  are reused there, the rest spill to the next"):

  - ``weight_stationary``: a weight tile of T = capacity / bytes-per-weight weights. Whole
    filters first: if all S_w weights fit, inputs stream once; if one filter (K weights) fits,
    m = T // K filters per tile and the inputs stream ceil(cols / m) times; otherwise one filter
    is cut into ceil(K / T) pieces, the inputs stream once per output channel (cols times) and the
    partial sums spill: each output is written ceil(K / T) times to level k and read back
    ceil(K / T) - 1 times.
  - ``output_stationary``: an output tile of T = capacity / bytes-per-output outputs. If all fit,
    weights and inputs stream once; if one row of cols outputs fits, r = T // cols rows per tile
    and the weights stream ceil(rows / r) times; otherwise the weights stream once per row (rows
    times) and the inputs ceil(cols / T) times. Outputs are written once (no spill).

  Each transfer is one read at level k and one write (a fill) at level k-1; transfers never grow
  outward (a larger level never refetches more than a smaller one inside it). The outermost
  level is unbounded: every layer reads its inputs and weights from it at least once and writes
  its outputs to it (layer-by-layer processing, as Eyeriss runs AlexNet).
* Other layers (activations, pooling, normalization, residual adds, ...) are taken as fused with
  the data already in level 0: one read per input element and one write per output element
  there. Embeddings read their output rows from the outermost level. Attention blocks
  (``attention``, ``sdpa``) and mixture-of-experts blocks (``moe``) are priced like those fused
  layers plus their weights read once from the outermost level (a ``moe`` block: the router and
  the experts its tokens use, at most tokens x top_k of them), and listed in ``approximate``.
* KV cache: an ``attention`` layer of a serving step reads the cached keys and values its
  queries see from the outermost level and writes its new ones there (:func:`kv_cache_bytes`;
  counted as inputs and outputs of that level, and reported as ``kv_cache_read`` and
  ``kv_cache_write``).
* Stages: training's backward runs the input-gradient and weight-gradient products, each the
  forward product's three tensors with the roles permuted, so each is priced as one more forward
  pass (``macs_backward / macs_forward`` of them); the update reads each parameter and its
  gradient and writes the parameter at the outermost level; the loss is left out (it touches only
  the model output).

Bitwidth and sparsity (yang2017 section III.C and IV.A)
-------------------------------------------------------
Bytes scale with the layer format's storage (``FORMAT_BYTES``: fp16 and bf16 2 bytes, fp32 and tf32 4,
fp8 and int8 1, int4 0.5).
Densities (the non-zero fraction) of weights and of input activations, per model or per layer,
scale the MACs: a product with a zero input is skipped, so effective MACs = MACs x d_w x d_i,
and the level-0 operand and partial-sum accesses follow them. Transfers between levels use
significance-map encoding (a 1-bit flag per value plus the non-zero values, yang2017 IV.A), so a
tensor of density d < 1 moves (1 + d x bits) bits per element; dense tensors move bits.

Energy
------
Level k's energy is its bytes x ``energy_per_byte_j`` (or ``energy_per_access_j /
bytes_per_access``: energy proportional to bits moved, as Horowitz's table scales from 8 to 32
bits); accesses are reported as bytes / ``bytes_per_access``.

Compute energy prices the layer's basic-op counts with ``memory.compute``:

* ``op_energy_j[format][op]`` (e.g. Horowitz's fp32 add 0.9 pJ, mul 3.7 pJ): count x energy per
  op; ``sub`` and ``cmp`` default to ``add``'s energy, ``div`` and ``sqrt`` to ``mul``'s (a lower
  bound for those; say so when it matters).
* ``mac_energy_j[format]`` (yang2017's unit): each effective MAC at that energy, replacing one
  mul and one add of the counts; the remaining ops at ``op_energy_j`` when given, else at one MAC
  each (an upper bound for a single op).
* A format missing from a table borrows the nearest listed format, scaled by the bit ratio
  linearly for add/sub/cmp and quadratically for mul, div, sqrt and MACs (yang2017 III.C: a
  multiplier's energy grows with the product of its operand widths).
* Sparsity removes the skipped MACs' mul and add from the counts before pricing.
* A profile without ``compute`` prices no arithmetic (compute energy 0, ``compute_priced`` False).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from hardware_profiles.schema import BASIC_OPS, FORMAT_BITS, FORMAT_BYTES, INT_ACCUMULATOR, INT_FORMAT_BITS

from ._engine import PHASES, CountResult
from ._ir import QUANT_FORMATS, Layer, ModelIR

__all__ = ["MemoryLevel", "MemoryHierarchy", "Densities", "LayerMovement", "MovementResult",
           "DATA_TYPES", "GEMM_TYPES", "count_movement", "compute_energy", "format_bytes", "kv_cache_bytes"]

#: Data types reported per level (partial sums are counted with the outputs, as in yang2017).
DATA_TYPES = ("weights", "inputs", "outputs")
#: Layer types priced with the product (tiling) model.
GEMM_TYPES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "matmul", "bmm")
_APPROXIMATE_TYPES = ("attention", "sdpa", "moe")
#: The extra rows of a quantized layer (opcount._engine._quantized_rows): arithmetic, no bytes of their own.
_QUANT_ROWS = ("accumulate", "requantize", "attention_core", "quantize", "dequantize")


def format_bytes(fmt: str) -> float:
    """Bytes of one value of format ``fmt`` in memory (fp16 2, bf16 2, fp32 4, tf32 4, fp64 8, fp8 1,
    int8 1, int4 0.5, int32 4; ``FORMAT_BYTES``)."""
    return FORMAT_BYTES[fmt]


@dataclass(frozen=True)
class MemoryLevel:
    """One level of the hierarchy: ``capacity_bytes`` (None: unbounded, the outermost),
    ``energy_per_byte_j`` joules per byte read or written, ``bytes_per_access`` for reporting."""
    name: str
    capacity_bytes: object
    energy_per_byte_j: float
    bytes_per_access: int = 1


@dataclass(frozen=True)
class MemoryHierarchy:
    """Levels innermost first, the reuse model, and the ``compute`` energy tables."""
    levels: tuple
    reuse: str = "weight_stationary"
    compute: dict = field(default_factory=dict)

    @classmethod
    def from_profile(cls, profile):
        """The hierarchy of a loaded profile's ``memory:`` section; ``None`` when it has none."""
        memory = profile.data.get("memory") if hasattr(profile, "data") else profile
        if not memory:
            return None
        levels = []
        for i, level in enumerate(memory["levels"]):
            per_access = level.get("bytes_per_access", 1)
            if "energy_per_byte_j" in level:
                per_byte = float(level["energy_per_byte_j"])
            else:
                per_byte = float(level["energy_per_access_j"]) / per_access
            capacity = None if i == len(memory["levels"]) - 1 else level["capacity_bytes"]
            levels.append(MemoryLevel(level["name"], capacity, per_byte, per_access))
        return cls(tuple(levels), memory.get("reuse", "weight_stationary"), dict(memory.get("compute", {})))

    @property
    def names(self):
        return tuple(level.name for level in self.levels)


@dataclass(frozen=True)
class Densities:
    """Non-zero fractions of weights and input activations, model-wide with per-layer overrides
    ``layers = {name: {"weights": d, "inputs": d}}``; each in (0, 1]."""
    weights: float = 1.0
    inputs: float = 1.0
    layers: dict = field(default_factory=dict)

    def __post_init__(self):
        for where, values in [("model", {"weights": self.weights, "inputs": self.inputs})] + [
                (f"layer {name!r}", v) for name, v in self.layers.items()]:
            if not isinstance(values, dict):
                raise TypeError(f"densities of {where} must be a mapping, not {type(values).__name__}")
            for key, value in values.items():
                if key not in ("weights", "inputs"):
                    raise ValueError(f"density key of {where} must be 'weights' or 'inputs', not {key!r}")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                    raise ValueError(f"{key} density of {where} must be a number in (0, 1], not {value!r}")

    def of(self, layer_name: str) -> tuple[float, float]:
        """``(weights, inputs)`` densities of one layer: its own, else the model's."""
        own = self.layers.get(layer_name, {})
        return float(own.get("weights", self.weights)), float(own.get("inputs", self.inputs))


@dataclass
class LayerMovement:
    """One layer: ``bytes[stage][level][data type]`` (floats, the batch), effective MACs,
    the densities used, and its movement and compute energy in joules."""
    name: str
    type: str
    format: str
    macs: int
    effective_macs: float
    density_weights: float
    density_inputs: float
    bytes: dict
    movement_j: float = 0.0
    compute_j: float = 0.0
    approximate: bool = False
    kv_cache_read: float = 0.0
    kv_cache_write: float = 0.0

    def level_bytes(self, level: str) -> float:
        """Bytes moved at memory level ``level``, all stages and data types."""
        return sum(self.bytes[s][level][t] for s in self.bytes for t in DATA_TYPES)

    def type_bytes(self, data_type: str) -> float:
        """Bytes of one data type (weights, inputs, ...), all stages and levels."""
        return sum(self.bytes[s][lv][data_type] for s in self.bytes for lv in self.bytes[s])


@dataclass
class MovementResult:
    """Per-layer movement of one counted model under one hierarchy."""
    model: str
    profile: str
    phase: str
    batch: int
    hierarchy: MemoryHierarchy
    layers: list
    compute_priced: bool

    @property
    def movement_j(self):
        return sum(layer.movement_j for layer in self.layers)

    @property
    def compute_j(self):
        return sum(layer.compute_j for layer in self.layers)

    @property
    def approximate(self):
        return [layer.name for layer in self.layers if layer.approximate]

    @property
    def kv_cache_read(self):
        """Bytes of keys and values read from the KV cache (outermost level), all layers."""
        return sum(layer.kv_cache_read for layer in self.layers)

    @property
    def kv_cache_write(self):
        """Bytes of keys and values written to the KV cache (outermost level), all layers."""
        return sum(layer.kv_cache_write for layer in self.layers)

    def accesses(self, layer: LayerMovement, level: str) -> float:
        """Accesses of ``layer`` (a LayerMovement) at ``level`` (name): bytes / bytes per access."""
        lv = self.hierarchy.levels[self.hierarchy.names.index(level)]
        return layer.level_bytes(level) / lv.bytes_per_access

    def to_json(self) -> dict[str, Any]:
        """The ``tosim count --json`` data-movement object (exact bytes per layer, stage, level)."""
        levels = self.hierarchy.names
        return {
            "model": self.model, "profile": self.profile, "phase": self.phase, "batch": self.batch,
            "reuse": self.hierarchy.reuse, "levels": list(levels), "compute_priced": self.compute_priced,
            "energy_compute_j": self.compute_j, "energy_movement_j": self.movement_j,
            "energy_j": self.compute_j + self.movement_j, "approximate": self.approximate,
            "kv_cache_read_bytes": self.kv_cache_read, "kv_cache_write_bytes": self.kv_cache_write,
            "layers": [{"name": m.name, "type": m.type, "format": m.format, "macs": m.macs,
                        "effective_macs": m.effective_macs,
                        "density": {"weights": m.density_weights, "inputs": m.density_inputs},
                        "energy_compute_j": m.compute_j, "energy_movement_j": m.movement_j,
                        "bytes": {lv: {t: sum(m.bytes[s][lv][t] for s in m.bytes) for t in DATA_TYPES}
                                  for lv in levels},
                        "accesses": {lv: self.accesses(m, lv) for lv in levels},
                        "stages": {s: {lv: dict(m.bytes[s][lv]) for lv in levels} for s in m.bytes}}
                       for m in self.layers],
        }


# --------------------------------------------------------------------------------------------
# the product (tiling) model

def _gemm_dims(layer, batch):
    """(rows, cols, K, S_w, S_bias, S_i, S_o) in elements for a product-like layer, whole batch."""
    a = layer.attrs
    if layer.type == "linear":
        rows = batch * math.prod(layer.in_shape[:-1])
        k, cols = a["in"], a["out"]
        s_w = 0 if a.get("tied_to") is not None else k * cols
        s_i = rows * k
    elif layer.type.startswith("conv_transpose"):
        rows = batch * math.prod(layer.in_shape[1:])       # input positions scatter
        cols = a["out"]
        k = a["in"] // a["groups"] * a["taps"]
        s_w = a["in"] * (a["out"] // a["groups"]) * a["taps"]
        s_i = batch * math.prod(layer.in_shape)
    elif layer.type.startswith("conv"):
        rows = batch * math.prod(layer.out_shape[1:])
        cols = a["out"]
        k = a["in"] // a["groups"] * a["taps"]
        s_w = a["in"] * (a["out"] // a["groups"]) * a["taps"]
        s_i = batch * math.prod(layer.in_shape)
    else:  # matmul / bmm: A [.., m, k] @ B [.., k, n]; B is the "weight" operand
        b = batch * a["batch"]
        rows, k, cols = b * a["m"], a["k"], a["n"]
        s_w = b * k * cols
        s_i = rows * k
    s_o = batch * math.prod(layer.out_shape)
    bias = a["out"] if a.get("bias") else 0
    return rows, cols, k, s_w, bias, s_i, s_o


def _refetch(reuse, capacity, rows, cols, k, s_w, b_w, b_o):
    """(input streams, weight streams, partial-sum spill factor) through a level of ``capacity``
    bytes holding the stationary tile (module docstring)."""
    if reuse == "weight_stationary":
        t = max(1, int(capacity // b_w))
        if s_w <= t:
            return 1, 1, 1
        if k <= t:
            return math.ceil(cols / (t // k)), 1, 1
        return cols, 1, math.ceil(k / t)
    t = max(1, int(capacity // b_o))
    if rows * cols <= t:
        return 1, 1, 1
    if cols <= t:
        return 1, math.ceil(rows / (t // cols)), 1
    return math.ceil(cols / t), rows, 1


def _compressed(nbytes, density):
    """Bytes per element after significance-map encoding (1 flag bit + non-zero values)."""
    return nbytes if density >= 1 else (1 + density * nbytes * 8) / 8


def _empty(levels):
    return {lv: dict.fromkeys(DATA_TYPES, 0.0) for lv in levels}


def _sum_bytes(layer):
    """``(partial sum, output)``: bytes of one partial sum and of one output value of a product
    layer: its format's, except for a quantized layer (int8, int4), whose sums (and int32 bias)
    are in its accumulator format and whose output is in its operand format when it requantizes,
    else in the accumulator's (an ONNX MatMulInteger/ConvInteger: int32)."""
    raw = format_bytes(layer.format)
    if layer.format not in QUANT_FORMATS:
        return raw, raw
    quant = layer.attrs.get("quant") or {}
    acc = format_bytes(quant.get("accumulate", INT_ACCUMULATOR))
    return acc, raw if quant.get("requantize", True) else acc


def _gemm_bytes(layer, batch, hierarchy, d_w, d_i, macs):
    levels = hierarchy.names
    out = _empty(levels)
    rows, cols, k, s_w, s_b, s_i, s_o = _gemm_dims(layer, batch)
    raw = format_bytes(layer.format)
    b_psum, b_out = _sum_bytes(layer)
    b_w, b_i, b_o = _compressed(raw, d_w), _compressed(raw, d_i), b_psum
    eff = macs * d_w * d_i
    inner = levels[0]
    # level 0 serves the ALU (uncompressed values): weight, input, psum read + write per MAC
    # (the bias is read in the partial sums' format: a quantized layer's int32 bias)
    out[inner]["weights"] += eff * raw + s_o * b_psum * (s_b > 0)
    out[inner]["inputs"] += eff * raw
    out[inner]["outputs"] += 2 * eff * b_psum
    prev = None
    for i in range(1, len(levels)):
        capacity = hierarchy.levels[i - 1].capacity_bytes
        streams_i, streams_w, spill = _refetch(hierarchy.reuse, capacity, rows, cols, k, s_w, b_w, b_o)
        if prev is not None:   # never refetch more through a larger level
            streams_i, streams_w, spill = min(streams_i, prev[0]), min(streams_w, prev[1]), min(spill, prev[2])
        prev = (streams_i, streams_w, spill)
        # outputs: the partial sums spilled and read back (2 (spill - 1) passes, in their
        # format) and the final write (in the output's)
        moved = {"weights": streams_w * s_w * b_w + s_b * b_psum, "inputs": streams_i * s_i * b_i,
                 "outputs": 2 * (spill - 1) * s_o * b_psum + s_o * b_out}
        for t in DATA_TYPES:
            out[levels[i]][t] += moved[t]         # read from (or written to) the outer level
            out[levels[i - 1]][t] += moved[t]     # the fill (or drain) of the inner level
    return out


def _fused_bytes(layer, batch, hierarchy, nbytes):
    out = _empty(hierarchy.names)
    inner = hierarchy.names[0]
    out[inner]["inputs"] += sum(batch * math.prod(s) for s in layer.in_shapes) * nbytes
    out[inner]["outputs"] += batch * math.prod(layer.out_shape) * nbytes
    return out


def _update_row(counted, owner, stages, levels, outer, per_byte, hierarchy):
    """The movement of an optimizer step on master weights kept in ``counted.format``: each of
    the owner's parameters read, its gradient read and the weight written at the outermost
    level, in the master format (as the update of any layer), and its arithmetic priced there.
    Without an ``owner``: the row's arithmetic only (a quantized layer's extra rows)."""
    table = {s: _empty(levels) for s in stages}
    if owner is not None:
        table["update"][outer]["weights"] += 3 * owner.params * format_bytes(counted.format)
    lm = LayerMovement(name=counted.name, type=counted.type, format=counted.format, macs=0, effective_macs=0.0,
                       density_weights=1.0, density_inputs=1.0, bytes=table)
    lm.movement_j = sum(table[s][lv][t] * per_byte[lv] for s in table for lv in levels for t in DATA_TYPES)
    ops = {op: sum(counted.stages[s][op] for s in stages) for op in BASIC_OPS}
    lm.compute_j = compute_energy(ops, 0, 0.0, counted.format, hierarchy.compute)
    return lm


def kv_cache_bytes(layer: Layer, batch: int) -> tuple[float, float]:
    """``(read, write)``: bytes of keys and values an ``attention`` layer reads from and writes to
    the KV cache in one forward of ``batch`` sequences, in the layer's format.

    An entry is one token's key and value, 2 x kv_heads x head_dim values (grouped-query
    attention shrinks it by heads / kv_heads). Read: the cached keys the queries see (``cols``
    minus the T new ones: min(past, window - 1) in a one-token decode step); for a cross-attention
    with ``memory_cached``, the S memory entries. Written, when the layer keeps a cache
    (``kv_cache``): its T new entries (a cross-attention: its S memory entries, once)."""
    a = layer.attrs
    entry = 2 * a["dkv"] * format_bytes(layer.format) * batch
    if a["cross"]:
        return (a["s"] * entry if a["memory_cached"] else 0.0,
                a["s"] * entry if a["kv_cache"] and not a["memory_cached"] else 0.0)
    return (a["cols"] - a["t"]) * entry, (a["t"] * entry if a["kv_cache"] else 0.0)


def _scale(table, factor):
    return {lv: {t: v * factor for t, v in row.items()} for lv, row in table.items()}


def count_movement(result: CountResult, model: ModelIR, hierarchy: MemoryHierarchy | Any, *,
                   densities: Densities | None = None) -> MovementResult:
    """Bytes per layer, stage, level and data type for a counted model, and their energy.

    ``result``: :func:`opcount.count_model` of ``model`` (its phase and batch are used);
    ``hierarchy``: a :class:`MemoryHierarchy` or a loaded profile with a ``memory:`` section;
    ``densities``: a :class:`Densities` (default dense). Compute energy is priced from the
    hierarchy's ``compute`` tables (see :func:`compute_energy`).
    """
    if not isinstance(hierarchy, MemoryHierarchy):
        found = MemoryHierarchy.from_profile(hierarchy)
        if found is None:
            raise ValueError(f"profile {getattr(hierarchy, 'name', hierarchy)!r} has no memory section")
        hierarchy = found
    densities = densities or Densities()
    for name in densities.layers:
        if all(layer.name != name for layer in model.layers):
            raise ValueError(f"densities name layer {name!r}, which {model.name!r} does not have")
    stages = PHASES[result.phase]
    by_name = {layer.name: layer for layer in model.layers}
    levels = hierarchy.names
    outer = levels[-1]
    per_byte = {lv.name: lv.energy_per_byte_j for lv in hierarchy.levels}
    moved = []
    split = {c.name[:-len("/update")] for c in result.layers if c.type == "update" and c.name.endswith("/update")}
    for counted in result.layers:
        if counted.name not in by_name:
            owner = by_name.get(counted.name[:-len("/update")]) if counted.type == "update" else None
            if owner is not None:           # a master-weights update row (count_model's master_format)
                moved.append(_update_row(counted, owner, stages, levels, outer, per_byte, hierarchy))
            elif counted.type in _QUANT_ROWS:
                # a quantized layer's accumulation, requantization or attention core: its
                # arithmetic in its own format; its bytes are the layer's (moved in its format)
                moved.append(_update_row(counted, None, stages, levels, outer, per_byte, hierarchy))
            continue                        # the loss row
        layer = by_name[counted.name]
        d_w, d_i = densities.of(layer.name)
        raw = format_bytes(layer.format)
        macs_f = counted.macs["forward"]
        table = {s: _empty(levels) for s in stages}
        approximate = False
        if layer.type in GEMM_TYPES and macs_f:
            forward = _gemm_bytes(layer, result.batch, hierarchy, d_w, d_i, macs_f)
            table["forward"] = forward
            if "backward" in stages and counted.macs["backward"]:
                table["backward"] = _scale(forward, counted.macs["backward"] / macs_f)
        else:
            approximate = layer.type in _APPROXIMATE_TYPES or not layer.known
            fused = _fused_bytes(layer, result.batch, hierarchy, raw)
            if layer.type == "embedding":
                fused[outer]["weights"] += result.batch * math.prod(layer.out_shape) * raw
            elif layer.type == "moe":
                used = min(layer.attrs["experts"], result.batch * math.prod(layer.in_shape[:-1]) * layer.attrs["top_k"])
                fused[outer]["weights"] += (layer.attrs["router_params"] + used * layer.attrs["expert_params"]) * raw
            elif layer.params and layer.type in _APPROXIMATE_TYPES:
                fused[outer]["weights"] += layer.params * raw
            if layer.type == "attention":
                kv_read, kv_write = kv_cache_bytes(layer, result.batch)
                fused[outer]["inputs"] += kv_read
                fused[outer]["outputs"] += kv_write
            table["forward"] = fused
            if "backward" in stages and any(counted.stages["backward"].values()):
                table["backward"] = fused
        if "update" in stages and layer.params and layer.name not in split and not layer.attrs.get("frozen"):
            table["update"][outer]["weights"] += 3 * layer.params * raw
        eff = macs_f * d_w * d_i + counted.macs["backward"] * d_w * d_i
        lm = LayerMovement(name=layer.name, type=layer.type, format=layer.format,
                           macs=macs_f + counted.macs["backward"], effective_macs=eff,
                           density_weights=d_w, density_inputs=d_i, bytes=table, approximate=approximate)
        if layer.type == "attention":
            lm.kv_cache_read, lm.kv_cache_write = kv_cache_bytes(layer, result.batch)
        lm.movement_j = sum(table[s][lv][t] * per_byte[lv] for s in table for lv in levels for t in DATA_TYPES)
        ops = {op: sum(counted.stages[s][op] for s in stages) for op in BASIC_OPS}
        lm.compute_j = compute_energy(ops, lm.macs, eff, layer.format, hierarchy.compute)
        moved.append(lm)
    return MovementResult(model=result.model, profile=result.profile, phase=result.phase, batch=result.batch,
                          hierarchy=hierarchy, layers=moved, compute_priced=bool(hierarchy.compute))


# --------------------------------------------------------------------------------------------
# compute energy

_LINEAR_OPS = ("add", "sub", "cmp")


def _bits(fmt):
    # the width of the arithmetic (tf32: 19 bits, though stored in 32)
    if fmt in INT_FORMAT_BITS:
        return INT_FORMAT_BITS[fmt]
    e, f = FORMAT_BITS[fmt]
    return 1 + e + f


def _lookup(table, fmt, quadratic):
    """Energy of ``fmt`` from a {format: value} table: the entry itself, else the nearest listed
    width scaled by the bit ratio (squared for multiplier-like units)."""
    if fmt in table:
        return float(table[fmt])
    if not table:
        return None
    near = min(table, key=lambda f: (abs(_bits(f) - _bits(fmt)), -_bits(f)))
    ratio = _bits(fmt) / _bits(near)
    return float(table[near]) * (ratio ** 2 if quadratic else ratio)


def _op_energy(op_table, fmt, op):
    fallback = {"sub": "add", "cmp": "add", "div": "mul", "sqrt": "mul"}
    for name in (op, fallback.get(op)):
        if name is None:
            continue
        listed = {f: row[name] for f, row in op_table.items() if name in row}
        value = _lookup(listed, fmt, name not in _LINEAR_OPS)
        if value is not None:
            return value
    return None


def compute_energy(ops: Mapping[str, float], macs: float, effective_macs: float, fmt: str,
                   compute: Mapping[str, Any] | None) -> float:
    """Joules of one layer's arithmetic: ``ops`` basic-op counts (the phase's stages), ``macs``
    dense MACs and ``effective_macs`` after skipping zero products, priced by a profile's
    ``memory.compute`` tables (rules in the module docstring)."""
    if not compute:
        return 0.0
    skipped = macs - effective_macs
    ops = dict(ops)
    ops["mul"] = max(0.0, ops.get("mul", 0) - skipped)
    ops["add"] = max(0.0, ops.get("add", 0) - skipped)
    op_table = compute.get("op_energy_j", {})
    mac_table = compute.get("mac_energy_j", {})
    total = 0.0
    mac_j = _lookup(mac_table, fmt, True) if mac_table else None
    if mac_j is not None:
        total += effective_macs * mac_j
        ops["mul"] = max(0.0, ops["mul"] - effective_macs)
        ops["add"] = max(0.0, ops["add"] - effective_macs)
    for op, n in ops.items():
        if not n:
            continue
        value = _op_energy(op_table, fmt, op) if op_table else None
        if value is None:
            value = mac_j if mac_j is not None else 0.0
        total += n * value
    return total
