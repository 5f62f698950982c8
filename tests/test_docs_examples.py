"""The Python examples of the README and the docs run as written (in an empty folder)."""
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as fh:
        return _BLOCK.findall(fh.read())


def _run(page, tmp_path, monkeypatch):
    (code,) = _blocks(page)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__doc_example__"}
    exec(compile(code, page, "exec"), namespace)
    return namespace


def test_every_python_block_is_tested():
    pages = ["README.md"] + [os.path.join("docs", p) for p in sorted(os.listdir(os.path.join(ROOT, "docs")))]
    with_code = {p: len(_blocks(p)) for p in pages if p.endswith(".md") and _blocks(p)}
    assert with_code == {"README.md": 1, "docs/counting.md": 1, "docs/scoring.md": 1, "docs/serving.md": 1}


def test_readme_python_quick_start(tmp_path, monkeypatch, capsys):
    ns = _run("README.md", tmp_path, monkeypatch)
    assert ns["r"].energy_j > 1.71e3 and ns["r"].steps == 2000 * 22 and ns["r"].complete
    assert ns["r"].energy_extrapolated is False and "1.72kJ, 227mg CO2e" in repr(ns["r"])
    assert [f.name for f in ns["results"].failed] == ["no-such-model"]
    assert (tmp_path / "scores.csv").read_text().startswith("name,source,layer,")
    assert (tmp_path / "scores.json").read_text().startswith("[")


def test_scoring_page_python_example(tmp_path, monkeypatch, capsys):
    ns = _run("docs/scoring.md", tmp_path, monkeypatch)
    assert [r.name for r in ns["rows"]] == ["lenet5", "li2022-cnn-2", "missing"] and len(ns["rows"].failed) == 1
    assert capsys.readouterr().out == "unknown phase 'train'; known: inference, validation, training\n"
    assert os.path.exists(tmp_path / "scores.csv") and os.path.exists(tmp_path / "scores.json")


def test_serving_page_python_example(tmp_path, monkeypatch):
    ns = _run("docs/serving.md", tmp_path, monkeypatch)
    assert ns["r"].tos > 0 and ns["r"].curve[1]["token"] == 2


def test_counting_page_python_example(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    ns = _run("docs/counting.md", tmp_path, monkeypatch)
    assert set(ns["result"].by_module(1)) == {"0", "1", "2", "3", "loss"}
