"""One atomic file write for every package: the data goes to a temporary file in the target's
folder, which then replaces the target (``os.replace``), so a reader sees the old file or the new
one, never a partial one. Used by ``tosim``'s outputs (:func:`tosim._io.write_atomic`, which adds
the command's checks and messages), hwlib's cost cache and its bundled tables. It lives here
because every package may import :mod:`hardware_profiles`, as with the bounded reader
(:mod:`hardware_profiles._read`).
"""
from __future__ import annotations

import os
import tempfile
from typing import IO, Any, Iterable

__all__ = ["replace_file"]


def replace_file(path: str, data: str | bytes | Iterable[str], *, mode: int = 0o644) -> None:
    """Write ``data`` (text, bytes, or text chunks written as they come, so a large file is never
    held whole) to ``path`` atomically, with permission bits ``mode`` (a temporary file is 0600).
    Text is UTF-8, written as given (no newline translation). Raises ``OSError``; the temporary
    file is removed whatever fails."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        f: IO[Any] = (os.fdopen(fd, "wb") if isinstance(data, bytes)
                      else os.fdopen(fd, "w", encoding="utf-8", newline=""))
        with f:
            if isinstance(data, (str, bytes)):
                f.write(data)
            else:
                for chunk in data:
                    f.write(chunk)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
