"""A trained run's prediction, its strict component and where symmetry breaks, as ``xarray.Dataset``.

:func:`predict` is the one entry point, for any run and any points: 1-D (``x``), planar (``x1``,
``x2``) and lat/lon maps. Every variant has the predictive ``mean`` and ``std``, ``mean_strict`` (the
same model with its fixed inputs off: the strictly equivariant component), ``breaking = mean -
mean_strict`` and the learned ``fixed_inputs``, with units; :func:`strict_component` is where the
strict component is computed, for all of them.

For lat/lon data ``predict`` gives :func:`predict_map`'s Dataset: ``mean`` and ``std`` in physical
units (e.g. degC), ``fixed_inputs(channel, lat, lon)``, ``elevation`` where the source has it,
``truth`` for synthetic sources, ``in_box`` (where fixed inputs can act) and the context stations on a
``station`` dimension. One batched forward pass per component, so a map can be redrawn after every
click."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import xarray as xr
from torch import Tensor
from torch.distributions import Normal

from workbench.data.base import GeoSampler, Sampler, Stations, as_stations
from workbench.geo import Coords, Region
from workbench.models.base import NeuralProcess
from workbench.nn.fixed_inputs import inside_box
from workbench.task import Task

if TYPE_CHECKING:
    from workbench.runs import Run

#: Kernel evaluations (targets x model grid points) per forward pass; bounds memory (~0.5 GB).
MAX_PAIRS = 25_000_000

#: Points along the longer side of a default map.
DEFAULT_POINTS = 100


def map_grid(
    region: Region, resolution: float | None = None, n: int = DEFAULT_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centred (lats, lons) over a region: ``resolution`` degrees, or ``n`` points on the longer side."""
    lon0, lon1, lat0, lat1 = region
    if not (lon0 < lon1 and lat0 < lat1):
        raise ValueError(
            f"region {tuple(region)} is inverted or empty (lon_min {lon0:g} > lon_max {lon1:g} or lat_min "
            f"{lat0:g} > lat_max {lat1:g}, or equal); give (lon_min, lon_max, lat_min, lat_max)"
        )
    if resolution is None:
        resolution = max(lon1 - lon0, lat1 - lat0) / n
    if not resolution > 0:
        raise ValueError(f"resolution = {resolution!r} must be a positive number of degrees")
    n_lon = max(1, int(round((lon1 - lon0) / resolution)))
    n_lat = max(1, int(round((lat1 - lat0) / resolution)))
    lons = lon0 + (np.arange(n_lon) + 0.5) * (lon1 - lon0) / n_lon
    lats = lat0 + (np.arange(n_lat) + 0.5) * (lat1 - lat0) / n_lat
    return lats, lons


