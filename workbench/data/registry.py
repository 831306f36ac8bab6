"""Names of the datasets a user can pick, with one line each, and how to make their task samplers."""

from __future__ import annotations

from typing import Any

#: name -> (input dimension, one-line description)
DATASETS: dict[str, tuple[int, str]] = {
    "gp-eq-1d": (1, "1-D GP, stationary EQ kernel (equivariance is right); exact oracle"),
    "gibbs-1d": (1, "1-D GP, the paper's Gibbs mixture: length scale jumps at a changepoint; exact BMA oracle"),
    "gp-2d": (2, "2-D GP, isotropic EQ kernel; exact oracle"),
    "gp-2d-anisotropic": (2, "2-D GP whose length scale and direction depend on position; exact oracle"),
}


def dataset_dim(name: str) -> int:
    """Input dimension of a named dataset."""
    return DATASETS[name][0]


def make_dataset(name: str, **kwargs: Any):
    """The task sampler for ``name`` (see :data:`DATASETS`)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    from workbench.data.gp import make_sampler

    return make_sampler(name, **kwargs)
