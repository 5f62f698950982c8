"""Design sweeps: op counts of whole model families straight from parameter arrays.

A sweep scores thousands to millions of configurations of one family, so it builds no Python
object per model: a numba kernel reads one row of parameter arrays per configuration and writes
that configuration's counts ``(stages, ops)``, parameters and MACs. The kernels implement exactly
the formulas of :mod:`opcount._formulas` and the engine's backward and update rules for two
families, and the tests compare them with :func:`opcount.count_model` on sampled
configurations (exact equality):

``mlp``
    ``inputs`` features, ``depth`` hidden blocks of ``linear(width)`` + activation, then
    ``linear(outputs)``; the paper's DNN set is ``inputs=4, depth=3, outputs=1`` with mse
    (li2022, section III, Table II).
``cnn``
    ``depth`` blocks of ``conv2d(channels, kernel, padding)`` + activation on a square
    ``image`` of ``in_channels`` channels, then ``global_avgpool`` and ``linear(classes)``; the
    paper's CNN set is ``channels=32, image=256, in_channels=3, classes=2`` with GELU and
    cross-entropy (li2022, section III, Table II).

Activations are priced per element by the profile's recipes (``relu`` is one comparison
forward and backward), as the counting engine does. Every count is exact int64; a configuration
whose counts would pass 2**62 is flagged (``status`` 2) rather than wrapped, and a convolution
whose kernel does not fit the image is flagged (``status`` 1). Flagged rows hold zeros.
Parameter values (axes, batch, inputs, outputs, in_channels, classes) must lie at most
:data:`MAX_VALUE` (2**62); larger ones raise :class:`opcount.ModelError`.

    >>> from hardware_profiles import load
    >>> s = sweep_mlp(load("li2022"), width=[4, 8], depth=3, activation="sigmoid")
    >>> s.counts.shape, s.params.tolist()
    ((2, 4, 6), [61, 177])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from numba import njit, prange

from ._engine import BASIC_OPS, PHASES, STAGES
from ._ir import LOSSES, OPTIMIZERS, ModelError
from ._numba_config import NJIT, NJIT_INLINE, NJIT_PARALLEL

# Helpers are inlined at numba's IR level: as separate functions every call would pass shared
# arrays by reference count, and two threads updating one count serialize on it.


__all__ = ["SweepCounts", "ACTIVATIONS", "FAMILIES", "sweep_mlp", "sweep_cnn", "mlp_spec", "cnn_spec",
           "grid", "STATUS_OK", "STATUS_GEOMETRY", "STATUS_OVERFLOW", "MAX_VALUE"]

#: Activations a sweep may use: recipe names of the profile, plus relu (comparisons).
ACTIVATIONS = ("sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "relu")
FAMILIES = ("mlp", "cnn")
STATUS_OK, STATUS_GEOMETRY, STATUS_OVERFLOW = 0, 1, 2

# stage and op indices inside the kernels
_FWD, _LOSS, _BWD, _UPD = 0, 1, 2, 3
_ADD, _SUB, _MUL, _DIV, _SQRT, _CMP = 0, 1, 2, 3, 4, 5
# counts past this are flagged: leaves headroom below int64's 9.22e18 for the float shadow's
# rounding, so a flagged row is never a wrapped one
_LIMIT = float(2 ** 62)
#: The largest parameter value (axis values, batch, inputs, ...) a sweep takes: every one fits
#: int64, and a product of them that passes int64 inside a kernel also passes the 2**62 flag
#: (computed in float64), so such a row is flagged, never wrapped.
MAX_VALUE = 2 ** 62
# configurations per parallel work item
_CHUNK = 4096

_OPTIMIZER_CODE = {name: i for i, name in enumerate(OPTIMIZERS)}
_LOSS_CODE = {name: i for i, name in enumerate(LOSSES)}


@dataclass
class SweepCounts:
    """Counts of a sweep, one row per configuration.

    ``counts``: int64 ``(configs, 4 stages, 6 ops)`` in ``STAGES`` x ``BASIC_OPS`` order, stages
    outside the phase zero; ``params`` and ``macs`` int64 ``(configs,)`` (MACs of the phase's
    forward and backward stages, as :attr:`opcount.CountResult.macs`); ``status`` int8
    (0 ok, 1 the kernel does not fit the image, 2 a count passes 2**62); ``config`` the
    broadcast parameter arrays, one element per configuration (``activation`` as indices into
    :data:`ACTIVATIONS`; :meth:`activation_names` gives the names).
    """
    family: str
    phase: str
    batch: int
    config: dict
    counts: np.ndarray
    params: np.ndarray
    macs: np.ndarray
    status: np.ndarray

    @property
    def flops(self):
        """FLOPs = 2 x MACs, as PyTorch's FLOP counter."""
        return 2 * self.macs

    def __len__(self):
        return self.counts.shape[0]

    def activation_names(self) -> np.ndarray:
        """The activation of each configuration, as names."""
        return np.array(ACTIVATIONS)[self.config["activation"]]


