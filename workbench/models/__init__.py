"""Model families and the factory that builds one from an :class:`Experiment`."""

from __future__ import annotations

from workbench.config import Experiment, check_box
from workbench.groups import get_group
from workbench.models.base import NeuralProcess
from workbench.models.conv import ConvCNP
from workbench.models.deepsets import DeepSetsCNP
from workbench.models.transformer import TransformerNP
from workbench.nn.cnn import GroupConvBody, doubling_dilations
from workbench.nn.fixed_inputs import Box, FixedInputs

#: Default (width, depth) of each family; the conv default is the benchmark's 5 x 32 ConvCNP.
DEFAULT_SIZE = {"conv": (32, 5), "transformer": (64, 4), "deepsets": (128, 3)}
#: 2-D grids cost points^2: a coarser grid, smaller kernels and a narrower CNN keep a laptop CPU usable.
CONV_2D = dict(points_per_unit=4, kernel=5, width=16, depth=4)
RELAXED_BANKS = 3

__all__ = ["ConvCNP", "DeepSetsCNP", "NeuralProcess", "TransformerNP", "build_model"]


def build_model(exp: Experiment, dim_x: int, dim_y: int, box: Box) -> NeuralProcess:
    """The neural process an experiment describes, for data of the given dimensions and box."""
    box = check_box(box)
    model = _build(exp, dim_x, dim_y, box)
    # Every family knows its dimensions, so a task of other dimensions is refused clearly (Task.for_model).
    model.dim_x, model.dim_y = dim_x, dim_y
    return model


def _build(exp: Experiment, dim_x: int, dim_y: int, box: Box) -> NeuralProcess:
    width, depth = DEFAULT_SIZE[exp.model]
    if exp.model == "conv" and dim_x == 2:
        width, depth = CONV_2D["width"], CONV_2D["depth"]
    width, depth = exp.width or width, exp.depth or depth
    dropout = 1.0 - float(exp.strength)
    if exp.model == "deepsets":
        return DeepSetsCNP(dim_x, dim_y, width=width, depth=depth)
    if exp.model == "transformer":
        fixed = None
        if exp.group != "none" and exp.relaxation == "fixed-inputs" and exp.n_fixed > 0:
            fixed = FixedInputs(dim_x, exp.n_fixed, box, dropout=dropout)
        heads = 4 if width % 4 == 0 else 1
        return TransformerNP(
            dim_x,
            dim_y,
            d_model=width,
            heads=heads,
            depth=depth,
            equivariant=exp.group != "none",
            fixed=fixed,
        )
    # The conv family: the free model is a ConvCNP whose fixed inputs are never dropped.
    kwargs = dict(channels=width, depth=depth, symmetric=exp.group == "T+flip")
    if dim_x == 2:
        kwargs.update(points_per_unit=CONV_2D["points_per_unit"], kernel=CONV_2D["kernel"])
    else:
        # gibbs-1d targets lie up to 2 units beyond the context: dilations 1, 2, 4, 8, 1 see the whole
        # [-4, 4] box (undilated: 2.5 units) for the same cost; +0.08 nats at 3000 steps (see README).
        kwargs["dilations"] = doubling_dilations(depth)
    group = get_group(exp.group)
    if group.rotations > 1 or (dim_x == 2 and group.reflections):
        # EquivCNP: isotropic SetConv (one length scale) so the encoder commutes with rotations too.
        n_fixed = exp.n_fixed if exp.relaxation == "fixed-inputs" else 0
        fixed = FixedInputs(dim_x, n_fixed, box, dropout=dropout) if n_fixed else None
        body = GroupConvBody(width + n_fixed, width, depth, kwargs["kernel"], exp.group.removeprefix("T+"))
        return ConvCNP(dim_x, dim_y, box, fixed=fixed, body=body, isotropic=True, **kwargs)
    if exp.group == "none":
        return ConvCNP(
            dim_x, dim_y, box, fixed=FixedInputs(dim_x, max(exp.n_fixed, 1), box, dropout=0.0), **kwargs
        )
    if exp.relaxation == "relaxed-conv":
        mixer = FixedInputs(dim_x, RELAXED_BANKS * depth, box, dropout=dropout)
        return ConvCNP(dim_x, dim_y, box, fixed=mixer, relaxed_banks=RELAXED_BANKS, **kwargs)
    fixed = None
    if exp.relaxation == "fixed-inputs" and exp.n_fixed > 0:
        fixed = FixedInputs(dim_x, exp.n_fixed, box, dropout=dropout)
    return ConvCNP(dim_x, dim_y, box, fixed=fixed, **kwargs)
