"""Sweeps: a grid of independent runs comes back as one xarray Dataset (in-process and in a pool)."""

import math

import numpy as np
import pytest
import xarray as xr

from workbench import Experiment
from workbench.cli import main
from workbench.sweep import summarise, sweep

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


def test_summarise_gives_mean_and_standard_error_over_seeds():
    values = np.array([[1.0, 2.0, 3.0], [4.0, 6.0, 8.0], [1.0, 2.0, np.nan], [5.0, np.nan, np.nan]])
    ds = xr.Dataset(
        {
            "loglik": (("group", "seed"), values, {"units": "nats/target", "long_name": "ll"}),
            "n_parameters": ("group", np.array([1.0, 2.0, 3.0, 4.0]), {"units": ""}),
        },
        coords={"group": ["a", "b", "c", "d"], "seed": [0, 1, 2]},
    )
    s = summarise(ds, over="seed")
    assert "seed" not in s.dims and list(s["group"].values) == ["a", "b", "c", "d"]
    np.testing.assert_allclose(s["loglik_mean"].values, [2.0, 6.0, 1.5, 5.0])
    # sd (ddof 1) / sqrt(n non-NaN): 1/sqrt(3), 2/sqrt(3), 0.7071/sqrt(2) = 0.5; one value -> NaN
    np.testing.assert_allclose(s["loglik_se"].values[:3], [1 / math.sqrt(3), 2 / math.sqrt(3), 0.5])
    assert math.isnan(float(s["loglik_se"].values[3]))
    assert list(s["n_seed"].values) == [3, 3, 2, 1]
    assert s["loglik_mean"].attrs["units"] == "nats/target" and s["loglik_se"].attrs["units"] == "nats/target"
    assert "standard error" in s["loglik_se"].attrs["long_name"]
    assert s["n_parameters"].equals(ds["n_parameters"])  # no seed dimension: copied
    with pytest.raises(ValueError, match="not a dimension"):
        summarise(ds, over="strength")


def test_summarise_a_tiny_sweep_over_seeds():
    ds = sweep(TINY, {"group": ["T"], "seed": [0, 1]}, progress=False)
    s = summarise(ds)
    ll = ds["loglik"].sel(group="T").values
    assert float(s["loglik_mean"].sel(group="T")) == pytest.approx(ll.mean())
    assert float(s["loglik_se"].sel(group="T")) == pytest.approx(abs(ll[0] - ll[1]) / 2)
    assert s["loglik_se"].attrs["units"] == "nats/target"
