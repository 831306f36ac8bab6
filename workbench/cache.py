"""Train a run or load it from a folder: the notebooks' train-or-load switch, written once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.config import Experiment
from workbench.runs import Run, experiment_record, load_run, run

#: Experiment fields that do not change what is trained: where it runs.
IGNORED = ("device",)


def holds_run(folder: str | Path) -> bool:
    """True when ``folder`` holds a saved run (its ``experiment.json``)."""
    return (Path(folder) / "experiment.json").is_file()


def same_experiment(a: Experiment, b: Experiment) -> bool:
    """True when two experiments train the same model (fields in :data:`IGNORED` aside), compared as
    :func:`workbench.runs.experiment_record` has them: files by absolute path, fields by content."""
    ra, rb = experiment_record(a), experiment_record(b)
    return all(ra[k] == rb[k] for k in ra if k not in IGNORED)


def train_or_load(
    experiment: Experiment,
    folder: str | Path | None = None,
    *,
    train: bool | None = None,
    **run_kwargs: Any,
) -> Run:
    """A trained run of ``experiment``: loaded from ``folder``, or trained and saved there.

    ``train=None`` (a cache): load when ``folder`` holds a saved run of the same experiment
    (:func:`same_experiment`), else train with :func:`workbench.runs.run` and save to ``folder``,
    replacing a run of another experiment there. ``train=True``: always train (and save to ``folder``
    when given, replacing what is there). ``train=False``: load ``folder``, which must hold a run;
    its experiment is taken as saved. ``run_kwargs`` go to :func:`workbench.runs.run` (e.g.
    ``progress=False``).
    """
    folder = None if folder is None else Path(folder)
    if train is False:
        if folder is None:
            raise ValueError("train=False loads a saved run: give the folder it was saved to")
        return load_run(folder)
    if train is None and folder is not None and holds_run(folder):
        saved = load_run(folder)
        if same_experiment(saved.experiment, experiment):
            return saved
    result = run(experiment, **run_kwargs)
    if folder is not None:
        result.save(folder, overwrite=True)
    return result
