"""Maps from trained runs (xarray out, units, the breaking field) and offline cartopy figures."""

from __future__ import annotations

import socket
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

matplotlib.use("Agg")

from covariates import ElevationInputs  # noqa: E402  (tests/covariates.py)

from workbench import Experiment, Run, run  # noqa: E402
from workbench.data.registry import make_dataset  # noqa: E402
from workbench.maps import map_grid, predict_map  # noqa: E402
from workbench.models import ConvCNP, build_model  # noqa: E402
from workbench.train import History  # noqa: E402

SMALL = dict(steps=3, test_tasks=8, width=8, depth=2, n_fixed=4)


@pytest.fixture(scope="module")
def colorado_run():
    torch.set_num_threads(2)
    return run(Experiment(dataset="colorado-temperature", relaxation="fixed-inputs", **SMALL), progress=False)


@pytest.fixture(scope="module")
def strict_run():
    # An untrained strict model is enough to check that its breaking field is zero.
    exp = Experiment(dataset="colorado-temperature", relaxation="strict", **SMALL)
    box = make_dataset(exp.dataset).box
    torch.manual_seed(0)
    return Run(exp, build_model(exp, 2, 1, box), History(), {}, box, 2, 1)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def test_predict_map_variables_coordinates_units(colorado_run, tmp_path: Path) -> None:
    m = colorado_run.predict_map(context="1990-07")
    assert isinstance(m, xr.Dataset)
    for name in ("mean", "std", "mean_strict", "breaking", "elevation", "in_box"):
        assert m[name].dims == ("lat", "lon"), name
    assert m["fixed_inputs"].dims == ("channel", "lat", "lon") and m.sizes["channel"] == 4
    for name in ("station_lon", "station_lat", "station_value", "station_elevation"):
        assert m[name].dims == ("station",)
    assert m.sizes["station"] > 200
    assert m["lat"].attrs["units"] == "degrees_north" and m["lon"].attrs["units"] == "degrees_east"
    assert m["lat"].attrs["standard_name"] == "latitude"
    for name in ("mean", "std", "mean_strict", "breaking", "station_value"):
        assert m[name].attrs["units"] == "degC"
    assert m["elevation"].attrs["units"] == "m"
    # The default grid: 100 points along the longer side of Colorado, in degrees.
    assert m.sizes["lon"] == 100 and 40 < m.sizes["lat"] < 80
    assert -109.6 < float(m["lon"].min()) and float(m["lon"].max()) < -100.9
    assert np.isfinite(m["mean"]).all() and bool((m["std"] > 0).all())
    assert 0 < float(m["mean"].mean()) < 45  # degC, not model units
    assert np.allclose(m["breaking"], m["mean"] - m["mean_strict"])
    assert float(np.abs(m["breaking"]).max()) > 0  # fixed inputs on: something breaks
    assert m.attrs["context"] == "1990-07" and m.attrs["fixed_inputs_used"] == 1
    assert bool(m["in_box"].all())
    m.to_netcdf(tmp_path / "map.nc")  # CF attributes and all: a map is a plain NetCDF file
    with xr.open_dataset(tmp_path / "map.nc") as back:
        assert back["breaking"].attrs["units"] == "degC" and back.attrs["context"] == "1990-07"


def test_breaking_is_exactly_zero_without_fixed_inputs(colorado_run, strict_run) -> None:
    off = predict_map(colorado_run, "1990-07", fixed_inputs=False)
    assert float(np.abs(off["breaking"]).max()) == 0.0 and off.attrs["fixed_inputs_used"] == 0
    strict = strict_run.predict_map("1990-07")
    assert float(np.abs(strict["breaking"]).max()) == 0.0 and strict.sizes["channel"] == 0
    assert np.array_equal(strict["mean"], strict["mean_strict"])


def test_user_stations_and_grids(colorado_run) -> None:
    lats, lons = np.linspace(38, 40, 5), np.linspace(-106, -103, 7)
    stations = {"lon": [-105.0, -104.0, -103.5], "lat": [39.7, 38.5, 40.0], "value": [25.0, 30.0, 31.0]}
    m = colorado_run.predict_map(context=stations, grid=(lats, lons))
    assert (m.sizes["lat"], m.sizes["lon"]) == (5, 7) and m.sizes["station"] == 3
    assert np.allclose(m["lat"], lats) and m.attrs["context"] == "user stations"
    df = pd.DataFrame(stations)
    target = xr.Dataset(coords={"lat": lats[:3], "lon": lons[:2]})
    m2 = colorado_run.predict_map(context=df, grid=target)
    assert (m2.sizes["lat"], m2.sizes["lon"]) == (3, 2)
    # The same stations and points give the same prediction, whatever form they came in (up to where
    # the ConvCNP centres its internal grid, which follows the targets' extent).
    assert np.allclose(m2["mean"], m["mean"].isel(lat=slice(0, 3), lon=slice(0, 2)), atol=0.05)
    empty = colorado_run.predict_map(context={"lon": [], "lat": [], "value": []}, grid=(lats, lons))
    assert np.isfinite(empty["mean"]).all() and empty.sizes["station"] == 0
    with pytest.raises(ValueError, match="not a month of the data"):
        colorado_run.predict_map(context="2099-01")
    with pytest.raises(ValueError, match="grid must be"):
        colorado_run.predict_map(grid=5)


