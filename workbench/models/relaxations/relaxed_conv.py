"""``relaxed-conv``: relaxed group convolution (Wang, Walters & Yu 2022): every layer mixes
``BANKS`` filter banks with weights ``1/L + t(x)`` from a box-masked, dropped-out MLP of position."""

from __future__ import annotations

from torch import nn

from workbench.models.relaxations.base import Parts, Relaxation
from workbench.nn.fixed_inputs import FixedInputs
from workbench.nn.relaxed_conv import RelaxedConvBody

#: Filter banks per layer (3 in the paper's NP baseline).
BANKS = 3


class RelaxedConv(Relaxation):
    """The fixed inputs are the mixing weights (``BANKS * depth`` channels); the body is relaxed."""

    name = "relaxed-conv"

    def fixed_inputs(self, parts: Parts) -> FixedInputs | None:
        """``BANKS`` mixing weights per layer, dropped out per task with p = 1 - strength."""
        return FixedInputs(parts.dim_x, BANKS * parts.depth, parts.box, dropout=parts.dropout)

    def body(self, parts: Parts, fixed: FixedInputs | None) -> nn.Module:
        """Relaxed convolutions on the translation grid (the group's point symmetry is not kept)."""
        w = parts.width
        return RelaxedConvBody(parts.dim_x, w, w, parts.depth, parts.kernel, BANKS, parts.dilations)
