"""Maps benchmark: geographic data; strict vs approximate vs free vs a model told the elevation.

For colorado-temperature (test = 1989-1997), us-terrain (test = the eastern US, out of the training
box) and terrain:alps->rockies (test = the Rockies): mean log-likelihood per target of four ConvCNPs
trained for the same steps on the same task stream, each kept at its best validation step
(early stopping, checked every steps/6):

- ``none``: no symmetry (fixed inputs always on),
- ``strict``: translation equivariant,
- ``fixed-inputs``: the paper's approximately equivariant model (strength 0.5),
- ``elevation-input``: a reference ConvCNP whose "fixed inputs" are the normalised elevation itself
  (known, not learned, and known outside the box too) -- what a model told where the mountains are does.

Also: validation log-likelihood (in distribution: 1981-1988 / the training region), the correlation of
the fixed-inputs model's breaking field with elevation and with the true lapse-rate term, the time of
one ``predict_map`` on a 100 x 100 grid, and the size of ``datasets/``.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import torch

from workbench import Experiment, Run
from workbench.data.registry import make_dataset
from workbench.evaluate import mean_loglik
from workbench.geo import datasets_dir
from workbench.maps import map_metrics, predict_map
from workbench.models import CONV_2D, ConvCNP, build_model
from workbench.train import History, KeepBest, train


def _elevation_inputs() -> type:
    """The known-elevation fixed inputs, a test helper kept once, in tests/covariates.py."""
    path = Path(__file__).resolve().parents[1] / "tests" / "covariates.py"
    spec = importlib.util.spec_from_file_location("_covariates", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ElevationInputs


ElevationInputs = _elevation_inputs()
DATASETS = ["colorado-temperature", "us-terrain", "terrain:alps->rockies"]
MODELS = {
    "none": dict(group="none", relaxation="strict"),
    "strict": dict(group="T", relaxation="strict"),
    "fixed-inputs": dict(group="T", relaxation="fixed-inputs", strength=0.5),
    "elevation-input": dict(group="T", relaxation="strict"),
}


def _model(name: str, exp: Experiment, sampler) -> torch.nn.Module:
    torch.manual_seed(exp.seed)
    if name != "elevation-input":
        return build_model(exp, 2, 1, sampler.box)
    return ConvCNP(
        2,
        1,
        sampler.box,
        fixed=ElevationInputs(sampler, sampler.box, footprint=1.0 / CONV_2D["points_per_unit"]),
        channels=CONV_2D["width"],
        depth=CONV_2D["depth"],
        points_per_unit=CONV_2D["points_per_unit"],
        kernel=CONV_2D["kernel"],
    )


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def one_dataset(name: str, steps: int, n_test: int, n_val: int) -> dict:
    """Train the four models on one dataset and score them."""
    sampler = make_dataset(name)
    test = sampler.test_set(n_test, batch_size=16, seed=10_000)
    val = sampler.validation_set(n_val, batch_size=16, seed=20_000)
    out: dict = {"box": sampler.box, "train_region": sampler.train_region, "models": {}}
    for model_name, kw in MODELS.items():
        exp = Experiment(dataset=name, model="conv", steps=steps, **kw)
        model = _model(model_name, exp, sampler)
        # Early stopping on the validation split: Colorado's ~1000 training months overfit.
        keep = KeepBest(model, val, every=max(steps // 6, 1))
        hist: History = train(
            model,
            sampler.batches(16, seed=exp.seed),
            steps,
            lr=exp.lr,
            device="cpu",
            progress=False,
            callbacks=[keep],
        )
        final = mean_loglik(model, test)
        row = {
            "final_test_loglik": final,
            "best_step": keep.restore(),
            "test_loglik": mean_loglik(model, test),
            "val_loglik": mean_loglik(model, val),
            "train_seconds": hist.seconds,
        }
        if model_name == "fixed-inputs":
            row["test_loglik_strict"] = mean_loglik(model, test, fixed_inputs=False)
            row["val_loglik_strict"] = mean_loglik(model, val, fixed_inputs=False)
            r = Run(exp, model, hist, {}, sampler.box, 2, 1)
            row.update(map_metrics(r, sampler))
        out["models"][model_name] = row
        print(name, model_name, {k: round(v, 4) for k, v in row.items()}, flush=True)
    m = out["models"]
    out["fixed_beats_strict_test"] = m["fixed-inputs"]["test_loglik"] > m["strict"]["test_loglik"]
    out["fixed_beats_none_test"] = m["fixed-inputs"]["test_loglik"] > m["none"]["test_loglik"]
    out["fixed_beats_strict_val"] = m["fixed-inputs"]["val_loglik"] > m["strict"]["val_loglik"]
    out["fixed_beats_none_val"] = m["fixed-inputs"]["val_loglik"] > m["none"]["val_loglik"]
    return out


def map_speed(n: int) -> dict:
    """Median ms of predict_map on a 100 x 100 grid over Colorado (an untrained fixed-inputs model)."""
    exp = Experiment(dataset="colorado-temperature", relaxation="fixed-inputs", steps=0)
    sampler = make_dataset(exp.dataset)
    torch.manual_seed(0)
    r = Run(exp, build_model(exp, 2, 1, sampler.box), History(), {}, sampler.box, 2, 1)
    grid = (np.linspace(36.55, 41.45, 100), np.linspace(-109.45, -101.05, 100))
    predict_map(r, "1990-07", grid=grid)  # warm up (file reads, caches)
    out = {"grid": "100 x 100", "n_stations": int(sampler.context("1990-07").value.size)}
    out["predict_map_ms"] = _median_ms(lambda: predict_map(r, "1990-07", grid=grid), n)
    out["predict_map_strict_ms"] = _median_ms(
        lambda: predict_map(r, "1990-07", grid=grid, fixed_inputs=False), n
    )
    return out


def run(quick: bool) -> dict:
    steps = 3 if quick else 1500
    n_test, n_val = (16, 16) if quick else (256, 128)
    files = [p for p in datasets_dir().rglob("*") if p.is_file()]
    result: dict = {
        "steps": steps,
        "batch_size": 16,
        "test_tasks": n_test,
        "val_tasks": n_val,
        "datasets_dir_mb": sum(p.stat().st_size for p in files) / 1e6,
        "map_speed": map_speed(3 if quick else 20),
    }
    for name in DATASETS:
        result[name] = one_dataset(name, steps, n_test, n_val)
    return result