def _resolve_grid(grid: Any, region: Region, resolution: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(lats, lons) from ``None`` (a default grid over the region), a pair, or an xarray object."""
    if grid is None:
        return map_grid(region, resolution)
    if isinstance(grid, (xr.Dataset, xr.DataArray)):
        for lon, lat in (("lon", "lat"), ("longitude", "latitude"), ("x", "y")):
            if lon in grid.coords and lat in grid.coords:
                return np.asarray(grid[lat].values, np.float64), np.asarray(grid[lon].values, np.float64)
        raise ValueError(f"grid has coordinates {sorted(map(str, grid.coords))}; it needs lat and lon")
    try:
        lats, lons = grid
    except (TypeError, ValueError):
        raise ValueError("grid must be None, a (lats, lons) pair or an xarray object with lat/lon") from None
    lats, lons = np.atleast_1d(np.asarray(lats, np.float64)), np.atleast_1d(np.asarray(lons, np.float64))
    if lats.ndim != 1 or lons.ndim != 1 or not len(lats) or not len(lons):
        raise ValueError(
            f"grid lats and lons must be non-empty 1-D arrays, got shapes {lats.shape}, {lons.shape}"
        )
    return lats, lons


def fixed_inputs_active(model: NeuralProcess) -> bool:
    """Whether turning the fixed inputs off can change the model's prediction.

    Not ``model.has_fixed_inputs`` alone: a model built at strength 0 holds fixed inputs that never
    act (dropout p = 1: they are zero in training and evaluation alike), and then the strict
    component is the prediction itself (no second forward pass, ``breaking`` exactly zero).
    """
    fixed = getattr(model, "fixed", None)
    return bool(model.has_fixed_inputs and getattr(fixed, "dropout", 0.0) < 1.0)


def strict_component(
    forward: Callable[[bool], Normal], model: NeuralProcess, fixed_inputs: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Mean, std and strict mean (``[b, ...]``, first output dimension) of ``forward(fixed_inputs)``.

    The one place the strict component is computed: ``forward(False)``, the same model with its fixed
    inputs off, or, when turning them off cannot change anything, the prediction itself (the same
    tensor, so ``breaking = mean - mean_strict`` is exactly zero rather than zero up to rounding).
    """
    dist = forward(fixed_inputs)
    mean, std = dist.mean[..., 0], dist.stddev[..., 0]
    active = fixed_inputs and fixed_inputs_active(model)
    return mean, std, forward(False).mean[..., 0] if active else mean


def _model_extent(model: NeuralProcess) -> float | None:
    """Side of the square region a ConvCNP's internal grid covers (model units); None for other models."""
    n, spacing = getattr(model, "n_grid", None), getattr(model, "spacing", None)
    return None if n is None or spacing is None else (n - 1) * spacing


def _context_tensors(coords: Coords, contexts: Sequence[Stations], dev: torch.device) -> tuple[Tensor, ...]:
    """Contexts in model units as one batch: ``xc [b, nc, 2]``, ``yc [b, nc, 1]``, ``mask [b, nc]``."""
    b = len(contexts)
    nc = max((len(c) for c in contexts), default=0)
    xc = np.zeros((b, nc, 2), np.float32)
    yc = np.zeros((b, nc, 1), np.float32)
    mask = np.zeros((b, nc), bool)
    for i, c in enumerate(contexts):
        k = len(c)
        xc[i, :k] = coords.to_model(c.lon, c.lat)
        yc[i, :k, 0] = coords.normalise(c.value)
        mask[i, :k] = True
    return tuple(torch.from_numpy(a).to(dev) for a in (xc, yc, mask))


@torch.no_grad()
def predict_grid_points(
    model: NeuralProcess,
    coords: Coords,
    contexts: Sequence[Stations],
    lons: np.ndarray,
    lats: np.ndarray,
    *,
    fixed_inputs: bool = True,
) -> dict[str, np.ndarray]:
    """:func:`predict_points` on the grid ``lats x lons`` for models with ``predict_grid`` (the conv
    family): ``[batch, n_lat * n_lon]`` each, in the order of ``np.meshgrid(lons, lats)``, much faster.
    """
    model.eval()
    dev = next(model.parameters()).device
    xc, yc, mask = _context_tensors(coords, contexts, dev)
    # Model x depends on longitude only and y on latitude only, so the map stays a product grid.
    tx = torch.from_numpy(coords.to_model(lons, np.full_like(lons, lats[0]))[:, 0].astype(np.float32))
    ty = torch.from_numpy(coords.to_model(np.full_like(lats, lons[0]), lats)[:, 1].astype(np.float32))
    tx, ty = tx.to(dev), ty.to(dev)
    mean, std, strict = strict_component(  # [b, n_lon, n_lat] each
        lambda fixed: model.predict_grid(xc, yc, tx, ty, mask, fixed_inputs=fixed), model, fixed_inputs
    )
    b = xc.shape[0]
    res = {
        k: v.transpose(1, 2).reshape(b, -1).cpu().numpy()
        for k, v in (("mean", mean), ("std", std), ("mean_strict", strict))
    }
    return _physical(res, coords)


def _physical(res: dict[str, np.ndarray], coords: Coords) -> dict[str, np.ndarray]:
    """Model-unit mean, std and strict mean -> physical units (float64)."""
    res = {k: v.astype(np.float64) for k, v in res.items()}
    res["mean"] = coords.denormalise(res["mean"])
    res["mean_strict"] = coords.denormalise(res["mean_strict"])
    res["std"] = res["std"] * coords.y_std
    return res


@torch.no_grad()
def predict_points(
    model: NeuralProcess,
    coords: Coords,
    contexts: Sequence[Stations],
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    fixed_inputs: bool = True,
) -> dict[str, np.ndarray]:
    """Mean, std and strict mean (physical units) at points ``[n]`` for each context: ``[batch, n]`` each.

    All contexts share the targets and go through the model as one batch (see :func:`model_moments`).
    """
    dev = next(model.parameters()).device
    xc, yc, mask = _context_tensors(coords, contexts, dev)
    xt = torch.from_numpy(coords.to_model(lon, lat).astype(np.float32).reshape(-1, 2)).to(dev)
    return _physical(model_moments(model, xc, yc, mask, xt, fixed_inputs=fixed_inputs), coords)


@torch.no_grad()
def model_moments(
    model: NeuralProcess,
    xc: Tensor,
    yc: Tensor,
    mask: Tensor | None,
    xt: Tensor,
    *,
    fixed_inputs: bool = True,
) -> dict[str, np.ndarray]:
    """Mean, std and strict mean (model units, ``[batch, m]`` each, float64) at ``xt`` given
    ``xc [b, nc, dx]``, ``yc [b, nc, 1]``, ``mask [b, nc]``; ``xt [m, dx]`` (shared) or ``[b, m, dx]``.

    Targets go through the model in chunks when there are many; every chunk carries the corners of
    the whole target set, so the model's internal grid sits in the same place for every chunk (no
    seams). The strict component: :func:`strict_component`.
    """
    model.eval()
    b = xc.shape[0]
    xt_all = (xt[None] if xt.dim() == 2 else xt).to(xc.dtype).expand(b, -1, -1)
    corners = torch.stack([xt_all.amin(1), xt_all.amax(1)], 1)  # [b, 2, dx]
    grid_points = getattr(model, "n_grid", 64) ** 2
    chunk = max(256, MAX_PAIRS // max(1, b * grid_points))
    m = xt_all.shape[1]
    out: dict[str, list[np.ndarray]] = {"mean": [], "std": [], "mean_strict": []}
    for start in range(0, m, chunk):
        part = xt_all[:, start : start + chunk]
        extra = 0
        if part.shape[1] < m:
            part, extra = torch.cat([part, corners], 1), 2
        mean, std, strict = strict_component(
            lambda fixed, part=part: model(xc, yc, part, mask, fixed_inputs=fixed), model, fixed_inputs
        )
        keep = slice(0, mean.shape[1] - extra)
        out["mean"].append(mean[:, keep].cpu().numpy())
        out["std"].append(std[:, keep].cpu().numpy())
        out["mean_strict"].append(strict[:, keep].cpu().numpy())
    return {k: np.concatenate(v, 1).astype(np.float64) for k, v in out.items()}


def _sampler_of(run: Run) -> GeoSampler:
    from workbench.data.registry import make_dataset

    sampler = make_dataset(run.experiment.dataset)
    if not isinstance(sampler, GeoSampler):
        raise ValueError(
            "maps need a geographic dataset (colorado-temperature, us-terrain, terrain:..., era5:..., "
            f"a field); {run.experiment.dataset!r} has no lat/lon"
        )
    return sampler


def _context_of(sampler: GeoSampler, context: Any) -> Stations:
    if isinstance(context, (bool, np.bool_)):
        # bool is an int: True would silently pick index 1 (or February 1970 for a month).
        raise ValueError(
            f"context = {context!r} is a bool; give None (the default), a month, year or date, an index, "
            "a seed, or your own stations (a dict or DataFrame with lon, lat, value)"
        )
    if isinstance(context, Stations):
        return context
    if isinstance(context, dict) or hasattr(context, "columns"):
        st = as_stations(context, sampler.variable)
        st.region = st.region or sampler.map_region
        if not sampler.coords.planar:
            st.lon = near_longitudes(st.lon, sampler.coords.lon_centre)
        return st
    return sampler.context(context)


def near_longitudes(lon: np.ndarray, centre: float) -> np.ndarray:
    """Longitudes shifted by whole turns to lie within 180 degrees of ``centre`` (the data's convention).

    A grid or stations in 0..360 over data in -180..180 (or the other way round) would otherwise sit
    a whole turn away from the data, outside the box.
    """
    lon = np.asarray(lon, np.float64)
    return centre + ((lon - centre + 180.0) % 360.0) - 180.0


def predict_map(
    run: Run,
    context: Any = None,
    grid: Any = None,
    resolution: float | None = None,
    *,
    fixed_inputs: bool = True,
    sampler: GeoSampler | None = None,
) -> xr.Dataset:
    """The run's prediction over a lat/lon grid as an ``xarray.Dataset`` (see the module docstring).

    ``context``: ``None`` (the dataset's default), a month ``'1990-07'`` (Colorado), a year or date
    (gridded fields), an index, a seed or ``'test:SEED'`` (terrain), or your own stations (a dict or
    DataFrame with lon, lat, value). ``grid``: ``None`` (a grid over the context's region with
    ``resolution`` degrees, default 100 points on the longer side), a ``(lats, lons)`` pair, or an
    xarray object with lat/lon. ``fixed_inputs=False`` predicts with the strict component only
    (then ``breaking`` is exactly zero, as for a model without fixed inputs).
    """
    sampler = sampler or _sampler_of(run)
    coords = sampler.coords
    st = _context_of(sampler, context)
    lats, asked = _resolve_grid(grid, st.region or sampler.map_region, resolution)
    # Compute in the data's longitude convention; label the map with the longitudes asked for.
    lons = asked if coords.planar else asked + 360.0 * round((coords.lon_centre - asked.mean()) / 360.0)
    lon2, lat2 = np.meshgrid(lons, lats)  # [lat, lon]
    model = run.model
    extent = _model_extent(model)
    if extent is not None:
        pts = coords.to_model(np.concatenate([lon2.ravel(), st.lon]), np.concatenate([lat2.ravel(), st.lat]))
        span = float((pts.max(0) - pts.min(0)).max())
        if span > extent * 1.001:
            warnings.warn(
                f"the map and its stations span {span:.2f} model units but the model's grid covers "
                f"{extent:.2f}: predictions near the edges see no data; use a smaller grid",
                stacklevel=2,
            )
    # Only a model whose own predict_grid factorises over the axes (the ConvCNP) gains from the grid
    # path; the base class's version is one unchunked pass over every map point.
    factorised = type(model).predict_grid is not NeuralProcess.predict_grid
    if factorised and model.dim_x == 2:
        pred = predict_grid_points(model, coords, [st], lons, lats, fixed_inputs=fixed_inputs)
    else:
        pred = predict_points(model, coords, [st], lon2.ravel(), lat2.ravel(), fixed_inputs=fixed_inputs)
    shape = lon2.shape
    mean, std, strict = (pred[k][0].reshape(shape) for k in ("mean", "std", "mean_strict"))
    breaking = mean - strict
    xt = torch.from_numpy(coords.to_model(lon2, lat2).astype(np.float32)).reshape(1, -1, 2)
    dev = next(model.parameters()).device
    t = model.fixed_input_values(xt.to(dev))[0].cpu().numpy().astype(np.float64)  # [n, B]
    t = t.T.reshape(t.shape[1], *shape)
    in_box = inside_box(xt[0], tuple(run.box)).numpy().reshape(shape) if run.box else np.ones(shape, bool)

    units = coords.units
    var = sampler.variable
    dims = ("lat", "lon")
    ds = xr.Dataset(
        {
            "mean": (dims, mean, {"units": units, "long_name": f"predicted {var} (mean)"}),
            "std": (dims, std, {"units": units, "long_name": f"predictive standard deviation of {var}"}),
            "mean_strict": (
                dims,
                strict,
                {"units": units, "long_name": f"predicted {var}, strict component (fixed inputs off)"},
            ),
            "breaking": (
                dims,
                breaking,
                {"units": units, "long_name": "symmetry breaking: mean - mean_strict"},
            ),
            "fixed_inputs": (
                ("channel", *dims),
                t,
                {"units": "1", "long_name": "learned fixed inputs t(x) (model units)"},
            ),
            "in_box": (dims, in_box, {"long_name": "inside the training box (where fixed inputs act)"}),
            "station_lon": (
                ("station",),
                st.lon,
                {"units": "degrees_east", "long_name": "context longitude"},
            ),
            "station_lat": (
                ("station",),
                st.lat,
                {"units": "degrees_north", "long_name": "context latitude"},
            ),
            "station_value": (("station",), st.value, {"units": units, "long_name": f"observed {var}"}),
        },
        coords={
            "lat": ("lat", lats, _coord_attrs("lat", coords.planar)),
            "lon": ("lon", asked, _coord_attrs("lon", coords.planar)),
            "channel": ("channel", np.arange(t.shape[0])),
        },
    )
    elev = sampler.elevation_at(lon2, lat2)
    if elev is not None:
        ds["elevation"] = (
            dims,
            elev,
            {"units": "m", "long_name": "surface elevation", "standard_name": "surface_altitude"},
        )
    if st.elevation is not None:
        ds["station_elevation"] = (
            ("station",),
            st.elevation,
            {"units": "m", "long_name": "station elevation"},
        )
    if st.truth is not None:
        ds["truth"] = (dims, st.truth(lon2, lat2), {"units": units, "long_name": f"true {var} (noise-free)"})
    truth_break = sampler.breaking_truth(lon2, lat2)
    if truth_break is not None:
        ds["breaking_truth"] = (
            dims,
            truth_break,
            {"units": units, "long_name": "true breaking term (lapse rate x elevation)"},
        )
    exp = run.experiment
    box_region = coords.region(run.box) if run.box else sampler.train_region
    ds.attrs = {
        "title": f"{sampler.name}: {exp.model} {exp.group} {exp.relaxation} (strength {exp.strength})",
        "dataset": sampler.name,
        "context": st.label,
        "variable": var,
        "variable_long_name": sampler.long_name,
        "units": units,
        "fixed_inputs_used": int(fixed_inputs and fixed_inputs_active(model)),
        "box_lonlat": list(box_region),
        "planar": int(coords.planar),
        "Conventions": "CF-1.8",
    }
    return ds


def predict(
    run: Run,
    context: Any = None,
    targets: Any = None,
    *,
    resolution: float | None = None,
    fixed_inputs: bool = True,
    oracle: bool = True,
    sampler: Sampler | None = None,
) -> xr.Dataset:
    """Prediction, strict component and breaking field of any run at any points, as an ``xarray.Dataset``.

    Data variables: ``mean`` and ``std`` (the predictive), ``mean_strict`` (the same model with its
    fixed inputs off; the prediction itself when it has none acting, so ``breaking`` is then exactly
    zero), ``breaking = mean - mean_strict`` and ``fixed_inputs`` (the learned ``t(x)``, one entry per
    ``channel``), each with ``units`` and ``long_name``.

    Geographic runs (lat/lon data) give :func:`predict_map`'s Dataset over ``lat``/``lon`` (``context``
    and ``targets`` as its ``context`` and ``grid``; see there). Other runs (synthetic 1-D and planar
    data, model units ``"1"``):

    - ``context``: ``None`` (the first test task of seed 0), a seed (``int``: that seed's first test
      task), an ``(xc [n, dx] or [n], yc [n])`` pair, or a :class:`Task` (its contexts, a batch:
      the Dataset then has a leading ``task`` dimension).
    - ``targets``: ``None`` (a grid over the data's box: 400 points in 1-D, 60 x 60 planar), axes
      (``x [m]`` in 1-D, a ``(x1 [m1], x2 [m2])`` tuple for a planar grid over dims ``x2, x1``), or
      points ``[m, dx]`` (a tensor or array; ``[b, m, dx]``: each task's own, e.g. ``task.xt``) over a
      ``target`` dimension with coordinates ``x`` or ``x1``/``x2``.

    Where the data know the exact predictive (GP worlds) and ``oracle``: ``oracle_mean``,
    ``oracle_std``. The context points are on a ``context`` dimension (``context_x`` or
    ``context_x1``/``context_x2``, ``context_value``; NaN where a task has fewer).
    """
    if sampler is None:
        from workbench.data.registry import make_dataset

        sampler = make_dataset(run.experiment.dataset)
    if isinstance(sampler, GeoSampler):
        return predict_map(run, context, targets, resolution, fixed_inputs=fixed_inputs, sampler=sampler)
    return _predict_synthetic(run, sampler, context, targets, fixed_inputs=fixed_inputs, oracle=oracle)


#: Default grid of :func:`predict` for synthetic data: points along each axis of the box.
DEFAULT_LINE_POINTS, DEFAULT_PLANE_POINTS = 400, 60


def _synthetic_context(
    sampler: Sampler, context: Any, dim_x: int
) -> tuple[Tensor, Tensor, Tensor, bool, str]:
    """``xc [b, nc, dx]``, ``yc [b, nc, 1]``, ``mask [b, nc]``, whether batched, and a label."""
    if context is None or (
        isinstance(context, (int, np.integer)) and not isinstance(context, (bool, np.bool_))
    ):
        seed = 0 if context is None else int(context)
        task = sampler.test_set(1, batch_size=1, seed=seed)[0]
        return task.xc, task.yc, task.mask_c, False, f"test task (seed {seed})"
    if isinstance(context, Task):
        return context.xc, context.yc, context.mask_c, True, f"{context.batch_size} tasks"
    try:
        xc, yc = context
    except (TypeError, ValueError):
        raise ValueError(
            f"context = {context!r}: give None (a test task), a seed, an (xc, yc) pair of arrays or a Task"
        ) from None
    xc = torch.as_tensor(np.asarray(xc, np.float32)).reshape(-1, dim_x)
    yc = torch.as_tensor(np.asarray(yc, np.float32)).reshape(-1)
    if len(xc) != len(yc):
        raise ValueError(f"context has {len(xc)} inputs but {len(yc)} values; give one value per input")
    mask = torch.ones(1, len(yc), dtype=torch.bool)
    return xc[None], yc[None, :, None], mask, False, "given context"


def _synthetic_targets(
    sampler: Sampler, targets: Any, dim_x: int
) -> tuple[Tensor, tuple[str, ...], dict[str, Any], tuple[int, ...]]:
    """Targets ``[m, dx]`` (shared) or ``[b, m, dx]`` (each task's own), their dims (without
    ``task``), coordinates and shape."""
    names = ["x"] if dim_x == 1 else [f"x{i + 1}" for i in range(dim_x)]
    attrs = {n: {"long_name": n if dim_x == 1 else f"x_{n[1:]}", "units": "1"} for n in names}
    if targets is None:
        n = DEFAULT_LINE_POINTS if dim_x == 1 else DEFAULT_PLANE_POINTS
        axes = [np.linspace(lo, hi, n) for lo, hi in sampler.box]
        targets = axes[0] if dim_x == 1 else tuple(axes)
    if dim_x == 2 and isinstance(targets, tuple) and len(targets) == 2:
        x1, x2 = (np.atleast_1d(np.asarray(t, np.float64)) for t in targets)
        g1, g2 = np.meshgrid(x1, x2)  # [x2, x1]: rows along x2, as an image
        xt = torch.from_numpy(np.stack([g1.ravel(), g2.ravel()], -1).astype(np.float32))
        coords = {"x1": ("x1", x1, attrs["x1"]), "x2": ("x2", x2, attrs["x2"])}
        return xt, ("x2", "x1"), coords, g1.shape
    # Coordinates label the points as given (float64); the model sees them in float32.
    raw = (
        targets.detach().cpu().double().numpy()
        if isinstance(targets, Tensor)
        else np.asarray(targets, np.float64)
    )
    if raw.ndim == 3 and raw.shape[0] == 1:
        raw = raw[0]  # one task's own targets are shared targets
    pts = torch.from_numpy(raw.astype(np.float32))
    if dim_x == 1 and (raw.ndim == 1 or (raw.ndim == 2 and raw.shape[1] == 1)):
        x = raw.reshape(-1)
        return pts.reshape(-1, 1), ("x",), {"x": ("x", x, attrs["x"])}, (len(x),)
    if pts.dim() not in (2, 3) or pts.shape[-1] != dim_x:
        axes = "x [m]" if dim_x == 1 else "a (x1, x2) tuple of axes"
        raise ValueError(
            f"targets of shape {tuple(pts.shape)}: give None, {axes}, or points [m, {dim_x}] or "
            f"[batch, m, {dim_x}]"
        )
    lead = ("task", "target") if pts.dim() == 3 else ("target",)
    coords = {n: (lead, raw[..., i], attrs[n]) for i, n in enumerate(names)}
    return pts, ("target",), coords, (pts.shape[-2],)


def _predict_synthetic(
    run: Run, sampler: Sampler, context: Any, targets: Any, *, fixed_inputs: bool, oracle: bool
) -> xr.Dataset:
    """:func:`predict` for data in model coordinates (the GP worlds, 1-D and planar)."""
    model = run.model
    dim_x = len(sampler.box)
    xc, yc, mask, batched, label = _synthetic_context(sampler, context, dim_x)
    xt, dims, coords, shape = _synthetic_targets(sampler, targets, dim_x)
    b = xc.shape[0]
    per_task = xt.dim() == 3
    if per_task and (not batched or xt.shape[0] != b):
        raise ValueError(f"targets are for {xt.shape[0]} tasks but the context has {b}")
    task = Task(xc, yc, xt if per_task else xt[None].expand(b, -1, -1), None, mask).for_model(model)
    res = model_moments(model, task.xc, task.yc, task.mask_c, task.xt, fixed_inputs=fixed_inputs)
    full = (("task",) if batched else ()) + dims
    size = ((b,) if batched else ()) + shape
    var, units = "y", "1"
    fields = {
        "mean": (res["mean"], f"predicted {var} (mean)"),
        "std": (res["std"], f"predictive standard deviation of {var}"),
        "mean_strict": (res["mean_strict"], f"predicted {var}, strict component (fixed inputs off)"),
        "breaking": (res["mean"] - res["mean_strict"], "symmetry breaking: mean - mean_strict"),
    }
    if oracle and sampler.has_oracle:  # the GP worlds know the exact predictive
        om, osd = sampler.oracle_moments(Task(xc, yc, task.xt.cpu(), None, mask))
        fields["oracle_mean"] = (om.double().numpy(), f"exact predictive mean of {var} (oracle)")
        fields["oracle_std"] = (
            osd.double().numpy(),
            f"exact predictive standard deviation of {var} (oracle)",
        )
    data = {
        k: (full, v.reshape(size), {"units": units, "long_name": name}) for k, (v, name) in fields.items()
    }
    # Fixed inputs depend on position only: one set per target point, shared targets once.
    t = model.fixed_input_values(task.xt if per_task else task.xt[:1]).cpu().numpy().astype(np.float64)
    t = np.moveaxis(t, -1, 0).reshape(t.shape[-1], *((b,) if per_task else ()), *shape)  # [B, (b), ...]
    t_dims = ("channel", *(("task",) if per_task else ()), *dims)
    data["fixed_inputs"] = (t_dims, t, {"units": "1", "long_name": "learned fixed inputs t(x) (model units)"})
    keep = mask.cpu().numpy()
    xc_np = np.where(keep[..., None], xc.cpu().numpy(), np.nan).astype(np.float64)
    yc_np = np.where(keep, yc[..., 0].cpu().numpy(), np.nan).astype(np.float64)
    if not batched:  # one context: its real points only
        xc_np, yc_np = xc_np[0, keep[0]], yc_np[0, keep[0]]
    cdims = (("task",) if batched else ()) + ("context",)
    for i, name in enumerate(["x"] if dim_x == 1 else ["x1", "x2"]):
        data[f"context_{name}"] = (cdims, xc_np[..., i], {"units": "1", "long_name": f"context input {name}"})
    data["context_value"] = (cdims, yc_np, {"units": units, "long_name": f"observed {var}"})
    ds = xr.Dataset(data, coords=coords)  # one constructor call: a click redraws through here
    exp = run.experiment
    ds.attrs = {
        "title": f"{sampler.name}: {exp.model} {exp.group} {exp.relaxation} (strength {exp.strength})",
        "dataset": sampler.name,
        "context": label,
        "variable": var,
        "units": units,
        "fixed_inputs_used": int(fixed_inputs and fixed_inputs_active(model)),
        "box": [float(v) for lo_hi in run.box for v in lo_hi],
    }
    return ds


def _coord_attrs(name: str, planar: bool) -> dict[str, str]:
    if planar:
        return {"long_name": "y" if name == "lat" else "x", "units": "1"}
    if name == "lat":
        return {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude"}
    return {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"}


def breaking_scores(
    run: Run, sampler: GeoSampler, contexts: Sequence[Stations], n: int = 48
) -> dict[str, float]:
    """Correlation over the grid inside the box between the breaking field and elevation (and the truth).

    The breaking field is averaged over ``contexts`` on a grid of ``n`` points along the training
    region's longer side. Correlations are signed (for temperature and elevation expect < 0); 0 when
    the breaking field is identically zero (a strict model).
    """
    lats, lons = map_grid(sampler.train_region, n=n)
    lon2, lat2 = np.meshgrid(lons, lats)
    lon, lat = lon2.ravel(), lat2.ravel()
    sums = np.zeros(len(lon))
    for i in range(0, len(contexts), 4):
        pred = predict_points(run.model, sampler.coords, contexts[i : i + 4], lon, lat)
        sums += (pred["mean"] - pred["mean_strict"]).sum(0)
    breaking = sums / max(1, len(contexts))
    x = torch.from_numpy(sampler.coords.to_model(lon, lat).astype(np.float32))
    keep = inside_box(x, tuple(run.box)).numpy() if run.box else np.ones(len(lon), bool)
    out: dict[str, float] = {}
    elev = sampler.elevation_at(lon, lat)
    if elev is not None:
        out["breaking_elevation_corr"] = correlation(breaking[keep], elev[keep])
    truth = sampler.breaking_truth(lon, lat)
    if truth is not None:
        out["breaking_truth_corr"] = correlation(breaking[keep], truth[keep])
    out["breaking_rms"] = float(math.sqrt(np.mean(breaking[keep] ** 2))) if keep.any() else 0.0
    return out


def map_metrics(run: Run, sampler: Sampler | None) -> dict[str, float]:
    """Scores of a run's breaking field where the dataset knows the elevation: its correlation with
    elevation (and with the true breaking term, where the data were made with one) and its size.

    Empty for datasets without elevation or without score contexts (GP worlds, plain fields).
    """
    if not isinstance(sampler, GeoSampler) or sampler.elevation_at(np.zeros(1), np.zeros(1)) is None:
        return {}
    contexts = sampler.score_contexts()
    if not contexts:
        return {}
    return breaking_scores(run, sampler, contexts)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over the entries where both are finite; 0 when either is constant."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return 0.0
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0
