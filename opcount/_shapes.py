"""Shape inference and parameter counts, one function per layer type.

Each function takes the layer's fields (an :class:`_Fields` reader) and the per-sample input
shapes and returns ``(out_shape, params, attrs)``; ``attrs`` are the resolved settings the
formulas read. Parameter counts follow PyTorch's modules (a norm's running statistics are buffers,
not parameters).
"""
import difflib
import math

from itertools import chain

from ._memo import Unfreezable, fields_key, freeze

_INTS, _TUPLES = frozenset({int}), frozenset({tuple})

__all__ = ["ShapeError", "infer", "check_shape", "SHAPE_FUNCTIONS", "conv_geometry", "attention_geometry",
           "scatter_geometry", "window_tally", "pool_geometry", "adaptive_windows", "adaptive_tally"]


class ShapeError(ValueError):
    """A layer whose fields or input shapes do not fit (the builder adds file and layer)."""


def check_shape(shape, what):
    from ._ir import ModelError
    if isinstance(shape, int):
        shape = [shape]
    if (not isinstance(shape, (list, tuple)) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise ModelError(f"{what} shape must be a non-empty list of positive integers, not {shape!r}")
    return tuple(shape)


#: Fields every layer type takes (read by the model builder, not by the shape functions): offered
#: as a did-you-mean for an unknown field too.
_LAYER_FIELDS = frozenset({"name", "inputs", "format", "quant", "no_grad", "recompute", "frozen", "inplace"})


class _Fields:
    """Reads a layer's fields with type checks; fields left unread are reported as unknown."""

    def __init__(self, spec):
        self.spec = dict(spec)
        self.read = set()

    def _take(self, key, default, required):
        self.read.add(key)
        spec = self.spec
        if key in spec:
            return spec[key]
        if required:
            close = difflib.get_close_matches(key, [k for k in spec if isinstance(k, str)], n=1, cutoff=0.6)
            hint = f" (found {close[0]!r}: did you mean {key!r}?)" if close else ""
            raise ShapeError(f"missing field {key!r}{hint}")
        return default

    def int(self, key, default=None, *, required=False, minimum=1):
        value = self._take(key, default, required)
        if type(value) is int and value >= minimum:
            return value
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ShapeError(f"{key!r} must be an integer >= {minimum}, not {value!r}")
        return value

    def ints(self, key, n, default=None, *, required=False, minimum=1):
        value = self._take(key, default, required)
        if type(value) is int and value >= minimum:
            return (value,) * n
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value] * n
        if (not isinstance(value, (list, tuple)) or len(value) != n
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value)):
            raise ShapeError(f"{key!r} must be an integer >= {minimum} or a list of {n} such integers, "
                             f"not {value!r}")
        return tuple(value)

    def bool(self, key, default):
        value = self._take(key, default, False)
        if not isinstance(value, bool):
            raise ShapeError(f"{key!r} must be true or false, not {value!r}")
        return value

    def number(self, key, default):
        value = self._take(key, default, False)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ShapeError(f"{key!r} must be a number, not {value!r}")
        return value

    def choice(self, key, default, choices):
        value = self._take(key, default, False)
        if value not in choices:
            raise ShapeError(f"{key!r} must be one of {', '.join(map(str, choices))}, not {value!r}")
        return value

    def any(self, key, default=None):
        return self._take(key, default, False)

    def finish(self):
        if self.read.issuperset(self.spec):
            return
        extra = sorted(set(self.spec) - self.read, key=str)
        if extra:
            known = (self.read - set(self.spec)) | _LAYER_FIELDS
            close = difflib.get_close_matches(str(extra[0]), sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ShapeError(f"unknown field {extra[0]!r}{hint}")


def _n_inputs(in_shapes, n):
    if len(in_shapes) != n:
        raise ShapeError(f"takes {n} input{'s' if n != 1 else ''}, got {len(in_shapes)}")


def _rank_at_least(shape, rank, what="input"):
    if len(shape) < rank:
        raise ShapeError(f"{what} shape {list(shape)} needs at least {rank} dimensions")


# --- geometry shared by convolutions and pools ------------------------------------------------

def window_tally(n, kernel, stride, dilation, offset, length):
    """Exact tallies of the positions ``x * stride + t * dilation + offset`` for ``x`` in
    ``[0, n)`` and taps ``t`` in ``[0, kernel)``: ``(pairs, hits)``, the (x, t) pairs that land
    inside ``[0, length)`` and the distinct positions they land on.

    Closed form in O(kernel): a tap's positions form the run ``q = a .. a + n - 1`` of positions
    ``stride * q + r`` in residue class ``r`` (``a, r = divmod(t * dilation + offset, stride)``);
    a class keeps ``q`` in ``[0, (length - 1 - r) // stride]``. ``pairs`` sums the clipped runs,
    ``hits`` the size of their union per class: within a class both ends of the runs grow with
    ``t``, so each run adds the part past the previous run's end.
    """
    if (stride == 1 and 0 < dilation <= n and offset >= 0
            and offset + n - 1 + (kernel - 1) * dilation < length):
        # every pair lands inside and the runs overlap or touch: one interval (an unpadded conv)
        return n * kernel, n + (kernel - 1) * dilation
    pairs = hits = 0
    if stride == 1:                                   # one class, q is the position itself
        end = -1
        top = length - 1
        for t in range(kernel):
            lo = t * dilation + offset
            hi = lo + n - 1
            if lo < 0:
                lo = 0
            if hi > top:
                hi = top
            if hi >= lo:
                pairs += hi - lo + 1
                if hi > end:
                    hits += hi - (lo if lo > end else end + 1) + 1
                    end = hi
        return pairs, hits
    ends = {}
    for t in range(kernel):
        a, r = divmod(t * dilation + offset, stride)
        top = (length - 1 - r) // stride            # last q inside [0, length), -1 if none
        lo = a if a > 0 else 0
        hi = a + n - 1
        if hi > top:
            hi = top
        if hi >= lo:
            pairs += hi - lo + 1
            end = ends.get(r, -1)
            if hi > end:
                hits += hi - (lo if lo > end else end + 1) + 1
                ends[r] = hi
    return pairs, hits


def conv_geometry(length, kernel, stride, padding, dilation, ceil_mode=False):
    """Output length of a sliding window over one dimension, and two exact tallies:
    ``pairs``, the (output position, tap) pairs that land inside ``[0, length)``, and ``hits``,
    the distinct input positions they land on. Taps on padding land outside."""
    span = dilation * (kernel - 1) + 1
    numerator = length + 2 * padding - span
    if numerator < 0:
        raise ShapeError(f"window of span {span} does not fit in length {length} with padding {padding}")
    out = (-(-numerator // stride) if ceil_mode else numerator // stride) + 1
    if ceil_mode and (out - 1) * stride >= length + padding:
        out -= 1
    pairs, hits = window_tally(out, kernel, stride, dilation, -padding, length)
    return out, pairs, hits


def scatter_geometry(length, kernel, stride, padding, dilation, output_padding=0):
    """A transposed convolution over one dimension: its output length ``o`` and the exact
    tallies of its scatter (input position ``i``, tap ``t`` -> output ``i * stride - padding +
    t * dilation``): ``pairs`` landing inside ``[0, o)`` and ``hits``, the distinct outputs
    written."""
    o = (length - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if o < 1:
        raise ShapeError(f"output length {o} of a transposed convolution is not positive")
    pairs, hits = window_tally(length, kernel, stride, dilation, -padding, o)
    return o, pairs, hits


def _geometry(one_dim, *per_dim):
    """Output lengths and the products of the per-dimension tallies of ``one_dim``
    (:func:`conv_geometry` or :func:`scatter_geometry`) over the columns ``per_dim``."""
    outs, pairs, hits = [], 1, 1
    for args in zip(*per_dim):
        o, pr, h = one_dim(*args)
        outs.append(o)
        pairs *= pr
        hits *= h
    return tuple(outs), pairs, hits


def pool_geometry(shape_spatial, kernel, stride, padding, dilation, ceil_mode):
    return _geometry(conv_geometry, shape_spatial, kernel, stride, padding, dilation,
                     (ceil_mode,) * len(kernel))


def adaptive_windows(length, out):
    """PyTorch's adaptive pooling windows: [floor(i*L/out), ceil((i+1)*L/out))."""
    return [(i * length // out, -(-((i + 1) * length) // out)) for i in range(out)]


def adaptive_tally(length, out):
    """``(pairs, overlap)`` of :func:`adaptive_windows` in closed form: the window sizes sum
    to ``length + out - gcd(length, out)``, and neighbouring windows overlap exactly when
    ``out > 1`` does not divide ``length``."""
    return length + out - math.gcd(length, out), out > 1 and length % out != 0


# --- layer types ------------------------------------------------------------------------------

def _linear(f, in_shapes):
    _n_inputs(in_shapes, 1)
    shape = in_shapes[0]
    out = f.int("out", required=True)
    bias = f.bool("bias", True)
    tied = f.any("tied_to")
    if tied is not None and not isinstance(tied, str):
        raise ShapeError(f"'tied_to' must be a layer name, not {tied!r}")
    # tied_bias: the bias is the tied_to layer's too (a module called twice)
    tied_bias = f.bool("tied_bias", False)
    if tied_bias and (tied is None or not bias):
        raise ShapeError("'tied_bias' needs 'tied_to' and a bias")
    i = shape[-1]
    params = (0 if tied else i * out) + (out if bias and not tied_bias else 0)
    attrs = {"in": i, "out": out, "bias": bias, "tied_to": tied}
    if tied_bias:
        attrs["tied_bias"] = True
    return shape[:-1] + (out,), params, attrs


def _conv_factory(nd, transposed):
    def conv(f, in_shapes):
        _n_inputs(in_shapes, 1)
        shape = in_shapes[0]
        if len(shape) != nd + 1:
            raise ShapeError(f"input shape {list(shape)} must be [C, {nd} spatial dims]")
        c_in, spatial = shape[0], shape[1:]
        depthwise = f.bool("depthwise", False)
        groups = f.int("groups", c_in if depthwise else 1)
        out = f.int("out", c_in if depthwise else None, required=not depthwise)
        kernel = f.ints("kernel", nd, required=True)
        stride = f.ints("stride", nd, 1)
        dilation = f.ints("dilation", nd, 1)
        padding = f.any("padding", 0)
        if padding == "same" and not transposed:
            if any(s != 1 for s in stride):
                raise ShapeError("padding 'same' needs stride 1")
            if any(d * (k - 1) % 2 for k, d in zip(kernel, dilation)):
                raise ShapeError("padding 'same' needs an even dilated kernel span")
            padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
        else:
            f.spec["padding"] = padding
            padding = f.ints("padding", nd, 0, minimum=0)
        output_padding = f.ints("output_padding", nd, 0, minimum=0) if transposed else (0,) * nd
        for op, s, d in zip(output_padding, stride, dilation):
            if op >= max(s, d):
                # PyTorch's rule: the extra output rows must be fewer than the stride or the dilation
                raise ShapeError(f"'output_padding' {op} must be smaller than the stride {s} or the dilation {d}")
        bias = f.bool("bias", True)
        if c_in % groups or out % groups:
            raise ShapeError(f"groups {groups} must divide input channels {c_in} and output channels {out}")
        taps = math.prod(kernel)
        if transposed:
            out_spatial, pairs, hits = _geometry(scatter_geometry, spatial, kernel, stride, padding,
                                                 dilation, output_padding)
        else:
            out_spatial, pairs, hits = _geometry(conv_geometry, spatial, kernel, stride, padding,
                                                 dilation)
        params = c_in * (out // groups) * taps + (out if bias else 0)
        attrs = {"nd": nd, "in": c_in, "out": out, "kernel": kernel, "stride": stride, "padding": padding,
                 "dilation": dilation, "groups": groups, "bias": bias, "taps": taps, "pairs": pairs,
                 "hits": hits, "transposed": transposed, "output_padding": output_padding}
        return (out,) + tuple(out_spatial), params, attrs
    return conv


def _pool_factory(nd, kind):
    def pool(f, in_shapes):
        _n_inputs(in_shapes, 1)
        shape = in_shapes[0]
        if len(shape) != nd + 1:
            raise ShapeError(f"input shape {list(shape)} must be [C, {nd} spatial dims]")
        kernel = f.ints("kernel", nd, required=True)
        stride = f.ints("stride", nd, kernel)
        padding = f.ints("padding", nd, 0, minimum=0)
        dilation = f.ints("dilation", nd, 1) if kind == "max" else (1,) * nd
        ceil_mode = f.bool("ceil_mode", False)
        if any(2 * p > k for p, k in zip(padding, kernel)):
            raise ShapeError("padding must be at most half the kernel")
        out_spatial, pairs, hits = pool_geometry(shape[1:], kernel, stride, padding, dilation, ceil_mode)
        overlap = any(s < d * (k - 1) + 1 for s, k, d in zip(stride, kernel, dilation))
        return (shape[0],) + out_spatial, 0, {"kind": kind, "kernel": kernel, "stride": stride,
                                              "padding": padding, "dilation": dilation, "pairs": pairs,
                                              "hits": hits, "overlap": overlap}
    return pool


def _adaptive_factory(nd, kind, global_=False):
    def pool(f, in_shapes):
        _n_inputs(in_shapes, 1)
        shape = in_shapes[0]
        if global_:
            _rank_at_least(shape, 2)
            spatial, outs = shape[1:], (1,) * (len(shape) - 1)
        else:
            if len(shape) != nd + 1:
                raise ShapeError(f"input shape {list(shape)} must be [C, {nd} spatial dims]")
            spatial, outs = shape[1:], f.ints("out", nd, required=True)
        pairs, hits, overlap = 1, 1, False
        for length, o in zip(spatial, outs):
            pr, over = adaptive_tally(length, o)
            pairs *= pr
            hits *= length
            overlap = overlap or over
        out_shape = (shape[0],) if global_ else (shape[0],) + tuple(outs)
        return out_shape, 0, {"kind": kind, "pairs": pairs, "hits": hits, "overlap": overlap}
    return pool


def _norm_factory(kind):
    def norm(f, in_shapes):
        _n_inputs(in_shapes, 1)
        shape = in_shapes[0]
        affine = f.bool("affine", True)
        f.number("eps", 1e-5)
        if kind == "batchnorm":
            channels = shape[0]
            group, n_groups, n_affine = math.prod(shape[1:]), channels, channels
            per_sample_groups = False
        elif kind in ("layernorm", "rmsnorm"):
            dims = f.int("dims", 1)
            _rank_at_least(shape, dims)
            group = math.prod(shape[-dims:])
            n_groups, n_affine, per_sample_groups = math.prod(shape[:-dims]), group, True
        else:  # groupnorm
            groups = f.int("groups", required=True)
            _rank_at_least(shape, 1)
            if shape[0] % groups:
                raise ShapeError(f"groups {groups} must divide channels {shape[0]}")
            group, n_groups = math.prod(shape) // groups, groups
            n_affine, per_sample_groups = shape[0], True
        bias = f.bool("bias", kind != "rmsnorm") if affine else False
        params = (n_affine + (n_affine if bias else 0)) if affine else 0
        return shape, params, {"kind": kind, "group": group, "groups": n_groups, "n_affine": n_affine,
                               "affine": affine, "bias": bias, "per_sample_groups": per_sample_groups,
                               "centered": kind != "rmsnorm"}
    return norm


def _embedding(f, in_shapes):
    _n_inputs(in_shapes, 1)
    vocab = f.int("vocab", required=True)
    dim = f.int("dim", required=True)
    tied = f.any("tied_to")
    if tied is not None and not isinstance(tied, str):
        raise ShapeError(f"'tied_to' must be a layer name, not {tied!r}")
    attrs = {"vocab": vocab, "dim": dim}
    if tied is not None:
        attrs["tied_to"] = tied
    return in_shapes[0] + (dim,), 0 if tied else vocab * dim, attrs


def _positional_embedding(f, in_shapes):
    _n_inputs(in_shapes, 1)
    shape = in_shapes[0]
    _rank_at_least(shape, 2)
    # rows: size of the learned table, one row per position; it may exceed the sequence (GPT-2
    # keeps 1024 positions) but not fall short of it. A token-type table (BERT's two segment
    # rows, token_types: true) is indexed by type, not position, so any number of rows fits.
    # offset: the position of the first token (a decode step after `offset` cached tokens reads
    # row `offset` of the table).
    offset = f.int("offset", 0, minimum=0)
    rows = f.int("rows", offset + shape[0])
    token_types = f.bool("token_types", False)
    if not token_types and rows < offset + shape[0]:
        at = f" from position {offset}" if offset else ""
        raise ShapeError(f"the table has {rows} position{'s' if rows != 1 else ''} ('rows'), fewer than the "
                         f"{offset + shape[0] if offset else shape[0]} {'positions' if offset else 'tokens'} of "
                         f"input shape {list(shape)}{at}")
    attrs = {"rows": rows, "dim": shape[-1], "token_types": token_types}
    if offset:
        attrs["offset"] = offset
    return shape, rows * shape[-1], attrs


def _cls_token(f, in_shapes):
    _n_inputs(in_shapes, 1)
    shape = in_shapes[0]
    _rank_at_least(shape, 2)
    return (shape[0] + 1,) + shape[1:], shape[-1], {"dim": shape[-1]}


def _same_shape(n_inputs=1, *fields):
    def same(f, in_shapes):
        if n_inputs:
            _n_inputs(in_shapes, n_inputs)
        attrs = {}
        for name, default in fields:
            attrs[name] = f.number(name, default) if isinstance(default, (int, float)) and not isinstance(
                default, bool) else f.any(name, default)
        return in_shapes[0], 0, attrs
    return same


def _dropout(f, in_shapes):
    _n_inputs(in_shapes, 1)
    p = f.number("p", 0.5)
    if not 0 <= p < 1:
        raise ShapeError(f"'p' must be in [0, 1), not {p!r}")
    return in_shapes[0], 0, {"p": p}


def _gelu(f, in_shapes):
    _n_inputs(in_shapes, 1)
    approximate = f.choice("approximate", "none", ("none", "tanh"))
    return in_shapes[0], 0, {"approximate": approximate}


def _softmax(f, in_shapes):
    _n_inputs(in_shapes, 1)
    axis = f.int("axis", -1, minimum=-len(in_shapes[0]))
    if axis >= len(in_shapes[0]):
        raise ShapeError(f"axis {axis} out of range for shape {list(in_shapes[0])}")
    return in_shapes[0], 0, {"axis": axis, "dim": in_shapes[0][axis]}


def _elementwise_n(f, in_shapes):
    if len(in_shapes) < 2:
        raise ShapeError(f"takes at least 2 inputs, got {len(in_shapes)}")
    if len(set(in_shapes)) != 1:
        raise ShapeError(f"shape mismatch: {' vs '.join(str(list(s)) for s in in_shapes)}")
    return in_shapes[0], 0, {"n": len(in_shapes)}


def _concat(f, in_shapes):
    rank = len(in_shapes[0])
    axis = f.int("axis", 0, minimum=-rank)
    if axis >= rank:
        raise ShapeError(f"axis {axis} out of range for shape {list(in_shapes[0])}")
    axis %= rank
    for s in in_shapes[1:]:
        if len(s) != rank or any(a != b for d, (a, b) in enumerate(zip(s, in_shapes[0])) if d != axis):
            raise ShapeError(f"shape mismatch: {' vs '.join(str(list(s)) for s in in_shapes)} "
                             f"outside axis {axis}")
    out = list(in_shapes[0])
    out[axis] = sum(s[axis] for s in in_shapes)
    return tuple(out), 0, {"axis": axis}


def _flatten(f, in_shapes):
    _n_inputs(in_shapes, 1)
    shape = in_shapes[0]
    start = f.int("start", 0, minimum=0)
    if start >= len(shape):
        raise ShapeError(f"start {start} out of range for shape {list(shape)}")
    return shape[:start] + (math.prod(shape[start:]),), 0, {}


def _reshape(f, in_shapes):
    _n_inputs(in_shapes, 1)
    shape = in_shapes[0]
    target = f.any("shape")
    if target is None:
        raise ShapeError("missing field 'shape'")
    if (not isinstance(target, list) or not target or target.count(-1) > 1
            or not all(isinstance(d, int) and (d > 0 or d == -1) for d in target)):
        raise ShapeError(f"'shape' must be a list of positive integers with at most one -1, not {target!r}")
    total = math.prod(shape)
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if total % known:
            raise ShapeError(f"shape mismatch: cannot reshape {list(shape)} to {target}")
        target = [total // known if d == -1 else d for d in target]
    if math.prod(target) != total:
        raise ShapeError(f"shape mismatch: cannot reshape {list(shape)} to {target}")
    return tuple(target), 0, {}


def _transpose(f, in_shapes):
    _n_inputs(in_shapes, 1)
    shape = in_shapes[0]
    perm = f.any("perm")
    if perm is None:
        raise ShapeError("missing field 'perm'")
    if not isinstance(perm, list) or sorted(perm) != list(range(len(shape))):
        raise ShapeError(f"'perm' must be a permutation of 0..{len(shape) - 1}, not {perm!r}")
    return tuple(shape[p] for p in perm), 0, {}


def _select(f, in_shapes):
    _n_inputs(in_shapes, 1)
    shape = in_shapes[0]
    _rank_at_least(shape, 2)
    index = f.int("index", 0, minimum=-shape[0])
    if index >= shape[0]:
        raise ShapeError(f"index {index} out of range for length {shape[0]}")
    return shape[1:], 0, {"index": index}


def _matmul(f, in_shapes):
    _n_inputs(in_shapes, 2)
    a, b = in_shapes
    _rank_at_least(a, 2, "first input")
    _rank_at_least(b, 2, "second input")
    if a[-1] != b[-2]:
        raise ShapeError(f"shape mismatch: {list(a)} @ {list(b)}")
    if a[:-2] != b[:-2]:
        raise ShapeError(f"shape mismatch: batch dims {list(a[:-2])} vs {list(b[:-2])}")
    batch = math.prod(a[:-2])
    return a[:-1] + (b[-1],), 0, {"batch": batch, "m": a[-2], "k": a[-1], "n": b[-1]}


def _mask(f):
    """``(mask, causal, additive)``: the legacy ``mask`` choice and the two properties the
    formulas read. ``causal: true`` with ``mask: additive`` is a causal layer that also adds a
    bias to its scores (T5's decoder: relative-position bias plus the causal mask)."""
    causal = f.bool("causal", False)
    mask = f.choice("mask", "causal" if causal else "none", ("none", "causal", "additive"))
    return mask, causal or mask == "causal", mask == "additive"


def attention_geometry(t, s, *, causal, offset=0, window=None):
    """``(rows, pairs, cols)`` of the score matrix of one head: ``t`` query rows, ``s`` keys.

    Without a mask every query sees every key: ``(t, t*s, s)``. With a causal mask the query of
    row i sits at position ``offset + i`` and sees the keys ``j <= offset + i`` (and, with a
    sliding ``window`` of W keys, only ``j > offset + i - W``: itself and the W-1 before it), so
    row i sees ``n_i = min(offset + i + 1, s, W)`` keys. ``pairs`` is the sum of the n_i (the
    score entries computed), ``cols`` the number of keys seen by at least one row. ``offset``
    is the number of cached keys before the first query (bottom-right alignment, as Hugging Face
    and FlashAttention align a causal mask with a KV cache); ``offset = 0`` with ``t <= s`` is
    PyTorch's ``is_causal`` (top-left) triangle. Closed form: with M = min(s, W) and
    g(x) = sum_{q=1..x} min(q, M), pairs = g(offset + t) - g(offset).
    """
    if not causal:
        return t, t * s, s
    m = s if window is None else min(s, window)

    def g(x):
        return x * (x + 1) // 2 if x <= m else m * (m + 1) // 2 + (x - m) * m

    first, last = offset, offset + t - 1
    lo = 0 if window is None else max(0, first - window + 1)
    return t, g(last + 1) - g(first), min(last, s - 1) - lo + 1


def _sdpa(f, in_shapes):
    _n_inputs(in_shapes, 3)
    q, k, v = in_shapes
    if len(q) != 3 or len(k) != 3 or len(v) != 3:
        raise ShapeError("q, k and v must be [heads, length, head_dim]")
    # grouped-query attention (enable_gqa): each key/value head serves heads/kv_heads query heads
    if q[0] % k[0] or k[0] != v[0] or q[2] != k[2] or k[1] != v[1]:
        raise ShapeError(f"shape mismatch: q {list(q)}, k {list(k)}, v {list(v)}")
    mask, causal, additive = _mask(f)
    scale = f.bool("scale", True)
    rows, pairs, cols = attention_geometry(q[1], k[1], causal=causal)
    return (q[0], q[1], v[2]), 0, {"heads": q[0], "kv_heads": k[0], "t": q[1], "s": k[1], "hd": q[2], "hdv": v[2],
                                   "mask": mask, "causal": causal, "additive": additive, "scale": scale,
                                   "rows": rows, "pairs": pairs, "cols": cols}


def _attention(f, in_shapes):
    """Multi-head attention: one input ``[T, D]`` (self-attention), two (query ``[T, D]``, and
    key = value ``[S, kdim]``) or three (query, key ``[S, kdim]``, value ``[S, vdim]``), as
    ``nn.MultiheadAttention`` takes them; the output is ``[T, D]``."""
    if not 1 <= len(in_shapes) <= 3:
        raise ShapeError(f"takes 1 input (self-attention), 2 (query, key/value) or 3 (query, key, value), "
                         f"got {len(in_shapes)}")
    q = in_shapes[0]
    k = in_shapes[1] if len(in_shapes) > 1 else q
    v = in_shapes[2] if len(in_shapes) > 2 else k
    for what, shape in (("input", q), ("key", k), ("value", v)):
        if len(shape) != 2:
            raise ShapeError(f"{what} shape {list(shape)} must be [length, dim]")
    if k[0] != v[0]:
        raise ShapeError(f"shape mismatch: key {list(k)} and value {list(v)} differ in length")
    t, d = q
    s, kdim, vdim = k[0], k[1], v[1]
    heads = f.int("heads", required=True)
    kv_heads = f.int("kv_heads", heads)
    head_dim = f.int("head_dim", None)
    if heads % kv_heads:
        raise ShapeError(f"heads {heads} must be a multiple of kv_heads {kv_heads}")
    if head_dim is None and d % heads:
        raise ShapeError(f"heads {heads} must divide dim {d} (or give head_dim)")
    bias = f.bool("bias", True)
    out_bias = f.bool("out_bias", bias)
    rope = f.bool("rope", False)
    scale = f.bool("scale", True)
    mask, causal, additive = _mask(f)
    masks = f.int("masks", 1 if mask == "additive" else 0, minimum=0)
    if mask != "additive" and masks:
        raise ShapeError("'masks' needs mask: additive")
    weights = f.choice("weights", "none", ("none", "mean", "heads"))
    dropout = f.number("dropout", 0)
    if not 0 <= dropout < 1:
        raise ShapeError(f"'dropout' must be in [0, 1), not {dropout!r}")
    window = f.int("window", None)
    past = f.int("past", 0, minimum=0)
    kv_cache = f.bool("kv_cache", False)
    memory_cached = f.bool("memory_cached", False)
    # T5's learned relative-position bias: "own" keeps the table (buckets x heads parameters) in
    # this layer, "shared" reuses the table of an earlier layer; either way it is added to the scores
    position_bias = f.choice("position_bias", "none", ("none", "own", "shared"))
    buckets = f.int("buckets", 32)
    cross = len(in_shapes) > 1
    if window is not None and not causal:
        raise ShapeError("'window' (sliding-window attention) needs causal: true")
    if cross and past:
        raise ShapeError("'past' (cached tokens of a self-attention) needs one input; a cross-attention reads "
                         "its memory")
    if memory_cached and not cross:
        raise ShapeError("'memory_cached' is for a cross-attention (2 or 3 inputs)")
    hd = d // heads if head_dim is None else head_dim
    inner, dkv = heads * hd, kv_heads * hd
    if not cross:
        s = past + t
    rows, pairs, cols = attention_geometry(t, s, causal=causal, offset=past, window=window)
    params = (d * inner + (kdim + vdim) * dkv + inner * d + ((inner + 2 * dkv) if bias else 0)
              + (d if out_bias else 0))
    if position_bias == "own":
        params += buckets * heads
    additive = additive or position_bias != "none"
    return (t, d), params, {"t": t, "s": s, "dim": d, "kdim": kdim, "vdim": vdim, "heads": heads,
                            "kv_heads": kv_heads, "hd": hd, "inner": inner, "dkv": dkv, "bias": bias,
                            "out_bias": out_bias, "rope": rope, "scale": scale, "mask": mask, "causal": causal,
                            "additive": additive, "masks": masks, "weights": weights, "dropout": dropout,
                            "window": window, "past": past, "kv_cache": kv_cache, "cross": cross,
                            "memory_cached": memory_cached, "position_bias": position_bias, "buckets": buckets,
                            "rows": rows, "pairs": pairs, "cols": cols}


def _moe(f, in_shapes):
    """A mixture-of-experts feed-forward block on [T, D] (Mixtral's sparse MoE): a router linear
    D -> E without bias, a softmax over the E experts, the top k per token (renormalized when
    ``normalize``), and per chosen expert a (gated) MLP down(act(gate(x)) * up(x)), its outputs
    weighted and summed. ``params`` counts all E experts, ``active_params`` the router and k."""
    _n_inputs(in_shapes, 1)
    shape = in_shapes[0]
    _rank_at_least(shape, 1)
    d = shape[-1]
    experts = f.int("experts", required=True)
    top_k = f.int("top_k", required=True)
    ffn = f.int("ffn", required=True)
    act = f.choice("act", "silu", ("silu", "gelu", "relu"))
    gated = f.bool("gated", True)
    bias = f.bool("bias", False)
    normalize = f.bool("normalize", True)
    if top_k > experts:
        raise ShapeError(f"top_k {top_k} must be at most experts {experts}")
    expert = (3 if gated else 2) * d * ffn + (((2 if gated else 1) * ffn + d) if bias else 0)
    router = d * experts
    return shape, router + experts * expert, {
        "dim": d, "experts": experts, "top_k": top_k, "ffn": ffn, "act": act, "gated": gated, "bias": bias,
        "normalize": normalize, "expert_params": expert, "router_params": router,
        "active_params": router + top_k * expert}


RNN_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def _rnn_factory(kind):
    """``nn.LSTM``/``nn.GRU``/``nn.RNN`` on ``[T, I]``: hidden, layers [1], bidirectional [false],
    bias [true], proj [0] (LSTM's proj_size), nonlinearity [tanh | relu] (RNN), dropout [0]
    (between layers, training only). Optional second and third inputs are the initial states
    h0 ``[layers x directions, H_out]`` and (LSTM) c0 ``[layers x directions, H]``; without them
    the states start at zero. Output ``[T, directions x H_out]`` (H_out = proj or hidden).
    Training: ``output_grad`` [true] (the output gets a gradient), ``h_n_grad`` / ``c_n_grad``
    [false] (the final states h_n / c_n do; see ``_formulas.rnn_cost``)."""
    gates = RNN_GATES[kind]

    def rnn(f, in_shapes):
        most = 3 if kind == "lstm" else 2
        if not 1 <= len(in_shapes) <= most:
            raise ShapeError(f"takes 1 to {most} inputs (sequence{', h0, c0' if kind == 'lstm' else ', h0'}), "
                             f"got {len(in_shapes)}")
        x = in_shapes[0]
        if len(x) != 2:
            raise ShapeError(f"input shape {list(x)} must be [length, features]")
        t, i = x
        hidden = f.int("hidden", required=True)
        layers = f.int("layers", 1)
        bidirectional = f.bool("bidirectional", False)
        bias = f.bool("bias", True)
        proj = f.int("proj", 0, minimum=0) if kind == "lstm" else 0
        if proj >= hidden:
            raise ShapeError(f"'proj' {proj} must be smaller than 'hidden' {hidden}")
        nonlinearity = f.choice("nonlinearity", "tanh", ("tanh", "relu")) if kind == "rnn" else "tanh"
        dropout = f.number("dropout", 0)
        if not 0 <= dropout < 1:
            raise ShapeError(f"'dropout' must be in [0, 1), not {dropout!r}")
        directions = 2 if bidirectional else 1
        h_out = proj or hidden
        states = ((layers * directions, h_out), (layers * directions, hidden))
        for what, shape, want in zip(("h0", "c0"), in_shapes[1:], states):
            if tuple(shape) != want:
                raise ShapeError(f"{what} shape {list(shape)} must be {list(want)}")
        params = 0
        for layer in range(layers):
            width = i if layer == 0 else directions * h_out
            per_direction = gates * hidden * (width + h_out) + (2 * gates * hidden if bias else 0) + proj * hidden
            params += directions * per_direction
        output_grad = f.bool("output_grad", True)
        h_n_grad = f.bool("h_n_grad", False)
        c_n_grad = f.bool("c_n_grad", False) if kind == "lstm" else False
        return (t, directions * h_out), params, {
            "kind": kind, "gates": gates, "t": t, "in": i, "hidden": hidden, "h_out": h_out, "proj": proj,
            "layers": layers, "directions": directions, "bias": bias, "nonlinearity": nonlinearity,
            "dropout": dropout, "output_grad": output_grad, "h_n_grad": h_n_grad, "c_n_grad": c_n_grad}
    return rnn


def _explicit_or(f, default):
    out = f.any("out_shape")
    if out is None:
        return default
    if (not isinstance(out, (list, tuple)) or not out
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in out)):
        raise ShapeError(f"'out_shape' must be a list of positive integers, not {out!r}")
    return tuple(out)


def _broadcast(shapes):
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0} - {1}
        if len(dims) > 1:
            raise ShapeError(f"shape mismatch: cannot broadcast {' with '.join(str(list(s)) for s in shapes)}")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _op_table(value, key):
    if value is None:
        return None
    if (not isinstance(value, dict) or not all(isinstance(k, str) and k.isidentifier() for k in value)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value.values())):
        raise ShapeError(f"{key!r} must map op or recipe names to non-negative integers, not {value!r}")
    return dict(value)


def _elementwise(f, in_shapes):
    """Any elementwise function, its cost given per output element as basic ops or recipe
    names (the ONNX frontend's Add, Div, Erf, Pow, ...)."""
    ops = _op_table(f.any("ops"), "ops")
    if ops is None:
        raise ShapeError("missing field 'ops'")
    backward = _op_table(f.any("backward"), "backward")
    # backward_inputs: one table per input, counted only for the inputs that need a gradient
    # (x * mask: dy * mask for x, none for a mask without gradient); replaces ``backward``
    per_input = f.any("backward_inputs")
    if per_input is not None:
        if not isinstance(per_input, list) or len(per_input) != len(in_shapes):
            raise ShapeError(f"'backward_inputs' must be a list of {len(in_shapes)} op tables, not {per_input!r}")
        per_input = tuple(_op_table(t, "backward_inputs") or {} for t in per_input)
    label = f.any("op", "elementwise")
    out = _explicit_or(f, None) or _broadcast(in_shapes)
    once, once_inputs = _once(f, in_shapes)
    attrs = {"ops": ops, "backward": backward, "op": str(label), "once": once, "once_inputs": once_inputs}
    if per_input is not None:
        attrs["backward_inputs"] = per_input
    return out, f.int("params", 0, minimum=0), attrs


def _once(f, in_shapes):
    """``once`` [false]: the layer is computed once per batch (from parameters or constants), not
    per sample; ``once_inputs`` [none]: which inputs are such batch-free tensors (their
    gradient sums the batch)."""
    once = f.bool("once", False)
    once_inputs = f.any("once_inputs")
    if once_inputs is None:
        once_inputs = [once] * len(in_shapes)
    if (not isinstance(once_inputs, list) or len(once_inputs) != len(in_shapes)
            or not all(isinstance(v, bool) for v in once_inputs)):
        raise ShapeError(f"'once_inputs' must be a list of {len(in_shapes)} true/false values, not {once_inputs!r}")
    return once, tuple(once_inputs)


def _cumsum(f, in_shapes):
    """A running sum along ``axis`` [-1] (``torch.cumsum``): output shape = input shape;
    ``once`` as for ``elementwise``."""
    _n_inputs(in_shapes, 1)
    shape = in_shapes[0]
    axis = f.int("axis", -1, minimum=-len(shape))
    if axis >= len(shape):
        raise ShapeError(f"axis {axis} out of range for shape {list(shape)}")
    axis %= len(shape)
    once, once_inputs = _once(f, in_shapes)
    return shape, 0, {"axis": axis, "length": shape[axis], "once": once, "once_inputs": once_inputs}


def _reduce(f, in_shapes):
    """A reduction (sum, mean, max, min) from the input to ``out_shape``. ``once`` [false]: the
    output is computed once per batch; ``once_inputs`` [``[once]``]: whether the input is such a
    batch-free tensor too. A ``once`` output from a per-sample input (``once_inputs: [false]``)
    reduces over the whole batch (an ONNX ReduceMax over every axis, batch included)."""
    _n_inputs(in_shapes, 1)
    kind = f.choice("kind", "sum", ("sum", "mean", "max", "min"))
    out = _explicit_or(f, None)
    if out is None:
        raise ShapeError("missing field 'out_shape'")
    once, once_inputs = _once(f, in_shapes)
    if once_inputs[0] and not once:
        raise ShapeError("a batch-free input ('once_inputs': [true]) reduces to a batch-free output ('once': true)")
    if math.prod(in_shapes[0]) % math.prod(out):
        raise ShapeError(f"shape mismatch: cannot reduce {list(in_shapes[0])} to {list(out)}")
    return out, 0, {"kind": kind, "once": once, "once_inputs": once_inputs}


def _shape_op(f, in_shapes):
    """Data movement with an explicit output shape (slice, gather, pad, expand, ...): free
    forward. ``reads`` [all]: elements per sample of the first input it reads (a slice: consumers
    reading disjoint slices of one tensor need no gradient sum); ``grad`` [none | broadcast |
    gather]: the backward of an expand (the gradient summed back to the input's elements) or of
    a gather (each gathered element's gradient added into the source's); ``once`` [false]: a
    batch-free tensor (computed once per batch); ``once_inputs``: as for ``elementwise``."""
    label = f.any("op", "shape_op")
    out = _explicit_or(f, in_shapes[0])
    reads = f.int("reads", None, minimum=0)
    grad = f.choice("grad", "none", ("none", "broadcast", "gather"))
    once, once_inputs = _once(f, in_shapes)
    return out, f.int("params", 0, minimum=0), {"op": str(label), "reads": reads, "grad": grad, "once": once,
                                                 "once_inputs": once_inputs}


def _parameter(f, in_shapes):
    """A bare learned tensor (``nn.Parameter``: a class token, a position table, a layer scale),
    read as is by the layers that name it; computed once per batch, its shape is the whole
    tensor's ``shape``."""
    shape = f.any("shape")
    if (not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                        for d in shape)):
        raise ShapeError(f"'shape' must be a list of non-negative integers, not {shape!r}")
    return tuple(shape), math.prod(shape), {"once": True}


def _stochastic_depth(f, in_shapes):
    """torchvision's stochastic depth: drops whole samples (mode row) or the whole batch (batch)
    with probability p in training; identity in eval."""
    _n_inputs(in_shapes, 1)
    p = f.number("p", 0.5)
    if not 0 <= p <= 1:
        raise ShapeError(f"'p' must be in [0, 1], not {p!r}")
    mode = f.choice("mode", "row", ("row", "batch"))
    return in_shapes[0], 0, {"p": p, "mode": mode}


SHAPE_FUNCTIONS = {
    "elementwise": _elementwise,
    "reduce": _reduce,
    "cumsum": _cumsum,
    "shape_op": _shape_op,
    "parameter": _parameter,
    "stochastic_depth": _stochastic_depth,
    "hardswish": _same_shape(1),
    "hardsigmoid": _same_shape(1),
    "linear": _linear,
    "embedding": _embedding,
    "positional_embedding": _positional_embedding,
    "cls_token": _cls_token,
    "dropout": _dropout,
    "add": _elementwise_n,
    "mul": _elementwise_n,
    "concat": _concat,
    "flatten": _flatten,
    "reshape": _reshape,
    "transpose": _transpose,
    "identity": _same_shape(1),
    "select": _select,
    "matmul": _matmul,
    "bmm": _matmul,
    "sdpa": _sdpa,
    "attention": _attention,
    "moe": _moe,
    "lstm": _rnn_factory("lstm"),
    "gru": _rnn_factory("gru"),
    "rnn": _rnn_factory("rnn"),
    "relu": _same_shape(1),
    "relu6": _same_shape(1),
    "leaky_relu": _same_shape(1, ("slope", 0.01)),
    "sigmoid": _same_shape(1),
    "tanh": _same_shape(1),
    "gelu": _gelu,
    "silu": _same_shape(1),
    "softmax": _softmax,
    "log_softmax": _softmax,
    "batchnorm": _norm_factory("batchnorm"),
    "layernorm": _norm_factory("layernorm"),
    "rmsnorm": _norm_factory("rmsnorm"),
    "groupnorm": _norm_factory("groupnorm"),
    "global_avgpool": _adaptive_factory(0, "avg", global_=True),
    "global_maxpool": _adaptive_factory(0, "max", global_=True),
}
for _nd in (1, 2, 3):
    SHAPE_FUNCTIONS[f"conv{_nd}d"] = _conv_factory(_nd, False)
    SHAPE_FUNCTIONS[f"conv_transpose{_nd}d"] = _conv_factory(_nd, True)
    SHAPE_FUNCTIONS[f"maxpool{_nd}d"] = _pool_factory(_nd, "max")
    SHAPE_FUNCTIONS[f"avgpool{_nd}d"] = _pool_factory(_nd, "avg")
    SHAPE_FUNCTIONS[f"adaptive_avgpool{_nd}d"] = _adaptive_factory(_nd, "avg")
    SHAPE_FUNCTIONS[f"adaptive_maxpool{_nd}d"] = _adaptive_factory(_nd, "max")


def infer(ltype, spec, in_shapes, shapes):
    """Return ``(out_shape, params, attrs, known)`` for one layer.

    A type without a shape function is accepted only when the layer states its ``out_shape``
    (and optionally ``params``); it is then counted as unknown and the result is incomplete.
    """
    return infer_keyed(ltype, spec, in_shapes, shapes)[:4]


def infer_keyed(ltype, spec, in_shapes, shapes, memo=None):
    """:func:`infer`, and a key for the layer (``None`` when it has none): two layers with equal
    keys have the same type, the same fields and the same input shapes, exactly (types
    included; :func:`opcount._memo.freeze`), hence the same output shape, parameters and attrs.
    A shape function is a pure function of those, so with a ``memo`` dict (one per model: the
    fields of a spec may be mutable lists, which stay unchanged while one model is built) its
    results are kept under the key and the repeated blocks of a model are inferred once."""
    function = SHAPE_FUNCTIONS.get(ltype)
    if function is None:
        if "out_shape" not in spec:
            raise ShapeError(f"unknown layer type {ltype!r} (give 'out_shape' to keep it as an uncounted layer)")
        out = spec.pop("out_shape")
        if (not isinstance(out, list) or not out
                or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in out)):
            raise ShapeError(f"'out_shape' must be a list of positive integers, not {out!r}")
        params = spec.pop("params", 0)
        if not isinstance(params, int) or isinstance(params, bool) or params < 0:
            raise ShapeError(f"'params' must be a non-negative integer, not {params!r}")
        return tuple(out), params, dict(spec), False, None
    try:
        # shapes of exact ints (check_shape's, and what the shape functions return) key as they are
        exact = (type(in_shapes) is tuple and _TUPLES.issuperset(map(type, in_shapes))
                 and _INTS.issuperset(map(type, chain.from_iterable(in_shapes))))
        shapes_key = in_shapes if exact else freeze(in_shapes)
        key = (ltype, fields_key(spec), shapes_key)
    except Unfreezable:
        key = None
    hit = memo.get(key) if memo is not None and key is not None else None
    if hit is None:
        fields = _Fields(spec)
        out, params, attrs = function(fields, in_shapes)
        fields.finish()
        out = tuple(out)
        if memo is not None and key is not None:
            memo[key] = (out, params, dict(attrs))
    else:
        out, params, attrs = hit
        attrs = dict(attrs)          # each layer owns its attrs mapping, as without the memo
    if attrs.get("tied_to") is not None and attrs["tied_to"] not in shapes:
        raise ShapeError(f"'tied_to' names {attrs['tied_to']!r}, which is not an earlier layer")
    return out, params, attrs, True, key