# --- numba kernels ----------------------------------------------------------------------------

@njit(**NJIT_INLINE)
def _put(acc, shadow, stage, op, value, estimate):
    acc[stage, op] += value
    shadow[stage, op] += estimate


@njit(**NJIT_INLINE)
def _put_vec(acc, shadow, stage, table, row, times):
    # a per-element recipe (row ``row`` of ``table``, 6 basic ops) applied to ``times`` elements;
    # rows are indexed in place: a view per call would cost a reference count in the hot loop
    for o in range(6):
        v = table[row, o]
        if v != 0:
            acc[stage, o] += v * times
            shadow[stage, o] += float(v) * float(times)


@njit(**NJIT_INLINE)
def _clear(acc, shadow):
    for s in range(4):
        for o in range(6):
            acc[s, o] = 0
            shadow[s, o] = 0.0


@njit(**NJIT_INLINE)
def _linear(acc, shadow, n, i, o, input_grad, training, times):
    """``times`` linear layers of linear_cost (bias, not tied) over ``n`` rows; returns
    (macs forward, macs backward)."""
    fn, fi, fo, ft = float(n), float(i), float(o), float(times)
    _put(acc, shadow, _FWD, _MUL, times * (n * o * i), ft * fn * fo * fi)
    _put(acc, shadow, _FWD, _ADD, times * (n * o * (i - 1) + n * o), ft * fn * fo * fi)
    macs_b = 0
    if training:
        if input_grad:
            _put(acc, shadow, _BWD, _MUL, times * (n * i * o), ft * fn * fi * fo)
            _put(acc, shadow, _BWD, _ADD, times * (n * i * (o - 1)), ft * fn * fi * fo)
            macs_b += times * (n * i * o)
        _put(acc, shadow, _BWD, _MUL, times * (o * i * n), ft * fo * fi * fn)
        _put(acc, shadow, _BWD, _ADD, times * (o * i * (n - 1) + o * (n - 1)), ft * (fo * fi * fn + fo * fn))
        macs_b += times * (o * i * n)
    return times * (n * o * i), macs_b


@njit(**NJIT_INLINE)
def _update(acc, shadow, params, opt_vec, first, adam):
    """update_cost of _engine: per-parameter ops, + the adam step scalars on the first layer."""
    _put_vec(acc, shadow, _UPD, opt_vec, 0, params)
    if first and adam:
        _put(acc, shadow, _UPD, _MUL, 2, 2.0)
        _put(acc, shadow, _UPD, _SUB, 2, 2.0)


