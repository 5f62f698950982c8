import json
import os
import subprocess
import sys
import textwrap

import pytest

import hardware_profiles as hp
from hwlib import CircuitError, _pricer, cost
from hwlib.adders import CarrySelectAdder, KoggeStoneAdder, RippleCarryAdder
from hwlib.cells import FullAdder
from hwlib.cost import (Cache, CacheWarning, Cost, Pricer, compare_designs, cost_table, count,
                        integer_unit)
from hwlib.multipliers import BoothWallaceMultiplier
from hwlib.synth import cell_instances, elaborate, synthesize

#: li2022 section II.B.1 cites a 64-bit Booth-Wallace multiplier at about 90k transistors.
PAPER_BOOTH_WALLACE_64 = 90_000


pytestmark = pytest.mark.usefixtures("cache_dir")  # an empty synthesis cache per test (conftest)


def _mapping_gates(technology):
    return {k: v for k, v in technology["gates"].items() if k != "BUF"}


# --- counting modes ---------------------------------------------------------------------------

@pytest.mark.parametrize("width", [1, 8, 24])
def test_structural_ripple_carry_is_the_papers_composition(li2022, width):
    # li2022 section II.B.1: FP32's 24-bit significand adder = 23 full adders + 1 half adder.
    cells = li2022.technology["cells"]
    assert cells["full_adder"] == 10
    result = count(RippleCarryAdder(width, carry_in=False, subtract=False), li2022.technology)
    assert result.counting == "structural"
    assert result.cells == ({"full_adder": width - 1, "half_adder": 1} if width > 1
                            else {"half_adder": 1})
    assert result.gates == {}  # no glue logic at all
    assert result.transistors == (width - 1) * 10 + cells["half_adder"]
    # depth is the fully mapped circuit's: one gate level per bit of the carry chain
    full = synthesize(RippleCarryAdder(width, carry_in=False, subtract=False),
                      _mapping_gates(li2022.technology))
    assert result.depth == full.depth == width


def test_structural_glue_is_priced_by_gates(li2022):
    # add/subtract mode: b ^ sub on every bit and c0 = sub | cin are glue outside the cells
    result = count(RippleCarryAdder(8), li2022.technology)
    gates = li2022.technology["gates"]
    assert result.cells == {"full_adder": 8}
    assert result.gates == {"OR": 1, "XOR": 8}
    assert result.transistors == 8 * 10 + 8 * gates["XOR"] + gates["OR"] == 118


def test_structural_counts_cells_as_written(li2022):
    # the elaboration behind structural counting sees the same cells as cell_instances
    for build in (lambda: BoothWallaceMultiplier(6), lambda: CarrySelectAdder(8)):
        assert elaborate(build()).cells == cell_instances(build())
    # a lone cell is all cell, no glue
    result = count(FullAdder(), li2022.technology)
    assert result.cells == {"full_adder": 1} and result.gates == {}
    assert result.transistors == 10 and result.depth >= 2


def test_structural_needs_every_cell_priced(li2022):
    technology = {**li2022.technology,
                  "cells": {k: v for k, v in li2022.technology["cells"].items() if k != "mux2"}}
    with pytest.raises(CircuitError, match=r"^The profile's technology prices no mux2 cell, "
                                           r"but the circuit uses 9 of them$"):
        count(CarrySelectAdder(8, carry_in=False, subtract=False), technology)


def test_synthesized_counts_every_gate(generic):
    result = count(KoggeStoneAdder(8, carry_in=False, subtract=False), generic.technology)
    full = synthesize(KoggeStoneAdder(8, carry_in=False, subtract=False),
                      _mapping_gates(generic.technology))
    assert result == Cost(transistors=full.transistors, gates=full.gates, depth=full.depth,
                          counting="synthesized")
    assert result.cells == {}
    assert result.transistors == sum(n * generic.technology["gates"][g]
                                     for g, n in result.gates.items())


def test_technology_is_checked():
    with pytest.raises(ValueError, match=r"^Counting mode must be one of synthesized, "
                                         r"structural, not 'exact'$"):
        Pricer({"counting": "exact", "gates": {"NOT": 2, "NAND": 4}})
    with pytest.raises(ValueError, match=r"^Structural counting needs cell costs "
                                         r"\(a 'cells' mapping\)$"):
        Pricer({"counting": "structural", "gates": {"NOT": 2, "NAND": 4}})


