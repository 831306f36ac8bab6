"""Every dataset name: the menu with one line each, parsing, checking, and making (cached) samplers.

What ``Experiment.dataset`` accepts: a name of :data:`DATASETS`; ``era5:PATH`` (a user's ERA5
NetCDF, ``t2m`` on ``latitude``/``longitude``/``time``); ``terrain:REGION`` (see
:mod:`workbench.data.terrain`); an ``xarray.DataArray`` / ``Dataset`` or a path to a ``.nc`` file (a
gridded field of your own, :mod:`workbench.data.fields`). The symmetry-breaking worlds take their
breaking strength in the name: ``NAME:STRENGTH`` (e.g. ``mountain-1d:0.5``; a number >= 0,
0 = stationary, 1 = the default, the same as plain ``NAME``).

To add a dataset: write its sampler (a :class:`workbench.data.base.Sampler`) in a module of its
kind, then give it a line in :data:`DATASETS` and a branch in :func:`_build` (GP worlds: a
:data:`GP_DATASETS` entry and ``workbench.data.gp.SAMPLERS``).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Nothing heavy at import: the CLI's --help lists DATASETS without loading torch or xarray.
if TYPE_CHECKING:
    from workbench.data.base import GeoSampler, Sampler

#: What ``Experiment.dataset`` accepts besides the registered names.
DATASET_FORMS = (
    "era5:PATH",
    "terrain:REGION (alps, rockies, himalaya, LON0,LON1,LAT0,LAT1 or TRAIN->TEST)",
    "an xarray.DataArray",
    "a path to a .nc file",
)

#: Datasets whose name may carry a breaking strength, ``NAME:STRENGTH``.
STRENGTH_DATASETS = ("mountain-1d", "noise-1d", "mountain-2d", "noise-2d")


def parse_strength(name: str) -> tuple[str, float | None]:
    """Split ``NAME:STRENGTH`` into the base name and the strength (``None`` without one).

    Raises ``ValueError`` naming the bad value and the valid form when ``NAME`` takes a strength
    and ``STRENGTH`` is not a finite number >= 0. Other names come back unchanged.
    """
    base, sep, value = name.partition(":")
    if not sep or base not in STRENGTH_DATASETS:
        return name, None
    try:
        strength = float(value)
    except ValueError:
        strength = math.nan
    if not math.isfinite(strength) or strength < 0:
        raise ValueError(
            f"dataset {name!r}: strength {value!r} is not a finite number >= 0; write NAME:STRENGTH "
            f"with NAME one of {', '.join(STRENGTH_DATASETS)} (e.g. '{base}:0.5'; 0 = stationary, "
            "1 = the default)"
        )
    return base, strength


class _Datasets(dict):
    """``name -> (dim, description)`` that also answers for ``NAME:STRENGTH`` forms of its worlds.

    Iteration lists the plain names only (what a menu shows); ``in``, ``[]`` and ``get`` accept a
    strength suffix, and ``in`` raises the parser's ``ValueError`` for a malformed one, so
    ``Experiment(dataset=...)`` reports it.
    """

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str) and not dict.__contains__(self, name):
            name = parse_strength(name)[0]
        return dict.__contains__(self, name)

    def __getitem__(self, name: str) -> tuple[int, str]:
        if isinstance(name, str) and not dict.__contains__(self, name):
            name = parse_strength(name)[0]
        return dict.__getitem__(self, name)

    def get(self, name: Any, default: Any = None) -> Any:
        """The entry of ``name`` (strength suffix allowed) or ``default``."""
        try:
            return self[name]
        except (KeyError, ValueError):
            return default


#: name -> (input dimension, one-line description)
DATASETS: dict[str, tuple[int, str]] = _Datasets(
    {
        "gp-eq-1d": (1, "1-D GP, stationary EQ kernel (equivariance is right); exact oracle"),
        "gibbs-1d": (
            1,
            "1-D GP, the paper's Gibbs mixture: length scale jumps at a changepoint; exact BMA oracle",
        ),
        "mountain-1d": (
            1,
            "1-D EQ GP + fixed mountains and valleys beyond the context (NAME:STRENGTH); exact oracle",
        ),
        "noise-1d": (
            1,
            "1-D EQ GP seen through calm (sd 0.02) and noisy (0.6) bands (NAME:STRENGTH); exact oracle",
        ),
        "gp-2d": (2, "2-D GP, isotropic EQ kernel; exact oracle"),
        "gp-2d-anisotropic": (2, "2-D GP whose length scale and direction depend on position; exact oracle"),
        "mountain-2d": (
            2,
            "2-D EQ GP + a fixed ring of mountains and valleys around the context (NAME:STRENGTH)",
        ),
        "noise-2d": (
            2,
            "2-D EQ GP seen through a checkerboard of calm and noisy squares (NAME:STRENGTH)",
        ),
        "colorado-temperature": (
            2,
            "Colorado stations, monthly tmax 1895-1997, a task per month; test 1989-97",
        ),
        "us-terrain": (2, "random weather + lapse rate x US elevation; train west of -98 E, test east (OOD)"),
        "terrain:alps->rockies": (2, "the same on global elevation: train on the Alps, test on the Rockies"),
        "hadcm3-north-america": (2, "HadCM3 annual temperature 1860-2099, one year per task; test 2050-2099"),
    }
)

#: Datasets whose samplers live in workbench.data.gp (the rest are geographic: see :func:`_build`).
GP_DATASETS = (
    "gp-eq-1d",
    "gibbs-1d",
    "gp-2d",
    "gp-2d-anisotropic",
    "mountain-1d",
    "noise-1d",
    "mountain-2d",
    "noise-2d",
)


def make_dataset(name: Any, **kwargs: Any) -> Sampler:
    """The task sampler for ``name``: a key of :data:`DATASETS` (``NAME:STRENGTH`` for the worlds of
    :data:`STRENGTH_DATASETS`), ``era5:PATH``, ``terrain:REGION``, an ``xarray.DataArray`` or a path
    to a ``.nc`` file (see :mod:`workbench.data.fields`). Without ``kwargs`` geographic samplers are
    cached (see :func:`make_geo_dataset`)."""
    if isinstance(name, str):
        base, strength = parse_strength(name)
        if base in GP_DATASETS:
            from workbench.data.gp import make_sampler

            if strength is not None:
                kwargs = {"strength": strength, **kwargs}
            return make_sampler(base, **kwargs)
    return make_geo_dataset(name, **kwargs)


# --------------------------------------------------------------------------------------------------
# Geographic dataset values: checking, building, caching
# --------------------------------------------------------------------------------------------------


def _invalid(value: Any, reason: str, what: str) -> ValueError:
    from workbench.data.base import describe

    why = f": {reason}" if reason else ""
    choices = ", ".join([*DATASETS, *DATASET_FORMS])
    return ValueError(f"{what} = {describe(value)} is not valid{why}; choose one of: {choices}")


def check_dataset(value: Any, what: str = "Experiment.dataset") -> int:
    """Input dimension of a valid ``Experiment.dataset`` value, or a ``ValueError`` naming what is wrong.

    Files are opened lazily (headers only for NetCDF), so checking is cheap.
    """
    import xarray as xr

    from workbench.data.fields import as_field, read_era5

    if isinstance(value, str):
        if value in DATASETS:
            return DATASETS[value][0]
        try:
            if value.startswith("era5:"):
                path = Path(value[5:]).expanduser()
                if not path.is_file():
                    raise ValueError(f"ERA5 file {value[5:]!r} does not exist")
                read_era5(path)
                return 2
            if value.startswith("terrain:"):
                from workbench.data.terrain import check_terrain

                check_terrain(value)
                return 2
            if value.endswith(".nc") or Path(value).expanduser().is_file():
                as_field(value)
                return 2
        except (ValueError, FileNotFoundError, TypeError) as err:
            raise _invalid(value, str(err), what) from None
        raise _invalid(value, "", what)
    if isinstance(value, (xr.DataArray, xr.Dataset)):
        try:
            as_field(value)
        except (ValueError, TypeError) as err:
            raise _invalid(value, str(err), what) from None
        return 2
    raise _invalid(value, "", what)


_USER_CACHE: dict[int, tuple[Any, GeoSampler]] = {}


@functools.lru_cache(maxsize=16)
def _named(name: str) -> GeoSampler:
    return _build(name)


def _build(name: str, **kwargs: Any) -> GeoSampler:
    from workbench.data.fields import FieldSampler, HadCM3Sampler, as_field, read_era5

    if name == "colorado-temperature":
        from workbench.data.stations import ColoradoSampler

        return ColoradoSampler(**kwargs)
    if name == "hadcm3-north-america":
        return HadCM3Sampler(**kwargs)
    if name == "us-terrain":
        from workbench.data.terrain import us_terrain

        return us_terrain(**kwargs)
    if name.startswith("terrain:"):
        from workbench.data.terrain import terrain

        return terrain(name, **kwargs)
    if name.startswith("era5:"):
        field, elevation = read_era5(name[5:])
        return FieldSampler(field, name=name, elevation=elevation, **kwargs)
    field, elevation, planar = as_field(name)
    return FieldSampler(field, name=name, elevation=elevation, planar=planar, **kwargs)


def make_geo_dataset(dataset: Any, **kwargs: Any) -> GeoSampler:
    """The sampler of a geographic dataset value (name, ``era5:``/``terrain:`` spec, field or path).

    Without ``kwargs`` samplers are cached (files are read once per process, and again only when
    they change), so rebuilding one from a run's experiment for a map is cheap.
    """
    from workbench.data.fields import FieldSampler, as_field

    check_dataset(dataset, what="dataset")
    if isinstance(dataset, str):
        path = _file_of(dataset)
        if kwargs:
            return _build(dataset, **kwargs)
        if path is None:
            return _named(dataset)
        # Key on the modification time too, so an edited file is read again.
        return _named_file(dataset, str(path), path.stat().st_mtime)
    if kwargs:
        field, elevation, planar = as_field(dataset)
        return FieldSampler(field, name=_field_name(dataset), elevation=elevation, planar=planar, **kwargs)
    # In-memory fields are cached by identity (a few at most), since they cannot be hashed.
    hit = _USER_CACHE.get(id(dataset))
    if hit is not None and hit[0] is dataset:
        return hit[1]
    field, elevation, planar = as_field(dataset)
    sampler = FieldSampler(field, name=_field_name(dataset), elevation=elevation, planar=planar)
    if len(_USER_CACHE) >= 4:
        _USER_CACHE.pop(next(iter(_USER_CACHE)))
    _USER_CACHE[id(dataset)] = (dataset, sampler)
    return sampler


def _file_of(name: str) -> Path | None:
    """The file behind an ``era5:PATH`` or path dataset name, ``None`` for the other names."""
    if name in DATASETS or name.startswith("terrain:"):
        return None
    return Path(name[5:] if name.startswith("era5:") else name).expanduser().resolve()


@functools.lru_cache(maxsize=8)
def _named_file(name: str, path: str, mtime: float) -> GeoSampler:
    return _build(name)


def _field_name(obj: Any) -> str:
    import xarray as xr

    if isinstance(obj, xr.DataArray) and obj.name is not None:
        return f"field:{obj.name}"
    return "field"
