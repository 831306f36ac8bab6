"""Probabilistic symmetrisation (Kim et al. 2023): a free model averaged over learned random shifts.

The family builds the trivial group's free model (a conv model with fixed inputs always on, a
transformer with absolute positions; ``free_base``), and :meth:`Symmetrisation.wrap` puts it inside a
:class:`~workbench.models.symmetrised.SymmetrisedNP` with a translation-equivariant shift sampler, so
that the average over shifts is equivariant in expectation. Strength s is the weight of the identity
(no shift) in the distribution of shifts: 0 = equivariant in expectation, 1 = the free model itself.
Translations only (group ``T``, 1-D and 2-D); ``workbench.config`` refuses the other groups.
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
        """The free ``model`` averaged over shifts drawn by a new :class:`ShiftSampler`."""
        if not parts.group.translations or parts.group.rotations != 1 or parts.group.reflections:
            raise ValueError(
                f"symmetrisation draws translations only; group {parts.group.name!r} is not supported "
                "(use group 'T')"
            )
        dim_y = model.dim_y
        sampler = ShiftSampler(parts.dim_x, dim_y)
        return SymmetrisedNP(
            model, sampler, parts.box, parts.strength, n_train=self.n_train, n_predict=self.n_predict
        )
