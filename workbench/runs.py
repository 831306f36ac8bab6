"""A run = experiment + trained model + history + metrics; ``run`` makes one, ``load_run`` reads one back."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from workbench.config import Experiment
from workbench.data.base import Sampler, pool_batches
from workbench.data.registry import make_dataset
from workbench.evaluate import delta_equiv, mean_loglik, oracle_loglik, orbit_error
from workbench.models import build_model
from workbench.models.base import NeuralProcess
from workbench.models.relaxations import RELAXATIONS
from workbench.task import Box, Task
from workbench.train import Callback, History, KeepBest, resolve_device, train

#: Metric name -> (unit, meaning); the order is the order of the printed table.
METRICS: dict[str, tuple[str, str]] = {
    "loglik": ("nats/target", "test log-likelihood per target, fixed inputs on"),
    "loglik_strict": ("nats/target", "test log-likelihood of the strict component (fixed inputs off)"),
    "oracle_loglik": ("nats/target", "exact GP oracle (the ceiling)"),
    "oracle_gap": ("nats/target", "oracle_loglik - loglik"),
    "gaussian_loglik": ("nats/target", "best Gaussian predictor: the oracle moment-matched (ceiling B)"),
    "equivariant_loglik": (
        "nats/target",
        "best strictly translation-equivariant Gaussian predictor (ceiling D)",
    ),
    "gaussian_limit": ("nats/target", "oracle_loglik - gaussian_loglik: what a Gaussian output costs"),
    "symmetry_headroom": (
        "nats/target",
        "gaussian_loglik - equivariant_loglik, charged to strict models only (0 otherwise)",
    ),
    "learning_shortfall": ("nats/target", "oracle_gap - gaussian_limit - symmetry_headroom"),
    "delta_equiv": ("y units", "mean |mu(fixed on) - mu(fixed off)|"),
    "orbit_error": ("y units", "mean |mu(g.x; g.D) - mu(x; D)| over sampled g (translations for group none)"),
    "train_seconds": ("s", "wall time of training"),
    "steps_per_second": ("1/s", "training speed"),
    "n_parameters": ("", "number of trainable parameters"),
    "best_step": ("", "step whose weights were kept (early stopping, validate_every > 0)"),
    "val_loglik": ("nats/target", "validation log-likelihood at best_step"),
}


#: ``on_evaluate(what, done, total)``: the part of the evaluation about to run, and how far it got.
EvalProgress = Callable[[str, int, int], None]


@dataclass
class Run:
    """A trained model with what produced it and how well it does."""

    experiment: Experiment
    model: NeuralProcess
    history: History
    metrics: dict[str, float] = field(default_factory=dict)
    box: Box = ()
    dim_x: int = 1
    dim_y: int = 1
    #: Set by :func:`load_run` when the run's dataset file is gone: what is missing and where it was.
    data_missing: str = ""

    def predict(self, task: Task, *, fixed_inputs: bool = True) -> torch.distributions.Normal:
        """Predictive distribution for a task (on the model's device and dtype, in evaluation mode)."""
        self.model.eval()
        with torch.no_grad():
            return self.model.predict(task.for_model(self.model), fixed_inputs=fixed_inputs)

    def predict_map(self, context: Any = None, grid: Any = None, **kwargs: Any):
        """Maps of the prediction as an ``xarray.Dataset`` (see :func:`workbench.maps.predict_map`)."""
        from workbench.maps import predict_map

        if self.data_missing:
            raise FileNotFoundError(f"predict_map needs the data: {self.data_missing}")
        return predict_map(self, context=context, grid=grid, **kwargs)

    def metrics_table(self) -> str:
        """The metrics as an aligned text table with units."""
        rows = [(k, self.metrics[k], METRICS.get(k, ("", ""))[0]) for k in METRICS if k in self.metrics]
        rows += [(k, v, "") for k, v in self.metrics.items() if k not in METRICS]
        width = max(len(k) for k, _, _ in rows)
        return "\n".join(f"{k:<{width}}  {v:>12.5g}  {u}" for k, v, u in rows)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the run under ``path`` atomically: ``experiment.json``, ``model.pt``, ``history.json``,
        ``metrics.json`` and ``manifest.json`` (their sha256) appear together or not at all.

        An existing run there is an error unless ``overwrite=True`` (an empty folder is fine); see
        :func:`unique_path` for a free name and :func:`run_name` for a readable one.
        """
        path = check_save_path(path, overwrite)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target (same file system), then renamed into place in one step.
        tmp = path.parent / f".{path.name}.saving-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            self._write(tmp)
            _swap_into_place(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    def _write(self, folder: Path) -> None:
        exp = self.experiment
        dataset_file = None
        if isinstance(exp.dataset, str):
            experiment = exp.to_dict() | {"dataset": _absolute_dataset(exp.dataset)}
        else:
            # An in-memory field is not JSON: it travels with the run as dataset.nc.
            from workbench.data.fields import save_field

            save_field(exp.dataset, folder / "dataset.nc")
            dataset_file = "dataset.nc"
            experiment = {f.name: getattr(exp, f.name) for f in fields(exp)} | {"dataset": dataset_file}
        meta = {
            "experiment": experiment,
            "dataset_file": dataset_file,
            "dataset_sha256": dataset_digest(exp.dataset) if dataset_file is None else None,
            "box": self.box,
            "dim_x": self.dim_x,
            "dim_y": self.dim_y,
            "steps_done": self.history.steps_done,
            "name": run_name(exp, self.history.steps_done),
        }
        if self.model.grid_centre is not None:  # not a weight, but it changes what the weights predict
            meta["grid"] = {"centre": self.model.grid_centre, "span": self.model.grid_span}
        (folder / "experiment.json").write_text(json.dumps(meta, indent=2))
        (folder / "history.json").write_text(json.dumps(self.history.to_dict()))
        (folder / "metrics.json").write_text(json.dumps(self.metrics, indent=2))
        save_checkpoint(folder / "model.pt", model={k: v.cpu() for k, v in self.model.state_dict().items()})
        files = {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}
        manifest = {"format": RUN_FORMAT, "files": files}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


#: The saved-run layout this code writes (``manifest.json``).
RUN_FORMAT = "aenp-workbench-run/1"
MANIFEST = "manifest.json"
#: Experiment fields a resumed run may change: how long, where, and how many test tasks.
RESUMABLE = ("steps", "device", "test_tasks")


class RunFilesError(ValueError):
    """A saved run whose files are damaged or do not belong together."""


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=64)
def _cached_sha256(path: str, mtime_ns: int, size: int) -> str:
    return file_sha256(path)


def dataset_file(dataset: Any) -> Path | None:
    """The file a dataset value names (``era5:PATH`` or a NetCDF path), ``None`` for named datasets."""
    if not isinstance(dataset, str):
        return None
    if dataset.startswith("era5:"):
        return Path(dataset[5:]).expanduser()
    from workbench.data.registry import DATASETS

    if dataset.endswith(".nc") or (
        ":" not in dataset and dataset not in DATASETS and Path(dataset).is_file()
    ):
        return Path(dataset).expanduser()
    return None


def _absolute_dataset(dataset: str) -> str:
    """A file dataset with its path made absolute (a run must load from any working directory)."""
    path = dataset_file(dataset)
    if path is None:
        return dataset
    return ("era5:" if dataset.startswith("era5:") else "") + str(path.resolve())


def dataset_digest(dataset: Any) -> str | None:
    """sha256 of the data behind ``dataset``: a file's bytes, an in-memory field's values; ``None`` for
    named datasets (they are code) and for files that are not there."""
    path = dataset_file(dataset)
    if path is not None:
        if not path.is_file():
            return None
        st = path.stat()
        return _cached_sha256(str(path.resolve()), st.st_mtime_ns, st.st_size)
    if isinstance(dataset, str):
        return None
    ds = dataset.to_dataset(name=dataset.name or "value") if hasattr(dataset, "to_dataset") else dataset
    h = hashlib.sha256()
    for name in sorted(ds.variables, key=str):
        values = np.asarray(ds.variables[name].values)
        h.update(str(name).encode())
        h.update(values.tobytes() if values.dtype != object else repr(values.tolist()).encode())
    return h.hexdigest()


def experiment_record(exp: Experiment) -> dict[str, Any]:
    """The experiment's full content as JSON: files as absolute paths, an in-memory field by its hash."""
    record = {f.name: getattr(exp, f.name) for f in fields(exp)}
    if not record["train_pool"]:
        # Added after runs were saved: at its default it is left out, so their hashes and resumes hold.
        del record["train_pool"]
    if isinstance(exp.dataset, str):
        record["dataset"] = _absolute_dataset(exp.dataset)
    else:
        record["dataset"] = f"field:{dataset_digest(exp.dataset)}"
    return record


def experiment_hash(exp: Experiment) -> str:
    """A short hash of everything that decides a run: every field, and the data file's content."""
    content = {**experiment_record(exp), "data_sha256": dataset_digest(exp.dataset)}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:10]


