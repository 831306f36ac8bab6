"""Sweeps on Dask distributed: a grid of independent runs streams into one xarray Dataset.

The runs of a sweep on a LocalCluster equal the same runs done one by one in this process; a
sweep killed midway resumes without redoing what finished; a diverging setting is a NaN cell with
its error text. Most tests share one 1-worker cluster on loopback (``client``); the embedded
cluster that ``sweep`` starts itself (``workers=2``) by the first; the killed driver is a process
of its own, on the shared cluster.
"""

import itertools
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr

from workbench import Experiment
from workbench.cli import main
from workbench.sweep import paired_difference, summarise, sweep

TINY = Experiment(dataset="gibbs-1d", steps=2, batch_size=4, test_tasks=16)
GRID = {"group": ["T", "none"], "strength": [0.0, 0.5], "seed": [0, 1]}
WALL = ("train_seconds", "steps_per_second")  # wall times differ from run to run


@pytest.fixture(scope="module")
def client():
    """A user's cluster: a LocalCluster of one worker process on loopback, shared by the tests.

    One worker: every worker process pays torch's start-up (seconds), and the tests are to be quick.
    """
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def reference():
    """The GRID's runs done one by one in this process with one torch thread: metrics, per-task logliks."""
    import torch

    from workbench.data.registry import make_dataset
    from workbench.evaluate import loglik_per_task
    from workbench.runs import run

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        for combo in itertools.product(*GRID.values()):
            exp = replace(TINY, **dict(zip(GRID, combo, strict=True)))
            r = run(exp, progress=False)
            tasks = make_dataset(exp.dataset).test_set(exp.test_tasks, batch_size=16)
            out[combo] = (r.metrics, loglik_per_task(r.model, tasks))
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The GRID swept on the embedded cluster (2 worker processes), with its output file."""
    out = tmp_path_factory.mktemp("sweep") / "sweep.nc"
    return sweep(TINY, GRID, workers=2, out=out, progress=False), out


def _matches_reference(ds: xr.Dataset, reference: dict) -> None:
    for combo, (metrics, per_task) in reference.items():
        cell = ds.sel(dict(zip(GRID, combo, strict=True)))
        assert str(cell["status"].values) == "done", combo
        for name, value in metrics.items():
            if name not in WALL:
                assert float(cell[name]) == value, (combo, name)
        np.testing.assert_array_equal(cell["loglik_per_task"].values, per_task)


def test_a_dask_sweep_gives_the_same_metrics_as_the_runs_one_by_one(uninterrupted, reference):
    from workbench.runs import load_run

    ds, out = uninterrupted
    assert dict(ds.sizes) == {"group": 2, "strength": 2, "seed": 2, "task": 16}
    assert ds["loglik"].dims == ("group", "strength", "seed")
    assert ds["loglik_per_task"].dims == ("group", "strength", "seed", "task")
    _matches_reference(ds, reference)
    with xr.open_dataset(out) as on_disk:
        _matches_reference(on_disk, reference)
    # Every run was saved beside the output file, under sweep.runs/; paths are relative to out's folder.
    paths = ds["run_path"].values.ravel()
    assert len(set(paths)) == paths.size and all(str(p).startswith("sweep.runs/") for p in paths)
    combo = ("none", 0.5, 1)
    saved = load_run(out.parent / str(ds["run_path"].sel(group="none", strength=0.5, seed=1).values))
    assert saved.metrics["loglik"] == reference[combo][0]["loglik"]


def _done(path) -> np.ndarray | None:
    try:
        with xr.open_dataset(path) as ds:
            return ds["status"].values == "done"
    except (OSError, ValueError, KeyError):
        return None  # not written yet


def test_a_killed_sweep_resumes_without_redoing_finished_runs(tmp_path, client, uninterrupted, reference):
    out = tmp_path / "sweep.nc"
    # The driver is another process on the shared cluster (its workers are warm); it is killed with
    # SIGKILL after two runs finished, and the sweep is resumed from here.
    script = textwrap.dedent(
        f"""
        from workbench import Experiment
        from workbench.sweep import sweep

        if __name__ == "__main__":
            base = Experiment(dataset="gibbs-1d", steps=2, batch_size=4, test_tasks=16)
            sweep(base, {GRID!r}, scheduler={client.scheduler.address!r}, out={str(out)!r}, progress=False)
        """
    )
    (tmp_path / "driver.py").write_text(script)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py")], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            done = _done(out)
            if done is not None and done.sum() >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the driver ended before it was killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with xr.open_dataset(out) as before:
        before = before.load()
    finished = before["status"].values == "done"
    assert 2 <= finished.sum() < finished.size
    kept = {str(p): (out.parent / str(p)).stat().st_mtime_ns for p in before["run_path"].values[finished]}

    # The file is not overwritten by accident, and a resume must be of the same sweep.
    with pytest.raises(ValueError, match="exists"):
        sweep(TINY, GRID, out=out, client=client, progress=False)
    with pytest.raises(ValueError, match="grid"):
        sweep(TINY, GRID | {"seed": [0, 1, 2]}, out=out, client=client, resume=True, progress=False)
    with pytest.raises(ValueError, match="steps"):
        sweep(replace(TINY, steps=3), GRID, out=out, client=client, resume=True, progress=False)

    ds = sweep(TINY, GRID, out=out, client=client, resume=True, progress=False)
    _matches_reference(ds, reference)
    # The runs finished before the kill were not redone: same folders, untouched.
    assert {str(p) for p in ds["run_path"].values[finished]} == set(kept)
    assert all((out.parent / p).stat().st_mtime_ns == t for p, t in kept.items())
    assert not set(map(str, ds["run_path"].values[~finished])) & set(kept)
    # The Dataset equals the uninterrupted sweep's, wall times and run folders aside.
    skip = [*WALL, "run_path"]
    xr.testing.assert_identical(ds.drop_vars(skip), uninterrupted[0].drop_vars(skip))
    with xr.open_dataset(out) as on_disk:
        xr.testing.assert_identical(on_disk.drop_vars(skip).load(), ds.drop_vars(skip))


def test_a_diverging_setting_is_recorded_and_the_others_kept(tmp_path, client):
    out = tmp_path / "s.nc"
    ds = sweep(replace(TINY, steps=6), {"lr": [5e-4, 1e10]}, progress=False, out=out, client=client)
    assert list(ds["status"].values) == ["done", "failed"]
    assert math.isfinite(float(ds["loglik"].sel(lr=5e-4)))
    assert math.isnan(float(ds["loglik"].sel(lr=1e10)))
    assert np.isnan(ds["loglik_per_task"].sel(lr=1e10).values).all()
    assert "loss became" in str(ds["error"].sel(lr=1e10).values)
    assert str(ds["error"].sel(lr=5e-4).values) == ""
    assert str(ds["run_path"].sel(lr=1e10).values) == ""
    with xr.open_dataset(out) as on_disk:
        assert list(on_disk["status"].values) == ["done", "failed"]
        assert float(on_disk["loglik"].sel(lr=5e-4)) == float(ds["loglik"].sel(lr=5e-4))


def test_sweep_returns_one_metric_array_per_metric(client):
    ds = sweep(TINY, {"group": ["T", "none"], "strength": [0.0, 0.5]}, client=client, progress=False)
    assert dict(ds.sizes) == {"group": 2, "strength": 2, "task": 16}
    assert list(ds["group"].values) == ["T", "none"] and list(ds["strength"].values) == [0.0, 0.5]
    assert ds["loglik"].attrs["units"] == "nats/target"
    assert all(math.isfinite(v) for v in ds["loglik"].values.ravel())
    # The per-task log-likelihoods average to loglik (every task has the same number of targets).
    np.testing.assert_allclose(ds["loglik_per_task"].mean("task"), ds["loglik"], rtol=1e-5)
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
    with pytest.raises(ValueError, match="workers"):
        sweep(TINY, {"group": ["T"]}, workers=0, progress=False)
    with pytest.raises(ValueError, match="resume"):
        sweep(TINY, {"group": ["T"]}, resume=True, progress=False)


@pytest.mark.parametrize("bad", ["folder", "missing/s.nc", "afile/s.nc"])
def test_a_bad_output_path_fails_before_any_training(tmp_path, monkeypatch, bad):
    import workbench.sweep as sw

    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.setattr(sw, "local_client", lambda *a, **k: pytest.fail("started a cluster first"))
    with pytest.raises(ValueError, match="sweep output"):
        sweep(TINY, {"strength": [0.0, 1.0]}, progress=False, out=tmp_path / bad)


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


def test_summarise_a_sweep_over_seeds(uninterrupted):
    ds = uninterrupted[0]
    s = summarise(ds)
    ll = ds["loglik"].sel(group="T", strength=0.5).values
    assert float(s["loglik_mean"].sel(group="T", strength=0.5)) == pytest.approx(ll.mean())
    assert float(s["loglik_se"].sel(group="T", strength=0.5)) == pytest.approx(abs(ll[0] - ll[1]) / 2)
    assert s["loglik_se"].attrs["units"] == "nats/target"
    assert "status" not in s and "error" not in s and "run_path" not in s


def test_paired_differences_on_the_same_test_tasks(uninterrupted, reference):
    from workbench.ceilings import per_task_difference

    ds = uninterrupted[0]
    d = paired_difference(ds, {"strength": 0.5}, {"strength": 0.0})
    assert (
        d["difference_mean"].dims == ("group", "seed")
        and d["difference_mean"].attrs["units"] == "nats/target"
    )
    for g, seed in itertools.product(GRID["group"], GRID["seed"]):
        mean, se = per_task_difference(reference[g, 0.5, seed][1], reference[g, 0.0, seed][1])
        assert float(d["difference_mean"].sel(group=g, seed=seed)) == pytest.approx(mean, rel=1e-12)
        assert float(d["difference_se"].sel(group=g, seed=seed)) == pytest.approx(se, rel=1e-12)
    assert int(d["n_task"].sel(group="T", seed=0)) == 16
    # Averaged over seeds task by task first: one number per group.
    pooled = paired_difference(ds, {"group": "T"}, {"group": "none"}, pool="seed")
    assert pooled["difference_mean"].dims == ("strength",)
    a = np.mean([reference["T", 0.5, s][1] for s in GRID["seed"]], axis=0)
    b = np.mean([reference["none", 0.5, s][1] for s in GRID["seed"]], axis=0)
    assert float(pooled["difference_mean"].sel(strength=0.5)) == pytest.approx(per_task_difference(a, b)[0])
    with pytest.raises(ValueError, match="colour"):
        paired_difference(ds, {"colour": "red"}, {"group": "T"})


def test_a_gpu_run_asks_the_scheduler_for_a_gpu():
    from workbench.sweep import gpu_resources

    cpu, auto = replace(TINY, device="cpu"), replace(TINY, device="auto")
    assert gpu_resources(auto, gpus=1) == {"GPU": 1}
    assert gpu_resources(replace(TINY, device="cuda"), gpus=2) == {"GPU": 1}
    assert gpu_resources(cpu, gpus=1) is None
    assert gpu_resources(auto, gpus=0) is None


def test_cli_sweep_on_a_scheduler_writes_netcdf_and_resumes(tmp_path, capsys, client):
    out = tmp_path / "s.nc"
    argv = ["sweep", "--dataset", "gibbs-1d", "--steps", "6", "--batch-size", "4", "--test-tasks", "16"]
    argv += ["--scheduler", client.scheduler.address, "--no-progress"]
    assert main([*argv, "--vary", "lr=0.0005", "--out", str(tmp_path / "nope" / "s.nc")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*argv, "--vary", "lr"]) == 2
    assert "FIELD=V1,V2" in capsys.readouterr().err
    assert main([*argv, "--vary", "lr=0.0005,1e10", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "1 of 2 runs failed" in err and "lr=1e+10" in err
    with xr.open_dataset(out) as ds:
        assert list(ds["status"].values) == ["done", "failed"] and list(ds["lr"].values) == [5e-4, 1e10]
        first = str(ds["run_path"].values[0])
    # Again without --resume: the file is kept; with it, only the failed setting runs again.
    assert main([*argv, "--vary", "lr=0.0005,1e10", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    mtime = (tmp_path / first).stat().st_mtime_ns
    assert main([*argv, "--vary", "lr=0.0005,1e10", "--out", str(out), "--resume"]) == 1
    assert "1 to run, 1 done already" in capsys.readouterr().err
    with xr.open_dataset(out) as ds:
        assert list(ds["status"].values) == ["done", "failed"] and str(ds["run_path"].values[0]) == first
    assert (tmp_path / first).stat().st_mtime_ns == mtime


def test_without_distributed_the_runs_go_one_by_one_in_this_process(monkeypatch, reference):
    import workbench.sweep as sw

    monkeypatch.setattr(sw, "_has_distributed", lambda: False)
    with pytest.warns(UserWarning, match="distributed is not installed"):
        ds = sweep(TINY, {"group": ["T"], "strength": [0.5], "seed": [1]}, progress=False)
    _matches_reference(ds, {k: v for k, v in reference.items() if k == ("T", 0.5, 1)})
    with pytest.raises(ImportError, match="pip install distributed"):
        sweep(TINY, {"seed": [0]}, scheduler="tcp://127.0.0.1:1", progress=False)
