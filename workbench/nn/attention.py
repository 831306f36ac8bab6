"""Multi-head attention, plain and translation-equivariant (TE): logits = MLP(per-head q.k, x_q - x_k)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from workbench.nn.mlp import MLP


def masked_softmax(logits: Tensor, mask_k: Tensor) -> Tensor:
    """Softmax over keys ``[b, h, nq, nk]`` ignoring masked keys; all-masked rows give zeros, not NaN."""
    m = mask_k[:, None, None, :]
    logits = logits.masked_fill(~m, torch.finfo(logits.dtype).min)
    return torch.softmax(logits, -1) * m.to(logits.dtype)


class Attention(nn.Module):
    """Multi-head attention ``zq [b, nq, D]`` over ``zk [b, nk, D]``; TE when ``dim_x`` is given."""

    def __init__(self, d_model: int, heads: int, dim_x: int | None = None, hidden: int = 32) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} must be divisible by heads {heads}")
        self.heads, self.d_head = heads, d_model // heads
        self.q = nn.Linear(d_model, d_model, bias=False)
        self.kv = nn.Linear(d_model, 2 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model)
        self.logit_mlp = None if dim_x is None else MLP(heads + dim_x, heads, hidden=hidden, layers=1)

    def forward(
        self,
        zq: Tensor,
        zk: Tensor,
        mask_k: Tensor,
        xq: Tensor | None = None,
        xk: Tensor | None = None,
    ) -> Tensor:
        """``zq [b, nq, D]``, ``zk [b, nk, D]``, ``mask_k [b, nk]`` (+ ``xq``, ``xk``) -> ``[b, nq, D]``."""
        b, nq, d = zq.shape
        nk = zk.shape[1]
        q = self.q(zq).view(b, nq, self.heads, self.d_head).transpose(1, 2)
        k, v = self.kv(zk).view(b, nk, 2, self.heads, self.d_head).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)  # [b, h, nq, nk]
        if self.logit_mlp is not None:
            # Only differences of positions enter, so shifting every input leaves attention unchanged.
            diff = xq[:, :, None, :] - xk[:, None, :, :]  # [b, nq, nk, dx]
            feats = torch.cat([logits.permute(0, 2, 3, 1), diff], -1)
            logits = self.logit_mlp(feats).permute(0, 3, 1, 2)
        att = masked_softmax(logits, mask_k)
        return self.out((att @ v).transpose(1, 2).reshape(b, nq, d))


class TransformerLayer(nn.Module):
    """Pre-norm layer: contexts self-attend, then targets cross-attend to the updated contexts."""

    def __init__(self, d_model: int, heads: int, dim_x: int | None) -> None:
        super().__init__()
        self.self_attn = Attention(d_model, heads, dim_x)
        self.cross_attn = Attention(d_model, heads, dim_x)
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(5))
        self.mlp_c = MLP(d_model, d_model, hidden=2 * d_model, layers=1)
        self.mlp_t = MLP(d_model, d_model, hidden=2 * d_model, layers=1)

    def forward(
        self, zc: Tensor, zt: Tensor, mask_c: Tensor, xc: Tensor | None = None, xt: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Tokens ``zc [b, nc, D]``, ``zt [b, nt, D]`` -> updated tokens."""
        n = self.norms
        hc = n[0](zc)
        zc = zc + self.self_attn(hc, hc, mask_c, xc, xc)
        zc = zc + self.mlp_c(n[1](zc))
        zt = zt + self.cross_attn(n[2](zt), n[3](zc), mask_c, xt, xc)
        zt = zt + self.mlp_t(n[4](zt))
        return zc, zt
