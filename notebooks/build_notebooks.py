"""Build the teaching notebooks 01-05 from this file: ``python notebooks/build_notebooks.py``.

Edit the cells here, not in Jupyter, and regenerate: the notebooks come out clean (no outputs, no
execution counts, stable cell ids), with the kernelspec papermill needs and a ``parameters`` cell.
``00_start_here.ipynb`` is written by hand and is not touched.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.notebooknode import NotebookNode

HERE = Path(__file__).resolve().parent

METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
}


def md(text: str) -> NotebookNode:
    """A markdown cell."""
    return nbformat.v4.new_markdown_cell(dedent(text).strip())


def code(text: str) -> NotebookNode:
    """A code cell (no outputs)."""
    return nbformat.v4.new_code_cell(dedent(text).strip())


def params(text: str) -> NotebookNode:
    """The papermill ``parameters`` cell."""
    cell = code(text)
    cell.metadata["tags"] = ["parameters"]
    return cell


def answer(text: str) -> NotebookNode:
    """An answer hidden in a ``<details>`` block: closed until the reader clicks it."""
    body = dedent(text).strip()
    return md(f"<details>\n<summary><b>Answer</b> (click to open)</summary>\n\n{body}\n\n</details>")


def save_metrics(name: str, metrics: str) -> NotebookNode:
    """The last code cell: the key numbers as JSON at ``metrics_path`` (tests and benchmarks read it).

    ``metrics`` is code that defines ``metrics``, a dict of what this notebook measured.
    """
    save = f"""
        record = {{"notebook": "{name}", "parameters": parameters, **metrics}}
        if metrics_path is not None:
            Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
            Path(metrics_path).write_text(json.dumps(record, indent=2))
            print("metrics written to", metrics_path)
        record
        """
    return code(dedent(metrics).strip() + "\n" + dedent(save).strip())


# --------------------------------------------------------------------------------------------------
# 01: symmetry and equivariance
# --------------------------------------------------------------------------------------------------


def nb01() -> list[NotebookNode]:
    """Groups acting on points; equivariance of a prediction map; a check before any training."""
    return [
        md(
            """
            # 01 · Symmetry and equivariance

            A **symmetry** of a problem is a way of moving the data that should not change the answer,
            only move it along. Shift every weather station 100 km east and, over flat land, the
            temperature map should shift 100 km east too. This notebook shows

            1. what a **group** is in code: an object that moves points (translations, flips, rotations);
            2. what it means for a neural process to be **equivariant**: move the context, and the
               prediction moves the same way;
            3. how to **check** equivariance numerically (the *orbit error*), *before* training anything.

            Nothing here needs a trained model: equivariance is a property of the architecture.
            At the end we train a small strict model and check that training does not break it.
            """
        ),
        params(
            """
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
            """
        ),
        code(
            """
            import json
            from pathlib import Path

            import matplotlib.pyplot as plt
            import numpy as np
            import pandas as pd
            import torch

            import workbench.plot
            from workbench import Experiment, Task, get_group, load_run, run
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
                fast=fast, dataset=dataset, group=group, shift=shift, steps=steps, train=train,
                run_dir=run_dir, seed=seed, device=device, test_tasks=test_tasks,
            )
            sampler = make_dataset(dataset)
            box = sampler.box
            tasks = sampler.test_set(test_tasks, batch_size=16)
            print(sampler)
            """
        ),
        md(
            """
            ## 1. A group moves points

            Every group in the workbench acts on inputs by an affine map `x -> x A^T + t`: a matrix `A`
            (rotation or reflection; the identity for pure translations) and an offset `t`. A sampled
            element is a small object with `.matrix`, `.offset` and `.act(points)`.

            - `T`: translations. Points keep their order and spacing; they all slide together.
            - `T+flip`: translations and mirror images `x -> -x`. The order of the points can reverse.

            Below, four random elements of each group move the same four coloured points.
            """
        ),
        code(
            """
            points = torch.tensor([[-1.5], [-0.4], [0.3], [1.1]])[None]  # one set of 4 points, [1, n, 1]
            colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
            generator = torch.Generator().manual_seed(seed)
            fig, axes = plt.subplots(1, 2, figsize=(12, 2.8), sharey=True)
            for ax, name in zip(axes, ["T", "T+flip"]):
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
            """
        ),
        md(
            """
            In the plane there are also **rotations**. `T+C4` holds the four rotations by multiples of
            90 degrees (about a centre) together with all translations; `T+D4` adds the mirror images.
            An "F" shows the orbit: the set of all images of one shape under the group's rotations.
            """
        ),
        code(
            """
            # An "F" as two strokes: it has no symmetry of its own, so every image is distinct.
            strokes = [
                torch.tensor([[0.0, 0.0], [0.0, 3.0], [2.0, 3.0]]),
                torch.tensor([[0.0, 1.6], [1.4, 1.6]]),
            ]
            strokes = [s * 0.3 + torch.tensor([0.3, 0.2]) for s in strokes]
            fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
            for ax, name in zip(axes, ["T+C4", "T+D4"]):
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
            """
        ),
        md(
            """
            ## 2. Equivariance of a prediction map

            A neural process takes a context set `D = {(x_i, y_i)}` and returns a predictive distribution
            `N(mu(x; D), sigma(x; D)^2)` at any target `x`. It is **G-equivariant** when, for every `g`
            in the group,

            `mu(g.x; g.D) = mu(x; D)`  (our outputs are scalars, so only the inputs move).

            In words: predicting at the moved targets from the moved data gives the same numbers as
            before. The **orbit error** measures how far a model is from this:
            `mean |mu(g.x; g.D) - mu(x; D)|` over tasks, targets and sampled `g`. Zero, up to float
            rounding, for an equivariant model.

            We build two **untrained** ConvCNPs with the same random seed:

            - `strict`: a ConvCNP with group `T` (its convolutions make it translation equivariant);
            - `none`: the same ConvCNP plus *fixed inputs* `t(x)`, learnable functions of absolute
              position, always on. It can tell places apart, so it has no symmetry.
            """
        ),
        code(
            """
            def untrained(**kw) -> torch.nn.Module:
                \"\"\"A freshly initialised conv model (one seed: they differ only in structure).\"\"\"
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
                    axes[0].plot(xs[0, :, 0], mu_moved, "--", lw=2, color=line.get_color(),
                                 label=f"{name}: mu(x + {shift:g}; D + {shift:g})")
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
            """
        ),
        md(
            """
            On the left, the solid and dashed curves lie on top of each other for both models: an
            untrained network makes small, smooth predictions. The right panel shows the gap on a log
            scale. For the strict model it sits at the level of float rounding; the `none` model sees
            its fixed inputs at different places after the move, so its gap is orders of magnitude
            larger, even though nothing has been trained. (After training, the gap of a free model
            grows to the size of the effects it learned.)

            One task and one shift prove little; the orbit error averages over many tasks and random
            group elements. We also test flips: a model can be equivariant to one group and not to a
            larger one. `T+flip` below is a ConvCNP whose convolution kernels are mirror-symmetric.
            """
        ),
        code(
            """
            models["strict (T+flip)"] = untrained(group="T+flip")
            check = tasks[:4]
            table = pd.DataFrame(
                {
                    name: {
                        "translations (T)": orbit_error(model, check, get_group("T"), box, seed=seed),
                        "translations + flips (T+flip)": orbit_error(
                            model, check, get_group("T+flip"), box, seed=seed
                        ),
                    }
                    for name, model in models.items()
                }
            ).T
            orbit_untrained = table.to_dict()
            table.style.format("{:.2e}").set_caption("orbit error of untrained models (y units)")
            """
        ),
        md(
            """
            Read the table row by row: a strict model is equivariant to *its* group (an orbit error at
            the level of float32 rounding, 1e-7 or below) and, in general, not to a bigger one. The free
            model is equivariant to neither.

            ## 3. Does training keep the symmetry?

            Equivariance comes from the architecture, so training cannot break it. We train the strict
            model of group `group` (or load it with `train = False`) and measure again.

            The default data, `mountain-1d`, are a stationary GP **plus a fixed mountain range** at
            the edges of the target window (notebook 02 shows them): a world where the symmetry is
            *wrong* in known places. Training keeps the model equivariant all the same; what the
            symmetry costs it there is the next section.
            """
        ),
        code(
            """
            experiment = Experiment(
                dataset=dataset, model="conv", group=group, relaxation="strict", steps=steps,
                test_tasks=test_tasks, seed=seed, device=device,
            )
            if train:
                trained = run(experiment)
                if run_dir is not None:
                    trained.save(run_dir)
            else:
                trained = load_run(run_dir)
            print(trained.metrics_table())
            """
        ),
        code(
            """
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
            """
        ),
        md(
            """
            ## 4. What the symmetry costs: the ceilings

            On a synthetic GP dataset the best possible scores are known (`workbench.ceilings`):
            **A**, the exact oracle; **B**, the best model with a Gaussian output; **D**, the best
            *strictly translation-equivariant* Gaussian model that judges each target from the
            context. A strict model cannot beat D on average, however long it trains, so its gap to
            the oracle splits into the **learning shortfall** (what more training could win), the
            **symmetry headroom** B - D (what the symmetry costs) and the **Gaussian limit** A - B.
            On a stationary world (`gp-eq-1d`) the headroom is zero: there the symmetry is free.
            (A green hatched piece means the model scored above D: by chance on a small test set,
            or because our ConvCNP also sees where its targets lie; notebook 02, exercise 3.)
            """
        ),
        code(
            """
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
            """
        ),
        md(
            """
            ## Exercises

            1. The strict model's orbit error is tiny but not exactly zero. Where does the remainder
               come from?
            """
        ),
        answer(
            """
            From float32 rounding. The SetConv grid is centred on each task's data, so after a shift
            the model computes the same numbers from coordinates that differ by the shift; sums of
            float32 numbers with different low-order bits round differently, at the level of 1e-7
            relative to the values. A bug that broke equivariance would show up many orders of
            magnitude higher.
            """
        ),
        md(
            """
            2. The `none` model is untrained, yet it is not equivariant. Why? What would make it
               equivariant again?
            """
        ),
        answer(
            """
            Its fixed inputs `t(x)` are a (randomly initialised) MLP of absolute position, added to the
            features on the grid. Moving the data does not move `t`, so the network sees a different
            combination of data and `t` after the move. Switching the fixed inputs off
            (`model.predict(task, fixed_inputs=False)`) leaves a plain ConvCNP, which is translation
            equivariant: try it with `orbit_error(..., fixed_inputs=False)`.
            """
        ),
        md(
            """
            3. The `gp-eq-1d` data come from a GP with a stationary, symmetric kernel. Which of the two
               groups, `T` or `T+flip`, is a true symmetry of those data? And of `mountain-1d`? Think
               of an example of 1-D data where flips would be the wrong choice.
            """
        ),
        answer(
            """
            Both. The EQ kernel depends only on `|x - x'|`, which neither shifts nor mirror images
            change, so `T+flip` is also a symmetry and a `T+flip` model may use it (run this notebook
            with `dataset = "gp-eq-1d"` and `group = "T+flip"`). On `mountain-1d` neither is: the
            mountains stand at fixed places, and the range is not its own mirror image (a mountain
            at 2.6 faces a valley at -2.6). Flips would be wrong for data with a direction, e.g. a river's
            water level along its course, where upstream and downstream behave differently, or a
            time series, where the past explains the future and not the other way round.
            """
        ),
        save_metrics(
            "01_symmetry_and_equivariance",
            """
            metrics = {
                "orbit_error_untrained": orbit_untrained,
                "orbit_error_strict": orbit_trained,
                "loglik": {"strict": trained.metrics["loglik"]},
                "oracle_loglik": trained.metrics.get("oracle_loglik"),
                "dataset": trained.experiment.dataset,
                "gap_split": split,
            }
            """,
        ),
    ]


# --------------------------------------------------------------------------------------------------
# 02: breaking symmetry in 1-D
# --------------------------------------------------------------------------------------------------


def nb02() -> list[NotebookNode]:
    """mountain-1d: ceilings, then none vs strict vs fixed-inputs over seeds; gibbs-1d as the paper's case."""
    return [
        md(
            """
            # 02 · Breaking symmetry where the data say so (1-D)

            A translation-equivariant model treats every place alike. That is right for a stationary
            process and wrong when the data change character at known places. This notebook asks
            **how much** a symmetry costs, before training anything, and then whether a model that
            may depart from the symmetry (the paper's fixed inputs) collects what there is to gain.

            The world is `mountain-1d`: functions from a stationary GP (length scale 1, noise 0.1)
            **plus a fixed mountain range**: a mountain and a valley of height 3 just right of the
            context window, mirrored on the left. Context points fall in [-2, 2], targets in
            [-4, 4]: the peaks stand where the targets reach and the context does not. A model that
            knows where it is can predict the peaks; a strictly equivariant model has to guess its
            position from how a few context points sit inside their window. The world's
            **breaking strength** is part of its name: `mountain-1d:0` is the plain stationary GP,
            `mountain-1d:0.5` has peaks of half the height, `mountain-1d` is `mountain-1d:1`.

            Because the world is a known GP, three **ceilings** can be computed exactly, scored on
            the very test tasks the models are scored on (`workbench.ceilings`):

            | ceiling | what it is | who cannot beat it (on average) |
            |---|---|---|
            | A | the exact oracle (the true posterior predictive) | any model |
            | B | A moment-matched per target | any model with a Gaussian output (all of ours) |
            | D | the best strictly translation-equivariant Gaussian predictor | a strict model judging each target from the context (section 5) |

            **B - D is the symmetry headroom**: the most that departing from the symmetry can buy.
            We train three ConvCNPs of equal size, each with several seeds:

            | model | group | what it can do |
            |---|---|---|
            | `none` | none | fixed inputs always on: free to depend on absolute position |
            | `strict` | `group` | exactly equivariant: a context pattern gives the same prediction anywhere |
            | `fixed-inputs` | `group` | the paper's: equivariant network + fixed inputs `t(x)` (dropout p = 1 - `strength`) |

            At the end, the paper's own 1-D case (`gibbs-1d`), where the headroom turns out to be small.
            """
        ),
        params(
            """
            fast = False  # True: tiny budgets (well under a minute); the tests use it
            dataset = "mountain-1d"  # a world with a large symmetry headroom (or noise-1d; NAME:STRENGTH)
            paper_dataset = "gibbs-1d"  # the paper's case, with its small headroom; None skips it
            group = "T"  # symmetry of the strict and fixed-inputs models: T or T+flip
            strength = 0.5  # fixed-input strength; training dropout p is 1 - strength (the paper: 0.5)
            n_fixed = 8  # number of fixed-input channels B
            steps = 2000  # training steps per model and seed
            lr = 1e-3  # AdamW learning rate; the paper's 5e-4 learns too slowly for CPU budgets
            seeds = 3  # seeds per model: results are mean +- standard error over seeds
            world_strengths = [0.0, 0.25, 0.5, 0.75, 1.0]  # breaking strengths of the sweep (section 6)
            sweep_steps = 1000  # training steps per model, seed and strength in the sweep
            test_tasks = 512  # test tasks (the same for every model and ceiling)
            train = True  # False: load the runs from run_dir instead of training them
            run_dir = None  # folder with the runs (written there by an earlier run of this notebook)
            metrics_path = None  # write the key numbers as JSON here
            device = "auto"  # auto, cpu or cuda
            """
        ),
        code(
            """
            import json
            import math
            from pathlib import Path

            import matplotlib.pyplot as plt
            import numpy as np
            import pandas as pd
            import torch
            from tqdm.auto import tqdm

            import workbench.plot
            from workbench import Experiment, Task, get_group, load_run, run
            from workbench.ceilings import ceilings, equivariant_moments, per_task_difference
            from workbench.evaluate import mean_se
            from workbench.data.registry import STRENGTH_DATASETS, make_dataset, parse_strength
            from workbench.evaluate import loglik_per_task, orbit_error
            from workbench.models import build_model

            if fast:
                steps, sweep_steps, test_tasks = min(steps, 5), min(sweep_steps, 3), min(test_tasks, 64)
                seeds = min(seeds, 2)
                world_strengths = [0.0, 0.5, 1.0]
            if not train and run_dir is None:
                raise ValueError("train = False loads saved runs: give run_dir")
            world_strengths = [float(s) for s in world_strengths]
            seed_list = list(range(int(seeds)))
            parameters = dict(
                fast=fast, dataset=dataset, paper_dataset=paper_dataset, group=group, strength=strength,
                n_fixed=n_fixed, steps=steps, lr=lr, seeds=seeds, world_strengths=world_strengths,
                sweep_steps=sweep_steps, test_tasks=test_tasks, train=train, run_dir=run_dir, device=device,
            )
            sampler = make_dataset(dataset)
            box = sampler.box
            tests = sampler.test_set(test_tasks, batch_size=16)  # the same tasks run() evaluates on
            base, _ = parse_strength(dataset)
            print(sampler)


            def pm(mean: float, se: float) -> str:
                \"\"\"``mean ± se`` with three decimals.\"\"\"
                return f"{mean:+.3f} ± {se:.3f}"
            """
        ),
        md(
            """
            ## 1. The world

            Left to right: the world at breaking strength 0, 0.5 and 1. Black: the fixed part of the
            data (the mountains, with the noise level as a band); coloured: three sample functions.
            The shaded stretch is the context window.
            """
        ),
        code(
            """
            xs = torch.linspace(*box[0], 400, dtype=torch.float64)[None, :, None]
            generator = torch.Generator().manual_seed(0)
            shown = [0.0, 0.5, 1.0] if base in STRENGTH_DATASETS else [None]
            fig, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 3), sharey=True, squeeze=False)
            for ax, s in zip(axes[0], shown):
                world = sampler if s is None else make_dataset(f"{base}:{s:g}")
                mean = world.mean(xs)
                mean = torch.zeros(xs.shape[1], dtype=xs.dtype) if mean is None else mean[0]
                noise = world.noise_var(xs)
                sd = torch.full_like(mean, world.noise_sd) if noise is None else noise[0].sqrt()
                cov = world.kernel(xs, xs, torch.tensor([0]))[0] + 1e-6 * torch.eye(xs.shape[1])
                chol = torch.linalg.cholesky(cov)
                for _ in range(3):
                    f = chol @ torch.randn(xs.shape[1], generator=generator, dtype=cov.dtype)
                    ax.plot(xs[0, :, 0], f + mean, lw=1)
                ax.fill_between(xs[0, :, 0], mean - 2 * sd, mean + 2 * sd, color="k", alpha=0.25)
                ax.plot(xs[0, :, 0], mean, "k", lw=2)
                ax.axvspan(*world.context_box[0], color="tab:blue", alpha=0.07)
                ax.set_title(world.name, fontsize=10)
                ax.set_xlabel("x")
                ax.grid(alpha=0.3)
            plt.show()
            """
        ),
        md(
            """
            ## 2. The ceilings, before any training

            All three are computed from the known generating process on this notebook's test tasks.
            The headroom B - D is what a strict model is bound to lose to one that may use absolute
            position; A - B is what every Gaussian model loses (here the oracle is itself Gaussian,
            so A = B).
            """
        ),
        code(
            """
            def ceiling_row(c: dict) -> dict:
                \"\"\"The four numbers of a ceilings dict that a table shows.\"\"\"
                keys = ("oracle_loglik", "gaussian_loglik", "equivariant_loglik", "symmetry_headroom")
                return {k: float(c[k]) for k in keys}


            world_ceilings = ceilings(sampler, tests)
            shown = pd.Series(ceiling_row(world_ceilings), name=f"{sampler.name} [nats/target]")
            shown.to_frame().style.format("{:.3f}")
            """
        ),
        md(
            """
            **Where** is the headroom? Per target, B scores the oracle's moments and D the best
            equivariant moments; binned by the target's position, their difference shows where
            knowing the place pays.
            """
        ),
        code(
            """
            positions, gains = [], []
            with torch.no_grad():
                for batch in tests:
                    y = batch.yt[..., 0].double()
                    mean_b, sd_b = sampler.oracle_moments(batch)
                    mean_d, var_d = equivariant_moments(sampler, batch)
                    score_b = torch.distributions.Normal(mean_b, sd_b).log_prob(y)
                    score_d = torch.distributions.Normal(mean_d, var_d.sqrt()).log_prob(y)
                    positions.append(batch.xt[..., 0].flatten())
                    gains.append((score_b - score_d).flatten())
            positions, gains = torch.cat(positions).numpy(), torch.cat(gains).numpy()
            bins = np.linspace(*box[0], 33)
            total, _ = np.histogram(positions, bins, weights=gains)
            count, _ = np.histogram(positions, bins)
            fig, ax = plt.subplots(figsize=(12, 3))
            ax.stairs(total / np.maximum(count, 1), bins, fill=True, alpha=0.6, color="#bc4b51")
            ax.axvspan(*sampler.context_box[0], color="tab:blue", alpha=0.07, label="context window")
            ax.set_ylabel("B - D [nats/target]")
            ax.set_xlabel("target position x")
            ax.set_title(f"symmetry headroom by position (overall {world_ceilings['symmetry_headroom']:.3f})")
            ax.legend()
            ax.grid(alpha=0.3)
            plt.show()
            """
        ),
        md(
            """
            ## 3. Three models, and an equivariance check before training

            Each model is one `Experiment`. Before training we check, with the orbit error of
            notebook 01, that the equivariant part of each model is exact: with the fixed inputs
            **off** every model is a plain ConvCNP and must sit at float rounding level; with them
            **on**, only the strict model (which has none) stays there.
            """
        ),
        code(
            """
            def experiments_for(world: str, n_steps: int, seed: int) -> dict[str, Experiment]:
                \"\"\"The three models of this notebook on one world, one seed.\"\"\"
                common = dict(
                    dataset=world, model="conv", steps=n_steps, lr=lr, test_tasks=test_tasks, seed=seed,
                    device=device,
                )
                return {
                    "none": Experiment(group="none", relaxation="strict", **common),
                    "strict": Experiment(group=group, relaxation="strict", **common),
                    "fixed-inputs": Experiment(
                        group=group, relaxation="fixed-inputs", strength=strength, n_fixed=n_fixed, **common
                    ),
                }


            g = get_group(group)
            before = {}
            for name, exp in experiments_for(dataset, steps, 0).items():
                torch.manual_seed(0)
                model = build_model(exp, 1, 1, box).eval()
                before[name] = {
                    "fixed inputs on": orbit_error(model, tests[:4], g, box, seed=0),
                    "fixed inputs off": orbit_error(model, tests[:4], g, box, seed=0, fixed_inputs=False),
                }
            pd.DataFrame(before).T.style.format("{:.2e}").set_caption(f"orbit error under {group}, untrained")
            """
        ),
        md(
            """
            ## 4. Train (or load), several seeds

            `run(experiment)` trains with AdamW and evaluates on the fixed test set. One seed says
            little: two seeds of the same model on the same tasks can differ by a few hundredths of
            a nat. So every model is trained with `seeds` seeds, and every number below is a mean
            **± its standard error over seeds**. With `train = False` the runs are read from
            `run_dir` (saved there by an earlier run of this notebook).
            """
        ),
        code(
            """
            def train_or_load(exp: Experiment, folder: Path | None):
                \"\"\"A trained run: trained (and saved to ``folder``), or loaded from ``folder``.\"\"\"
                if not train:
                    return load_run(folder)
                result = run(exp, progress=False)
                if folder is not None:
                    result.save(folder)
                return result


            def folder_for(*parts: str) -> Path | None:
                \"\"\"Where one run is saved, under ``run_dir``.\"\"\"
                return None if run_dir is None else Path(run_dir).joinpath(*parts)


            names = ["none", "strict", "fixed-inputs"]
            runs = {name: [] for name in names}
            for seed in tqdm(seed_list, desc="seeds"):
                for name, exp in experiments_for(dataset, steps, seed).items():
                    runs[name].append(train_or_load(exp, folder_for(name, f"seed{seed}")))

            # Per task and seed, for paired comparisons on the same tasks: [seeds, tasks].
            per_task = {
                name: np.stack([loglik_per_task(r.model, tests) for r in rs]) for name, rs in runs.items()
            }
            per_task["fixed-inputs, t off"] = np.stack(
                [loglik_per_task(r.model, tests, fixed_inputs=False) for r in runs["fixed-inputs"]]
            )
            summary = {name: mean_se(v.mean(1)) for name, v in per_task.items()}
            table = pd.DataFrame(summary, index=["mean", "s.e. over seeds"]).T
            caption = f"test log-likelihood [nats/target], {len(seed_list)} seeds"
            table.style.format("{:.3f}").set_caption(caption)
            """
        ),
        md(
            """
            `fixed-inputs, t off` is the **strict component** of the approximately equivariant model:
            the very same network with `t = 0`, trained on the tasks where the fixed inputs were
            dropped.

            ## 5. Differences on the same tasks, and where the gap goes

            Two models scored on the same test tasks are compared **task by task**: the difference
            per task cancels what is hard or easy about each task. Two standard errors: over seeds
            (is the difference a property of the models, not of one lucky seed?) and over test tasks
            (for the seed-averaged scores: is the test set big enough?). A difference smaller than
            about two standard errors is not evidence of an order.
            """
        ),
        code(
            """
            pairs = [("fixed-inputs", "strict"), ("fixed-inputs", "none"), ("none", "strict")]
            paired = {}
            for a, b in pairs:
                by_seed = per_task[a].mean(1) - per_task[b].mean(1)
                mean, se_seeds = mean_se(by_seed)
                _, se_tasks = per_task_difference(per_task[a].mean(0), per_task[b].mean(0))
                paired[f"{a} - {b}"] = {"mean": mean, "se_seeds": se_seeds, "se_tasks": se_tasks}
            paired_table = pd.DataFrame(paired).T
            paired_table.style.format("{:+.3f}").set_caption("paired differences [nats/target]")
            """
        ),
        code(
            """
            def strict_metrics(r) -> dict:
                \"\"\"The strict component of a fixed-inputs run as a strict model's metrics.\"\"\"
                m = dict(r.metrics, loglik=r.metrics["loglik_strict"])
                m["symmetry_headroom"] = m["gaussian_loglik"] - m["equivariant_loglik"]
                return m


            bars = {name: [r.metrics for r in rs] for name, rs in runs.items()}
            bars["fixed-inputs, t off"] = [strict_metrics(r) for r in runs["fixed-inputs"]]
            fig = workbench.plot.gap_split(bars, title=f"{sampler.name}: where the gap to the oracle goes "
                                           f"(mean ± s.e. over {len(seed_list)} seeds, {steps} steps)")
            plt.show()
            parts = ("gaussian_limit", "symmetry_headroom", "learning_shortfall")
            split = {
                name: {p: float(np.mean([m[p] for m in ms])) for p in parts} for name, ms in bars.items()
            }
            split["fixed-inputs, t off"]["learning_shortfall"] = float(
                np.mean([m["equivariant_loglik"] - m["loglik"] for m in bars["fixed-inputs, t off"]])
            )
            caption = "gap to the oracle, by part [nats/target]"
            pd.DataFrame(split).T.style.format("{:.3f}").set_caption(caption)
            """
        ),
        md(
            """
            How to read the bars: each starts at the model's score (with its standard error) and
            runs to the oracle A. Orange is the **learning shortfall**: what more training, data or
            capacity could still win. Red, for strict models only, is the **symmetry headroom**:
            what the symmetry costs a model that judges each target from the context, however long
            it trains. Grey is the Gaussian
            limit (none here). A strict model that beats D shows a green hatched piece; see
            exercise 3 for how that can happen.

            What we expect on `mountain-1d`: the fixed-inputs and free models can climb past D as
            they learn where the peaks are. Whether a given budget gets them there, and past the
            strict model, is what the table of paired differences says, with its standard errors.

            **Is the strict model really held below D?** D is the best equivariant predictor that
            judges each target from the context (and that target). Our ConvCNP places its grid on
            the bounding box of the context *and all targets*, and 128 targets spread over the
            target window nearly mark the window itself. So a strict ConvCNP is still exactly
            equivariant (move everything, targets included, and the prediction moves along), yet it
            can learn where it is from where it is asked. Two checks: the strict model's score
            minus D, task by task; and how much its prediction at the same targets changes when
            only the targets left of 0 are asked for (first seed; an equivariant model that judged
            each target alone would not change at all).
            """
        ),
        code(
            """
            strict_above_d, strict_above_d_se = per_task_difference(
                per_task["strict"].mean(0), world_ceilings["equivariant_per_task"]
            )
            strict_model = runs["strict"][0].model.cpu().eval()
            changes = []
            with torch.no_grad():
                for i in range(min(16, tests[0].batch_size)):
                    one = tests[0].select(slice(i, i + 1))
                    left = one.xt[0, :, 0] < 0
                    asked_all = strict_model.predict(one).mean[0, left, 0]
                    fewer = Task(one.xc, one.yc, one.xt[:, left], None, one.mask_c)
                    asked_left = strict_model.predict(fewer).mean
                    changes.append(float((asked_all - asked_left[0, :, 0]).abs().mean()))
            target_set_dependence = float(np.mean(changes))
            print(f"strict model - D, task by task: {pm(strict_above_d, strict_above_d_se)} nats/target")
            print(
                "mean |change| of the strict model's prediction when only x < 0 is asked: "
                f"{target_set_dependence:.3f}"
            )
            """
        ),
        md(
            """
            A strict model above D by more than about two standard errors is using its target set:
            for this architecture D is then not a hard ceiling, and the headroom B - D overstates
            what the symmetry costs it. (A ceiling for models that see all targets at once would
            condition on all of them; see exercise 3.)

            What we saw with the defaults (2000 steps, lr 1e-3, 3 seeds, 512 test tasks; one run on
            2 shared CPU cores): the headroom B - D was 0.317 nats/target, yet the strict model
            scored 0.158 ± 0.012 above D, and its predictions moved by 1.1 (y units) on average
            when only the targets left of 0 were asked for. The three models were within seed noise
            of each other (none -0.611 ± 0.029, strict -0.599 ± 0.011, fixed-inputs -0.614 ± 0.046;
            paired differences of at most 0.015 with standard errors over seeds of about 0.04). So
            at this budget, and with a grid placed by the targets, the strict ConvCNP collects half
            of the "headroom" itself, and the fixed inputs have not yet shown a gain beyond noise.

            ## 6. The effect grows with the breaking strength

            The same comparison, strict against fixed-inputs, on the world at several breaking
            strengths (`sweep_steps` steps each, the same seeds). At strength 0 the world is
            stationary: the headroom is zero and the fixed inputs have nothing to learn. As the
            peaks grow, so does the headroom B - D, and the gain of the fixed-inputs model over the
            strict one should follow it.
            """
        ),
        code(
            """
            sweep = []
            if base in STRENGTH_DATASETS:
                for s in tqdm(world_strengths, desc="breaking strength"):
                    world_name = f"{base}:{s:g}"
                    world = make_dataset(world_name)
                    world_tests = world.test_set(test_tasks, batch_size=16)
                    c = ceilings(world, world_tests)
                    scores = {"strict": [], "fixed-inputs": []}
                    for seed in seed_list:
                        exps = experiments_for(world_name, sweep_steps, seed)
                        for name in scores:
                            r = train_or_load(exps[name], folder_for("sweep", f"{s:g}", name, f"seed{seed}"))
                            scores[name].append(loglik_per_task(r.model, world_tests))
                    by_seed = [f.mean() - t.mean() for f, t in zip(scores["fixed-inputs"], scores["strict"])]
                    gain, gain_se = mean_se(by_seed)
                    _, gain_se_tasks = per_task_difference(
                        np.mean(scores["fixed-inputs"], 0), np.mean(scores["strict"], 0)
                    )
                    strict_mean, strict_se = mean_se([v.mean() for v in scores["strict"]])
                    fixed_mean, fixed_se = mean_se([v.mean() for v in scores["fixed-inputs"]])
                    sweep.append({
                        "strength": s, **ceiling_row(c), "gain": gain, "gain_se": gain_se,
                        "gain_se_tasks": gain_se_tasks,
                        "loglik_strict": strict_mean, "loglik_strict_se": strict_se,
                        "loglik_fixed_inputs": fixed_mean, "loglik_fixed_inputs_se": fixed_se,
                    })
                sweep_table = pd.DataFrame(sweep).set_index("strength")
                display(sweep_table.style.format("{:.3f}"))
            else:
                print(f"{dataset} has no breaking strength (choose one of {', '.join(STRENGTH_DATASETS)})")
            """
        ),
        code(
            """
            if sweep:
                st = np.array([e["strength"] for e in sweep])
                fig, axes = plt.subplots(1, 2, figsize=(14, 4))
                axes[0].plot(st, [e["symmetry_headroom"] for e in sweep], "s-", color="#bc4b51",
                             label="headroom B - D (computed)")
                axes[0].errorbar(st, [e["gain"] for e in sweep], yerr=[e["gain_se"] for e in sweep], fmt="o-",
                                 capsize=4, color="tab:blue", label="gain: fixed-inputs - strict (trained)")
                axes[0].axhline(0, color="0.5", lw=0.8)
                axes[0].set_ylabel("nats/target")
                axes[0].set_title(f"gain against headroom (mean ± s.e. over {len(seed_list)} seeds)")
                for key, label, colour in [("loglik_strict", "strict", "tab:green"),
                                           ("loglik_fixed_inputs", "fixed-inputs", "tab:blue")]:
                    values, errors = [e[key] for e in sweep], [e[key + "_se"] for e in sweep]
                    axes[1].errorbar(st, values, yerr=errors, fmt="o-", capsize=4, color=colour, label=label)
                axes[1].plot(st, [e["gaussian_loglik"] for e in sweep], "k--", label="B: best Gaussian")
                axes[1].plot(st, [e["equivariant_loglik"] for e in sweep], ":", color="#bc4b51",
                             label="D: best strict")
                axes[1].set_ylabel("test log-likelihood [nats/target]")
                axes[1].set_title(f"scores and ceilings ({sweep_steps} steps per model)")
                for ax in axes:
                    ax.set_xlabel(f"breaking strength of {base}")
                    ax.grid(alpha=0.3)
                    ax.legend(fontsize=8)
                plt.show()
            """
        ),
        md(
            """
            Read the left panel against its error bars: the headroom is a computed number (no
            seeds), the gain a trained one. A gain below the headroom is learning shortfall of the
            fixed-inputs model (it has not yet learned all of the mountains in `sweep_steps` steps)
            or the strict model climbing above D through its target set (section 5).

            What we saw with the defaults (1000 steps per model, 3 seeds): the headroom grew from 0
            at strength 0 to 0.04, 0.13, 0.23 and 0.32 nats/target, while the gain of fixed-inputs
            over strict stayed within noise at every strength (-0.017, +0.016, +0.028, -0.009,
            -0.027, each ± 0.02-0.05 over seeds). The computed headroom follows the strength; the
            trained gain does not yet, at this budget and with this grid (section 5).

            ## 7. Where do the fixed inputs act?

            `delta_equiv = mean |mu(x; D, t) - mu(x; D, 0)|` is how much the fixed inputs move the
            prediction; binned by target position it shows **where** the model uses absolute
            position (first seed). Compare it with the headroom profile of section 2. Below it, the
            learned fixed inputs `t(x)` themselves (zero outside the box by construction).
            """
        ),
        code(
            """
            model = runs["fixed-inputs"][0].model.cpu().eval()
            positions, moves = [], []
            with torch.no_grad():
                for batch in tests:
                    on = model.predict(batch).mean
                    off = model.predict(batch, fixed_inputs=False).mean
                    positions.append(batch.xt.flatten())
                    moves.append((on - off).abs().flatten())
            positions, moves = torch.cat(positions).numpy(), torch.cat(moves).numpy()
            total, _ = np.histogram(positions, bins, weights=moves)
            profile = total / np.maximum(count, 1)
            wide = torch.linspace(box[0][0] - 1, box[0][1] + 1, 400)[None, :, None]
            t = model.fixed_input_values(wide)[0]
            fig, axes = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
            axes[0].stairs(profile, bins, fill=True, alpha=0.6)
            axes[0].set_ylabel("mean |mu(t on) - mu(t off)|")
            overall = runs["fixed-inputs"][0].metrics["delta_equiv"]
            axes[0].set_title(f"delta_equiv by position (overall {overall:.4f}, seed 0)")
            axes[1].plot(wide[0, :, 0], t, lw=1)
            axes[1].set_ylabel("t(x), all channels")
            axes[1].set_xlabel("x")
            for ax in axes:
                ax.axvspan(*sampler.context_box[0], color="tab:blue", alpha=0.07)
                ax.grid(alpha=0.3)
            plt.show()
            """
        ),
        md(
            """
            One test task predicted on a dense grid next to the oracle (first seed): the fixed-inputs
            model with its fixed inputs on and off, and the strict model.
            """
        ),
        code(
            """
            task = next(
                (
                    b.select(slice(i, i + 1))
                    for b in tests
                    for i in range(b.batch_size)
                    if int(b.n_context[i]) >= 4
                ),
                tests[0].select(slice(0, 1)),
            )
            xs = torch.linspace(*box[0], 500)[None, :, None]
            dense = Task(task.xc, task.yc, xs, None, task.mask_c)
            oracle_mean, oracle_sd = (v[0] for v in sampler.oracle_moments(dense))


            def predict(r, fixed_inputs: bool = True) -> torch.Tensor:
                \"\"\"Mean of one run on the dense task.\"\"\"
                return r.predict(dense, fixed_inputs=fixed_inputs).mean[0, :, 0].cpu()


            x = xs[0, :, 0]
            real = task.mask_c[0]
            fig, ax = plt.subplots(figsize=(12, 4))
            ax.fill_between(x, oracle_mean - 2 * oracle_sd, oracle_mean + 2 * oracle_sd, color="0.85")
            ax.plot(x, oracle_mean, "k", lw=1.5, label="oracle mean ± 2 sd")
            ax.scatter(task.xc[0, real, 0], task.yc[0, real, 0], c="k", s=14, zorder=5, label="context")
            ax.plot(x, predict(runs["fixed-inputs"][0]), "tab:blue", lw=2, label="fixed-inputs (t on)")
            strict_part = predict(runs["fixed-inputs"][0], False)
            ax.plot(x, strict_part, "tab:cyan", ls="--", lw=2, label="its strict component")
            ax.plot(x, predict(runs["strict"][0]), "tab:green", lw=2, label="strict model")
            ax.legend(fontsize=8, loc="upper left")
            ax.set_xlabel("x")
            ax.grid(alpha=0.3)
            plt.show()
            """
        ),
        md(
            """
            ## 8. The paper's case: `gibbs-1d`

            The paper's 1-D experiment draws functions from six Gibbs-kernel GPs whose length scale
            jumps from 4.0 to 0.1 at a changepoint in {-1, 0, 1}. Its ceilings, computed on this
            notebook's number of test tasks, and one strict model trained for `steps` steps (a
            **single seed**: it is used for the size of its gap, not to rank models):
            """
        ),
        code(
            """
            paper = None
            if paper_dataset is not None:
                paper_sampler = make_dataset(paper_dataset)
                paper_tests = paper_sampler.test_set(test_tasks, batch_size=16)
                paper_ceilings = ceilings(paper_sampler, paper_tests)
                exp = experiments_for(paper_dataset, steps, 0)["strict"]
                paper_run = train_or_load(exp, folder_for("paper", "strict", "seed0"))
                paper = {**ceiling_row(paper_ceilings), "loglik_strict_model": paper_run.metrics["loglik"]}
                paper.update({f"strict_{p}": paper_run.metrics[p] for p in parts})
                shown = pd.Series(paper, name=f"{paper_dataset} [nats/target]")
                display(shown.to_frame().style.format("{:.3f}"))
                fig = workbench.plot.gap_split(
                    {"strict (seed 0)": paper_run.metrics},
                    title=f"{paper_dataset}: the strict model's gap ({steps} steps, one seed)",
                )
                plt.show()
            """
        ),
        md(
            """
            On `gibbs-1d` the headroom B - D is only a few hundredths of a nat per target (0.022
            on this notebook's 512 default test tasks in our run; the table above has this run's
            number): that is all a strict model can lose to the symmetry. At CPU budgets the strict model's **learning
            shortfall** is ten times larger or more (0.51 for the default run's single seed at 2000
            steps; about 0.26 after 16,000 steps in the README's benchmarks). So on `gibbs-1d` the
            question "approximate or strict?" is decided by how well each learns, not by the
            symmetry, and at our budgets the three models are within seed noise of each other. That
            is why this notebook's main world is one where the headroom is large.

            ## 9. Equivariance after training

            Training changes the weights, not the structure: the strict model and the strict
            component of the fixed-inputs model keep orbit errors at rounding level, while the fixed
            inputs (and the free model) now break the symmetry by as much as they learned (seed 0).
            """
        ),
        code(
            """
            after = {
                "strict": orbit_error(runs["strict"][0].model, tests[:8], g, box, seed=0),
                "fixed-inputs, t off": orbit_error(model, tests[:8], g, box, seed=0, fixed_inputs=False),
                "fixed-inputs, t on": orbit_error(model, tests[:8], g, box, seed=0),
                "none": orbit_error(runs["none"][0].model, tests[:8], g, box, seed=0),
            }
            pd.Series(after, name=f"orbit error under {group}, trained").to_frame().style.format("{:.2e}")
            """
        ),
        md(
            """
            ## Exercises

            1. Before training anything, which ceiling tells you whether to bother with an
               approximately equivariant model, and what would you do if it were close to zero?
            """
        ),
        answer(
            """
            The symmetry headroom B - D. It is the most that departing from the symmetry can buy a
            Gaussian model on this data. If it is near zero (as at breaking strength 0, or nearly
            so on `gibbs-1d`), a strict model loses almost nothing to its symmetry and is the simpler,
            better-behaved choice; effort is better spent on the learning shortfall (more steps,
            a bigger model). If it is tenths of a nat, as on `mountain-1d`, it is worth a model that
            can depart from the symmetry.
            """
        ),
        md(
            """
            2. Run the notebook with `strength = 1.0` (fixed inputs never dropped during training).
               What do you expect for the strict component (`fixed-inputs, t off`)? Check.
            """
        ),
        answer(
            """
            With `strength = 1` the network never sees `t = 0` while training, so nothing asks its
            strict component to predict well on its own: its log-likelihood falls far below the
            separately trained strict model. The dropout (p = 1 - strength) is what keeps the strict
            component a usable fallback, and, with the box, what keeps the model strictly
            equivariant outside the training region.
            """
        ),
        md(
            """
            3. D bounds a strict model *on average*, for a model that predicts each target from the
               context and that target alone. Can a strict ConvCNP nevertheless score above D on a
               test set? Think of how the model places its grid.
            """
        ),
        answer(
            """
            Two ways. On a finite test set any average is noisy, so a score a little above D is
            possible by chance (compare the difference with its standard error). More
            interestingly, our ConvCNP centres its grid on the bounding box of the context *and
            target* inputs; with 128 targets spread over the whole target window, that box is nearly
            the window itself, so through the grid's edges the model can learn where it is. It is
            still exactly equivariant (move everything, including the targets, and the prediction
            moves along), but it uses information D does not have: D judges each target on its own.
            A ceiling for models that see all targets at once would condition on all of them, and
            would be much closer to B.
            """
        ),
        md(
            """
            4. Run the notebook with `dataset = "noise-1d"`. What is different about where the
               headroom sits, and which kind of mistake does a strict model make there?
            """
        ),
        answer(
            """
            On `noise-1d` the noise level switches between calm and noisy bands every unit, inside
            the context window, and the mean is the same everywhere. The headroom sits in the
            predictive *variance*: a strict model cannot tell a calm band from a noisy one by
            position, so it must hedge with a middling variance everywhere, too wide in calm bands
            and too narrow in noisy ones. The fixed inputs can learn the bands and set the variance
            per place.
            """
        ),
        save_metrics(
            "02_breaking_symmetry_1d",
            """
            loglik = {name: summary[name][0] for name in names}
            loglik["fixed-inputs (strict component)"] = summary["fixed-inputs, t off"][0]
            loglik_se = {name: summary[name][1] for name in names}
            loglik_se["fixed-inputs (strict component)"] = summary["fixed-inputs, t off"][1]
            metrics = {
                "dataset": sampler.name,
                "seeds": len(seed_list),
                "ceilings": ceiling_row(world_ceilings),
                "loglik": loglik,
                "loglik_se": loglik_se,
                "loglik_by_seed": {name: [float(v) for v in per_task[name].mean(1)] for name in names},
                "paired_difference": paired,
                "strict_minus_equivariant": {"mean": strict_above_d, "se_tasks": strict_above_d_se},
                "target_set_dependence": target_set_dependence,
                "gap_split": split,
                "oracle_loglik": world_ceilings["oracle_loglik"],
                "strength_sweep": sweep,
                "paper_case": paper,
                "delta_equiv": float(np.mean([r.metrics["delta_equiv"] for r in runs["fixed-inputs"]])),
                "orbit_error_untrained": before,
                "orbit_error": after,
                "orbit_error_strict": after["strict"],
            }
            """,
        ),
    ]


