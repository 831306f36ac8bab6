"""Evaluation: log-likelihood per target, the oracle and its gap, delta_equiv and orbit error."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from workbench.config import check_box
from workbench.groups import Element, Group
from workbench.models.base import NeuralProcess
from workbench.nn.fixed_inputs import inside_box
from workbench.task import Box, Task


def _device(model: NeuralProcess) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def mean_loglik(model: NeuralProcess, tasks: Sequence[Task], *, fixed_inputs: bool = True) -> float:
    """Mean log-likelihood per target over all tasks (nats; higher is better)."""
    model.eval()
    total = [model.loglik(t.for_model(model), fixed_inputs=fixed_inputs) for t in tasks]
    return float(torch.cat(total).mean())


def mean_se(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and standard error (ddof 1) of some values, e.g. over seeds; the error is NaN for one value."""
    v = np.asarray(values, dtype=np.float64)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(v.mean()), se


@torch.no_grad()
def loglik_per_task(model: NeuralProcess, tasks: Sequence[Task], *, fixed_inputs: bool = True) -> np.ndarray:
    """Mean log-likelihood per target of each task, ``[n_tasks]`` (float64), for paired differences."""
    model.eval()
    per = [model.loglik(t.for_model(model), fixed_inputs=fixed_inputs).double().cpu() for t in tasks]
    return torch.cat(per).numpy()


@torch.no_grad()
def oracle_loglik(oracle: Callable[[Task], Tensor], tasks: Sequence[Task]) -> float:
    """Mean of the exact oracle's log-likelihood per target over all tasks."""
    return float(torch.cat([oracle(t) for t in tasks]).mean())


@torch.no_grad()
def delta_equiv(model: NeuralProcess, tasks: Sequence[Task]) -> float:
    """Mean ``|mu(x_t; D, t) - mu(x_t; D, 0)|``: how much the fixed inputs move the prediction."""
    if not model.has_fixed_inputs:
        return 0.0
    model.eval()
    diffs = []
    for t in tasks:
        t = t.for_model(model)
        diffs.append((model.predict(t).mean - model.predict(t, fixed_inputs=False).mean).abs().flatten())
    return float(torch.cat(diffs).mean())


def transform_task(task: Task, g: Element) -> Task:
    """The task moved by ``g``: ``g.D`` and ``g.x_t`` (outputs are scalars, so ``y`` is unchanged)."""
    return Task(g.act(task.xc), task.yc, g.act(task.xt), task.yt, task.mask_c)


def _elements_keeping_context_in_box(
    group: Group, task: Task, box: Box, shift: float, generator: torch.Generator
) -> Element:
    """Sample ``g`` per task such that every real context point stays inside the box.

    Shifts are halved for the tasks that leave it (up to 8 times); what still fails gets the identity.
    """
    b, dim = task.batch_size, task.dim_x
    centre = torch.tensor([(lo + hi) / 2 for lo, hi in box], dtype=task.xc.dtype)
    g = group.sample(b, dim, shift=shift, centre=centre, generator=generator, dtype=task.xc.dtype)
    matrix, offset = g.matrix.clone(), g.offset.clone()
    s = shift
    for _ in range(9):
        moved = Element(matrix, offset).act(task.xc)
        bad = ~(inside_box(moved, box) | ~task.mask_c).all(-1)
        if not bad.any():
            break
        s /= 2
        fresh = group.sample(b, dim, shift=s, centre=centre, generator=generator, dtype=task.xc.dtype)
        matrix[bad], offset[bad] = fresh.matrix[bad], fresh.offset[bad]
    else:
        identity = group.identity(b, dim, task.xc.dtype)
        matrix[bad], offset[bad] = identity.matrix[bad], identity.offset[bad]
    return Element(matrix, offset)


