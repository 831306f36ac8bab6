"""``fixed-inputs``: the paper's method: B learnable functions of position, dropped out per task with
p = 1 - strength, given to the model as extra channels (conv) or added to the context tokens (TE-TNP)."""

from __future__ import annotations

from workbench.models.relaxations.base import Parts, Relaxation
from workbench.nn.fixed_inputs import FixedInputs


class FixedInputsRelaxation(Relaxation):
    """``t(x) = 1[x in box] MLP(x)`` with ``n_fixed`` channels; ``n_fixed = 0`` is the strict model."""

    name = "fixed-inputs"

    def fixed_inputs(self, parts: Parts) -> FixedInputs | None:
        """``n_fixed`` channels over the box, dropped out with p = 1 - strength (None when B = 0)."""
        if parts.n_fixed <= 0:
            return None
        return FixedInputs(parts.dim_x, parts.n_fixed, parts.box, dropout=parts.dropout)
