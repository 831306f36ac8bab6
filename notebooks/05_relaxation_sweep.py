# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · How much symmetry? A relaxation sweep
#
# `strength` sets how much an approximately equivariant model may use its fixed inputs:
# while training, each task sees them with probability `strength` (the dropout is
# `p = 1 - strength`).
#
# - `strength = 0`: never used, so the model **is** strictly equivariant;
# - `strength = 1`: always used, so the strict component is never trained on its own and the
#   model is as free as the fixed inputs allow;
# - in between: both the model with and without fixed inputs are trained (the paper: 0.5).
#
# This notebook trains one model per (group, strength, seed) on `mountain-1d` (a
# stationary GP plus a fixed mountain range beyond the context window: notebook 02), where
# departing from translation symmetry is worth tenths of a nat. It collects the metrics in
# an `xarray.Dataset` with dimensions `group`, `strength` and `seed`, plots means with
# standard errors over seeds against the ceilings of the data, and saves the dataset to
# netCDF so a sweep can be compared with the next one. The runs are independent, so they go
# to a Dask cluster (`workbench.sweep.sweep`): by default one started here with a worker
# process per CPU, or your own cluster with `scheduler = "tcp://HOST:PORT"`. On a geographic dataset (e.g.
# `dataset = "colorado-temperature"`, groups `T` and `T+C4`) the correlation between the
# learned breaking field and elevation is swept too.

# %% tags=["parameters"]
fast = False  # True: tiny budgets (well under a minute); the tests use it
dataset = "mountain-1d"  # GP worlds add the ceilings; geographic data the elevation correlation
groups = ["T", "T+flip"]  # symmetry groups to sweep (2-D data: T, T+C4, T+D4, ...)
strengths = [0.0, 0.5, 1.0]  # relaxation strengths to sweep
steps = 500  # training steps per model (2 groups x 3 strengths x 3 seeds: about 7 min)
lr = 2e-3  # AdamW peak learning rate (the library default: warm-up, then cosine decay to the end)
seeds = 3  # seeds per point: results are mean +- standard error over seeds
test_tasks = 512  # test tasks for the log-likelihoods (the same for every model)
reference_none = True  # also train the free model (group none) as a reference line
results_path = "relaxation_sweep.nc"  # the results Dataset is saved here (netCDF)
train = True  # False: read the finished sweep from run_dir instead of training
run_dir = "relaxation_sweep"  # the sweep's files: sweep.nc, none.nc and each run under sweep.runs/
resume = False  # True: continue an interrupted sweep in run_dir (only the runs not done)
workers = None  # worker processes of the local Dask cluster (None: one per usable CPU)
scheduler = None  # or the address of your own Dask cluster, e.g. "tcp://10.0.0.5:8786"
metrics_path = None  # write the key numbers as JSON here
device = "auto"  # auto, cpu or cuda

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xarray as xr

import workbench.plot
from workbench import Experiment, get_group
from workbench.data.registry import make_dataset
from workbench.evaluate import orbit_error
from workbench.models import build_model
from workbench.runs import METRICS
from workbench.sweep import dashboard_link, local_client, paired_difference, summarise, sweep

if fast:
    steps, test_tasks, seeds = min(steps, 3), min(test_tasks, 16), min(seeds, 2)
    strengths = [0.0, 0.5, 1.0]
if not train and not (Path(run_dir) / "sweep.nc").exists():
    raise ValueError(f"train = False reads a finished sweep: {run_dir}/sweep.nc does not exist")
groups, strengths = [str(g) for g in groups], [float(s) for s in strengths]
seed_list = list(range(int(seeds)))
parameters = dict(
    fast=fast,
    dataset=dataset,
    groups=groups,
    strengths=strengths,
    steps=steps,
    lr=lr,
    seeds=seeds,
    test_tasks=test_tasks,
    reference_none=reference_none,
    results_path=str(results_path),
    train=train,
    run_dir=str(run_dir),
    resume=resume,
    workers=workers,
    scheduler=scheduler,
    device=device,
)
sampler = make_dataset(dataset)
tests = sampler.test_set(test_tasks, batch_size=16)
dim_x = len(sampler.box)
print(sampler)


# %% [markdown]
# ## 1. Before training: strength 0 is exactly equivariant
#
# Untrained models, one per strength, for the first group. At `strength = 0` the fixed inputs
# are never used, so the orbit error sits at float rounding level; at any positive strength
# the (random, untrained) fixed inputs are on at prediction time and break the symmetry.


# %%
def experiment(group: str, strength: float | None, seed: int) -> Experiment:
    """One point of the sweep; ``strength=None``: the free model (none)."""
    common = dict(dataset=dataset, model="conv", steps=steps, lr=lr, test_tasks=test_tasks)
    common.update(seed=seed, device=device)
    if strength is None:
        return Experiment(group="none", relaxation="strict", **common)
    return Experiment(group=group, relaxation="fixed-inputs", strength=strength, **common)