@torch.no_grad()
def orbit_error(
    model: NeuralProcess,
    tasks: Sequence[Task],
    group: Group,
    box: Box,
    *,
    shift: float | None = None,
    seed: int = 0,
    fixed_inputs: bool = True,
) -> float:
    """Mean ``|mu(g.x_t; g.D) - mu(x_t; D)|`` over sampled ``g`` that keep the context inside ``box``.

    Only targets inside the box before and after the move count. ``shift`` bounds the translation
    part (default: a quarter of the box width); rotations and reflections are about the box centre.
    Zero (to float tolerance) for a model that is equivariant to ``group``.
    """
    box = check_box(box)
    model.eval()
    dev = _device(model)
    if shift is None:
        shift = 0.25 * max(hi - lo for lo, hi in box)
    generator = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for task in tasks:
        g = _elements_keeping_context_in_box(group, task, box, shift, generator)
        moved = transform_task(task, g)
        mu = model.predict(task.for_model(model), fixed_inputs=fixed_inputs).mean
        mu_moved = model.predict(moved.for_model(model), fixed_inputs=fixed_inputs).mean
        valid = (inside_box(task.xt, box) & inside_box(moved.xt, box)).to(dev)
        err = (mu_moved - mu).abs().mean(-1)  # [b, nt]
        total += float((err * valid).sum())
        count += int(valid.sum())
    return total / max(count, 1)


def rotation_about(centre: Tensor, angle: float, batch: int, reflect: bool = False) -> Element:
    """The 2-D rotation by ``angle`` radians (after y -> -y if ``reflect``) about ``centre [2]``."""
    c, s = math.cos(angle), math.sin(angle)
    m = torch.tensor([[c, -s], [s, c]], dtype=centre.dtype)
    if reflect:
        m = m @ torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=centre.dtype)
    offset = centre - centre @ m.T
    return Element(m.expand(batch, 2, 2).clone(), offset.expand(batch, 2).clone())


@torch.no_grad()
def _fixed_element_error(
    model: NeuralProcess,
    tasks: Sequence[Task],
    box: Box,
    make: Callable,
    *,
    radius: float | None = None,
    relative: bool = False,
    **kw,
) -> float:
    """Mean |mu(g.x; g.D) - mu(x; D)| for one element per task, targets in the box before and after.

    ``radius`` keeps only targets within that distance of the box centre (a rotation-invariant region);
    ``relative`` divides by the mean |mu - mean mu| over the same targets, so models with different output
    scales (e.g. untrained ones) compare fairly.
    """
    box = check_box(box)
    model.eval()
    dev = _device(model)
    centre = _box_centre(box)
    total, count, spread = 0.0, 0, 0.0
    for task in tasks:
        g = make(task)
        moved = transform_task(task, g)
        mu = model.predict(task.for_model(model), **kw).mean
        mu_moved = model.predict(moved.for_model(model), **kw).mean
        valid = inside_box(task.xt, box) & inside_box(moved.xt, box)
        if radius is not None:
            valid &= (task.xt - centre.to(task.xt.dtype)).norm(dim=-1) <= radius
        valid = valid.to(dev)
        total += float(((mu_moved - mu).abs().mean(-1) * valid).sum())
        count += int(valid.sum())
        if relative and valid.any():
            centred = mu - mu[valid].mean(0)
            spread += float((centred.abs().mean(-1) * valid).sum())
    if relative:
        return total / spread if spread > 0 else float("nan")
    return total / max(count, 1)


def _box_centre(box: Box) -> Tensor:
    return torch.tensor([(lo + hi) / 2 for lo, hi in box])


def orbit_error_by_element(
    model: NeuralProcess,
    tasks: Sequence[Task],
    group: Group,
    box: Box,
    *,
    fixed_inputs: bool = True,
    radius: float | None = None,
    relative: bool = False,
) -> dict[str, float]:
    """Orbit error for every rotation/reflection of a 2-D point group about the box centre, by name."""
    centre = _box_centre(box)
    out = {}
    for s in (False, True) if group.reflections else (False,):
        for r in range(group.rotations):
            deg = 360 * r / group.rotations
            name = f"{'flip+' if s else ''}rot{deg:g}"
            out[name] = _fixed_element_error(
                model,
                tasks,
                box,
                lambda t, d=deg, s=s: rotation_about(centre.to(t.xc.dtype), math.radians(d), t.batch_size, s),
                fixed_inputs=fixed_inputs,
                radius=radius,
                relative=relative,
            )
    return out


