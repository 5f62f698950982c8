"""``tosim count --depth N``: counts rolled up by module path (layer names split at '.'), text
and JSON, with the INCOMPLETE note kept."""
import json

import pytest

import opcount
from tosim.cli import main

pytestmark = pytest.mark.usefixtures("fixed_costs")  # tests.fakes.fake_costs, no synthesis (conftest)

SPEC = """name: tiny
input: [6]
layers:
  - {type: embedding, vocab: 11, dim: 4, name: emb}
  - {type: lstm, hidden: 5, name: enc.lstm}
  - {type: linear, out: 5, name: enc.fc}
  - {type: foo, out_shape: [6, 5], name: enc.odd}
  - {type: linear, out: 11, name: head}
"""


def test_count_depth_text_and_json(tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    assert main(["count", str(path), "--depth", "1", "--phase", "training", "--batch", "2",
                 "--profile", "li2022"]) == 0
    text = capsys.readouterr().out
    result = opcount.count_model(opcount.load_model(str(path)), "li2022", phase="training", batch=2)
    assert [line.split()[0] for line in text.splitlines()[4:8]] == ["emb", "enc", "head", "loss"]
    enc = result.by_module(1)["enc"]
    assert enc["layers"] == 3 and enc["macs"] == sum(layer.macs["forward"] + layer.macs["backward"]
                                                      for layer in result.layers[1:4])
    assert f"{enc['macs']:,}" in text.split("enc (!)")[1].splitlines()[0]
    assert "INCOMPLETE: 1 layer(s)" in text and "enc.odd (foo): unknown layer type" in text
    assert main(["count", str(path), "--depth", "0", "--json", "--profile", "li2022"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [m["module"] for m in out["modules"]] == ["tiny"] and out["modules"][0]["macs"] == out["macs"]
    assert out["complete"] is False


def test_count_depth_rejects_negative(tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    assert main(["count", str(path), "--depth", "-1"]) == 2
    assert "--depth" in capsys.readouterr().err


def test_score_marks_incomplete_with_exit_status_zero(tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    assert main(["score", str(path), "--profile", "li2022"]) == 0
    out = capsys.readouterr().out
    assert "tiny (!)" in out and "(!) INCOMPLETE: some layers could not be fully counted" in out
