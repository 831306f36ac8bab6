"""Build datasets/us_elevation.nc: PRISM elevation of the conterminous US (R fields), block-averaged."""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import rdata
import xarray as xr
from _inputs import DATASETS_DIR, fields_file, float_encoding, history

OUT = DATASETS_DIR / "us_elevation.nc"
FACTOR = 6  # 6 x 1/24 degree = 1/4 degree
MIN_VALID = 0.5  # a coarse cell needs at least half of its fine cells on land


def block_mean(z: np.ndarray, factor: int, min_valid: float) -> np.ndarray:
    """Mean over factor x factor blocks ignoring NaN; NaN where under min_valid of the cells are valid."""
    ny, nx = (s // factor for s in z.shape)
    blocks = z[: ny * factor, : nx * factor].reshape(ny, factor, nx, factor)
    valid = np.isfinite(blocks)
    count = valid.sum(axis=(1, 3))
    total = np.where(valid, blocks, 0.0).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return np.where(count >= min_valid * factor * factor, mean, np.nan)


def block_coord(c: np.ndarray, factor: int) -> np.ndarray:
    """Mean coordinate of each block (trailing remainder dropped), on an exact 1/24 * factor degree step."""
    n = c.size // factor
    first = c[:factor].mean().round(6)
    return first + np.arange(n) * factor / 24


def build(rda: Path, provenance: str, factor: int = FACTOR) -> xr.Dataset:
    """Read PRISMelevation, mark ocean and no data as NaN, and block-average to 1/4 degree."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        obj = rdata.read_rda(str(rda))["PRISMelevation"]
    x, y, z = (np.asarray(obj[k], dtype=float) for k in ("x", "y", "z"))  # z[i, j] at (x[i], y[j])
    assert z.shape == (x.size, y.size) and np.all(np.diff(x) > 0) and np.all(np.diff(y) > 0)
    z = z.T.copy()  # -> (lat, lon)
    # The source stores ocean as exactly 0 and land outside the US (Canada, Mexico) as NA.
    z[z == 0.0] = np.nan
    elev = block_mean(z, factor, MIN_VALID).astype(np.float32)
    assert np.allclose(np.diff(x), 1 / 24, atol=1e-6) and np.allclose(np.diff(y), 1 / 24, atol=1e-6)
    lat = block_coord(y, factor)
    lon = block_coord(x, factor)
    step = factor / 24
    return xr.Dataset(
        data_vars={
            "elevation": (
                ("lat", "lon"),
                elev,
                {
                    "units": "m",
                    "standard_name": "surface_altitude",
                    "long_name": f"mean surface elevation of {step:g} degree cells (PRISM, conterminous US)",
                    "cell_methods": f"area: mean (block mean of {factor} x {factor} cells of 1/24 degree, "
                    f"NaN where less than {MIN_VALID:.0%} of them are land)",
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
            "title": f"Conterminous US elevation (PRISM) at {step:g} degree",
            "Conventions": "CF-1.8",
            "source": "R package fields 'PRISMelevation' (1405 x 621 grid, 1/24 degree, metres), "
            f"block-averaged by {factor} x {factor}",
            "provider": "PRISM Climate Group (C. Daly, Oregon State University), with the NCAR Geophysical "
            "Statistics Project, via the R package fields (D. Nychka et al.)",
            "licence": "GPL-2+ (as distributed in the R package fields)",
            "history": history("python datasets/build_us_terrain.py", provenance),
            "comment": "NaN over ocean (stored as 0 in the source), outside the US (NA in the source) and "
            "in coastal cells that are mostly water. Source values are whole feet converted to "
            "metres.",
        },
    )


def main() -> None:
    """Parse arguments, build and write the NetCDF file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, help="r-cran-fields .deb or a dir holding PRISMelevation.rda")
    parser.add_argument("--factor", type=int, default=FACTOR, help="block size in 1/24 degree cells")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rda, provenance = fields_file("PRISMelevation.rda", Path(tmp), args.source)
        ds = build(rda, provenance, args.factor)
        ds.to_netcdf(args.out, engine="netcdf4", format="NETCDF4", encoding=float_encoding(["elevation"]))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
