"""CNP (DeepSets): a mean of per-point embeddings, decoded with the target position."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Normal

from workbench.models.base import NeuralProcess, mask_or_ones
from workbench.nn.likelihood import HeteroscedasticNormal
from workbench.nn.mlp import MLP


class DeepSetsCNP(NeuralProcess):
    """``r = mean_i phi(x_i, y_i)``; ``(mu, sigma) = rho(r, x_t)``; absolute positions, no symmetry."""

    def __init__(self, dim_x: int, dim_y: int, *, width: int = 128, depth: int = 3) -> None:
        super().__init__()
        self.phi = MLP(dim_x + dim_y, width, hidden=width, layers=depth)
        self.rho = MLP(width + dim_x, 2 * dim_y, hidden=width, layers=depth)
        self.likelihood = HeteroscedasticNormal()

    def forward(
        self, xc: Tensor, yc: Tensor, xt: Tensor, mask_c: Tensor | None = None, *, fixed_inputs: bool = True
    ) -> Normal:
        """``xc [b, nc, dx]``, ``yc [b, nc, dy]``, ``xt [b, nt, dx]`` -> Normal ``[b, nt, dy]``."""
        m = mask_or_ones(xc, mask_c)[..., None].to(xc.dtype)
        # An empty context set gives r = 0 rather than 0 / 0.
        r = (self.phi(torch.cat([xc, yc], -1)) * m).sum(1) / m.sum(1).clamp(min=1)
        r = r[:, None, :].expand(-1, xt.shape[1], -1)
        return self.likelihood(self.rho(torch.cat([r, xt], -1)))
