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
# # 03 · Mountains break translation symmetry (Colorado)
#
# Real data now: monthly mean daily-maximum temperatures (`tmax`) at up to 376 Colorado
# weather stations, 1895-1997, with the elevation of the ground. One month is one task: some
# stations are the context, the others the targets. Training uses 1895-1980, testing
# 1989-1997.
#
# Air cools by roughly 6.5 K per km of height. Two stations with the same neighbours' readings
# but at different heights should therefore get different predictions, and a
# translation-equivariant model cannot do that: it does not know where it is, so it does not
# know where the mountains are. The paper's fix: give an equivariant ConvCNP **fixed inputs**
# `t(x)`, learnable functions of absolute position, and let training decide how much to
# use them. Here we train one such model and look at the **breaking field**
#
# `breaking(x) = mu(x; D, t) - mu(x; D, 0)`,
#
# the part of the prediction that comes from knowing the place. If the model has learned
# something physical, the breaking field should look like the terrain.

# %% tags=["parameters"]
fast = False  # True: tiny budgets (well under a minute on one CPU core); the tests use it
dataset = "colorado-temperature"  # a geographic dataset with elevation
group = "T"  # symmetry of the equivariant part: T (or T+C4 etc. for rotations too)
strength = 0.5  # fixed-input strength; training dropout p is 1 - strength (the paper: 0.5)
n_fixed = 8  # number of fixed-input channels B
steps = 500  # training steps (Colorado's ~1000 training months overfit with many more)
validate_every = 0  # > 0: score the validation years every this many steps, keep the best
test_tasks = 1024  # test tasks (months of 1989-1997, each with a fresh random split)
month = "1990-07"  # context of the maps: a month YYYY-MM of 1895-1997
resolution = None  # map grid spacing in degrees; None gives 100 points along the longer side
train = True  # False: load the run from run_dir instead of training it
run_dir = None  # folder to save the run to, or to load it from when train is False
metrics_path = None  # write the key numbers as JSON here
seed = 0
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
from workbench.cache import train_or_load
from workbench.data.registry import make_dataset
from workbench.evaluate import orbit_error
from workbench.maps import correlation, map_grid
from workbench.models import build_model

if fast:
    steps, test_tasks = min(steps, 10), min(test_tasks, 16)
    validate_every = min(validate_every, 5)
    resolution = resolution or 0.25
if not train and run_dir is None:
    raise ValueError("train = False loads a saved run: give run_dir")
parameters = dict(
    fast=fast,
    dataset=dataset,
    group=group,
    strength=strength,
    n_fixed=n_fixed,
    steps=steps,
    validate_every=validate_every,
    test_tasks=test_tasks,
    month=month,
    resolution=resolution,
    train=train,
    run_dir=run_dir,
    seed=seed,
    device=device,
)
sampler = make_dataset(dataset)
tests = sampler.test_set(test_tasks, batch_size=16)
stations = sampler.context(month)
print(sampler)
print(f"{len(stations)} stations reported in {stations.label}")

# %% [markdown]
# ## 1. The data: temperature falls with height
#
# Left: the stations that reported in the chosen month on the elevation map (the Front
# Range, where the plains meet the Rockies, runs north-south through the middle). Right:
# each station's temperature against its elevation, with a straight-line fit.

# %%
lats, lons = map_grid(sampler.map_region, n=120)
terrain = xr.Dataset(
    {
        "elevation": (
            ("lat", "lon"),
            sampler.elevation_at(*np.meshgrid(lons, lats)),
            {"units": "m", "long_name": "surface elevation"},
        ),
        "station_lon": ("station", stations.lon),
        "station_lat": ("station", stations.lat),
    },
    coords={"lat": lats, "lon": lons},
    attrs={"title": f"{sampler.name}: stations of {stations.label}"},
)
fig = plt.figure(figsize=(15, 4.8), layout="constrained")
ax_map = fig.add_subplot(1, 2, 1, projection=workbench.plot.projection_for(terrain))
workbench.plot.map(terrain, "elevation", ax=ax_map, contours=False)
ax = fig.add_subplot(1, 2, 2)
slope, intercept = np.polyfit(stations.elevation, stations.value, 1)
r = correlation(stations.value, stations.elevation)
ax.scatter(stations.elevation, stations.value, s=10, alpha=0.7)
e = np.array([stations.elevation.min(), stations.elevation.max()])
ax.plot(e, slope * e + intercept, "k-", label=f"{1000 * slope:.1f} K per km, r = {r:.2f}")
ax.set_xlabel("station elevation [m]")
ax.set_ylabel(f"{sampler.variable} [°C]")
ax.set_title(f"{stations.label}: temperature against height")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## 2. The model, and an equivariance check before training
#
# An approximately equivariant ConvCNP: translation-equivariant convolutions plus `n_fixed`
# fixed-input channels that are zero outside the training box and dropped out per task
# with probability `1 - strength` while training. Before training, its strict component
# (fixed inputs off) must already be exactly equivariant; with the fixed inputs on it is not.

