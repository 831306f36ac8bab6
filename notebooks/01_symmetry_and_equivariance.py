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
# # 01 · Symmetry and equivariance
#
# A **symmetry** of a problem is a way of moving the data that should not change the answer,
# only move it along. Shift every weather station 100 km east and, over flat land, the
# temperature map should shift 100 km east too. This notebook shows
#
# 1. what a **group** is in code: an object that moves points (translations, flips, rotations);
# 2. what it means for a neural process to be **equivariant**: move the context, and the
#    prediction moves the same way;
# 3. how to **check** equivariance numerically (the *orbit error*), *before* training anything.
#
# Nothing here needs a trained model: equivariance is a property of the architecture.
# At the end we train a small strict model and check that training does not break it.

# %% tags=["parameters"]
fast = False  # True: tiny budgets (well under a minute on one CPU core); the tests use it
dataset = "mountain-1d"  # a 1-D dataset: mountain-1d (GP + fixed mountains), gp-eq-1d, gibbs-1d
group = "T"  # group of the strict model trained at the end: T or T+flip
shift = 1.0  # the translation of the visible check, in model units
steps = 2000  # training steps of the strict model at the end
train = True  # False: load the trained model from run_dir instead of training it
run_dir = None  # folder to save the trained run to, or to load it from when train is False
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

import workbench.plot
from workbench import Experiment, Task, get_group
from workbench.cache import train_or_load
from workbench.data.registry import make_dataset
from workbench.evaluate import orbit_error, transform_task
from workbench.groups import Element
from workbench.models import build_model

if fast:
    steps = min(steps, 20)
test_tasks = 32 if fast else 512
if not train and run_dir is None:
    raise ValueError("train = False loads a saved run: give run_dir")
parameters = dict(
    fast=fast,
    dataset=dataset,
    group=group,
    shift=shift,
    steps=steps,
    train=train,
    run_dir=run_dir,
    seed=seed,
    device=device,
    test_tasks=test_tasks,
)
sampler = make_dataset(dataset)
box = sampler.box
tasks = sampler.test_set(test_tasks, batch_size=16)
print(sampler)

# %% [markdown]
# ## 1. A group moves points
#
# Every group in the workbench acts on inputs by an affine map `x -> x A^T + t`: a matrix `A`
# (rotation or reflection; the identity for pure translations) and an offset `t`. A sampled
# element is a small object with `.matrix`, `.offset` and `.act(points)`.
#
# - `T`: translations. Points keep their order and spacing; they all slide together.
# - `T+flip`: translations and mirror images `x -> -x`. The order of the points can reverse.
#
# Below, four random elements of each group move the same four coloured points.

# %%
points = torch.tensor([[-1.5], [-0.4], [0.3], [1.1]])[None]  # one set of 4 points, [1, n, 1]
colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
generator = torch.Generator().manual_seed(seed)
fig, axes = plt.subplots(1, 2, figsize=(12, 2.8), sharey=True)
for ax, name in zip(axes, ["T", "T+flip"], strict=True):
    g = get_group(name).sample(4, 1, shift=2.0, generator=generator)
    moved = g.act(points.expand(4, -1, -1))
    ax.scatter(points[0, :, 0], np.zeros(4), c=colours, s=70, marker="o")
    for i in range(4):
        ax.scatter(moved[i, :, 0], np.full(4, i + 1), c=colours, s=70, marker="s")
    ax.set_yticks(range(5), ["x"] + [f"g{i + 1}.x" for i in range(4)])
    ax.set_title(f"group {name}: {get_group(name).description}", fontsize=10)
    ax.set_xlabel("position")
    ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# In the plane there are also **rotations**. `T+C4` holds the four rotations by multiples of
# 90 degrees (about a centre) together with all translations; `T+D4` adds the mirror images.
# An "F" shows the orbit: the set of all images of one shape under the group's rotations.

# %%
# An "F" as two strokes: it has no symmetry of its own, so every image is distinct.
strokes = [
    torch.tensor([[0.0, 0.0], [0.0, 3.0], [2.0, 3.0]]),
    torch.tensor([[0.0, 1.6], [1.4, 1.6]]),
]
strokes = [s * 0.3 + torch.tensor([0.3, 0.2]) for s in strokes]
fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
for ax, name in zip(axes, ["T+C4", "T+D4"], strict=True):
    mats = get_group(name).point_matrices(2)
    for k, m in enumerate(mats):
        colour = f"C{k}"
        for s in strokes:
            image = s @ m.T  # x -> x A^T, about the origin
            ax.plot(image[:, 0], image[:, 1], "-", lw=3, color=colour)
    ax.plot(0, 0, "k+", ms=12)
    ax.set_aspect("equal")
    ax.set_title(f"{name}: {len(mats)} images of one shape", fontsize=10)
    ax.grid(alpha=0.3)
plt.show()


