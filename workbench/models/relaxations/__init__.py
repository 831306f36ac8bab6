"""Relaxations as plug-ins: how a model departs from its group.

A relaxation decides which learned functions of position the model gets (``fixed_inputs``) and
which body uses them (``body``); the model factory composes encoder, body, decoder and likelihood
around them (:func:`workbench.models.build_model`). Adding one is a new module here with a
:class:`Relaxation` subclass and one entry in :data:`RELAXATIONS` (its description and the checks of
what it goes with are in ``workbench.config``).
"""

from __future__ import annotations

from workbench.models.relaxations.augmentation import Augmentation
from workbench.models.relaxations.base import Parts, Relaxation
from workbench.models.relaxations.fixed_inputs import FixedInputsRelaxation
from workbench.models.relaxations.free import Free
from workbench.models.relaxations.relaxed_conv import RelaxedConv
from workbench.models.relaxations.residual_pathway import ResidualPathway
from workbench.models.relaxations.strict import Strict
from workbench.models.relaxations.symmetrisation import Symmetrisation
from workbench.models.relaxations.symmetry_cloning import SymmetryCloning

#: ``Experiment.relaxation`` -> the plug-in (``Free`` is what a model of the trivial group gets).
RELAXATIONS: dict[str, Relaxation] = {
    "strict": Strict(),
    "fixed-inputs": FixedInputsRelaxation(),
    "relaxed-conv": RelaxedConv(),
    "residual-pathway": ResidualPathway(),
    "augmentation": Augmentation(),
    "symmetry-cloning": SymmetryCloning(),
    "symmetrisation": Symmetrisation(),
}
FREE = Free()

__all__ = ["FREE", "RELAXATIONS", "Parts", "Relaxation", "relaxation_for"]


def relaxation_for(relaxation: str, trivial: bool) -> Relaxation:
    """The plug-in for ``relaxation``; a model of the trivial group has nothing to relax: :data:`FREE`."""
    if trivial:
        return FREE
    try:
        return RELAXATIONS[relaxation]
    except KeyError:
        raise ValueError(
            f"unknown relaxation {relaxation!r}; choose one of {', '.join(RELAXATIONS)}"
        ) from None
