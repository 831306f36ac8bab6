"""Group convolutions for C_n / D_n: group laws, filter banks, shapes and (approximate) equivariance."""

from __future__ import annotations

import functools
import itertools
import math

import pytest
import torch

from workbench.nn.groupconv import (
    GroupCNN,
    GroupConv2d,
    GroupPool,
    GroupSpec,
    LiftingConv2d,
    act_on_field,
    act_on_regular,
    filter_support,
    matched_channels,
    plain_cnn,
    rotate_filters,
)

EXACT = ["C4", "D4"]
ALL = ["C1", "C2", "C3", "C4", "D1", "D2", "D4", "C8", "D6", "D8"]


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def _quarter_turn_elements(group: GroupSpec) -> list[tuple[int, int]]:
    """Elements that map the pixel grid onto itself exactly (rotations by multiples of 90 degrees)."""
    return [g for g in group.elements() if (4 * g[0]) % group.n == 0]


def _bump_field(n: int, theta: float, seed: int, batch: int = 2, sigma: float = 3.0) -> torch.Tensor:
    """Smooth field sum_i a_i exp(-|A(theta) p - c_i|^2 / 2 sigma^2) on an n x n grid: ``[batch, 1, n, n]``.

    Evaluated analytically at rotated coordinates, so ``theta`` rotates the input exactly (same convention as
    ``act_on_field``: ``(R f)(p) = f(A p)``).
    """
    gen = torch.Generator().manual_seed(seed)
    centres = (torch.rand(batch, 12, 2, generator=gen, dtype=torch.float64) - 0.5) * 0.8 * n
    amps = torch.randn(batch, 12, generator=gen, dtype=torch.float64)
    coords = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    u, v = coords[:, None], coords[None, :]
    su = math.cos(theta) * u + math.sin(theta) * v
    sv = -math.sin(theta) * u + math.cos(theta) * v
    d2 = (su - centres[..., 0, None, None]) ** 2 + (sv - centres[..., 1, None, None]) ** 2
    return (amps[..., None, None] * torch.exp(-d2 / (2 * sigma**2))).sum(1, keepdim=True).float()


# --------------------------------------------------------------------------------------------------------
# GroupSpec
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,n,refl,order", [("C4", 4, False, 4), ("D4", 4, True, 8), ("C8", 8, False, 8), ("D8", 8, True, 16)]
)
def test_groupspec_basics(name, n, refl, order):
    g = GroupSpec.from_name(name)
    assert (g.n, g.reflections, g.order, g.name) == (n, refl, order, name)
    assert g == GroupSpec(n, refl) and GroupSpec.from_name(name.lower()) == g
    els = g.elements()
    assert len(els) == order and els[0] == (0, 0)
    # Documented ordering: rotations first, then reflected rotations; index = s * n + r.
    assert all(g.index(e) == i and g.element(i) == e for i, e in enumerate(els))
    assert els[: g.n] == [(r, 0) for r in range(g.n)]


@pytest.mark.parametrize("name", ALL)
def test_group_laws(name):
    g = GroupSpec.from_name(name)
    els = g.elements()
    e = (0, 0)
    for a in els:
        assert g.compose(e, a) == a == g.compose(a, e)
        assert g.compose(a, g.inverse(a)) == e == g.compose(g.inverse(a), a)
    for a, b, c in itertools.product(els, repeat=3):
        assert g.compose(g.compose(a, b), c) == g.compose(a, g.compose(b, c))
    table = g.cayley_table()
    # Latin square: every row and column is a permutation of the group.
    assert (table.sort(0).values == torch.arange(g.order)[:, None]).all()
    assert (table.sort(1).values == torch.arange(g.order)[None, :]).all()
    assert table[torch.arange(g.order), g.inverse_indices()].eq(0).all()
    if g.reflections and g.n > 2:
        assert g.compose((1, 0), (0, 1)) != g.compose((0, 1), (1, 0))  # D_n is not abelian