@njit(**NJIT_INLINE)
def _loss(acc, shadow, loss, n, c, exp_vec, log_vec, training):
    """loss_cost of _engine on an output of ``c`` features per sample (mse: 0, ce: 1, bce: 2)."""
    e = n * c
    fe = float(e)
    if loss == 0:
        _put(acc, shadow, _LOSS, _SUB, e, fe)
        _put(acc, shadow, _LOSS, _MUL, e, fe)
        _put(acc, shadow, _LOSS, _ADD, e - 1, fe)
        _put(acc, shadow, _LOSS, _DIV, 1, 1.0)
        if training:
            _put(acc, shadow, _BWD, _DIV, 1, 1.0)
            _put(acc, shadow, _BWD, _MUL, e, fe)
    elif loss == 1:
        rows = n
        _put(acc, shadow, _LOSS, _CMP, rows * (c - 1), fe)
        _put(acc, shadow, _LOSS, _SUB, rows * c + rows, 2.0 * fe)
        _put(acc, shadow, _LOSS, _ADD, rows * (c - 1) + rows + rows - 1, 2.0 * fe)
        _put(acc, shadow, _LOSS, _DIV, 1, 1.0)
        _put_vec(acc, shadow, _LOSS, exp_vec, 0, rows * c)
        _put_vec(acc, shadow, _LOSS, log_vec, 0, rows)
        if training:
            _put(acc, shadow, _BWD, _DIV, rows * c + 1, fe)
            _put(acc, shadow, _BWD, _SUB, rows, float(rows))
            _put(acc, shadow, _BWD, _MUL, rows * c, fe)
    else:
        _put(acc, shadow, _LOSS, _SUB, 3 * e, 3.0 * fe)
        _put(acc, shadow, _LOSS, _MUL, 2 * e, 2.0 * fe)
        _put(acc, shadow, _LOSS, _ADD, e + e - 1, 2.0 * fe)
        _put(acc, shadow, _LOSS, _DIV, 1, 1.0)
        _put_vec(acc, shadow, _LOSS, log_vec, 0, 2 * e)
        if training:
            _put(acc, shadow, _BWD, _SUB, 2 * e, 2.0 * fe)
            _put(acc, shadow, _BWD, _MUL, 2 * e, 2.0 * fe)
            _put(acc, shadow, _BWD, _DIV, e + 1, fe)


@njit(**NJIT_INLINE)
def _finish(c, acc, shadow, counts, status):
    for s in range(4):
        for o in range(6):
            if shadow[s, o] > _LIMIT:
                status[c] = STATUS_OVERFLOW
    for s in range(4):
        for o in range(6):
            counts[c, s, o] = acc[s, o] if status[c] == STATUS_OK else 0


@njit(**NJIT_INLINE)
def _mlp_one(c, width, depth, act, act_fwd, act_bwd, n_in, n_out, n, stages, loss, opt_vec, adam, exp_vec,
             log_vec, counts, params, macs, status, acc, shadow):
    training = stages[_BWD]
    _clear(acc, shadow)
    w = width[c]
    d = depth[c]
    a = act[c]
    # the first block reads the inputs (no input gradient); the d-1 hidden blocks after it are
    # identical, so they are counted once and multiplied
    mf, mb = _linear(acc, shadow, n, n_in, w, False, training, 1)
    mf2, mb2 = _linear(acc, shadow, n, w, w, True, training, d - 1)
    mf3, mb3 = _linear(acc, shadow, n, w, n_out, True, training, 1)
    _put_vec(acc, shadow, _FWD, act_fwd, a, d * (n * w))
    first_params = w * n_in + w
    hidden_params = w * w + w
    last_params = n_out * w + n_out
    total_params = first_params + (d - 1) * hidden_params + last_params
    if training:
        _put_vec(acc, shadow, _BWD, act_bwd, a, d * (n * w))
        _update(acc, shadow, total_params, opt_vec, True, adam)
    if stages[_LOSS]:
        _loss(acc, shadow, loss, n, n_out, exp_vec, log_vec, training)
    params[c] = total_params
    macs[c] = mf + mf2 + mf3 + mb + mb2 + mb3
    status[c] = STATUS_OK
    _finish(c, acc, shadow, counts, status)


