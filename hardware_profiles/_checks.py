"""The checks that a profile's values go through: types, choices, known keys, bounded numbers,
printable text. Each raises the :class:`~hardware_profiles._doc.ProfileError` of the offending key
path (``doc.error(path, message)``). The bounds are re-exported by :mod:`hardware_profiles.loader`."""
import math
import re

from . import schema as S
from ._doc import expected_name, suggest, type_name


def check_type(doc, path, value, types):
    if not isinstance(types, tuple):
        types = (types,)
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise doc.error(path, f"expected {expected_name(types)}, not {type_name(value)}")


def is_finite(value):
    try:
        return math.isfinite(value)
    except OverflowError:       # an integer too large for a float
        return False


#: Largest magnitude of a profile's real numbers (coefficients, energies, grid intensity): far
#: beyond any physical value, and small enough that a result built from them stays finite in the
#: usual ranges (results are checked for finiteness again where they are computed).
MAX_NUMBER = 1e100


def check_number(doc, path, value, limit=MAX_NUMBER):
    """A finite number (integer or float) of magnitude at most ``limit``: NaN, infinities and
    values near the float range would turn every score into nan/inf."""
    check_type(doc, path, value, float)
    if not is_finite(value):
        shown = value if isinstance(value, float) else "an integer too large for a float"
        raise doc.error(path, f"expected a finite number, not {shown}")
    if abs(value) > limit:
        raise doc.error(path, f"expected a number of magnitude at most {limit:g}, not {value:g}")


def check_choice(doc, path, value, choices, what):
    check_type(doc, path, value, str)
    if value not in choices:
        raise doc.error(path, f"unknown {what} {value!r}{suggest(value, choices)}; "
                              f"known: {', '.join(choices)}")


def check_keys(doc, path, mapping, allowed, what="key"):
    for key in mapping:
        if key not in allowed:
            raise doc.error(path + (key,), f"unknown {what} {key!r}{suggest(key, allowed)}")



def check_fields(doc, path, mapping, schema, what="key"):
    """A mapping whose keys and value types ``schema`` gives (``{key: type or types}``): an
    unknown key first, then the first value of a wrong type, as one error each."""
    check_keys(doc, path, mapping, schema, what)
    for key, value in mapping.items():
        check_type(doc, path + (key,), value, schema[key])

#: Upper bounds of a profile's integers, so that counts times costs stay exact in int64/float64.
MAX_TRANSISTORS_PER_GATE = 10 ** 6
MAX_RECIPE_COUNT = 10 ** 6
MAX_BYTES_VALUE = 2 ** 62


def check_positive_int(doc, path, value, what, limit=MAX_BYTES_VALUE):
    if isinstance(value, bool) or not isinstance(value, int):
        shown = value if isinstance(value, float) else type_name(value)   # 2.5, nan and inf shown as such
        raise doc.error(path, f"{what} must be a positive integer, not {shown}")
    if value <= 0:
        raise doc.error(path, f"{what} must be a positive integer, not {value}")
    if value > limit:
        raise doc.error(path, f"{what} must be at most {limit:,}, not {big(value)}")


def big(value):
    text = str(value)
    return text if len(text) <= 24 else f"an integer of {len(text)} digits"


_KIND_WORD = {"add": "adder", "mul": "multiplier", "div": "divider", "sqrt": "square-root"}


def check_design(doc, path, value, kind):
    check_type(doc, path, value, str)
    if value not in S.DESIGNS[kind]:
        raise doc.error(path, f"unknown {_KIND_WORD[kind]} design {value!r}"
                              f"{suggest(value, S.DESIGNS[kind])}; "
                              f"known: {', '.join(S.DESIGNS[kind])}")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def check_printable(doc, value, path=()):
    """No key and no string of a profile holds a control character (an escape sequence in a
    name would be sent to the terminal by every command that prints it); tabs and newlines are
    allowed in strings, not in keys."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str) and _CONTROL.search(item):
            raise doc.error(where, f"holds a control character: {item!r}")
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and (_CONTROL.search(key) or "\t" in key or "\n" in key):
                    raise doc.error(where, f"key {key!r} holds a control character")
                stack.append((child, where + (key,)))
        elif isinstance(item, list):
            stack.extend((child, where + (i,)) for i, child in enumerate(item))


def check_format(doc, path, fmt):
    check_type(doc, path, fmt, str)
    if fmt not in S.FORMATS:
        raise doc.error(path, f"unknown format {fmt!r}{suggest(fmt, S.FORMATS)}; "
                              f"known: {', '.join(S.FORMATS)}")


#: Largest energy of one access, byte or operation (J); real ones are pJ to nJ.
MAX_ENERGY_J = 1e3
#: Largest grid carbon intensity (g/kWh); real grids are below 2,000.
MAX_GRID_INTENSITY = 1e6


def check_energy(doc, path, value):
    check_number(doc, path, value, MAX_ENERGY_J)
    if value < 0:
        raise doc.error(path, f"energy must be a non-negative number of joules, not {value}")
