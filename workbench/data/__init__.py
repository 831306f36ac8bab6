"""Datasets: synthetic GP samplers with exact oracles."""

from workbench.data.gp import (
    SAMPLERS,
    AnisotropicSampler2D,
    EQSampler1D,
    EQSampler2D,
    GibbsSampler,
    GPSampler,
    make_sampler,
)

__all__ = [
    "SAMPLERS",
    "AnisotropicSampler2D",
    "EQSampler1D",
    "EQSampler2D",
    "GPSampler",
    "GibbsSampler",
    "make_sampler",
]
