"""Build datasets/global_elevation.nc from pvlib's 5 arc-minute altitude map (pvlib/data/Altitude.h5)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import h5py
import numpy as np
import xarray as xr
from _inputs import DATASETS_DIR, history, wheel_file

OUT = DATASETS_DIR / "global_elevation.nc"
NODATA = 255  # code for ocean / no data in Altitude.h5
FILL = np.int16(-32768)


def build(h5: Path, provenance: str) -> xr.Dataset:
    """Decode the uint8 codes (height = v * 28 - 450 m) and flip to ascending latitude."""
    with h5py.File(h5, "r") as f:
        code = f["Altitude"][...]
    assert code.shape == (2160, 4320) and code.dtype == np.uint8
    code = code[::-1]  # row 0 of the source is the northernmost row (90 N edge): make latitude ascending
    land = code != NODATA
    height = np.where(land, code.astype(np.int16) * 28 - 450, FILL).astype(np.int16)
    n_lat, n_lon = code.shape
    lat = -90 + (np.arange(n_lat) + 0.5) * 180 / n_lat
    lon = -180 + (np.arange(n_lon) + 0.5) * 360 / n_lon
    return xr.Dataset(
        data_vars={
            "elevation": (
                ("lat", "lon"),
                height,
                {
                    "units": "m",
                    "standard_name": "surface_altitude",
                    "long_name": "surface elevation above sea level (28 m steps), NaN over ocean",
                },
            ),
            "land": (
                ("lat", "lon"),
                land,
                {
                    "long_name": "True where the source has an elevation (land), False over ocean / no data",
                },
            ),
        },
        coords={
            "lat": (
                "lat",
                lat,
                {
                    "units": "degrees_north",
                    "standard_name": "latitude",
                    "long_name": "latitude of cell centre",
                },
            ),
            "lon": (
                "lon",
                lon,
                {
                    "units": "degrees_east",
                    "standard_name": "longitude",
                    "long_name": "longitude of cell centre",
                },
            ),
        },
        attrs={
            "title": "Global surface elevation at 5 arc-minutes (pvlib altitude map)",
            "Conventions": "CF-1.8",
            "source": "pvlib/data/Altitude.h5 (2160 x 4320 uint8, height = v * 28 - 450 m, "
            "255 = ocean/no data, row 0 at 90 N, column 0 at 180 W), decoded and flipped "
            "to ascending latitude",
            "provider": "Mapzen terrain tiles (joerd: SRTM, GMTED2010, ETOPO1, 3DEP, EU-DEM, ArcticDEM and "
            "national DEMs; see pvlib.location.lookup_altitude), aggregated and shipped by pvlib",
            "licence": "BSD-3-Clause (pvlib); terrain data attributions as listed in "
            "pvlib.location.lookup_altitude (USGS, NOAA, Copernicus EU-DEM, ...)",
            "history": history("python datasets/build_global_elevation.py", provenance),
            "comment": "Stored as int16 metres with _FillValue -32768 (decoded to NaN by xarray). "
            "Greenland's interior is at bedrock height (near sea level), Antarctica at ice "
            "surface height; large lakes and inland seas (Caspian) are no data.",
        },
    )


def main() -> None:
    """Parse arguments, build and write the NetCDF file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, help="pvlib wheel or a dir holding Altitude.h5")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        h5, provenance = wheel_file("pvlib", "pvlib/data/Altitude.h5", Path(tmp), args.source)
        ds = build(h5, provenance)
        enc = {
            "elevation": {
                "dtype": "int16",
                "_FillValue": FILL,
                "zlib": True,
                "complevel": 9,
                "shuffle": True,
                "chunksizes": (360, 720),
            },
            "land": {"zlib": True, "complevel": 9, "chunksizes": (360, 720)},
        }
        ds.to_netcdf(args.out, engine="netcdf4", format="NETCDF4", encoding=enc)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
