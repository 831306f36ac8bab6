"""Bad input gets a clear error naming the bad value (and the valid choices) or the right behaviour.

One test (row) per input a user met in issue 11 that crashed deep inside, blamed the learning rate, or was
silently wrong. Nothing here trains for more than a couple of steps.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from workbench import Experiment
from workbench.data.fields import as_field
from workbench.data.registry import make_dataset, make_geo_dataset
from workbench.evaluate import mean_loglik, orbit_error
from workbench.groups import get_group
from workbench.maps import map_grid, predict_map
from workbench.models import build_model
from workbench.runs import Run
from workbench.task import Task
from workbench.train import History

ROOT = Path(__file__).resolve().parents[1]


def _field(lat=None, lon=None, t: int = 6, time=None, seed: int = 0) -> xr.DataArray:
    """A small random (time, lat, lon) field over Colorado-ish coordinates."""
    lat = np.linspace(30.0, 40.0, 8) if lat is None else np.asarray(lat, np.float64)
    lon = np.linspace(-110.0, -100.0, 9) if lon is None else np.asarray(lon, np.float64)
    time = np.arange(t) if time is None else time
    values = np.random.default_rng(seed).normal(10, 3, size=(len(time), len(lat), len(lon)))
    return xr.DataArray(
        values.astype(np.float32),
        dims=("time", "lat", "lon"),
        coords={"time": time, "lat": lat, "lon": lon},
        name="value",
        attrs={"units": "degC"},
    )


def _with(field: xr.DataArray, index: tuple, value: float) -> xr.DataArray:
    out = field.copy()
    out.values[index] = value
    return out


def _untrained_run(dataset, **kw) -> Run:
    """A geographic run without training (maps only need a model and its box)."""
    exp = Experiment(dataset=dataset, steps=0, **kw)
    sampler = make_dataset(dataset)
    torch.manual_seed(0)
    model = build_model(exp, 2, 1, sampler.box).eval()
    return Run(exp, model, History(), box=sampler.box, dim_x=2)


# --- Experiment fields: types and bounds -----------------------------------------------------------

BAD_FIELDS = [
    (dict(strength=True), r"strength = True .*number in \[0, 1\].*a bool is not a number"),
    (dict(strength=np.True_), r"strength = .*True.*number in \[0, 1\]"),
    (dict(lr=True), r"lr = True .*positive number.*a bool is not a number"),
    (dict(lr=float("inf")), r"lr = inf .*finite positive number"),
    (dict(width=True), r"width = True .*positive integer or None.*a bool is not a number"),
    (dict(depth=False), r"depth = False .*positive integer or None.*a bool is not a number"),
    (dict(steps="abc"), r"Experiment\.steps = 'abc' must be an integer >= 0"),
    (dict(batch_size=10**7), r"batch_size = 10000000 .*at most 4096"),
    (dict(test_tasks=10**9), r"test_tasks = 1000000000 .*at most 100000"),
]


@pytest.mark.parametrize("changes,match", BAD_FIELDS, ids=[str(c) for c, _ in BAD_FIELDS])
def test_experiment_refuses_bad_field_types_and_bounds(changes, match):
    with pytest.raises(ValueError, match=match):
        Experiment(**changes)


def test_the_largest_batch_size_is_still_accepted():
    assert Experiment(batch_size=4096).batch_size == 4096


# --- fields whose geometry or values cannot make tasks -------------------------------------------

BAD_GEOMETRY = [
    ("single-row", lambda: _field(lat=[35.0]), r"1 latitude.*at least 2"),
    ("single-column", lambda: _field(lon=[-105.0]), r"1 longitude.*at least 2"),
    ("+inf cell", lambda: _with(_field(), (2, 3, 4), np.inf), r"1 infinite value.*NaN"),
    ("-inf cells", lambda: _with(_with(_field(), (0, 0, 0), -np.inf), (1, 1, 1), -np.inf), r"2 infinite"),
    ("latitudes 100..120", lambda: _field(lat=np.linspace(100, 120, 5)), r"latitudes .*100.*120.*-90"),
    ("latitudes below -90", lambda: _field(lat=np.linspace(-95, -80, 5)), r"latitudes .*-95.*-90"),
    ("longitudes 0..720", lambda: _field(lon=np.linspace(0, 720, 9)), r"longitudes .*720.*-180"),
    ("duplicate latitudes", lambda: _field(lat=[30, 31, 31, 32]), r"repeats a latitude.*31"),
    ("NaN coordinate", lambda: _field(lat=[30, np.nan, 32]), r"latitude .*NaN"),
    (
        "valid cells in one column",
        lambda: _field().where(_field()["lon"] == -110.0),
        r"valid cells .*one longitude.*zero width",
    ),
]


@pytest.mark.parametrize("make,match", [b[1:] for b in BAD_GEOMETRY], ids=[b[0] for b in BAD_GEOMETRY])
def test_fields_that_cannot_make_tasks_fail_at_experiment_time(make, match):
    """Each of these ended in 'loss became nan ... try a smaller learning rate' or a raw traceback."""
    with pytest.raises(ValueError, match=match):
        Experiment(dataset=make())


def test_a_planar_field_may_have_any_coordinates():
    planar = _field().rename(lat="y", lon="x").assign_coords(y=np.linspace(100, 120, 8))
    assert Experiment(dataset=planar).dataset is planar


def test_an_all_nan_time_step_is_dropped_with_a_warning():
    field = _with(_field(t=8), (3,), np.nan)
    with pytest.warns(UserWarning, match=r"1 time step\(s\) with fewer than 2 valid cells.*dropped.*\[3\]"):
        sampler = make_geo_dataset(field, nt=16)
    assert sampler.field.sizes["time"] == 7 and 3 not in sampler.field["time"].values
    # Every split of the remaining steps makes tasks (this was "no points left for targets").
    for split in ("train", "val", "test"):
        for task in sampler.task_set(split, 8, batch_size=4):
            assert torch.isfinite(task.yt).all()


def test_a_field_with_no_usable_time_step_says_so():
    field = _field(t=2) * np.nan  # one valid cell per step, at different places
    field.values[0, 0, 0], field.values[1, 1, 1] = 1.0, 2.0
    with pytest.raises(ValueError, match="fewer than 2 valid cells per time step"):
        Experiment(dataset=field)


# --- files --------------------------------------------------------------------------------------


@pytest.fixture
def truncated_nc(tmp_path: Path) -> Path:
    path = tmp_path / "truncated.nc"
    _field().to_dataset().to_netcdf(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_truncated_netcdf_names_the_file(truncated_nc: Path):
    with pytest.raises(ValueError, match=r"truncated\.nc.*cannot be read as NetCDF.*truncated"):
        Experiment(dataset=str(truncated_nc))
    with pytest.raises(ValueError, match=r"truncated\.nc.*cannot be read as NetCDF"):
        as_field(truncated_nc)


def test_a_truncated_era5_file_names_the_file(truncated_nc: Path):
    with pytest.raises(ValueError, match=r"era5:.*truncated\.nc.*cannot be read as NetCDF"):
        Experiment(dataset=f"era5:{truncated_nc}")


def test_a_text_file_called_nc_names_the_file(tmp_path: Path):
    path = tmp_path / "notes.nc"
    path.write_text("not a netcdf file\n")
    with pytest.raises(ValueError, match=r"notes\.nc.*cannot be read as NetCDF"):
        Experiment(dataset=str(path))


def test_the_cli_reports_a_truncated_netcdf_without_a_traceback(truncated_nc: Path, capsys):
    from workbench.cli import main

    assert main(["run", "--dataset", str(truncated_nc), "--steps", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "truncated.nc" in err and "cannot be read as NetCDF" in err and "Traceback" not in err


# --- terrain boxes ------------------------------------------------------------------------------

BAD_TERRAIN = [
    ("terrain:-40,-30,30,40", r"-40.*is 0\.\d+ % land .*needs at least 5 % land"),  # mid-Atlantic
    ("terrain:0,10,85,90", r"0 land cells|% land"),  # the Arctic ocean at the pole
    ("terrain:-180,180,80,90", r"polar.*80.*90.*distort"),
    ("terrain:-180,180,-90,-80", r"polar.*-90.*-80.*distort"),
    ("terrain:alps->-40,-30,30,40", r"test region.*% land"),
]


@pytest.mark.parametrize("name,match", BAD_TERRAIN)
def test_ocean_and_polar_terrain_boxes_fail_at_experiment_time(name, match):
    with pytest.raises(ValueError, match=match):
        Experiment(dataset=name)


def test_a_coastal_terrain_box_is_still_fine():
    assert Experiment(dataset="terrain:alps").dataset == "terrain:alps"


# --- tasks: masked padding, NaN in real entries, dtype and dimensions ------------------------------


def _padded_task(gibbs, bad: float = float("nan")) -> Task:
    task = gibbs.test_set(4, batch_size=4, seed=1)[0]
    xc, yc, mask = task.xc.clone(), task.yc.clone(), task.mask_c.clone()
    mask[:, -3:] = False
    xc[:, -3:], yc[:, -3:] = bad, bad
    return Task(xc, yc, task.xt, task.yt, mask)


@pytest.mark.parametrize("model,group", [("conv", "T"), ("transformer", "T"), ("deepsets", "none")])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_in_masked_padding_never_reaches_the_model(gibbs, model, group, bad):
    torch.manual_seed(0)
    m = build_model(Experiment(model=model, group=group, relaxation="strict"), 1, 1, gibbs.box).eval()
    task = _padded_task(gibbs, bad)
    mean = m.predict(task).mean
    assert torch.isfinite(mean).all()
    # ... and it equals the prediction with zeros there: padding is invisible.
    clean = Task(task.xc.nan_to_num(0, 0, 0), task.yc.nan_to_num(0, 0, 0), task.xt, task.yt, task.mask_c)
    assert torch.equal(mean, m.predict(clean).mean)


def test_nan_in_a_real_context_point_names_the_field_and_the_count(gibbs):
    task = gibbs.test_set(4, batch_size=4, seed=1)[0]
    yc = task.yc.clone()
    yc[0, :2] = float("nan")
    with pytest.raises(ValueError, match=r"Task\.yc has 2 NaN or infinite values among its real"):
        Task(task.xc, yc, task.xt, task.yt, task.mask_c)


def test_float64_tasks_are_evaluated_in_the_model_dtype(gibbs, gibbs_tasks):
    m = build_model(Experiment(), 1, 1, gibbs.box)
    double = [t.to("cpu", dtype=torch.float64) for t in gibbs_tasks]
    assert mean_loglik(m, double) == pytest.approx(mean_loglik(m, gibbs_tasks))


def test_test_tasks_of_another_dimension_are_refused(gibbs):
    m = build_model(Experiment(), 1, 1, gibbs.box)
    tasks_2d = make_dataset("gp-2d").test_set(4, batch_size=4)
    with pytest.raises(ValueError, match=r"dim_x = 2 .*model was built for dim_x = 1"):
        mean_loglik(m, tasks_2d)


def test_an_inverted_box_is_refused_by_orbit_error(gibbs, gibbs_tasks):
    m = build_model(Experiment(relaxation="strict"), 1, 1, gibbs.box)
    with pytest.raises(ValueError, match=r"box .*inverted.*axis 0.*4\.0 > -4\.0"):
        orbit_error(m, gibbs_tasks, get_group("T"), ((4.0, -4.0),))


def test_an_inverted_map_region_is_refused():
    with pytest.raises(ValueError, match=r"region .*inverted.*lon_min 10.* > lon_max 0"):
        map_grid((10.0, 0.0, 30.0, 40.0))


# --- maps -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def field_run():
    return _untrained_run(_field())


@pytest.mark.parametrize("context", [True, False, np.True_])
def test_predict_map_refuses_a_bool_context(field_run, context):
    with pytest.raises(ValueError, match=r"context = .*(True|False).* bool"):
        predict_map(field_run, context=context)


def test_colorado_context_true_is_not_february_1970():
    from workbench.data.stations import ColoradoSampler

    with pytest.raises(ValueError, match=r"context = True .*bool"):
        ColoradoSampler().month_index(True)


def test_predict_map_on_a_grid_with_0_360_longitudes(field_run):
    lats = np.linspace(31, 39, 5)
    east = predict_map(field_run, grid=(lats, np.linspace(-109, -101, 6)))
    wrapped = predict_map(field_run, grid=(lats, np.linspace(-109, -101, 6) + 360))
    assert bool(wrapped["in_box"].any())
    np.testing.assert_allclose(wrapped["mean"].values, east["mean"].values, rtol=1e-5)
    # The map keeps the longitudes it was asked for.
    np.testing.assert_allclose(wrapped["lon"].values, np.linspace(251, 259, 6))


def test_predict_map_on_a_field_with_integer_time_coordinates():
    run = _untrained_run(_field(time=np.array([10, 20, 30, 40, 50, 60])))
    ds = predict_map(run)
    assert np.isfinite(ds["mean"].values).all() and ds.attrs["context"] == "60"
    assert predict_map(run, context=2).attrs["context"] == "30"


def test_pacific_longitudes_across_the_dateline_stay_neighbours():
    field = _field(lon=np.arange(150.0, 271.0, 5.0), t=4)  # 0..360 longitudes crossing 180
    sampler = make_geo_dataset(field)
    lon = sampler.field["lon"].values
    assert np.allclose(np.diff(lon), 5.0), "the longitudes must stay one continuous range"
    assert lon[-1] - lon[0] == pytest.approx(120.0)
    assert -180 <= (lon[0] + lon[-1]) / 2 <= 180
    # The training region is the 120 degrees of the cut, not the whole globe.
    assert sampler.train_region[1] - sampler.train_region[0] == pytest.approx(120.0)


def test_a_field_spanning_the_globe_is_not_rolled():
    field = _field(lon=np.arange(0.0, 360.0, 30.0), t=2)
    lon = as_field(field)[0]["lon"].values
    assert lon.min() >= -180 and lon.max() <= 180


# --- the process: no temporary folders left behind ----------------------------------------------


def test_importing_plot_leaves_no_temporary_folder(tmp_path: Path):
    env = {**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    code = "import workbench.plot, cartopy; print(cartopy.config['data_dir'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert not list(tmp_path.glob("aenp-cartopy-*")), list(tmp_path.iterdir())


# --- widgets --------------------------------------------------------------------------------------


def test_controls_show_a_vanished_dataset_file_instead_of_raising(tmp_path: Path):
    from widgets import Controls

    path = tmp_path / "mine.nc"
    _field().to_dataset().to_netcdf(path)
    controls = Controls(Experiment(dataset=str(path)))
    path.unlink()
    controls.model.value = "transformer"  # the change handler re-validates: the file is gone
    assert "does not exist" in controls.help.value and "mine.nc" in controls.help.value


def test_compare_panel_refresh_survives_a_run_arriving_mid_draw(monkeypatch):
    import widgets.compare as compare
    from workbench import run

    small = dict(steps=1, batch_size=2, test_tasks=4)
    first = run(Experiment(dataset="gibbs-1d", relaxation="strict", **small), progress=False)
    other = run(Experiment(dataset="gibbs-1d", group="none", relaxation="strict", **small), progress=False)
    panel = compare.ComparePanel(first)
    real = compare.LineSource

    def arriving(r, **kw):  # the training thread's _add lands while refresh() iterates the runs
        if "none" not in panel.runs:
            panel._add("none", other)
        return real(r, **kw)

    monkeypatch.setattr(compare, "LineSource", arriving)
    panel.refresh()
    assert "none" in panel.runs


def test_user_stations_in_0_360_longitudes_land_where_they_are(field_run):
    east = predict_map(field_run, context={"lon": [-105.0, -103.0], "lat": [35.0, 36.0], "value": [10, 12]})
    wrapped = predict_map(field_run, context={"lon": [255.0, 257.0], "lat": [35.0, 36.0], "value": [10, 12]})
    np.testing.assert_allclose(wrapped["mean"].values, east["mean"].values, rtol=1e-5)


# --- tasks that do not fit the model, through training and prediction -------------------------


def _gibbs_batch(n: int = 4) -> Task:
    return make_dataset("gibbs-1d").test_set(n, batch_size=n, seed=3)[0]


@pytest.mark.parametrize("model", ["conv", "transformer", "deepsets"])
def test_float64_tasks_are_cast_for_training_and_prediction(model):
    from workbench.train import train

    exp = Experiment(dataset="gibbs-1d", model=model, group="none" if model == "deepsets" else "T")
    net = build_model(exp, 1, 1, ((-2.0, 2.0),))
    task = _gibbs_batch().to("cpu", dtype=torch.float64)
    history = train(net, [task], 2, device="cpu", progress=False)
    assert len(history.loss) == 2 and all(np.isfinite(history.loss))
    assert net.predict(task).mean.dtype == torch.float32


@pytest.mark.parametrize("model", ["conv", "transformer", "deepsets"])
def test_tasks_of_other_dimensions_are_refused_by_name(model):
    from workbench.train import train

    exp = Experiment(dataset="gibbs-1d", model=model, group="none" if model == "deepsets" else "T")
    net = build_model(exp, 1, 1, ((-2.0, 2.0),))
    t = _gibbs_batch()
    planar = Task(torch.cat([t.xc, t.xc], -1), t.yc, torch.cat([t.xt, t.xt], -1), t.yt, t.mask_c)
    with pytest.raises(ValueError, match="dim_x = 2 but the model was built for dim_x = 1"):
        net.predict(planar)
    with pytest.raises(ValueError, match="dim_x = 2 but the model was built for dim_x = 1"):
        train(net, [planar], 1, device="cpu", progress=False)


def test_build_model_refuses_an_inverted_box():
    with pytest.raises(ValueError, match="inverted or empty on axis 0"):
        build_model(Experiment(dataset="gibbs-1d"), 1, 1, ((2.0, -2.0),))


def test_a_notebook_parameter_of_the_wrong_type_is_named_before_any_work(capsys):
    from workbench.cli import main

    assert main(["notebook", "02", "-p", "steps", "abc", "--no-progress"]) != 0
    assert "Experiment.steps = 'abc' must be an integer" in capsys.readouterr().err
