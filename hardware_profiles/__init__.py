"""hardware_profiles: YAML ALU profiles (schema, loader, validator, built-in profiles).

A profile says how a basic operation is priced: the gate and cell costs of the technology, which
circuit design implements each op, the floating-point datapath and formats, the recipes that
write composite functions as basic ops, and device coefficients that turn TOs into joules.

The schema's names (:mod:`hardware_profiles.schema`) are plain data, imported with the package;
the loader (and PyYAML) is imported on first use of :func:`load` and the other loader names.
``UniqueKeyLoader`` is the YAML loader of every input file (a key given twice is an error).
"""
from .schema import (BASIC_OPS, DEFAULT_PROFILE, DESIGNS, FORMAT_BITS, FORMAT_BYTES, FORMATS, INT_FORMAT_BITS,
                     PHASES, REQUIRED_RECIPES, SCHEMA_VERSION, STAGES)

__all__ = ["Profile", "ProfileError", "load", "load_file", "builtin_names", "builtin_path",
           "BASIC_OPS", "STAGES", "PHASES", "FORMATS", "FORMAT_BITS", "INT_FORMAT_BITS", "FORMAT_BYTES",
           "DESIGNS", "REQUIRED_RECIPES",
           "SCHEMA_VERSION", "DEFAULT_PROFILE", "UniqueKeyLoader"]

_LOADER_NAMES = {"Profile", "ProfileError", "load", "load_file", "builtin_names", "builtin_path"}


def __getattr__(name):
    if name == "UniqueKeyLoader":
        from ._yaml import UniqueKeyLoader
        return UniqueKeyLoader
    if name in _LOADER_NAMES or name == "loader":
        import importlib
        loader = importlib.import_module(".loader", __name__)
        return loader if name == "loader" else getattr(loader, name)
    raise AttributeError(f"module 'hardware_profiles' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LOADER_NAMES | {"loader"})
