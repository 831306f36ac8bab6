"""Geographic datasets: shipped files as task samplers, ERA5 and user fields, dataset names (offline)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from workbench import Experiment
from workbench.data.base import GeoSampler, Sampler, as_stations
from workbench.data.fields import FieldSampler, as_field, chronological_splits, read_era5, save_field
from workbench.data.registry import DATASETS, GP_DATASETS, make_dataset
from workbench.data.stations import ColoradoSampler
from workbench.data.terrain import REGIONS, US_WEST, parse_terrain, terrain
from workbench.geo import DATASETS_ENV, Coords, datasets_dir
from workbench.maps import correlation, map_metrics
from workbench.task import Task

GEO_NAMES = ["colorado-temperature", "us-terrain", "terrain:alps->rockies", "hadcm3-north-america"]


def _inside(x: torch.Tensor, box, tol: float = 1e-4) -> bool:
    lo = torch.tensor([b[0] for b in box]) - tol
    hi = torch.tensor([b[1] for b in box]) + tol
    return bool(((x >= lo) & (x <= hi)).all())


def _check_task(task: Task, box=None) -> None:
    assert isinstance(task, Task) and task.dim_x == 2 and task.dim_y == 1
    assert torch.isfinite(task.xc[task.mask_c]).all() and torch.isfinite(task.yc[task.mask_c]).all()
    assert torch.isfinite(task.xt).all() and torch.isfinite(task.yt).all()
    assert bool((task.n_context >= 1).all())
    # Normalised outputs: nothing absurd (a few training standard deviations at most).
    assert float(task.yt.abs().max()) < 8 and float(task.yc[task.mask_c].abs().max()) < 8
    if box is not None:
        assert _inside(task.xc[task.mask_c], box) and _inside(task.xt.reshape(-1, 2), box)


# --- coordinates and the data folder -----------------------------------------------------------------


def test_coords_round_trip_and_box() -> None:
    c = Coords.for_region((-109.5, -101.0, 36.5, 41.5), span=3.0, y_mean=10.0, y_std=5.0)
    box = c.box((-109.5, -101.0, 36.5, 41.5))
    assert (
        box[0] == pytest.approx((-3.0, 3.0))
        and -3 < box[1][0] < -2
        and box[1][1] == pytest.approx(-box[1][0])
    )
    lon, lat = np.array([-105.0, -102.3]), np.array([39.7, 37.1])
    back = c.to_lonlat(c.to_model(lon, lat))
    assert np.allclose(back[0], lon) and np.allclose(back[1], lat)
    assert np.allclose(c.denormalise(c.normalise([3.0, 20.0])), [3.0, 20.0])
    assert c.region(box) == pytest.approx((-109.5, -101.0, 36.5, 41.5))
    # One model unit is the same distance east-west and north-south near the centre.
    assert c.to_model(c.lon_centre + 1 / c.cos_lat, c.lat_centre)[0] == pytest.approx(1 / c.scale_deg)
    assert Coords.from_dict(c.to_dict()) == c


def test_datasets_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert (datasets_dir() / "colorado_temperature.nc").is_file()
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path))
    assert datasets_dir() == tmp_path
    monkeypatch.setenv(DATASETS_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=DATASETS_ENV):
        datasets_dir()


# --- the shipped datasets ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GEO_NAMES)
def test_named_dataset_is_registered_and_yields_valid_tasks(name: str) -> None:
    assert name in DATASETS and DATASETS[name][0] == 2
    s = make_dataset(name)
    assert isinstance(s, GeoSampler) and s.dim_x == 2 and s.coords.units == "degC"
    assert make_dataset(name) is s  # cached: rebuilding from a run's experiment is free
    batch = next(s.batches(4, seed=0))
    _check_task(batch, s.box)
    assert batch.batch_size == 4
    test = s.test_set(6, batch_size=4, seed=1)
    assert [t.batch_size for t in test] == [4, 2]
    for t in test:
        _check_task(t)
    # Same seed, same tasks.
    again = s.test_set(6, batch_size=4, seed=1)
    assert torch.equal(test[0].yt, again[0].yt) and torch.equal(test[1].xc, again[1].xc)
    # The model box spans about [-3, 3] on the training region's longer side.
    assert max(hi - lo for lo, hi in s.box) == pytest.approx(6.0)


def test_colorado_sampler_splits_and_values() -> None:
    s = ColoradoSampler()
    years = {sp: s.months(sp).astype("datetime64[Y]").astype(int) + 1970 for sp in ("train", "val", "test")}
    assert years["train"].max() <= 1980 and years["val"].min() >= 1981 and years["val"].max() <= 1988
    assert years["test"].min() == 1989 and years["test"].max() == 1997
    assert s.n_units("test") == 108 and s.n_units("val") == 96 and s.n_units("train") > 1000
    assert not set(s.months("train")) & set(s.months("test"))
    # tmax in degC: July tmax in the test years is warm on average, and normalisation came from training.
    assert 10 < s.coords.y_mean < 25 and 5 < s.coords.y_std < 15
    batch = next(s.batches(8, seed=3))
    assert batch.xt.shape == (8, 64, 2)
    values = s.coords.denormalise(batch.yt.numpy())
    assert values.min() > -40 and values.max() < 45
    # Context fraction 30-70 % of the reporting stations.
    counts = batch.n_context.numpy()
    assert counts.min() >= 1 and counts.max() <= 285
    # test_set cycles through the test months in order.
    test = s.test_set(4, batch_size=4)
    months = test[0].info["unit"].numpy()
    assert (np.diff(months) == 1).all()
    lon, lat = s.coords.to_lonlat(batch.xc[batch.mask_c].numpy())
    assert lon.min() > -110 and lon.max() < -101 and lat.min() > 36 and lat.max() < 42


@pytest.mark.parametrize("variable", ["tmin", "tmax-anomaly"])
def test_colorado_variables(variable: str) -> None:
    s = ColoradoSampler(variable=variable)
    _check_task(next(s.batches(2, seed=0)), s.box)
    if variable == "tmax-anomaly":
        assert abs(s.coords.y_mean) < 1e-6 and 1 < s.coords.y_std < 5
    else:
        assert s.coords.y_mean < ColoradoSampler().coords.y_mean
    with pytest.raises(ValueError, match="variable = 'tavg' is not valid; choose one of: tmax, tmin"):
        ColoradoSampler(variable="tavg")


def test_colorado_context_and_elevation() -> None:
    s = make_dataset("colorado-temperature")
    c = s.context("1990-07")
    assert len(c) > 200 and c.label == "1990-07" and 20 < np.mean(c.value) < 35
    assert s.context(s.month_index("1990-07")).label == "1990-07"
    with pytest.raises(ValueError, match="not a month of the data"):
        s.context("2020-01")
    e = s.elevation_at(np.array([-105.0, -108.0, -120.0]), np.array([39.7, 37.5, 39.0]))
    assert 1500 < e[0] < 1900 and np.isnan(e[2])


def test_us_terrain_train_west_test_east() -> None:
    s = make_dataset("us-terrain")
    assert s.coords.region(s.box) == pytest.approx(US_WEST)
    train = next(s.batches(4, seed=0))
    _check_task(train, s.box)
    lon, _ = s.coords.to_lonlat(train.xt.reshape(-1, 2).numpy())
    assert lon.max() < -98
    test = s.test_set(4, batch_size=4)[0]
    lon, _ = s.coords.to_lonlat(test.xt.reshape(-1, 2).numpy())
    assert lon.min() > -98  # out of distribution: all outside the box
    assert float(test.xt[..., 0].min()) > s.box[0][1]
    # The true breaking term is lapse rate x elevation: Denver about -10 K, Kansas small.
    t = s.breaking_truth(np.array([-104.9, -98.5]), np.array([39.75, 38.5]))
    assert -13 < t[0] < -9 and -6 < t[1] < 0
    # Normalisation from the training region: training outputs are about standard.
    y = torch.cat([b.yt for _, b in zip(range(5), s.batches(16, seed=1), strict=False)])
    assert abs(float(y.mean())) < 0.3 and 0.7 < float(y.std()) < 1.3


def test_terrain_names_and_regions() -> None:
    assert parse_terrain("terrain:alps") == (("alps", REGIONS["alps"]), ("alps", REGIONS["alps"]))
    (_, a), (_, b) = parse_terrain("terrain:alps->rockies")
    assert a == REGIONS["alps"] and b == REGIONS["rockies"]
    assert parse_terrain("terrain:5,16,43,48.5")[0][1] == (5.0, 16.0, 43.0, 48.5)
    s = make_dataset("terrain:alps->rockies")
    test = s.test_set(2, batch_size=2)[0]
    lon, lat = s.coords.to_lonlat(test.xt.reshape(-1, 2).numpy())
    assert lon.min() > -112.01 and lon.max() < -102.99 and lat.min() > 36.99 and lat.max() < 44.01
    assert (
        s.elevation_at(np.array([-105.0]), np.array([39.7]))[0] > 1400
    )  # the test region's terrain is known
    for bad, match in [
        ("terrain:mars", "unknown region 'mars'"),
        ("terrain:1,2,3", "unknown region"),
        ("terrain:10,5,40,45", "LON0 < LON1"),
        ("terrain:", "names no region"),
    ]:
        with pytest.raises(ValueError, match=match):
            Experiment(dataset=bad)
    with pytest.raises(ValueError, match="larger than the training region"):
        terrain("terrain:alps->himalaya")


def test_hadcm3_years_split_chronologically() -> None:
    s = make_dataset("hadcm3-north-america")
    years = {sp: s.times(sp).astype("datetime64[Y]").astype(int) + 1970 for sp in ("train", "val", "test")}
    assert years["train"].max() < years["val"].min() <= years["val"].max() < years["test"].min()
    assert (len(years["train"]), len(years["val"]), len(years["test"])) == (160, 30, 50)
    assert s.elevation_at(np.zeros(1), np.zeros(1)) is None and map_metrics(None, s) == {}
    assert s.context(2050).label.startswith("2050") and s.context(0).label.startswith("1860")


# --- ERA5 ------------------------------------------------------------------------------------------------


def _era5(path: Path, lat_descending: bool = True, drop: str | None = None, with_z: bool = True) -> Path:
    lat = np.arange(50.0, 39.75, -0.5) if lat_descending else np.arange(40.0, 50.25, 0.5)
    lon = np.arange(350.0, 375.0, 0.5) % 360  # crosses Greenwich in 0..360 like ERA5
    lon = np.sort(lon)
    time = np.array(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"], dtype="datetime64[ns]")
    rng = np.random.default_rng(0)
    lat3 = lat[None, :, None]
    t2m = 285.0 - 0.5 * (lat3 - 45) + rng.normal(0, 1, (len(time), len(lat), len(lon)))
    ds = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), t2m.astype(np.float32), {"units": "K"})},
        coords={"time": time, "latitude": lat, "longitude": lon},
    )
    if with_z:
        z = np.broadcast_to(9.80665 * 100.0 * (lat3 - 39), t2m.shape)
        ds["z"] = (("time", "latitude", "longitude"), z.astype(np.float32), {"units": "m**2 s**-2"})
    if drop in ds.data_vars:
        ds = ds.drop_vars(drop)
    elif drop:
        ds = ds.rename({drop: "dim_" + drop})
    ds.to_netcdf(path)
    return path


@pytest.mark.parametrize("descending", [True, False])
def test_era5_reader(tmp_path: Path, descending: bool) -> None:
    path = _era5(tmp_path / "era5.nc", lat_descending=descending)
    field, elevation = read_era5(path)
    assert field.dims == ("time", "lat", "lon") and field.attrs["units"] == "degC"
    assert np.all(np.diff(field["lat"]) > 0) and np.all(np.diff(field["lon"]) > 0)
    assert float(field["lon"].min()) >= -180 and float(field["lon"].max()) < 180
    assert 5 < float(field.mean()) < 20  # K -> degC
    # North is colder, whichever order the file had.
    assert float(field.isel(lat=-1).mean()) < float(field.isel(lat=0).mean())
    assert elevation is not None and elevation.attrs["units"] == "m"
    assert float(elevation.sel(lat=45.0, method="nearest").mean()) == pytest.approx(600.0, rel=1e-4)
    exp = Experiment(dataset=f"era5:{path}")
    s = make_dataset(exp.dataset)
    assert isinstance(s, FieldSampler) and s.units == "degC"
    _check_task(next(s.batches(2, seed=0)), s.box)
    assert len(s.test_set(2, batch_size=2)) == 1


def test_era5_errors_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no variable 't2m'"):
        read_era5(_era5(tmp_path / "a.nc", drop="t2m"))
    with pytest.raises(ValueError, match=r"lacks coordinate\(s\) \['latitude'\]"):
        read_era5(_era5(tmp_path / "b.nc", drop="latitude"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_era5(tmp_path / "missing.nc")
    with pytest.raises(
        ValueError, match=r"Experiment.dataset = .* is not valid: .*no variable 't2m'.*choose one of"
    ):
        Experiment(dataset=f"era5:{tmp_path / 'a.nc'}")
    with pytest.raises(ValueError, match="does not exist; choose one of"):
        Experiment(dataset=f"era5:{tmp_path / 'nope.nc'}")
    field, elevation = read_era5(_era5(tmp_path / "c.nc", with_z=False))
    assert elevation is None and field.sizes["time"] == 4


# --- your own field --------------------------------------------------------------------------------------


def _field(n_time: int = 5, names=("lat", "lon")) -> xr.DataArray:
    lat, lon = np.linspace(30, 40, 12), np.linspace(-100, -85, 15)
    rng = np.random.default_rng(1)
    v = 20 + rng.normal(0, 2, (n_time, 12, 15))
    return xr.DataArray(
        v,
        dims=("time", *names),
        coords={"time": np.arange(n_time), names[0]: lat, names[1]: lon},
        name="temp",
        attrs={"units": "degC"},
    )


def test_user_field_dataarray_and_path(tmp_path: Path) -> None:
    da = _field()
    exp = Experiment(dataset=da)
    s = make_dataset(exp.dataset)
    assert make_dataset(da) is s and s.units == "degC" and s.name == "field:temp"
    assert (s.n_units("train"), s.n_units("val"), s.n_units("test")) == (4, 0, 1)
    _check_task(next(s.batches(3, seed=0)), s.box)
    assert s.coords.region(s.box) == pytest.approx((-100, -85, 30, 40))
    path = save_field(
        da.assign_coords(elevation=(("lat", "lon"), np.full((12, 15), 300.0))), tmp_path / "f.nc"
    )
    s2 = make_dataset(Experiment(dataset=path).dataset)
    assert s2.elevation_at(np.array([-90.0]), np.array([35.0]))[0] == pytest.approx(300.0)
    assert save_field("colorado-temperature", tmp_path / "x.nc") == "colorado-temperature"


def test_user_field_forms() -> None:
    # latitude/longitude names, no time dimension: one task source, shared by all splits.
    one = _field(1, ("latitude", "longitude")).isel(time=0)
    field, elevation, planar = as_field(one)
    assert field.dims == ("time", "lat", "lon") and elevation is None and not planar
    assert chronological_splits(1)["test"].tolist() == [0]
    # x/y are planar coordinates: no cosine factor.
    xy = _field(3, ("y", "x"))
    s = FieldSampler(*as_field(xy)[:1], planar=True)
    assert s.coords.planar and s.coords.cos_lat == 1.0
    # A Dataset with elevation in metres.
    ds = _field(2).to_dataset()
    ds["orography"] = (("lat", "lon"), np.full((12, 15), 150.0))
    _, elevation, _ = as_field(ds)
    assert float(elevation.mean()) == 150.0


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (xr.DataArray(np.zeros((3, 4)), dims=("a", "b")), "needs spatial coordinates lat/lon"),
        (_field() * np.nan, "all NaN"),
        (_field().isel(time=slice(0, 0)), "empty along"),
        (_field().expand_dims(member=2), "one time"),
    ],
)
def test_user_field_errors(bad: xr.DataArray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Experiment(dataset=bad)


def test_experiment_dataset_errors_keep_the_format() -> None:
    with pytest.raises(
        ValueError, match=r"Experiment.dataset = 'nope' is not valid; choose one of: .*colorado"
    ):
        Experiment(dataset="nope")
    with pytest.raises(ValueError, match="era5:PATH"):
        Experiment(dataset=42)
    with pytest.raises(ValueError, match="does not exist"):
        Experiment(dataset="/no/such/file.nc")


def test_stations_and_correlation() -> None:
    st = as_stations({"lon": [-105, -104], "latitude": [39, 40], "tmax": [20, np.nan]}, "tmax")
    assert len(st) == 1  # the missing value is dropped
    with pytest.raises(ValueError, match="no value column"):
        as_stations({"lon": [1], "lat": [2], "foo": [3]})
    x = np.arange(10.0)
    assert correlation(x, 2 * x + 1) == pytest.approx(1.0) and correlation(x, -x) == pytest.approx(-1.0)
    assert correlation(np.zeros(10), x) == 0.0
    assert math.isfinite(correlation(np.r_[x, np.nan], np.r_[x, 1.0]))


def test_a_run_on_an_in_memory_field_saves_and_loads(tmp_path):
    from workbench import load_run, run

    lat, lon = np.linspace(30, 40, 12), np.linspace(-110, -100, 14)
    rng = np.random.default_rng(0)
    field = xr.DataArray(
        rng.normal(size=(6, 12, 14)).astype("float32"),
        dims=("time", "lat", "lon"),
        coords={"time": np.arange(6), "lat": lat, "lon": lon},
        name="t2m",
        attrs={"units": "degC"},
    )
    r = run(Experiment(dataset=field, steps=2, batch_size=2, test_tasks=2), progress=False)
    r.save(tmp_path / "run")
    assert (tmp_path / "run" / "dataset.nc").is_file()
    back = load_run(tmp_path / "run")
    assert back.experiment.dataset == str((tmp_path / "run" / "dataset.nc").resolve())
    for k, v in r.model.state_dict().items():
        assert torch.equal(v, back.model.state_dict()[k])


def test_early_stopping_keeps_the_best_validation_step() -> None:
    """validate_every > 0 scores the validation years and keeps the best weights; GP data refuse it."""
    from workbench import run

    exp = Experiment(dataset="colorado-temperature", steps=6, batch_size=4, test_tasks=16, validate_every=3)
    r = run(exp, progress=False)
    assert r.metrics["best_step"] in (3.0, 6.0)
    assert math.isfinite(r.metrics["val_loglik"])
    with pytest.raises(ValueError, match="validation split"):
        run(Experiment(dataset="gibbs-1d", steps=2, test_tasks=16, validate_every=1), progress=False)


@pytest.mark.parametrize(
    "lon,expected",
    [
        (np.arange(150.0, 271.0, 30.0), [-210.0, -180.0, -150.0, -120.0, -90.0]),  # Pacific cut, 0..360
        (np.array([170.0, 175.0, -180.0, -175.0]), [170.0, 175.0, 180.0, 185.0]),  # across 180 in -180..180
        (np.array([100.0, 140.0, 180.0]), [100.0, 140.0, 180.0]),  # ends at the dateline: kept
        (np.array([250.0, 260.0, 270.0]), [-110.0, -100.0, -90.0]),  # ERA5 over the US: plain wrap
        (np.arange(0.0, 360.0, 90.0), [0.0, 90.0, -180.0, -90.0]),  # the whole globe: plain wrap
    ],
)
def test_continuous_longitudes(lon: np.ndarray, expected: list[float]) -> None:
    from workbench.data.fields import continuous_longitudes

    np.testing.assert_allclose(continuous_longitudes(lon), expected)


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_answers_the_sampler_interface(name):
    """What callers ask (has_oracle, has_validation) is what the sampler can do; no probing needed."""
    s = make_dataset(name)
    assert isinstance(s, Sampler) and len(s.box) == s.dim_x == DATASETS[name][0]
    assert s.has_oracle == (name in GP_DATASETS) and s.has_validation == (name not in GP_DATASETS)
    task = s.test_set(2, batch_size=2)[0]
    if s.has_oracle:
        assert s.oracle_loglik(task).shape == (2,)
    else:
        with pytest.raises(ValueError, match="no exact oracle"):
            s.oracle_moments(task)
    if s.has_validation:
        assert s.validation_set(2, batch_size=2)[0].batch_size == 2
    else:
        with pytest.raises(ValueError, match="no validation split"):
            s.validation_set(2)