def run_name(exp: Experiment, steps_done: int | None = None) -> str:
    """A readable, unique folder name: dataset, model, group, relaxation, strength, steps done (of the
    steps asked for when fewer) and a hash of the whole experiment, e.g.
    ``gibbs-1d_conv_T_fixed-inputs_s0.5_8of50steps_1a2b3c4d5e``."""
    path = dataset_file(exp.dataset)
    data = path.stem if path is not None else exp.dataset if isinstance(exp.dataset, str) else "field"
    done = exp.steps if steps_done is None else steps_done
    steps = f"{exp.steps}steps" if done == exp.steps else f"{done}of{exp.steps}steps"
    raw = f"{data}_{exp.model}_{exp.group}_{exp.relaxation}_s{exp.strength:g}_{steps}_{experiment_hash(exp)}"
    return "".join(c if c.isalnum() or c in "-_.+" else "-" for c in raw)


def unique_path(path: str | Path) -> Path:
    """``path`` if nothing is there, else the first free ``path-2``, ``path-3``, ..."""
    path = Path(path)
    k = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.name}-{k}")
        k += 1
    return candidate


def check_save_path(path: str | Path, overwrite: bool = False) -> Path:
    """``path`` as a place a run may be saved (before any training): not a file, not an existing run
    unless ``overwrite``, and writable. Errors name the path and what to do."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file, not a run folder; choose a folder path for the run")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{path} already exists and is not empty (an earlier run?); pass overwrite=True "
            "(CLI: --overwrite) to replace it, or choose another folder (workbench.runs.unique_path)"
        )
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {path}: {ancestor} is not a writable folder")
    return path


def _swap_into_place(new: Path, path: Path) -> None:
    """Rename the finished folder ``new`` to ``path``; an old folder there is moved aside first and
    deleted last, so a crash leaves the old run or the new one, never a mix."""
    if not path.exists():
        os.rename(new, path)
        return
    old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _read_json(path: Path) -> Any:
    """A JSON file of a saved run; a damaged one is an error naming the file."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFilesError(f"{path} is not valid JSON ({err}): the run folder is damaged") from None


