"""Output and argument helpers shared by the command modules: atomic writes, PNG figures,
argparse value types."""
import argparse
import io
import os
import tempfile

__all__ = ["write_atomic", "save_figure", "positive_int"]


def write_atomic(path, data):
    """Write ``data`` (text or bytes) to ``path`` through a temporary file in the same folder
    and ``os.replace``, so a reader sees the old file or the new one, never a partial one.
    An unwritable path is a user error: one line, exit status 2."""
    from .cli import CommandError
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
        binary = isinstance(data, bytes)
        with os.fdopen(fd, "wb" if binary else "w",
                       **({} if binary else {"encoding": "utf-8", "newline": ""})) as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def save_figure(fig, path, dpi=110):
    """Render a matplotlib figure to PNG and write it atomically; the figure is closed."""
    import matplotlib.pyplot as plt
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    write_atomic(path, buffer.getvalue())


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value
