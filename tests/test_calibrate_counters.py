import os

import pytest

from calibrate import (MAX_PLAUSIBLE_W, CounterError, CounterUnavailable, EnergyMeter, MeasurementError, NvmlCounter,
                       RaplCounter, detect_counter, wrapped_delta)


def make_zone(root, name, zone, energy, max_range=1_000_000):
    path = root / name
    path.mkdir(parents=True)
    (path / "name").write_text(zone + "\n")
    (path / "energy_uj").write_text(f"{energy}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")
    return path


def put(path, data):
    """Replace a counter file in one step, as sysfs does: a sampling thread never sees it empty."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def set_energy(path, value):
    put(path / "energy_uj", f"{value}\n".encode())


class Clock:
    """A settable clock for EnergyMeter, so that the time between samples is what a test says."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_wrapped_delta():
    assert wrapped_delta(100, 250, 1000) == 150
    assert wrapped_delta(900, 50, 1000) == 150
    assert wrapped_delta(1000, 0, 1000) == 0
    assert wrapped_delta(5, 7, None) == 2
    with pytest.raises(ValueError, match=r"^counter went backwards \(7 -> 5\) and does not wrap$"):
        wrapped_delta(7, 5, None)
    # a range smaller than the readings would turn a backwards step into a negative delta
    with pytest.raises(ValueError, match=r"^reading 900 is outside the counter's range 0\.\.500$"):
        wrapped_delta(900, 100, 500)
    with pytest.raises(ValueError, match=r"^reading -3 is outside the counter's range 0\.\.$"):
        wrapped_delta(5, -3, None)


def test_rapl_reads_package_zones_only(tmp_path):
    p0 = make_zone(tmp_path, "intel-rapl:0", "package-0", 500)
    make_zone(tmp_path, "intel-rapl:0:0", "core", 100)
    p1 = make_zone(tmp_path, "intel-rapl:1", "package-1", 700, max_range=2_000_000)
    make_zone(tmp_path, "intel-rapl:2", "psys", 9)
    make_zone(tmp_path, "intel-rapl-mmio:0", "package-0", 1)
    counter = RaplCounter(root=str(tmp_path))
    assert counter.channels == ["rapl:package-0", "rapl:package-1"]
    assert counter.ranges == [1_000_000, 2_000_000]
    assert counter.read() == [500, 700]
    dram = RaplCounter(root=str(tmp_path), domains=("package", "core"))
    assert dram.channels == ["rapl:package-0", "rapl:core", "rapl:package-1"]
    del p0, p1


def test_energy_meter_handles_wraparound(tmp_path):
    p0 = make_zone(tmp_path, "intel-rapl:0", "package-0", 900_000)
    p1 = make_zone(tmp_path, "intel-rapl:1", "package-1", 10)
    counter = RaplCounter(root=str(tmp_path))
    clock = Clock()
    meter = EnergyMeter(counter, interval=0, clock=clock).start()
    set_energy(p0, 990_000)
    set_energy(p1, 20)
    clock.now = 1.0
    meter._sample()                       # what the background thread does
    set_energy(p0, 40_000)                # wrapped at 1_000_000: 0.05 J in 1 s
    set_energy(p1, 30)
    clock.now = 2.0
    joules = meter.stop()
    assert joules == pytest.approx([(1_000_000 - 900_000 + 40_000) * 1e-6, 20 * 1e-6])
    assert meter.seconds == 2.0


def test_energy_meter_refuses_impossible_backwards_readings(tmp_path):
    """A counter that steps back a little is not a wrap: the wrap would mean a near-full range
    of energy between two samples. Never a negative energy, never a silent huge one."""
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 500_000, max_range=262_143_328_850)
    counter = RaplCounter(root=str(tmp_path))
    clock = Clock()
    meter = EnergyMeter(counter, interval=0, clock=clock).start()
    set_energy(zone, 499_000)
    clock.now = 5.0
    with pytest.raises(CounterError, match=r"^rapl:package-0: counter went backwards \(500000 -> 499000\); a wrap at "
                                           r"262143328850 would mean 5\.24e\+04 W over 5 s, more than any device "
                                           r"draws: an impossible reading$"):
        meter.stop()
    # the same step over an hour is a possible wrap (73 W) and counts the wrapped energy
    meter = EnergyMeter(counter, interval=0, clock=clock).start()
    set_energy(zone, 498_000)
    clock.now += 3600
    (joules,) = meter.stop()
    assert joules == pytest.approx((262_143_328_850 - 1000) * 1e-6)
    assert joules / 3600 < MAX_PLAUSIBLE_W


@pytest.mark.parametrize("text, message", [
    ("abc", r"energy_uj read 'abc', not a count of microjoules"),
    ("", r"energy_uj read '', not a count of microjoules"),
    ("12\x00", r"energy_uj read '12\\x00', not a count of microjoules"),
    ("\xff\xfe", r"energy_uj read '\ufffd\ufffd', not a count of microjoules"),
    ("-5", r"energy_uj read -5, outside its range 0\.\.1000000 \(max_energy_range_uj\)"),
    ("2000000", r"energy_uj read 2000000, outside its range 0\.\.1000000 \(max_energy_range_uj\)"),
])
def test_garbage_reading_mid_measurement_is_one_line(tmp_path, text, message):
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 10)
    counter = RaplCounter(root=str(tmp_path))
    meter = EnergyMeter(counter, interval=0).start()
    put(zone / "energy_uj", text.encode("latin-1"))
    with pytest.raises(CounterError, match=r"^.*intel-rapl:0/" + message + "$") as info:
        meter.stop()
    assert "\n" not in str(info.value)


