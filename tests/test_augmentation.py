"""The ``augmentation`` relaxation: the free model trained on tasks moved by random group elements.

Defining properties: each task is moved with probability ``strength`` (the fraction moved over 4000
tasks lies within 4 binomial standard deviations of it; exactly 0 and 1 at the ends); a moved task is
an exact group transform of the original (its element's linear part is one of the point group's
matrices, the inputs are that element's action to float tolerance 1e-5, pairwise distances are kept,
values are the very same, the context stays in the box); strength 0 trains bit for bit as the free
model; ``train`` moves training batches only, never what is evaluated.
"""

from __future__ import annotations

import math
from itertools import islice

import pytest
import torch

from workbench.config import Experiment
from workbench.evaluate import mean_loglik
from workbench.groups import get_group
from workbench.models import build_model
from workbench.models.relaxations.augmentation import Augmentation, augment_task
from workbench.task import Task
from workbench.train import KeepBest, train

BOX = {1: ((-4.0, 4.0),), 2: ((-2.0, 2.0), (-3.0, 1.0))}


def _tasks(b: int, dim: int, seed: int = 0) -> Task:
    """``b`` random tasks: context in the central half of the box (ragged, some empty), targets anywhere."""
    gen = torch.Generator().manual_seed(seed)
    lo = torch.tensor([lo for lo, _ in BOX[dim]])
    hi = torch.tensor([hi for _, hi in BOX[dim]])
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    xc = mid + (torch.rand(b, 6, dim, generator=gen) - 0.5) * half
    xt = mid + (2 * torch.rand(b, 9, dim, generator=gen) - 1) * half
    mask = torch.arange(6)[None] < torch.randint(0, 7, (b, 1), generator=gen)
    return Task(xc, torch.randn(b, 6, 1, generator=gen), xt, torch.randn(b, 9, 1, generator=gen), mask)


@pytest.mark.parametrize("strength", [0.0, 0.3, 1.0])
def test_tasks_are_moved_with_probability_strength(strength):
    n = 4000
    task = _tasks(n, 1)
    out = augment_task(task, get_group("T"), BOX[1], strength, torch.Generator().manual_seed(1))
    changed = ((out.task.xt != task.xt).any(-1).any(-1)).float()
    assert torch.equal(changed.bool(), out.moved)  # a chosen task is really moved
    tolerance = 4 * math.sqrt(strength * (1 - strength) / n)  # 0 at the ends: exactly none or all
    assert abs(float(changed.mean()) - strength) <= tolerance
    if strength == 0:
        assert out.task is task


@pytest.mark.parametrize("group_name, dim", [("T", 1), ("T+flip", 1), ("T+C4", 2), ("T+D4", 2), ("T+D8", 2)])
def test_a_moved_task_is_an_exact_group_transform_of_the_original(group_name, dim):
    group, box = get_group(group_name), BOX[dim]
    task = _tasks(64, dim, seed=2)
    out = augment_task(task, group, box, 1.0, torch.Generator().manual_seed(3))
    g, moved = out.element, out.task
    mats = group.point_matrices(dim)
    # The linear part is an element of the point group (a pure shift for T).
    match = (g.matrix[:, None] - mats[None]).abs().amax((-1, -2)) < 1e-6
    assert match.any(1).all()
    if group.rotations > 1 or group.reflections:
        assert match.float().sum(0).min() > 0  # every element of the point group gets drawn
    # The inputs are the element's action, the values are untouched.
    real = task.mask_c
    torch.testing.assert_close(moved.xc[real], g.act(task.xc)[real], rtol=0, atol=1e-5)
    torch.testing.assert_close(moved.xt, g.act(task.xt), rtol=0, atol=1e-5)
    assert torch.equal(moved.yc, task.yc) and torch.equal(moved.yt, task.yt)
    assert torch.equal(moved.mask_c, task.mask_c)
    # An isometry: distances between all inputs of a task are kept.
    before = torch.cdist(torch.cat([task.xc, task.xt], 1), torch.cat([task.xc, task.xt], 1))
    after = torch.cdist(torch.cat([moved.xc, moved.xt], 1), torch.cat([moved.xc, moved.xt], 1))
    keep = torch.cat([real, torch.ones_like(task.xt[..., 0], dtype=torch.bool)], 1)
    pair = keep[:, :, None] & keep[:, None, :]
    torch.testing.assert_close(after[pair], before[pair], rtol=0, atol=1e-5)
    # The real context stays inside the box, and the tasks really move (not all by the identity).
    for axis, (lo, hi) in enumerate(box):
        x = moved.xc[..., axis][real]
        assert (x >= lo - 1e-5).all() and (x <= hi + 1e-5).all()
    assert (g.offset.abs().amax(-1) > 1e-3).float().mean() > 0.9


