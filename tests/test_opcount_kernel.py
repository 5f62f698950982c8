"""opcount.kernel: the scoring kernel (numpy and numba forms) against the plain-numpy reference."""
import numpy as np
import pytest

from opcount.kernel import KernelInputError, tos_from_counts
from tests.naive import tos_reference


def _synthetic(seed, n_models, max_layers, n_formats=4):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, max_layers, size=n_models)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(offsets[-1])
    counts = rng.integers(0, 10**12, size=(n, 4, 6), dtype=np.int64)
    costs = rng.uniform(10, 2e5, size=(6, n_formats))
    fmt = rng.integers(0, n_formats, size=n)
    return counts, costs, fmt, offsets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_reference(seed):
    counts, costs, fmt, offsets = _synthetic(seed, n_models=57, max_layers=40)
    got = tos_from_counts(counts, costs, fmt, offsets)
    want = tos_reference(counts, costs, fmt, offsets)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=0)


def test_hand_count():
    # one model, two layers: [2 add, 3 mul] forward in fp32, [1 div] backward in fp16
    counts = np.zeros((2, 4, 6), dtype=np.int64)
    counts[0, 0, 0], counts[0, 0, 2] = 2, 3
    counts[1, 2, 3] = 1
    costs = np.zeros((6, 2))
    costs[0] = [100, 240]      # add: fp16, fp32
    costs[2] = [1000, 9000]    # mul
    costs[3] = [5000, 20000]   # div
    layer, stage, model = tos_from_counts(counts, costs, np.array([1, 0]))
    assert layer[0, 0] == 2 * 240 + 3 * 9000
    assert layer[1, 2] == 5000
    assert stage.tolist() == [[2 * 240 + 3 * 9000, 0, 5000, 0]]
    assert model.tolist() == [2 * 240 + 3 * 9000 + 5000]


def test_empty_models_and_no_layers():
    counts = np.zeros((0, 4, 6), dtype=np.int64)
    layer, stage, model = tos_from_counts(counts, np.ones((6, 1)), np.zeros(0, dtype=np.int64),
                                          np.array([0, 0, 0]))
    assert layer.shape == (0, 4) and stage.tolist() == [[0] * 4] * 2 and model.tolist() == [0, 0]


def test_bad_inputs():
    counts = np.zeros((3, 4, 6), dtype=np.int64)
    with pytest.raises(KernelInputError, match=r"^counts must be an int64 array"):
        tos_from_counts(counts.astype(np.int32), np.ones((6, 1)), np.zeros(3))
    with pytest.raises(KernelInputError, match=r"^costs must have shape \(6, formats\), not \(5, 1\)$"):
        tos_from_counts(counts, np.ones((5, 1)), np.zeros(3))
    with pytest.raises(KernelInputError, match=r"^layer_format values must lie in 0\.\.0$"):
        tos_from_counts(counts, np.ones((6, 1)), np.array([0, 1, 0]))
    with pytest.raises(KernelInputError, match=r"^offsets must rise from 0 to the number of layers$"):
        tos_from_counts(counts, np.ones((6, 1)), np.zeros(3), np.array([0, 2, 1, 3]))


def test_out_arrays_are_filled_and_checked():
    counts, costs, fmt, offsets = _synthetic(5, n_models=9, max_layers=7)
    n, m = counts.shape[0], len(offsets) - 1
    out = (np.full((n, 4), np.nan), np.full((m, 4), np.nan), np.full(m, np.nan))
    got = tos_from_counts(counts, costs, fmt, offsets, out=out)
    assert all(g is o for g, o in zip(got, out))
    for g, w in zip(got, tos_reference(counts, costs, fmt, offsets)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=0)
    with pytest.raises(KernelInputError, match=r"^out arrays must be C-contiguous float64"):
        tos_from_counts(counts, costs, fmt, offsets, out=(out[0][:, :3], out[1], out[2]))


def _paths(counts, costs, fmt, offsets, monkeypatch):
    """The same job through numpy, numba on one thread and numba on two threads."""
    from opcount import kernel
    results = {}
    monkeypatch.setattr(kernel, "_use_numba", lambda n: False)
    results["numpy"] = tos_from_counts(counts, costs, fmt, offsets)
    monkeypatch.setattr(kernel, "_use_numba", lambda n: True)
    monkeypatch.setattr(kernel, "_threads", lambda n: 1)
    results["numba 1 thread"] = tos_from_counts(counts, costs, fmt, offsets)
    monkeypatch.setattr(kernel, "_threads", lambda n: 2)
    results["numba 2 threads"] = tos_from_counts(counts, costs, fmt, offsets)
    return results


