"""Loading, validating and resolving hardware profiles (YAML, schema version 1): the public API.

Every problem is reported as one :class:`ProfileError` whose message names the file, the line and
the key path: ``my.yaml:7: units.mul.design: unknown multiplier design 'boothwallace' (did you mean
'booth_wallace'?)``.

Resolution (``extends:``): the base is a built-in profile name or a path relative to the extending
file. The child is merged into the base key by key; a mapping in the base can only be overridden
by a mapping, and these entries are replaced whole instead of merged, because a partial merge would
mix two designs or two formulas: ``units.<op>``, ``recipes.<name>``, ``devices.<name>``,
``power.distribution`` and lists (``formats``, ``coefficients``). ``name``, ``description`` and
``extends`` are never inherited.

The work is split by concern: :mod:`._chain` reads the files and merges the ``extends:`` chain,
:mod:`._validate` checks one file and then the merged profile, section by section, with the
value checks of :mod:`._checks`; :mod:`._doc` turns a key path into a message with its line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from . import schema as S
from ._chain import _ProfileLoader  # noqa: F401  (the YAML loader of profiles, named here as before)
from ._chain import BUILTIN_PREFIX, builtin_names, builtin_path, load_chain, merge_chain
from ._checks import (MAX_BYTES_VALUE, MAX_ENERGY_J, MAX_GRID_INTENSITY, MAX_NUMBER,  # noqa: F401
                      MAX_RECIPE_COUNT, MAX_TRANSISTORS_PER_GATE)                       # the bounds
from ._doc import ProfileError, suggest
from ._validate import check_resolved

__all__ = ["ProfileError", "Profile", "load", "load_file", "builtin_names", "builtin_path"]


@dataclass
class Profile:
    """A resolved hardware profile.

    ``data`` is the merged, validated mapping (what ``tosim profile show --json`` prints);
    ``chain`` lists the files it was resolved from, base first.
    """

    name: str
    data: dict[str, Any]
    source: str
    chain: list[str]
    _expanded: dict = field(default_factory=dict, repr=False)

    @property
    def formats(self) -> list[str]:
        return list(self.data["formats"])

    @property
    def default_format(self) -> str:
        return self.data["default_format"]

    @property
    def technology(self) -> dict[str, Any]:
        return self.data["technology"]

    @property
    def units(self) -> dict[str, dict[str, Any]]:
        return self.data["units"]

    @property
    def datapath(self) -> str:
        return self.data["datapath"]

    @property
    def recipes(self) -> dict[str, dict[str, Any]]:
        return self.data["recipes"]

    @property
    def devices(self) -> dict[str, dict[str, Any]]:
        return self.data.get("devices", {})

    @property
    def memory(self) -> dict[str, Any] | None:
        """The ``memory:`` section (levels innermost first, reuse model, compute energies), or
        ``None`` when the profile has none (then only TOs are priced)."""
        return self.data.get("memory")

    @property
    def power(self) -> dict[str, Any]:
        """The ``power:`` section resolved against the documented defaults
        (:data:`hardware_profiles.schema.POWER_DEFAULTS`, a generic 45 nm-class library): every
        key present, the per-gate tables merged gate by gate. A profile without the section gets
        the defaults (``energy: transistors``)."""
        own = self.data.get("power", {})
        out: dict[str, Any] = {key: (dict(value) if isinstance(value, dict) else value)
                               for key, value in S.POWER_DEFAULTS.items()}
        for key, value in own.items():
            if key in S.POWER_TABLES:
                out[key].update(value)
            else:
                out[key] = _copy(value)
        return out

    @property
    def grid_gco2_per_kwh(self) -> float | None:
        return self.data.get("carbon", {}).get("grid_gco2_per_kwh")

    def has_recipe(self, name: str) -> bool:
        return name in self.data["recipes"]

    def recipe_ops(self, name: str, direction: str = "forward") -> dict[str, int]:
        """Basic-op counts per element of a recipe, other recipes expanded (their forward costs).

        Returns only the ops with a non-zero count, e.g. ``{"sub": 1, "add": 1, "div": 1,
        "sqrt": 1}`` for li2022's sigmoid (paper eq. 2).
        """
        if direction not in ("forward", "backward"):
            raise ValueError(f"direction must be 'forward' or 'backward', not {direction!r}")
        key = (name, direction)
        if key not in self._expanded:
            recipes = self.data["recipes"]
            if name not in recipes:
                raise ProfileError(f"{self.source}: profile {self.name!r} has no recipe {name!r}")
            if direction not in recipes[name]:
                raise ProfileError(f"{self.source}: recipe {name!r} of profile {self.name!r} "
                                   f"has no {direction} entry")
            total: dict[str, int] = {}
            for op, n in recipes[name][direction].items():
                if op in S.BASIC_OPS:
                    total[op] = total.get(op, 0) + n
                else:
                    for sub_op, m in self.recipe_ops(op, "forward").items():
                        total[sub_op] = total.get(sub_op, 0) + n * m
            self._expanded[key] = {op: total[op] for op in S.BASIC_OPS if total.get(op)}
        return dict(self._expanded[key])

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


def _resolved(path: str, display: str, identity: str) -> Profile:
    """Read the chain that starts at ``path``, merge it, check the whole and wrap it."""
    chain = load_chain(path, display, identity, [identity])
    data, src = merge_chain(chain)
    check_resolved(data, src, chain)
    return Profile(name=data["name"], data=data, source=display, chain=[d.display for d in chain])


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def load_file(path: str | os.PathLike[str], display: str | None = None) -> Profile:
    """Load, resolve and validate the profile in a YAML file.

    ``display`` is how messages and :attr:`Profile.source` name the file (default: ``path``).
    Raises :class:`ProfileError` (one line: file, line, key path) for any problem."""
    path = os.fspath(path)
    return _resolved(path, display or path, os.path.realpath(path))


def load(name_or_path: str | os.PathLike[str] | Profile) -> Profile:
    """Load a built-in profile by name (``li2022``) or a profile file by path.

    A :class:`Profile` is returned as it is. Raises :class:`ProfileError` for a name that is
    neither a built-in profile nor a file (with a "did you mean"), and for any problem in the file."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    spec = str(name_or_path)
    if spec in builtin_names():
        identity = f"{BUILTIN_PREFIX}{spec}"
        return _resolved(builtin_path(spec), identity, identity)
    if os.path.isfile(spec):
        return load_file(spec)
    raise ProfileError(f"{spec}: no such profile: not a built-in profile{suggest(spec, builtin_names())} "
                       f"({', '.join(builtin_names())}) and not a file")
