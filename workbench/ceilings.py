"""Ceilings of the synthetic GP datasets: how well any model, a Gaussian one, a strict one can do.

Three predictors, each scored per target on the very test tasks the models are scored on:

- **A, the oracle**: the exact posterior predictive (for a mixture of GPs, the Bayesian model
  average with the kernels' posterior weights per task). Nothing beats it on average.
- **B, the best Gaussian predictor**: A moment-matched per target, ``log N(y_t; mean_A, var_A)``.
  No model with a Gaussian likelihood beats it on average.
- **D, the best strictly translation-equivariant Gaussian predictor**: the Bayes predictor under the
  dataset made invariant to translations (a shift ``s``, uniform over a very wide range, moves the
  whole task, context window and target window included), moment-matched. Scoring an equivariant
  predictor on the original data equals scoring it on the shift-averaged data, whose best predictor
  this is, so no strictly translation-equivariant Gaussian model beats it on average.

How D is computed (the wide-range limit): for a target ``x_t`` the posterior over ``s`` is the
uniform prior restricted to the shifts under which every context input lies in the shifted context
window and ``x_t`` in the shifted target window (the input locations carry information about the
absolute position), times the marginal likelihood of the context values under the shifted process
(for a mixture, the sum over its kernels). The predictive is the mixture over ``s`` and kernels of
the GP predictives with the process shifted by ``s``, then moment-matched. Quadrature: per task, the
shifts that are feasible for at least one target form a box; each shifted axis is cut into equal
cells about ``spacing`` wide (``GPSampler.shift_spacing`` where a dataset sets it, else ``SPACING``:
1/32 for one axis, 1/4 for two; at most ``MAX_CELLS`` per axis). Each cell gets the likelihood at
its centre and, per target, the exact length (area)
of its overlap with that target's feasible shifts: a midpoint rule with exact feasibility, so even a
sliver of feasible shifts counts. Only the axes along which the process is not translation
invariant (``GPSampler.shift_axes``) are integrated; along the others every shift gives the same
predictive. Where kernel and noise are stationary (``GPSampler.stationary_kernel``) only the prior
mean moves with ``s``, and one Cholesky factor per task serves every shift. Cells also end at the
shifts a dataset names as breakpoints (``GPSampler.shift_breakpoints``: for gibbs-1d where a
changepoint meets a context or target input, between which the integrand is constant, so its D is
exact; for the noise worlds where a noise switch meets a context input). The tests check D
against a brute-force integral and the default cells against cells half as wide.

**D', what a model that sees every target input can know** (``ceilings(..., all_targets=True)``,
``equivariant_all_targets_loglik``): the same Bayes predictor, but the posterior over the shift is
conditioned on the context inputs and *all* the task's target inputs (every target must lie in the
shifted target window). The targets of a task fill their window, so they pin the absolute position:
on 1024 test tasks B - D' is 0.008 (gibbs-1d), 0.020 (mountain-1d), 0.012 (noise-1d), 0.002
(mountain-2d) and 0.002 nats (noise-2d) against B - D = 0.024, 0.31, 0.31, 0.36, 0.28. A model
equivariant as a function of the whole task (contexts *and* target inputs), such as a ConvCNP whose
grid is placed on the box of contexts and targets, is bounded by D', not D: it can take almost the
whole headroom without departing from the symmetry. The project's ConvCNP therefore places its grid
on the context points only (:class:`workbench.models.conv.ConvCNP`, ``grid_centre="context"``): its
prediction at a target is a function of the context and that target alone, D bounds it, and
:func:`gap_split` charges strict models B - D. D' stays as a diagnostic (and the bound to charge a
model built with ``grid_centre="all"``).

``python -m workbench.ceilings [NAME ...] [--tasks N]`` prints A, B, D, D' and the headrooms B - D,
B - D'.

Groups: D is the ceiling for translations T(d). For rotation (or reflection) groups on top of
translations the strict ceiling is lower still; it is **not computed** here (``ceilings`` says so
under ``"not_computed"``), so for a ``T+C4`` strict model the translation headroom charged by
:func:`gap_split` is a lower bound on what the symmetry costs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from workbench.task import Task

__all__ = ["ceilings", "equivariant_moments", "gap_split", "gaussian_score", "per_task_difference"]

#: Quadrature cell width along each shifted axis (input units), by the number of shifted axes ...
SPACING = {1: 1 / 32, 2: 1 / 4}
#: ... and the most cells per axis (wider regions get wider cells).
MAX_CELLS = {1: 256, 2: 32}
#: (task, shift) rows per call of the GP algebra: bounds the memory of the generic path.
_ROWS = 256
_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}


def gaussian_score(y: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """Mean Gaussian log density per task, ``[batch]``, of ``y``, ``mean``, ``var`` ``[batch, nt]``."""
    return (-0.5 * ((y - mean).square() / var + torch.log(2 * math.pi * var))).mean(-1)


def _feasible_intervals(
    sampler: Any, task: Task, axis: int, all_targets: bool = False
) -> tuple[Tensor, Tensor]:
    """Per target, the interval of shifts along ``axis`` keeping context and target in their windows.

    Returns ``lo, hi`` ``[batch, nt]`` (float64): the shift ``s`` is feasible when every real
    context input satisfies ``x_c - s`` in the context window and ``x_t - s`` in the target window.
    With ``all_targets`` (ceiling D') every target must be in the shifted target window: the same
    interval for all targets of a task.
    """
    c_lo, c_hi = sampler.context_box[axis]
    t_lo, t_hi = sampler.box[axis]
    xc = task.xc[..., axis].double()
    xt = task.xt[..., axis].double()
    inf = torch.tensor(math.inf, dtype=torch.float64)
    # No real context point: the context says nothing about the position.
    hi_c = torch.where(task.mask_c, xc, inf).amin(-1, keepdim=True) - c_lo if xc.shape[1] else inf
    lo_c = torch.where(task.mask_c, xc, -inf).amax(-1, keepdim=True) - c_hi if xc.shape[1] else -inf
    lo_t, hi_t = xt - t_hi, xt - t_lo
    if all_targets:
        lo_t = lo_t.amax(-1, keepdim=True).expand_as(xt)
        hi_t = hi_t.amin(-1, keepdim=True).expand_as(xt)
    lo = torch.maximum(lo_t, torch.as_tensor(lo_c, dtype=torch.float64))
    hi = torch.minimum(hi_t, torch.as_tensor(hi_c, dtype=torch.float64))
    return lo, hi


def _axis_grid(
    lo: Tensor, hi: Tensor, spacing: float, max_cells: int, breaks: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Quadrature cells along one axis over the union of the targets' feasible intervals ``[batch, nt]``.

    Each task gets ``ceil(width / spacing)`` equal cells (at most ``max_cells``), further cut at
    ``breaks [batch, P]`` (shifts where the integrand jumps; NaN = none), padded to the largest
    count: centres ``[batch, G]``, validity ``[batch, G]`` and, per target, the length of each
    cell's overlap with its interval ``[batch, G, nt]`` (0 for padding cells).
    """
    r_lo = lo.amin(-1, keepdim=True)
    r_hi = hi.amax(-1, keepdim=True)
    # A degenerate region (one feasible shift) still needs a cell of positive width.
    width = (r_hi - r_lo).clamp_min(1e-9)
    cells = torch.ceil(width / spacing).clamp(1, max_cells)
    j = torch.arange(int(cells.max()) + 1, dtype=torch.float64)
    edges = torch.where(j <= cells, r_lo + width * j / cells, math.inf)  # [b, G + 1]
    if breaks is not None:
        inside = (breaks > r_lo) & (breaks < r_hi)
        edges = torch.cat([edges, torch.where(inside, breaks, math.inf)], -1).sort(-1).values
        edges = edges[:, : int(torch.isfinite(edges).sum(-1).max())]
    left_edge, right_edge = edges[:, :-1], edges[:, 1:]
    valid = torch.isfinite(right_edge) & (right_edge > left_edge)
    centres = torch.where(valid, 0.5 * (left_edge + right_edge), r_lo)
    left = torch.maximum(left_edge[..., None], lo[:, None, :])
    right = torch.minimum(right_edge[..., None], hi[:, None, :])
    overlap = torch.where(valid[..., None], (right - left).clamp_min(0.0), 0.0)
    return centres, valid, overlap


def _shift_grid(
    sampler: Any,
    task: Task,
    axes: Sequence[int],
    spacing: float,
    max_cells: int,
    all_targets: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Shifts ``[batch, G, dim]`` (zero along unshifted axes), validity ``[batch, G]`` and overlap
    weights ``[batch, G, nt]`` (products over the shifted axes)."""
    b, nt, d = task.xt.shape
    shifts = torch.zeros(b, 1, d, dtype=torch.float64)
    valid = torch.ones(b, 1, dtype=torch.bool)
    weight = torch.ones(b, 1, nt, dtype=torch.float64)
    for axis in axes:
        lo, hi = _feasible_intervals(sampler, task, axis, all_targets)
        breaks = sampler.shift_breakpoints(task.xc.double(), task.mask_c, task.xt.double(), axis)
        centres, ok, overlap = _axis_grid(lo, hi, spacing, max_cells, breaks)
        g_old, g = shifts.shape[1], centres.shape[1]
        shifts = shifts[:, :, None, :].repeat(1, 1, g, 1)
        shifts[..., axis] = centres[:, None, :]
        shifts = shifts.reshape(b, g_old * g, d)
        valid = (valid[:, :, None] & ok[:, None, :]).reshape(b, g_old * g)
        weight = (weight[:, :, None, :] * overlap[:, None, :, :]).reshape(b, g_old * g, nt)
    return shifts, valid, weight


def _compact(task: Task) -> Task:
    """The task with its real context points first and the padding trimmed to the largest count."""
    order = torch.argsort((~task.mask_c).to(torch.int8), dim=1, stable=True)
    n = int(task.mask_c.sum(-1).max()) if task.mask_c.numel() else 0
    order = order[:, :n]
    xc = torch.gather(task.xc, 1, order[..., None].expand(-1, -1, task.dim_x))
    yc = torch.gather(task.yc, 1, order[..., None].expand(-1, -1, task.yc.shape[-1]))
    return Task(xc, yc, task.xt, task.yt, torch.gather(task.mask_c, 1, order))


class _Mixture:
    """Streaming moments of the mixture over (shift cell, kernel) per target, fed in chunks of rows.

    A running log-sum-exp per (task, target) keeps the weights finite however peaked the
    likelihood; moments are accumulated without ever holding all ``[task, cell, kernel, target]``.
    """

    def __init__(self, b: int, nt: int) -> None:
        self.top = torch.full((b, nt), -math.inf, dtype=torch.float64)
        self.z = torch.zeros(b, nt, dtype=torch.float64)
        self.m1 = torch.zeros(b, nt, dtype=torch.float64)
        self.m2 = torch.zeros(b, nt, dtype=torch.float64)

    def add(self, i: Tensor, log_w: Tensor, mean: Tensor, var: Tensor) -> None:
        """Rows of task ``i [r]``: log weights, means, variances ``[r, K, nt]``."""
        nt = log_w.shape[-1]
        chunk_top = torch.full_like(self.top, -math.inf)
        chunk_top.scatter_reduce_(0, i[:, None].expand(-1, nt), log_w.amax(1), "amax")
        top = torch.maximum(self.top, chunk_top)
        # exp(-inf - -inf) is NaN: a target with no weight yet keeps its zero sums.
        scale = torch.where(torch.isfinite(self.top), torch.exp(self.top - top), 0.0)
        self.z *= scale
        self.m1 *= scale
        self.m2 *= scale
        self.top = top
        # Rows of a (task, target) with no weight yet anywhere give -inf - -inf = NaN: weight 0.
        w = torch.exp(log_w - top[i][:, None, :]).nan_to_num_(0.0)
        self.z.index_add_(0, i, w.sum(1))
        self.m1.index_add_(0, i, (w * mean).sum(1))
        self.m2.index_add_(0, i, (w * (var + mean.square())).sum(1))

    def moments(self) -> tuple[Tensor, Tensor]:
        """Mean and variance ``[b, nt]`` (NaN where no row had weight)."""
        m = self.m1 / self.z
        return m, (self.m2 / self.z - m.square()).clamp_min(1e-12)


def _mix_generic(sampler: Any, task: Task, shifts: Tensor, valid: Tensor, overlap: Tensor) -> _Mixture:
    """The GP algebra redone at every valid shift cell, mixed over cells and kernels."""
    nt = task.xt.shape[1]
    mix = _Mixture(task.batch_size, nt)
    task = _compact(task)
    # Rows (task, cell) sorted by context size and trimmed per chunk: padding costs cubic time.
    counts = task.mask_c.sum(-1)
    rows = valid.nonzero()  # [R, 2]
    rows = rows[torch.argsort(counts[rows[:, 0]], stable=True)]
    for start in range(0, len(rows), _ROWS):
        i, j = rows[start : start + _ROWS].unbind(-1)
        n = int(counts[i].max())
        s = shifts[i, j][:, None, :]  # [r, 1, d]
        xc = task.xc[i, :n].double() - s
        xt = task.xt[i].double() - s
        log_ml, mean, var = sampler.posterior_components(xc, task.yc[i, :n, 0], task.mask_c[i, :n], xt)
        # Uniform prior over shifts and kernels: overlap length times marginal likelihood.
        log_w = log_ml[..., None] + torch.log(overlap[i, j])[:, None, :]
        mix.add(i, log_w, mean, var)
    return mix


def _components_stationary(sampler: Any, task: Task, shifts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """As the generic path when only the prior mean moves with the shift: one Cholesky per task."""
    b, g, d = shifts.shape
    task = _compact(task)
    nc, nt = task.xc.shape[1], task.xt.shape[1]
    xc, xt = task.xc.double(), task.xt.double()
    mask = task.mask_c
    index = torch.zeros(b, dtype=torch.long)

    def prior_mean(x: Tensor) -> Tensor:
        """Prior mean ``[b, G, n]`` of the process shifted by each ``s``, i.e. ``m(x - s)``."""
        moved = (x[:, None] - shifts[:, :, None, :]).reshape(b, g * x.shape[1], d)
        m = sampler.mean(moved)
        return torch.zeros(b, g, x.shape[1], dtype=torch.float64) if m is None else m.reshape(b, g, -1)

    prior_var = sampler.kernel_diag(xt, index)
    var_f = prior_var
    mean = prior_mean(xt)
    log_ml = torch.zeros(b, g, dtype=torch.float64)
    if nc:
        gram = sampler.kernel(xc, xc, index)
        gram.diagonal(dim1=-2, dim2=-1).add_(sampler.noise_sd**2)
        gram.masked_fill_(~(mask[:, :, None] & mask[:, None, :]), 0.0)
        gram.diagonal(dim1=-2, dim2=-1).masked_fill_(~mask, 1.0)
        chol = torch.linalg.cholesky(gram)
        resid = (task.yc[..., 0].double()[:, None, :] - prior_mean(xc)) * mask[:, None, :]  # [b, G, nc]
        alpha = torch.linalg.solve_triangular(chol, resid.mT, upper=False)  # [b, nc, G]
        n_real = mask.sum(-1).double()[:, None]
        log_ml = (
            -0.5 * alpha.square().sum(-2)
            - chol.diagonal(dim1=-2, dim2=-1).log().sum(-1, keepdim=True)
            - 0.5 * n_real * math.log(2 * math.pi)
        )
        k_ct = sampler.kernel(xc, xt, index) * mask[:, :, None]
        v = torch.linalg.solve_triangular(chol, k_ct, upper=False)  # [b, nc, nt]
        mean = mean + alpha.mT @ v
        var_f = (prior_var - v.square().sum(-2)).clamp_min(0.0)
    var = (var_f + sampler.noise_sd**2)[:, None, None, :].expand(b, g, 1, nt)
    return log_ml[..., None], mean[:, :, None, :], var


def equivariant_moments(
    sampler: Any,
    task: Task,
    spacing: float | None = None,
    max_cells: int | None = None,
    *,
    all_targets: bool = False,
) -> tuple[Tensor, Tensor]:
    """Mean and variance ``[batch, nt]`` (float64) of the best strictly translation-equivariant
    Gaussian predictor (ceiling D; see the module docstring for the quadrature over shifts).

    ``all_targets``: ceiling D', the posterior over the shift conditioned on the context inputs and
    all the task's target inputs (what a model that looks at every target input can know).
    """
    task = task.to("cpu")
    axes = sampler.shift_axes
    axes = tuple(range(task.dim_x)) if axes is None else tuple(axes)
    if not axes:
        # The process is translation invariant: its oracle is already equivariant.
        mean, std = sampler.oracle_moments(task)
        return mean, std.square()
    max_cells = MAX_CELLS[len(axes)] if max_cells is None else int(max_cells)
    if spacing is None:
        spacing = sampler.shift_spacing or SPACING[len(axes)]
    if sampler.stationary_kernel and sampler.n_kernels == 1:
        # Dense over [task, cell, target]: small sub-batches bound the memory.
        parts = []
        for k in range(0, task.batch_size, 16):
            sub = Task(*(getattr(task, f)[k : k + 16] for f in ("xc", "yc", "xt", "yt", "mask_c")))
            shifts, valid, overlap = _shift_grid(sampler, sub, axes, spacing, max_cells, all_targets)
            log_ml, mean, var = _components_stationary(sampler, sub, shifts)
            b, g = valid.shape
            mix = _Mixture(b, sub.xt.shape[1])
            i = torch.arange(b).repeat_interleave(g)
            log_w = log_ml.flatten(0, 1)[..., None] + torch.log(overlap.flatten(0, 1))[:, None, :]
            mix.add(i, log_w, mean.flatten(0, 1), var.flatten(0, 1))
            parts.append(mix.moments())
        m, v = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    else:
        shifts, valid, overlap = _shift_grid(sampler, task, axes, spacing, max_cells, all_targets)
        m, v = _mix_generic(sampler, task, shifts, valid, overlap).moments()
    # A target no cell reaches (only for tasks outside the sampler's windows): fall back to A.
    bad = ~torch.isfinite(m)
    if bad.any():
        mean_a, std_a = sampler.oracle_moments(task)
        m, v = torch.where(bad, mean_a, m), torch.where(bad, std_a.square(), v)
    return m, v


def _n_axes(sampler: Any) -> int:
    """How many axes the equivariant ceiling integrates shifts over."""
    return sampler.dim_x if sampler.shift_axes is None else len(sampler.shift_axes)


def _fingerprint(tasks: Sequence[Task]) -> str:
    """A hash of the tasks' data, so the cache knows a test set when it sees it again."""
    h = hashlib.sha1()
    for t in tasks:
        for x in (t.xc, t.yc, t.xt, t.yt, t.mask_c):
            h.update(x.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _merged(tasks: Sequence[Task], size: int = 128) -> list[Task]:
    """Consecutive batches of equal shapes joined into batches of up to ``size`` tasks, in order.

    Bigger batches let the quadrature sort its (task, shift) rows by context size across more
    tasks, so each chunk of GP algebra carries less padding.
    """
    out: list[Task] = []
    group: list[Task] = []

    def flush() -> None:
        if group:
            cat = [torch.cat([getattr(t, k) for t in group]) for k in ("xc", "yc", "xt", "yt", "mask_c")]
            out.append(Task(*cat))
            group.clear()

    for t in tasks:
        same = group and all(
            getattr(t, k).shape[1:] == getattr(group[0], k).shape[1:] for k in ("xc", "xt", "yt")
        )
        if group and (not same or sum(g.batch_size for g in group) + t.batch_size > size):
            flush()
        group.append(t)
    flush()
    return out


def ceilings(
    sampler: Any, tasks: Sequence[Task], *, spacing: float | None = None, all_targets: bool = False
) -> dict[str, Any]:
    """Ceilings A (``oracle_loglik``), B (``gaussian_loglik``), D (``equivariant_loglik``) of a GP sampler.

    Means are nats per target over all targets (every task has the same number of targets, so as
    :func:`workbench.evaluate.mean_loglik` averages). With ``all_targets`` also D'
    (``equivariant_all_targets_loglik`` and ``_per_task``; see the module docstring), which costs
    about as much again as D. Per-task arrays ``[n_tasks]`` (``*_per_task``)
    allow paired differences with a model's :func:`workbench.evaluate.loglik_per_task`. Also
    ``symmetry_headroom`` = B - D, ``group`` (``"T(d)"``, the group D is for), ``not_computed``
    (the rotation ceilings) and ``spacing`` (quadrature cell width). Cached in memory per
    (dataset name, task data, spacing), so a test set is only done once per process.
    """
    tasks = [t.to("cpu") for t in tasks]
    name = getattr(sampler, "name", type(sampler).__name__)
    key = (name, type(sampler).__name__, spacing, all_targets, _fingerprint(tasks))
    if key in _CACHE:
        return _CACHE[key]
    a, bb, d, d_all = [], [], [], []
    with torch.no_grad():
        # A and B batch by batch, as evaluate.oracle_loglik does, so the numbers agree to the bit.
        for t in tasks:
            a.append(sampler.oracle_loglik(t))
            mean, std = sampler.oracle_moments(t)
            bb.append(gaussian_score(t.yt[..., 0].double(), mean, std.square()))
        for t in _merged(tasks):
            mean_d, var_d = equivariant_moments(sampler, t, spacing)
            d.append(gaussian_score(t.yt[..., 0].double(), mean_d, var_d))
            if all_targets:
                mean_d, var_d = equivariant_moments(sampler, t, spacing, all_targets=True)
                d_all.append(gaussian_score(t.yt[..., 0].double(), mean_d, var_d))
    parts = [("oracle", a), ("gaussian", bb), ("equivariant", d)]
    parts += [("equivariant_all_targets", d_all)] if all_targets else []
    per = {k: torch.cat(v) for k, v in parts}
    out: dict[str, Any] = {
        "oracle_loglik": float(per["oracle"].mean()),
        "gaussian_loglik": float(per["gaussian"].mean()),
        "equivariant_loglik": float(per["equivariant"].mean()),
        "oracle_per_task": per["oracle"].numpy(),
        "gaussian_per_task": per["gaussian"].numpy(),
        "equivariant_per_task": per["equivariant"].numpy(),
        "group": f"T({sampler.dim_x})",
        "not_computed": "rotation and reflection ceilings (groups T+C4, T+D4, T+C8, T+D8, T+flip)",
        "spacing": spacing or sampler.shift_spacing or SPACING.get(_n_axes(sampler), 0.0),
    }
    out["symmetry_headroom"] = out["gaussian_loglik"] - out["equivariant_loglik"]
    if all_targets:
        out["equivariant_all_targets_loglik"] = float(per["equivariant_all_targets"].mean())
        out["equivariant_all_targets_per_task"] = per["equivariant_all_targets"].numpy()
    if len(_CACHE) >= 32:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = out
    return out


def gap_split(metrics: dict[str, float], strict: bool) -> dict[str, float]:
    """Split ``oracle_loglik - loglik`` into ``gaussian_limit`` (A - B), ``symmetry_headroom``
    (B - D, charged to strict models only, 0 otherwise) and ``learning_shortfall`` (the rest).

    ``metrics`` needs ``loglik``, ``oracle_loglik``, ``gaussian_loglik`` and ``equivariant_loglik``.
    The three parts add up to the gap (to float rounding); the shortfall can come out slightly
    negative on a finite test set, since the ceilings bound expectations, not every sample.
    """
    gap = metrics["oracle_loglik"] - metrics["loglik"]
    gaussian_limit = metrics["oracle_loglik"] - metrics["gaussian_loglik"]
    headroom = metrics["gaussian_loglik"] - metrics["equivariant_loglik"] if strict else 0.0
    return {
        "gaussian_limit": gaussian_limit,
        "symmetry_headroom": headroom,
        "learning_shortfall": gap - gaussian_limit - headroom,
    }


def per_task_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the paired difference ``a - b`` of two per-task arrays ``[n_tasks]``."""
    from workbench.evaluate import mean_se

    return mean_se(np.asarray(a, np.float64) - np.asarray(b, np.float64))


def main(argv: Sequence[str] | None = None) -> None:
    """Print the ceilings of GP datasets on their test sets (``python -m workbench.ceilings``)."""
    import argparse
    import time

    from workbench.data.registry import GP_DATASETS, make_dataset

    parser = argparse.ArgumentParser(description="Ceilings A, B, D of the synthetic GP datasets.")
    parser.add_argument("names", nargs="*", default=list(GP_DATASETS), help="datasets (NAME:STRENGTH ok)")
    parser.add_argument("--tasks", type=int, default=1024, help="test tasks (seed 10000, batches of 16)")
    args = parser.parse_args(argv)
    head = ["A oracle", "B gauss", "D equiv", "D' all-t", "B - D", "B - D'"]
    print(f"{'dataset':<20}" + "".join(f"{h:>9}" for h in head) + f"{'s':>7}")
    for name in args.names:
        sampler = make_dataset(name)
        start = time.perf_counter()
        c = ceilings(sampler, sampler.test_set(args.tasks, batch_size=16), all_targets=True)
        keys = ("oracle_loglik", "gaussian_loglik", "equivariant_loglik", "equivariant_all_targets_loglik")
        vals = [c[k] for k in keys]
        vals += [c["symmetry_headroom"], c["gaussian_loglik"] - c["equivariant_all_targets_loglik"]]
        row = "".join(f"{v:>9.4f}" for v in vals)
        print(f"{name:<20}{row}{time.perf_counter() - start:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
