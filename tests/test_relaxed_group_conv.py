"""Relaxed group convolutions for T+C4/D4/C8/D8: strict at strength 0, really relaxed above it."""

import pytest
import torch

from workbench import Experiment
from workbench.cli import main
from workbench.data.registry import make_dataset
from workbench.evaluate import orbit_error, orbit_error_by_element, orbit_error_vs_angle
from workbench.groups import get_group
from workbench.models import build_model
from workbench.models.relaxations.relaxed_conv import BANKS
from workbench.nn.groupconv import GroupSpec, act_on_field
from workbench.nn.relaxed_groupconv import RelaxedGroupCNN, RelaxedGroupConvBody
from workbench.train import train

ROTATION_GROUPS = ["T+C4", "T+D4", "T+C8", "T+D8"]
# As in test_rotations: C8/D8 are compared at 45 degrees inside the disc of the box (the square grid's
# zero padding is not rotation-invariant near its corners), relative to each model's spread.
DISC = 2.0


@pytest.fixture(scope="module")
def gp2d():
    return make_dataset("gp-2d")


@pytest.fixture(scope="module")
def tasks2d(gp2d):
    return gp2d.test_set(2, batch_size=4, seed=7)


def _model(sampler, group, relaxation="relaxed-conv", seed=0, **kw):
    torch.manual_seed(seed)
    exp = Experiment(dataset=sampler.name, group=group, relaxation=relaxation, **kw)
    return build_model(exp, 2, 1, sampler.box).eval()


def _perturb(model, scale=0.5, seed=1):
    """Large random mixing weights: what training could make of the fixed inputs' last layer."""
    gen = torch.Generator().manual_seed(seed)
    last = model.fixed.mlp[-1]
    with torch.no_grad():
        last.weight.copy_(scale * torch.randn(last.weight.shape, generator=gen))
        last.bias.copy_(scale * torch.randn(last.bias.shape, generator=gen))
    return model


# --- the layer -------------------------------------------------------------------------------------


def _mixing(cnn, b, n, *, by_element, gen):
    """Mixing inputs ``[b, n, n, M]``, constant over the grid; the same for every element unless asked."""
    layers, order = cnn.depth, cnn.group.order
    shape = (layers, cnn.banks, order if by_element else 1)
    t = (0.5 * torch.randn(shape, generator=gen, dtype=torch.float64)).expand(layers, cnn.banks, order)
    return t.reshape(1, 1, 1, -1).expand(b, n, n, -1)


@pytest.mark.parametrize("name", ["C4", "D4"])
@torch.no_grad()
def test_layer_with_mixing_independent_of_element_and_place_is_exactly_equivariant(name):
    group = GroupSpec.from_name(name)
    torch.manual_seed(0)
    cnn = RelaxedGroupCNN(2, 3, 2, 3, 3, group).double()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 11, 11, generator=gen, dtype=torch.float64)
    same = _mixing(cnn, 2, 11, by_element=False, gen=gen)
    by_g = _mixing(cnn, 2, 11, by_element=True, gen=gen)
    worst = 0.0
    for g in group.elements():
        # w_l independent of g and x: one group conv with the kernel sum_l w_l psi_l.
        moved = cnn(act_on_field(x, group, g), same)
        torch.testing.assert_close(moved, act_on_field(cnn(x, same), group, g), rtol=0, atol=1e-10)
        worst = max(
            worst,
            float((cnn(act_on_field(x, group, g), by_g) - act_on_field(cnn(x, by_g), group, g)).abs().max()),
        )
    # w_l(g): the rotations and reflections are relaxed for real.
    assert worst > 1e-2


@torch.no_grad()
def test_layer_with_mixing_by_element_only_still_commutes_with_translations():
    group = GroupSpec.from_name("C4")
    torch.manual_seed(0)
    cnn = RelaxedGroupCNN(1, 3, 1, 3, 2, group).double()
    gen = torch.Generator().manual_seed(1)
    x = torch.zeros(1, 1, 21, 21, dtype=torch.float64)
    x[..., 6:11, 6:11] = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    t = _mixing(cnn, 1, 21, by_element=True, gen=gen)
    shifted = torch.roll(x, (4, 3), dims=(-2, -1))
    # The support stays far from the zero-padded edges, so a shift of the input is a shift of the output.
    torch.testing.assert_close(
        cnn(shifted, t), torch.roll(cnn(x, t), (4, 3), dims=(-2, -1)), rtol=0, atol=1e-12
    )


@torch.no_grad()
def test_equal_mixing_averages_the_kernels_first_and_refuses_a_wrong_width():
    torch.manual_seed(0)
    body = RelaxedGroupConvBody(4, 8, 3, 3, GroupSpec.from_name("D4")).double()
    h = torch.randn(2, 9, 9, 4, dtype=torch.float64)
    zero = torch.zeros(2, 9, 9, body.n_mixing, dtype=torch.float64)
    tiny = torch.full_like(zero, 1e-300)  # not all zero: takes the path that mixes L outputs
    torch.testing.assert_close(body(h, None), body(h, zero), rtol=0, atol=0)
    torch.testing.assert_close(body(h, None), body(h, tiny), rtol=1e-12, atol=1e-12)
    assert body.n_mixing == BANKS * 3 * 8
    with pytest.raises(ValueError, match="mixing channels for D4, got 5"):
        body(h, zero[..., :5])