def test_large_grid_in_chunks_matches_one_pass(colorado_run, monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.maps as maps

    grid = map_grid((-108, -103, 37, 41), n=30)
    one = colorado_run.predict_map("1990-07", grid=grid)
    monkeypatch.setattr(maps, "MAX_PAIRS", 1)  # forces 256-point chunks
    chunked = colorado_run.predict_map("1990-07", grid=grid)
    assert np.allclose(one["mean"], chunked["mean"], atol=1e-4)
    assert np.allclose(one["breaking"], chunked["breaking"], atol=1e-4)


def test_run_metrics_score_breaking_against_elevation(colorado_run) -> None:
    r = colorado_run.metrics["breaking_elevation_corr"]
    assert -1 <= r <= 1 and colorado_run.metrics["breaking_rms"] > 0


def test_terrain_map_truth_and_zero_breaking_outside_the_box() -> None:
    torch.set_num_threads(2)
    r = run(Experiment(dataset="terrain:alps->rockies", **SMALL), progress=False)
    assert "breaking_truth_corr" in r.metrics and "breaking_elevation_corr" in r.metrics
    assert r.metrics["breaking_truth_corr"] == pytest.approx(-r.metrics["breaking_elevation_corr"], abs=1e-6)
    inside = r.predict_map(context=3, resolution=0.25)
    assert "truth" in inside and "breaking_truth" in inside and inside.attrs["context"] == "train draw 3"
    outside = r.predict_map(context="test:1", resolution=0.25)
    assert not bool(outside["in_box"].any())
    assert float(np.abs(outside["breaking"]).max()) == 0.0  # fixed inputs are zero outside the box
    assert -112.1 < float(outside["lon"].min()) and float(outside["lon"].max()) < -102.9


def test_elevation_inputs_reference_model() -> None:
    s = make_dataset("us-terrain")
    model = ConvCNP(
        2, 1, s.box, fixed=ElevationInputs(s, s.box), channels=8, depth=2, points_per_unit=4, kernel=5
    )
    batch = next(s.batches(2, seed=0))
    t = model.fixed(torch.tensor([[[-0.9, 0.8], [1.0, -1.0]]]))  # Rockies vs Texas plains, model units
    assert t.shape == (1, 2, 1) and float(t[0, 0, 0]) > float(t[0, 1, 0])
    assert torch.isfinite(model.loglik(batch)).all()
    test = s.test_set(2, batch_size=2)[0]  # east of the box: elevation is still known there
    assert float(model.fixed(test.xt).abs().sum()) > 0
    # With a footprint each value is the mean of a 5 x 5 stencil over the cell: within its samples.
    stencil = [-0.1, -0.05, 0.0, 0.05, 0.1]  # 0.4 x the footprint either side
    x = torch.tensor([[[-0.9, 0.8]]])
    smooth = ElevationInputs(s, s.box, footprint=0.25)(x)
    corners = [ElevationInputs(s, s.box)(x + torch.tensor([du, dv])) for du in stencil for dv in stencil]
    lo, hi = min(float(c) for c in corners), max(float(c) for c in corners)
    assert lo - 1e-6 <= float(smooth) <= hi + 1e-6 and hi > lo


def test_cartopy_figure_renders_offline(colorado_run, no_network: None, tmp_path: Path) -> None:
    import cartopy

    import workbench.plot as wp

    assert Path(cartopy.config["pre_existing_data_dir"]).name == "natural_earth"
    m = colorado_run.predict_map("1990-07", resolution=0.2)
    for var in ("breaking", "mean"):
        fig = wp.map(m, var)
        out = tmp_path / f"{var}.png"
        fig.savefig(out, dpi=60)
        assert out.stat().st_size > 10_000
        ax = fig.axes[0]
        assert len(ax.collections) >= 3  # mesh, borders/states/coastline features, stations
        assert "°C" in fig.axes[1].get_ylabel()
    fig = wp.breaking_vs_elevation(m)
    fig.savefig(tmp_path / "bve.png", dpi=50)
    assert "r = " in fig.axes[2].get_title()
    with pytest.raises(ValueError, match="var = 'nope' is not in the map; choose one of: mean"):
        wp.map(m, "nope")
    import matplotlib.pyplot as plt

    plt.close("all")
