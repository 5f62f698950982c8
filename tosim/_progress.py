"""Progress on stderr: a one-line bar for batch commands (``tosim score``), and the counting
and time-left estimate of the synthesis progress lines (:class:`WorkCounter`)."""
import sys
import time

__all__ = ["ProgressBar", "WorkCounter", "time_left"]


def time_left(seconds):
    """``~45 s left``, ``~12 min left``."""
    return f"~{seconds:.0f} s left" if seconds < 120 else f"~{seconds / 60:.0f} min left"


class ProgressBar:
    """A one-line progress bar on stderr, drawn only when enabled and the batch has run for a
    moment (short batches stay silent), redrawn at most ten times a second; it counts up and,
    once something is done, estimates the time left from the pace so far."""

    def __init__(self, total, label, enabled, stream=None, delay=0.3):
        self.total, self.label, self.enabled = total, label, enabled and total > 1
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self.delay = delay
        self.last = 0.0
        self.drawn = False

    def update(self, done, note=""):
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.start < self.delay or (now - self.last < 0.1 and done < self.total):
            return
        self.last = now
        width = 30
        filled = int(width * done / self.total)
        note = note if len(note) <= 30 else note[:27] + "..."
        eta = ""
        if 0 < done < self.total:
            left = (now - self.start) / done * (self.total - done)
            eta = " " + time_left(left)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} "
                          f"{note:<30}{eta:<16}")
        self.stream.flush()
        self.drawn = True

    def __call__(self, done, total, source):
        """The progress callback of :func:`tosim.score_many`."""
        self.update(done, source if isinstance(source, str) else getattr(source, "name", ""))

    def close(self):
        if self.drawn:
            self.stream.write("\r" + " " * 106 + "\r")
            self.stream.flush()


class WorkCounter:
    """Counts the circuits hwlib announces through a progress object's ``planned(work)`` hook
    (``(index, relative work)`` pairs in start order) up as they start, and estimates the time
    left from the time taken so far and the relative work still to come (hwlib's estimates are
    rough, hence "~"). Circuits it was not told about are left to the caller's numbering."""

    def __init__(self, clock=time.perf_counter):
        self._clock = clock
        self._work = {}          # index -> relative work, of the planned circuits not yet done
        self._count = self._begun = 0
        self._work_done = 0.0
        self._since = None

    def plan(self, work):
        self._work = dict(work)
        self._count, self._begun, self._work_done = len(self._work), 0, 0.0
        self._since = self._clock()

    def begin(self, index):
        """``(3, 18)`` for the third of 18 planned circuits, ``None`` for one not planned."""
        if index not in self._work:
            return None
        self._begun += 1
        return self._begun, self._count

    def finish(self, index):
        """:func:`time_left` after a planned circuit is done while others remain, else ``""``."""
        if index not in self._work:
            return ""
        self._work_done += self._work.pop(index)
        left = sum(self._work.values())
        if not left or self._work_done <= 0:
            return ""
        return time_left((self._clock() - self._since) * left / self._work_done)
