"""Build datasets/hadcm3_north_america.nc from iris-sample-data's A1B_north_america.nc (HadCM3)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from _inputs import DATASETS_DIR, float_encoding, history, wheel_file

OUT = DATASETS_DIR / "hadcm3_north_america.nc"
SOURCE_FILE = "A1B_north_america.nc"


def _standard_dates(times: np.ndarray) -> pd.DatetimeIndex:
    """Map 360-day-calendar cftime dates to the same year-month-day in the standard calendar."""
    return pd.DatetimeIndex([pd.Timestamp(t.year, t.month, t.day) for t in times])


def build(nc: Path, provenance: str) -> xr.Dataset:
    """Select air temperature, convert to degC, rename coordinates and wrap longitude to -180..180."""
    src = xr.open_dataset(nc, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    t = src["air_temperature"]
    assert t.attrs["units"] == "K" and t.dims == ("time", "latitude", "longitude")
    years = np.array([d.year for d in src["time"].values])
    assert years[0] == 1860 and years[-1] == 2099 and np.all(np.diff(years) == 1)
    lon = ((src["longitude"].values.astype(np.float64) + 180) % 360) - 180
    lat = src["latitude"].values.astype(np.float64)
    data = (t.values.astype(np.float64) - 273.15).astype(np.float32)
    if not np.all(np.diff(lat) > 0):
        order = np.argsort(lat)
        lat, data = lat[order], data[:, order]
    order = np.argsort(lon)
    lon, data = lon[order], data[:, :, order]
    bounds = np.stack([_standard_dates(src["time_bnds"].values[:, k]) for k in (0, 1)], axis=1)
    time = _standard_dates(src["time"].values)
    height = float(src["height"].values)
    src.close()
    return xr.Dataset(
        data_vars={
            "t2m": (
                ("time", "lat", "lon"),
                data,
                {
                    "units": "degC",
                    "standard_name": "air_temperature",
                    "long_name": f"annual mean near-surface ({height:g} m) air temperature, HadCM3 SRES A1B",
                    "cell_methods": "time: mean (interval: 6 hour)",
                },
            ),
            "time_bnds": (("time", "bnds"), bounds),
        },
        coords={
            "time": (
                "time",
                time,
                {
                    "standard_name": "time",
                    "bounds": "time_bnds",
                    "long_name": "middle of the model year (December to November)",
                },
            ),
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
            "height": ((), height, {"units": "m", "standard_name": "height", "positive": "up"}),
        },
        attrs={
            "title": "HadCM3 annual mean surface air temperature over North America, 1860-2099, SRES A1B",
            "Conventions": "CF-1.8",
            "source": f"iris-sample-data {SOURCE_FILE} (Met Office Unified Model 6.05, HadCM3; "
            "STASH m01s03i236), read with xarray",
            "provider": "Met Office Hadley Centre, via the SciTools iris-sample-data package",
            "licence": "UK Open Government Licence v3 (Crown copyright, Met Office)",
            "history": history("python datasets/build_hadcm3.py", provenance),
            "comment": "Converted from K to degC. The model uses a 360-day calendar; its dates (Y-06-01, "
            "bounds (Y-1)-12-01 to Y-12-01) are kept as the same dates in the standard calendar. "
            "Longitude wrapped from 225..315 E to -135..-45.",
        },
    )


def main() -> None:
    """Parse arguments, build and write the NetCDF file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, help=f"iris-sample-data wheel or a dir holding {SOURCE_FILE}")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        nc, provenance = wheel_file(
            "iris-sample-data", f"iris_sample_data/sample_data/{SOURCE_FILE}", Path(tmp), args.source
        )
        ds = build(nc, provenance)
        enc = float_encoding(["t2m"], level=9)
        enc["t2m"]["least_significant_digit"] = 3  # 0.001 degC: far below model meaning, halves the size
        enc["time"] = {"units": "days since 1860-01-01", "calendar": "standard", "dtype": "int32"}
        enc["time_bnds"] = {"units": "days since 1860-01-01", "calendar": "standard", "dtype": "int32"}
        ds.to_netcdf(args.out, engine="netcdf4", format="NETCDF4", encoding=enc)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
