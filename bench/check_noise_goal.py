"""Issue 12's second goal: noise-1d (location-dependent noise) within 0.10 nats of its oracle after at
most 10 CPU-minutes. Fixed-inputs ConvCNP with the default recipe, one thread, the cosine laid over the
steps that fit the budget; 1024 test tasks. Usage: ``python bench/check_noise_goal.py SEED BUDGET_CPU_S``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(seed: int, budget: float) -> dict:
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pool import steps_in_budget

    from workbench import Experiment
    from workbench.data.registry import make_dataset
    from workbench.evaluate import loglik_per_task
    from workbench.models import build_model
    from workbench.train import train

    exp = Experiment(dataset="noise-1d", relaxation="fixed-inputs", strength=0.5, seed=seed)
    sampler = make_dataset("noise-1d")
    steps = steps_in_budget(exp, sampler, budget)
    torch.manual_seed(seed)
    model = build_model(exp, 1, 1, sampler.box)
    t0 = time.process_time()
    train(model, sampler.batches(16, seed=seed), steps, lr=exp.lr, schedule=exp.lr_schedule, device="cpu")
    cpu = time.process_time() - t0
    tests = sampler.test_set(1024, batch_size=16)
    loglik = float(loglik_per_task(model, tests).mean())
    oracle = float(torch.cat([sampler.oracle_loglik(t) for t in tests]).mean())
    gap = oracle - loglik
    return {"seed": seed, "steps": steps, "cpu_s": cpu, "loglik": loglik, "oracle": oracle, "gap": gap}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), float(sys.argv[2]))))
