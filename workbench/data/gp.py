"""Synthetic Gaussian-process datasets with exact ground-truth predictive log-likelihoods.

Every dataset is a ``GPSampler``: it draws batches of ``Task`` (padded context sets, fixed-size
target sets) from a GP prior, and ``oracle_loglik`` gives the best log-likelihood any model can
reach on a task, the yardstick for the neural processes. A dataset may hold several candidate
kernels (the Gibbs mixture holds six, drawn uniformly per task); its oracle is then the Bayesian
model average over them. All GP algebra is float64; the tasks are float32.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from workbench.data.kernels import (
    GIBBS_KERNELS,
    anisotropic_kernel,
    eq_kernel,
    gibbs_kernel_all,
    gibbs_kernel_by_index,
)
from workbench.task import Task

Box = tuple[tuple[float, float], ...]

__all__ = [
    "GIBBS_KERNELS",
    "SAMPLERS",
    "AnisotropicSampler2D",
    "EQSampler",
    "EQSampler1D",
    "EQSampler2D",
    "GPSampler",
    "GibbsSampler",
    "make_sampler",
]


def _as_box(box: Box) -> Box:
    return tuple((float(lo), float(hi)) for lo, hi in box)


def _uniform(box: Box, shape: tuple[int, int], generator: torch.Generator) -> Tensor:
    """Points drawn uniformly in ``box``, ``[shape[0], shape[1], len(box)]`` float32."""
    lo = torch.tensor([lo for lo, _ in box])
    hi = torch.tensor([hi for _, hi in box])
    u = torch.rand(*shape, len(box), generator=generator)
    # Clamp because lo + (hi - lo) * u can round up to hi in float32.
    return torch.minimum(lo + (hi - lo) * u, hi)


def _cholesky(k: Tensor, jitter: float) -> Tensor:
    """Lower Cholesky factor of ``k + jitter I`` ``[batch, n, n]``, raising the jitter only where needed.

    ``k`` is overwritten (its diagonal gets the jitter).
    """
    k.diagonal(dim1=-2, dim2=-1).add_(jitter)
    chol, info = torch.linalg.cholesky_ex(k)
    # Long lengthscales make the Gram matrix numerically rank deficient; 1e-8 almost always
    # suffices in float64, and the rare failures get a little more jitter instead of an error.
    while bool((info > 0).any()):
        if jitter >= 1e-3:
            raise RuntimeError(f"Cholesky failed even with jitter {jitter:.0e}; the kernel is not PSD")
        bad = info > 0
        k_bad = k[bad]
        k_bad.diagonal(dim1=-2, dim2=-1).add_(9.0 * jitter)
        jitter *= 10.0
        chol_bad, info_bad = torch.linalg.cholesky_ex(k_bad)
        k[bad] = k_bad
        chol[bad] = chol_bad
        info = info.clone()
        info[bad] = info_bad
    return chol


class GPSampler:
    """Base class of the GP datasets: sampling, seeded streams, test sets and the exact oracle.

    Subclasses set ``name`` and implement ``kernel``; mixtures also set ``n_kernels``. Inputs:
    context ``x_c`` uniform in ``context_box``, targets ``x_t`` uniform in ``box``;
    ``N_c ~ U{nc_min..nc_max}`` per task (padded to ``nc_max``), ``N_t = nt``.
    """

    name: str = "gp"
    n_kernels: int = 1

    def __init__(
        self,
        *,
        box: Box,
        context_box: Box,
        noise_sd: float,
        nc_max: int,
        nt: int,
        nc_min: int = 1,
        jitter: float = 1e-8,
    ) -> None:
        self.box = _as_box(box)
        self.context_box = _as_box(context_box)
        self.dim_x = len(self.box)
        if len(self.context_box) != self.dim_x:
            raise ValueError(f"context_box {self.context_box} and box {self.box} differ in dimension")
        if noise_sd <= 0:
            raise ValueError(f"noise_sd must be positive, got {noise_sd}")
        if not 0 <= nc_min <= nc_max:
            raise ValueError(f"need 0 <= nc_min <= nc_max, got nc_min={nc_min}, nc_max={nc_max}")
        if nt < 1:
            raise ValueError(f"nt must be at least 1, got {nt}")
        self.noise_sd = float(noise_sd)
        self.nc_min = int(nc_min)
        self.nc_max = int(nc_max)
        self.nt = int(nt)
        self.jitter = float(jitter)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, box={self.box}, context_box={self.context_box}, "
            f"noise_sd={self.noise_sd}, nc={self.nc_min}..{self.nc_max}, nt={self.nt})"
        )

    # --- the covariance -------------------------------------------------------------------------

    def kernel(self, x1: Tensor, x2: Tensor, index: Tensor) -> Tensor:
        """Noiseless prior covariance ``[batch, n, m]`` under kernel ``index [batch]`` of each task."""
        raise NotImplementedError

    def kernel_all(self, x1: Tensor, x2: Tensor) -> Tensor:
        """Covariance of each task under each of the K kernels, ``[K * batch, n, m]``, row k * batch + i."""
        k_count, b = self.n_kernels, x1.shape[0]
        index = torch.arange(k_count, device=x1.device).repeat_interleave(b)
        return self.kernel(x1.repeat(k_count, 1, 1), x2.repeat(k_count, 1, 1), index)

    def kernel_diag(self, x: Tensor, index: Tensor) -> Tensor:
        """Prior variances ``[batch, n]`` at ``x [batch, n, dim]``."""
        b, n, d = x.shape
        flat = x.reshape(b * n, 1, d)
        return self.kernel(flat, flat, index.repeat_interleave(n)).reshape(b, n)

    # --- sampling -------------------------------------------------------------------------------

    def sample(self, batch_size: int, generator: torch.Generator) -> Task:
        """Draw tasks (float32): ``xc [batch, nc_max, dim]`` masked, ``xt [batch, nt, dim]``."""
        b = batch_size
        nc = torch.randint(self.nc_min, self.nc_max + 1, (b,), generator=generator)
        if self.n_kernels > 1:
            index = torch.randint(0, self.n_kernels, (b,), generator=generator)
        else:
            index = torch.zeros(b, dtype=torch.long)
        xc = _uniform(self.context_box, (b, self.nc_max), generator)
        xt = _uniform(self.box, (b, self.nt), generator)
        # The kernel sees the float32 inputs the task stores, so data and oracle agree exactly.
        x = torch.cat([xc, xt], 1).double()
        chol = _cholesky(self.kernel(x, x, index), self.jitter)
        n = x.shape[1]
        f = chol @ torch.randn(b, n, 1, generator=generator, dtype=torch.float64)
        y = (f + self.noise_sd * torch.randn(b, n, 1, generator=generator, dtype=torch.float64)).float()
        mask_c = torch.arange(self.nc_max)[None, :] < nc[:, None]
        return Task(xc, y[:, : self.nc_max], xt, y[:, self.nc_max :], mask_c, {"kernel": index})

    def batches(self, batch_size: int, seed: int) -> Iterator[Task]:
        """Endless reproducible stream of batches: the same seed gives the same tasks."""
        generator = torch.Generator().manual_seed(seed)
        while True:
            yield self.sample(batch_size, generator)

    def test_set(self, n_tasks: int = 1024, batch_size: int = 16, seed: int = 10_000) -> list[Task]:
        """Fixed list of batches holding ``n_tasks`` tasks in all (the last batch may be smaller)."""
        generator = torch.Generator().manual_seed(seed)
        sizes = [batch_size] * (n_tasks // batch_size)
        if n_tasks % batch_size:
            sizes.append(n_tasks % batch_size)
        return [self.sample(size, generator) for size in sizes]

    # --- the oracle -----------------------------------------------------------------------------

    def oracle_components(self, task: Task) -> tuple[Tensor, Tensor, Tensor]:
        """Exact posterior per kernel: log weights ``[batch, K]``, means and variances ``[batch, K, nt]``.

        The log weights are the log posterior probabilities of the K candidate kernels given the
        context (uniform prior; uniform when no context point is real); means and variances are the
        noisy predictive marginals at the targets under each kernel. All float64. Padding (``mask_c``
        False, whatever its values, NaN included) is ignored exactly.
        """
        if task.dim_y != 1:
            raise ValueError(f"GP oracle needs dim_y = 1, got {task.dim_y}")
        b, nc, _ = task.xc.shape
        nt = task.xt.shape[1]
        k_count = self.n_kernels
        device = task.xc.device
        # All K candidate kernels in one batch: row k * b + i is task i under kernel k.
        index = torch.arange(k_count, device=device).repeat_interleave(b)
        # Zeroed padding inputs keep NaNs that Task allows there out of the kernel matrices.
        xc = torch.where(task.mask_c[..., None], task.xc, 0.0).double()
        xt = task.xt.double()
        noise_var = self.noise_sd**2
        prior_var = self.kernel_diag(xt.repeat(k_count, 1, 1), index)
        if nc == 0:
            log_ml = torch.zeros(k_count * b, dtype=torch.float64, device=device)
            mean = torch.zeros(k_count * b, nt, dtype=torch.float64, device=device)
            var_f = prior_var
        else:
            mask = task.mask_c.repeat(k_count, 1)
            yc = torch.where(mask, task.yc[..., 0].double().repeat(k_count, 1), 0.0)
            # Padded rows/columns become identity (and their y zero): they add nothing to the
            # quadratic form or the log-determinant and decouple from the real points. In place,
            # because fresh [batch, n, m] allocations cost page faults comparable to the maths.
            gram = self.kernel_all(xc, xc)
            gram.diagonal(dim1=-2, dim2=-1).add_(noise_var)
            gram.masked_fill_(~(mask[:, :, None] & mask[:, None, :]), 0.0)
            gram.diagonal(dim1=-2, dim2=-1).masked_fill_(~mask, 1.0)
            chol = torch.linalg.cholesky(gram)
            alpha = torch.linalg.solve_triangular(chol, yc[..., None], upper=False)
            n_real = mask.sum(-1).double()
            log_ml = (
                -0.5 * alpha.square().sum((-2, -1))
                - chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
                - 0.5 * n_real * math.log(2 * math.pi)
            )
            # K_tc transposed rather than K_ct: the column-major layout LAPACK wants, so the
            # triangular solve runs in place without copies.
            k_ct = self.kernel_all(xt, xc).mul_(mask[:, None, :]).mT
            v = torch.linalg.solve_triangular(chol, k_ct, upper=False, out=k_ct)
            mean = (alpha.transpose(-2, -1) @ v)[:, 0]
            # Not vector_norm: its strided reduction over dim -2 is ~8x slower here.
            var_f = (prior_var - v.square_().sum(-2)).clamp_min(0.0)
        log_w = torch.log_softmax(log_ml.reshape(k_count, b).T, dim=-1)
        mean = mean.reshape(k_count, b, nt).transpose(0, 1)
        var = (var_f + noise_var).reshape(k_count, b, nt).transpose(0, 1)
        return log_w, mean, var

    def kernel_log_posterior(self, task: Task) -> Tensor:
        """Log posterior probability of each candidate kernel given the context, ``[batch, K]``."""
        return self.oracle_components(task)[0]

    def oracle_moments(self, task: Task) -> tuple[Tensor, Tensor]:
        """Mean and standard deviation ``[batch, nt]`` of the exact predictive at the targets (float64).

        For a mixture (Gibbs) these are the Bayesian model average's moments: the best any Gaussian
        prediction can match, and what the widgets draw as the oracle's band.
        """
        log_w, mean, var = self.oracle_components(task)
        w = log_w.exp()[..., None]  # [batch, K, 1]
        m = (w * mean).sum(1)
        v = (w * (var + mean.square())).sum(1) - m.square()
        return m, v.clamp_min(0.0).sqrt()

    def oracle_loglik(self, task: Task) -> Tensor:
        """Exact ground-truth mean log-likelihood per target, ``[batch]`` float64.

        For each target, log p(y_t | context) under the true (Bayesian-model-averaged) predictive
        marginal including observation noise, averaged over the targets.
        """
        if task.yt is None:
            raise ValueError("oracle_loglik needs target outputs (task.yt is None)")
        log_w, mean, var = self.oracle_components(task)
        yt = task.yt[..., 0].double()[:, None, :]
        log_p = -0.5 * ((yt - mean).square() / var + torch.log(2 * math.pi * var))
        return torch.logsumexp(log_w[..., None] + log_p, dim=1).mean(-1)


class EQSampler(GPSampler):
    """GP with the stationary isotropic EQ kernel ``exp(-|x - x'|^2 / (2 l^2))`` in any dimension."""

    name = "gp-eq"

    def __init__(self, *, lengthscale: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lengthscale = float(lengthscale)

    def kernel(self, x1: Tensor, x2: Tensor, index: Tensor) -> Tensor:
        """EQ covariance ``[batch, n, m]`` (``index`` is ignored: one kernel)."""
        return eq_kernel(x1, x2, self.lengthscale)

    def kernel_diag(self, x: Tensor, index: Tensor) -> Tensor:
        """Unit prior variances ``[batch, n]``."""
        return torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)


class EQSampler1D(EQSampler):
    """gp-eq-1d: EQ lengthscale 0.5, noise 0.1, N_c ~ U{1..64} on [-2, 2], N_t = 128 on [-4, 4]."""

    name = "gp-eq-1d"

    def __init__(
        self,
        *,
        lengthscale: float = 0.5,
        noise_sd: float = 0.1,
        nc_min: int = 1,
        nc_max: int = 64,
        nt: int = 128,
        context_box: Box = ((-2.0, 2.0),),
        box: Box = ((-4.0, 4.0),),
        jitter: float = 1e-8,
    ) -> None:
        super().__init__(
            lengthscale=lengthscale,
            box=box,
            context_box=context_box,
            noise_sd=noise_sd,
            nc_min=nc_min,
            nc_max=nc_max,
            nt=nt,
            jitter=jitter,
        )


class EQSampler2D(EQSampler):
    """gp-2d: isotropic EQ lengthscale 0.5, noise 0.1, N_c ~ U{1..100} on [-2,2]^2, N_t = 256 on [-3,3]^2."""

    name = "gp-2d"

    def __init__(
        self,
        *,
        lengthscale: float = 0.5,
        noise_sd: float = 0.1,
        nc_min: int = 1,
        nc_max: int = 100,
        nt: int = 256,
        context_box: Box = ((-2.0, 2.0), (-2.0, 2.0)),
        box: Box = ((-3.0, 3.0), (-3.0, 3.0)),
        jitter: float = 1e-8,
    ) -> None:
        super().__init__(
            lengthscale=lengthscale,
            box=box,
            context_box=context_box,
            noise_sd=noise_sd,
            nc_min=nc_min,
            nc_max=nc_max,
            nt=nt,
            jitter=jitter,
        )


class GibbsSampler(GPSampler):
    """gibbs-1d, the paper's experiment: a uniform mixture of six 1-D Gibbs GPs.

    k(x, x') = sqrt(2 l(x) l(x') / (l(x)^2 + l(x')^2)) exp(-(x - x')^2 / (l(x)^2 + l(x')^2)), where
    l(x) is 4.0 on one side of a changepoint c and 0.1 on the other. Kernel ``index`` (stored per task
    in ``task.info["kernel"]``) = 2 * (position of c in ``changepoints``) + side, side 0 = long
    lengthscale left of c (x < c), side 1 = long lengthscale right (x >= c); with the default
    changepoints (-1, 0, 1) this is the order of ``GIBBS_KERNELS``. Noise 0.1, N_c ~ U{1..64} on
    [-2, 2], N_t = 128 on [-4, 4]. The oracle is the Bayesian model average over the six kernels.
    """

    name = "gibbs-1d"

    def __init__(
        self,
        *,
        changepoints: tuple[float, ...] = (-1.0, 0.0, 1.0),
        long_lengthscale: float = 4.0,
        short_lengthscale: float = 0.1,
        noise_sd: float = 0.1,
        nc_min: int = 1,
        nc_max: int = 64,
        nt: int = 128,
        context_box: Box = ((-2.0, 2.0),),
        box: Box = ((-4.0, 4.0),),
        jitter: float = 1e-8,
    ) -> None:
        super().__init__(
            box=box,
            context_box=context_box,
            noise_sd=noise_sd,
            nc_min=nc_min,
            nc_max=nc_max,
            nt=nt,
            jitter=jitter,
        )
        if self.dim_x != 1:
            raise ValueError(f"the Gibbs kernel is 1-D, got a box of dimension {self.dim_x}")
        self.long_lengthscale = float(long_lengthscale)
        self.short_lengthscale = float(short_lengthscale)
        self.kernel_table: tuple[tuple[float, bool], ...] = tuple(
            (float(c), left) for c in changepoints for left in (True, False)
        )
        self.n_kernels = len(self.kernel_table)

    def kernel(self, x1: Tensor, x2: Tensor, index: Tensor) -> Tensor:
        """Gibbs covariance ``[batch, n, m]`` of kernel ``index [batch]`` (see ``kernel_table``)."""
        return gibbs_kernel_by_index(
            x1, x2, index, self.long_lengthscale, self.short_lengthscale, self.kernel_table
        )

    def kernel_all(self, x1: Tensor, x2: Tensor) -> Tensor:
        """All six Gibbs covariances of every task, ``[K * batch, n, m]`` (row k * batch + i)."""
        kernels = gibbs_kernel_all(x1, x2, self.long_lengthscale, self.short_lengthscale, self.kernel_table)
        return kernels.reshape(-1, *kernels.shape[2:])

    def kernel_diag(self, x: Tensor, index: Tensor) -> Tensor:
        """Unit prior variances ``[batch, n]``: the Gibbs prefactor is 1 at x = x'."""
        return torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)


