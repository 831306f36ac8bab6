"""Train the reference library's ConvCNP on our task stream for a CPU-time budget (run by bench_quality_time).

Runs in ``.venv-ref`` (the torch pin plus ``neuralprocesses``) with the repository on ``PYTHONPATH``,
so the tasks come from the very sampler our models train on: ``GPSampler.batches(16, seed)`` and the
same fixed test set. Same shape as ``reference_neuralprocesses.py`` (5 conv layers x 32 channels,
kernel 9, 16 points per unit, heteroscedastic Gaussian). Padding of the context (our ``mask_c``) goes
in as ``nps.Masked``. The clock is the process's CPU time spent training; evaluation is not counted.
Prints JSON lines: one per evaluation, then one with the final per-task log-likelihoods.

Usage: ``python reference_quality_time.py DATASET SEED BUDGET_CPU_S N_EVALS N_TEST LR``.
"""

from __future__ import annotations

import json
import sys
import time

import lab as B  # noqa: F401  (registers the torch backend for neuralprocesses)
import neuralprocesses.torch as nps
import torch
from reference_neuralprocesses import benchmark_convcnp  # the same model, defined once

from workbench.data.registry import make_dataset


def _layout(task):
    """Our task ``[b, n, 1]`` -> neuralprocesses' ``[b, 1, n]`` with the context padding masked."""
    t = lambda a: a.transpose(1, 2).contiguous()  # noqa: E731
    mask = task.mask_c[:, None, :].to(task.yc.dtype)
    yc = torch.where(task.mask_c[:, None, :], t(task.yc), torch.zeros(()))
    return t(task.xc), nps.Masked(yc, mask), t(task.xt), t(task.yt)


def _per_task(model, tasks) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        out = [nps.loglik(model, *_layout(task), normalise=True) for task in tasks]
    model.train()
    return torch.cat([o.reshape(-1) for o in out]).double()


def main(dataset: str, seed: int, budget: float, n_evals: int, n_test: int, lr: float) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    model = benchmark_convcnp()
    sampler = make_dataset(dataset)
    tests = sampler.test_set(n_test, batch_size=16)
    stream = sampler.batches(16, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    marks = [budget * (k + 1) / n_evals for k in range(n_evals)]
    spent, step = 0.0, 0
    while marks:
        t0 = time.process_time()
        task = next(stream)
        loss = -nps.loglik(model, *_layout(task), normalise=True).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        spent += time.process_time() - t0
        step += 1
        if spent >= marks[0]:
            marks.pop(0)
            ll = float(_per_task(model, tests).mean())
            print(json.dumps({"cpu_s": spent, "step": step, "loglik": ll}), flush=True)
    print(json.dumps({"final_per_task": _per_task(model, tests).tolist()}), flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], int(a[1]), float(a[2]), int(a[3]), int(a[4]), float(a[5]))
