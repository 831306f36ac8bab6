"""Property-based tests (hypothesis) over random tasks for every model family.

Random sizes (including no context points), ragged context masks, coordinates, value scales and NaN in
the masked-out padding. Every model gives finite predictions of the right shapes, padding is invisible
(a padded task predicts as its unpadded self), and strict models are equivariant to random elements of
their group: translations, the flip of the line, and for EquivCNPs the rotations (and reflections) of
the plane. Models are tiny (width 8, depth 2) so the whole file runs in about a minute on one core.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.config import MODEL_GROUPS, RELAXATIONS, Experiment
from workbench.groups import Element, get_group
from workbench.models import build_model
from workbench.task import Task

#: Boxes of gibbs-1d and gp-2d; points are drawn in the central half so moved points stay inside.
BOXES = {1: ((-4.0, 4.0),), 2: ((-3.0, 3.0), (-3.0, 3.0))}
DATASET = {1: "gibbs-1d", 2: "gp-2d"}
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_configs() -> list[tuple[str, str, str, int]]:
    """Every (model, group, relaxation, dim) that ``Experiment`` accepts."""
    out = []
    for dim in (1, 2):
        for model, groups in MODEL_GROUPS.items():
            for group in groups:
                for relaxation in RELAXATIONS:
                    try:
                        Experiment(dataset=DATASET[dim], model=model, group=group, relaxation=relaxation)
                    except ValueError:
                        continue
                    if group == "none" and relaxation != "strict":
                        continue  # the free model ignores the relaxation: one copy is enough
                    out.append((model, group, relaxation, dim))
    return out


CONFIGS = _valid_configs()
#: Strict (or strict-component) models and the group they must be exactly equivariant to.
STRICT = [c for c in CONFIGS if c[1] != "none" and c[2] in ("strict", "fixed-inputs")]


@functools.cache
def _model(model: str, group: str, relaxation: str, dim: int) -> torch.nn.Module:
    torch.manual_seed(0)
    exp = Experiment(
        dataset=DATASET[dim], model=model, group=group, relaxation=relaxation, width=8, depth=2, n_fixed=2
    )
    return build_model(exp, dim, 1, BOXES[dim]).eval()


@st.composite
def tasks(draw: st.DrawFn, dim: int) -> Task:
    """A random batch: 1-3 tasks, 0-12 context slots with a ragged mask, 1-10 targets, NaN padding."""
    b = draw(st.integers(1, 3))
    nc = draw(st.integers(0, 12))
    nt = draw(st.integers(1, 10))
    real = draw(st.lists(st.integers(0, nc), min_size=b, max_size=b))
    scale = draw(st.sampled_from([0.1, 1.0, 10.0]))
    pad_value = draw(st.sampled_from([0.0, math.nan, math.inf, 1e30]))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    half = torch.tensor([(hi - lo) / 4 for lo, hi in BOXES[dim]])
    xc = (2 * torch.rand(b, nc, dim, generator=gen) - 1) * half
    xt = (2 * torch.rand(b, nt, dim, generator=gen) - 1) * half
    yc = scale * torch.randn(b, nc, 1, generator=gen)
    yt = scale * torch.randn(b, nt, 1, generator=gen)
    mask = torch.arange(nc)[None, :] < torch.tensor(real)[:, None]
    xc = torch.where(mask[..., None], xc, torch.tensor(pad_value))
    yc = torch.where(mask[..., None], yc, torch.tensor(pad_value))
    return Task(xc, yc, xt, yt, mask)


def _sample(group_name: str, dim: int, batch: int, seed: int) -> Element:
    """A random group element about the box centre with a shift of up to a quarter box.

    For C8/D8 only the quarter turns (the C4/D4 subgroup) are sampled: a 45-degree turn of a square
    grid is equivariant only approximately (tests/test_rotations.py measures that).
    """
    group = get_group(group_name)
    gen = torch.Generator().manual_seed(seed)
    g = group.sample(batch, dim, shift=1.0, generator=gen)
    if group.rotations == 8:
        mats = group.point_matrices(dim)[::2]  # every other element of C8/D8 is a quarter turn
        idx = torch.randint(len(mats), (batch,), generator=gen)
        g = Element(mats[idx], g.offset)
    return g


def _moved(task: Task, g: Element) -> Task:
    return Task(g.act(task.xc), task.yc, g.act(task.xt), task.yt, task.mask_c)


@pytest.mark.parametrize("config", CONFIGS, ids=["-".join(map(str, c)) for c in CONFIGS])
@settings(max_examples=5, **SETTINGS)
@given(data=st.data())
def test_every_model_gives_finite_predictions_of_the_right_shape(config, data):
    model = _model(*config)
    task = data.draw(tasks(config[3]))
    with torch.no_grad():
        pred = model.predict(task)
    b, nt = task.xt.shape[:2]
    assert pred.mean.shape == (b, nt, 1) and pred.stddev.shape == (b, nt, 1)
    assert torch.isfinite(pred.mean).all() and torch.isfinite(pred.stddev).all()
    assert (pred.stddev > 0).all()


@pytest.mark.parametrize("config", CONFIGS, ids=["-".join(map(str, c)) for c in CONFIGS])
@settings(max_examples=3, **SETTINGS)
@given(data=st.data())
def test_padding_is_invisible(config, data):
    """Task i of a padded batch predicts exactly as task i alone, with only its real context points."""
    model = _model(*config)
    task = data.draw(tasks(config[3]))
    with torch.no_grad():
        batch = model.predict(task, fixed_inputs=False).mean
        for i in range(task.batch_size):
            k = int(task.n_context[i])
            alone = Task(
                task.xc[i : i + 1, :k], task.yc[i : i + 1, :k], task.xt[i : i + 1], task.yt[i : i + 1]
            )
            single = model.predict(alone, fixed_inputs=False).mean
            torch.testing.assert_close(batch[i : i + 1], single, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("config", STRICT, ids=["-".join(map(str, c)) for c in STRICT])
@settings(max_examples=5, **SETTINGS)
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_strict_models_are_equivariant_to_random_group_elements(config, data, seed):
    """mu(g.x_t; g.D) = mu(x_t; D) for strict models, and for the strict component of relaxed ones."""
    model, dim = _model(*config), config[3]
    task = data.draw(tasks(config[3]))
    g = _sample(config[1], dim, task.batch_size, seed)
    with torch.no_grad():
        mu = model.predict(task, fixed_inputs=False).mean
        mu_moved = model.predict(_moved(task, g), fixed_inputs=False).mean
    scale = 1.0 + float(mu.abs().max())
    assert float((mu_moved - mu).abs().max()) < 1e-4 * scale
