"""colorado-temperature: real monthly station temperatures over real mountains, one month = one task.

Source: ``datasets/colorado_temperature.nc`` (376 Colorado stations, monthly tmax/tmin 1895-1997,
plus a 4 km elevation grid; see ``datasets/README.md``). A task is one month: its reporting
(non-NaN) stations are split at random into a context (a fraction ``U(0.3, 0.7)`` of them, at least
one) and targets (the rest). The target set has a fixed size ``nt = 64``: drawn without replacement
from the held-out stations, or, in the sparse early years when fewer than 64 are held out, all of
them topped up by drawing again from them with replacement. Months with fewer than ``min_stations``
(20) reporting stations are skipped.

Years: train <= 1980 (1032 usable months), validation 1981-1988 (96), test 1989-1997 (108 months;
``test_set(n)`` cycles through them in order, each time with a fresh random split). Variables:
``tmax`` (default), ``tmin``, or ``tmax-anomaly`` / ``tmin-anomaly`` = the value minus the station's
calendar-month mean over the training years (NaN for a station with no training data that month).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import xarray as xr

from workbench.data.base import Draw, GeoSampler, Stations, interp_grid, open_netcdf, split_points
from workbench.geo import dataset_file

#: The extent of the stations and of the elevation grid (lon_min, lon_max, lat_min, lat_max).
COLORADO_REGION = (-109.5, -101.0, 36.5, 41.5)

VARIABLES = {
    "tmax": "monthly mean of daily maximum temperature",
    "tmin": "monthly mean of daily minimum temperature",
    "tmax-anomaly": "tmax minus the station's calendar-month mean over the training years",
    "tmin-anomaly": "tmin minus the station's calendar-month mean over the training years",
}


@functools.lru_cache(maxsize=2)
def load_colorado(path: str | None = None) -> xr.Dataset:
    """The Colorado station file, fully loaded (1.2 MB; cached)."""
    with open_netcdf(path or dataset_file("colorado_temperature.nc")) as ds:
        return ds.load()


class ColoradoSampler(GeoSampler):
    """Monthly station temperatures of Colorado as tasks (see the module docstring)."""

    name = "colorado-temperature"

    def __init__(
        self,
        *,
        variable: str = "tmax",
        context_fraction: tuple[float, float] = (0.3, 0.7),
        nt: int = 64,
        min_stations: int = 20,
        train_years: tuple[int, int] = (1895, 1980),
        val_years: tuple[int, int] = (1981, 1988),
        test_years: tuple[int, int] = (1989, 1997),
        span: float = 3.0,
    ) -> None:
        if variable not in VARIABLES:
            raise ValueError(f"variable = {variable!r} is not valid; choose one of: {', '.join(VARIABLES)}")
        lo, hi = context_fraction
        if not 0 < lo <= hi < 1:
            raise ValueError(f"context_fraction = {context_fraction} must satisfy 0 < lo <= hi < 1")
        super().__init__(train_region=COLORADO_REGION, span=span)
        self.variable = variable
        self.long_name = VARIABLES[variable]
        self.context_fraction = (float(lo), float(hi))
        self.nt, self.min_stations = int(nt), int(min_stations)
        self.years = {"train": train_years, "val": val_years, "test": test_years}

    # --- data (read on first use) ------------------------------------------------------------------

    @functools.cached_property
    def _data(self) -> dict[str, Any]:
        ds = load_colorado()
        base = self.variable.removesuffix("-anomaly")
        values = ds[base].values.astype(np.float64)  # [time, station]
        years = ds["time"].dt.year.values
        months = ds["time"].dt.month.values
        train = (years >= self.years["train"][0]) & (years <= self.years["train"][1])
        if self.variable.endswith("-anomaly"):
            clim = np.full((12, values.shape[1]), np.nan)
            for m in range(1, 13):
                sel = values[train & (months == m)]
                ok = np.isfinite(sel).any(0)
                clim[m - 1, ok] = np.nanmean(sel[:, ok], 0)
            values = values - clim[months - 1]
        count = np.isfinite(values).sum(1)
        units = {}
        for split, (lo, hi) in self.years.items():
            units[split] = np.flatnonzero((years >= lo) & (years <= hi) & (count >= self.min_stations))
        return {
            "ds": ds,
            "values": values,
            "units": units,
            "train_mask": train,
            "lon": ds["lon"].values.astype(np.float64),
            "lat": ds["lat"].values.astype(np.float64),
            "elevation": ds["elevation"].values.astype(np.float64),
            "time": ds["time"].values,
        }

    def _normalisation(self) -> tuple[float, float]:
        d = self._data
        v = d["values"][d["units"]["train"]]
        return float(np.nanmean(v)), float(np.nanstd(v))

    def _coords_kwargs(self) -> dict[str, Any]:
        return {"units": "degC"}

    @functools.cached_property
    def _elevation_grid(self) -> xr.DataArray:
        e = load_colorado()["grid_elevation"]
        return e.rename({"grid_lat": "lat", "grid_lon": "lon"})

    def elevation_at(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """PRISM elevation (m, 1/24 degree grid) at points, bilinear; NaN outside Colorado's grid."""
        return interp_grid(self._elevation_grid, lon, lat)

    # --- tasks -----------------------------------------------------------------------------------

    def n_units(self, split: str) -> int:
        """Number of usable months in a split."""
        if split not in self.years:
            raise ValueError(f"split = {split!r} is not valid; choose one of: {', '.join(self.years)}")
        return len(self._data["units"][split])

    def months(self, split: str) -> np.ndarray:
        """The usable months (datetime64) of a split."""
        d = self._data
        return d["time"][d["units"][split]]

    def _draw(self, split: str, unit: int | None, rng: np.random.Generator) -> Draw:
        d = self._data
        months = d["units"][split]
        t = int(months[rng.integers(len(months))] if unit is None else months[unit])
        row = d["values"][t]
        ok = np.flatnonzero(np.isfinite(row))
        n = len(ok)
        frac = rng.uniform(*self.context_fraction)
        nc = int(np.clip(round(frac * n), 1, n - 1))
        ci, ti = split_points(n, nc, self.nt, rng)
        x = self.coords.to_model(d["lon"][ok], d["lat"][ok])
        y = self.coords.normalise(row[ok])
        return Draw(x[ci], y[ci], x[ti], y[ti], t)

    # --- maps ------------------------------------------------------------------------------------

    def month_index(self, key: Any) -> int:
        """Index into the time axis of a month given as ``'1990-07'``, a datetime, or an index."""
        d = self._data
        n = len(d["time"])
        if isinstance(key, (bool, np.bool_)):
            # np.datetime64(True, "M") is 1970-02: a bool must never pass for a month.
            raise ValueError(
                f"context = {key!r} is a bool; give a month 'YYYY-MM' in 1895-01 .. 1997-12 or an index"
            )
        if isinstance(key, (int, np.integer)):
            if -n <= int(key) < n:
                return int(key) % n
            raise ValueError(f"context = {key} is not a month index in [0, {n})")
        text = str(np.datetime64(key, "M")) if not isinstance(key, str) else key.strip()[:7]
        months = np.datetime_as_string(d["time"], unit="M")
        hit = np.flatnonzero(months == text)
        if not len(hit):
            raise ValueError(
                f"context = {key!r} is not a month of the data; give 'YYYY-MM' in 1895-01 .. 1997-12"
            )
        return int(hit[0])

    def context(self, key: Any = "1990-07") -> Stations:
        """All stations reporting in one month (``'1990-07'``, a datetime or an index); default July 1990."""
        d = self._data
        t = self.month_index("1990-07" if key is None else key)
        row = d["values"][t]
        ok = np.isfinite(row)
        if not ok.any():
            raise ValueError(
                f"no station reported {self.variable} in {np.datetime_as_string(d['time'][t], 'M')}"
            )
        label = f"{np.datetime_as_string(d['time'][t], unit='M')}"
        return Stations(d["lon"][ok], d["lat"][ok], row[ok], label, COLORADO_REGION, d["elevation"][ok])

    def score_contexts(self) -> list[Stations]:
        """The twelve months of the first test year (all reporting stations)."""
        first = self.years["test"][0]
        return [self.context(f"{first}-{m:02d}") for m in range(1, 13)]
