"""Reading a profile and the files it extends, and merging them into one mapping.

:func:`load_chain` reads a file, checks it on its own (:func:`hardware_profiles._validate.check_file`)
and follows ``extends:`` (a built-in name or a path relative to the extending file) down to a
profile that extends nothing, refusing cycles; it returns the files base first.
:func:`merge_chain` merges them key by key and records which file set each key path, so that the
checks on the merged profile name the right file and line. The rules of the merge are in
:mod:`hardware_profiles.loader`'s docstring.
"""
import os
import re
from importlib import resources

import yaml

from . import _read
from . import schema as S
from ._doc import Doc, ProfileError, suggest, type_name
from ._validate import check_file
from ._yaml import UniqueKeyLoader

__all__ = ["BUILTIN_PREFIX", "builtin_names", "builtin_path", "load_chain", "merge_chain"]


BUILTIN_DIR = "builtin"
BUILTIN_PREFIX = "builtin:"


def builtin_names() -> list[str]:
    """Names of the profiles shipped inside the package, sorted."""
    folder = resources.files(__package__) / BUILTIN_DIR
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def builtin_path(name: str) -> str:
    """Filesystem path of a built-in profile's YAML file."""
    return str(resources.files(__package__) / BUILTIN_DIR / f"{name}.yaml")


class _ProfileLoader(UniqueKeyLoader):
    """PyYAML's safe loader, plus YAML 1.2 floats written with an exponent but without a dot or an
    exponent sign (``1e-12``, ``5E3``, ``-2e+5``, ``1.5e3``), which YAML 1.1 reads as strings;
    energies are naturally written that way. A key given twice is an error (``UniqueKeyLoader``).
    Used only to read profiles."""


_ProfileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def read_doc(path, display, identity):
    """One profile file read as YAML (with the line of every key path), not yet validated."""
    if not os.path.lexists(path):
        raise ProfileError(f"{display}: no such file")
    try:
        text = _read.read_text(path, display, what="profile file")
    except _read.InputFileError as exc:
        raise ProfileError(str(exc)) from None
    doc = Doc(display=display, data=None, directory=os.path.dirname(os.path.abspath(path)),
              identity=identity)
    try:
        data, node = _read.load_yaml(text, display, _ProfileLoader)
    except _read.InputFileError as exc:
        raise ProfileError(str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise ProfileError(f"{display}:{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{display}:1: invalid YAML: {' '.join(str(exc).split())}") from None
    if node is None or data is None:
        raise ProfileError(f"{display}:1: profile is empty")
    _read.node_lines(node, (), doc.lines)
    if not isinstance(data, dict):
        raise ProfileError(f"{display}:{node.start_mark.line + 1}: top level must be a mapping of "
                           f"profile keys, not {type_name(data)}")
    doc.data = data
    return doc


_REPLACE_WHOLE_AT_DEPTH2 = {"units", "recipes", "devices"}
#: Further key paths replaced whole: the operand distributions of the power section (a text, a
#: pair or a per-op mapping; one never merges into another).
_REPLACE_WHOLE = {("power", "distribution")}
_NOT_INHERITED = {"name", "description", "extends"}


def merge_into(merged, child, doc, src, path=()):
    """Merge ``child`` (from ``doc``) into ``merged`` in place, recording in ``src`` which file
    set each key path, so errors found after resolution name the right file and line."""
    for key, value in child.items():
        p = path + (key,)
        whole = (len(p) == 2 and p[0] in _REPLACE_WHOLE_AT_DEPTH2) or p in _REPLACE_WHOLE
        if key in merged and isinstance(merged[key], dict) != isinstance(value, dict) and not whole:
            raise doc.error(p, f"cannot override {type_name(merged[key])} of the base "
                               f"with {type_name(value)}")
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and not whole:
            merged[key] = dict(merged[key])
            src[p] = doc
            merge_into(merged[key], value, doc, src, p)
        else:
            for k in [k for k in src if k[:len(p)] == p]:
                del src[k]
            merged[key] = value
            mark(src, p, value, doc)


def mark(src, path, value, doc):
    src[path] = doc
    if isinstance(value, dict):
        for k, v in value.items():
            mark(src, path + (k,), v, doc)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            mark(src, path + (i,), v, doc)


def resolve_target(spec, doc):
    """(path, display, identity) of the base named by ``extends:`` in doc, or raise."""
    looks_like_path = spec.endswith((".yaml", ".yml")) or "/" in spec or os.sep in spec
    if not looks_like_path and spec in builtin_names():
        return builtin_path(spec), f"{BUILTIN_PREFIX}{spec}", f"{BUILTIN_PREFIX}{spec}"
    if doc.identity.startswith(BUILTIN_PREFIX) and looks_like_path:
        raise doc.error(("extends",), f"a built-in profile can only extend built-in profiles, not {spec!r}")
    candidate = os.path.normpath(os.path.join(doc.directory, spec))
    if doc.display.startswith(BUILTIN_PREFIX):
        display = candidate
    else:
        display = os.path.normpath(os.path.join(os.path.dirname(doc.display), spec))
    if os.path.isfile(candidate):
        return candidate, display, os.path.realpath(candidate)
    hint = suggest(spec, builtin_names()) if not looks_like_path else ""
    raise doc.error(("extends",), f"base profile {spec!r} not found: not a built-in profile{hint} "
                                  f"and no file {display}")


def load_chain(path, display, identity, seen):
    doc = read_doc(path, display, identity)
    check_file(doc)
    spec = doc.data.get("extends")
    if spec is None:
        return [doc]
    base_path, base_display, base_identity = resolve_target(spec, doc)
    if base_identity in seen:
        names = [d for d in seen] + [base_identity]
        start = names.index(base_identity)
        pretty = " -> ".join(pretty_identity(n) for n in names[start:])
        raise doc.error(("extends",), f"cycle {pretty}")
    return load_chain(base_path, base_display, base_identity, seen + [base_identity]) + [doc]


def pretty_identity(identity):
    if identity.startswith(BUILTIN_PREFIX):
        return identity
    return os.path.basename(identity)


def merge_chain(chain):
    data, src = {}, {}
    for doc in chain:
        part = doc.data if doc is chain[-1] else {k: v for k, v in doc.data.items()
                                                  if k not in _NOT_INHERITED}
        merge_into(data, part, doc, src)
    top = chain[-1]
    data.pop("extends", None)
    data.setdefault("name", os.path.splitext(os.path.basename(top.display.replace(BUILTIN_PREFIX, "")))[0])
    data.setdefault("schema", S.SCHEMA_VERSION)
    ordered = {key: data[key] for key in S.TOP_KEYS if key in data}
    return ordered, src
