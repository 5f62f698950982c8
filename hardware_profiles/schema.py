"""The hardware-profile schema, version 1: which keys exist, their types and allowed values.

The schema is data, read by the validator in :mod:`hardware_profiles.loader` and printed in the
README. ``hwlib`` keeps the constructors behind the design names; ``tests/test_hwlib_registry.py``
checks that the names here and there are the same.
"""
from __future__ import annotations

__all__ = [
    "SCHEMA_VERSION", "BASIC_OPS", "STAGES", "FORMATS", "FORMAT_BITS", "INT_FORMAT_BITS", "FORMAT_BYTES",
    "INT_ACCUMULATOR", "DESIGNS", "UNIT_DESIGN_KIND",
    "GATE_TYPES", "CELL_TYPES", "COUNTING_MODES", "DATAPATHS", "DEVICE_FEATURES", "REQUIRED_RECIPES",
    "TOP_KEYS", "UNIT_OPTIONS", "DEVICE_KEYS", "MEMORY_KEYS", "MEMORY_LEVEL_KEYS", "MEMORY_COMPUTE_KEYS",
    "REUSE_MODELS", "DEVICE_UNITS", "DEVICE_PHASES", "PHASES", "LOSSES", "OPTIMIZERS", "DEFAULT_PROFILE",
    "ENERGY_MODEL_VERSIONS", "ENERGY_MODEL_KEYS", "ENERGY_TERMS", "BYTE_ROLES", "MAC_DESIGNS",
    "MAC_ACCUMULATOR_FORMATS", "MAC_LAYER_TYPES",
    "POWER_KEYS", "POWER_VERSIONS", "POWER_ENERGY", "POWER_TABLES", "POWER_DEFAULTS", "DISTRIBUTIONS",
    "STREAMS_PREFIX", "STREAMS_OPS", "MODEL_OPERANDS", "split_distribution",
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

#: Floating-point formats: (exponent bits, fraction bits). IEEE-754 binary formats, bfloat16, the
#: OCP 8-bit formats fp8_e4m3 (no infinities, one NaN pattern per sign; hwlib.units.fp8) and fp8_e5m2
#: (IEEE-like), and tf32 (NVIDIA TensorFloat-32: fp32's 8-bit exponent, fp16's 10-bit fraction, 19
#: bits of arithmetic, stored in memory as an fp32 word).
FORMAT_BITS = {"fp16": (5, 10), "bf16": (8, 7), "fp32": (8, 23), "fp64": (11, 52),
               "fp8_e4m3": (4, 3), "fp8_e5m2": (5, 2), "tf32": (8, 10)}
#: Integer formats (two's complement): bits. Their ops run on the profile's integer units at that
#: width (hwlib.units.intfmt); int32 is the accumulator of int8 and int4 products.
INT_FORMAT_BITS = {"int8": 8, "int4": 4, "int32": 32}
#: Every number format a model or a profile may name: the floating-point ones, then the integer ones.
FORMATS = tuple(FORMAT_BITS) + tuple(INT_FORMAT_BITS)
#: Bytes one value takes in memory (the data-movement model): the bits over 8, except tf32, stored
#: as fp32 (4 bytes); int4 packs two values per byte (0.5).
FORMAT_BYTES = {**{f: (1 + e + m) / 8 for f, (e, m) in FORMAT_BITS.items()}, "tf32": 4.0,
                **{f: bits / 8 for f, bits in INT_FORMAT_BITS.items()}}
#: The accumulator of an integer matrix product (products of int8 or int4 operands summed in int32).
INT_ACCUMULATOR = "int32"

#: Design names per unit kind, as written under ``units:`` (constructors live in hwlib.registry).
DESIGNS = {
    "add": ("ripple_carry", "carry_lookahead", "carry_skip", "carry_select", "brent_kung",
            "kogge_stone", "sklansky"),
    "mul": ("booth_wallace", "array", "dadda"),
    "div": ("srt_radix2", "restoring", "non_restoring"),
    "sqrt": ("newton_raphson", "digit_recurrence"),
}

#: The optional ``units.mac`` unit (multiply-accumulate; opcount then counts ``mac`` ops for the
#: accumulations of the MAC_LAYER_TYPES): its designs (``fused``: hwlib.units.fma.FPMAC, one
#: rounding, built from the profile's mul and add units) and the formats it may accumulate in
#: (``accumulate:``; default the layer's own format, an FMA).
MAC_DESIGNS = ("fused",)
MAC_ACCUMULATOR_FORMATS = ("fp16", "bf16", "fp32", "fp64", "fp8_e5m2")
#: The optional ``units.divsqrt`` unit: one divide/square-root digit recurrence
#: (hwlib.units.divsqrt.FPDivSqrt) that prices both ``div`` and ``sqrt`` (each op pays the whole
#: unit), in place of ``units.div`` and ``units.sqrt``; its designs and its options (``adder``:
#: the design of its two final adders).
DIVSQRT_DESIGNS = ("srt_radix2",)
DIVSQRT_OPTIONS = {"adder": "add"}
#: Layer types whose multiply-accumulates run on the MAC unit: the matrix products.
MAC_LAYER_TYPES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                   "conv_transpose3d", "matmul", "bmm")

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
    "power": dict,
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
    "window_j_per_op": dict,          # {layer type: static joules per op whose input is new to the window}
    "channel_block": int,             # output channels of blocked kernels padded to this multiple
    "row_j": dict,                    # {layer type: static joules per window row}
    "exposed_j": dict,                # {layer type: static joules per output byte its ops do not hide}
    "output_balance": float,          # ops that hide the write of one output byte (exposed_j)
    "pack_j": dict,                   # {layer type: static joules per weight byte packed (pack_rows)}
    "pack_rows": list,                # [lo, hi]: GEMM rows M of the calls that pack their weights
    "weight_spill_j": dict,           # {layer type: static joules per weight byte beyond weight_cache_bytes}
    "weight_cache_bytes": float,      # weights of a GEMM call above this stream from DRAM (weight_spill_j)
    "narrow_j": dict,                 # {layer type: static joules per output byte of narrow_window poolings}
    "narrow_window": list,            # [kernel, least stride]: the poolings narrow_j prices (empirical)
    "fresh_j": dict,                  # {layer type: static joules per byte of fresh outputs above the threshold}
    "fresh_j_default": float,         # the same for layer types not in fresh_j
    "fresh_threshold_bytes": float,   # outputs (and max-pool indices) above this are new pages on every call
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


