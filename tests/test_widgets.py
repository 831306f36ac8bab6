"""The widgets' logic in the kernel (no browser): controls, background training, maps, panels."""

import math
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import widgets.training
from widgets import ComparePanel, Controls, EquivariancePanel, MapView, TrainingPanel, Workbench
from widgets.compare import label_of, siblings, slot_of
from workbench import Experiment, load_run, run
from workbench.config import RELAXATIONS
from workbench.data.registry import make_dataset
from workbench.train import TrainingDiverged

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(batch_size=4, test_tasks=16)


@pytest.fixture(autouse=True)
def _threads():
    # Overrides conftest's 2 threads: these models are tiny, and on a busy 2-core machine a second
    # thread per op costs far more in contention than it saves (10x slower measured).
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def gibbs_run():
    return run(Experiment(dataset="gibbs-1d", steps=10, **SMALL), progress=False)


@pytest.fixture(scope="module")
def colorado_run():
    return run(Experiment(dataset="colorado-temperature", steps=10, **SMALL), progress=False)


def _z(mv: MapView) -> np.ndarray:
    return np.array(mv.fig.data[0].z, dtype=float)


# --- controls ---------------------------------------------------------------------------------------


def test_controls_offer_only_groups_that_fit_the_data():
    c = Controls(Experiment(dataset="colorado-temperature"))
    assert "T+flip" not in c.group.options and "T+C4" in c.group.options
    assert "T+flip" in c.group.tooltip and "1-D" in c.group.tooltip
    c.group.value = "T+C4"
    c.dataset.value = "gibbs-1d"
    assert "T+C4" not in c.group.options and "T+flip" in c.group.options
    assert c.group.value == "T"  # the invalid choice fell back to a valid one
    assert "T+C4" in c.group.tooltip and "2-D" in c.group.tooltip
    assert c.experiment.dataset == "gibbs-1d"
    # The reasons are on the page, not only in a tooltip that a browser may never show.
    assert "group T+C4:" in c.help.value and "2-D" in c.help.value.split("group T+C4:")[1][:200]


def test_controls_model_family_limits_groups_and_disables_what_does_not_apply():
    c = Controls(Experiment(dataset="gibbs-1d"))
    c.model.value = "deepsets"
    assert c.group.options == ("none",)
    assert c.relaxation.disabled and c.strength.disabled
    assert "free" in c.relaxation.tooltip
    assert c.experiment.group == "none"
    c.model.value = "conv"
    assert "T" in c.group.options


def test_controls_relaxations_depend_on_the_group():
    c = Controls(Experiment(dataset="gp-2d"))
    assert "residual-pathway" in c.relaxation.options
    c.model.value = "transformer"
    assert "residual-pathway" not in c.relaxation.options
    assert "residual-pathway" in c.relaxation.tooltip and "needs model 'conv'" in c.relaxation.tooltip
    c.model.value = "conv"
    c.group.value = "T+C4"
    assert "relaxed-conv" in c.relaxation.options  # relaxed group convolutions
    c.relaxation.value = "strict"
    assert c.strength.disabled and "strict" in c.strength.tooltip
    c.relaxation.value = "fixed-inputs"
    assert not c.strength.disabled


def test_controls_round_trip_and_busy_state():
    exp = Experiment(
        dataset="gp-2d", group="T+D4", relaxation="strict", strength=0.25, steps=123, device="cpu"
    )
    c = Controls(exp)
    assert c.experiment == exp
    assert "aenp-steps" in c.steps._dom_classes
    c.steps.value = 7
    assert c.experiment.steps == 7
    c.set_busy(True)
    assert all(x.disabled for x in (c.dataset, c.model, c.group, c.relaxation, c.strength, c.steps, c.device))
    c.set_busy(False)
    assert not c.dataset.disabled and not c.steps.disabled
    assert c.strength.disabled  # still strict: nothing to set


# --- training ---------------------------------------------------------------------------------------


