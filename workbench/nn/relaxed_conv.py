"""Relaxed group convolution (Wang, Walters & Yu 2022) on the SetConv grid.

Each layer holds ``L`` filter banks; the output is ``sum_l w_l(x) (Psi_l * z)(x)`` with mixing
weights ``w_l(x) = 1/L + t_l(x)``, where ``t`` is a box-masked, per-task dropped-out MLP of position
(:class:`FixedInputs`). With ``t = 0`` every location mixes the banks equally, which is one plain
convolution: the strict component.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from workbench.nn.cnn import GridConv, from_nchw, layer_dilations, to_nchw
from workbench.nn.fixed_inputs import FixedInputs


class RelaxedConvBody(nn.Module):
    """``depth`` relaxed convolutions with ReLU: ``[b, n.., c_in] -> [b, n.., channels]``."""

    def __init__(
        self,
        dim: int,
        c_in: int,
        channels: int,
        depth: int,
        kernel: int,
        mixer: FixedInputs,
        banks: int = 3,
        dilations: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        if mixer.n_channels != banks * depth:
            raise ValueError(
                f"the mixer needs banks * depth = {banks * depth} channels, has {mixer.n_channels}"
            )
        self.dim, self.banks, self.channels = dim, banks, channels
        self.mixer = mixer
        dilations = layer_dilations(dilations, depth)
        self.convs = nn.ModuleList(
            GridConv(dim, c_in if i == 0 else channels, banks * channels, kernel, dilation=dilations[i])
            for i in range(depth)
        )

    def forward(self, h: Tensor, grid: Tensor, enabled: bool = True) -> Tensor:
        """Grid features ``h [b, n.., c_in]`` at positions ``grid [b, n.., d]`` -> ``[b, n.., channels]``."""
        w = 1.0 / self.banks + self.mixer(grid, enabled)  # [b, n.., banks * depth]
        w = w.unflatten(-1, (len(self.convs), self.banks))
        z = h
        for i, conv in enumerate(self.convs):
            out = from_nchw(conv(to_nchw(z)), self.dim).unflatten(-1, (self.banks, self.channels))
            z = (out * w[..., i, :, None]).sum(-2)
            if i < len(self.convs) - 1:
                z = torch.relu(z)
        return z
