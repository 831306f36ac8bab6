"""What a map or line view shows: a run's prediction for a context plus the points a user added.

``GeoSource`` calls :func:`workbench.maps.predict_map` (lat/lon data); ``PlaneSource`` and
``LineSource`` predict on a task of a synthetic GP dataset (2-D x/y or 1-D), with the GP oracle's
predictive mean and spread where the sampler has one. ``predict(added)`` is one forward pass per
component: no training, so a click can redraw at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.data.base import GeoSampler, Sampler, Stations
from workbench.data.registry import make_dataset
from workbench.maps import fixed_inputs_active, predict_map
from workbench.runs import Run
from workbench.task import Task

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


def predict_task(
    run: Run, sampler: Sampler, xc: np.ndarray, yc: np.ndarray, xt: np.ndarray
) -> dict[str, np.ndarray]:
    """Mean, std, strict mean (and oracle mean/std) at ``xt [m, d]`` given ``xc [n, d]``, ``yc [n]``."""
    task = Task(
        torch.as_tensor(xc, dtype=torch.float32)[None],
        torch.as_tensor(yc, dtype=torch.float32)[None, :, None],
        torch.as_tensor(xt, dtype=torch.float32)[None],
    )
    dist = run.predict(task)
    out = {"mean": dist.mean[0, :, 0].cpu().numpy(), "std": dist.stddev[0, :, 0].cpu().numpy()}
    if fixed_inputs_active(run.model):
        out["mean_strict"] = run.predict(task, fixed_inputs=False).mean[0, :, 0].cpu().numpy()
    else:  # the strict component is the prediction itself
        out["mean_strict"] = out["mean"]
    if sampler.has_oracle:  # GP datasets know the exact predictive
        mean, std = sampler.oracle_moments(task)
        out["oracle_mean"], out["oracle_std"] = mean[0].numpy(), std[0].numpy()
    return {k: v.astype(np.float64) for k, v in out.items()}


def _fixed_inputs(run: Run, xt: np.ndarray) -> np.ndarray:
    """The learned fixed inputs ``[B, m]`` at ``xt [m, d]`` (``B = 0`` without fixed inputs)."""
    dev = next(run.model.parameters()).device
    t = run.model.fixed_input_values(torch.as_tensor(xt, dtype=torch.float32, device=dev)[None])
    return t[0].T.cpu().numpy().astype(np.float64)


def _first_task(sampler: Sampler, seed: int) -> Task:
    return sampler.test_set(1, batch_size=1, seed=seed)[0]


class GeoSource:
    """Maps of a geographic run over lon/lat (``predict_map``) with the user's added stations."""

    kind = "geo"

    def __init__(self, run: Run, context: Any = None, grid: Any = None, resolution: float | None = None):
        sampler = make_dataset(run.experiment.dataset)
        if not isinstance(sampler, GeoSampler):
            raise ValueError(f"{run.experiment.dataset!r} is not a geographic dataset")
        self.run, self.sampler = run, sampler
        ds = predict_map(run, context, grid, resolution, sampler=sampler)
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
            ds = predict_map(self.run, st, grid=self.grid, sampler=self.sampler)
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
        task = _first_task(self.sampler, seed)
        keep = task.mask_c[0]
        xy = task.xc[0, keep].numpy().astype(np.float64)
        self.base = Stations(
            xy[:, 0], xy[:, 1], task.yc[0, keep, 0].numpy(), label=f"test task (seed {seed})"
        )
        (x0, x1), (y0, y1) = self.sampler.box
        self.x, self.y = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
        gx, gy = np.meshgrid(self.x, self.y)
        self.xt = np.stack([gx.ravel(), gy.ravel()], -1)
        self.shape = gx.shape
        self.planar, self.units, self.label = True, "", "y (test task)"
        self.elevation, self.box_region = None, None
        self.region = (x0, x1, y0, y1)
        self.fixed = _fixed_inputs(run, self.xt).reshape(-1, *self.shape)

    def predict(self, added: Sequence[Point] = ()) -> Snapshot:
        """Mean, std, strict mean, breaking (and the oracle) on the grid, added points in the context."""
        a = np.asarray(added, dtype=np.float64).reshape(-1, 3)
        xc = np.concatenate([np.stack([self.base.lon, self.base.lat], -1), a[:, :2]])
        yc = np.r_[self.base.value, a[:, 2]]
        pred = predict_task(self.run, self.sampler, xc, yc, self.xt)
        fields = {k: v.reshape(self.shape) for k, v in pred.items()}
        fields["breaking"] = fields["mean"] - fields["mean_strict"]
        return Snapshot(fields, self.fixed, (self.base.lon, self.base.lat, self.base.value))

    def to_model(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Model coordinates of points (the data are already in them)."""
        return np.stack(np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float)), -1)


class LineSource:
    """Curves of a run on a 1-D synthetic dataset for one test task: mean, band, strict, oracle."""

    kind = "line"

    def __init__(self, run: Run, seed: int = 0, n: int = 400):
        self.run = run
        self.sampler = make_dataset(run.experiment.dataset)
        task = _first_task(self.sampler, seed)
        keep = task.mask_c[0]
        self.base_x = task.xc[0, keep, 0].numpy().astype(np.float64)
        self.base_y = task.yc[0, keep, 0].numpy().astype(np.float64)
        self.target_x = task.xt[0, :, 0].numpy().astype(np.float64)
        self.target_y = task.yt[0, :, 0].numpy().astype(np.float64)
        ((lo, hi),) = self.sampler.box
        self.x = np.linspace(lo, hi, n)
        self.label = f"test task (seed {seed})"

    def predict(self, added: Sequence[Point] = ()) -> dict[str, np.ndarray]:
        """Curves at ``self.x``: mean, std, mean_strict (and oracle_mean, oracle_std)."""
        a = np.asarray(added, dtype=np.float64).reshape(-1, 3)
        xc = np.r_[self.base_x, a[:, 0]][:, None]
        yc = np.r_[self.base_y, a[:, 2]]
        return predict_task(self.run, self.sampler, xc, yc, self.x[:, None])


def data_units(run: Run) -> str:
    """Physical units of a run's outputs (CF spelling, e.g. ``degC``); "" for unitless synthetic data."""
    sampler = make_dataset(run.experiment.dataset)
    return str(getattr(sampler, "units", "") or "") if isinstance(sampler, GeoSampler) else ""
