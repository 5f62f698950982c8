"""Hardware energy counters: Linux powercap (Intel/AMD RAPL) and NVIDIA NVML.

A counter reports cumulative raw readings per channel (one channel per RAPL zone or per GPU) and
the range at which each reading wraps back to 0. :class:`EnergyMeter` turns readings into joules
over an interval, sampling in a background thread often enough that no channel can wrap twice
between two samples.

RAPL (``/sys/class/powercap/intel-rapl:N[:M]``): each zone has ``name`` (``package-0``,
``dram``, ``core``, ``psys``), ``energy_uj`` (microjoules, wraps at ``max_energy_range_uj``). The
default reads the ``package-*`` zones: ``psys`` (whole platform) would double-count them, and
``core``/``uncore`` are inside the package. Since Linux 5.10 ``energy_uj`` is readable by root
only (CVE-2020-8694); an unreadable counter is reported as such.

NVML: ``nvmlDeviceGetTotalEnergyConsumption`` (Volta and newer) gives millijoules since the
driver loaded, as an unsigned 64-bit count; it is read through ``ctypes`` from
``libnvidia-ml.so.1``, so no Python package is needed.
"""
from __future__ import annotations

import ctypes
import glob
import statistics
import os
import re
import threading
import time

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from ._measurements import MeasurementError

__all__ = ["CounterUnavailable", "CounterError", "EnergyCounter", "RaplCounter", "NvmlCounter", "EnergyMeter",
           "detect_counter",
           "COUNTER_KINDS", "wrapped_delta", "MAX_PLAUSIBLE_W", "CounterProbe", "probe_counter"]

COUNTER_KINDS = ("auto", "rapl", "nvml")
POWERCAP_ROOT = "/sys/class/powercap"
NVML_LIBRARY = "libnvidia-ml.so.1"
#: No CPU package or GPU draws this much: a wrap-around that would mean more power than this
#: between two samples is a bad reading (a counter that went backwards), not a wrap.
MAX_PLAUSIBLE_W = 5000.0


class CounterUnavailable(MeasurementError):
    """No energy counter can be read on this machine (one line saying what was tried)."""


class CounterError(MeasurementError):
    """A counter gave a reading that cannot be used during a measurement (not a number, out of
    its range, backwards without a plausible wrap); one line naming the channel."""


def wrapped_delta(start: int, end: int, wrap: int | None) -> int:
    """``end - start`` of a counter whose readings lie in ``0..wrap`` and restart at 0 after
    ``wrap`` (None: never wraps). A reading outside that range, or a counter that goes
    backwards and does not wrap, raises ValueError: the result is never negative.

    RAPL's ``max_energy_range_uj`` is taken as the modulus; the hardware's is one energy unit
    (15-61 uJ) more, an error of at most that much per wrap (one wrap per tens of minutes)."""
    for value in (start, end):
        if value < 0 or (wrap is not None and value > wrap):
            raise ValueError(f"reading {value} is outside the counter's range 0..{'' if wrap is None else wrap}")
    delta = end - start
    if delta < 0:
        if wrap is None:
            raise ValueError(f"counter went backwards ({start} -> {end}) and does not wrap")
        delta += wrap
    return delta


class EnergyCounter(Protocol):
    """What a measurement needs of an energy counter (:class:`RaplCounter`, :class:`NvmlCounter`
    or a stand-in in tests): one raw reading per channel, the joules of one unit, and per channel
    the largest reading before the counter wraps to 0 (``None``: it never wraps)."""

    unit_j: float
    kind: str
    ranges: list

    @property
    def channels(self) -> list[str]: ...

    def read(self) -> list[int]: ...

    def close(self) -> None: ...


