"""The group is one object from the experiment to the layer, and every model answers the same interface."""

from __future__ import annotations

import pytest
import torch

from workbench.config import Experiment
from workbench.groups import GROUPS, get_group
from workbench.models import build_model
from workbench.models.bodies import BODIES
from workbench.nn.cnn import GroupConvBody
from workbench.nn.groupconv import GroupSpec


def test_the_group_object_knows_what_the_names_used_to_say():
    assert [name for name, g in GROUPS.items() if g.is_trivial] == ["none"]
    assert get_group("none").reference is get_group("T")
    assert all(g.reference is g for g in GROUPS.values() if not g.is_trivial)
    assert {name: g.enforced_by for name, g in GROUPS.items()} == {
        "none": "conv",
        "T": "conv",
        "T+flip": "symmetric-conv",
        "T+C4": "group-conv",
        "T+D4": "group-conv",
        "T+C8": "group-conv",
        "T+D8": "group-conv",
    }
    assert all(g.enforced_by in BODIES for g in GROUPS.values())
    assert get_group("T+D8").point_group == (8, True) and get_group("T").point_group == (1, False)


@pytest.mark.parametrize("name", ["T+C4", "T+D4", "T+C8", "T+D8"])
def test_the_layer_gets_the_point_group_of_the_object(name):
    exp = Experiment(dataset="gp-2d", group=name, relaxation="strict")
    assert exp.symmetry is get_group(name)
    model = build_model(exp, 2, 1, ((-2.0, 2.0), (-2.0, 2.0)))
    assert isinstance(model.body, GroupConvBody)
    assert model.body.cnn.group == GroupSpec.of(exp.symmetry) == GroupSpec.from_name(name.removeprefix("T+"))


def test_every_model_answers_the_grid_interface():
    box = ((-2.0, 2.0), (-2.0, 2.0))
    xc, yc = torch.rand(2, 5, 2) * 2 - 1, torch.randn(2, 5, 1)
    t1, t2 = torch.linspace(-1, 1, 4), torch.linspace(-1, 1, 3)
    for model in ("conv", "transformer", "deepsets"):
        exp = Experiment(dataset="gp-2d", model=model, group="none", relaxation="strict")
        torch.manual_seed(0)
        net = build_model(exp, 2, 1, box).eval()
        assert (net.grid_centre is not None) == (model == "conv")
        net.set_grid("context")  # a model without a grid has nothing to place
        with torch.no_grad():
            grid = net.predict_grid(xc, yc, t1, t2).mean
            g1, g2 = torch.meshgrid(t1, t2, indexing="ij")
            xt = torch.stack([g1, g2], -1).reshape(1, -1, 2).expand(2, -1, -1)
            points = net(xc, yc, xt).mean.reshape(2, 4, 3, 1)
        assert grid.shape == (2, 4, 3, 1) and torch.allclose(grid, points, atol=1e-4)
        assert net.penalty().item() == 0.0
