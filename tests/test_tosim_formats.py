"""Choosing the number format: --format > the model's own > the profile's default_format, and a
format the profile does not list is an error naming both (issue 18, item 4).

Cost tables come from the fixed fake table (tests.fakes), so no test synthesizes."""
import json

import pytest

import hardware_profiles
import opcount
import tosim
from tests.fakes import FORMAT_COST, OP_COST
from tosim.cli import main

pytestmark = pytest.mark.usefixtures("fixed_costs")

HALF = "name: half\nextends: cmos-generic\nformats: [fp16, fp32]\ndefault_format: fp16\n"


@pytest.fixture
def half(tmp_path):
    path = tmp_path / "half.yaml"
    path.write_text(HALF)
    return str(path)


def _spec(tmp_path, name, top_format=None, layer_format=None):
    lines = ["input: [4]"] + ([f"format: {top_format}"] if top_format else []) + ["layers:"]
    lines.append("  - {type: linear, out: 8" + (f", format: {layer_format}" if layer_format else "") + "}")
    lines += ["  - {type: sigmoid}", "  - {type: linear, out: 2}"]
    path = tmp_path / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _tos(result):
    """Counts x the fake table per layer format, in Python (what the pipeline must print)."""
    return sum(n * OP_COST[op] * FORMAT_COST[layer.format]
               for layer in result.layers for s in opcount.STAGES for op, n in layer.stages[s].items())


def test_a_model_without_format_takes_the_profiles_default(half):
    r = tosim.score("zoo:lenet5", half, per_layer=True)
    assert {layer.format for layer in r.layers} == {"fp16"}
    fp32 = tosim.score("zoo:lenet5", "cmos-generic", per_layer=True)
    assert {layer.format for layer in fp32.layers} == {"fp32"}
    # the same counts, priced in the profile's default format
    assert r.counts == fp32.counts
    assert r.tos == pytest.approx(_tos(r.count_result)) and r.tos == pytest.approx(fp32.tos * 0.5)
    # opcount.count_model applies it too
    counted = opcount.count_model(opcount.load_model("zoo:lenet5"), hardware_profiles.load(half))
    assert set(counted.formats) == {"fp16"}


def test_precedence_flag_then_model_then_default(tmp_path, half):
    none = _spec(tmp_path, "none")
    own = _spec(tmp_path, "own", top_format="fp32")
    mixed = _spec(tmp_path, "mixed", layer_format="fp32")
    assert {lay.format for lay in tosim.score(none, half, per_layer=True).layers} == {"fp16"}
    assert {lay.format for lay in tosim.score(own, half, per_layer=True).layers} == {"fp32"}
    # a layer that names its format keeps it; the others (and the loss) take the default
    layers = tosim.score(mixed, half, per_layer=True, phase="validation").layers
    assert [(lay.name, lay.format) for lay in layers] == [("linear_0", "fp32"), ("sigmoid_1", "fp16"),
                                                          ("linear_2", "fp16"), ("loss", "fp16")]
    # --format wins over both
    assert {lay.format for lay in tosim.score(own, half, per_layer=True, format="fp16").layers} == {"fp16"}
    assert {lay.format for lay in tosim.score(mixed, half, per_layer=True, format="fp16").layers} == {"fp16"}


def test_with_default_format_keeps_named_formats(tmp_path):
    model = opcount.load_model(_spec(tmp_path, "mixed", layer_format="bf16"))
    assert not model.format_given and [lay.format_given for lay in model.layers] == [True, False, False]
    out = opcount.with_default_format(model, "fp16")
    assert [lay.format for lay in out.layers] == ["bf16", "fp16", "fp16"] and out.format == "fp16"
    # a second profile's default replaces the first (the stand-in stays a stand-in)
    assert [lay.format for lay in opcount.with_default_format(out, "fp64").layers] == ["bf16", "fp64", "fp64"]
    assert opcount.with_default_format(opcount.with_format(model, "fp32"), "fp16").format == "fp32"
    with pytest.raises(opcount.ModelError):
        opcount.with_default_format(model, "fp12")


def test_hf_config_without_dtype_takes_the_default(tmp_path, half):
    cfg = {"model_type": "gpt2", "n_embd": 16, "n_head": 2, "n_layer": 1, "vocab_size": 50, "n_positions": 8}
    plain = tmp_path / "config.json"
    plain.write_text(json.dumps(cfg))
    assert set(tosim.score(str(plain), half).count_result.formats) == {"fp16"}
    typed = tmp_path / "typed" / "config.json"
    typed.parent.mkdir()
    typed.write_text(json.dumps(dict(cfg, torch_dtype="float32")))
    assert set(tosim.score(str(typed), half).count_result.formats) == {"fp32"}


def test_unlisted_model_format_is_one_line_exit_2(tmp_path, half, capsys):
    wide = _spec(tmp_path, "wide", top_format="fp64")
    assert main(["count", wide, "--profile", half]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tosim: error: ")
    assert "wide.yaml" in err and "fp64" in err and "'half'" in err and "fp16, fp32" in err
    with pytest.raises(opcount.ModelError, match="fp64, which profile 'half' does not list"):
        tosim.score(wide, half)


def test_unlisted_format_flag_is_a_usage_error(tmp_path, half, capsys):
    for argv in (["count", "zoo:lenet5", "--format", "fp64"], ["score", "zoo:lenet5", "--format", "bf16"],
                 ["count", "zoo:lenet5", "--phase", "training", "--master-format", "fp64"]):
        assert main(argv + ["--profile", half]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not among the formats of profile 'half' (fp16, fp32)" in err
    with pytest.raises(tosim.ScoreError, match="format bf16 is not among"):
        tosim.score("zoo:lenet5", half, format="bf16")


def test_a_batch_keeps_going_past_an_unlisted_format(tmp_path, half, capsys):
    wide = _spec(tmp_path, "wide", top_format="fp64")
    out = tmp_path / "rows.json"
    assert main(["score", "zoo:lenet5", wide, "--profile", half, "--out", str(out)]) == 1
    rows = json.loads(out.read_text())
    assert rows[0]["error"] is None and rows[0]["tos"] > 0
    assert "fp64, which profile 'half' does not list" in rows[1]["error"]
