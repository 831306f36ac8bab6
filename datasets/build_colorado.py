"""Build datasets/colorado_temperature.nc from COmonthlyMet.rda of R fields (Debian r-cran-fields)."""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import rdata
import xarray as xr
from _inputs import DATASETS_DIR, fields_file, float_encoding, history

OUT = DATASETS_DIR / "colorado_temperature.nc"


def build(rda: Path, provenance: str) -> xr.Dataset:
    """Convert the R objects CO.* into one CF-style xarray Dataset."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Unknown encoding. Assumed ASCII."
        r = rdata.read_rda(str(rda))
    years = np.asarray(r["CO.years"], dtype=int)
    n_year, n_month, n_station = np.shape(r["CO.tmax"])  # R arrays are (Year, Month, Station)
    assert (n_month, n_station) == (12, 376) and len(years) == n_year
    time = pd.date_range(f"{years[0]}-01-01", periods=n_year * 12, freq="MS")
    loc = r["CO.loc"]
    grid = r["CO.elevGrid"]  # R image object: z[i, j] at (x[i], y[j]), x = lon, y = lat
    gx, gy, gz = (np.asarray(grid[k], dtype=float) for k in ("x", "y", "z"))
    assert gz.shape == (gx.size, gy.size) and np.all(np.diff(gx) > 0) and np.all(np.diff(gy) > 0)

    def monthly(name: str) -> np.ndarray:
        """Reshape a (Year, Month, Station) array into (time, station)."""
        return np.asarray(r[name], dtype=np.float32).reshape(n_year * 12, n_station)

    station_attrs = {"long_name": "station index (0-based, order of the R data)"}
    ds = xr.Dataset(
        data_vars={
            "tmax": (
                ("time", "station"),
                monthly("CO.tmax"),
                {
                    "units": "degC",
                    "standard_name": "air_temperature",
                    "long_name": "monthly mean of daily maximum near-surface air temperature",
                    "cell_methods": "time: maximum within days time: mean over days",
                },
            ),
            "tmin": (
                ("time", "station"),
                monthly("CO.tmin"),
                {
                    "units": "degC",
                    "standard_name": "air_temperature",
                    "long_name": "monthly mean of daily minimum near-surface air temperature",
                    "cell_methods": "time: minimum within days time: mean over days",
                },
            ),
            "grid_elevation": (
                ("grid_lat", "grid_lon"),
                gz.T.astype(np.float32),
                {
                    "units": "m",
                    "standard_name": "surface_altitude",
                    "long_name": "elevation above sea level on a 1/24 degree (~4 km) grid (PRISM)",
                },
            ),
        },
        coords={
            "time": ("time", time, {"standard_name": "time", "long_name": "first day of the month"}),
            "station": ("station", np.arange(n_station, dtype=np.int32), station_attrs),
            "lon": (
                "station",
                np.asarray(loc["lon"], dtype=np.float32),
                {"units": "degrees_east", "standard_name": "longitude", "long_name": "station longitude"},
            ),
            "lat": (
                "station",
                np.asarray(loc["lat"], dtype=np.float32),
                {"units": "degrees_north", "standard_name": "latitude", "long_name": "station latitude"},
            ),
            "elevation": (
                "station",
                np.asarray(r["CO.elev"], dtype=np.float32),
                {
                    "units": "m",
                    "standard_name": "height_above_mean_sea_level",
                    "long_name": "station elevation",
                },
            ),
            "station_name": (
                "station",
                np.array([str(s).strip() for s in r["CO.names"]], dtype=object),
                {"long_name": "station name (truncated to 12 characters in the source)"},
            ),
            "station_id": (
                "station",
                np.array([str(s) for s in r["CO.id"]], dtype=object),
                {"long_name": "US Cooperative Observer Network station id"},
            ),
            "grid_lat": (
                "grid_lat",
                gy.round(6),
                {
                    "units": "degrees_north",
                    "standard_name": "latitude",
                    "long_name": "latitude of elevation grid point",
                },
            ),
            "grid_lon": (
                "grid_lon",
                gx.round(6),
                {
                    "units": "degrees_east",
                    "standard_name": "longitude",
                    "long_name": "longitude of elevation grid point",
                },
            ),
        },
        attrs={
            "title": "Colorado monthly station temperatures 1895-1997 and a 4 km elevation grid",
            "Conventions": "CF-1.8",
            "source": "R package fields 'COmonthlyMet' data sets (CO.tmax, CO.tmin, CO.elev, CO.loc, "
            "CO.names, CO.id, CO.elevGrid); station subset of the NCAR US monthly meteorological "
            "record 1895-1997 over [-109.5, -101] x [36.5, 41.5]",
            "provider": "NOAA/NCAR station records (US Cooperative Observer Network, NCAR Geophysical "
            "Statistics Project), elevation grid from PRISM (Oregon State University), "
            "via the R package fields (D. Nychka et al.)",
            "licence": "GPL-2+ (as distributed in the R package fields)",
            "history": history("python datasets/build_colorado.py", provenance),
            "comment": "tmax/tmin are NaN where the station did not report. Station elevations are "
            "in metres; the grid values are metres converted from whole feet.",
        },
    )
    return ds


def main() -> None:
    """Parse arguments, build and write the NetCDF file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, help="r-cran-fields .deb or a dir holding COmonthlyMet.rda")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rda, provenance = fields_file("COmonthlyMet.rda", Path(tmp), args.source)
        ds = build(rda, provenance)
        enc = float_encoding(["tmax", "tmin", "grid_elevation", "lon", "lat", "elevation"])
        enc["time"] = {"units": "days since 1895-01-01", "calendar": "standard", "dtype": "int32"}
        ds.to_netcdf(args.out, engine="netcdf4", format="NETCDF4", encoding=enc)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
