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
# # 00 · Start here: the AENP Workbench
#
# **To start: menu Run → Run All Cells, then press the green Train button in the app below.**
#
# **Approximately equivariant neural processes** predict a whole field (a 1-D function, temperature
# over Colorado) from a few observations, and they are built to respect a symmetry: shift the
# observations and the prediction shifts with them. Real data break the symmetry somewhere: the
# Rockies are not where the plains are. The workbench lets you choose the symmetry, relax it, train a
# model, and **see where the model learned to break it**.
#
# The app starts on `mountain-1d`: a stationary process plus mountains and valleys fixed in place
# beyond the observations. A strictly translation-equivariant model cannot know where it is, so it
# cannot know the mountains; the exact ceilings say that costs it about 0.3 nats per target, and the
# relaxed model (fixed inputs) wins most of that back within about a minute of training. Pick
# `colorado-temperature` for a map of real mountains.
#
# How to use the app below:
#
# 1. **Pick an experiment** on the left: dataset, model family, symmetry group, relaxation and its
#    strength. Combinations that cannot work are not offered; hover over a box to see why.
# 2. **Train.** Set the steps and press *Train*; the loss curve updates live and *Stop* ends training
#    early (the model is still evaluated). On real data *early stopping* keeps the weights that did best
#    on the validation split. A second bar follows the evaluation; the test log-likelihood appears when
#    it finishes.
# 3. **Map.** The prediction over the map with state borders and elevation contours. Switch between
#    the mean, the uncertainty (`std`), the strict component (fixed inputs off) and the
#    **breaking field** `mean - strict`. **Click on the map to add an observation** at the clicked point: the
#    posterior updates at once (a forward pass, no retraining). For 1-D data, click anywhere in the plot.
# 4. **Compare** the same model with no symmetry, strict symmetry and relaxed symmetry (and the exact
#    GP oracle for synthetic data): *Train missing* trains the siblings with the same steps.
# 5. **Equivariance**: the orbit error `|mu(g.x; g.D) - mu(x; D)|` against the size of a shift (or
#    rotation). The strict component sits at zero; the relaxed model does not.
#
# Everything the app computes comes from the headless library: the Train button calls
# `workbench.run(Experiment(...))`, the same function the notebooks and the CLI call.

# %% tags=["parameters"]
dataset = "mountain-1d"  # a name from workbench.data.registry.DATASETS, e.g. "colorado-temperature"
model = "conv"  # conv, transformer or deepsets
group = "T"  # the symmetry: none, T, T+flip (1-D), T+C4, T+D4, T+C8, T+D8 (2-D)
relaxation = "fixed-inputs"  # strict, fixed-inputs (the paper), relaxed-conv
strength = 0.5  # 0 = strictly equivariant, 1 = as free as the relaxation allows
steps = 2000  # training steps when you press Train: about a minute on 2 CPU cores
fast = False  # True: tiny budgets (well under a minute on one CPU core); the tests use it
autorun = False  # True: train right away, without pressing Train (for papermill)
metrics_path = None  # write the key numbers as JSON here (implies autorun)

# %%
import json
from pathlib import Path

from widgets import Workbench
from workbench import Experiment

if fast:
    steps = min(steps, 30)
experiment = Experiment(
    dataset=dataset,
    model=model,
    group=group,
    relaxation=relaxation,
    strength=strength,
    steps=steps,
    batch_size=8 if fast else 16,
    test_tasks=32 if fast else 256,
)
parameters = dict(
    dataset=dataset,
    model=model,
    group=group,
    relaxation=relaxation,
    strength=strength,
    steps=steps,
    fast=fast,
)
experiment

# %% [markdown]
# ## The app
#
# The next cell shows the app (the cells above must have run: *Run All Cells* does it). Press
# **Train**: the default 2000 steps take about a minute on a 2-core laptop. The tabs fill in when
# the run finishes. Then press *Train missing* in the Compare tab to see the strict and the free
# models beside it, with the ceilings: where each model's gap to the exact oracle goes.

# %%
app = Workbench(experiment)
app

# %% [markdown]
# ## Without clicking
#
# With `autorun = True` (or a `metrics_path`) the next cell presses Train itself and waits, as
# `papermill notebooks/00_start_here.ipynb out.ipynb -p fast True -p metrics_path m.json` does. The
# finished run is `app.run`: a `workbench.Run` with `.metrics`, `.predict_map()` and `.save()`.

# %%
metrics = {}
if autorun or metrics_path is not None:
    run = app.train(block=True)
    curves = (app.equivariance.results or app.equivariance.compute())["shift"]
    strict_curve = curves.get("strict", curves["model"])
    metrics = {
        "steps_done": run.history.steps_done,
        "loglik": run.metrics["loglik"],
        "loglik_strict": run.metrics["loglik_strict"],
        "orbit_error": run.metrics["orbit_error"],
        # The strict component (fixed inputs off) must be equivariant: ~0 at every shift.
        "orbit_error_strict": float(strict_curve.max()),
        "orbit_error_model_max": float(curves["model"].max()),
        "map_click_ms": None,
    }
    if app.map is not None and run.dim_x == 2:
        lon, lat = float(app.map.layer.source.x.mean()), float(app.map.layer.source.y.mean())
        app.map.add_observation(lon, lat)
        metrics["map_click_ms"] = app.map.last_update_ms
    print(run.metrics_table())
record = {"notebook": "00_start_here", "parameters": parameters, **metrics}
if metrics_path is not None:
    Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics_path).write_text(json.dumps(record, indent=2))
    print("metrics written to", metrics_path)
record

# %% [markdown]
# ## Where next
#
# - `01_symmetry_and_equivariance`: groups, equivariance, and a check before any training.
# - `02_breaking_symmetry_1d`: worlds where translation equivariance is wrong, by a known amount, and
#   the paper's Gibbs experiment.
# - `03_mountains_colorado`: the breaking field over real mountains.
# - `04_rotations_and_reflections`, `05_relaxation_sweep`: more groups, and how much to relax.
#
# The parts of the app work alone on any run: `MapView(run)`, `ComparePanel(run)`,
# `EquivariancePanel(run)` (all in `widgets`).
