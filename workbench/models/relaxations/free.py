"""The trivial group's model: free to use absolute position.

A conv model is translation-equivariant by construction, so it gets fixed inputs that are always
on (B = max(n_fixed, 1), never dropped); the transformer and DeepSets families see positions
themselves when their group is trivial and get nothing.
"""

from __future__ import annotations

from workbench.models.relaxations.base import Parts, Relaxation
from workbench.nn.fixed_inputs import FixedInputs


class Free(Relaxation):
    """No symmetry to relax: position enters the model directly."""

    name = "free"

    def fixed_inputs(self, parts: Parts) -> FixedInputs | None:
        """Always-on fixed inputs for the conv family; None for the families that see positions."""
        if parts.family != "conv":
            return None
        return FixedInputs(parts.dim_x, max(parts.n_fixed, 1), parts.box, dropout=0.0)
