"""Does equivariance matter at scale? Test log-likelihood against training-set size and compute.

After Brehmer et al. (*Does equivariance matter at scale?*), for one dataset and a few ways to get or
break the symmetry (:data:`METHODS`):

- :func:`data_scaling`: each method trained for the same number of steps on a fixed pool of
  ``n_tasks`` training tasks (``Experiment.train_pool``: epochs over the pool), for pool sizes
  ``2^6 ... 2^14``: does equivariance improve data efficiency, does augmentation close the gap
  given enough epochs?
- :func:`compute_scaling`: each method trained on fresh tasks for a number of steps that fits a
  CPU budget (its own cost per step, measured here: :func:`workbench.budget.step_cpu_seconds`):
  which wins at each compute budget?
- :func:`fit_power_law`: ``loglik = c - a x^(-b)`` (an asymptote ``c`` approached as a power law),
  with its R^2; :func:`power_laws` fits every method's seed means and says where the law holds.
- :func:`winners`: at each size or budget, the best method and its paired margin over the
  runner-up (mean ± s.e. over seeds of the per-seed paired difference on the same test tasks).

The runs are a :func:`workbench.sweep.sweep` per method (Dask, one process per CPU, per-task
log-likelihoods on one fixed test set), joined along a ``method`` dimension.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import xarray as xr

from workbench.config import Experiment

#: The study's methods: the free model, the free model with augmentation (every task moved: the
#: paper's baseline), the strict model, and two that depart from the symmetry by a learned amount.
METHODS: dict[str, dict[str, Any]] = {
    "none": dict(model="conv", group="none", relaxation="strict"),
    "none+augmentation": dict(model="conv", group="T", relaxation="augmentation", strength=1.0),
    "strict": dict(model="conv", group="T", relaxation="strict"),
    "fixed-inputs": dict(model="conv", group="T", relaxation="fixed-inputs", strength=0.5),
    "residual-pathway": dict(model="conv", group="T", relaxation="residual-pathway", strength=0.5),
}
#: Training-set sizes of the data axis: 2^6 ... 2^14 tasks, every second power.
SIZES = tuple(2**k for k in range(6, 15, 2))
#: CPU-seconds (one thread) of the compute axis.
BUDGETS = (4.0, 12.0, 36.0)
LOGLIK_UNITS = "nats/target"


def _check_methods(methods: Sequence[str] | None) -> list[str]:
    methods = list(METHODS) if methods is None else list(methods)
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods {bad or methods!r} are not valid; choose from: {', '.join(METHODS)}")
    return methods


def _base(dataset: str, method: str, **fields: Any) -> Experiment:
    return Experiment(dataset=dataset, **METHODS[method], **fields)


def _validation(dataset: str, steps: int) -> int:
    """Early stopping every fifth of the steps on data with a validation split (real data overfit)."""
    from workbench.data.registry import make_dataset

    return max(steps // 5, 10) if make_dataset(dataset).has_validation else 0


def _join(parts: dict[str, xr.Dataset], attrs: dict[str, Any]) -> xr.Dataset:
    keep = ["loglik", "loglik_per_task", "status", "steps_run"]
    ds = xr.concat(
        [p[[v for v in keep if v in p]] for p in parts.values()],
        dim=xr.DataArray(list(parts), dims="method", name="method"),
        join="outer",
    )
    ds["loglik"].attrs.update(units=LOGLIK_UNITS, long_name="test log-likelihood per target")
    # Each sweep's attributes describe its own method; the study's describe the study.
    ds.attrs = {"title": "AENP Workbench scaling study", **attrs}
    return ds


@contextmanager
def _cluster(workers: int | None, client: Any) -> Iterator[Any]:
    """The caller's Dask client, or one started (and stopped) here; None without ``distributed``
    (the sweeps then run one by one in this process)."""
    from workbench.sweep import _has_distributed, local_client

    if client is not None or not _has_distributed():
        yield client
        return
    own = local_client(workers)
    try:
        yield own
    finally:
        own.close()


def data_scaling(
    dataset: str,
    *,
    methods: Sequence[str] | None = None,
    sizes: Sequence[int] = SIZES,
    steps: int = 500,
    seeds: int = 3,
    test_tasks: int = 256,
    workers: int | None = None,
    client: Any = None,
    progress: bool = True,
) -> xr.Dataset:
    """Test log-likelihood against training-set size: ``loglik[method, n_tasks, seed]`` (and per task).

    Every run trains ``steps`` steps of batch 16 on a fixed pool of ``n_tasks`` tasks (so the
    smallest pools are seen for many epochs); real datasets keep the weights of the best validation
    score. All runs are scored on the same ``test_tasks`` test tasks. ``workers`` processes of a
    local Dask cluster, or ``client`` (a ``distributed.Client``: yours, left running).
    """
    from workbench.sweep import sweep

    methods = _check_methods(methods)
    bad = [n for n in sizes if not isinstance(n, int) or n < 16 or n % 16]
    if bad or not sizes:
        raise ValueError(
            f"sizes {bad or list(sizes)!r}: give pool sizes that are multiples of 16 (the batch)"
        )
    grid = {"train_pool": list(sizes), "seed": list(range(seeds))}
    every = _validation(dataset, steps)
    with _cluster(workers, client) as c:
        parts = {
            m: sweep(
                _base(dataset, m, steps=steps, test_tasks=test_tasks, validate_every=every),
                grid,
                client=c,
                workers=workers,
                progress=progress,
            )
            for m in methods
        }
    ds = _join(parts, {"dataset": dataset, "steps": steps, "batch_size": 16, "axis": "data"})
    ds = ds.rename(train_pool="n_tasks")
    ds["n_tasks"].attrs.update(units="tasks", long_name="training tasks (fixed pool)")
    return ds


def step_costs(dataset: str, methods: Sequence[str]) -> dict[str, float]:
    """CPU-seconds per training step of each method on ``dataset`` (one thread, preparation included)."""
    import torch

    from workbench.budget import phase_factor, step_cpu_seconds
    from workbench.data.registry import make_dataset

    sampler = make_dataset(dataset)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        for m in methods:
            exp = _base(dataset, m)
            out[m] = step_cpu_seconds(exp, sampler) * phase_factor(exp)
        return out
    finally:
        torch.set_num_threads(threads)


def compute_scaling(
    dataset: str,
    *,
    methods: Sequence[str] | None = None,
    budgets: Sequence[float] = BUDGETS,
    seeds: int = 3,
    test_tasks: int = 256,
    workers: int | None = None,
    client: Any = None,
    progress: bool = True,
) -> xr.Dataset:
    """Test log-likelihood against compute: ``loglik[method, budget, seed]`` (and per task).

    Each method's cost per step is measured once (:func:`step_costs`); at each budget it trains as
    many steps as fit (``steps[method, budget]``), on fresh tasks, its cosine schedule ending there.
    """
    from workbench.sweep import sweep

    methods = _check_methods(methods)
    if not budgets or any(not b > 0 for b in budgets):
        raise ValueError(f"budgets {list(budgets)!r}: give positive CPU-seconds")
    cost = step_costs(dataset, methods)
    parts, steps = {}, {}
    with _cluster(workers, client) as c:
        for m in methods:
            steps[m] = [max(int(b / cost[m]), 10) for b in budgets]
            short = [b for b in budgets if b / cost[m] < 10]
            if short:
                warnings.warn(
                    f"{m} on {dataset}: budgets {short} CPU-s fit fewer than 10 steps "
                    f"({1e3 * cost[m]:.0f} ms a step); those runs train 10 steps (see steps_run)",
                    stacklevel=2,
                )
            base = _base(dataset, m, steps=steps[m][0], test_tasks=test_tasks)
            base = base.replace(validate_every=_validation(dataset, min(steps[m])))
            part = sweep(
                base,
                {"steps": steps[m], "seed": list(range(seeds))},
                client=c,
                workers=workers,
                progress=progress,
            )
            part = part.rename(steps="budget").assign_coords(budget=list(budgets))
            part["steps_run"] = ("budget", steps[m])
            parts[m] = part
    ds = _join(parts, {"dataset": dataset, "batch_size": 16, "axis": "compute"})
    ds["budget"].attrs.update(units="CPU-seconds", long_name="training compute (one CPU thread)")
    ds["steps_run"].attrs.update(units="steps", long_name="training steps that fit the budget")
    ds["step_cpu_seconds"] = ("method", [cost[m] for m in methods], {"units": "CPU-seconds"})
    return ds


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> dict[str, float | bool]:
    """Fit ``y = c - a x^(-b)`` (log-likelihood rising to an asymptote ``c``) by least squares.

    Returns ``a``, ``b``, ``c``, ``r2`` (on ``y``), ``r2_log`` and ``holds``. A power law is a straight
    line of the gap ``c - y`` against ``x`` on log-log axes, so it holds when: at least 4 points, a
    converged fit with ``a > 0`` and ``0 < b < 4``, every point below the asymptote, and ``r2_log``
    (of ``log(c - y)`` against ``log a - b log x``) at least 0.9. A curve that has levelled off fits
    ``y`` well with a steep ``b`` yet fails here: its last points sit on (or above) ``c``. Where the
    law does not hold the numbers are still returned (NaN when the fit failed), so a table can show why.
    """
    from scipy.optimize import curve_fit

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[ok], y[ok]
    nan = {"a": math.nan, "b": math.nan, "c": math.nan, "r2": math.nan, "r2_log": math.nan}
    nan.update(holds=False, points=int(len(x)))
    if len(x) < 3:
        return nan
    x0 = x.min()

    def law(x: np.ndarray, c: float, a: float, b: float) -> np.ndarray:
        return c - a * (x / x0) ** (-b)

    p0 = (y.max() + 0.1 * (y.max() - y.min() + 1e-3), max(y.max() - y[np.argmin(x)], 1e-3), 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (c, a, b), _ = curve_fit(
                law, x, y, p0=p0, maxfev=20_000, bounds=([-np.inf, 0, 0], [np.inf, np.inf, 8])
            )
    except (RuntimeError, ValueError):
        return nan
    resid = y - law(x, c, a, b)
    total = ((y - y.mean()) ** 2).sum()
    r2 = float(1 - (resid**2).sum() / total) if total > 0 else math.nan
    a_scaled = float(a * x0**b)  # a for x in its own units: y = c - a x^(-b)
    gap = c - y
    r2_log = math.nan
    if (gap > 0).all() and a > 0:
        log_gap, line = np.log(gap), np.log(a) - b * np.log(x / x0)
        spread = ((log_gap - log_gap.mean()) ** 2).sum()
        r2_log = float(1 - ((log_gap - line) ** 2).sum() / spread) if spread > 0 else math.nan
    holds = bool(len(x) >= 4 and a > 0 and 0 < b < 4 and r2_log >= 0.9)
    out = {"a": a_scaled, "b": float(b), "c": float(c), "r2": r2, "r2_log": r2_log, "holds": holds}
    return {**out, "points": int(len(x))}


def power_laws(ds: xr.Dataset, dim: str) -> xr.Dataset:
    """:func:`fit_power_law` of each method's mean over seeds along ``dim`` (``n_tasks`` or ``budget``)."""
    mean = ds["loglik"].mean("seed")
    rows = [fit_power_law(ds[dim].values, mean.sel({"method": m}).values) for m in ds["method"].values]
    out = {k: ("method", [r[k] for r in rows]) for k in ("a", "b", "c", "r2", "r2_log", "holds")}
    res = xr.Dataset(out, coords={"method": ds["method"].values})
    res["c"].attrs.update(units=LOGLIK_UNITS, long_name="asymptote of the fitted law")
    res["b"].attrs.update(units="", long_name=f"exponent of {dim}")
    return res.assign_attrs(law=f"loglik = c - a * {dim}^(-b)", axis=dim)


