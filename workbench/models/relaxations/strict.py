"""``strict``: exactly equivariant to the group: no fixed inputs, the group's own body."""

from __future__ import annotations

from workbench.models.relaxations.base import Relaxation


class Strict(Relaxation):
    """The strict model (all of :class:`Relaxation`'s defaults)."""

    name = "strict"
