"""The disk cache of counted zoo rows (tosim._count_cache): a second count of a zoo model reads
the same row back, and anything the row depends on (the sources, the profile, the settings)
or a damaged entry makes it count again. Nothing is timed."""
import copy
import dataclasses
import os
import shutil

import pytest

import opcount
from tosim import _count_cache, _pipeline

MODELS = ["zoo:li2022-mlp-10-sigmoid", "zoo:lenet5", "zoo:gpt2"]


def _count(source, profile, phase="inference", batch=1, load=None, **options):
    return _pipeline.count_source(source, profile, phase, batch, options.pop("per_layer", False), load=load,
                                  **options)


def _entries(cache_dir):
    folder = cache_dir / "counts"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _fresh(source, profile, monkeypatch, **settings):
    with monkeypatch.context() as m:
        m.setenv("TOSIM_COUNT_CACHE", "off")
        return _count(source, profile, **settings)


@pytest.mark.parametrize("settings", [{}, {"phase": "training", "batch": 3},
                                      {"phase": "training", "batch": 2, "load": {"format": "bf16", "loss": "ce"}}])
def test_a_cached_row_is_the_counted_row(generic, cache_dir, monkeypatch, settings):
    fresh = [_fresh(source, generic, monkeypatch, **settings) for source in MODELS]
    written = [_count(source, generic, **settings) for source in MODELS]
    assert len(_entries(cache_dir)) == len(MODELS)
    with monkeypatch.context() as m:
        m.setattr(opcount, "count_model", lambda *a, **k: pytest.fail("counted, not read from the cache"))
        read = [_count(source, generic, **settings) for source in MODELS]
    for a, b, c in zip(fresh, written, read):
        assert a["error"] is None
        # repr: the same types too (tuples stay tuples, ints ints), and the same field order
        assert repr(a) == repr(b) == repr(c)


def test_the_cached_rows_price_and_score_the_same(generic, cache_dir, monkeypatch):
    import tosim
    with monkeypatch.context() as m:
        m.setenv("TOSIM_COUNT_CACHE", "off")
        reference = [r.to_dict() for r in tosim.score_many(MODELS, generic, phase="training", batch=2)]
    first = [r.to_dict() for r in tosim.score_many(MODELS, generic, phase="training", batch=2)]
    second = [r.to_dict() for r in tosim.score_many(MODELS, generic, phase="training", batch=2)]
    assert reference == first == second
    assert len(_entries(cache_dir)) == len(MODELS)


def test_each_setting_has_its_own_entry(generic, cache_dir, monkeypatch):
    source = MODELS[0]
    settings = [{}, {"batch": 2}, {"phase": "training"}, {"phase": "validation"}, {"load": {"format": "fp16"}},
                {"phase": "training", "load": {"optimizer": "adam"}}, {"phase": "training", "load": {"loss": "ce"}}]
    rows = [_count(source, generic, **s) for s in settings]
    assert len(_entries(cache_dir)) == len(settings)
    for s, row in zip(settings, rows):
        assert repr(_count(source, generic, **s)) == repr(row) == repr(_fresh(source, generic, monkeypatch, **s))


def test_a_changed_recipe_is_counted_again(generic, cache_dir, monkeypatch):
    source = "zoo:li2022-mlp-10-sigmoid"
    before = _count(source, generic, phase="training")
    data = copy.deepcopy(generic.data)
    data["recipes"]["sigmoid"]["forward"] = {"exp": 1, "add": 2, "div": 1}
    changed = dataclasses.replace(generic, data=data, _expanded={})
    after = _count(source, changed, phase="training")
    assert after["counts_all"] != before["counts_all"]
    assert repr(after) == repr(_fresh(source, changed, monkeypatch, phase="training"))
    assert len(_entries(cache_dir)) == 2
    # and the first profile still reads its own
    assert repr(_count(source, generic, phase="training")) == repr(before)


