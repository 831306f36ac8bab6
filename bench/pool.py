"""Run bench jobs side by side in spawned processes (shared by the benches that train several models)."""

from __future__ import annotations

import importlib
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)


def pool_map(module: str, fn: str, jobs: list[tuple], workers: int) -> list:
    """``module.fn(*job)`` for every job in a spawn pool of ``workers`` processes, results in job order.

    Spawn, not fork: a forked child of a process whose OpenMP threads have run can hang. run_bench
    loads bench files without registering them, so the workers import ``module`` by name from here.
    """
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    target = getattr(importlib.import_module(module), fn)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return list(pool.map(target, *zip(*jobs, strict=True)))


def steps_in_budget(exp, sampler, budget: float) -> int:
    """How many training steps of ``exp`` fit in ``budget`` CPU-seconds of this process (a throw-away
    model, 30 steps timed after 5 of warm-up), so that a schedule's cosine ends at the budget."""
    import time

    from workbench.models import build_model
    from workbench.train import train

    task = next(sampler.batches(exp.batch_size, seed=10**6))
    model = build_model(exp, task.dim_x, task.dim_y, sampler.box)
    train(model, sampler.batches(exp.batch_size, seed=10**6), 5, lr=exp.lr, device="cpu", progress=False)
    t0 = time.process_time()
    train(model, sampler.batches(exp.batch_size, seed=10**6 + 1), 30, lr=exp.lr, device="cpu", progress=False)
    return max(int(budget * 30 / (time.process_time() - t0)), 10)
