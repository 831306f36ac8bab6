"""Names of the datasets a user can pick, with one line each, and how to make their task samplers."""

from __future__ import annotations

from typing import Any

#: name -> (input dimension, one-line description)
DATASETS: dict[str, tuple[int, str]] = {
    "gp-eq-1d": (1, "1-D GP, stationary EQ kernel (equivariance is right); exact oracle"),
    "gibbs-1d": (
        1,
        "1-D GP, the paper's Gibbs mixture: length scale jumps at a changepoint; exact BMA oracle",
    ),
    "gp-2d": (2, "2-D GP, isotropic EQ kernel; exact oracle"),
    "gp-2d-anisotropic": (2, "2-D GP whose length scale and direction depend on position; exact oracle"),
    "colorado-temperature": (2, "Colorado stations, monthly tmax 1895-1997, a task per month; test 1989-97"),
    "us-terrain": (2, "random weather + lapse rate x US elevation; train west of -98 E, test east (OOD)"),
    "terrain:alps->rockies": (2, "the same on global elevation: train on the Alps, test on the Rockies"),
    "hadcm3-north-america": (2, "HadCM3 annual temperature 1860-2099, one year per task; test 2050-2099"),
}

#: Datasets whose samplers live in workbench.data.gp (the rest are geographic: workbench.data.fields).
GP_DATASETS = ("gp-eq-1d", "gibbs-1d", "gp-2d", "gp-2d-anisotropic")


def dataset_dim(name: str) -> int:
    """Input dimension of a named dataset."""
    return DATASETS[name][0]


def make_dataset(name: Any, **kwargs: Any):
    """The task sampler for ``name``: a key of :data:`DATASETS`, ``era5:PATH``, ``terrain:REGION``,
    an ``xarray.DataArray`` or a path to a ``.nc`` file (see :mod:`workbench.data.fields`)."""
    if isinstance(name, str) and name in GP_DATASETS:
        from workbench.data.gp import make_sampler

        return make_sampler(name, **kwargs)
    from workbench.data.fields import make_geo_dataset

    return make_geo_dataset(name, **kwargs)
