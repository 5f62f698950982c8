"""A seeded benchmark of single-layer configurations for calibrating a device (``tosim measure
--suite layers``), in the manner of Getzner et al. 2023: one layer at a time, random
configurations, inference passes timed around an energy counter.

Each configuration is a one-layer model spec (a dict that ``opcount.load_model`` reads and that
:func:`calibrate.build_torch_module` builds) and a batch size. The configuration spaces, per
sample (integers drawn log-uniformly where marked *log*, else uniformly):

==========  =====================================================================================
conv2d      image 4-224 *log* (square), in channels 1-512 *log*, out channels 2-512 *log*,
            kernel 1-11, stride 1-5, padding 0-3 (Getzner's space)
linear      in 4-5000 *log*, out 1-5000 *log*
maxpool2d,  image 4-224 *log*, channels 1-512 *log*, kernel 1-11, stride 1-5,
avgpool2d   padding 0-min(3, kernel // 2) (PyTorch allows at most half the kernel)
relu, sigmoid, tanh, gelu
            elements 1,000-5,000,000 *log*, shape ``[elements]``
softmax     row length 2-65,536 *log*, elements 1,000-5,000,000 *log*: ``[rows, length]``
layernorm   ``[T, D]``: D 16-8192 *log*, T 1-2048 *log*
batchnorm   ``[C, H, W]``: C 1-512 *log*, H = W 1-112 *log* (eval mode in inference)
attention   multi-head self-attention on ``[T, heads * head_dim]``: heads 1, 2, 4, 8 or 16,
            head_dim 16, 32, 64 or 128, T 1-1024 *log*
sdpa        scaled dot-product self-attention (q = k = v) on ``[heads, T, head_dim]``: heads 1-16,
            head_dim 16, 32, 64 or 128, T 1-2048 *log*
==========  =====================================================================================

The batch is drawn log-uniformly from the requested range, capped so that one pass stays
within :data:`MAX_ELEMENTS` elements per tensor (inputs, outputs, weights, attention scores) and
:data:`MAX_MACS` multiply-accumulates: a pass takes at most about a second on a laptop CPU and
the tensors fit in memory. A per-sample configuration over the caps at the smallest batch is
drawn again. Types take turns in the order given, so a short run still covers every type; the
i-th configuration depends on the seed and i only, so a larger ``count`` extends a smaller one.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Iterator, Sequence

__all__ = ["SUITE_LAYER_TYPES", "SuiteConfig", "layer_suite", "MAX_ELEMENTS", "MAX_MACS"]

SUITE_LAYER_TYPES = ("conv2d", "linear", "maxpool2d", "avgpool2d", "relu", "sigmoid", "tanh", "gelu", "softmax",
                     "layernorm", "batchnorm", "attention", "sdpa")
#: the largest tensor (elements, batch included) one configuration may create
MAX_ELEMENTS = 1 << 24
#: the most multiply-accumulates one forward pass may take
MAX_MACS = 1 << 32


@dataclass(frozen=True)
class SuiteConfig:
    """One configuration: ``spec`` a one-layer model spec (its ``name`` is the configuration's,
    unique per layer and per-sample shape), ``batch`` the samples per pass."""
    index: int
    type: str
    spec: dict
    batch: int


def _log_int(rng, lo, hi):
    return min(hi, max(lo, int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1))))))


def _out_len(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


# Each sampler returns (input shape, layer dict, name parts, per-sample elements of the largest
# tensor, per-sample MACs, elements of batch-independent tensors such as weights), or None to draw
# again.

def _conv2d(rng):
    image, cin, cout = _log_int(rng, 4, 224), _log_int(rng, 1, 512), _log_int(rng, 2, 512)
    kernel, stride, padding = rng.randint(1, 11), rng.randint(1, 5), rng.randint(0, 3)
    out = _out_len(image, kernel, stride, padding)
    if out < 1:
        return None
    layer = {"type": "conv2d", "out": cout, "kernel": kernel, "stride": stride, "padding": padding}
    biggest = max(cin * image * image, cout * out * out)
    return ([cin, image, image], layer, [f"o{cout}", f"k{kernel}", f"s{stride}", f"p{padding}"], biggest,
            cout * out * out * cin * kernel * kernel, cout * cin * kernel * kernel)


def _linear(rng):
    i, o = _log_int(rng, 4, 5000), _log_int(rng, 1, 5000)
    return [i], {"type": "linear", "out": o}, [f"o{o}"], max(i, o), i * o, i * o


def _pool(kind):
    def sample(rng):
        image, channels = _log_int(rng, 4, 224), _log_int(rng, 1, 512)
        kernel = rng.randint(1, min(11, image))
        stride, padding = rng.randint(1, 5), rng.randint(0, min(3, kernel // 2))
        if _out_len(image, kernel, stride, padding) < 1:
            return None
        layer = {"type": kind, "kernel": kernel, "stride": stride, "padding": padding}
        return ([channels, image, image], layer, [f"k{kernel}", f"s{stride}", f"p{padding}"],
                channels * image * image, 0, 0)
    return sample


def _activation(kind):
    def sample(rng):
        n = _log_int(rng, 1000, 5_000_000)
        return [n], {"type": kind}, [], n, 0, 0
    return sample


def _softmax(rng):
    length, elements = _log_int(rng, 2, 65536), _log_int(rng, 1000, 5_000_000)
    rows = max(1, elements // length)
    return [rows, length], {"type": "softmax"}, [], rows * length, 0, 0


def _layernorm(rng):
    d, t = _log_int(rng, 16, 8192), _log_int(rng, 1, 2048)
    return [t, d], {"type": "layernorm"}, [], t * d, 0, d


def _batchnorm(rng):
    c, hw = _log_int(rng, 1, 512), _log_int(rng, 1, 112)
    return [c, hw, hw], {"type": "batchnorm"}, [], c * hw * hw, 0, c


def _attention(rng):
    heads, hd, t = rng.choice((1, 2, 4, 8, 16)), rng.choice((16, 32, 64, 128)), _log_int(rng, 1, 1024)
    d = heads * hd
    # the four projections (4 t d^2) and the two products with the scores (2 t^2 d)
    return ([t, d], {"type": "attention", "heads": heads}, [f"h{heads}"], max(3 * t * d, heads * t * t),
            4 * t * d * d + 2 * t * t * d, 4 * d * d)


def _sdpa(rng):
    heads, hd, t = rng.randint(1, 16), rng.choice((16, 32, 64, 128)), _log_int(rng, 1, 2048)
    return ([heads, t, hd], {"type": "sdpa", "inputs": ["input", "input", "input"]}, [],
            max(heads * t * hd, heads * t * t), 2 * heads * t * t * hd, 0)


_SAMPLERS = {"conv2d": _conv2d, "linear": _linear, "maxpool2d": _pool("maxpool2d"), "avgpool2d": _pool("avgpool2d"),
             "relu": _activation("relu"), "sigmoid": _activation("sigmoid"), "tanh": _activation("tanh"),
             "gelu": _activation("gelu"), "softmax": _softmax, "layernorm": _layernorm, "batchnorm": _batchnorm,
             "attention": _attention, "sdpa": _sdpa}


def _one(rng, kind, batch_lo, batch_hi):
    for _ in range(1000):
        drawn = _SAMPLERS[kind](rng)
        if drawn is None:
            continue
        shape, layer, parts, elements, macs, fixed = drawn
        largest = min(MAX_ELEMENTS // max(elements, 1), MAX_MACS // macs if macs else batch_hi)
        if fixed > MAX_ELEMENTS or largest < batch_lo:
            continue
        batch = _log_int(rng, batch_lo, min(batch_hi, largest))
        name = "-".join([kind, "x".join(str(d) for d in shape)] + parts)
        return {"name": name, "input": shape, "layers": [layer]}, batch
    raise RuntimeError(f"no {kind} configuration within the size caps after 1000 draws")   # pragma: no cover


def layer_suite(seed: int = 0, *, types: Sequence[str] = SUITE_LAYER_TYPES, batch: tuple[int, int] = (1, 256),
                start: int = 0) -> Iterator[SuiteConfig]:
    """An endless iterator of :class:`SuiteConfig`, the same for the same arguments; configuration
    ``i`` is of type ``types[i % len(types)]`` and drawn from a generator seeded by (seed, i), so
    the sequence does not depend on how many are taken. ``batch`` is the inclusive range of batch
    sizes. Unknown types raise ValueError."""
    types = tuple(types)
    unknown = [t for t in types if t not in _SAMPLERS]
    if unknown or not types:
        raise ValueError(f"unknown layer type {unknown[0]!r}" if unknown else "no layer types")
    lo, hi = batch
    if not 1 <= lo <= hi:
        raise ValueError(f"batch range {lo}-{hi} is not 1 <= low <= high")
    index = start
    while True:
        kind = types[index % len(types)]
        rng = random.Random(f"tosim-layer-suite:{seed}:{index}:{kind}")
        spec, b = _one(rng, kind, lo, hi)
        yield SuiteConfig(index=index, type=kind, spec=spec, batch=b)
        index += 1
