"""Semi-synthetic temperature over real terrain, where the true symmetry-breaking term is known.

Each task draws a temperature field over a region of real elevation:

    T(x) = T0 + f(x) + lapse_rate * elevation(x) + noise,

with ``T0 ~ N(15, 5^2)`` degC per task, ``f`` a smooth stationary random field (a GP with an EQ
kernel of length scale ``lengthscale_km = 300`` km and standard deviation 3 K, sampled with 256
random Fourier features so a draw costs O(n)), the standard atmosphere's lapse rate -6.5 K/km and
observation noise 0.5 K. ``T0 + f`` is translation invariant in distribution; the lapse-rate term is
not: it is the breaking field a model can learn, and :meth:`TerrainSampler.breaking_truth` gives it.
"Stations" are random land cells of the elevation grid (at their cell centres): ``N_c ~ U{10..150}``
contexts and ``nt = 128`` other cells as targets.

Datasets:

- ``us-terrain``: ``datasets/us_elevation.nc`` (PRISM, 1/4 degree); train on the western half
  (lon < -98), test on the eastern half (out of distribution: outside the box the fixed inputs are
  zero, as in the paper's Europe -> US test). Validation: the western half, other draws.
- ``terrain:REGION``: ``datasets/global_elevation.nc`` (5 arc-minutes) over a named box (``alps``,
  ``rockies``, ``himalaya``) or ``LON0,LON1,LAT0,LAT1``; train, validation and test in that region
  (different draws).
- ``terrain:TRAIN->TEST``, e.g. ``terrain:alps->rockies`` (the paper-like protocol): train and
  validate on one region, test on another. Model coordinates come from the training region (one
  equirectangular projection for both), so the test region lies far outside the box; it must not be
  larger than the training region in model units, because a ConvCNP's grid is sized to the box.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import xarray as xr

from workbench.data.base import Draw, GeoSampler, Stations, interp_grid, open_netcdf
from workbench.geo import Coords, Region, dataset_file

#: Named boxes of ``terrain:REGION`` (lon_min, lon_max, lat_min, lat_max).
REGIONS: dict[str, Region] = {
    "alps": (5.0, 16.0, 43.0, 48.5),
    "rockies": (-112.0, -103.0, 37.0, 44.0),
    "himalaya": (76.0, 96.0, 26.0, 36.0),
}

#: The two halves of the conterminous US for ``us-terrain``.
US_WEST: Region = (-125.0, -98.0, 24.0, 50.0)
US_EAST: Region = (-98.0, -66.5, 24.0, 50.0)

#: Standard-atmosphere lapse rate, K per km.
LAPSE_RATE = -6.5

_REGION_HELP = "alps, rockies, himalaya, LON0,LON1,LAT0,LAT1 or TRAIN->TEST (e.g. alps->rockies)"

#: Stations sit on land cells: a box with less land than this trains on a handful of repeated points.
MIN_LAND_FRACTION = 0.05

#: Largest ratio of east-west scale across a box (cos of the centre over cos of the poleward edge)
#: that the local equirectangular projection of ``workbench.geo.Coords`` is allowed to distort.
MAX_DISTORTION = 2.0


def parse_region(text: str) -> tuple[str, Region]:
    """A named region or ``LON0,LON1,LAT0,LAT1`` -> (label, region), with errors naming the bad part."""
    text = text.strip()
    if text in REGIONS:
        return text, REGIONS[text]
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError(f"unknown region {text!r}; choose one of: {_REGION_HELP}")
    try:
        lon0, lon1, lat0, lat1 = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"region {text!r} is not four numbers LON0,LON1,LAT0,LAT1") from None
    if not (-180 <= lon0 < lon1 <= 180 and -90 <= lat0 < lat1 <= 90):
        raise ValueError(
            f"region {text!r} needs -180 <= LON0 < LON1 <= 180 and -90 <= LAT0 < LAT1 <= 90 (degrees)"
        )
    return text, (lon0, lon1, lat0, lat1)


def parse_terrain(name: str) -> tuple[tuple[str, Region], tuple[str, Region]]:
    """``terrain:REGION`` or ``terrain:TRAIN->TEST`` -> ((train label, region), (test label, region))."""
    if not name.startswith("terrain:"):
        raise ValueError(f"{name!r} is not a terrain dataset name (terrain:REGION)")
    spec = name[len("terrain:") :]
    if not spec:
        raise ValueError(f"terrain dataset {name!r} names no region; choose one of: {_REGION_HELP}")
    if "->" in spec:
        a, b = spec.split("->", 1)
        return parse_region(a), parse_region(b)
    r = parse_region(spec)
    return r, r


@functools.lru_cache(maxsize=32)
def check_terrain(name: str) -> None:
    """Refuse a ``terrain:`` name whose boxes cannot make tasks: too little land, or too near a pole.

    Reads only the boxes' part of the global elevation grid (cached), so ``Experiment`` can call it.
    """
    (_, train), (_, test) = parse_terrain(name)
    for which, region in (("training", train), ("test", test)):
        if which == "test" and test == train:
            break
        _check_land(name, which, region)
        _check_polar(name, which, region)


def _check_polar(name: str, which: str, region: Region) -> None:
    lat0, lat1 = region[2], region[3]
    centre = math.cos(math.radians((lat0 + lat1) / 2))
    edge = math.cos(math.radians(max(abs(lat0), abs(lat1))))
    factor = centre / edge if edge > 1e-9 else math.inf
    if factor > MAX_DISTORTION:
        raise ValueError(
            f"{name}: the {which} region {region} is polar (latitudes {lat0:g} .. {lat1:g}): the "
            f"workbench's local lon/lat projection would distort east-west distances by x{factor:.3g} "
            f"across it (at most x{MAX_DISTORTION:g}); choose a box further from the pole or narrower "
            "in latitude"
        )


def _check_land(name: str, which: str, region: Region) -> None:
    lon0, lon1, lat0, lat1 = region
    grid = _global_elevation(str(dataset_file("global_elevation.nc")), region)
    sub = grid.sel(lat=slice(lat0, lat1), lon=slice(lon0, lon1))
    land = int(np.isfinite(sub.values).sum())
    fraction = land / max(sub.size, 1)
    if land < 2 or fraction < MIN_LAND_FRACTION:
        raise ValueError(
            f"{name}: the {which} region {region} is {100 * fraction:.2f} % land ({land} land cells of "
            f"{sub.size}); stations sit on land, so a terrain box needs at least "
            f"{100 * MIN_LAND_FRACTION:g} % land: choose a box over a continent (e.g. alps, rockies)"
        )


@functools.lru_cache(maxsize=1)
def _us_elevation(path: str) -> xr.DataArray:
    with open_netcdf(path) as ds:
        return ds["elevation"].load()


@functools.lru_cache(maxsize=8)
def _global_elevation(path: str, region: Region, margin: float = 1.0) -> xr.DataArray:
    """A subset of the global 5 arc-minute grid (only that part of the file is read)."""
    lon0, lon1, lat0, lat1 = region
    with open_netcdf(path) as ds:
        sub = ds["elevation"].sel(
            lat=slice(lat0 - margin, lat1 + margin), lon=slice(lon0 - margin, lon1 + margin)
        )
        return sub.load()


class TerrainSampler(GeoSampler):
    """Smooth random weather + lapse rate x real elevation + noise, stations on land cells (see module)."""

    def __init__(
        self,
        name: str,
        sources: list[xr.DataArray],
        train_region: Region,
        test_region: Region,
        *,
        lapse_rate: float = LAPSE_RATE,
        noise_sd: float = 0.5,
        lengthscale_km: float = 300.0,
        field_sd: float = 3.0,
        offset_mean: float = 15.0,
        offset_sd: float = 5.0,
        nc_min: int = 10,
        nc_max: int = 150,
        nt: int = 128,
        n_features: int = 256,
        span: float = 3.0,
    ) -> None:
        super().__init__(train_region=train_region, span=span)
        self.name = name
        self.variable, self.long_name = "temperature", "semi-synthetic surface temperature"
        self.sources = sources
        self.regions = {"train": self.train_region, "val": self.train_region, "test": tuple(test_region)}
        self.lapse_rate, self.noise_sd = float(lapse_rate), float(noise_sd)
        self.lengthscale_km, self.field_sd = float(lengthscale_km), float(field_sd)
        self.offset_mean, self.offset_sd = float(offset_mean), float(offset_sd)
        if not 0 <= nc_min <= nc_max or nt < 1:
            raise ValueError(f"need 0 <= nc_min <= nc_max and nt >= 1, got {nc_min}, {nc_max}, {nt}")
        self.nc_min, self.nc_max, self.nt, self.n_features = (
            int(nc_min),
            int(nc_max),
            int(nt),
            int(n_features),
        )
        self._check_test_fits()

    def _check_test_fits(self) -> None:
        geometry = Coords.for_region(self.train_region, self.span)
        train, test = geometry.box(self.train_region), geometry.box(self.regions["test"])
        room = 1.1 * max(hi - lo for lo, hi in train)
        if max(hi - lo for lo, hi in test) > room:
            raise ValueError(
                f"{self.name}: the test region {self.regions['test']} is larger than the training region "
                f"{self.train_region} in model units ({max(hi - lo for lo, hi in test):.2f} > {room:.2f}); "
                "a ConvCNP's grid is sized to the training box, so choose a smaller test region"
            )

    # --- the elevation ---------------------------------------------------------------------------

    def elevation_at(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Elevation (m) at points from the first source that covers them, bilinear; NaN over sea."""
        out = None
        for src in self.sources:
            e = interp_grid(src, lon, lat)
            out = e if out is None else np.where(np.isfinite(out), out, e)
        return out

    @functools.lru_cache(maxsize=4)  # noqa: B019 - a handful of regions per sampler, samplers are few
    def land_cells(self, region: Region) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lon, lat, elevation in m) of the land cells (cell centres) inside a region."""
        lon0, lon1, lat0, lat1 = region
        parts = []
        for src in self.sources:
            sub = src.sel(lat=slice(lat0, lat1), lon=slice(lon0, lon1))
            lon2, lat2 = np.meshgrid(sub["lon"].values, sub["lat"].values)
            e = sub.values
            ok = np.isfinite(e)
            parts.append((lon2[ok], lat2[ok], e[ok].astype(np.float64)))
            if ok.any():
                break
        lon, lat, e = parts[-1]
        if len(e) < 2:
            raise ValueError(f"{self.name}: region {region} has {len(e)} land cells; need at least 2")
        return lon, lat, e

    def breaking_truth(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """The true breaking term, lapse rate x elevation (degC), at points; NaN over sea."""
        return self.lapse_rate * self.elevation_at(lon, lat) / 1000.0

    def _normalisation(self) -> tuple[float, float]:
        _, _, e = self.land_cells(self.train_region)
        lapse = self.lapse_rate * e / 1000.0
        mean = self.offset_mean + float(lapse.mean())
        var = self.offset_sd**2 + self.field_sd**2 + float(lapse.var()) + self.noise_sd**2
        return mean, math.sqrt(var)

    # --- drawing fields --------------------------------------------------------------------------

    def _field(self, rng: np.random.Generator):
        """A random smooth field ``T0 + f`` as a function of model inputs ``[..., 2]`` (degC)."""
        ell = self.lengthscale_km / self.coords.km_per_unit  # in model units
        m = self.n_features
        omega = rng.standard_normal((2, m)) / ell
        phase = rng.uniform(0, 2 * math.pi, m)
        weight = rng.standard_normal(m) * self.field_sd * math.sqrt(2.0 / m)
        offset = self.offset_mean + self.offset_sd * rng.standard_normal()

        def field(x: np.ndarray) -> np.ndarray:
            return offset + np.cos(x @ omega + phase) @ weight

        return field

    def _sample(self, region: Region, n: int, rng: np.random.Generator):
        """``n`` stations in a region: (lon, lat, elevation, value in degC), and the noise-free truth."""
        lon, lat, e = self.land_cells(region)
        pick = rng.choice(len(e), n, replace=len(e) < n)
        field = self._field(rng)
        lon, lat, e = lon[pick], lat[pick], e[pick]
        value = field(self.coords.to_model(lon, lat)) + self.lapse_rate * e / 1000.0
        value = value + self.noise_sd * rng.standard_normal(n)

        def truth(lo: np.ndarray, la: np.ndarray) -> np.ndarray:
            return field(self.coords.to_model(lo, la)) + self.breaking_truth(lo, la)

        return lon, lat, e, value, truth

    def _draw(self, split: str, unit: int | None, rng: np.random.Generator) -> Draw:
        nc = int(rng.integers(self.nc_min, self.nc_max + 1))
        lon, lat, _, value, _ = self._sample(self.regions[split], nc + self.nt, rng)
        x = self.coords.to_model(lon, lat)
        y = self.coords.normalise(value)
        return Draw(x[:nc], y[:nc], x[nc:], y[nc:], -1)

    # --- maps ------------------------------------------------------------------------------------

    def context(self, key: Any = None, n_stations: int | None = None) -> Stations:
        """A synthetic draw as a map context: ``key`` = a seed (training region), ``'test'``,
        ``'test:SEED'`` or ``'train:SEED'``; the draw's noise-free field is the map's ``truth``."""
        split, seed = "train", 0
        if isinstance(key, str):
            split, _, s = key.partition(":")
            if split not in ("train", "test") or (s and not s.lstrip("-").isdigit()):
                raise ValueError(f"context = {key!r} is not valid; give a seed, 'train:SEED' or 'test:SEED'")
            seed = int(s) if s else 0
        elif key is not None:
            if not isinstance(key, (int, np.integer)) or isinstance(key, bool):
                raise ValueError(f"context = {key!r} is not valid; give a seed, 'train:SEED' or 'test:SEED'")
            seed = int(key)
        n = n_stations if n_stations is not None else (self.nc_min + self.nc_max) // 2
        region = self.regions[split]
        lon, lat, e, value, truth = self._sample(region, n, np.random.default_rng(seed))
        return Stations(lon, lat, value, f"{split} draw {seed}", region, e, truth)

    def score_contexts(self) -> list[Stations]:
        """Eight draws in the training region (seeds 0..7)."""
        return [self.context(seed) for seed in range(8)]


def us_terrain(**kwargs: Any) -> TerrainSampler:
    """us-terrain: PRISM elevation at 1/4 degree, train on the western US, test on the eastern US."""
    src = _us_elevation(str(dataset_file("us_elevation.nc")))
    return TerrainSampler("us-terrain", [src], US_WEST, US_EAST, **kwargs)


def terrain(name: str, **kwargs: Any) -> TerrainSampler:
    """``terrain:REGION`` or ``terrain:TRAIN->TEST`` over the global 5 arc-minute elevation grid."""
    (_, train), (_, test) = parse_terrain(name)
    path = str(dataset_file("global_elevation.nc"))
    sources = [_global_elevation(path, train)]
    if test != train:
        sources.append(_global_elevation(path, test))
    return TerrainSampler(name, sources, train, test, **kwargs)
