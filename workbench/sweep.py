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
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields, replace
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


def sweep(
    base: Experiment,
    grid: dict[str, Sequence[Any]],
    *,
    workers: int = 1,
    progress: bool = True,
) -> xr.Dataset:
    """Run ``base`` with every combination of ``grid`` (field -> values); metrics as ``[field..]`` arrays."""
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
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    # Build (and so validate) every experiment before training any: a typo fails in a second, not an hour.
    experiments = [replace(base, **dict(zip(keys, combo, strict=True))) for combo in combos]
    bar = tqdm(total=len(experiments), disable=not progress, desc="sweep", unit="run")
    results: list[dict[str, float]] = []
    try:
        if workers == 1:
            for exp in experiments:
                results.append(_one(exp))
                bar.update()
        else:
            # spawn: a fresh interpreter per worker, safe with torch's threads (fork is not).
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                for metrics in pool.map(_one, experiments):
                    results.append(metrics)
                    bar.update()
    finally:
        bar.close()
    shape = tuple(len(grid[k]) for k in keys)
    metric_names = sorted({m for r in results for m in r})
    data = {}
    for m in metric_names:
        values = np.array([r.get(m, math.nan) for r in results], dtype=np.float64).reshape(shape)
        unit, meaning = METRICS.get(m, ("", m))
        data[m] = (keys, values, {"units": unit, "long_name": meaning})
    coords = {k: (k, np.asarray(list(grid[k]))) for k in keys}
    base_attrs = {k: str(v) for k, v in base.to_dict().items() if k not in grid}
    return xr.Dataset(data, coords=coords, attrs={"title": "AENP Workbench sweep", **base_attrs})


def summarise(ds: xr.Dataset, over: str = "seed") -> xr.Dataset:
    """Mean and standard error over dimension ``over`` of every variable with it: ``<m>_mean``, ``<m>_se``.

    The standard error is the sample standard deviation (ddof 1, NaNs skipped) over ``over`` divided
    by the square root of the number of non-NaN values; it is NaN where fewer than two values remain.
    Units and meanings are kept; variables without ``over`` are copied unchanged; ``n_<over>`` counts
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
