"""Composite arithmetic units built from the circuits of :mod:`hwlib` (multipliers, adders).

* :mod:`hwlib.units.mac`: integer multiply-accumulate units (int8 x int8 + int32, int4 x int4
  + int32, signed and unsigned).
* :mod:`hwlib.units.fp8`: the OCP 8-bit formats: fp8_e4m3 units (no infinities, one NaN,
  saturating) around :mod:`hwlib.fp`'s IEEE units; fp8_e5m2 is IEEE and priced by :mod:`hwlib.fp`.
* :mod:`hwlib.units.fma`: floating-point multiply-accumulate with one rounding (FMA, and
  mixed-precision MACs such as bf16 x bf16 + fp32, fp8 x fp8 + fp32).
* :mod:`hwlib.units.divsqrt`: one radix-2 SRT digit recurrence for both division and square
  root (a profile's ``units.divsqrt`` prices its div and sqrt by it).
* :mod:`hwlib.units.inner_adders`: the adder designs inside the MAC units side by side
  (``tosim compare-adders --unit fma``, ``--unit mac --adders``).
* :mod:`hwlib.units.intfmt`: the basic ops of the integer formats (int8, int4, int32) on the
  profile's integer units, and the integer MAC a ``units.mac`` profile prices their products on;
  its specs are :func:`hwlib._specs.integer_unit`'s (keyed as ``compare-adders`` keys them,
  without :func:`units_digest`) and :func:`hwlib.units.mac.mac_unit`'s.

Cache keys: these modules live in a subpackage so that they stay out of
:func:`hwlib._specs._source_digest`, the digest that keys the bundled cost tables of the
built-in profiles (which use none of these units); instead each unit's spec carries
:func:`units_digest`, the digest of this subpackage's sources, in its parameters. A change here
therefore misses the cache entries of these units only, and a change to the circuits they are
built from (multipliers, adders, cells) misses them through the main digest as well.
"""
import functools
import os

from .._cache import sources_digest

__all__ = ["units_digest"]


@functools.lru_cache(maxsize=None)
def units_digest():
    """SHA-256 over the ``.py`` sources of :mod:`hwlib.units`."""
    return sources_digest(os.path.dirname(os.path.abspath(__file__)))
