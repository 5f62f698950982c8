"""The cost tables shipped with the package (``hwlib/tables/*.json``), read without Amaranth.

See :mod:`hwlib.cost` (section *Bundled tables*). Written by ``python -m hwlib._bundle``.
"""
import functools
import json
import os

from ._cache import _canonical, _sha256
from ._counting import Cost
from ._specs import _source_digest

__all__ = ["BUNDLED_DIR", "bundle_key", "bundled_entries"]

BUNDLED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tables")


def bundle_key(params, technology):
    """Key of a bundled cost-table entry: circuit parameters, technology, hwlib sources."""
    return _sha256(_canonical({"params": params, "technology": json.loads(_canonical(technology)),
                               "sources": _source_digest()}))


@functools.lru_cache(maxsize=None)
def bundled_entries():
    """``{key: Cost}`` from the cost tables shipped in ``hwlib/tables/`` (see the module doc)."""
    entries = {}
    if not os.path.isdir(BUNDLED_DIR):
        return entries
    for name in sorted(os.listdir(BUNDLED_DIR)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(BUNDLED_DIR, name), encoding="utf-8") as f:
            table = json.load(f)
        for row in table["rows"]:
            entries[row["key"]] = Cost.from_json(row["cost"])
    return entries