def _train(exp: Experiment, gibbs, batches: list[Task]):
    torch.manual_seed(0)
    model = build_model(exp, 1, 1, gibbs.box)
    hist = train(model, batches, len(batches), device="cpu", progress=False)
    return model, hist


def test_strength_zero_trains_exactly_as_the_free_model(gibbs):
    small = dict(dataset="gibbs-1d", width=8, depth=2, n_fixed=2)
    batches = list(islice(gibbs.batches(4, seed=0), 8))
    free, h_free = _train(Experiment(group="none", **small), gibbs, batches)
    aug, h_aug = _train(
        Experiment(group="T", relaxation="augmentation", strength=0.0, **small), gibbs, batches
    )
    assert type(aug.relaxation) is Augmentation and aug.has_fixed_inputs  # the free conv model
    assert h_free.loss == h_aug.loss
    w_free, w_aug = free.state_dict(), aug.state_dict()
    assert w_free.keys() == w_aug.keys() and all(torch.equal(w_free[k], w_aug[k]) for k in w_free)
    # ... and a positive strength does change the training.
    half = Experiment(group="T", relaxation="augmentation", strength=0.5, **small)
    _, h_half = _train(half, gibbs, batches)
    assert h_half.loss != h_free.loss


def test_training_batches_are_moved_and_evaluation_never_is(gibbs, gibbs_tasks, monkeypatch):
    """Count the hook's calls: once per training step, none from validation or evaluation."""
    calls: list[Task] = []
    original = Augmentation.augment

    def counting(self, model, task, generator=None):
        out = original(self, model, task, generator)
        calls.append((task, out))
        return out

    monkeypatch.setattr(Augmentation, "augment", counting)
    exp = Experiment(
        dataset="gibbs-1d", group="T", relaxation="augmentation", strength=1.0, width=8, depth=2, n_fixed=2
    )
    keep = KeepBest.__new__(KeepBest)  # built below, once the model exists
    torch.manual_seed(0)
    model = build_model(exp, 1, 1, gibbs.box)
    keep.__init__(model, gibbs_tasks[:2], every=3)
    train(model, gibbs.batches(4, seed=0), 9, device="cpu", progress=False, callbacks=[keep])
    assert len(calls) == 9 and len(keep.scores) == 3  # validated 3 times, moved only the 9 batches
    expected = list(islice(gibbs.batches(4, seed=0), 9))
    for (seen, out), batch in zip(calls, expected, strict=True):
        assert torch.equal(seen.xc, batch.xc)  # the hook got the stream's batch, and moved it
        assert not torch.equal(out.xc, batch.xc) and torch.equal(out.yt, batch.yt)
    n = len(calls)
    with torch.no_grad():
        before = mean_loglik(model, gibbs_tasks)
        mean = model.predict(gibbs_tasks[0]).mean
        assert mean_loglik(model, gibbs_tasks) == before
        assert torch.equal(model.predict(gibbs_tasks[0]).mean, mean)
    assert len(calls) == n  # evaluation never called the hook


def test_group_none_and_deepsets_are_refused_with_the_valid_choices():
    with pytest.raises(ValueError, match="group 'none' has none.*T, T\\+flip"):
        Experiment(group="none", relaxation="augmentation")
    with pytest.raises(ValueError, match="use model 'conv' or 'transformer'"):
        Experiment(model="deepsets", group="none", relaxation="augmentation")
    exp = Experiment(dataset="gp-2d", model="conv", group="T+C4", relaxation="augmentation", width=8, depth=2)
    model = build_model(exp, 2, 1, BOX[2])
    assert model.parts.group.name == "T+C4" and type(model.body).__name__ != "GroupConvBody"
