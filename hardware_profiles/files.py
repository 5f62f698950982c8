"""Reading and writing the files every package exchanges with users: the public name of the
bounded reader (:mod:`hardware_profiles._read`: regular files only, size, depth, alias and digit
limits, NaN refused, every file read recorded so that no output overwrites it) and of the one
atomic write (:mod:`hardware_profiles._write`), and the fingerprint of a folder's sources that
cache keys carry (:func:`sources_digest`). opcount, calibrate, hwlib and tosim import these
from here; :mod:`hardware_profiles` is the package they may all import.
"""
from __future__ import annotations

import hashlib
import os
from typing import AbstractSet

from ._read import (MAX_BYTES, MAX_DEPTH, MAX_DIGITS, MAX_NODES, InputFileError, check_regular, files_read,
                    load_json, load_yaml, node_lines, note_read, read_text, track_reads)
from ._write import replace_file

__all__ = ["InputFileError", "MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "MAX_DIGITS", "read_text",
           "check_regular", "load_yaml", "node_lines", "load_json", "track_reads", "note_read",
           "files_read", "replace_file", "sources_digest"]


def sources_digest(folder: str, skip: AbstractSet[str] = frozenset()) -> str:
    """SHA-256 over the ``.py`` files of ``folder`` (names and contents, in name order), less
    those named in ``skip``: the fingerprint of the sources a cache entry was computed by."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py") and name not in skip:
            with open(os.path.join(folder, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()
