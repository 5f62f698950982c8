"""Regenerate the cost tables shipped in ``hwlib/tables/`` for every built-in profile.

    python -m hwlib._bundle [--jobs N] [--profiles NAME ...]

All tables are synthesized in one pool without the bundled entries (the disk cache still
applies, so a rerun after a change elsewhere only re-elaborates the circuits) and written
atomically as
``hwlib/tables/<profile>.json``: one row per (format, op) with its bundle key (see
:func:`hwlib.cost.bundle_key`) and its cost.
"""
import argparse
import json
import os
import sys
import time

import hardware_profiles as hp
from hardware_profiles import files

from . import _yosys
from .cost import BUNDLED_DIR, _source_digest, _toolchain, bundle_key, cost_tables, unit_spec


class _Progress:
    def start(self, index, total, label):
        print(f"  [{index}/{total}] {label} ...", file=sys.stderr, flush=True)

    def done(self, index, total, label, seconds):
        print(f"  [{index}/{total}] {label} {seconds:.1f} s", file=sys.stderr, flush=True)


def bundle_profiles(names, jobs=1):
    """The bundled tables of the built-in profiles ``names`` as JSON-ready mappings, in order,
    synthesized in one pool (:func:`hwlib.cost.cost_tables`)."""
    profiles = [hp.load(name) for name in names]
    tables = cost_tables(profiles, bundled=False, progress=_Progress(), jobs=jobs)
    out = []
    for profile in profiles:
        rows = []
        for row in tables[profile.name]:
            spec = unit_spec(row.op, row.format, profile.units, profile.datapath)
            rows.append({"format": row.format, "op": row.op, "design": row.design,
                         "circuit": row.circuit,
                         "key": bundle_key(spec.params, profile.technology),
                         "cost": row.cost.to_json()})
        out.append({"profile": profile.name, "sources": _source_digest(),
                    "toolchain": _toolchain(), "yosys": _yosys.yosys_version(), "rows": rows})
    return out


def write_json_atomic(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # 0644: package data must be world-readable
    files.replace_file(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hwlib._bundle", description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--profiles", nargs="*", default=None)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    for table in bundle_profiles(args.profiles or hp.builtin_names(), jobs=args.jobs):
        write_json_atomic(os.path.join(BUNDLED_DIR, f"{table['profile']}.json"), table)
        print(f"{table['profile']}: {len(table['rows'])} rows", flush=True)
    print(f"{time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