def test_training_panel_trains_in_a_thread_and_resets_the_buttons():
    panel = TrainingPanel(Experiment(dataset="gibbs-1d", steps=20, **SMALL), throttle=0.0)
    panel.train_button.click()
    assert panel.train_button.disabled and not panel.stop_button.disabled
    r = panel.wait(timeout=120)
    assert r is not None and r.history.steps_done == 20
    assert len(panel.fig.data[0].x) == 20 and len(panel.fig.data[1].y) == 20
    assert math.isfinite(panel.fig.data[2].y[0]) and panel.fig.data[2].y[0] == pytest.approx(
        -r.metrics["loglik"]
    )
    assert not panel.train_button.disabled and panel.stop_button.disabled
    assert "done: 20 steps" in panel.status.value and "test log-lik" in panel.status.value
    assert panel.progress.value == 20 and "loglik" in panel.metrics.value
    # Honest feedback: the true speed, the time to the first point, a finished evaluation bar.
    assert 0 < panel.first_point_seconds < r.history.seconds + 30
    assert panel.steps_per_second > 0 and "steps/s" in panel.progress_label.value
    bar = panel.eval_progress
    assert bar.value == bar.max == 5 and bar.layout.display == "" and panel.eval_seconds > 0
    assert "learning shortfall" in panel.metrics.value  # gibbs-1d has ceilings: the gap is split


def test_the_metrics_table_speaks_the_data_units(colorado_run):
    from widgets.training import metrics_html

    table = metrics_html(colorado_run)
    assert "°C" in table and "y units" not in table


def test_stop_ends_training_with_an_evaluated_saved_run(tmp_path):
    panel = TrainingPanel(Experiment(dataset="gibbs-1d", steps=1_000_000, **SMALL), save_dir=tmp_path)
    panel.train()
    deadline = time.time() + 60
    while len(panel._steps) < 3 and time.time() < deadline:
        time.sleep(0.02)
    panel.stop_button.click()
    r = panel.wait(timeout=60)
    assert not panel.running
    assert r.history.stopped and 3 <= r.history.steps_done < 1_000_000
    assert math.isfinite(r.metrics["loglik"])
    assert "stopped at step" in panel.status.value
    assert not panel.train_button.disabled and panel.stop_button.disabled
    # Stop leaves a consistent model on disk: loading it gives the same predictions.
    assert panel.saved_to is not None and panel.saved_to.parent == tmp_path
    assert str(panel.saved_to) in panel.status.value
    again = load_run(panel.saved_to)
    task = next(make_dataset("gibbs-1d").batches(2, seed=9))
    with torch.no_grad():
        assert torch.equal(again.model.predict(task).mean, r.model.cpu().predict(task).mean)


def test_every_train_gets_its_own_folder(tmp_path):
    exp = Experiment(dataset="gibbs-1d", steps=2, width=8, depth=2, **SMALL)
    panel = TrainingPanel(exp, save_dir=tmp_path)
    first = panel.train(block=True) and panel.saved_to
    second = panel.train(block=True) and panel.saved_to
    assert first != second and second.name == first.name + "-2"
    assert first.name.startswith("gibbs-1d_conv_T_fixed-inputs_s0.5_2steps_")
    assert load_run(first).history.steps_done == load_run(second).history.steps_done == 2
    other = TrainingPanel(exp.replace(seed=1), save_dir=tmp_path)
    other.train(block=True)
    assert other.saved_to.name not in (first.name, second.name)  # the seed is part of the name
    assert not list((tmp_path / ".checkpoints").glob("*.pt"))  # finished runs leave no checkpoint