def orbit_error_vs_angle(
    model: NeuralProcess,
    tasks: Sequence[Task],
    box: Box,
    angles_deg: Sequence[float],
    *,
    fixed_inputs: bool = True,
    radius: float | None = None,
    relative: bool = False,
):
    """Orbit error against rotation angle about the box centre, as an ``xarray.DataArray`` over ``angle``."""
    import xarray as xr

    centre = _box_centre(box)
    errs = [
        _fixed_element_error(
            model,
            tasks,
            box,
            lambda t, a=a: rotation_about(centre.to(t.xc.dtype), math.radians(a), t.batch_size),
            fixed_inputs=fixed_inputs,
            radius=radius,
            relative=relative,
        )
        for a in angles_deg
    ]
    return xr.DataArray(
        errs,
        coords={"angle": ("angle", list(angles_deg), {"units": "degree"})},
        dims="angle",
        name="orbit_error",
        attrs={
            "long_name": "mean |mu(g.x; g.D) - mu(x; D)|" + (" / mean |mu - mean mu|" if relative else ""),
            "units": "1" if relative else "same as y",
            "radius": "whole box" if radius is None else radius,
        },
    )


def lie_derivative_error(
    model: NeuralProcess,
    tasks: Sequence[Task],
    box: Box,
    *,
    eps_deg: float = 0.5,
    fixed_inputs: bool = True,
    radius: float | None = None,
    relative: bool = False,
) -> float:
    """Small-angle (Lie-derivative-style) error: mean |mu(R_eps.x; R_eps.D) - mu(x; D)| / eps, eps in radians.

    Zero for a model that commutes with infinitesimal rotations; finite differences over +-eps.
    """
    centre = _box_centre(box)
    errs = [
        _fixed_element_error(
            model,
            tasks,
            box,
            lambda t, a=a: rotation_about(centre.to(t.xc.dtype), math.radians(a), t.batch_size),
            fixed_inputs=fixed_inputs,
            radius=radius,
            relative=relative,
        )
        for a in (eps_deg, -eps_deg)
    ]
    return sum(errs) / 2 / math.radians(eps_deg)


def translation(offset: Tensor, batch: int) -> Element:
    """The translation ``x -> x + offset`` (``offset [d]``), repeated ``batch`` times."""
    d = offset.shape[0]
    eye = torch.eye(d, dtype=offset.dtype).expand(batch, d, d).clone()
    return Element(eye, offset.expand(batch, d).clone())


def orbit_error_vs_shift(
    model: NeuralProcess,
    tasks: Sequence[Task],
    box: Box,
    shifts: Sequence[float],
    *,
    fixed_inputs: bool = True,
    relative: bool = False,
):
    """Orbit error against the length of a translation, as an ``xarray.DataArray`` over ``shift``.

    Each shift is applied along +-each axis and the errors averaged; only targets inside the box
    before and after the move count (as for :func:`orbit_error_vs_angle`). Zero for a translation
    equivariant model.
    """
    import xarray as xr

    dim = len(box)
    errs = []
    for s in shifts:
        moves = [sign * s * torch.eye(dim)[i] for i in range(dim) for sign in (1.0, -1.0)]
        errs.append(
            sum(
                _fixed_element_error(
                    model,
                    tasks,
                    box,
                    lambda t, m=m: translation(m.to(t.xc.dtype), t.batch_size),
                    fixed_inputs=fixed_inputs,
                    relative=relative,
                )
                for m in moves
            )
            / len(moves)
        )
    return xr.DataArray(
        errs,
        coords={"shift": ("shift", list(shifts), {"units": "model units"})},
        dims="shift",
        name="orbit_error",
        attrs={
            "long_name": "mean |mu(x + s; D + s) - mu(x; D)|"
            + (" / mean |mu - mean mu|" if relative else ""),
            "units": "1" if relative else "same as y",
        },
    )
