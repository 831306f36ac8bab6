"""Command line: ``workbench run ...`` trains and evaluates; ``workbench list`` shows choices."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from workbench.config import MODELS, RELAXATIONS, Experiment
from workbench.data.registry import DATASETS
from workbench.groups import GROUPS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="Approximately equivariant neural processes")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and evaluate one experiment, print its metrics, save the run")
    for f in fields(Experiment):
        kind = {"int": int, "float": float, "str": str, "int | None": int}.get(str(f.type), str)
        r.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=None)
    r.add_argument("--out", default=None, help="folder to save the run in")
    r.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub.add_parser("list", help="list datasets, models, groups and relaxations")
    return p


def _list() -> str:
    lines = ["datasets:"]
    lines += [f"  {k:<22} {dim}-D  {desc}" for k, (dim, desc) in DATASETS.items()]
    lines += ["models:"] + [f"  {k:<22} {v}" for k, v in MODELS.items()]
    lines += ["groups:"] + [f"  {k:<22} {g.description}" for k, g in GROUPS.items()]
    lines += ["relaxations:"] + [f"  {k:<22} {v}" for k, v in RELAXATIONS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``workbench`` command."""
    args = _parser().parse_args(argv)
    if args.command == "list":
        print(_list())
        return 0
    from workbench.run import run

    given = {f.name: getattr(args, f.name) for f in fields(Experiment) if getattr(args, f.name) is not None}
    try:
        exp = Experiment(**given)
    except ValueError as err:
        print(f"workbench: {err}", file=sys.stderr)
        return 2
    result = run(exp, progress=not args.no_progress)
    print(json.dumps(result.metrics, indent=2) if args.json else result.metrics_table())
    if args.out:
        path = result.save(args.out)
        print(f"saved the run to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