def test_one_gate_cost_change_moves_total_by_count_times_change(tmp_path, generic):
    path = tmp_path / "xor13.yaml"
    path.write_text(textwrap.dedent("""\
        schema: 1
        name: xor13
        extends: cmos-generic
        technology:
          gates: {XOR: 13}
        """))
    custom = hp.load(str(path))
    assert generic.technology["gates"]["XOR"] == 12
    spec = integer_unit("add", "kogge_stone", 16)
    base = Pricer(generic.technology).price(spec)
    changed = Pricer(custom.technology).price(spec)
    assert changed.gates == base.gates and changed.depth == base.depth
    assert base.gates["XOR"] > 0
    assert changed.transistors - base.transistors == base.gates["XOR"] * (13 - 12)


def test_kogge_stone_is_shallower_and_larger_than_ripple_carry(generic):
    rows = compare_designs("add", [32, 64], generic, ["ripple_carry", "kogge_stone"])
    by = {(r.design, r.width): r for r in rows}
    for width in (32, 64):
        ripple, kogge = by["ripple_carry", width], by["kogge_stone", width]
        assert kogge.cost.depth < ripple.cost.depth
        assert kogge.cost.transistors > ripple.cost.transistors
        assert ripple.cost.depth == width
        assert kogge.adp == kogge.cost.transistors * kogge.cost.depth


def test_unit_parameters_are_checked(generic):
    with pytest.raises(CircuitError, match=r"^Unknown design 'kogge' for unit 'add'; expected "
                                           r"one of ripple_carry, .*, sklansky$"):
        integer_unit("add", "kogge", 8)
    with pytest.raises(CircuitError, match=r"^Unknown unit kind 'pow'; expected one of "
                                           r"add, mul, div, sqrt$"):
        integer_unit("pow", "ripple_carry", 8)
    with pytest.raises(CircuitError, match=r"^Unit width must be a positive integer, not 0$"):
        integer_unit("add", "ripple_carry", 0)
    with pytest.raises(CircuitError, match=r"^Width must be a positive integer, not -8$"):
        compare_designs("add", [8, -8], generic)
    with pytest.raises(CircuitError, match=r"^Unknown design 'wallace' for unit 'mul'; "
                                           r"expected one of booth_wallace, array, dadda$"):
        compare_designs("mul", [8], generic, ["wallace"])


def test_inner_units_follow_the_profile(li2022):
    # li2022's multiplier has a ripple-carry final adder; a digit-recurrence root takes only
    # the adder option of the sqrt unit.
    mul = integer_unit("mul", "booth_wallace", 8, li2022.units["mul"])
    assert mul.params["options"] == {"final_adder": "ripple_carry"}
    root = integer_unit("sqrt", "digit_recurrence", 8, li2022.units["sqrt"])
    assert root.params["options"] == {"adder": "ripple_carry"}
    nr = integer_unit("sqrt", "newton_raphson", 8, li2022.units["sqrt"])
    assert nr.params["options"] == {"adder": "ripple_carry", "multiplier": "booth_wallace",
                                    "seed_bits": 8}
    rows = compare_designs("mul", [4], li2022, ["array"])
    assert rows[0].cost.cells["full_adder"] > 0


# --- cost tables ------------------------------------------------------------------------------

def test_cost_table_fp_datapath(li2022):
    assert cost.fp_units_available()
    rows = cost_table(li2022, ["fp16"], ["add"])
    assert [(r.format, r.op, r.design, r.circuit) for r in rows] == [
        ("fp16", "add", "ripple_carry", "minimal")]
    # the minimal FP16 adder: an 11-bit adder, 10 full adders and 1 half adder
    assert rows[0].cost.cells == {"full_adder": 10, "half_adder": 1}
    assert rows[0].cost.transistors == 10 * 10 + 6
    record = rows[0].to_json()
    assert {k: record[k] for k in ("format", "op", "design", "transistors", "gates")} == {
        "format": "fp16", "op": "add", "design": "ripple_carry", "transistors": 106,
        "gates": 0}


def test_cost_table_integer_fallback(li2022, monkeypatch):
    monkeypatch.setattr(cost, "fp_units_available", lambda: False)
    rows = cost_table(li2022, ["bf16"], ["sub", "mul"])
    assert [(r.format, r.op, r.design, r.circuit) for r in rows] == [
        ("bf16", "sub", "ripple_carry", "integer"), ("bf16", "mul", "booth_wallace", "integer")]
    # bf16 has 7 fraction bits: an 8-bit adder and an 8 x 8 multiplier
    assert rows[0].cost.transistors == 7 * 10 + 6
    assert rows[1].cost.transistors == count(integer_unit(
        "mul", "booth_wallace", 8, li2022.units["mul"]).build(), li2022.technology).transistors


