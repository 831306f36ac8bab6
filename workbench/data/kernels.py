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
    return sq_dist(x1, x2).mul_(-0.5 / ls**2).exp_()


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
    return torch.where(is_long, long_lengthscale, short_lengthscale).to(x.dtype)


def gibbs_kernel_from_lengthscales(x1: Tensor, x2: Tensor, l1: Tensor, l2: Tensor) -> Tensor:
    """1-D Gibbs kernel ``[batch, n, m]`` from lengthscales ``l1 [batch, n]`` at x1, ``l2 [batch, m]`` at x2.

    k(x, x') = sqrt(2 l(x) l(x') / (l(x)^2 + l(x')^2)) * exp(-(x - x')^2 / (l(x)^2 + l(x')^2)).
    """
    inv_denom = (l1.square()[:, :, None] + l2.square()[:, None, :]).reciprocal_()
    prefactor = (l1[:, :, None] * l2[:, None, :]).mul_(inv_denom).mul_(2.0).sqrt_()
    return sq_dist(x1, x2).mul_(inv_denom).neg_().exp_().mul_(prefactor)


def gibbs_kernel(
    x1: Tensor,
    x2: Tensor,
    changepoint: float | Tensor,
    long_on_left: bool | Tensor,
    long_lengthscale: float = 4.0,
    short_lengthscale: float = 0.1,
) -> Tensor:
    """The paper's 1-D Gibbs kernel with a step lengthscale, ``[batch, n, m]`` for ``x [batch, n, 1]``.

    Same values as ``gibbs_kernel_from_lengthscales`` on ``gibbs_lengthscale``, about 5x faster.
    """
    # This runs on every sampled batch, so it avoids the general formula's sqrt and divisions over
    # [batch, n, m]: with a two-valued field, 1 / (l^2 + l'^2) and log of the prefactor depend only
    # on the indicators u, u' in {0, 1} of "l is long", and any symmetric f(u, u') on {0, 1}^2 is
    # bilinear, f = f00 + (f01 - f00)(u + u') + (f11 - 2 f01 + f00) u u': one fused pass each.
    u1 = _is_long(x1, changepoint, long_on_left).to(x1.dtype)[:, :, None]
    u2 = _is_long(x2, changepoint, long_on_left).to(x1.dtype)[:, None, :]
    short, long = short_lengthscale, long_lengthscale

    def bilinear(f00: float, f01: float, f11: float) -> Tensor:
        return torch.addcmul(f00 + (f01 - f00) * u1, (f01 - f00) + (f11 - 2 * f01 + f00) * u1, u2)

    def inv_denom(a: float, b: float) -> float:
        return 1.0 / (a**2 + b**2)

    def log_prefactor(a: float, b: float) -> float:
        return 0.5 * math.log(2 * a * b / (a**2 + b**2))

    inv = bilinear(inv_denom(short, short), inv_denom(short, long), inv_denom(long, long))
    log_pref = bilinear(0.0, log_prefactor(short, long), 0.0)
    return torch.addcmul(log_pref, sq_dist(x1, x2), inv, value=-1.0).exp_()


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
    s = torch.sigmoid((x[..., 0] - switch_at) / switch_width)[..., None, None]
    cos, sin = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[cos, -sin], [sin, cos]], dtype=x.dtype, device=x.device)
    l1, l2 = aniso_lengthscales
    aniso = rot @ torch.diag(torch.tensor([l1**2, l2**2], dtype=x.dtype, device=x.device)) @ rot.T
    iso = iso_lengthscale**2 * torch.eye(2, dtype=x.dtype, device=x.device)
    return (1.0 - s) * iso + s * aniso


def paciorek_kernel(x1: Tensor, x2: Tensor, s1: Tensor, s2: Tensor) -> Tensor:
    """2-D Paciorek kernel ``[batch, n, m]`` from lengthscale matrices ``s1 [batch, n, 2, 2]``, ``s2``.

    k(x, x') = |S|^{1/4} |S'|^{1/4} |(S + S')/2|^{-1/2} exp(-(x - x')^T (S + S')^{-1} (x - x'))
    with S = S(x), S' = S(x'). This is Paciorek's kernel for the field 2 S(x), hence PSD for any field
    of SPD matrices, and it reduces to the EQ kernel with lengthscale l when S = l^2 I everywhere.
    """
    # Closed-form 2x2 algebra with in-place ops: batched torch.linalg calls on [batch, n, m, 2, 2]
    # are far slower.
    a1, b1, c1 = s1[..., 0, 0][:, :, None], s1[..., 0, 1][:, :, None], s1[..., 1, 1][:, :, None]
    a2, b2, c2 = s2[..., 0, 0][:, None, :], s2[..., 0, 1][:, None, :], s2[..., 1, 1][:, None, :]
    root1 = (a1 * c1 - b1**2) ** 0.25
    root2 = (a2 * c2 - b2**2) ** 0.25
    qa, qb, qc = a1 + a2, b1 + b2, c1 + c2
    det_q = torch.addcmul(qa * qc, qb, qb, value=-1.0)
    dx = x1[:, :, None, 0] - x2[:, None, :, 0]
    dy = x1[:, :, None, 1] - x2[:, None, :, 1]
    quad = qc.mul_(dx.square())
    quad.add_(qb.mul_(dx).mul_(dy), alpha=-2.0)
    quad.addcmul_(qa, dy.square_())
    quad.div_(det_q)
    # |(S + S')/2|^{-1/2} = 2 |S + S'|^{-1/2} in two dimensions.
    prefactor = det_q.rsqrt_().mul_(2.0 * root1).mul_(root2)
    return quad.neg_().exp_().mul_(prefactor)


def anisotropic_kernel(
    x1: Tensor,
    x2: Tensor,
    iso_lengthscale: float = 0.5,
    aniso_lengthscales: tuple[float, float] = (1.5, 0.25),
    theta: float = 0.0,
    switch_at: float = 0.0,
    switch_width: float = 0.2,
) -> Tensor:
    """Non-stationary 2-D kernel of gp-2d-anisotropic, ``[batch, n, m]`` for ``x [batch, n, 2]``."""
    args = (iso_lengthscale, aniso_lengthscales, theta, switch_at, switch_width)
    s1 = anisotropic_lengthscale_matrix(x1, *args)
    s2 = s1 if x2 is x1 else anisotropic_lengthscale_matrix(x2, *args)
    return paciorek_kernel(x1, x2, s1, s2)