# %%
experiment = Experiment(
    dataset=dataset,
    model="conv",
    group=group,
    relaxation="fixed-inputs",
    strength=strength,
    n_fixed=n_fixed,
    steps=steps,
    test_tasks=test_tasks,
    seed=seed,
    device=device,
    validate_every=validate_every,
)
g = get_group(group)
torch.manual_seed(seed)
untrained = build_model(experiment, 2, 1, sampler.box).eval()
before = {
    f"fixed inputs {state}": orbit_error(
        untrained, tests[:1], g, sampler.box, seed=seed, fixed_inputs=state == "on"
    )
    for state in ("on", "off")
}
table = pd.Series(before, name=f"orbit error under {group}, untrained [model units]").to_frame()
table.style.format("{:.2e}")

# %% [markdown]
# ## 3. Train (or load)
#
# `loglik` is the test log-likelihood per target with the fixed inputs on, `loglik_strict`
# with them off: the same network without knowledge of place. `breaking_elevation_corr` is
# the correlation between the breaking field and elevation over the training box, averaged
# over the twelve months of 1989.
#
# Why only 500 steps? The data hold about 1000 training months, and the model overfits them.
# In our runs (a single seed, 0, and 256 test tasks) the test log-likelihood was best
# around 500 steps (-0.14), was -0.28 after 1000 and -0.46 after 2000, and after 3000
# steps the breaking field no longer followed the terrain. More data or early stopping on
# the validation years (1981-1988) are the remedies: with `validate_every = 100` the run scores those
# years every 100 steps and keeps the best weights (`best_step` and `val_loglik` appear in
# the metrics), so `steps = 2000` is then safe.

# %%
result = train_or_load(experiment, run_dir, train=train)
print(result.metrics_table())

# %% [markdown]
# ## 4. Maps
#
# `predict_map` returns an `xarray.Dataset` on a lon/lat grid, in °C: the prediction
# `mean`, its `std`, the strict component `mean_strict`, `breaking = mean - mean_strict`,
# the learned `fixed_inputs` and the `elevation`, plus the context stations.

# %%
ds = result.predict_map(month, resolution=resolution)
ds

# %%
fig = plt.figure(figsize=(16, 5.5), layout="constrained")
projection = workbench.plot.projection_for(ds)
for i, var in enumerate(["mean", "breaking"]):
    ax = fig.add_subplot(1, 2, i + 1, projection=projection)
    workbench.plot.map(ds, var, ax=ax)
plt.show()

# %% [markdown]
# Left: the predicted temperature with the stations drawn in the same colours (a station
# that stands out from its surroundings is a misfit). Right: the breaking field with
# elevation contours. Blue means the fixed inputs pull the prediction down: the model knows
# the place is colder than its strict component, which only sees the neighbours' readings,
# would guess.
#
# Next, the breaking field beside the elevation, and one against the other. A clearly
# negative correlation says the model has located the mountains from temperatures alone;
# nobody told it the elevation.
#
# What we saw with the defaults (500 steps, seed 0): for July 1990 the breaking field was
# positive over the lower ground of the eastern plains and the south-western corner and
# slightly negative over the high Rockies, r = -0.47 against elevation on this map and
# -0.29 averaged over the months of 1989. In that single-seed run the test log-likelihood
# was -0.136 with the fixed inputs and -0.157 for the strict component alone: a difference
# of 0.02 nats from one seed is within seed-to-seed noise, an example, not a ranking
# (notebook 02 shows how to compare models over seeds, task by task). Your numbers will
# differ a little with another seed or machine.

