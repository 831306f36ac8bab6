"""Sweeps: independent runs over a grid of experiment settings, collected into one xarray Dataset.

``sweep(Experiment(dataset="gibbs-1d", steps=2000), {"group": ["T", "none"], "strength": [0, 0.5, 1]})``
trains every combination (in a local process pool with ``workers > 1``) and returns a Dataset with one
dimension per swept field and one variable per metric (NaN where a run does not report it).
``summarise(ds, over="seed")`` turns a sweep with ``seed`` in its grid into means and standard errors.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from workbench.config import Experiment
from workbench.run import METRICS


def _one(exp: Experiment) -> dict[str, float]:
    """Train and evaluate one experiment in this process (one torch thread: the pool is the parallelism)."""
    import torch

    from workbench.run import run

    torch.set_num_threads(1)
    return dict(run(exp, progress=False).metrics)


def _one_safe(exp: Experiment) -> tuple[dict[str, float], str]:
    """:func:`_one`, with a failure (a diverging setting, a bad value) returned as its error text."""
    try:
        return _one(exp), ""
    except Exception as err:  # one failed setting must not discard the others
        return {}, f"{type(err).__name__}: {err}"


def check_output(path: str | Path) -> Path:
    """Fail now, not after hours of training, if ``path`` cannot take the sweep's netCDF file."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"sweep output {str(path)!r} is a folder; give a file name such as sweep.nc")
    if not path.parent.is_dir():
        raise ValueError(f"sweep output {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as err:
        raise ValueError(f"sweep output {str(path)!r} cannot be written: {err.strerror or err}") from None
    return path


def _write(ds: xr.Dataset, path: Path) -> None:
    """Write ``ds`` to ``path`` atomically: a crash mid-write leaves the previous partial file."""
    tmp = path.with_name(f".{path.name}.partial")
    ds.to_netcdf(tmp)
    os.replace(tmp, path)


def sweep(
    base: Experiment,
    grid: dict[str, Sequence[Any]],
    *,
    workers: int = 1,
    progress: bool = True,
    out: str | Path | None = None,
) -> xr.Dataset:
    """Run ``base`` with every combination of ``grid`` (field -> values); metrics as ``[field..]`` arrays.

    A setting that fails (e.g. a learning rate that diverges) gets NaN metrics and its error text in
    the ``error`` variable (``""`` for runs that finished); ``status`` says ``done``, ``failed`` or
    ``not run``. With ``out`` (a netCDF path, checked before any training) the Dataset is rewritten
    after every finished run, so an interrupted sweep keeps what it finished.
    """
    names = {f.name for f in fields(Experiment)}
    for key, values in grid.items():
        if key not in names:
            raise ValueError(f"cannot sweep {key!r}: not a field of Experiment ({', '.join(sorted(names))})")
        if key == "dataset" and any(not isinstance(v, str) for v in values):
            raise ValueError(
                "sweep datasets by name or path (in-memory fields cannot go to worker processes)"
            )
        if len(values) == 0:
            raise ValueError(f"sweep values for {key!r} are empty")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out = check_output(out) if out is not None else None
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    # Build (and so validate) every experiment before training any: a typo fails in a second, not an hour.
    experiments = [replace(base, **dict(zip(keys, combo, strict=True))) for combo in combos]
    results: list[tuple[dict[str, float], str] | None] = [None] * len(experiments)

    def finished(i: int, result: tuple[dict[str, float], str]) -> None:
        results[i] = result
        bar.update()
        if out is not None:
            _write(_collect(base, grid, results), out)

    bar = tqdm(total=len(experiments), disable=not progress, desc="sweep", unit="run")
    try:
        if workers == 1:
            for i, exp in enumerate(experiments):
                finished(i, _one_safe(exp))
        else:
            # spawn: a fresh interpreter per worker, safe with torch's threads (fork is not).
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = {pool.submit(_one_safe, exp): i for i, exp in enumerate(experiments)}
                for future in as_completed(futures):
                    finished(futures[future], future.result())
    finally:
        bar.close()
    return _collect(base, grid, results)


def _collect(
    base: Experiment, grid: dict[str, Sequence[Any]], results: list[tuple[dict[str, float], str] | None]
) -> xr.Dataset:
    """The sweep's Dataset from the results so far (``None``: not run yet)."""
    keys = list(grid)
    shape = tuple(len(grid[k]) for k in keys)
    done = [r[0] if r is not None else {} for r in results]
    metric_names = sorted({m for r in done for m in r} | {"loglik"})
    data = {}
    for m in metric_names:
        values = np.array([r.get(m, math.nan) for r in done], dtype=np.float64).reshape(shape)
        unit, meaning = METRICS.get(m, ("", m))
        data[m] = (keys, values, {"units": unit, "long_name": meaning})
    status = ["not run" if r is None else ("failed" if r[1] else "done") for r in results]
    errors = ["" if r is None else r[1] for r in results]
    data["status"] = (keys, np.array(status, dtype=object).reshape(shape), {"long_name": "run status"})
    error = np.array(errors, dtype=object).reshape(shape)
    data["error"] = (keys, error, {"long_name": "error of a failed run"})
    coords = {k: (k, np.asarray(list(grid[k]))) for k in keys}
    base_attrs = {k: str(v) for k, v in base.to_dict().items() if k not in grid}
    return xr.Dataset(data, coords=coords, attrs={"title": "AENP Workbench sweep", **base_attrs})


def summarise(ds: xr.Dataset, over: str = "seed") -> xr.Dataset:
    """Mean and standard error over dimension ``over`` of every variable with it: ``<m>_mean``, ``<m>_se``.

    The standard error is the sample standard deviation (ddof 1, NaNs skipped) over ``over`` divided
    by the square root of the number of non-NaN values; it is NaN where fewer than two values remain.
    Units and meanings are kept; variables without ``over`` are copied unchanged, text variables with
    it (``status``, ``error``) are dropped; ``n_<over>`` counts
    the values each setting had (of the first variable summarised). Use it on a sweep with ``seed``
    in its grid to get error bars.
    """
    if over not in ds.dims:
        raise ValueError(
            f"cannot summarise over {over!r}: not a dimension of the Dataset ({', '.join(ds.dims)})"
        )
    data: dict[str, xr.DataArray] = {}
    for name, var in ds.data_vars.items():
        if over not in var.dims:
            data[str(name)] = var
            continue
        if not np.issubdtype(var.dtype, np.number):
            continue  # text per run (status, error) has no mean
        n = var.notnull().sum(over)
        sd = var.std(over, ddof=1, skipna=True)
        se = (sd / np.sqrt(n)).where(n > 1)
        long_name = var.attrs.get("long_name", str(name))
        data[f"{name}_mean"] = var.mean(over, skipna=True).assign_attrs(
            var.attrs | {"long_name": f"{long_name} (mean over {over})"}
        )
        data[f"{name}_se"] = se.assign_attrs(
            var.attrs | {"long_name": f"{long_name} (standard error over {over})"}
        )
        data.setdefault(f"n_{over}", n.assign_attrs(units="", long_name=f"number of {over} values"))
    return xr.Dataset(data, attrs=ds.attrs | {"summarised_over": over})