# %% [markdown]
# ## 2. Equivariance of a prediction map
#
# A neural process takes a context set `D = {(x_i, y_i)}` and returns a predictive distribution
# `N(mu(x; D), sigma(x; D)^2)` at any target `x`. It is **G-equivariant** when, for every `g`
# in the group,
#
# `mu(g.x; g.D) = mu(x; D)`  (our outputs are scalars, so only the inputs move).
#
# In words: predicting at the moved targets from the moved data gives the same numbers as
# before. The **orbit error** measures how far a model is from this:
# `mean |mu(g.x; g.D) - mu(x; D)|` over tasks, targets and sampled `g`. Zero, up to float
# rounding, for an equivariant model.
#
# We build two **untrained** ConvCNPs with the same random seed:
#
# - `strict`: a ConvCNP with group `T` (its convolutions make it translation equivariant);
# - `none`: the same ConvCNP plus *fixed inputs* `t(x)`, learnable functions of absolute
#   position, always on. It can tell places apart, so it has no symmetry.


# %%
def untrained(**kw) -> torch.nn.Module:
    """A freshly initialised conv model (one seed: they differ only in structure)."""
    torch.manual_seed(seed)
    exp = Experiment(dataset=dataset, model="conv", relaxation="strict", **kw)
    return build_model(exp, 1, 1, box).eval()


models = {"strict (T)": untrained(group="T"), "none": untrained(group="none")}

# One task, predicted on a dense grid so the prediction can be drawn as a curve.
task = tasks[0].select(slice(0, 1))
lo, hi = box[0]
xs = torch.linspace(lo, hi - shift, 400)[None, :, None]
dense = Task(task.xc, task.yc, xs, None, task.mask_c)
g = Element(torch.ones(1, 1, 1), torch.full((1, 1), shift))  # x -> x + shift
moved = transform_task(dense, g)

fig, axes = plt.subplots(1, 2, figsize=(14, 3.8))
with torch.no_grad():
    for name, model in models.items():
        mu = model.predict(dense).mean[0, :, 0]
        mu_moved = model.predict(moved).mean[0, :, 0]
        line = axes[0].plot(xs[0, :, 0], mu, lw=2, label=f"{name}: mu(x; D)")[0]
        axes[0].plot(
            xs[0, :, 0],
            mu_moved,
            "--",
            lw=2,
            color=line.get_color(),
            label=f"{name}: mu(x + {shift:g}; D + {shift:g})",
        )
        # The gap can be far below what a curve shows; a log scale makes it visible.
        gap = (mu_moved - mu).abs().clamp_min(1e-12)
        axes[1].semilogy(xs[0, :, 0], gap, color=line.get_color(), label=name)
axes[0].set_title("predictions of untrained models (the curves overlap)")
axes[1].set_title("|mu(x + s; D + s) - mu(x; D)| (exact zeros drawn at 1e-12)")
for ax in axes:
    ax.set_xlabel("x")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# On the left, the solid and dashed curves lie on top of each other for both models: an
# untrained network makes small, smooth predictions. The right panel shows the gap on a log
# scale. For the strict model it sits at the level of float rounding; the `none` model sees
# its fixed inputs at different places after the move, so its gap is orders of magnitude
# larger, even though nothing has been trained. (After training, the gap of a free model
# grows to the size of the effects it learned.)
#
# One task and one shift prove little; the orbit error averages over many tasks and random
# group elements. We also test flips: a model can be equivariant to one group and not to a
# larger one. `T+flip` below is a ConvCNP whose convolution kernels are mirror-symmetric.

# %%
models["strict (T+flip)"] = untrained(group="T+flip")
check = tasks[:4]
table = pd.DataFrame(
    {
        name: {
            "translations (T)": orbit_error(model, check, get_group("T"), box, seed=seed),
            "translations + flips (T+flip)": orbit_error(model, check, get_group("T+flip"), box, seed=seed),
        }
        for name, model in models.items()
    }
).T
orbit_untrained = table.to_dict()
table.style.format("{:.2e}").set_caption("orbit error of untrained models (y units)")

# %% [markdown]
# Read the table row by row: a strict model is equivariant to *its* group (an orbit error at
# the level of float32 rounding, 1e-7 or below) and, in general, not to a bigger one. The free
# model is equivariant to neither.
#
# ## 3. Does training keep the symmetry?
#
# Equivariance comes from the architecture, so training cannot break it. We train the strict
# model of group `group` (or load it with `train = False`) and measure again.
#
# The default data, `mountain-1d`, are a stationary GP **plus a fixed mountain range** at
# the edges of the target window (notebook 02 shows them): a world where the symmetry is
# *wrong* in known places. Training keeps the model equivariant all the same; what the
# symmetry costs it there is the next section.

# %%
experiment = Experiment(
    dataset=dataset,
    model="conv",
    group=group,
    relaxation="strict",
    steps=steps,
    test_tasks=test_tasks,
    seed=seed,
    device=device,
)
trained = train_or_load(experiment, run_dir, train=train)
print(trained.metrics_table())

# %%
model = trained.model.cpu()
orbit_trained = orbit_error(model, tasks[:8], get_group(trained.experiment.group), box, seed=seed)
print(f"orbit error of the trained model ({trained.experiment.group}): {orbit_trained:.2e}")
with torch.no_grad():
    pred = model.predict(dense)
    mu, sd = pred.mean[0, :, 0], pred.stddev[0, :, 0]
    mu_moved = model.predict(moved).mean[0, :, 0]
