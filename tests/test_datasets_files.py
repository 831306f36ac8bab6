"""Checks of the committed data files under datasets/ (fast, offline)."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

DATASETS = Path(__file__).resolve().parent.parent / "datasets"
NE_ROOT = DATASETS / "natural_earth"
NE_DIR = NE_ROOT / "shapefiles" / "natural_earth"
SHAPEFILES = [
    ("physical", "coastline", "110m"),
    ("physical", "coastline", "50m"),
    ("cultural", "admin_0_boundary_lines_land", "110m"),
    ("cultural", "admin_0_boundary_lines_land", "50m"),
    ("cultural", "admin_0_boundary_lines_land", "10m"),
    ("cultural", "admin_0_countries", "110m"),
    ("cultural", "admin_0_countries", "50m"),
    ("cultural", "admin_1_states_provinces_lakes", "110m"),
    ("cultural", "admin_1_states_provinces_lakes", "50m"),
    ("cultural", "admin_1_states_provinces_lakes", "10m"),
]


def _open(name: str) -> xr.Dataset:
    """Open one committed NetCDF file, fully loaded."""
    with xr.open_dataset(DATASETS / name) as ds:
        return ds.load()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any socket connection fail."""

    def refuse(*args: object, **kwargs: object) -> None:
        """Raise instead of connecting."""
        raise RuntimeError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def test_total_size_is_small() -> None:
    """All shipped data together stay under 30 MB."""
    total = sum(p.stat().st_size for p in DATASETS.rglob("*") if p.is_file())
    assert total < 30e6


def test_colorado_temperature() -> None:
    """Stations, monthly tmax/tmin and the elevation grid have the documented layout and sane values."""
    ds = _open("colorado_temperature.nc")
    assert dict(ds.sizes) == {"time": 1236, "station": 376, "grid_lat": 119, "grid_lon": 205}
    for name in ("tmax", "tmin"):
        assert ds[name].dims == ("time", "station") and ds[name].dtype == np.float32
        assert ds[name].attrs["units"] == "degC"
    assert ds["grid_elevation"].dims == ("grid_lat", "grid_lon")
    assert ds["elevation"].attrs["units"] == ds["grid_elevation"].attrs["units"] == "m"
    assert np.issubdtype(ds["time"].dtype, np.datetime64)
    assert str(ds["time"].values[0])[:10] == "1895-01-01" and str(ds["time"].values[-1])[:10] == "1997-12-01"
    assert bool((ds["time"].dt.day == 1).all())
    assert float(ds["lon"].min()) >= -110 and float(ds["lon"].max()) <= -101
    assert float(ds["lat"].min()) >= 36 and float(ds["lat"].max()) <= 42
    assert float(ds["elevation"].min()) >= 800 and float(ds["elevation"].max()) <= 4500
    assert float(ds["tmin"].min()) > -40 and float(ds["tmax"].max()) < 45
    assert not bool((ds["tmax"] < ds["tmin"]).any())
    assert 0.3 < float(ds["tmax"].notnull().mean()) < 0.5  # NaN where a station did not report
    names = [str(n) for n in ds["station_name"].values]
    assert any(n.startswith("DENVER") for n in names) and all(n == n.strip() for n in names)
    for attr in ("source", "provider", "licence", "history"):
        assert ds.attrs[attr]
    # Denver's station elevation is about 1600 m and matches the grid (so the grid is in metres, not feet).
    denver = next(i for i, n in enumerate(names) if n.startswith("DENVER"))
    st = ds.isel(station=denver)
    assert 1550 < float(st["elevation"]) < 1650
    grid_at = ds["grid_elevation"].interp(grid_lat=ds["lat"], grid_lon=ds["lon"])
    assert float(np.nanmedian(np.abs(grid_at - ds["elevation"]))) < 100
    assert float(ds["grid_elevation"].min()) > 700 and 3800 < float(ds["grid_elevation"].max()) < 4400
    # Mountains are west: the grid rises from the eastern plains to the Rockies.
    assert float(ds["grid_elevation"].isel(grid_lon=slice(-20, None)).mean()) < 1300
    # July tmax: high stations are much cooler than plains stations (lapse rate about -6.7 K/km).
    july = ds["tmax"].where(ds["time"].dt.month == 7).mean("time")
    high, plains = ds["elevation"] > 2700, ds["elevation"] < 1700
    assert float(july.where(high).mean()) + 8 < float(july.where(plains).mean())
    ok = july.notnull()
    slope = np.polyfit(ds["elevation"].values[ok] / 1000, july.values[ok], 1)[0]
    assert -8 < slope < -5.5