# --------------------------------------------------------------------------------------------------
# 03: mountains in Colorado
# --------------------------------------------------------------------------------------------------


def nb03() -> list[NotebookNode]:
    """colorado-temperature: the fixed inputs learn where the mountains are."""
    return [
        md(
            """
            # 03 · Mountains break translation symmetry (Colorado)

            Real data now: monthly mean daily-maximum temperatures (`tmax`) at up to 376 Colorado
            weather stations, 1895-1997, with the elevation of the ground. One month is one task: some
            stations are the context, the others the targets. Training uses 1895-1980, testing
            1989-1997.

            Air cools by roughly 6.5 K per km of height. Two stations with the same neighbours' readings
            but at different heights should therefore get different predictions, and a
            translation-equivariant model cannot do that: it does not know where it is, so it does not
            know where the mountains are. The paper's fix: give an equivariant ConvCNP **fixed inputs**
            `t(x)`, learnable functions of absolute position, and let training decide how much to
            use them. Here we train one such model and look at the **breaking field**

            `breaking(x) = mu(x; D, t) - mu(x; D, 0)`,

            the part of the prediction that comes from knowing the place. If the model has learned
            something physical, the breaking field should look like the terrain.
            """
        ),
        params(
            """
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
            """
        ),
        code(
            """
            import json
            from pathlib import Path

            import matplotlib.pyplot as plt
            import numpy as np
            import pandas as pd
            import torch
            import xarray as xr

            import workbench.plot
            from workbench import Experiment, get_group, load_run, run
            from workbench.data.fields import correlation
            from workbench.data.registry import make_dataset
            from workbench.evaluate import orbit_error
            from workbench.maps import map_grid
            from workbench.models import build_model

            if fast:
                steps, test_tasks = min(steps, 10), min(test_tasks, 16)
                validate_every = min(validate_every, 5)
                resolution = resolution or 0.25
            if not train and run_dir is None:
                raise ValueError("train = False loads a saved run: give run_dir")
            parameters = dict(
                fast=fast, dataset=dataset, group=group, strength=strength, n_fixed=n_fixed, steps=steps,
                validate_every=validate_every, test_tasks=test_tasks, month=month, resolution=resolution,
                train=train, run_dir=run_dir, seed=seed, device=device,
            )
            sampler = make_dataset(dataset)
            tests = sampler.test_set(test_tasks, batch_size=16)
            stations = sampler.context(month)
            print(sampler)
            print(f"{len(stations)} stations reported in {stations.label}")
            """
        ),
        md(
            """
            ## 1. The data: temperature falls with height

            Left: the stations that reported in the chosen month on the elevation map (the Front
            Range, where the plains meet the Rockies, runs north-south through the middle). Right:
            each station's temperature against its elevation, with a straight-line fit.
            """
        ),
        code(
            """
            lats, lons = map_grid(sampler.map_region, n=120)
            terrain = xr.Dataset(
                {
                    "elevation": (("lat", "lon"), sampler.elevation_at(*np.meshgrid(lons, lats)),
                                  {"units": "m", "long_name": "surface elevation"}),
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
            """
        ),
        md(
            """
            ## 2. The model, and an equivariance check before training

            An approximately equivariant ConvCNP: translation-equivariant convolutions plus `n_fixed`
            fixed-input channels that are zero outside the training box and dropped out per task
            with probability `1 - strength` while training. Before training, its strict component
            (fixed inputs off) must already be exactly equivariant; with the fixed inputs on it is not.
            """
        ),
        code(
            """
            experiment = Experiment(
                dataset=dataset, model="conv", group=group, relaxation="fixed-inputs", strength=strength,
                n_fixed=n_fixed, steps=steps, test_tasks=test_tasks, seed=seed, device=device,
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
            """
        ),
        md(
            """
            ## 3. Train (or load)

            `loglik` is the test log-likelihood per target with the fixed inputs on, `loglik_strict`
            with them off: the same network without knowledge of place. `breaking_elevation_corr` is
            the correlation between the breaking field and elevation over the training box, averaged
            over the twelve months of 1989.

            Why only 500 steps? The data hold about 1000 training months, and the model overfits them.
            In our runs (a single seed, 0, and 256 test tasks) the test log-likelihood was best
            around 500 steps (-0.14), was -0.28 after 1000 and -0.46 after 2000, and after 3000
            steps the breaking field no longer followed the terrain. More data or early stopping on
            the validation years (1981-1988) are the remedies: with `validate_every = 100` the run scores those
            years every 100 steps and keeps the best weights (`best_step` and `val_loglik` appear in
            the metrics), so `steps = 2000` is then safe.
            """
        ),
        code(
            """
            if train:
                result = run(experiment)
                if run_dir is not None:
                    result.save(run_dir)
            else:
                result = load_run(run_dir)
            print(result.metrics_table())
            """
        ),
        md(
            """
            ## 4. Maps

            `predict_map` returns an `xarray.Dataset` on a lon/lat grid, in °C: the prediction
            `mean`, its `std`, the strict component `mean_strict`, `breaking = mean - mean_strict`,
            the learned `fixed_inputs` and the `elevation`, plus the context stations.
            """
        ),
        code(
            """
            ds = result.predict_map(month, resolution=resolution)
            ds
            """
        ),
        code(
            """
            fig = plt.figure(figsize=(16, 5.5), layout="constrained")
            projection = workbench.plot.projection_for(ds)
            for i, var in enumerate(["mean", "breaking"]):
                ax = fig.add_subplot(1, 2, i + 1, projection=projection)
                workbench.plot.map(ds, var, ax=ax)
            plt.show()
            """
        ),
        md(
            """
            Left: the predicted temperature with the stations drawn in the same colours (a station
            that stands out from its surroundings is a misfit). Right: the breaking field with
            elevation contours. Blue means the fixed inputs pull the prediction down: the model knows
            the place is colder than its strict component, which only sees the neighbours' readings,
            would guess.

            Next, the breaking field beside the elevation, and one against the other. A clearly
            negative correlation says the model has located the mountains from temperatures alone;
            nobody told it the elevation.

            What we saw with the defaults (500 steps, seed 0): for July 1990 the breaking field was
            positive over the lower ground of the eastern plains and the south-western corner and
            slightly negative over the high Rockies, r = -0.47 against elevation on this map and
            -0.29 averaged over the months of 1989. In that single-seed run the test log-likelihood
            was -0.136 with the fixed inputs and -0.157 for the strict component alone: a difference
            of 0.02 nats from one seed is within seed-to-seed noise, an example, not a ranking
            (notebook 02 shows how to compare models over seeds, task by task). Your numbers will
            differ a little with another seed or machine.
            """
        ),
        code(
            """
            fig = workbench.plot.breaking_vs_elevation(ds)
            plt.show()
            inside = ds["in_box"].values & np.isfinite(ds["elevation"].values)
            map_corr = correlation(ds["breaking"].values[inside], ds["elevation"].values[inside])
            print(f"correlation of breaking field and elevation, {ds.attrs['context']}: {map_corr:.3f}")
            run_corr = result.metrics.get("breaking_elevation_corr", float("nan"))
            print(f"averaged over the 12 months of 1989 (run metric): {run_corr:.3f}")
            """
        ),
        md(
            """
            The fixed inputs themselves do not depend on the data: they are the model's learned
            "map of the place". One channel:
            """
        ),
        code(
            """
            workbench.plot.map(ds, "fixed_inputs", channel=0, figsize=(8, 5))
            plt.show()
            """
        ),
        md(
            """
            ## 5. Explore interactively

            `widgets.MapView(run)` draws the same maps with plotly: hover to read the value and the
            elevation at any point, switch between prediction, uncertainty, strict component,
            breaking field and fixed-input channels, and **click to add an observation**: the map
            is recomputed with the extra station in the context (one forward pass, no retraining).
            Try a station on a high peak with a warm value and watch the breaking field. State
            borders come from the shipped Natural Earth files; nothing is fetched from the internet.
            """
        ),
        code(
            """
            from widgets import MapView

            view = MapView(result, context=month, resolution=resolution, variable="breaking")
            view
            """
        ),
        md(
            """
            ## 6. Equivariance after training

            The strict component is still exactly translation equivariant; all of the symmetry
            breaking sits in the fixed inputs.
            """
        ),
        code(
            """
            model = result.model.cpu().eval()
            after = {
                f"fixed inputs {state}": orbit_error(
                    model, tests[:8], g, result.box, seed=seed, fixed_inputs=state == "on"
                )
                for state in ("on", "off")
            }
            table = pd.Series(after, name=f"orbit error under {group}, trained [model units]").to_frame()
            table.style.format("{:.2e}")
            """
        ),
        md(
            """
            ## Exercises

            1. Make the maps for a winter month, e.g. `month = "1990-01"` (no retraining needed: run
               from section 4 on). Does the breaking field change? Which parts of the model depend
               on the month and which do not?
            """
        ),
        answer(
            """
            The fixed inputs `t(x)` do not depend on the month: they are the same learned functions of
            position. The breaking field `mu(x; D, t) - mu(x; D, 0)` does, because the network combines
            `t` with the month's context data. Physically the lapse rate is weaker in winter (cold air
            pools in the valleys: inversions), so a model that has learned the physics should break the
            symmetry differently in January than in July. Compare the two maps and the slopes in the
            scatter panel.
            """
        ),
        md(
            """
            2. What breaking field do you expect with `strength = 0`? Predict, then check (a short
               `steps` is enough).
            """
        ),
        answer(
            """
            Exactly zero everywhere. With `strength = 0` the dropout probability is 1, the fixed inputs
            are never used in training and are switched off at prediction too, so the model *is* its
            strict component: `mean == mean_strict`, `breaking == 0`, and `loglik == loglik_strict`.
            """
        ),
        md(
            """
            3. Why is the correlation between the breaking field and elevation negative, and why is it
               not -1?
            """
        ),
        answer(
            """
            Negative: higher ground is colder, so where the ground is higher than at the neighbouring
            stations the fixed inputs pull the prediction down. Not -1: the breaking field is a
            correction to what the strict component already infers from nearby stations (which are
            themselves partly in the mountains), the model is small and briefly trained, and
            temperature depends on more than height (slope, aspect, distance from the plains, snow
            cover). A model told the elevation explicitly is compared in `bench/bench_maps.py`.
            """
        ),
        save_metrics(
            "03_mountains_colorado",
            """
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
            """,
        ),
    ]


