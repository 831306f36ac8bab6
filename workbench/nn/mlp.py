"""A plain multilayer perceptron applied to the last axis."""

from __future__ import annotations

from torch import Tensor, nn


class MLP(nn.Sequential):
    """``[..., in] -> [..., out]`` with ``layers`` hidden layers of width ``hidden`` and ReLU."""

    def __init__(self, in_features: int, out_features: int, hidden: int = 64, layers: int = 2) -> None:
        mods: list[nn.Module] = []
        width = in_features
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        mods.append(nn.Linear(width, out_features))
        super().__init__(*mods)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - shapes in the class docstring
        return super().forward(x)
