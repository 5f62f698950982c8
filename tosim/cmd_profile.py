"""``tosim profile list | show NAME|FILE [--json] | validate FILE...``."""
import sys

import yaml

import hardware_profiles as hp

from ._io import json_text

__all__ = ["register"]


def register(subparsers):
    parser = subparsers.add_parser("profile", help="list, show and validate hardware profiles")
    sub = parser.add_subparsers(dest="profile_command", metavar="ACTION", required=True,
                                parser_class=type(parser))
    p_list = sub.add_parser("list", help="built-in profiles")
    p_list.add_argument("--json", action="store_true", help="print JSON")
    p_list.set_defaults(func=_list)
    p_show = sub.add_parser("show", help="print a resolved profile (after extends)")
    p_show.add_argument("profile", metavar="NAME|FILE")
    p_show.add_argument("--json", action="store_true", help="print JSON")
    p_show.set_defaults(func=_show)
    p_val = sub.add_parser("validate", help="check profile files; one line per file")
    p_val.add_argument("files", metavar="FILE", nargs="+")
    p_val.set_defaults(func=_validate)


def _list(args):
    rows = []
    for name in hp.builtin_names():
        prof = hp.load(name)
        rows.append({"name": name, "extends": prof.chain[-2].split(":", 1)[-1] if len(prof.chain) > 1 else None,
                     "counting": prof.technology["counting"], "datapath": prof.datapath,
                     "default": name == hp.DEFAULT_PROFILE,
                     "description": prof.data.get("description", "")})
    if args.json:
        print(json_text(rows))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "*" if r["default"] else " "
        base = f" (extends {r['extends']})" if r["extends"] else ""
        print(f"{mark} {r['name']:<{width}}  {r['counting']:<11} {r['datapath']:<7} {r['description']}{base}")
    print(f"\n* default profile; show one with: tosim profile show NAME")
    return 0


def _show(args):
    prof = hp.load(args.profile)
    if args.json:
        print(json_text(prof.to_dict()))
    else:
        print(f"# {prof.name}, resolved from: {' <- '.join(reversed(prof.chain))}")
        sys.stdout.write(yaml.safe_dump(prof.to_dict(), sort_keys=False, width=100))
    return 0


def _validate(args):
    failed = 0
    for path in args.files:
        try:
            prof = hp.load_file(path)
        except hp.ProfileError as exc:
            print(f"tosim: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        chain = " <- ".join(reversed(prof.chain))
        print(f"{path}: ok ({prof.name}; {chain})")
    return 2 if failed else 0
