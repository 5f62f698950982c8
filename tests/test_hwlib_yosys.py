import json
import re
import warnings

import pytest
from amaranth import Module
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwlib import _yosys
from hwlib._yosys import YosysError, YosysResult, YosysWarning, run, yosys_version
from hwlib.cells import FullAdder


class AndGate(wiring.Component):
    def __init__(self):
        super().__init__({"a": In(1), "b": In(1), "y": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a & self.b)
        return m


@pytest.fixture(scope="module")
def and_rtlil():
    return rtlil.convert(AndGate(), name="top")


def test_version():
    version = yosys_version()
    assert re.match(r"^Yosys \d+\.\d+", version)
    assert yosys_version() is version  # asked once per process


def test_run_returns_output_files_and_log(and_rtlil):
    result = run(and_rtlil, "hierarchy -top top\nproc\ntechmap\nstat\nwrite_json out.json",
                 outputs=["out.json"])
    assert isinstance(result, YosysResult)
    assert "Executing JSON backend" in result.log
    module = json.loads(result.outputs["out.json"])["modules"]["top"]
    assert sorted(module["ports"]) == ["a", "b", "y"]
    assert [cell["type"] for cell in module["cells"].values()] == ["$_AND_"]


def test_run_hierarchical_design():
    result = run(rtlil.convert(FullAdder(), name="top"),
                 "hierarchy -top top\nproc\nflatten\ntechmap\nopt\nwrite_json n.json",
                 outputs=["n.json"])
    cells = json.loads(result.outputs["n.json"])["modules"]["top"]["cells"].values()
    assert sorted(cell["type"] for cell in cells) == [
        "$_AND_", "$_AND_", "$_OR_", "$_XOR_", "$_XOR_"]


def test_optional_outputs(and_rtlil):
    result = run(and_rtlil, "write_rtlil here.il", optional_outputs=["here.il", "absent.json"])
    assert set(result.outputs) == {"here.il"}
    assert "module \\top" in result.outputs["here.il"]


def test_error_carries_yosys_message(and_rtlil):
    with pytest.raises(YosysError, match=r"^Module `nope' not found!$") as info:
        run(and_rtlil, "hierarchy -top nope")
    assert info.value.message == "Module `nope' not found!"
    assert "Executing HIERARCHY pass" in info.value.log


def test_error_for_unknown_command(and_rtlil):
    with pytest.raises(YosysError, match=r"^No such command: frobnicate "):
        run(and_rtlil, "frobnicate")


def test_error_when_output_missing(and_rtlil):
    with pytest.raises(YosysError, match=r"^Yosys did not write the output file 'x\.json'$"):
        run(and_rtlil, "proc", outputs=["x.json"])


def test_warning_becomes_python_warning(and_rtlil):
    with pytest.warns(YosysWarning, match=r'^Selection "nonexist" did not match any module\.$'):
        run(and_rtlil, "select -list nonexist")


def test_no_warning_for_clean_run(and_rtlil):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(and_rtlil, "proc\nopt")


def test_bad_arguments(and_rtlil):
    with pytest.raises(TypeError, match=r"^RTLIL must be a string, not None$"):
        run(None, "proc")
    with pytest.raises(ValueError, match=r"^Output file name must be a plain file name, "
                                         r"not '\.\./x'$"):
        run(and_rtlil, "proc", outputs=["../x"])
    with pytest.raises(ValueError, match=r"^Output file name must be a plain file name, "
                                         r"not 'design\.il'$"):
        run(and_rtlil, "proc", outputs=["design.il"])


def test_error_message_parsing():
    assert _yosys._error_message("x\nERROR: boom\n", "", 1) == "boom"
    assert _yosys._error_message("x\nERROR: boomERROR: boom", "", 1) == "boom"
    assert _yosys._error_message("", "ERROR: from stderr\n", 1) == "from stderr"
    assert _yosys._error_message("", "trap\n", 3) == "Yosys exited with status 3: trap"
