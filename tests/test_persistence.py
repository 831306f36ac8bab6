"""Nothing lost: unique and atomic runs, a good last checkpoint, exact resume, self-contained runs."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from workbench import Experiment, load_run, run
from workbench.checkpoint import CheckpointError, load_checkpoint
from workbench.cli import main
from workbench.data.fields import save_field
from workbench.data.registry import make_dataset
from workbench.evaluate import mean_loglik
from workbench.models import build_model
from workbench.runs import RunFilesError, run_name, unique_path
from workbench.train import KeepBest, TasksExhausted, TrainingDiverged, TrainingInterrupted, train

TINY = dict(dataset="gibbs-1d", steps=6, batch_size=4, width=8, depth=2, test_tasks=16, device="cpu")
WALL = {"train_seconds", "steps_per_second"}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_run():
    return run(Experiment(**TINY), progress=False)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _same_metrics(a: dict, b: dict) -> None:
    assert {k: v for k, v in a.items() if k not in WALL} == {k: v for k, v in b.items() if k not in WALL}


def _field(seed: int = 1) -> xr.DataArray:
    lat, lon = np.linspace(30, 40, 12), np.linspace(-100, -85, 15)
    v = 20 + np.random.default_rng(seed).normal(0, 2, (5, 12, 15))
    return xr.DataArray(
        v,
        dims=("time", "lat", "lon"),
        coords={"time": np.arange(5), "lat": lat, "lon": lon},
        name="temp",
        attrs={"units": "degC"},
    )


# --- 1. run identity --------------------------------------------------------------------------------


def test_run_name_is_readable_and_decided_by_the_whole_experiment():
    base = Experiment(**TINY)
    name = run_name(base)
    assert name.startswith("gibbs-1d_conv_T_fixed-inputs_s0.5_")
    changes = [
        dict(seed=1),
        dict(lr=1e-3),
        dict(batch_size=8),
        dict(n_fixed=4),
        dict(width=16),
        dict(depth=3),
    ]
    names = {run_name(base.replace(**c)) for c in changes}
    assert len(names) == len(changes) and name not in names
    assert run_name(base) == name  # stable


def test_run_name_records_the_steps_done(tiny_run):
    exp = Experiment(**{**TINY, "steps": 50})
    assert "8of50steps" in run_name(exp, steps_done=8) and "_50steps" not in run_name(exp, steps_done=8)
    assert "_6steps" in run_name(tiny_run.experiment, tiny_run.history.steps_done)


def test_file_datasets_with_the_same_name_do_not_collide(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    one = save_field(_field(1), tmp_path / "a" / "temp.nc")
    two = save_field(_field(2), tmp_path / "b" / "temp.nc")
    e1 = Experiment(dataset=one, steps=3)
    e2 = Experiment(dataset=two, steps=3)
    assert run_name(e1) != run_name(e2) and run_name(e1).startswith("temp_")


def test_unique_path_appends_a_counter(tmp_path):
    assert unique_path(tmp_path / "r") == tmp_path / "r"
    (tmp_path / "r").mkdir()
    assert unique_path(tmp_path / "r") == tmp_path / "r-2"
    (tmp_path / "r-2").mkdir()
    assert unique_path(tmp_path / "r") == tmp_path / "r-3"


def test_save_never_overwrites_silently(tiny_run, tmp_path):
    path = tiny_run.save(tmp_path / "r")
    with pytest.raises(FileExistsError, match=f"{path}.*overwrite=True"):
        tiny_run.save(path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        tiny_run.save(tmp_path / "f", overwrite=True)
    tiny_run.metrics["loglik"] += 1.0
    try:
        tiny_run.save(path, overwrite=True)
        assert load_run(path).metrics["loglik"] == tiny_run.metrics["loglik"]
    finally:
        tiny_run.metrics["loglik"] -= 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "r"]


# --- 2. atomic saving, manifest -----------------------------------------------------------------------


def test_a_crash_while_saving_over_a_run_leaves_the_old_run_whole(tiny_run, tmp_path, monkeypatch):
    path = tiny_run.save(tmp_path / "r")
    old = (path / "metrics.json").read_text()
    run_module = sys.modules["workbench.runs"]

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(run_module, "save_checkpoint", boom)
    tiny_run.metrics["loglik"] += 1.0
    try:
        with pytest.raises(OSError, match="disk full"):
            tiny_run.save(path, overwrite=True)
    finally:
        tiny_run.metrics["loglik"] -= 1.0
    assert (path / "metrics.json").read_text() == old
    assert load_run(path).metrics == tiny_run.metrics
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temporary folder left behind


def test_load_run_refuses_files_of_different_saves(tiny_run, tmp_path):
    a = tiny_run.save(tmp_path / "a")
    other = run(Experiment(**{**TINY, "seed": 1}), progress=False)
    b = other.save(tmp_path / "b")
    assert json.loads((a / "manifest.json").read_text())["files"].keys() >= {"model.pt", "experiment.json"}
    shutil.copy(b / "model.pt", a / "model.pt")
    with pytest.raises(RunFilesError, match="model.pt.*manifest"):
        load_run(a)
    shutil.copy(b / "model.pt", tmp_path / "keep.pt")
    (a / "model.pt").unlink()
    with pytest.raises(RunFilesError, match="model.pt.*missing"):
        load_run(a)


def test_runs_saved_before_the_manifest_still_load_with_a_warning(tiny_run, tmp_path):
    path = tiny_run.save(tmp_path / "r")
    (path / "manifest.json").unlink()
    with pytest.warns(UserWarning, match="no manifest"):
        back = load_run(path)
    assert back.metrics == tiny_run.metrics


def test_a_corrupt_run_file_is_named(tiny_run, tmp_path):
    path = tiny_run.save(tmp_path / "r")
    (path / "manifest.json").unlink()
    (path / "experiment.json").write_text('{"experiment": {"dataset": ')
    with pytest.warns(UserWarning), pytest.raises(RunFilesError, match="experiment.json is not valid JSON"):
        load_run(path)
    path = tiny_run.save(tmp_path / "s")
    (path / "manifest.json").write_text("{oops")
    with pytest.raises(RunFilesError, match="manifest.json is not valid JSON"):
        load_run(path)
    path = tiny_run.save(tmp_path / "t")
    (path / "manifest.json").unlink()
    meta = json.loads((path / "experiment.json").read_text())
    meta["experiment"]["group"] = "SO3"
    (path / "experiment.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="experiment.json.*SO3"):
        load_run(path)


# --- 3. the last good checkpoint is good --------------------------------------------------------------


@pytest.mark.parametrize("lr", [1e3, 1e6, 1e10])
def test_the_checkpoint_kept_after_divergence_gives_a_finite_loglik(gibbs, gibbs_tasks, tmp_path, lr):
    exp = Experiment(**TINY)
    torch.manual_seed(0)
    model = build_model(exp, 1, 1, gibbs.box)
    ckpt = tmp_path / "c.pt"
    with pytest.raises(TrainingDiverged, match=f"last good checkpoint \\(step \\d+\\) is {ckpt}") as err:
        train(
            model,
            gibbs.batches(4, seed=0),
            200,
            lr=lr,
            checkpoint_path=ckpt,
            checkpoint_every=1,
            progress=False,
        )
    state = load_checkpoint(ckpt)
    step = state["step"]
    assert (state["history"]["step"] or [0])[-1] == step and f"step {step})" in str(err.value)
    model.load_state_dict(state["model"])
    assert math.isfinite(mean_loglik(model, gibbs_tasks))


# --- 4. exact resume ------------------------------------------------------------------------------------


def test_batches_can_start_anywhere_without_replay(gibbs):
    fields = make_dataset(_field())
    for sampler in (gibbs, fields):
        whole = list(islice(sampler.batches(3, seed=7), 5))
        tail = list(islice(sampler.batches(3, seed=7, start=3), 2))
        for a, b in zip(whole[3:], tail, strict=True):
            assert torch.equal(a.xc, b.xc) and torch.equal(a.yt, b.yt) and torch.equal(a.mask_c, b.mask_c)
        assert not torch.equal(whole[0].xc, whole[1].xc)


def test_train_resume_continues_the_cosine_decay_and_keep_best(gibbs, gibbs_tasks, tmp_path):
    def fresh():
        torch.manual_seed(0)
        model = build_model(Experiment(**TINY), 1, 1, gibbs.box)
        return model, KeepBest(model, gibbs_tasks[:1], every=3)

    kw = dict(lr=3e-3, schedule="cosine", progress=False)
    model, keep = fresh()
    whole = train(model, gibbs.batches(4, seed=0), 12, callbacks=[keep], **kw)

    model2, keep2 = fresh()
    stop, ckpt = threading.Event(), tmp_path / "c.pt"

    def halt(step, loss):
        if step == 5:
            stop.set()

    part = train(
        model2, gibbs.batches(4, seed=0), 12, callbacks=[keep2, halt], stop=stop, checkpoint_path=ckpt, **kw
    )
    assert part.stopped and part.steps_done == 5
    model3, keep3 = fresh()
    rest = train(model3, gibbs.batches(4, seed=0, start=5), 7, callbacks=[keep3], resume=ckpt, **kw)
    assert rest.lr == whole.lr  # the same decay, not a new one
    assert rest.loss == whole.loss
    _same_weights(model, model3)
    assert keep3.scores == keep.scores and keep3.best_step == keep.best_step


def test_resume_with_another_models_checkpoint_names_the_file(gibbs, tmp_path):
    ckpt = tmp_path / "c.pt"
    torch.manual_seed(0)
    train(
        build_model(Experiment(**TINY), 1, 1, gibbs.box),
        gibbs.batches(4, seed=0),
        2,
        checkpoint_path=ckpt,
        progress=False,
    )
    other = build_model(Experiment(model="deepsets", group="none"), 1, 1, gibbs.box)
    with pytest.raises(CheckpointError, match=f"{ckpt} does not fit this model"):
        train(other, gibbs.batches(4, seed=0), 2, resume=ckpt, progress=False)


def test_an_exhausted_task_iterator_is_a_clear_error_and_keeps_the_work(gibbs, tmp_path):
    torch.manual_seed(0)
    model = build_model(Experiment(**TINY), 1, 1, gibbs.box)
    ckpt = tmp_path / "c.pt"
    with pytest.raises(TasksExhausted, match=f"ran out after 3 steps.*{ckpt}"):
        train(
            model, iter(list(islice(gibbs.batches(4, seed=0), 3))), 10, checkpoint_path=ckpt, progress=False
        )
    assert load_checkpoint(ckpt)["history"]["step"] == [1, 2, 3]


def test_sigint_writes_a_final_checkpoint_and_resume_is_exact(gibbs, tmp_path):
    def fresh():
        torch.manual_seed(0)
        return build_model(Experiment(**TINY), 1, 1, gibbs.box)

    whole_model = fresh()
    whole = train(whole_model, gibbs.batches(4, seed=0), 10, progress=False)

    def ctrl_c(step, loss):
        if step == 4:
            signal.raise_signal(signal.SIGINT)

    ckpt = tmp_path / "c.pt"
    with pytest.raises(TrainingInterrupted, match=f"step 4.*{ckpt}"):
        train(fresh(), gibbs.batches(4, seed=0), 10, callbacks=[ctrl_c], checkpoint_path=ckpt, progress=False)
    assert load_checkpoint(ckpt)["history"]["step"][-1] == 4
    model = fresh()
    rest = train(model, gibbs.batches(4, seed=0, start=4), 6, resume=ckpt, progress=False)
    assert rest.loss == whole.loss
    _same_weights(model, whole_model)


def test_run_resume_refuses_another_experiment(tmp_path):
    ckpt = tmp_path / "c.pt"
    run(Experiment(**{**TINY, "steps": 2}), checkpoint_path=ckpt, evaluate=False, progress=False)
    with pytest.raises(ValueError, match=f"lr = 0.001.*{Experiment().lr}"):
        run(Experiment(**{**TINY, "lr": 1e-3}), resume=ckpt, progress=False)
    with pytest.raises(ValueError, match="step 2.*steps = 1"):
        run(Experiment(**{**TINY, "steps": 1}), resume=ckpt, progress=False)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        run(Experiment(**TINY), resume=tmp_path / "nope.pt", progress=False)


CHILD = """
import os, signal, sys
import torch
torch.set_num_threads({threads})
from workbench import Experiment, run

