# amaranth: UnusedElaboratable=no
"""FP8 units (hwlib.units.fp8: fp8_e4m3 re-encoded around hwlib.fp, fp8_e5m2 through hwlib.fp)
checked bit-exactly and exhaustively against references.

Two references: ``reference_fp8`` (the module's exact scalar model: rationals, one rounding)
and ``round_fp8`` below (vectorized: the FP8 operands decoded to float64, the op done by numpy,
exact for +, -, * and innocuous for / and sqrt, whose results never lie within 2**-53 of an
FP8 tie, then rounded by searching the sorted FP8 values). The second is checked against the
first on seeded samples and every special pair, and against PyTorch's ``float8_e4m3fn`` /
``float8_e5m2`` conversions over all pairs where PyTorch is installed. The circuits run through
hwlib.netsim (the Yosys netlist): add, sub and mul on all 65,536 pairs of each format here,
div, sqrt and cmp on all pairs in the slow tests.
"""
import json
import math
import random

import numpy as np
import pytest

import hardware_profiles as hp
from hwlib import cost
from hwlib._specs import _source_digest
from hwlib.fp import build_fp_unit
from hwlib.netsim import simulate
from hwlib.units.fp8 import (FP8_FORMATS, FP8_INFO, E4M3Unit, build_fp8_unit, fp8_to_fraction, fp8_unit,
                             reference_fp8, round_fraction)

FORMATS = pytest.mark.parametrize("fmt", FP8_FORMATS)
ALL_A = np.repeat(np.arange(256), 256)
ALL_B = np.tile(np.arange(256), 256)


# --- vectorized reference -------------------------------------------------------------------

def fp8_values(fmt):
    """float64 value of each of the 256 patterns (NaN and infinities as numpy's)."""
    out = []
    for bits in range(256):
        v = fp8_to_fraction(bits, fmt)
        out.append(float(v) if not (v == 0 and bits >> 7) else -0.0)
    return np.array(out)


def round_fp8(x, fmt):
    """Bit patterns of float64 ``x`` rounded to nearest even in ``fmt`` (e5m2 overflows to
    infinity, e4m3 saturates at 448; NaN gives the canonical NaN)."""
    info = FP8_INFO[fmt]
    values = fp8_values(fmt)[:128]
    finite = [(v, b) for b, v in enumerate(values) if np.isfinite(v)]
    mags = np.array([v for v, _ in finite])
    pats = np.array([b for _, b in finite])
    # the next magnitude above the largest finite one: e5m2's infinity (an even pattern), or
    # the 480 that e4m3 would reach without its NaN (an odd pattern), then saturated
    step = mags[-1] - mags[-2]
    mags = np.append(mags, mags[-1] + step)
    pats = np.append(pats, 0x7C if info["infinities"] else 0x7F)
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    safe = np.where(np.isfinite(a), np.minimum(a, mags[-1]), mags[-1])
    hi = np.clip(np.searchsorted(mags, safe), 1, len(mags) - 1)
    lo = hi - 1
    d_lo, d_hi = safe - mags[lo], mags[hi] - safe
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (pats[hi] % 2 == 0))
    idx = np.where(safe <= mags[0], 0, np.where(pick_hi, hi, lo))
    mag = pats[idx]
    if not info["infinities"]:
        mag = np.where(mag == 0x7F, info["max"], mag)
    mag = np.where(np.isinf(x), 0x7C if info["infinities"] else info["max"], mag)
    bits = (np.signbit(x).astype(np.int64) << 7) | mag
    return np.where(np.isnan(x), info["nan"], bits)


def numpy_op(op, a, b, fmt):
    """``op`` on the FP8 patterns ``a`` (and ``b``) in float64, then :func:`round_fp8`."""
    values = fp8_values(fmt)
    x = values[a]
    y = values[b] if b is not None else None
    with np.errstate(divide="ignore", invalid="ignore"):
        r = {"add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y,
             "div": lambda: x / y, "sqrt": lambda: np.sqrt(x)}[op]()
    return round_fp8(r, fmt)


def is_nan(bits, fmt):
    return np.isnan(fp8_values(fmt)[np.asarray(bits)])


# --- references -------------------------------------------------------------------------------

