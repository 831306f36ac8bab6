"""Coastlines, country and state borders from the shipped Natural Earth shapefiles, as plotly line data.

Plotly's own geo maps fetch their outlines from a CDN (blank offline), so the map draws borders as
ordinary ``go.Scatter`` lines on lon/lat axes. Lines are read once per region and cached.
"""

from __future__ import annotations

import functools

import numpy as np
import shapefile  # pyshp, a cartopy dependency

from workbench.geo import Region, datasets_dir

#: Layer name -> shapefile under ``datasets/natural_earth/shapefiles/natural_earth/``.
LAYERS: dict[str, str] = {
    "coastline": "physical/ne_50m_coastline",
    "countries": "cultural/ne_50m_admin_0_boundary_lines_land",
    "states": "cultural/ne_50m_admin_1_states_provinces_lakes",
}


def _runs(points: np.ndarray, keep: np.ndarray) -> list[np.ndarray]:
    """Pieces of a polyline where ``keep`` holds, each widened by one point so lines reach the edge."""
    out = []
    idx = np.flatnonzero(keep)
    if not len(idx):
        return out
    breaks = np.flatnonzero(np.diff(idx) > 1)
    for run in np.split(idx, breaks + 1):
        lo, hi = max(run[0] - 1, 0), min(run[-1] + 2, len(points))
        if hi - lo >= 2:
            out.append(points[lo:hi])
    return out


@functools.lru_cache(maxsize=32)
def border_lines(region: Region, layer: str = "states", margin: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Lon and lat of one layer's lines inside ``region`` (+ margin), NaN-separated for one Scatter trace."""
    if layer not in LAYERS:
        raise ValueError(f"layer = {layer!r} is not valid; choose one of: {', '.join(LAYERS)}")
    lon0, lon1, lat0, lat1 = region
    bbox = (lon0 - margin, lat0 - margin, lon1 + margin, lat1 + margin)
    path = datasets_dir() / "natural_earth" / "shapefiles" / "natural_earth" / LAYERS[layer]
    pieces: list[np.ndarray] = []
    with shapefile.Reader(str(path)) as reader:
        for shape in reader.iterShapes(bbox=bbox):
            pts = np.asarray(shape.points, dtype=np.float64)
            if not len(pts):
                continue
            starts = list(shape.parts) + [len(pts)]
            for a, b in zip(starts[:-1], starts[1:], strict=True):
                part = pts[a:b]
                keep = (
                    (part[:, 0] >= bbox[0])
                    & (part[:, 0] <= bbox[2])
                    & (part[:, 1] >= bbox[1])
                    & (part[:, 1] <= bbox[3])
                )
                pieces.extend(_runs(part, keep))
    if not pieces:
        return np.empty(0), np.empty(0)
    # NaN between pieces: plotly breaks the line there (connectgaps is off by default).
    gap = np.full((1, 2), np.nan)
    joined = np.concatenate([x for p in pieces for x in (p, gap)])[:-1]
    return joined[:, 0], joined[:, 1]
