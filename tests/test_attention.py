"""The fast attention (chunked pair MLP, packed pairs, SDPA) computes what the plain formula does."""

import math

import pytest
import torch

from workbench import Experiment
from workbench.models import build_model
from workbench.nn import attention
from workbench.nn.attention import Attention, pair_logits


def reference_forward(self, zq, zk, mask_k, xq=None, xk=None, mask_q=None):
    """The attention as first written: the logit MLP on a [b, nq, nk, h + dx] pair tensor."""
    b, nq, d = zq.shape
    nk = zk.shape[1]
    q = self.q(zq).view(b, nq, self.heads, self.d_head).transpose(1, 2)
    k, v = self.kv(zk).view(b, nk, 2, self.heads, self.d_head).permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
    if self.logit_mlp is not None:
        diff = xq[:, :, None, :] - xk[:, None, :, :]
        feats = torch.cat([logits.permute(0, 2, 3, 1), diff], -1)
        logits = self.logit_mlp(feats).permute(0, 3, 1, 2)
    m = mask_k[:, None, None, :]
    logits = logits.masked_fill(~m, torch.finfo(logits.dtype).min)
    att = torch.softmax(logits, -1) * m.to(logits.dtype)
    return self.out((att @ v).transpose(1, 2).reshape(b, nq, d))


def _model(group, seed=0):
    torch.manual_seed(seed)
    exp = Experiment(model="transformer", group=group, relaxation="fixed-inputs")
    return build_model(exp, 1, 1, ((-4.0, 4.0),))


def _outputs_and_grads(model, task):
    model.zero_grad()
    dist = model.predict(task)
    loss = -dist.log_prob(task.yt).mean()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return dist.mean.detach(), dist.stddev.detach(), grads


@pytest.mark.parametrize("group", ["T", "none"])
@pytest.mark.parametrize("pack", [True, False])
def test_same_outputs_and_gradients_as_the_reference(group, pack, gibbs_tasks, monkeypatch):
    model = _model(group).eval()  # eval: no fixed-input dropout, so both passes see the same model
    monkeypatch.setattr(attention, "PACK_PAIRS", pack)
    monkeypatch.setattr(attention, "PAIR_CHUNK", 1000)  # several chunks, and a ragged last one
    for task in gibbs_tasks[:2]:
        new = _outputs_and_grads(model, task)
        with monkeypatch.context() as mp:
            mp.setattr(Attention, "forward", reference_forward)
            ref = _outputs_and_grads(model, task)
        torch.testing.assert_close(new[0], ref[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(new[1], ref[1], atol=1e-5, rtol=1e-5)
        assert new[2].keys() == ref[2].keys()
        for name in ref[2]:
            torch.testing.assert_close(new[2][name], ref[2][name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("pack", [True, False])
def test_attention_matches_reference_on_random_masks(pack, monkeypatch):
    torch.manual_seed(1)
    att = Attention(16, 4, dim_x=2)
    b, nq, nk = 3, 5, 7
    zq, zk = torch.randn(b, nq, 16), torch.randn(b, nk, 16)
    xq, xk = torch.randn(b, nq, 2), torch.randn(b, nk, 2)
    mask_k = torch.rand(b, nk) > 0.4
    mask_k[0] = False  # a task without context: its queries get zeros
    monkeypatch.setattr(attention, "PACK_PAIRS", pack)
    monkeypatch.setattr(attention, "PAIR_CHUNK", 8)
    new = att(zq, zk, mask_k, xq, xk)
    ref = reference_forward(att, zq, zk, mask_k, xq, xk)
    torch.testing.assert_close(new, ref, atol=1e-5, rtol=1e-5)
    assert torch.equal(new[0], att.out.bias.expand(nq, 16))


def test_masked_queries_are_skipped_but_real_ones_are_unchanged(monkeypatch):
    torch.manual_seed(2)
    att = Attention(8, 2, dim_x=1)
    z, x = torch.randn(2, 6, 8), torch.randn(2, 6, 1)
    mask = torch.tensor([[True] * 4 + [False] * 2, [True] * 6])
    out = att(z, z, mask, x, x, mask_q=mask)
    ref = reference_forward(att, z, z, mask, x, x)
    torch.testing.assert_close(out[mask], ref[mask], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out).all()


def test_pair_mlp_gradients_match_autograd():
    torch.manual_seed(3)
    mlp = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)).double()
    logits = torch.randn(2, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    xq, xk = torch.randn(2, 4, 1, dtype=torch.float64), torch.randn(2, 3, 1, dtype=torch.float64)
    torch.autograd.gradcheck(lambda lg: pair_logits(lg, xq, xk, mlp), (logits,))
    params = list(mlp.parameters())
    out = pair_logits(logits, xq, xk, mlp)
    feats = torch.cat([logits.permute(0, 2, 3, 1), xq[:, :, None] - xk[:, None]], -1)
    ref = mlp(feats).permute(0, 3, 1, 2)
    g = torch.randn_like(out)
    got = torch.autograd.grad(out, [logits, *params], g)
    want = torch.autograd.grad(ref, [logits, *params], g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_te_attention_is_translation_equivariant():
    torch.manual_seed(4)
    att = Attention(16, 4, dim_x=1)
    zq, zk = torch.randn(2, 9, 16), torch.randn(2, 5, 16)
    xq, xk = torch.randn(2, 9, 1), torch.randn(2, 5, 1)
    mask = torch.ones(2, 5, dtype=torch.bool)
    a = att(zq, zk, mask, xq, xk)
    b = att(zq, zk, mask, xq + 3.7, xk + 3.7)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