def test_us_elevation() -> None:
    """Conterminous US elevation at 1/4 degree, ascending coordinates, NaN over the ocean."""
    ds = _open("us_elevation.nc")
    e = ds["elevation"]
    assert e.dims == ("lat", "lon") and e.attrs["units"] == "m" and e.dtype == np.float32
    assert np.all(np.diff(ds["lat"]) > 0) and np.all(np.diff(ds["lon"]) > 0)
    assert np.allclose(np.diff(ds["lat"]), 0.25) and np.allclose(np.diff(ds["lon"]), 0.25)
    assert float(ds["lat"].min()) > 24 and float(ds["lat"].max()) < 50
    assert float(ds["lon"].min()) > -125 and float(ds["lon"].max()) < -66
    assert -100 < float(e.min()) < 50 and 3000 < float(e.max()) < 4400
    assert np.isnan(float(e.sel(lat=35, lon=-70, method="nearest")))  # Atlantic
    assert np.isnan(float(e.sel(lat=26, lon=-90, method="nearest")))  # Gulf of Mexico
    assert 1400 < float(e.sel(lat=39.75, lon=-104.9, method="nearest")) < 1900  # Denver
    assert float(e.sel(lat=39.3, lon=-106.2, method="nearest")) > 2800  # Colorado Rockies
    assert float(e.sel(lat=38.5, lon=-98, method="nearest")) < 800  # Kansas


def test_global_elevation() -> None:
    """Global 5 arc-minute elevation, ascending coordinates, NaN and land=False over the ocean."""
    ds = _open("global_elevation.nc")
    e = ds["elevation"]
    assert e.dims == ("lat", "lon") == ds["land"].dims and e.attrs["units"] == "m"
    assert e.shape == (2160, 4320) and ds["land"].dtype == bool
    assert np.all(np.diff(ds["lat"]) > 0) and np.all(np.diff(ds["lon"]) > 0)
    assert -90 < float(ds["lat"].min()) < -89.9 and -180 < float(ds["lon"].min()) < -179.9
    assert bool((e.isnull() == ~ds["land"]).all())
    assert 0.25 < float(ds["land"].mean()) < 0.4
    assert float(e.min()) >= -450 and 6000 < float(e.max()) < 7000
    alps = e.sel(lat=slice(44, 48), lon=slice(5, 12))
    assert float(alps.max()) > 3000
    assert np.isnan(float(e.sel(lat=38, lon=5, method="nearest")))  # Mediterranean
    assert np.isnan(float(e.sel(lat=30, lon=-40, method="nearest")))  # Atlantic
    assert 1400 < float(e.sel(lat=39.74, lon=-104.99, method="nearest")) < 1900  # Denver
    assert float(e.sel(lat=33, lon=88, method="nearest")) > 4000  # Tibet


def test_hadcm3_north_america() -> None:
    """HadCM3 annual temperature in degC on ascending lat/lon in -180..180."""
    ds = _open("hadcm3_north_america.nc")
    t = ds["t2m"]
    assert t.dims == ("time", "lat", "lon") and t.shape == (240, 37, 49)
    assert t.attrs["units"] == "degC" and t.dtype == np.float32
    assert np.issubdtype(ds["time"].dtype, np.datetime64)
    years = ds["time"].dt.year.values
    assert years[0] == 1860 and years[-1] == 2099
    assert np.all(np.diff(ds["lat"]) > 0) and np.all(np.diff(ds["lon"]) > 0)
    assert float(ds["lat"].min()) == 15 and float(ds["lat"].max()) == 60
    assert float(ds["lon"].min()) == -135 and float(ds["lon"].max()) == -45
    assert float(t.min()) > -30 and float(t.max()) < 40  # degC, not K
    assert float(t.sel(lat=17.5, lon=-90, method="nearest").mean()) > float(
        t.sel(lat=57.5, lon=-100, method="nearest").mean()
    )
    warming = t.sel(time=slice("2070", "2099")).mean() - t.sel(time=slice("1860", "1889")).mean()
    assert 2 < float(warming) < 8
    assert "Open Government" in ds.attrs["licence"]


