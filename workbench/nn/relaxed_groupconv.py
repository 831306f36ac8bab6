"""Relaxed group convolution (Wang, Walters & Yu 2022) for the point groups C_n / D_n on 2-D grids.

Every layer of a :class:`~workbench.nn.groupconv.GroupCNN` (the lift, the group convolutions, the
head) holds ``L`` filter banks ``psi_l``, each an ordinary lifting or group-conv kernel, and mixes
their outputs per output group element ``g`` and grid point ``x``::

    out(x, g) = sum_l w_l(x, g) (psi_l * f)(x, g),    w_l(x, g) = 1/L + t_{l,g}(x)

``t`` is the relaxation's fixed inputs at the grid (a box-masked, per-task dropped-out MLP of
absolute position, :class:`~workbench.nn.fixed_inputs.FixedInputs`, held by the model), with
``banks * layers * |G|`` channels ordered (layer, bank, group element). This is the 1-D relaxed
convolution (:mod:`workbench.nn.relaxed_conv`) with a group axis: there ``|G| = 1``.

What holds:

* ``t = 0`` (no fixed inputs, or strength 0, where they are dropped with p = 1): every ``(x, g)``
  mixes the banks equally, which is one group convolution with the kernel ``mean_l psi_l``; the body
  is then exactly equivariant to translations and to the point group (C8/D8: as nearly as the strict
  group CNN, whose filters are interpolated on a disc). Without ``t`` (or with ``t`` zero everywhere)
  the banks are averaged into one kernel first, so the strict component costs what the strict body
  costs; with ``t`` a layer costs ``L`` times the strict one (the mixing varies with ``x``).
* ``t`` that varies with ``g`` only relaxes the rotations/reflections (the paper's relaxed rotation
  convolution); ``t`` that varies with ``x`` relaxes translations too, inside the box only (outside it
  ``t = 0``). The MLP can learn either; training decides.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from workbench.nn.cnn import from_nchw, to_nchw
from workbench.nn.groupconv import GroupConv2d, GroupPool, GroupSpec, LiftingConv2d, matched_channels

__all__ = ["RelaxedGroupCNN", "RelaxedGroupConvBody", "relaxed_group_layers"]


def relaxed_group_layers(depth: int) -> int:
    """Number of relaxed layers of a body of ``depth`` (lift + group convs + head, at least 2)."""
    return max(depth, 2)


class RelaxedGroupCNN(nn.Module):
    """Relaxed G-CNN: fields ``[b, c_in, H, W]``, mixing ``[b, H, W, M]`` -> ``[b, c_out, H, W]``.

    The layout of :class:`~workbench.nn.groupconv.GroupCNN` (lift -> ReLU -> group convs -> ReLU ->
    head -> mean over the group) with ``banks`` kernels per layer; ``M = banks * depth * |G|``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        out_channels: int,
        kernel_size: int,
        depth: int,
        group: GroupSpec,
        banks: int = 3,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"RelaxedGroupCNN depth must be >= 2 (lift + final group conv), got {depth}")
        if banks < 1:
            raise ValueError(f"RelaxedGroupCNN needs at least one filter bank, got {banks}")
        self.group, self.banks, self.depth = group, banks, depth
        self.in_channels, self.channels, self.out_channels = in_channels, channels, out_channels
        #: Mixing channels the body reads, ordered (layer, bank, group element).
        self.n_mixing = banks * depth * group.order
        # One layer with banks * c_out output fields holds the L banks (output field l * c_out + o).
        # Each bank is drawn sqrt(L) larger than a strict layer, so that the equal mixture 1/L sum_l psi_l
        # (the strict component, and the model at initialisation) has the strict layer's scale.
        up = math.sqrt(banks)
        self.lift = LiftingConv2d(in_channels, banks * channels, kernel_size, group, gain=math.sqrt(2.0) * up)
        self.convs = nn.ModuleList(
            GroupConv2d(channels, banks * channels, kernel_size, group, gain=math.sqrt(2.0) * up)
            for _ in range(depth - 2)
        )
        self.head = GroupConv2d(channels, banks * out_channels, kernel_size, group, gain=up)
        self.pool = GroupPool("mean")

    def _layer(self, layer: LiftingConv2d | GroupConv2d, x: Tensor, w: Tensor | None) -> Tensor:
        """One layer: ``x [b, c_in(*|G|), H, W]``, ``w [b, L, |G|, H, W]`` -> ``[b, c, |G|, H, W]``."""
        banks, order = self.banks, self.group.order
        weight = layer.full_weight()  # [(l * c + o) * |G| + g, c_in(*|G|), k, k]
        bias = layer.bias.repeat_interleave(order)  # shared over the group axis, as in the strict layer
        pad = layer.kernel_size // 2
        if w is None:
            # Equal mixing is linear in the kernels: average them first and convolve once.
            weight = weight.unflatten(0, (banks, -1)).mean(0)
            out = F.conv2d(x, weight, bias.unflatten(0, (banks, -1)).mean(0), padding=pad)
            return out.unflatten(1, (-1, order))
        out = F.conv2d(x, weight, bias, padding=pad)  # [b, L * c * |G|, H, W]
        out = out.unflatten(1, (banks, -1, order))  # [b, L, c, |G|, H, W]
        return (out * w[:, :, None]).sum(1)

    def forward(self, x: Tensor, t: Tensor | None = None) -> Tensor:
        """Fields ``x [b, c_in, H, W]`` and mixing inputs ``t [b, H, W, M]`` (None: equal mixing) ->
        ``[b, c_out, H, W]``."""
        if t is not None and t.shape[-1] != self.n_mixing:
            raise ValueError(
                f"relaxed group convolution needs banks * layers * |G| = {self.n_mixing} mixing "
                f"channels for {self.group.name}, got {t.shape[-1]}"
            )
        w = None
        # A t that is zero everywhere (strength 0: dropout 1; or every task of the batch dropped) is
        # equal mixing: take the path that averages the kernels first, at the strict body's cost.
        if t is not None and bool(t.any()):
            w = 1.0 / self.banks + t
            # [b, H, W, layer, L, |G|] -> [layer, b, L, |G|, H, W]: one mixing field per layer.
            w = w.unflatten(-1, (self.depth, self.banks, self.group.order)).permute(3, 0, 4, 5, 1, 2)
        layers = [self.lift, *self.convs, self.head]
        h = x
        for i, layer in enumerate(layers):
            # Group convs read the group axis as channels: [b, c, |G|, H, W] -> [b, c * |G|, H, W].
            h = self._layer(layer, h if i == 0 else h.flatten(1, 2), None if w is None else w[i])
            if i < len(layers) - 1:
                h = F.relu(h)
        return self.pool(h)


