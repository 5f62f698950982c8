"""How a profile problem is reported: :class:`ProfileError`, and :class:`Doc`, one YAML file with
the line of every key path, which turns a key path and a message into that error
(``my.yaml:7: units.mul.design: unknown multiplier design ...``)."""
import difflib
from dataclasses import dataclass, field


class ProfileError(Exception):
    """A profile that cannot be used; the message is one line naming file, line and key path."""


ProfileError.__module__ = "hardware_profiles"   # shown as hardware_profiles.ProfileError, its public name


def type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def expected_name(types):
    if not isinstance(types, tuple):
        types = (types,)
    names = {dict: "a mapping", list: "a list", str: "a string", int: "an integer",
             float: "a number", type(None): "null", bool: "true or false"}
    return " or ".join(names[t] for t in types)


def fmt_path(path):
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def suggest(word, choices):
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


@dataclass
class Doc:
    """One YAML file: its data, where each key path sits, and how to name it in messages."""

    display: str                      # file name as shown in messages
    data: object
    lines: dict = field(default_factory=dict)   # key path (tuple of str/int) -> line number
    directory: str = "."
    identity: str = ""                # canonical identity for extends-cycle detection

    def line(self, path):
        path = tuple(path)
        while path:
            key = tuple(str(p) if not isinstance(p, int) else p for p in path)
            if key in self.lines:
                return self.lines[key]
            path = path[:-1]
        return self.lines.get((), 1)

    def error(self, path, message):
        where = f"{self.display}:{self.line(path)}"
        if path:
            return ProfileError(f"{where}: {fmt_path(path)}: {message}")
        return ProfileError(f"{where}: {message}")
