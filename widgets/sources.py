"""What a map or line view shows: a run's prediction for a context plus the points a user added.

Every source asks :func:`workbench.maps.predict` (the library's one function for the prediction, its
strict component and the breaking field, as an ``xarray.Dataset``) and hands the arrays a plotly
figure needs to its layer: ``GeoSource`` over lon/lat, ``PlaneSource`` over x/y of a 2-D synthetic
dataset, ``LineSource`` along x of a 1-D one (with the GP oracle's predictive mean and spread where
the sampler has one). ``predict(added)`` is one forward pass per component: no training, so a click
can redraw at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.data.base import GeoSampler, Sampler, Stations
from workbench.data.registry import make_dataset
from workbench.maps import predict
from workbench.runs import Run

#: An added observation: (x, y, value); for a 1-D view y is unused (the value is the height).
Point = tuple[float, float, float]


@dataclass
class Snapshot:
    """One prediction on a grid: 2-D fields ``[ny, nx]`` by name, fixed inputs ``[B, ny, nx]``, context."""

    fields: dict[str, np.ndarray]
    fixed_inputs: np.ndarray
    context: tuple[np.ndarray, np.ndarray, np.ndarray]
    data: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


#: What a line or plane view draws, when the Dataset has it.
FIELDS = ("mean", "std", "mean_strict", "breaking", "oracle_mean", "oracle_std")


def _test_context(sampler: Sampler, seed: int) -> tuple[np.ndarray, np.ndarray, Any]:
    """The first test task of ``seed``: its real context inputs ``[n, d]``, values ``[n]`` and the task."""
    task = sampler.test_set(1, batch_size=1, seed=seed)[0]
    keep = task.mask_c[0]
    return task.xc[0, keep].numpy().astype(np.float64), task.yc[0, keep, 0].numpy().astype(np.float64), task


class GeoSource:
    """Maps of a geographic run over lon/lat (``predict``: ``predict_map``'s Dataset) with added stations."""

    kind = "geo"

    def __init__(self, run: Run, context: Any = None, grid: Any = None, resolution: float | None = None):
        sampler = make_dataset(run.experiment.dataset)
        if not isinstance(sampler, GeoSampler):
            raise ValueError(f"{run.experiment.dataset!r} is not a geographic dataset")
        self.run, self.sampler = run, sampler
        ds = predict(run, context, grid, resolution=resolution, sampler=sampler)
        self.first = ds
        self.x, self.y = ds["lon"].values, ds["lat"].values
        self.grid = (self.y, self.x)
        self.planar = bool(ds.attrs.get("planar", 0))
        self.units = str(ds.attrs.get("units", ""))
        self.label = f"{ds.attrs.get('variable', 'value')} ({ds.attrs.get('context', '')})"
        self.base = Stations(
            ds["station_lon"].values,
            ds["station_lat"].values,
            ds["station_value"].values,
            label=str(ds.attrs.get("context", "")),
            elevation=ds["station_elevation"].values if "station_elevation" in ds else None,
        )
        self.elevation = ds["elevation"].values if "elevation" in ds else None
        self.region = (float(self.x.min()), float(self.x.max()), float(self.y.min()), float(self.y.max()))
        self.box_region = tuple(ds.attrs["box_lonlat"]) if not bool(ds["in_box"].all()) else None
        self.static = {k: ds[k].values for k in ("truth", "breaking_truth") if k in ds}

    def predict(self, added: Sequence[Point] = ()) -> Snapshot:
        """The maps with the added stations appended to the context."""
        ds = self.first
        if added:
            a = np.asarray(added, dtype=np.float64)
            st = Stations(
                np.r_[self.base.lon, a[:, 0]],
                np.r_[self.base.lat, a[:, 1]],
                np.r_[self.base.value, a[:, 2]],
                label=self.base.label,
            )
            ds = predict(self.run, st, self.grid, sampler=self.sampler)
        fields = {k: ds[k].values for k in ("mean", "std", "mean_strict", "breaking")}
        fields.update(self.static)
        return Snapshot(
            fields, ds["fixed_inputs"].values, (self.base.lon, self.base.lat, self.base.value), ds
        )

    def to_model(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Model coordinates of points (for nearest-neighbour look-ups)."""
        return self.sampler.coords.to_model(x, y)


class PlaneSource:
    """Maps of a run on a 2-D synthetic dataset (gp-2d) over x/y, for one test task's context."""

    kind = "plane"

    def __init__(self, run: Run, seed: int = 0, n: int = 60):
        self.run = run
        self.sampler = make_dataset(run.experiment.dataset)
        xy, value, _ = _test_context(self.sampler, seed)
        self.base = Stations(xy[:, 0], xy[:, 1], value, label=f"test task (seed {seed})")
        (x0, x1), (y0, y1) = self.sampler.box
        self.x, self.y = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
        self.planar, self.units, self.label = True, "", "y (test task)"
        self.elevation, self.box_region = None, None
        self.region = (x0, x1, y0, y1)

    def predict(self, added: Sequence[Point] = ()) -> Snapshot:
        """Mean, std, strict mean, breaking (and the oracle) on the grid, added points in the context."""
        a = np.asarray(added, dtype=np.float64).reshape(-1, 3)
        xc = np.concatenate([np.stack([self.base.lon, self.base.lat], -1), a[:, :2]])
        yc = np.r_[self.base.value, a[:, 2]]
        ds = predict(self.run, (xc, yc), (self.x, self.y), sampler=self.sampler)  # [x2, x1]: [ny, nx]
        fields = {k: ds[k].values for k in FIELDS if k in ds}
        context = (self.base.lon, self.base.lat, self.base.value)
        return Snapshot(fields, ds["fixed_inputs"].values, context, ds)

    def to_model(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Model coordinates of points (the data are already in them)."""
        return np.stack(np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float)), -1)


class LineSource:
    """Curves of a run on a 1-D synthetic dataset for one test task: mean, band, strict, oracle."""

    kind = "line"

    def __init__(self, run: Run, seed: int = 0, n: int = 400):
        self.run = run
        self.sampler = make_dataset(run.experiment.dataset)
        x, y, task = _test_context(self.sampler, seed)
        self.base_x, self.base_y = x[:, 0], y
        self.target_x = task.xt[0, :, 0].numpy().astype(np.float64)
        self.target_y = task.yt[0, :, 0].numpy().astype(np.float64)
        ((lo, hi),) = self.sampler.box
        self.x = np.linspace(lo, hi, n)
        self.label = f"test task (seed {seed})"

    def predict(self, added: Sequence[Point] = ()) -> dict[str, np.ndarray]:
        """Curves at ``self.x``: mean, std, mean_strict, breaking (and oracle_mean, oracle_std)."""
        a = np.asarray(added, dtype=np.float64).reshape(-1, 3)
        xc = np.r_[self.base_x, a[:, 0]]
        yc = np.r_[self.base_y, a[:, 2]]
        ds = predict(self.run, (xc, yc), self.x, sampler=self.sampler)
        return {k: ds[k].values for k in FIELDS if k in ds}


def data_units(run: Run) -> str:
    """Physical units of a run's outputs (CF spelling, e.g. ``degC``); "" for unitless synthetic data."""
    sampler = make_dataset(run.experiment.dataset)
    return str(getattr(sampler, "units", "") or "") if isinstance(sampler, GeoSampler) else ""
