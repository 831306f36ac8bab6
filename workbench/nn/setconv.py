"""SetConv: Gaussian-kernel interpolation between scattered points and a grid.

The grid has a fixed spacing and size and is placed per task by the model (see
:class:`workbench.models.conv.ConvCNP`): by default centred on the bounding box of the real context
points (:func:`context_centre`), so moving the data by any translation (or a grid-preserving
rotation or reflection) moves the grid with it and the discretisation never breaks the symmetry the
CNN respects, and the prediction at a target does not depend on which other targets were asked.
The older placement on the box of contexts *and* targets (:func:`data_centre`) is kept for
comparison: it is also equivariant, but the targets of a task fill their window, so its centre tells
the model roughly where the window is (absolute position), and predictions are not consistent.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: exp() of arguments that underflow takes a slow path on x86 CPUs (14x slower here); weights below
#: e^-60 are zero for every purpose, so the exponent is clamped there.
_MIN_LOG_WEIGHT = -60.0


def _inv_softplus(x: float) -> float:
    return math.log(math.expm1(x))


def context_centre(xc: Tensor, mask_c: Tensor) -> tuple[Tensor, Tensor]:
    """Centre of the bounding box of the real context points ``[batch, d]`` (0 where a task has
    none) and whether it has any, ``[batch]``.

    Depends on the context inputs only: a grid placed here moves with any translation of the
    context (and with a rotation by a multiple of 90 degrees or an axis reflection, which map the
    axis-aligned box to the box of the image), whatever targets are asked.
    """
    has = mask_c.any(-1) if xc.shape[1] else torch.zeros(xc.shape[0], dtype=torch.bool, device=xc.device)
    if xc.shape[1] == 0:
        return xc.new_zeros(xc.shape[0], xc.shape[-1]), has
    big = torch.finfo(xc.dtype).max
    m = mask_c[..., None]
    lo = xc.masked_fill(~m, big).amin(1)
    hi = xc.masked_fill(~m, -big).amax(1)
    return torch.where(has[:, None], (lo + hi) / 2, 0.0), has


def data_centre(xc: Tensor, mask_c: Tensor, xt: Tensor) -> Tensor:
    """Centre of the bounding box of real contexts and targets, ``[batch, d]`` (the ``"all"`` grid:
    the prediction at a target then depends on which other targets were asked)."""
    lo, hi = xt.amin(1), xt.amax(1)
    if xc.shape[1] > 0:
        big = torch.finfo(xc.dtype).max
        m = mask_c[..., None]
        lo = torch.minimum(xc.masked_fill(~m, big).amin(1), lo)
        hi = torch.maximum(xc.masked_fill(~m, -big).amax(1), hi)
    return (lo + hi) / 2


def make_grid(centre: Tensor, n: int, spacing: float) -> Tensor:
    """A square grid of ``n`` points per axis around ``centre [batch, d]``: ``[batch, n, ..., n, d]``."""
    b, d = centre.shape
    k = (torch.arange(n, dtype=centre.dtype, device=centre.device) - (n - 1) / 2) * spacing
    axes = torch.meshgrid(*([k] * d), indexing="ij")
    offsets = torch.stack(axes, dim=-1)  # [n, ..., n, d]
    return centre.view(b, *([1] * d), d) + offsets


class SetConv(nn.Module):
    """Gaussian weights between two point sets with a learnable length scale (one per input dim,
    or one shared when ``isotropic``, which keeps the map rotation-equivariant)."""

    def __init__(self, dim: int, lengthscale: float = 0.1, isotropic: bool = False) -> None:
        super().__init__()
        self.dim = dim
        n = 1 if isotropic else dim
        self.raw_lengthscale = nn.Parameter(torch.full((n,), _inv_softplus(lengthscale)))

    @property
    def lengthscale(self) -> Tensor:
        """Current length scale, ``[1]`` or ``[d]``."""
        return F.softplus(self.raw_lengthscale)

    def weights(self, x_out: Tensor, x_in: Tensor) -> Tensor:
        """Kernel weights ``[batch, m, n]`` between ``x_out [batch, m, d]`` and ``x_in [batch, n, d]``."""
        scale = self.lengthscale.to(x_out.dtype)
        if (scale.numel() == 1 or self.dim == 1) and not (x_out.requires_grad or x_in.requires_grad):
            # Positions carry no gradient, only the length scale does: squared distances stay off the
            # autograd graph, which leaves one multiply and one exp to differentiate (the hot path).
            # Clamping the distances here (at the current length scale) keeps the clamp off the graph too.
            with torch.no_grad():
                d2 = (x_out[:, :, None, :] - x_in[:, None, :, :]).square().sum(-1)
                d2.clamp_(max=-2 * _MIN_LOG_WEIGHT * float(scale.max()) ** 2)
            return torch.exp(d2 * (-0.5 / scale.square()))
        diff = x_out[:, :, None, :] / scale - x_in[:, None, :, :] / scale
        return torch.exp((-0.5 * diff.square().sum(-1)).clamp(min=_MIN_LOG_WEIGHT))

    def axis_weights(self, points: Tensor, axes: list[Tensor]) -> list[Tensor]:
        """Per-dimension factors ``[batch, m, n_k]`` of the weights between ``points [batch, m, d]`` and the
        product grid with axes ``[batch, n_k]``: the Gaussian factorises, so d small exps replace one big one.
        """
        return [self.axis_factor(points[:, :, k], axis, k) for k, axis in enumerate(axes)]

    def axis_factor(self, t: Tensor, axis: Tensor, k: int) -> Tensor:
        """Weight factor ``[batch, m, n]`` of dimension ``k``: ``t [batch, m]`` vs ``axis [batch, n]``."""
        scale = self.lengthscale.to(t.dtype).expand(self.dim)[k]
        # Each factor is clamped at half the budget so their product stays above e^-60.
        cap = -_MIN_LOG_WEIGHT * float(scale.detach()) ** 2
        if t.requires_grad or axis.requires_grad:
            # Points that carry a gradient (symmetrisation's learned frames): the factors are small
            # ([b, m, n_k]), so keeping them on the graph is far cheaper than the dense weights.
            d2 = (t[:, :, None] - axis[:, None, :]).square().clamp(max=cap)
        else:
            with torch.no_grad():
                d2 = (t[:, :, None] - axis[:, None, :]).square()
                d2.clamp_(max=cap)
        return torch.exp(d2 * (-0.5 / scale.square()))


def grid_axes(grid: Tensor) -> list[Tensor] | None:
    """Axes ``[batch, n_k]`` of a 2-D product grid ``[batch, n1, n2, 2]``, else None (dense weights)."""
    if grid.dim() != 4 or grid.shape[-1] != 2 or grid.requires_grad:
        return None
    return [grid[:, :, 0, 0], grid[:, 0, :, 1]]


class SetConvEncoder(nn.Module):
    """Context set -> grid features: data channels normalised by a density channel."""

    def __init__(self, dim: int, lengthscale: float, isotropic: bool = False) -> None:
        super().__init__()
        self.setconv = SetConv(dim, lengthscale, isotropic)

    def forward(self, xc: Tensor, yc: Tensor, mask_c: Tensor, grid: Tensor) -> Tensor:
        """``xc [b, nc, d]``, ``yc [b, nc, dy]``, ``grid [b, n.., d]`` -> ``[b, n.., dy + 1]``."""
        b, d = grid.shape[0], grid.shape[-1]
        axes = grid_axes(grid)
        if axes is not None:
            # Separable: w[b, i, j, c] = w1[b, i, c] * w2[b, j, c]; the context mask rides on w1.
            w1, w2 = self.setconv.axis_weights(xc, axes)  # [b, nc, n1], [b, nc, n2]
            w1 = w1 * mask_c[:, :, None].to(xc.dtype)
            ones = torch.ones_like(yc[..., :1])
            vals = torch.cat([yc, ones], -1)  # [b, nc, dy + 1]
            # [b, dy+1, n1, nc] @ [b, 1, nc, n2] -> [b, dy+1, n1, n2]
            left = w1.transpose(1, 2)[:, None] * vals.transpose(1, 2)[:, :, None, :]
            out = (left @ w2[:, None]).permute(0, 2, 3, 1)
            data, density = out[..., :-1], out[..., -1:]
            return torch.cat([data / (density + 1e-6), density], -1)
        flat = grid.reshape(b, -1, d)
        w = self.setconv.weights(flat, xc) * mask_c[:, None, :].to(xc.dtype)  # [b, G, nc]
        density = w.sum(-1, keepdim=True)
        data = (w @ yc) / (density + 1e-6)
        return torch.cat([data, density], -1).reshape(*grid.shape[:-1], -1)


class SetConvDecoder(nn.Module):
    """Grid features -> features at arbitrary targets, by normalised kernel interpolation."""

    def __init__(self, dim: int, lengthscale: float, isotropic: bool = False) -> None:
        super().__init__()
        self.setconv = SetConv(dim, lengthscale, isotropic)

    def forward(self, grid: Tensor, h: Tensor, xt: Tensor) -> Tensor:
        """``grid [b, n.., d]``, ``h [b, n.., c]``, ``xt [b, nt, d]`` -> ``[b, nt, c]``."""
        b, d = grid.shape[0], grid.shape[-1]
        axes = grid_axes(grid)
        if axes is not None:
            w1, w2 = self.setconv.axis_weights(xt, axes)  # [b, nt, n1], [b, nt, n2]
            n1, n2, c = h.shape[1], h.shape[2], h.shape[3]
            # Contract j first: [b, nt, n2] @ [b, n2, n1 * c] -> [b, nt, n1, c], then i against w1.
            inner = (w2 @ h.transpose(1, 2).reshape(b, n2, n1 * c)).view(b, -1, n1, c)
            return (w1[..., None] * inner).sum(2)
        w = self.setconv.weights(xt, grid.reshape(b, -1, d))  # [b, nt, G]
        return w @ h.reshape(b, -1, h.shape[-1])

    def on_grid(self, grid: Tensor, h: Tensor, t1: Tensor, t2: Tensor) -> Tensor:
        """Features on the product of target axes ``t1 [b, m1]`` x ``t2 [b, m2]`` -> ``[b, m1, m2, c]``.

        A map is such a product: the Gaussian factorises, so this costs two small matrix products
        (m1 n1 n2 c + m1 n2 m2 c) instead of one per target point (m1 m2 n1 n2 c / n1).
        """
        axes = grid_axes(grid)
        if axes is None:
            raise ValueError("on_grid needs a 2-D product grid [b, n1, n2, 2]")
        b, n1, n2, c = h.shape
        w1 = self.setconv.axis_factor(t1, axes[0], 0)  # [b, m1, n1]
        w2 = self.setconv.axis_factor(t2, axes[1], 1)  # [b, m2, n2]
        inner = (w1 @ h.reshape(b, n1, n2 * c)).view(b, -1, n2, c)  # [b, m1, n2, c]
        return torch.einsum("bqj,bpjc->bpqc", w2, inner)