# --- the optional ``power:`` section -----------------------------------------------------------
#
# The technology numbers of switching energy, delay and area (hwlib.activity) and whether
# ``tosim score`` prices the counted ops by simulated switching energy besides TOs. A section of
# its own, not part of ``technology:``: the technology section keys the cached and bundled
# transistor counts, and nothing here changes a transistor count.

#: Versions of the ``power:`` section this tosim reads (``power.version``, default the latest).
POWER_VERSIONS = (1,)
#: ``power.energy``: ``transistors`` (TOs only, the default) or ``activity`` (``tosim score`` adds
#: the dynamic switching energy of the counted ops, simulated on the profile's units).
POWER_ENERGY = ("transistors", "activity")
#: Per-gate tables of the power section (gate name -> non-negative number, merged gate by gate).
POWER_TABLES = ("pin_ff", "drain_ff", "delay_ps", "area_um2")
#: Keys of ``power:`` -> type.
POWER_KEYS = {
    "version": int,
    "vdd": float,                     # supply, V
    "pin_ff": dict,                   # input-pin capacitance per gate input, fF
    "drain_ff": dict,                 # drain capacitance at a gate's output, fF
    "wire_ff_per_fanout": float,      # wire load per fan-out, fF
    "output_load_ff": float,          # load of each primary-output bit (the result register), fF
    "delay_ps": dict,                 # intrinsic delay per gate, ps
    "delay_ps_per_fanout": float,     # extra delay per fan-out of the driven net, ps
    "area_um2": dict,                 # cell area per gate, um^2
    "source": str,                    # where the numbers come from
    "energy": str,                    # POWER_ENERGY
    "distribution": (str, list, dict),  # operand distribution(s) of the activity pricing
    "vectors": int,                   # operand pairs per simulated stream
    "seed": int,                      # stream seed
    "glitches": bool,                 # count unit-delay toggles (glitches) instead of zero-delay
}

