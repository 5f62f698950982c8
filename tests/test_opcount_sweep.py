"""opcount.sweep: the family kernels against opcount.count_model (exact equality)."""
import numpy as np
import pytest

import hardware_profiles
import opcount
from opcount import sweep

PROFILES = {name: hardware_profiles.load(name) for name in ("cmos-generic", "li2022")}


def _reference(spec, profile, phase, batch):
    result = opcount.count_model(opcount.load_model(spec), profile, phase=phase, batch=batch)
    return result.as_array().sum(axis=0), result.params, result.macs


@pytest.mark.parametrize("seed", [0, 1])
def test_mlp_matches_count_model(seed):
    rng = np.random.default_rng(seed)
    for phase in opcount.PHASES:
        for loss in opcount.LOSSES:
            optimizer = str(rng.choice(opcount.OPTIMIZERS))
            profile = PROFILES[str(rng.choice(list(PROFILES)))]
            n = 6
            width = rng.integers(1, 300, size=n)
            depth = rng.integers(1, 9, size=n)
            act = rng.choice(sweep.ACTIVATIONS, size=n)
            batch, outputs, inputs = int(rng.integers(1, 9)), int(rng.integers(1, 5)), int(rng.integers(1, 20))
            got = sweep.sweep_mlp(profile, width=width, depth=depth, activation=act, inputs=inputs, outputs=outputs,
                                  batch=batch, phase=phase, loss=loss, optimizer=optimizer)
            assert got.status.tolist() == [0] * n
            for i in range(n):
                spec = sweep.mlp_spec(width=width[i], depth=depth[i], activation=act[i], inputs=inputs,
                                      outputs=outputs, loss=loss, optimizer=optimizer)
                counts, params, macs = _reference(spec, profile, phase, batch)
                np.testing.assert_array_equal(got.counts[i], counts)
                assert (got.params[i], got.macs[i], got.flops[i]) == (params, macs, 2 * macs)


@pytest.mark.parametrize("seed", [0, 1])
def test_cnn_matches_count_model(seed):
    rng = np.random.default_rng(100 + seed)
    for phase in opcount.PHASES:
        for loss in opcount.LOSSES:
            optimizer = str(rng.choice(opcount.OPTIMIZERS))
            profile = PROFILES[str(rng.choice(list(PROFILES)))]
            n = 4
            depth = rng.integers(1, 5, size=n)
            kernel = rng.integers(1, 6, size=n)
            channels = rng.integers(1, 9, size=n)
            image = rng.integers(8, 20, size=n)
            padding = rng.integers(0, 4, size=n)
            act = rng.choice(sweep.ACTIVATIONS, size=n)
            batch, classes = int(rng.integers(1, 5)), int(rng.integers(1, 5))
            got = sweep.sweep_cnn(profile, depth=depth, kernel=kernel, channels=channels, image=image,
                                  padding=padding, activation=act, in_channels=2, classes=classes, batch=batch,
                                  phase=phase, loss=loss, optimizer=optimizer)
            for i in range(n):
                spec = sweep.cnn_spec(depth=depth[i], kernel=kernel[i], channels=channels[i], image=image[i],
                                      padding=padding[i], activation=act[i], in_channels=2, classes=classes,
                                      loss=loss, optimizer=optimizer)
                if got.status[i] == sweep.STATUS_GEOMETRY:
                    with pytest.raises(opcount.ModelError, match=r"does not fit in length"):
                        opcount.load_model(spec)
                    continue
                assert got.status[i] == sweep.STATUS_OK
                counts, params, macs = _reference(spec, profile, phase, batch)
                np.testing.assert_array_equal(got.counts[i], counts)
                assert (got.params[i], got.macs[i]) == (params, macs)


def test_paper_cnn_set_matches_the_zoo():
    # li2022's CNN set at depth <= 6 (kernel 3) is the zoo's li2022-cnn-DEPTH
    profile = PROFILES["li2022"]
    got = sweep.sweep_cnn(profile, depth=[2, 6], kernel=3, channels=32, image=256, activation="gelu",
                          phase="training")
    for i, depth in enumerate([2, 6]):
        result = opcount.count_model(opcount.load_model(f"zoo:li2022-cnn-{depth}"), profile, phase="training")
        np.testing.assert_array_equal(got.counts[i], result.as_array().sum(axis=0))


