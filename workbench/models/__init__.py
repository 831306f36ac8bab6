"""Model families and the factory that builds one from an :class:`Experiment`.

A model is composed, not chosen from a ladder: the experiment's group (``Experiment.symmetry``,
resolved once) picks the body that enforces it (:mod:`workbench.models.bodies`), the relaxation
plug-in (:mod:`workbench.models.relaxations`) gives the fixed inputs and may replace that body, and
the family (:data:`FAMILIES`) puts encoder, body, decoder and likelihood around them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

from workbench.config import Experiment, check_box
from workbench.groups import get_group
from workbench.models.base import NeuralProcess
from workbench.models.bodies import BODIES
from workbench.models.conv import ConvCNP
from workbench.models.deepsets import DeepSetsCNP
from workbench.models.relaxations import FREE, Parts, Relaxation, relaxation_for
from workbench.models.transformer import TransformerNP
from workbench.nn.cnn import doubling_dilations
from workbench.task import Box

#: Default (width, depth) of each family; the conv default is the benchmark's 5 x 32 ConvCNP.
DEFAULT_SIZE = {"conv": (32, 5), "transformer": (64, 4), "deepsets": (128, 3)}
#: 2-D grids cost points^2: a coarser grid, smaller kernels and a narrower CNN keep a laptop CPU usable.
CONV_2D = dict(points_per_unit=4, kernel=5, width=16, depth=4)
#: Kernel size of the 1-D conv bodies.
KERNEL_1D = 9

__all__ = ["FAMILIES", "ConvCNP", "DeepSetsCNP", "NeuralProcess", "TransformerNP", "assemble", "build_model"]


def build_model(exp: Experiment, dim_x: int, dim_y: int, box: Box) -> NeuralProcess:
    """The neural process an experiment describes, for data of the given dimensions and box."""
    box = check_box(box)
    group = exp.symmetry
    width, depth = DEFAULT_SIZE[exp.model]
    if exp.model == "conv" and dim_x == 2:
        width, depth = CONV_2D["width"], CONV_2D["depth"]
    width, depth = exp.width or width, exp.depth or depth
    # gibbs-1d targets lie up to 2 units beyond the context: dilations 1, 2, 4, 8, 1 see the whole
    # [-4, 4] box (undilated: 2.5 units) for the same cost; +0.08 nats at 3000 steps (see README).
    kernel, dilations = (CONV_2D["kernel"], None) if dim_x == 2 else (KERNEL_1D, doubling_dilations(depth))
    parts = Parts(
        exp.model, group, dim_x, box, width, depth, kernel, dilations, float(exp.strength), exp.n_fixed
    )
    return assemble(parts, dim_y, relaxation_for(exp.relaxation, group.is_trivial))


def assemble(parts: Parts, dim_y: int, relaxation: Relaxation) -> NeuralProcess:
    """The family's model of ``parts`` around ``relaxation`` (wrapped by it last), untrained."""
    dim_x = parts.dim_x
    # A relaxation that restores the symmetry around a free model (probabilistic symmetrisation)
    # has the family build the trivial group's model, which its ``wrap`` then puts inside its own.
    built = (FREE, replace(parts, group=get_group("none"))) if relaxation.free_base else (relaxation, parts)
    model = FAMILIES[parts.family](built[1], dim_y, built[0])
    model.relaxation = built[0]
    # Every family knows its dimensions, so a task of other dimensions is refused clearly (Task.for_model).
    model.dim_x, model.dim_y = dim_x, dim_y
    # Last: the relaxation may wrap the model (default: returns it unchanged).
    model = relaxation.wrap(model, parts)
    model.relaxation = relaxation
    model.dim_x, model.dim_y = dim_x, dim_y
    return model


def _deepsets(parts: Parts, dim_y: int, relaxation: Relaxation) -> NeuralProcess:
    return DeepSetsCNP(parts.dim_x, dim_y, width=parts.width, depth=parts.depth)


def _transformer(parts: Parts, dim_y: int, relaxation: Relaxation) -> NeuralProcess:
    fixed = relaxation.fixed_inputs(parts)
    heads = 4 if parts.width % 4 == 0 else 1
    equivariant = not parts.group.is_trivial
    return TransformerNP(
        parts.dim_x,
        dim_y,
        d_model=parts.width,
        heads=heads,
        depth=parts.depth,
        equivariant=equivariant,
        fixed=fixed,
    )


def _conv(parts: Parts, dim_y: int, relaxation: Relaxation) -> NeuralProcess:
    fixed = relaxation.fixed_inputs(parts)
    strict = BODIES[parts.group.enforced_by]
    body = partial(relaxation.body, parts, fixed)
    return ConvCNP(
        parts.dim_x,
        dim_y,
        parts.box,
        channels=parts.width,
        points_per_unit=CONV_2D["points_per_unit"] if parts.dim_x == 2 else 16,
        fixed=fixed,
        body=body() if strict.built_first else body,
        isotropic=strict.isotropic,
    )


#: ``Experiment.model`` -> how that family is put together around the relaxation.
FAMILIES: dict[str, Callable[..., NeuralProcess]] = {
    "conv": _conv,
    "transformer": _transformer,
    "deepsets": _deepsets,
}
