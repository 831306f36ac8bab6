"""Shapes, masking and empty context sets for every model family."""

import pytest
import torch

from workbench import Experiment, Task
from workbench.models import build_model

CONFIGS = [
    ("conv", "T", "fixed-inputs"),
    ("conv", "T+flip", "strict"),
    ("conv", "T", "relaxed-conv"),
    ("conv", "none", "strict"),
    ("transformer", "T", "fixed-inputs"),
    ("transformer", "none", "strict"),
    ("deepsets", "none", "strict"),
]


def _model(model, group, relaxation):
    torch.manual_seed(0)
    return build_model(
        Experiment(model=model, group=group, relaxation=relaxation), 1, 1, ((-4.0, 4.0),)
    ).eval()


@pytest.mark.parametrize("cfg", CONFIGS)
def test_shapes_and_positive_scale(cfg, gibbs_tasks):
    task = gibbs_tasks[0]
    dist = _model(*cfg).predict(task)
    assert dist.mean.shape == task.yt.shape
    assert torch.all(dist.stddev > 0) and torch.isfinite(dist.mean).all()


@pytest.mark.parametrize("cfg", CONFIGS)
def test_padding_is_ignored(cfg, gibbs_tasks):
    task = gibbs_tasks[0]
    model = _model(*cfg)
    junk = torch.where(task.mask_c[..., None], task.yc, torch.randn_like(task.yc) * 100)
    xjunk = torch.where(task.mask_c[..., None], task.xc, torch.rand_like(task.xc) * 4 - 2)
    a = model.predict(task).mean
    b = model(xjunk, junk, task.xt, task.mask_c).mean
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_empty_context_sets_work(cfg):
    task = Task(
        torch.zeros(2, 0, 1), torch.zeros(2, 0, 1), torch.linspace(-3, 3, 20).view(1, 20, 1).repeat(2, 1, 1)
    )
    dist = _model(*cfg).predict(task)
    assert torch.isfinite(dist.mean).all() and torch.isfinite(dist.stddev).all()


def test_task_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        Task(torch.zeros(1, 3, 1), torch.tensor([[[0.0], [float("nan")], [1.0]]]), torch.zeros(1, 2, 1))
    with pytest.raises(ValueError, match="yc"):
        Task(torch.zeros(1, 3, 1), torch.zeros(1, 4, 1), torch.zeros(1, 2, 1))
    with pytest.raises(ValueError, match="nt = 0"):
        Task(torch.zeros(1, 3, 1), torch.zeros(1, 3, 1), torch.zeros(1, 0, 1))
    # NaN in padded (masked) context points is allowed: they are never read.
    Task(
        torch.zeros(1, 2, 1),
        torch.tensor([[[1.0], [float("nan")]]]),
        torch.zeros(1, 1, 1),
        None,
        torch.tensor([[True, False]]),
    )


@pytest.mark.parametrize("isotropic", [True, False])
def test_separable_2d_setconv_matches_dense_kernel_sums(isotropic):
    from workbench.nn.setconv import SetConvDecoder, SetConvEncoder, make_grid

    torch.manual_seed(0)
    enc, dec = SetConvEncoder(2, 0.3, isotropic), SetConvDecoder(2, 0.4, isotropic)
    grid = make_grid(torch.zeros(3, 2), 21, 0.25)
    xc, yc, mask = torch.rand(3, 30, 2) * 4 - 2, torch.randn(3, 30, 1), torch.rand(3, 30) > 0.3
    xt, h = torch.rand(3, 50, 2) * 5 - 2.5, torch.randn(3, 21, 21, 5)
    w = enc.setconv.weights(grid.reshape(3, -1, 2), xc) * mask[:, None, :]
    density = w.sum(-1, keepdim=True)
    dense = torch.cat([(w @ yc) / (density + 1e-6), density], -1).reshape(3, 21, 21, 2)
    assert torch.allclose(enc(xc, yc, mask, grid), dense, atol=1e-5)
    dense_out = dec.setconv.weights(xt, grid.reshape(3, -1, 2)) @ h.reshape(3, -1, 5)
    assert torch.allclose(dec(grid, h, xt), dense_out, atol=1e-4)


def test_1d_conv_body_sees_the_whole_gibbs_box(gibbs):
    """Targets lie up to 2 units beyond the context: the default 1-D body's receptive field spans [-4, 4]."""
    from workbench.nn.cnn import ConvBody

    model = build_model(Experiment(dataset="gibbs-1d", relaxation="strict"), 1, 1, gibbs.box)
    body = model.body
    assert isinstance(body, ConvBody)
    n = model.n_grid
    impulse = torch.zeros(1, n, body.convs[0].weight.shape[1])
    impulse[0, n // 2] = 1.0
    with torch.no_grad():
        base = body(torch.zeros_like(impulse))
        reach = (body(impulse) - base).abs().sum(-1)[0] > 0
    idx = reach.nonzero()[:, 0]
    width_units = float(idx.max() - idx.min()) * model.spacing
    assert width_units >= 8.0  # the target box [-4, 4]; undilated 5 x 9 taps reach only 2.5


@pytest.mark.parametrize("dataset,group", [("colorado-temperature", "T"), ("gp-2d", "T+C4")])
def test_predict_grid_equals_pointwise_prediction(dataset, group):
    """The map path (decoder factorised per axis) gives the same Normal as predicting point by point."""
    from workbench.data.registry import make_dataset

    s = make_dataset(dataset)
    torch.manual_seed(0)
    m = build_model(Experiment(dataset=dataset, group=group, relaxation="fixed-inputs"), 2, 1, s.box).eval()
    t = next(iter(s.batches(2, seed=1)))
    t1, t2 = torch.linspace(-2.5, 2.0, 37), torch.linspace(-1.9, 2.2, 23)
    xt = torch.stack(torch.meshgrid(t1, t2, indexing="ij"), -1).reshape(1, -1, 2).expand(2, -1, -1)
    for fixed in (True, False):
        with torch.no_grad():
            pointwise = m(t.xc, t.yc, xt, t.mask_c, fixed_inputs=fixed)
            grid = m.predict_grid(t.xc, t.yc, t1, t2, t.mask_c, fixed_inputs=fixed)
        assert grid.mean.shape == (2, 37, 23, 1)
        torch.testing.assert_close(grid.mean, pointwise.mean.reshape(2, 37, 23, 1), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(grid.stddev, pointwise.stddev.reshape(2, 37, 23, 1), atol=1e-5, rtol=1e-5)
