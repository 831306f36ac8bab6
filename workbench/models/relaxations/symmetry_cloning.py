"""``symmetry-cloning``: a free model that first clones a strictly equivariant teacher, then learns from
the data, where it may keep or break the cloned symmetry.

The student is the free model of its family, exactly what ``group="none"`` builds (``free_base``).
Before the training on data, :meth:`SymmetryCloning.prepare` (called by ``workbench.train.train``):

1. **Teacher**: the strict model of the experiment's group (same family and sizes, what
   ``relaxation="strict"`` builds) is trained on the first ``TEACHER_FRACTION`` x ``steps`` batches
   of the training stream, for as many steps, as ``train`` trains (the run's rate, schedule, clipping).
2. **Cloning**: the student is trained for ``CLONE_FRACTION`` x ``steps`` steps to match the teacher's
   predictive distribution: the mean over targets of KL(teacher || student) of the two Gaussians, on
   those batches, each task moved by a random element of the group with probability
   :data:`CLONE_MOVED` (``augmentation.augment_task``), so the student sees the teacher's symmetry
   across the box and not only on the tasks as drawn.
3. **Fine-tuning**: ``train`` then trains the student on the data for ``steps`` steps, from the first
   batch (the borrowed ones are trained on again), with the penalty ``lambda ||theta - theta_clone||^2``
   (:meth:`SymmetryCloning.penalty`, summed over all weights) holding it to the clone:
   ``lambda = HOLD (1 - s) / s`` for strength ``s`` (:func:`hold`); ``s = 1`` fine-tunes freely,
   ``s -> 0`` holds it ever tighter (``s = 0`` is taken as :data:`MIN_STRENGTH`: lambda = 999 HOLD).

So a run costs about 1.6 times its steps (the teacher's quarter, the clone's quarter with two forward
passes), all counted in ``History.seconds``. The clone's weights are ``model.relaxation_state``
(kept by checkpoints, so a resumed run is held to the same clone and does not clone again); a model
trained with ``steps = 0`` has no clone and no penalty.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from itertools import islice

import torch
from torch import Tensor, nn
from torch.distributions import kl_divergence
from tqdm.auto import tqdm

from workbench.models.relaxations.augmentation import augment_task
from workbench.models.relaxations.base import Parts, Relaxation
from workbench.task import Task

#: Fractions of the run's steps spent training the teacher and cloning it.
TEACHER_FRACTION = 0.25
CLONE_FRACTION = 0.25
#: Probability that a cloning task is moved by a random group element.
CLONE_MOVED = 0.5
#: Base of the hold on the clone, per summed squared weight difference, at strength 0.5.
HOLD = 1.0
#: Strength 0 would be an infinite hold; it is taken as this.
MIN_STRENGTH = 1e-3
#: Prefix of the clone's weights in ``model.relaxation_state``.
KEY = "clone."


def hold(strength: float) -> float:
    """The penalty's weight lambda = ``HOLD (1 - s) / s`` (0 at ``s = 1``; ``s`` >= ``MIN_STRENGTH``)."""
    s = max(float(strength), MIN_STRENGTH)
    return HOLD * (1.0 - s) / s


def _rate(lr: float, step: int, steps: int) -> float:
    """Learning rate of ``step`` in 1..steps: a linear warm-up over 5% of the steps, then a cosine to 0."""
    warm = max(steps // 20, 1)
    return min(1.0, step / warm) * 0.5 * lr * (1.0 + math.cos(math.pi * (step - 1) / steps))


def clone(
    student: nn.Module,
    teacher: nn.Module,
    tasks: Sequence[Task],
    steps: int,
    *,
    lr: float = 2e-3,
    clip: float = 0.5,
    progress: bool = False,
) -> list[float]:
    """Train ``student`` for ``steps`` steps to match ``teacher``'s predictions; the losses per step.

    The loss is KL(teacher || student) per target (summed over outputs, averaged over ``[batch, nt]``)
    on ``tasks`` (cycled), each task moved by a random element of the student's group with probability
    :data:`CLONE_MOVED`; AdamW at ``lr`` with warm-up and cosine decay, gradients clipped at ``clip``.
    """
    parts: Parts = student.parts
    opt = torch.optim.AdamW(student.parameters(), lr=lr)
    teacher.eval()
    student.train()
    losses: list[Tensor] = []
    bar = tqdm(total=steps, disable=not progress, desc="cloning", unit="step", leave=False)
    try:
        for i in range(1, steps + 1):
            task = tasks[(i - 1) % len(tasks)].for_model(student)
            task = augment_task(task, parts.group, parts.box, CLONE_MOVED).task
            with torch.no_grad():
                target = teacher.predict(task)
            loss = kl_divergence(target, student.predict(task)).sum(-1).mean()
            for group in opt.param_groups:
                group["lr"] = _rate(lr, i, steps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), clip)
            opt.step()
            losses.append(loss.detach())
            bar.update()
    finally:
        bar.close()
    student.eval()
    return torch.stack(losses).tolist() if losses else []


def clone_state(model: nn.Module) -> dict[str, Tensor]:
    """A copy of ``model``'s weights as the clone the penalty holds it to (``model.relaxation_state``)."""
    return {KEY + name: p.detach().clone() for name, p in model.named_parameters()}


class SymmetryCloning(Relaxation):
    """The free model: teacher, clone, then fine-tuning held to the clone (see the module's docstring)."""

    name = "symmetry-cloning"
    free_base = True
    never_strict = True

    def wrap(self, model: nn.Module, parts: Parts) -> nn.Module:
        """The free model as built; it keeps the experiment's ``parts`` (group, sizes, strength)."""
        model.parts = parts
        return model

    def prepare(
        self,
        model: nn.Module,
        tasks: Iterator[Task],
        *,
        steps: int,
        lr: float,
        device: torch.device,
        progress: bool,
        fit: Callable[..., object],
        build: Callable[[nn.Module, str], nn.Module],
    ) -> None:
        """Train the teacher and clone it (once: a model with a clone already is left as it is)."""
        if getattr(model, "relaxation_state", None) or steps <= 0:
            return
        n_teacher = max(1, round(TEACHER_FRACTION * steps))
        n_clone = max(1, round(CLONE_FRACTION * steps))
        borrowed = list(islice(tasks, n_teacher))
        if not borrowed:
            return  # no tasks: the training that follows says so
        teacher = build(model, "strict")
        fit(teacher, borrowed, n_teacher, desc="teacher")
        clone(model, teacher, borrowed, n_clone, lr=lr, progress=progress)
        model.relaxation_state = clone_state(model)

    def penalty(self, model: nn.Module) -> Tensor:
        """``lambda ||theta - theta_clone||^2`` over all weights; 0 before cloning and at strength 1."""
        state = getattr(model, "relaxation_state", None)
        weight = hold(model.parts.strength)
        device = next(model.parameters()).device
        if not state or weight == 0:
            return torch.zeros((), device=device)
        squares = [(p - state[KEY + name].to(p)).pow(2).sum() for name, p in model.named_parameters()]
        return weight * torch.stack(squares).sum()
