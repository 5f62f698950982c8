"""The files under examples/ agree with the scripts that generate them."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_script(relative):
    path = os.path.join(ROOT, relative)
    spec = importlib.util.spec_from_file_location("_example_" + os.path.basename(os.path.dirname(path)).replace("-", "_"),
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_li2022_measurements_match_their_generator():
    # the CSV holds energies generated from today's TOs: a count change leaves it stale until
    # `python examples/synthetic-li2022-mlp/make_measurements.py` is rerun
    script = _load_script("examples/synthetic-li2022-mlp/make_measurements.py")
    with open(script.OUTPUT, encoding="utf-8") as fh:
        on_disk = fh.read()
    generated = script.measurements_text()
    assert generated.count("\n") == 456            # 5 comment lines, the header, 45 models x 10 runs
    if on_disk != generated:
        stale = next(i for i, (a, b) in enumerate(zip(on_disk.splitlines() + [""], generated.splitlines()), 1)
                     if a != b)
        raise AssertionError(f"{script.OUTPUT}:{stale} is stale; rerun make_measurements.py")
