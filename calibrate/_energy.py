"""A device energy model: joules per basic op, per byte, per layer call, and static power x time.

In the spirit of the roofline model of energy (Choi, Vuduc et al., IPDPS 2013:
``E = W eps_op + Q eps_mem + pi0 T``), the energy of one layer call is

    E_layer = sum_{op, fmt} n_{op,fmt} eps_{op,fmt}          (term "ops")
            + sum_{role} bytes_role eps_{role,k}              (term "memory")
            + max(0, bytes - capacity_bytes) eps_spill
            + eps_call                                        (term "calls")
            + P_static T_layer                                (term "static")

    T_layer = max(n'_ops / peak_k, bytes / bandwidth_k) + n'_ops w / rate_w,k + rows / rate_r,k
              + max(0, out_bytes - n'_ops / beta_out) / rate_o,k
              + w_bytes [m_lo <= M < m_hi] / rate_p,k + w_bytes [w_bytes > L] / rate_l,k
              + out_bytes [kernel = k_n, stride >= s_n] / rate_n,k
              + sum_{a in output, indices} a [a > F] / rate_f,k + latency_s,
    peak_k = e_k peak_ops_per_s,  bandwidth_k = e_k bandwidth_bytes_per_s

and a run is the sum over its layer calls (each layer of each step; ``repeat`` counts how often).
``n_{op,fmt}`` are the exact basic-op counts of the layer (opcount), ``bytes_role`` the bytes of
its ``inputs``, ``outputs`` and ``weights`` (each tensor read or written once: the layer-by-layer
footprint a profile without a memory hierarchy can give), ``n_ops`` and ``bytes`` their totals. ``eps_{role,k}`` may depend on the layer type ``k``
(``byte_j_by_type``: each kernel's own attained bandwidth; the fit does so by default, and types
it never saw use ``byte_j``, the median of the fitted kernels' prices). ``capacity_bytes`` is the
footprint a layer call can move at the near rates; the bytes beyond it pay ``eps_spill`` more
(two memory levels; measured on a Xeon: element-wise layers cost 3x more per byte once a call
moves more than a few GB).
``e_k`` is the share of the device's peak that the kernel of layer type ``k`` attains (measured:
a CPU's GEMM-based convolution runs near peak, its max-pooling two orders of magnitude below).
Windowed kernels (convolution, pooling; ``LayerTable.window`` and ``rows``) add two times at
their own rates: the window ops ``n'_ops w`` (``w = min(stride, kernel) / kernel``, the share of
the window whose input was not in the previous output position's window: a direct convolution
reuses the overlapping columns, the new ones come from farther away) priced ``window_j_per_op[k]
= P_static / rate_w,k``, and the window rows (the kernel's loop over window rows) priced
``row_j[k]``. Channel-blocked kernels (convolutions) add the output bytes their ops do not hide,
``max(0, out_bytes - n'_ops / beta_out)`` (``beta_out``, ``output_balance``: the ops that cover
the write of one output byte, searched), priced ``exposed_j[k]``: a convolution with little work
per output element (few input channels, a small kernel) is bound by writing its output (off by
default: ``output_bound``; the fresh-output price below covers those outputs more robustly).
Matrix-product kernels (linear layers: ``LayerTable.gemm_rows`` = M, the rows of the call's GEMM)
add two prices per weight byte: ``pack_j[k]`` for calls with ``m_lo <= M < m_hi`` (``pack_rows``,
given: a BLAS sgemm packs the weight panel into its blocked layout on every call once M is past the
matrix-vector path, and from a larger M on the multiply-adds hide that copy; measured on the Xeon:
batch 4 costs 1.8x batch 2 per weight byte), and ``weight_spill_j[k]`` for calls whose weights
exceed ``weight_cache_bytes`` (``L``, given: the last-level cache; larger weights stream from DRAM).
Poolings whose innermost window is ``k_n`` wide with stride ``>= s_n`` (``narrow_window``, given)
pay ``narrow_j[k]`` per output byte: an EMPIRICAL price class, not a mechanism (measured on the Xeon:
2x2 max-pools at stride >= 2 cost ~3 ns more per output than the window terms give; its cause is
not established).
Outputs (and a max pooling's int64 indices) larger than ``F`` (``fresh_threshold_bytes``, given:
glibc's mmap threshold cap, 32 MiB on 64-bit) are fresh memory on every call, mapped and
page-faulted (zeroed) by the kernel: ``fresh_j[k]`` per such byte (``fresh_j_default``, the median
of the fitted prices, for types the fit never saw allocate that much). In-place calls
(``LayerTable.inplace``) allocate nothing and pay nothing, and runs that reused their outputs
(``LayerTable.fresh_share``, a measurement fact) pay only for their calls that did not (measured on the Xeon: out-of-place ReLU +1.35 ns per fp32 element
from 32 MiB of output on, in-place ReLU never).
``n'_ops`` are the ops the kernel executes: the counted ops times the share of (output, tap)
pairs whose tap lies inside the input (``LayerTable.valid``: opcount counts the taps on the zero
padding, a direct convolution skips them), a blocked kernel's output channels
(``LayerTable.channels``) padded to a multiple of ``channel_block`` (vector-blocked kernels
compute whole blocks: 16 fp32 lanes on AVX-512), and its input channels
(``LayerTable.in_channels``) too where they fill at least one block; ``channel_block`` is given,
not fitted.
Every coefficient is non-negative; every term is optional (a model of ``ops`` alone is a
per-op-priced TOs model).

What the energies identify. The static energy of a layer is ``s_k max(n_ops, beta bytes)`` with
``s_k = P_static / peak_k`` (joules per op at the kernel's attained rate, ``static_j_per_op`` in
the profile) and ``beta = peak / bandwidth`` (the machine balance, ops per byte): energies fix
``s_k`` and ``beta``, not ``P_static`` and ``peak`` apart. The time estimate needs one of them:
``static_w`` or ``peak_ops_per_s`` given (the other follows from the fastest compute-bound kernel,
whose ``e_k`` is 1); with neither, ``peak_ops_per_s`` is set to a nominal 1e9 ops/s and the result
says the time scale is nominal. Layer types without a fitted ``s_k`` use ``static_j_per_op_default``,
the ``s_k`` of the fastest compute-bound fitted kernel: an unmeasured kernel is assumed to run at the
peak, the roofline's own assumption (optimistic for kernels that are not GEMM-like; measure them).
Compute-bound kernels (:func:`compute_bound_types`, ``info["rate_reference"]``) are the fitted layer
types whose median arithmetic intensity (basic ops per byte of inputs, outputs and weights) is within
a decade of the most intense type's: dense matrix kernels (convolution, linear: tens to thousands of
ops per byte), not element-wise or pooling kernels (a few at most). Only their ``s_k`` measures an
attained op rate: an element-wise kernel's ``s_k`` can be near 0 because the fit put its energy in
the op and byte prices, which says nothing about its speed (taking the smallest ``s_k`` of all
kernels, the rule before, priced a held-out linear layer at tanh's 3e-11 J/op, 1/20 of a
convolution's, and set the peak 20x above the convolution's rate). Where the compute-bound kernels'
``s_k`` is 0 (the fit put their whole per-op energy in the op prices they share), the default is 0:
an unseen kernel pays those op prices alone, as they do; the peak then comes from the fastest kernel
with a positive ``s_k``.

Fitting (:func:`fit_energy_model`)
----------------------------------
For a fixed balance ``beta`` the energy is linear in the coefficients (``eps``, ``s_k``), so they
are fitted by bounded least squares (``scipy.optimize.lsq_linear``, all ``>= 0``); ``beta``, when
not given (by both rates), is chosen by a deterministic search on a log grid (coarse, then refined
around the best point) that minimises the same loss. The per-call latency only adds a constant
per call, which the call term already holds, so it is not fitted (it stays as given, 0 by
default) and enters the time estimate only.

Loss. ``relative`` (default) minimises ``sum ((pred - meas) / meas)^2``: the squared form of the
per-sample error in li2022's precision metric, so energies spanning orders of magnitude (single
layers from milliJoules to kiloJoules) weigh alike. ``absolute`` minimises errors in joules.

Prior: transistor prices. The per-op energies are written as ``eps_{op,fmt} = u_{op,fmt}
TOs_{op,fmt}`` (``TOs`` the transistors of the unit that executes the op, from the profile's
cost table), i.e. ``u`` is joules per transistor operation of that op. The prior says all ``u``
are one common ``s`` (energy proportional to TOs, li2022's model); it enters as ridge rows added
to the least squares, one per op, ``sqrt(prior_strength) (u_{op,fmt} - s) ||w TOs_{op,fmt}|| /
(sqrt(n) ||w y||_rms)``: the gap between the op's price and the TOs price, in units of the share of
the (weighted) measured energy that the gap explains, with ``s`` a free non-negative unknown. The
other terms get ridge rows pulling them toward 0 in the same units and with the same strength. Why shrinkage toward TOs-proportional ratios:

* with little data (fewer independent rows than coefficients, or rows of one layer type where
  every op appears in fixed proportion) the data leave a whole family of exact fits; any
  positive prior strength picks the one closest to ``eps ∝ TOs`` with no other terms, so the
  model reduces to li2022's TOs model instead of an arbitrary vertex of the family;
* with rich data the data rows (one per measurement) outweigh the fixed number of prior rows
  and the fit learns the device: with the default strength (``1e-3``) an op whose price departs
  from the TOs ratio so far that the gap explains all of the energy costs as much as one row off
  by 3 % (of ``n`` rows), so a device where a compare costs 80 MACs is learnt from tens of rows;
* unlike a hard choice between "per-op" and "TOs", the strength is one continuous, documented
  knob (``prior_strength=0`` is the plain non-negative fit; a large value forces TOs ratios).

Numerical scaling: every column of the weighted design is divided by its norm before solving (the
features span 1e0..1e15), and the coefficients are scaled back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ENERGY_MODEL_VERSION", "ENERGY_TERMS", "BYTE_ROLES", "LOSSES", "FRESH_THRESHOLD_BYTES", "LayerTable",
           "EnergyModel",
           "fit_energy_model", "tos_only_scale"]

ENERGY_MODEL_VERSION = 1
#: The terms of the model, in the order they are reported.
ENERGY_TERMS = ("ops", "memory", "calls", "static")
#: Tensors whose bytes the memory term prices (read or written once per layer call).
BYTE_ROLES = ("inputs", "outputs", "weights")
LOSSES = ("relative", "absolute")
#: The fit's default fresh-output threshold: glibc's largest mmap threshold on 64-bit (32 MiB),
#: above which every allocation is a fresh mapping, page-faulted on first touch.
FRESH_THRESHOLD_BYTES = float(2 ** 25)

#: Layer types whose median arithmetic intensity is at least this share of the most intense type's are
#: compute-bound: their static prices set the price of unseen types and the peak (see compute_bound_types)
COMPUTE_BOUND_RATIO = 0.1

# the rate search: log10 ranges of the peak (basic ops per second) and bandwidth (bytes per second)
_PEAK_RANGE = (7.0, 14.0)
_BW_RANGE = (7.0, 13.0)


@dataclass
class LayerTable:
    """Per-layer features of a set of runs: one entry per (run, distinct layer call).

    ``run`` (int array) is the index of the run a layer call belongs to and ``repeat`` how many
    times it runs in that run (steps x epochs); ``op_keys`` are ``(format, op)`` pairs and
    ``ops`` the ``(layers, len(op_keys))`` basic-op counts of one call; ``bytes`` the
    ``(layers, 3)`` bytes of inputs, outputs, weights of one call; ``calls`` the layer calls one
    entry stands for per repeat (1 per layer and stage); ``n_runs`` the number of runs;
    ``types`` the layer type of each entry (the kernel whose attained rate the static term uses);
    ``channels`` the output channels of each entry whose kernel blocks channels (convolutions
    without groups; 0 elsewhere: see ``EnergyModel.channel_block``); ``window`` the share of a
    windowed layer's ops (convolution, pooling) whose input element is new to the window, i.e. was
    not in the previous output position's window along the innermost spatial dimension:
    ``min(stride, kernel) / kernel`` (0 for layers without a window); ``rows`` the window rows of
    one call: (output element, input channel of its group, kernel row) triples of a convolution,
    (output element, kernel row) pairs of a pooling, the trip count of a window kernel's loop over
    rows (0 for layers without a window); ``in_channels`` the input channels (per group) of each
    entry whose kernel blocks channels (0 elsewhere: see ``EnergyModel.channel_block``); ``valid``
    the share of a windowed layer's (output, tap) pairs whose input tap lies inside the input, not
    on its zero padding (1 for layers without a window or padding); ``gemm_rows`` the rows M of a
    matrix-product kernel's call (a linear layer: batch x leading dimensions; 0 elsewhere);
    ``inplace`` whether a call writes its output into its input's memory and so allocates no output
    (PyTorch's ``ReLU(inplace=True)``; False elsewhere); ``fresh_share`` the share of the run's calls
    of the entry that got fresh output memory (a fact of how the run was measured, not of the layer:
    1, the default, is PyTorch eager's new output per call; 0 a run that kept its output memory from
    one call to the next, such as a loop writing into preallocated outputs or an allocator caching
    large blocks; in between, runs averaged over repetitions of which some reused); ``index_bytes``
    the bytes of an index tensor a call allocates beside its output (PyTorch's CPU max pooling
    computes int64 argmax indices even when they are not returned: 8 bytes per output element; 0
    elsewhere). ``inplace``, ``fresh_share`` and ``index_bytes`` set which allocations pay the fresh-output price (:func:`fresh_bytes`).
    """
    run: np.ndarray
    repeat: np.ndarray
    op_keys: list
    ops: np.ndarray
    bytes: np.ndarray
    calls: np.ndarray
    n_runs: int
    types: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    # given as array-likes or None (zeros); arrays after __post_init__
    channels: Any = None
    window: Any = None
    rows: Any = None
    in_channels: Any = None
    valid: Any = None
    gemm_rows: Any = None
    kernel: Any = None
    stride: Any = None
    inplace: Any = None
    fresh_share: Any = None
    index_bytes: Any = None

    def __post_init__(self):
        self.types = list(self.types) if self.types else [""] * len(self.run)
        if len(self.types) != len(self.run):
            raise ValueError(f"{len(self.types)} layer types for {len(self.run)} layer entries")
        self.run = np.asarray(self.run, dtype=np.int64)
        n = len(self.run)
        self.channels = np.zeros(n) if self.channels is None else np.asarray(self.channels, dtype=np.float64)
        self.window = np.zeros(n) if self.window is None else np.asarray(self.window, dtype=np.float64)
        self.rows = np.zeros(n) if self.rows is None else np.asarray(self.rows, dtype=np.float64)
        self.in_channels = (np.zeros(n) if self.in_channels is None
                            else np.asarray(self.in_channels, dtype=np.float64))
        self.valid = np.ones(n) if self.valid is None else np.asarray(self.valid, dtype=np.float64)
        self.gemm_rows = np.zeros(n) if self.gemm_rows is None else np.asarray(self.gemm_rows, dtype=np.float64)
        self.kernel = np.zeros(n) if self.kernel is None else np.asarray(self.kernel, dtype=np.float64)
        self.stride = np.zeros(n) if self.stride is None else np.asarray(self.stride, dtype=np.float64)
        self.inplace = np.zeros(n, dtype=bool) if self.inplace is None else np.asarray(self.inplace, dtype=bool)
        self.fresh_share = (np.ones(n) if self.fresh_share is None
                            else np.asarray(self.fresh_share, dtype=np.float64))
        self.index_bytes = (np.zeros(n) if self.index_bytes is None
                            else np.asarray(self.index_bytes, dtype=np.float64))
        if self.inplace.shape != (n,) or self.fresh_share.shape != (n,):
            raise ValueError(f"inplace and fresh_share need one value per layer entry ({n})")
        if not (np.all(self.fresh_share >= 0) and np.all(self.fresh_share <= 1)):
            raise ValueError("fresh output shares must be in [0, 1]")
        if self.index_bytes.shape != (n,) or not (np.all(np.isfinite(self.index_bytes))
                                                  and np.all(self.index_bytes >= 0)):
            raise ValueError(f"index bytes need one finite non-negative value per layer entry ({n})")
        if any(a.shape != (n,) for a in (self.channels, self.window, self.rows, self.in_channels, self.valid,
                                         self.gemm_rows, self.kernel, self.stride)):
            raise ValueError(f"channels, window, rows, in_channels, valid, gemm_rows, kernel and stride need one "
                             f"value per layer entry ({n})")
        if not (np.all(np.isfinite(self.kernel)) and np.all(self.kernel >= 0) and np.all(np.isfinite(self.stride))
                and np.all(self.stride >= 0)):
            raise ValueError("window kernel sizes and strides must be finite and non-negative")
        if not (np.all(np.isfinite(self.gemm_rows)) and np.all(self.gemm_rows >= 0)):
            raise ValueError("GEMM rows must be finite and non-negative")
        if not (np.all(np.isfinite(self.in_channels)) and np.all(self.in_channels >= 0)
                and np.all(self.valid >= 0) and np.all(self.valid <= 1)):
            raise ValueError("input channels must be non-negative and valid shares in [0, 1]")
        if not (np.all(np.isfinite(self.rows)) and np.all(self.rows >= 0)):
            raise ValueError("window rows must be finite and non-negative")
        if not (np.all(np.isfinite(self.channels)) and np.all(self.channels >= 0) and np.all(self.window >= 0)
                and np.all(self.window <= 1)):
            raise ValueError("channels must be non-negative and window shares in [0, 1]")
        self.repeat = np.asarray(self.repeat, dtype=np.float64)
        self.ops = np.asarray(self.ops, dtype=np.float64).reshape(len(self.run), len(self.op_keys))
        self.bytes = np.asarray(self.bytes, dtype=np.float64).reshape(len(self.run), len(BYTE_ROLES))
        self.calls = np.asarray(self.calls, dtype=np.float64)
        if not (np.all(np.isfinite(self.ops)) and np.all(self.ops >= 0) and np.all(np.isfinite(self.bytes))
                and np.all(self.bytes >= 0)):
            raise ValueError("layer features must be finite and non-negative")

    @classmethod
    def concat(cls, tables):
        """One table of the runs of several tables, run indices renumbered in order."""
        keys = sorted({k for t in tables for k in t.op_keys})
        runs, ops, offset = [], [], 0
        for t in tables:
            runs.append(t.run + offset)
            offset += t.n_runs
            m = np.zeros((len(t.run), len(keys)))
            for j, k in enumerate(t.op_keys):
                m[:, keys.index(k)] = t.ops[:, j]
            ops.append(m)
        cat = lambda xs, shape: np.concatenate(xs) if xs else np.zeros(shape)
        return cls(run=cat(runs, (0,)), repeat=cat([t.repeat for t in tables], (0,)), op_keys=keys,
                   ops=cat(ops, (0, len(keys))), bytes=cat([t.bytes for t in tables], (0, 3)),
                   calls=cat([t.calls for t in tables], (0,)), n_runs=offset,
                   types=[k for t in tables for k in t.types], labels=[label for t in tables for label in t.labels],
                   channels=cat([t.channels for t in tables], (0,)), window=cat([t.window for t in tables], (0,)),
                   rows=cat([t.rows for t in tables], (0,)), in_channels=cat([t.in_channels for t in tables], (0,)),
                   valid=cat([t.valid for t in tables], (0,)), gemm_rows=cat([t.gemm_rows for t in tables], (0,)),
                   kernel=cat([t.kernel for t in tables], (0,)), stride=cat([t.stride for t in tables], (0,)),
                   inplace=cat([t.inplace for t in tables], (0,)), fresh_share=cat([t.fresh_share for t in tables], (0,)),
                   index_bytes=cat([t.index_bytes for t in tables], (0,)))

    def subset(self, runs: Sequence[int]) -> LayerTable:
        """The table of the given run indices (in that order, renumbered 0..)."""
        order = np.asarray(runs, dtype=np.int64)
        new = np.full(self.n_runs, -1, dtype=np.int64)
        new[order] = np.arange(len(order))
        keep = new[self.run] >= 0
        return LayerTable(run=new[self.run[keep]], repeat=self.repeat[keep], op_keys=list(self.op_keys),
                          ops=self.ops[keep], bytes=self.bytes[keep], calls=self.calls[keep],
                          n_runs=len(order), types=[k for k, kept in zip(self.types, keep) if kept],
                          labels=[self.labels[i] for i in order] if self.labels else [],
                          channels=self.channels[keep], window=self.window[keep], rows=self.rows[keep],
                          in_channels=self.in_channels[keep], valid=self.valid[keep],
                          gemm_rows=self.gemm_rows[keep], kernel=self.kernel[keep], stride=self.stride[keep],
                          inplace=self.inplace[keep], fresh_share=self.fresh_share[keep], index_bytes=self.index_bytes[keep])

    def per_run(self, per_layer: ArrayLike) -> np.ndarray:
        """Sum a per-layer-call quantity (one value per entry, per call) over each run."""
        return np.bincount(self.run, weights=np.asarray(per_layer, dtype=np.float64) * self.repeat,
                           minlength=self.n_runs)


@dataclass
class EnergyModel:
    """A device's fitted (or given) energy model; see the module docstring for the formula.

    ``op_j`` maps format -> op -> joules per basic op; ``byte_j`` role -> joules per byte, and
    ``byte_j_by_type`` layer type -> role -> joules per byte where a kernel has its own prices
    (``byte_j`` is then the price of the other types);
    ``call_j`` joules per layer call; ``static_j_per_op`` layer type -> ``P_static / peak_k``
    (joules per op at that kernel's attained rate) and ``static_j_per_op_default`` for other
    types; ``static_w`` watts, ``peak_ops_per_s`` and ``bandwidth_bytes_per_s`` the roofline
    (their ratio is the balance the static energy uses), ``latency_s`` per call (time only).
    ``terms`` are the terms in use.
    """
    terms: tuple = ENERGY_TERMS
    op_j: dict = field(default_factory=dict)
    byte_j: dict = field(default_factory=dict)
    byte_j_by_type: dict = field(default_factory=dict)
    call_j: float = 0.0
    spill_j_per_byte: float = 0.0
    capacity_bytes: float | None = None
    static_w: float = 0.0
    static_j_per_op: dict = field(default_factory=dict)
    static_j_per_op_default: float = 0.0
    peak_ops_per_s: float = 1e9
    bandwidth_bytes_per_s: float = 1e9
    latency_s: float = 0.0
    channel_block: int = 1
    window_j_per_op: dict = field(default_factory=dict)
    row_j: dict = field(default_factory=dict)
    exposed_j: dict = field(default_factory=dict)
    output_balance: float | None = None
    pack_j: dict = field(default_factory=dict)
    pack_rows: tuple | None = None
    weight_spill_j: dict = field(default_factory=dict)
    weight_cache_bytes: float | None = None
    narrow_j: dict = field(default_factory=dict)
    narrow_window: tuple | None = None
    fresh_j: dict = field(default_factory=dict)
    fresh_j_default: float = 0.0
    fresh_threshold_bytes: float | None = None

    def _per_op(self, table):
        return np.asarray([self.static_j_per_op.get(k, self.static_j_per_op_default) for k in table.types],
                          dtype=np.float64)

    def _roofline_ops(self, table):
        """``max(n_ops, beta bytes)`` of each entry: ops at the balance ``beta = peak / bandwidth``."""
        return roofline_ops(table, self.peak_ops_per_s / self.bandwidth_bytes_per_s, self.channel_block)

    def _static(self, table):
        """Static joules of one call of each entry, latency left out."""
        out = self._per_op(table) * self._roofline_ops(table)
        if self.window_j_per_op:
            out = out + _by_type(self.window_j_per_op, table) * window_ops(table, self.channel_block)
        if self.row_j:
            out = out + _by_type(self.row_j, table) * table.rows
        if self.exposed_j and self.output_balance:
            out = out + _by_type(self.exposed_j, table) * exposed_bytes(table, self.output_balance, self.channel_block)
        if self.pack_j and self.pack_rows:
            out = out + _by_type(self.pack_j, table) * packed_bytes(table, self.pack_rows)
        if self.weight_spill_j and self.weight_cache_bytes:
            out = out + _by_type(self.weight_spill_j, table) * uncached_weight_bytes(table, self.weight_cache_bytes)
        if self.narrow_j and self.narrow_window:
            out = out + _by_type(self.narrow_j, table) * narrow_output_bytes(table, self.narrow_window)
        if self.fresh_threshold_bytes is not None and (self.fresh_j or self.fresh_j_default):
            prices = np.asarray([self.fresh_j.get(k, self.fresh_j_default) for k in table.types], dtype=np.float64)
            out = out + prices * fresh_bytes(table, self.fresh_threshold_bytes)
        return out

    def layer_time(self, table: LayerTable) -> np.ndarray:
        """Roofline time of one call of each layer entry (seconds): ``max(n_ops / peak_k, bytes /
        bandwidth_k) + n_window / rate_k + latency``; without a static power it is the latency alone."""
        if not self.static_w:
            return self.latency_s * table.calls
        return self._static(table) / self.static_w + self.latency_s * table.calls

    def efficiency(self) -> dict[str, float | None]:
        """``{layer type: e_k}``, the share of ``peak_ops_per_s`` each fitted kernel attains."""
        if not (self.static_w and self.peak_ops_per_s):
            return {}
        return {k: (self.static_w / (self.peak_ops_per_s * v) if v > 0 else None)
                for k, v in sorted(self.static_j_per_op.items())}

    def layer_terms(self, table: LayerTable) -> dict[str, np.ndarray]:
        """Joules of one call of each layer entry, per term: ``{term: array}`` (terms not in use
        are left out). An op or format without a price raises ValueError naming it."""
        out = {}
        if "ops" in self.terms:
            prices = []
            for fmt, op in table.op_keys:
                price = self.op_j.get(fmt, {}).get(op)
                if price is None:
                    if not np.any(table.ops[:, table.op_keys.index((fmt, op))]):
                        price = 0.0
                    else:
                        raise ValueError(f"the energy model prices no {fmt} {op} (it prices "
                                         f"{_priced(self.op_j)})")
                prices.append(price)
            out["ops"] = table.ops @ np.asarray(prices, dtype=np.float64) if prices else np.zeros(len(table.run))
        if "memory" in self.terms:
            byte_prices = np.asarray([[self.byte_j_by_type.get(k, self.byte_j).get(r, 0.0) for r in BYTE_ROLES]
                                      for k in table.types], dtype=np.float64).reshape(-1, len(BYTE_ROLES))
            out["memory"] = np.sum(table.bytes * byte_prices, axis=1)
            if self.capacity_bytes is not None and self.spill_j_per_byte:
                out["memory"] = out["memory"] + self.spill_j_per_byte * spilled_bytes(table, self.capacity_bytes)
        if "calls" in self.terms:
            out["calls"] = self.call_j * table.calls
        if "static" in self.terms:
            out["static"] = self._static(table) + self.static_w * self.latency_s * table.calls
        return out

    def predict_runs(self, table: LayerTable) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Joules of each run, and ``{term: joules of each run}``."""
        terms = {t: table.per_run(v) for t, v in self.layer_terms(table).items()}
        total = np.zeros(table.n_runs)
        for v in terms.values():
            total = total + v
        return total, terms

    def to_dict(self) -> dict[str, Any]:
        """The profile form (``devices.<name>.energy_model``)."""
        out = {"version": ENERGY_MODEL_VERSION, "terms": list(self.terms)}
        if "ops" in self.terms:
            out["op_j"] = {fmt: {op: float(v) for op, v in sorted(ops.items())} for fmt, ops in sorted(self.op_j.items())}
        if "memory" in self.terms:
            out["byte_j"] = {r: float(self.byte_j.get(r, 0.0)) for r in BYTE_ROLES}
            if self.byte_j_by_type:
                out["byte_j_by_type"] = {k: {r: float(v.get(r, 0.0)) for r in BYTE_ROLES}
                                         for k, v in sorted(self.byte_j_by_type.items())}
            if self.capacity_bytes is not None:
                out["capacity_bytes"] = float(self.capacity_bytes)
                out["spill_j_per_byte"] = float(self.spill_j_per_byte)
        if "calls" in self.terms:
            out["call_j"] = float(self.call_j)
        if "static" in self.terms:
            out["static_w"] = float(self.static_w)
            out["static_j_per_op"] = {k: float(v) for k, v in sorted(self.static_j_per_op.items())}
            out["static_j_per_op_default"] = float(self.static_j_per_op_default)
            out["peak_ops_per_s"] = float(self.peak_ops_per_s)
            out["bandwidth_bytes_per_s"] = float(self.bandwidth_bytes_per_s)
            if self.latency_s:
                out["latency_s"] = float(self.latency_s)
            if self.window_j_per_op:
                out["window_j_per_op"] = {k: float(v) for k, v in sorted(self.window_j_per_op.items())}
            if self.row_j:
                out["row_j"] = {k: float(v) for k, v in sorted(self.row_j.items())}
            if self.exposed_j and self.output_balance:
                out["exposed_j"] = {k: float(v) for k, v in sorted(self.exposed_j.items())}
                out["output_balance"] = float(self.output_balance)
            if self.pack_j and self.pack_rows:
                out["pack_j"] = {k: float(v) for k, v in sorted(self.pack_j.items())}
                out["pack_rows"] = [int(self.pack_rows[0]), int(self.pack_rows[1])]
            if self.weight_spill_j and self.weight_cache_bytes:
                out["weight_spill_j"] = {k: float(v) for k, v in sorted(self.weight_spill_j.items())}
                out["weight_cache_bytes"] = float(self.weight_cache_bytes)
            if self.narrow_j and self.narrow_window:
                out["narrow_j"] = {k: float(v) for k, v in sorted(self.narrow_j.items())}
                out["narrow_window"] = [int(self.narrow_window[0]), int(self.narrow_window[1])]
            if self.fresh_threshold_bytes is not None and (self.fresh_j or self.fresh_j_default):
                out["fresh_j"] = {k: float(v) for k, v in sorted(self.fresh_j.items())}
                out["fresh_j_default"] = float(self.fresh_j_default)
                out["fresh_threshold_bytes"] = float(self.fresh_threshold_bytes)
            if self.channel_block > 1:
                out["channel_block"] = int(self.channel_block)
        return out

    @classmethod
    def from_dict(cls, data):
        """From the profile form (already validated by hardware_profiles)."""
        return cls(terms=tuple(data.get("terms", ENERGY_TERMS)),
                   op_j={f: dict(v) for f, v in data.get("op_j", {}).items()},
                   byte_j=dict(data.get("byte_j", {})), call_j=float(data.get("call_j", 0.0)),
                   byte_j_by_type={k: dict(v) for k, v in data.get("byte_j_by_type", {}).items()},
                   capacity_bytes=data.get("capacity_bytes"),
                   spill_j_per_byte=float(data.get("spill_j_per_byte", 0.0)),
                   static_w=float(data.get("static_w", 0.0)),
                   static_j_per_op={k: float(v) for k, v in data.get("static_j_per_op", {}).items()},
                   static_j_per_op_default=float(data.get("static_j_per_op_default", 0.0)),
                   peak_ops_per_s=float(data.get("peak_ops_per_s", 1e9)),
                   bandwidth_bytes_per_s=float(data.get("bandwidth_bytes_per_s", 1e9)),
                   latency_s=float(data.get("latency_s", 0.0)),
                   channel_block=int(data.get("channel_block", 1)),
                   window_j_per_op={k: float(v) for k, v in data.get("window_j_per_op", {}).items()},
                   row_j={k: float(v) for k, v in data.get("row_j", {}).items()},
                   exposed_j={k: float(v) for k, v in data.get("exposed_j", {}).items()},
                   output_balance=(float(data["output_balance"]) if data.get("output_balance") else None),
                   pack_j={k: float(v) for k, v in data.get("pack_j", {}).items()},
                   pack_rows=(tuple(int(v) for v in data["pack_rows"]) if data.get("pack_rows") else None),
                   weight_spill_j={k: float(v) for k, v in data.get("weight_spill_j", {}).items()},
                   weight_cache_bytes=(float(data["weight_cache_bytes"]) if data.get("weight_cache_bytes")
                                       else None),
                   narrow_j={k: float(v) for k, v in data.get("narrow_j", {}).items()},
                   narrow_window=(tuple(int(v) for v in data["narrow_window"]) if data.get("narrow_window")
                                  else None),
                   fresh_j={k: float(v) for k, v in data.get("fresh_j", {}).items()},
                   fresh_j_default=float(data.get("fresh_j_default", 0.0)),
                   fresh_threshold_bytes=(float(data["fresh_threshold_bytes"]) if "fresh_threshold_bytes" in data
                                          else None))


def _by_type(prices, table):
    """``prices[type]`` of each entry of ``table`` (0 for a type without one)."""
    return np.asarray([prices.get(k, 0.0) for k in table.types], dtype=np.float64)


def spilled_bytes(table, capacity):
    """Bytes of each layer entry beyond ``capacity`` (``max(0, bytes - capacity)``)."""
    return np.maximum(table.bytes.sum(axis=1) - capacity, 0.0)


def blocked_ops(table, block=1):
    """Basic ops a kernel executes in one call of each entry: the counted ops times the share of
    (output, tap) pairs whose tap lies inside the input (``table.valid``: direct convolutions skip
    the taps that fall on the zero padding), a blocked kernel's output channels padded to a multiple
    of ``block`` (``n_ops x ceil(c / block) block / c``, ``c`` from ``table.channels``) and its
    input channels too where they fill at least one block (``table.in_channels``; with fewer,
    oneDNN's first-layer kernel reads the plain layout unpadded)."""
    ops = table.ops.sum(axis=1) * table.valid
    if block > 1:
        c = table.channels
        ops = ops * np.where(c > 0, np.ceil(c / block) * block / np.maximum(c, 1.0), 1.0)
        ci = table.in_channels
        ops = ops * np.where(ci >= block, np.ceil(ci / block) * block / np.maximum(ci, 1.0), 1.0)
    return ops


def exposed_bytes(table, balance, block=1):
    """Output bytes of each channel-blocked entry (``table.channels`` > 0) that its ops do not hide:
    ``max(0, output bytes - blocked ops / balance)``, ``balance`` the ops that cover the write of
    one output byte (0 for other entries)."""
    hidden = blocked_ops(table, block) / balance
    return np.where(table.channels > 0, np.maximum(table.bytes[:, 1] - hidden, 0.0), 0.0)


def packed_bytes(table, pack_rows):
    """Weight bytes of each matrix-product entry whose GEMM rows M (``table.gemm_rows``) lie in
    ``[pack_rows[0], pack_rows[1])``: the weight panel a BLAS GEMM packs on every call once M is
    past the matrix-vector path (0 for other entries)."""
    lo, hi = pack_rows
    m = table.gemm_rows
    return np.where((m >= lo) & (m < hi), table.bytes[:, 2], 0.0)


def uncached_weight_bytes(table, cache_bytes):
    """Weight bytes of each matrix-product entry (``table.gemm_rows`` > 0) whose weights exceed
    ``cache_bytes`` (the last-level cache: they stream from DRAM; 0 for other entries)."""
    w = table.bytes[:, 2]
    return np.where((table.gemm_rows > 0) & (w > cache_bytes), w, 0.0)


def narrow_output_bytes(table, narrow_window):
    """Output bytes of each windowed entry that blocks no channels (a pooling: ``table.window`` > 0,
    ``table.channels`` 0) whose innermost kernel size is ``narrow_window[0]`` and stride at least
    ``narrow_window[1]`` (0 for other entries). An empirical price class: measured, PyTorch's scalar
    max-pool loop costs ~3 ns more per output with 2-wide windows at stride >= 2 than the window
    terms give; what causes it is not established."""
    k, s = narrow_window
    hit = (table.window > 0) & (table.channels == 0) & (table.kernel == k) & (table.stride >= s)
    return np.where(hit, table.bytes[:, 1], 0.0)


def fresh_bytes(table, threshold):
    """Bytes of each entry's call that are freshly allocated above ``threshold`` and so page-faulted
    (and zeroed by the kernel) on every call: its output and its index tensor (``table.index_bytes``),
    each counted whole when it alone exceeds ``threshold``, times the share of the run's calls that
    got fresh memory (``table.fresh_share``; 0 for in-place calls, ``table.inplace``). glibc's malloc serves every block
    above its mmap threshold (at most 32 MiB on 64-bit) with a fresh mapping that it unmaps on free,
    so such an output is new memory on every call: measured on the Xeon, out-of-place ReLU costs
    +1.35 ns per fp32 element (~0.34 ns per byte) from 32 MiB of output on, in-place ReLU never.
    The outputs role of a training table also holds the output gradient's bytes, so there the gate
    is approximate."""
    out = table.bytes[:, 1]
    idx = table.index_bytes
    fresh = np.where(out > threshold, out, 0.0) + np.where(idx > threshold, idx, 0.0)
    return np.where(table.inplace, 0.0, fresh * table.fresh_share)


def window_ops(table, block=1):
    """Ops of each entry whose input element is new to its window (``blocked ops x window``)."""
    return blocked_ops(table, block) * table.window


def arithmetic_intensity(table):
    """Basic ops per byte of inputs, outputs and weights of one call of each layer entry (nan for
    entries that move no bytes)."""
    moved = table.bytes.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(moved > 0, table.ops.sum(axis=1) / np.where(moved > 0, moved, 1.0), np.nan)


def compute_bound_types(table, kinds=None, ratio=COMPUTE_BOUND_RATIO):
    """The compute-bound layer types of ``table`` (sorted): those whose median arithmetic intensity
    (:func:`arithmetic_intensity` over their entries) is at least ``ratio`` times the highest such
    median among ``kinds`` (default: all types of the table). Dense matrix kernels (convolution,
    linear: tens to thousands of ops per byte) against element-wise and pooling kernels (a few ops per
    byte at most): the ones whose time their ops set, so whose static price measures an attained rate.
    Where no type moves bytes (or counts ops), all of ``kinds``."""
    kinds = sorted(set(table.types)) if kinds is None else sorted(kinds)
    per_entry = arithmetic_intensity(table)
    types = np.asarray(table.types)
    medians = {}
    for kind in kinds:
        values = per_entry[(types == kind) & np.isfinite(per_entry)]
        if values.size:
            medians[kind] = float(np.median(values))
    top = max(medians.values(), default=0.0)
    if top <= 0:
        return kinds
    return [k for k in kinds if medians.get(k, -1.0) >= ratio * top]


def roofline_ops(table, balance, block=1):
    """``max(n_ops, balance x bytes)`` of each layer entry (op-equivalents of one call)."""
    return np.maximum(blocked_ops(table, block), balance * table.bytes.sum(axis=1))


def _priced(op_j):
    pairs = [f"{fmt} {op}" for fmt, ops in sorted(op_j.items()) for op in ops]
    return ", ".join(pairs) if pairs else "no op"


def _check_terms(terms):
    terms = tuple(terms)
    unknown = [t for t in terms if t not in ENERGY_TERMS]
    if unknown:
        raise ValueError(f"unknown energy term {unknown[0]!r}; known: {', '.join(ENERGY_TERMS)}")
    if not terms:
        raise ValueError("an energy model needs at least one term")
    if len(set(terms)) != len(terms):
        raise ValueError("each energy term once")
    return tuple(t for t in ENERGY_TERMS if t in terms)


def tos_only_scale(table: LayerTable, y: ArrayLike, tos_per_op: Mapping[tuple[str, str], float], *,
                   loss: str = "relative") -> float:
    """Joules per TO of the one-coefficient fit ``E = s x TOs`` (no intercept) of the runs."""
    tos = table.per_run(table.ops @ np.asarray([tos_per_op[k] for k in table.op_keys]))
    w = _weights(y, loss)
    a = tos * w
    denominator = float(a @ a)
    return float(a @ (y * w)) / denominator if denominator > 0 else 0.0


def _weights(y, loss):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {loss!r}")
    if loss == "absolute":
        return np.ones_like(y)
    if np.any(y <= 0):
        raise ValueError("the relative loss needs positive measured energies")
    return 1.0 / y


def _solve(design, y, w, prior_rows, *, free_last=False):
    """Bounded (>= 0) least squares of the weighted data rows plus prior rows, on norm-scaled
    columns. ``prior_rows(scale)`` gives the (m, p) prior rows and targets in the scaled space.
    With ``free_last`` the last column (the prior's common scale s) has no data and unit scale.
    Returns (coefficients, data loss = sum of squared weighted residuals)."""
    from scipy.optimize import lsq_linear
    weighted = design * w[:, None]
    scale = np.sqrt(np.sum(weighted ** 2, axis=0))
    scale[scale == 0] = 1.0
    if free_last:
        scale[-1] = 1.0
    a = weighted / scale
    b = y * w
    prior_a, prior_b = prior_rows(scale[:-1] if free_last else scale)
    if len(prior_b):
        a, b_full = np.vstack([a, prior_a]), np.concatenate([b, prior_b])
    else:
        b_full = b
    if a.shape[1] == 0:
        return np.zeros(0), float(b @ b)
    result = lsq_linear(a, b_full, bounds=(0.0, np.inf), method="bvls")
    coef = result.x / scale
    residual = design @ coef * w - b
    return coef, float(residual @ residual)


def fit_energy_model(table: LayerTable, y: ArrayLike, *, terms: Sequence[str] = ENERGY_TERMS,
                     tos_per_op: Mapping[tuple[str, str], float] | None = None, loss: str = "relative",
                     prior_strength: float = 1e-3, peak_ops_per_s: float | None = None,
                     bandwidth_bytes_per_s: float | None = None, static_w: float | None = None,
                     latency_s: float = 0.0, spill_search: bool = True, memory_by_type: bool = True,
                     capacity_bytes: float | None = None, channel_block: int = 1,
                     window: bool = True, output_bound: bool = False, pack_rows: Sequence[int] | None = None,
                     weight_cache_bytes: float | None = None,
                     narrow_window: Sequence[int] | None = None,
                     fresh_threshold_bytes: float | None = FRESH_THRESHOLD_BYTES) -> tuple[EnergyModel, dict[str, Any]]:
    """Fit an :class:`EnergyModel` to the measured joules ``y`` of the runs of ``table``.

    ``tos_per_op`` maps each ``(format, op)`` of the table to the transistors of its unit (the
    profile's cost table): the prior of the per-op energies (see the module docstring); required
    with the ``ops`` term. Ops it gives that no run counts (of a format the runs count) are priced
    by the prior alone: their transistors x the prior's common joules per transistor.
    ``peak_ops_per_s``, ``bandwidth_bytes_per_s``, ``static_w``: given
    values are kept (both rates given fix the balance; otherwise it is searched); see the module
    docstring for what the energies identify. ``capacity_bytes`` given fixes the spill level
    (else it is searched, unless ``spill_search`` is False: no spill level). ``memory_by_type``:
    byte prices per layer type (default) or one set for all. ``channel_block``: pad the output
    channels of channel-blocked kernels to this multiple in the static term (1: no padding).
    ``window``: fit the static price of window ops and of window rows per windowed layer type
    (with the static term). ``output_bound``: fit the static price of a channel-blocked kernel's
    output bytes that its ops do not hide (:func:`exposed_bytes`), per blocked layer type, the
    output balance searched on a log grid (with the static term); off by default since the
    fresh-output price (below) prices the same convolutions' outputs more robustly (on the Getzner
    data the two together let 5 convolution rows set a price that put a VGG-16 analogue 20 % off). ``pack_rows`` ``(lo, hi)``: fit a
    static price per weight byte of matrix-product calls with ``lo <= M < hi`` (:func:`packed_bytes`),
    per matrix-product layer type; ``weight_cache_bytes``: fit a static price per weight byte of
    matrix-product calls whose weights exceed it (:func:`uncached_weight_bytes`); both given, not
    searched, and off by default (with the static term). ``narrow_window`` ``(k, s)``: fit a static
    price per output byte of poolings whose innermost kernel is ``k`` wide with stride ``>= s``
    (:func:`narrow_output_bytes`, an empirical price class), per pooling layer type; given, off by
    default (with the static term). ``fresh_threshold_bytes``: fit a static price per byte of the
    outputs (and index tensors) a call allocates fresh above this size (:func:`fresh_bytes`; given,
    not searched; default 32 MiB, glibc's mmap threshold cap; None: off), per layer type whose rows
    have such bytes; types without a fitted price get ``fresh_j_default``, the median of the
    positive fitted prices (page faults cost the same whatever the kernel).
    Returns ``(model, info)``; ``info`` holds the loss,
    the TOs-only joules per TO, the balance search's size, ``time_scale`` (``"given"`` or
    ``"nominal"``) and ``rate_reference`` (the compute-bound layer types whose fastest static price is
    the price of unseen types and sets the peak; None without the static term).
    """
    terms = _check_terms(terms)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or y.size != table.n_runs:
        raise ValueError(f"{y.size} energies for {table.n_runs} runs")
    if not np.all(np.isfinite(y)):
        raise ValueError("measured energies must be finite")
    if not (isinstance(prior_strength, (int, float)) and math.isfinite(prior_strength) and prior_strength >= 0):
        raise ValueError(f"prior strength must be a non-negative number, not {prior_strength!r}")
    for name, value in (("peak_ops_per_s", peak_ops_per_s), ("bandwidth_bytes_per_s", bandwidth_bytes_per_s),
                        ("static_w", static_w)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, not {value!r}")
    if not (isinstance(channel_block, int) and channel_block >= 1):
        raise ValueError(f"channel block must be a positive integer, not {channel_block!r}")
    if pack_rows is not None:
        pack_rows = tuple(pack_rows)
        if not (len(pack_rows) == 2 and all(isinstance(v, (int, np.integer)) for v in pack_rows)
                and 1 <= pack_rows[0] < pack_rows[1]):
            raise ValueError(f"pack rows must be two integers 1 <= lo < hi, not {pack_rows!r}")
    if narrow_window is not None:
        narrow_window = tuple(narrow_window)
        if not (len(narrow_window) == 2 and all(isinstance(v, (int, np.integer)) for v in narrow_window)
                and narrow_window[0] >= 1 and narrow_window[1] >= 1):
            raise ValueError(f"narrow window must be two integers kernel >= 1, stride >= 1, not {narrow_window!r}")
    if fresh_threshold_bytes is not None and not (isinstance(fresh_threshold_bytes, (int, float))
                                                  and math.isfinite(fresh_threshold_bytes)
                                                  and fresh_threshold_bytes >= 0):
        raise ValueError(f"fresh threshold bytes must be a non-negative number, not {fresh_threshold_bytes!r}")
    if weight_cache_bytes is not None and not (math.isfinite(weight_cache_bytes) and weight_cache_bytes > 0):
        raise ValueError(f"weight cache bytes must be a positive number, not {weight_cache_bytes!r}")
    if not (math.isfinite(latency_s) and latency_s >= 0):
        raise ValueError(f"latency must be a non-negative number of seconds, not {latency_s!r}")
    w = _weights(y, loss)
    keys = list(table.op_keys) if "ops" in terms else []
    if keys:
        if tos_per_op is None:
            raise ValueError("the ops term needs the transistors of each op (tos_per_op) as its prior")
        missing = [k for k in keys if k not in tos_per_op]
        if missing:
            raise ValueError(f"no transistor count for {missing[0][0]} {missing[0][1]}")
        tos = np.asarray([float(tos_per_op[k]) for k in keys])
        if np.any(tos <= 0):
            raise ValueError("transistor counts must be positive")
        u_ref = tos_only_scale(table, y, tos_per_op, loss=loss)
    else:
        tos = np.zeros(0)
        u_ref = 0.0
    # columns: TOs of each op (coefficient u = J/TO), bytes per role, calls, roofline ops per
    # layer type (coefficient s_k); then the prior's common scale s (no data column)
    op_columns = [table.per_run(table.ops[:, j] * tos[j]) for j in range(len(keys))]
    fixed = []
    memory_kinds = sorted(set(table.types)) if ("memory" in terms and memory_by_type) else []
    if memory_kinds:
        # per layer type: each kernel's own attained bandwidth (roles with no bytes get price 0)
        for kind in memory_kinds:
            mask = np.asarray([t == kind for t in table.types])
            fixed += [table.per_run(np.where(mask, table.bytes[:, r], 0.0)) for r in range(len(BYTE_ROLES))]
    elif "memory" in terms:
        fixed += [table.per_run(table.bytes[:, r]) for r in range(len(BYTE_ROLES))]
    if "calls" in terms:
        fixed.append(table.per_run(table.calls))
    kinds = sorted(set(table.types)) if "static" in terms else []
    kind_index = np.asarray([kinds.index(k) for k in table.types]) if kinds else np.zeros(0, dtype=np.int64)
    n_ops = len(op_columns)
    with_s = bool(n_ops) and u_ref > 0
    sqrt_prior = math.sqrt(prior_strength)
    ynorm = float(np.sqrt(np.mean((y * w) ** 2))) or 1.0
    shrink = sqrt_prior / (math.sqrt(max(table.n_runs, 1)) * ynorm)

    def prior_rows(scale):
        p = scale.size + (1 if with_s else 0)
        rows = []
        if sqrt_prior == 0.0:
            return np.zeros((0, p)), np.zeros(0)
        if with_s:
            # (a_j - s scale_j) / (sqrt(n) ynorm): the op's coefficient against the TOs price
            # s, in units of the share of the (weighted) energy the difference explains; the
            # unknown is a_s = s / u_ref (of order 1, unit scale)
            for j in range(n_ops):
                row = np.zeros(p)
                row[j] = shrink
                row[-1] = -shrink * u_ref * scale[j]
                rows.append(row)
        # other terms toward 0: a_j / (sqrt(n) ynorm) is the column's share of the weighted energy
        for j in range(n_ops, scale.size):
            row = np.zeros(p)
            row[j] = shrink
            rows.append(row)
        rows = np.asarray(rows).reshape(-1, p)
        return rows, np.zeros(rows.shape[0])

    def having(values):
        """The layer types with an entry whose ``values`` is positive."""
        return [k for k in kinds if np.any(values[kind_index == kinds.index(k)] > 0)]

    def columns(values, types):
        """One per-run column of ``values`` per layer type in ``types`` (its entries only)."""
        return [table.per_run(np.where(kind_index == kinds.index(k), values, 0.0)) for k in types]

    windowed = having(table.window) if window else []
    window_columns = columns(window_ops(table, channel_block), windowed)
    rowed = having(table.rows) if window else []
    window_columns += columns(table.rows, rowed)
    gemm_kinds = having(table.gemm_rows)
    packed_kinds = gemm_kinds if pack_rows is not None else []
    if packed_kinds:
        window_columns += columns(packed_bytes(table, pack_rows), packed_kinds)
    uncached_kinds = gemm_kinds if weight_cache_bytes is not None else []
    if uncached_kinds:
        window_columns += columns(uncached_weight_bytes(table, weight_cache_bytes), uncached_kinds)
    narrow_kinds = []
    if narrow_window is not None:
        narrow = narrow_output_bytes(table, narrow_window)
        narrow_kinds = having(narrow)
        window_columns += columns(narrow, narrow_kinds)
    fresh_kinds = []
    if fresh_threshold_bytes is not None:
        fresh = fresh_bytes(table, fresh_threshold_bytes)
        fresh_kinds = having(fresh)
        window_columns += columns(fresh, fresh_kinds)

    exposed_kinds = having(table.channels) if output_bound else []

    def static_columns(balance, out_balance):
        per_layer = roofline_ops(table, balance, channel_block)
        cols = columns(per_layer, kinds) + window_columns
        if out_balance is not None:
            cols += columns(exposed_bytes(table, out_balance, channel_block), exposed_kinds)
        return cols

    def solve(balance, capacity=None, out_balance=None):
        spill = [table.per_run(spilled_bytes(table, capacity))] if capacity is not None else []
        cols = op_columns + fixed + spill + (static_columns(balance, out_balance) if kinds else [])
        design = np.column_stack(cols) if cols else np.zeros((table.n_runs, 0))
        if not with_s:
            return _solve(design, y, w, prior_rows)
        extended = np.column_stack([design, np.zeros(table.n_runs)])
        coef, value = _solve(extended, y, w, prior_rows, free_last=True)
        prior_scale[0] = max(float(coef[-1]), 0.0) * u_ref
        return coef[:-1], value

    prior_scale = [u_ref]      # the prior's common J per TO, as the last solve found it
    model = EnergyModel(terms=tuple(terms), latency_s=float(latency_s), channel_block=channel_block if kinds else 1)
    searched = 0
    fixed_balance = peak_ops_per_s is not None and bandwidth_bytes_per_s is not None
    balance = (peak_ops_per_s or 1e9) / (bandwidth_bytes_per_s or 1e9)
    capacity = None
    if kinds and not fixed_balance:
        balance, n = _search(lambda b: solve(b)[1], -3.0, 3.0)
        searched += n
    if "memory" in terms and capacity_bytes is not None:
        capacity = float(capacity_bytes)
    elif "memory" in terms and spill_search:
        capacity, n = _search(lambda c: solve(balance, c)[1], 6.0, 12.0)
        searched += n
        if kinds and not fixed_balance:
            balance, n = _search(lambda b: solve(b, capacity)[1], -3.0, 3.0)
            searched += n
    out_balance = None
    if exposed_kinds:
        out_balance, n = _search(lambda b: solve(balance, capacity, b)[1], 0.0, 3.0)
        searched += n
    coef, loss_value = solve(balance, capacity, out_balance)
    coef = [max(float(c), 0.0) for c in coef]
    i = 0
    for (fmt, op), t in zip(keys, tos):
        model.op_j.setdefault(fmt, {})[op] = coef[i] * t
        i += 1
    if keys and tos_per_op is not None:
        # ops of the fitted formats that no row counted: the prior's price, TOs x the common J per TO
        for (fmt, op), t in sorted(tos_per_op.items()):
            if fmt in model.op_j and op not in model.op_j[fmt] and t > 0:
                model.op_j[fmt][op] = (prior_scale[0] if with_s else u_ref) * float(t)
    if memory_kinds:
        for kind in memory_kinds:
            model.byte_j_by_type[kind] = dict(zip(BYTE_ROLES, coef[i:i + 3]))
            i += 3
        # other types: per role, the median price of the kernels that move such bytes
        moved = {r: {t for t, b in zip(table.types, table.bytes[:, j]) if b > 0} for j, r in enumerate(BYTE_ROLES)}
        model.byte_j = {r: float(np.median([model.byte_j_by_type[k][r] for k in memory_kinds if k in moved[r]]
                                           or [0.0])) for r in BYTE_ROLES}
    elif "memory" in terms:
        model.byte_j = dict(zip(BYTE_ROLES, coef[i:i + 3]))
        i += 3
    if "calls" in terms:
        model.call_j = coef[i]
        i += 1
    if capacity is not None:
        model.spill_j_per_byte = coef[i]
        model.capacity_bytes = float(capacity) if coef[i] > 0 else None
        i += 1
    time_scale = None
    reference = None
    if kinds:
        model.static_j_per_op = dict(zip(kinds, coef[i:i + len(kinds)]))
        i += len(kinds)
        model.window_j_per_op = dict(zip(windowed, coef[i:i + len(windowed)]))
        i += len(windowed)
        model.row_j = dict(zip(rowed, coef[i:i + len(rowed)]))
        i += len(rowed)
        model.pack_j = {k: v for k, v in zip(packed_kinds, coef[i:i + len(packed_kinds)]) if v > 0}
        model.pack_rows = pack_rows if model.pack_j else None
        i += len(packed_kinds)
        model.weight_spill_j = {k: v for k, v in zip(uncached_kinds, coef[i:i + len(uncached_kinds)]) if v > 0}
        model.weight_cache_bytes = float(weight_cache_bytes) if model.weight_spill_j else None
        i += len(uncached_kinds)
        model.narrow_j = {k: v for k, v in zip(narrow_kinds, coef[i:i + len(narrow_kinds)]) if v > 0}
        model.narrow_window = narrow_window if model.narrow_j else None
        i += len(narrow_kinds)
        fitted_fresh = dict(zip(fresh_kinds, coef[i:i + len(fresh_kinds)]))
        i += len(fresh_kinds)
        positive_fresh = [v for v in fitted_fresh.values() if v > 0]
        if positive_fresh:
            # kernels whose rows never allocated above the threshold: page faults cost the same whatever
            # the kernel, so the median of the positive fitted prices
            model.fresh_j = fitted_fresh
            model.fresh_j_default = float(np.median(positive_fresh))
            model.fresh_threshold_bytes = float(fresh_threshold_bytes)
        if exposed_kinds:
            model.exposed_j = dict(zip(exposed_kinds, coef[i:i + len(exposed_kinds)]))
            model.output_balance = out_balance if any(v > 0 for v in model.exposed_j.values()) else None
            if model.output_balance is None:
                model.exposed_j = {}
        # the rate reference: the compute-bound kernels (arithmetic intensity within a decade of the
        # most intense fitted kernel's), whose static price measures the rate they attain; an element-wise
        # kernel's static price can be near 0 because its energy sits in other terms, not because it is fast
        reference = compute_bound_types(table, kinds)
        # a kernel never measured is assumed to run at the peak (the roofline's own assumption): the
        # price of the fastest compute-bound kernel (0 where the fit put their per-op energy in the op
        # prices they share: an unseen kernel then pays those op prices alone, as they do)
        model.static_j_per_op_default = min(model.static_j_per_op[k] for k in reference)
        positive = ([model.static_j_per_op[k] for k in reference if model.static_j_per_op[k] > 0]
                    or [v for v in model.static_j_per_op.values() if v > 0])
        fastest = min(positive) if positive else 0.0
        # P_static / peak = s of the fastest compute-bound kernel (e = 1); the balance fixes the bandwidth
        if static_w is not None:
            model.static_w = float(static_w)
            model.peak_ops_per_s = static_w / fastest if fastest else (peak_ops_per_s or 1e9)
            time_scale = "given"
        else:
            model.peak_ops_per_s = float(peak_ops_per_s) if peak_ops_per_s is not None else 1e9
            model.static_w = fastest * model.peak_ops_per_s
            time_scale = "given" if peak_ops_per_s is not None else "nominal"
        model.bandwidth_bytes_per_s = model.peak_ops_per_s / balance
    info = {"loss": loss, "loss_value": loss_value, "tos_j_per_to": u_ref, "prior_strength": prior_strength,
            "searched": searched, "capacity_bytes": model.capacity_bytes, "balance_ops_per_byte": balance if kinds else None,
            "time_scale": time_scale, "rate_reference": reference}
    return model, info


def _search(loss_of, lo, hi):
    """(value, points tried) minimising ``loss_of(10^x)`` over x in [lo, hi]: a grid of 4 points
    per decade, then two refinements (7 points at a quarter, then a sixteenth of the step)."""
    tried = 0
    best = None
    step = 0.25
    candidates = 10.0 ** np.arange(lo, hi + step / 2, step)
    for _ in range(3):
        for value in candidates:
            loss = loss_of(float(value))
            tried += 1
            if best is None or loss < best[0]:
                best = (loss, float(value))
        step /= 4
        candidates = best[1] * 10.0 ** (step * np.arange(-3, 4))
    return best[1], tried
