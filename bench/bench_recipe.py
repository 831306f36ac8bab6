"""Training recipes against each other on gibbs-1d at a fixed CPU budget, 3 seeds, paired per test task.

Issue 12 asks that every change to the recipe be kept only with a measured gain over at least 3
seeds. Each recipe trains the strict ConvCNP through the library's own ``train`` for ``budget``
CPU-seconds (one thread per process, two processes side by side on the 2 cores): a short calibration
measures its CPU time per step, and the schedule (cosine or constant, with the library's warm-up) is
laid over the number of steps that fit the budget. All recipes see the same task stream per seed
(``batches(batch, seed)``) and are scored on the same 1024 test tasks; each is reported as mean ± s.e.
over seeds and as the paired difference per test task against the first recipe (the old default).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATASET = "gibbs-1d"

#: name -> Experiment overrides, plus ``shared_inputs`` for the sampler's training batches. The
#: first is the baseline of the paired differences (the recipe before issue 12).
RECIPES: dict[str, dict[str, Any]] = {
    "old: lr 5e-4 constant, inputs per task": dict(lr=5e-4, lr_schedule="constant", shared_inputs=False),
    "lr 2e-3 cosine + warm-up, inputs per task": dict(lr=2e-3, lr_schedule="cosine", shared_inputs=False),
    "lr 2e-3 cosine + warm-up, inputs per batch": dict(lr=2e-3, lr_schedule="cosine", shared_inputs=True),
}


def _job(name: str, seed: int, budget: float, n_test: int) -> dict:
    """One recipe and seed: calibrate, train for the budget, score every test task."""
    import torch

    torch.set_num_threads(1)
    from workbench import Experiment
    from workbench.data.registry import make_dataset
    from workbench.evaluate import loglik_per_task
    from workbench.models import build_model
    from workbench.train import train

    overrides = dict(RECIPES[name])
    shared = overrides.pop("shared_inputs")
    exp = Experiment(dataset=DATASET, model="conv", group="T", relaxation="strict", seed=seed, **overrides)
    sampler = make_dataset(DATASET)
    sampler.shared_inputs = shared
    steps = _bench_pool().steps_in_budget(exp, sampler, budget)
    torch.manual_seed(seed)
    model = build_model(exp, 1, 1, sampler.box)
    t0 = time.process_time()
    train(
        model,
        sampler.batches(exp.batch_size, seed=seed),
        steps,
        lr=exp.lr,
        schedule=exp.lr_schedule,
        device="cpu",
        progress=False,
    )
    cpu = time.process_time() - t0
    tests = sampler.test_set(n_test, batch_size=16)
    per_task = loglik_per_task(model, tests)
    return {"recipe": name, "seed": seed, "steps": steps, "cpu_s": cpu, "per_task": per_task.tolist()}


def run(quick: bool, budget: float | None = None) -> dict:
    """Every recipe at ``budget`` CPU-seconds (120 by default; 10 when quick), 3 seeds (2 when quick)."""
    import numpy as np

    from workbench.ceilings import ceilings, per_task_difference
    from workbench.data.registry import make_dataset
    from workbench.evaluate import mean_se

    budget = budget or (10.0 if quick else 120.0)
    seeds, n_test = ([0, 1], 128) if quick else ([0, 1, 2], 1024)
    jobs = [(name, seed, budget, n_test) for seed in seeds for name in RECIPES]
    os.environ["OMP_NUM_THREADS"] = "1"  # the spawned workers read it when torch loads
    done = _bench_pool().pool_map("bench_recipe", "_job", jobs, workers=2)
    sampler = make_dataset(DATASET)
    c = ceilings(sampler, sampler.test_set(n_test, batch_size=16))
    base = next(iter(RECIPES))
    result: dict = {
        "dataset": DATASET,
        "budget_cpu_s": budget,
        "threads_per_run": 1,
        "n_test_tasks": n_test,
        "seeds": seeds,
        "ceilings": {k: c[k] for k in ("oracle_loglik", "gaussian_loglik", "equivariant_loglik")},
        "recipes": {},
    }
    for name in RECIPES:
        runs = sorted((r for r in done if r["recipe"] == name), key=lambda r: r["seed"])
        means = [float(np.mean(r["per_task"])) for r in runs]
        mean, se = mean_se(means)
        entry: dict = {
            "overrides": RECIPES[name],
            "loglik": mean,
            "se": se,
            "per_seed": means,
            "steps": [r["steps"] for r in runs],
            "cpu_s": [round(r["cpu_s"], 1) for r in runs],
        }
        if name != base:
            bases = sorted((r for r in done if r["recipe"] == base), key=lambda r: r["seed"])
            diffs = [
                per_task_difference(np.asarray(r["per_task"]), np.asarray(b["per_task"]))
                for r, b in zip(runs, bases, strict=True)
            ]
            entry["minus_baseline_per_seed"] = [{"mean": m, "se": s} for m, s in diffs]
            entry["minus_baseline"] = dict(zip(("mean", "se"), mean_se([m for m, _ in diffs]), strict=True))
        result["recipes"][name] = entry
    return result


def _bench_pool():
    """``bench/pool.py`` (run_bench loads bench files by path, so their folder may not be importable)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import pool

    return pool


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = run(quick, float(args[0]) if args else None)
    import platform

    import torch

    out["_meta"] = {
        "quick": quick,
        "torch": torch.__version__,
        "threads": 1,
        "machine": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    suffix = "-quick" if quick else ""
    path = HERE / "results" / f"recipe{suffix}.json"
    path.write_text(json.dumps(out, indent=1))
    summary = {k: {kk: v[kk] for kk in ("loglik", "se")} for k, v in out["recipes"].items()}
    print(json.dumps(summary, indent=1))
