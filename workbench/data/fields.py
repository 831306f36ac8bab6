"""Gridded fields as task samplers: your own (a DataArray, Dataset or ``.nc`` file), ERA5, HadCM3.

One time step = one task; its valid (non-NaN) cells are the "stations": ``N_c ~ U{nc_min..nc_max}``
of them are the context, ``nt`` others the targets (drawn with replacement only when fewer than
``nt`` cells are left). Time steps are split chronologically. Reading checks and standardises a
field (lat/lon names, order, longitudes); :func:`save_field` writes one back for a saved run.
Dataset names and their dispatch live in :mod:`workbench.data.registry`.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from workbench.data.base import Draw, GeoSampler, Stations, describe, interp_grid, open_netcdf, split_points
from workbench.geo import dataset_file

#: Standard gravity: ERA5 orography ``z`` is geopotential (m^2 s^-2); z / g is metres.
GRAVITY = 9.80665

#: Spellings of the spatial coordinates a field may use, in order of preference: (lon name, lat name).
SPATIAL_NAMES: tuple[tuple[str, str], ...] = (("lon", "lat"), ("longitude", "latitude"), ("x", "y"))

SPATIAL_DIMS = {name for pair in SPATIAL_NAMES for name in pair}

#: Names of an elevation variable in a dataset, and how to turn each into metres.
ELEVATION_NAMES: dict[str, float] = {"elevation": 1.0, "orography": 1.0, "z": 1.0 / GRAVITY}


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
    field, planar = _standardise(field, f"field {describe(field)}", planar)
    extra = [d for d in field.dims if d not in ("lat", "lon")]
    if len(extra) > 1:
        raise ValueError(
            f"field {describe(field)} has dims {tuple(field.dims)}: besides lat/lon it may have one "
            "time (sample) dimension"
        )
    if not extra:
        field = field.expand_dims("time")
    elif extra[0] != "time":
        field = field.rename({extra[0]: "time"})
    field = field.transpose("time", "lat", "lon")
    if 0 in field.shape:
        empty = [d for d, s in field.sizes.items() if s == 0]
        raise ValueError(f"field {describe(field)} is empty along {empty}")
    if not np.issubdtype(field.dtype, np.number):
        raise ValueError(f"field {describe(field)} has non-numeric dtype {field.dtype}")
    for dim, long in (("lat", "latitude"), ("lon", "longitude")):
        if field.sizes[dim] < 2:
            raise ValueError(
                f"field {describe(field)} has 1 {long} ({float(field[dim][0]):g}): a task needs a "
                f"2-D spread of points, so give at least 2 latitudes and 2 longitudes"
            )
    values = np.asarray(field.values, dtype=np.float64)
    _check_infinite(field, values)
    valid = np.isfinite(values)
    if not valid.any():
        raise ValueError(f"field {describe(field)} is all NaN: nothing to learn from")
    per_step = valid.reshape(valid.shape[0], -1).sum(-1)
    if per_step.max() < 2:
        raise ValueError(f"field {describe(field)} has fewer than 2 valid cells per time step")
    for axis, dim, long, side in ((2, "lon", "longitude", "width"), (1, "lat", "latitude", "height")):
        used = valid.any(axis=tuple(a for a in (0, 1, 2) if a != axis))
        if used.sum() < 2:
            raise ValueError(
                f"the valid cells of field {describe(field)} lie on one {long} "
                f"({float(field[dim][used.argmax()]):g}): the training box has zero {side}; "
                f"a field needs valid cells at 2 or more latitudes and longitudes"
            )
    few = np.flatnonzero(per_step < 2)
    if len(few):
        warnings.warn(
            f"field {describe(field)}: {len(few)} time step(s) with fewer than 2 valid cells "
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
        f"field {describe(field)} has {int(inf.sum())} infinite value(s) (the first at {where}); "
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
    what = describe(obj)
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
