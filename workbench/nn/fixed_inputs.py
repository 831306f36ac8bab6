"""Fixed inputs: learnable functions of absolute position that break equivariance inside a box."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from workbench.nn.mlp import MLP
from workbench.task import Box


def inside_box(x: Tensor, box: Box) -> Tensor:
    """``1[x in box]`` for points ``x [..., d]`` -> ``[...]`` bool."""
    lo = x.new_tensor([b[0] for b in box])
    hi = x.new_tensor([b[1] for b in box])
    return ((x >= lo) & (x <= hi)).all(-1)


class FixedInputs(nn.Module):
    """``t(x) = 1[x in box] * MLP(x)``, ``B`` channels, with per-task dropout while training.

    ``dropout`` is the probability that a whole task sees ``t = 0`` (p = 1 - strength); at
    evaluation every task sees ``t``. The group acts on the data, never on these inputs, so they
    are what lets the model treat places differently.
    """

    def __init__(
        self,
        dim: int,
        n_channels: int,
        box: Box,
        dropout: float = 0.5,
        hidden: int = 64,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"fixed-input dropout must be in [0, 1], got {dropout}")
        self.dim, self.n_channels, self.box, self.dropout = dim, n_channels, tuple(box), dropout
        lo = torch.tensor([b[0] for b in box], dtype=torch.float32)
        hi = torch.tensor([b[1] for b in box], dtype=torch.float32)
        self.register_buffer("centre", (lo + hi) / 2, persistent=False)
        self.register_buffer("half_width", (hi - lo) / 2, persistent=False)
        self.mlp = MLP(dim, n_channels, hidden=hidden, layers=2)

    def features(self, x: Tensor) -> Tensor:
        """Position encoding fed to the MLP, from ``x [..., d]`` normalised to the box."""
        return (x - self.centre) / self.half_width

    def forward(self, x: Tensor, enabled: bool = True) -> Tensor:
        """Values at points ``x [b, n.., d]`` -> ``[b, n.., B]``; zeros when not ``enabled``."""
        shape = (*x.shape[:-1], self.n_channels)
        # p = 1 means the MLP never trains, so it must never be used: the model is strict.
        if not enabled or self.n_channels == 0 or self.dropout >= 1.0:
            return x.new_zeros(shape)
        t = self.mlp(self.features(x)) * inside_box(x, self.box)[..., None].to(x.dtype)
        if self.training and self.dropout > 0:
            keep = torch.rand(x.shape[0], device=x.device) >= self.dropout
            t = t * keep.view(-1, *([1] * (t.dim() - 1))).to(t.dtype)
        return t
