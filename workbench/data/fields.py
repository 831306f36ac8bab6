"""Geographic datasets: gridded fields (HadCM3, ERA5, your own) as task samplers, and dataset names.

Every geographic sampler is a :class:`GeoSampler` with the interface of the GP samplers (``name``,
``dim_x = 2``, ``box``, ``batches``, ``test_set``) plus ``coords`` (a :class:`workbench.geo.Coords`:
lon/lat <-> model inputs, physical units <-> model outputs), so a trained run can be turned back into
maps in degrees and degC. There is no oracle. Stations and terrain live in ``stations.py`` and
``terrain.py``; this module also parses the names a user can give ``Experiment.dataset``:

- a name in :data:`workbench.data.registry.DATASETS`;
- ``era5:PATH``: a user's ERA5 NetCDF (``t2m`` on ``latitude``/``longitude``/``time``);
- ``terrain:REGION`` (see :mod:`workbench.data.terrain`);
- an ``xarray.DataArray`` / ``Dataset`` or a path to a ``.nc`` file: a gridded field of your own.

Gridded fields: one time step = one task; its valid (non-NaN) cells are the "stations":
``N_c ~ U{nc_min..nc_max}`` of them are the context, ``nt`` others the targets (drawn with
replacement only when fewer than ``nt`` cells are left). Time steps are split chronologically.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import xarray as xr

from workbench.geo import Coords, Region, dataset_file
from workbench.task import Task

if TYPE_CHECKING:
    from workbench.run import Run

Box = tuple[tuple[float, float], ...]

#: Standard gravity: ERA5 orography ``z`` is geopotential (m^2 s^-2); z / g is metres.
GRAVITY = 9.80665

#: Spellings of the spatial coordinates a field may use, in order of preference: (lon name, lat name).
SPATIAL_NAMES: tuple[tuple[str, str], ...] = (("lon", "lat"), ("longitude", "latitude"), ("x", "y"))

SPATIAL_DIMS = {name for pair in SPATIAL_NAMES for name in pair}

#: Names of an elevation variable in a dataset, and how to turn each into metres.
ELEVATION_NAMES: dict[str, float] = {"elevation": 1.0, "orography": 1.0, "z": 1.0 / GRAVITY}

#: What ``Experiment.dataset`` accepts besides the registered names.
DATASET_FORMS = (
    "era5:PATH",
    "terrain:REGION (alps, rockies, himalaya, LON0,LON1,LAT0,LAT1 or TRAIN->TEST)",
    "an xarray.DataArray",
    "a path to a .nc file",
)


# --------------------------------------------------------------------------------------------------
# Contexts in physical units
# --------------------------------------------------------------------------------------------------


@dataclass
class Stations:
    """Observations in physical units: a context set for a map, ``lon``, ``lat``, ``value`` ``[n]``.

    ``region`` is the lon/lat extent a map of this context should cover by default; ``truth`` (for
    synthetic or gridded sources) gives the noise-free field at any ``(lon, lat)``.
    """

    lon: np.ndarray
    lat: np.ndarray
    value: np.ndarray
    label: str = ""
    region: Region | None = None
    elevation: np.ndarray | None = None
    truth: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.lon = np.asarray(self.lon, dtype=np.float64).reshape(-1)
        self.lat = np.asarray(self.lat, dtype=np.float64).reshape(-1)
        self.value = np.asarray(self.value, dtype=np.float64).reshape(-1)
        if not len(self.lon) == len(self.lat) == len(self.value):
            raise ValueError(
                f"stations need as many lon ({len(self.lon)}) and lat ({len(self.lat)}) "
                f"as values ({len(self.value)})"
            )
        ok = np.isfinite(self.lon) & np.isfinite(self.lat) & np.isfinite(self.value)
        if not ok.all():
            # Missing observations are simply not observations; drop them rather than fail.
            self.lon, self.lat, self.value = self.lon[ok], self.lat[ok], self.value[ok]
            if self.elevation is not None:
                self.elevation = np.asarray(self.elevation, dtype=np.float64).reshape(-1)[ok]

    def __len__(self) -> int:
        return len(self.value)


def as_stations(obj: Any, variable: str = "value") -> Stations:
    """User-given stations -> :class:`Stations`: a dict or DataFrame with lon, lat and value columns.

    Accepted column names: ``lon``/``longitude``/``x``, ``lat``/``latitude``/``y`` and
    ``value`` (or the dataset's variable name, e.g. ``tmax``).
    """
    if isinstance(obj, Stations):
        return obj
    try:
        keys = list(obj.keys())
    except AttributeError:
        raise TypeError(
            f"stations must be a dict or DataFrame with lon, lat, value; got {type(obj).__name__}"
        ) from None

    def pick(names: Sequence[str], what: str) -> np.ndarray:
        for n in names:
            if n in keys:
                return np.atleast_1d(np.asarray(obj[n], dtype=np.float64))
        raise ValueError(f"stations have no {what} column; found {keys}, need one of {list(names)}")

    lon = pick(("lon", "longitude", "x"), "longitude")
    lat = pick(("lat", "latitude", "y"), "latitude")
    value = pick(("value", variable, "temperature", "t2m"), "value")
    return Stations(lon, lat, value, label="user stations")


# --------------------------------------------------------------------------------------------------
# The base sampler
# --------------------------------------------------------------------------------------------------


@dataclass
class Draw:
    """One task in model units: ``xc [nc, 2]``, ``yc [nc]``, ``xt [nt, 2]``, ``yt [nt]``, which time step."""

    xc: np.ndarray
    yc: np.ndarray
    xt: np.ndarray
    yt: np.ndarray
    unit: int = -1


def collate(draws: Sequence[Draw]) -> Task:
    """Stack draws into one :class:`Task`; contexts padded to the largest ``nc`` (``mask_c`` marks them)."""
    b = len(draws)
    nc = max(len(d.yc) for d in draws)
    nt = len(draws[0].yt)
    if any(len(d.yt) != nt for d in draws):
        raise ValueError("all tasks of a batch need the same number of targets")
    xc = np.zeros((b, nc, 2), np.float32)
    yc = np.zeros((b, nc, 1), np.float32)
    mask = np.zeros((b, nc), bool)
    for i, d in enumerate(draws):
        k = len(d.yc)
        xc[i, :k], yc[i, :k, 0], mask[i, :k] = d.xc, d.yc, True
    xt = np.stack([d.xt for d in draws]).astype(np.float32)
    yt = np.stack([d.yt for d in draws]).astype(np.float32)[..., None]
    unit = torch.tensor([d.unit for d in draws], dtype=torch.long)
    return Task(
        torch.from_numpy(xc),
        torch.from_numpy(yc),
        torch.from_numpy(xt),
        torch.from_numpy(yt),
        torch.from_numpy(mask),
        {"unit": unit},
    )


def split_points(n: int, nc: int, nt: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``nc`` contexts and ``nt`` targets among ``n`` points, targets disjoint from contexts.

    Targets are drawn without replacement from the rest; only when fewer than ``nt`` are left are
    they all used and topped up by drawing from the rest with replacement (so the target set has a
    fixed size and every held-out point is used).
    """
    perm = rng.permutation(n)
    ctx, rest = perm[:nc], perm[nc:]
    if len(rest) == 0:
        raise ValueError(f"no points left for targets: {n} points and {nc} contexts")
    if len(rest) >= nt:
        tgt = rest[:nt]
    else:
        tgt = np.concatenate([rest, rng.choice(rest, nt - len(rest), replace=True)])
    return ctx, tgt


class GeoSampler:
    """Base class of the geographic task samplers (no oracle).

    Subclasses set ``name`` and ``train_region`` and implement :meth:`_normalisation` (output mean and
    std over the training data, read on first use of ``coords``), :meth:`_draw` (one task of a split)
    and :meth:`context` (a map's context from a key such as a month). ``box`` is the training region
    in model coordinates: where fixed inputs are non-zero.
    """

    name: str = "geo"
    dim_x: int = 2
    dim_y: int = 1
    variable: str = "temperature"
    long_name: str = "temperature"

    def __init__(self, *, train_region: Region, span: float = 3.0) -> None:
        self.train_region = tuple(float(v) for v in train_region)
        self.span = float(span)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, train_region={self.train_region}, box={self.box})"

    # --- geometry ---------------------------------------------------------------------------------

    @functools.cached_property
    def coords(self) -> Coords:
        """Lon/lat <-> model inputs and physical <-> model outputs (normalisation from training data)."""
        mean, std = self._normalisation()
        return Coords.for_region(
            self.train_region, self.span, y_mean=mean, y_std=std, **self._coords_kwargs()
        )

    def _coords_kwargs(self) -> dict[str, Any]:
        return {}

    def _normalisation(self) -> tuple[float, float]:
        """Mean and standard deviation of the outputs over the training data."""
        raise NotImplementedError

    @property
    def box(self) -> Box:
        """The training region in model coordinates ``((x0, x1), (y0, y1))``."""
        # The geometry does not depend on the normalisation, so no data are read here.
        return Coords.for_region(self.train_region, self.span, **self._coords_kwargs()).box(self.train_region)

    @property
    def units(self) -> str:
        """Physical units of the outputs."""
        return self.coords.units

    @property
    def map_region(self) -> Region:
        """Default lon/lat extent of a map."""
        return self.train_region

    def elevation_at(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray | None:
        """Surface elevation (m) at points in degrees, NaN where unknown; ``None`` if the source has none."""
        return None

    # --- tasks -----------------------------------------------------------------------------------

    def _draw(self, split: str, unit: int | None, rng: np.random.Generator) -> Draw:
        """One task of ``split``; ``unit`` picks the time step (``None``: a random one)."""
        raise NotImplementedError

    def n_units(self, split: str) -> int | None:
        """Number of distinct time steps in a split (``None`` for endless synthetic data)."""
        return None

    def batches(self, batch_size: int, seed: int, start: int = 0) -> Iterator[Task]:
        """Endless reproducible stream of training batches ``start, start + 1, ...``: the same seed gives
        the same tasks. Batch k has its own generator seeded from ``(seed, k)``, so a resumed run
        starts at its step without replaying the batches before it."""
        k = start
        while True:
            rng = np.random.default_rng(np.random.SeedSequence([seed, k]))
            yield collate([self._draw("train", None, rng) for _ in range(batch_size)])
            k += 1

    def task_set(self, split: str, n_tasks: int, batch_size: int = 16, seed: int = 10_000) -> list[Task]:
        """``n_tasks`` tasks of a split in batches; time steps are taken in order, cycling when needed."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split = {split!r} is not valid; choose one of: train, val, test")
        n_units = self.n_units(split)
        if n_units == 0:
            raise ValueError(f"{self.name}: the {split!r} split has no time steps")
        rng = np.random.default_rng(seed)
        draws = [self._draw(split, None if n_units is None else k % n_units, rng) for k in range(n_tasks)]
        return [collate(draws[i : i + batch_size]) for i in range(0, n_tasks, batch_size)]

    def test_set(self, n_tasks: int = 1024, batch_size: int = 16, seed: int = 10_000) -> list[Task]:
        """Fixed list of test batches holding ``n_tasks`` tasks (the last batch may be smaller)."""
        return self.task_set("test", n_tasks, batch_size, seed)

    def validation_set(self, n_tasks: int = 256, batch_size: int = 16, seed: int = 20_000) -> list[Task]:
        """Fixed list of validation batches holding ``n_tasks`` tasks."""
        return self.task_set("val", n_tasks, batch_size, seed)

    # --- maps ------------------------------------------------------------------------------------

    def context(self, key: Any = None) -> Stations:
        """The context of a map for ``key`` (see the subclass); ``None`` is a representative default."""
        raise NotImplementedError

    def score_contexts(self) -> list[Stations]:
        """Contexts over which the breaking field is averaged for :meth:`extra_metrics`."""
        return []

    def breaking_truth(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray | None:
        """The true symmetry-breaking term at points (degC), where the data were made with one."""
        return None

    def extra_metrics(self, run: Run) -> dict[str, float]:
        """Correlation of the learned breaking field with elevation (and the true breaking term)."""
        if self.elevation_at(np.zeros(1), np.zeros(1)) is None:
            return {}
        contexts = self.score_contexts()
        if not contexts:
            return {}
        from workbench.maps import breaking_scores

        return breaking_scores(run, self, contexts)


# --------------------------------------------------------------------------------------------------
# Interpolation on lon/lat grids
# --------------------------------------------------------------------------------------------------


def interp_grid(da: xr.DataArray, lon: np.ndarray, lat: np.ndarray, method: str = "linear") -> np.ndarray:
    """Values of a ``(lat, lon)`` grid at points (bilinear by default), NaN outside or next to NaN."""
    from scipy.interpolate import RegularGridInterpolator

    lon, lat = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
    f = RegularGridInterpolator(
        (da["lat"].values, da["lon"].values),
        np.asarray(da.values, np.float64),
        method=method,
        bounds_error=False,
        fill_value=np.nan,
    )
    pts = np.stack(np.broadcast_arrays(lat, lon), -1)
    return f(pts.reshape(-1, 2)).reshape(pts.shape[:-1])


# --------------------------------------------------------------------------------------------------
# Gridded fields
# --------------------------------------------------------------------------------------------------


def chronological_splits(n: int, fractions: tuple[float, float] = (0.7, 0.15)) -> dict[str, np.ndarray]:
    """Time-step indices of train / val / test: the first 70 %, the next 15 %, the last 15 %.

    One time step is shared by all three splits (different random stations per task); with two,
    the first trains and the second tests (no validation steps).
    """
    idx = np.arange(n)
    if n == 1:
        return {"train": idx, "val": idx, "test": idx}
    n_test = max(1, int(round((1 - sum(fractions)) * n)))
    n_train = max(1, min(n - n_test, int(round(fractions[0] * n))))
    return {"train": idx[:n_train], "val": idx[n_train : n - n_test], "test": idx[n - n_test :]}


class FieldSampler(GeoSampler):
    """A gridded field ``(time, lat, lon)`` as tasks: one time step = one task, valid cells = stations.

    ``splits`` maps ``train``/``val``/``test`` to time-step indices (default: chronological 70/15/15).
    ``N_c ~ U{nc_min..nc_max}`` (clipped to the valid cells), ``nt`` targets among the other cells.
    """

    def __init__(
        self,
        field: xr.DataArray,
        *,
        name: str = "field",
        elevation: xr.DataArray | None = None,
        splits: dict[str, np.ndarray] | None = None,
        nc_min: int = 10,
        nc_max: int = 200,
        nt: int = 128,
        span: float = 3.0,
        planar: bool = False,
    ) -> None:
        n_given = field.sizes.get("time", 1) if isinstance(field, xr.DataArray) else None
        field = check_field(field, planar)
        if splits is not None and field.sizes["time"] != n_given:
            raise ValueError(
                f"{name}: time steps were dropped from the field, so the given splits no longer match it; "
                "drop them first (or pass no splits)"
            )
        lon, lat = field["lon"].values, field["lat"].values
        super().__init__(train_region=(lon.min(), lon.max(), lat.min(), lat.max()), span=span)
        self.name = name
        self.field = field
        self.values = np.asarray(field.values, dtype=np.float32)  # [time, lat, lon]
        self.elevation = elevation
        self.planar = planar
        self.variable = str(field.name or "value")
        self.long_name = str(field.attrs.get("long_name", self.variable))
        self._units = str(field.attrs.get("units", ""))
        self.splits = splits if splits is not None else chronological_splits(self.values.shape[0])
        self.nc_min, self.nc_max, self.nt = int(nc_min), int(nc_max), int(nt)
        if not 0 <= self.nc_min <= self.nc_max or self.nt < 1:
            raise ValueError(f"need 0 <= nc_min <= nc_max and nt >= 1, got {nc_min}, {nc_max}, {nt}")
        self._lon2, self._lat2 = np.meshgrid(lon, lat)  # [lat, lon]

    def _coords_kwargs(self) -> dict[str, Any]:
        return {"units": self._units, "planar": self.planar}

    def _normalisation(self) -> tuple[float, float]:
        v = self.values[self.splits["train"]]
        mean, std = float(np.nanmean(v)), float(np.nanstd(v))
        return mean, std if std > 0 else 1.0

    def n_units(self, split: str) -> int:
        """Number of time steps in a split."""
        if split not in self.splits:
            raise ValueError(f"split = {split!r} is not valid; choose one of: {', '.join(self.splits)}")
        return len(self.splits[split])

    def times(self, split: str) -> np.ndarray:
        """Time coordinate values of a split's steps."""
        return self.field["time"].values[self.splits[split]]

    def _draw(self, split: str, unit: int | None, rng: np.random.Generator) -> Draw:
        steps = self.splits[split]
        t = int(steps[rng.integers(len(steps))] if unit is None else steps[unit])
        valid = np.flatnonzero(np.isfinite(self.values[t]))
        n = len(valid)
        hi = min(self.nc_max, n - 1)
        nc = int(rng.integers(min(self.nc_min, hi), hi + 1))
        ci, ti = split_points(n, nc, self.nt, rng)
        x = self.coords.to_model(self._lon2.reshape(-1)[valid], self._lat2.reshape(-1)[valid])
        y = self.coords.normalise(self.values[t].reshape(-1)[valid])
        return Draw(x[ci], y[ci], x[ti], y[ti], t)

    def elevation_at(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray | None:
        """Elevation (m) from the field's elevation variable, ``None`` when it has none."""
        if self.elevation is None:
            return None
        return interp_grid(self.elevation, lon, lat)

    def _time_index(self, key: Any) -> int:
        """A time step from an index, a year, a time value or a date string such as ``'2050'``, ``'1990-07'``.

        An integer is first looked up as a year (datetime times) or a time value (numeric times),
        then as an index.
        """
        times = self.field["time"].values
        n = len(times)
        is_date = np.issubdtype(times.dtype, np.datetime64)
        if isinstance(key, (bool, np.bool_)):
            raise ValueError(
                f"context = {key!r} is a bool; give an index in [0, {n}), "
                + ("a year or a date string" if is_date else "a time value of the data")
            )
        if isinstance(key, (int, np.integer)):
            values = times.astype("datetime64[Y]").astype(int) + 1970 if is_date else times
            if np.issubdtype(np.asarray(values).dtype, np.number):
                hit = np.flatnonzero(values == int(key))
                if len(hit):
                    return int(hit[0])
            if -n <= int(key) < n:
                return int(key) % n
            raise ValueError(f"context = {key} is neither a year/time of the data nor an index in [0, {n})")
        if is_date:
            text = np.datetime_as_string(times, unit="D")
            hit = [i for i, s in enumerate(text) if s.startswith(str(key))]
            if hit:
                return hit[0]
            raise ValueError(
                f"context = {key!r} matches no time step; the data run from {text[0]} to {text[-1]}"
            )
        hit = [i for i, v in enumerate(times) if str(v) == str(key)]
        if hit:
            return hit[0]
        raise ValueError(f"context = {key!r}: give an index in [0, {n}) or a time value of the data")

    def time_label(self, t: int) -> str:
        """How time step ``t`` is named on a map: its date, or its time value for numeric times."""
        value = self.field["time"].values[t]
        if np.issubdtype(np.asarray(value).dtype, np.datetime64):
            return str(np.datetime_as_string(value, unit="D"))
        return str(value)

    def context(self, key: Any = None, n_stations: int | None = None, seed: int = 0) -> Stations:
        """A map context: ``n_stations`` random valid cells of one time step (default: the first test step).

        ``key`` is an index, a year or a date string. The full field of that step is the map's ``truth``.
        """
        t = int(self.splits["test"][0]) if key is None else self._time_index(key)
        valid = np.flatnonzero(np.isfinite(self.values[t]))
        n = n_stations if n_stations is not None else (self.nc_min + self.nc_max) // 2
        pick = np.random.default_rng(seed).permutation(valid)[: min(n, len(valid))]
        step = self.field.isel(time=t)
        label = self.time_label(t) if "time" in step.coords else str(t)

        def truth(lon: np.ndarray, lat: np.ndarray, step: xr.DataArray = step) -> np.ndarray:
            return interp_grid(step, lon, lat)

        lon, lat = self._lon2.reshape(-1)[pick], self._lat2.reshape(-1)[pick]
        return Stations(lon, lat, self.values[t].reshape(-1)[pick], label, self.map_region, None, truth)

    def score_contexts(self) -> list[Stations]:
        """The first (up to) eight test steps."""
        return [self.context(int(t), seed=int(t)) for t in self.splits["test"][:8]]


# --------------------------------------------------------------------------------------------------
# Reading fields: your own, ERA5, HadCM3
# --------------------------------------------------------------------------------------------------


def _describe(obj: Any) -> str:
    """A short description of a dataset value for error messages (a DataArray's repr is pages long)."""
    if isinstance(obj, (xr.DataArray, xr.Dataset)):
        dims = ", ".join(f"{k}: {v}" for k, v in obj.sizes.items())
        name = f" {obj.name!r}" if isinstance(obj, xr.DataArray) and obj.name is not None else ""
        return f"<xarray.{type(obj).__name__}{name} ({dims})>"
    return repr(obj)


def _spatial_names(obj: xr.DataArray | xr.Dataset) -> tuple[str, str] | None:
    for lon, lat in SPATIAL_NAMES:
        if lon in obj.coords and lat in obj.coords:
            return lon, lat
    return None


def _standardise(da: xr.DataArray, what: str, planar: bool | None = None) -> tuple[xr.DataArray, bool]:
    """Rename spatial coordinates to lon/lat, sort them ascending, wrap longitudes to -180..180."""
    names = _spatial_names(da)
    if names is None:
        raise ValueError(
            f"{what} has dims {tuple(da.dims)} and coordinates {sorted(map(str, da.coords))}; "
            "it needs spatial coordinates lat/lon, latitude/longitude or x/y"
        )
    lon, lat = names
    planar = lon == "x" if planar is None else planar
    da = da.rename({lon: "lon", lat: "lat"}) if (lon, lat) != ("lon", "lat") else da
    if da["lon"].ndim != 1 or da["lat"].ndim != 1 or "lon" not in da.dims or "lat" not in da.dims:
        raise ValueError(f"{what}: lat and lon must be 1-D dimension coordinates (a regular grid)")
    _check_coordinates(da, what, planar)
    if not planar:
        da = da.assign_coords(lon=continuous_longitudes(da["lon"].values))
    return da.sortby(["lat", "lon"]), planar


def _check_coordinates(da: xr.DataArray, what: str, planar: bool) -> None:
    """Finite, distinct coordinates; on the globe, latitudes in [-90, 90] and longitudes in one turn."""
    for name, long in (("lat", "latitude"), ("lon", "longitude")):
        values = np.asarray(da[name].values, np.float64)
        if not np.isfinite(values).all():
            raise ValueError(
                f"{what}: a {long} coordinate is NaN or infinite; every grid line needs a position"
            )
        uniq, counts = np.unique(values, return_counts=True)
        if (counts > 1).any():
            raise ValueError(
                f"{what} repeats a {long}: {uniq[counts > 1][:5].tolist()}; grid lines must differ"
            )
    if planar:
        return
    lat, lon = da["lat"].values, da["lon"].values
    if lat.min() < -90 or lat.max() > 90:
        raise ValueError(
            f"{what}: latitudes run {lat.min():g} .. {lat.max():g}; they must lie in -90 .. 90 degrees "
            "(for planar coordinates name them x/y)"
        )
    if lon.min() < -360 or lon.max() > 360 or lon.max() - lon.min() >= 360:
        raise ValueError(
            f"{what}: longitudes run {lon.min():g} .. {lon.max():g}; they must lie in -180 .. 180 or "
            "0 .. 360 degrees and span less than a full turn"
        )


def continuous_longitudes(lon: np.ndarray) -> np.ndarray:
    """Longitudes in degrees as one continuous range: -180..180 unless the data cross the dateline.

    ERA5 runs 0..360; a cut across the dateline (a Pacific box 150..270) wrapped to -180..180 would
    become two pieces a whole box apart. The largest gap between neighbouring longitudes on the circle
    is where the data end: the range starts after it, shifted so its centre lies in -180..180.
    """
    lon = np.asarray(lon, np.float64)
    wrapped = ((lon + 180.0) % 360.0) - 180.0
    if len(lon) < 2:
        return wrapped
    order = np.sort(wrapped)
    gaps = np.diff(np.r_[order, order[0] + 360.0])  # the last gap is the one across the dateline
    k = int(np.argmax(gaps))
    if k == len(order) - 1 or gaps[k] <= 1.5 * gaps[-1]:
        return wrapped  # the data do not cross the dateline (or go all the way round)
    start = order[k + 1]
    out = start + (wrapped - start) % 360.0
    centre = (out.min() + out.max()) / 2
    return out - 360.0 if centre > 180 else out


def check_field(field: xr.DataArray, planar: bool | None = None) -> xr.DataArray:
    """A field as ``(time, lat, lon)`` float with ascending coordinates, or a clear error why not.

    Time steps with fewer than 2 valid cells cannot make a task: they are dropped with a warning.
    ``planar`` (default: from the coordinate names) skips the checks of degrees.
    """
    if not isinstance(field, xr.DataArray):
        raise TypeError(f"a field must be an xarray.DataArray, got {type(field).__name__}")
    field, planar = _standardise(field, f"field {_describe(field)}", planar)
    extra = [d for d in field.dims if d not in ("lat", "lon")]
    if len(extra) > 1:
        raise ValueError(
            f"field {_describe(field)} has dims {tuple(field.dims)}: besides lat/lon it may have one "
            "time (sample) dimension"
        )
    if not extra:
        field = field.expand_dims("time")
    elif extra[0] != "time":
        field = field.rename({extra[0]: "time"})
    field = field.transpose("time", "lat", "lon")
    if 0 in field.shape:
        empty = [d for d, s in field.sizes.items() if s == 0]
        raise ValueError(f"field {_describe(field)} is empty along {empty}")
    if not np.issubdtype(field.dtype, np.number):
        raise ValueError(f"field {_describe(field)} has non-numeric dtype {field.dtype}")
    for dim, long in (("lat", "latitude"), ("lon", "longitude")):
        if field.sizes[dim] < 2:
            raise ValueError(
                f"field {_describe(field)} has 1 {long} ({float(field[dim][0]):g}): a task needs a "
                f"2-D spread of points, so give at least 2 latitudes and 2 longitudes"
            )
    values = np.asarray(field.values, dtype=np.float64)
    _check_infinite(field, values)
    valid = np.isfinite(values)
    if not valid.any():
        raise ValueError(f"field {_describe(field)} is all NaN: nothing to learn from")
    per_step = valid.reshape(valid.shape[0], -1).sum(-1)
    if per_step.max() < 2:
        raise ValueError(f"field {_describe(field)} has fewer than 2 valid cells per time step")
    for axis, dim, long, side in ((2, "lon", "longitude", "width"), (1, "lat", "latitude", "height")):
        used = valid.any(axis=tuple(a for a in (0, 1, 2) if a != axis))
        if used.sum() < 2:
            raise ValueError(
                f"the valid cells of field {_describe(field)} lie on one {long} "
                f"({float(field[dim][used.argmax()]):g}): the training box has zero {side}; "
                f"a field needs valid cells at 2 or more latitudes and longitudes"
            )
    few = np.flatnonzero(per_step < 2)
    if len(few):
        warnings.warn(
            f"field {_describe(field)}: {len(few)} time step(s) with fewer than 2 valid cells "
            f"cannot make a task and were dropped (indices {few[:10].tolist()})",
            UserWarning,
            stacklevel=2,
        )
        field = field.isel(time=np.flatnonzero(per_step >= 2))
    return field


def _check_infinite(field: xr.DataArray, values: np.ndarray) -> None:
    """Infinite values are not missing data (NaN is): refuse them, saying where the first one is."""
    inf = np.isinf(values)
    if not inf.any():
        return
    t, i, j = np.argwhere(inf)[0]
    where = f"time index {t}, lat {float(field['lat'][i]):g}, lon {float(field['lon'][j]):g}"
    raise ValueError(
        f"field {_describe(field)} has {int(inf.sum())} infinite value(s) (the first at {where}); "
        "mark missing cells with NaN, which are skipped, and fix or drop the others"
    )


def _elevation_of(ds: xr.Dataset, skip: str) -> xr.DataArray | None:
    """The elevation (m) of a dataset as ``(lat, lon)`` when it has a variable for it."""
    for name, factor in ELEVATION_NAMES.items():
        if name in ds.data_vars and name != skip:
            e = ds[name]
            # Orography is constant in time; ERA5 stores it per step anyway, so take the first.
            for d in e.dims:
                if d not in SPATIAL_DIMS:
                    e = e.isel({d: 0}, drop=True)
            e, _ = _standardise(e * factor, f"elevation variable {name!r}")
            return e.assign_attrs(units="m", long_name="surface elevation").rename("elevation")
    if "elevation" in ds.coords and ds["elevation"].ndim == 2:
        e, _ = _standardise(ds["elevation"].reset_coords(drop=True), "elevation coordinate")
        return e.assign_attrs(units="m")
    return None


def as_field(obj: Any) -> tuple[xr.DataArray, xr.DataArray | None, bool]:
    """A user's field (DataArray, Dataset or path to a .nc file) -> (field, elevation or None, planar)."""
    what = _describe(obj)
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"field file {str(obj)!r} does not exist")
        obj = _open(str(path.resolve()), path.stat().st_mtime)
    if isinstance(obj, xr.Dataset):
        candidates = [
            n
            for n, v in obj.data_vars.items()
            if n not in ELEVATION_NAMES and v.ndim >= 2 and _spatial_names(v)
        ]
        preferred = [n for n in ("t2m", "temperature", "tas", "tmax", "value") if n in candidates]
        if preferred:
            name = preferred[0]
        elif len(candidates) == 1:
            name = candidates[0]
        else:
            raise ValueError(
                f"{what}: cannot tell which variable is the field; data variables with lat/lon are "
                f"{candidates or 'none'} (pass one as a DataArray)"
            )
        ds = obj
        elevation = _elevation_of(ds, name)
        obj = ds[name]
    elif isinstance(obj, xr.DataArray):
        elevation = None
        if "elevation" in obj.coords and obj["elevation"].ndim == 2:
            elevation = _elevation_of(obj.to_dataset(name="__field__"), "__field__")
            obj = obj.reset_coords("elevation", drop=True)
    else:
        raise TypeError(f"a field must be an xarray.DataArray, Dataset or .nc path, got {type(obj).__name__}")
    if 0 in obj.shape:
        raise ValueError(f"field {what} is empty along {[d for d, s in obj.sizes.items() if s == 0]}")
    field, planar = _standardise(obj, f"field {what}")
    return check_field(field, planar), elevation, planar


@functools.lru_cache(maxsize=8)
def _open(path: str, mtime: float) -> xr.Dataset:
    """A NetCDF file, fully loaded (cached on path and modification time)."""
    with open_netcdf(path) as ds:
        return ds.load()


@contextlib.contextmanager
def open_netcdf(path: str | os.PathLike) -> Iterator[xr.Dataset]:
    """``xr.open_dataset`` whose failures to read (a truncated or foreign file) name the file and a fix."""
    try:
        ds = xr.open_dataset(path)
    except (OSError, ValueError, RuntimeError) as err:
        raise unreadable(path, err) from None
    with ds:
        try:
            yield ds
        except (OSError, RuntimeError) as err:  # reading the data part of a truncated file
            raise unreadable(path, err) from None


def unreadable(path: str | os.PathLike, err: BaseException) -> ValueError:
    """The error for a file that exists but is not readable NetCDF."""
    return ValueError(
        f"file {str(path)!r} cannot be read as NetCDF ({type(err).__name__}: {err}); is it truncated "
        "(an interrupted download or copy) or not a NetCDF file? Write or download it again"
    )


def read_era5(path: str | os.PathLike) -> tuple[xr.DataArray, xr.DataArray | None]:
    """A user's ERA5 NetCDF -> (2 m temperature ``(time, lat, lon)`` in degC, elevation in m or None).

    Needs ``t2m`` on ``latitude``/``longitude`` (either latitude order, longitudes 0..360 or
    -180..180) and optionally ``time`` (or the new CDS name ``valid_time``); orography from ``z``
    (geopotential, divided by g = 9.80665) or ``orography``/``elevation`` (metres).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"ERA5 file {str(path)!r} does not exist")
    ds = _open(str(p.resolve()), p.stat().st_mtime)
    if "t2m" not in ds.data_vars:
        raise ValueError(
            f"ERA5 file {str(path)!r} has no variable 't2m' (2 m temperature); "
            f"its variables are {sorted(map(str, ds.data_vars))}"
        )
    missing = [c for c in ("latitude", "longitude") if c not in ds.coords and c not in ds.dims]
    if missing:
        raise ValueError(
            f"ERA5 file {str(path)!r} lacks coordinate(s) {missing}; "
            f"its coordinates are {sorted(map(str, ds.coords))}"
        )
    if "valid_time" in ds.dims and "time" not in ds.dims:
        ds = ds.rename({"valid_time": "time"})
    t2m = ds["t2m"]
    for d in [d for d in t2m.dims if d not in ("time", "latitude", "longitude") and t2m.sizes[d] == 1]:
        t2m = t2m.isel({d: 0}, drop=True)  # e.g. the 'number' or 'expver' dimension of CDS downloads
    units = str(t2m.attrs.get("units", "K"))
    if units in ("K", "kelvin", "Kelvin"):
        t2m = t2m - 273.15
    elif units not in ("degC", "C", "celsius", "degree_Celsius"):
        raise ValueError(f"ERA5 file {str(path)!r}: t2m has units {units!r}; expected K or degC")
    t2m = t2m.rename("t2m").assign_attrs(units="degC", long_name="2 m temperature")
    field, _ = _standardise(t2m, f"t2m of {str(path)!r}")
    return check_field(field), _elevation_of(ds, "t2m")


@functools.lru_cache(maxsize=1)
def _hadcm3(path: str) -> xr.DataArray:
    with open_netcdf(path) as ds:
        return ds["t2m"].load()


class HadCM3Sampler(FieldSampler):
    """hadcm3-north-america: HadCM3 annual mean 1.5 m temperature (degC), one year = one task.

    Years split chronologically: train 1860-2019 (160), val 2020-2049 (30), test 2050-2099 (50), so
    test years are warmer than any training year (the context has to carry the level). Grid cells
    (37 x 49, 1.25 x 1.875 degrees) are the stations: N_c ~ U{20..300}, N_t = 128. No elevation.
    """

    name = "hadcm3-north-america"

    def __init__(
        self,
        *,
        train_years: tuple[int, int] = (1860, 2019),
        val_years: tuple[int, int] = (2020, 2049),
        test_years: tuple[int, int] = (2050, 2099),
        nc_min: int = 20,
        nc_max: int = 300,
        nt: int = 128,
        span: float = 3.0,
    ) -> None:
        field = _hadcm3(str(dataset_file("hadcm3_north_america.nc")))
        years = field["time"].dt.year.values
        splits = {
            s: np.flatnonzero((years >= lo) & (years <= hi))
            for s, (lo, hi) in zip(
                ("train", "val", "test"), (train_years, val_years, test_years), strict=True
            )
        }
        super().__init__(field, name=self.name, splits=splits, nc_min=nc_min, nc_max=nc_max, nt=nt, span=span)


# --------------------------------------------------------------------------------------------------
# Dataset names
# --------------------------------------------------------------------------------------------------


def _invalid(value: Any, reason: str, what: str) -> ValueError:
    from workbench.data.registry import DATASETS

    why = f": {reason}" if reason else ""
    choices = ", ".join([*DATASETS, *DATASET_FORMS])
    return ValueError(f"{what} = {_describe(value)} is not valid{why}; choose one of: {choices}")


def check_dataset(value: Any, what: str = "Experiment.dataset") -> int:
    """Input dimension of a valid ``Experiment.dataset`` value, or a ``ValueError`` naming what is wrong.

    Files are opened lazily (headers only for NetCDF), so checking is cheap.
    """
    from workbench.data.registry import DATASETS

    if isinstance(value, str):
        if value in DATASETS:
            return DATASETS[value][0]
        try:
            if value.startswith("era5:"):
                path = Path(value[5:]).expanduser()
                if not path.is_file():
                    raise ValueError(f"ERA5 file {value[5:]!r} does not exist")
                read_era5(path)
                return 2
            if value.startswith("terrain:"):
                from workbench.data.terrain import check_terrain

                check_terrain(value)
                return 2
            if value.endswith(".nc") or Path(value).expanduser().is_file():
                as_field(value)
                return 2
        except (ValueError, FileNotFoundError, TypeError) as err:
            raise _invalid(value, str(err), what) from None
        raise _invalid(value, "", what)
    if isinstance(value, (xr.DataArray, xr.Dataset)):
        try:
            as_field(value)
        except (ValueError, TypeError) as err:
            raise _invalid(value, str(err), what) from None
        return 2
    raise _invalid(value, "", what)


_USER_CACHE: dict[int, tuple[Any, GeoSampler]] = {}


@functools.lru_cache(maxsize=16)
def _named(name: str) -> GeoSampler:
    return _build(name)


def _build(name: str, **kwargs: Any) -> GeoSampler:
    if name == "colorado-temperature":
        from workbench.data.stations import ColoradoSampler

        return ColoradoSampler(**kwargs)
    if name == "hadcm3-north-america":
        return HadCM3Sampler(**kwargs)
    if name == "us-terrain":
        from workbench.data.terrain import us_terrain

        return us_terrain(**kwargs)
    if name.startswith("terrain:"):
        from workbench.data.terrain import terrain

        return terrain(name, **kwargs)
    if name.startswith("era5:"):
        field, elevation = read_era5(name[5:])
        return FieldSampler(field, name=name, elevation=elevation, **kwargs)
    field, elevation, planar = as_field(name)
    return FieldSampler(field, name=name, elevation=elevation, planar=planar, **kwargs)


def make_geo_dataset(dataset: Any, **kwargs: Any) -> GeoSampler:
    """The sampler of a geographic dataset value (name, ``era5:``/``terrain:`` spec, field or path).

    Without ``kwargs`` samplers are cached (files are read once per process, and again only when
    they change), so rebuilding one from a run's experiment for a map is cheap.
    """
    check_dataset(dataset, what="dataset")
    if isinstance(dataset, str):
        path = _file_of(dataset)
        if kwargs:
            return _build(dataset, **kwargs)
        if path is None:
            return _named(dataset)
        # Key on the modification time too, so an edited file is read again.
        return _named_file(dataset, str(path), path.stat().st_mtime)
    if kwargs:
        field, elevation, planar = as_field(dataset)
        return FieldSampler(field, name=_field_name(dataset), elevation=elevation, planar=planar, **kwargs)
    # In-memory fields are cached by identity (a few at most), since they cannot be hashed.
    hit = _USER_CACHE.get(id(dataset))
    if hit is not None and hit[0] is dataset:
        return hit[1]
    field, elevation, planar = as_field(dataset)
    sampler = FieldSampler(field, name=_field_name(dataset), elevation=elevation, planar=planar)
    if len(_USER_CACHE) >= 4:
        _USER_CACHE.pop(next(iter(_USER_CACHE)))
    _USER_CACHE[id(dataset)] = (dataset, sampler)
    return sampler


def _file_of(name: str) -> Path | None:
    """The file behind an ``era5:PATH`` or path dataset name, ``None`` for the other names."""
    from workbench.data.registry import DATASETS

    if name in DATASETS or name.startswith("terrain:"):
        return None
    return Path(name[5:] if name.startswith("era5:") else name).expanduser().resolve()


@functools.lru_cache(maxsize=8)
def _named_file(name: str, path: str, mtime: float) -> GeoSampler:
    return _build(name)


def _field_name(obj: Any) -> str:
    if isinstance(obj, xr.DataArray) and obj.name is not None:
        return f"field:{obj.name}"
    return "field"


def save_field(dataset: Any, path: str | os.PathLike) -> str:
    """Write an in-memory field to NetCDF so a run using it can be saved; returns the path (a valid dataset).

    For ``Run.save``: ``Experiment.dataset`` must be JSON, so an ``xarray`` field is written next to
    the run and the experiment records the file's path instead. Strings are returned unchanged.
    """
    if isinstance(dataset, str):
        return dataset
    field, elevation, planar = as_field(dataset)
    ds = field.to_dataset(name=field.name or "value")
    if planar:
        ds = ds.rename({"lon": "x", "lat": "y"})
    if elevation is not None:
        e = elevation.rename({"lon": "x", "lat": "y"}) if planar else elevation
        ds["elevation"] = e
    path = Path(path)
    ds.to_netcdf(path)
    return str(path.resolve())


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over the entries where both are finite; 0 when either is constant."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return 0.0
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0
