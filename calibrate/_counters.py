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
import ctypes
import glob
import os
import re
import threading
import time

from ._measurements import MeasurementError

__all__ = ["CounterUnavailable", "RaplCounter", "NvmlCounter", "EnergyMeter", "detect_counter",
           "COUNTER_KINDS", "wrapped_delta"]

COUNTER_KINDS = ("auto", "rapl", "nvml")
POWERCAP_ROOT = "/sys/class/powercap"
NVML_LIBRARY = "libnvidia-ml.so.1"


class CounterUnavailable(MeasurementError):
    """No energy counter can be read on this machine (one line saying what was tried)."""


def wrapped_delta(start, end, wrap):
    """``end - start`` of a counter that restarts at 0 after ``wrap`` (None: never wraps)."""
    delta = end - start
    if delta < 0:
        if wrap is None:
            raise ValueError(f"counter went backwards ({start} -> {end}) and does not wrap")
        delta += wrap
    return delta


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
                    self.ranges.append(value)

    @property
    def channels(self):
        return [f"rapl:{name}" for _, name in self.zones]

    def read(self):
        out = []
        for path, _ in self.zones:
            with open(os.path.join(path, "energy_uj")) as fh:
                out.append(int(fh.read().strip()))
        return out

    def close(self):
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
    def channels(self):
        return [f"nvml:{i}" for i in self.indices]

    def read(self):
        out = []
        for index, handle in zip(self.indices, self.handles):
            value = ctypes.c_ulonglong()
            self._nvml.check(self._lib.nvmlDeviceGetTotalEnergyConsumption(handle, ctypes.byref(value)),
                             f"total energy of device {index}")
            out.append(int(value.value))
        return out

    def close(self):
        if self._lib is not None:
            self._lib.nvmlShutdown()
            self._lib = None


def detect_counter(kind="auto", *, root=POWERCAP_ROOT, gpu_indices=(0,), nvml_library=None):
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

    def __init__(self, counter, *, interval=5.0):
        self.counter = counter
        self.interval = interval
        self._lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()
        self._last = None
        self._total = None
        self.seconds = 0.0

    def _sample(self):
        now = self.counter.read()
        with self._lock:
            for i, (a, b, wrap) in enumerate(zip(self._last, now, self.counter.ranges)):
                self._total[i] += wrapped_delta(a, b, wrap)
            self._last = now

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self):
        self._last = self.counter.read()
        self._total = [0] * len(self._last)
        self._t0 = time.perf_counter()
        self._stop.clear()
        if self.interval:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def stop(self):
        """Joules per channel since :meth:`start`, as a list of floats."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._sample()
        self.seconds = time.perf_counter() - self._t0
        return [t * self.counter.unit_j for t in self._total]
