"""The ``symmetry-cloning`` relaxation: a free student clones a strict teacher, then fine-tunes held to it.

Defining properties: after cloning (gp-eq-1d, width 8, depth 3, a teacher trained 150 steps, 150
cloning steps) the student matches the teacher on 64 held-out tasks: mean KL(teacher || student) per
target below 0.08 nats and below a tenth of what it was before cloning, and mean |mu_s - mu_t| below
a quarter of the teacher's own spread of means. The penalty is zero at the clone and grows as
lambda ||theta - theta_clone||^2 away from it (exactly, to float tolerance), with lambda =
HOLD (1 - s) / s; at strength 1 there is none. ``train`` clones before the data phase, trains on the
borrowed batches again, and a resumed run is held to the same clone without cloning again.
"""

from __future__ import annotations

from itertools import islice

import pytest
import torch
from torch.distributions import kl_divergence

from workbench.config import Experiment
from workbench.data.registry import make_dataset
from workbench.models import build_model
from workbench.models.relaxations import symmetry_cloning as sc
from workbench.models.relaxations.symmetry_cloning import SymmetryCloning, clone, clone_state
from workbench.train import train, twin

SMALL = dict(width=8, depth=3, n_fixed=4)


def _student(strength: float = 0.5, dataset: str = "gp-eq-1d", box=((-4.0, 4.0),)):
    torch.manual_seed(0)
    exp = Experiment(dataset=dataset, group="T", relaxation="symmetry-cloning", strength=strength, **SMALL)
    return build_model(exp, 1, 1, box)


def _gaps(teacher, student, tasks) -> tuple[float, float, float]:
    """Mean KL(teacher || student) per target, mean |mu_t - mu_s| and the teacher's spread of means."""
    kl, diff, spread = [], [], []
    with torch.no_grad():
        for t in tasks:
            a, b = teacher.predict(t), student.predict(t)
            kl.append(kl_divergence(a, b).mean())
            diff.append((a.mean - b.mean).abs().mean())
            spread.append(a.mean.std())
    return tuple(float(torch.stack(v).mean()) for v in (kl, diff, spread))


def test_a_clone_matches_its_teacher_on_held_out_tasks():
    data = make_dataset("gp-eq-1d")
    student = _student(box=data.box)
    assert type(student.relaxation) is SymmetryCloning and student.has_fixed_inputs  # the free conv model
    teacher = twin(student, "strict")
    assert not teacher.has_fixed_inputs and teacher.relaxation.name == "strict"
    batches = list(islice(data.batches(16, seed=0), 150))
    train(teacher, batches, 150, device="cpu", progress=False)
    held_out = data.test_set(64, batch_size=16, seed=99)
    kl_before, _, _ = _gaps(teacher, student, held_out)
    losses = clone(student, teacher, batches, 150)
    assert losses[-1] < losses[0]
    kl, diff, spread = _gaps(teacher, student, held_out)
    assert kl < 0.08 and kl < 0.1 * kl_before, (kl, kl_before)
    assert diff < 0.25 * spread, (diff, spread)


def test_the_penalty_is_zero_at_the_clone_and_grows_away_from_it():
    student = _student(0.5)
    relax = student.relaxation
    assert float(relax.penalty(student)) == 0.0  # no clone yet: nothing to hold to
    student.relaxation_state = clone_state(student)
    assert float(relax.penalty(student).detach()) == 0.0 == float(student.penalty().detach())
    params = list(student.parameters())
    gen = torch.Generator().manual_seed(0)
    direction = [torch.randn(p.shape, generator=gen) for p in params]
    norm2 = sum(float(d.pow(2).sum()) for d in direction)
    values = []
    with torch.no_grad():
        for eps in (1e-3, 1e-2, 1e-1):
            for p, d, a in zip(params, direction, student.relaxation_state.values(), strict=True):
                p.copy_(a + eps * d)
            values.append(float(relax.penalty(student).detach()))
            assert values[-1] == pytest.approx(sc.hold(0.5) * eps**2 * norm2, rel=1e-4)
    assert 0 < values[0] < values[1] < values[2]
    assert sc.hold(0.5) == sc.HOLD and sc.hold(0.0) == pytest.approx(999 * sc.HOLD)
    # Strength 1: free fine-tuning, no penalty however far from the clone.
    free = _student(1.0)
    free.relaxation_state = {k: v + 1.0 for k, v in clone_state(free).items()}
    assert sc.hold(1.0) == 0.0 and float(free.relaxation.penalty(free)) == 0.0


def test_train_clones_first_then_fine_tunes_on_the_same_batches_and_resumes_held_to_it(tmp_path, monkeypatch):
    data = make_dataset("gp-eq-1d")
    batches = list(islice(data.batches(4, seed=0), 10))
    student = _student(0.5, box=data.box)
    phases: list[tuple[str, int]] = []
    monkeypatch.setattr(
        sc, "clone", lambda s, t, tasks, n, **kw: phases.append(("clone", n)) or clone(s, t, tasks, n, **kw)
    )
    seen = []
    student.register_forward_pre_hook(lambda m, args: seen.append(args[1].clone()) if m.training else None)
    hist = train(student, iter(batches), 8, device="cpu", progress=False, checkpoint_path=tmp_path / "c.pt")
    assert phases == [("clone", 2)]  # a quarter of the steps, after a teacher of a quarter
    assert hist.step == list(range(1, 9))
    # The teacher took batches 1-2, cloning saw them again, then the data phase trained on 1-8 in order.
    data_phase = seen[-8:]
    assert all(torch.equal(y, b.yc) for y, b in zip(data_phase, batches[:8], strict=True))
    state = student.relaxation_state
    assert set(state) == {sc.KEY + n for n, _ in student.named_parameters()}
    assert float(student.penalty().detach()) > 0  # fine-tuning moved it away from the clone
    # Resume: the clone comes back from the checkpoint and nothing is cloned again.
    again = _student(0.5, box=data.box)
    train(again, iter(batches[8:]), 2, device="cpu", progress=False, resume=tmp_path / "c.pt")
    assert phases == [("clone", 2)]
    assert all(torch.equal(state[k], again.relaxation_state[k]) for k in state)


def test_group_none_is_refused_with_the_valid_choices():
    with pytest.raises(ValueError, match="group 'none' has none.*T, T\\+flip"):
        Experiment(group="none", relaxation="symmetry-cloning")
    with pytest.raises(ValueError, match="choose a group of 'transformer': T"):
        Experiment(model="transformer", group="none", relaxation="symmetry-cloning")
