"""The layer benchmark's configurations (calibrate._suite), the counter probe and the calibrated
forward measurement (calibrate._harness.measure_forward), on fake counters."""
import itertools
import math
import time

import pytest

import opcount
from calibrate import (MAX_ELEMENTS, MAX_MACS, SUITE_LAYER_TYPES, CounterError, CounterProbe, MeasurementError,
                       layer_suite, probe_counter)


def take(n, *args, **kwargs):
    return list(itertools.islice(layer_suite(*args, **kwargs), n))


def test_suite_is_determined_by_the_seed():
    first = take(40, 7)
    assert first == take(40, 7)
    assert [c.spec for c in first] != [c.spec for c in take(40, 8)]
    # configuration i depends on (seed, i) only: a longer or later-starting run extends a shorter one
    assert take(15, 7, start=25) == take(40, 7)[25:]
    assert [c.type for c in first[:len(SUITE_LAYER_TYPES)]] == list(SUITE_LAYER_TYPES)
    subset = take(6, 7, types=("relu", "sdpa"))
    assert [c.type for c in subset] == ["relu", "sdpa"] * 3
    assert [c.index for c in subset] == list(range(6))


def test_suite_configurations_are_counted_models_within_the_caps():
    """Every configuration is a one-layer model opcount counts completely, within the size caps,
    at a batch inside the range; names identify the configuration."""
    configs = take(3 * len(SUITE_LAYER_TYPES), 1, batch=(2, 64))
    names = set()
    for config in configs:
        model = opcount.load_model(config.spec)
        assert [layer.type for layer in model.layers] == [config.type]
        assert config.spec["name"] == model.name and model.name.startswith(config.type + "-")
        names.add(model.name)
        assert 2 <= config.batch <= 64
        result = opcount.count_model(model, "cmos-generic", phase="inference", batch=config.batch)
        assert result.complete
        assert config.batch * max(math.prod(model.input_shape), math.prod(model.output_shape)) <= MAX_ELEMENTS
        assert result.macs <= MAX_MACS
    assert len(names) == len(configs)


def test_suite_arguments_checked():
    with pytest.raises(ValueError, match=r"^unknown layer type 'lstm'$"):
        take(1, 0, types=("relu", "lstm"))
    with pytest.raises(ValueError, match=r"^batch range 4-2 is not 1 <= low <= high$"):
        take(1, 0, batch=(4, 2))


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class ClockCounter:
    """A RAPL-like counter driven by a clock: ``watts`` of power, the reading updated every
    ``update_s`` seconds, in units of ``unit_j`` joules."""
    kind = "fake"
    channels = ["fake:0"]

    def __init__(self, clock, *, watts=20.0, update_s=0.001, unit_j=1e-6, wrap=None):
        self.clock, self.watts, self.update_s, self.unit_j = clock, watts, update_s, unit_j
        self.modulus = wrap
        self.ranges = [wrap]
        self.t0 = clock()
        self.log = []

    def read(self):
        updates = math.floor((self.clock() - self.t0) / self.update_s + 1e-9)
        value = round(updates * self.update_s * self.watts / self.unit_j)
        self.log.append(value % self.modulus if self.modulus else value)
        return [self.log[-1]]

    def close(self):
        pass


def test_probe_finds_update_interval_step_and_power():
    clock = Clock()
    counter = ClockCounter(clock, watts=20.0, update_s=0.002)
    probe = probe_counter(counter, clock=clock, sleep=clock.sleep, poll_s=0.0001)
    assert probe.update_s == pytest.approx(0.002, rel=0.06)
    assert probe.quantum_j == pytest.approx(0.04, rel=0.06)        # 20 W x 2 ms per update
    assert probe.power_w == pytest.approx(20.0, rel=0.06)
    assert probe.changes == 8
    # 2% accuracy: two updates are 2% of the run; at least the floor
    assert probe.run_seconds(0.02, floor=0) == pytest.approx(0.2, rel=0.06)
    assert probe.run_seconds(0.02) == 1.0


def test_probe_run_seconds_for_a_coarse_counter():
    """A counter whose step is coarse for its update rate (1 J steps at 5 W) needs the longer run."""
    probe = CounterProbe(update_s=0.01, quantum_j=1.0, power_w=5.0, changes=8)
    assert probe.run_seconds(0.02, floor=0) == pytest.approx(2 * 1.0 / (0.02 * 5.0))


