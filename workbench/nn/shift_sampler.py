"""An equivariant distribution over group elements given a context set, p(g | D), for translations and
translations with a point group (reflections of the line, rotations and reflections of the plane).

Probabilistic symmetrisation (Kim et al., NeurIPS 2023) averages a free model over group elements
drawn from such a distribution. It must satisfy p(h g | h D) = p(g | D): moving the context by h moves
the distribution by h. An element here is g = (A, m + A (sigma * eps)), acting as x -> A x + offset:

    m(D) = sum_i w_i x_i,   w = softmax_i(MLP_w(y_i, r_i)),   eps ~ N(0, I) (reparameterised),
    p(A_k | D) = softmax_k(kappa * (A_k^T v)_1),   v = sum_i u_i (x_i - m),   u_i = MLP_u(y_i, r_i),

with ``xbar`` the context centroid and r_i = x_i - xbar for translations alone, |x_i - xbar| when there is a
point group (so that the weights are invariant to it as well). Moving the context by h = (L, t): the
weights do not change, m -> L m + t and v -> L v, so p(A_k | hD) = p(L^-1 A_k | D); the noise is applied
in the frame of A, so the frame g^-1 . x = A^T (x - m) - sigma * eps of the moved data is the frame of
the data: draws with the same ``eps`` give exactly the same canonical data (up to float rounding).
The weights over the point group (a few elements) are enumerated exactly, not sampled, so the training
loss reaches ``kappa`` and ``MLP_u`` through the mixture weights and the rest through the positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.nn.mlp import MLP

#: Initial noise scale sigma (model units, each axis): a little jitter around the weighted mean.
INIT_SCALE = 0.1


class ShiftSampler(nn.Module):
    """p(g | D) over the elements of a group with translations acting on ``dim_x``-dimensional inputs.

    ``point [k, d, d]``: the group's point group (its linear parts, ``Group.point_matrices``); None is
    translations alone. Shifts: an invariant weighting of the context plus learned noise; point group:
    weights ``[b, k]`` from an equivariant vector of the context (see the module docstring).
    """

    def __init__(
        self,
        dim_x: int,
        dim_y: int,
        point: Tensor | None = None,
        hidden: int = 32,
        init_scale: float = INIT_SCALE,
    ) -> None:
        super().__init__()
        self.dim_x = dim_x
        point = torch.eye(dim_x)[None] if point is None else point.detach().clone().float()
        if point.shape[1:] != (dim_x, dim_x):
            raise ValueError(f"point matrices {tuple(point.shape)} must be [k, {dim_x}, {dim_x}]")
        self.register_buffer("point", point, False)
        # With a point group the weights may see only distances to the centroid (invariant to it too).
        self.rotates = point.shape[0] > 1
        n_rel = 1 if self.rotates else dim_x
        self.weights = MLP(dim_y + n_rel, 2 if self.rotates else 1, hidden=hidden, layers=2)
        # softplus^-1(init_scale): sigma = softplus(raw) stays positive with a smooth gradient.
        raw = torch.log(torch.expm1(torch.tensor(float(init_scale))))
        self.raw_scale = nn.Parameter(raw.repeat(dim_x))
        #: How sharply the point-group weights prefer the elements that turn v towards the first axis.
        self.kappa = nn.Parameter(torch.ones(())) if self.rotates else None

    @property
    def scale(self) -> Tensor:
        """The noise scale sigma per input axis (of the canonical frame), ``[dim_x]``."""
        return F.softplus(self.raw_scale)

    def _weighted(self, xc: Tensor, yc: Tensor, mask_c: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Clean context ``[b, nc, dx]``, shift weights w ``[b, nc]`` (summing to 1 where a task has
        context points), orientation weights u ``[b, nc]`` (zeros without a point group), has ``[b]``."""
        has = mask_c.any(-1)
        # Select, do not multiply: padding may hold anything (0 * NaN is NaN).
        zero = torch.zeros((), dtype=xc.dtype, device=xc.device)
        xc = torch.where(mask_c[..., None], xc, zero)
        yc = torch.where(mask_c[..., None], yc, zero.to(yc.dtype))
        m = mask_c[..., None].to(xc.dtype)
        centroid = (xc * m).sum(1) / m.sum(1).clamp_min(1.0)
        rel = xc - centroid[:, None]
        if self.rotates:
            # sqrt of a clamped square: no NaN gradient at a point on the centroid.
            rel = (rel**2).sum(-1, keepdim=True).clamp_min(1e-12).sqrt()
        out = self.weights(torch.cat([yc, rel], -1))
        logits = out[..., 0].masked_fill(~mask_c, float("-inf"))
        # A task without context points would softmax over all -inf (NaN): give it zeros instead.
        w = torch.softmax(torch.where(has[:, None], logits, 0.0), -1) * m[..., 0]
        u = out[..., 1] * m[..., 0] if self.rotates else torch.zeros_like(w)
        return xc, w, u, has

    def mean(self, xc: Tensor, yc: Tensor, mask_c: Tensor) -> tuple[Tensor, Tensor]:
        """The equivariant centre m(D) ``[b, dx]`` (0 where a task has no context point) and which
        tasks have one, ``[b]``; ``xc [b, nc, dx]``, ``yc [b, nc, dy]``, ``mask_c [b, nc]``."""
        if xc.shape[1] == 0:
            return xc.new_zeros(xc.shape[0], xc.shape[-1]), mask_c.any(-1)
        xc, w, _, has = self._weighted(xc, yc, mask_c)
        return torch.where(has[:, None], (w[..., None] * xc).sum(1), 0.0), has

    def frame(self, xc: Tensor, yc: Tensor, mask_c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Centre m(D) ``[b, dx]``, the weights of the point group's elements ``[b, k]`` and which tasks
        have context points ``[b]``; uniform weights where the context gives no direction (v = 0)."""
        b, k = xc.shape[0], self.point.shape[0]
        if xc.shape[1] == 0:
            probs = xc.new_full((b, k), 1.0 / k)
            return xc.new_zeros(b, xc.shape[-1]), probs, mask_c.any(-1)
        xc, w, u, has = self._weighted(xc, yc, mask_c)
        centre = torch.where(has[:, None], (w[..., None] * xc).sum(1), 0.0)
        if not self.rotates:
            return centre, xc.new_ones(b, 1), has
        v = (u[..., None] * (xc - centre[:, None])).sum(1)  # [b, dx], moves with the point group
        # (A_k^T v)_1 for every element: how far A_k^-1 turns v towards the first axis.
        first = (v[:, None, None, :] @ self.point.to(v.dtype)[None])[..., 0, 0]  # [b, k]
        return centre, torch.softmax(self.kappa.to(v.dtype) * first, -1), has

    def noise(
        self,
        n: int,
        rows: int,
        *,
        device: torch.device,
        dtype: torch.dtype,
        generator: torch.Generator | None,
    ) -> Tensor:
        """Standard normal draws ``eps [n, rows, dx]`` (the reparameterisation's noise)."""
        return torch.randn(n, rows, self.dim_x, generator=generator, device=device, dtype=dtype)

    def sample(
        self,
        xc: Tensor,
        yc: Tensor,
        mask_c: Tensor,
        n: int,
        *,
        generator: torch.Generator | None = None,
        shared: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``n`` shifts per task (the offsets of the elements with A = identity), ``[n, b, dx]``, with
        the noise they used ``[n, b or 1, dx]`` and which tasks have context points ``[b]``.

        ``shared``: one set of ``n`` noise draws for every task of the batch (``[n, 1, dx]``), so a
        task's shifts do not depend on which batch it is in or where; otherwise independent per task.
        """
        centre, has = self.mean(xc, yc, mask_c)
        rows = 1 if shared else xc.shape[0]
        eps = self.noise(n, rows, device=xc.device, dtype=xc.dtype, generator=generator)
        return centre + self.scale.to(xc.dtype) * eps, eps, has