@njit(**NJIT_PARALLEL)
def _mlp_kernel(width, depth, act, act_fwd, act_bwd, n_in, n_out, batch, stages, loss, opt_vec, adam,
                exp_vec, log_vec, counts, params, macs, status):
    size = width.shape[0]
    n_chunks = (size + _CHUNK - 1) // _CHUNK
    for chunk in prange(n_chunks):
        # scratch per chunk, not per configuration
        acc = np.zeros((4, 6), dtype=np.int64)
        shadow = np.zeros((4, 6), dtype=np.float64)
        for c in range(chunk * _CHUNK, min(size, (chunk + 1) * _CHUNK)):
            _mlp_one(c, width, depth, act, act_fwd, act_bwd, n_in, n_out, batch, stages, loss, opt_vec, adam,
                     exp_vec, log_vec, counts, params, macs, status, acc, shadow)


@njit(**NJIT_INLINE)
def _pairs_1d(length, kernel, padding, out):
    """(output, tap) pairs of a stride-1 window that land inside [0, length) (conv_geometry)."""
    total = 0
    for t in range(kernel):
        hi = min(out, length + padding - t)
        lo = max(0, padding - t)
        if hi > lo:
            total += hi - lo
    return total


@njit(**NJIT_INLINE)
def _cnn_one(c, depth, kernel, channels, image, padding, act, act_fwd, act_bwd, in_channels, classes, batch,
             stages, loss, opt_vec, adam, exp_vec, log_vec, counts, params, macs, status, acc, shadow):
    training = stages[_BWD]
    _clear(acc, shadow)
    k, ch, p = kernel[c], channels[c], padding[c]
    a = act[c]
    n = batch
    size = image[c]
    taps = k * k
    total_params = 0
    macs_f = 0
    macs_b = 0
    status[c] = STATUS_OK
    for j in range(depth[c]):
        c_in = in_channels if j == 0 else ch
        out = size + 2 * p - k + 1
        if out < 1:
            status[c] = STATUS_GEOMETRY
            break
        m = n * out * out
        kk = c_in * taps
        fm, fch, fkk = float(m), float(ch), float(kk)
        _put(acc, shadow, _FWD, _MUL, m * ch * kk, fm * fch * fkk)
        _put(acc, shadow, _FWD, _ADD, m * ch * (kk - 1) + m * ch, fm * fch * fkk)
        macs_f += m * ch * kk
        if training:
            if j > 0:
                # transposed product, then the col2im scatter (hits: every input position,
                # stride 1 with padding >= 0 reaches all of them)
                pairs = _pairs_1d(size, k, p, out)
                pairs = pairs * pairs
                hits = size * size
                _put(acc, shadow, _BWD, _MUL, m * ch * kk, fm * fch * fkk)
                _put(acc, shadow, _BWD, _ADD, m * c_in * taps * (ch - 1) + n * c_in * (pairs - hits),
                     fm * float(c_in) * taps * fch + float(n) * c_in * pairs)
                macs_b += m * ch * kk
            _put(acc, shadow, _BWD, _MUL, ch * kk * m, fch * fkk * fm)
            _put(acc, shadow, _BWD, _ADD, ch * kk * (m - 1) + ch * (m - 1), fch * fkk * fm + fch * fm)
            macs_b += ch * kk * m
        par = c_in * ch * taps + ch
        total_params += par
        if training:
            _update(acc, shadow, par, opt_vec, j == 0, adam)
        e = n * ch * out * out
        _put_vec(acc, shadow, _FWD, act_fwd, a, e)
        if training:
            _put_vec(acc, shadow, _BWD, act_bwd, a, e)
        size = out
    if status[c] != STATUS_OK:
        params[c] = 0
        macs[c] = 0
        counts[c, :, :] = 0
        return
    # global average pool over size x size, per channel and sample
    chans = n * ch
    area = size * size
    _put(acc, shadow, _FWD, _ADD, chans * (area - 1), float(chans) * area)
    _put(acc, shadow, _FWD, _DIV, chans, float(chans))
    if training:
        _put(acc, shadow, _BWD, _DIV, chans, float(chans))
    mf, mb = _linear(acc, shadow, n, ch, classes, True, training, 1)
    macs_f += mf
    macs_b += mb
    par = classes * ch + classes
    total_params += par
    if training:
        _update(acc, shadow, par, opt_vec, False, adam)
    if stages[_LOSS]:
        _loss(acc, shadow, loss, n, classes, exp_vec, log_vec, training)
    params[c] = total_params
    macs[c] = macs_f + macs_b
    _finish(c, acc, shadow, counts, status)


