"""Heteroscedastic Gaussian likelihood: the decoder's raw outputs become a Normal."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Normal


class HeteroscedasticNormal(nn.Module):
    """``raw [b, nt, 2 dy]`` -> ``Normal(mu, sqrt(softplus(s)) + min_noise)``, each ``[b, nt, dy]``."""

    def __init__(self, min_noise: float = 1e-3) -> None:
        super().__init__()
        self.min_noise = min_noise

    def forward(self, raw: Tensor) -> Normal:  # noqa: D102
        mu, s = raw.chunk(2, dim=-1)
        # No argument validation: it costs time every step; the trainer catches NaNs with a clearer error.
        return Normal(mu, F.softplus(s).sqrt() + self.min_noise, validate_args=False)