def test_hand_count():
    # inputs 2 -> linear(3) -> relu -> linear(1), inference, batch 1:
    # linear1 6 mul, 3*(2-1) + 3 bias = 6 add; relu 3 cmp; linear2 3 mul, (3-1) + 1 = 3 add
    got = sweep.sweep_mlp(PROFILES["cmos-generic"], width=3, depth=1, activation="relu", inputs=2, outputs=1)
    assert dict(zip(opcount.BASIC_OPS, got.counts[0, 0].tolist())) == {
        "add": 9, "sub": 0, "mul": 9, "div": 0, "sqrt": 0, "cmp": 3}
    assert got.counts[0, 1:].sum() == 0
    assert (got.params[0], got.macs[0]) == (13, 9)


def test_broadcast_grid_and_names():
    axes = sweep.grid(width=[4, 8], activation=["tanh", "gelu", "relu"])
    assert axes["width"].tolist() == [4, 4, 4, 8, 8, 8]
    assert axes["activation"].tolist() == ["tanh", "gelu", "relu"] * 2
    got = sweep.sweep_mlp("cmos-generic", depth=2, **axes)
    assert len(got) == 6
    assert got.activation_names().tolist() == axes["activation"].tolist()
    assert got.config["depth"].tolist() == [2] * 6


def test_flags_geometry_and_overflow():
    got = sweep.sweep_cnn(PROFILES["li2022"], depth=[1, 3], kernel=5, image=8, channels=4)
    # 8 -> 4 -> 0: the second configuration's third conv does not fit
    assert got.status.tolist() == [sweep.STATUS_OK, sweep.STATUS_GEOMETRY]
    assert got.counts[1].sum() == 0 and got.params[1] == 0
    big = sweep.sweep_mlp(PROFILES["li2022"], width=[4, 2 ** 20], depth=64, activation="gelu", batch=2 ** 22,
                          phase="training")
    assert big.status.tolist() == [sweep.STATUS_OK, sweep.STATUS_OVERFLOW]
    assert big.counts[1].sum() == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(width=[4], depth=1, activation="swish"),
     r"^activation must be one of sigmoid, tanh, gelu, gelu_tanh, silu, relu, not 'swish'$"),
    (dict(width=[0], depth=1, activation="tanh"), r"^width must be integers >= 1, not 0$"),
    (dict(width=[4], depth=1, activation="tanh", phase="test"),
     r"^phase must be one of inference, validation, training, not 'test'$"),
    (dict(width=[4], depth=1, activation="tanh", batch=0), r"^batch must be a positive integer, not 0$"),
    (dict(width=[4.5], depth=1, activation="tanh"), r"^width must be integers, not float64$"),
    # past int64 (an object array) and past 2**62: a range error, not a type error or a numba one
    (dict(width=[4, 10 ** 20], depth=1, activation="tanh"), r"^width must be integers <= 2\*\*62, not 10{20}$"),
    (dict(width=[4], depth=2 ** 62 + 1, activation="tanh"), rf"^depth must be integers <= 2\*\*62, not {2 ** 62 + 1}$"),
    (dict(width=np.array([2 ** 63], dtype=np.uint64), depth=1, activation="tanh"),
     rf"^width must be integers <= 2\*\*62, not {2 ** 63}$"),
    (dict(width=[4], depth=1, activation="tanh", inputs=10 ** 20), r"^inputs must be integers <= 2\*\*62, not 10{20}$"),
    (dict(width=[4], depth=1, activation="tanh", batch=10 ** 20), r"^batch must be an integer <= 2\*\*62, not 10{20}$"),
])
def test_errors(kwargs, message):
    with pytest.raises(opcount.ModelError, match=message):
        sweep.sweep_mlp(PROFILES["cmos-generic"], **kwargs)


def test_cnn_range_errors():
    with pytest.raises(opcount.ModelError, match=r"^image must be integers <= 2\*\*62, not 10{20}$"):
        sweep.sweep_cnn(PROFILES["cmos-generic"], depth=1, image=10 ** 20)
    with pytest.raises(opcount.ModelError, match=r"^batch must be an integer <= 2\*\*62, not 10{20}$"):
        sweep.sweep_cnn(PROFILES["cmos-generic"], depth=1, batch=10 ** 20)
