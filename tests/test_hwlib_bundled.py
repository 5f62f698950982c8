"""The cost tables shipped in hwlib/tables/ equal fresh synthesis and are what scoring uses."""
import json
import os

import pytest

import hardware_profiles as hp
from hwlib import cost

TABLES = cost.BUNDLED_DIR


def _table(name):
    with open(os.path.join(TABLES, f"{name}.json"), encoding="utf-8") as f:
        return json.load(f)


class _Recorder:
    def __init__(self):
        self.started = []

    def start(self, index, total, label):
        self.started.append(label)

    def done(self, index, total, label, seconds):
        pass


@pytest.mark.parametrize("name", hp.builtin_names())
def test_every_builtin_profile_has_a_current_table(name):
    table = _table(name)
    assert table["sources"] == cost._source_digest(), (
        f"hwlib/tables/{name}.json was made from other hwlib sources: regenerate the bundled "
        f"tables with `python -m hwlib._bundle --jobs 2`")
    prof = hp.load(name)
    assert [(r["format"], r["op"]) for r in table["rows"]] == [
        (fmt, op) for fmt in prof.formats for op in hp.BASIC_OPS]


@pytest.mark.parametrize("name", hp.builtin_names())
def test_scoring_reads_the_bundled_table_without_synthesis(name):
    progress = _Recorder()
    rows = cost.cost_table(hp.load(name), cache=False, progress=progress)
    assert progress.started == []
    shipped = {(r["format"], r["op"]): r["cost"] for r in _table(name)["rows"]}
    assert {(r.format, r.op): r.cost.to_json() for r in rows} == shipped


def _distinct_builtins():
    """One built-in profile per distinct (technology, units, datapath): the rest share tables."""
    seen, names = set(), []
    for name in hp.builtin_names():
        prof = hp.load(name)
        key = json.dumps([prof.technology, prof.units, prof.datapath], sort_keys=True)
        if key not in seen:
            seen.add(key)
            names.append(name)
    return names


@pytest.mark.slow
def test_bundled_tables_equal_fresh_synthesis(tmp_path):
    """Re-synthesize fp16 and fp32 of each distinct built-in profile from scratch (empty
    cache), all in one pool."""
    profiles = [hp.load(name) for name in _distinct_builtins()]
    fresh = cost.cost_tables(profiles, formats=["fp16", "fp32"], cache=cost.Cache(str(tmp_path)),
                             bundled=False, jobs=2)
    for prof in profiles:
        shipped = {(r["format"], r["op"]): r["cost"] for r in _table(prof.name)["rows"]}
        assert len(fresh[prof.name]) == 12
        for row in fresh[prof.name]:
            assert row.cost.to_json() == shipped[(row.format, row.op)], (prof.name, row.format,
                                                                        row.op)


def test_unbundled_tables_synthesize_in_workers_too(tmp_path):
    """bundled=False must reach worker processes: every circuit is synthesized."""
    progress = _Recorder()
    rows = cost.cost_table(hp.load("li2022"), formats=["bf16"], ops=["add", "cmp"],
                           cache=cost.Cache(str(tmp_path)), bundled=False, jobs=2, progress=progress)
    assert sorted(progress.started) == sorted(
        cost.fp_unit(op, "bf16", hp.load("li2022").units, "minimal").label for op in ("add", "cmp"))
    shipped = {(r["format"], r["op"]): r["cost"] for r in _table("li2022")["rows"]}
    assert [r.cost.to_json() for r in rows] == [shipped[("bf16", "add")], shipped[("bf16", "cmp")]]
