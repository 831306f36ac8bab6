"""Sweeps: a grid of independent runs comes back as one xarray Dataset (in-process and in a pool)."""

import math
from dataclasses import replace

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


def test_a_diverging_setting_is_recorded_and_the_others_kept(tmp_path):
    out = tmp_path / "s.nc"
    ds = sweep(replace(TINY, steps=6), {"lr": [5e-4, 1e10]}, progress=False, out=out)
    assert list(ds["status"].values) == ["done", "failed"]
    assert math.isfinite(float(ds["loglik"].sel(lr=5e-4)))
    assert math.isnan(float(ds["loglik"].sel(lr=1e10)))
    assert "loss became" in str(ds["error"].sel(lr=1e10).values)
    assert str(ds["error"].sel(lr=5e-4).values) == ""
    on_disk = xr.open_dataset(out)
    assert list(on_disk["status"].values) == ["done", "failed"]
    assert float(on_disk["loglik"].sel(lr=5e-4)) == float(ds["loglik"].sel(lr=5e-4))


@pytest.mark.parametrize("bad", ["folder", "missing/s.nc", "afile/s.nc"])
def test_a_bad_output_path_fails_before_any_training(tmp_path, monkeypatch, bad):
    import workbench.sweep as sw

    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.setattr(sw, "_one", lambda exp: pytest.fail("trained before checking the output path"))
    with pytest.raises(ValueError, match="sweep output"):
        sweep(TINY, {"strength": [0.0, 1.0]}, progress=False, out=tmp_path / bad)


def test_an_interrupted_sweep_keeps_the_runs_it_finished(tmp_path, monkeypatch):
    import workbench.sweep as sw

    calls = []

    def one(exp):
        calls.append(exp)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return {"loglik": -1.5}

    monkeypatch.setattr(sw, "_one", one)
    out = tmp_path / "s.nc"
    with pytest.raises(KeyboardInterrupt):
        sweep(TINY, {"strength": [0.0, 0.5, 1.0]}, progress=False, out=out)
    ds = xr.open_dataset(out)
    assert list(ds["status"].values) == ["done", "not run", "not run"]
    assert float(ds["loglik"].sel(strength=0.0)) == -1.5
    assert math.isnan(float(ds["loglik"].sel(strength=1.0)))


def test_summarise_drops_the_text_variables(tmp_path):
    ds = sweep(replace(TINY, steps=6), {"seed": [0, 1], "lr": [5e-4, 1e10]}, progress=False)
    s = summarise(ds)
    assert "status" not in s and "error" not in s
    assert math.isfinite(float(s["loglik_mean"].sel(lr=5e-4))) and math.isnan(
        float(s["loglik_mean"].sel(lr=1e10))
    )


def test_cli_sweep_checks_out_first_and_keeps_finished_runs(tmp_path, capsys):
    argv = ["sweep", "--dataset", "gibbs-1d", "--steps", "6", "--batch-size", "4", "--test-tasks", "16"]
    assert (
        main([*argv, "--vary", "lr=0.0005", "--out", str(tmp_path / "nope" / "s.nc"), "--no-progress"]) == 2
    )
    assert "does not exist" in capsys.readouterr().err
    out = tmp_path / "s.nc"
    assert main([*argv, "--vary", "lr=0.0005,1e10", "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "1 of 2 runs failed" in err and "lr=1e+10" in err
    assert list(xr.open_dataset(out)["status"].values) == ["done", "failed"]