def _check_manifest(path: Path) -> None:
    """Every file the manifest lists is there with its hash; runs from before manifests get a warning."""
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        warnings.warn(
            f"{path} has no manifest (saved before manifests existed): its files are not checked to "
            "belong together",
            UserWarning,
            stacklevel=3,
        )
        return
    manifest = _read_json(manifest_file)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise RunFilesError(f"{manifest_file} lists no files: the run folder is damaged")
    for name, digest in files.items():
        file = path / name
        if not file.is_file():
            raise RunFilesError(
                f"{file} is missing: {manifest_file.name} lists it; the run folder is incomplete"
            )
        if file_sha256(file) != digest:
            raise RunFilesError(
                f"{file} does not belong with the other files of {path}: its sha256 differs from the one "
                f"in {manifest_file.name} (a file of another save, or changed since). Save the run again "
                "or put the right file back"
            )


def _data_problem(dataset: str, digest: str | None) -> tuple[str, bool]:
    """What is wrong with a saved run's dataset file (``""`` if nothing) and whether it is gone."""
    path = dataset_file(dataset)
    if path is None:
        return "", False
    if not path.is_file():
        return (
            f"the run's dataset file {path} is missing (moved or deleted): weights, metrics and history "
            f"are loaded, but maps, evaluation and more training need the data; put the file back at "
            f"{path} and load the run again",
            True,
        )
    if digest and file_sha256(path) != digest:
        return f"the run's dataset file {path} changed since the run was saved (its sha256 differs)", False
    return "", False