#: The documented default: a generic 45 nm-class static-CMOS library at its nominal 1.1 V, X1
#: (minimum-drive) cells. Order-of-magnitude assumptions written down for tosim, rounded to the
#: size of the cells of open 45 nm libraries of the FreePDK45 kind (NanGate Open Cell Library:
#: pin capacitances about 1 to 2.5 fF, an inverter delay of 10-20 ps plus a few ps per fan-out,
#: areas in multiples of a 0.266 um^2 placement site); not copied from a library file and not
#: sign-off data. See docs/power.md. BUF is a wire (it never survives the mapping).
POWER_DEFAULTS = {
    "version": 1,
    "vdd": 1.1,
    # input-pin capacitance per gate input, fF: XOR/XNOR and multiplexer inputs load their drivers
    # more, the non-inverting 2-input gates (a small first stage) least
    "pin_ff": {"BUF": 0.0, "NOT": 1.6, "NAND": 1.6, "NOR": 1.7, "AND": 0.9, "OR": 0.9,
               "XOR": 2.3, "XNOR": 2.3, "ANDNOT": 1.2, "ORNOT": 1.2, "AOI3": 1.6, "OAI3": 1.6,
               "AOI4": 1.6, "OAI4": 1.6, "MUX": 1.5, "NMUX": 1.5},
    "drain_ff": {"BUF": 0.0, "NOT": 0.8, "NAND": 1.1, "NOR": 1.2, "AND": 1.0, "OR": 1.0,
                 "XOR": 1.6, "XNOR": 1.6, "ANDNOT": 1.1, "ORNOT": 1.1, "AOI3": 1.4, "OAI3": 1.4,
                 "AOI4": 1.6, "OAI4": 1.6, "MUX": 1.5, "NMUX": 1.5},
    "wire_ff_per_fanout": 0.25,
    "output_load_ff": 1.5,
    "delay_ps": {"BUF": 0.0, "NOT": 12.0, "NAND": 16.0, "NOR": 20.0, "AND": 28.0, "OR": 32.0,
                 "XOR": 38.0, "XNOR": 38.0, "ANDNOT": 26.0, "ORNOT": 30.0, "AOI3": 24.0,
                 "OAI3": 24.0, "AOI4": 28.0, "OAI4": 28.0, "MUX": 36.0, "NMUX": 32.0},
    "delay_ps_per_fanout": 4.0,
    # multiples of a 0.266 um^2 site: inverter 2 sites, NAND2 3, AND2 4, ...
    "area_um2": {"BUF": 0.0, "NOT": 0.532, "NAND": 0.798, "NOR": 0.798, "AND": 1.064, "OR": 1.064,
                 "XOR": 1.596, "XNOR": 1.596, "ANDNOT": 1.064, "ORNOT": 1.064, "AOI3": 1.064,
                 "OAI3": 1.064, "AOI4": 1.330, "OAI4": 1.330, "MUX": 1.862, "NMUX": 1.862},
    "source": "generic 45 nm-class static CMOS, X1 cells, nominal 1.1 V (tosim defaults; "
              "order-of-magnitude assumptions, see docs/power.md)",
    "energy": "transistors",
    "distribution": "normal",
    "vectors": 1024,
    "seed": 0,
    "glitches": False,
}

#: Named operand distributions (hwlib.activity) -> the parameters each takes.
DISTRIBUTIONS = {"uniform": (), "normal": ("scale",), "relu": ("zeros", "scale"), "zeros": ()}

#: ``streams:FILE[#TYPE]``: operand streams drawn from a model and saved by ``tosim activity
#: --from-model ... --save-streams FILE`` (the multiplier's and the adder's operands), for
#: these ops' entries of ``power.distribution``; a relative FILE is read from the profile's folder.
STREAMS_PREFIX = "streams:"
STREAMS_OPS = ("mul", "add")
#: ``model[#TYPE]``: the operands drawn from the scored model itself (``tosim score``), as
#: ``tosim activity --from-model`` draws them, for the same ops as a streams file.
MODEL_OPERANDS = "model"


def split_distribution(text: str) -> tuple[str, dict[str, float]]:
    """``"relu:zeros=0.7,scale=0.1"`` -> ``("relu", {"zeros": 0.7, "scale": 0.1})``; raises
    ``ValueError`` (a message without the value's location) for an unknown name or parameter, a
    parameter that is not ``KEY=NUMBER``, a negative or non-finite number, or ``zeros`` above 1."""
    import math
    name, _, rest = str(text).partition(":")
    name = name.strip()
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {name!r}; known: {', '.join(DISTRIBUTIONS)}")
    params = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq:
            raise ValueError(f"distribution parameter {item!r} must be KEY=VALUE")
        if key not in DISTRIBUTIONS[name]:
            raise ValueError(f"distribution {name!r} takes "
                             f"{', '.join(DISTRIBUTIONS[name]) or 'no parameters'}, not {key!r}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"distribution parameter {key}={value.strip()!r} is not a number") from None
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{name}: {key} must be a non-negative number, not {value.strip()}")
        if key == "zeros" and number > 1:
            raise ValueError(f"{name}: zeros is a fraction from 0 to 1, not {value.strip()}")
        params[key] = number
    return name, params