def paired_over_seeds(ds: xr.Dataset, a: str, b: str) -> xr.Dataset:
    """Method ``a`` minus ``b`` on the same test tasks: per seed the mean over tasks, then the mean
    and standard error over seeds (which carry the training variance), along the other dimension."""
    diff = (ds["loglik_per_task"].sel({"method": a}) - ds["loglik_per_task"].sel({"method": b})).mean("task")
    n = diff.notnull().sum("seed")
    se = (diff.std("seed", ddof=1) / np.sqrt(n)).where(n > 1)
    return xr.Dataset({"mean": diff.mean("seed"), "se": se}).assign_attrs(units=LOGLIK_UNITS, a=a, b=b)


def winners(ds: xr.Dataset, dim: str) -> list[dict[str, Any]]:
    """At each value of ``dim``: the method with the best mean, the runner-up, and the paired margin
    (mean ± s.e. over seeds); ``clear`` when the margin exceeds 2 s.e."""
    mean = ds["loglik"].mean("seed")
    out = []
    for v in ds[dim].values:
        order = mean.sel({dim: v}).to_series().sort_values(ascending=False)
        best, second = str(order.index[0]), str(order.index[1])
        p = paired_over_seeds(ds.sel({dim: v}), best, second)
        m, s = float(p["mean"]), float(p["se"])
        out.append(
            {dim: v.item(), "best": best, "runner_up": second, "margin": m, "se": s, "clear": bool(m > 2 * s)}
        )
    return out


def ceilings_of(dataset: str, test_tasks: int = 256) -> dict[str, float] | None:
    """Ceilings A (oracle), B (best Gaussian) and D (best strictly equivariant) on the study's test
    tasks, for a synthetic world; None for data whose process is not known."""
    from workbench.ceilings import ceilings
    from workbench.data.registry import make_dataset

    sampler = make_dataset(dataset)
    if not sampler.has_oracle:
        return None
    c = ceilings(sampler, sampler.test_set(test_tasks, batch_size=16))
    keys = ("oracle_loglik", "gaussian_loglik", "equivariant_loglik", "symmetry_headroom")
    return {k: float(c[k]) for k in keys}
