"""Probabilistic symmetrisation: a free model averaged over shifts from a learned equivariant sampler.

Equivariant in expectation (the Monte-Carlo orbit error falls as the draws grow), exactly equivariant
in evaluation mode (the same draws for a task and its shifted copy), the sampler's distribution moves
with the context, strength 1 is the free model itself, it trains, and it saves and loads.
"""

from __future__ import annotations

import pytest
import torch

from workbench import Experiment, load_run, run
from workbench.groups import Element, get_group
from workbench.models import build_model
from workbench.models.base import NeuralProcess
from workbench.models.symmetrised import SymmetrisedNP, moment_match
from workbench.nn.shift_sampler import ShiftSampler
from workbench.task import Task

BOXES = {1: ((-4.0, 4.0),), 2: ((-3.0, 3.0), (-3.0, 3.0))}
DATASET = {1: "gibbs-1d", 2: "gp-2d"}
TAU = {1: torch.tensor([0.73]), 2: torch.tensor([0.61, -0.37])}


def _model(
    dim: int = 1, strength: float = 0.0, model: str = "conv", seed: int = 0, group: str = "T"
) -> SymmetrisedNP:
    exp = Experiment(
        dataset=DATASET[dim],
        model=model,
        group=group,
        relaxation="symmetrisation",
        strength=strength,
        width=8,
        depth=2,
    )
    torch.manual_seed(seed)
    return build_model(exp, dim, 1, BOXES[dim]).eval()


def _element(group: str, dim: int, b: int) -> Element:
    """The group's last point-group element (the shift alone for T, a reflected 315-degree turn for
    D8) about an off-centre point, then a shift: an element that moves everything."""
    a = get_group(group).point_matrices(dim)[-1]
    centre = torch.full((dim,), 0.3)
    shift = torch.rand(b, dim, generator=torch.Generator().manual_seed(5)) - 0.5
    return Element(a.expand(b, dim, dim), (centre - centre @ a.T) + shift)


def _moved(task: Task, g: Element) -> Task:
    return Task(g.act(task.xc), task.yc, g.act(task.xt), task.yt, task.mask_c)


def _task(dim: int, b: int = 4, nc: int = 9, nt: int = 24, seed: int = 0) -> Task:
    """Random tasks in the central half of the box, the last one with padding in its context."""
    gen = torch.Generator().manual_seed(seed)
    half = torch.tensor([(hi - lo) / 4 for lo, hi in BOXES[dim]])
    xc = (2 * torch.rand(b, nc, dim, generator=gen) - 1) * half
    xt = (2 * torch.rand(b, nt, dim, generator=gen) - 1) * half
    yc, yt = torch.randn(b, nc, 1, generator=gen), torch.randn(b, nt, 1, generator=gen)
    mask = torch.ones(b, nc, dtype=torch.bool)
    mask[-1, nc // 2 :] = False
    return Task(xc, yc, xt, yt, mask)


def test_the_factory_wraps_the_free_model():
    model = _model()
    assert isinstance(model, SymmetrisedNP) and model.relaxation.name == "symmetrisation"
    assert model.base.relaxation.name == "free" and model.base.fixed is not None
    # Not the ConvCNP's factorised grid path: each draw moves the targets, so maps go point by point.
    assert type(model).predict_grid is NeuralProcess.predict_grid
    pred = _model(dim=2).predict_grid(
        torch.zeros(1, 3, 2), torch.ones(1, 3, 1), torch.zeros(4), torch.zeros(5)
    )
    assert pred.mean.shape == (1, 4, 5, 1)


@pytest.mark.parametrize(("group", "dim"), [("T", 1), ("T", 2), ("T+flip", 1), ("T+D4", 2), ("T+C8", 2)])
def test_the_sampler_moves_with_the_context(group, dim):
    """p(h g | h D) = p(g | D): the centre moves by h to float tolerance, the point group's weights are
    permuted as h permutes the elements, and so does every draw made with the same noise."""
    point = get_group(group).point_matrices(dim)
    torch.manual_seed(3)
    sampler = ShiftSampler(dim, 1, point)
    task = _task(dim)
    h = _element(group, dim, task.batch_size)
    centre, probs, has = sampler.frame(task.xc, task.yc, task.mask_c)
    moved, probs_moved, _ = sampler.frame(h.act(task.xc), task.yc, task.mask_c)
    torch.testing.assert_close(moved, h.act(centre[:, None])[:, 0], rtol=0, atol=1e-5)
    # Element k of D goes to the element L A_k of hD.
    lin = h.matrix[0]
    perm = [int(((lin @ a - point).abs().amax((1, 2)) < 1e-5).nonzero()) for a in point]
    torch.testing.assert_close(probs_moved[:, perm], probs, rtol=0, atol=1e-5)
    assert has.all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(task.batch_size))
    if len(point) > 1:  # the weights do prefer some elements
        assert (probs.amax(-1) - probs.amin(-1)).min() > 1e-3
    # The weights are not uniform: the centre is not simply the centroid.
    centroid = (task.xc * task.mask_c[..., None]).sum(1) / task.mask_c.sum(1, keepdim=True)
    assert (centre - centroid).abs().max() > 1e-3
    if group == "T":
        gen = torch.Generator().manual_seed(1)
        a, _, _ = sampler.sample(task.xc, task.yc, task.mask_c, 5, generator=gen)
        gen = torch.Generator().manual_seed(1)
        b, _, _ = sampler.sample(task.xc + h.offset[:, None], task.yc, task.mask_c, 5, generator=gen)
        torch.testing.assert_close(b, a + h.offset, rtol=0, atol=1e-5)
    # Padding is invisible and a task without context points is marked as such.
    k = task.xc.shape[1] // 2
    alone, probs_alone, _ = sampler.frame(task.xc[-1:, :k], task.yc[-1:, :k], task.mask_c[-1:, :k])
    torch.testing.assert_close(alone, centre[-1:], rtol=0, atol=1e-6)
    torch.testing.assert_close(probs_alone, probs[-1:], rtol=0, atol=1e-6)
    _, uniform, none = sampler.frame(task.xc, task.yc, torch.zeros_like(task.mask_c))
    assert not none.any()
    torch.testing.assert_close(uniform, torch.full_like(uniform, 1 / len(point)))