before = {}
for s in strengths:
    torch.manual_seed(0)
    model = build_model(experiment(groups[0], s, 0), dim_x, 1, sampler.box).eval()
    before[s] = orbit_error(model, tests[:1], get_group(groups[0]), sampler.box, seed=0)
table = pd.Series(before, name=f"orbit error under {groups[0]}, untrained")
table = table.rename_axis("strength")
table.to_frame().style.format("{:.2e}")


# %% [markdown]
# ## 2. The sweep, on Dask
#
# One training run per (group, strength, seed), plus the free model (`none`) per seed. Every
# run is a task for a Dask cluster: here a local one with a worker process per CPU (one
# torch thread each), or yours when `scheduler` is set. Runs come back as they finish; each
# is saved at once under `run_dir/sweep.runs/`, and `run_dir/sweep.nc` is rewritten after
# every run, so an interrupted sweep keeps what it finished and `resume = True` (or
# `workbench sweep --resume` in a shell) runs only the rest. A run that fails (a diverging
# learning rate) is a NaN cell with its error text in the `error` variable, not the end of
# the sweep. The Dask dashboard (live task stream, worker memory) is linked below when the
# cluster serves one (it needs the `bokeh` package).

# %%
grid = {"group": groups, "strength": strengths, "seed": seed_list}
Path(run_dir).mkdir(parents=True, exist_ok=True)
files = {"sweep": Path(run_dir) / "sweep.nc", "none": Path(run_dir) / "none.nc"}
if train:
    # One worker per CPU, or per GPU when the runs train on GPUs (one run per GPU at a time).
    client = local_client(workers, gpus=0 if device == "cpu" else None) if scheduler is None else None
    if client is not None:
        print("Dask dashboard:", dashboard_link(client) or "none (pip install bokeh for one)")
    try:
        on = dict(client=client, scheduler=scheduler, resume=resume, overwrite=not resume)
        swept = sweep(experiment(groups[0], strengths[0], 0), grid, out=files["sweep"], **on)
        if reference_none:
            sweep(experiment("none", None, 0), {"seed": seed_list}, out=files["none"], **on)
    finally:
        if client is not None:
            client.close()
swept = xr.load_dataset(files["sweep"])
free_runs = xr.load_dataset(files["none"]) if reference_none else None
failed = swept["status"].values != "done"
if failed.any():
    print(f"{int(failed.sum())} runs did not finish:", np.unique(swept["error"].values[failed]))
swept[["status", "run_path"]].to_dataframe().head()

# %% [markdown]
# ## 3. Collect the results as an `xarray.Dataset`
#
# The sweep's Dataset already has every metric as a variable over `(group, strength, seed)`
# with its units and meaning as attributes. `results` keeps those, adds the free reference
# model's numbers over `seed` only (`*_none`), and is written to `results_path` as netCDF
# (read it back with `xarray.open_dataset`; `results.mean("seed")` gives the means). The
# per-task log-likelihoods (`loglik_per_task`, over `task` too) stay in `run_dir/sweep.nc`.

# %%
units = sampler.coords.units if hasattr(sampler, "coords") else "same as y"
described = {
    **{name: {"units": u, "long_name": meaning} for name, (u, meaning) in METRICS.items()},
    "breaking_elevation_corr": {
        "units": "1",
        "long_name": "correlation of the breaking field with elevation inside the box",
    },
    "breaking_truth_corr": {
        "units": "1",
        "long_name": "correlation of the breaking field with the true breaking term",
    },
    "breaking_rms": {
        "units": units,
        "long_name": "root mean square of the breaking field inside the box",
    },
}
results = swept.drop_dims("task").drop_vars(["status", "error", "run_path"])
for name in results.data_vars:
    results[name].attrs.update(described.get(str(name), {}))
if reference_none:
    for name in ("loglik", "oracle_loglik", "orbit_error"):
        if name in free_runs:
            attrs = {**described.get(name, {}), "note": "free reference model (group none)"}
            results[f"{name}_none"] = (("seed",), free_runs[name].values, attrs)
results["group"].attrs["long_name"] = "symmetry group of the equivariant part"
results["strength"].attrs.update(
    units="1", long_name="relaxation strength (fixed-input dropout 1 - strength)"
)
results["seed"].attrs["long_name"] = "training seed (same test tasks for all)"
results.attrs = {
    "title": f"relaxation sweep on {dataset}",
    "dataset": dataset,
    "model": "conv",
    "relaxation": "fixed-inputs",
    "steps": steps,
    "lr": lr,
    "test_tasks": test_tasks,
    "source": "notebooks/05_relaxation_sweep.ipynb (AENP Workbench)",
}
Path(results_path).parent.mkdir(parents=True, exist_ok=True)
results.to_netcdf(results_path)
print(f"saved to {results_path}")
# Mean and standard error over seeds (NaN with a single seed: no error bar to draw).
n = results.sizes["seed"]
summary = summarise(results, over="seed")
per_seed = [v for v in results.data_vars if "seed" in results[v].dims]
mean = xr.Dataset({v: summary[f"{v}_mean"] for v in per_seed})
se = xr.Dataset({v: summary[f"{v}_se"] for v in per_seed})
results