def _experiment_as_saved(d: dict[str, Any]) -> Experiment:
    """The saved experiment without the checks that need its data (the data file is gone)."""
    names = {f.name for f in fields(Experiment)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(
            f"unknown Experiment fields {sorted(unknown)}; valid fields: {', '.join(sorted(names))}"
        )
    exp = object.__new__(Experiment)
    for f in fields(Experiment):
        value = d.get(f.name, f.default)
        setattr(exp, f.name, value)
    return exp


def load_run(path: str | Path, device: str = "cpu") -> Run:
    """Read a run written by :meth:`Run.save`; errors name the missing, broken or mismatched file.

    The files must match ``manifest.json`` (their sha256): a mix of two saves is refused naming the
    file. Runs saved before manifests existed load with a warning (their files cannot be checked).
    A run whose dataset file is gone still loads (weights, metrics, history) with a warning;
    ``Run.data_missing`` says what is missing and ``predict_map`` refuses with that message.
    """
    path = Path(path)
    meta_file = path / "experiment.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{path} is not a saved run: {meta_file.name} is missing")
    _check_manifest(path)
    meta = _read_json(meta_file)
    saved = dict(meta["experiment"])
    if meta.get("dataset_file"):
        saved["dataset"] = str((path / meta["dataset_file"]).resolve())
    problem, gone = _data_problem(saved["dataset"], meta.get("dataset_sha256"))
    if problem:
        warnings.warn(problem, UserWarning, stacklevel=2)
    try:
        exp = _experiment_as_saved(saved) if gone else Experiment.from_dict(saved)
    except ValueError as err:
        raise ValueError(f"{meta_file}: {err}") from None
    box = tuple(tuple(b) for b in meta["box"])
    torch.manual_seed(exp.seed)
    model = build_model(exp, meta["dim_x"], meta["dim_y"], box)
    state = load_checkpoint(path / "model.pt")
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"{path / 'model.pt'} does not fit the model of {exp}: {err}") from None
    # Runs saved before the grid was recorded were trained with it placed on contexts and targets.
    grid = meta.get("grid", {"centre": "all", "span": None})
    model.set_grid(grid["centre"], grid["span"])
    model.to(resolve_device(device)).eval()
    history = History.from_dict(_read_json(path / "history.json"))
    metrics = _read_json(path / "metrics.json")
    return Run(exp, model, history, metrics, box, meta["dim_x"], meta["dim_y"], problem if gone else "")


def _infer_box(tasks: Sequence[Task]) -> Box:
    """The bounding box of all inputs of some tasks, as the training region of user-given data."""
    xs = [torch.cat([t.xc[t.mask_c], t.xt.flatten(0, 1)]) for t in tasks]
    x = torch.cat(xs)
    return tuple((float(lo), float(hi)) for lo, hi in zip(x.amin(0), x.amax(0), strict=True))


