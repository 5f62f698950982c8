"""The package layering: the import direction between packages (hardware_profiles imports
none; opcount, calibrate and hwlib only hardware_profiles; tosim all), and no module imports a
private module or a private name of another package (issue 17: its public names are the
interface)."""
import ast
import functools
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("hardware_profiles", "hwlib", "opcount", "calibrate", "tosim")
ALLOWED_IMPORTS = {
    "hardware_profiles": set(),
    "opcount": {"hardware_profiles"},
    "calibrate": {"hardware_profiles"},
    "hwlib": {"hardware_profiles"},
    "tosim": set(PACKAGES),
}
#: Private imports kept on purpose, each with its reason.
KNOWN = {
    # Amaranth 0.5 has no public name for a port direction (see the comment in hwlib/synth.py)
    ("hwlib/synth.py", "amaranth.hdl._ir"),
}


@functools.lru_cache(maxsize=None)
def _modules():
    """``(package, path relative to the root, imports)`` of every module, parsed once."""
    return tuple((package, rel, tuple(_imports(path))) for package, rel, path in _files())


def _files():
    for package in PACKAGES:
        for folder, dirs, files in os.walk(os.path.join(ROOT, package)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    yield package, os.path.relpath(path, ROOT).replace(os.sep, "/"), path


def _imports(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, [alias.name for alias in node.names]


def test_no_private_imports_across_packages():
    found = []
    for package, rel, imports in _modules():
        for module, names in imports:
            top = module.split(".")[0]
            if top == package:
                continue
            private = [part for part in module.split(".")[1:] if part.startswith("_")]
            private += [name for name in names if name.startswith("_")]
            if private and (rel, module) not in KNOWN:
                found.append(f"{rel}: {module} {names}")
    assert found == []


def test_import_direction_between_packages():
    found = []
    for package, rel, imports in _modules():
        for module, _names in imports:
            top = module.split(".")[0]
            if top in PACKAGES and top != package and top not in ALLOWED_IMPORTS[package]:
                found.append(f"{rel}: {module}")
    assert found == []