@pytest.mark.parametrize("seed,n_models,max_layers", [(7, 57, 40), (8, 3, 500), (9, 400, 2), (10, 1, 30)])
def test_numpy_and_numba_give_the_same_bits(seed, n_models, max_layers, monkeypatch):
    counts, costs, fmt, offsets = _synthetic(seed, n_models, max_layers)
    counts *= 1000      # products past 2**53: the order of the additions shows in the last bits
    results = _paths(counts, costs, fmt, offsets, monkeypatch)
    first = results["numpy"]
    for name, got in results.items():
        for g, f in zip(got, first):
            np.testing.assert_array_equal(g, f, err_msg=name)
    for g, w in zip(first, tos_reference(counts, costs, fmt, offsets)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=0)


def test_size_picks_the_implementation(monkeypatch):
    from opcount import kernel
    assert kernel._threads(10) == 1
    assert kernel._threads(2 * kernel._LAYERS_PER_THREAD - 1) == 1
    assert kernel._threads(3 * kernel._LAYERS_PER_THREAD) == 3
    monkeypatch.delitem(__import__("sys").modules, "opcount._kernel_numba", raising=False)
    assert not kernel._use_numba(kernel._NUMBA_MIN_LAYERS - 1)
    assert kernel._use_numba(kernel._NUMBA_MIN_LAYERS)


def test_numpy_path_in_blocks(monkeypatch):
    # blocks smaller than the job: the same result as one block
    from opcount import kernel
    counts, costs, fmt, offsets = _synthetic(11, 20, 30)
    monkeypatch.setattr(kernel, "_use_numba", lambda n: False)
    whole = tos_from_counts(counts, costs, fmt, offsets)
    monkeypatch.setattr(kernel, "_NUMPY_BLOCK", 7)
    for g, w in zip(tos_from_counts(counts, costs, fmt, offsets), whole):
        np.testing.assert_array_equal(g, w)
    for positions_max in (0, 10**6):       # model by model, and position by position
        monkeypatch.setattr(kernel, "_POSITIONS_MAX", positions_max)
        for g, w in zip(tos_from_counts(counts, costs, fmt, offsets), whole):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("lengths,n", [([5] * 100, 16), ([0, 0, 1000, 1, 1, 0], 16), ([], 4), ([0, 0, 0], 4),
                                       ([1] * 3, 16), ([50, 1, 1, 1, 50, 1], 4)])
def test_the_parallel_kernel_chunks_cover_every_model_once(lengths, n):
    from opcount._kernel_numba import _chunks
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    chunks = _chunks(offsets, n)
    assert chunks[0] == 0 and chunks[-1] == len(lengths) and len(chunks) <= n + 1
    assert np.all(np.diff(chunks) > 0) or len(lengths) == 0
    if lengths == [5] * 100:        # equal models: equal chunks (in layers, within one model)
        sizes = np.diff(offsets[chunks])
        assert sizes.max() - sizes.min() <= 5


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("wrong", [-1, 2])
def test_the_numba_kernel_refuses_a_format_outside_the_table(monkeypatch, threads, wrong):
    # the numba form checks the formats in its own pass over the layers, not beforehand
    from opcount import kernel
    monkeypatch.setattr(kernel, "_use_numba", lambda n: True)
    monkeypatch.setattr(kernel, "_threads", lambda n: threads)
    counts = np.ones((40, 4, 6), dtype=np.int64)
    fmt = np.zeros(40, dtype=np.int64)
    fmt[37] = wrong
    with pytest.raises(KernelInputError, match=r"^layer_format values must lie in 0\.\.1$"):
        tos_from_counts(counts, np.ones((6, 2)), fmt, np.array([0, 10, 20, 30, 40]))
    fmt[37] = 1
    assert tos_from_counts(counts, np.ones((6, 2)), fmt, np.array([0, 10, 20, 30, 40]))[2].tolist() == [240.0] * 4


def test_without_numba_jit_the_numpy_form_prices(monkeypatch):
    from opcount import kernel
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    assert not kernel._use_numba(kernel._NUMBA_MIN_LAYERS)
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "0")
    assert kernel._use_numba(kernel._NUMBA_MIN_LAYERS)
