"""A disk cache of counted zoo models: the counting fields of a :func:`tosim._pipeline.count_source`
row, so that scoring a zoo model a second time reads its counts instead of building and counting
it again (``tosim score zoo:all`` spends most of its time there).

Only the bundled zoo models are cached (``zoo:NAME``: their layers are written in opcount's own
source), and only the plain row: no per-layer detail, no kept :class:`opcount.CountResult`, no
device-model features, no profile with a ``memory:`` section or a MAC unit (those rows need the
count itself). Everything else is counted as before.

An entry is found by a SHA-256 key over everything the row depends on:

- the sources that build and count the model and lay out the row: every ``.py`` file of
  ``opcount/`` and ``hardware_profiles/``, ``tosim/_pipeline.py`` and this module (names and
  contents; an edit to any of them leaves every old entry unused);
- the zoo name, the phase, the batch and the reading options (``seq``, ``format``, ``loss``, ...);
- the whole resolved profile (``Profile.data``, canonical JSON): its recipes and formats are what
  counting reads, and keying on all of it cannot miss a field counting may read later;
- the Python version (entries are :mod:`marshal` data) and :data:`FORMAT_VERSION`.

Entries live in ``$TOSIM_CACHE_DIR/counts`` (default ``~/.cache/tosim/counts``), one file per
model and key (about 2 KB per 10 layers), named by the sources' digest and the key's hash: a
magic line, the SHA-256 of the rest, then the key text and the row. Entries of other sources
(an older version) are removed a week after they were written. A file that
is unreadable, fails its checksum, holds another key or a malformed row is ignored and the model
is counted afresh (and the entry rewritten); a cache that cannot be written is skipped silently
(nothing is lost: the counts were just computed). ``TOSIM_COUNT_CACHE=off`` turns the cache off.
"""
import hashlib
import json
import marshal
import os
import sys

__all__ = ["FORMAT_VERSION", "enabled", "entry_key", "read", "write", "cache_folder"]

#: Layout of an entry; entries of another version are never read.
FORMAT_VERSION = 1

_MAGIC = b"tosim-counts\n"
#: Fields of a row an entry must hold (it holds every field of the row, in order, but ``source``,
#: the caller's, and ``counts``, set by pricing: both are stored as ``None``).
_FIELDS = ("name", "params", "macs", "flops", "counts_all", "formats", "layer_types", "incomplete",
           "incomplete_items", "assumptions", "rows", "error")
#: Fields of a row that are not the row's own counting result.
_NOT_STORED = ("source", "counts")
_SCALARS = (str, int, bool, float, type(None))
_DIGEST: list = []


def enabled():
    """False when ``TOSIM_COUNT_CACHE`` is ``off`` (or ``0``, ``no``, ``false``)."""
    return os.environ.get("TOSIM_COUNT_CACHE", "").strip().lower() not in ("off", "0", "no", "false")


def cache_folder():
    """``$TOSIM_CACHE_DIR/counts`` (default ``~/.cache/tosim/counts``)."""
    from hwlib.cost import default_cache_dir
    return os.path.join(default_cache_dir(), "counts")


def sources_digest(root=None):
    """SHA-256 over the sources that decide a counted row (see the module docstring), in the
    tree at ``root`` (default: this installation's, computed once per process)."""
    if root is None and _DIGEST:
        return _DIGEST[0]
    from hardware_profiles.files import sources_digest as folder_digest
    top = root if root is not None else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = hashlib.sha256()
    for folder in ("opcount", "hardware_profiles"):
        digest.update(folder.encode() + b"\0" + folder_digest(os.path.join(top, folder)).encode() + b"\0")
    for name in ("_pipeline.py", "_count_cache.py"):
        with open(os.path.join(top, "tosim", name), "rb") as f:
            digest.update(name.encode() + b"\0" + f.read() + b"\0")
    if root is None:
        _DIGEST.append(digest.hexdigest())
    return digest.hexdigest()