# --------------------------------------------------------------------------------------------------
# 04: rotations and reflections
# --------------------------------------------------------------------------------------------------


def nb04() -> list[NotebookNode]:
    """gp-2d / gp-2d-anisotropic: C4, D4, C8, D8 EquivCNPs; orbit error by element and by angle."""
    return [
        md(
            """
            # 04 · Rotations and reflections (2-D)

            In the plane, translations are not the only symmetry worth having. For an isotropic field
            (correlations the same in every direction) rotating the data should rotate the prediction.
            The workbench builds **EquivCNPs** for the groups

            | group | rotations | reflections | exact on the model's square grid? |
            |---|---|---|---|
            | `T` | none | no | (translations only) |
            | `T+C4` | 4 (quarter turns) | no | yes |
            | `T+D4` | 4 | yes | yes |
            | `T+C8` | 8 (eighth turns) | no | quarter turns exactly; 45 degrees approximately |
            | `T+D8` | 8 | yes | as `T+C8` |

            This notebook measures equivariance **element by element** and **against a continuous
            angle**, before any training, then trains on `gp-2d-anisotropic`: a GP that is isotropic
            on the left half of the plane and strongly anisotropic (long correlations along `x_1`,
            short across) on the right. There rotation symmetry is wrong in a known place, and fixed
            inputs can break it there.
            """
        ),
        params(
            """
            fast = False  # True: tiny budgets (well under a minute on one CPU core); the tests use it
            dataset = "gp-2d-anisotropic"  # or gp-2d (isotropic: there rotations are a true symmetry)
            group = "T+C4"  # group of the two trained models: T, T+C4, T+D4, T+C8 or T+D8
            strength = 0.5  # fixed-input strength; training dropout p is 1 - strength (the paper: 0.5)
            steps = 2000  # training steps per model
            compare_groups = ["T", "T+C4", "T+D4", "T+C8", "T+D8"]  # untrained models, compared per element
            test_tasks = 256  # test tasks for the log-likelihoods
            train = True  # False: load the two runs from run_dir instead of training them
            run_dir = None  # folder with one run per model (subfolders strict, fixed-inputs)
            metrics_path = None  # write the key numbers as JSON here
            seed = 0
            device = "auto"  # auto, cpu or cuda
            """
        ),
        code(
            """
            import json
            from pathlib import Path

            import matplotlib.pyplot as plt
            import numpy as np
            import pandas as pd
            import plotly.graph_objects as go
            import torch
            import xarray as xr

            from workbench import Experiment, Task, get_group, load_run, run
            from workbench.data.registry import make_dataset
            from workbench.evaluate import orbit_error, orbit_error_by_element, orbit_error_vs_angle
            from workbench.models import build_model

            if fast:
                steps, test_tasks = min(steps, 3), min(test_tasks, 16)
            n_check, angle_step, side = (2, 45, 24) if fast else (32, 15, 40)
            if not train and run_dir is None:
                raise ValueError("train = False loads saved runs: give run_dir")
            parameters = dict(
                fast=fast, dataset=dataset, group=group, strength=strength, steps=steps,
                compare_groups=list(compare_groups), test_tasks=test_tasks, train=train, run_dir=run_dir,
                seed=seed, device=device,
            )
            sampler = make_dataset(dataset)
            box = sampler.box
            centre = [(lo + hi) / 2 for lo, hi in box]
            check = sampler.test_set(n_check, batch_size=16, seed=7)
            print(sampler)
            """
        ),
        md(
            """
            ## 1. The point groups of the plane

            The eight rotations of `C8` and, with the mirror images, the sixteen elements of `D8`,
            acting on an "F" about the origin.
            """
        ),
        code(
            """
            strokes = [
                torch.tensor([[0.0, 0.0], [0.0, 3.0], [2.0, 3.0]]),
                torch.tensor([[0.0, 1.6], [1.4, 1.6]]),
            ]
            strokes = [s * 0.25 + torch.tensor([0.3, 0.5]) for s in strokes]
            fig, axes = plt.subplots(1, 2, figsize=(10, 5))
            for ax, name in zip(axes, ["T+C8", "T+D8"]):
                mats = get_group(name).point_matrices(2)
                for k, m in enumerate(mats):
                    for s in strokes:
                        image = s @ m.T
                        ax.plot(image[:, 0], image[:, 1], "-", lw=2.5, color=plt.cm.tab20(k % 20))
                ax.plot(0, 0, "k+", ms=12)
                ax.set_aspect("equal")
                ax.set_title(f"{name}: {len(mats)} images", fontsize=10)
                ax.grid(alpha=0.3)
            plt.show()
            """
        ),
        md(
            """
            ## 2. The data

            One sample from each 2-D dataset on a grid over the box. `gp-2d` looks the same in every
            direction. `gp-2d-anisotropic` switches at `x_1 = 0` (dashed) to streaks along the
            `x_1` axis: rotating such a field by 90 degrees gives a field the data never produce.
            """
        ),
        code(
            """
            grid = torch.linspace(box[0][0], box[0][1], side, dtype=torch.float64)
            gx, gy = torch.meshgrid(grid, grid, indexing="xy")
            points = torch.stack([gx.flatten(), gy.flatten()], -1)[None]  # [1, side^2, 2]
            generator = torch.Generator().manual_seed(seed)
            fig, axes = plt.subplots(1, 2, figsize=(11, 5))
            for ax, name in zip(axes, ["gp-2d", "gp-2d-anisotropic"]):
                source = make_dataset(name)
                cov = source.kernel(points, points, torch.zeros(1, dtype=torch.long))[0]
                cov += 1e-6 * torch.eye(cov.shape[0], dtype=cov.dtype)
                noise = torch.randn(cov.shape[0], generator=generator, dtype=cov.dtype)
                f = torch.linalg.cholesky(cov) @ noise
                ax.imshow(f.reshape(side, side), origin="lower", extent=[*box[0], *box[1]], cmap="RdBu_r")
                if name == "gp-2d-anisotropic":
                    ax.axvline(0, color="k", ls="--", lw=0.8)
                ax.set_title(name)
                ax.set_xlabel("x_1")
                ax.set_ylabel("x_2")
            plt.show()
            """
        ),
        md(
            """
            ## 3. Equivariance element by element, before training

            For one untrained strict model per group we compute the orbit error for every element of
            `D8` (rotations by multiples of 45 degrees, `flip+` = after the mirror image `x_2 -> -x_2`),
            about the centre of the box. Two choices make models comparable: the error is **relative**
            (divided by how much each model's predictions vary, since untrained models have different
            output scales) and counted only **inside the disc of radius 2** around the centre, where
            the context points are (near the corners of the square grid zero padding is not
            rotation invariant).

            Expect: every model is exact at `rot0`; `T` at nothing else; `C4` at quarter turns; `D4` at
            quarter turns and their mirror images; `C8`/`D8` small but not zero at odd multiples of 45
            degrees (their filters are interpolated on a square grid). Exact zeros are drawn at 1e-8.
            """
        ),
        code(
            """
            def untrained(g: str) -> torch.nn.Module:
                \"\"\"A freshly initialised strict EquivCNP (or plain ConvCNP for T).\"\"\"
                torch.manual_seed(seed)
                exp = Experiment(dataset=dataset, group=g, relaxation="strict")
                return build_model(exp, 2, 1, box).eval()


            models = {g: untrained(g) for g in compare_groups}
            d8 = get_group("T+D8")
            by_element = pd.DataFrame(
                {
                    g: orbit_error_by_element(m, check, d8, box, radius=2.0, relative=True)
                    for g, m in models.items()
                }
            ).T
            fig, ax = plt.subplots(figsize=(13, 0.6 * len(models) + 1.5))
            shown = np.log10(by_element.clip(lower=1e-8))
            im = ax.imshow(shown, cmap="magma_r", vmin=-8, vmax=0, aspect="auto")
            ax.set_xticks(range(by_element.shape[1]), by_element.columns, rotation=60)
            ax.set_yticks(range(len(models)), by_element.index)
            for (i, j), v in np.ndenumerate(by_element.values):
                ax.text(j, i, f"{v:.0e}", ha="center", va="center", fontsize=7,
                        color="white" if shown.values[i, j] > -4 else "black")
            fig.colorbar(im, ax=ax, label="log10 relative orbit error")
            ax.set_title("untrained strict models: relative orbit error per element of D8 (inside radius 2)")
            plt.show()
            """
        ),
        md(
            """
            ## 4. Against a continuous angle

            Group elements are a handful of angles; the data can be rotated by any angle. Below, the
            same relative orbit error for rotations by every angle in steps of `angle_step` degrees
            (hover to read values; click the legend to hide a group). `orbit_error_vs_angle` returns an
            `xarray.DataArray` over `angle`; concatenated over the groups it becomes one array.
            """
        ),
        code(
            """
            angles = list(np.arange(0, 360 + angle_step / 2, angle_step, dtype=float))
            curves = xr.concat(
                [
                    orbit_error_vs_angle(m, check, box, angles, radius=2.0, relative=True)
                    for m in models.values()
                ],
                dim=pd.Index(list(models), name="group"),
            )
            fig = go.Figure()
            for g in curves.group.values:
                curve = curves.sel(group=g)
                fig.add_trace(go.Scatter(x=curves.angle, y=curve, mode="lines+markers", name=str(g)))
            fig.update_layout(
                title="untrained strict models: relative orbit error against rotation angle",
                xaxis=dict(title="rotation angle [degree]", tickvals=list(range(0, 361, 45))),
                yaxis=dict(title="relative orbit error", type="log", exponentformat="e"),
                height=420,
            )
            fig
            """
        ),
        md(
            """
            `T` is wrong at every angle except 0 and 360. `C4` and `D4` drop to rounding level at every
            quarter turn; `C8` and `D8` also come down at the eighth turns, though not to rounding
            level. Between the group's angles no model is exact: a finite group only guarantees its
            own elements. (The paper's EquivCNP uses `D8`.)

            ## 5. Train on the data: strict versus approximately equivariant

            Two models of group `group`: strictly equivariant, and with fixed inputs (`strength`). On
            `gp-2d-anisotropic` rotation symmetry holds on the left half only, so the fixed inputs have
            something to learn; compare both with the exact GP oracle.
            """
        ),
        code(
            """
            common = dict(dataset=dataset, model="conv", group=group, steps=steps, test_tasks=test_tasks,
                          seed=seed, device=device)
            experiments = {
                "strict": Experiment(relaxation="strict", **common),
                "fixed-inputs": Experiment(relaxation="fixed-inputs", strength=strength, **common),
            }
            runs = {}
            for name, exp in experiments.items():
                folder = None if run_dir is None else Path(run_dir) / name
                if train:
                    print(f"training {name} {group}")
                    runs[name] = run(exp)
                    if folder is not None:
                        runs[name].save(folder)
                else:
                    runs[name] = load_run(folder)
            columns = ["loglik", "loglik_strict", "oracle_loglik", "oracle_gap", "delta_equiv", "orbit_error",
                       "steps_per_second"]
            results = pd.DataFrame({name: r.metrics for name, r in runs.items()}).T
            results[[c for c in columns if c in results]].style.format("{:.4g}")
            """
        ),
        md(
            """
            ## 6. The fixed inputs break rotation symmetry, the strict component does not

            Absolute orbit error (in units of `y`) of the trained fixed-inputs model for each element of
            its own group, with the fixed inputs on and off. Off, the model is an EquivCNP and exact at
            the elements its grid represents exactly. On, the non-trivial elements show an error: the
            fixed inputs make the prediction depend on where in the plane the data are.
            """
        ),
        code(
            """
            model = runs["fixed-inputs"].model.cpu().eval()
            own = get_group(group)
            if own.rotations == 1 and not own.reflections:
                own = get_group("T+C4")  # a translation-only model: test it against quarter turns
            on_off = pd.DataFrame({
                "fixed inputs on": orbit_error_by_element(model, check, own, box),
                "fixed inputs off": orbit_error_by_element(model, check, own, box, fixed_inputs=False),
            })
            ax = on_off.plot.bar(logy=True, figsize=(10, 3.8), rot=45)
            ax.set_ylabel("orbit error [y units]")
            ax.set_title(f"trained fixed-inputs model ({group}): orbit error by element")
            ax.grid(alpha=0.3, axis="y")
            plt.show()
            on_off.style.format("{:.2e}")
            """
        ),
        md(
            """
            With the defaults (`T+C4`, 2000 steps, seed 0) we saw the fixed-inputs model ahead of the
            strict one in test log-likelihood, -1.021 against -1.048 nats, both well short of the
            oracle's -0.790.

            Where in the plane do the fixed inputs act? The mean `|mu(t on) - mu(t off)|` over the check
            tasks, on a grid of targets. On `gp-2d-anisotropic` the interesting question is whether it
            differs between the isotropic left half and the anisotropic right half. (In our default
            run it was largest in the right half, towards its outer edge.)
            """
        ),
        code(
            """
            targets = torch.stack([gx.flatten(), gy.flatten()], -1).float()[None]  # the grid of section 2
            gap = torch.zeros(targets.shape[1])
            n_tasks = 0
            with torch.no_grad():
                for batch in check:
                    xt = targets.expand(batch.batch_size, -1, -1)
                    dense = Task(batch.xc, batch.yc, xt, None, batch.mask_c)
                    on = model.predict(dense).mean[..., 0]
                    off = model.predict(dense, fixed_inputs=False).mean[..., 0]
                    gap += (on - off).abs().sum(0)
                    n_tasks += batch.batch_size
            fig, ax = plt.subplots(figsize=(6, 5))
            shown = (gap / n_tasks).reshape(side, side)
            im = ax.imshow(shown, origin="lower", extent=[*box[0], *box[1]], cmap="viridis")
            ax.axvline(0, color="w", ls="--", lw=0.8)
            fig.colorbar(im, ax=ax, label="mean |mu(t on) - mu(t off)|")
            ax.set_title("where the fixed inputs change the prediction")
            ax.set_xlabel("x_1")
            ax.set_ylabel("x_2")
            plt.show()
            """
        ),
        md(
            """
            ## Exercises

            1. A `T+C8` model is exactly equivariant to quarter turns but only approximately to 45 degree
               turns. Why the difference?
            """
        ),
        answer(
            """
            The model computes on a square grid. A quarter turn maps the grid onto itself, so rotating
            a filter by 90 degrees just permutes its weights and the convolutions commute exactly with
            the rotation. A 45 degree turn does not map grid points to grid points: the rotated
            filters have to be interpolated (here with Gaussian weights), and the encoder's grid
            itself is not 45-degree symmetric, so equivariance holds only up to interpolation error.
            """
        ),
        md(
            """
            2. Which elements of `D4` are true symmetries of `gp-2d-anisotropic` (about the centre of the
               box), even though rotations in general are not? How would you check your answer with the
               code in this notebook?
            """
        ),
        answer(
            """
            The kernel's length scales depend only on `x_1` (the switch is at `x_1 = 0`) and the
            anisotropic directions are the coordinate axes, so the mirror image `x_2 -> -x_2`
            (`flip+rot0`) maps the data distribution onto itself, as does the identity; translations
            along `x_2` are symmetries too. Quarter turns and `x_1 -> -x_1` swap the isotropic and
            anisotropic halves or the long and short directions, so they are not. To check, compare the
            oracle's log-likelihood on tasks and on mirrored tasks (`transform_task` from
            `workbench.evaluate` with an element that flips `x_2`): for a true symmetry they agree.
            """
        ),
        md(
            """
            3. On `gp-2d` (isotropic) rotations are a true symmetry. Which `strength` would you choose
               there, and what would you expect to see if you trained both models of section 5 on it?
            """
        ),
        answer(
            """
            `strength = 0`, i.e. the strict model: the symmetry is exact, so fixed inputs have nothing
            true to learn; any position dependence they pick up fits noise in the training tasks. Expect
            the two models' log-likelihoods to be close (run with `dataset = "gp-2d"` to see by how much
            for your budget), and the fixed-inputs model's `delta_equiv` to stay small.
            """
        ),
        save_metrics(
            "04_rotations_and_reflections",
            """
            # The part of the group the square grid represents exactly: there a strict model is exact.
            exact = {"T": "T", "T+C4": "T+C4", "T+D4": "T+D4", "T+C8": "T+C4", "T+D8": "T+D4"}[group]
            strict_model = runs["strict"].model.cpu()
            orbit_strict = orbit_error(strict_model, check, get_group(exact), box, shift=1.0, seed=seed)
            metrics = {
                "loglik": {
                    "strict": runs["strict"].metrics["loglik"],
                    "fixed-inputs": runs["fixed-inputs"].metrics["loglik"],
                    "fixed-inputs (strict component)": runs["fixed-inputs"].metrics["loglik_strict"],
                },
                "oracle_loglik": runs["strict"].metrics.get("oracle_loglik"),
                "relative_orbit_error_untrained": by_element.T.to_dict(),
                "orbit_error_by_angle_untrained": {
                    str(g): dict(zip(map(float, curves.angle.values), map(float, curves.sel(group=g).values)))
                    for g in curves.group.values
                },
                "orbit_error_trained_fixed_inputs": on_off.to_dict(),
                "orbit_error_strict": orbit_strict,
                "orbit_error_strict_group": exact,
            }
            """,
        ),
    ]


