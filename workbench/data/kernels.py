"""Covariance functions for the synthetic GP datasets (torch, batched, unit prior variance).

All kernels take inputs ``x1 [batch, n, dim]`` and ``x2 [batch, m, dim]`` and return
``[batch, n, m]`` in the dtype of the inputs; callers pass float64 because the Cholesky
factorisations downstream need it.

Convention: a constant lengthscale ``l`` always means ``exp(-|x - x'|^2 / (2 l^2))``, so the EQ
kernel, the 1-D Gibbs kernel and the 2-D Paciorek kernel agree wherever their lengthscale field is
constant and isotropic.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Order of the six Gibbs kernels of the paper: index = 2 * (changepoint position) + side, with
# side 0 = long lengthscale LEFT of the changepoint (x < c) and side 1 = long lengthscale RIGHT
# (x >= c). Entries are (changepoint, long_on_left).
GIBBS_KERNELS: tuple[tuple[float, bool], ...] = (
    (-1.0, True),
    (-1.0, False),
    (0.0, True),
    (0.0, False),
    (1.0, True),
    (1.0, False),
)


def _exp_(t: Tensor) -> Tensor:
    """In-place exp of log-kernel values, floored at exp(-700) ~ 1e-304 (a negligible change)."""
    # torch's vectorised exp falls back to a slow scalar path for arguments below about -708,
    # which far-apart pairs under short lengthscales hit constantly (4x slower kernels).
    return t.clamp_min_(-700.0).exp_()


def sq_dist(x1: Tensor, x2: Tensor) -> Tensor:
    """Squared distances ``[batch, n, m]`` between ``x1 [batch, n, dim]`` and ``x2 [batch, m, dim]``."""
    # Explicit differences rather than the |a|^2 + |b|^2 - 2ab trick: exact zeros on the diagonal
    # keep the Gram matrices symmetric and PSD to rounding, which the Cholesky relies on. A loop
    # over the (one or two) dimensions avoids a [batch, n, m, d] temporary.
    out = (x1[:, :, None, 0] - x2[:, None, :, 0]).square_()
    for i in range(1, x1.shape[-1]):
        out += (x1[:, :, None, i] - x2[:, None, :, i]).square_()
    return out


def eq_kernel(x1: Tensor, x2: Tensor, lengthscale: float | Tensor) -> Tensor:
    """Isotropic EQ kernel ``exp(-|x - x'|^2 / (2 l^2))``, ``[batch, n, m]``; ``l`` scalar or ``[batch]``."""
    ls = torch.as_tensor(lengthscale, dtype=x1.dtype, device=x1.device)
    if ls.dim() == 1:
        ls = ls[:, None, None]
    return _exp_(sq_dist(x1, x2).mul_(-0.5 / ls**2))


def _is_long(x: Tensor, changepoint: float | Tensor, long_on_left: bool | Tensor) -> Tensor:
    """Where the step field takes its long value, ``[batch, n]`` bool for ``x [batch, n, 1]``."""
    c = torch.as_tensor(changepoint, dtype=x.dtype, device=x.device)
    left = torch.as_tensor(long_on_left, dtype=torch.bool, device=x.device)
    if c.dim() == 1:
        c = c[:, None]
    if left.dim() == 1:
        left = left[:, None]
    return (x[..., 0] < c) == left


def gibbs_lengthscale(
    x: Tensor,
    changepoint: float | Tensor,
    long_on_left: bool | Tensor,
    long_lengthscale: float = 4.0,
    short_lengthscale: float = 0.1,
) -> Tensor:
    """Step lengthscale field ``l(x) [batch, n]`` at 1-D inputs ``x [batch, n, 1]``.

    ``changepoint`` and ``long_on_left`` are scalars or per-task ``[batch]`` tensors; l(x) is the long
    value for x < c when ``long_on_left`` (x >= c otherwise) and the short value elsewhere.
    """
    is_long = _is_long(x, changepoint, long_on_left)
    long = torch.tensor(long_lengthscale, dtype=x.dtype, device=x.device)
    return torch.where(is_long, long, torch.tensor(short_lengthscale, dtype=x.dtype, device=x.device))


def gibbs_kernel_from_lengthscales(x1: Tensor, x2: Tensor, l1: Tensor, l2: Tensor) -> Tensor:
    """1-D Gibbs kernel ``[batch, n, m]`` from lengthscales ``l1 [batch, n]`` at x1, ``l2 [batch, m]`` at x2.

    k(x, x') = sqrt(2 l(x) l(x') / (l(x)^2 + l(x')^2)) * exp(-(x - x')^2 / (l(x)^2 + l(x')^2)).
    """
    inv_denom = (l1.square()[:, :, None] + l2.square()[:, None, :]).reciprocal_()
    prefactor = (l1[:, :, None] * l2[:, None, :]).mul_(inv_denom).mul_(2.0).sqrt_()
    return _exp_(sq_dist(x1, x2).mul_(inv_denom).neg_()).mul_(prefactor)


def _gibbs_from_indicators(d2: Tensor, u1: Tensor, u2: Tensor, long: float, short: float) -> Tensor:
    """Step-field Gibbs kernel from squared distances ``d2`` and long-side indicators (0/1 floats).

    Shapes broadcast: ``d2 [..., n, m]``, ``u1 [..., n, 1]``, ``u2 [..., 1, m]``.
    """

    # This runs on every sampled batch, so it avoids the general formula's sqrt and divisions over
    # [batch, n, m]: with a two-valued field, 1 / (l^2 + l'^2) and the log prefactor depend only on
    # the indicators u, u' in {0, 1} of "l is long", and any symmetric f(u, u') on {0, 1}^2 is
    # bilinear, f = f00 + (f01 - f00)(u + u') + (f11 - 2 f01 + f00) u u' = row(u) + slope(u) u'.
    # All work happens in one output buffer: fresh large allocations cost page faults that rival
    # the arithmetic.
    def row_slope(f00: float, f01: float, f11: float) -> tuple[Tensor, Tensor]:
        return f00 + (f01 - f00) * u1, (f01 - f00) + (f11 - 2 * f01 + f00) * u1

    def inv_denom(a: float, b: float) -> float:
        return 1.0 / (a**2 + b**2)

    log_pref_mixed = 0.5 * math.log(2 * long * short / (long**2 + short**2))
    out = torch.addcmul(
        *row_slope(inv_denom(short, short), inv_denom(short, long), inv_denom(long, long)), u2
    )
    out.mul_(d2).neg_()
    pref_row, pref_slope = row_slope(0.0, log_pref_mixed, 0.0)
    out.add_(pref_row).addcmul_(pref_slope, u2)
    return _exp_(out)


def gibbs_kernel(
    x1: Tensor,
    x2: Tensor,
    changepoint: float | Tensor,
    long_on_left: bool | Tensor,
    long_lengthscale: float = 4.0,
    short_lengthscale: float = 0.1,
) -> Tensor:
    """The paper's 1-D Gibbs kernel with a step lengthscale, ``[batch, n, m]`` for ``x [batch, n, 1]``.

    Same values as ``gibbs_kernel_from_lengthscales`` on ``gibbs_lengthscale``, several times faster.
    """
    u1 = _is_long(x1, changepoint, long_on_left).to(x1.dtype)[:, :, None]
    u2 = _is_long(x2, changepoint, long_on_left).to(x1.dtype)[:, None, :]
    return _gibbs_from_indicators(sq_dist(x1, x2), u1, u2, long_lengthscale, short_lengthscale)


def gibbs_kernel_by_index(
    x1: Tensor,
    x2: Tensor,
    index: Tensor,
    long_lengthscale: float = 4.0,
    short_lengthscale: float = 0.1,
    table: tuple[tuple[float, bool], ...] = GIBBS_KERNELS,
) -> Tensor:
    """Gibbs kernel ``[batch, n, m]``; task i uses row ``index[i]`` of ``table`` (changepoint, long_left)."""
    table_c = torch.tensor([c for c, _ in table], dtype=x1.dtype, device=x1.device)
    table_left = torch.tensor([left for _, left in table], dtype=torch.bool, device=x1.device)
    index = index.to(x1.device)
    return gibbs_kernel(x1, x2, table_c[index], table_left[index], long_lengthscale, short_lengthscale)


def gibbs_kernel_all(
    x1: Tensor,
    x2: Tensor,
    long_lengthscale: float = 4.0,
    short_lengthscale: float = 0.1,
    table: tuple[tuple[float, bool], ...] = GIBBS_KERNELS,
) -> Tensor:
    """Every Gibbs kernel of ``table`` for every task at once, ``[len(table), batch, n, m]``."""
    # The distances are shared by all kernels: computed once, broadcast over the table.
    c = torch.tensor([c for c, _ in table], dtype=x1.dtype, device=x1.device)[:, None, None]
    left = torch.tensor([left for _, left in table], dtype=torch.bool, device=x1.device)[:, None, None]
    u1 = ((x1[None, :, :, 0] < c) == left).to(x1.dtype)[..., None]
    u2 = ((x2[None, :, :, 0] < c) == left).to(x1.dtype)[..., None, :]
    return _gibbs_from_indicators(sq_dist(x1, x2), u1, u2, long_lengthscale, short_lengthscale)


def _anisotropic_parts(
    iso_lengthscale: float, aniso_lengthscales: tuple[float, float], theta: float
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Entries (a, b, c) of [[a, b], [b, c]] for S_iso = l_iso^2 I and D = S_aniso - S_iso."""
    cos, sin = math.cos(theta), math.sin(theta)
    v1, v2 = aniso_lengthscales[0] ** 2, aniso_lengthscales[1] ** 2
    iso = iso_lengthscale**2
    aniso = (cos**2 * v1 + sin**2 * v2, cos * sin * (v1 - v2), sin**2 * v1 + cos**2 * v2)
    return (iso, 0.0, iso), (aniso[0] - iso, aniso[1], aniso[2] - iso)


def anisotropic_switch(x: Tensor, switch_at: float = 0.0, switch_width: float = 0.2) -> Tensor:
    """Logistic switch ``s(x) = sigmoid((x_1 - switch_at) / switch_width)``, ``[batch, n]``."""
    return torch.sigmoid((x[..., 0] - switch_at) / switch_width)


def anisotropic_lengthscale_matrix(
    x: Tensor,
    iso_lengthscale: float = 0.5,
    aniso_lengthscales: tuple[float, float] = (1.5, 0.25),
    theta: float = 0.0,
    switch_at: float = 0.0,
    switch_width: float = 0.2,
) -> Tensor:
    """Lengthscale matrix field ``S(x) [batch, n, 2, 2]`` at 2-D inputs ``x [batch, n, 2]``.

    S(x) = (1 - s) l_iso^2 I + s R(theta) diag(l1^2, l2^2) R(theta)^T with the logistic switch
    s = sigmoid((x_1 - switch_at) / switch_width): isotropic left of the switch, anisotropic right.
    """
    s = anisotropic_switch(x, switch_at, switch_width)[..., None, None]
    iso, diff = _anisotropic_parts(iso_lengthscale, aniso_lengthscales, theta)
    as_matrix = [[iso[0], iso[1]], [iso[1], iso[2]]], [[diff[0], diff[1]], [diff[1], diff[2]]]
    s0, d = (torch.tensor(m, dtype=x.dtype, device=x.device) for m in as_matrix)
    return s0 + s * d


def paciorek_kernel(x1: Tensor, x2: Tensor, s1: Tensor, s2: Tensor) -> Tensor:
    """2-D Paciorek kernel ``[batch, n, m]`` from lengthscale matrices ``s1 [batch, n, 2, 2]``, ``s2``.

    k(x, x') = |S|^{1/4} |S'|^{1/4} |(S + S')/2|^{-1/2} exp(-(x - x')^T (S + S')^{-1} (x - x'))
    with S = S(x), S' = S(x'). This is Paciorek's kernel for the field 2 S(x), hence PSD for any field
    of SPD matrices, and it reduces to the EQ kernel with lengthscale l when S = l^2 I everywhere.
    """
    # Closed-form 2x2 algebra: batched torch.linalg calls on [batch, n, m, 2, 2] are far slower.
    a1, b1, c1 = s1[..., 0, 0][:, :, None], s1[..., 0, 1][:, :, None], s1[..., 1, 1][:, :, None]
    a2, b2, c2 = s2[..., 0, 0][:, None, :], s2[..., 0, 1][:, None, :], s2[..., 1, 1][:, None, :]
    root1 = (a1 * c1 - b1**2) ** 0.25
    root2 = (a2 * c2 - b2**2) ** 0.25
    qa, qb, qc = a1 + a2, b1 + b2, c1 + c2
    det_q = qa * qc - qb**2
    dx = x1[:, :, None, 0] - x2[:, None, :, 0]
    dy = x1[:, :, None, 1] - x2[:, None, :, 1]
    quad = (qc * dx**2 - 2 * qb * dx * dy + qa * dy**2) / det_q
    # |(S + S')/2|^{-1/2} = 2 |S + S'|^{-1/2} in two dimensions.
    return 2 * root1 * root2 / torch.sqrt(det_q) * _exp_(-quad)


def anisotropic_kernel(
    x1: Tensor,
    x2: Tensor,
    iso_lengthscale: float = 0.5,
    aniso_lengthscales: tuple[float, float] = (1.5, 0.25),
    theta: float = 0.0,
    switch_at: float = 0.0,
    switch_width: float = 0.2,
) -> Tensor:
    """Non-stationary 2-D kernel of gp-2d-anisotropic, ``[batch, n, m]`` for ``x [batch, n, 2]``.

    ``paciorek_kernel`` on ``anisotropic_lengthscale_matrix``, computed several times faster.
    """
    # S(x) = S0 + s(x) D is affine in the scalar switch s, so with sigma = s + s':
    #   S + S' = 2 S0 + sigma D,  |S + S'| = alpha + beta sigma + gamma sigma^2,
    #   d^T adj(S + S') d = P0(d) + sigma P1(d)  (P0, P1 fixed quadratic forms),
    # which needs four [batch, n, m] buffers instead of a dozen temporaries (fresh large
    # allocations cost page faults that rival the arithmetic).
    (a0, b0, c0), (da, db, dc) = _anisotropic_parts(iso_lengthscale, aniso_lengthscales, theta)
    s1 = anisotropic_switch(x1, switch_at, switch_width)
    s2 = s1 if x2 is x1 else anisotropic_switch(x2, switch_at, switch_width)
    alpha = 4 * (a0 * c0 - b0**2)
    beta = 2 * (a0 * dc + c0 * da - 2 * b0 * db)
    gamma = da * dc - db**2

    def root_det(s: Tensor) -> Tensor:  # |S(x)|^{1/4}, from |2 S| = alpha + beta (2 s) + gamma (2 s)^2
        return ((alpha + 2 * s * (beta + 2 * gamma * s)) / 4) ** 0.25

    dx = x1[:, :, None, 0] - x2[:, None, :, 0]
    dy = x1[:, :, None, 1] - x2[:, None, :, 1]
    dxdy = dx * dy
    dx.square_()
    dy.square_()
    quad = (dx * (2 * c0)).add_(dxdy, alpha=-4 * b0).add_(dy, alpha=2 * a0)  # P0
    p1 = dx.mul_(dc).add_(dxdy, alpha=-2 * db).add_(dy, alpha=da)
    sigma = torch.add(s1[:, :, None], s2[:, None, :], out=dy)
    quad.addcmul_(sigma, p1)
    det_q = torch.mul(sigma, gamma, out=dxdy).add_(beta).mul_(sigma).add_(alpha)
    quad.div_(det_q)
    # |(S + S')/2|^{-1/2} = 2 |S + S'|^{-1/2} in two dimensions.
    prefactor = det_q.rsqrt_().mul_(2 * root_det(s1)[:, :, None]).mul_(root_det(s2)[:, None, :])
    return _exp_(quad.neg_()).mul_(prefactor)
