"""Command line: ``workbench run ...`` trains and evaluates; ``workbench list`` shows choices;
``workbench sweep --vary FIELD=V1,V2 ...`` runs a grid of experiments into one netCDF file;
``workbench notebook NN -p name value ...`` runs a teaching notebook under papermill.

The flags are generated from the :class:`~workbench.config.Experiment` dataclass. Building the parser
reads only torch-free modules (``workbench.config`` and the dataset registry's file), so ``--help``
answers at once; torch loads when a command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import MISSING, Field, fields
from functools import cache
from pathlib import Path
from typing import Any

from workbench.config import DEVICES, MODEL_GROUPS, MODELS, RELAXATIONS, SCHEDULES, Experiment

#: One line per Experiment field for ``--help`` (the choices and the default are added to it).
FIELD_HELP: dict[str, str] = {
    "dataset": "the data: a named dataset (`workbench list`), era5:PATH, terrain:REGION or a NetCDF path",
    "model": "model family",
    "group": "symmetry group (the 2-D rotation groups need 2-D data and the conv model)",
    "relaxation": "how the symmetry is relaxed",
    "strength": "relaxation strength in [0, 1]: 0 = strictly equivariant, 1 = as free as allowed; "
    "fixed-inputs dropout p = 1 - strength",
    "n_fixed": "number of learnable fixed-input channels (B)",
    "steps": "training steps",
    "batch_size": "tasks per training step",
    "lr": "Adam learning rate",
    "lr_schedule": "learning-rate schedule over the steps",
    "seed": "random seed (weights and task stream)",
    "device": "auto = CUDA if torch sees a GPU, else CPU",
    "width": "channels of the model body (None: the family's default)",
    "depth": "layers of the model body (None: the family's default)",
    "test_tasks": "fixed test tasks for the metrics",
    "validate_every": "> 0: score the validation split every N steps and keep the best weights",
    "train_pool": "> 0: train in epochs over a fixed pool of N tasks (a multiple of batch_size); "
    "0: fresh tasks",
}


#: Steps between checkpoints of ``workbench run`` when none is given.
CHECKPOINT_EVERY = 100


@cache
def _dataset_names() -> tuple[str, ...]:
    """The named datasets, read from workbench/data/registry.py without importing workbench.data.

    The ``workbench.data`` package imports its GP samplers (torch) on import; the registry file
    itself is plain data, so load it on its own for ``--help``.
    """
    path = Path(__file__).resolve().parent / "data" / "registry.py"
    spec = importlib.util.spec_from_file_location("_workbench_dataset_registry", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.DATASETS)


def field_choices() -> dict[str, tuple[str, ...]]:
    """The valid values of the Experiment fields that have a fixed set (``dataset``: the named ones)."""
    groups = tuple(dict.fromkeys(g for gs in MODEL_GROUPS.values() for g in gs))
    return {
        "dataset": _dataset_names(),
        "model": tuple(MODELS),
        "group": groups,
        "relaxation": tuple(RELAXATIONS),
        "device": tuple(DEVICES),
        "lr_schedule": tuple(SCHEDULES),
    }


def _field_help(f: Field) -> str:
    parts = [FIELD_HELP.get(f.name, f"Experiment.{f.name}")]
    choices = field_choices().get(f.name)
    if choices:
        parts.append(f"choices: {', '.join(choices)}")
    default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
    parts.append(f"default: {default}")
    # argparse formats help with %; a literal % in a description must be doubled.
    return "; ".join(parts).replace("%", "%%")


class _Help(argparse.HelpFormatter):
    """argparse's help, but never wrapped inside a hyphenated name ("fixed-inputs", not "fixed- inputs")."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench", description="Approximately equivariant neural processes", formatter_class=_Help
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "run",
        help="train and evaluate one experiment, print its metrics, save the run",
        formatter_class=_Help,
    )
    _experiment_args(r)
    r.add_argument("--out", default=None, help="folder to save the run in (checked before training)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    r.add_argument(
        "--resume",
        default=None,
        metavar="CHECKPOINT",
        help="continue the run of this checkpoint exactly; its experiment is used (options given here "
        "may change steps, device, test-tasks)",
    )
    r.add_argument(
        "--checkpoint",
        default=None,
        metavar="FILE",
        help="checkpoint file (default: OUT.checkpoint.pt with --out; the --resume file when resuming)",
    )
    r.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help=f"steps between checkpoints (default {CHECKPOINT_EVERY}; one is also written at the end, "
        "after Ctrl-C and before a NaN loss)",
    )
    r.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    sub.add_parser("list", help="list datasets, models, groups and relaxations")
    sw = sub.add_parser(
        "sweep",
        formatter_class=_Help,
        help="run every combination of some settings; metrics as one netCDF file",
        description="Independent runs over a grid, e.g. --vary group=T,none --vary strength=0,0.5,1; "
        "the other experiment options set the fixed part.",
    )
    _experiment_args(sw)
    sw.add_argument("--vary", action="append", default=[], metavar="FIELD=V1,V2,...", help="a swept field")
    sw.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes of the embedded Dask cluster (default: the CPUs this process may use)",
    )
    sw.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="run on this Dask scheduler instead of an embedded cluster (e.g. one started by dask-jobqueue)",
    )
    sw.add_argument(
        "--out",
        default="sweep.nc",
        help="netCDF file for the results, rewritten after every run; the runs are saved under OUT's "
        "name with .runs (default sweep.nc, sweep.runs/)",
    )
    sw.add_argument("--resume", action="store_true", help="continue the sweep in --out: run what is not done")
    sw.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    nb = sub.add_parser(
        "notebook",
        formatter_class=_Help,
        help="run notebooks/NN_*.ipynb under papermill with parameters",
        description="Run a notebook of the repository's notebooks/ folder under papermill.",
    )
    nb.add_argument("number", metavar="NN", help="the notebook's number (e.g. 03 or 3) or its full name")
    nb.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a parameter; values are read as papermill's -p reads them (int, float, True/False/None, "
        'else text), and a JSON list or object such as \'["T", "T+C4"]\' becomes a list or dict',
    )
    nb.add_argument("-o", "--output", default=None, help="executed notebook to write (default: NN_out.ipynb)")
    nb.add_argument("-k", "--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    nb.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _field_type(name: str) -> type:
    f = next(f for f in fields(Experiment) if f.name == name)
    return {"int": int, "float": float, "str": str, "int | None": int}.get(str(f.type), str)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment options set on the command line."""
    return {f.name: getattr(args, f.name) for f in fields(Experiment) if getattr(args, f.name) is not None}


def _experiment_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("experiment options (the fields of workbench.Experiment)")
    for f in fields(Experiment):
        # default=None, not the field's default: only the flags given reach Experiment(**given), so
        # sweep can tell a fixed choice from an unset one. Invalid values are left to Experiment,
        # whose error names the field and the valid choices.
        group.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f.name,
            type=_field_type(f.name),
            default=None,
            metavar=f.name.upper(),
            help=_field_help(f),
        )


def _sweep(args: argparse.Namespace) -> int:
    import numpy as np

    from workbench.sweep import sweep

    given = _given(args)
    try:
        grid = {}
        for item in args.vary:
            name, sep, values = item.partition("=")
            if not sep or not values:
                raise ValueError(f"--vary {item!r}: write FIELD=V1,V2,... (e.g. strength=0,0.5,1)")
            if name not in {f.name for f in fields(Experiment)}:
                raise ValueError(f"--vary {item!r}: {name!r} is not an experiment field")
            grid[name] = [_field_type(name)(v) for v in values.split(",")]
        if not grid:
            raise ValueError("give at least one --vary FIELD=V1,V2,...")
        # The file is checked before any training and rewritten after every finished run.
        result = sweep(
            Experiment(**given),
            grid,
            workers=args.workers,
            scheduler=args.scheduler,
            progress=not args.no_progress,
            out=args.out,
            resume=args.resume,
            overwrite=args.overwrite,
        )
    except (ValueError, ImportError, OSError) as err:
        print(f"workbench: {err}", file=sys.stderr)
        return 2
    print(result)
    print(f"saved the sweep to {args.out}", file=sys.stderr)
    failed = result["status"].values == "failed"
    if failed.any():
        lines = []
        for index in zip(*np.nonzero(failed), strict=True):
            point = {k: result[k].values[i] for k, i in zip(result["status"].dims, index, strict=True)}
            label = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items())
            lines.append(f"  {label}: {result['error'].values[index]}")
        print(
            f"workbench: {int(failed.sum())} of {failed.size} runs failed (NaN metrics; their errors "
            f"are in the 'error' variable of {args.out}):\n" + "\n".join(lines),
            file=sys.stderr,
        )
        return 1
    return 0


def _list() -> str:
    from workbench.data.registry import DATASETS
    from workbench.groups import GROUPS

    lines = ["datasets:"]
    lines += [f"  {k:<22} {dim}-D  {desc}" for k, (dim, desc) in DATASETS.items()]
    lines += ["models:"] + [f"  {k:<22} {v}" for k, v in MODELS.items()]
    lines += ["groups:"] + [f"  {k:<22} {g.description}" for k, g in GROUPS.items()]
    lines += ["relaxations:"] + [f"  {k:<22} {v}" for k, v in RELAXATIONS.items()]
    return "\n".join(lines)


def notebooks_dir() -> Path:
    """The repository's ``notebooks/`` folder (beside the ``workbench`` package in a checkout)."""
    return Path(__file__).resolve().parent.parent / "notebooks"


def find_notebook(key: str, folder: Path | None = None) -> Path:
    """The notebook ``NN_*.ipynb`` for ``key`` (``03``, ``3`` or the full name); errors list the choices."""
    folder = notebooks_dir() if folder is None else folder
    books = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not books:
        raise FileNotFoundError(f"no notebooks NN_*.ipynb in {folder} (is this a repository checkout?)")
    key = key.strip().removesuffix(".ipynb")
    number = key.zfill(2) if key.isdigit() else None
    hits = [p for p in books if p.stem == key or (number is not None and p.name.startswith(f"{number}_"))]
    if len(hits) != 1:
        choices = ", ".join(f"{p.name[:2]} ({p.stem})" for p in books)
        raise ValueError(f"no notebook {key!r} in {folder}; choose one of: {choices}")
    return hits[0]


def parse_value(text: str) -> Any:
    """A ``-p`` value as papermill reads it (True/False/None, int, float, else text), or a JSON list/dict."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.lstrip().startswith(("[", "{")):
        # papermill's -p cannot pass lists (its -y can); notebooks such as 05 take a list of groups.
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return text


def run_notebook(
    key: str,
    parameters: dict[str, Any],
    output: str | Path | None = None,
    *,
    kernel: str = "python3",
    progress: bool = True,
) -> Path:
    """Execute notebook ``key`` with papermill and the given parameters; returns the output path."""
    import papermill

    path = find_notebook(key)
    out = Path(output) if output is not None else Path.cwd() / f"{path.name[:2]}_out.ipynb"
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters=parameters,
        kernel_name=kernel,
        language="python",
        progress_bar=progress,
    )
    return out


def _notebook(args: argparse.Namespace) -> int:
    parameters = {name: parse_value(value) for name, value in args.parameter}
    try:
        path = find_notebook(args.number)
    except (ValueError, FileNotFoundError) as err:
        print(f"workbench: {err}", file=sys.stderr)
        return 2
    from papermill.exceptions import PapermillExecutionError

    try:
        out = run_notebook(
            path.stem, parameters, args.output, kernel=args.kernel, progress=not args.no_progress
        )
    except PapermillExecutionError as err:
        print(
            f"workbench: {path.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}",
            file=sys.stderr,
        )
        return 1
    print(f"executed {path.name} -> {out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``workbench`` command."""
    args = _parser().parse_args(argv)
    if args.command == "list":
        print(_list())
        return 0
    if args.command == "notebook":
        return _notebook(args)
    if args.command == "sweep":
        return _sweep(args)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    """``workbench run``: check the output first, train (or resume), print the metrics, save the run."""
    from workbench.runs import check_save_path, checkpoint_experiment, run

    given = _given(args)
    try:
        if args.resume:
            given = {**checkpoint_experiment(args.resume), **given}
        exp = Experiment(**given)
        out = check_save_path(args.out, args.overwrite) if args.out else None
        ckpt = _checkpoint_file(args, out)
        if args.checkpoint_every is not None and args.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every {args.checkpoint_every}: give a number of steps >= 0")
    except (ValueError, OSError) as err:
        print(f"workbench: {err}", file=sys.stderr)
        return 2
    every = CHECKPOINT_EVERY if args.checkpoint_every is None else args.checkpoint_every
    if ckpt is not None:
        print(
            f"checkpoints go to {ckpt}; continue an interrupted run with: workbench run --resume {ckpt}",
            file=sys.stderr,
        )
    from workbench.train import TasksExhausted, TrainingDiverged, TrainingInterrupted

    try:
        result = run(
            exp,
            progress=not args.no_progress,
            checkpoint_path=ckpt,
            checkpoint_every=every if ckpt is not None else 0,
            resume=args.resume,
        )
    except TrainingInterrupted as err:
        print(f"workbench: {err}", file=sys.stderr)
        return 130
    except (TrainingDiverged, TasksExhausted, ValueError) as err:
        print(f"workbench: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result.metrics, indent=2) if args.json else result.metrics_table())
    return _save(result, out, args.overwrite) if out is not None else 0


def _checkpoint_file(args: argparse.Namespace, out: Path | None) -> Path | None:
    """Where ``workbench run`` checkpoints; an unrelated checkpoint there is not overwritten silently."""
    if args.checkpoint:
        ckpt = Path(args.checkpoint)
    elif args.resume:
        return Path(args.resume)
    elif out is not None:
        ckpt = out.with_name(out.name + ".checkpoint.pt")
    else:
        return None
    if ckpt.exists() and not args.overwrite and str(ckpt) != str(args.resume):
        raise FileExistsError(
            f"checkpoint {ckpt} already exists (an interrupted run?): continue it with --resume {ckpt}, "
            "or pass --overwrite to start afresh"
        )
    return ckpt


def _save(result: Any, out: Path, overwrite: bool) -> int:
    """Save the run to ``out``; if that fails, to a fresh folder in the temp directory (nothing lost)."""
    import tempfile

    from workbench.runs import run_name, unique_path

    try:
        path = result.save(out, overwrite=overwrite)
    except OSError as err:
        name = run_name(result.experiment, result.history.steps_done)
        fallback = result.save(unique_path(Path(tempfile.gettempdir()) / name))
        print(
            f"workbench: could not save the run to {out}: {err}; saved the run to {fallback} instead",
            file=sys.stderr,
        )
        return 1
    print(f"saved the run to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