class RelaxedGroupConvBody(nn.Module):
    """Relaxed twin of :class:`~workbench.nn.cnn.GroupConvBody`: ``[b, n, n, c_in] -> [b, n, n, channels]``.

    The same fields per group element as the strict body (``width / sqrt(|G|)``), ``banks`` kernels per
    layer, so ``banks`` times its parameters; the mixing comes from ``t`` (see the module docstring).
    """

    def __init__(
        self, c_in: int, width: int, depth: int, kernel: int, group: GroupSpec, banks: int = 3
    ) -> None:
        super().__init__()
        per_element = max(2, matched_channels(width, group, match="params"))
        self.channels, self.c_in, self.banks = width, c_in, banks
        self.cnn = RelaxedGroupCNN(
            c_in, per_element, width, kernel, relaxed_group_layers(depth), group, banks
        )
        #: Channels of mixing weights the body reads from its fixed inputs ``t``.
        self.n_mixing = self.cnn.n_mixing

    def forward(self, h: Tensor, t: Tensor | None = None) -> Tensor:
        """Grid features ``h [b, n, n, c_in]`` and mixing inputs ``t [b, n, n, n_mixing]`` (None: all
        zero, equal mixing: the strict component) -> ``[b, n, n, channels]``."""
        if h.shape[-1] != self.c_in:
            raise ValueError(f"expected {self.c_in} feature channels, got {h.shape[-1]}")
        return from_nchw(self.cnn(to_nchw(h).contiguous(), t), 2)
