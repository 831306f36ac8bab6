"""Multi-head attention, plain and translation-equivariant (TE): logits = MLP(per-head q.k, x_q - x_k).

The TE logit MLP acts on every (query, key) pair, so its ``[b, hidden, nq, nk]`` activations are the
largest tensors of a TE-TNP (it was 3/4 of a training step). They are computed channels-first, the
layout of ``q @ k^T``, so each layer of the MLP is one batched matrix product over the pairs (no
permutes, no concatenated pair tensor), in cache-sized chunks that the backward pass recomputes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from workbench.nn.mlp import MLP

#: Pairs per chunk of the pair MLP on CPU (x 32 hidden units = 2 MiB of float32): a chunk's activations
#: stay in cache, and no ``[pairs, hidden]`` tensor is ever allocated or kept for the backward pass.
PAIR_CHUNK = 2**14
PACK_PAIRS = True


class _PairMLP(torch.autograd.Function):
    """``relu(f W1^T) W2^T`` on pair features ``f [P, c]``, one chunk of pairs at a time.

    The backward pass recomputes each chunk's hidden activations instead of storing them: on CPU the
    recomputation is cheaper than writing and re-reading ``[P, hidden]`` from memory.
    """

    @staticmethod
    def forward(ctx, feats: Tensor, w1: Tensor, w2: Tensor, chunk: int) -> Tensor:  # noqa: D102
        out = feats.new_empty(feats.shape[0], w2.shape[0])
        w1t, w2t = w1.t(), w2.t()
        for i in range(0, feats.shape[0], chunk):
            hidden = torch.mm(feats[i : i + chunk], w1t).relu_()
            torch.mm(hidden, w2t, out=out[i : i + chunk])
        ctx.save_for_backward(feats, w1, w2)
        ctx.chunk = chunk
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # noqa: D102
        feats, w1, w2 = ctx.saved_tensors
        grad = grad.contiguous()
        g_feats = torch.empty_like(feats)
        g_w1, g_w2 = torch.zeros_like(w1), torch.zeros_like(w2)
        w1t = w1.t()
        for i in range(0, feats.shape[0], ctx.chunk):
            f, g = feats[i : i + ctx.chunk], grad[i : i + ctx.chunk]
            hidden = torch.mm(f, w1t).relu_()
            g_w2.addmm_(g.t(), hidden)
            g_pre = torch.ops.aten.threshold_backward(torch.mm(g, w2), hidden, 0)
            g_w1.addmm_(g_pre.t(), f)
            torch.mm(g_pre, w1, out=g_feats[i : i + ctx.chunk])
        return g_feats, g_w1, g_w2, None


def pair_logits(logits: Tensor, xq: Tensor, xk: Tensor, mlp: MLP, pairs: Tensor | None = None) -> Tensor:
    """The TE logit MLP on every pair: ``mlp([logits_h, x_q - x_k])`` -> ``[b, h, nq, nk]``.

    ``logits [b, h, nq, nk]`` (per-head ``q.k``), ``xq [b, nq, dx]``, ``xk [b, nk, dx]``; ``mlp`` is
    ``Linear(h + dx, hidden) -> ReLU -> Linear(hidden, h)``. Only differences of positions enter, so
    shifting every input leaves the result unchanged. With ``pairs [b, nq, nk]`` (bool) only those
    pairs are computed; the others come back as the dtype's lowest value (masked for a softmax).
    """
    b, h, nq, nk = logits.shape
    first, _, last = mlp
    # Pairs first, channels last: [P, h + dx + 1]; a column of ones carries the first bias.
    feats = logits.permute(0, 2, 3, 1)
    diff = (xq[:, :, None, :] - xk[:, None, :, :]).to(logits.dtype)
    if pairs is not None:
        feats, diff = feats[pairs], diff[pairs]
    else:
        feats, diff = feats.reshape(-1, h), diff.reshape(-1, diff.shape[-1])
    feats = torch.cat([feats, diff, feats.new_ones(feats.shape[0], 1)], 1)
    w1 = torch.cat([first.weight, first.bias[:, None]], 1)
    # One chunk on a GPU (kernel launches cost more than memory there); cache-sized chunks on CPU.
    chunk = PAIR_CHUNK if feats.device.type == "cpu" else max(1, feats.shape[0])
    # The last bias is the same for every key, so it cancels in the softmax; kept for exactness.
    out = _PairMLP.apply(feats, w1, last.weight, chunk) + last.bias
    if pairs is not None:
        low = torch.finfo(logits.dtype).min
        out = logits.new_full((b, nq, nk, h), low).index_put((pairs,), out)
    return out.view(b, nq, nk, h).permute(0, 3, 1, 2)


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
        mask_q: Tensor | None = None,
    ) -> Tensor:
        """``zq [b, nq, D]``, ``zk [b, nk, D]``, ``mask_k [b, nk]`` (+ ``xq``, ``xk``) -> ``[b, nq, D]``.

        ``mask_q [b, nq]``: queries whose output is never used (padding); the TE logits skip them.
        """
        b, nq, d = zq.shape
        nk = zk.shape[1]
        q = self.q(zq).view(b, nq, self.heads, self.d_head).transpose(1, 2)
        k, v = self.kv(zk).view(b, nk, 2, self.heads, self.d_head).permute(2, 0, 3, 1, 4)
        keep = mask_k[:, None, :, None]
        # Zero values at masked keys: a query whose keys are all masked then gets 0, whatever its
        # weights, and the softmax needs no multiply by the mask.
        v = v.masked_fill(~keep, 0.0)
        # A large finite bias, not -inf: an all-masked row stays finite (uniform weights on zeros).
        bias = torch.zeros_like(mask_k, dtype=q.dtype).masked_fill_(~mask_k, torch.finfo(q.dtype).min)
        bias = bias[:, None, None, :]
        if self.logit_mlp is None:
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            logits = (q * (1.0 / math.sqrt(self.d_head))) @ k.transpose(-1, -2)  # [b, h, nq, nk]
            pairs = None
            if PACK_PAIRS and zq.device.type == "cpu":
                # Only pairs of a real query and a real key: about half the work at N_c ~ U{1..64}
                # (the selection needs their count, a host sync, hence CPU only).
                pairs = mask_k[:, None, :] if mask_q is None else mask_q[:, :, None] & mask_k[:, None, :]
                pairs = pairs.expand(b, nq, nk)
            logits = pair_logits(logits, xq, xk, self.logit_mlp, pairs)
            att = torch.softmax(logits if pairs is not None else logits + bias, -1) @ v
        return self.out(att.transpose(1, 2).reshape(b, nq, d))


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
        zc = zc + self.self_attn(hc, hc, mask_c, xc, xc, mask_q=mask_c)
        zc = zc + self.mlp_c(n[1](zc))
        zt = zt + self.cross_attn(n[2](zt), n[3](zc), mask_c, xt, xc)
        zt = zt + self.mlp_t(n[4](zt))
        return zc, zt
