"""The bodies that enforce a group on the SetConv grid, one per ``Group.enforced_by``.

Every body is called ``body(h, t)`` (grid features, the relaxation's fixed inputs at the grid; see
:mod:`workbench.nn.cnn`). A relaxation builds the strict body of its group through :data:`BODIES`
and may wrap or replace it (:mod:`workbench.models.relaxations`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from workbench.groups import Group
from workbench.nn.cnn import ConvBody, GroupConvBody
from workbench.nn.groupconv import GroupSpec


@dataclass(frozen=True)
class BodySpec:
    """What a conv body is built from: grid dimension, channels in and out, depth, kernel, dilations."""

    group: Group
    dim: int
    c_in: int
    channels: int
    depth: int
    kernel: int
    dilations: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Body:
    """How to build the strict body of a group, and what the rest of the model must do for it."""

    build: Callable[[BodySpec], nn.Module]
    #: One SetConv length scale for all axes, so that the encoder commutes with rotations too.
    isotropic: bool = False
    #: Built before the encoder (the group CNN draws its initial weights first), so that a model
    #: built from a seed has the weights it had when the run was saved.
    built_first: bool = False


def _conv(spec: BodySpec) -> nn.Module:
    return ConvBody(spec.dim, spec.c_in, spec.channels, spec.depth, spec.kernel, False, spec.dilations)


def _symmetric_conv(spec: BodySpec) -> nn.Module:
    return ConvBody(spec.dim, spec.c_in, spec.channels, spec.depth, spec.kernel, True, spec.dilations)


def _group_conv(spec: BodySpec) -> nn.Module:
    return GroupConvBody(spec.c_in, spec.channels, spec.depth, spec.kernel, GroupSpec.of(spec.group))


#: ``Group.enforced_by`` -> the body that enforces it.
BODIES: dict[str, Body] = {
    "conv": Body(_conv),
    "symmetric-conv": Body(_symmetric_conv),
    "group-conv": Body(_group_conv, isotropic=True, built_first=True),
}
