"""Pricing circuits: bundled table, disk cache or synthesis (:class:`Pricer`), and the
scheduler that synthesizes what is missing, optionally in a pool of worker processes.
"""
import json
import math
import time

from hardware_profiles import FORMAT_BITS

from . import CircuitError
from ._bundled import bundle_key, bundled_entries
from ._cache import Cache, _canonical, _sha256, _toolchain
from ._counting import COUNTING_MODES, Cost, _check_technology, _count_elaborated
from ._specs import _OP_KIND, _source_digest

__all__ = ["Pricer"]


def _elaborate(component):
    from .synth import elaborate
    return elaborate(component)


def _checked_cost(data):
    """``data`` when it has the shape :meth:`Cost.to_json` writes, else ``ValueError``: a cache
    entry whose checksum matches but whose content was edited or written by something else is
    rebuilt, never used."""
    def count(value):
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 53

    def table(value):
        return isinstance(value, dict) and all(isinstance(k, str) and count(v) for k, v in value.items())

    transistors = data.get("transistors") if isinstance(data, dict) else None
    if (not isinstance(data, dict) or set(data) != {"transistors", "gates", "depth", "cells", "counting"}
            or isinstance(transistors, bool) or not isinstance(transistors, (int, float))
            or not math.isfinite(transistors) or not 0 <= transistors < 2 ** 53
            or not table(data["gates"]) or not table(data["cells"]) or not count(data["depth"])
            or data["counting"] not in COUNTING_MODES):
        raise ValueError(f"not a cost: {data!r:.200}")
    return data


def _yosys_module():
    # hwlib._yosys (and subprocess with it) loads only when something is synthesized
    from . import _yosys
    return _yosys


class Pricer:
    """Prices circuits under one ``technology`` section: from the bundled tables, the
    :class:`Cache`, or synthesis.

    ``cache``: a :class:`Cache`, ``None`` for the default directory, or ``False`` for none.
    ``bundled``: consult the tables shipped with the package (``False`` forces synthesis or
    the disk cache, e.g. to regenerate or check those tables).
    """

    def __init__(self, technology, cache=None, *, bundled=True):
        _check_technology(technology)
        self.technology = json.loads(_canonical(technology))
        if cache is None:
            cache = Cache()
        self.cache = cache or None
        self.bundled = bundled
        self.computed = 0

    def _index_key(self, spec):
        return _sha256(_canonical({"params": spec.params, "technology": self.technology,
                                   "sources": _source_digest(), "toolchain": _toolchain()}))

    def _result_key(self, spec, rtlil):
        return _sha256(_canonical({"rtlil": _sha256(rtlil), "params": spec.params,
                                   "technology": self.technology,
                                   "yosys": _yosys_module().yosys_version()}))

    def _read_result(self, key):
        data = self.cache.read("result", key)
        if data is None:
            return None
        try:
            return Cost.from_json(_checked_cost(data["cost"]))
        except (KeyError, TypeError, AttributeError, ValueError):
            self.cache.stats.invalid += 1
            return None

    def lookup(self, spec):
        """The bundled or cached :class:`Cost` of ``spec``, or ``None`` (fast: no elaboration)."""
        if self.bundled:
            cost = bundled_entries().get(bundle_key(spec.params, self.technology))
            if cost is not None:
                return cost
        if self.cache is None:
            return None
        index = self.cache.read("index", self._index_key(spec))
        if not isinstance(index, dict) or not isinstance(index.get("result"), str):
            return None
        try:
            return self._read_result(index["result"])
        except ValueError:
            return None

    def price(self, spec):
        """The :class:`Cost` of ``spec``: from the cache, or synthesized and then cached."""
        cost = self.lookup(spec)
        if cost is not None:
            return cost
        return self._price_uncached(spec)

    def _price_uncached(self, spec):
        try:
            component = spec.build()
        except (TypeError, ValueError) as exc:
            raise CircuitError(f"Cannot build {spec.label}: {exc}") from exc
        elab = _elaborate(component)
        if self.cache is None:
            self.computed += 1
            return _count_elaborated(elab, self.technology)
        result_key = self._result_key(spec, elab.rtlil)
        cost = self._read_result(result_key)
        if cost is None:
            cost = _count_elaborated(elab, self.technology)
            self.computed += 1
            self.cache.write("result", result_key, {
                "cost": cost.to_json(), "label": spec.label, "params": spec.params,
                "yosys": _yosys_module().yosys_version(), "rtlil_sha256": _sha256(elab.rtlil)})
        self.cache.write("index", self._index_key(spec), {"result": result_key})
        return cost


def _price_in_worker(technology, cache_dir, spec):
    # The parent found no bundled or indexed entry for ``spec``: synthesize (the result cache
    # may still hold the RTLIL's cost), without consulting the bundled tables again, so that
    # ``bundled=False`` holds in the workers too.
    pricer = Pricer(technology, Cache(cache_dir) if cache_dir is not None else False, bundled=False)
    started = time.perf_counter()
    cost = pricer._price_uncached(spec)
    return cost.to_json(), time.perf_counter() - started


