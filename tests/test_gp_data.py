"""Tests of the synthetic GP datasets: kernels, sampling and the exact oracle."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import islice

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm

from workbench.data.gp import (
    SAMPLERS,
    AnisotropicSampler2D,
    EQSampler1D,
    GibbsSampler,
    GPSampler,
    _cholesky,
    make_sampler,
)
from workbench.data.kernels import (
    GIBBS_KERNELS,
    anisotropic_kernel,
    anisotropic_lengthscale_matrix,
    eq_kernel,
    gibbs_kernel,
    gibbs_kernel_by_index,
    gibbs_kernel_from_lengthscales,
    gibbs_lengthscale,
    paciorek_kernel,
)
from workbench.task import Task

NAMES = ["gibbs-1d", "gp-eq-1d", "gp-2d", "gp-2d-anisotropic"]
#: The symmetry-breaking worlds (their oracles and ceilings: tests/test_ceilings.py).
WORLDS = ["mountain-1d", "noise-1d", "mountain-2d", "noise-2d"]
NpKernel = Callable[[np.ndarray, np.ndarray], np.ndarray]

# --- independent numpy references -------------------------------------------------------------


def np_eq(lengthscale: float) -> NpKernel:
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * lengthscale**2))

    return k


def np_gibbs(changepoint: float, long_on_left: bool) -> NpKernel:
    def ls(x: np.ndarray) -> np.ndarray:
        return np.where((x[:, 0] < changepoint) == long_on_left, 4.0, 0.1)

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        la, lb = ls(a)[:, None], ls(b)[None, :]
        denom = la**2 + lb**2
        return np.sqrt(2 * la * lb / denom) * np.exp(-((a[:, 0, None] - b[None, :, 0]) ** 2) / denom)

    return k


def np_anisotropic(theta: float = 0.0) -> NpKernel:
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    aniso = rot @ np.diag([1.5**2, 0.25**2]) @ rot.T

    def field(x: np.ndarray) -> np.ndarray:
        s = 1.0 / (1.0 + np.exp(-x[0] / 0.2))
        return (1 - s) * 0.25 * np.eye(2) + s * aniso

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.empty((len(a), len(b)))
        for i, xa in enumerate(a):
            for j, xb in enumerate(b):
                sa, sb = field(xa), field(xb)
                d = xa - xb
                pref = np.linalg.det(sa) ** 0.25 * np.linalg.det(sb) ** 0.25
                pref /= np.sqrt(np.linalg.det((sa + sb) / 2))
                out[i, j] = pref * np.exp(-d @ np.linalg.solve(sa + sb, d))
        return out

    return k


def np_kernels(name: str) -> list[NpKernel]:
    if name == "gibbs-1d":
        return [np_gibbs(c, left) for c in (-1.0, 0.0, 1.0) for left in (True, False)]
    if name == "gp-2d-anisotropic":
        return [np_anisotropic()]
    return [np_eq(0.5)]


def reference_oracle(kernels: list[NpKernel], noise_sd: float, task: Task, i: int) -> float:
    """Mean per-target log-likelihood of task ``i``: BMA over ``kernels`` with scipy densities."""
    mask = task.mask_c[i].numpy()
    xc = task.xc[i].double().numpy()[mask]
    yc = task.yc[i, :, 0].double().numpy()[mask]
    xt = task.xt[i].double().numpy()
    yt = task.yt[i, :, 0].double().numpy()
    log_ml, log_p = [], []
    for k in kernels:
        prior_var = np.diag(k(xt, xt))
        if len(xc) == 0:
            log_ml.append(0.0)
            mean, var = np.zeros(len(xt)), prior_var + noise_sd**2
        else:
            kcc = k(xc, xc) + noise_sd**2 * np.eye(len(xc))
            log_ml.append(multivariate_normal(np.zeros(len(xc)), kcc).logpdf(yc))
            kct = k(xc, xt)
            sol = np.linalg.solve(kcc, kct)
            mean = sol.T @ yc
            var = prior_var - (kct * sol).sum(0) + noise_sd**2
        log_p.append(norm(mean, np.sqrt(var)).logpdf(yt))
    log_w = np.array(log_ml) - logsumexp(log_ml)
    return float(np.mean(logsumexp(log_w[:, None] + np.array(log_p), axis=0)))


def small(name: str, **kwargs) -> GPSampler:
    return make_sampler(name, nc_max=6, nt=5, **kwargs)


# --- kernels ----------------------------------------------------------------------------------


def test_gibbs_kernel_order_is_documented() -> None:
    assert GIBBS_KERNELS == (
        (-1.0, True),
        (-1.0, False),
        (0.0, True),
        (0.0, False),
        (1.0, True),
        (1.0, False),
    )
    assert GibbsSampler().kernel_table == GIBBS_KERNELS
    assert GibbsSampler().n_kernels == 6


def test_kernels_match_numpy() -> None:
    g = torch.Generator().manual_seed(0)
    x1 = 8 * torch.rand(1, 7, 1, generator=g, dtype=torch.float64) - 4
    x2 = 8 * torch.rand(1, 5, 1, generator=g, dtype=torch.float64) - 4
    a, b = x1[0].numpy(), x2[0].numpy()
    np.testing.assert_allclose(eq_kernel(x1, x2, 0.7)[0].numpy(), np_eq(0.7)(a, b), atol=1e-12)
    for index, (c, left) in enumerate(GIBBS_KERNELS):
        got = gibbs_kernel_by_index(x1, x2, torch.tensor([index]))[0].numpy()
        np.testing.assert_allclose(got, np_gibbs(c, left)(a, b), atol=1e-12)
    # The fast step-field kernel agrees with the general Gibbs formula.
    c, left = torch.tensor([0.3, -0.5]).double(), torch.tensor([True, False])
    z = 8 * torch.rand(2, 9, 1, generator=g, dtype=torch.float64) - 4
    lz = gibbs_lengthscale(z, c, left)
    assert set(lz.unique().tolist()) == {0.1, 4.0}
    torch.testing.assert_close(
        gibbs_kernel(z, z, c, left), gibbs_kernel_from_lengthscales(z, z, lz, lz), rtol=0, atol=1e-12
    )
    # The oracle's all-kernels-at-once path agrees with the per-task path.
    gibbs = GibbsSampler()
    torch.testing.assert_close(
        gibbs.kernel_all(z, x1[:, :4].expand(2, 4, 1)),
        GPSampler.kernel_all(gibbs, z, x1[:, :4].expand(2, 4, 1)),
        rtol=0,
        atol=1e-14,
    )
    y1 = 6 * torch.rand(1, 7, 2, generator=g, dtype=torch.float64) - 3
    y2 = 6 * torch.rand(1, 5, 2, generator=g, dtype=torch.float64) - 3
    for theta in (0.0, 0.6):
        got = anisotropic_kernel(y1, y2, theta=theta)[0].numpy()
        general = paciorek_kernel(
            y1,
            y2,
            anisotropic_lengthscale_matrix(y1, theta=theta),
            anisotropic_lengthscale_matrix(y2, theta=theta),
        )
        np.testing.assert_allclose(general[0].numpy(), got, atol=1e-12)
        np.testing.assert_allclose(got, np_anisotropic(theta)(y1[0].numpy(), y2[0].numpy()), atol=1e-12)


def test_anisotropic_kernel_reduces_to_eq_and_is_anisotropic_on_the_right() -> None:
    x = 6 * torch.rand(2, 20, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) - 3
    iso = anisotropic_kernel(x, x, iso_lengthscale=0.5, aniso_lengthscales=(0.5, 0.5))
    torch.testing.assert_close(iso, eq_kernel(x, x, 0.5), rtol=0, atol=1e-12)
    pts = torch.tensor([[[2.0, 0.0], [2.5, 0.0], [2.0, 0.5], [-2.0, 0.0], [-1.5, 0.0], [-2.0, 0.5]]]).double()
    k = anisotropic_kernel(pts, pts)[0]
    assert k[0, 1] > 0.9 and k[0, 2] < 0.15  # long along x_1 (exp(-1/36)), short across it (exp(-2))
    assert abs(k[3, 4] - k[3, 5]) < 1e-3  # isotropic on the left


@pytest.mark.parametrize("theta", [0.0, 0.6])
def test_anisotropic_kernel_is_psd(theta: float) -> None:
    x = 6 * torch.rand(3, 300, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64) - 3
    x[0, :, 0] = 0.4 * x[0, :, 0]  # crowd points around the switch, where PSD is least obvious
    k = anisotropic_kernel(x, x, theta=theta)
    torch.testing.assert_close(k, k.transpose(1, 2))
    assert torch.linalg.eigvalsh(k).min() > -1e-8


def test_gibbs_kernels_are_psd() -> None:
    x = 8 * torch.rand(6, 250, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64) - 4
    k = gibbs_kernel_by_index(x, x, torch.arange(6))
    torch.testing.assert_close(k.diagonal(dim1=1, dim2=2), torch.ones(6, 250, dtype=torch.float64))
    assert torch.linalg.eigvalsh(k).min() > -1e-8


def test_cholesky_raises_jitter_only_where_needed() -> None:
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64))
    bad = q @ torch.diag(torch.tensor([1.0, 1.0, 0.5, 0.1, -1e-7]).double()) @ q.T
    good = torch.eye(5, dtype=torch.float64)
    chol = _cholesky(torch.stack([good, bad]), 1e-8)
    torch.testing.assert_close(chol[0], torch.eye(5, dtype=torch.float64) * math.sqrt(1 + 1e-8))
    torch.testing.assert_close(chol[1] @ chol[1].T, bad, rtol=0, atol=1e-5)


# --- sampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_sample_shapes_masks_and_ranges(name: str) -> None:
    sampler = make_sampler(name)
    task = sampler.sample(16, torch.Generator().manual_seed(0))
    d, nc, nt = sampler.dim_x, sampler.nc_max, sampler.nt
    assert (d, nc, nt) == ({"gibbs-1d": 1, "gp-eq-1d": 1}.get(name, 2), 64 if d == 1 else 100, 128 * d)
    assert task.xc.shape == (16, nc, d) and task.yc.shape == (16, nc, 1)
    assert task.xt.shape == (16, nt, d) and task.yt.shape == (16, nt, 1)
    assert all(t.dtype == torch.float32 for t in (task.xc, task.yc, task.xt, task.yt))
    assert task.mask_c.dtype == torch.bool
    counts = task.n_context
    assert counts.min() >= 1 and counts.max() <= nc and len(set(counts.tolist())) > 1
    # Real points come first; padding holds real draws, so there are no NaNs anywhere.
    torch.testing.assert_close(task.mask_c, torch.arange(nc)[None] < counts[:, None])
    assert all(torch.isfinite(t).all() for t in (task.xc, task.yc, task.xt, task.yt))
    for i, (lo, hi) in enumerate(sampler.context_box):
        assert task.xc[..., i].min() >= lo and task.xc[..., i].max() <= hi
    for i, (lo, hi) in enumerate(sampler.box):
        assert task.xt[..., i].min() >= lo and task.xt[..., i].max() <= hi
    assert task.xc[..., 0].abs().max() <= 2.0 and task.xt[..., 0].abs().max() > 2.0
    kernel = task.info["kernel"]
    assert kernel.dtype == torch.long and kernel.shape == (16,)
    assert kernel.min() >= 0 and kernel.max() < sampler.n_kernels
    if name == "gibbs-1d":
        assert len(set(kernel.tolist())) > 1
        assert sampler.box == ((-4.0, 4.0),) and sampler.noise_sd == 0.1


@pytest.mark.parametrize("name", WORLDS)
def test_worlds_sample_inside_their_windows(name: str) -> None:
    sampler = make_sampler(name)
    task = sampler.sample(32, torch.Generator().manual_seed(0))
    assert task.xc.shape == (32, sampler.nc_max, sampler.dim_x) and task.yt.shape == (32, sampler.nt, 1)
    assert all(torch.isfinite(t).all() for t in (task.xc, task.yc, task.xt, task.yt))
    for i, (lo, hi) in enumerate(sampler.context_box):
        assert task.xc[..., i].min() >= lo and task.xc[..., i].max() <= hi
    for i, (lo, hi) in enumerate(sampler.box):
        assert task.xt[..., i].min() >= lo and task.xt[..., i].max() <= hi
    assert task.n_context.min() >= 1 and len(set(task.n_context.tolist())) > 1


def test_worlds_break_the_symmetry_where_documented() -> None:
    """mountain: the mean is the mountain range (neighbouring peaks overlap a little), 0 inside the
    context window; noise: calm and noisy bands."""
    mountain = make_sampler("mountain-1d")
    x = torch.tensor([[[2.6], [3.4], [-2.6], [-3.4], [0.0]]], dtype=torch.float64)
    torch.testing.assert_close(
        mountain.mean(x)[0, :4], torch.tensor([3.0, -3.0, -3.0, 3.0]).double(), atol=0.1, rtol=0
    )
    assert abs(float(mountain.mean(x)[0, 4])) < 1e-6
    assert make_sampler("mountain-1d", strength=0.0).mean(x) is None
    noise = make_sampler("noise-1d")
    sd = noise.noise_var(torch.tensor([[[-1.5], [-0.5], [0.5], [1.5]]]).double()).sqrt()[0]
    torch.testing.assert_close(sd, torch.tensor([0.6, 0.02, 0.6, 0.02]).double(), rtol=1e-3, atol=0)
    flat = make_sampler("noise-1d", strength=0.0).noise_var(torch.tensor([[[-1.5], [0.5]]]).double()).sqrt()
    torch.testing.assert_close(flat, torch.full((1, 2), math.sqrt(0.02 * 0.6)).double())
    board = make_sampler("noise-2d")
    sd2 = board.noise_var(torch.tensor([[[0.5, 0.5], [0.5, -0.5]]]).double()).sqrt()[0]
    torch.testing.assert_close(sd2, torch.tensor([0.6, 0.02]).double(), rtol=0.02, atol=0)


@pytest.mark.parametrize("name", ["gibbs-1d", "gp-2d"])
def test_batches_are_reproducible(name: str) -> None:
    sampler = make_sampler(name, nc_max=10, nt=12)
    first = list(islice(sampler.batches(4, seed=7), 3))
    again = list(islice(sampler.batches(4, seed=7), 3))
    other = next(sampler.batches(4, seed=8))
    for a, b in zip(first, again, strict=True):
        for key in ("xc", "yc", "xt", "yt", "mask_c"):
            assert torch.equal(getattr(a, key), getattr(b, key))
        assert torch.equal(a.info["kernel"], b.info["kernel"])
    assert not torch.equal(first[0].yt, first[1].yt)
    assert not torch.equal(first[0].xt, other.xt) and not torch.equal(first[0].yt, other.yt)


@pytest.mark.parametrize("name", ["gibbs-1d", "mountain-1d", "noise-1d", "gp-2d"])
def test_shared_input_batches_draw_each_task_from_its_own_process(name: str) -> None:
    """Training batches share input locations; whitening each task's values by the covariance of
    its own kernel (plus noise, minus the prior mean) must leave independent N(0, 1) draws, and a
    wrong kernel must not."""
    sampler = make_sampler(name)
    batch = next(sampler.batches(16, seed=3))
    assert torch.equal(batch.xt[0], batch.xt[-1])
    both = batch.mask_c[0] & batch.mask_c[-1]  # padding is zeroed per task
    assert both.any() and torch.equal(batch.xc[0][both], batch.xc[-1][both])
    assert len(set(batch.n_context.tolist())) > 1

    def whitened(index: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(batch.batch_size):  # each task's real points: its context, then its targets
            real = batch.mask_c[i]
            x = torch.cat([batch.xc[i][real], batch.xt[i]])[None].double()
            y = torch.cat([batch.yc[i][real], batch.yt[i]])[None, :, 0].double()
            cov = sampler.kernel(x, x, index[i : i + 1])
            noise = sampler.noise_var(x)
            cov.diagonal(dim1=-2, dim2=-1).add_(sampler.noise_sd**2 if noise is None else noise)
            mean = sampler.mean(x)
            chol = _cholesky(cov, 1e-8)
            resid = (y - (0.0 if mean is None else mean))[..., None]
            out.append(torch.linalg.solve_triangular(chol, resid, upper=False).flatten())
        return torch.cat(out)

    z = whitened(batch.info["kernel"])
    n = z.numel()  # 16 tasks x ~150-400 values: mean and variance within 4 s.e. of 0 and 1
    assert abs(float(z.mean())) < 4 / math.sqrt(n)
    assert abs(float(z.var()) - 1) < 4 * math.sqrt(2 / n)
    if sampler.n_kernels > 1:
        wrong = (batch.info["kernel"] + 1) % sampler.n_kernels
        assert abs(float(whitened(wrong).var()) - 1) > 0.5


def test_test_set_is_fixed() -> None:
    sampler = small("gibbs-1d")
    a, b = sampler.test_set(40, batch_size=16), sampler.test_set(40, batch_size=16)
    assert [t.batch_size for t in a] == [16, 16, 8]
    assert all(torch.equal(x.yt, y.yt) and torch.equal(x.xc, y.xc) for x, y in zip(a, b, strict=True))
    assert not torch.equal(sampler.test_set(16, seed=1)[0].yt, a[0].yt)


def test_registry() -> None:
    assert set(SAMPLERS) == set(NAMES + WORLDS)
    assert all(SAMPLERS[name].name == name for name in NAMES + WORLDS)
    sampler = make_sampler("gp-2d", nt=10, noise_sd=0.2)
    assert sampler.nt == 10 and sampler.noise_sd == 0.2 and sampler.box == ((-3.0, 3.0), (-3.0, 3.0))
    with pytest.raises(ValueError, match="unknown dataset 'nope'; choose one of"):
        make_sampler("nope")


# --- the oracle -------------------------------------------------------------------------------


def with_mask(task: Task, mask: torch.Tensor) -> Task:
    return Task(task.xc, task.yc, task.xt, task.yt, mask, task.info)


@pytest.mark.parametrize("name", NAMES)
def test_oracle_matches_scipy(name: str) -> None:
    sampler = small(name)
    task = sampler.sample(6, torch.Generator().manual_seed(4))
    # Padding anywhere (not only at the end), one task with every context point masked ...
    mask = torch.rand(6, 6, generator=torch.Generator().manual_seed(5)) < 0.6
    mask[0] = False
    mask[1] = True
    # NaNs in padding are allowed by Task and must not leak into the oracle.
    xc, yc = task.xc.clone(), task.yc.clone()
    xc[~mask], yc[~mask] = float("nan"), float("nan")
    tasks = [task, with_mask(task, mask), Task(xc, yc, task.xt, task.yt, mask)]
    # ... and a batch with an empty context set (nc = 0).
    tasks.append(Task(task.xc[:, :0], task.yc[:, :0], task.xt, task.yt))
    kernels = np_kernels(name)
    for t in tasks:
        got = sampler.oracle_loglik(t)
        assert got.shape == (6,) and got.dtype == torch.float64
        want = [reference_oracle(kernels, sampler.noise_sd, t, i) for i in range(6)]
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-6)


def test_oracle_without_context_is_the_prior_predictive() -> None:
    sampler = GibbsSampler(nc_max=5, nt=20)
    task = sampler.sample(4, torch.Generator().manual_seed(6))
    empty = with_mask(task, torch.zeros_like(task.mask_c))
    prior = torch.distributions.Normal(0.0, math.sqrt(1 + 0.1**2)).log_prob(task.yt[..., 0].double()).mean(-1)
    torch.testing.assert_close(sampler.oracle_loglik(empty), prior)
    torch.testing.assert_close(sampler.kernel_log_posterior(empty).exp(), torch.full((4, 6), 1 / 6).double())


def test_gibbs_oracle_conditions_on_the_context() -> None:
    sampler = GibbsSampler(nc_min=64)
    task = sampler.sample(32, torch.Generator().manual_seed(7))
    oracle = sampler.oracle_loglik(task)
    prior = torch.distributions.Normal(0.0, math.sqrt(1 + 0.1**2)).log_prob(task.yt[..., 0].double()).mean(-1)
    assert oracle.mean() > prior.mean() + 0.5
    # With 64 context points the kernel posterior mostly picks the kernel that drew the task.
    hits = sampler.kernel_log_posterior(task).argmax(-1) == task.info["kernel"]
    assert hits.float().mean() > 0.75


def test_oracle_prefers_the_true_model() -> None:
    data = EQSampler1D(nc_max=20, nt=30)
    tasks = data.test_set(64, batch_size=32)
    right = torch.cat([data.oracle_loglik(t) for t in tasks]).mean()
    wrong = EQSampler1D(lengthscale=0.15, nc_max=20, nt=30)
    assert right > torch.cat([wrong.oracle_loglik(t) for t in tasks]).mean() + 0.05
    aniso = AnisotropicSampler2D(nc_max=40, nt=40)
    tasks = aniso.test_set(32, batch_size=16)
    right = torch.cat([aniso.oracle_loglik(t) for t in tasks]).mean()
    iso = make_sampler("gp-2d", nc_max=40, nt=40)
    assert right > torch.cat([iso.oracle_loglik(t) for t in tasks]).mean()


def test_oracle_moments_are_the_mixture_moments() -> None:
    """Mean and std of the exact predictive: one kernel gives its own; a mixture the averaged moments."""
    sampler = make_sampler("gibbs-1d")
    task = sampler.test_set(4, batch_size=4, seed=3)[0]
    log_w, mean, var = sampler.oracle_components(task)
    m, s = sampler.oracle_moments(task)
    w = log_w.exp().numpy()[..., None]
    mu, v = mean.numpy(), var.numpy()
    want_m = (w * mu).sum(1)
    want_v = (w * (v + mu**2)).sum(1) - want_m**2
    np.testing.assert_allclose(m.numpy(), want_m, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s.numpy() ** 2, want_v, rtol=1e-8, atol=1e-12)
    eq = make_sampler("gp-eq-1d")
    t = eq.test_set(2, batch_size=2, seed=1)[0]
    _, mean1, var1 = eq.oracle_components(t)
    m1, s1 = eq.oracle_moments(t)
    torch.testing.assert_close(m1, mean1[:, 0])
    torch.testing.assert_close(s1, var1[:, 0].sqrt())