EXACT = [
    ("conv", "T", 1),
    ("transformer", "T", 1),
    ("conv", "T", 2),
    ("conv", "T+flip", 1),
    ("conv", "T+D4", 2),
    ("conv", "T+C8", 2),
]


@pytest.mark.parametrize(("model", "group", "dim"), EXACT)
def test_evaluation_mode_is_exactly_equivariant_at_strength_0(model, group, dim):
    """The same draws for a task and its moved copy: the orbit error is zero to float tolerance, for
    45-degree turns too, although the free model inside is far from equivariant."""
    net = _model(dim, 0.0, model, group=group)
    torch.manual_seed(7)
    with torch.no_grad():
        # A free model that leans on absolute position: its fixed inputs (conv) or position embedding
        # (transformer) made large.
        leans = [net.base.fixed] if net.base.fixed is not None else [net.base.embed_c, net.base.embed_t]
        for p in (p for module in leans for p in module.parameters()):
            p.normal_(0.0, 1.5)
    task = _task(dim)
    moved = _moved(task, _element(group, dim, task.batch_size))
    with torch.no_grad():
        pred, pred_moved = net.predict(task), net.predict(moved)
        free = (net.base.predict(task).mean - net.base.predict(moved).mean).abs().mean()
        # At strength 0.5 the strict component (the symmetrised share alone) is as equivariant.
        half = _model(dim, 0.5, model, group=group)
        strict, strict_moved = half.predict(task, fixed_inputs=False), half.predict(moved, fixed_inputs=False)
    assert free > 1e-2
    torch.testing.assert_close(pred_moved.mean, pred.mean, rtol=0, atol=1e-4)
    torch.testing.assert_close(pred_moved.stddev, pred.stddev, rtol=0, atol=1e-4)
    torch.testing.assert_close(strict_moved.mean, strict.mean, rtol=0, atol=1e-4)
    # Deterministic: a second call gives the same prediction.
    with torch.no_grad():
        assert torch.equal(net.predict(task).mean, pred.mean)


def _mc_orbit_error(net: SymmetrisedNP, task: Task, tau: torch.Tensor, n: int, pairs: int = 6) -> float:
    """Mean |mu_n(D)(x) - mu_n(D + tau)(x + tau)| with independent draws for the two, over seed pairs.

    Training mode: independent draws per task as well (evaluation mode shares them across a batch),
    so the mean over tasks averages the Monte-Carlo noise; the free model has no dropout.
    """
    errs = []
    net.train()
    with torch.no_grad():
        for k in range(pairs):
            ga, gb = torch.Generator().manual_seed(2 * k + 100), torch.Generator().manual_seed(2 * k + 101)
            a = net(task.xc, task.yc, task.xt, task.mask_c, n_samples=n, generator=ga).mean
            b = net(task.xc + tau, task.yc, task.xt + tau, task.mask_c, n_samples=n, generator=gb).mean
            errs.append(float((a - b).abs().mean()))
    net.eval()
    return sum(errs) / len(errs)


@pytest.mark.parametrize("sampler", ["untrained", "random"])
def test_equivariant_in_expectation_the_error_falls_with_the_draws(sampler):
    """With independent draws the orbit error is Monte-Carlo noise, about 1 / sqrt(n): 4 -> 16 -> 64
    draws should halve it twice; assert a clear fall (each step below 0.75 of the last)."""
    net = _model(1, 0.0)
    torch.manual_seed(7)
    with torch.no_grad():
        # A free model that leans hard on absolute position (an untrained one hardly does), so that
        # where the draws put the frame matters.
        for p in net.base.fixed.parameters():
            p.normal_(0.0, 1.5)
        if sampler == "random":
            # A sampler far from its initial state: other weights, a wider spread of shifts.
            for p in net.sampler.weights.parameters():
                p.normal_(0.0, 1.0)
            net.sampler.raw_scale.fill_(0.5)
    task = _task(1, b=8, nt=32)
    errs = [_mc_orbit_error(net, task, TAU[1], n) for n in (4, 16, 64)]
    assert errs[0] > 1e-3, errs  # the draws do matter
    assert errs[1] < 0.75 * errs[0] and errs[2] < 0.75 * errs[1], errs


