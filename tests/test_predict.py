"""``workbench.maps.predict``: one function for the prediction, its strict component and the breaking
field of any run (1-D, planar, lat/lon map) as an ``xarray.Dataset``, equal to what the old code
paths computed (the widgets' own forward passes, ``predict_map``)."""

import numpy as np
import pytest
import torch
import xarray as xr

from workbench import Experiment, Run, Task
from workbench.data.registry import make_dataset
from workbench.maps import predict, predict_map
from workbench.models import build_model
from workbench.train import History

TINY = dict(width=8, depth=2, n_fixed=4)
GRID = (np.linspace(37.0, 41.0, 12), np.linspace(-108.5, -102.5, 15))  # (lats, lons) over Colorado


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def _run(dataset: str, relaxation: str = "fixed-inputs", **kw) -> Run:
    """An untrained run (random weights: fixed inputs that move the prediction, and no training time)."""
    exp = Experiment(dataset=dataset, relaxation=relaxation, **TINY, **kw)
    box = make_dataset(dataset).box
    torch.manual_seed(0)
    return Run(exp, build_model(exp, len(box), 1, box), History(), {}, box, len(box), 1)


@pytest.fixture(scope="module")
def line_run() -> Run:
    return _run("gibbs-1d")


@pytest.fixture(scope="module")
def plane_run() -> Run:
    return _run("gp-2d")


@pytest.fixture(scope="module")
def map_run() -> Run:
    return _run("colorado-temperature")


def _old_task_prediction(run: Run, xc: np.ndarray, yc: np.ndarray, xt: np.ndarray) -> dict[str, np.ndarray]:
    """What ``widgets/sources.py`` computed before ``predict``: one task, run.predict on and off."""
    task = Task(
        torch.as_tensor(xc, dtype=torch.float32)[None],
        torch.as_tensor(yc, dtype=torch.float32)[None, :, None],
        torch.as_tensor(xt, dtype=torch.float32)[None],
    )
    on, off = run.predict(task), run.predict(task, fixed_inputs=False)
    mean, std = make_dataset(run.experiment.dataset).oracle_moments(task)
    return {
        "mean": on.mean[0, :, 0].double().numpy(),
        "std": on.stddev[0, :, 0].double().numpy(),
        "mean_strict": off.mean[0, :, 0].double().numpy(),
        "oracle_mean": mean[0].double().numpy(),
        "oracle_std": std[0].double().numpy(),
    }


