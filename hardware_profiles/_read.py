"""Bounded reading of tosim's input files: the one reader that every YAML, JSON and CSV loader
(profiles, model specs, Hugging Face configs, measurement files, cache entries) goes through.

A hostile or mistaken input must end in one line naming the file, never in a hang, a memory
blow-up or a traceback, so reading is bounded in every dimension a small file can inflate:

* only regular files are read (a FIFO would block, ``/dev/zero`` would never end; a symlink is
  followed and its target checked the same way), at most :data:`MAX_BYTES` bytes of UTF-8
  text without NUL bytes;
* YAML is composed once into nodes and checked before anything is built from it: at most
  :data:`MAX_DEPTH` levels of nesting and :data:`MAX_NODES` values once aliases are expanded
  (a 300-byte "billion laughs" file of nested aliases expands to billions; it is measured
  without expanding it) and no recursive alias; integers of at most :data:`MAX_DIGITS` digits;
* JSON the same: depth, digits, and no ``NaN``/``Infinity`` (they are not JSON).

Every problem raises :class:`InputFileError` whose message is one line starting with the file
name (and the line where one is known); each package re-raises it as its own error class.

While a command runs inside :func:`track_reads`, every file read here is recorded, so that an
output can be refused when it would overwrite any file the command read, also one reached only
through ``extends:`` or an ONNX model's external data (:func:`note_read`, :func:`files_read`).
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
from typing import Any, Callable, Iterator

import yaml

__all__ = ["InputFileError", "MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "MAX_DIGITS", "read_text",
           "check_regular", "load_yaml", "node_lines", "load_json", "track_reads", "note_read",
           "files_read"]

#: Largest text input read (bytes). Profiles and specs are kilobytes; this leaves room for
#: generated specs of very large models while keeping a mistaken input from filling memory.
MAX_BYTES = 64 * 2 ** 20
#: Deepest nesting of mappings and lists (a profile needs 6 levels, a spec 4).
MAX_DEPTH = 64
#: Most values (scalars, mappings, lists) in one document, aliases counted at every use.
MAX_NODES = 2_000_000
#: Most digits of one integer literal (int64 needs 19; Python refuses more than 4300).
MAX_DIGITS = 40


class InputFileError(ValueError):
    """An input file that cannot be read safely; the message is one line naming the file."""


# --- which files a command read ---------------------------------------------------------------

_TRACKED: set[str] | None = None


@contextlib.contextmanager
def track_reads() -> Iterator[set[str]]:
    """Record the real paths of the files read while the block runs (see :func:`files_read`)."""
    global _TRACKED
    previous, _TRACKED = _TRACKED, set()
    try:
        yield _TRACKED
    finally:
        _TRACKED = previous


def note_read(path: str | os.PathLike[str] | None) -> None:
    """Record ``path`` as read by the running command (no-op outside :func:`track_reads`)."""
    if _TRACKED is not None and path:
        _TRACKED.add(os.path.realpath(path))


def files_read() -> frozenset[str]:
    """The real paths recorded so far by the innermost :func:`track_reads` (empty outside)."""
    return frozenset(_TRACKED or ())


# --- files ------------------------------------------------------------------------------------

_KINDS = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket")]


def _kind(mode):
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: str | os.PathLike[str], display: str | None = None) -> os.stat_result:
    """Raise :class:`InputFileError` unless ``path`` (followed through symlinks) is a regular
    file; for loaders that hand the path to another library (ONNX). Returns its ``os.stat``."""
    display = display or os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputFileError(f"{display}: no such file") from None
    except OSError as exc:
        raise InputFileError(f"{display}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(f"{display}: is {_kind(st.st_mode)}, not a regular file")
    note_read(path)
    return st


def read_text(path: str | os.PathLike[str], display: str | None = None, *, limit: int = MAX_BYTES,
              encoding: str = "utf-8", what: str = "file") -> str:
    """The text of the regular file ``path``: at most ``limit`` bytes, UTF-8 (``encoding``), no
    NUL byte. The file is opened without blocking and checked on the open descriptor, so a FIFO
    or device put in its place after a check is still refused. ``what`` names the expected kind
    of file in messages (``"profile file"``)."""
    display = display or os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except IsADirectoryError:
        raise InputFileError(f"{display}: is a folder, not a {what}") from None
    except OSError as exc:
        raise InputFileError(f"{display}: cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputFileError(f"{display}: is a folder, not a {what}")
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(f"{display}: is {_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise InputFileError(f"{display}: is {st.st_size:,} bytes, more than the {limit:,} an input may have")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise InputFileError(f"{display}: is more than the {limit:,} bytes an input may have")
    except OSError as exc:
        raise InputFileError(f"{display}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise InputFileError(f"{display}: not a text file (not UTF-8)") from None
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise InputFileError(f"{display}:{line}: holds a NUL byte; not a text file")
    note_read(path)
    return text


# --- YAML -------------------------------------------------------------------------------------

_INT_TAG = "tag:yaml.org,2002:int"


def _check_nodes(root, display):
    """Depth, expanded size, recursion and integer digits of a composed YAML node graph, each
    node visited once (an alias is the same node object again: its size is counted at every
    use but never walked twice)."""
    size = {}          # id(node) -> values under it, aliases expanded
    depth = {}         # id(node) -> nesting depth under it
    active = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_NODES:
                raise InputFileError(f"{display}:{node.start_mark.line + 1}: expands to more than "
                                     f"{MAX_NODES:,} values (aliases used many times over?)")
            if depth[key] > MAX_DEPTH:
                raise InputFileError(f"{display}:{node.start_mark.line + 1}: nested more than "
                                     f"{MAX_DEPTH} levels deep")
            continue
        if key in size:
            continue
        if key in active:
            raise InputFileError(f"{display}:{node.start_mark.line + 1}: an alias refers to a value "
                                 f"that contains it (a recursive structure)")
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _INT_TAG and sum(ch.isdigit() for ch in node.value) > MAX_DIGITS:
                raise InputFileError(f"{display}:{node.start_mark.line + 1}: an integer of more than "
                                     f"{MAX_DIGITS} digits")
            size[key], depth[key] = 1, 0
            continue
        active.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) not in size:
                stack.append((child, False))


def _children(node):
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load_yaml(text: str, display: str, loader: type) -> tuple[Any, yaml.Node | None]:
    """``(data, node)`` of the one YAML document in ``text``, read with the PyYAML loader class
    ``loader`` after the node graph passed the bounds (module docstring). ``node`` is ``None``
    for an empty document. YAML errors propagate as PyYAML's (callers word them); a document
    nested past Python's recursion limit is an :class:`InputFileError`."""
    instance = loader(text)
    try:
        node = instance.get_single_node()
        if node is None:
            return None, None
        _check_nodes(node, display)
        return instance.construct_document(node), node
    except RecursionError:
        raise InputFileError(f"{display}: nested more than {MAX_DEPTH} levels deep") from None
    finally:
        instance.dispose()