def test_probe_refuses_a_counter_that_does_not_move():
    clock = Clock()
    counter = ClockCounter(clock, watts=0.0)
    with pytest.raises(CounterError, match=r"^counter fake:0 changed 0 times in 0\.05 s of polling; it cannot time "
                                           r"a measurement$"):
        probe_counter(counter, clock=clock, sleep=clock.sleep, max_seconds=0.05)


def test_probe_handles_a_wrap_and_refuses_backwards():
    clock = Clock()
    counter = ClockCounter(clock, watts=1.0, update_s=0.001, unit_j=1e-6, wrap=2500)
    probe = probe_counter(counter, clock=clock, sleep=clock.sleep, poll_s=0.0005)
    assert probe.power_w == pytest.approx(1.0, rel=0.01)            # the counter wrapped at 2500 uJ meanwhile
    counter.ranges = [None]        # the same readings from a counter said not to wrap
    with pytest.raises(CounterError, match=r"^fake:0: counter went backwards \(\d+ -> \d+\) and does not wrap$"):
        probe_counter(counter, clock=clock, sleep=clock.sleep, poll_s=0.0005)


torch = pytest.importorskip("torch")
from calibrate import build_torch_module, measure_forward  # noqa: E402


@pytest.mark.parametrize("kind", SUITE_LAYER_TYPES)
def test_suite_layers_build_as_counted(kind):
    """The module PyTorch runs has the counted parameters and output shape."""
    config = take(1, 3, types=(kind,))[0]
    model = opcount.load_model(config.spec)
    net = build_torch_module(model).eval()
    assert sum(p.numel() for p in net.parameters()) == model.params
    with torch.no_grad():
        out = net(torch.randn((1,) + tuple(model.input_shape)))
    assert tuple(out.shape[1:]) == tuple(model.output_shape)


def test_layers_the_harness_cannot_run_as_counted_are_refused():
    mha = r"torch's MultiheadAttention runs no grouped-query attention, rope or mask as counted"
    for layer, shape, reason in [
            ({"type": "attention", "heads": 4, "kv_heads": 2}, [8, 32], mha),
            ({"type": "attention", "heads": 4, "rope": True}, [8, 32], mha),
            ({"type": "attention", "heads": 4, "causal": True}, [8, 32], mha),
            ({"type": "sdpa", "inputs": ["input"] * 3, "mask": "additive"}, [2, 8, 16],
             r"an additive mask is not generated"),
            ({"type": "batchnorm", "bias": False}, [3, 4, 4], r"torch's BatchNorm has no affine without bias")]:
        model = opcount.load_model({"name": "m", "input": shape, "layers": [layer]})
        with pytest.raises(MeasurementError, match=rf"^m: layer '{layer['type']}_0' of type '{layer['type']}' "
                                                   rf"cannot be built for measurement: {reason}$"):
            build_torch_module(model)
    causal = opcount.load_model({"name": "c", "input": [2, 8, 16],
                                 "layers": [{"type": "sdpa", "inputs": ["input"] * 3, "causal": True}]})
    x = torch.randn(1, 2, 8, 16)
    with torch.no_grad():
        expected = torch.nn.functional.scaled_dot_product_attention(x, x, x, is_causal=True)
        assert torch.equal(build_torch_module(causal)(x), expected)


def test_measure_forward_runs_until_the_counter_resolves_it():
    counter = ClockCounter(time.perf_counter, watts=50.0, update_s=0.001)
    model = opcount.load_model(take(1, 0, types=("linear",))[0].spec)
    row, per_pass = measure_forward(model, counter, model_name="m.yaml", batch=3, run_seconds=0.05,
                                    timing_seconds=0.01)
    assert row["seconds"] >= 0.05 and row["passes"] >= 1 and per_pass > 0
    assert (row["phase"], row["batch"], row["epochs"], row["samples"], row["device"]) == \
        ("inference", 3, 1, "", "fake:0")
    # the counter is read when the run starts and when it stops, nowhere else: the energy is the
    # difference, and it covers at least the run's 0.05 s at 50 W less one update at each end
    assert len(counter.log) == 2
    assert row["energy_j"] == (counter.log[1] - counter.log[0]) * 1e-6 >= 50.0 * (0.05 - 2 * 0.001)
