"""Argument parsing for the ``tosim`` command; each sub-command lives in a ``cmd_*`` module.

A command module exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a
callable ``run(args) -> int``. User mistakes are raised as :class:`CommandError` (or as one of the
packages' input-error classes) and printed as one line ``tosim: error: ...`` with exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
import warnings
from typing import Sequence

__all__ = ["main", "CommandError", "COMMAND_MODULES"]

COMMAND_MODULES = [
    "tosim.cmd_profile",
    "tosim.cmd_synth",
    "tosim.cmd_count",
    "tosim.cmd_zoo",
    "tosim.cmd_score",
    "tosim.cmd_sweep",
    "tosim.cmd_explore",
    "tosim.cmd_fit",
    "tosim.cmd_measure",
]


class CommandError(Exception):
    """A user's mistake: bad arguments or bad input. Printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CommandError(message)


#: The input-error class of each package: printed as one line, never a traceback.
_INPUT_ERRORS = [("hardware_profiles", "ProfileError"), ("opcount", "ModelError"),
                 ("hwlib", "CircuitError"), ("calibrate", "MeasurementError"), ("tosim._errors", "ScoreError"),
                 ("hwlib._yosys", "YosysError"), ("hardware_profiles.files", "InputFileError")]


def _input_errors():
    """The input-error classes of the packages imported so far (a package that raised one is
    imported), so that ``tosim --help`` loads none of them."""
    errors = [CommandError]
    for module_name, attr in _INPUT_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(getattr(module, attr, None), type):
            errors.append(getattr(module, attr))
    return tuple(errors)


def _is_input_error(exc):
    return isinstance(exc, _input_errors())


class _Version(argparse.Action):
    """``--version``: the installed distribution's version (read only when asked)."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        import tosim
        print(f"tosim {tosim.__version__}")
        parser.exit(0)


def build_parser():
    parser = _Parser(prog="tosim", description="Gate-level hardware cost simulator for deep-learning energy "
                     "(Transistor Operations model).")
    parser.add_argument("--version", action=_Version, help="print tosim's version and exit")
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
        print(f"tosim: warning: {printable(text)}", file=sys.stderr)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text):
    """``text`` with control characters (terminal escape sequences from a model or file name)
    written as escapes (``\x1b``); tabs and newlines kept."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))


class _PrintableStream:
    """Standard output as the commands write it, control characters escaped: a name read from
    an input never reaches the terminal as an escape sequence. JSON is unaffected (its encoder
    escapes them already)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._stream.write(printable(text))

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tosim`` command; returns the exit status. While it runs, every input file read
    is recorded (so that no output overwrites one), warnings are printed as one line and
    control characters on standard output are escaped."""
    from hardware_profiles import files as _read
    stdout = sys.stdout
    with _read.track_reads(), warnings.catch_warnings():
        warnings.showwarning = _WarningPrinter()
        sys.stdout = _PrintableStream(stdout)
        try:
            return _main(argv)
        finally:
            sys.stdout = stdout


def _main(argv):
    argv = sys.argv[1:] if argv is None else list(argv)
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
        with warnings.catch_warnings():
            # the commands print INCOMPLETE themselves; the Python API's IncompleteModelWarning
            # would repeat it as a raw warning line
            warnings.filterwarnings("ignore", message=".*: the count is incomplete: ")
            return int(args.func(args) or 0)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("tosim: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_input_error(exc):
            raise
        print(f"tosim: error: {printable(' '.join(str(exc).splitlines()))}", file=sys.stderr)
        return 2


def sub_names(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()
