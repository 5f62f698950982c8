"""``tosim zoo [--json]``: the built-in models that ``zoo:NAME`` names, in natural order."""
import re

from ._io import json_text

__all__ = ["register", "run", "natural_key"]


def register(subparsers):
    parser = subparsers.add_parser(
        "zoo", help="list the built-in models (zoo:NAME)",
        description="List the built-in model zoo: each name (use it as zoo:NAME in count and score, or zoo:all), "
                    "its parameters and layers. Transformer language models take --seq.")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def natural_key(name):
    """Sort key that orders the numbers inside names by value: li2022-mlp-4 before li2022-mlp-10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def run(args):
    import opcount
    from ._render import count_text
    rows = []
    for name in sorted(opcount.zoo_names(), key=natural_key):
        model = opcount.load_zoo(name)
        rows.append({"name": name, "params": model.params, "layers": len(model.layers),
                     "input": list(model.input_shape)})
    if args.json:
        print(json_text(rows))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'name':<{width}}  {'params':>7}  {'layers':>6}  input")
    for r in rows:
        print(f"{r['name']:<{width}}  {count_text(r['params']):>7}  {r['layers']:>6}  "
              f"{'x'.join(map(str, r['input']))}")
    print(f"\n{len(rows)} models; score them all with: tosim score zoo:all")
    return 0
