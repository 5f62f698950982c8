"""Reading and writing the files every package exchanges with users: the public name of the
bounded reader (:mod:`hardware_profiles._read`: regular files only, size, depth, alias and digit
limits, NaN refused, every file read recorded so that no output overwrites it) and of the one
atomic write (:mod:`hardware_profiles._write`). opcount, calibrate, hwlib and tosim import these
from here; :mod:`hardware_profiles` is the package they may all import.
"""
from ._read import (MAX_BYTES, MAX_DEPTH, MAX_DIGITS, MAX_NODES, InputFileError, check_regular, files_read,
                    load_json, load_yaml, node_lines, note_read, read_text, track_reads)
from ._write import replace_file

__all__ = ["InputFileError", "MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "MAX_DIGITS", "read_text",
           "check_regular", "load_yaml", "node_lines", "load_json", "track_reads", "note_read",
           "files_read", "replace_file"]