# %% [markdown]
# Every run is scored on the same test tasks, so two settings can be compared **task by
# task**: the paired difference cancels how hard each task is and has a far smaller standard
# error than the two means' error bars suggest. Here the strongest relaxation minus the strict
# model, per group, averaged over seeds task by task (`pool="seed"`):

# %%
paired = paired_difference(swept, {"strength": strengths[-1]}, {"strength": strengths[0]}, pool="seed")
paired.to_dataframe()

# %% [markdown]
# ## 4. Plots
#
# Left: test log-likelihood against strength (mean ± standard error over seeds), with the
# fixed inputs on (solid) and off (dashed: the strict component), the free model, and the
# ceilings of the data where they are known: the oracle A and the best strictly
# translation-equivariant Gaussian predictor D. Middle: the orbit error, our equivariance
# check, which must be at rounding level at `strength = 0`. Right: on geographic data, the
# correlation of the breaking field with elevation (otherwise `delta_equiv`, how much the
# fixed inputs move predictions).

# %%
third = "breaking_elevation_corr" if "breaking_elevation_corr" in results else "delta_equiv"
fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
for i, g in enumerate(groups):
    colour = f"C{i}"
    m, e = mean.sel(group=g), se.sel(group=g)
    axes[0].errorbar(
        strengths,
        m["loglik"],
        yerr=e["loglik"],
        fmt="o-",
        capsize=4,
        color=colour,
        label=f"{g}, fixed inputs on",
    )
    axes[0].errorbar(
        strengths,
        m["loglik_strict"],
        yerr=e["loglik_strict"],
        fmt="s--",
        capsize=4,
        color=colour,
        alpha=0.6,
        label=f"{g}, strict component",
    )
    axes[1].semilogy(strengths, np.maximum(m["orbit_error"], 1e-10), "o-", color=colour, label=g)
    axes[2].errorbar(strengths, m[third], yerr=e[third], fmt="o-", capsize=4, color=colour, label=g)
if "loglik_none" in results:
    free = float(results["loglik_none"].mean())
    axes[0].axhline(free, color="tab:red", lw=1, label="free model (none), mean")
if "oracle_loglik" in results:
    axes[0].axhline(float(results["oracle_loglik"].max()), color="k", ls="-", label="A: oracle")
if "equivariant_loglik" in results:
    d = float(results["equivariant_loglik"].max())
    axes[0].axhline(d, color="#bc4b51", ls=":", label="D: best strict (translations)")
axes[0].set_ylabel("test log-likelihood [nats/target]")
axes[1].set_ylabel("orbit error [y units] (zeros drawn at 1e-10)")
axes[2].set_ylabel(third)
axes[2].set_title(results[third].attrs.get("long_name", ""), fontsize=9)
for ax in axes:
    ax.set_xlabel("strength")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.suptitle(f"{dataset}: {steps} steps per model, mean ± s.e. over {n} seeds")
plt.show()


# %% [markdown]
# ## 5. Where the gap goes
#
# For each group: the strict model (strength 0), the middle strength and the strongest,
# with the free model, each bar from the model's mean score up to the oracle (see notebook
# 02). A strength-0 model is strictly equivariant, so it is charged the symmetry headroom
# B - D. D is the ceiling for translations; for a strict `T+flip` model the true ceiling is
# lower still (not computed), so its red piece is a lower bound.


# %%
def as_strict(metrics: dict) -> dict:
    """A strength-0 model's metrics, charged the headroom: it is strictly equivariant."""
    m = dict(metrics)
    m["symmetry_headroom"] = m["gaussian_loglik"] - m["equivariant_loglik"]
    return m


def seed_metrics(ds: xr.Dataset, **point) -> list[dict]:
    """The metrics of one point of a sweep, one dict per seed that finished."""
    cell = ds.sel(point)
    names = [
        v for v in cell.data_vars if cell[v].dims == ("seed",) and v not in ("status", "error", "run_path")
    ]
    done = cell["status"].values == "done"
    return [{v: float(cell[v].values[i]) for v in names} for i in np.flatnonzero(done)]


