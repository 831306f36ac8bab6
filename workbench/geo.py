"""Geography helpers: where the shipped data live, offline cartopy, and lon/lat <-> model coordinates.

Importing this module never imports cartopy; :func:`configure_cartopy` does, and
``workbench.plot`` calls it on import so that no map ever reaches for the network.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Environment variable that points the workbench at another ``datasets/`` folder.
DATASETS_ENV = "AENP_DATASETS"

#: A region in degrees: (lon_min, lon_max, lat_min, lat_max).
Region = tuple[float, float, float, float]

#: Mean radius of the Earth over 360 degrees: km per degree of latitude.
KM_PER_DEGREE = 6371.0088 * math.pi / 180.0


def datasets_dir() -> Path:
    """The ``datasets/`` folder: ``$AENP_DATASETS`` if set, else the repository checkout's ``datasets/``."""
    env = os.environ.get(DATASETS_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"{DATASETS_ENV}={env!r} is not a folder; point it at the datasets/ folder"
            )
        return path
    path = Path(__file__).resolve().parent.parent / "datasets"
    if not path.is_dir():
        raise FileNotFoundError(
            f"the shipped data folder {path} does not exist (is this a repository checkout?); "
            f"set {DATASETS_ENV} to the datasets/ folder"
        )
    return path


def dataset_file(name: str) -> Path:
    """Path of one shipped file under ``datasets/``, with an error naming it when missing."""
    path = datasets_dir() / name
    if not path.exists():
        raise FileNotFoundError(f"shipped data file {path} is missing; see datasets/README.md to rebuild it")
    return path


_OFFLINE_DATA_DIR: str | None = None


def configure_cartopy() -> None:
    """Point cartopy at the shipped Natural Earth files and an empty download folder: maps stay offline.

    ``pre_existing_data_dir`` is searched first, so the shipped shapefiles are used; ``data_dir`` (where
    cartopy would download to, and look second) is a per-process path in the temporary folder that is
    not created: nothing stale or user-specific is picked up, and no empty folder is left behind in
    every process that plots. Should cartopy ever create it, it is removed at exit. Idempotent.
    """
    global _OFFLINE_DATA_DIR
    import cartopy

    cartopy.config["pre_existing_data_dir"] = str(datasets_dir() / "natural_earth")
    if _OFFLINE_DATA_DIR is None:
        _OFFLINE_DATA_DIR = os.path.join(
            tempfile.gettempdir(), f"aenp-cartopy-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        atexit.register(shutil.rmtree, _OFFLINE_DATA_DIR, ignore_errors=True)
    cartopy.config["data_dir"] = _OFFLINE_DATA_DIR


@dataclass(frozen=True)
class Coords:
    """Lon/lat <-> model coordinates and physical values <-> model outputs, for one dataset.

    Model inputs are a local equirectangular projection around ``(lon_centre, lat_centre)``:
    ``x = (lon - lon_centre) * cos(lat_centre) / scale_deg``, ``y = (lat - lat_centre) / scale_deg``,
    so one model unit is ``scale_deg`` degrees of latitude (``scale_deg * 111.2`` km) in both
    directions and distances are roughly isotropic near the centre. With ``planar`` the source
    coordinates are already planar (``x``/``y``): no cosine factor. Model outputs are
    ``(value - y_mean) / y_std`` (``y_mean``, ``y_std`` from training data), in ``units`` back out.
    """

    lon_centre: float
    lat_centre: float
    scale_deg: float
    y_mean: float = 0.0
    y_std: float = 1.0
    units: str = "degC"
    planar: bool = False

    def __post_init__(self) -> None:
        if not self.scale_deg > 0:
            raise ValueError(f"Coords.scale_deg = {self.scale_deg!r} must be positive")
        if not self.y_std > 0:
            raise ValueError(f"Coords.y_std = {self.y_std!r} must be positive")

    @classmethod
    def for_region(cls, region: Region, span: float = 3.0, **kwargs: Any) -> Coords:
        """Coordinates centred on ``region`` whose longer side spans ``[-span, span]`` model units."""
        lon0, lon1, lat0, lat1 = (float(v) for v in region)
        lat_c = (lat0 + lat1) / 2
        cos = 1.0 if kwargs.get("planar") else math.cos(math.radians(lat_c))
        extent = max((lon1 - lon0) * cos, lat1 - lat0)
        if not extent > 0:
            raise ValueError(f"region {region} has no extent; give (lon_min, lon_max, lat_min, lat_max)")
        return cls((lon0 + lon1) / 2, lat_c, extent / (2 * span), **kwargs)

    @property
    def cos_lat(self) -> float:
        """Cosine of the centre latitude (1 for planar coordinates)."""
        return 1.0 if self.planar else math.cos(math.radians(self.lat_centre))

    @property
    def km_per_unit(self) -> float:
        """Kilometres per model unit (meaningless for planar coordinates)."""
        return self.scale_deg * KM_PER_DEGREE

    def to_model(self, lon: Any, lat: Any) -> np.ndarray:
        """Model inputs ``[..., 2]`` (float64) of points given in degrees."""
        lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        x = (lon - self.lon_centre) * self.cos_lat / self.scale_deg
        y = (lat - self.lat_centre) / self.scale_deg
        return np.stack(np.broadcast_arrays(x, y), axis=-1)

    def to_lonlat(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`to_model`: ``x [..., 2]`` -> (lon, lat) in degrees."""
        x = np.asarray(x, dtype=np.float64)
        lon = x[..., 0] * self.scale_deg / self.cos_lat + self.lon_centre
        lat = x[..., 1] * self.scale_deg + self.lat_centre
        return lon, lat

    def box(self, region: Region) -> tuple[tuple[float, float], tuple[float, float]]:
        """The model-coordinate box ``((x0, x1), (y0, y1))`` of a lon/lat region."""
        lon0, lon1, lat0, lat1 = region
        (x0, y0), (x1, y1) = self.to_model([lon0, lon1], [lat0, lat1])
        return ((float(x0), float(x1)), (float(y0), float(y1)))

    def region(self, box: Sequence[Sequence[float]]) -> Region:
        """The lon/lat region of a model-coordinate box (inverse of :meth:`box`)."""
        (x0, x1), (y0, y1) = box
        lon, lat = self.to_lonlat([[x0, y0], [x1, y1]])
        return (float(lon[0]), float(lon[1]), float(lat[0]), float(lat[1]))

    def normalise(self, value: Any) -> np.ndarray:
        """Physical values -> model outputs."""
        return (np.asarray(value, dtype=np.float64) - self.y_mean) / self.y_std

    def denormalise(self, y: Any) -> np.ndarray:
        """Model outputs (means) -> physical values."""
        return np.asarray(y, dtype=np.float64) * self.y_std + self.y_mean

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Coords:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)
