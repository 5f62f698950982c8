"""tosim: the Transistor Operations (TOs) model of deep-learning workloads, in one call.

    >>> import tosim
    >>> result = tosim.score("zoo:resnet18", phase="training", batch=32)   # doctest: +SKIP
    >>> result.tos, result.tos_by_stage, result.complete                     # doctest: +SKIP

:func:`score` and :func:`score_many` (see :mod:`tosim.api`) run the whole pipeline: read and
count a model (opcount), price the counts with a hardware profile's cost table (hwlib), and with
a device turn TOs into joules and gCO2e (calibrate). ``main`` is the ``tosim`` command.
:func:`generate` scores a language model's generation request (prefill and decode steps with a
KV cache; docs/serving.md). ``import tosim`` stays light: the pipeline is imported on first use.
"""
from __future__ import annotations

from typing import Sequence

__all__ = ["score", "score_many", "generate", "GenerationResult", "ScoreResult", "LayerScore", "Scores", "Workload", "ScoreError", "main",
           "__version__"]

_API = {"score", "score_many", "generate", "GenerationResult", "ScoreResult", "LayerScore", "Scores", "Workload", "ScoreError"}


def _version():
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("tosim")
    except PackageNotFoundError:
        return "0+unknown"


def __getattr__(name):
    if name == "__version__":
        return _version()
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'tosim' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _API)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``tosim`` command: parse ``argv`` (default ``sys.argv[1:]``), run it, return the exit status."""
    from .cli import main as _main
    return _main(argv)