def test_cost_table_names_are_checked(li2022):
    with pytest.raises(CircuitError, match=r"^Unknown format 'fp8'; expected one of "
                                           r"fp16, bf16, fp32, fp64, fp8_e4m3, fp8_e5m2, tf32, int8, int4, int32$"):
        cost_table(li2022, ["fp8"], ["add"])
    with pytest.raises(CircuitError, match=r"^Unknown op 'pow'; expected one of "
                                           r"add, sub, mul, div, sqrt, cmp$"):
        cost_table(li2022, ["fp16"], ["pow"])


class _Recorder:
    def __init__(self):
        self.events = []

    def start(self, index, total, label):
        self.events.append(("start", index, total, label))

    def done(self, index, total, label, seconds):
        assert seconds >= 0
        self.events.append(("done", index, total, label))


def test_progress_reports_only_synthesized_circuits(generic):
    recorder = _Recorder()
    compare_designs("add", [4], generic, ["ripple_carry", "sklansky"], progress=recorder)
    assert recorder.events == [("start", 1, 2, "ripple_carry 4-bit"),
                               ("done", 1, 2, "ripple_carry 4-bit"),
                               ("start", 2, 2, "sklansky 4-bit"),
                               ("done", 2, 2, "sklansky 4-bit")]
    recorder = _Recorder()
    compare_designs("add", [4, 6], generic, ["ripple_carry", "sklansky"], progress=recorder)
    # the 4-bit circuits are cached now: only the 6-bit ones (3 and 4 of 4) are reported
    assert [e[:3] for e in recorder.events] == [("start", 3, 4), ("done", 3, 4),
                                                ("start", 4, 4), ("done", 4, 4)]


def test_progress_is_told_the_plan_in_start_order(generic):
    class Planner(_Recorder):
        def planned(self, work):
            self.events.append(("planned", [index for index, _ in work], all(w > 0 for _, w in work)))

    recorder = Planner()
    compare_designs("add", [3, 7], generic, ["ripple_carry"], progress=recorder)
    # widest first: the 7-bit adder (position 2) starts before the 3-bit one (position 1)
    assert recorder.events == [("planned", [2, 1], True),
                               ("start", 2, 2, "ripple_carry 7-bit"), ("done", 2, 2, "ripple_carry 7-bit"),
                               ("start", 1, 2, "ripple_carry 3-bit"), ("done", 1, 2, "ripple_carry 3-bit")]
    recorder = Planner()
    compare_designs("add", [3, 7], generic, ["ripple_carry"], progress=recorder)
    assert recorder.events == []      # all cached: nothing planned


# --- cache ------------------------------------------------------------------------------------

def test_default_cache_dir(monkeypatch, tmp_path):
    assert cost.default_cache_dir() == os.environ["TOSIM_CACHE_DIR"]
    monkeypatch.delenv("TOSIM_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cost.default_cache_dir() == str(tmp_path / ".cache" / "tosim")
    assert Cache().directory == str(tmp_path / ".cache" / "tosim")


def _entries(directory, kind):
    folder = directory / f"v{cost.CACHE_FORMAT_VERSION}" / kind
    return sorted(folder.iterdir()) if folder.exists() else []


def test_cache_miss_then_hit(cache_dir, generic, monkeypatch):
    spec = integer_unit("add", "brent_kung", 8)
    pricer = Pricer(generic.technology)
    assert pricer.cache.directory == str(cache_dir)
    assert pricer.lookup(spec) is None
    first = pricer.price(spec)
    assert pricer.computed == 1
    assert pricer.cache.stats.writes == 2
    assert len(_entries(cache_dir, "result")) == len(_entries(cache_dir, "index")) == 1
    entry = json.loads(_entries(cache_dir, "result")[0].read_text())
    assert entry["data"]["cost"] == first.to_json()
    assert entry["data"]["params"] == spec.params
    assert entry["data"]["yosys"].startswith("Yosys ")

    # a fresh process's view: nothing is synthesized or even elaborated
    def fail(*args):
        raise AssertionError("synthesized although cached")
    monkeypatch.setattr(_pricer, "_count_elaborated", fail)
    monkeypatch.setattr(_pricer, "_elaborate", fail)
    again = Pricer(generic.technology)
    assert again.lookup(spec) == first
    assert again.price(integer_unit("add", "brent_kung", 8)) == first
    assert again.computed == 0
    assert again.cache.stats.hits == 4 and again.cache.stats.invalid == 0


def test_cache_keys_follow_technology_and_parameters(cache_dir, generic):
    spec = integer_unit("add", "ripple_carry", 4)
    Pricer(generic.technology).price(spec)
    cheaper = {**generic.technology, "gates": {**generic.technology["gates"], "NAND": 3}}
    pricer = Pricer(cheaper)
    assert pricer.lookup(spec) is None
    pricer.price(spec)
    assert pricer.lookup(integer_unit("add", "ripple_carry", 5)) is None
    assert len(_entries(cache_dir, "result")) == 2


def test_changed_sources_reuse_results_through_the_rtlil(cache_dir, generic, monkeypatch):
    spec = integer_unit("add", "sklansky", 8)
    first = Pricer(generic.technology).price(spec)
    monkeypatch.setattr(_pricer, "_source_digest", lambda: "0" * 64)
    pricer = Pricer(generic.technology)
    assert pricer.lookup(spec) is None  # the index does not know the new sources
    assert pricer.price(spec) == first  # same RTLIL: the result entry is found again
    assert pricer.computed == 0
    assert len(_entries(cache_dir, "index")) == 2
    assert len(_entries(cache_dir, "result")) == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "checksum", "stale", "other_key"])