class AnisotropicSampler2D(GPSampler):
    """gp-2d-anisotropic: 2-D GP whose rotation symmetry holds only on the left half-plane.

    Paciorek kernel with a position-dependent lengthscale matrix S(x):
    k(x, x') = |S|^{1/4} |S'|^{1/4} |(S + S')/2|^{-1/2} exp(-(x - x')^T (S + S')^{-1} (x - x')),
    with S = S(x), S' = S(x'),
    S(x) = (1 - s(x)) 0.5^2 I + s(x) R(theta) diag(1.5^2, 0.25^2) R(theta)^T, s(x) = sigmoid(x_1 / 0.2),
    theta = 0. So the field is isotropic with lengthscale 0.5 for x_1 << 0 (locally the gp-2d prior)
    and strongly anisotropic for x_1 >> 0: correlations reach 1.5 along the x_1 axis but only 0.25
    across it. The exponent uses (S + S')^{-1}, the same convention as the 1-D Gibbs kernel (a constant
    S = l^2 I gives the EQ kernel with lengthscale l); it is Paciorek's kernel for the field 2 S(x),
    hence PSD. Noise 0.1, N_c ~ U{1..100} on [-2, 2]^2, N_t = 256 on [-3, 3]^2.
    """

    name = "gp-2d-anisotropic"

    def __init__(
        self,
        *,
        iso_lengthscale: float = 0.5,
        aniso_lengthscales: tuple[float, float] = (1.5, 0.25),
        theta: float = 0.0,
        switch_at: float = 0.0,
        switch_width: float = 0.2,
        noise_sd: float = 0.1,
        nc_min: int = 1,
        nc_max: int = 100,
        nt: int = 256,
        context_box: Box = ((-2.0, 2.0), (-2.0, 2.0)),
        box: Box = ((-3.0, 3.0), (-3.0, 3.0)),
        jitter: float = 1e-8,
    ) -> None:
        super().__init__(
            box=box,
            context_box=context_box,
            noise_sd=noise_sd,
            nc_min=nc_min,
            nc_max=nc_max,
            nt=nt,
            jitter=jitter,
        )
        if self.dim_x != 2:
            raise ValueError(f"the anisotropic kernel is 2-D, got a box of dimension {self.dim_x}")
        self.iso_lengthscale = float(iso_lengthscale)
        self.aniso_lengthscales = (float(aniso_lengthscales[0]), float(aniso_lengthscales[1]))
        self.theta = float(theta)
        self.switch_at = float(switch_at)
        self.switch_width = float(switch_width)

    def kernel(self, x1: Tensor, x2: Tensor, index: Tensor) -> Tensor:
        """Paciorek covariance ``[batch, n, m]`` (``index`` is ignored: one kernel)."""
        return anisotropic_kernel(
            x1,
            x2,
            self.iso_lengthscale,
            self.aniso_lengthscales,
            self.theta,
            self.switch_at,
            self.switch_width,
        )

    def kernel_diag(self, x: Tensor, index: Tensor) -> Tensor:
        """Unit prior variances ``[batch, n]``: the Paciorek prefactor is 1 at x = x'."""
        return torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)


SAMPLERS: dict[str, type[GPSampler]] = {
    cls.name: cls for cls in (GibbsSampler, EQSampler1D, EQSampler2D, AnisotropicSampler2D)
}


def make_sampler(name: str, **kwargs: Any) -> GPSampler:
    """The dataset called ``name`` (a key of ``SAMPLERS``), constructor defaults overridden by ``kwargs``."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name](**kwargs)
