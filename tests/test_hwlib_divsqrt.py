# amaranth: UnusedElaboratable=no
"""The shared divide/square-root unit (hwlib.units.divsqrt.FPDivSqrt: one radix-2 SRT
recurrence for a / b and sqrt(a)) bit-exact against references, and its use by a profile.

float16, float32 and float64 results come from numpy itself (test_hwlib_fp's ``reference``);
bfloat16 and fp8_e5m2 results are computed in float64 and rounded to the format (innocuous
double rounding for / and sqrt: 53 >= 2 F + 2); fp8_e4m3 results from hwlib.units.fp8's exact
model. ``reference_divsqrt`` (rationals) is checked against numpy. The circuit runs through
hwlib.netsim: all fp8_e5m2 pairs and roots here, fp16 (every root, 10**5 seeded quotients),
bf16 (every root), bf16 and fp32 (10**5 seeded each, plus specials, subnormals and ties), fp8_e4m3
and fp64 in the slow tests.
"""
import numpy as np
import pytest

import hardware_profiles as hp
from hardware_profiles import ProfileError
from hwlib import CircuitError, cost
from hwlib.fp import FPFormat
from hwlib.netsim import simulate
from hwlib.units.divsqrt import (FPDivSqrt, build_divsqrt_unit, divsqrt_unit, exact_sqrt_pattern,
                                 reference_divsqrt)
from hwlib.units.fma import decode_value
from hwlib.units.fp8 import reference_fp8
from tests.test_hwlib_fp import is_nan_bits, reference, round_to_format, special_values, vectors

UNITS = {"divsqrt": {"design": "srt_radix2", "adder": "ripple_carry"}}


def run(unit, op, a, b=None):
    a = np.asarray(a, dtype=np.uint64)
    b = a if b is None else np.asarray(b, dtype=np.uint64)
    got = simulate(unit, {"a": a.tolist(), "b": b.tolist(), "sqrt": [int(op == "sqrt")] * len(a)})
    return np.array(got["result"], dtype=np.uint64)


def check(got, want, fmt, a, b=None):
    nan_want = is_nan_bits(want, fmt)
    ok = np.where(nan_want, got == FPFormat(fmt).qnan, got == want)
    bad = np.nonzero(~ok)[0]
    assert len(bad) == 0, [(hex(a[i]), None if b is None else hex(b[i]), hex(want[i]), hex(got[i]))
                           for i in bad[:5]]


def float64_values(fmt):
    """float64 value of every pattern of an 8-bit format."""
    out = []
    for bits in range(256):
        v = decode_value(bits, fmt)
        out.append(-0.0 if v == 0 and bits >> 7 else float(v))
    return np.array(out)


def rounded_reference(op, fmt, a, b, values=None):
    """Expected patterns computed in float64 and rounded once to ``fmt``."""
    x = values[a] if values is not None else np.asarray(a)
    with np.errstate(all="ignore"):
        r = np.sqrt(x) if op == "sqrt" else x / (values[b] if values is not None else b)
    return round_to_format(r, fmt)


@pytest.fixture(scope="module")
def e5m2_unit():
    return build_divsqrt_unit("fp8_e5m2", UNITS)


def test_fp8_e5m2_every_quotient_and_root(e5m2_unit):
    values = float64_values("fp8_e5m2")
    a = np.repeat(np.arange(256), 256)
    b = np.tile(np.arange(256), 256)
    check(run(e5m2_unit, "div", a, b), rounded_reference("div", "fp8_e5m2", a, b, values), "fp8_e5m2", a, b)
    r = np.arange(256)
    check(run(e5m2_unit, "sqrt", r), rounded_reference("sqrt", "fp8_e5m2", r, None, values), "fp8_e5m2", r)


@pytest.mark.slow
def test_fp8_e4m3_saturating_against_the_fp8_model():
    unit = build_divsqrt_unit("fp8_e4m3", UNITS)
    rng = np.random.default_rng(181)
    special = [0x00, 0x80, 0x01, 0x81, 0x07, 0x08, 0x38, 0x7E, 0xFE, 0x7F, 0xFF]
    a = np.concatenate([rng.integers(0, 256, 3000), np.repeat(special, len(special))])
    b = np.concatenate([rng.integers(0, 256, 3000), np.tile(special, len(special))])
    want = np.array([reference_fp8("div", int(x), int(y), "fp8_e4m3") for x, y in zip(a, b)], dtype=np.uint64)
    assert (run(unit, "div", a, b) == want).all()
    r = np.arange(256)
    want = np.array([reference_fp8("sqrt", int(x), None, "fp8_e4m3") for x in r], dtype=np.uint64)
    assert (run(unit, "sqrt", r) == want).all()


