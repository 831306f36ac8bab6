"""The ConvCNP's internal grid: placed by the context only, so predictions are consistent and strict
models stay exactly equivariant (issue 9)."""

import math

import pytest
import torch

from workbench import Experiment
from workbench.data.registry import make_dataset
from workbench.evaluate import rotation_about, transform_task
from workbench.models import build_model
from workbench.nn.setconv import context_centre
from workbench.task import Task


def _model(dataset: str, group: str = "T", relaxation: str = "strict", dim: int = 1, seed: int = 0):
    torch.manual_seed(seed)
    box = make_dataset(dataset).box
    m = build_model(Experiment(dataset=dataset, group=group, relaxation=relaxation), dim, 1, box).eval()
    # Fresh models are nearly flat; random biases in the head make differences visible.
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


def _tasks(dataset: str, n: int = 4, seed: int = 1) -> Task:
    return make_dataset(dataset).test_set(n, batch_size=n, seed=seed)[0]


CASES = [
    ("mountain-1d", "T", "strict", 1),
    ("mountain-1d", "T", "fixed-inputs", 1),
    ("mountain-1d", "none", "strict", 1),
    ("gp-2d", "T", "strict", 2),
    ("gp-2d", "T+C4", "strict", 2),
    ("gp-2d", "T+D4", "fixed-inputs", 2),
]