def _check_jobs(jobs):
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise CircuitError(f"Jobs must be a positive integer, not {jobs!r}")
    return jobs


#: Relative synthesis work of each op's unit, times the significand width (squared for the
#: quadratic units): only an order in which to start them, widest first.
_OP_WORK = {"add": 1, "sub": 1, "cmp": 1, "mul": 8, "div": 16, "sqrt": 16}


def _work_estimate(spec):
    """A rough relative synthesis time of ``spec``, only to start the longest circuits first:
    quadratic in the width for multipliers, dividers and roots, linear for adders."""
    params = spec.params
    if "format" in params:
        width = FORMAT_BITS[params["format"]][1] + 1
        kind = _OP_KIND.get(params.get("op"), "add")
    else:
        width, kind = params.get("width", 1), params.get("kind", "add")
    return _OP_WORK.get(kind, 1) * width * (width if kind != "add" else 1)


def _price_all(pricer, specs, progress, jobs=1):
    """Price each spec; ``progress`` (optional) hears about the ones not cached. With
    ``jobs > 1`` the uncached ones are synthesized by that many worker processes (each writes
    its results to the cache), and each is reported when it finishes."""
    return _price_many([(pricer, spec, spec.label) for spec in specs], progress, jobs)


def _price_many(items, progress, jobs=1, failures=None):
    """Price ``(pricer, spec, label)`` items, which may belong to different pricers (profiles
    with different technologies), in one pool: the :class:`Cost` of each, in order.

    A circuit asked for twice under the same technology is synthesized once. Uncached circuits
    are started longest first (:func:`_work_estimate`), so that with ``jobs > 1`` the wide
    dividers and roots do not run last with the other workers idle. ``failures``: ``None`` to
    raise the first :class:`YosysError`; a list to append ``(index, error)`` to instead, with
    ``None`` in that item's place, and go on with the others. A ``progress`` object with a
    ``failed(index, total, label)`` method hears of each failure; one with a
    ``planned(work)`` method is first told what will be synthesized: ``(index, estimate)``
    pairs in start order (``index`` as given to ``start``/``done``, ``estimate`` the
    relative work of :func:`_work_estimate`), so that it can count up and estimate the time left.
    """
    _check_jobs(jobs)
    costs = [pricer.lookup(spec) for pricer, spec, _label in items]
    same, first = {}, {}   # first uncached item of each (technology, params) -> all its items
    for i, cost in enumerate(costs):
        if cost is None:
            pricer, spec, _label = items[i]
            key = pricer._index_key(spec)
            if key in first:
                same[first[key]].append(i)
            else:
                first[key] = i
                same[i] = [i]
    todo = sorted(same, key=lambda i: -_work_estimate(items[i][1]))
    if not todo:
        return costs
    if progress is not None and hasattr(progress, "planned"):
        # what is about to be synthesized, in start order, with the relative work of each
        progress.planned([(i + 1, _work_estimate(items[i][1])) for i in todo])
    _yosys = _yosys_module()
    total = len(items)

    def settle(i, cost, seconds, error=None):
        if error is not None:
            label = items[i][2]
            if progress is not None and hasattr(progress, "failed"):
                progress.failed(i + 1, total, label)
            error = _yosys.YosysError(f"{label}: {error.message}", error.log)
            if failures is None:
                raise error
            failures.extend((j, error) for j in same[i])
            return
        for j in same[i]:
            costs[j] = cost
        if progress is not None:
            progress.done(i + 1, total, items[i][2], seconds)

    if jobs == 1 or len(todo) < 2:
        for i in todo:
            pricer, spec, label = items[i]
            if progress is not None:
                progress.start(i + 1, total, label)
            started = time.perf_counter()
            try:
                cost = pricer._price_uncached(spec)
            except _yosys.YosysError as exc:
                settle(i, None, 0.0, exc)
                continue
            settle(i, cost, time.perf_counter() - started)
        return costs
    import concurrent.futures
    import multiprocessing
    _yosys.prepare()     # compile Yosys once, here, before the workers start their runs
    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(todo)),
                                                mp_context=context) as pool:
        futures = {}
        for i in todo:   # submitted longest first; the pool starts them in this order
            pricer, spec, _label = items[i]
            cache_dir = pricer.cache.directory if pricer.cache is not None else None
            futures[pool.submit(_price_in_worker, pricer.technology, cache_dir, spec)] = i
        try:
            for future in concurrent.futures.as_completed(futures):
                i = futures[future]
                if progress is not None:
                    progress.start(i + 1, total, items[i][2])
                try:
                    data, seconds = future.result()
                except _yosys.YosysError as exc:
                    settle(i, None, 0.0, exc)
                    continue
                items[i][0].computed += 1
                settle(i, Cost.from_json(data), seconds)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return costs


def _profile_pricer(profile, cache, bundled=True):
    return Pricer(profile.technology, cache, bundled=bundled)