def test_strength_one_is_the_free_model_and_between_is_the_mixture():
    task = _task(1)
    free_exp = Experiment(dataset="gibbs-1d", group="none", width=8, depth=2)
    torch.manual_seed(0)
    free = build_model(free_exp, 1, 1, BOXES[1]).eval()
    one = _model(1, 1.0)
    half = _model(1, 0.5)
    with torch.no_grad():
        p1 = one.predict(task)
        # The base is built first from the same seed: the very free model of group 'none'.
        pf = free.predict(task)
        assert torch.equal(p1.mean, pf.mean) and torch.equal(p1.stddev, pf.stddev)
        mix = half.predict(task)
        ident = half.base.predict(task)
        sym = half.predict(task, fixed_inputs=False)
    # Moment matching of the two-part mixture 0.5 * identity + 0.5 * symmetrised.
    want = moment_match(
        torch.stack([ident.mean, sym.mean]),
        torch.stack([ident.variance, sym.variance]),
        torch.tensor([0.5, 0.5]),
    )
    torch.testing.assert_close(mix.mean, want.mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mix.stddev, want.stddev, rtol=1e-5, atol=1e-5)
    assert half.has_fixed_inputs and not _model(1, 0.0).has_fixed_inputs


def test_moment_matching_of_a_mixture():
    means = torch.tensor([[0.0], [2.0]]).view(2, 1, 1, 1)
    variances = torch.tensor([[1.0], [3.0]]).view(2, 1, 1, 1)
    d = moment_match(means, variances, torch.tensor([0.25, 0.75]))
    assert float(d.mean) == pytest.approx(1.5)
    # mean of variances (2.5) + variance of means (0.25 * 1.5^2 + 0.75 * 0.5^2 = 0.75)
    assert float(d.variance) == pytest.approx(3.25)


def test_it_trains(gibbs_tasks):
    """A few steps on one batch raise its (deterministic, evaluation-mode) log-likelihood, and the
    sampler's parameters get gradients."""
    net = _model(1, 0.0)
    task = gibbs_tasks[0].select(slice(0, 4)).for_model(net)
    with torch.no_grad():
        before = float(net.loglik(task).mean())
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    net.train()
    for step in range(12):
        opt.zero_grad()
        loss = -net.loglik(task).mean()
        loss.backward()
        if step == 0:
            assert net.sampler.raw_scale.grad is not None and net.sampler.raw_scale.grad.abs().sum() > 0
            assert any(
                p.grad is not None and p.grad.abs().sum() > 0 for p in net.sampler.weights.parameters()
            )
        opt.step()
    net.eval()
    with torch.no_grad():
        after = float(net.loglik(task).mean())
    assert after > before + 0.05, (before, after)


def test_the_point_group_weights_learn():
    """The loss reaches the point group's weights (kappa and the orientation weights) through the
    mixture weights, and the shift noise through the positions."""
    net = _model(2, 0.0, group="T+C4").train()
    task = _task(2, b=2, nt=8)
    (-net.loglik(task).mean()).backward()
    assert net.sampler.kappa.grad is not None and net.sampler.kappa.grad.abs() > 0
    assert net.sampler.raw_scale.grad is not None and net.sampler.raw_scale.grad.abs().sum() > 0
    last = list(net.sampler.weights.parameters())[-2]  # the last layer's weights, both outputs
    assert (last.grad.abs().sum(-1) > 0).all()


def test_save_and_load_give_the_same_predictions(tmp_path):
    exp = Experiment(
        dataset="gibbs-1d",
        relaxation="symmetrisation",
        strength=0.5,
        steps=4,
        batch_size=4,
        width=8,
        depth=2,
        test_tasks=16,
        device="cpu",
    )
    r = run(exp, progress=False)
    back = load_run(r.save(tmp_path / "r"))
    assert isinstance(back.model, SymmetrisedNP)
    task = _task(1)
    a, b = r.predict(task), back.predict(task)
    assert torch.equal(a.mean, b.mean) and torch.equal(a.stddev, b.stddev)


@pytest.mark.parametrize("model", ["conv", "transformer", "deepsets"])
def test_group_none_is_refused_clearly(model):
    with pytest.raises(ValueError, match="nothing to relax") as err:
        Experiment(model=model, group="none", relaxation="symmetrisation")
    # It says what to choose instead: another group of the family, or another family.
    assert "choose a group of" in str(err.value) or "use model 'conv'" in str(err.value)


def test_every_group_of_a_family_goes():
    for group in ("T", "T+flip"):
        Experiment(dataset="gibbs-1d", group=group, relaxation="symmetrisation")
    for group in ("T", "T+C4", "T+D4", "T+C8", "T+D8"):
        Experiment(dataset="gp-2d", group=group, relaxation="symmetrisation")
    Experiment(dataset="gp-2d", model="transformer", group="T", relaxation="symmetrisation")
