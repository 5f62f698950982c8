"""The built-in profile cmos-quant: cmos-generic's circuits plus the integer formats, so quantized
models price from its bundled table without synthesis."""
import hardware_profiles as hp
from tosim.cli import main


def test_same_circuits_as_cmos_generic_plus_integer_formats():
    quant, generic = hp.load("cmos-quant"), hp.load("cmos-generic")
    assert quant.units == generic.units and quant.technology == generic.technology
    assert quant.datapath == generic.datapath
    assert set(quant.formats) == {"fp32", "bf16", "fp16", "int8", "int4", "int32"}


def test_quantized_scoring_needs_no_synthesis(cache_dir, capsys):
    assert main(["score", "zoo:lenet5", "--profile", "cmos-quant", "--quantize", "int8", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "synthesizing" not in err
    assert main(["score", "zoo:lenet5", "--profile", "cmos-quant", "--json"]) == 0
    fp32 = capsys.readouterr()
    import json
    int8_tos = json.loads(out)[0]["tos"]
    assert 0 < int8_tos < json.loads(fp32.out)[0]["tos"]
    assert not cache_dir.exists() or not any(cache_dir.rglob("*.json"))
