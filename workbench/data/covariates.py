"""Known covariates as 'fixed inputs': the elevation field itself, not learned, for reference models.

A ConvCNP given :class:`ElevationInputs` in place of learned fixed inputs sees the (normalised)
elevation at every point of its internal grid, everywhere the source knows it (also outside the
training box, e.g. in the out-of-distribution test region). It is the reference "a model that is told
where the mountains are", against which the learned fixed inputs are compared.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from workbench.data.fields import GeoSampler
from workbench.nn.fixed_inputs import Box


class ElevationInputs(nn.Module):
    """``t(x) = (elevation(x) - mean) / std`` (1 channel, 0 over sea / where unknown), never dropped.

    Duck-types :class:`workbench.nn.fixed_inputs.FixedInputs` (``n_channels``, ``dropout``, ``box``,
    ``forward(x, enabled)``), so ``ConvCNP(..., fixed=ElevationInputs(sampler, box))`` works unchanged.
    """

    def __init__(self, sampler: GeoSampler, box: Box) -> None:
        super().__init__()
        self.sampler, self.box = sampler, tuple(box)
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
        lon, lat = self.sampler.coords.to_lonlat(x.detach().cpu().double().numpy())
        e = self.sampler.elevation_at(lon, lat)
        t = np.nan_to_num((e - self.mean) / self.std, nan=(0.0 - self.mean) / self.std)
        return torch.from_numpy(t).to(device=x.device, dtype=x.dtype)[..., None]
