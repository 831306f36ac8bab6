"""A translation-equivariant distribution over shifts given a context set, p(g | D) for g in T(d).

Probabilistic symmetrisation (Kim et al., NeurIPS 2023) averages a free model over group elements
drawn from such a distribution. For translations it must satisfy p(g + tau | D + tau) = p(g | D):
shifting the context by tau shifts the distribution by tau. Here

    g = m(D) + sigma * eps,   m(D) = sum_i w_i x_i,   w = softmax_i(MLP(y_i, x_i - xbar)),   eps ~ N(0, I)

with ``xbar`` the context centroid. The weights see only the values and the positions relative to the
centroid, both unchanged by a shift, so they are invariant and the weighted mean moves with the
context: m(D + tau) = m(D) + tau exactly (up to float rounding), and so does every draw made with the
same ``eps``. The noise is reparameterised (g is a differentiable function of the weights and of
``sigma``), so the training loss reaches the sampler's parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.nn.mlp import MLP

#: Initial noise scale sigma (model units, each axis): a little jitter around the weighted mean.
INIT_SCALE = 0.1


class ShiftSampler(nn.Module):
    """p(g | D) over shifts of ``dim_x``-dimensional inputs: an invariant weighting plus learned noise."""

    def __init__(self, dim_x: int, dim_y: int, hidden: int = 32, init_scale: float = INIT_SCALE) -> None:
        super().__init__()
        self.dim_x = dim_x
        self.weights = MLP(dim_y + dim_x, 1, hidden=hidden, layers=2)
        # softplus^-1(init_scale): sigma = softplus(raw) stays positive with a smooth gradient.
        raw = torch.log(torch.expm1(torch.tensor(float(init_scale))))
        self.raw_scale = nn.Parameter(raw.repeat(dim_x))

    @property
    def scale(self) -> Tensor:
        """The noise scale sigma per input axis, ``[dim_x]``."""
        return F.softplus(self.raw_scale)

    def mean(self, xc: Tensor, yc: Tensor, mask_c: Tensor) -> tuple[Tensor, Tensor]:
        """The equivariant centre m(D) ``[b, dx]`` (0 where a task has no context point) and which
        tasks have one, ``[b]``; ``xc [b, nc, dx]``, ``yc [b, nc, dy]``, ``mask_c [b, nc]``."""
        has = mask_c.any(-1)
        if xc.shape[1] == 0:
            return xc.new_zeros(xc.shape[0], xc.shape[-1]), has
        m = mask_c[..., None].to(xc.dtype)
        # Select, do not multiply: padding may hold anything (0 * NaN is NaN).
        xc = torch.where(mask_c[..., None], xc, torch.zeros((), dtype=xc.dtype, device=xc.device))
        yc = torch.where(mask_c[..., None], yc, torch.zeros((), dtype=yc.dtype, device=yc.device))
        centroid = (xc * m).sum(1) / m.sum(1).clamp_min(1.0)
        logits = self.weights(torch.cat([yc, xc - centroid[:, None]], -1))[..., 0]
        logits = logits.masked_fill(~mask_c, float("-inf"))
        # A task without context points would softmax over all -inf (NaN): give it zeros instead.
        w = torch.softmax(torch.where(has[:, None], logits, 0.0), -1) * m[..., 0]
        return torch.where(has[:, None], (w[..., None] * xc).sum(1), 0.0), has

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
        """``n`` shifts per task, ``[n, b, dx]``, with the noise they used ``[n, b or 1, dx]`` and which
        tasks have context points ``[b]``.

        ``shared``: one set of ``n`` noise draws for every task of the batch (``[n, 1, dx]``), so a
        task's shifts do not depend on which batch it is in or where; otherwise independent per task.
        """
        centre, has = self.mean(xc, yc, mask_c)
        rows = 1 if shared else xc.shape[0]
        eps = torch.randn(n, rows, self.dim_x, generator=generator, device=xc.device, dtype=xc.dtype)
        return centre + self.scale.to(xc.dtype) * eps, eps, has