def test_reference_values():
    e4, e5 = "fp8_e4m3", "fp8_e5m2"
    assert fp8_to_fraction(0x7E, e4) == 448 and math.isnan(fp8_to_fraction(0x7F, e4))
    assert fp8_to_fraction(0x78, e4) == 256            # exponent 1111 is a binade in e4m3
    assert fp8_to_fraction(0x01, e4) == 2.0 ** -9     # smallest subnormal
    assert fp8_to_fraction(0x7B, e5) == 57344 and fp8_to_fraction(0x7C, e5) == math.inf
    assert math.isnan(fp8_to_fraction(0x7D, e5)) and fp8_to_fraction(0x01, e5) == 2.0 ** -16
    # e4m3 saturates: 464 ties to 448 (even), anything above rounds past 448 and saturates
    assert [round_fraction(v, e4) for v in (464, 465, 480, 1e9, -1e9)] == [0x7E, 0x7E, 0x7E, 0x7E, 0xFE]
    assert round_fraction(math.inf, e4) == 0x7E and round_fraction(-math.inf, e4) == 0xFE
    # e5m2 overflows to infinity at 61,440 (the tie goes to the even infinity pattern)
    assert [round_fraction(v, e5) for v in (61439, 61440, -1e9)] == [0x7B, 0x7C, 0xFC]
    assert reference_fp8("mul", 0x7E, 0x40, e4) == 0x7E      # 448 * 2 saturates
    assert reference_fp8("div", 0x38, 0x00, e4) == 0x7E      # 1 / 0: infinity, saturated
    assert reference_fp8("div", 0x00, 0x00, e4) == 0x7F      # 0 / 0: NaN
    assert reference_fp8("add", 0x80, 0x80, e4) == 0x80      # -0 + -0 = -0
    assert reference_fp8("add", 0x38, 0xB8, e4) == 0x00      # 1 - 1 = +0
    assert reference_fp8("sub", 0x7C, 0x7C, e5) == 0x7E      # inf - inf: NaN
    assert reference_fp8("sqrt", 0x80, None, e5) == 0x80     # sqrt(-0) = -0
    assert reference_fp8("cmp", 0x00, 0x80, e4) == "eq" and reference_fp8("cmp", 0x7F, 0, e4) == "unordered"


@FORMATS
def test_vectorized_reference_matches_the_exact_one(fmt):
    rng = random.Random(18)
    specials = [0x00, 0x80, 0x01, 0x81, 0x7F, 0xFF, 0x7E, 0xFE, 0x7C, 0xFC, 0x7B, 0x78, 0x38, 0x08, 0x07]
    pairs = [(a, b) for a in specials for b in specials]
    pairs += [(rng.randrange(256), rng.randrange(256)) for _ in range(600)]
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    for op in ("add", "sub", "mul", "div"):
        want = [reference_fp8(op, int(x), int(y), fmt) for x, y in zip(a, b)]
        got = numpy_op(op, a, b, fmt)
        assert list(got) == want, op
    got = numpy_op("sqrt", np.arange(256), None, fmt)
    assert list(got) == [reference_fp8("sqrt", x, None, fmt) for x in range(256)]