fig, ax = plt.subplots(figsize=(12, 3.8))
ax.fill_between(xs[0, :, 0], mu - 2 * sd, mu + 2 * sd, alpha=0.2, label="mu +- 2 sd")
ax.plot(xs[0, :, 0], mu, lw=2, label="mu(x; D)")
ax.plot(xs[0, :, 0], mu_moved, "--", lw=2, label=f"mu(x + {shift:g}; D + {shift:g})")
real = task.mask_c[0]
ax.scatter(task.xc[0, real, 0], task.yc[0, real, 0], c="k", s=15, zorder=5, label="context")
ax.set_title(f"trained strict model ({trained.history.steps_done} steps)")
ax.set_xlabel("x")
ax.legend(fontsize=9)
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## 4. What the symmetry costs: the ceilings
#
# On a synthetic GP dataset the best possible scores are known (`workbench.ceilings`):
# **A**, the exact oracle; **B**, the best model with a Gaussian output; **D**, the best
# *strictly translation-equivariant* Gaussian model that judges each target from the
# context. A strict model cannot beat D on average, however long it trains, so its gap to
# the oracle splits into the **learning shortfall** (what more training could win), the
# **symmetry headroom** B - D (what the symmetry costs) and the **Gaussian limit** A - B.
# On a stationary world (`gp-eq-1d`) the headroom is zero: there the symmetry is free.
# (A green hatched piece means the model scored above D: by chance on a small test set,
# or because our ConvCNP also sees where its targets lie; notebook 02, exercise 3.)

# %%
split = None
if "equivariant_loglik" in trained.metrics:
    parts = ("gaussian_limit", "symmetry_headroom", "learning_shortfall")
    split = {k: trained.metrics[k] for k in parts}
    title = f"{trained.experiment.dataset}: the trained strict model's gap (one seed)"
    bars = {f"strict ({trained.experiment.group})": trained.metrics}
    fig = workbench.plot.gap_split(bars, title=title)
    plt.show()
    print({k: round(v, 3) for k, v in split.items()})
else:
    print(f"{trained.experiment.dataset} has no ceilings (not a synthetic GP dataset)")

# %% [markdown]
# ## Exercises
#
# 1. The strict model's orbit error is tiny but not exactly zero. Where does the remainder
#    come from?

# %% [markdown]
# <details>
# <summary><b>Answer</b> (click to open)</summary>
#
# From float32 rounding. The SetConv grid is centred on each task's data, so after a shift
# the model computes the same numbers from coordinates that differ by the shift; sums of
# float32 numbers with different low-order bits round differently, at the level of 1e-7
# relative to the values. A bug that broke equivariance would show up many orders of
# magnitude higher.
#
# </details>

# %% [markdown]
# 2. The `none` model is untrained, yet it is not equivariant. Why? What would make it
#    equivariant again?

# %% [markdown]
# <details>
# <summary><b>Answer</b> (click to open)</summary>
#
# Its fixed inputs `t(x)` are a (randomly initialised) MLP of absolute position, added to the
# features on the grid. Moving the data does not move `t`, so the network sees a different
# combination of data and `t` after the move. Switching the fixed inputs off
# (`model.predict(task, fixed_inputs=False)`) leaves a plain ConvCNP, which is translation
# equivariant: try it with `orbit_error(..., fixed_inputs=False)`.
#
# </details>

# %% [markdown]
# 3. The `gp-eq-1d` data come from a GP with a stationary, symmetric kernel. Which of the two
#    groups, `T` or `T+flip`, is a true symmetry of those data? And of `mountain-1d`? Think
#    of an example of 1-D data where flips would be the wrong choice.

# %% [markdown]
# <details>
# <summary><b>Answer</b> (click to open)</summary>
#
# Both. The EQ kernel depends only on `|x - x'|`, which neither shifts nor mirror images
# change, so `T+flip` is also a symmetry and a `T+flip` model may use it (run this notebook
# with `dataset = "gp-eq-1d"` and `group = "T+flip"`). On `mountain-1d` neither is: the
# mountains stand at fixed places, and the range is not its own mirror image (a mountain
# at 2.6 faces a valley at -2.6). Flips would be wrong for data with a direction, e.g. a river's
# water level along its course, where upstream and downstream behave differently, or a
# time series, where the past explains the future and not the other way round.
#
# </details>

# %%
metrics = {
    "orbit_error_untrained": orbit_untrained,
    "orbit_error_strict": orbit_trained,
    "loglik": {"strict": trained.metrics["loglik"]},
    "oracle_loglik": trained.metrics.get("oracle_loglik"),
    "dataset": trained.experiment.dataset,
    "gap_split": split,
}
record = {"notebook": "01_symmetry_and_equivariance", "parameters": parameters, **metrics}
if metrics_path is not None:
    Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics_path).write_text(json.dumps(record, indent=2))
    print("metrics written to", metrics_path)
record
