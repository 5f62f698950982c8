"""The integer formats' units (hwlib.units.intfmt): an int op is the profile's integer unit at the
format's width, the same circuit (and cache entry) as ``compare-adders`` prices."""
import pytest

from hwlib import CircuitError
from hwlib.cost import compare_designs, cost_table, integer_unit, unit_spec
from hwlib.units.intfmt import int_unit


def test_specs_are_the_integer_units(generic):
    units = generic.units
    add = unit_spec("add", "int8", units, "ieee")
    assert add.params == integer_unit("add", "carry_lookahead", 8).params
    assert unit_spec("cmp", "int32", units, "minimal").params == integer_unit("add", "carry_lookahead", 32).params
    mul = unit_spec("mul", "int4", units, "ieee")
    assert mul.params == integer_unit("mul", "booth_wallace", 4, {"final_adder": "carry_lookahead",
                                                                  "signed": True}).params
    assert mul.params["options"]["signed"] is True
    assert unit_spec("div", "int8", units, "ieee").params["kind"] == "div"
    assert unit_spec("sqrt", "int8", units, "ieee").params == integer_unit(
        "sqrt", "newton_raphson", 8, units["sqrt"]).params
    assert mul.label == "int4 mul (booth_wallace, 4-bit integer)"
    # tf32 is a floating-point format of hwlib.fp (E = 8, F = 10)
    assert unit_spec("add", "tf32", units, "ieee").params["circuit"] == "fp"


def test_errors(generic):
    with pytest.raises(CircuitError, match=r"^Unknown integer format 'int16'; expected one of int8, int4, int32$"):
        int_unit("add", "int16", generic.units)
    with pytest.raises(CircuitError, match=r"^Unknown op 'pow'"):
        int_unit("pow", "int8", generic.units)


def test_costs_come_from_the_synthesized_integer_units(generic, cache_dir):
    # one small synthesis (a 4-bit adder) in an empty cache; the multiplier's spec is checked above
    rows = {row.op: row for row in cost_table(generic, ["int4"], ["add", "cmp"])}
    assert {row.circuit for row in rows.values()} == {"integer"}
    adder = compare_designs("add", [4], generic, ["carry_lookahead"])[0]
    assert rows["add"].cost == adder.cost == rows["cmp"].cost
    assert rows["add"].cost.transistors > 0 and rows["add"].cost.gates
