"""The bounded reader every loader uses (hardware_profiles._read): hostile files are built here,
in tmp_path (FIFOs and links to devices are made by the test, never committed)."""
import json
import os
import re

import pytest
import yaml

import hardware_profiles as hp
from hardware_profiles import _read
from hardware_profiles._yaml import UniqueKeyLoader

BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8))


def _error(match):
    return pytest.raises(_read.InputFileError, match=match)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "p.yaml"
    os.mkfifo(fifo)
    with _error(r"^.*p\.yaml: is a FIFO \(named pipe\), not a regular file$"):
        _read.read_text(str(fifo))


def test_a_link_to_dev_zero_is_refused(tmp_path):
    link = tmp_path / "zero.yaml"
    os.symlink("/dev/zero", link)
    with _error(r"^.*zero\.yaml: is a character device, not a regular file$"):
        _read.read_text(str(link))
    with _error(r"^.*zero\.yaml: is a character device, not a regular file$"):
        _read.check_regular(str(link))


def test_size_nul_and_encoding_limits(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("x" * 101)
    with _error(r"^.*big\.yaml: is 101 bytes, more than the 100 an input may have$"):
        _read.read_text(str(big), limit=100)
    assert _read.read_text(str(big), limit=101) == "x" * 101
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"name: a\nx: \0\n")
    with _error(r"^.*nul\.yaml:2: holds a NUL byte; not a text file$"):
        _read.read_text(str(nul))


def test_billion_laughs_is_measured_without_expanding(tmp_path, monkeypatch):
    # 10^9 values once expanded; the check walks each node once
    with _error(r"^f\.yaml:\d+: expands to more than 2,000,000 values \(aliases used many times over\?\)$"):
        _read.load_yaml(BILLION_LAUGHS, "f.yaml", UniqueKeyLoader)
    # a few aliases are fine, and their values are shared, not copied
    data, node = _read.load_yaml("a: &a [1, 2]\nb: *a\nc: *a\n", "f.yaml", UniqueKeyLoader)
    assert data == {"a": [1, 2], "b": [1, 2], "c": [1, 2]} and data["b"] is data["c"]
    assert _read.node_lines(node)[("c",)] == 3


def test_recursive_alias_depth_and_digits():
    with _error(r"^f\.yaml:1: an alias refers to a value that contains it \(a recursive structure\)$"):
        _read.load_yaml("&a [*a]\n", "f.yaml", UniqueKeyLoader)
    deep = "[" * 100 + "]" * 100
    with _error(rf"^f\.yaml:1: nested more than {_read.MAX_DEPTH} levels deep$"):
        _read.load_yaml(deep, "f.yaml", UniqueKeyLoader)
    with _error(rf"^f\.yaml(:1)?: nested more than {_read.MAX_DEPTH} levels deep$"):
        _read.load_yaml("[" * 5000 + "]" * 5000, "f.yaml", UniqueKeyLoader)
    with _error(rf"^f\.yaml:2: an integer of more than {_read.MAX_DIGITS} digits$"):
        _read.load_yaml("a: 1\nb: " + "9" * 5000 + "\n", "f.yaml", UniqueKeyLoader)


def test_json_bounds():
    with _error(rf"^c\.json: invalid JSON: an integer of more than {_read.MAX_DIGITS} digits$"):
        _read.load_json('{"a": ' + "9" * 5000 + "}", "c.json")
    for constant in ("NaN", "Infinity", "-Infinity"):
        with _error(rf"^c\.json: invalid JSON: {constant} is not a JSON number$"):
            _read.load_json('{"a": ' + constant + "}", "c.json")
    for depth in (100, 100_000):
        with _error(rf"^c\.json: nested more than {_read.MAX_DEPTH} levels deep$"):
            _read.load_json("[" * depth + "]" * depth, "c.json")
    with pytest.raises(json.JSONDecodeError):
        _read.load_json("{", "c.json")
    assert _read.load_json('{"a": [1, 2.5, "x"]}', "c.json") == {"a": [1, 2.5, "x"]}


def test_reads_are_tracked_only_inside_track_reads(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("a: 1\n")
    _read.read_text(str(path))
    assert _read.files_read() == frozenset()
    with _read.track_reads():
        _read.read_text(str(tmp_path / "." / "a.yaml"))
        assert _read.files_read() == {os.path.realpath(path)}
    assert _read.files_read() == frozenset()


@pytest.mark.parametrize("make, message", [
    (lambda p: os.mkfifo(p), "is a FIFO (named pipe), not a regular file"),
    (lambda p: os.symlink("/dev/zero", p), "is a character device, not a regular file"),
    (lambda p: p.write_text(BILLION_LAUGHS), "expands to more than 2,000,000 values"),
    (lambda p: p.write_bytes(b"name: x\0\n"), "holds a NUL byte; not a text file"),
    (lambda p: p.write_text("name: " + "[" * 80 + "]" * 80 + "\n"), "nested more than 64 levels deep"),
])
def test_profile_loader_uses_the_bounded_reader(tmp_path, make, message):
    path = tmp_path / "p.yaml"
    make(path)
    with pytest.raises(hp.ProfileError) as info:
        hp.load_file(str(path))
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path)) and message in text


@pytest.mark.parametrize("key, value, message", [
    ("technology.gates.NAND", 10 ** 30, "transistor cost must be at most 1,000,000, not an integer of 31 digits"),
    ("technology.gates.NOR", 10 ** 400, "p.yaml:4: an integer of more than 40 digits"),
    ("recipes.exp.forward.mul", 10 ** 30, "op count must be at most 1,000,000"),
    ("devices.d.coefficients", [float("inf"), 1.0], "expected a finite number, not inf"),
    ("carbon.grid_gco2_per_kwh", 1e300, "expected a number of magnitude at most 1e+06"),
    ("name", "evil\x1b[31mred", "holds a control character: 'evil\\x1b[31mred'"),
], ids=["gate", "digits", "recipe", "coefficient", "grid", "escape"])
def test_profile_numbers_and_names_are_bounded(tmp_path, key, value, message):
    data = {"extends": "cmos-generic"}
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    if key.startswith("devices"):
        data["devices"]["d"]["feature"] = "tos"
    if key.startswith("recipes"):
        data["recipes"]["exp"]["forward"].update(add=1)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data, width=10 ** 6))
    with pytest.raises(hp.ProfileError, match=re.escape(message)):
        hp.load_file(str(path))


def test_sources_digest_covers_python_sources_only(tmp_path):
    from hardware_profiles.files import sources_digest
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("ignored\n")
    first = sources_digest(str(tmp_path))
    (tmp_path / "notes.txt").write_text("still ignored\n")
    assert sources_digest(str(tmp_path)) == first
    (tmp_path / "b.py").write_text("y = 3\n")
    changed = sources_digest(str(tmp_path))
    assert changed != first
    without_b = sources_digest(str(tmp_path), skip={"b.py"})
    assert without_b != changed
    (tmp_path / "b.py").write_text("y = 4\n")
    assert sources_digest(str(tmp_path), skip={"b.py"}) == without_b
