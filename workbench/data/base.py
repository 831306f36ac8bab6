"""What every dataset is to the rest of the library, and the pieces the geographic ones share.

- :class:`Sampler`: the interface of every task sampler (GP worlds, stations, terrain, gridded
  fields). Optional abilities are flags with defaults (``has_validation``, ``has_oracle``), so a
  caller asks the sampler instead of probing it with ``hasattr``.
- :class:`Stations`: observations in physical units (a map's context).
- :class:`Draw` and :func:`collate`: one task in model units, and a batch of them as a :class:`Task`.
- :class:`GeoSampler`: the base class of the geographic samplers (no oracle): ``coords`` turns
  lon/lat and physical units into model inputs and outputs and back, so a trained run can be turned
  back into maps in degrees and degC.
- Helpers the geographic readers share: :func:`interp_grid`, :func:`open_netcdf`, :func:`describe`.

The readers are per kind: gridded fields in :mod:`workbench.data.fields`, stations in
:mod:`workbench.data.stations`, terrain in :mod:`workbench.data.terrain`, GP worlds in
:mod:`workbench.data.gp`; :mod:`workbench.data.registry` owns every dataset name.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from workbench.geo import Coords, Region
from workbench.task import Box, Task

__all__ = [
    "Box",
    "Draw",
    "GeoSampler",
    "Sampler",
    "Stations",
    "as_stations",
    "collate",
    "describe",
    "interp_grid",
    "open_netcdf",
    "pool_batches",
    "split_points",
    "unreadable",
]


# --------------------------------------------------------------------------------------------------
# The interface of every sampler
# --------------------------------------------------------------------------------------------------


class Sampler:
    """A source of tasks: what :func:`workbench.run` and the widgets need from any dataset.

    Every sampler has ``name``, ``dim_x``, ``dim_y``, ``box`` (the region in model coordinates where
    fixed inputs are non-zero), :meth:`batches` and :meth:`test_set`. What only some have is said by a
    flag: ``has_validation`` (:meth:`validation_set`: real data, early stopping) and ``has_oracle``
    (:meth:`oracle_loglik`, :meth:`oracle_moments` and :meth:`posterior_components`: the exact GP
    predictive, and the ceilings of :mod:`workbench.ceilings`).
    """

    name: str = "dataset"
    dim_x: int
    dim_y: int = 1
    box: Box
    #: Whether :meth:`validation_set` exists (a held-out split of real data).
    has_validation: bool = False
    #: Whether the exact predictive (the GP oracle) is known.
    has_oracle: bool = False

    def batches(self, batch_size: int, seed: int, start: int = 0) -> Iterator[Task]:
        """Endless reproducible stream of training batches ``start, start + 1, ...`` for a seed."""
        raise NotImplementedError

    def test_set(self, n_tasks: int = 1024, batch_size: int = 16, seed: int = 10_000) -> list[Task]:
        """Fixed list of test batches holding ``n_tasks`` tasks (the last batch may be smaller)."""
        raise NotImplementedError

    def validation_set(self, n_tasks: int = 256, batch_size: int = 16, seed: int = 20_000) -> list[Task]:
        """Fixed list of validation batches (only where ``has_validation``)."""
        raise ValueError(f"dataset {self.name!r} has no validation split")

    def _no_oracle(self) -> ValueError:
        return ValueError(f"dataset {self.name!r} has no exact oracle (only the GP datasets have one)")

    def oracle_loglik(self, task: Task) -> torch.Tensor:
        """Exact predictive log-likelihood per task ``[batch]`` (only where ``has_oracle``)."""
        raise self._no_oracle()

    def oracle_moments(self, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact predictive mean and standard deviation ``[batch, nt]`` (only where ``has_oracle``)."""
        raise self._no_oracle()

    def posterior_components(self, xc: Any, yc: Any, mask_c: Any, xt: Any) -> Any:
        """Per-kernel exact posterior (only where ``has_oracle``; see :mod:`workbench.data.gp`)."""
        raise self._no_oracle()


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


def pool_batches(
    sampler: Sampler, batch_size: int, n_tasks: int, seed: int, start: int = 0
) -> Iterator[Task]:
    """Endless batches from a fixed pool of ``n_tasks`` training tasks, epoch after epoch.

    The pool is batches ``0 .. n_tasks / batch_size - 1`` of ``sampler.batches(batch_size, seed)``;
    each epoch visits all of them in its own random order (seeded by ``(seed, epoch)``), so batch
    ``start`` of the stream is known without replaying the ones before it (exact resume). A finite
    training set, for studies of how a model learns as data grow.
    """
    if n_tasks < batch_size or n_tasks % batch_size:
        raise ValueError(f"n_tasks = {n_tasks} must be a positive multiple of batch_size = {batch_size}")
    n = n_tasks // batch_size
    kept: dict[int, Task] = {}
    order: tuple[int, np.ndarray] = (-1, np.arange(n))
    k = start
    while True:
        epoch, i = divmod(k, n)
        if order[0] != epoch:
            rng = np.random.default_rng(np.random.SeedSequence([seed, epoch, 0x9E37]))
            order = (epoch, rng.permutation(n))
        j = int(order[1][i])
        if j not in kept:
            kept[j] = next(sampler.batches(batch_size, seed=seed, start=j))
        yield kept[j]
        k += 1


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


class GeoSampler(Sampler):
    """Base class of the geographic task samplers (no oracle).

    Subclasses set ``name`` and ``train_region`` and implement :meth:`_normalisation` (output mean and
    std over the training data, read on first use of ``coords``), :meth:`_draw` (one task of a split)
    and :meth:`context` (a map's context from a key such as a month). ``box`` is the training region
    in model coordinates: where fixed inputs are non-zero.
    """

    name: str = "geo"
    dim_x: int = 2
    dim_y: int = 1
    has_validation = True
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
        """Contexts over which the breaking field is averaged (:func:`workbench.maps.map_metrics`)."""
        return []

    def breaking_truth(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray | None:
        """The true symmetry-breaking term at points (degC), where the data were made with one."""
        return None


# --------------------------------------------------------------------------------------------------
# Helpers the geographic readers share
# --------------------------------------------------------------------------------------------------


def describe(obj: Any) -> str:
    """A short description of a dataset value for error messages (a DataArray's repr is pages long)."""
    if isinstance(obj, (xr.DataArray, xr.Dataset)):
        dims = ", ".join(f"{k}: {v}" for k, v in obj.sizes.items())
        name = f" {obj.name!r}" if isinstance(obj, xr.DataArray) and obj.name is not None else ""
        return f"<xarray.{type(obj).__name__}{name} ({dims})>"
    return repr(obj)


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