def test_corrupt_or_stale_entry_is_rebuilt(cache_dir, generic, damage):
    spec = integer_unit("add", "ripple_carry", 6)
    first = Pricer(generic.technology).price(spec)
    (path,) = _entries(cache_dir, "result")
    text = path.read_text()
    entry = json.loads(text)
    if damage == "truncate":
        path.write_text(text[:len(text) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\xff\xfe\x00 not json")
    elif damage == "checksum":
        entry["data"]["cost"]["transistors"] += 1
        path.write_text(json.dumps(entry))
    elif damage == "stale":
        entry["tosim_cache"] = cost.CACHE_FORMAT_VERSION - 1
        path.write_text(json.dumps(entry))
    else:
        entry["key"] = "f" * 64
        path.write_text(json.dumps(entry))
    pricer = Pricer(generic.technology)
    assert pricer.lookup(spec) is None
    assert pricer.cache.stats.invalid == 1
    assert pricer.price(spec) == first
    assert pricer.computed == 1
    check = Cache()
    assert check.read("result", path.stem)["cost"] == first.to_json()
    assert check.stats.invalid == 0


def test_unwritable_cache_warns_and_still_prices(tmp_path, generic):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    pricer = Pricer(generic.technology, Cache(blocker))
    with pytest.warns(CacheWarning, match=r"^Could not write the cost cache entry "):
        result = pricer.price(integer_unit("add", "ripple_carry", 3))
    assert result.depth == 3
    assert Pricer(generic.technology, cache=False).price(
        integer_unit("add", "ripple_carry", 3)) == result


def test_cache_key_and_kind_are_checked(cache_dir):
    cache = Cache()
    with pytest.raises(ValueError, match=r"^Cache entry kind must be one of index, result, "
                                         r"not 'cost'$"):
        cache.read("cost", "0" * 64)
    with pytest.raises(ValueError, match=r"^Cache key must be a SHA-256 hex digest, "
                                         r"not '\.\./x'$"):
        cache.write("result", "../x", {})


_WRITER = """\
import os, sys
from hwlib.cost import Cache
cache = Cache(sys.argv[1])
for i in range(int(sys.argv[3])):
    cache.write("result", sys.argv[2], {"writer": os.getpid(), "i": i, "pad": "x" * 50000})
"""


def test_two_processes_writing_one_entry(cache_dir):
    key = "ab" * 32
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(cache_dir), key, "150"])
               for _ in range(2)]
    reader = Cache(cache_dir)
    seen = set()
    while any(w.poll() is None for w in writers):
        data = reader.read("result", key)
        if data is not None:
            seen.add(data["writer"])
    assert [w.wait() for w in writers] == [0, 0]
    data = reader.read("result", key)
    assert data["pad"] == "x" * 50000 and data["i"] == 149
    assert reader.stats.invalid == 0  # a reader never saw a partial entry
    assert reader.stats.hits >= 1
    # no temporary files are left behind
    assert [p.name for p in (cache_dir / f"v{cost.CACHE_FORMAT_VERSION}" / "result").iterdir()] \
        == [f"{key}.json"]


# --- the paper's 64-bit multiplier ------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("profile_name", ["li2022", "cmos-generic"])
def test_booth_wallace_64_is_in_the_order_of_the_papers_90k(profile_name, capsys):
    profile = hp.load(profile_name)
    (row,) = compare_designs("mul", [64], profile, ["booth_wallace"])
    ratio = row.cost.transistors / PAPER_BOOTH_WALLACE_64
    with capsys.disabled():
        print(f"\n64-bit booth_wallace under {profile_name}: {row.cost.transistors} transistors, "
              f"{row.cost.gate_count} gates, cells {row.cost.cells}, depth {row.cost.depth}; "
              f"{ratio:.2f} x the paper's 90k")
    assert 0.2 <= ratio <= 5