def run(
    experiment: Experiment,
    *,
    train_tasks: Iterable[Task] | None = None,
    test_tasks: Sequence[Task] | None = None,
    box: Box | None = None,
    callbacks: Iterable[Callback] = (),
    stop: threading.Event | None = None,
    progress: bool = True,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 0,
    evaluate: bool = True,
    on_evaluate: EvalProgress | None = None,
    resume: str | Path | None = None,
) -> Run:
    """Train and evaluate the experiment; user tasks replace the named dataset's samplers when given.

    ``train_tasks`` is an iterator or a collection of :class:`Task` (cycled); ``test_tasks`` a
    sequence of :class:`Task`. Their inputs should be normalised to the region the model should
    treat as its box (the training region): pass ``box`` or it is the bounding box of the tasks seen.
    ``on_evaluate(what, done, total)`` is told how far the evaluation after training has got.

    ``checkpoint_path`` keeps a checkpoint (see :func:`workbench.train.train`); ``resume`` continues
    one exactly, to ``experiment.steps`` in all, and keeps checkpointing to it unless
    ``checkpoint_path`` says otherwise. The experiment must be the checkpoint's (only ``steps``,
    ``device`` and ``test_tasks`` may change); a user's ``train_tasks`` iterator must continue where
    the checkpoint stopped (a collection is cycled on from there).
    """
    exp = experiment
    exp.validate()
    start = 0
    if resume is not None:
        resume = Path(resume)
        start = _check_resume(exp, load_checkpoint(resume), resume)
        checkpoint_path = resume if checkpoint_path is None else checkpoint_path
    sampler = None
    if train_tasks is None or test_tasks is None:
        sampler = make_dataset(exp.dataset)
    if train_tasks is None:
        train_tasks = (
            pool_batches(sampler, exp.batch_size, exp.train_pool, seed=exp.seed, start=start)
            if exp.train_pool
            else sampler.batches(exp.batch_size, seed=exp.seed, start=start)
        )
    if test_tasks is None:
        test_tasks = sampler.test_set(exp.test_tasks, batch_size=16)
    test_tasks = list(test_tasks)
    if not test_tasks:
        raise ValueError("test_tasks is empty: give at least one Task to evaluate on")
    first = test_tasks[0]
    if box is None:
        box = sampler.box if sampler is not None else _infer_box(test_tasks)
    box = tuple(tuple(float(v) for v in b) for b in box)
    if len(box) != first.dim_x:
        raise ValueError(f"box {box} has {len(box)} dimensions but the tasks have dim_x = {first.dim_x}")
    exp.symmetry.check_dim(first.dim_x)

    torch.manual_seed(exp.seed)
    model = build_model(exp, first.dim_x, first.dim_y, box)
    keep = None
    if exp.validate_every:
        if sampler is None or not sampler.has_validation:
            raise ValueError(
                f"Experiment.validate_every = {exp.validate_every} needs a dataset with a validation "
                f"split; {exp.dataset!r} has none (use validate_every=0)"
            )
        keep = KeepBest(model, sampler.validation_set(256, batch_size=16), every=exp.validate_every)
    history = train(
        model,
        train_tasks,
        exp.steps - start,
        lr=exp.lr,
        schedule=exp.lr_schedule,
        device=exp.device,
        callbacks=[*callbacks, *([keep] if keep else [])],
        stop=stop,
        progress=progress,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
        resume=resume,
        checkpoint_extra={"experiment": json.dumps(experiment_record(exp))},
    )
    best_step = keep.restore() if keep is not None else None
    result = Run(exp, model, history, {}, box, first.dim_x, first.dim_y)
    if evaluate:
        result.metrics = evaluate_run(
            result,
            test_tasks,
            oracle=sampler.oracle_loglik if sampler is not None and sampler.has_oracle else None,
            sampler=sampler,
            on_evaluate=on_evaluate,
        )
        # Datasets with known elevation add scores of the breaking field (e.g. its correlation with it).
        from workbench.maps import map_metrics

        result.metrics.update(map_metrics(result, sampler))
        if keep is not None:
            result.metrics["best_step"] = float(best_step)
            result.metrics["val_loglik"] = keep.best
    return result


def settings_differ(exp: Experiment, saved: dict[str, Any]) -> list[str]:
    """The fields, other than :data:`RESUMABLE`, in which ``exp`` differs from a recorded experiment
    (:func:`experiment_record`): empty when a run of ``saved`` may be continued as ``exp``."""
    now = experiment_record(exp)
    return [k for k in now if k not in RESUMABLE and saved.get(k) != now[k]]


def _check_resume(exp: Experiment, state: dict[str, Any], path: Path) -> int:
    """The step a checkpoint stopped at, once it is known to belong to ``exp``."""
    saved = json.loads(state["experiment"]) if "experiment" in state else None
    if saved is not None:
        differ = settings_differ(exp, saved)
        if differ:
            now = experiment_record(exp)
            what = "; ".join(f"{k} = {now[k]!r} here but {saved.get(k)!r} in the checkpoint" for k in differ)
            raise ValueError(
                f"{path} was written for another experiment: {what}. Resume with the checkpoint's "
                "settings (`workbench run --resume PATH` takes them from it) or start a new run"
            )
    steps = state.get("history", {}).get("step") or [0]
    done = int(steps[-1])
    if done > exp.steps:
        raise ValueError(
            f"{path} is at step {done}, past Experiment.steps = {exp.steps}; ask for at least {done} steps"
        )
    return done


