"""Core benchmark (issue 2): training speed of each family and quality after a fixed budget on gibbs-1d."""

from __future__ import annotations

import resource
import time

import torch

from workbench import Experiment
from workbench.data.registry import make_dataset
from workbench.evaluate import mean_loglik, oracle_loglik
from workbench.models import build_model
from workbench.train import make_optimizer, resolve_device, train

FAMILIES = [
    ("conv", "T", "strict"),
    ("conv", "T", "fixed-inputs"),
    ("conv", "T", "relaxed-conv"),
    ("conv", "none", "strict"),
    ("transformer", "T", "fixed-inputs"),
    ("transformer", "none", "strict"),
    ("deepsets", "none", "strict"),
]


def _median_ms(fn, n: int, sync=lambda: None) -> float:
    times = []
    for i in range(n):
        sync()
        t0 = time.perf_counter()
        fn(i)
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    return 1e3 * times[len(times) // 2]


def speed(device: torch.device, n: int) -> dict:
    """Median ms per training step (pre-drawn tasks), sampling, one 512-point prediction."""
    sampler = make_dataset("gibbs-1d")
    g = torch.Generator().manual_seed(0)
    tasks = [sampler.sample(16, g).to(device) for _ in range(8)]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out: dict = {"device": str(device), "batch": 16, "nc_max": 64, "nt": 128}
    out["sample_batch_ms"] = _median_ms(lambda i: sampler.sample(16, g), n)
    for model, group, relax in FAMILIES:
        torch.manual_seed(0)
        m = build_model(Experiment(model=model, group=group, relaxation=relax), 1, 1, sampler.box).to(device)
        opt = make_optimizer(m, 5e-4)
        m.train()

        def step(i, m=m, opt=opt):
            loss = -m.loglik(tasks[i % len(tasks)]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
            opt.step()

        for i in range(5):
            step(i)
        ms = _median_ms(step, n, sync)
        m.eval()
        t = tasks[0].select(slice(0, 1))
        x = torch.linspace(-4, 4, 512, device=device).view(1, 512, 1)
        with torch.no_grad():
            pred = _median_ms(lambda i, m=m, t=t, x=x: m(t.xc, t.yc, x, t.mask_c), n, sync)
        key = f"{model}/{group}/{relax}"
        out[key] = {"train_step_ms": ms, "steps_per_second": 1e3 / ms, "predict_512_ms": pred}
    return out


def quality(budgets: list[int], test_tasks: int) -> dict:
    """Test log-likelihood of conv none / strict / fixed-inputs 0.5, one run per budget of steps.

    Separate runs (same seed, same task stream), so that with ``lr_schedule="cosine"`` a 1000-step
    run is a finished run, not the first 1000 steps of a longer one (with the constant default the
    two are the same).
    """
    sampler = make_dataset("gibbs-1d")
    test = sampler.test_set(test_tasks, batch_size=16)
    oracle = oracle_loglik(sampler.oracle_loglik, test)
    out: dict = {"oracle_loglik": oracle, "test_tasks": test_tasks, "budgets": budgets, "models": {}}
    for name, kw in [
        ("none", dict(group="none", relaxation="strict")),
        ("strict", dict(group="T", relaxation="strict")),
        ("fixed-inputs-0.5", dict(group="T", relaxation="fixed-inputs", strength=0.5)),
    ]:
        rows = []
        for steps in budgets:
            exp = Experiment(dataset="gibbs-1d", model="conv", steps=steps, **kw)
            torch.manual_seed(exp.seed)
            model = build_model(exp, 1, 1, sampler.box)
            hist = train(
                model,
                sampler.batches(16, seed=exp.seed),
                steps,
                lr=exp.lr,
                schedule=exp.lr_schedule,
                device="cpu",
                progress=False,
            )
            ll = mean_loglik(model, test)
            strict = mean_loglik(model, test, fixed_inputs=False) if model.has_fixed_inputs else ll
            rows.append(
                {
                    "steps": steps,
                    "seconds": hist.seconds,
                    "loglik": ll,
                    "loglik_strict": strict,
                    "oracle_gap": oracle - ll,
                    "lr": exp.lr,
                    "schedule": exp.lr_schedule,
                }
            )
            print(name, rows[-1], flush=True)
        out["models"][name] = rows
    final = {k: v[-1]["loglik"] for k, v in out["models"].items()}
    out["approximate_beats_both"] = {
        str(b): all(
            out["models"]["fixed-inputs-0.5"][i]["loglik"] > out["models"][k][i]["loglik"]
            for k in ("none", "strict")
        )
        for i, b in enumerate(budgets)
    }
    out["final"] = final
    return out


def run(quick: bool) -> dict:
    result = {"speed_cpu": speed(torch.device("cpu"), 20 if quick else 100)}
    if torch.cuda.is_available():
        result["speed_cuda"] = speed(resolve_device("cuda"), 20 if quick else 100)
    budgets = [20, 40] if quick else [1000, 4000, 16000]
    result["quality_gibbs_1d"] = quality(budgets, 64 if quick else 1024)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result
