"""Operand streams saved from a model (``streams:FILE[#TYPE]`` in a profile's
``power.distribution``): the multiplier's and the adder's operands that ``tosim activity
--from-model ... --save-streams FILE`` drew from a model's own tensors.

The file is a NumPy ``.npz`` archive of float64 arrays: ``mul_a``, ``mul_b`` (weights,
activations), ``add_a``, ``add_b`` (running sums, products) over all the model's covered matrix
layers, and ``TYPE.mul_a`` ... for the layers of one type (``linear``, ``conv2d``), each in the
order a multiply-accumulate unit sees them; ``TYPE`` in the profile's text picks those.
"""
import hashlib
import os

import numpy as np

from hardware_profiles import ProfileError
from hardware_profiles.schema import MODEL_OPERANDS, STREAMS_OPS, STREAMS_PREFIX

__all__ = ["StreamsFileError", "is_streams", "read_streams", "streams_label", "is_model_operands",
           "model_group", "select_streams", "ModelOperandsError"]


class StreamsFileError(ProfileError, ValueError):
    """A profile's streams file that cannot be used (one line naming the file): a profile
    error on the command line (exit status 2), a ``ValueError`` too."""


class ModelOperandsError(ValueError):
    """The model priced lacks the operands a ``model[#TYPE]`` distribution asks for."""


def is_streams(distribution):
    """Whether a distribution (a text, a pair, a :class:`Distribution`) is a streams file."""
    return isinstance(distribution, str) and distribution.strip().startswith(STREAMS_PREFIX)


def is_model_operands(distribution):
    """Whether a distribution is ``model[#TYPE]``: the operands drawn from the scored model."""
    return isinstance(distribution, str) and distribution.strip().partition("#")[0].strip() == MODEL_OPERANDS


def model_group(text):
    """The layer type of ``model#TYPE`` (``""`` for ``model``: all the model's matrix layers)."""
    return text.strip().partition("#")[2].strip()


def _digest(a, b):
    return hashlib.sha256(a.tobytes() + b"|" + b.tobytes()).hexdigest()


def select_streams(arrays, op, group, vectors):
    """``(a, b, digest)`` of ``op``'s operands in ``arrays`` (a mapping of stream arrays as a
    streams file holds them: ``mul_a``, ..., ``TYPE.mul_a``, ...), of the layers of type
    ``group`` (``""``: all), the first ``vectors`` pairs, as :func:`read_streams` takes them from
    a file. Raises ``ValueError`` (one line, without a file name) when they are missing or
    shorter than 2."""
    if op not in STREAMS_OPS:
        raise ValueError(f"the operands of {' and '.join(STREAMS_OPS)} are drawn from a model, not of {op}")
    prefix = f"{group}." if group else ""
    names = set(arrays)
    wanted = (f"{prefix}{op}_a", f"{prefix}{op}_b")
    if not all(name in names for name in wanted):
        groups = sorted({n.split(".")[0] for n in names if "." in n})
        what = f"no {op} operands of {group!r} layers" if group else f"no {op} operands"
        raise ModelOperandsError(f"{what} (layer types with operands: {', '.join(groups) or 'none'})")
    a, b = (np.asarray(arrays[name], dtype=np.float64).ravel()[:vectors] for name in wanted)
    if len(a) != len(b) or len(a) < 2:
        raise ModelOperandsError(f"the {op} operand streams must have one length, at least 2 "
                                 f"(they have {len(a)} and {len(b)})")
    return a, b, _digest(a, b)


def _split(text):
    path, _, group = text.strip()[len(STREAMS_PREFIX):].partition("#")
    return path.strip(), group.strip()


def streams_label(text):
    """``streams:FILE#TYPE`` with the file's base name (how results name the stream)."""
    path, group = _split(text)
    return STREAMS_PREFIX + os.path.basename(path) + (f"#{group}" if group else "")


def read_streams(text, op, vectors):
    """``(a, b, digest)``: the first ``vectors`` operand pairs of ``op`` in the streams file of
    ``text`` and a SHA-256 of them (what a cached energy depends on). Raises ``ValueError`` (one
    line naming the file; :class:`StreamsFileError`) for a file that cannot be read, an op it does not hold, or a stream
    shorter than 2."""
    try:
        return _read(text, op, vectors)
    except ValueError as exc:
        raise StreamsFileError(f"power.distribution: streams file {exc}") from None


def _read(text, op, vectors):
    path, group = _split(text)
    if op not in STREAMS_OPS:
        raise ValueError(f"{path}: a streams file holds the operands of {' and '.join(STREAMS_OPS)}, not {op}")
    prefix = f"{group}." if group else ""
    try:
        with np.load(path, allow_pickle=False) as data:
            names = set(data.files)
            wanted = (f"{prefix}{op}_a", f"{prefix}{op}_b")
            if not all(name in names for name in wanted):
                groups = sorted({n.split(".")[0] for n in names if "." in n})
                what = f"no {op} operands of {group!r} layers" if group else f"no {op} operands"
                raise ValueError(f"{path}: {what} (layer types in the file: {', '.join(groups) or 'none'}); "
                                 "write it with tosim activity --from-model MODEL --save-streams FILE")
            a, b = (np.asarray(data[name], dtype=np.float64).ravel()[:vectors] for name in wanted)
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read the operand streams: {' '.join(str(exc).split())}") from None
    except ValueError as exc:
        if str(exc).startswith(path):
            raise
        raise ValueError(f"{path}: cannot read the operand streams: {' '.join(str(exc).split())}") from None
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"{path}: the {op} operand streams must have one length, at least 2 "
                         f"(they have {len(a)} and {len(b)})")
    return a, b, _digest(a, b)