def _test_context(run: Run, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    task = make_dataset(run.experiment.dataset).test_set(1, batch_size=1, seed=seed)[0]
    keep = task.mask_c[0]
    return task.xc[0, keep].numpy(), task.yc[0, keep, 0].numpy()


def _same(ds: xr.Dataset, old: dict[str, np.ndarray], shape: tuple[int, ...]) -> None:
    for k, v in old.items():
        np.testing.assert_allclose(ds[k].values, v.reshape(shape), rtol=1e-6, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(
        ds["breaking"].values, (old["mean"] - old["mean_strict"]).reshape(shape), atol=1e-6
    )


def test_1d_equals_the_old_path_with_coordinates_and_units(line_run):
    xc, yc = _test_context(line_run)
    x = np.linspace(-4, 4, 50)
    ds = predict(line_run, (xc, yc), x)
    assert ds["mean"].dims == ("x",) and np.array_equal(ds["x"].values, x)
    assert ds["x"].attrs == {"long_name": "x", "units": "1"}
    _same(ds, _old_task_prediction(line_run, xc, yc, x[:, None]), (50,))
    assert float(np.abs(ds["breaking"]).max()) > 0  # random fixed inputs move the prediction
    for k in ("mean", "std", "mean_strict", "breaking", "oracle_mean", "oracle_std"):
        assert ds[k].attrs["units"] == "1" and ds[k].attrs["long_name"], k
    assert ds["fixed_inputs"].dims == ("channel", "x") and ds.sizes["channel"] == 4
    assert np.array_equal(ds["context_x"], xc[:, 0]) and np.array_equal(ds["context_value"], yc)
    assert ds.attrs["fixed_inputs_used"] == 1
    # The default: the first test task of seed 0 on 400 points over the box.
    default = predict(line_run)
    assert default.sizes["x"] == 400 and np.allclose(default["context_value"], yc)
    assert np.allclose(default["x"][[0, -1]], [-4, 4])


def test_planar_equals_the_old_path_on_a_grid_and_at_points(plane_run):
    xc, yc = _test_context(plane_run, seed=3)
    x1, x2 = np.linspace(-3, 3, 7), np.linspace(-2, 2, 5)
    ds = predict(plane_run, (xc, yc), (x1, x2))
    assert ds["mean"].dims == ("x2", "x1") and ds["fixed_inputs"].dims == ("channel", "x2", "x1")
    assert ds["x1"].attrs["units"] == "1" and ds["x2"].attrs["long_name"] == "x_2"
    g1, g2 = np.meshgrid(x1, x2)
    _same(ds, _old_task_prediction(plane_run, xc, yc, np.stack([g1.ravel(), g2.ravel()], -1)), (5, 7))
    # The same points as a list of points: a target dimension with x1, x2 coordinates.
    pts = np.stack([g1.ravel(), g2.ravel()], -1)
    flat = predict(plane_run, (xc, yc), pts)
    assert flat["mean"].dims == ("target",) and np.array_equal(flat["x1"], pts[:, 0])
    np.testing.assert_allclose(flat["breaking"].values, ds["breaking"].values.ravel(), atol=1e-6)
    assert (predict(plane_run).sizes["x1"], predict(plane_run).sizes["x2"]) == (60, 60)


def test_a_batch_of_tasks_at_their_own_targets(plane_run):
    tasks = make_dataset("gp-2d").test_set(3, batch_size=3, seed=5)[0]
    ds = predict(plane_run, tasks, tasks.xt)
    assert ds["mean"].dims == ("task", "target") and ds["x1"].dims == ("task", "target")
    assert ds["fixed_inputs"].dims == ("channel", "task", "target")
    for i in range(3):
        one = tasks.select(slice(i, i + 1))
        keep = one.mask_c[0]
        old = _old_task_prediction(
            plane_run, one.xc[0, keep].numpy(), one.yc[0, keep, 0].numpy(), one.xt[0].numpy()
        )
        for k in ("mean", "mean_strict", "oracle_mean"):
            np.testing.assert_allclose(ds[k].values[i], old[k], rtol=1e-5, atol=1e-5, err_msg=k)
    with pytest.raises(ValueError, match="targets are for 3 tasks but the context has 1"):
        predict(plane_run, None, tasks.xt)
    with pytest.raises(ValueError, match="targets of shape"):
        predict(plane_run, None, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="context = 'x'"):
        predict(plane_run, "x")


def test_map_is_predict_map_and_matches_a_plain_forward_pass(map_run):
    ds = predict(map_run, "1990-07", GRID)
    xr.testing.assert_identical(ds, predict_map(map_run, "1990-07", GRID))
    assert ds["mean"].dims == ("lat", "lon") and ds["lat"].attrs["units"] == "degrees_north"
    assert ds["breaking"].attrs["units"] == "degC"
    # Independently: the model's own forward pass at the grid points, in physical units.
    sampler = make_dataset("colorado-temperature")
    c, st = sampler.coords, sampler.context("1990-07")
    lon2, lat2 = np.meshgrid(GRID[1], GRID[0])
    xc = torch.from_numpy(c.to_model(st.lon, st.lat).astype(np.float32))[None]
    yc = torch.from_numpy(c.normalise(st.value).astype(np.float32))[None, :, None]
    xt = torch.from_numpy(c.to_model(lon2.ravel(), lat2.ravel()).astype(np.float32))[None]
    with torch.no_grad():
        on, off = (
            map_run.model(xc, yc, xt, fixed_inputs=f).mean[0, :, 0].double().numpy() for f in (True, False)
        )
    np.testing.assert_allclose(ds["mean"].values.ravel(), c.denormalise(on), atol=1e-3)
    np.testing.assert_allclose(ds["breaking"].values.ravel(), (on - off) * c.y_std, atol=1e-3)
    assert float(np.abs(ds["breaking"]).max()) > 1e-3


@pytest.mark.parametrize("dataset", ["gibbs-1d", "gp-2d", "colorado-temperature"])
def test_breaking_is_exactly_zero_for_a_strict_model(dataset):
    ds = predict(_run(dataset, relaxation="strict"), None, GRID if dataset.startswith("colorado") else None)
    assert float(np.abs(ds["breaking"]).max()) == 0.0 and np.array_equal(ds["mean"], ds["mean_strict"])
    assert ds.sizes["channel"] == 0 and ds.attrs["fixed_inputs_used"] == 0


def test_fixed_inputs_off_or_never_used_give_zero_breaking(line_run):
    assert float(np.abs(predict(line_run, fixed_inputs=False)["breaking"]).max()) == 0.0
    # strength 0: fixed inputs that are always dropped. The model holds them (has_fixed_inputs) but
    # they never act, so the strict component is the prediction itself.
    never = _run("gibbs-1d", strength=0.0)
    assert never.model.has_fixed_inputs
    ds = predict(never)
    assert float(np.abs(ds["breaking"]).max()) == 0.0 and ds.attrs["fixed_inputs_used"] == 0


def test_synthetic_predictions_round_trip_through_netcdf(line_run, plane_run, tmp_path):
    tasks = make_dataset("gp-2d").test_set(2, batch_size=2, seed=1)[0]
    for name, ds in {"line": predict(line_run), "tasks": predict(plane_run, tasks, tasks.xt)}.items():
        ds.to_netcdf(tmp_path / f"{name}.nc")
        with xr.open_dataset(tmp_path / f"{name}.nc") as back:
            xr.testing.assert_allclose(back, ds)
            assert back["breaking"].attrs["units"] == "1" and back.attrs["context"] == ds.attrs["context"]
