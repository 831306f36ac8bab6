"""Names of the datasets a user can pick, with one line each, and how to make their task samplers.

The symmetry-breaking worlds take their breaking strength in the name: ``NAME:STRENGTH`` (e.g.
``mountain-1d:0.5``; a number >= 0, 0 = stationary, 1 = the default, the same as plain ``NAME``).
"""

from __future__ import annotations

import math
from typing import Any

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

#: Datasets whose samplers live in workbench.data.gp (the rest are geographic: workbench.data.fields).
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


def dataset_dim(name: str) -> int:
    """Input dimension of a named dataset (``NAME:STRENGTH`` allowed)."""
    return DATASETS[name][0]


def make_dataset(name: Any, **kwargs: Any):
    """The task sampler for ``name``: a key of :data:`DATASETS` (``NAME:STRENGTH`` for the worlds of
    :data:`STRENGTH_DATASETS`), ``era5:PATH``, ``terrain:REGION``, an ``xarray.DataArray`` or a path
    to a ``.nc`` file (see :mod:`workbench.data.fields`)."""
    if isinstance(name, str):
        base, strength = parse_strength(name)
        if base in GP_DATASETS:
            from workbench.data.gp import make_sampler

            if strength is not None:
                kwargs = {"strength": strength, **kwargs}
            return make_sampler(base, **kwargs)
    from workbench.data.fields import make_geo_dataset

    return make_geo_dataset(name, **kwargs)