@njit(**NJIT_PARALLEL)
def _cnn_kernel(depth, kernel, channels, image, padding, act, act_fwd, act_bwd, in_channels, classes, batch,
                stages, loss, opt_vec, adam, exp_vec, log_vec, counts, params, macs, status):
    size = depth.shape[0]
    n_chunks = (size + _CHUNK - 1) // _CHUNK
    for chunk in prange(n_chunks):
        acc = np.zeros((4, 6), dtype=np.int64)
        shadow = np.zeros((4, 6), dtype=np.float64)
        for c in range(chunk * _CHUNK, min(size, (chunk + 1) * _CHUNK)):
            _cnn_one(c, depth, kernel, channels, image, padding, act, act_fwd, act_bwd, in_channels, classes,
                     batch, stages, loss, opt_vec, adam, exp_vec, log_vec, counts, params, macs, status, acc,
                     shadow)


# --- public functions -------------------------------------------------------------------------

def _vec(ops):
    """One row (1, 6) of per-element basic ops in BASIC_OPS order."""
    return np.array([[int(ops.get(op, 0)) for op in BASIC_OPS]], dtype=np.int64)


def _recipe_vec(profile, name, direction):
    if not profile.has_recipe(name):
        raise ModelError(f"profile {profile.name!r} has no recipe {name!r}")
    return _vec(profile.recipe_ops(name, direction=direction))


def _activation_tables(profile, names):
    fwd = np.zeros((len(names), 6), dtype=np.int64)
    bwd = np.zeros((len(names), 6), dtype=np.int64)
    for i, name in enumerate(names):
        if name == "relu":
            fwd[i, BASIC_OPS.index("cmp")] = 1
            bwd[i, BASIC_OPS.index("cmp")] = 1
        else:
            fwd[i] = _recipe_vec(profile, name, "forward")[0]
            bwd[i] = _recipe_vec(profile, name, "backward")[0]
    return fwd, bwd


def _optimizer_vec(optimizer):
    from ._engine import update_cost
    if optimizer not in _OPTIMIZER_CODE:
        raise ModelError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {optimizer!r}")
    return _vec(update_cost(optimizer, 1)), optimizer in ("adam", "adamw")


def _int_array(name, values, minimum):
    arr = np.asarray(values)
    if arr.dtype == object and arr.size and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                for v in arr.flat):
        # Python integers past int64 make an object array
        low, high = min(arr.flat), max(arr.flat)
        if low < minimum:
            raise ModelError(f"{name} must be integers >= {minimum}, not {int(low)}")
        raise ModelError(f"{name} must be integers <= 2**62, not {int(high)}")
    if arr.dtype.kind not in "iu" and arr.size:
        raise ModelError(f"{name} must be integers, not {arr.dtype}")
    if arr.size and arr.dtype.kind == "u" and arr.max() > MAX_VALUE:
        raise ModelError(f"{name} must be integers <= 2**62, not {int(arr.max())}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < minimum:
        raise ModelError(f"{name} must be integers >= {minimum}, not {int(arr.min())}")
    if arr.size and arr.max() > MAX_VALUE:
        raise ModelError(f"{name} must be integers <= 2**62, not {int(arr.max())}")
    return arr


def _activation_codes(values):
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() >= len(ACTIVATIONS)):
            raise ModelError(f"activation codes must lie in 0..{len(ACTIVATIONS) - 1}")
        return arr.astype(np.int64)
    arr = arr.astype(str)
    codes = np.full(arr.shape, -1, dtype=np.int64)
    for i, name in enumerate(ACTIVATIONS):
        codes[arr == name] = i
    if arr.size and codes.min() < 0:
        bad = arr[codes < 0].flat[0]
        raise ModelError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {str(bad)!r}")
    return codes