def checkpoint_experiment(path: str | Path) -> dict[str, Any]:
    """The experiment (as a dict for :class:`Experiment`) that a checkpoint of :func:`run` was written for."""
    state = load_checkpoint(path)
    if "experiment" not in state:
        raise CheckpointError(
            f"{path} records no experiment (written by train() directly, or before runs recorded it); "
            "resume it with run(Experiment(...), resume=PATH)"
        )
    saved = json.loads(state["experiment"])
    if str(saved["dataset"]).startswith("field:"):
        raise CheckpointError(
            f"{path} was trained on an in-memory field; resume it with "
            "run(Experiment(dataset=that_field, ...), resume=PATH)"
        )
    return saved


def is_strict(experiment: Experiment) -> bool:
    """Whether the run's model is strictly translation-equivariant (charged the symmetry headroom).

    A relaxation at strength 0 (or with no fixed-input channels) is the strict model itself, except
    those whose network is free at every strength (augmentation, symmetry cloning).
    """
    exp = experiment
    if exp.relaxation in RELAXATIONS and RELAXATIONS[exp.relaxation].never_strict:
        return False
    relaxed = exp.relaxation != "strict" and exp.strength > 0 and exp.n_fixed > 0
    return not exp.symmetry.is_trivial and not relaxed


def evaluate_run(
    r: Run,
    test_tasks: Sequence[Task],
    oracle: Any = None,
    sampler: Sampler | None = None,
    on_evaluate: EvalProgress | None = None,
) -> dict[str, float]:
    """All metrics of a run on some test tasks (the oracle ones only when an oracle is given).

    A GP ``sampler`` adds the ceilings (``gaussian_loglik``, ``equivariant_loglik``; cached per
    test set, see :mod:`workbench.ceilings`) and the split of ``oracle_gap`` into
    ``gaussian_limit + symmetry_headroom + learning_shortfall``. ``on_evaluate(what, done, total)``
    hears before each part.
    """
    exp, model = r.experiment, r.model
    parts = ["log-likelihood", "strict component", "ceilings", "delta_equiv", "orbit error"]

    def tell(what: str) -> None:
        if on_evaluate is not None:
            on_evaluate(what, parts.index(what), len(parts))

    tell("log-likelihood")
    m: dict[str, float] = {"loglik": mean_loglik(model, test_tasks)}
    tell("strict component")
    m["loglik_strict"] = (
        mean_loglik(model, test_tasks, fixed_inputs=False) if model.has_fixed_inputs else m["loglik"]
    )
    tell("ceilings")
    if sampler is not None and sampler.has_oracle:
        from workbench.ceilings import ceilings, gap_split

        c = ceilings(sampler, test_tasks)
        for key in ("oracle_loglik", "gaussian_loglik", "equivariant_loglik"):
            m[key] = c[key]
        m["oracle_gap"] = m["oracle_loglik"] - m["loglik"]
        m.update(gap_split(m, strict=is_strict(exp)))
    elif oracle is not None:
        m["oracle_loglik"] = oracle_loglik(oracle, test_tasks)
        m["oracle_gap"] = m["oracle_loglik"] - m["loglik"]
    tell("delta_equiv")
    m["delta_equiv"] = delta_equiv(model, test_tasks)
    tell("orbit error")
    # A free model is tested against translations, the symmetry it could have had.
    m["orbit_error"] = orbit_error(model, test_tasks[:8], exp.symmetry.reference, r.box, seed=exp.seed)
    steps = r.history.steps_done
    m["train_seconds"] = r.history.seconds
    m["steps_per_second"] = steps / r.history.seconds if r.history.seconds > 0 else 0.0
    m["n_parameters"] = float(sum(p.numel() for p in model.parameters() if p.requires_grad))
    if on_evaluate is not None:
        on_evaluate("done", len(parts), len(parts))
    return m
