"""Strict models are equivariant to float tolerance; free models are not; fixed inputs break it on purpose."""

import pytest
import torch

from workbench import Experiment
from workbench.evaluate import orbit_error, orbit_error_vs_shift
from workbench.groups import get_group
from workbench.models import build_model
from workbench.train import train

STRICT = [("conv", "T"), ("conv", "T+flip"), ("transformer", "T")]
FREE = [("conv", "none"), ("transformer", "none"), ("deepsets", "none")]


def _model(gibbs, model, group, relaxation="strict", seed=0, **kw):
    torch.manual_seed(seed)
    exp = Experiment(model=model, group=group, relaxation=relaxation, **kw)
    return build_model(exp, 1, 1, gibbs.box).eval()


@pytest.mark.parametrize("model,group", STRICT)
def test_strict_models_have_tiny_orbit_error(gibbs, gibbs_tasks, model, group):
    m = _model(gibbs, model, group)
    train(m, gibbs.batches(8, seed=3), 10, progress=False)
    err = orbit_error(m, gibbs_tasks, get_group(group), gibbs.box, shift=1.5)
    assert err < 1e-4


@pytest.mark.parametrize("model,group", FREE)
def test_free_models_are_not_translation_equivariant(gibbs, gibbs_tasks, model, group):
    m = _model(gibbs, model, group)
    train(m, gibbs.batches(8, seed=3), 30, progress=False)
    err = orbit_error(m, gibbs_tasks, get_group("T"), gibbs.box, shift=1.5)
    assert err > 1e-3


def test_flip_model_is_reflection_equivariant_but_plain_conv_is_not(gibbs, gibbs_tasks):
    flip = get_group("T+flip")
    sym, plain = _model(gibbs, "conv", "T+flip"), _model(gibbs, "conv", "T")
    for m in (sym, plain):
        train(m, gibbs.batches(8, seed=4), 10, progress=False)
    assert orbit_error(sym, gibbs_tasks, flip, gibbs.box) < 1e-4
    assert orbit_error(plain, gibbs_tasks, flip, gibbs.box) > 1e-3


@pytest.mark.parametrize("model", ["conv", "transformer"])
def test_fixed_inputs_off_is_the_strict_component(gibbs, gibbs_tasks, model):
    m = _model(gibbs, model, "T", "fixed-inputs")
    task = gibbs_tasks[0]
    off = m.predict(task, fixed_inputs=False).mean
    # The strict component is the same network with t = 0: zero the fixed-input MLP's last layer.
    with torch.no_grad():
        m.fixed.mlp[-1].weight.zero_()
        m.fixed.mlp[-1].bias.zero_()
    assert torch.equal(m.predict(task).mean, off)


def test_relaxed_conv_off_is_a_plain_equivariant_conv(gibbs, gibbs_tasks):
    m = _model(gibbs, "conv", "T", "relaxed-conv", strength=1.0)
    train(m, gibbs.batches(8, seed=4), 10, progress=False)
    t = get_group("T")
    off = orbit_error(m, gibbs_tasks, t, gibbs.box, shift=1.5, fixed_inputs=False)
    assert off < 1e-4
    assert orbit_error(m, gibbs_tasks, t, gibbs.box, shift=1.5) > 100 * max(off, 1e-7)


def test_relaxed_conv_with_flips_keeps_the_reflection_in_its_strict_component(gibbs, gibbs_tasks):
    # Its banks are mirror-symmetric kernels: with the mixing off, the T+flip body is one symmetric
    # convolution per layer (plain banks once left it about 1e-4 off even untrained).
    m = _model(gibbs, "conv", "T+flip", "relaxed-conv", strength=1.0)
    train(m, gibbs.batches(8, seed=4), 10, progress=False)
    flip = get_group("T+flip")
    off = orbit_error(m, gibbs_tasks, flip, gibbs.box, fixed_inputs=False)
    assert off < 1e-5
    assert orbit_error(m, gibbs_tasks, flip, gibbs.box) > 100 * max(off, 1e-7)


@pytest.mark.parametrize("kw", [dict(n_fixed=0), dict(strength=0.0)])
def test_no_channels_or_zero_strength_is_strict_even_after_training(gibbs, gibbs_tasks, kw):
    m = _model(gibbs, "conv", "T", "fixed-inputs", **kw)
    train(m, gibbs.batches(8, seed=1), 5, progress=False)
    assert not m.has_fixed_inputs or m.fixed.dropout == 1.0
    assert orbit_error(m, gibbs_tasks, get_group("T"), gibbs.box, shift=1.5) < 1e-4


def test_fixed_inputs_break_translation_symmetry_after_training(gibbs, gibbs_tasks):
    t = get_group("T")
    strict = _model(gibbs, "conv", "T", "strict")
    approx = _model(gibbs, "conv", "T", "fixed-inputs")
    for m in (strict, approx):
        train(m, gibbs.batches(8, seed=2), 15, progress=False)
    e_strict = orbit_error(strict, gibbs_tasks, t, gibbs.box, shift=1.5)
    e_approx = orbit_error(approx, gibbs_tasks, t, gibbs.box, shift=1.5)
    assert e_approx > 100 * max(e_strict, 1e-7)
    # ... and only inside the box: turned off, the same model is strict again.
    assert orbit_error(approx, gibbs_tasks, t, gibbs.box, shift=1.5, fixed_inputs=False) < 1e-4


def test_fixed_inputs_are_zero_outside_the_box(gibbs):
    m = _model(gibbs, "conv", "T", "fixed-inputs")
    x = torch.tensor([[[-4.5], [-3.9], [0.0], [3.9], [4.5]]])
    t = m.fixed_input_values(x)
    assert torch.all(t[0, [0, 4]] == 0)
    assert torch.all(t[0, [1, 2, 3]].abs().sum(-1) > 0)


def test_orbit_error_vs_shift_is_zero_for_strict_and_grows_for_free(gibbs, gibbs_tasks):
    """The Equivariance tab's curve: a strict model stays at zero for every shift, a free one does not."""
    shifts = [0.25, 1.0, 2.0]
    strict, free = _model(gibbs, "conv", "T"), _model(gibbs, "deepsets", "none")
    for m in (strict, free):
        train(m, gibbs.batches(8, seed=5), 10, progress=False)
    strict = orbit_error_vs_shift(strict, gibbs_tasks, gibbs.box, shifts)
    free = orbit_error_vs_shift(free, gibbs_tasks, gibbs.box, shifts)
    assert list(strict.coords["shift"].values) == shifts
    assert float(strict.max()) < 1e-4
    assert float(free[-1]) > 1e-3 and float(free[-1]) > float(free[0])