def _common(profile, phase, batch, loss, optimizer):
    if isinstance(profile, str):
        from hardware_profiles import load
        profile = load(profile)
    if phase not in PHASES:
        raise ModelError(f"phase must be one of {', '.join(PHASES)}, not {phase!r}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ModelError(f"batch must be a positive integer, not {batch!r}")
    if batch > MAX_VALUE:
        raise ModelError(f"batch must be an integer <= 2**62, not {batch!r}")
    if loss not in _LOSS_CODE:
        raise ModelError(f"loss must be one of {', '.join(LOSSES)}, not {loss!r}")
    stages = np.array([s in PHASES[phase] for s in STAGES], dtype=np.bool_)
    opt_vec, adam = _optimizer_vec(optimizer)
    needs_loss = stages[1]
    exp_vec = _recipe_vec(profile, "exp", "forward") if needs_loss and loss == "cross_entropy" else _vec({})
    log_vec = _recipe_vec(profile, "log", "forward") if needs_loss and loss != "mse" else _vec({})
    return profile, stages, opt_vec, adam, exp_vec, log_vec


def _outputs(size):
    return (np.empty((size, 4, 6), dtype=np.int64), np.empty(size, dtype=np.int64),
            np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int8))


def _config(named, act_codes):
    config = {name: np.ascontiguousarray(arr) for name, arr in named.items()}
    config["activation"] = act_codes
    return config


def sweep_mlp(profile: Any, *, width: ArrayLike, depth: ArrayLike, activation: ArrayLike, inputs: ArrayLike = 4,
              outputs: ArrayLike = 1, batch: int = 1, phase: str = "inference", loss: str = "mse",
              optimizer: str = "sgd") -> SweepCounts:
    """Counts of MLP configurations; ``width``, ``depth`` and ``activation`` (names or indices
    into :data:`ACTIVATIONS`) broadcast together, one configuration per element (flattened).

    ``profile``: a loaded profile or a name (its recipes price the activations and the loss).
    Equals :func:`opcount.count_model` on :func:`mlp_spec` of each configuration.
    """
    profile, stages, opt_vec, adam, exp_vec, log_vec = _common(profile, phase, batch, loss, optimizer)
    width = _int_array("width", width, 1)
    depth = _int_array("depth", depth, 1)
    act = _activation_codes(activation)
    width, depth, act = (np.ascontiguousarray(a.ravel()) for a in np.broadcast_arrays(width, depth, act))
    n_in = int(_int_array("inputs", inputs, 1))
    n_out = int(_int_array("outputs", outputs, 1))
    used = sorted(set(np.unique(act).tolist())) if act.size else []
    act_fwd, act_bwd = _activation_tables(profile, [ACTIVATIONS[i] if i in used else "relu"
                                                    for i in range(len(ACTIVATIONS))])
    counts, params, macs, status = _outputs(width.shape[0])
    _mlp_kernel(width, depth, act, act_fwd, act_bwd, n_in, n_out, int(batch), stages, _LOSS_CODE[loss],
                opt_vec, adam, exp_vec, log_vec, counts, params, macs, status)
    return SweepCounts(family="mlp", phase=phase, batch=int(batch),
                       config=_config({"width": width, "depth": depth}, act),
                       counts=counts, params=params, macs=macs, status=status)


