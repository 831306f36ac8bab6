"""Probabilistic symmetrisation (Kim et al. 2023): a free model averaged over learned random group elements.

The family builds the trivial group's free model (a conv model with fixed inputs always on, a
transformer with absolute positions; ``free_base``), and :meth:`Symmetrisation.wrap` puts it inside a
:class:`~workbench.models.symmetrised.SymmetrisedNP` with an equivariant sampler of the group's
elements (shifts, and the point group's rotations and reflections weighted by the context), so that
the average is equivariant in expectation. Strength s is the weight of the identity in that
distribution: 0 = equivariant in expectation, 1 = the free model itself. Every group but ``none``.
"""

from __future__ import annotations

from torch import nn

from workbench.models.relaxations.base import Parts, Relaxation
from workbench.models.symmetrised import N_PREDICT, N_TRAIN, SymmetrisedNP
from workbench.nn.shift_sampler import ShiftSampler


class Symmetrisation(Relaxation):
    """Wrap the free model in a symmetriser; ``n_train`` / ``n_predict`` draws per task."""

    name = "symmetrisation"
    free_base = True

    def __init__(self, n_train: int = N_TRAIN, n_predict: int = N_PREDICT) -> None:
        self.n_train, self.n_predict = n_train, n_predict

    def wrap(self, model: nn.Module, parts: Parts) -> nn.Module:
        """The free ``model`` averaged over the group's elements drawn by a new :class:`ShiftSampler`."""
        if parts.group.is_trivial:
            raise ValueError("symmetrisation needs a group to symmetrise towards; group 'none' has none")
        sampler = ShiftSampler(parts.dim_x, model.dim_y, parts.group.point_matrices(parts.dim_x))
        return SymmetrisedNP(
            model, sampler, parts.box, parts.strength, n_train=self.n_train, n_predict=self.n_predict
        )
