"""hardware_profiles: YAML ALU profiles (schema, loader, validator, built-in profiles).

A profile says how a basic operation is priced: the gate and cell costs of the technology, which
circuit design implements each op, the floating-point datapath and formats, the recipes that
write composite functions as basic ops, and device coefficients that turn TOs into joules.
"""
from .loader import Profile, ProfileError, builtin_names, builtin_path, load, load_file
from .schema import (BASIC_OPS, DESIGNS, FORMAT_BITS, FORMATS, REQUIRED_RECIPES, SCHEMA_VERSION,
                     STAGES)

__all__ = ["Profile", "ProfileError", "load", "load_file", "builtin_names", "builtin_path",
           "BASIC_OPS", "STAGES", "FORMATS", "FORMAT_BITS", "DESIGNS", "REQUIRED_RECIPES",
           "SCHEMA_VERSION", "DEFAULT_PROFILE"]

#: The profile used when none is named.
DEFAULT_PROFILE = "cmos-generic"