@pytest.mark.parametrize("name", ["C4", "D4", "C8", "D8"])
def test_composition_matches_action_on_fields(name):
    g = GroupSpec.from_name(name)
    x = torch.randn(2, 3, 9, 9)
    els = _quarter_turn_elements(g)
    for a, b in itertools.product(els, repeat=2):
        lhs = act_on_field(act_on_field(x, g, b), g, a)
        assert torch.equal(lhs, act_on_field(x, g, g.compose(a, b)))
    assert torch.equal(act_on_field(x, g, (g.n // 4, 0)), torch.rot90(x, 1, dims=(-2, -1)))
    if g.reflections:
        assert torch.equal(act_on_field(x, g, (0, 1)), torch.flip(x, dims=(-1,)))


@pytest.mark.parametrize("bad", ["X4", "C0", "D", "C-1", "4", "C4.5", "", "D 8x"])
def test_from_name_rejects_bad_names(bad):
    with pytest.raises(ValueError) as info:
        GroupSpec.from_name(bad)
    msg = str(info.value)
    assert repr(bad) in msg and "C4" in msg and "D8" in msg


def test_groupspec_rejects_bad_elements():
    with pytest.raises(ValueError, match="n must be"):
        GroupSpec(0)
    with pytest.raises(ValueError, match="no reflections"):
        GroupSpec(4).index((1, 1))
    with pytest.raises(IndexError):
        GroupSpec(4).element(4)


# --------------------------------------------------------------------------------------------------------
# Filter banks
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXACT)
def test_rotate_filters_exact_groups_use_rot90_and_flip(name):
    g = GroupSpec.from_name(name)
    w = torch.randn(3, 2, 5, 5)
    bank = rotate_filters(w, g)
    assert bank.shape == (3, 2, g.order, 5, 5)
    for i, (r, s) in enumerate(g.elements()):
        expect = torch.rot90(torch.flip(w, dims=(-1,)) if s else w, r, dims=(-2, -1))
        assert torch.equal(bank[:, :, i], expect)
    assert filter_support(5, g).all()


def test_disc_support():
    mask = filter_support(5, "C8")
    assert mask.sum() == 13 and not mask[0, 0] and not mask[0, 1] and mask[0, 2] and mask[2, 2]
    assert torch.equal(mask, torch.rot90(mask)) and torch.equal(mask, mask.flip(-1))
    assert filter_support(9, "D8").sum() < 81


@pytest.mark.parametrize("interp", ["gaussian", "bilinear"])
@pytest.mark.parametrize("name", ["C8", "D8"])
def test_rotate_filters_interpolated_groups(name, interp):
    g = GroupSpec.from_name(name)
    w = torch.randn(4, 5, 5, dtype=torch.float64)
    bank = rotate_filters(w, g, interpolation=interp)
    assert bank.shape == (4, g.order, 5, 5)
    # Only the disc pixels are parameters.
    w2 = w.clone()
    w2[:, ~filter_support(5, g)] = 7.0
    assert torch.equal(rotate_filters(w2, g, interpolation=interp), bank)
    # Quarter turns and flips are exact permutations of the bank.
    for i, e in enumerate(g.elements()):
        j = g.index(g.compose((2, 0), e))
        assert torch.allclose(bank[:, j], torch.rot90(bank[:, i], 1, dims=(-2, -1)), atol=1e-14)
        if g.reflections:
            j = g.index(g.compose((0, 1), e))
            assert torch.allclose(bank[:, j], torch.flip(bank[:, i], dims=(-1,)), atol=1e-14)
    if interp == "bilinear":
        masked = w * filter_support(5, g)
        assert torch.allclose(bank[:, 0], masked)
        # Splatting keeps the filter's sum and rotates its first moments exactly (what smooth inputs see).
        coords = torch.arange(5, dtype=torch.float64) - 2
        u, v = coords[:, None], coords[None, :]
        c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
        assert torch.allclose(bank[:, 1].sum((-2, -1)), masked.sum((-2, -1)))
        mu, mv = (masked * u).sum((-2, -1)), (masked * v).sum((-2, -1))
        assert torch.allclose((bank[:, 1] * u).sum((-2, -1)), c * mu - s * mv)
        assert torch.allclose((bank[:, 1] * v).sum((-2, -1)), s * mu + c * mv)


def test_rotate_filters_rejects_bad_input():
    with pytest.raises(ValueError, match="odd"):
        rotate_filters(torch.randn(4, 4), "C8")
    with pytest.raises(ValueError, match="square"):
        rotate_filters(torch.randn(5, 3), "C4")
    with pytest.raises(ValueError, match="interpolation"):
        rotate_filters(torch.randn(5, 5), "C8", interpolation="cubic")


@pytest.mark.parametrize("name", ["C4", "D4", "C8", "D8", "C3"])
def test_full_weight_matches_naive_definition(name):
    """One gather builds out(g) = sum_h in(h) * R_g w[g^-1 h]; check it against a slow double loop."""
    g = GroupSpec.from_name(name)
    conv = GroupConv2d(2, 3, 5, g).double()
    k = 5
    full_w = conv.full_weight().view(3, g.order, 2, g.order, k, k)
    mask = filter_support(k, g)
    raw = torch.zeros(3, 2, g.order, k * k, dtype=torch.float64)
    raw[..., mask.flatten()] = conv.weight.detach()
    bank = rotate_filters(raw.view(3, 2, g.order, k, k), g)  # [o, i, h', g, k, k]
    for (gi, ge), (hi, he) in itertools.product(enumerate(g.elements()), repeat=2):
        rel = g.index(g.compose(g.inverse(ge), he))
        assert torch.allclose(full_w[:, gi, :, hi], bank[:, :, rel, gi], atol=1e-12)
    lift = LiftingConv2d(2, 3, k, g).double()
    raw = torch.zeros(3, 2, k * k, dtype=torch.float64)
    raw[..., mask.flatten()] = lift.weight.detach()
    expect = rotate_filters(raw.view(3, 2, k, k), g).transpose(1, 2)
    assert torch.allclose(lift.full_weight().view(3, g.order, 2, k, k), expect, atol=1e-12)


# --------------------------------------------------------------------------------------------------------
# Layers: shapes and exact equivariance
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["C4", "D4", "C8", "D8"])
def test_shapes(name):
    g = GroupSpec.from_name(name)
    x = torch.randn(2, 3, 12, 12)
    y = LiftingConv2d(3, 5, 3, g)(x)
    assert y.shape == (2, 5, g.order, 12, 12)
    z = GroupConv2d(5, 4, 5, g)(y)
    assert z.shape == (2, 4, g.order, 12, 12)
    assert GroupPool("mean")(z).shape == GroupPool("max")(z).shape == (2, 4, 12, 12)
    net = GroupCNN(3, 4, 2, 5, 4, name)
    assert net(x).shape == (2, 2, 12, 12)
    assert len(net.convs) == 2 and net.n_feature_maps == 4 * g.order
    with pytest.raises(ValueError, match="expected"):
        GroupConv2d(5, 4, 5, g)(torch.randn(2, 5, g.order + 1, 12, 12))


def test_group_pool():
    x = torch.randn(2, 3, 8, 5, 5)
    assert torch.equal(GroupPool("mean")(x), x.mean(2))
    assert torch.equal(GroupPool("max")(x), x.amax(2))
    with pytest.raises(ValueError, match="'mean' or 'max'"):
        GroupPool("sum")


@pytest.mark.parametrize("name", ["C4", "D4", "C8", "D8"])
def test_lift_and_group_conv_equivariant_with_group_axis_permutation(name):
    g = GroupSpec.from_name(name)
    torch.manual_seed(0)
    lift, conv = LiftingConv2d(3, 4, 5, g), GroupConv2d(4, 3, 5, g)
    x = torch.randn(2, 3, 15, 15)
    h = torch.randn(2, 4, g.order, 15, 15)
    ly, cy = lift(x), conv(h)
    tol = 1e-5 if g.exact_on_grid else 1e-4
    for e in _quarter_turn_elements(g):
        assert _rel_err(lift(act_on_field(x, g, e)), act_on_regular(ly, g, e)) < tol
        assert _rel_err(conv(act_on_regular(h, g, e)), act_on_regular(cy, g, e)) < tol
    # The permutation matters: without it (or with the inverse one) the lift is not equivariant.
    e = (g.n // 4, 0)
    assert _rel_err(lift(act_on_field(x, g, e)), act_on_field(ly, g, e)) > 0.1


@pytest.mark.parametrize("pool", ["mean", "max"])
@pytest.mark.parametrize("name", EXACT)
def test_group_cnn_exactly_equivariant(name, pool):
    g = GroupSpec.from_name(name)
    torch.manual_seed(1)
    net = GroupCNN(2, 4, 3, 5, 4, g, pool=pool)
    for size in (16, 17) if pool == "mean" else (17,):
        x = torch.randn(2, 2, size, size)
        y = net(x)
        for e in g.elements():
            assert _rel_err(net(act_on_field(x, g, e)), act_on_field(y, g, e)) < 1e-5, e


@pytest.mark.parametrize("interp", ["gaussian", "bilinear"])
@pytest.mark.parametrize("name", ["C8", "D8"])
def test_group_cnn_c8_d8_exact_for_quarter_turns_and_flips(name, interp):
    g = GroupSpec.from_name(name)
    torch.manual_seed(2)
    net = GroupCNN(2, 3, 2, 5, 4, g, interpolation=interp)
    x = torch.randn(2, 2, 16, 16)
    y = net(x)
    for e in _quarter_turn_elements(g):
        assert _rel_err(net(act_on_field(x, g, e)), act_on_field(y, g, e)) < 1e-4, e


# --------------------------------------------------------------------------------------------------------
# 45-degree rotations: approximate, but far better than a plain CNN
# --------------------------------------------------------------------------------------------------------


def _equiv_error_45(net: torch.nn.Module, n: int, depth: int, k: int, seed: int) -> float:
    """Mean |net(R x) - R net(x)| / mean |net(x)| on the central disc, R = 45-degree rotation."""
    theta = math.pi / 4
    x, xr = _bump_field(n, 0.0, seed), _bump_field(n, theta, seed)
    with torch.no_grad():
        y, yr = net(x), net(xr)
    y_rot = act_on_field(y, "C8", (1, 0), mode="bicubic")
    # Points whose receptive field (and that of their rotated partner) never sees the zero padding.
    radius = (n - 1) / 2 - depth * (k // 2) - 2
    coords = torch.arange(n) - (n - 1) / 2
    disc = coords[:, None] ** 2 + coords[None, :] ** 2 <= radius**2
    return ((yr - y_rot)[..., disc].abs().mean() / y[..., disc].abs().mean()).item()


@functools.cache
def _plain_cnn_errors_45(n: int, depth: int, k: int) -> tuple[float, ...]:
    errs = []
    for seed in range(3):
        torch.manual_seed(seed)
        errs.append(_equiv_error_45(plain_cnn(1, 32, 1, k, depth), n, depth, k, seed))
    return tuple(errs)


@pytest.mark.parametrize("interp", ["gaussian", "bilinear"])
@pytest.mark.parametrize("name", ["C8", "D8"])
def test_45_degree_equivariance_error_10x_below_plain_cnn(name, interp):
    n, depth, k = 41, 4, 5
    group_errs, plain_errs = [], _plain_cnn_errors_45(n, depth, k)
    for seed in range(3):
        torch.manual_seed(seed)
        group_errs.append(
            _equiv_error_45(GroupCNN(1, 4, 1, k, depth, name, interpolation=interp), n, depth, k, seed)
        )
    group_err, plain_err = sum(group_errs) / 3, sum(plain_errs) / 3
    assert group_err < 0.05, group_errs
    assert group_err * 10 < plain_err, (group_errs, plain_errs)


# --------------------------------------------------------------------------------------------------------
# Initialisation, parameters, gradients
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["C4", "D4", "C8", "D8"])
def test_activation_scale_at_depth_5(name):
    torch.manual_seed(3)
    net = GroupCNN(3, 6, 2, 5, 5, name)
    x = torch.nn.functional.avg_pool2d(torch.randn(4, 3, 36, 36), 3, stride=1, padding=1) * 3
    with torch.no_grad():
        h = torch.relu(net.lift(x))
        scales = [h.pow(2).mean().sqrt().item()]
        for conv in net.convs:
            h = torch.relu(conv(h))
            scales.append(h.pow(2).mean().sqrt().item())
        out = net(x).std().item()
    assert all(0.2 < s < 5 for s in scales), scales
    assert 0.03 < out < 10


def test_parameter_counts_and_channel_budgets():
    net = GroupCNN(3, 8, 2, 5, 4, "C8")
    s, order = int(filter_support(5, "C8").sum()), 8
    expect = (3 * 8 * s + 8) + 2 * (8 * 8 * order * s + 8) + (8 * 2 * order * s + 2)
    assert net.n_parameters == expect == sum(p.numel() for p in net.parameters())
    expect = (3 * 8 * 25 + 8) + 2 * (8 * 8 * 4 * 25 + 8) + (8 * 2 * 4 * 25 + 2)
    assert GroupCNN(3, 8, 2, 5, 4, "C4").n_parameters == expect
    assert matched_channels(32, "C8", "feature_maps") == 4
    assert matched_channels(32, "C4", "params") == 16
    assert matched_channels(64, "D8", "params") == 16
    with pytest.raises(ValueError, match="match"):
        matched_channels(32, "C8", "flops")
    # Equal feature maps -> roughly |G| x fewer parameters than the plain CNN of the same width.
    plain = plain_cnn(3, 32, 2, 5, 4)
    g4 = GroupCNN(3, matched_channels(32, "C4", "feature_maps"), 2, 5, 4, "C4")
    ratio = sum(p.numel() for p in plain.parameters()) / g4.n_parameters
    assert 2.5 < ratio < 5


def test_gradients_reach_all_parameters_and_buffers_are_not_saved():
    net = GroupCNN(2, 3, 1, 5, 3, "D8")
    net(torch.randn(1, 2, 12, 12)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    assert all(not k.split(".")[-1].startswith("_") for k in net.state_dict())
    clone = GroupCNN(2, 3, 1, 5, 3, "D8")
    clone.load_state_dict(net.state_dict())
    x = torch.randn(1, 2, 12, 12)
    assert torch.equal(clone(x), net(x))


def test_double_precision_and_bad_arguments():
    net = GroupCNN(1, 2, 1, 3, 2, "C8").double()
    assert net(torch.randn(1, 1, 8, 8, dtype=torch.float64)).dtype == torch.float64
    with pytest.raises(ValueError, match="odd"):
        LiftingConv2d(1, 2, 4, "C4")
    with pytest.raises(ValueError, match="depth"):
        GroupCNN(1, 2, 1, 3, 1, "C4")
    with pytest.raises(ValueError, match="interpolation"):
        GroupConv2d(1, 2, 3, "C8", interpolation="nearest")
