"""opcount._shapes geometry: the closed forms of sliding-window, scatter and adaptive-window
tallies against brute-force loops over every (position, tap) pair, on many seeded random cases
and hand-picked edge cases (kernel wider than the input with padding, dilation, stride wider than
the kernel, ceil_mode)."""
import math
import random

import pytest

import opcount
from opcount._shapes import (ShapeError, adaptive_tally, adaptive_windows, conv_geometry, pool_geometry,
                             scatter_geometry, window_tally)


# --- brute-force references ---------------------------------------------------------------------

def brute_out(length, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's output length of a window (ceil_mode: a last window must start inside the
    input or its left padding), None when the window does not fit."""
    span = dilation * (kernel - 1) + 1
    if length + 2 * padding < span:
        return None
    last = length + 2 * padding - span                  # last start, in padded coordinates
    out = (math.ceil(last / stride) if ceil_mode else last // stride) + 1
    if ceil_mode and (out - 1) * stride >= length + padding:
        out -= 1
    return out


def brute_tally(n, kernel, stride, dilation, offset, length):
    pairs, hit = 0, set()
    for x in range(n):
        for t in range(kernel):
            i = x * stride + t * dilation + offset
            if 0 <= i < length:
                pairs += 1
                hit.add(i)
    return pairs, len(hit)


def brute_conv(length, kernel, stride, padding, dilation, ceil_mode=False):
    out = brute_out(length, kernel, stride, padding, dilation, ceil_mode)
    if out is None:
        return None
    return (out,) + brute_tally(out, kernel, stride, dilation, -padding, length)


def brute_scatter(length, kernel, stride, padding, dilation, output_padding):
    o = (length - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if o < 1:
        return None
    pairs, hit = 0, set()
    for i in range(length):
        for t in range(kernel):
            j = i * stride - padding + t * dilation
            if 0 <= j < o:
                pairs += 1
                hit.add(j)
    return o, pairs, len(hit)


def brute_adaptive(length, out):
    windows = [(math.floor(i * length / out), math.ceil((i + 1) * length / out)) for i in range(out)]
    pairs = sum(b - a for a, b in windows)
    overlap = any(windows[i + 1][0] < windows[i][1] for i in range(out - 1))
    return windows, pairs, overlap


def random_cases(seed, count):
    rng = random.Random(seed)
    for _ in range(count):
        yield (rng.randint(1, 40), rng.randint(1, 9), rng.randint(1, 9), rng.randint(0, 12), rng.randint(1, 5),
               rng.random() < 0.5)


# --- sliding windows (convolution and pooling) --------------------------------------------------

def test_window_tally_matches_brute_force():
    rng = random.Random(1)
    for _ in range(4000):
        args = (rng.randint(0, 30), rng.randint(1, 9), rng.randint(1, 9), rng.randint(1, 6),
                rng.randint(-25, 25), rng.randint(1, 40))
        assert window_tally(*args) == brute_tally(*args), args


def test_window_tally_stride_one_without_padding():
    # the unpadded stride-1 shortcut (one interval) and its boundaries: dilation wider than the
    # run count, a window that just fits or just overhangs the end
    rng = random.Random(7)
    for _ in range(3000):
        args = (rng.randint(0, 30), rng.randint(1, 6), 1, rng.randint(1, 5), rng.randint(0, 4), rng.randint(1, 60))
        assert window_tally(*args) == brute_tally(*args), args
    assert window_tally(254, 3, 1, 1, 0, 256) == (762, 256)      # li2022-cnn's 3x3 valid conv, per dim
    assert window_tally(2, 3, 1, 4, 0, 10) == (6, 6)             # dilation 4 > 2 runs: gaps {0,1} {4,5} {8,9}


def test_conv_geometry_matches_brute_force():
    fitted = 0
    for length, kernel, stride, padding, dilation, ceil_mode in random_cases(2, 6000):
        want = brute_conv(length, kernel, stride, padding, dilation, ceil_mode)
        if want is None:
            with pytest.raises(ShapeError, match=r"^window of span \d+ does not fit in length \d+ with padding \d+$"):
                conv_geometry(length, kernel, stride, padding, dilation, ceil_mode)
        else:
            fitted += 1
            assert conv_geometry(length, kernel, stride, padding, dilation, ceil_mode) == want, (
                length, kernel, stride, padding, dilation, ceil_mode)
    assert fitted > 4000


@pytest.mark.parametrize("args, want", [
    ((7, 3, 2, 0, 2), (2, 6, 4)),              # windows {0,2,4} {2,4,6}
    ((4, 3, 1, 1, 1), (4, 10, 4)),             # padding 1: 10 taps inside
    ((2, 5, 1, 2, 1), (2, 4, 2)),              # kernel wider than the input, padding makes it fit
    ((3, 7, 1, 3, 1), (3, 9, 3)),              # every input position under every window
    ((1, 3, 1, 1, 1), (1, 1, 1)),              # one position, two taps on padding
    ((10, 2, 5, 0, 1), (2, 4, 4)),             # stride wider than the kernel: positions 0,1,5,6
    ((10, 1, 3, 0, 1), (4, 4, 4)),             # 1-tap window, stride 3
    ((9, 3, 1, 0, 4), (1, 3, 3)),              # dilation 4: span 9, one window
    ((9, 3, 1, 1, 4), (3, 7, 7)),              # dilation 4 with padding: windows {3,7} {0,4,8} {1,5}
    ((5, 3, 4, 1, 2), (1, 2, 2)),              # stride 4, dilation 2, padding 1: one window {1,3}
])
def test_conv_geometry_edge_cases(args, want):
    assert conv_geometry(*args) == want == brute_conv(*args)


@pytest.mark.parametrize("args, want", [
    ((5, 2, 2, 0, 1, True), (3, 5, 5)),        # ceil_mode adds a last half window
    ((5, 2, 2, 0, 1, False), (2, 4, 4)),
    ((6, 3, 2, 1, 1, True), (4, 9, 6)),        # the last window {5} starts in the input: kept
    ((4, 2, 3, 1, 1, True), (2, 3, 3)),        # ceil would start a window in the right padding: dropped
    ((7, 3, 3, 1, 2, True), (3, 6, 6)),        # ceil_mode with dilation: {1,3} {2,4,6} {5}
])
def test_conv_geometry_ceil_mode(args, want):
    assert conv_geometry(*args) == want == brute_conv(*args)


def test_conv_geometry_rejects_a_window_that_does_not_fit():
    with pytest.raises(ShapeError, match=r"^window of span 5 does not fit in length 2 with padding 1$"):
        conv_geometry(2, 5, 1, 1, 1)
    with pytest.raises(ShapeError, match=r"^window of span 9 does not fit in length 8 with padding 0$"):
        conv_geometry(8, 3, 1, 0, 4)


def test_pool_geometry_multiplies_dimensions():
    rng = random.Random(3)
    for _ in range(300):
        dims = rng.randint(1, 3)
        shape = [rng.randint(3, 20) for _ in range(dims)]
        kernel = [rng.randint(1, 3) for _ in range(dims)]
        stride = [rng.randint(1, 4) for _ in range(dims)]
        padding = [rng.randint(0, k // 2) for k in kernel]
        dilation = [rng.randint(1, 2) for _ in range(dims)]
        ceil_mode = rng.random() < 0.5
        per_dim = [brute_conv(*args, ceil_mode) for args in zip(shape, kernel, stride, padding, dilation)]
        if any(d is None for d in per_dim):
            continue
        want = (tuple(o for o, _, _ in per_dim), math.prod(p for _, p, _ in per_dim),
                math.prod(h for _, _, h in per_dim))
        assert pool_geometry(shape, kernel, stride, padding, dilation, ceil_mode) == want


# --- transposed convolution (scatter) -----------------------------------------------------------

def test_scatter_geometry_matches_brute_force():
    rng = random.Random(4)
    seen_positive = 0
    for _ in range(6000):
        args = (rng.randint(1, 30), rng.randint(1, 9), rng.randint(1, 9), rng.randint(0, 12), rng.randint(1, 5),
                rng.randint(0, 8))
        want = brute_scatter(*args)
        if want is None:
            with pytest.raises(ShapeError, match=r"^output length -?\d+ of a transposed convolution is not positive$"):
                scatter_geometry(*args)
        else:
            seen_positive += 1
            assert scatter_geometry(*args) == want, args
    assert seen_positive > 3000


@pytest.mark.parametrize("args, want", [
    ((4, 3, 2, 0, 1, 0), (9, 12, 9)),          # overlapping windows: 3 collisions
    ((4, 2, 3, 0, 1, 0), (11, 8, 8)),          # stride wider than the kernel: gaps, no collisions
    ((3, 3, 1, 1, 2, 0), (5, 7, 5)),           # dilation 2, padding crops both ends
    ((2, 4, 2, 2, 1, 1), (3, 5, 3)),           # padding plus output_padding: {0,1} {0,1,2}
    ((1, 5, 1, 2, 1, 0), (1, 1, 1)),           # one input, kernel cropped to its centre tap
])
def test_scatter_geometry_edge_cases(args, want):
    assert scatter_geometry(*args) == want == brute_scatter(*args)


def _layer(ltype, in_shape, **fields):
    model = opcount.load_model({"input": list(in_shape), "layers": [{"type": ltype, "name": "x", **fields}]})
    return model.layers[0]


def test_conv_transpose_layers_use_the_scatter_geometry():
    rng = random.Random(5)
    for _ in range(200):
        nd = rng.randint(1, 3)
        spatial = [rng.randint(1, 9) for _ in range(nd)]
        kernel = [rng.randint(1, 5) for _ in range(nd)]
        stride = [rng.randint(1, 4) for _ in range(nd)]
        dilation = [rng.randint(1, 3) for _ in range(nd)]
        padding = [rng.randint(0, 3) for _ in range(nd)]
        output_padding = [rng.randint(0, 2) for _ in range(nd)]
        per_dim = [brute_scatter(*args) for args in zip(spatial, kernel, stride, padding, dilation, output_padding)]
        if any(d is None for d in per_dim) or any(o >= max(s, d) for o, s, d in zip(output_padding, stride, dilation)):
            continue    # PyTorch refuses output_padding >= max(stride, dilation); so does the spec
        layer = _layer(f"conv_transpose{nd}d", [2] + spatial, out=3, kernel=kernel, stride=stride, dilation=dilation,
                       padding=padding, output_padding=output_padding)
        assert layer.out_shape == (3,) + tuple(o for o, _, _ in per_dim)
        assert layer.attrs["pairs"] == math.prod(p for _, p, _ in per_dim)
        assert layer.attrs["hits"] == math.prod(h for _, _, h in per_dim)


def test_conv_and_pool_layers_use_the_window_geometry():
    rng = random.Random(6)
    for _ in range(200):
        nd = rng.randint(1, 3)
        spatial = [rng.randint(4, 12) for _ in range(nd)]
        kernel = [rng.randint(1, 4) for _ in range(nd)]
        stride = [rng.randint(1, 4) for _ in range(nd)]
        dilation = [rng.randint(1, 2) for _ in range(nd)]
        padding = [rng.randint(0, k // 2) for k in kernel]
        ceil_mode = rng.random() < 0.5
        conv_dims = [brute_conv(*args) for args in zip(spatial, kernel, stride, padding, dilation)]
        pool_dims = [brute_conv(*args, ceil_mode) for args in zip(spatial, kernel, stride, padding, dilation)]
        if any(d is None for d in conv_dims + pool_dims):
            continue
        conv = _layer(f"conv{nd}d", [2] + spatial, out=3, kernel=kernel, stride=stride, dilation=dilation,
                      padding=padding)
        pool = _layer(f"maxpool{nd}d", [2] + spatial, kernel=kernel, stride=stride, dilation=dilation,
                      padding=padding, ceil_mode=ceil_mode)
        for layer, dims in ((conv, conv_dims), (pool, pool_dims)):
            assert layer.out_shape[1:] == tuple(o for o, _, _ in dims)
            assert layer.attrs["pairs"] == math.prod(p for _, p, _ in dims)
            assert layer.attrs["hits"] == math.prod(h for _, _, h in dims)


# --- adaptive pooling -----------------------------------------------------------------------------

def test_adaptive_tally_matches_the_windows():
    for length in range(1, 41):
        for out in range(1, 50):
            windows, pairs, overlap = brute_adaptive(length, out)
            assert adaptive_windows(length, out) == windows
            assert adaptive_tally(length, out) == (pairs, overlap), (length, out)


def test_adaptive_pool_layer_counts():
    layer = _layer("adaptive_avgpool2d", [2, 7, 10], out=[3, 4])
    assert layer.out_shape == (2, 3, 4)
    assert layer.attrs["pairs"] == (7 + 3 - 1) * (10 + 4 - 2)
    assert layer.attrs["hits"] == 70
    assert layer.attrs["overlap"] is True
    layer = _layer("adaptive_maxpool1d", [2, 12], out=4)
    assert (layer.attrs["pairs"], layer.attrs["overlap"]) == (12, False)