# %%
fig = workbench.plot.breaking_vs_elevation(ds)
plt.show()
inside = ds["in_box"].values & np.isfinite(ds["elevation"].values)
map_corr = correlation(ds["breaking"].values[inside], ds["elevation"].values[inside])
print(f"correlation of breaking field and elevation, {ds.attrs['context']}: {map_corr:.3f}")
run_corr = result.metrics.get("breaking_elevation_corr", float("nan"))
print(f"averaged over the 12 months of 1989 (run metric): {run_corr:.3f}")

# %% [markdown]
# The fixed inputs themselves do not depend on the data: they are the model's learned
# "map of the place". One channel:

# %%
workbench.plot.map(ds, "fixed_inputs", channel=0, figsize=(8, 5))
plt.show()

# %% [markdown]
# ## 5. Explore interactively
#
# `widgets.MapView(run)` draws the same maps with plotly: hover to read the value and the
# elevation at any point, switch between prediction, uncertainty, strict component,
# breaking field and fixed-input channels, and **click to add an observation**: the map
# is recomputed with the extra station in the context (one forward pass, no retraining).
# Try a station on a high peak with a warm value and watch the breaking field. State
# borders come from the shipped Natural Earth files; nothing is fetched from the internet.

# %%
from widgets import MapView

view = MapView(result, context=month, resolution=resolution, variable="breaking")
view

# %% [markdown]
# ## 6. Equivariance after training
#
# The strict component is still exactly translation equivariant; all of the symmetry
# breaking sits in the fixed inputs.

# %%
model = result.model.cpu().eval()
after = {
    f"fixed inputs {state}": orbit_error(
        model, tests[:8], g, result.box, seed=seed, fixed_inputs=state == "on"
    )
    for state in ("on", "off")
}
table = pd.Series(after, name=f"orbit error under {group}, trained [model units]").to_frame()
table.style.format("{:.2e}")

# %% [markdown]
# ## Exercises
#
# 1. Make the maps for a winter month, e.g. `month = "1990-01"` (no retraining needed: run
#    from section 4 on). Does the breaking field change? Which parts of the model depend
#    on the month and which do not?

# %% [markdown]
# <details>
# <summary><b>Answer</b> (click to open)</summary>
#
# The fixed inputs `t(x)` do not depend on the month: they are the same learned functions of
# position. The breaking field `mu(x; D, t) - mu(x; D, 0)` does, because the network combines
# `t` with the month's context data. Physically the lapse rate is weaker in winter (cold air
# pools in the valleys: inversions), so a model that has learned the physics should break the
# symmetry differently in January than in July. Compare the two maps and the slopes in the
# scatter panel.
#
# </details>

# %% [markdown]
# 2. What breaking field do you expect with `strength = 0`? Predict, then check (a short
#    `steps` is enough).

# %% [markdown]
# <details>
# <summary><b>Answer</b> (click to open)</summary>
#
# Exactly zero everywhere. With `strength = 0` the dropout probability is 1, the fixed inputs
# are never used in training and are switched off at prediction too, so the model *is* its
# strict component: `mean == mean_strict`, `breaking == 0`, and `loglik == loglik_strict`.
#
# </details>

# %% [markdown]
# 3. Why is the correlation between the breaking field and elevation negative, and why is it
#    not -1?

# %% [markdown]
# <details>
# <summary><b>Answer</b> (click to open)</summary>
#
# Negative: higher ground is colder, so where the ground is higher than at the neighbouring
# stations the fixed inputs pull the prediction down. Not -1: the breaking field is a
# correction to what the strict component already infers from nearby stations (which are
# themselves partly in the mountains), the model is small and briefly trained, and
# temperature depends on more than height (slope, aspect, distance from the plains, snow
# cover). A model told the elevation explicitly is compared in `bench/bench_maps.py`.
#
# </details>

# %%
metrics = {
    "loglik": {
        "fixed-inputs": result.metrics["loglik"],
        "fixed-inputs (strict component)": result.metrics["loglik_strict"],
    },
    "breaking_elevation_corr": result.metrics.get("breaking_elevation_corr"),
    "map_breaking_elevation_corr": map_corr,
    "delta_equiv": result.metrics["delta_equiv"],
    "orbit_error_untrained": before,
    "orbit_error": after,
    "orbit_error_strict": after["fixed inputs off"],
}
record = {"notebook": "03_mountains_colorado", "parameters": parameters, **metrics}
if metrics_path is not None:
    Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics_path).write_text(json.dumps(record, indent=2))
    print("metrics written to", metrics_path)
record