def test_train_after_stop_continues_the_stopped_run_exactly(tmp_path):
    exp = Experiment(dataset="gibbs-1d", steps=12, width=8, depth=2, device="cpu", **SMALL)
    panel = TrainingPanel(exp, save_dir=tmp_path, throttle=0.0)
    inner = panel._callback

    def stop_at_5(step, loss):
        inner(step, loss)
        if step == 5:
            panel._stop.set()

    panel._callback = stop_at_5
    part = panel.train(block=True)
    assert part.history.steps_done == 5 and "Train continues from step 5" in panel.status.value
    assert "_5of12steps_" in panel.saved_to.name
    stopped_folder = panel.saved_to
    panel._callback = inner
    whole = panel.train(block=True)
    assert whole.history.step == list(range(1, 13)) and panel.progress.value == 12
    assert len(panel.fig.data[0].x) == 12  # the curve kept the first five steps
    reference = run(exp, progress=False)
    for k, v in reference.model.state_dict().items():
        assert torch.equal(whole.model.state_dict()[k], v), k
    assert stopped_folder.is_dir() and panel.saved_to != stopped_folder  # both parts kept
    # Changed settings start afresh.
    panel._source = exp.replace(steps=12, lr=1e-3)
    panel._callback = stop_at_5
    panel.train(block=True)
    panel._source = exp.replace(seed=1)
    panel._callback = inner
    again = panel.train(block=True)
    assert again.history.step[0] == 1


def test_a_failing_run_is_reported_and_leaves_the_app_usable(monkeypatch):
    def diverge(*args, **kwargs):
        raise TrainingDiverged("loss became nan at step 3. Try a smaller learning rate.")

    monkeypatch.setattr(widgets.training.workbench, "run", diverge)
    app = Workbench(Experiment(dataset="gibbs-1d", steps=5, **SMALL))
    app.train()
    with pytest.raises(TrainingDiverged):
        app.wait(timeout=30)
    assert (
        "TrainingDiverged" in app.training.status.value
        and "smaller learning rate" in app.training.status.value
    )
    assert not app.training.train_button.disabled and app.training.stop_button.disabled
    assert not app.controls.dataset.disabled and app.run is None


def test_invalid_settings_say_why_and_start_nothing():
    panel = TrainingPanel(lambda: Experiment(dataset="gibbs-1d", group="T+C4"))
    assert panel.train() is None
    assert "cannot train" in panel.status.value and "2-D" in panel.status.value
    assert not panel.running and not panel.train_button.disabled


# --- maps -------------------------------------------------------------------------------------------


def test_colorado_map_has_heatmap_contours_borders_and_stations(colorado_run):
    mv = MapView(colorado_run, resolution=0.2)
    kinds = [(t.type, t.name) for t in mv.fig.data]
    assert kinds[0][0] == "heatmap" and ("contour", "elevation every 500 m") in kinds
    states = next(t for t in mv.fig.data if t.name == "states")
    lon = np.asarray(states.x, dtype=float)
    assert np.nanmin(lon) < -102.05 < np.nanmax(lon)  # Colorado's eastern border is on the map
    heat = mv.fig.data[0]
    assert np.shape(heat.customdata) == np.shape(heat.z)  # elevation in the hover
    assert "elevation" in heat.hovertemplate
    assert len(next(t for t in mv.fig.data if t.name == "context").x) > 100


def test_adding_an_observation_redraws_the_map_and_clear_restores_it(colorado_run):
    mv = MapView(colorado_run, resolution=0.2)
    z0 = _z(mv)
    assert mv.add_observation(-105.5, 39.5, value=45.0) == 45.0
    z1 = _z(mv)
    assert mv.n_added == 1 and "added observations: 1" in mv.info.value
    assert not np.allclose(z0, z1)
    assert list(mv.fig.data[-1].x) == [-105.5]
    assert mv.last_update_ms is not None
    mv.clear()
    assert mv.n_added == 0 and np.allclose(_z(mv), z0)


def test_a_click_on_the_heatmap_adds_an_observation_with_the_chosen_value(colorado_run):
    mv = MapView(colorado_run, resolution=0.2)
    mv.source.value = "nearest station"
    # The browser reports the clicked position and, separately, the station plotly hovered.
    mv.fig.click(-104.9, 39.7, trace=5, point_x=-104.0, point_y=39.0)
    assert mv.n_added == 1
    assert mv.layer.added[0][:2] == (-104.9, 39.7)  # where the click landed, not the hovered station
    cx, cy, cv = mv.layer.snap.context
    nearest = cv[np.argmin((cx + 104.9) ** 2 + (cy - 39.7) ** 2)]
    assert mv.layer.added[0][2] == pytest.approx(nearest, abs=1e-9)
    mv.source.value = "current mean"
    mv.add_observation(-103.0, 38.0)
    assert mv.n_added == 2