# --------------------------------------------------------------------------------------------------
# 05: relaxation sweep
# --------------------------------------------------------------------------------------------------


def nb05() -> list[NotebookNode]:
    """Sweep relaxation strength x group x seed; results as an xarray.Dataset saved to netCDF."""
    return [
        md(
            """
            # 05 · How much symmetry? A relaxation sweep

            `strength` sets how much an approximately equivariant model may use its fixed inputs:
            while training, each task sees them with probability `strength` (the dropout is
            `p = 1 - strength`).

            - `strength = 0`: never used, so the model **is** strictly equivariant;
            - `strength = 1`: always used, so the strict component is never trained on its own and the
              model is as free as the fixed inputs allow;
            - in between: both the model with and without fixed inputs are trained (the paper: 0.5).

            This notebook trains one model per (group, strength, seed) on `mountain-1d` (a
            stationary GP plus a fixed mountain range beyond the context window: notebook 02), where
            departing from translation symmetry is worth tenths of a nat. It collects the metrics in
            an `xarray.Dataset` with dimensions `group`, `strength` and `seed`, plots means with
            standard errors over seeds against the ceilings of the data, and saves the dataset to
            netCDF so a sweep can be compared with the next one. On a geographic dataset (e.g.
            `dataset = "colorado-temperature"`, groups `T` and `T+C4`) the correlation between the
            learned breaking field and elevation is swept too.
            """
        ),
        params(
            """
            fast = False  # True: tiny budgets (well under a minute); the tests use it
            dataset = "mountain-1d"  # GP worlds add the ceilings; geographic data the elevation correlation
            groups = ["T", "T+flip"]  # symmetry groups to sweep (2-D data: T, T+C4, T+D4, ...)
            strengths = [0.0, 0.5, 1.0]  # relaxation strengths to sweep
            steps = 500  # training steps per model (2 groups x 3 strengths x 3 seeds: about 7 min)
            lr = 1e-3  # AdamW learning rate; the paper's 5e-4 learns too slowly for CPU budgets
            seeds = 3  # seeds per point: results are mean +- standard error over seeds
            test_tasks = 512  # test tasks for the log-likelihoods (the same for every model)
            reference_none = True  # also train the free model (group none) as a reference line
            results_path = "relaxation_sweep.nc"  # the results Dataset is saved here (netCDF)
            train = True  # False: load the runs from run_dir instead of training them
            run_dir = None  # folder with one run per (group, strength, seed), e.g. T_s0.5/seed0, plus none
            metrics_path = None  # write the key numbers as JSON here
            device = "auto"  # auto, cpu or cuda
            """
        ),
        code(
            """
            import json
            import math
            from pathlib import Path

            import matplotlib.pyplot as plt
            import numpy as np
            import pandas as pd
            import torch
            import xarray as xr
            from tqdm.auto import tqdm

            import workbench.plot
            from workbench import Experiment, get_group, load_run, run
            from workbench.data.registry import make_dataset
            from workbench.evaluate import orbit_error
            from workbench.models import build_model
            from workbench.run import METRICS
            from workbench.sweep import summarise

            if fast:
                steps, test_tasks, seeds = min(steps, 3), min(test_tasks, 16), min(seeds, 2)
                strengths = [0.0, 0.5, 1.0]
            if not train and run_dir is None:
                raise ValueError("train = False loads saved runs: give run_dir")
            groups, strengths = [str(g) for g in groups], [float(s) for s in strengths]
            seed_list = list(range(int(seeds)))
            parameters = dict(
                fast=fast, dataset=dataset, groups=groups, strengths=strengths, steps=steps, lr=lr,
                seeds=seeds,
                test_tasks=test_tasks, reference_none=reference_none, results_path=str(results_path),
                train=train, run_dir=run_dir, device=device,
            )
            sampler = make_dataset(dataset)
            tests = sampler.test_set(test_tasks, batch_size=16)
            dim_x = len(sampler.box)
            print(sampler)
            """
        ),
        md(
            """
            ## 1. Before training: strength 0 is exactly equivariant

            Untrained models, one per strength, for the first group. At `strength = 0` the fixed inputs
            are never used, so the orbit error sits at float rounding level; at any positive strength
            the (random, untrained) fixed inputs are on at prediction time and break the symmetry.
            """
        ),
        code(
            """
            def experiment(group: str, strength: float | None, seed: int) -> Experiment:
                \"\"\"One point of the sweep; ``strength=None``: the free model (none).\"\"\"
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
            """
        ),
        md(
            """
            ## 2. The sweep

            One training run per point and seed; with `run_dir` each run is saved (or, with
            `train = False`, loaded) under a folder named after its group, strength and seed.
            """
        ),
        code(
            """
            def folder(group: str, strength: float | None, seed: int) -> Path | None:
                \"\"\"Where the run of one point of the sweep is saved.\"\"\"
                if run_dir is None:
                    return None
                name = "none" if strength is None else f"{group}_s{strength:g}"
                return Path(run_dir) / name / f"seed{seed}"


            points = [(g, s) for g in groups for s in strengths]
            if reference_none:
                points.append(("none", None))
            runs = {point: [] for point in points}
            for (g, s), seed in tqdm([(p, seed) for p in points for seed in seed_list], desc="sweep"):
                if train:
                    result = run(experiment(g, s, seed), progress=False)
                    if folder(g, s, seed) is not None:
                        result.save(folder(g, s, seed))
                else:
                    result = load_run(folder(g, s, seed))
                runs[g, s].append(result)
            first_seed = {f"{g} @ {s}": rs[0].metrics for (g, s), rs in runs.items()}
            pd.DataFrame(first_seed).T.style.format("{:.4g}").set_caption("all metrics, first seed")
            """
        ),
        md(
            """
            ## 3. Collect the results as an `xarray.Dataset`

            Every metric becomes a variable over `(group, strength, seed)` with its units and meaning
            as attributes; the free reference model's numbers are over `seed` only (`*_none`). The
            dataset is written to `results_path` as netCDF and can be read back with
            `xarray.open_dataset`; `results.mean("seed")` gives the means.
            """
        ),
        code(
            """
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
            swept = [r for (g, s), rs in runs.items() if s is not None for r in rs]
            names = [n for n in swept[0].metrics if all(n in r.metrics for r in swept)]
            data_vars = {
                name: (
                    ("group", "strength", "seed"),
                    np.array(
                        [[[r.metrics[name] for r in runs[g, s]] for s in strengths] for g in groups],
                        dtype=float,
                    ),
                    described.get(name, {}),
                )
                for name in names
            }
            if reference_none:
                for name in ("loglik", "oracle_loglik", "orbit_error"):
                    if all(name in r.metrics for r in runs["none", None]):
                        attrs = {**described.get(name, {}), "note": "free reference model (group none)"}
                        values = [r.metrics[name] for r in runs["none", None]]
                        data_vars[f"{name}_none"] = (("seed",), np.array(values, dtype=float), attrs)
            results = xr.Dataset(
                data_vars,
                coords={
                    "group": ("group", groups, {"long_name": "symmetry group of the equivariant part"}),
                    "strength": (
                        "strength",
                        strengths,
                        {"units": "1", "long_name": "relaxation strength (fixed-input dropout 1 - strength)"},
                    ),
                    "seed": ("seed", seed_list, {"long_name": "training seed (same test tasks for all)"}),
                },
                attrs={
                    "title": f"relaxation sweep on {dataset}",
                    "dataset": dataset, "model": "conv", "relaxation": "fixed-inputs",
                    "steps": steps, "lr": lr, "test_tasks": test_tasks,
                    "source": "notebooks/05_relaxation_sweep.ipynb (AENP Workbench)",
                },
            )
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
            """
        ),
        md(
            """
            ## 4. Plots

            Left: test log-likelihood against strength (mean ± standard error over seeds), with the
            fixed inputs on (solid) and off (dashed: the strict component), the free model, and the
            ceilings of the data where they are known: the oracle A and the best strictly
            translation-equivariant Gaussian predictor D. Middle: the orbit error, our equivariance
            check, which must be at rounding level at `strength = 0`. Right: on geographic data, the
            correlation of the breaking field with elevation (otherwise `delta_equiv`, how much the
            fixed inputs move predictions).
            """
        ),
        code(
            """
            third = "breaking_elevation_corr" if "breaking_elevation_corr" in results else "delta_equiv"
            fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
            for i, g in enumerate(groups):
                colour = f"C{i}"
                m, e = mean.sel(group=g), se.sel(group=g)
                axes[0].errorbar(strengths, m["loglik"], yerr=e["loglik"], fmt="o-", capsize=4, color=colour,
                                 label=f"{g}, fixed inputs on")
                axes[0].errorbar(strengths, m["loglik_strict"], yerr=e["loglik_strict"], fmt="s--", capsize=4,
                                 color=colour, alpha=0.6, label=f"{g}, strict component")
                axes[1].semilogy(strengths, np.maximum(m["orbit_error"], 1e-10), "o-", color=colour, label=g)
                axes[2].errorbar(
                    strengths, m[third], yerr=e[third], fmt="o-", capsize=4, color=colour, label=g
                )
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
            """
        ),
        md(
            """
            ## 5. Where the gap goes

            For each group: the strict model (strength 0), the middle strength and the strongest,
            with the free model, each bar from the model's mean score up to the oracle (see notebook
            02). A strength-0 model is strictly equivariant, so it is charged the symmetry headroom
            B - D. D is the ceiling for translations; for a strict `T+flip` model the true ceiling is
            lower still (not computed), so its red piece is a lower bound.
            """
        ),
        code(
            """
            def as_strict(metrics: dict) -> dict:
                \"\"\"A strength-0 model's metrics, charged the headroom: it is strictly equivariant.\"\"\"
                m = dict(metrics)
                m["symmetry_headroom"] = m["gaussian_loglik"] - m["equivariant_loglik"]
                return m


            gap_rows = {}
            if "equivariant_loglik" in results:
                middle = strengths[len(strengths) // 2]
                for g in groups:
                    for s in dict.fromkeys([strengths[0], middle, strengths[-1]]):
                        ms = [r.metrics for r in runs[g, s]]
                        gap_rows[f"{g} @ {s:g}"] = [as_strict(m) for m in ms] if s == 0 else ms
                if reference_none:
                    gap_rows["none"] = [r.metrics for r in runs["none", None]]
                title = f"{dataset}: where the gap to the oracle goes (mean ± s.e. over {n} seeds)"
                fig = workbench.plot.gap_split(gap_rows, title=title)
                plt.show()
            else:
                print(f"{dataset} has no ceilings (not a synthetic GP dataset): no gap split")
            """
        ),
        md(
            """
            What to look for: at `strength = 0` the solid and dashed curves meet (the model is its
            strict component) and should stay near or below D (a strict ConvCNP can creep above D
            by learning where it is from where its targets lie: notebook 02, section 5); as the
            strength grows the fixed
            inputs can collect the headroom, and the strict component (dashed) falls away once it
            is trained on too few tasks of its own. Differences between neighbouring strengths
            smaller than about two standard errors are noise, not a ranking. For the conv family the
            free model (`none`) is the very same network as `T` at strength 1 (fixed inputs never
            dropped) and, with the same seeds, gives the same numbers.

            ## Exercises

            1. At `strength = 0`, compare `loglik` with `loglik_strict` and look at the orbit error. Why
               do they behave as they do?
            """
        ),
        answer(
            """
            They are identical and the orbit error is at float rounding level: with dropout
            `p = 1 - 0 = 1` the fixed inputs are never used in training and, because they would be
            untrained, are also switched off at prediction. The model *is* its strict component.
            Relaxation costs nothing here: `strength = 0` reproduces the strict model exactly.
            """
        ),
        md(
            """
            2. What happens to `loglik_strict` (dashed) as `strength` approaches 1, and why?
            """
        ),
        answer(
            """
            The strict component is trained only on the tasks where the fixed inputs are dropped, a
            fraction `1 - strength` of them. At `strength = 1` it never sees a task without `t` and
            nothing asks it to predict well on its own, so its log-likelihood falls far below the
            strict model's. That strict component is also what the model falls back on outside the
            training box, where `t = 0`: intermediate strengths keep it useful.
            """
        ),
        md(
            """
            3. The results file keeps every seed. How do you get the difference between two
               strengths with its standard error, and why is that better than comparing two means
               that each have their own error bar?
            """
        ),
        answer(
            """
            Take the difference seed by seed (the same seed and the same test tasks on both sides),
            then its mean and standard error over seeds:

            ```python
            ds = xr.open_dataset("relaxation_sweep.nc")
            diff = ds["loglik"].sel(group="T", strength=0.5) - ds["loglik"].sel(group="T", strength=0.0)
            diff.mean("seed"), diff.std("seed", ddof=1) / np.sqrt(ds.sizes["seed"])
            ```

            Whatever makes one seed's test score high or low for both models (the same test tasks,
            the same initialisation of the shared network) cancels in the paired difference, so its
            standard error is usually smaller than the error bars of the two means suggest.
            Notebook 02 goes one step further and pairs per test task.
            """
        ),
        save_metrics(
            "05_relaxation_sweep",
            """
            strict_points = [
                r.metrics["orbit_error"] for g in groups if (g, 0.0) in runs for r in runs[g, 0.0]
            ]


            def per_point(name: str, table: xr.Dataset) -> dict:
                \"\"\"One number per (group, strength) point, keyed ``GROUP@STRENGTH``.\"\"\"
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
            """,
        ),
    ]


NOTEBOOKS: dict[str, Callable[[], list[NotebookNode]]] = {
    "01_symmetry_and_equivariance": nb01,
    "02_breaking_symmetry_1d": nb02,
    "03_mountains_colorado": nb03,
    "04_rotations_and_reflections": nb04,
    "05_relaxation_sweep": nb05,
}


def build(name: str) -> NotebookNode:
    """The notebook called ``name`` with stable cell ids (so regenerating gives no spurious diffs)."""
    cells = NOTEBOOKS[name]()
    for i, cell in enumerate(cells):
        cell["id"] = f"c{i:02d}"
    nb = nbformat.v4.new_notebook(cells=cells, metadata=METADATA)
    nbformat.validate(nb)
    return nb


def main(names: list[str]) -> None:
    """Write the named notebooks (all when none are named) next to this file."""
    for name in names or list(NOTEBOOKS):
        path = HERE / f"{name}.ipynb"
        nbformat.write(build(name), path)
        print(f"wrote {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main(sys.argv[1:])