class RaplCounter:
    """Powercap RAPL zones whose ``name`` starts with one of ``domains``; readings in microjoules."""

    unit_j = 1e-6
    kind = "rapl"

    def __init__(self, *, root=POWERCAP_ROOT, domains=("package",)):
        self.root = root
        zones = []
        for path in sorted(glob.glob(os.path.join(root, "intel-rapl:*"))):
            if not re.fullmatch(r"intel-rapl(:\d+)+", os.path.basename(path)):
                continue
            try:
                with open(os.path.join(path, "name")) as fh:
                    name = fh.read().strip()
            except OSError:
                continue
            if name.startswith(tuple(domains)):
                zones.append((path, name))
        if not zones:
            raise CounterUnavailable(f"no RAPL zone named {'/'.join(d + '*' for d in domains)} under {root}")
        self.zones = zones
        self.ranges = []
        for path, _ in zones:
            for leaf in ("max_energy_range_uj", "energy_uj"):
                try:
                    with open(os.path.join(path, leaf)) as fh:
                        value = int(fh.read().strip())
                except PermissionError:
                    raise CounterUnavailable(f"{os.path.join(path, leaf)} is not readable (permission "
                                             f"denied; RAPL counters need root since Linux 5.10)") from None
                except (OSError, ValueError) as exc:
                    raise CounterUnavailable(f"cannot read {os.path.join(path, leaf)}: {exc}") from None
                if leaf == "max_energy_range_uj":
                    if value <= 0:
                        raise CounterUnavailable(f"{os.path.join(path, leaf)} is {value}, not a positive range")
                    self.ranges.append(value)
                elif not 0 <= value <= self.ranges[-1]:
                    raise CounterUnavailable(f"{os.path.join(path, leaf)} is {value}, outside its range "
                                             f"0..{self.ranges[-1]} (max_energy_range_uj)")

    @property
    def channels(self) -> list[str]:
        return [f"rapl:{name}" for _, name in self.zones]

    def read(self) -> list[int]:
        """Raw readings in microjoules; :class:`CounterError` (one line) for a file that cannot be
        read or does not hold a count within the zone's range."""
        out = []
        for (path, _), wrap in zip(self.zones, self.ranges):
            leaf = os.path.join(path, "energy_uj")
            text = ""
            try:
                with open(leaf, "rb") as fh:
                    text = fh.read(64).decode("ascii", "replace").strip()
                value = int(text)
            except OSError as exc:
                raise CounterError(f"cannot read {leaf}: {exc.strerror or exc}") from None
            except ValueError:
                raise CounterError(f"{leaf} read {text[:40]!r}, not a count of microjoules") from None
            if not 0 <= value <= wrap:
                raise CounterError(f"{leaf} read {value}, outside its range 0..{wrap} (max_energy_range_uj)")
            out.append(value)
        return out

    def close(self) -> None:
        pass


class _NvmlLibrary:
    """Thin ctypes binding of the four NVML calls used here."""

    def __init__(self, lib):
        self.lib = lib

    def check(self, code, what):
        if code != 0:
            message = f"error {code}"
            try:
                self.lib.nvmlErrorString.restype = ctypes.c_char_p
                text = self.lib.nvmlErrorString(code)
                if text:
                    message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
            except AttributeError:
                pass
            raise CounterUnavailable(f"NVML {what} failed: {message}")


def _load_nvml():
    try:
        return ctypes.CDLL(NVML_LIBRARY)
    except OSError as exc:
        raise CounterUnavailable(f"NVML library {NVML_LIBRARY} cannot be loaded ({exc})") from None


class NvmlCounter:
    """NVIDIA GPUs' total-energy counters (millijoules), one channel per GPU index."""

    unit_j = 1e-3
    kind = "nvml"

    def __init__(self, *, indices=(0,), library=None):
        lib = library if library is not None else _load_nvml()
        self._nvml = _NvmlLibrary(lib)
        self._lib = lib
        self._nvml.check(lib.nvmlInit_v2(), "init")
        self.indices = tuple(indices)
        self.handles = []
        try:
            for index in self.indices:
                handle = ctypes.c_void_p()
                self._nvml.check(lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(handle)),
                                 f"device {index}")
                self.handles.append(handle)
            self.read()
        except CounterUnavailable:
            self.close()
            raise
        self.ranges = [None] * len(self.handles)

    @property
    def channels(self) -> list[str]:
        return [f"nvml:{i}" for i in self.indices]

    def read(self) -> list[int]:
        out = []
        for index, handle in zip(self.indices, self.handles):
            value = ctypes.c_ulonglong()
            self._nvml.check(self._lib.nvmlDeviceGetTotalEnergyConsumption(handle, ctypes.byref(value)),
                             f"total energy of device {index}")
            out.append(int(value.value))
        return out

    def close(self) -> None:
        if self._lib is not None:
            self._lib.nvmlShutdown()
            self._lib = None


def detect_counter(kind: str = "auto", *, root: str = POWERCAP_ROOT, gpu_indices: Sequence[int] = (0,),
                   nvml_library: str | None = None) -> RaplCounter | NvmlCounter:
    """The first counter that can be read: NVML (when a GPU answers) then RAPL for ``auto``.

    Raises :class:`CounterUnavailable` with one line naming what was tried.
    """
    if kind not in COUNTER_KINDS:
        raise MeasurementError(f"counter must be one of {', '.join(COUNTER_KINDS)}, not {kind!r}")
    tried = []
    order = ("nvml", "rapl") if kind == "auto" else (kind,)
    for k in order:
        try:
            if k == "nvml":
                return NvmlCounter(indices=gpu_indices, library=nvml_library)
            return RaplCounter(root=root)
        except CounterUnavailable as exc:
            tried.append(str(exc))
    raise CounterUnavailable("no energy counter can be read: " + "; ".join(tried))