@pytest.mark.parametrize("dataset,group,relaxation,dim", CASES)
def test_prediction_at_a_target_does_not_depend_on_the_other_targets(dataset, group, relaxation, dim):
    """Consistency: asking one target alone, or with a far-away extra target, gives the same answer."""
    m = _model(dataset, group, relaxation, dim)
    t = _tasks(dataset)
    with torch.no_grad():
        full = m(t.xc, t.yc, t.xt, t.mask_c).mean
        alone = m(t.xc, t.yc, t.xt[:, :1], t.mask_c).mean
        far = torch.full_like(t.xt[:, :1], 30.0)
        extra = m(t.xc, t.yc, torch.cat([t.xt[:, :1], far], 1), t.mask_c).mean[:, :1]
        half = m(t.xc, t.yc, t.xt[:, ::2], t.mask_c).mean
    torch.testing.assert_close(alone, full[:, :1], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(extra, full[:, :1], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(half, full[:, ::2], atol=1e-6, rtol=1e-6)


def test_the_all_inputs_grid_is_not_consistent():
    """The old placement (box of contexts and targets) fails the same check: the test can fail."""
    m = _model("mountain-1d")
    m.set_grid("all")
    t = _tasks("mountain-1d")
    with torch.no_grad():
        full = m(t.xc, t.yc, t.xt, t.mask_c).mean
        alone = m(t.xc, t.yc, t.xt[:, :1], t.mask_c).mean
    assert (alone - full[:, :1]).abs().max() > 1e-4


@pytest.mark.parametrize("grid", ["context", "context:2", "all"])
def test_strict_model_is_translation_equivariant_with_every_grid(grid):
    m = _model("mountain-1d")
    centre, _, span = grid.partition(":")
    m.set_grid(centre, float(span) if span else None)
    t = _tasks("mountain-1d")
    with torch.no_grad():
        a = m(t.xc, t.yc, t.xt, t.mask_c).mean
        b = m(t.xc + 1.37, t.yc, t.xt + 1.37, t.mask_c).mean
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("group,reflect", [("T+C4", False), ("T+D4", True)])
def test_2d_group_models_keep_rotation_equivariance(group, reflect):
    """The context box's centre moves with a 90-degree rotation (and a reflection) about any point."""
    m = _model("gp-2d", group, "strict", 2)
    t = _tasks("gp-2d")
    g = rotation_about(torch.tensor([0.3, -0.2]), math.pi / 2, t.batch_size, reflect=reflect)
    moved = transform_task(t, g)
    with torch.no_grad():
        a = m(t.xc, t.yc, t.xt, t.mask_c).mean
        b = m(moved.xc, moved.yc, moved.xt, moved.mask_c).mean
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_empty_context_gives_one_prediction_for_every_target():
    """No real context point: a strict model predicts the same everywhere (consistent and equivariant);
    the fixed-inputs model with its inputs on still sees where each target is."""
    t = _tasks("mountain-1d")
    mask = torch.zeros_like(t.mask_c)
    strict = _model("mountain-1d")
    approx = _model("mountain-1d", relaxation="fixed-inputs")
    with torch.no_grad():
        mu = strict(t.xc, t.yc, t.xt, mask).mean
        mu_off = approx(t.xc, t.yc, t.xt, mask, fixed_inputs=False).mean
        mu_on = approx(t.xc, t.yc, t.xt, mask).mean
        mu_none = strict(t.xc[:, :0], t.yc[:, :0], t.xt).mean
    assert (mu - mu[:, :1]).abs().max() < 1e-6
    assert (mu_off - mu_off[:, :1]).abs().max() < 1e-6
    assert (mu_on - mu_on[:, :1]).abs().max() > 1e-4
    torch.testing.assert_close(mu_none, mu, atol=1e-6, rtol=1e-6)


def test_context_centre_ignores_padding():
    xc = torch.tensor([[[0.0], [1.0], [50.0]], [[-3.0], [0.0], [0.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    centre, has = context_centre(xc, mask)
    assert centre.tolist() == [[0.5], [0.0]] and has.tolist() == [True, False]


def test_default_grid_covers_the_context_and_keeps_the_cost():
    """The context grid has as many points as the all-inputs grid (same cost) and, centred on any
    context inside the box, reaches every context point; span 2 reaches every target in the box."""
    m = _model("mountain-1d")
    n_context = m.n_grid
    m.set_grid("all")
    assert m.n_grid == n_context
    half = (n_context - 1) / 2 * m.spacing
    (lo, hi) = m.box[0]
    assert half >= (hi - lo) / 2
    m.set_grid("context", 2.0)
    assert (m.n_grid - 1) / 2 * m.spacing >= hi - lo
    with pytest.raises(ValueError):
        m.set_grid("targets")


def test_separable_setconv_keeps_gradients_of_moving_points():
    """Points that carry a gradient (symmetrisation's learned frames) take the separable 2-D path too:
    the same values and gradients as the dense weights, at a fraction of the cost."""
    from workbench.nn.setconv import SetConvDecoder, SetConvEncoder, make_grid

    torch.manual_seed(0)
    enc, dec = SetConvEncoder(2, 0.3).double(), SetConvDecoder(2, 0.3).double()
    xc = torch.randn(3, 20, 2, dtype=torch.float64, requires_grad=True)
    yc = torch.randn(3, 20, 1, dtype=torch.float64)
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[0, 15:] = False
    grid = make_grid(torch.zeros(3, 2, dtype=torch.float64), 9, 0.5)
    dense_grid = grid.reshape(3, -1, 2)  # not a product grid: the dense weights
    a = enc(xc, yc, mask, grid)
    b = enc(xc, yc, mask, dense_grid).reshape(a.shape)
    ga, gb = (torch.autograd.grad(v.square().sum(), xc)[0] for v in (a, b))
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(ga, gb, atol=1e-5)
    assert ga.abs().max() > 1  # a real gradient, not zeros from a detached path
    h = torch.randn(3, 9, 9, 4, dtype=torch.float64)
    xt = torch.randn(3, 7, 2, dtype=torch.float64, requires_grad=True)
    a, b = dec(grid, h, xt), dec(dense_grid, h.reshape(3, 81, 4), xt)
    ga, gb = (torch.autograd.grad(v.sum(), xt)[0] for v in (a, b))
    assert torch.allclose(a, b, atol=1e-10) and torch.allclose(ga, gb, atol=1e-10)
