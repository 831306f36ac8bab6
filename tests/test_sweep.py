"""Sweeps: a grid of independent runs comes back as one xarray Dataset (in-process and in a pool)."""

import math

import pytest
import xarray as xr

from workbench import Experiment
from workbench.cli import main
from workbench.sweep import sweep

TINY = Experiment(dataset="gibbs-1d", steps=2, batch_size=4, test_tasks=16)


@pytest.mark.parametrize("workers", [1, 2])
def test_sweep_returns_one_metric_array_per_metric(workers):
    ds = sweep(TINY, {"group": ["T", "none"], "strength": [0.0, 0.5]}, workers=workers, progress=False)
    assert dict(ds.sizes) == {"group": 2, "strength": 2}
    assert list(ds["group"].values) == ["T", "none"] and list(ds["strength"].values) == [0.0, 0.5]
    assert ds["loglik"].attrs["units"] == "nats/target"
    assert all(math.isfinite(v) for v in ds["loglik"].values.ravel())
    # A strict model (T, strength 0) is its own strict component.
    assert float(ds["loglik"].sel(group="T", strength=0.0)) == float(
        ds["loglik_strict"].sel(group="T", strength=0.0)
    )


def test_sweep_rejects_bad_grids_before_training():
    with pytest.raises(ValueError, match="not a field"):
        sweep(TINY, {"colour": ["red"]}, progress=False)
    with pytest.raises(ValueError, match="strength"):
        sweep(TINY, {"strength": [0.5, 2.0]}, progress=False)
    with pytest.raises(ValueError, match="empty"):
        sweep(TINY, {"group": []}, progress=False)


def test_cli_sweep_writes_netcdf(tmp_path, capsys):
    out = tmp_path / "s.nc"
    argv = ["sweep", "--dataset", "gibbs-1d", "--steps", "2", "--batch-size", "4", "--test-tasks", "16"]
    assert main([*argv, "--vary", "strength=0,1", "--out", str(out), "--no-progress"]) == 0
    ds = xr.open_dataset(out)
    assert list(ds["strength"].values) == [0.0, 1.0] and "loglik" in ds
    assert main([*argv, "--vary", "strength"]) == 2
    assert "FIELD=V1,V2" in capsys.readouterr().err