def test_map_variables_breaking_is_centred_and_fixed_input_channels_show(colorado_run):
    mv = MapView(colorado_run, resolution=0.2)
    assert {"mean", "std", "mean_strict", "breaking", "fixed_inputs"} <= set(mv.variable.options)
    mv.show("breaking")
    assert mv.fig.data[0].zmid == 0
    mv.show("fixed_inputs", 2)
    assert mv.channel.layout.display == ""
    np.testing.assert_allclose(_z(mv), mv.layer.snap.fixed_inputs[2])
    mv.show("std")
    assert mv.fig.data[0].zmid is None and mv.channel.layout.display == "none"


def test_1d_view_shows_context_mean_band_strict_and_oracle(gibbs_run):
    mv = MapView(gibbs_run)
    names = [t.name for t in mv.fig.data]
    for name in ("context", "mean (fixed inputs on)", "model +-2 std", "GP oracle mean", "GP oracle +-2 std"):
        assert name in names
    assert any(n.startswith("strict component") for n in names)
    mean = mv.fig.data[names.index("mean (fixed inputs on)")]
    y0 = np.array(mean.y, dtype=float)
    oracle = np.array(mv.fig.data[names.index("GP oracle mean")].y, dtype=float)
    assert len(y0) == len(oracle) == 400 and np.isfinite(oracle).all()
    mv.add_observation(0.3, 2.5)  # 1-D: the click's height is the value
    assert mv.n_added == 1 and list(mv.fig.data[-1].y) == [2.5]
    assert not np.allclose(np.array(mean.y, dtype=float), y0)
    mv.fig.click(-1.0, -1.5)
    assert mv.n_added == 2 and mv.layer.added[-1][2] == -1.5


# --- panels -----------------------------------------------------------------------------------------


def test_equivariance_panel_strict_component_is_equivariant(gibbs_run):
    panel = EquivariancePanel(gibbs_run, n_tasks=16)
    model, strict = panel.fig.data[0], panel.fig.data[1]
    assert len(model.x) == len(panel.shifts) == 7
    assert model.y[0] == pytest.approx(0.0, abs=1e-6)
    assert max(model.y) > 1e-4  # the fixed inputs break translation equivariance
    assert max(strict.y) < 1e-4
    assert "largest orbit error" in panel.status.value


def test_rotation_group_gets_an_angle_curve_and_a_plane_map():
    r = run(Experiment(dataset="gp-2d", group="T+C4", steps=2, **SMALL), progress=False)
    panel = EquivariancePanel(r, n_tasks=16, shifts=[0.0, 0.5], angles=[0, 45, 90])
    assert set(panel.results["angle"]) == {"model", "strict"}
    assert len(panel.fig.data) == 4 and list(panel.fig.data[2].x) == [0, 45, 90]
    mv = MapView(r)
    assert [t.type for t in mv.fig.data] == ["heatmap", "scatter", "scatter"]  # no borders on x/y
    assert "oracle_mean" in mv.variable.options
    z0 = _z(mv)
    mv.add_observation(0.0, 0.0, value=3.0)
    assert not np.allclose(_z(mv), z0)