def sweep_cnn(profile: Any, *, depth: ArrayLike, kernel: ArrayLike = 3, channels: ArrayLike = 32, image: ArrayLike = 256,
              activation: ArrayLike = "gelu", padding: ArrayLike = 0, in_channels: ArrayLike = 3, classes: ArrayLike = 2,
              batch: int = 1, phase: str = "inference", loss: str = "cross_entropy",
              optimizer: str = "sgd") -> SweepCounts:
    """Counts of CNN configurations; ``depth``, ``kernel``, ``channels``, ``image``, ``padding``
    and ``activation`` broadcast together, one configuration per element (flattened).

    Equals :func:`opcount.count_model` on :func:`cnn_spec` of each configuration; a
    configuration whose kernel outgrows the shrinking image has ``status`` 1.
    """
    profile, stages, opt_vec, adam, exp_vec, log_vec = _common(profile, phase, batch, loss, optimizer)
    arrays = [_int_array("depth", depth, 1), _int_array("kernel", kernel, 1), _int_array("channels", channels, 1),
              _int_array("image", image, 1), _int_array("padding", padding, 0), _activation_codes(activation)]
    depth, kernel, channels, image, padding, act = (np.ascontiguousarray(a.ravel())
                                                    for a in np.broadcast_arrays(*arrays))
    used = set(np.unique(act).tolist()) if act.size else set()
    act_fwd, act_bwd = _activation_tables(profile, [ACTIVATIONS[i] if i in used else "relu"
                                                    for i in range(len(ACTIVATIONS))])
    n_ch = int(_int_array("in_channels", in_channels, 1))
    n_cls = int(_int_array("classes", classes, 1))
    counts, params, macs, status = _outputs(depth.shape[0])
    _cnn_kernel(depth, kernel, channels, image, padding, act, act_fwd, act_bwd, n_ch, n_cls, int(batch), stages,
                _LOSS_CODE[loss], opt_vec, adam, exp_vec, log_vec, counts, params, macs, status)
    return SweepCounts(family="cnn", phase=phase, batch=int(batch),
                       config=_config({"depth": depth, "kernel": kernel, "channels": channels, "image": image,
                                       "padding": padding}, act),
                       counts=counts, params=params, macs=macs, status=status)


def _activation_layer(name):
    if name == "gelu_tanh":
        return {"type": "gelu", "approximate": "tanh"}
    return {"type": name}


def mlp_spec(*, width: int, depth: int, activation: str, inputs: int = 4, outputs: int = 1, loss: str = "mse",
             optimizer: str = "sgd", format: str = "fp32") -> dict[str, Any]:
    """The model spec of one MLP configuration (what :func:`sweep_mlp` counts)."""
    layers = []
    for _ in range(int(depth)):
        layers += [{"type": "linear", "out": int(width)}, _activation_layer(str(activation))]
    layers.append({"type": "linear", "out": int(outputs)})
    return {"name": f"mlp-w{int(width)}-d{int(depth)}-{activation}", "input": [int(inputs)], "format": format,
            "loss": loss, "optimizer": optimizer, "layers": layers}


def cnn_spec(*, depth: int, kernel: int = 3, channels: int = 32, image: int = 256, activation: str = "gelu",
             padding: int = 0, in_channels: int = 3, classes: int = 2, loss: str = "cross_entropy",
             optimizer: str = "sgd", format: str = "fp32") -> dict[str, Any]:
    """The model spec of one CNN configuration (what :func:`sweep_cnn` counts)."""
    layers = []
    for _ in range(int(depth)):
        layers += [{"type": "conv2d", "out": int(channels), "kernel": int(kernel), "padding": int(padding)},
                   _activation_layer(str(activation))]
    layers += [{"type": "global_avgpool"}, {"type": "linear", "out": int(classes)}]
    return {"name": f"cnn-d{int(depth)}-k{int(kernel)}-c{int(channels)}-i{int(image)}-{activation}",
            "input": [int(in_channels), int(image), int(image)], "format": format, "loss": loss,
            "optimizer": optimizer, "layers": layers}


def grid(**axes: ArrayLike) -> dict[str, np.ndarray]:
    """The cartesian product of named 1-d value lists, as flat arrays (first name varies
    slowest): ``grid(width=[4, 8], activation=["tanh", "gelu"])``."""
    names = list(axes)
    values = [np.asarray(axes[name]) for name in names]
    for name, arr in zip(names, values):
        if arr.ndim != 1 or arr.size == 0:
            raise ModelError(f"sweep axis {name!r} must be a non-empty list of values")
    index = np.indices([arr.size for arr in values]).reshape(len(values), -1)
    return {name: arr[i] for name, arr, i in zip(names, values, index)}