@pytest.mark.parametrize(("category", "name", "res"), SHAPEFILES)
def test_natural_earth_shapefile_reads(category: str, name: str, res: str) -> None:
    """Every shipped shapefile has its parts and is readable by cartopy's shapereader."""
    import cartopy.io.shapereader as shpreader

    base = NE_DIR / category / f"ne_{res}_{name}"
    for ext in (".shp", ".shx", ".dbf"):
        assert base.with_suffix(ext).is_file()
    reader = shpreader.Reader(base.with_suffix(".shp"))
    geoms = list(reader.geometries())
    assert len(geoms) > 0
    minx, miny, maxx, maxy = np.array([g.bounds for g in geoms]).T
    assert minx.min() >= -180.001 and maxx.max() <= 180.001 and miny.min() >= -90.001 and maxy.max() <= 90.001


def test_us_states_cover_conterminous_us() -> None:
    """The state lines built from R fields' US.dat span the conterminous US and include Colorado's border."""
    import cartopy.io.shapereader as shpreader

    reader = shpreader.Reader(NE_DIR / "cultural" / "ne_50m_admin_1_states_provinces_lakes.shp")
    records = list(reader.records())
    assert len(records) > 100 and all("name" in r.attributes for r in records)
    bounds = np.array([r.geometry.bounds for r in records])
    assert bounds[:, 0].min() < -124 and bounds[:, 2].max() > -68
    assert bounds[:, 1].min() < 26 and bounds[:, 3].max() > 49
    # Colorado's northern border runs along 41 N between -109.05 and -102.05.
    coords = np.concatenate(
        [np.asarray(ls.coords) for r in records for ls in getattr(r.geometry, "geoms", [r.geometry])]
    )
    on_41 = coords[(np.abs(coords[:, 1] - 41.0) < 0.05) & (coords[:, 0] > -109.2) & (coords[:, 0] < -101.9)]
    assert len(on_41) >= 2


@pytest.mark.parametrize(("category", "name", "res"), SHAPEFILES)
def test_cartopy_resolves_shipped_files_offline(
    no_network: None, category: str, name: str, res: str, tmp_path: Path
) -> None:
    """Cartopy's natural_earth() finds the shipped files via pre_existing_data_dir without the network."""
    import cartopy
    import cartopy.io.shapereader as shpreader

    old = dict(cartopy.config)
    try:
        cartopy.config["pre_existing_data_dir"] = str(NE_ROOT)
        cartopy.config["data_dir"] = str(tmp_path)
        path = shpreader.natural_earth(resolution=res, category=category, name=name)
    finally:
        cartopy.config.update(old)
    assert Path(path).resolve() == (NE_DIR / category / f"ne_{res}_{name}.shp").resolve()


@pytest.mark.parametrize("extent", [(-115, -101, 29, 43), (-125, -66, 24, 50), (-180, 180, -90, 90)])
def test_cartopy_features_offline(no_network: None, extent: tuple[float, ...], tmp_path: Path) -> None:
    """cfeature.BORDERS, STATES and COASTLINE (50m) yield geometries at every auto scale, offline."""
    import cartopy
    import cartopy.feature as cfeature

    old = dict(cartopy.config)
    try:
        cartopy.config["pre_existing_data_dir"] = str(NE_ROOT)
        cartopy.config["data_dir"] = str(tmp_path)
        for feature in (cfeature.BORDERS, cfeature.STATES):
            scale = feature.scaler.scale_from_extent(extent)
            assert len(list(feature.with_scale(scale).geometries())) > 0
        assert len(list(cfeature.COASTLINE.with_scale("50m").geometries())) > 0
    finally:
        cartopy.config.update(old)
