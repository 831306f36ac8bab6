"""Train a run or load it from a folder: the notebooks' train-or-load switch, written once."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from workbench.config import Experiment
from workbench.run import Run, load_run, run

#: Experiment fields that do not change what is trained: where it runs.
IGNORED = ("device",)


def holds_run(folder: str | Path) -> bool:
    """True when ``folder`` holds a saved run (its ``experiment.json``)."""
    return (Path(folder) / "experiment.json").is_file()


def same_experiment(a: Experiment, b: Experiment) -> bool:
    """True when two experiments train the same model (fields in :data:`IGNORED` aside).

    File datasets compare by resolved path (a saved run records its dataset file's absolute path);
    an in-memory dataset never compares equal (nothing cheap says two fields are the same data).
    """
    if not (isinstance(a.dataset, str) and isinstance(b.dataset, str)):
        return False
    da, db = a.to_dict(), b.to_dict()
    for d in (da, db):
        for name in IGNORED:
            d.pop(name, None)
    return _same_dataset(da.pop("dataset"), db.pop("dataset")) and da == db


def _same_dataset(a: str, b: str) -> bool:
    if a == b:
        return True
    pa, pb = a.removeprefix("era5:"), b.removeprefix("era5:")
    if a.startswith("era5:") != b.startswith("era5:"):
        return False
    return Path(pa).expanduser().resolve() == Path(pb).expanduser().resolve()


def _save(result: Run, folder: Path) -> None:
    """Save ``result`` to ``folder``, replacing a run there (``Run.save`` may refuse that by default)."""
    if "overwrite" in inspect.signature(result.save).parameters:
        result.save(folder, overwrite=True)
    else:
        result.save(folder)


def train_or_load(
    experiment: Experiment,
    folder: str | Path | None = None,
    *,
    train: bool | None = None,
    **run_kwargs: Any,
) -> Run:
    """A trained run of ``experiment``: loaded from ``folder``, or trained and saved there.

    ``train=None`` (a cache): load when ``folder`` holds a saved run of the same experiment
    (:func:`same_experiment`), else train with :func:`workbench.run.run` and save to ``folder``,
    replacing a run of another experiment there. ``train=True``: always train (and save to ``folder``
    when given, replacing what is there). ``train=False``: load ``folder``, which must hold a run;
    its experiment is taken as saved. ``run_kwargs`` go to :func:`workbench.run.run` (e.g.
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
        _save(result, folder)
    return result