@pytest.mark.parametrize("fmt", ["fp16", "fp32", "fp64"])
def test_exact_reference_matches_numpy(fmt):
    for op in ("div", "sqrt"):
        a, b = vectors(op, fmt, seed=180 + len(fmt), n_random=300, n_moderate=300)
        want = reference(op, fmt, a, b)
        got = np.array([reference_divsqrt(op, int(x), None if b is None else int(b[i]), fmt)
                        for i, x in enumerate(a)], dtype=np.uint64)
        check(got, want, fmt, a, b)


def test_exact_root_rounding_cases():
    from fractions import Fraction
    assert exact_sqrt_pattern(Fraction(4), "fp32") == 0x40000000
    assert exact_sqrt_pattern(Fraction(2), "fp16") == np.float16(np.sqrt(2.0)).view(np.uint16)
    smallest = Fraction(1, 2 ** 1074)                       # the smallest fp64 subnormal
    assert exact_sqrt_pattern(smallest, "fp64") == np.sqrt(np.float64(5e-324)).view(np.uint64)
    with pytest.raises(ValueError, match="Unknown operation 'mul'"):
        reference_divsqrt("mul", 0x3C00, 0x3C00, "fp16")


def test_ports_spec_and_errors():
    unit = FPDivSqrt("bf16")
    assert [len(getattr(unit, p)) for p in ("a", "b", "sqrt", "result")] == [16, 16, 1, 16]
    spec = divsqrt_unit("fp32", UNITS)
    assert spec.design == "divsqrt_srt_radix2" and spec.params["circuit"] == "fp_divsqrt"
    assert spec.label == "fp32 div+sqrt (shared srt_radix2, ieee)"
    with pytest.raises(CircuitError, match="ieee datapath unit, not 'minimal'"):
        divsqrt_unit("fp32", UNITS, "minimal")
    with pytest.raises(CircuitError, match="no 'divsqrt' unit"):
        divsqrt_unit("fp32", {})
    with pytest.raises(CircuitError, match="Unknown option\\(s\\) 'seed_bits' for unit 'divsqrt'"):
        divsqrt_unit("fp32", {"divsqrt": {"design": "srt_radix2", "seed_bits": 8}})
    with pytest.raises(CircuitError, match="Unknown FP format 'int8'"):
        divsqrt_unit("int8", UNITS)


def test_div_and_sqrt_of_a_profile_share_one_spec(generic):
    units = dict(generic.units, divsqrt={"design": "srt_radix2", "adder": "carry_lookahead"})
    div = cost.unit_spec("div", "fp16", units, "ieee")
    sqrt = cost.unit_spec("sqrt", "fp16", units, "ieee")
    assert div.params == sqrt.params and div.params["circuit"] == "fp_divsqrt"
    assert cost.unit_spec("mul", "fp16", units, "ieee").params["circuit"] == "fp"
    # without the unit, nothing changes
    assert cost.unit_spec("div", "fp16", generic.units, "ieee").params["circuit"] == "fp"


def _load(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return hp.load(str(path))


def test_profile_validation(tmp_path):
    p = _load(tmp_path, "name: shared\nextends: cmos-generic\nunits:\n  divsqrt: {design: srt_radix2}\n")
    assert p.units["divsqrt"] == {"design": "srt_radix2"} and "div" in p.units
    with pytest.raises(ProfileError, match=r"units\.divsqrt\.design: unknown divide/square-root design 'srt_radix4'"):
        _load(tmp_path, "name: x\nextends: cmos-generic\nunits:\n  divsqrt: {design: srt_radix4}\n")
    with pytest.raises(ProfileError, match=r"units\.divsqrt\.adder: unknown adder design 'ripple'"):
        _load(tmp_path, "name: x\nextends: cmos-generic\nunits:\n  divsqrt: {design: srt_radix2, adder: ripple}\n")
    with pytest.raises(ProfileError, match=r"units\.divsqrt: missing key 'design'"):
        _load(tmp_path, "name: x\nextends: cmos-generic\nunits:\n  divsqrt: {adder: ripple_carry}\n")
    with pytest.raises(ProfileError, match=r"units\.divsqrt: the shared divide/square-root unit is an IEEE"):
        _load(tmp_path, "name: x\nextends: li2022\nunits:\n  divsqrt: {design: srt_radix2}\n")


# --- wider formats (slow: seconds of Yosys and 10**5 vectors each) -----------------------------

def seeded(op, fmt, seed, n=100_000):
    """10**5 seeded random patterns, plus test_hwlib_fp's specials, subnormals, ties and
    exponent extremes for ``op``."""
    f = FPFormat(fmt)
    rng = np.random.default_rng(seed)
    a, b = vectors(op, fmt, seed)
    ra = rng.integers(0, 1 << f.width, n, dtype=np.uint64)
    if op == "sqrt":
        return np.concatenate([a, ra]), None
    return np.concatenate([a, ra]), np.concatenate([b, rng.integers(0, 1 << f.width, n, dtype=np.uint64)])


@pytest.mark.slow
def test_fp16_every_root_and_seeded_quotients():
    unit = FPDivSqrt("fp16")
    r = np.arange(1 << 16, dtype=np.uint64)
    check(run(unit, "sqrt", r), reference("sqrt", "fp16", r, None), "fp16", r)
    a, b = seeded("div", "fp16", 1816)
    check(run(unit, "div", a, b), reference("div", "fp16", a, b), "fp16", a, b)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["bf16", "fp32"])
