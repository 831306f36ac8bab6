"""``relaxed-conv``: relaxed group convolution (Wang, Walters & Yu 2022): every layer mixes
``BANKS`` filter banks with weights ``1/L + t(x)`` from a box-masked, dropped-out MLP of position.

On translation bodies (T, T+flip) the weights depend on position (:mod:`workbench.nn.relaxed_conv`);
on group-conv bodies (T+C4, T+D4, T+C8, T+D8) on position and the output's group element,
``w_l(x, g) = 1/L + t_{l,g}(x)`` (:mod:`workbench.nn.relaxed_groupconv`). The strength is the
fixed inputs' keep probability, dropout p = 1 - strength: at strength 0 ``t = 0`` always and every
layer is one convolution with the mean of its banks, exactly equivariant to the group (for T+flip
the banks are mirror-symmetric kernels); at strength 1 no task is dropped.
"""

from __future__ import annotations

from torch import nn

from workbench.models.relaxations.base import Parts, Relaxation
from workbench.nn.fixed_inputs import FixedInputs
from workbench.nn.groupconv import GroupSpec
from workbench.nn.relaxed_conv import RelaxedConvBody
from workbench.nn.relaxed_groupconv import RelaxedGroupConvBody, relaxed_group_layers

#: Filter banks per layer (3 in the paper's NP baseline).
BANKS = 3


def _on_group_body(parts: Parts) -> bool:
    """Whether the group is enforced by a group CNN (rotations/reflections), not on the translation grid."""
    return parts.group.enforced_by == "group-conv"


class RelaxedConv(Relaxation):
    """The fixed inputs are the mixing weights; the body is relaxed (a group CNN's for rotation groups)."""

    name = "relaxed-conv"

    def fixed_inputs(self, parts: Parts) -> FixedInputs | None:
        """``BANKS`` mixing weights per layer (and group element), dropped per task with p = 1 - strength."""
        if _on_group_body(parts):
            n = BANKS * relaxed_group_layers(parts.depth) * GroupSpec.of(parts.group).order
        else:
            n = BANKS * parts.depth
        return FixedInputs(parts.dim_x, n, parts.box, dropout=parts.dropout)

    def body(self, parts: Parts, fixed: FixedInputs | None) -> nn.Module:
        """Relaxed group convolutions for rotation groups; else relaxed convolutions on the translation
        grid (with mirror-symmetric banks for T+flip)."""
        w = parts.width
        if _on_group_body(parts):
            return RelaxedGroupConvBody(w, w, parts.depth, parts.kernel, GroupSpec.of(parts.group), BANKS)
        symmetric = parts.group.enforced_by == "symmetric-conv"
        return RelaxedConvBody(
            parts.dim_x, w, w, parts.depth, parts.kernel, BANKS, parts.dilations, symmetric=symmetric
        )
