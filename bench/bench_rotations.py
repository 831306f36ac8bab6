"""Rotations benchmark (issue 3): speed on gp-2d, quality on gp-2d-anisotropic."""

from __future__ import annotations

import time

import torch

from workbench import Experiment
from workbench.data.registry import make_dataset
from workbench.evaluate import mean_loglik, oracle_loglik, orbit_error_vs_angle
from workbench.models import build_model
from workbench.train import make_optimizer, train


def speed(n: int) -> dict:
    """Median ms per training step at batch 16 and parameter counts, equal channel budget."""
    sampler = make_dataset("gp-2d")
    g = torch.Generator().manual_seed(0)
    tasks = [sampler.sample(16, g) for _ in range(4)]
    out = {}
    for group in ("T", "T+C4", "T+C8", "T+D8"):
        torch.manual_seed(0)
        m = build_model(Experiment(dataset="gp-2d", group=group, relaxation="strict"), 2, 1, sampler.box)
        opt = make_optimizer(m, 5e-4)
        times = []
        for i in range(n + 2):
            t0 = time.perf_counter()
            loss = -m.loglik(tasks[i % 4]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        ms = 1e3 * sorted(times[2:])[n // 2]
        out[group] = {
            "train_step_ms": ms,
            "steps_per_second": 1e3 / ms,
            "n_parameters": sum(p.numel() for p in m.parameters()),
        }
    return out


def quality(steps: int, test_tasks: int) -> dict:
    """Test log-likelihood and oracle gap after equal steps, plus orbit error vs angle."""
    sampler = make_dataset("gp-2d-anisotropic")
    test = sampler.test_set(test_tasks, batch_size=16)
    oracle = oracle_loglik(sampler.oracle_loglik, test)
    out: dict = {"oracle_loglik": oracle, "steps": steps, "test_tasks": test_tasks, "models": {}}
    for name, kw in [
        ("none", dict(group="none", relaxation="strict")),
        ("T", dict(group="T", relaxation="strict")),
        ("T+C8 strict", dict(group="T+C8", relaxation="strict")),
        ("T+C8 fixed-inputs", dict(group="T+C8", relaxation="fixed-inputs", strength=0.5)),
    ]:
        exp = Experiment(dataset="gp-2d-anisotropic", steps=steps, **kw)
        torch.manual_seed(exp.seed)
        m = build_model(exp, 2, 1, sampler.box)
        hist = train(m, sampler.batches(16, seed=0), steps, progress=False)
        ll = mean_loglik(m, test)
        angles = [15.0, 45.0, 90.0]
        curve = orbit_error_vs_angle(m, test[:4], sampler.box, angles)
        # Inside the context disc, relative to the spread of predictions (see tests/test_rotations.py).
        rel = orbit_error_vs_angle(m, test[:4], sampler.box, angles, radius=2.0, relative=True)
        out["models"][name] = {
            "loglik": ll,
            "loglik_strict": mean_loglik(m, test, fixed_inputs=False) if m.has_fixed_inputs else ll,
            "oracle_gap": oracle - ll,
            "train_seconds": hist.seconds,
            "orbit_error_by_angle": {str(float(a)): float(curve.sel(angle=a)) for a in angles},
            "relative_orbit_error_in_disc_by_angle": {str(float(a)): float(rel.sel(angle=a)) for a in angles},
        }
        print(name, out["models"][name], flush=True)
    lls = {k: v["loglik"] for k, v in out["models"].items()}
    out["approximate_beats_strict_and_free"] = lls["T+C8 fixed-inputs"] > max(lls["T+C8 strict"], lls["none"])
    return out


def run(quick: bool) -> dict:
    return {
        "speed_gp_2d": speed(3 if quick else 15),
        "quality_gp_2d_anisotropic": quality(10 if quick else 1500, 32 if quick else 256),
    }