def test_elaboration_runs_with_a_deep_stack_and_restores_limits():
    import threading
    old_limit, old_stack = sys.getrecursionlimit(), threading.stack_size()
    elab = elaborate(RippleCarryAdder(4, carry_in=False, subtract=False))
    assert elab.cells == {"full_adder": 3, "half_adder": 1}
    assert (sys.getrecursionlimit(), threading.stack_size()) == (old_limit, old_stack)
    with pytest.raises(TypeError, match=r"^Component must be an "
                                        r"amaranth.lib.wiring.Component, not 'top'$"):
        elaborate("top")


@pytest.mark.slow
def test_elaboration_survives_deep_combinational_paths():
    # Amaranth's cycle check recurses along combinational paths; cmos-small's fp64 divider (a
    # restoring array of ripple-carry rows) overflows Python's default recursion limit there.
    from hwlib.fp import build_fp_unit
    profile = hp.load("cmos-small")
    elab = elaborate(build_fp_unit("div", "fp64", profile.units, profile.datapath))
    assert elab.cells["full_adder"] > 2000


def test_longest_circuits_start_first(generic):
    # Uncached circuits are taken widest first (same width: in the order asked for).
    recorder = _Recorder()
    compare_designs("add", [4, 6], generic, ["ripple_carry", "sklansky"], progress=recorder)
    assert [e[:2] for e in recorder.events if e[0] == "start"] == [
        ("start", 3), ("start", 4), ("start", 1), ("start", 2)]
    mul = integer_unit("mul", "array", 8, generic.units["mul"])
    add = integer_unit("add", "ripple_carry", 32)
    assert cost._work_estimate(mul) > cost._work_estimate(add)
    fp = [cost.fp_unit(op, fmt, generic.units, generic.datapath)
          for fmt in ("fp16", "fp64") for op in ("add", "sqrt")]
    assert sorted(fp, key=cost._work_estimate) == [fp[0], fp[2], fp[1], fp[3]]


def _custom(tmp_path, text):
    path = tmp_path / "custom.yaml"
    path.write_text(textwrap.dedent(text))
    return hp.load(str(path))


def test_cost_tables_share_one_pool(generic, tmp_path):
    # Two profiles with the same technology: the circuit both use is synthesized once, and
    # each table equals the profile's own cost_table.
    other = _custom(tmp_path, """\
        extends: cmos-generic
        name: other
        units:
          cmp: {design: ripple_carry}
    """)
    recorder = _Recorder()
    tables = cost.cost_tables([generic, other], ["fp16"], ["add", "cmp"], progress=recorder,
                              bundled=False)
    assert list(tables) == ["cmos-generic", "other"]
    labels = [e[3] for e in recorder.events if e[0] == "done"]
    assert len(labels) == 3   # add shared; two different cmp circuits
    assert all(label.startswith(("cmos-generic: fp16", "other: fp16")) for label in labels)
    for profile in (generic, other):
        assert tables[profile.name] == cost_table(profile, ["fp16"], ["add", "cmp"],
                                                  bundled=False)
    assert tables["cmos-generic"][0].cost == tables["other"][0].cost
    assert tables["cmos-generic"][1].cost != tables["other"][1].cost


def test_cost_tables_failures_keep_the_rest(generic, tmp_path, monkeypatch):
    real = Pricer._price_uncached

    def failing(self, spec):
        if spec.params.get("op") == "cmp":
            raise cost._yosys.YosysError("ERROR: no luck", "log")
        return real(self, spec)

    monkeypatch.setattr(Pricer, "_price_uncached", failing)
    failures = []
    tables = cost.cost_tables([generic], ["fp16"], ["add", "cmp"], failures=failures,
                              bundled=False)
    assert [(r.format, r.op) for r in tables["cmos-generic"]] == [("fp16", "add")]
    assert [(name, fmt, op) for name, fmt, op, _ in failures] == [("cmos-generic", "fp16", "cmp")]
    assert failures[0][3].message.startswith("cmos-generic: fp16 cmp (")
    assert failures[0][3].message.endswith(": ERROR: no luck")
    with pytest.raises(cost._yosys.YosysError, match=r"^cmos-generic: fp16 cmp \(.*no luck$"):
        cost.cost_tables([generic], ["fp16"], ["cmp"], bundled=False)
