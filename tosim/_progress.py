"""A one-line progress bar on stderr for batch commands (``tosim score``)."""
import sys
import time

__all__ = ["ProgressBar"]


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
            eta = f" ~{left:.0f} s left" if left < 120 else f" ~{left / 60:.0f} min left"
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
