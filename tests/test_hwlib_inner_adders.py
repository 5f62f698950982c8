# amaranth: UnusedElaboratable=no
"""The adder designs inside MAC units side by side (hwlib.units.inner_adders, ``tosim
compare-adders --unit mac --adders`` and ``--unit fma``): each row is the count of the unit built
with that adder, and the command's errors."""
import json

import pytest

from hwlib import CircuitError, cost
from hwlib.units.fma import FPMAC, fp_mac_unit
from hwlib.units.inner_adders import compare_inner_adders
from hwlib.units.mac import BoothWallaceMAC
from tosim.cli import main


def test_mac_rows_are_the_mac_with_that_final_adder(generic):
    rows = compare_inner_adders("mac", [2], generic, ["ripple_carry", "kogge_stone"], signed=False)
    assert [(r.design, r.point, r.width, r.multiplier) for r in rows] == [
        ("ripple_carry", "uint2*uint2+int32", 2, "booth_wallace"),
        ("kogge_stone", "uint2*uint2+int32", 2, "booth_wallace")]
    direct = cost.count(BoothWallaceMAC(2, 32, signed=False, final_adder="kogge_stone"), generic.technology)
    assert rows[1].cost == direct
    assert rows[0].cost != rows[1].cost
    assert rows[0].to_json()["adp"] == rows[0].cost.transistors * rows[0].cost.depth


def test_fma_command_prices_both_adders_of_the_design(generic, capsys, tmp_path):
    plot = tmp_path / "fma.png"
    assert main(["compare-adders", "--unit", "fma", "--formats", "fp8_e5m2:fp8_e5m2", "--designs",
                 "ripple_carry", "--json", "--plot", str(plot)]) == 0
    [row] = json.loads(capsys.readouterr().out)
    # the profile's FP MAC (booth_wallace, carry_lookahead) with both adders ripple-carry
    units = dict(generic.units, mul={"design": "booth_wallace", "final_adder": "ripple_carry"},
                 add={"design": "ripple_carry"})
    spec = fp_mac_unit("fp8_e5m2", "fp8_e5m2", units)
    assert spec.build().final_adder is spec.build().adder is FPMAC("fp8_e5m2", "fp8_e5m2").adder
    [direct] = cost.fp_mac_table(type("P", (), {"units": units, "technology": generic.technology})(),
                                 [("fp8_e5m2", "fp8_e5m2")])
    assert (row["unit"], row["point"], row["design"]) == ("fma", "fp8_e5m2*fp8_e5m2+fp8_e5m2", "ripple_carry")
    assert row["transistors"] == direct.cost.transistors and row["depth"] == direct.cost.depth
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["--unit", "fma", "--widths", "8"], "--unit fma takes --formats"),
    (["--unit", "fma", "--formats", "bf16"], "expected PRODUCT_FORMAT:ACCUMULATOR_FORMAT"),
    (["--unit", "fma", "--power"], "does not cover --unit fma"),
    (["--unit", "mac", "--adders", "--formats", "bf16:fp32"], "--formats goes with --unit fma"),
    (["--unit", "mac", "--adders", "--designs", "dadda"], "unknown adder design 'dadda'"),
    (["--unit", "add", "--adders"], "--adders goes with --unit mac"),
    (["--unit", "mul", "--formats", "bf16:fp32"], "--formats goes with --unit fma"),
])
def test_command_errors(argv, message, capsys):
    assert main(["compare-adders"] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tosim: error: ") and message in err


def test_unknown_unit_and_multiplier(li2022):
    with pytest.raises(CircuitError, match="Unknown unit 'div'"):
        compare_inner_adders("div", [8], li2022)
    profile = type("P", (), {"units": {"mul": {"design": "wallace"}}, "technology": li2022.technology})()
    with pytest.raises(CircuitError, match="multiplier 'wallace' has no MAC unit"):
        compare_inner_adders("mac", [4], profile)
