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
    """How many training steps of ``exp`` fit in ``budget`` CPU-seconds (``workbench.budget``)."""
    from workbench.budget import steps_in_budget as fit

    return fit(exp, sampler, budget)
