"""The residual-pathway relaxation: a plug-in (one module and one registry entry), whose strict limit
is the strict model and whose penalty is the prior's weight decay."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.config import Experiment
from workbench.evaluate import orbit_error
from workbench.groups import get_group
from workbench.maps import fixed_inputs_active
from workbench.models import build_model
from workbench.models.relaxations.residual_pathway import DECAY, ResidualPathwayBody

BOX = {1: ((-2.0, 2.0),), 2: ((-2.0, 2.0), (-2.0, 2.0))}
DATASET = {1: "gibbs-1d", 2: "gp-2d"}


def _model(group: str, dim: int, box=None, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    exp = Experiment(dataset=DATASET[dim], group=group, **kw)
    return build_model(exp, dim, 1, box or BOX[dim]).eval()


def _task(dim: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(3)
    return (
        torch.rand(2, 6, dim, generator=gen) * 2 - 1,
        torch.randn(2, 6, 1, generator=gen),
        torch.rand(2, 8, dim, generator=gen) * 2 - 1,
    )


def _with_strict_weights(model: torch.nn.Module, strict: torch.nn.Module) -> None:
    """Give the residual model's equivariant part (and encoder, decoder, head) the strict model's weights."""
    state = {
        ("body.strict." + k[5:] if k.startswith("body.") else k): v for k, v in strict.state_dict().items()
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(("body.free.", "fixed.")) for k in missing)


def _perturb_free_part(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in model.body.free.parameters():
            p.add_(0.1 * torch.randn_like(p))


@pytest.mark.parametrize(("group", "dim"), [("T", 1), ("T+flip", 1), ("T+C4", 2)])
def test_strength_zero_is_the_strict_model(group, dim):
    """An infinitely penalised free part (strength 0) is left out: the strict model's predictions."""
    strict = _model(group, dim, relaxation="strict")
    model = _model(group, dim, relaxation="residual-pathway", strength=0.0)
    assert isinstance(model.body, ResidualPathwayBody)
    assert not fixed_inputs_active(model)  # maps and metrics see the strict model it is
    _with_strict_weights(model, strict)
    _perturb_free_part(model)
    xc, yc, xt = _task(dim)
    with torch.no_grad():
        want = strict(xc, yc, xt)
        for on in (True, False):
            got = model(xc, yc, xt, fixed_inputs=on)
            assert torch.equal(got.mean, want.mean) and torch.equal(got.stddev, want.stddev)


def test_the_free_part_breaks_the_symmetry_and_its_strict_component_keeps_it(gibbs, gibbs_tasks):
    model = _model("T", 1, relaxation="residual-pathway", strength=0.5)
    xc, yc, xt = _task(1)
    with torch.no_grad():
        untrained = model(xc, yc, xt).mean
        # The free part starts at zero: an untrained model is its strict part.
        assert torch.equal(untrained, model(xc, yc, xt, fixed_inputs=False).mean)
        _perturb_free_part(model)
        assert not torch.allclose(model(xc, yc, xt).mean, untrained)
        assert torch.equal(model(xc, yc, xt, fixed_inputs=False).mean, untrained)
    t = get_group("T")
    model = _model("T", 1, relaxation="residual-pathway", strength=0.5, box=gibbs.box)
    _perturb_free_part(model)
    assert orbit_error(model, gibbs_tasks, t, gibbs.box, shift=1.5) > 1e-3
    # The strict component (fixed inputs off) is the equivariant part A alone.
    assert orbit_error(model, gibbs_tasks, t, gibbs.box, shift=1.5, fixed_inputs=False) < 1e-4


def test_penalty_is_the_weight_decay_with_the_strength_as_ratio():
    @torch.no_grad()
    def parts(model):
        eq = sum(p.pow(2).sum() for p in model.body.strict.parameters())
        free = sum(p.pow(2).sum() for p in model.body.free.parameters())
        free = free + sum(p.pow(2).sum() for p in model.fixed.parameters())
        return float(eq), float(free)

    for s in (0.25, 0.5, 1.0):
        model = _model("T", 1, relaxation="residual-pathway", strength=s)
        eq, free = parts(model)
        want = DECAY * eq + DECAY * (1 - s) / s * free
        assert model.penalty().item() == pytest.approx(want, rel=1e-5)
    model = _model("T", 1, relaxation="residual-pathway", strength=0.0)
    assert math.isfinite(model.penalty().item())
    assert model.penalty().item() == pytest.approx(DECAY * parts(model)[0], rel=1e-5)
    assert model.double().penalty().dtype == torch.float64
    # Other relaxations have no prior: their penalty is zero.
    assert _model("T", 1, relaxation="fixed-inputs").penalty().item() == 0.0


def test_penalty_trains_both_parts():
    model = _model("T", 1, relaxation="residual-pathway", strength=0.5).train()
    xc, yc, xt = _task(1)
    loss = -model(xc, yc, xt).log_prob(torch.zeros(2, 8, 1)).mean() + model.penalty()
    loss.backward()
    assert model.body.strict.convs[0].weight.grad.abs().sum() > 0
    assert model.body.free.convs[-1].weight.grad.abs().sum() > 0
    assert model.fixed.mlp[0].weight.grad is not None


def test_no_fixed_channels_is_the_strict_body():
    strict = _model("T", 1, relaxation="strict")
    model = _model("T", 1, relaxation="residual-pathway", n_fixed=0)
    assert model.fixed is None and set(model.state_dict()) == set(strict.state_dict())


def test_residual_pathway_needs_the_conv_family():
    with pytest.raises(ValueError, match="residual-pathway.*needs model 'conv'"):
        Experiment(model="transformer", relaxation="residual-pathway")
