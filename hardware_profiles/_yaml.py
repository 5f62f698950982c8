"""The YAML loader of tosim's input files (profiles and model specs): PyYAML's safe loader that
refuses a key given twice in one mapping. PyYAML keeps the last value silently, so a profile or
model with ``out: 8`` and later ``out: 2`` would be read as something its author did not write.
Merge keys (``<<``) may still be overridden by explicit keys, as YAML intends."""
import yaml

__all__ = ["UniqueKeyLoader"]

_MERGE = "tag:yaml.org,2002:merge"


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mappings raise a ``ConstructorError`` marked at the second
    occurrence of a key (``problem``: ``duplicate key 'name' (first on line N)``)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
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
