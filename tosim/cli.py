"""Argument parsing for the ``tosim`` command; each sub-command lives in a ``cmd_*`` module.

A command module exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a
callable ``run(args) -> int``. User mistakes are raised as :class:`CommandError` (or as one of the
packages' input-error classes) and printed as one line ``tosim: error: ...`` with exit status 2.
"""
import argparse
import importlib
import sys

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


#: The input-error class of each package: printed as one line, never a traceback.
_INPUT_ERRORS = [("hardware_profiles", "ProfileError"), ("opcount", "ModelError"),
                 ("hwlib", "CircuitError"), ("calibrate", "MeasurementError"), ("tosim._errors", "ScoreError")]


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


def main(argv=None):
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
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("tosim: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_input_error(exc):
            raise
        print(f"tosim: error: {exc}", file=sys.stderr)
        return 2


def sub_names(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()
