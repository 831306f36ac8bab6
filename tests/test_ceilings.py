"""Tests of the ceilings (oracle A, best Gaussian B, best strictly equivariant D) and the new worlds.

Each ceiling is checked against an independent numpy/scipy computation on small tasks: the oracle
against a direct GP with mean and position-dependent noise, B against moment matching by sampling,
D against a brute-force integral over shifts on a much finer grid, written here from the definition.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm

from workbench.ceilings import ceilings, equivariant_moments, gap_split, gaussian_score
from workbench.config import Experiment
from workbench.data.gp import Mountain1D, Noise1D
from workbench.data.registry import DATASETS, GP_DATASETS, make_dataset, parse_strength
from workbench.task import Task

NEW = ["mountain-1d", "noise-1d", "mountain-2d", "noise-2d"]

# --- independent numpy references -------------------------------------------------------------


def np_eq(a: np.ndarray, b: np.ndarray, ls: float, sd: float) -> np.ndarray:
    d2 = ((a[..., :, None, :] - b[..., None, :, :]) ** 2).sum(-1)
    return sd**2 * np.exp(-d2 / (2 * ls**2))


def np_gibbs(changepoint: float, long_on_left: bool):
    def ls(x: np.ndarray) -> np.ndarray:
        return np.where((x[..., 0] < changepoint) == long_on_left, 4.0, 0.1)

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        la, lb = ls(a)[..., :, None], ls(b)[..., None, :]
        denom = la**2 + lb**2
        d2 = (a[..., :, None, 0] - b[..., None, :, 0]) ** 2
        return np.sqrt(2 * la * lb / denom) * np.exp(-d2 / denom)

    return k


def np_world(sampler):
    """(kernels, mean function, noise sd function) of a sampler, from its documented formulas."""
    name = sampler.name.split(":")[0]
    if name == "gibbs-1d":
        kernels = [np_gibbs(c, left) for c in (-1.0, 0.0, 1.0) for left in (True, False)]
        return kernels, lambda x: np.zeros(x.shape[:-1]), lambda x: np.full(x.shape[:-1], 0.1)
    ls, sd = sampler.lengthscale, getattr(sampler, "signal_sd", 1.0)
    kernels = [lambda a, b: np_eq(a, b, ls, sd)]
    if name.startswith("mountain"):

        def mean(x: np.ndarray) -> np.ndarray:
            out = np.zeros(x.shape[:-1])
            for c, h in sampler.peaks:
                out += (
                    sampler.strength
                    * h
                    * np.exp(-((x - np.array(c)) ** 2).sum(-1) / (2 * sampler.peak_width**2))
                )
            return out

        return kernels, mean, lambda x: np.full(x.shape[:-1], sampler.noise_sd)
    if name.startswith("noise"):
        lo, hi, p, w = sampler.noise_lo, sampler.noise_hi, sampler.period, sampler.switch_width

        def band(x: np.ndarray) -> np.ndarray:
            return np.tanh(p / (2 * np.pi) * np.sin(2 * np.pi * (x - sampler.switch_at) / p) / w)

        def noise(x: np.ndarray) -> np.ndarray:
            u = band(x[..., 0]) * (band(x[..., 1]) if sampler.checkerboard else 1.0)
            return np.sqrt(lo * hi) * np.exp(sampler.strength * 0.5 * np.log(hi / lo) * u)

        return kernels, lambda x: np.zeros(x.shape[:-1]), noise
    return kernels, lambda x: np.zeros(x.shape[:-1]), lambda x: np.full(x.shape[:-1], sampler.noise_sd)


def np_gp(kernel, mean, noise, xc, yc, xt):
    """Log marginal likelihood of the context and predictive means/variances at ``xt``."""
    prior = np.diag(kernel(xt, xt))
    if len(xc) == 0:
        return 0.0, mean(xt), prior + noise(xt) ** 2
    kcc = kernel(xc, xc) + np.diag(noise(xc) ** 2)
    log_ml = multivariate_normal(mean(xc), kcc).logpdf(yc)
    kct = kernel(xc, xt)
    sol = np.linalg.solve(kcc, kct)
    return log_ml, mean(xt) + sol.T @ (yc - mean(xc)), prior - (kct * sol).sum(0) + noise(xt) ** 2


def one(task: Task, i: int):
    mask = task.mask_c[i].numpy()
    xc = task.xc[i].double().numpy()[mask]
    yc = task.yc[i, :, 0].double().numpy()[mask]
    return xc, yc, task.xt[i].double().numpy(), task.yt[i, :, 0].double().numpy()


def np_gp_batch(kernel, mean, noise, xcs, yc, xts):
    """``np_gp`` for a stack of shifted inputs ``xcs [S, n, d]``, ``xts [S, m, d]`` (batched numpy)."""
    prior = np.diagonal(kernel(xts, xts), axis1=-2, axis2=-1)
    if xcs.shape[1] == 0:
        return np.zeros(len(xcs)), mean(xts), prior + noise(xts) ** 2
    kcc = kernel(xcs, xcs) + noise(xcs)[..., None] ** 2 * np.eye(xcs.shape[1])
    r = yc - mean(xcs)  # [S, n]
    _, logdet = np.linalg.slogdet(kcc)
    quad = (r * np.linalg.solve(kcc, r[..., None])[..., 0]).sum(-1)
    log_ml = -0.5 * quad - 0.5 * logdet - 0.5 * xcs.shape[1] * np.log(2 * np.pi)
    kct = kernel(xcs, xts)
    sol = np.linalg.solve(kcc, kct)  # [S, n, m]
    m = mean(xts) + (sol * r[..., None]).sum(-2)
    return log_ml, m, prior - (kct * sol).sum(-2) + noise(xts) ** 2


def reference_equivariant(
    sampler, task: Task, i: int, cells: int = 400, all_targets: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """D's moments per target by brute force: a fine midpoint grid over each target's own feasible
    shifts (every axis shifted, whether or not the process depends on it). ``all_targets`` (D'):
    the shifts feasible for every target of the task at once."""
    kernels, mean, noise = np_world(sampler)
    xc, yc, xt, _ = one(task, i)
    d = xt.shape[1]
    out_m, out_v = [], []
    for t in range(len(xt)):
        axes = []
        for a in range(d):
            (c_lo, c_hi), (t_lo, t_hi) = sampler.context_box[a], sampler.box[a]
            lo, hi = xt[t, a] - t_hi, xt[t, a] - t_lo
            if all_targets:
                lo, hi = xt[:, a].max() - t_hi, xt[:, a].min() - t_lo
            if len(xc):
                lo, hi = max(lo, xc[:, a].max() - c_hi), min(hi, xc[:, a].min() - c_lo)
            n = cells if d == 1 else 100
            axes.append(lo + (hi - lo) * (np.arange(n) + 0.5) / n)
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
        parts = [
            np_gp_batch(k, mean, noise, xc[None] - grid[:, None], yc, xt[None, t : t + 1] - grid[:, None])
            for k in kernels
        ]
        logs = np.concatenate([p[0] for p in parts])
        means = np.concatenate([p[1][:, 0] for p in parts])
        variances = np.concatenate([p[2][:, 0] for p in parts])
        w = np.exp(logs - logsumexp(logs))
        m = (w * means).sum()
        out_m.append(m)
        out_v.append((w * (variances + means**2)).sum() - m**2)
    return np.array(out_m), np.array(out_v)


def small_task(name: str, n: int, nc: int, nt: int, seed: int) -> tuple[object, Task]:
    sampler = make_dataset(name, nc_max=nc, nt=nt)
    return sampler, sampler.test_set(n, batch_size=n, seed=seed)[0]


# --- the oracle (A) ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*NEW, "mountain-1d:0.5", "noise-1d:0"])
def test_oracle_matches_scipy(name: str) -> None:
    sampler, task = small_task(name, 4, 6, 5, seed=1)
    kernels, mean, noise = np_world(sampler)
    got = sampler.oracle_loglik(task).numpy()
    want = []
    for i in range(4):
        xc, yc, xt, yt = one(task, i)
        _, m, v = np_gp(kernels[0], mean, noise, xc, yc, xt)
        want.append(norm(m, np.sqrt(v)).logpdf(yt).mean())
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_new_worlds_sample_their_own_process() -> None:
    """The data follow the documented mean and noise: residuals from the oracle mean are ~ N(0, var)."""
    for name in ("mountain-1d", "noise-1d"):
        sampler = make_dataset(name)
        task = sampler.test_set(64, batch_size=64, seed=5)[0]
        mean, std = sampler.oracle_moments(task)
        z = (task.yt[..., 0].double() - mean) / std
        assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05, name


# --- the best Gaussian predictor (B) ----------------------------------------------------------


def test_gaussian_ceiling_is_moment_matching_by_sampling() -> None:
    sampler = make_dataset("gibbs-1d", nc_max=4, nt=6)
    task = sampler.test_set(3, batch_size=3, seed=2)[0]
    log_w, mean, var = sampler.oracle_components(task)
    gen = torch.Generator().manual_seed(0)
    n = 400_000
    k = torch.multinomial(log_w.exp(), n, replacement=True, generator=gen)  # [b, n]
    mu = torch.gather(mean, 1, k[..., None].expand(-1, -1, 6))
    sd = torch.gather(var, 1, k[..., None].expand(-1, -1, 6)).sqrt()
    y = mu + sd * torch.randn(mu.shape, generator=gen, dtype=torch.float64)
    m, s = sampler.oracle_moments(task)
    torch.testing.assert_close(y.mean(1), m, atol=0.01, rtol=0)
    torch.testing.assert_close(y.var(1), s.square(), atol=0.02, rtol=0.02)
    c = ceilings(sampler, [task])
    want = gaussian_score(task.yt[..., 0].double(), y.mean(1), y.var(1)).numpy()
    np.testing.assert_allclose(c["gaussian_per_task"], want, atol=0.01)
    assert (c["gaussian_per_task"] <= c["oracle_per_task"] + 1e-9).mean() > 0.5


# --- the best strictly equivariant predictor (D) ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "atol"),
    [
        ("mountain-1d", 2e-3),
        ("noise-1d", 0.01),
        ("gibbs-1d", 0.01),
        ("mountain-2d", 0.01),
        ("noise-2d", 0.01),
    ],
)
def test_equivariant_ceiling_matches_brute_force(name: str, atol: float) -> None:
    """D per task (its Gaussian score of the targets) against a brute-force integral over shifts.

    1-D: at the default cells, and with fine cells (moments too). 2-D: with fine cells; a context
    that sees a mountain pins the shift to a few hundredths, which the default 1/4 cells resolve
    only on average (see ``test_default_cells_are_converged_on_average``).
    """
    n = 2 if name in ("mountain-1d", "noise-1d") else 1
    two_d = name.endswith("2d")
    sampler, task = small_task(name, n, 4, 2 if two_d else 3, seed=3)
    y = task.yt[..., 0].double()
    if two_d:
        m, v = equivariant_moments(sampler, task, spacing=1 / 32, max_cells=160)
    else:
        m, v = equivariant_moments(sampler, task)
        fm, fv = equivariant_moments(sampler, task, spacing=1 / 512, max_cells=4096)
    for i in range(n):
        want_m, want_v = reference_equivariant(sampler, task, i)
        got = float(gaussian_score(y[i : i + 1], m[i : i + 1], v[i : i + 1]))
        want = float(gaussian_score(y[i : i + 1], torch.tensor(want_m)[None], torch.tensor(want_v)[None]))
        assert abs(got - want) < atol, (i, got, want)
        if not two_d:
            # With fine cells the quadrature converges to the brute force, moments included.
            np.testing.assert_allclose(fm[i].numpy(), want_m, atol=3e-3 * np.sqrt(want_v).max())
            np.testing.assert_allclose(fv[i].numpy(), want_v, rtol=1e-2)


@pytest.mark.parametrize(
    ("name", "atol"), [("mountain-1d", 2e-3), ("noise-1d", 0.01), ("gibbs-1d", 0.01), ("mountain-2d", 0.01)]
)
def test_all_targets_ceiling_matches_brute_force(name: str, atol: float) -> None:
    """D' (shift posterior given the context and all target inputs) against the brute force; with
    many targets spread over the window it is far above D (the targets pin the position)."""
    two_d = name.endswith("2d")
    sampler, task = small_task(name, 2, 4, 3 if two_d else 5, seed=5)
    y = task.yt[..., 0].double()
    kw = dict(spacing=1 / 32, max_cells=160) if two_d else {}
    m, v = equivariant_moments(sampler, task, all_targets=True, **kw)
    for i in range(2):
        want_m, want_v = reference_equivariant(sampler, task, i, all_targets=True)
        got = float(gaussian_score(y[i : i + 1], m[i : i + 1], v[i : i + 1]))
        want = float(gaussian_score(y[i : i + 1], torch.tensor(want_m)[None], torch.tensor(want_v)[None]))
        assert abs(got - want) < atol, (i, got, want)
    if not two_d:
        fm, fv = equivariant_moments(sampler, task, spacing=1 / 512, max_cells=4096, all_targets=True)
        for i in range(2):
            want_m, want_v = reference_equivariant(sampler, task, i, all_targets=True)
            np.testing.assert_allclose(fm[i].numpy(), want_m, atol=3e-3 * np.sqrt(want_v).max())
            np.testing.assert_allclose(fv[i].numpy(), want_v, rtol=1e-2)


def test_all_targets_ceiling_is_above_d_on_mountains() -> None:
    """The target inputs fill the target window, so they tell the position: D' > D by far."""
    sampler = make_dataset("mountain-1d", nt=64)
    tasks = sampler.test_set(32, batch_size=16, seed=8)
    assert "equivariant_all_targets_loglik" not in ceilings(sampler, tasks)  # opt-in: it costs time
    c = ceilings(sampler, tasks, all_targets=True)
    assert c["equivariant_all_targets_per_task"].shape == (32,)
    assert c["gaussian_loglik"] + 1e-9 >= c["equivariant_all_targets_loglik"]
    assert c["equivariant_all_targets_loglik"] > c["equivariant_loglik"] + 0.1


@pytest.mark.parametrize("name", ["mountain-2d", "noise-2d", "gibbs-1d"])
def test_default_cells_are_converged_on_average(name: str) -> None:
    """D at the default cells against cells half as wide, on a few tasks: the mean moves < 0.01 nats."""
    sampler = make_dataset(name, nt=16)
    n = {"mountain-2d": 16, "noise-2d": 8}.get(name, 32)
    tasks = sampler.test_set(n, batch_size=16, seed=11)
    default = ceilings(sampler, tasks)
    finer = ceilings(sampler, tasks, spacing=default["spacing"] / 2)
    assert abs(default["equivariant_loglik"] - finer["equivariant_loglik"]) < 0.01


def test_equivariant_ceiling_uses_the_window_constraints() -> None:
    """Ignoring where the context sits in its window (any shift allowed) must be far worse."""
    sampler, task = small_task("mountain-1d", 16, 3, 32, seed=4)
    y = task.yt[..., 0].double()
    m, v = equivariant_moments(sampler, task)
    loose = Mountain1D(nc_max=3, nt=32, context_box=((-20.0, 20.0),), box=((-20.0, 20.0),))
    m2, v2 = equivariant_moments(loose, task)
    assert float(gaussian_score(y, m, v).mean()) > float(gaussian_score(y, m2, v2).mean()) + 0.1


def test_stationary_worlds_have_no_headroom() -> None:
    for name in ("gp-eq-1d", "gp-2d", "mountain-1d:0", "noise-1d:0", "mountain-2d:0", "noise-2d:0"):
        sampler = make_dataset(name, nt=16)
        c = ceilings(sampler, sampler.test_set(8, batch_size=8, seed=6))
        assert abs(c["symmetry_headroom"]) < 1e-6, name
        assert abs(c["oracle_loglik"] - c["gaussian_loglik"]) < 1e-9, name


@pytest.mark.parametrize("name", ["gibbs-1d", "gp-eq-1d", "gp-2d", "gp-2d-anisotropic", *NEW])
def test_ceilings_are_ordered(name: str) -> None:
    """A >= B >= D hold in expectation; on gibbs-1d B - D is only ~0.03, so fewer context points
    (more room for doubt about the position) and more tasks keep the sample's order that of the means."""
    n = 32 if name == "gibbs-1d" else 16
    sampler = make_dataset(name, nt=32, **({"nc_max": 16} if name == "gibbs-1d" else {}))
    c = ceilings(sampler, sampler.test_set(n, batch_size=16, seed=7))
    assert c["oracle_loglik"] >= c["gaussian_loglik"] - 1e-9 >= c["equivariant_loglik"] - 2e-9
    for key in ("oracle_per_task", "gaussian_per_task", "equivariant_per_task"):
        assert c[key].shape == (n,) and np.isfinite(c[key]).all()
    assert c["group"] == f"T({sampler.dim_x})" and "rotation" in c["not_computed"]


@pytest.mark.parametrize(
    ("name", "n"), [("mountain-1d", 128), ("noise-1d", 128), ("mountain-2d", 64), ("noise-2d", 64)]
)
def test_new_worlds_have_headroom(name: str, n: int) -> None:
    """At default strength (64 targets a task instead of the default 128/256: the same expectation)."""
    sampler = make_dataset(name, nt=64)
    c = ceilings(sampler, sampler.test_set(n, batch_size=16))
    assert c["symmetry_headroom"] >= 0.2, c["symmetry_headroom"]


def test_headroom_grows_with_strength() -> None:
    heads = []
    for s in (0.0, 0.5, 1.0):
        sampler = make_dataset(f"mountain-1d:{s}", nt=32)
        heads.append(ceilings(sampler, sampler.test_set(64, batch_size=16))["symmetry_headroom"])
    assert abs(heads[0]) < 1e-6 and heads[0] < heads[1] < heads[2]


def test_ceilings_are_cached() -> None:
    sampler = make_dataset("noise-1d")
    tasks = sampler.test_set(16, batch_size=16, seed=8)
    assert ceilings(sampler, tasks) is ceilings(sampler, sampler.test_set(16, batch_size=16, seed=8))
    assert ceilings(sampler, tasks) is not ceilings(sampler, sampler.test_set(16, batch_size=16, seed=9))


# --- the split of the gap ---------------------------------------------------------------------


@pytest.mark.parametrize("strict", [True, False])
def test_gap_split_adds_up(strict: bool) -> None:
    m = {"loglik": -0.71, "oracle_loglik": -0.2443, "gaussian_loglik": -0.2669, "equivariant_loglik": -0.2960}
    split = gap_split(m, strict=strict)
    assert math.isclose(sum(split.values()), m["oracle_loglik"] - m["loglik"], abs_tol=1e-15)
    assert math.isclose(split["gaussian_limit"], 0.0226, abs_tol=1e-12)
    assert math.isclose(split["symmetry_headroom"], 0.0291 if strict else 0.0, abs_tol=1e-12)


# --- names, validation and a run --------------------------------------------------------------


def test_strength_in_the_name() -> None:
    assert parse_strength("mountain-1d:0.5") == ("mountain-1d", 0.5)
    assert parse_strength("gibbs-1d") == ("gibbs-1d", None)
    assert parse_strength("terrain:alps") == ("terrain:alps", None)
    assert make_dataset("mountain-1d:0.5").strength == 0.5
    assert make_dataset("mountain-1d:0.5").name == "mountain-1d:0.5"
    assert make_dataset("noise-2d").name == "noise-2d" and make_dataset("noise-2d").strength == 1.0
    assert "noise-1d:2" in DATASETS and DATASETS["noise-1d:2"][0] == 1
    for name in NEW:
        assert name in GP_DATASETS and Experiment(dataset=f"{name}:0.25").dataset == f"{name}:0.25"
    for bad in ("mountain-1d:abc", "mountain-1d:-1", "noise-2d:nan", "noise-1d:"):
        with pytest.raises(ValueError, match=r"is not a finite number >= 0; write NAME:STRENGTH"):
            Experiment(dataset=bad)
    with pytest.raises(ValueError, match="strength"):
        Noise1D(strength=-0.5)


def test_new_worlds_are_deterministic() -> None:
    for name in NEW:
        sampler = make_dataset(name)
        a, b = sampler.test_set(4, batch_size=4, seed=3)[0], sampler.test_set(4, batch_size=4, seed=3)[0]
        assert torch.equal(a.yt, b.yt) and torch.equal(a.xc, b.xc)
        c = next(sampler.batches(4, seed=1))
        assert not torch.equal(a.yt, c.yt)


def test_run_reports_the_split() -> None:
    import workbench

    r = workbench.run(
        Experiment(dataset="mountain-1d", relaxation="strict", steps=3, test_tasks=16, device="cpu"),
        progress=False,
    )
    m = r.metrics
    for key in (
        "gaussian_loglik",
        "equivariant_loglik",
        "gaussian_limit",
        "symmetry_headroom",
        "learning_shortfall",
    ):
        assert key in m
    assert m["symmetry_headroom"] > 0
    total = m["gaussian_limit"] + m["symmetry_headroom"] + m["learning_shortfall"]
    assert math.isclose(total, m["oracle_gap"], abs_tol=1e-12)
    assert math.isclose(m["oracle_gap"], m["oracle_loglik"] - m["loglik"], abs_tol=1e-12)


def test_mean_se_and_paired_differences_use_the_sample_standard_error():
    from workbench.ceilings import per_task_difference
    from workbench.evaluate import mean_se

    assert mean_se([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0 / np.sqrt(3)))
    mean, se = mean_se([0.5])
    assert mean == 0.5 and np.isnan(se)  # one seed: no error bar
    a, b = np.array([1.0, 2.0, 4.0]), np.array([0.0, 1.0, 1.0])
    assert per_task_difference(a, b) == pytest.approx(mean_se(a - b))
