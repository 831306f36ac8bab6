"""Sweeps: independent runs over a grid of experiment settings on Dask distributed, into one xarray Dataset.

``sweep(Experiment(dataset="gibbs-1d", steps=2000), {"group": ["T", "none"], "strength": [0, 0.5, 1]})``
trains every combination and returns a Dataset with one dimension per swept field and one variable
per metric (NaN where a run does not report it).

**Where the runs go.** Every run is a task on a ``dask.distributed`` cluster:

- no ``scheduler`` and no ``client``: an embedded ``LocalCluster`` on loopback that starts and stops
  with the sweep: ``workers`` processes (default: the CPUs this process may use,
  :func:`workbench.threads.usable_cpus`) of one thread each, and one torch thread per run, so the
  processes are the parallelism and do not fight over cores;
- ``scheduler="tcp://HOST:PORT"`` or ``client=Client(...)``: the user's cluster (started with
  ``dask scheduler`` / ``dask worker``, or on Slurm/PBS with ``dask-jobqueue``); its workers need
  the workbench installed and the datasets at the same paths. The cluster is left running.

With ``device="auto"`` (or ``"cuda"``) and CUDA present, a run asks the scheduler for the worker
resource ``GPU: 1``, so a GPU trains one run at a time: the embedded cluster then has one worker per
GPU (each pinned to its own GPU) advertising ``{"GPU": 1}``; on your own cluster start GPU workers
with ``dask worker ... --resources GPU=1`` (runs on a cluster without that resource are sent
anywhere and pick their device themselves). When ``distributed`` is not installed, an embedded
sweep runs its settings one by one in this process (with a warning); nothing else changes.

**What streams back.** Runs finish in any order (``as_completed``, with a tqdm bar and the Dask
dashboard link when the cluster has one). With ``out`` (a netCDF path, checked before any training)
each finished run is saved at once under the folder beside it (``sweep.nc`` -> ``sweep.runs/
group=T_strength=0.5/``, :meth:`workbench.runs.Run.save`; the path relative to ``out``'s folder is the
``run_path`` variable) and the Dataset is rewritten (atomically), so a killed sweep keeps every run
it finished. ``resume=True`` (``workbench sweep --resume``) reads that file and runs only the
settings whose ``status`` is not ``done``; the grid and the fixed settings must be the file's. A
run finished and saved in the instant between its save and the file's rewrite is run again into a
new folder (``...-2``).

**Failures.** A setting that fails (a learning rate that diverges, a worker that died three times on
it) gets NaN metrics, ``status = "failed"`` and its error text in ``error``; the sweep goes on.

**Seeds and paired differences.** Put ``seed`` in the grid; :func:`summarise` gives means and
standard errors over it. Every run of a dataset is evaluated on the same fixed test tasks, so each
run also returns its log-likelihood per test task (a float64 array, small: 8 bytes a task), stored
as ``loglik_per_task`` over the swept dimensions and ``task``; :func:`paired_difference` compares
two settings task by task, which cancels the tasks' own difficulty.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from workbench.config import Experiment
from workbench.runs import METRICS

#: Text variables of a sweep's Dataset (one string per setting).
TEXT = ("status", "error", "run_path")
#: The per-task log-likelihoods of each run (swept dimensions + ``task``).
PER_TASK = "loglik_per_task"


@dataclass
class Outcome:
    """What one setting of a sweep produced: metrics and per-task log-likelihoods, or an error."""

    metrics: dict[str, float] = field(default_factory=dict)
    #: Log-likelihood per target of each test task ``[n_tasks]`` (fixed inputs on); None on failure.
    per_task: np.ndarray | None = None
    error: str = ""
    #: The trained :class:`workbench.runs.Run` (weights on the CPU), sent back only to be saved.
    run: Any = None
    #: Where the run was saved, relative to the output file's folder ("" when not saved).
    path: str = ""

    @property
    def status(self) -> str:
        """``done`` or ``failed``."""
        return "failed" if self.error else "done"


def run_setting(exp: Experiment, keep_run: bool = False, pin_gpu: bool = False) -> Outcome:
    """Train and evaluate one setting with one torch thread (the workers are the parallelism).

    Runs on a Dask worker (or in this process). A failure comes back as its error text: one failed
    setting must not discard the others. ``pin_gpu`` (a run that claimed a GPU): a LocalCluster
    worker takes GPU ``name % device_count``.
    """
    import torch

    from workbench.data.registry import make_dataset
    from workbench.evaluate import loglik_per_task
    from workbench.runs import run

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if pin_gpu:
            _pin_gpu()
        # The same fixed test tasks run() would make; kept here for the per-task log-likelihoods.
        tasks = make_dataset(exp.dataset).test_set(exp.test_tasks, batch_size=16)
        r = run(exp, test_tasks=tasks, progress=False)
        per_task = loglik_per_task(r.model, tasks)
        if keep_run:
            r.model.cpu()
        return Outcome(dict(r.metrics), per_task, "", r if keep_run else None)
    except Exception as err:
        return Outcome(error=f"{type(err).__name__}: {err}")
    finally:
        torch.set_num_threads(threads)


def _pin_gpu() -> None:
    """Give a LocalCluster worker (named 0, 1, ...) its own GPU; others, or set ones, are left alone."""
    import torch
    from distributed import get_worker

    if "CUDA_VISIBLE_DEVICES" in os.environ:  # e.g. dask-cuda gives each worker its GPU this way
        return
    name = get_worker().name
    if isinstance(name, int) and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        torch.cuda.set_device(name % torch.cuda.device_count())


def gpu_resources(exp: Experiment, gpus: int) -> dict[str, int] | None:
    """The Dask worker resources one run needs: ``{"GPU": 1}`` when it will train on one of ``gpus``."""
    return {"GPU": 1} if gpus > 0 and exp.device in ("auto", "cuda") else None


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


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


def runs_folder(out: str | Path) -> Path:
    """Where the runs of the sweep written to ``out`` are saved: ``sweep.nc`` -> ``sweep.runs``."""
    return Path(out).with_suffix(".runs")


def _write(ds: xr.Dataset, path: Path) -> None:
    """Write ``ds`` to ``path`` atomically: a crash mid-write leaves the previous partial file."""
    tmp = path.with_name(f".{path.name}.partial")
    ds.to_netcdf(tmp)
    os.replace(tmp, path)


def _label(point: dict[str, Any]) -> str:
    """A folder name for one setting, e.g. ``group=T_strength=0.5_seed=0``."""
    raw = "_".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items())
    return "".join(c if c.isalnum() or c in "-_.+=" else "-" for c in raw)


def dashboard_link(client: Any) -> str | None:
    """The Dask dashboard's address, or None when the scheduler serves none (bokeh not installed there).

    The scheduler always runs a small web server (health, metrics), so its ``dashboard`` service
    alone does not mean a dashboard: the scheduler is asked whether it can import bokeh.
    """
    try:
        if "dashboard" not in client.scheduler_info().get("services", {}):
            return None
        # A lambda travels by value: the scheduler need not have the workbench installed.
        has_bokeh = client.run_on_scheduler(lambda: __import__("importlib.util").util.find_spec("bokeh"))
        return str(client.dashboard_link) if has_bokeh is not None else None
    except Exception:  # an old or locked-down scheduler: no link is no loss
        return None


def _has_distributed() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def local_client(workers: int | None = None, gpus: int | None = 0) -> Any:
    """A ``distributed.Client`` with its own LocalCluster on loopback; closing the client stops it.

    ``workers`` processes (default :func:`workbench.threads.usable_cpus`) of one thread each. With
    GPUs (``gpus``; None: as many as CUDA sees) there is one worker per GPU (at most ``workers``),
    each advertising the resource ``GPU: 1`` and pinned to its own GPU by the runs. The dashboard
    is served (on 127.0.0.1:8787, or a free port) only when bokeh is installed: nothing is fetched
    from the net.
    """
    from distributed import Client

    from workbench.threads import usable_cpus

    gpus = _cuda_count() if gpus is None else gpus
    workers = min(workers or gpus, gpus) if gpus else (workers or usable_cpus())

    try:
        import bokeh  # noqa: F401

        dashboard = "127.0.0.1:8787"  # another free port is taken when that one is busy
    except ImportError:
        # No dashboard; the scheduler's small web server (health, metrics) takes any free port.
        dashboard = "127.0.0.1:0"
    return Client(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=dashboard,
        # Closing a cluster makes its workers log lost heartbeats; a failed run is in the Dataset.
        silence_logs=logging.CRITICAL,
        resources={"GPU": 1} if gpus else None,
    )


@contextmanager
def _engine(
    experiments: list[Experiment], workers: int | None, scheduler: str | None, client: Any
) -> Iterator[tuple[Any, int]]:
    """The client to submit to (None: run in this process) and the GPUs (worker resources) to claim."""
    if client is not None:
        yield client, _cluster_gpus(client)
        return
    if scheduler is not None:
        if not _has_distributed():
            raise ImportError("connecting to a Dask scheduler needs distributed: pip install distributed")
        from distributed import Client

        with Client(scheduler, timeout="30s") as c:
            yield c, _cluster_gpus(c)
        return
    if not _has_distributed():
        warnings.warn(
            "distributed is not installed: the sweep runs its settings one by one in this process "
            "(pip install distributed for a local cluster)",
            stacklevel=3,
        )
        yield None, 0
        return
    # One worker per GPU when the runs train on GPUs (one run per GPU at a time); else per CPU.
    with local_client(workers, None if any(gpu_resources(e, 1) for e in experiments) else 0) as c:
        yield c, _cluster_gpus(c)


def _cluster_gpus(client: Any) -> int:
    """How many ``GPU`` resources the workers of a user's cluster advertise (0: send runs anywhere)."""
    try:
        workers = client.scheduler_info().get("workers", {}).values()
        return int(sum(w.get("resources", {}).get("GPU", 0) for w in workers))
    except Exception:
        return 0


