"""CNN bodies on the SetConv grid, for 1-D and 2-D inputs.

Every body has one signature, ``body(h, t)``: grid features ``h [b, n.., c]`` and the relaxation's
learned functions of position at the grid points ``t [b, n.., B]`` (None: no relaxation). A strict body
takes ``t`` as ``B`` extra input channels (zeros when absent); a relaxed one may use it otherwise
(relaxed convolution: as mixing weights of its filter banks).

Features live as ``[batch, n.., channels]``; viewed as ``[batch, channels, H, W]`` that is the
channels-last layout, for which PyTorch's CPU convolutions (oneDNN) are fastest, so a 1-D grid is
run as a 2-D convolution of height 1 with no copies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.nn.groupconv import GroupCNN, GroupSpec, matched_channels


def to_nchw(h: Tensor) -> Tensor:
    """``[b, n, c]`` or ``[b, n1, n2, c]`` -> channels-last view ``[b, c, H, W]``."""
    if h.dim() == 3:
        h = h[:, None]
    return h.permute(0, 3, 1, 2)


def from_nchw(h: Tensor, dim: int) -> Tensor:
    """Inverse of :func:`to_nchw`."""
    h = h.permute(0, 2, 3, 1)
    return h[:, 0] if dim == 1 else h


class GridConv(nn.Module):
    """One 'same' convolution on a 1-D or 2-D grid; ``symmetric`` makes 1-D kernels mirror-symmetric
    (so the layer commutes with reflections x -> -x); ``dilation`` spaces the taps (1-D only)."""

    def __init__(
        self, dim: int, c_in: int, c_out: int, kernel: int, symmetric: bool = False, dilation: int = 1
    ) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"kernel size must be odd to keep the grid centred, got {kernel}")
        if symmetric and dim != 1:
            raise ValueError("symmetric kernels are for 1-D reflections; use group convolutions in 2-D")
        if dilation < 1 or (dilation > 1 and dim != 1):
            raise ValueError(f"dilation must be a positive integer and is for 1-D grids, got {dilation}")
        self.dim, self.kernel, self.symmetric, self.dilation = dim, kernel, symmetric, dilation
        shape = (c_out, c_in, 1, kernel) if dim == 1 else (c_out, c_in, kernel, kernel)
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.zeros(c_out))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def kernel_weight(self) -> Tensor:
        """The effective kernel ``[c_out, c_in, kh, kw]``."""
        if self.symmetric:
            return (self.weight + self.weight.flip(-1)) / 2
        return self.weight

    def forward(self, h: Tensor) -> Tensor:
        """``[b, c_in, H, W]`` (channels-last) -> ``[b, c_out, H, W]``."""
        if self.dim == 1:
            d = self.dilation
            return F.conv2d(
                h, self.kernel_weight(), self.bias, padding=(0, d * (self.kernel // 2)), dilation=(1, d)
            )
        return F.conv2d(h, self.kernel_weight(), self.bias, padding=self.kernel // 2)


def with_inputs(h: Tensor, t: Tensor | None, c_in: int) -> Tensor:
    """``h [b, n.., c]`` with the fixed inputs ``t [b, n.., B]`` appended (zeros up to ``c_in`` without)."""
    if t is not None:
        h = torch.cat([h, t], -1)
    if h.shape[-1] < c_in:
        h = torch.cat([h, h.new_zeros((*h.shape[:-1], c_in - h.shape[-1]))], -1)
    return h


def layer_dilations(dilations: tuple[int, ...] | None, depth: int) -> tuple[int, ...]:
    """One dilation per layer (default all 1); a wrong count is an error, not a silent truncation."""
    dilations = tuple(dilations or (1,) * depth)
    if len(dilations) != depth:
        raise ValueError(f"need one dilation per layer ({depth}), got {dilations}")
    return dilations


def doubling_dilations(depth: int) -> tuple[int, ...]:
    """Dilations 1, 2, 4, ... with a last layer of 1: the receptive field grows geometrically at no cost."""
    return tuple(2**i for i in range(depth - 1)) + (1,) if depth > 1 else (1,) * depth


class ConvBody(nn.Module):
    """``depth`` convolutions with ReLU between: ``[b, n.., c_in] -> [b, n.., channels]``.

    ``dilations`` (1-D only; one per layer, default all 1) widen the receptive field without more
    parameters or time; dilated convolutions still commute with translations and, with symmetric
    kernels, with reflections.
    """

    def __init__(
        self,
        dim: int,
        c_in: int,
        channels: int,
        depth: int,
        kernel: int,
        symmetric: bool = False,
        dilations: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.dim, self.c_in = dim, c_in
        dilations = layer_dilations(dilations, depth)
        self.convs = nn.ModuleList(
            GridConv(dim, c_in if i == 0 else channels, channels, kernel, symmetric, dilations[i])
            for i in range(depth)
        )

    def forward(self, h: Tensor, t: Tensor | None = None) -> Tensor:
        """Features ``h [b, n.., c]``, fixed inputs ``t [b, n.., c_in - c]`` -> ``[b, n.., channels]``."""
        z = to_nchw(with_inputs(h, t, self.c_in))
        for i, conv in enumerate(self.convs):
            z = conv(z)
            if i < len(self.convs) - 1:
                z = torch.relu(z)
        return from_nchw(z, self.dim)


class GroupConvBody(nn.Module):
    """Rotation/reflection-equivariant body: a group CNN, ``[b, n, n, c_in] -> [b, n, n, channels]``.

    ``width`` is the plain-CNN channel budget; the group CNN gets ``width / sqrt(|G|)`` fields per group
    element (about the same number of parameters as a plain CNN of ``width`` channels).
    """

    def __init__(self, c_in: int, width: int, depth: int, kernel: int, group: GroupSpec) -> None:
        super().__init__()
        per_element = max(2, matched_channels(width, group, match="params"))
        self.channels, self.c_in = width, c_in
        self.cnn = GroupCNN(c_in, per_element, width, kernel, max(depth, 2), group)

    def forward(self, h: Tensor, t: Tensor | None = None) -> Tensor:
        """Features ``h [b, n, n, c]``, fixed inputs ``t [b, n, n, c_in - c]`` -> ``[b, n, n, channels]``.

        The fixed inputs are scalar channels: the group acts on the data, never on them.
        """
        return from_nchw(self.cnn(to_nchw(with_inputs(h, t, self.c_in)).contiguous()), 2)