def test_garbage_in_the_sampling_thread_reaches_stop(tmp_path):
    """The background thread's failure is raised by stop() in the caller's thread, not printed."""
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 10)
    meter = EnergyMeter(RaplCounter(root=str(tmp_path)), interval=0.001).start()
    put(zone / "energy_uj", b"garbage\n")
    meter._thread.join(timeout=10)        # the thread ends at its first failed sample
    set_energy(zone, 20)                  # a good final reading does not hide the failure
    with pytest.raises(CounterError, match=r"energy_uj read 'garbage', not a count of microjoules$"):
        meter.stop()


def test_rapl_range_checked_when_opened(tmp_path):
    make_zone(tmp_path / "a", "intel-rapl:0", "package-0", 10, max_range=0)
    with pytest.raises(CounterUnavailable, match=r"^.*max_energy_range_uj is 0, not a positive range$"):
        RaplCounter(root=str(tmp_path / "a"))
    make_zone(tmp_path / "b", "intel-rapl:0", "package-0", 10, max_range=5)
    with pytest.raises(CounterUnavailable, match=r"^.*energy_uj is 10, outside its range 0\.\.5 "
                                                 r"\(max_energy_range_uj\)$"):
        RaplCounter(root=str(tmp_path / "b"))


def test_energy_meter_thread_samples(tmp_path):
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    meter = EnergyMeter(RaplCounter(root=str(tmp_path)), interval=0.001).start()
    assert meter.stop() == [0.0]
    assert meter.seconds >= 0


def test_rapl_unavailable(tmp_path):
    with pytest.raises(CounterUnavailable, match=r"^no RAPL zone named package\* under .*$"):
        RaplCounter(root=str(tmp_path))
    assert issubclass(CounterUnavailable, MeasurementError)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_rapl_permission_denied(tmp_path):
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 1)
    os.chmod(zone / "energy_uj", 0)
    with pytest.raises(CounterUnavailable, match=r"^.*energy_uj is not readable \(permission denied; "
                                                 r"RAPL counters need root since Linux 5\.10\)$"):
        RaplCounter(root=str(tmp_path))


class FakeNvml:
    """Stands in for the ctypes library: same function names, ctypes arguments."""

    def __init__(self, energies_mj, fail=None):
        self.energies = energies_mj
        self.fail = fail or {}
        self.calls = []
        self.nvmlErrorString = lambda code: b"Not Supported"

    def nvmlInit_v2(self):
        self.calls.append("init")
        return self.fail.get("init", 0)

    def nvmlDeviceGetHandleByIndex_v2(self, index, handle_ref):
        index = index.value
        if index >= len(self.energies):
            return 2   # NVML_ERROR_INVALID_ARGUMENT
        handle_ref._obj.value = 1000 + index
        return 0

    def nvmlDeviceGetTotalEnergyConsumption(self, handle, value_ref):
        if "energy" in self.fail:
            return self.fail["energy"]
        index = handle.value - 1000
        value_ref._obj.value = self.energies[index].pop(0)
        return 0

    def nvmlShutdown(self):
        self.calls.append("shutdown")
        return 0


def test_nvml_counter_reads_millijoules():
    lib = FakeNvml([[1000, 1000, 6000], [0, 0, 250]])
    counter = NvmlCounter(indices=(0, 1), library=lib)
    assert counter.channels == ["nvml:0", "nvml:1"]
    assert counter.ranges == [None, None]
    meter = EnergyMeter(counter, interval=0).start()
    assert meter.stop() == pytest.approx([5.0, 0.25])
    counter.close()
    assert lib.calls == ["init", "shutdown"]


def test_nvml_counter_going_backwards_is_an_error():
    counter = NvmlCounter(indices=(0,), library=FakeNvml([[1000, 5000, 4000]]))
    meter = EnergyMeter(counter, interval=0).start()
    with pytest.raises(CounterError, match=r"^nvml:0: counter went backwards \(5000 -> 4000\) and does not wrap$"):
        meter.stop()


def test_nvml_errors_are_one_line():
    lib = FakeNvml([[1]], fail={"energy": 3})
    with pytest.raises(CounterUnavailable, match=r"^NVML total energy of device 0 failed: Not Supported$"):
        NvmlCounter(library=lib)
    assert lib.calls == ["init", "shutdown"]
    with pytest.raises(CounterUnavailable, match=r"^NVML device 1 failed: Not Supported$"):
        NvmlCounter(indices=(1,), library=FakeNvml([[1]]))


def test_detect_counter(tmp_path):
    lib = FakeNvml([[5]])
    assert isinstance(detect_counter(root=str(tmp_path), nvml_library=lib), NvmlCounter)
    make_zone(tmp_path, "intel-rapl:0", "package-0", 1)
    assert isinstance(detect_counter("rapl", root=str(tmp_path)), RaplCounter)
    with pytest.raises(CounterUnavailable, match=r"^no energy counter can be read: NVML init failed: Not Supported; "
                                                 r"no RAPL zone named package\* under .*empty$"):
        detect_counter(root=str(tmp_path / "empty"), nvml_library=FakeNvml([[1]], fail={"init": 1}))
    with pytest.raises(MeasurementError, match=r"^counter must be one of auto, rapl, nvml, not 'msr'$"):
        detect_counter("msr")