def entry_key(source, profile, phase, batch, load):
    """The key text of the cached row of ``source`` counted under these settings, or ``None``
    when the row is not cached (not a zoo model, a profile with memory or a MAC unit, a reading
    option that is not a plain value, the cache turned off)."""
    if not (isinstance(source, str) and source.startswith("zoo:")) or not enabled():
        return None
    data = getattr(profile, "data", None)
    if not isinstance(data, dict) or data.get("memory") is not None or "mac" in data.get("units", {}):
        return None
    if type(phase) is not str or type(batch) is not int:
        return None
    options = sorted((str(k), v) for k, v in (load or {}).items() if v is not None)
    if not all(isinstance(v, _SCALARS) for _, v in options):
        return None
    try:
        profile_text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    except (TypeError, ValueError):
        return None
    # repr keeps 1, True and 1.0 apart
    return "\n".join([f"format {FORMAT_VERSION}", f"python {sys.version_info[0]}.{sys.version_info[1]} "
                      f"marshal {marshal.version}", f"sources {sources_digest()}", f"source {source!r}",
                      f"phase {phase!r}", f"batch {batch!r}", f"load {options!r}", f"profile {profile_text}"])


def _path(key):
    # the sources' digest leads the name, so entries no installation of these sources can read
    # are recognized (see _prune)
    return os.path.join(cache_folder(), f"{sources_digest()[:16]}-{hashlib.sha256(key.encode()).hexdigest()[:40]}.bin")


#: Entries of other sources are removed once they are this old (seconds): another installation
#: sharing the folder may still read recent ones.
STALE_AFTER = 7 * 24 * 3600
_PRUNED: list = []


def _prune(folder):
    """Remove, once per process, the entries written by other sources (another digest in the
    name) that are older than :data:`STALE_AFTER`: after an upgrade nothing reads them again."""
    if _PRUNED:
        return
    _PRUNED.append(True)
    import time
    mine = sources_digest()[:16] + "-"
    cutoff = time.time() - STALE_AFTER
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.endswith(".bin") and not name.startswith(mine):
            path = os.path.join(folder, name)
            try:
                if os.stat(path).st_mtime < cutoff:
                    os.unlink(path)
            except OSError:
                pass


def read(key):
    """The cached row (a new dict, ``source`` ``None``) for ``key``, or ``None`` when there is
    no valid entry."""
    try:
        with open(_path(key), "rb") as f:
            blob = f.read()
    except OSError:
        return None
    head = len(_MAGIC) + 32
    if not blob.startswith(_MAGIC) or hashlib.sha256(blob[head:]).digest() != blob[len(_MAGIC):head]:
        return None
    try:
        stored_key, row = marshal.loads(blob[head:])
    except (ValueError, EOFError, TypeError):
        return None
    if stored_key != key or not _well_formed(row):
        return None
    return row          # the fields in count_source's order


def _well_formed(row):
    if not isinstance(row, dict) or not set(_FIELDS + _NOT_STORED) <= set(row) or row["error"] is not None \
            or any(row[field] is not None for field in _NOT_STORED):
        return False
    rows, formats, types = row["rows"], row["formats"], row["layer_types"]
    return (isinstance(rows, list) and isinstance(formats, list) and isinstance(types, list)
            and len(rows) == len(formats) == len(types) and all(type(r) is tuple for r in rows)
            and isinstance(row["counts_all"], list))


def write(key, out):
    """Store the counting fields of the row ``out`` under ``key``; silently nothing when the
    folder cannot be written or the row holds a value marshal does not keep. A row with
    something left out (``incomplete_items``) is not stored: its model is counted again, and
    says so again, every time."""
    from hardware_profiles import files
    if out.get("incomplete_items") or out.get("incomplete"):
        return
    try:
        row = {field: None if field in _NOT_STORED else value for field, value in out.items()}
        payload = marshal.dumps((key, row))
    except ValueError:          # a value marshal does not keep
        return
    path = _path(key)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        files.replace_file(path, _MAGIC + hashlib.sha256(payload).digest() + payload)
    except OSError:
        return
    _prune(os.path.dirname(path))
