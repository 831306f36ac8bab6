"""Symmetry groups as small objects that act on points, sample elements and say their name.

The one object travels from the experiment to the layer: ``Experiment.symmetry`` resolves the
name once, and the group says whether it is trivial, its point group (``rotations``,
``reflections``), the group its orbit errors are measured against (``reference``) and which body
enforces it (``enforced_by``: a plain CNN, a CNN with mirror-symmetric kernels, or a group CNN).

Every group used here acts on inputs by an affine map ``x -> x A^T + t``; an element is stored
as that matrix and offset, so translations, reflections and rotations about a centre share one
action and one composition rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Element:
    """A batch of group elements ``x -> x A^T + t``: ``matrix [batch, d, d]``, ``offset [batch, d]``."""

    matrix: Tensor
    offset: Tensor

    def act(self, x: Tensor) -> Tensor:
        """Transform points ``x [batch, n, d]``."""
        return x @ self.matrix.transpose(-1, -2) + self.offset[:, None, :]

    @property
    def size(self) -> Tensor:
        """How far the element moves things, ``[batch]``: shift length plus rotation angle (radians)."""
        d = self.matrix.shape[-1]
        eye = torch.eye(d, dtype=self.matrix.dtype, device=self.matrix.device)
        rot = torch.linalg.matrix_norm(self.matrix - eye) / math.sqrt(2)
        return self.offset.norm(dim=-1) + rot


class Group:
    """A symmetry group acting on ``dim``-dimensional inputs."""

    name: str = ""
    description: str = ""
    dims: tuple[int, ...] = (1, 2)
    #: Rotation order n of the point group (1 = no rotations) and whether it has reflections.
    rotations: int = 1
    reflections: bool = False
    translations: bool = True
    #: The body that enforces the group (a key of ``workbench.models.bodies.BODIES``): ``"conv"``
    #: (translations), ``"symmetric-conv"`` (mirror-symmetric kernels) or ``"group-conv"`` (a C_n/D_n CNN).
    enforced_by: str = "conv"

    @property
    def is_trivial(self) -> bool:
        """Whether the group is the trivial one: no symmetry, the model may see absolute position."""
        return not self.translations and self.rotations == 1 and not self.reflections

    @property
    def point_group(self) -> tuple[int, bool]:
        """The point group as ``(n, reflections)``: C_n, or D_n with reflections (C_1: none)."""
        return self.rotations, self.reflections

    @property
    def reference(self) -> Group:
        """The group orbit errors are measured against: itself, or translations for the trivial group
        (a free model is tested against the symmetry it could have had)."""
        return GROUPS["T"] if self.is_trivial else self

    def check_dim(self, dim: int) -> None:
        """Raise a clear error when the group does not act on ``dim``-dimensional inputs."""
        if dim not in self.dims:
            raise ValueError(
                f"group {self.name!r} acts on {' or '.join(f'{d}-D' for d in self.dims)} inputs, "
                f"not on {dim}-D data"
            )

    def identity(self, batch: int, dim: int, dtype: torch.dtype = torch.float32) -> Element:
        """The identity element, repeated ``batch`` times."""
        eye = torch.eye(dim, dtype=dtype).expand(batch, dim, dim).clone()
        return Element(eye, torch.zeros(batch, dim, dtype=dtype))

    def point_matrices(self, dim: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """All linear parts (rotations/reflections) of the group, ``[order, d, d]``."""
        self.check_dim(dim)
        if dim == 1:
            mats = [torch.ones(1, 1, dtype=dtype)]
            if self.reflections:
                mats.append(-torch.ones(1, 1, dtype=dtype))
            return torch.stack(mats)
        mats = []
        for s in (False, True) if self.reflections else (False,):
            for r in range(self.rotations):
                a = 2 * math.pi * r / self.rotations
                m = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=dtype)
                if s:
                    m = m @ torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=dtype)
                mats.append(m)
        return torch.stack(mats)

    def sample(
        self,
        batch: int,
        dim: int,
        *,
        shift: float = 1.0,
        centre: Tensor | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Element:
        """Random elements: a point-group element about ``centre``, then a shift in ``[-shift, shift]^d``."""
        self.check_dim(dim)
        mats = self.point_matrices(dim, dtype)
        idx = torch.randint(len(mats), (batch,), generator=generator)
        matrix = mats[idx]
        c = torch.zeros(dim, dtype=dtype) if centre is None else centre.to(dtype)
        # Rotating about ``c``: x -> (x - c) A^T + c.
        offset = c - c @ matrix.transpose(-1, -2)
        if self.translations:
            offset = offset + (2 * torch.rand(batch, dim, generator=generator, dtype=dtype) - 1) * shift
        return Element(matrix, offset)

    def __repr__(self) -> str:
        return f"Group({self.name!r})"


class Trivial(Group):
    """No symmetry: the model may depend on absolute position."""

    name = "none"
    description = "no symmetry; the model sees absolute positions"
    translations = False


class Translations(Group):
    """Translations T(d) in 1-D or 2-D."""

    name = "T"
    description = "translations: shifting the data shifts the prediction"


class TranslationsFlip(Group):
    """Translations and reflections x -> -x of the line."""

    name = "T+flip"
    description = "translations and reflections of the line (1-D)"
    dims = (1,)
    reflections = True
    enforced_by = "symmetric-conv"


class Euclidean2D(Group):
    """Translations with the rotations C_n (and reflections D_n) of the plane."""

    dims = (2,)
    enforced_by = "group-conv"

    def __init__(self, n: int, reflections: bool) -> None:
        self.rotations = n
        self.reflections = reflections
        kind = "D" if reflections else "C"
        self.name = f"T+{kind}{n}"
        what = f"{n} rotations by {360 // n} degrees" + (" and reflections" if reflections else "")
        self.description = f"translations with {what} of the plane (2-D)"


GROUPS: dict[str, Group] = {
    g.name: g
    for g in (
        Trivial(),
        Translations(),
        TranslationsFlip(),
        Euclidean2D(4, False),
        Euclidean2D(4, True),
        Euclidean2D(8, False),
        Euclidean2D(8, True),
    )
}


def get_group(name: str) -> Group:
    """The group called ``name``; a clear error names the valid choices."""
    try:
        return GROUPS[name]
    except KeyError:
        raise ValueError(f"unknown group {name!r}; choose one of {', '.join(GROUPS)}") from None
