"""Known covariates as 'fixed inputs': the elevation field itself, not learned, for reference models.

A test and bench helper (tests/test_maps.py; bench/bench_maps.py loads it by path), not library code.

A ConvCNP given :class:`ElevationInputs` in place of learned fixed inputs sees the (normalised)
elevation at every point of its internal grid, everywhere the source knows it (also outside the
training box, e.g. in the out-of-distribution test region). It is the reference "a model that is told
where the mountains are", against which the learned fixed inputs are compared.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from workbench.data.base import GeoSampler
from workbench.task import Box


class ElevationInputs(nn.Module):
    """``t(x) = (elevation(x) - mean) / std`` (1 channel, 0 over sea / where unknown), never dropped.

    Duck-types :class:`workbench.nn.fixed_inputs.FixedInputs` (``n_channels``, ``dropout``, ``box``,
    ``forward(x, enabled)``), so ``ConvCNP(..., fixed=ElevationInputs(sampler, box))`` works unchanged.
    """

    def __init__(self, sampler: GeoSampler, box: Box, footprint: float = 0.0) -> None:
        super().__init__()
        self.sampler, self.box = sampler, tuple(box)
        # Mountains vary on scales far below a coarse model grid; sampling one point per grid cell
        # aliases them, so with a footprint (the grid spacing, in model units) each value is the
        # mean over a 5 x 5 stencil covering its cell.
        steps = np.linspace(-0.4, 0.4, 5) * footprint if footprint > 0 else np.zeros(1)
        du, dv = np.meshgrid(steps, steps)
        self.stencil = np.stack([du.ravel(), dv.ravel()], -1)  # [s, 2]
        self.dim, self.n_channels, self.dropout = 2, 1, 0.0
        lats = np.linspace(sampler.train_region[2], sampler.train_region[3], 64)
        lons = np.linspace(sampler.train_region[0], sampler.train_region[1], 64)
        lon2, lat2 = np.meshgrid(lons, lats)
        e = sampler.elevation_at(lon2, lat2)
        if e is None or not np.isfinite(e).any():
            raise ValueError(f"{sampler.name} has no elevation in its training region for ElevationInputs")
        # Normalise with the training region's statistics, as the outputs are.
        self.mean, self.std = float(np.nanmean(e)), float(np.nanstd(e)) or 1.0

    def forward(self, x: Tensor, enabled: bool = True) -> Tensor:
        """Normalised elevation at points ``x [b, n.., 2]`` (model coordinates) -> ``[b, n.., 1]``."""
        if not enabled:
            return x.new_zeros((*x.shape[:-1], 1))
        pts = x.detach().cpu().double().numpy()[..., None, :] + self.stencil  # [b, n.., s, 2]
        lon, lat = self.sampler.coords.to_lonlat(pts)
        # Sea and unknown count as 0 m, as in the single-point case.
        e = np.nan_to_num(self.sampler.elevation_at(lon, lat), nan=0.0).mean(-1)
        t = (e - self.mean) / self.std
        return torch.from_numpy(t).to(device=x.device, dtype=x.dtype)[..., None]
