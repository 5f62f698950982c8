"""hardware_profiles._yaml: libyaml's parser where available gives the same data as PyYAML's
pure-Python one, and the same messages for a syntax error."""
import glob
import os

import pytest
import yaml

from hardware_profiles import _yaml, loader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(glob.glob(os.path.join(ROOT, "hardware_profiles", "**", "*.yaml"), recursive=True)
               + glob.glob(os.path.join(ROOT, "tests", "fixtures", "**", "*.yaml"), recursive=True)
               + glob.glob(os.path.join(ROOT, "examples", "**", "*.yaml"), recursive=True))


def _pure(loader_class):
    """PyYAML's pure-Python safe loader with ``loader_class``'s resolvers (no duplicate-key
    check: files with a key given twice are compared by their error only)."""
    cls = type(f"Pure{loader_class.__name__}", (yaml.SafeLoader,), {})
    cls.yaml_implicit_resolvers = loader_class.yaml_implicit_resolvers
    return cls


def test_the_c_parser_is_used_where_pyyaml_has_it():
    assert issubclass(_yaml.UniqueKeyLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert len(FILES) > 20


@pytest.mark.parametrize("loader_class", [_yaml.UniqueKeyLoader, loader._ProfileLoader],
                         ids=["spec", "profile"])
def test_same_data_as_the_pure_python_parser(loader_class):
    pure = _pure(loader_class)
    same = 0
    for path in FILES:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            want = yaml.load(text, Loader=pure)
        except yaml.YAMLError as exc:
            with pytest.raises(yaml.YAMLError) as got:
                yaml.load(text, Loader=loader_class)
            assert str(got.value) == str(exc), path
            continue
        try:
            got = yaml.load(text, Loader=loader_class)
        except yaml.constructor.ConstructorError as exc:
            assert "duplicate key" in exc.problem, path
            continue
        assert got == want, path
        same += 1
    assert same > 20


@pytest.mark.parametrize("text", ["a: {b: 1 c: 2}\n", "a: [1, 2\n", "a: b: c\n", "\tx: 1\n"])
def test_syntax_errors_in_the_pure_python_parser_words(text):
    with pytest.raises(yaml.MarkedYAMLError) as want:
        yaml.load(text, Loader=yaml.SafeLoader)
    with pytest.raises(yaml.MarkedYAMLError) as got:
        yaml.load(text, Loader=_yaml.UniqueKeyLoader)
    assert (got.value.problem, got.value.problem_mark.line) == (want.value.problem,
                                                                want.value.problem_mark.line)
