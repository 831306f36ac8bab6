"""ConvCNP: SetConv onto a grid -> pointwise MLP (+ fixed inputs) -> CNN -> SetConv -> Gaussian."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from workbench.models.base import NeuralProcess, mask_or_ones
from workbench.nn.cnn import ConvBody
from workbench.nn.fixed_inputs import Box, FixedInputs
from workbench.nn.likelihood import HeteroscedasticNormal
from workbench.nn.mlp import MLP
from workbench.nn.relaxed_conv import RelaxedConvBody
from workbench.nn.setconv import SetConvDecoder, SetConvEncoder, data_centre, make_grid


class ConvCNP(NeuralProcess):
    """Translation-equivariant ConvCNP; its symmetry comes from ``body``, its relaxation from ``fixed``.

    ``body`` maps grid features ``[b, n.., c_in]`` (and the absolute grid, for relaxed bodies) to
    ``[b, n.., channels]``. ``fixed`` (if given and not owned by the body) is concatenated to the
    encoder's channels before the body, as B extra channels.
    """

    def __init__(
        self,
        dim_x: int,
        dim_y: int,
        box: Box,
        *,
        channels: int = 32,
        depth: int = 5,
        kernel: int = 9,
        points_per_unit: float = 16,
        symmetric: bool = False,
        fixed: FixedInputs | None = None,
        relaxed_banks: int = 0,
        body: nn.Module | None = None,
        isotropic: bool = False,
        dilations: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.dim_x, self.box = dim_x, tuple(box)
        width = max(hi - lo for lo, hi in box)
        self.spacing = 1.0 / points_per_unit
        # The grid is centred on the data, so it must span the whole box plus room for the kernels.
        margin = max(0.05 * width, 2 * self.spacing)
        self.n_grid = int(math.ceil((width + 2 * margin) * points_per_unit)) | 1
        self.register_buffer("offsets", make_grid(torch.zeros(1, dim_x), self.n_grid, self.spacing)[0], False)
        lengthscale = 1.6 / points_per_unit
        self.encoder = SetConvEncoder(dim_x, lengthscale, isotropic)
        self.embed = MLP(dim_y + 1, channels, hidden=channels, layers=1)
        self.relaxed = relaxed_banks > 0
        self.fixed = fixed
        if body is not None:
            self.body = body
        elif self.relaxed:
            if fixed is None:
                raise ValueError(
                    "relaxed convolution needs a mixer (FixedInputs with banks * depth channels)"
                )
            self.body = RelaxedConvBody(
                dim_x, channels, channels, depth, kernel, fixed, relaxed_banks, dilations
            )
        else:
            n_fixed = 0 if fixed is None else fixed.n_channels
            self.body = ConvBody(dim_x, channels + n_fixed, channels, depth, kernel, symmetric, dilations)
        self.decoder = SetConvDecoder(dim_x, lengthscale, isotropic)
        self.head = MLP(channels, 2 * dim_y, hidden=channels, layers=1)
        self.likelihood = HeteroscedasticNormal()

    def grid(self, centre: Tensor) -> Tensor:
        """Absolute grid positions ``[b, n.., d]`` around ``centre [b, d]``."""
        return centre.view(centre.shape[0], *([1] * self.dim_x), self.dim_x) + self.offsets

    def forward(
        self, xc: Tensor, yc: Tensor, xt: Tensor, mask_c: Tensor | None = None, *, fixed_inputs: bool = True
    ) -> Normal:
        """``xc [b, nc, dx]``, ``yc [b, nc, dy]``, ``xt [b, nt, dx]`` -> Normal ``[b, nt, dy]``."""
        mask_c = mask_or_ones(xc, mask_c)
        centre, offsets, h = self._grid_features(xc, yc, mask_c, xt, fixed_inputs)
        z = self.decoder(offsets, h, xt - centre[:, None])
        return self.likelihood(self.head(z))

    def predict_grid(
        self,
        xc: Tensor,
        yc: Tensor,
        t1: Tensor,
        t2: Tensor,
        mask_c: Tensor | None = None,
        *,
        fixed_inputs: bool = True,
    ) -> Normal:
        """The prediction on the product grid ``t1 [m1]`` x ``t2 [m2]`` (2-D) -> Normal ``[b, m1, m2, dy]``.

        Equal to ``forward`` at the flattened grid points, but the decoder factorises per axis: what
        makes redrawing a 100 x 100 map after a click cheap.
        """
        if self.dim_x != 2:
            raise ValueError(f"predict_grid is for 2-D models; this one has dim_x = {self.dim_x}")
        mask_c = mask_or_ones(xc, mask_c)
        b = xc.shape[0]
        lo = torch.stack([t1.min(), t2.min()])
        hi = torch.stack([t1.max(), t2.max()])
        # The internal grid is centred on the bounding box of contexts and targets: the corners decide it.
        corners = torch.stack([lo, hi])[None].expand(b, 2, 2).to(xc.dtype)
        centre, offsets, h = self._grid_features(xc, yc, mask_c, corners, fixed_inputs)
        z = self.decoder.on_grid(
            offsets, h, t1[None].to(xc.dtype) - centre[:, :1], t2[None].to(xc.dtype) - centre[:, 1:]
        )
        return self.likelihood(self.head(z))

    def _grid_features(
        self, xc: Tensor, yc: Tensor, mask_c: Tensor, xt: Tensor, fixed_inputs: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Grid centre ``[b, d]``, grid offsets ``[b, n.., d]`` and body output ``[b, n.., channels]``."""
        centre = data_centre(xc, mask_c, xt)
        # Work in the frame of the grid centre: the grid offsets are then the same constants for
        # every task, so a shifted task sees exactly the same relative positions.
        xc_rel = xc - centre[:, None]
        offsets = self.offsets.expand(xc.shape[0], *self.offsets.shape)
        h = self.embed(self.encoder(xc_rel, yc, mask_c, offsets))
        grid = None
        if self.fixed is not None:
            grid = self.grid(centre)
            if not self.relaxed:
                h = torch.cat([h, self.fixed(grid, enabled=fixed_inputs)], -1)
        if self.relaxed:
            h = self.body(h, grid, enabled=fixed_inputs)
        else:
            h = self.body(h)
        return centre, offsets, h
