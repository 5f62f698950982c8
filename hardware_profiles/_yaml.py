"""The YAML loader of tosim's input files (profiles and model specs): PyYAML's safe loader that
refuses a key given twice in one mapping. PyYAML keeps the last value silently, so a profile or
model with ``out: 8`` and later ``out: 2`` would be read as something its author did not write.
Merge keys (``<<``) may still be overridden by explicit keys, as YAML intends.

The parser is libyaml's (``yaml.CSafeLoader``) where PyYAML was built with it, several times
faster than the pure-Python one and giving the same data; else PyYAML's own ``SafeLoader``. A
syntax error is reported in the pure-Python parser's words (libyaml words them differently),
so messages do not depend on how PyYAML was built."""
from __future__ import annotations

from typing import IO, Any

import yaml

__all__ = ["UniqueKeyLoader"]

_MERGE = "tag:yaml.org,2002:merge"


#: libyaml's safe loader when available (same data, faster), else the pure-Python one.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# a base chosen at import, which a type checker cannot follow
class UniqueKeyLoader(_SAFE_LOADER):  # type: ignore[misc,valid-type]
    """``yaml.SafeLoader`` (libyaml's where available) whose mappings raise a ``ConstructorError`` marked at the second
    occurrence of a key (``problem``: ``duplicate key 'name' (first on line N)``)."""

    def __init__(self, stream: str | bytes | IO[str] | IO[bytes]) -> None:
        self._text = stream if isinstance(stream, (str, bytes)) else None
        super().__init__(stream)

    def get_single_node(self) -> yaml.Node | None:
        try:
            return super().get_single_node()
        except yaml.MarkedYAMLError:
            if _SAFE_LOADER is yaml.SafeLoader or self._text is None:
                raise
            yaml.compose(self._text, Loader=yaml.SafeLoader)   # raises the same error, in its words
            raise

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r} (first on line {seen[key]})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)
