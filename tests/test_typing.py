"""The public functions of the packages carry type hints, and the hints agree with each other
(mypy, when it is installed: it is not a dependency)."""
import importlib
import importlib.util
import inspect
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ["hardware_profiles", "opcount", "calibrate", "tosim"]


def _public_modules(package):
    """The package and, but for tosim (whose other modules are its commands), its public submodules."""
    import pkgutil
    module = importlib.import_module(package)
    yield module
    if package != "tosim":
        for info in pkgutil.iter_modules(module.__path__):
            if not info.name.startswith("_"):
                yield importlib.import_module(f"{package}.{info.name}")


def _public_callables(package):
    for module in _public_modules(package):
        yield from _module_callables(package, module)


def _module_callables(package, module):
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        if inspect.isfunction(obj):
            yield f"{module.__name__}.{name}", obj
        elif inspect.isclass(obj) and obj.__module__.startswith(package):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not inspect.isfunction(member):
                    continue
                yield f"{module.__name__}.{name}.{attr}", member


def _unannotated(fn):
    signature = inspect.signature(fn)
    missing = [p.name for p in signature.parameters.values()
               if p.annotation is inspect.Parameter.empty and p.name not in ("self", "cls")]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


@pytest.mark.parametrize("package", PACKAGES)
def test_public_functions_have_type_hints(package):
    missing = {name: gaps for name, fn in _public_callables(package) if (gaps := _unannotated(fn))}
    assert missing == {}


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed (not a dependency)")
def test_mypy_finds_the_hints_consistent():
    # configuration in pyproject.toml ([tool.mypy]); about 15 s with a warm cache, minutes cold
    done = subprocess.run([sys.executable, "-m", "mypy", *(f"-p{p}" for p in PACKAGES)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:]
