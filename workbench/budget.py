"""Compute budgets: how many training steps of an experiment fit in a number of CPU-seconds."""

from __future__ import annotations

import time

from workbench.config import Experiment
from workbench.data.base import Sampler

#: Steps timed (after a warm-up) to measure the cost of one step.
TIMED_STEPS = 30
WARMUP_STEPS = 5


def phase_factor(exp: Experiment) -> float:
    """The training work of ``exp`` in units of its data steps: 1 for most relaxations; symmetry
    cloning also trains a teacher and a clone, each for a fraction of the steps."""
    if exp.relaxation == "symmetry-cloning":
        from workbench.models.relaxations.symmetry_cloning import CLONE_FRACTION, TEACHER_FRACTION

        return 1.0 + TEACHER_FRACTION + CLONE_FRACTION
    return 1.0


def step_cpu_seconds(exp: Experiment, sampler: Sampler) -> float:
    """CPU-seconds of this process per training step of ``exp`` (a throw-away model, ``TIMED_STEPS``
    steps timed after ``WARMUP_STEPS``); CPU time, which a busy machine disturbs less than wall time."""
    from workbench.models import build_model
    from workbench.train import train

    task = next(sampler.batches(exp.batch_size, seed=10**6))
    model = build_model(exp, task.dim_x, task.dim_y, sampler.box)
    # The warm-up also runs a relaxation's one-off preparation (symmetry cloning's teacher and clone).
    warm = sampler.batches(exp.batch_size, seed=10**6)
    train(model, warm, WARMUP_STEPS, lr=exp.lr, device="cpu", progress=False)
    timed = sampler.batches(exp.batch_size, seed=10**6 + 1)
    t0 = time.process_time()
    train(model, timed, TIMED_STEPS, lr=exp.lr, device="cpu", progress=False)
    return (time.process_time() - t0) / TIMED_STEPS


def steps_in_budget(exp: Experiment, sampler: Sampler, cpu_seconds: float) -> int:
    """How many steps of ``exp`` fit in ``cpu_seconds`` of this process, preparation included, so
    that a schedule's cosine ends at the budget (at least 10)."""
    per_step = step_cpu_seconds(exp, sampler) * phase_factor(exp)
    return max(int(cpu_seconds / per_step), 10)
