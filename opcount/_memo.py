"""Exact-equality keys for memoizing pure per-layer work (shape inference, layer formulas).

A model repeats layers: a transformer's N blocks are N copies of one block, a ResNet stage
repeats its bottleneck. Their shape inference and their formulas are pure functions of the
layer's fields and shapes, so each distinct layer is worked out once per model and reused.

Reuse must never change a count, so a key matches only values that are *exactly* equal, with
their types: Python's own equality would let ``1``, ``1.0`` and ``True`` (or ``0.0`` and
``-0.0``) share a key, and a formula given a float where it was given an int would return a
float count. :func:`freeze` therefore tags bools and floats (floats by ``repr``, so ``-0.0``
and ``nan`` stay apart) and containers by kind, keeps exact ``int``, ``str`` and ``None``
as they are, and refuses everything else (numpy scalars, subclasses, objects): such a layer is
simply worked out afresh.
"""

from typing import Any

__all__ = ["freeze", "fields_key", "Unfreezable", "ENABLED"]

#: False turns the memos off (every layer inferred and counted afresh): the tests compare the
#: two paths on the whole zoo.
ENABLED = True


class Unfreezable(Exception):
    """A value :func:`freeze` gives no key for (the work is done without memoizing)."""


# Tags are the first item of a tuple: a str value stays a bare str, so no value can freeze to a
# tagged tuple except through its own kind. Plain strings keep keys picklable (a Layer carries
# its key; models travel to worker processes).
_BOOL, _FLOAT, _TUPLE, _LIST, _DICT = "\0bool", "\0float", "\0tuple", "\0list", "\0dict"


_PLAIN = frozenset({int, str})
_SCALARS = frozenset({int, str, bool, type(None)})


def freeze(value: Any) -> Any:
    """A hashable key equal to another's only when both values are equal with the same types
    all the way down (dict keys in the same order). Raises :class:`Unfreezable`."""
    kind = type(value)
    if kind is int or kind is str or value is None:
        return value
    if kind is tuple or kind is list:
        tag = _TUPLE if kind is tuple else _LIST
        if _PLAIN.issuperset(map(type, value)):          # ints and strings: as they are
            return (tag, *value)
        return (tag, *[freeze(v) for v in value])
    if kind is dict:
        kinds = tuple(map(type, value.values()))
        if _SCALARS.issuperset(kinds) and _PLAIN.issuperset(map(type, value)):
            # the value types ride along, so True and 1 stay apart (the usual layer fields)
            return (_DICT, kinds, *value.items())
        return (_DICT, *[(freeze(k), freeze(v)) for k, v in value.items()])
    if kind is bool:
        return (_BOOL, value)
    if kind is float:
        return (_FLOAT, repr(value))
    raise Unfreezable(kind.__name__)


_SCALAR_FIELDS = frozenset({int, str, bool, float, type(None)})


def fields_key(fields: dict) -> Any:
    """:func:`freeze` of a layer's fields, faster for the usual ones: a mapping of string keys
    to ints, strings, bools, floats and ``None`` is keyed by its ``repr`` (exact for these
    types: ``True``, ``1`` and ``1.0`` print apart, and so do ``0.0`` and ``-0.0``; a string
    key never equals the tuples :func:`freeze` returns)."""
    if _SCALAR_FIELDS.issuperset(map(type, fields.values())) and all(type(k) is str for k in fields):
        return repr(fields)
    return freeze(fields)
