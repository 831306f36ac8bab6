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

from workbench.data.base import Sampler
from workbench.data.kernels import (
    GIBBS_KERNELS,
    anisotropic_kernel,
    eq_kernel,
    gibbs_kernel_all,
    gibbs_kernel_by_index,
)
from workbench.task import Box, Task

__all__ = [
    "GIBBS_KERNELS",
    "SAMPLERS",
    "AnisotropicSampler2D",
    "EQSampler",
    "EQSampler1D",
    "EQSampler2D",
    "GPSampler",
    "GibbsSampler",
    "Mountain1D",
    "Mountain2D",
    "MountainSampler",
    "Noise1D",
    "Noise2D",
    "NoiseSampler",
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


class GPSampler(Sampler):
    """Base class of the GP datasets: sampling, seeded streams, test sets and the exact oracle.

    Subclasses set ``name`` and implement ``kernel``; mixtures also set ``n_kernels``. Inputs:
    context ``x_c`` uniform in ``context_box``, targets ``x_t`` uniform in ``box``;
    ``N_c ~ U{nc_min..nc_max}`` per task (padded to ``nc_max``), ``N_t = nt``.
    """

    name: str = "gp"
    has_oracle = True
    n_kernels: int = 1
    #: Input axes along which the process is NOT translation invariant; the equivariant ceiling
    #: (``workbench.ceilings``) integrates shifts along these only. ``None`` = every axis.
    shift_axes: tuple[int, ...] | None = None
    #: True when kernel and noise depend on differences only (the prior mean may still depend on
    #: position): the equivariant ceiling then needs one Cholesky per task, not one per shift.
    stationary_kernel: bool = False
    #: Quadrature cell width of the equivariant ceiling for this dataset; ``None`` = the default
    #: of ``workbench.ceilings.SPACING`` (sharp features in the process need finer cells).
    shift_spacing: float | None = None
    #: Training batches (:meth:`batches`) draw one set of input locations per batch (see there);
    #: False draws them per task, as test sets do.
    shared_inputs: bool = True

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

    def mean(self, x: Tensor) -> Tensor | None:
        """Prior mean ``[batch, n]`` at ``x [batch, n, dim]`` (float64); ``None`` means zero."""
        return None

    def noise_var(self, x: Tensor) -> Tensor | None:
        """Observation noise variance ``[batch, n]`` at ``x``; ``None`` means the constant ``noise_sd**2``."""
        return None

    def shift_breakpoints(self, xc: Tensor, mask_c: Tensor, xt: Tensor, axis: int) -> Tensor | None:
        """Shifts ``s`` along ``axis`` ``[batch, P]`` (NaN = none) at which the context's marginal
        likelihood or a target's predictive under the process moved by ``s`` jumps or switches;
        ``None`` when everything is smooth in ``s``. ``xc [batch, nc, dim]``, ``xt [batch, nt, dim]``.

        The equivariant ceiling cuts its quadrature cells there, so a piecewise-constant
        integrand is integrated exactly rather than to first order in the cell width.
        """
        return None

    # --- sampling -------------------------------------------------------------------------------

    def _sizes_and_kernels(self, b: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Context sizes ``N_c`` and kernel indices of ``b`` tasks, ``[b]`` each (drawn in this order)."""
        nc = torch.randint(self.nc_min, self.nc_max + 1, (b,), generator=generator)
        if self.n_kernels > 1:
            return nc, torch.randint(0, self.n_kernels, (b,), generator=generator)
        return nc, torch.zeros(b, dtype=torch.long)

    def _task(self, xc: Tensor, xt: Tensor, x: Tensor, y: Tensor, nc: Tensor, index: Tensor) -> Task:
        """The task of zero-mean draws ``y [b, nc_max + nt, 1]`` at ``x``: the prior mean added, float32,
        the first ``nc`` context points real."""
        prior_mean = self.mean(x)
        if prior_mean is not None:
            y = y + prior_mean[..., None]
        y = y.float()
        mask_c = torch.arange(self.nc_max)[None, :] < nc[:, None]
        return Task(xc, y[:, : self.nc_max], xt, y[:, self.nc_max :], mask_c, {"kernel": index})

    def sample(self, batch_size: int, generator: torch.Generator) -> Task:
        """Draw tasks (float32): ``xc [batch, nc_max, dim]`` masked, ``xt [batch, nt, dim]``."""
        b = batch_size
        nc, index = self._sizes_and_kernels(b, generator)
        xc = _uniform(self.context_box, (b, self.nc_max), generator)
        xt = _uniform(self.box, (b, self.nt), generator)
        # The kernel sees the float32 inputs the task stores, so data and oracle agree exactly.
        x = torch.cat([xc, xt], 1).double()
        chol = _cholesky(self.kernel(x, x, index), self.jitter)
        n = x.shape[1]
        f = chol @ torch.randn(b, n, 1, generator=generator, dtype=torch.float64)
        eps = torch.randn(b, n, 1, generator=generator, dtype=torch.float64)
        noise_var = self.noise_var(x)
        y = f + (self.noise_sd * eps if noise_var is None else noise_var.sqrt()[..., None] * eps)
        return self._task(xc, xt, x, y, nc, index)

    def sample_shared(self, batch_size: int, generator: torch.Generator) -> Task:
        """Draw tasks that share one draw of input locations (``xc [batch, nc_max, dim]`` masked per
        task, ``xt [batch, nt, dim]``): each task has exactly the distribution of :meth:`sample`, but
        the batch costs one Cholesky per distinct kernel instead of one per task."""
        b = batch_size
        nc, index = self._sizes_and_kernels(b, generator)
        xc = _uniform(self.context_box, (1, self.nc_max), generator)
        xt = _uniform(self.box, (1, self.nt), generator)
        x = torch.cat([xc, xt], 1).double()
        kernels, which = torch.unique(index, return_inverse=True)
        u, n = len(kernels), x.shape[1]
        cov = self.kernel(x.expand(u, n, -1), x.expand(u, n, -1), kernels)
        # The noise joins the covariance: y ~ N(m, K + diag(noise)) is f + noise in one draw, and the
        # noise keeps the factorisation well conditioned.
        noise_var = self.noise_var(x)
        cov.diagonal(dim1=-2, dim2=-1).add_(self.noise_sd**2 if noise_var is None else noise_var)
        chol = _cholesky(cov, self.jitter)
        y = chol[which] @ torch.randn(b, n, 1, generator=generator, dtype=torch.float64)
        xc, xt = xc.expand(b, -1, -1).contiguous(), xt.expand(b, -1, -1).contiguous()
        return self._task(xc, xt, x, y, nc, index)

    def batches(self, batch_size: int, seed: int, start: int = 0) -> Iterator[Task]:
        """Endless reproducible stream of training batches ``start, start + 1, ...``: the same seed gives
        the same tasks. Batch k has its own generator seeded from ``(seed, k)``, so a resumed run starts
        at its step without replaying the batches before it.

        The tasks of a batch share their input locations (:meth:`sample_shared`): each task is drawn
        from the process exactly, and drawing a gibbs-1d batch costs about a third as much, which on
        a CPU is a third of the training step (``bench/bench_recipe.py``). Test sets
        (:meth:`test_set`) draw every task's locations independently, and so do training batches
        when ``shared_inputs`` is False."""
        import numpy as np  # local: only this method needs numpy (SeedSequence mixes seed and k)

        k = start
        while True:
            state = np.random.SeedSequence([seed, k]).generate_state(1, dtype=np.uint64)[0]
            draw = self.sample_shared if self.shared_inputs else self.sample
            yield draw(batch_size, torch.Generator().manual_seed(int(state)))
            k += 1

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
        log_ml, mean, var = self.posterior_components(task.xc, task.yc[..., 0], task.mask_c, task.xt)
        return torch.log_softmax(log_ml, dim=-1), mean, var

    def posterior_components(
        self, xc: Tensor, yc: Tensor, mask_c: Tensor, xt: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Log marginal likelihood of the context ``[batch, K]`` (unnormalised) and predictive means
        and variances ``[batch, K, nt]`` per kernel, for ``xc [batch, nc, dim]``, ``yc [batch, nc]``,
        ``mask_c [batch, nc]``, ``xt [batch, nt, dim]``; float64, noise and prior mean included."""
        b, nc, _ = xc.shape
        nt = xt.shape[1]
        k_count = self.n_kernels
        device = xc.device
        # All K candidate kernels in one batch: row k * b + i is task i under kernel k.
        index = torch.arange(k_count, device=device).repeat_interleave(b)
        # Zeroed padding inputs keep NaNs that Task allows there out of the kernel matrices.
        xc = torch.where(mask_c[..., None], xc, 0.0).double()
        xt = xt.double()
        noise_t = self.noise_var(xt)
        noise_t = self.noise_sd**2 if noise_t is None else noise_t.repeat(k_count, 1)
        mean_t = self.mean(xt)
        prior_var = self.kernel_diag(xt.repeat(k_count, 1, 1), index)
        if nc == 0:
            log_ml = torch.zeros(k_count * b, dtype=torch.float64, device=device)
            mean = torch.zeros(k_count * b, nt, dtype=torch.float64, device=device)
            var_f = prior_var
        else:
            mask = mask_c.repeat(k_count, 1)
            y = yc.double()
            mean_c = self.mean(xc)
            if mean_c is not None:
                y = y - mean_c
            yc = torch.where(mask, y.repeat(k_count, 1), 0.0)
            # Padded rows/columns become identity (and their y zero): they add nothing to the
            # quadratic form or the log-determinant and decouple from the real points. In place,
            # because fresh [batch, n, m] allocations cost page faults comparable to the maths.
            gram = self.kernel_all(xc, xc)
            noise_c = self.noise_var(xc)
            if noise_c is None:
                gram.diagonal(dim1=-2, dim2=-1).add_(self.noise_sd**2)
            else:
                gram.diagonal(dim1=-2, dim2=-1).add_(noise_c.repeat(k_count, 1))
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
        if mean_t is not None:
            mean = mean + mean_t.repeat(k_count, 1)
        log_ml = log_ml.reshape(k_count, b).T
        mean = mean.reshape(k_count, b, nt).transpose(0, 1)
        var = (var_f + noise_t).reshape(k_count, b, nt).transpose(0, 1)
        return log_ml, mean, var

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
    shift_axes = ()
    stationary_kernel = True

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
    # Cells end where a changepoint meets an input (shift_breakpoints), so coarse regular cells do.
    shift_spacing = 1 / 4

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

    def shift_breakpoints(self, xc: Tensor, mask_c: Tensor, xt: Tensor, axis: int) -> Tensor | None:
        """Shifts ``[batch, (nc + nt) * C]`` that move a changepoint onto an input (NaN for padding).

        Between them every input keeps its side of every changepoint, so the likelihood and all
        predictives are constant: the ceiling's midpoint rule is exact.
        """
        c = torch.tensor(sorted({cp for cp, _ in self.kernel_table}), dtype=xc.dtype, device=xc.device)
        s = xc[..., axis, None] - c  # [b, nc, C]: x - s = c
        s = torch.where(mask_c[..., None], s, torch.nan).flatten(1)
        return torch.cat([s, (xt[..., axis, None].to(xc.dtype) - c).flatten(1)], 1)


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
    # The lengthscale field depends on x_1 only: shifts along x_2 change nothing.
    shift_axes = (0,)

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


def _strength(value: float, name: str) -> float:
    """A validated breaking strength (a finite number >= 0)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = float("nan")
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{name}: strength {value!r} must be a finite number >= 0 (0 = stationary)")
    return out


class _BrokenSymmetrySampler(GPSampler):
    """A stationary EQ GP whose translation symmetry a fixed function of position breaks.

    ``strength`` scales the breaking (0 = the stationary GP, 1 = the default); the instance's
    ``name`` is ``base`` at strength 1 and ``base:STRENGTH`` otherwise, the form the registry parses.
    """

    base_name = "gp"

    def __init__(
        self, *, strength: float = 1.0, lengthscale: float = 0.5, signal_sd: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.strength = _strength(strength, self.base_name)
        self.lengthscale = float(lengthscale)
        self.signal_sd = float(signal_sd)
        self.name = self.base_name if self.strength == 1.0 else f"{self.base_name}:{self.strength:g}"

    def kernel(self, x1: Tensor, x2: Tensor, index: Tensor) -> Tensor:
        """EQ covariance ``signal_sd^2 exp(-|x - x'|^2 / (2 l^2))`` ``[batch, n, m]`` (one kernel)."""
        k = eq_kernel(x1, x2, self.lengthscale)
        return k if self.signal_sd == 1.0 else k.mul_(self.signal_sd**2)

    def kernel_diag(self, x: Tensor, index: Tensor) -> Tensor:
        """Prior variances ``signal_sd^2`` ``[batch, n]``."""
        return torch.full(x.shape[:2], self.signal_sd**2, dtype=x.dtype, device=x.device)


class MountainSampler(_BrokenSymmetrySampler):
    """A stationary EQ GP plus a fixed mountain: ``y = f(x) + strength * m(x) + noise``.

    ``m(x) = sum_j h_j exp(-|x - c_j|^2 / (2 w^2))``: bumps of height ``h_j`` (negative: a valley)
    at fixed places ``c_j``. The mountains stand where the targets reach but the context does not,
    so a strictly translation-equivariant model can only guess where they are from the position of
    the context inside its window; few context points keep that guess vague.
    """

    stationary_kernel = True

    def __init__(
        self,
        *,
        peaks: tuple[tuple[tuple[float, ...], float], ...],
        peak_width: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.peaks = tuple((tuple(float(c) for c in centre), float(h)) for centre, h in peaks)
        if any(len(c) != self.dim_x for c, _ in self.peaks):
            raise ValueError(f"every peak centre needs {self.dim_x} coordinates, got {self.peaks}")
        self.peak_width = float(peak_width)

    def mean(self, x: Tensor) -> Tensor | None:
        """The mountains ``strength * m(x)`` ``[batch, n]`` (``None`` at strength 0)."""
        if self.strength == 0.0:
            return None
        out = torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
        for centre, height in self.peaks:
            # A loop over the axes, not .sum(-1): a reduction over a last axis of 2 is slow in torch.
            d2 = (x[..., 0] - centre[0]).square_()
            for i in range(1, self.dim_x):
                d2 += (x[..., i] - centre[i]).square_()
            out += (self.strength * height) * d2.mul_(-0.5 / self.peak_width**2).exp_()
        return out


class NoiseSampler(_BrokenSymmetrySampler):
    """A stationary EQ GP observed with noise whose level depends on position.

    ``log sd(x) = log sqrt(lo * hi) + strength * log sqrt(hi / lo) * u(x)`` with ``u`` in [-1, 1]:
    one switch ``u = tanh((x_1 - c) / w)`` (``period=None``; ``c = switch_at``, ``w = switch_width``),
    bands ``u = tanh(z(x_1) / w)`` with ``z(x) = P / (2 pi) sin(2 pi (x - c) / P)`` (``period=P``:
    switches every ``P / 2``), or a checkerboard ``u = tanh(z(x_1) / w) tanh(z(x_2) / w)``
    (``checkerboard=True``, 2-D). At strength 1 the noise sd runs from ``lo`` to ``hi``; at
    strength 0 it is their geometric mean everywhere (``noise_sd``, the base class's, holds it).
    """

    # The noise depends on x_1 only: shifts along x_2 change nothing.
    shift_axes = (0,)

    def __init__(
        self,
        *,
        noise_lo: float,
        noise_hi: float,
        switch_at: float,
        switch_width: float,
        period: float | None = None,
        checkerboard: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(noise_sd=math.sqrt(noise_lo * noise_hi), **kwargs)
        self.noise_lo, self.noise_hi = float(noise_lo), float(noise_hi)
        self.switch_at, self.switch_width = float(switch_at), float(switch_width)
        self.period = None if period is None else float(period)
        self.checkerboard = bool(checkerboard)
        if self.checkerboard and (self.period is None or self.dim_x != 2):
            raise ValueError("a checkerboard of noise needs a period and 2-D inputs")
        if self.checkerboard:
            self.shift_axes = (0, 1)

    def _band(self, x: Tensor) -> Tensor:
        """The switch ``tanh(z / switch_width)`` in [-1, 1] along one coordinate ``x [batch, n]``."""
        z = x - self.switch_at
        if self.period is not None:
            # Bands: calm and noisy stripes of width period / 2, switching at switch_at + k period / 2.
            z = torch.sin(2 * math.pi * z / self.period) * self.period / (2 * math.pi)
        return torch.tanh(z / self.switch_width)

    def noise_var(self, x: Tensor) -> Tensor | None:
        """Noise variance ``[batch, n]`` at ``x [batch, n, dim]``."""
        half = 0.5 * math.log(self.noise_hi / self.noise_lo)
        u = self._band(x[..., 0])
        if self.checkerboard:
            # Squares instead of stripes: the product flips sign across x_2's switches too.
            u = u * self._band(x[..., 1])
        return torch.exp(2 * (math.log(self.noise_sd) + self.strength * half * u))

    def shift_breakpoints(self, xc: Tensor, mask_c: Tensor, xt: Tensor, axis: int) -> Tensor | None:
        """Shifts ``[batch, nc * Q]`` that move a noise switch onto a context input (NaN for padding).

        Only the context's: the noise at a target changes smoothly enough for the cells.
        """
        if axis != 0 and not self.checkerboard:
            return None
        if self.period is None:
            q = torch.tensor([self.switch_at], dtype=xc.dtype, device=xc.device)
        else:
            # Every switch a shift within the windows' reach can bring onto a context input.
            reach = sum(hi - lo for lo, hi in (self.box[axis], self.context_box[axis]))
            lo, hi = self.context_box[axis][0] - reach, self.context_box[axis][1] + reach
            half = self.period / 2
            k = torch.arange(
                math.floor((lo - self.switch_at) / half), math.ceil((hi - self.switch_at) / half) + 1
            )
            q = self.switch_at + half * k.to(xc.dtype)
        s = xc[..., axis, None] - q  # [b, nc, Q]: x - s = q
        return torch.where(mask_c[..., None], s, torch.nan).flatten(1)


class Mountain1D(MountainSampler):
    """mountain-1d: EQ GP (lengthscale 1, noise 0.1) plus a mountain range beyond the context.

    Context ``N_c ~ U{1..16}`` on [-2, 2], targets ``N_t = 128`` on [-4, 4]. Right of the context
    a mountain (height 3 at 2.6) and a valley (-3 at 3.4), mirrored on the left (valley at -2.6,
    mountain at -3.4), all of width 0.3. A strict model places them only as well as the context's
    spread inside its window pins the absolute position (to 8 / (N_c + 1) on average), so the
    targets among the peaks carry the headroom; the peaks alternate so that a guess off by a
    fraction of a unit is wrong in sign.
    """

    base_name = name = "mountain-1d"

    def __init__(
        self,
        *,
        strength: float = 1.0,
        peaks: tuple[tuple[tuple[float, ...], float], ...] = (
            ((2.6,), 3.0),
            ((3.4,), -3.0),
            ((-2.6,), -3.0),
            ((-3.4,), 3.0),
        ),
        peak_width: float = 0.3,
        lengthscale: float = 1.0,
        noise_sd: float = 0.1,
        nc_min: int = 1,
        nc_max: int = 16,
        nt: int = 128,
        context_box: Box = ((-2.0, 2.0),),
        box: Box = ((-4.0, 4.0),),
        jitter: float = 1e-8,
    ) -> None:
        super().__init__(
            strength=strength,
            peaks=peaks,
            peak_width=peak_width,
            lengthscale=lengthscale,
            noise_sd=noise_sd,
            nc_min=nc_min,
            nc_max=nc_max,
            nt=nt,
            context_box=context_box,
            box=box,
            jitter=jitter,
        )


def _square_ring(half_side: float, step: float, height: float) -> tuple[tuple[tuple[float, ...], float], ...]:
    """Peaks every ``step`` along the square of half-side ``half_side``, heights ``+height, -height, ...``."""
    k = round(2 * half_side / step)
    a = half_side
    spots = [(-a + i * step, -a) for i in range(k)] + [(a, -a + i * step) for i in range(k)]
    spots += [(a - i * step, a) for i in range(k)] + [(-a, a - i * step) for i in range(k)]
    return tuple(((x, y), height * (-1) ** n) for n, (x, y) in enumerate(spots))


class Mountain2D(MountainSampler):
    """mountain-2d: isotropic EQ GP (lengthscale 1, noise 0.1) plus mountains around the context.

    Context ``N_c ~ U{1..8}`` on [-2, 2]^2, targets ``N_t = 256`` on [-3, 3]^2. Sixteen peaks of
    width 0.4 every 1.25 along the square of half-side 2.5, heights alternating +3 and -3 (a
    mountain range around the context): they stand where targets reach but the context does not,
    and a strict model that misplaces them by a fraction of a unit gets the sign wrong.
    """

    base_name = name = "mountain-2d"

    def __init__(
        self,
        *,
        strength: float = 1.0,
        peaks: tuple[tuple[tuple[float, ...], float], ...] = _square_ring(2.5, 1.25, 3.0),
        peak_width: float = 0.4,
        lengthscale: float = 1.0,
        noise_sd: float = 0.1,
        nc_min: int = 1,
        nc_max: int = 8,
        nt: int = 256,
        context_box: Box = ((-2.0, 2.0), (-2.0, 2.0)),
        box: Box = ((-3.0, 3.0), (-3.0, 3.0)),
        jitter: float = 1e-8,
    ) -> None:
        super().__init__(
            strength=strength,
            peaks=peaks,
            peak_width=peak_width,
            lengthscale=lengthscale,
            noise_sd=noise_sd,
            nc_min=nc_min,
            nc_max=nc_max,
            nt=nt,
            context_box=context_box,
            box=box,
            jitter=jitter,
        )


class Noise1D(NoiseSampler):
    """noise-1d: EQ GP (lengthscale 1, sd 0.2) seen through calm and noisy bands (noise sd 0.02 / 0.6).

    The noise switches every unit (period 2, switch width 0.05): noisy on [-2, -1] and [0, 1], calm
    on [-1, 0] and [1, 2] (at strength 1). Context ``N_c ~ U{1..8}`` and targets ``N_t = 128`` on
    [-2, 2]. The signal is weak next to the noisy bands, so knowing a target's band is worth much;
    a strict model knows it only as well as a few context points pin the absolute position.
    """

    base_name = name = "noise-1d"

    def __init__(
        self,
        *,
        strength: float = 1.0,
        noise_lo: float = 0.02,
        noise_hi: float = 0.6,
        switch_at: float = 0.0,
        switch_width: float = 0.05,
        period: float | None = 2.0,
        lengthscale: float = 1.0,
        signal_sd: float = 0.2,
        nc_min: int = 1,
        nc_max: int = 8,
        nt: int = 128,
        context_box: Box = ((-2.0, 2.0),),
        box: Box = ((-2.0, 2.0),),
        jitter: float = 1e-8,
    ) -> None:
        super().__init__(
            strength=strength,
            noise_lo=noise_lo,
            noise_hi=noise_hi,
            switch_at=switch_at,
            switch_width=switch_width,
            period=period,
            lengthscale=lengthscale,
            signal_sd=signal_sd,
            nc_min=nc_min,
            nc_max=nc_max,
            nt=nt,
            context_box=context_box,
            box=box,
            jitter=jitter,
        )


class Noise2D(NoiseSampler):
    """noise-2d: isotropic EQ GP (lengthscale 1, sd 0.15) seen through a checkerboard of noise.

    As noise-1d on the plane: noise sd 0.02 on the calm squares and 0.6 on the noisy ones, squares
    one unit wide (period 2 along both axes, switch width 0.1; the product of the two axes' bands).
    Context ``N_c ~ U{1..8}`` and targets ``N_t = 256`` on [-2, 2]^2. (Stripes along one axis leave
    a strict model a headroom of only ~0.07 nats: a shift along the stripes changes nothing.)
    """

    # Cells of 1/8 (not the 2-D default 1/4) resolve the switches: D moves < 0.001 nats at 1/16.
    shift_spacing = 1 / 8

    base_name = name = "noise-2d"

    def __init__(
        self,
        *,
        strength: float = 1.0,
        noise_lo: float = 0.02,
        noise_hi: float = 0.6,
        switch_at: float = 0.0,
        switch_width: float = 0.1,
        period: float | None = 2.0,
        checkerboard: bool = True,
        lengthscale: float = 1.0,
        signal_sd: float = 0.15,
        nc_min: int = 1,
        nc_max: int = 8,
        nt: int = 256,
        context_box: Box = ((-2.0, 2.0), (-2.0, 2.0)),
        box: Box = ((-2.0, 2.0), (-2.0, 2.0)),
        jitter: float = 1e-8,
    ) -> None:
        super().__init__(
            strength=strength,
            noise_lo=noise_lo,
            noise_hi=noise_hi,
            switch_at=switch_at,
            switch_width=switch_width,
            period=period,
            checkerboard=checkerboard,
            lengthscale=lengthscale,
            signal_sd=signal_sd,
            nc_min=nc_min,
            nc_max=nc_max,
            nt=nt,
            context_box=context_box,
            box=box,
            jitter=jitter,
        )


SAMPLERS: dict[str, type[GPSampler]] = {
    cls.name: cls
    for cls in (
        GibbsSampler,
        EQSampler1D,
        EQSampler2D,
        AnisotropicSampler2D,
        Mountain1D,
        Mountain2D,
        Noise1D,
        Noise2D,
    )
}


def make_sampler(name: str, **kwargs: Any) -> GPSampler:
    """The dataset called ``name`` (a key of ``SAMPLERS``), constructor defaults overridden by ``kwargs``."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name](**kwargs)