class EnergyMeter:
    """Joules a counter reports between :meth:`start` and :meth:`stop`.

    A background thread samples every ``interval`` seconds and adds wrap-corrected deltas, so a
    RAPL zone that wraps (every few tens of minutes at package power) is still counted right as
    long as it cannot wrap twice within ``interval``.
    """

    def __init__(self, counter: EnergyCounter, *, interval: float = 5.0,
                 clock: Callable[[], float] = time.perf_counter):
        self.counter = counter
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last: list[int] | None = None
        self._last_t: float | None = None
        self._total: list[int] | None = None
        self._error: Exception | None = None
        self.seconds = 0.0

    def _read(self):
        values = self.counter.read()
        if len(values) != len(self.counter.channels):
            raise CounterError(f"counter {'+'.join(self.counter.channels)} gave {len(values)} readings for "
                               f"{len(self.counter.channels)} channels")
        return values

    def _sample(self):
        now = self._read()
        t = self.clock()
        with self._lock:
            for i, (a, b, wrap) in enumerate(zip(self._last, now, self.counter.ranges)):
                channel = self.counter.channels[i]
                try:
                    delta = wrapped_delta(a, b, wrap)
                except ValueError as exc:
                    raise CounterError(f"{channel}: {exc}") from None
                if b < a:        # a wrap: it must be physically possible in the time since the last sample
                    watts = delta * self.counter.unit_j / max(t - self._last_t, 1e-9)
                    if watts > MAX_PLAUSIBLE_W:
                        raise CounterError(
                            f"{channel}: counter went backwards ({a} -> {b}); a wrap at {wrap} would mean "
                            f"{watts:.3g} W over {t - self._last_t:.3g} s, more than any device draws: "
                            f"an impossible reading")
                self._total[i] += delta
            self._last, self._last_t = now, t

    def _loop(self):
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except Exception as exc:         # kept for stop() to raise in the caller's thread
                self._error = exc
                return

    def start(self) -> EnergyMeter:
        """Take the first reading and start sampling; returns the meter."""
        self._last = self._read()
        self._total = [0] * len(self._last)
        self._t0 = self._last_t = self.clock()
        self._error = None
        self._stop.clear()
        if self.interval:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> list[float]:
        """Joules per channel since :meth:`start`, as a list of non-negative floats.
        :class:`CounterError` if a reading during the run could not be used."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
        assert self._total is not None, "stop() before start()"
        self._sample()
        self.seconds = self.clock() - self._t0
        return [t * self.counter.unit_j for t in self._total]


@dataclass(frozen=True)
class CounterProbe:
    """What polling a counter showed: ``update_s`` the median seconds between changes of its
    reading, ``quantum_j`` the smallest step seen (joules), ``power_w`` the power over the
    polling (the machine's idle power when nothing else runs), ``changes`` how many changes."""
    update_s: float
    quantum_j: float
    power_w: float
    changes: int

    def run_seconds(self, accuracy: float = 0.02, floor: float = 1.0) -> float:
        """The shortest measured run whose energy the counter resolves to ``accuracy``: each end of
        a run is off by at most one update (``update_s`` at the run's power) and one step, so
        the run lasts ``2 * update_s / accuracy`` and at least ``2 * quantum_j / (accuracy *
        power_w)`` seconds, and never less than ``floor``."""
        by_step = 2 * self.quantum_j / (accuracy * self.power_w) if self.power_w > 0 else 0.0
        return max(floor, 2 * self.update_s / accuracy, by_step)


def probe_counter(counter: EnergyCounter, *, changes: int = 8, max_seconds: float = 3.0, poll_s: float = 0.0002,
                  clock: Callable[[], float] = time.perf_counter,
                  sleep: Callable[[float], object] = time.sleep) -> CounterProbe:
    """Poll ``counter`` until its reading has changed ``changes`` times (or ``max_seconds``
    passed) and report its update interval, step and the power meanwhile (:class:`CounterProbe`).
    A counter that changes fewer than 3 times cannot time a measurement: :class:`CounterError`."""
    names = "+".join(counter.channels)
    last = counter.read()
    t_start = clock()
    times: list[float] = []
    steps: list[int] = []
    total = 0
    while len(times) < changes and clock() - t_start < max_seconds:
        sleep(poll_s)
        now = counter.read()
        if now != last:
            t = clock()
            for i, (a, b, wrap) in enumerate(zip(last, now, counter.ranges)):
                try:
                    delta = wrapped_delta(a, b, wrap)
                except ValueError as exc:
                    raise CounterError(f"{counter.channels[i]}: {exc}") from None
                if delta:
                    steps.append(delta)
                    if times:              # energy between the first and the last change
                        total += delta
            times.append(t)
            last = now
    if len(times) < 3:
        raise CounterError(f"counter {names} changed {len(times)} time{'s' if len(times) != 1 else ''} in "
                           f"{max_seconds:g} s of polling; it cannot time a measurement")
    span = times[-1] - times[0]
    return CounterProbe(update_s=statistics.median(b - a for a, b in zip(times, times[1:])),
                        quantum_j=min(steps) * counter.unit_j, power_w=total * counter.unit_j / span,
                        changes=len(times))