@FORMATS
def test_reference_matches_pytorch_casts(fmt):
    torch = pytest.importorskip("torch")
    dtype = {"fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}[fmt]
    decoded = torch.arange(256, dtype=torch.uint8).view(dtype).double().numpy()
    assert np.array_equal(decoded, fp8_values(fmt), equal_nan=True)
    x = torch.from_numpy(fp8_values(fmt)[ALL_A])
    y = torch.from_numpy(fp8_values(fmt)[ALL_B])
    for op, r in (("add", x + y), ("sub", x - y), ("mul", x * y), ("div", x / y)):
        got = r.float().to(dtype).view(torch.uint8).numpy().astype(np.int64)
        want = numpy_op(op, ALL_A, ALL_B, fmt)
        nan = is_nan(want, fmt)
        assert np.array_equal(is_nan(got, fmt), nan), op
        assert np.array_equal(got[~nan], want[~nan]), op


# --- circuits ---------------------------------------------------------------------------------

def _unit(op, fmt, profile):
    if fmt == "fp8_e4m3":
        return build_fp8_unit(op, fmt, profile.units)
    return build_fp_unit(op, fmt, profile.units, "ieee")


def _check_exhaustive(op, fmt, profile):
    unit = _unit(op, fmt, profile)
    if op == "sqrt":
        a, b = np.arange(256), None
        inputs = {"a": a.tolist()}
    else:
        a, b = ALL_A, ALL_B
        inputs = {"a": a.tolist(), "b": b.tolist()}
        if op in ("add", "sub"):
            inputs["sub"] = [int(op == "sub")] * len(a)
    out = simulate(unit, inputs)
    if op == "cmp":
        values = fp8_values(fmt)
        x, y = values[a], values[b]
        with np.errstate(invalid="ignore"):
            want = {"lt": x < y, "gt": x > y, "eq": x == y, "unordered": np.isnan(x) | np.isnan(y)}
        for port, expected in want.items():
            assert np.array_equal(np.array(out[port], dtype=bool), expected), port
        return len(a)
    got = np.array(out["result"])
    want = numpy_op(op, a, b, fmt)
    nan = is_nan(want, fmt)
    assert np.all(got[nan] == FP8_INFO[fmt]["nan"]), "NaN results must be the canonical NaN"
    mismatch = np.flatnonzero(got[~nan] != want[~nan])
    assert mismatch.size == 0, [(int(a[~nan][i]), None if b is None else int(b[~nan][i]),
                                 int(want[~nan][i]), int(got[~nan][i])) for i in mismatch[:5]]
    return len(a)


# e4m3 (this module's circuit) in the fast tests; e5m2 (hwlib.fp's IEEE units, tested there for the
# other formats) in the slow ones
@pytest.mark.parametrize("fmt", ["fp8_e4m3", pytest.param("fp8_e5m2", marks=pytest.mark.slow)])
@pytest.mark.parametrize("op", ["add", "sub", "mul"])
def test_exhaustive_add_sub_mul(op, fmt, generic):
    assert _check_exhaustive(op, fmt, generic) == 65536


@pytest.mark.slow
@FORMATS
@pytest.mark.parametrize("op", ["div", "sqrt", "cmp"])
def test_exhaustive_div_sqrt_cmp(op, fmt, generic):
    assert _check_exhaustive(op, fmt, generic) == (256 if op == "sqrt" else 65536)


@pytest.mark.slow
@pytest.mark.parametrize("design", ["dadda"])
def test_e4m3_mul_other_multipliers(design, generic):
    units = {**generic.units, "mul": {"design": design, "final_adder": "ripple_carry"}}
    unit = build_fp8_unit("mul", "fp8_e4m3", units)
    rng = np.random.default_rng(18)
    a, b = rng.integers(0, 256, 3000), rng.integers(0, 256, 3000)
    got = np.array(simulate(unit, {"a": a.tolist(), "b": b.tolist()})["result"])
    want = numpy_op("mul", a, b, "fp8_e4m3")
    assert np.array_equal(got, want)


def test_e4m3_unit_ports_and_errors():
    unit = E4M3Unit("cmp", "ripple_carry")
    assert {name for name in unit.signature.members} == {"a", "b", "lt", "eq", "gt", "unordered"}
    assert len(E4M3Unit("sqrt", "newton_raphson").result) == 8
    with pytest.raises(ValueError, match="Unknown FP operation"):
        E4M3Unit("fma", "ripple_carry")
    with pytest.raises(ValueError, match="builds fp8_e4m3 units"):
        build_fp8_unit("add", "fp8_e5m2", {"add": {"design": "ripple_carry"}})
    with pytest.raises(cost.CircuitError, match="ieee datapath"):
        fp8_unit("add", "fp8_e4m3", {"add": {"design": "ripple_carry"}}, "minimal")


# --- pricing ----------------------------------------------------------------------------------

def test_unit_spec_routes_e4m3_here_and_keeps_the_bundled_digest(generic):
    e4 = cost.unit_spec("mul", "fp8_e4m3", generic.units, "ieee")
    e5 = cost.unit_spec("mul", "fp8_e5m2", generic.units, "ieee")
    minimal = cost.unit_spec("mul", "fp8_e4m3", generic.units, "minimal")
    assert e4.params["circuit"] == "fp8" and e5.params["circuit"] == "fp"
    assert minimal.params["circuit"] == "fp"
    assert cost.unit_spec("add", "fp32", generic.units, "ieee").params == \
        cost.fp_unit("add", "fp32", generic.units, "ieee").params
    # the FP8 module is outside the digest that keys the built-in tables
    with open(cost.BUNDLED_DIR + "/cmos-generic.json", encoding="utf-8") as f:
        assert json.load(f)["sources"] == _source_digest()


@pytest.mark.slow
def test_profile_with_fp8_formats_synthesizes_on_demand(cache_dir, tmp_path, capsys):
    from tosim.cli import main
    path = tmp_path / "fp8.yaml"
    path.write_text("name: fp8-generic\nextends: cmos-generic\nformats: [fp8_e4m3, fp8_e5m2, fp32]\n")
    profile = hp.load(str(path))
    assert profile.formats[:2] == ["fp8_e4m3", "fp8_e5m2"]
    assert main(["synth", "--profile", str(path), "--formats", "fp8_e4m3", "--ops", "cmp", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["format"], r["op"]) for r in rows] == [("fp8_e4m3", "cmp")]
    assert rows[0]["transistors"] > 0 and rows[0]["depth"] > 0
