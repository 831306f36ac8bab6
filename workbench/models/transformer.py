"""Transformer NPs: TE-TNP (translation-equivariant attention) and a plain TNP with absolute positions."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from workbench.models.base import NeuralProcess, mask_or_ones
from workbench.nn.attention import TransformerLayer
from workbench.nn.fixed_inputs import FixedInputs
from workbench.nn.likelihood import HeteroscedasticNormal
from workbench.nn.mlp import MLP


class TransformerNP(NeuralProcess):
    """Context tokens from ``y`` (TE) or ``(x, y)`` (plain); targets cross-attend; MLP -> Gaussian.

    With ``equivariant=True`` positions enter only as differences inside the attention logits,
    so the model is translation-equivariant; ``fixed`` adds ``W t(x_c)`` to the context tokens
    once, before the first layer, as in the paper.
    """

    def __init__(
        self,
        dim_x: int,
        dim_y: int,
        *,
        d_model: int = 64,
        heads: int = 4,
        depth: int = 4,
        equivariant: bool = True,
        fixed: FixedInputs | None = None,
    ) -> None:
        super().__init__()
        self.equivariant = equivariant
        n_pos = 0 if equivariant else dim_x
        self.embed_c = MLP(n_pos + dim_y, d_model, hidden=d_model, layers=1)
        self.embed_t = MLP(n_pos + 1, d_model, hidden=d_model, layers=1)
        self.fixed = fixed
        self.embed_fixed = None if fixed is None else nn.Linear(fixed.n_channels, d_model, bias=False)
        self.layers = nn.ModuleList(
            TransformerLayer(d_model, heads, dim_x if equivariant else None) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = MLP(d_model, 2 * dim_y, hidden=d_model, layers=1)
        self.likelihood = HeteroscedasticNormal()

    def forward(
        self, xc: Tensor, yc: Tensor, xt: Tensor, mask_c: Tensor | None = None, *, fixed_inputs: bool = True
    ) -> Normal:
        """``xc [b, nc, dx]``, ``yc [b, nc, dy]``, ``xt [b, nt, dx]`` -> Normal ``[b, nt, dy]``."""
        mask_c = mask_or_ones(xc, mask_c)
        ones_t = xt.new_ones(*xt.shape[:2], 1)
        if self.equivariant:
            zc, zt = self.embed_c(yc), self.embed_t(ones_t)
            pos_c, pos_t = xc, xt
        else:
            zc = self.embed_c(torch.cat([xc, yc], -1))
            zt = self.embed_t(torch.cat([xt, ones_t], -1))
            pos_c = pos_t = None
        if self.fixed is not None:
            zc = zc + self.embed_fixed(self.fixed(xc, enabled=fixed_inputs))
        for layer in self.layers:
            zc, zt = layer(zc, zt, mask_c, pos_c, pos_t)
        return self.likelihood(self.head(self.norm(zt)))
