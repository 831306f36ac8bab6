"""The scaling study's pieces: finite training pools, power-law fits, paired winners, budgets."""

import itertools

import numpy as np
import pytest
import xarray as xr

from workbench import Experiment, run
from workbench.budget import phase_factor
from workbench.data.base import pool_batches
from workbench.data.registry import make_dataset
from workbench.runs import experiment_hash, experiment_record
from workbench.scaling import fit_power_law, paired_over_seeds, power_laws, winners


def _key(task) -> bytes:
    return task.yc.numpy().tobytes()


def test_a_pool_is_seen_whole_every_epoch_in_a_new_order():
    sampler = make_dataset("gibbs-1d")
    stream = list(itertools.islice(pool_batches(sampler, 4, 16, seed=1), 12))  # 3 epochs of 4 batches
    epochs = [[_key(t) for t in stream[i : i + 4]] for i in range(0, 12, 4)]
    pool = {_key(next(sampler.batches(4, seed=1, start=j))) for j in range(4)}
    for e in epochs:
        assert set(e) == pool and len(set(e)) == 4  # every batch of the pool once, nothing else
    assert len({tuple(e) for e in epochs}) > 1  # the order changes between epochs


def test_a_pool_resumes_at_its_step():
    sampler = make_dataset("gibbs-1d")
    whole = [_key(t) for t in itertools.islice(pool_batches(sampler, 4, 16, seed=2), 10)]
    later = [_key(t) for t in itertools.islice(pool_batches(sampler, 4, 16, seed=2, start=6), 4)]
    assert later == whole[6:]


def test_a_pool_must_be_whole_batches():
    with pytest.raises(ValueError, match="train_pool = 40 must be 0 .* multiple of batch_size = 16.*32"):
        Experiment(dataset="gibbs-1d", train_pool=40)
    with pytest.raises(ValueError, match="train_pool = -16 must be an integer >= 0"):
        Experiment(dataset="gibbs-1d", train_pool=-16)
    with pytest.raises(ValueError, match="n_tasks = 8 must be a positive multiple of batch_size = 16"):
        next(pool_batches(make_dataset("gibbs-1d"), 16, 8, seed=0))


def test_a_run_on_a_pool_trains_and_keeps_old_hashes():
    exp = Experiment(dataset="gibbs-1d", steps=6, train_pool=32, test_tasks=16, device="cpu")
    r = run(exp, progress=False)
    assert r.history.steps_done == 6 and np.isfinite(r.metrics["loglik"])
    # A run of fresh tasks hashes as before the field existed; a pool is another experiment.
    assert experiment_hash(exp.replace(train_pool=0)) != experiment_hash(exp)
    assert "train_pool" not in experiment_record(exp.replace(train_pool=0))


def test_power_law_recovers_its_parameters_and_refuses_noise():
    x = np.array([64, 256, 1024, 4096, 16384], dtype=float)
    y = -0.4 - 3.0 * x**-0.5
    fit = fit_power_law(x, y)
    assert fit["holds"] and fit["b"] == pytest.approx(0.5, rel=1e-3)
    assert fit["a"] == pytest.approx(3.0, rel=1e-2) and fit["c"] == pytest.approx(-0.4, abs=1e-3)
    noisy = np.random.default_rng(0).normal(0, 0.1, size=5) - 1.0
    assert not fit_power_law(x, noisy)["holds"]
    assert not fit_power_law(x[:3], y[:3])["holds"]  # too few points to say
    # A curve that levels off (measured: the free model on mountain-1d at 500 steps) fits loglik
    # closely, but its last points sit on the asymptote: not a power law.
    flat = fit_power_law(x, [-1.685, -0.718, -0.682, -0.657, -0.659])
    assert flat["r2"] > 0.99 and not flat["holds"]


def _study(means: dict[str, float], spread: float = 0.01) -> xr.Dataset:
    """A fake study: per method a per-task log-likelihood around its mean, 3 seeds, 2 sizes."""
    rng = np.random.default_rng(0)
    tasks = rng.normal(0, 1, size=50)  # the tasks' own difficulty, shared by every method
    per_task = np.stack(
        [
            [[tasks + mu + rng.normal(0, spread, 50) for _ in range(3)] for _ in range(2)]
            for mu in means.values()
        ]
    )
    ds = xr.Dataset(
        {"loglik_per_task": (("method", "n_tasks", "seed", "task"), per_task)},
        coords={"method": list(means), "n_tasks": [64, 256], "seed": [0, 1, 2]},
    )
    ds["loglik"] = ds["loglik_per_task"].mean("task")
    return ds


def test_paired_differences_cancel_the_tasks_difficulty():
    ds = _study({"none": -1.0, "strict": -0.9})
    p = paired_over_seeds(ds, "strict", "none")
    assert np.allclose(p["mean"], 0.1, atol=0.01)
    assert (p["se"] < 0.01).all()  # unpaired, the tasks' spread (1 nat) would swamp it


def test_winners_name_the_best_and_say_when_the_margin_is_clear():
    w = winners(_study({"none": -1.0, "strict": -0.9, "fixed-inputs": -0.85}), "n_tasks")
    assert [r["best"] for r in w] == ["fixed-inputs"] * 2 and w[0]["runner_up"] == "strict"
    assert w[0]["clear"] and w[0]["margin"] == pytest.approx(0.05, abs=0.01)
    tied = winners(_study({"none": -1.0, "strict": -1.0}, spread=0.3), "n_tasks")
    assert not any(r["clear"] for r in tied)


def test_power_laws_per_method():
    ds = _study({"none": -1.0, "strict": -0.9})
    laws = power_laws(ds, "n_tasks")
    assert list(laws["method"].values) == ["none", "strict"] and not laws["holds"].any()  # 2 points


def test_symmetry_cloning_pays_its_teacher_and_clone_from_the_budget():
    free = Experiment(dataset="gibbs-1d", group="T", relaxation="augmentation")
    cloned = free.replace(relaxation="symmetry-cloning")
    assert phase_factor(free) == 1.0 and phase_factor(cloned) == pytest.approx(1.5)