def test_seeded(fmt):
    unit = FPDivSqrt(fmt, adder="kogge_stone")
    for op in ("div", "sqrt"):
        a, b = seeded(op, fmt, 1832 + len(op))
        want = reference(op, fmt, a, b)
        check(run(unit, op, a, b), want, fmt, a, b)
    if fmt == "bf16":                       # and every bf16 root
        r = np.arange(1 << 16, dtype=np.uint64)
        check(run(unit, "sqrt", r), reference("sqrt", "bf16", r, None), "bf16", r)


@pytest.mark.slow
def test_fp64_seeded():
    unit = FPDivSqrt("fp64", adder="kogge_stone")
    for op in ("div", "sqrt"):
        a, b = vectors(op, "fp64", seed=1864 + len(op))
        check(run(unit, op, a, b), reference(op, "fp64", a, b), "fp64", a, b)



def test_example_fpu_profile_prices_div_and_sqrt_on_the_shared_unit():
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "profiles",
                        "cmos-fpu.yaml")
    p = hp.load(path)
    assert p.units["mac"] == {"design": "fused"}
    specs = [cost.unit_spec(op, "fp32", p.units, p.datapath) for op in ("div", "sqrt")]
    assert specs[0].params == specs[1].params
    assert specs[0].params["units"] == {"divsqrt": {"design": "srt_radix2", "adder": "carry_lookahead"}}



def test_activity_controls_name_the_sqrt_input():
    from hwlib.activity._unit import _controls
    assert _controls("sqrt") == {"sub": 0, "sqrt": 1} and _controls("div") == {"sub": 0, "sqrt": 0}
    assert _controls("sub") == {"sub": 1, "sqrt": 0}


@pytest.mark.slow
def test_switching_activity_runs_sqrt_on_the_shared_unit(generic):
    """hwlib.activity runs the shared unit's sqrt with its ``sqrt`` input at 1: the root and the
    quotient of the same seeded operands toggle differently."""
    from hwlib import activity as act
    profile = type("P", (), {"units": dict(generic.units, divsqrt=UNITS["divsqrt"]), "datapath": "ieee",
                             "technology": generic.technology})()
    div = act.fp_activity("div", "fp8_e5m2", profile, vectors=64)
    sqrt = act.fp_activity("sqrt", "fp8_e5m2", profile, vectors=64)
    assert div.design == sqrt.design == "divsqrt_srt_radix2"
    assert div.toggles_per_op != sqrt.toggles_per_op


def test_cost_table_synthesizes_the_shared_unit_once(generic, cache_dir):
    """div and sqrt rows of a profile with units.divsqrt: one synthesis, the same count."""
    units = dict(generic.units, divsqrt={"design": "srt_radix2", "adder": "ripple_carry"})
    profile = type("P", (), {"units": units, "datapath": "ieee", "technology": generic.technology,
                             "formats": ["fp8_e5m2"], "name": "shared"})()
    started = []
    progress = type("Progress", (), {"start": lambda self, i, n, label: started.append(label),
                                     "done": lambda self, *a: None})()
    rows = cost.cost_table(profile, ops=["div", "sqrt"], progress=progress, bundled=False)
    assert started == ["fp8_e5m2 div+sqrt (shared srt_radix2, ieee)"]
    assert [(r.op, r.design) for r in rows] == [("div", "divsqrt_srt_radix2"), ("sqrt", "divsqrt_srt_radix2")]
    assert rows[0].cost == rows[1].cost and rows[0].cost.transistors > 0
