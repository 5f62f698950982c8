"""Regenerate the cost tables shipped in ``hwlib/tables/`` for every built-in profile.

    python -m hwlib._bundle [--jobs N] [--profiles NAME ...]

Each table is synthesized without the bundled entries (the disk cache still applies, so a
rerun after a change elsewhere only re-elaborates the circuits) and written atomically as
``hwlib/tables/<profile>.json``: one row per (format, op) with its bundle key (see
:func:`hwlib.cost.bundle_key`) and its cost.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import hardware_profiles as hp

from . import _yosys
from .cost import BUNDLED_DIR, _source_digest, _toolchain, bundle_key, cost_table, fp_unit


class _Progress:
    def __init__(self, name):
        self.name = name

    def start(self, index, total, label):
        print(f"  [{index}/{total}] {self.name}: {label} ...", file=sys.stderr, flush=True)

    def done(self, index, total, label, seconds):
        print(f"  [{index}/{total}] {self.name}: {label} {seconds:.1f} s", file=sys.stderr, flush=True)


def bundle_profile(name, jobs=1):
    """The bundled table of built-in profile ``name`` as a JSON-ready mapping."""
    profile = hp.load(name)
    started = time.perf_counter()
    rows = cost_table(profile, bundled=False, progress=_Progress(name), jobs=jobs)
    out = []
    for row in rows:
        spec = fp_unit(row.op, row.format, profile.units, profile.datapath)
        out.append({"format": row.format, "op": row.op, "design": row.design,
                    "circuit": row.circuit, "key": bundle_key(spec.params, profile.technology),
                    "cost": row.cost.to_json()})
    return {"profile": name, "sources": _source_digest(), "toolchain": _toolchain(),
            "yosys": _yosys.yosys_version(), "seconds": round(time.perf_counter() - started, 1),
            "rows": out}


def write_json_atomic(path, data):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o644)     # mkstemp makes 0600; package data must be world-readable
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hwlib._bundle", description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--profiles", nargs="*", default=None)
    args = parser.parse_args(argv)
    for name in args.profiles or hp.builtin_names():
        table = bundle_profile(name, jobs=args.jobs)
        write_json_atomic(os.path.join(BUNDLED_DIR, f"{name}.json"), table)
        print(f"{name}: {len(table['rows'])} rows in {table['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