def die(step, loss):
    if step == 17:
        os.kill(os.getpid(), signal.SIGKILL)

exp = Experiment(**{exp!r})
run(exp, checkpoint_path={ckpt!r}, checkpoint_every=5, callbacks=[die], progress=False)
"""


@pytest.mark.parametrize("relaxation", ["strict", "fixed-inputs"])
def test_killed_and_resumed_run_is_bit_identical(tmp_path, relaxation):
    torch.set_num_threads(1)  # one thread here and in the child: the same arithmetic, bit for bit
    exp = Experiment(**{**TINY, "steps": 30, "relaxation": relaxation, "strength": 0.5, "lr": 3e-3})
    ckpt = str(tmp_path / "c.pt")
    code = CHILD.format(threads=1, exp=exp.to_dict(), ckpt=ckpt)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert load_checkpoint(ckpt)["history"]["step"][-1] == 15
    resumed = run(exp, resume=ckpt, progress=False)
    whole = run(exp, progress=False)
    _same_weights(resumed.model, whole.model)
    _same_metrics(resumed.metrics, whole.metrics)
    assert resumed.history.loss == whole.history.loss and resumed.history.steps_done == 30


# --- CLI ----------------------------------------------------------------------------------------------


def _cli(*args):
    return main(
        ["run", *map(str, args), "--dataset", "gibbs-1d", "--width", "8", "--depth", "2", "--no-progress"]
    )


def test_cli_checks_the_output_before_training(tmp_path, capsys, monkeypatch):
    run_module = sys.modules["workbench.runs"]

    def no_training(*a, **k):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(run_module, "run", no_training)
    (tmp_path / "file").write_text("x")
    assert _cli("--steps", 2, "--out", tmp_path / "file") == 2
    assert "is a file" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root can write anywhere
            assert _cli("--steps", 2, "--out", locked / "r") == 2
            assert "cannot write" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)
    assert _cli("--steps", 2, "--out", tmp_path / "file" / "r") == 2  # a folder inside a file
    assert "cannot write" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path / "nope.pt"), "--no-progress"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert _cli("--steps", 2, "--out", tmp_path / "full") == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cli_overwrite_resume_and_fallback(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    assert _cli("--steps", 3, "--test-tasks", 16, "--out", out, "--checkpoint-every", 1) == 0
    ckpt = Path(str(out) + ".checkpoint.pt")
    assert ckpt.is_file() and "--resume" in capsys.readouterr().err
    first = load_run(out)
    assert _cli("--steps", 3, "--test-tasks", 16, "--out", out, "--overwrite") == 0
    capsys.readouterr()
    # Resume from the checkpoint to more steps: the experiment comes from the checkpoint.
    assert (
        main(["run", "--resume", str(ckpt), "--steps", "5", "--out", str(tmp_path / "more"), "--no-progress"])
        == 0
    )
    more = load_run(tmp_path / "more")
    assert more.history.step == [1, 2, 3, 4, 5] and more.experiment.width == 8 == first.experiment.width
    capsys.readouterr()
    run_module = sys.modules["workbench.runs"]

    real_save = run_module.Run.save
    calls = []

    def broken(self, path, overwrite=False):
        calls.append(Path(path))
        if len(calls) == 1:
            raise OSError(f"no space left on device: {path}")
        return real_save(self, path, overwrite)

    monkeypatch.setattr(run_module.Run, "save", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert _cli("--steps", 2, "--test-tasks", 16, "--out", tmp_path / "x") == 1
    err = capsys.readouterr().err
    assert "no space left" in err and f"saved the run to {calls[1]} instead" in err
    assert calls[1].parent == tmp_path / "tmp" and load_run(calls[1]).history.steps_done == 2


# --- 8. self-contained runs ---------------------------------------------------------------------------


def test_a_run_survives_a_relative_moved_or_missing_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_field(_field(), tmp_path / "mine.nc")
    r = run(
        Experiment(dataset="mine.nc", steps=2, batch_size=2, test_tasks=4, width=8, depth=2), progress=False
    )
    path = r.save(tmp_path / "runs" / "r")
    meta = json.loads((path / "experiment.json").read_text())
    assert meta["experiment"]["dataset"] == str(tmp_path / "mine.nc") and len(meta["dataset_sha256"]) == 64
    monkeypatch.chdir(path)  # another working directory: the relative path would not resolve
    assert load_run(path).experiment.dataset == str(tmp_path / "mine.nc")
    (tmp_path / "mine.nc").rename(tmp_path / "moved.nc")
    with pytest.warns(UserWarning, match=f"{tmp_path / 'mine.nc'}.*missing"):
        back = load_run(path)
    assert back.metrics == r.metrics and back.history.steps_done == 2
    _same_weights(back.model, r.model)
    with pytest.raises(FileNotFoundError, match=f"needs the data.*{tmp_path / 'mine.nc'}"):
        back.predict_map()
    save_field(_field(3), tmp_path / "mine.nc")  # a different file under the old name
    with pytest.warns(UserWarning, match="changed since the run was saved"):
        load_run(path)


def test_cli_ctrl_c_writes_a_checkpoint_and_resume_finishes(tmp_path, capsys):
    torch.set_num_threads(1)  # tiny model: a second thread only adds contention
    out = tmp_path / "r"
    ckpt = Path(str(out) + ".checkpoint.pt")
    args = [
        "--dataset",
        "gibbs-1d",
        "--width",
        "8",
        "--depth",
        "2",
        "--batch-size",
        "4",
        "--test-tasks",
        "16",
    ]
    cmd = [sys.executable, "-m", "workbench.cli", "run", *args, "--steps", "100000", "--device", "cpu"]
    cmd += ["--no-progress", "--out", str(out), "--checkpoint-every", "100000"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 90
        while not ckpt.exists() and time.time() < deadline and child.poll() is None:
            time.sleep(0.1)  # the starting state is written once the first loss is finite
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=90)
    finally:
        child.kill()
    assert child.returncode == 130, err[-2000:]
    assert "interrupted (Ctrl-C)" in err and "--resume PATH" in err and str(ckpt) in err
    step = load_checkpoint(ckpt)["step"]
    assert 1 <= step < 100000 and not out.exists()
    assert (
        main(["run", "--resume", str(ckpt), "--steps", str(step + 2), "--out", str(out), "--no-progress"])
        == 0
    )
    assert load_run(out).history.step == list(range(1, step + 3))


def test_the_grid_placement_is_saved_and_older_runs_keep_theirs(tiny_run, tmp_path):
    """The grid is no weight but changes predictions: it round-trips, and runs saved before it was
    recorded (trained with the grid on contexts and targets) load with that grid."""
    task = make_dataset("gibbs-1d").test_set(8, batch_size=8, seed=5)[0]
    folder = tiny_run.save(tmp_path / "new")
    back = load_run(folder)
    assert back.model.grid_centre == tiny_run.model.grid_centre == "context"
    assert back.model.grid_span == tiny_run.model.grid_span
    assert torch.equal(back.predict(task).mean, tiny_run.predict(task).mean)
    meta = json.loads((folder / "experiment.json").read_text())
    del meta["grid"]
    (folder / "experiment.json").write_text(json.dumps(meta))
    (folder / "manifest.json").unlink()
    with pytest.warns(UserWarning, match="no manifest"):
        old = load_run(folder)
    assert old.model.grid_centre == "all"
