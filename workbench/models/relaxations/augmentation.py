"""``augmentation``: data augmentation, the non-equivariant baseline of Brehmer et al. (2024, "Does
equivariance matter at scale?").

The network is the free model of its family, exactly what ``group="none"`` builds (``free_base``: a
conv model with fixed inputs always on, a transformer with absolute positions). The group acts only
through the data: during training, and never in evaluation, each task of a batch is moved by a random
element of the experiment's group with probability ``strength`` (independently per task;
:meth:`Augmentation.augment`, called by ``workbench.train.train`` on every training batch). So
strength 0 trains the free model itself and 1 moves every task (here 1 is the most symmetric end).

A random element (:func:`draw_elements`) is a uniformly drawn rotation/reflection of the group's point
group (``Group.point_matrices``; none for ``T``) about the middle of the task's context, then a shift
drawn uniformly among those that keep every real context point inside the model's box, per axis. The
targets move with the context (the task stays a task of the same function, moved) and may leave the
box: there the free model's fixed inputs are zero, as for any target outside it. A rotation after
which no shift fits the context into the box (a non-square box) is drawn again, up to
:data:`TRIES` times, then replaced by none (a shift alone always fits a context that was inside).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from workbench.groups import Element, Group
from workbench.models.relaxations.base import Parts, Relaxation
from workbench.task import Box, Task

#: Draws of the point-group element before a task that no shift fits into the box gets none.
TRIES = 8


class Augmented(NamedTuple):
    """A batch moved by :func:`augment_task`: the ``task``, each task's ``element`` (the identity where
    not moved) and ``moved [batch]`` (bool: whether the task was chosen to be moved)."""

    task: Task
    element: Element
    moved: Tensor


def _extent(x: Tensor, mask: Tensor, fallback: Tensor) -> tuple[Tensor, Tensor]:
    """Per-task min and max of the real points ``x [b, n, d]`` (``fallback [d]`` where none), ``[b, d]``."""
    inf = torch.tensor(float("inf"), dtype=x.dtype)
    real = mask[..., None]
    has = mask.any(-1)[:, None]
    lo = torch.where(real, x, inf).amin(1) if x.shape[1] else fallback.expand(x.shape[0], -1)
    hi = torch.where(real, x, -inf).amax(1) if x.shape[1] else fallback.expand(x.shape[0], -1)
    return torch.where(has, lo, fallback), torch.where(has, hi, fallback)


def draw_elements(group: Group, task: Task, box: Box, generator: torch.Generator | None = None) -> Element:
    """One random element of ``group`` per task that keeps the task's real context inside ``box``.

    Rotations/reflections are about the middle of the context's bounding box (the box centre for a task
    without context); the shift is uniform over those that keep the context inside ``box`` on every axis
    (zero where none does: a context that was outside the box already). A group without translations
    acts about the origin and is not shifted. Drawn on the CPU, in the task's float dtype.
    """
    b, d, dtype = task.batch_size, task.dim_x, task.xc.dtype
    xc, mask = task.xc.detach().cpu(), task.mask_c.cpu()
    lo_box = torch.tensor([lo for lo, _ in box], dtype=dtype)
    hi_box = torch.tensor([hi for _, hi in box], dtype=dtype)
    mid = (lo_box + hi_box) / 2
    cmin, cmax = _extent(xc, mask, mid)
    centre = (cmin + cmax) / 2 if group.translations else torch.zeros(b, d, dtype=dtype)
    mats = group.point_matrices(d, dtype)
    eye = torch.eye(d, dtype=dtype)

    def shift_range(matrix: Tensor) -> tuple[Tensor, Tensor]:
        # The context turned about its middle, x -> (x - c) A^T + c; the shifts t with lo <= x + t <= hi.
        turned = (xc - centre[:, None]) @ matrix.transpose(-1, -2) + centre[:, None]
        tmin, tmax = _extent(turned, mask, mid)
        return lo_box - tmin, hi_box - tmax

    matrix = mats[torch.randint(len(mats), (b,), generator=generator)]
    for attempt in range(TRIES + 1):
        low, high = shift_range(matrix)
        bad = (low > high).any(-1) & ~(matrix == eye).all(-1).all(-1)
        if not bad.any():
            break
        # Redraw only where no shift fits; the last attempt gives those tasks no rotation at all.
        last = attempt == TRIES - 1
        fresh = eye.expand(b, d, d) if last else mats[torch.randint(len(mats), (b,), generator=generator)]
        matrix = torch.where(bad[:, None, None], fresh, matrix)
    u = torch.rand(b, d, generator=generator, dtype=dtype)
    shift = torch.where(low <= high, low + u * (high - low), torch.zeros((), dtype=dtype))
    if not group.translations:
        shift = torch.zeros_like(shift)
    # x -> (x - c) A^T + c + t as one affine map x A^T + offset.
    offset = centre - (centre[:, None] @ matrix.transpose(-1, -2))[:, 0] + shift
    return Element(matrix, offset)


def augment_task(
    task: Task, group: Group, box: Box, probability: float, generator: torch.Generator | None = None
) -> Augmented:
    """Move each task of the batch by a random element of ``group`` (:func:`draw_elements`) with
    probability ``probability``, independently per task; the others stay bit for bit as they were.

    Inputs move (``xc [b, nc, dx]``, ``xt [b, nt, dx]``), values (``yc``, ``yt``) do not: outputs are
    scalars. Probability 0 returns the batch itself and draws nothing.
    """
    b, d, dtype = task.batch_size, task.dim_x, task.xc.dtype
    if probability <= 0:
        return Augmented(task, group.identity(b, d, dtype), torch.zeros(b, dtype=torch.bool))
    moved = torch.rand(b, generator=generator) < probability
    g = draw_elements(group, task, box, generator)
    identity = group.identity(b, d, dtype)
    matrix = torch.where(moved[:, None, None], g.matrix, identity.matrix)
    offset = torch.where(moved[:, None], g.offset, identity.offset)
    element = Element(matrix, offset)
    dev = task.xc.device
    on_dev = Element(matrix.to(dev), offset.to(dev))
    keep = moved.to(dev)[:, None, None]
    # torch.where keeps the unmoved tasks exactly (x @ I may not be x in every float corner case).
    xc = torch.where(keep, on_dev.act(task.xc), task.xc)
    xt = torch.where(keep, on_dev.act(task.xt), task.xt)
    out = Task(xc, task.yc, xt, task.yt, task.mask_c, dict(task.info))
    return Augmented(out, element, moved)


class Augmentation(Relaxation):
    """The free model, trained on tasks moved by random group elements with probability ``strength``."""

    name = "augmentation"
    free_base = True
    never_strict = True

    def wrap(self, model: nn.Module, parts: Parts) -> nn.Module:
        """The free model as built, keeping the experiment's ``parts`` (group, box, strength) to draw from."""
        model.parts = parts
        return model

    def augment(self, model: nn.Module, task: Task, generator: torch.Generator | None = None) -> Task:
        """Each task moved by a random element of the experiment's group with probability ``strength``."""
        parts: Parts = model.parts
        return augment_task(task, parts.group, parts.box, parts.strength, generator).task
