"""The hardware-profile schema, version 1: which keys exist, their types and allowed values.

The schema is data, read by the validator in :mod:`hardware_profiles.loader` and printed in the
README. ``hwlib`` keeps the constructors behind the design names; ``tests/test_hwlib_registry.py``
checks that the names here and there are the same.
"""

__all__ = [
    "SCHEMA_VERSION", "BASIC_OPS", "STAGES", "FORMATS", "FORMAT_BITS", "DESIGNS", "UNIT_DESIGN_KIND",
    "GATE_TYPES", "CELL_TYPES", "COUNTING_MODES", "DATAPATHS", "DEVICE_FEATURES", "REQUIRED_RECIPES",
    "TOP_KEYS", "UNIT_OPTIONS", "DEVICE_KEYS", "MEMORY_KEYS", "MEMORY_LEVEL_KEYS", "MEMORY_COMPUTE_KEYS",
    "REUSE_MODELS", "DEVICE_UNITS", "DEVICE_PHASES", "PHASES", "LOSSES", "OPTIMIZERS", "DEFAULT_PROFILE",
    "ENERGY_MODEL_VERSIONS", "ENERGY_MODEL_KEYS", "ENERGY_TERMS", "BYTE_ROLES",
]

SCHEMA_VERSION = 1

#: The built-in profile used when none is named (the CLI's and the Python API's default).
DEFAULT_PROFILE = "cmos-generic"

#: The basic operations a hardware unit executes (the TOs vocabulary); ``sqrt`` is the paper's root.
BASIC_OPS = ("add", "sub", "mul", "div", "sqrt", "cmp")
STAGES = ("forward", "loss", "backward", "update")
#: The stages each phase runs (li2022, section II).
PHASES = {"inference": ("forward",), "validation": ("forward", "loss"),
          "training": ("forward", "loss", "backward", "update")}
#: Losses and optimizers a model spec may name (their counts live in opcount's formulas).
LOSSES = ("mse", "cross_entropy", "bce")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")

#: Floating-point formats: (exponent bits, fraction bits). IEEE-754 binary formats, bfloat16, and the
#: OCP 8-bit formats fp8_e4m3 (no infinities, one NaN pattern per sign; hwlib.units.fp8) and fp8_e5m2
#: (IEEE-like).
FORMAT_BITS = {"fp16": (5, 10), "bf16": (8, 7), "fp32": (8, 23), "fp64": (11, 52),
               "fp8_e4m3": (4, 3), "fp8_e5m2": (5, 2)}
FORMATS = tuple(FORMAT_BITS)

#: Design names per unit kind, as written under ``units:`` (constructors live in hwlib.registry).
DESIGNS = {
    "add": ("ripple_carry", "carry_lookahead", "carry_skip", "carry_select", "brent_kung",
            "kogge_stone", "sklansky"),
    "mul": ("booth_wallace", "array", "dadda"),
    "div": ("srt_radix2", "restoring", "non_restoring"),
    "sqrt": ("newton_raphson", "digit_recurrence"),
}

#: Which design kind implements each basic op: sub and cmp run on an adder (two's complement).
UNIT_DESIGN_KIND = {"add": "add", "sub": "add", "cmp": "add", "mul": "mul", "div": "div", "sqrt": "sqrt"}

#: Options a unit may carry besides ``design``: option -> (type, design kind it names or None).
UNIT_OPTIONS = {
    "add": {},
    "sub": {},
    "cmp": {},
    "mul": {"final_adder": "add"},
    "div": {"adder": "add"},
    "sqrt": {"seed_bits": int, "multiplier": "mul", "adder": "add"},
}

#: Gate types a ``synthesized`` profile may price: Yosys/ABC's ``abc -g`` library plus NOT and BUF.
GATE_TYPES = ("NOT", "BUF", "AND", "NAND", "OR", "NOR", "XOR", "XNOR", "ANDNOT", "ORNOT",
              "MUX", "NMUX", "AOI3", "OAI3", "AOI4", "OAI4")
