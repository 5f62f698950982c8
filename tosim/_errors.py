"""The error the Python API raises for a bad argument (shown by the CLI as one line, exit 2)."""

__all__ = ["ScoreError"]


class ScoreError(ValueError):
    """A bad argument to :func:`tosim.score` or :func:`tosim.score_many`: an unknown phase or
    device, a bad workload, a model that is neither a source nor a module with example inputs."""


ScoreError.__module__ = "tosim"        # shown as tosim.ScoreError, where users import it from