def test_other_sources_leave_the_old_entries_unused(generic, cache_dir, monkeypatch, tmp_path):
    source = MODELS[1]
    _count(source, generic)
    monkeypatch.setattr(_count_cache, "_DIGEST", ["another tree"])
    _count(source, generic)
    assert len(_entries(cache_dir)) == 2          # a new entry: the old one was not read
    # the digest covers opcount, hardware_profiles and the row's layout: an edit anywhere changes it
    root = os.path.dirname(os.path.dirname(os.path.abspath(_count_cache.__file__)))
    copy_root = tmp_path / "tree"
    for folder in ("opcount", "hardware_profiles"):
        shutil.copytree(os.path.join(root, folder), copy_root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (copy_root / "tosim").mkdir()
    for name in ("_pipeline.py", "_count_cache.py"):
        shutil.copy(os.path.join(root, "tosim", name), copy_root / "tosim" / name)
    same = _count_cache.sources_digest(str(copy_root))
    assert same == _count_cache.sources_digest(root)
    for edited in ("opcount/_formulas.py", "hardware_profiles/loader.py", "tosim/_pipeline.py"):
        path = copy_root / edited
        text = path.read_text()
        path.write_text(text + "\n# edited\n")
        assert _count_cache.sources_digest(str(copy_root)) != same, edited
        path.write_text(text)


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic", "empty", "other key"])
def test_a_damaged_entry_is_counted_again_and_rewritten(generic, cache_dir, monkeypatch, damage):
    source = MODELS[0]
    good = _count(source, generic)
    (entry,) = _entries(cache_dir)
    blob = entry.read_bytes()
    if damage == "flip":
        blob = blob[:-20] + bytes([blob[-20] ^ 1]) + blob[-19:]
    elif damage == "truncate":
        blob = blob[:len(blob) // 2]
    elif damage == "magic":
        blob = b"X" + blob[1:]
    elif damage == "empty":
        blob = b""
    else:   # a well-formed entry stored under another key (as if two keys shared a file name)
        import hashlib
        import marshal
        key = _count_cache.entry_key(source, generic, "inference", 2, None)
        payload = marshal.dumps((key, marshal.loads(blob[len(_count_cache._MAGIC) + 32:])[1]))
        blob = _count_cache._MAGIC + hashlib.sha256(payload).digest() + payload
    entry.write_bytes(blob)
    key = _count_cache.entry_key(source, generic, "inference", 1, None)
    assert _count_cache.read(key) is None
    assert repr(_count(source, generic)) == repr(good)       # counted again...
    assert repr(_count_cache.read(key) | {"source": source}) == repr(good)    # ...and the entry rewritten


def test_rows_that_need_the_count_itself_are_not_cached(generic, cache_dir):
    import hardware_profiles
    _count(MODELS[0], generic, per_layer=True)
    _count(MODELS[0], generic, keep=True)
    _count(MODELS[0], hardware_profiles.load("horowitz45"))          # a memory: section
    _count({"name": "m", "input": [8], "layers": [{"type": "linear", "out": 4}]}, generic)   # not the zoo
    assert _entries(cache_dir) == []
    with_mac = dataclasses.replace(generic, data=dict(generic.data, units=dict(generic.units, mac={})))
    assert _count_cache.entry_key(MODELS[0], with_mac, "inference", 1, None) is None
    assert _count_cache.entry_key(MODELS[0], generic, "inference", 1, {"format": object()}) is None


def test_the_cache_can_be_turned_off(generic, cache_dir, monkeypatch):
    monkeypatch.setenv("TOSIM_COUNT_CACHE", "off")
    row = _count(MODELS[0], generic)
    assert row["error"] is None and _entries(cache_dir) == []


def test_a_cache_that_cannot_be_written_is_skipped(generic, tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("TOSIM_CACHE_DIR", str(blocked))
    row = _count(MODELS[0], generic)
    assert repr(row) == repr(_fresh(MODELS[0], generic, monkeypatch))


def test_entries_of_other_sources_are_removed_once_old(generic, cache_dir, monkeypatch):
    import time
    folder = cache_dir / "counts"
    folder.mkdir(parents=True)
    old, recent = folder / "0123456789abcdef-old.bin", folder / "0123456789abcdef-recent.bin"
    for path in (old, recent):
        path.write_bytes(b"an entry of other sources")
    week = time.time() - _count_cache.STALE_AFTER - 60
    os.utime(old, (week, week))
    monkeypatch.setattr(_count_cache, "_PRUNED", [])
    _count(MODELS[0], generic)
    names = {p.name for p in _entries(cache_dir)}
    assert old.name not in names and recent.name in names
    assert any(name.startswith(_count_cache.sources_digest()[:16]) for name in names)


def test_an_entry_keeps_every_field_of_the_row(generic, cache_dir):
    row = _count(MODELS[1], generic)
    key = _count_cache.entry_key(MODELS[1], generic, "inference", 1, None)
    _count_cache.write(key, dict(row, later_field=[1, (2, 3)]))     # a field added to rows later
    back = _count_cache.read(key)
    assert back["later_field"] == [1, (2, 3)] and back["source"] is None and back["counts"] is None
    assert list(back) == list(row) + ["later_field"]
    _count_cache.write(key, dict(row, unkept=object()))              # marshal keeps no objects: not stored
    assert "unkept" not in _count_cache.read(key)