# --- the model -------------------------------------------------------------------------------------


def test_experiment_accepts_relaxed_conv_for_rotation_groups_and_list_says_so(capsys):
    for group in ROTATION_GROUPS:
        Experiment(dataset="gp-2d", model="conv", group=group, relaxation="relaxed-conv")
    with pytest.raises(ValueError, match="nothing to relax"):
        Experiment(dataset="gp-2d", group="none", relaxation="relaxed-conv")
    assert main(["list"]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.strip().startswith("relaxed-conv"))
    assert "T+C4" in line and "translation" not in line


@pytest.mark.parametrize("group", ROTATION_GROUPS)
def test_parameter_count_is_banks_times_the_strict_body(gp2d, group):
    relaxed, strict = _model(gp2d, group), _model(gp2d, group, "strict")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(relaxed.body) == BANKS * count(strict.body)
    order = GroupSpec.of(get_group(group)).order
    # BANKS weights per layer (depth 4 in 2-D) and per output group element.
    assert relaxed.fixed.n_channels == BANKS * 4 * order
    assert count(relaxed) == count(strict) - count(strict.body) + count(relaxed.body) + count(relaxed.fixed)


@pytest.mark.parametrize("group", ["T+C4", "T+D4"])
def test_strength_0_is_exactly_equivariant_and_strength_1_is_not(gp2d, tasks2d, group):
    g = get_group(group)
    strict = _perturb(_model(gp2d, group, strength=0.0))
    assert strict.fixed.dropout == 1.0
    errors = orbit_error_by_element(strict, tasks2d, g, gp2d.box)
    assert len(errors) == (8 if group == "T+D4" else 4)
    assert max(errors.values()) < 1e-4, errors
    assert orbit_error(strict, tasks2d, g, gp2d.box, shift=1.0) < 1e-4
    relaxed, few = _perturb(_model(gp2d, group, strength=1.0)), tasks2d[:1]
    on = orbit_error_by_element(relaxed, few, g, gp2d.box)
    off = orbit_error_by_element(relaxed, few, g, gp2d.box, fixed_inputs=False)
    # The strict component (equal mixing) stays exact at any strength; the relaxed model is not.
    assert max(off.values()) < 1e-4, off
    assert min(v for k, v in on.items() if k != "rot0") > 1e-2, on
    # The mixing depends on position inside the box too: translations are relaxed as well.
    assert orbit_error(relaxed, few, get_group("T"), gp2d.box, shift=1.0) > 1e-2
    assert orbit_error(relaxed, few, get_group("T"), gp2d.box, shift=1.0, fixed_inputs=False) < 1e-4


@pytest.mark.parametrize("group", ["T+C8", "T+D8"])
def test_c8_d8_at_strength_0_are_as_equivariant_as_the_strict_group_cnn(gp2d, tasks2d, group):
    kw = dict(radius=DISC, relative=True)
    relaxed = _perturb(_model(gp2d, group, strength=0.0))
    plain = _model(gp2d, "T", "strict")
    curve = orbit_error_vs_angle(relaxed, tasks2d, gp2d.box, [45.0, 90.0], **kw)
    curve_t = orbit_error_vs_angle(plain, tasks2d, gp2d.box, [45.0], **kw)
    assert float(curve.sel(angle=45.0)) * 10 < float(curve_t.sel(angle=45.0))
    # Quarter turns are exact over the whole box, as for the strict C8/D8 models ...
    assert float(orbit_error_vs_angle(relaxed, tasks2d, gp2d.box, [90.0]).sel(angle=90.0)) < 1e-4
    # ... and broken at strength 1 once the mixing depends on the group element.
    on = _perturb(_model(gp2d, group, strength=1.0))
    assert float(orbit_error_vs_angle(on, tasks2d, gp2d.box, [90.0]).sel(angle=90.0)) > 1e-2


def test_trains_on_anisotropic_data_with_a_falling_loss():
    aniso = make_dataset("gp-2d-anisotropic")
    m = _model(aniso, "T+C4", strength=1.0).train()
    # One batch seen again and again: the loss must fall (fresh batches would hide a short trend in noise).
    batch = next(iter(aniso.batches(4, seed=0)))
    history = train(m, [batch], 10, lr=3e-3, progress=False)
    assert all(torch.isfinite(torch.tensor(history.loss)))
    assert sum(history.loss[-3:]) / 3 < sum(history.loss[:3]) / 3 - 0.02, history.loss
    # Training moved the mixing weights off equal mixing: the model now breaks the rotations.
    tasks = aniso.test_set(1, batch_size=4, seed=3)
    on = orbit_error_by_element(m, tasks, get_group("T+C4"), aniso.box)
    off = orbit_error_by_element(m, tasks, get_group("T+C4"), aniso.box, fixed_inputs=False)
    assert max(off.values()) < 1e-4
    assert on["rot90"] > 100 * max(off["rot90"], 1e-7)
