"""``residual-pathway``: residual pathway priors (Finzi, Benton & Wilson 2021) on the SetConv grid.

The body is an equivariant part A (the group's strict body) plus an unconstrained part B (a plain
CNN with free kernels that also sees ``n_fixed`` learned functions of absolute position, so it can
break translations, reflections and rotations alike): ``body(h, t) = A(h) + B(h, t)``. The prior is
the weight decay ``lambda_eq ||A||^2 + lambda_free ||B||^2`` (:meth:`ResidualPathway.penalty`, to be
added to the training loss), with ``lambda_eq = DECAY`` and ``lambda_free = DECAY (1 - s) / s`` for
strength ``s``: at ``s = 0`` the free part is infinitely penalised and left out (the strict model),
at ``s = 1`` it is free. B's last layer starts at zero, so an untrained model is its strict part.
With the fixed inputs off (``fixed_inputs=False``) the model is A alone: its strict component.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from workbench.models.relaxations.base import Parts, Relaxation
from workbench.nn.cnn import ConvBody
from workbench.nn.fixed_inputs import FixedInputs

#: Weight decay of the equivariant part A (per summed squared weight).
DECAY = 1e-4


class ResidualPathwayBody(nn.Module):
    """``A(h) + B(h, t)``: ``strict`` is A, ``free`` is B; B is left out without ``t`` or at strength 0."""

    def __init__(self, strict: nn.Module, free: nn.Module, strength: float) -> None:
        super().__init__()
        self.strict, self.free, self.strength = strict, free, float(strength)

    def forward(self, h: Tensor, t: Tensor | None = None) -> Tensor:
        """Grid features ``h [b, n.., c]`` and position inputs ``t [b, n.., B]`` -> ``[b, n.., channels]``."""
        out = self.strict(h)
        if t is None or self.strength <= 0:
            return out
        return out + self.free(h, t)


def _squares(module: nn.Module) -> Tensor:
    """Sum of squared weights, on the module's device and in its dtype."""
    return torch.stack([p.pow(2).sum() for p in module.parameters()]).sum()


class ResidualPathway(Relaxation):
    """Equivariant + free layers; the strength sets how much weaker the free part's weight decay is."""

    name = "residual-pathway"

    def fixed_inputs(self, parts: Parts) -> FixedInputs | None:
        """The free part's view of absolute position: ``n_fixed`` channels, never dropped (None: B = 0).

        At strength 0 the free part is left out, so its inputs say so too (dropout 1: never used),
        and the maps and metrics treat the model as the strict one it is.
        """
        if parts.n_fixed <= 0:
            return None
        dropout = 1.0 if parts.strength <= 0 else 0.0
        return FixedInputs(parts.dim_x, parts.n_fixed, parts.box, dropout=dropout)

    def body(self, parts: Parts, fixed: FixedInputs | None) -> nn.Module:
        """A = the group's strict body; B = a plain CNN on the features and the fixed inputs."""
        strict = parts.strict_body()
        if fixed is None:
            return strict
        free = ConvBody(
            parts.dim_x,
            parts.width + fixed.n_channels,
            parts.width,
            parts.depth,
            parts.kernel,
            False,
            parts.dilations,
        )
        with torch.no_grad():
            free.convs[-1].weight.zero_()
            free.convs[-1].bias.zero_()
        return ResidualPathwayBody(strict, free, parts.strength)

    def penalty(self, model: nn.Module) -> Tensor:
        """``lambda_eq ||A||^2 + lambda_free ||B||^2`` (B: the free CNN and the fixed inputs' MLP)."""
        body = model.body
        if not isinstance(body, ResidualPathwayBody):
            return DECAY * _squares(body)  # no fixed channels: the strict body alone
        eq = DECAY * _squares(body.strict)
        s = body.strength
        if s <= 0:
            return eq  # the free part is left out: its infinite decay holds it at zero
        free = _squares(body.free) + _squares(model.fixed)
        return eq + DECAY * (1.0 - s) / s * free