#: Cells a ``structural`` profile prices (hwlib.cells); glue logic is priced by the gates.
CELL_TYPES = ("full_adder", "half_adder", "counter_3_2", "mux2")
COUNTING_MODES = ("synthesized", "structural")
DATAPATHS = ("ieee", "minimal")
DEVICE_FEATURES = ("tos", "flops", "macs")
#: A device's coefficients give joules; ``unit`` may only say so.
DEVICE_UNITS = ("J",)
#: The phase a device was fitted on: tosim's phases, or ``mixed`` (``tosim fit`` writes it when the
#: measurements cover more than one phase).
DEVICE_PHASES = ("inference", "validation", "training", "mixed")

#: Recipes every resolved profile defines, because opcount's layer formulas use them.
REQUIRED_RECIPES = ("exp", "log", "sigmoid", "tanh", "erf", "gelu", "gelu_tanh", "silu", "rsqrt")

#: Top-level keys: name -> expected Python type(s).
TOP_KEYS = {
    "schema": int,
    "name": str,
    "description": str,
    "extends": (str, type(None)),
    "technology": dict,
    "units": dict,
    "datapath": str,
    "formats": list,
    "default_format": str,
    "recipes": dict,
    "devices": dict,
    "carbon": dict,
    "memory": dict,
}

DEVICE_KEYS = {
    "feature": str,
    "coefficients": list,
    "unit": str,
    "source": str,
    "date": str,
    "phase": str,
    "metrics": dict,
    "description": str,
    "energy_model": dict,
    "fitted_range": list,
}

#: A device holds either a polynomial (``feature`` + ``coefficients``, li2022 eq. 4) or an
#: ``energy_model`` (calibrate's device energy model: joules per basic op and format, per byte of
#: inputs/outputs/weights with a spill level, per layer call, and static power x roofline time per
#: layer type). Its versions:
ENERGY_MODEL_VERSIONS = (1,)
ENERGY_TERMS = ("ops", "memory", "calls", "static")
BYTE_ROLES = ("inputs", "outputs", "weights")
#: Keys of ``devices.<name>.energy_model`` -> type. All numbers are non-negative and finite.
ENERGY_MODEL_KEYS = {
    "version": int,
    "terms": list,
    "op_j": dict,                     # {format: {op: joules per basic op}}
    "byte_j": dict,                   # {inputs|outputs|weights: joules per byte}
    "byte_j_by_type": dict,           # {layer type: {inputs|outputs|weights: joules per byte}}
    "capacity_bytes": float,          # bytes a layer call moves at the near rates
    "spill_j_per_byte": float,        # extra joules per byte beyond capacity_bytes
    "call_j": float,                  # joules per layer call
    "static_w": float,                # static power (W), for the time estimate
    "static_j_per_op": dict,          # {layer type: static_w / attained peak of its kernel}
    "static_j_per_op_default": float,  # for layer types not listed
    "peak_ops_per_s": float,          # nominal peak (basic ops per second)
    "bandwidth_bytes_per_s": float,   # nominal bandwidth; peak / bandwidth is the balance
    "latency_s": float,               # per layer call, time only
}

#: The optional ``memory:`` section (data movement, see :mod:`opcount.movement`): key -> type.
MEMORY_KEYS = {"reuse": str, "levels": list, "compute": dict, "source": str}
#: Keys of one entry of ``memory.levels`` (innermost level first). Energies are joules (SI).
MEMORY_LEVEL_KEYS = {"name": str, "capacity_bytes": int, "bytes_per_access": int,
                     "energy_per_access_j": float, "energy_per_byte_j": float}
#: ``memory.compute``: joules per basic op or per MAC, per format (``{fp32: {add: 9.0e-13}}``).
MEMORY_COMPUTE_KEYS = {"op_energy_j": dict, "mac_energy_j": dict}
#: Reuse models (dataflows) of ``memory.reuse``: which operand a level holds while the others stream.
REUSE_MODELS = ("weight_stationary", "output_stationary")