def node_lines(node: yaml.Node, path: tuple = (), out: dict[tuple, int] | None = None) -> dict[tuple, int]:
    """Map each key path (tuple of str keys and int indexes) to its line, without expanding
    aliases: the values under an aliased node are recorded at their first path only."""
    out = {} if out is None else out
    seen = set()
    stack = [(node, path)]
    while stack:
        current, where = stack.pop()
        out.setdefault(where, current.start_mark.line + 1)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                key_path = where + (str(key_node.value),)
                out[key_path] = key_node.start_mark.line + 1
                stack.append((value_node, key_path))
        elif isinstance(current, yaml.SequenceNode):
            for i, item in enumerate(current.value):
                stack.append((item, where + (i,)))
    return out


# --- JSON -------------------------------------------------------------------------------------

class _JSONBound(Exception):
    pass


def _bounded_int(text):
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _JSONBound(f"an integer of more than {MAX_DIGITS} digits")
    return int(text)


def _no_constant(name):
    raise _JSONBound(f"{name} is not a JSON number")


def _json_depth(value):
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def load_json(text: str | bytes, display: str,
              object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> Any:
    """The value of the JSON ``text``, bounded (module docstring). Syntax errors propagate as
    ``json.JSONDecodeError`` (callers word them with the line)."""
    try:
        value = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant,
                           object_pairs_hook=object_pairs_hook)
    except _JSONBound as exc:
        raise InputFileError(f"{display}: invalid JSON: {exc}") from None
    except RecursionError:
        raise InputFileError(f"{display}: nested more than {MAX_DEPTH} levels deep") from None
    if _json_depth(value) > MAX_DEPTH:
        raise InputFileError(f"{display}: nested more than {MAX_DEPTH} levels deep")
    return value
