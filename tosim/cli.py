"""Argument parsing for the ``tosim`` command; each sub-command lives in a ``cmd_*`` module.

A command module exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a
callable ``run(args) -> int``. User mistakes are raised as :class:`CommandError` (or as one of the
packages' input-error classes) and printed as one line ``tosim: error: ...`` with exit status 2.
"""
import argparse
import importlib
import sys
import warnings

__all__ = ["main", "CommandError", "COMMAND_MODULES"]

COMMAND_MODULES = [
    "tosim.cmd_profile",
    "tosim.cmd_synth",
    "tosim.cmd_count",
    "tosim.cmd_score",
    "tosim.cmd_sweep",
    "tosim.cmd_fit",
    "tosim.cmd_measure",
]


class CommandError(Exception):
    """A user's mistake: bad arguments or bad input. Printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CommandError(message)


def _input_errors():
    """The input-error classes of the packages: printed as one line, never a traceback."""
    errors = [CommandError]
    for module_name, attr in [("hardware_profiles", "ProfileError"),
                              ("opcount", "ModelError"),
                              ("hwlib", "CircuitError"),
                              ("calibrate", "MeasurementError"),
                              ("hwlib", "YosysError"),
                              ("hardware_profiles._read", "InputFileError")]:
        try:
            errors.append(getattr(importlib.import_module(module_name), attr))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def build_parser():
    parser = _Parser(prog="tosim", description="Gate-level hardware cost simulator for deep-learning energy "
                     "(Transistor Operations model).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


class _WarningPrinter:
    """Warnings as one line each, ``tosim: warning: ...`` (not Python's two lines with a source
    line); a cache that cannot be written is said once per run, however many entries failed."""

    def __init__(self):
        self.cache_said = False

    def __call__(self, message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        if category.__name__ == "CacheWarning":
            if self.cache_said:
                return
            self.cache_said = True
            text += "; results are computed but not cached (set TOSIM_CACHE_DIR to a writable folder)"
        print(f"tosim: warning: {text}", file=sys.stderr)


def main(argv=None):
    """Run the ``tosim`` command; returns the exit status. While it runs, every input file read
    is recorded (so that no output overwrites one) and warnings are printed as one line."""
    from hardware_profiles import _read
    with _read.track_reads(), warnings.catch_warnings():
        warnings.showwarning = _WarningPrinter()
        return _main(argv)


def _main(argv):
    argv = sys.argv[1:] if argv is None else list(argv)
    errors = _input_errors()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            if args.command is None and not argv:
                # the main job: score the built-in zoo with the default profile
                args = parser.parse_args(["score"]) if "score" in sub_names(parser) else None
            if args is None or not getattr(args, "func", None):
                parser.print_help()
                return 2
        return int(args.func(args) or 0)
    except errors as exc:
        print(f"tosim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("tosim: interrupted", file=sys.stderr)
        return 130


def sub_names(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()