gap_rows = {}
if "equivariant_loglik" in results:
    middle = strengths[len(strengths) // 2]
    for g in groups:
        for s in dict.fromkeys([strengths[0], middle, strengths[-1]]):
            ms = seed_metrics(swept, group=g, strength=s)
            gap_rows[f"{g} @ {s:g}"] = [as_strict(m) for m in ms] if s == 0 else ms
    if reference_none:
        gap_rows["none"] = seed_metrics(free_runs)
    title = f"{dataset}: where the gap to the oracle goes (mean ± s.e. over {n} seeds)"
    fig = workbench.plot.gap_split(gap_rows, title=title)
    plt.show()
else:
    print(f"{dataset} has no ceilings (not a synthetic GP dataset): no gap split")

# %% [markdown]
# What to look for: at `strength = 0` the solid and dashed curves meet (the model is its
# strict component) and should stay near or below D (a strict ConvCNP can creep above D
# by learning where it is from where its targets lie: notebook 02, section 5); as the
# strength grows the fixed
# inputs can collect the headroom, and the strict component (dashed) falls away once it
# is trained on too few tasks of its own. Differences between neighbouring strengths
# smaller than about two standard errors are noise, not a ranking. For the conv family the
# free model (`none`) is the very same network as `T` at strength 1 (fixed inputs never
# dropped) and, with the same seeds, gives the same numbers.
#
# ## Exercises
#
# 1. At `strength = 0`, compare `loglik` with `loglik_strict` and look at the orbit error. Why
#    do they behave as they do?

# %% [markdown]
# <details>
# <summary><b>Answer</b> (click to open)</summary>
#
# They are identical and the orbit error is at float rounding level: with dropout
# `p = 1 - 0 = 1` the fixed inputs are never used in training and, because they would be
# untrained, are also switched off at prediction. The model *is* its strict component.
# Relaxation costs nothing here: `strength = 0` reproduces the strict model exactly.
#
# </details>

# %% [markdown]
# 2. What happens to `loglik_strict` (dashed) as `strength` approaches 1, and why?

# %% [markdown]
# <details>
# <summary><b>Answer</b> (click to open)</summary>
#
# The strict component is trained only on the tasks where the fixed inputs are dropped, a
# fraction `1 - strength` of them. At `strength = 1` it never sees a task without `t` and
# nothing asks it to predict well on its own, so its log-likelihood falls far below the
# strict model's. That strict component is also what the model falls back on outside the
# training box, where `t = 0`: intermediate strengths keep it useful.
#
# </details>

# %% [markdown]
# 3. The results file keeps every seed. How do you get the difference between two
#    strengths with its standard error, and why is that better than comparing two means
#    that each have their own error bar?

# %% [markdown]
# <details>
# <summary><b>Answer</b> (click to open)</summary>
#
# Take the difference seed by seed (the same seed and the same test tasks on both sides),
# then its mean and standard error over seeds:
#
# ```python
# ds = xr.open_dataset("relaxation_sweep.nc")
# diff = ds["loglik"].sel(group="T", strength=0.5) - ds["loglik"].sel(group="T", strength=0.0)
# diff.mean("seed"), diff.std("seed", ddof=1) / np.sqrt(ds.sizes["seed"])
# ```
#
# Whatever makes one seed's test score high or low for both models (the same test tasks,
# the same initialisation of the shared network) cancels in the paired difference, so its
# standard error is usually smaller than the error bars of the two means suggest.
# Pairing per test task goes one step further: `paired_difference` (section 3) does it with
# the per-task log-likelihoods in `run_dir/sweep.nc`.
#
# </details>

# %%
strict_points = (
    [float(v) for v in results["orbit_error"].sel(strength=0.0).values.ravel()] if 0.0 in strengths else []
)


def per_point(name: str, table: xr.Dataset) -> dict:
    """One number per (group, strength) point, keyed ``GROUP@STRENGTH``."""
    points = [(g, s) for g in groups for s in strengths]
    return {f"{g}@{s:g}": float(table[name].sel(group=g, strength=s)) for g, s in points}


metrics = {
    "seeds": n,
    "loglik": per_point("loglik", mean),
    "loglik_se": per_point("loglik", se) if n > 1 else None,
    "loglik_strict": per_point("loglik_strict", mean),
    "loglik_none": float(results["loglik_none"].mean()) if reference_none else None,
    "ceilings": {
        k: float(results[k].max())
        for k in ("oracle_loglik", "gaussian_loglik", "equivariant_loglik")
        if k in results
    },
    "orbit_error_untrained": {f"{s:g}": v for s, v in before.items()},
    "orbit_error_strict": max(strict_points) if strict_points else None,
    "results_path": str(results_path),
    "results_dims": dict(results.sizes),
    "results_variables": sorted(results.data_vars),
}
record = {"notebook": "05_relaxation_sweep", "parameters": parameters, **metrics}
if metrics_path is not None:
    Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics_path).write_text(json.dumps(record, indent=2))
    print("metrics written to", metrics_path)
record
