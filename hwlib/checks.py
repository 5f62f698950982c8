"""Argument checks shared by hwlib's components and reference models.

One function per kind of mistake, so that every constructor words it the same way:

* `positive_int`: widths and counts ("<what> must be a positive integer, not <value>");
* `int_in`: integers with a range ("<what> must be an integer in <low>..<high>, not <value>");
* `operand`: reference models' operands ("<what> must be an integer in [0, <limit>], not <value>");
* `boolean`: flags ("<what> must be a bool, not <value>");
* `design`: a pluggable sub-unit given as a registry design name or a class.

Constructors raise ``TypeError`` for a value of the wrong type and ``ValueError`` for one out
of range, as Python does; the builders that read profiles pass ``error=CircuitError``.
Importing this module does not import Amaranth.
"""
from . import registry

__all__ = ["positive_int", "int_in", "operand", "boolean", "design"]


def positive_int(value, what, *, error=None):
    """``value`` if it is an ``int`` of at least 1 (a ``bool`` is not one).

    Otherwise raises ``error`` (default: ``TypeError`` for a value that is not an integer,
    ``ValueError`` for one below 1) with the message
    ``"<what> must be a positive integer, not <value!r>"``.
    """
    integer = isinstance(value, int) and not isinstance(value, bool)
    if integer and value >= 1:
        return value
    if error is None:
        error = ValueError if integer else TypeError
    raise error(f"{what} must be a positive integer, not {value!r}")


def int_in(value, low, high, what):
    """``value`` if it is an ``int`` (not a ``bool``) in ``low..high``; otherwise ``TypeError``
    (not an integer) or ``ValueError`` (out of range)
    ``"<what> must be an integer in <low>..<high>, not <value!r>"``."""
    message = f"{what} must be an integer in {low}..{high}, not {value!r}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(message)
    if not low <= value <= high:
        raise ValueError(message)
    return value


def operand(value, limit, what):
    """``value`` if it is an ``int`` (not a ``bool``) in ``[0, limit]``; otherwise
    ``ValueError`` ``"<what> must be an integer in [0, <limit>], not <value!r>"`` (the
    operand checks of the plain-Python reference models)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ValueError(f"{what} must be an integer in [0, {limit}], not {value!r}")
    return value


def boolean(value, what):
    """``value`` if it is a ``bool``; otherwise ``TypeError``
    ``"<what> must be a bool, not <value!r>"``."""
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, not {value!r}")
    return value


def design(value, kind, what, *, expected="a design name or a class"):
    """The component class for ``value``: a design name of unit ``kind`` in
    :mod:`hwlib.registry` (unknown names raise its ``ValueError``), or a class, returned as is.
    Anything else raises ``TypeError`` ``"<what> must be <expected>, not <value!r>"``."""
    if isinstance(value, str):
        return registry.design_class(value, kind)
    if isinstance(value, type):
        return value
    raise TypeError(f"{what} must be {expected}, not {value!r}")
