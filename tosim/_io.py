"""Output and argument helpers shared by the command modules: atomic writes, PNG figures,
argparse value types."""
import argparse
import contextlib
import fcntl
import io
import json
import os

__all__ = ["write_atomic", "locked", "save_figure", "positive_int", "non_negative_int", "check_output",
           "json_text"]


def check_output(path, option, extensions, inputs=()):
    """Check an output path before any work starts, so a run never ends with some outputs
    written and an error on the next: the extension is one of ``extensions`` (``(".png",)``),
    the folder exists and is a folder, the path is not a folder, and it is none of ``inputs``
    (files the command reads). Raises :class:`tosim.cli.CommandError` (one line, exit 2) naming
    ``option`` (``--plot``)."""
    from .cli import CommandError
    if not path:
        raise CommandError(f"{option}: an empty path")
    extension = os.path.splitext(path)[1].lower()
    if extension not in extensions:
        raise CommandError(f"{option} {path}: the extension must be {' or '.join(extensions)}, "
                           f"not {extension or '(none)'!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CommandError(f"{option} {path}: no folder {folder}")
    if os.path.isdir(path):
        raise CommandError(f"{option} {path}: is a folder")
    real = os.path.realpath(path)
    for item in inputs:
        if item and os.path.exists(item) and os.path.realpath(item) == real:
            raise CommandError(f"{option} {path}: is also an input of this command; it would be overwritten")
    if extension == ".png":
        import importlib.util
        if importlib.util.find_spec("matplotlib") is None:
            raise CommandError(f"{option} {path}: drawing a plot needs matplotlib, which is not installed "
                               "(pip install 'tosim[plot]')")


def write_atomic(path, data):
    """Write ``data`` (text or bytes, or an iterable of text chunks, written as they come so that
    a large file is never held in memory) to ``path`` through a temporary file in the same folder
    and ``os.replace``, so a reader sees the old file or the new one, never a partial one.
    A symbolic link is followed: its target gets the data and the link stays a link (a dangling
    link creates its target). An unwritable path, or a file the running command read
    (:mod:`hardware_profiles.files` records them), is a user error: one line, exit status 2."""
    from hardware_profiles import files

    from .cli import CommandError
    given, path = path, os.path.realpath(path)
    if path in files.files_read():
        # the last guard: a file reached only while the command ran (a profile's extends: chain,
        # an ONNX model's external data) is never replaced by an output
        raise CommandError(f"cannot write {given}: the command read it as an input; it would be overwritten")
    try:
        files.replace_file(path, data)
    except OSError as exc:
        raise CommandError(f"cannot write {given}: {exc.strerror or exc}") from None


def json_text(value, indent=2):
    """``value`` as JSON text. Never ``NaN`` or ``Infinity`` (not JSON; most readers refuse
    them): results are checked for finiteness where they are computed, and a value that still
    is not finite ends the command with one line instead of writing invalid JSON."""
    from .cli import CommandError
    try:
        return json.dumps(value, indent=indent, allow_nan=False)
    except ValueError as exc:
        raise CommandError(f"a result is not a finite number ({exc}); nothing was written") from None


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive lock for a read-modify-write of ``path`` (an append that rewrites the
    file atomically): ``fcntl.flock`` on ``.NAME.lock`` beside the file that ``path`` resolves
    to, so writers through different links to one file share the lock. The lock file stays (removing it
    would race with a writer about to lock it). Blocks until the lock is free; an unwritable
    folder is a user error (one line, exit status 2)."""
    from .cli import CommandError
    real = os.path.realpath(path)
    lock_path = os.path.join(os.path.dirname(real), f".{os.path.basename(real)}.lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise CommandError(f"cannot lock {path} (lock file {lock_path}): {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield real
    finally:
        os.close(fd)           # closing the descriptor releases the lock


def save_figure(fig, path, dpi=110):
    """Render a matplotlib figure to PNG and write it atomically; the figure is closed."""
    import matplotlib.pyplot as plt
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    write_atomic(path, buffer.getvalue())


def _int_at_least(text, minimum, what):
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be a {what} integer, not {text!r}")
    return value


def positive_int(text):
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1, "positive")


def non_negative_int(text):
    """argparse type: an integer >= 0 (seeds)."""
    return _int_at_least(text, 0, "non-negative")