def _outcomes(
    experiments: list[Experiment], todo: list[int], engine: tuple[Any, int], keep_run: bool
) -> Iterator[tuple[int, Outcome]]:
    """(index, outcome) of every setting in ``todo``, in the order they finish."""
    client, gpus = engine
    if client is None:
        for i in todo:
            yield i, run_setting(experiments[i], keep_run)
        return
    from distributed import as_completed

    futures = {}
    for i in todo:
        exp = experiments[i]
        gpu = gpu_resources(exp, gpus)
        future = client.submit(run_setting, exp, keep_run, gpu is not None, resources=gpu, pure=False)
        futures[future] = i
    for future in as_completed(futures):
        i = futures.pop(future)
        try:
            outcome = future.result()
        except Exception as err:  # the worker died (KilledWorker) or the result could not come back
            outcome = Outcome(error=f"{type(err).__name__}: {err}")
        future.release()
        yield i, outcome


def sweep(
    base: Experiment,
    grid: dict[str, Sequence[Any]],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    out: str | Path | None = None,
    progress: bool = True,
    resume: bool = False,
    overwrite: bool = False,
) -> xr.Dataset:
    """Run ``base`` with every combination of ``grid`` (field -> values) on Dask; metrics as ``[field..]``.

    ``workers``: processes of the embedded cluster (default: the usable CPUs); ``scheduler`` (an
    address such as ``tcp://HOST:PORT``) or ``client`` (a ``distributed.Client``): use that cluster
    instead. ``out``: the netCDF file, rewritten after every finished run, with the runs saved under
    :func:`runs_folder`; an existing file is an error unless ``resume`` (run only what is not
    ``done``) or ``overwrite``. See the module docstring for the Dataset's variables.
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
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if scheduler is not None and client is not None:
        raise ValueError("give scheduler= or client=, not both")
    if resume and out is None:
        raise ValueError("resume=True continues the sweep in a file: give out= (the file to resume)")
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    # Build (and so validate) every experiment before training any: a typo fails in a second, not an hour.
    experiments = [replace(base, **dict(zip(keys, combo, strict=True))) for combo in combos]
    results: list[Outcome | None] = [None] * len(experiments)
    if out is not None:
        out = check_output(out)
        if out.exists() and resume:
            results = _read_done(out, base, grid)
            n_done = sum(r is not None for r in results)
            print(
                f"sweep: resuming {out}: {len(results) - n_done} to run, {n_done} done already",
                file=sys.stderr,
            )
        elif out.exists() and not overwrite:
            raise ValueError(
                f"sweep output {str(out)!r} exists (an earlier sweep?): resume it (resume=True, CLI "
                "--resume), replace it (overwrite=True, CLI --overwrite) or choose another file"
            )
    todo = [i for i, r in enumerate(results) if r is None]
    n_task = max(e.test_tasks for e in experiments)

    def save(i: int, outcome: Outcome) -> None:
        """Save a finished run under the runs folder (a fresh folder: nothing is overwritten)."""
        from workbench.runs import unique_path

        r, outcome.run = outcome.run, None
        if r is None or out is None:
            return
        point = dict(zip(keys, combos[i], strict=True))
        try:
            path = r.save(unique_path(runs_folder(out) / _label(point)))
            outcome.path = os.path.relpath(path, out.parent)
        except OSError as err:  # the metrics are still good: keep them, say the run was not saved
            warnings.warn(f"sweep: the run {_label(point)} could not be saved: {err}", stacklevel=3)

    if out is not None:
        _write(_collect(base, grid, results, n_task), out)
    bar = tqdm(total=len(experiments), initial=len(experiments) - len(todo), disable=not progress)
    bar.set_description("sweep")
    try:
        if todo:
            with _engine(experiments, workers, scheduler, client) as engine:
                link = dashboard_link(engine[0]) if engine[0] is not None else None
                if link:
                    print(f"sweep: Dask dashboard at {link}", file=sys.stderr)
                for i, outcome in _outcomes(experiments, todo, engine, keep_run=out is not None):
                    save(i, outcome)
                    results[i] = outcome
                    if out is not None:
                        _write(_collect(base, grid, results, n_task), out)
                    bar.update()
    finally:
        bar.close()
    return _collect(base, grid, results, n_task)


def _base_attrs(base: Experiment, grid: dict[str, Sequence[Any]]) -> dict[str, str]:
    return {k: str(v) for k, v in base.to_dict().items() if k not in grid}


def _read_done(out: Path, base: Experiment, grid: dict[str, Sequence[Any]]) -> list[Outcome | None]:
    """The finished runs recorded in a sweep's file (None for the others), once known to be this sweep's."""
    with xr.open_dataset(out) as ds:
        ds = ds.load()
    keys = list(grid)
    if "status" not in ds or list(ds["status"].dims) != keys:
        raise ValueError(
            f"cannot resume {out}: its grid is over {list(ds.get('status', ds).dims)}, "
            f"this sweep's over {keys}"
        )
    for k in keys:
        theirs, ours = ds[k].values, np.asarray(list(grid[k]))
        if theirs.shape != ours.shape or not (theirs == ours).all():
            raise ValueError(
                f"cannot resume {out}: its grid has {k} = {list(theirs)}, this sweep's {list(ours)}"
            )
    ours = _base_attrs(base, grid)
    differ = [k for k in ours if ds.attrs.get(k) != ours[k]]
    if differ:
        what = "; ".join(f"{k} = {ours[k]} here but {ds.attrs.get(k)} in the file" for k in differ)
        raise ValueError(f"cannot resume {out}: another base experiment ({what})")
    metrics = [str(n) for n, v in ds.data_vars.items() if list(v.dims) == keys and n not in TEXT]
    status = ds["status"].values.ravel()
    results: list[Outcome | None] = [None] * status.size
    for i in np.flatnonzero(status == "done"):
        index = np.unravel_index(i, ds["status"].shape)
        # NaN padding (a run with fewer test tasks than the widest) comes back as it was written.
        per_task = ds[PER_TASK].values[index] if PER_TASK in ds else None
        results[i] = Outcome(
            {m: float(ds[m].values[index]) for m in metrics},
            per_task,
            "",
            path=str(ds["run_path"].values[index]) if "run_path" in ds else "",
        )
    return results


def _collect(
    base: Experiment, grid: dict[str, Sequence[Any]], results: list[Outcome | None], n_task: int
) -> xr.Dataset:
    """The sweep's Dataset from the results so far (``None``: not run yet)."""
    keys = list(grid)
    shape = tuple(len(grid[k]) for k in keys)
    done = [r.metrics if r is not None else {} for r in results]
    metric_names = sorted({m for r in done for m in r} | {"loglik"})
    data = {}
    for m in metric_names:
        values = np.array([r.get(m, math.nan) for r in done], dtype=np.float64).reshape(shape)
        unit, meaning = METRICS.get(m, ("", m))
        data[m] = (keys, values, {"units": unit, "long_name": meaning})
    n_task = max([n_task, *(len(r.per_task) for r in results if r is not None and r.per_task is not None)])
    per_task = np.full((len(results), n_task), np.nan)
    for i, r in enumerate(results):
        if r is not None and r.per_task is not None:
            per_task[i, : len(r.per_task)] = r.per_task
    data[PER_TASK] = (
        [*keys, "task"],
        per_task.reshape(*shape, n_task),
        {
            "units": "nats/target",
            "long_name": "test log-likelihood per target of each test task, fixed inputs on",
            "note": "the same fixed test tasks for every run of a dataset: compare settings task by "
            "task with workbench.sweep.paired_difference",
        },
    )
    text = {
        "status": ["not run" if r is None else r.status for r in results],
        "error": ["" if r is None else r.error for r in results],
        "run_path": ["" if r is None else r.path for r in results],
    }
    meaning = {
        "status": "run status (done, failed or not run)",
        "error": "error of a failed run",
        "run_path": "saved run, relative to this file's folder",
    }
    for name, values in text.items():
        data[name] = (keys, np.array(values, dtype=object).reshape(shape), {"long_name": meaning[name]})
    coords = {k: (k, np.asarray(list(grid[k]))) for k in keys}
    coords["task"] = ("task", np.arange(n_task), {"long_name": "index of the test task"})
    attrs = {"title": "AENP Workbench sweep", **_base_attrs(base, grid)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def summarise(ds: xr.Dataset, over: str = "seed") -> xr.Dataset:
    """Mean and standard error over dimension ``over`` of every variable with it: ``<m>_mean``, ``<m>_se``.

    The standard error is the sample standard deviation (ddof 1, NaNs skipped) over ``over`` divided
    by the square root of the number of non-NaN values; it is NaN where fewer than two values remain.
    Units and meanings are kept; variables without ``over`` are copied unchanged, text variables with
    it (``status``, ``error``, ``run_path``) are dropped; ``n_<over>`` counts
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


def paired_difference(
    ds: xr.Dataset,
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    pool: str | Sequence[str] = (),
    var: str = PER_TASK,
) -> xr.Dataset:
    """Setting ``a`` minus setting ``b`` of a sweep, paired on the same test tasks: mean and s.e. over tasks.

    ``a`` and ``b`` select along the same swept dimensions (``{"strength": 0.5}`` vs
    ``{"strength": 0.0}``); the other dimensions stay (e.g. one difference per group and seed).
    ``pool`` (e.g. ``"seed"``) averages those dimensions task by task first: the s.e. is then over
    tasks of the seed-averaged difference (how sure these trained models differ on this data), not
    over seeds (for that, :func:`summarise` the ``difference_mean`` over ``seed``). Returns
    ``difference_mean``, ``difference_se`` (sd over tasks, ddof 1, / sqrt(n); NaN tasks skipped, as
    :func:`workbench.ceilings.per_task_difference`) and ``n_task``.
    """
    for k in [*a, *b]:
        if k not in ds.dims or k == "task":
            swept = ", ".join(str(d) for d in ds.dims if d != "task")
            raise ValueError(f"cannot select {k!r}: not a swept dimension of the sweep ({swept})")
    if set(a) != set(b):
        raise ValueError(f"select along the same dimensions on both sides: {sorted(a)} vs {sorted(b)}")
    for k in ("dataset", "test_tasks"):
        if k in a and a[k] != b[k]:
            raise ValueError(f"{k} {a[k]!r} vs {b[k]!r}: not the same test tasks, no paired difference")
    x = ds[var].sel(a).drop_vars(list(a))
    y = ds[var].sel(b).drop_vars(list(b))
    diff = x - y
    pool = [pool] if isinstance(pool, str) else list(pool)
    if pool:
        diff = diff.mean(pool, skipna=True)
    n = diff.notnull().sum("task")
    se = (diff.std("task", ddof=1, skipna=True) / np.sqrt(n)).where(n > 1)
    units = ds[var].attrs.get("units", "")
    what = f"{var} at {a} minus at {b}, paired on the same test tasks"
    return xr.Dataset(
        {
            "difference_mean": diff.mean("task", skipna=True).assign_attrs(
                units=units, long_name=f"{what} (mean over tasks)"
            ),
            "difference_se": se.assign_attrs(units=units, long_name=f"{what} (standard error over tasks)"),
            "n_task": n.assign_attrs(units="", long_name="number of test tasks"),
        },
        attrs={"a": str(a), "b": str(b), "pooled": ", ".join(pool)},
    )
