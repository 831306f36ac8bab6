"""Quality against time: test log-likelihood as training goes, ours and the reference library's, on gibbs-1d.

Strict and fixed-inputs ConvCNP (the benchmark shape, 5 x 32, kernel 9, 16 points per unit, batch 16)
and ``neuralprocesses``' ConvCNP of the same shape (``reference_quality_time.py`` in ``.venv-ref``),
each trained on the same task stream (``batches(16, seed)``) for the same CPU-time budget, scored
on the same 1024 test tasks at 10 evenly spaced times (evaluation is not counted), over 3 seeds:
mean and standard error per point, and at the end the paired difference per test task against the
reference. Ours train with the library's default recipe (``Experiment``'s rate and schedule, the
cosine laid over the steps that fit the budget); the reference as the paper's code does (Adam 5e-4,
constant). Each curve runs in a process of its own with one thread, two side by side on the 2 cores
(``threads=2`` runs them one at a time on 2 threads); each curve's clock is its own CPU time. The
oracle (A), the best Gaussian predictor (B) and the best strictly equivariant Gaussian predictor (D)
of ``workbench.ceilings`` are the horizontal lines. The goal (issue 12): the best model within 0.10
nats of D after 600 CPU-seconds, and above the reference at every point. Writes
``quality_time.png`` beside the JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from workbench import Experiment
from workbench.ceilings import ceilings, per_task_difference
from workbench.data.registry import make_dataset
from workbench.evaluate import loglik_per_task, mean_se
from workbench.models import build_model
from workbench.threads import WAIT_VARS
from workbench.train import train

HERE = Path(__file__).resolve().parent
REF_PYTHON = HERE.parent / ".venv-ref" / "bin" / "python"
DATASET = "gibbs-1d"
#: The reference trains as the paper's development code does (Adam, 5e-4, constant).
REF_LR = 5e-4
MODELS = {
    "strict": dict(group="T", relaxation="strict"),
    "fixed-inputs": dict(group="T", relaxation="fixed-inputs", strength=0.5),
}


def _ours(kind: str, seed: int, budget: float, n_evals: int, tests: list, box) -> dict:
    """Train one of our models with the library's default recipe (``Experiment``'s learning rate and
    schedule, laid over the steps that fit the budget) for ``budget`` CPU-seconds of this process;
    score it ``n_evals`` times, and once more at the end if the steps ran out first."""
    exp = Experiment(dataset=DATASET, model="conv", seed=seed, **MODELS[kind])
    sampler = make_dataset(DATASET)
    steps = _bench_pool().steps_in_budget(exp, sampler, budget)
    torch.manual_seed(seed)
    model = build_model(exp, 1, 1, box)
    marks = [budget * (k + 1) / n_evals for k in range(n_evals)]
    curve: list[dict] = []
    stop = threading.Event()
    start = time.process_time()
    skipped = 0.0  # CPU time spent evaluating, not training

    def evaluate(step: int, spent: float) -> None:
        nonlocal skipped
        t0 = time.process_time()
        ll = float(loglik_per_task(model, tests).mean())
        model.train()
        skipped += time.process_time() - t0
        curve.append({"cpu_s": spent, "step": step, "loglik": ll})

    def score(step: int, loss: float) -> None:
        spent = time.process_time() - start - skipped
        if not marks or spent < marks[0]:
            return
        marks.pop(0)
        evaluate(step, spent)
        if not marks:
            stop.set()

    history = train(
        model,
        sampler.batches(16, seed=seed),
        steps,
        lr=exp.lr,
        schedule=exp.lr_schedule,
        device="cpu",
        callbacks=[score],
        stop=stop,
        progress=False,
    )
    if marks:  # the calibrated steps ended a little before the budget
        evaluate(history.steps_done, time.process_time() - start - skipped)
    return {"curve": curve, "final_per_task": loglik_per_task(model, tests), "lr": exp.lr, "steps": steps}


def _reference(seed: int, budget: float, n_evals: int, n_test: int, threads: int = 2) -> dict:
    """The reference library's run in its own environment, or why it could not run."""
    if not REF_PYTHON.exists():
        return {"missing": f"{REF_PYTHON} not found; `make bench` creates it"}
    env = {
        "OMP_NUM_THREADS": str(threads),
        "PATH": "/usr/bin:/bin",
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": str(HERE.parent),
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    # The same OpenMP waiting as ours (workbench sets it on import): spinning threads count as CPU time.
    env |= {k: os.environ[k] for k in WAIT_VARS if k in os.environ}
    args = [DATASET, seed, budget, n_evals, n_test, REF_LR]
    proc = subprocess.run(
        [str(REF_PYTHON), str(HERE / "reference_quality_time.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=budget * 4 + 600,
        env=env,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {
        "curve": [r for r in lines if "loglik" in r],
        "final_per_task": np.asarray(lines[-1]["final_per_task"]),
    }


def _summary(runs: list[dict]) -> dict:
    """Mean and standard error over seeds of each evaluation point."""
    n = min(len(r["curve"]) for r in runs)
    points = []
    for k in range(n):
        mean, se = mean_se([r["curve"][k]["loglik"] for r in runs])
        cpu = float(np.mean([r["curve"][k]["cpu_s"] for r in runs]))
        steps = float(np.mean([r["curve"][k]["step"] for r in runs]))
        points.append({"cpu_s": cpu, "steps": steps, "loglik": mean, "se": se})
    return {"points": points, "seeds": [r["curve"] for r in runs]}


def _figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    colours = {"strict": "tab:blue", "fixed-inputs": "tab:orange", "neuralprocesses": "tab:gray"}
    for name, s in result["models"].items():
        if "points" not in s:
            continue
        x = [p["cpu_s"] for p in s["points"]]
        y = np.array([p["loglik"] for p in s["points"]])
        e = np.nan_to_num(np.array([p["se"] for p in s["points"]]))
        ax.plot(x, y, "o-", color=colours.get(name), label=name, ms=3)
        ax.fill_between(x, y - 2 * e, y + 2 * e, color=colours.get(name), alpha=0.2, lw=0)
    c = result["ceilings"]
    for key, label, style in [
        ("oracle_loglik", "A  oracle", ":"),
        ("gaussian_loglik", "B  best Gaussian", "--"),
        ("equivariant_loglik", "D  best strictly equivariant", "-."),
    ]:
        ax.axhline(c[key], color="k", ls=style, lw=1, label=f"{label} ({c[key]:.3f})")
    ax.axhline(c["equivariant_loglik"] - 0.1, color="tab:red", lw=0.8, alpha=0.6, label="goal: D - 0.1")
    threads = result.get("threads_per_run", 2)
    ax.set_xlabel(f"training CPU time (s, {threads} thread(s) per run; evaluation not counted)")
    ax.set_ylabel("test log-likelihood (nats/target)")
    ax.set_title(f"{DATASET}: quality against time, mean ± 2 s.e. over {result['n_seeds']} seeds")
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _job(kind: str, seed: int, budget: float, n_evals: int, n_test: int, threads: int) -> dict:
    """One curve in a process of its own with ``threads`` threads (ours, or the reference's)."""
    torch.set_num_threads(threads)
    if kind == "neuralprocesses":
        return _reference(seed, budget, n_evals, n_test, threads)
    sampler = make_dataset(DATASET)
    return _ours(kind, seed, budget, n_evals, sampler.test_set(n_test, batch_size=16), sampler.box)


def run(quick: bool, budget: float | None = None, threads: int = 1) -> dict:
    """The curves; ``budget`` (CPU-seconds per model and seed) overrides the 600 s of a full run.

    ``threads=1`` runs two curves at a time side by side, one thread each (what a 2-core machine
    does best per CPU-second: each curve's clock is its own process's CPU time either way)."""
    budget_, n_evals, n_test, seeds = (20.0, 3, 128, [0, 1]) if quick else (600.0, 10, 1024, [0, 1, 2])
    budget = budget or budget_
    sampler = make_dataset(DATASET)
    tests = sampler.test_set(n_test, batch_size=16)
    c = ceilings(sampler, tests)
    names = [*MODELS, "neuralprocesses"]
    jobs = [(name, seed, budget, n_evals, n_test, threads) for seed in seeds for name in names]
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the spawned workers read it when torch loads
    done = _bench_pool().pool_map("bench_quality_time", "_job", jobs, workers=2 if threads == 1 else 1)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for (name, *_), r in zip(jobs, done, strict=True):
        runs[name].append(r)
    result: dict = {
        "dataset": DATASET,
        "budget_cpu_s": budget,
        "n_test_tasks": n_test,
        "n_seeds": len(seeds),
        "threads_per_run": threads,
        "recipe": {
            "ours": f"Experiment defaults: lr {Experiment().lr:g}, {Experiment().lr_schedule} with warm-up",
            "neuralprocesses": f"Adam lr {REF_LR:g} constant",
        },
        "ceilings": {k: c[k] for k in ("oracle_loglik", "gaussian_loglik", "equivariant_loglik")},
        "models": {},
    }
    for name, rs in runs.items():
        bad = [r for r in rs if "curve" not in r]
        result["models"][name] = bad[0] if bad else _summary(rs)
    ref = runs["neuralprocesses"]
    d = result["ceilings"]["equivariant_loglik"]
    for kind in MODELS:
        final = result["models"][kind]["points"][-1]
        goal = {
            "final_loglik": final["loglik"],
            "below_D": d - final["loglik"],
            "met": final["loglik"] >= d - 0.1,
        }
        if all("curve" in r for r in ref):
            pairs = zip(runs[kind], ref, strict=True)
            diffs = [per_task_difference(o["final_per_task"], r["final_per_task"]) for o, r in pairs]
            goal["minus_reference_final"] = [{"mean": m, "se": s} for m, s in diffs]
            ref_points = result["models"]["neuralprocesses"]["points"]
            ours_points = result["models"][kind]["points"]
            goal["above_reference_everywhere"] = all(
                o["loglik"] > r["loglik"] for o, r in zip(ours_points, ref_points, strict=False)
            )
        result.setdefault("goals", {})[kind] = goal
    suffix = "-quick" if quick else ("" if budget == 600.0 else f"-{budget:g}s")
    _figure(result, HERE / "results" / f"quality_time{suffix}.png")
    return result


def _bench_pool():
    """``bench/pool.py`` (run_bench loads bench files by path, so their folder may not be importable)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import pool

    return pool