def test_compare_panel_trains_the_missing_siblings(gibbs_run):
    panel = ComparePanel(gibbs_run)
    assert set(panel.plans) == {"none", "strict", "fixed-inputs", "none-transformer"}
    assert set(panel.missing) == {"none", "strict", "none-transformer"}
    assert "not trained yet" in panel.table.value
    # Comparators are named for what they are.
    assert "approximate, p = 0" in panel.table.value and "absolute positions" in panel.table.value
    panel.train_missing(block=True)
    assert not panel.missing and panel.status.value == "done"
    assert panel.runs["strict"].experiment.relaxation == "strict"
    assert panel.runs["none"].experiment.group == "none"
    assert panel.runs["none"].experiment.steps == gibbs_run.experiment.steps
    assert panel.runs["none-transformer"].experiment.model == "transformer"
    assert len(re.findall(r"<td>-?\d+\.\d{3}</td>", panel.table.value)) >= 16
    names = [t.name for t in panel.fig.data]
    assert {"none", "strict", "fixed-inputs", "GP oracle"} <= set(names)
    # The gap ladder: one row per model, the split stacked up to the oracle, the ceilings drawn.
    gaps = {t.name: t for t in panel.gaps.data}
    assert len(gaps["test log-lik"].y) == 4
    assert {"learning shortfall", "Gaussian limit", "A: oracle", "D: best strictly equivariant"} <= set(gaps)
    strict_row = list(gaps["test log-lik"].y).index("strictly equivariant")
    m = panel.runs["strict"].metrics
    assert gaps["learning shortfall"].x[strict_row] == pytest.approx(max(m["learning_shortfall"], 0))


@pytest.mark.parametrize("relaxation", sorted(set(RELAXATIONS) - {"strict"}))
def test_compare_puts_each_relaxation_beside_none_and_strict(relaxation):
    exp = Experiment(dataset="gibbs-1d", group="T", relaxation=relaxation, strength=0.3, steps=4)
    plans = siblings(exp)
    assert plans[relaxation].relaxation == relaxation and plans[relaxation].strength == 0.3
    assert plans["strict"].relaxation == "strict" and plans["none"].group == "none"
    assert (
        slot_of(plans[relaxation]) == relaxation and relaxation in label_of(relaxation, exp) + "fixed-inputs"
    )


def test_compare_panel_for_real_data_shows_log_likelihoods_without_ceilings(colorado_run):
    panel = ComparePanel(runs={"fixed-inputs": colorado_run})
    assert [t.type for t in panel.gaps.data] == ["scatter"]  # no ceilings known for real data
    assert list(panel.gaps.data[0].x) == [pytest.approx(colorado_run.metrics["loglik"])]
    assert panel._box.layout.display == "none"
    assert "deepsets" not in panel.table.value


def test_workbench_fills_its_tabs(gibbs_run):
    app = Workbench(run=gibbs_run)
    assert isinstance(app.map, MapView) and isinstance(app.equivariance, EquivariancePanel)
    assert app.tabs.children[0].children[0] is app.map
    assert app.controls.experiment == gibbs_run.experiment
    assert not app.equivariance.results  # computed when its tab is opened
    app.tabs.selected_index = 2
    assert app.equivariance.running or app.equivariance.results  # in the background, with a bar
    results = app.equivariance.compute()
    assert max(results["shift"]["strict"]) < 1e-4
    assert app.equivariance.progress.value == app.equivariance.progress.max
    views = (app.map, app.map.fig, app.compare, app.equivariance.fig)
    app.controls.steps.value = 5
    r = app.train(block=True)
    assert r.history.steps_done == 5 and app.run is r and app.map.run is r
    assert not app.controls.dataset.disabled and "done" in app.training.status.value
    # A second run is shown in the same widgets: nothing new for the page to start up.
    assert (app.map, app.map.fig, app.compare, app.equivariance.fig) == views
    assert app.compare.runs["fixed-inputs"] is r
    # The Equivariance tab is open, so the new run's curves are computed at once (wait for them).
    assert app.equivariance.run is r and app.equivariance.compute()["shift"]["model"].size == 7


def test_the_library_never_imports_widgets():
    pattern = re.compile(r"^\s*(from|import)\s+widgets\b", re.M)
    offenders = [p.name for p in (ROOT / "workbench").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_early_stopping_is_on_by_default_where_there_is_a_validation_split():
    c = Controls(Experiment(dataset="colorado-temperature", steps=300))
    assert c.early.value and not c.early.disabled
    assert c.experiment.validate_every == 30
    c.early.value = False
    assert c.experiment.validate_every == 0
    c.dataset.value = "gibbs-1d"  # fresh tasks every step: nothing to stop on
    assert c.early.disabled and c.experiment.validate_every == 0
    assert "early stopping: this dataset has no validation split" in c.help.value
