"""What a plain ``pip install .`` ships: every package folder and its data (read from
pyproject.toml the way setuptools reads it), so that an installed tosim is not missing a
subpackage that an editable install finds on the path."""
import fnmatch
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("hardware_profiles", "hwlib", "opcount", "calibrate", "tosim")

tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")


def _config():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]


def _package_dirs():
    for top in PACKAGES:
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" in files:
                yield os.path.relpath(folder, ROOT).replace(os.sep, ".")


def test_every_package_and_subpackage_is_shipped():
    setuptools = _config()
    assert not isinstance(setuptools.get("packages"), list), "an explicit list leaves subpackages out"
    include = setuptools["packages"]["find"]["include"]
    found = sorted(_package_dirs())
    assert "hwlib.units" in found and "hwlib.activity" in found
    assert [p for p in found if not any(fnmatch.fnmatchcase(p, pattern) for pattern in include)] == []
    for outside in ("tests", "bench", "examples", "docs"):
        assert not any(fnmatch.fnmatchcase(outside, pattern) for pattern in include)


def test_package_data_exists():
    for package, patterns in _config()["package-data"].items():
        for pattern in patterns:
            folder = os.path.join(ROOT, package.replace(".", os.sep))
            matches = [name for name in _walk(folder) if fnmatch.fnmatchcase(name, pattern)]
            assert matches, f"package-data {package}: {pattern} matches no file"


def _walk(folder):
    for here, _dirs, files in os.walk(folder):
        for name in files:
            yield os.path.relpath(os.path.join(here, name), folder).replace(os.sep, "/")
