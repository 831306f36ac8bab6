"""Runs: the public API, save/load, checkpoints, reproducibility, bring-your-own tasks, the CLI."""

import json
import threading

import pytest
import torch

from workbench import Experiment, Task, load_run, run
from workbench.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from workbench.cli import main
from workbench.evaluate import mean_loglik
from workbench.models import build_model
from workbench.runs import RunFilesError
from workbench.train import KeepBest, TrainingDiverged, train

SMALL = dict(steps=10, test_tasks=32, batch_size=8)
TIMING = {"train_seconds", "steps_per_second"}


@pytest.fixture(scope="module")
def small_run():
    return run(Experiment(**SMALL), progress=False)


def test_run_reports_every_metric(small_run):
    m = small_run.metrics
    for key in (
        "loglik",
        "loglik_strict",
        "oracle_loglik",
        "oracle_gap",
        "delta_equiv",
        "orbit_error",
        "train_seconds",
        "steps_per_second",
    ):
        assert key in m and m[key] == m[key], key
    assert m["oracle_loglik"] > m["loglik"]  # the oracle is the ceiling
    assert m["oracle_gap"] == pytest.approx(m["oracle_loglik"] - m["loglik"])
    assert m["steps_per_second"] > 0 and small_run.history.steps_done == 10


def test_seeded_runs_are_reproducible(small_run):
    again = run(Experiment(**SMALL), progress=False)
    for k, v in small_run.metrics.items():
        if k not in TIMING:
            assert again.metrics[k] == v, k
    other = run(Experiment(**SMALL, seed=1), progress=False)
    assert other.metrics["loglik"] != small_run.metrics["loglik"]


def test_save_load_round_trip_gives_identical_predictions(small_run, tmp_path, gibbs_tasks):
    small_run.save(tmp_path / "r")
    back = load_run(tmp_path / "r")
    assert back.experiment == small_run.experiment and back.metrics == small_run.metrics
    task = gibbs_tasks[0]
    assert torch.equal(back.predict(task).mean, small_run.predict(task).mean)
    assert torch.equal(back.predict(task).stddev, small_run.predict(task).stddev)


def test_broken_checkpoints_give_clear_errors(small_run, tmp_path):
    path = small_run.save(tmp_path / "r") / "model.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunFilesError, match="model.pt does not belong.*manifest"):
        load_run(tmp_path / "r")
    (tmp_path / "r" / "manifest.json").unlink()  # a run saved before manifests: the checkpoint's own checks
    with pytest.warns(UserWarning, match="no manifest"), pytest.raises(CheckpointError, match="truncated"):
        load_run(tmp_path / "r")
    torch.save({"state_dict": {}}, path)  # someone else's checkpoint
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="not an AENP Workbench checkpoint"):
        load_run(tmp_path / "r")
    path.write_text("hello")
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    # A checkpoint of a different architecture is refused, not half-loaded.
    save_checkpoint(
        path, model=build_model(Experiment(model="deepsets", group="none"), 1, 1, ((-4, 4),)).state_dict()
    )
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="does not fit"):
        load_run(tmp_path / "r")


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(gibbs, tmp_path):
    torch.manual_seed(0)
    model = build_model(Experiment(), 1, 1, gibbs.box)
    good = list(gibbs.test_set(8, batch_size=8, seed=5))[0]
    stream = iter([good] * 4 + [None])

    class Poisoned:
        def __iter__(self):
            return self

        def __next__(self):
            t = next(stream)
            if t is None:  # the 5th batch makes the model output NaN
                with torch.no_grad():
                    next(model.parameters()).fill_(float("nan"))
                return good
            return t

    ckpt = tmp_path / "ckpt.pt"
    # The weights after step 4 never gave a finite loss (step 5's was NaN): the kept state is step 2's,
    # written once step 3's loss was finite.
    with pytest.raises(TrainingDiverged, match="step 5.*last good checkpoint \\(step 2\\)"):
        train(model, Poisoned(), 10, checkpoint_path=ckpt, checkpoint_every=2, progress=False)
    state = load_checkpoint(ckpt)
    assert state["history"]["step"][-1] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_stop_callbacks_and_resume(gibbs, tmp_path):
    torch.manual_seed(0)
    model = build_model(Experiment(), 1, 1, gibbs.box)
    stop = threading.Event()
    seen = []

    def cb(step, loss):
        seen.append((step, loss))
        if step == 3:
            stop.set()

    ckpt = tmp_path / "c.pt"
    hist = train(
        model, gibbs.batches(8, seed=0), 100, callbacks=[cb], stop=stop, checkpoint_path=ckpt, progress=False
    )
    assert hist.stopped and hist.steps_done == 3 and [s for s, _ in seen] == [1, 2, 3]
    more = train(model, gibbs.batches(8, seed=1), 2, resume=ckpt, checkpoint_path=ckpt, progress=False)
    assert more.step == [1, 2, 3, 4, 5]


def test_keep_best_restores_the_best_validation_weights(gibbs, gibbs_tasks):
    """Early stopping: after restore() the model scores exactly the best validation score seen."""
    torch.manual_seed(0)
    model = build_model(Experiment(), 1, 1, gibbs.box)
    keep = KeepBest(model, gibbs_tasks[:2], every=4)
    train(model, gibbs.batches(8, seed=0), 20, lr=3e-3, callbacks=[keep], progress=False)
    assert [s for s, _ in keep.scores] == [4, 8, 12, 16, 20]
    assert keep.best == max(v for _, v in keep.scores)
    assert keep.restore() == keep.best_step
    assert mean_loglik(model, gibbs_tasks[:2]) == pytest.approx(keep.best, abs=1e-6)
    with pytest.raises(ValueError, match="every"):
        KeepBest(model, gibbs_tasks, every=0)


def test_cosine_schedule_decays_the_learning_rate_and_constant_keeps_it(gibbs):
    torch.manual_seed(0)
    model = build_model(Experiment(), 1, 1, gibbs.box)
    hist = train(model, gibbs.batches(8, seed=0), 10, lr=1e-2, schedule="cosine", progress=False)
    assert hist.lr[0] == 1e-2 and all(a > b for a, b in zip(hist.lr, hist.lr[1:], strict=False))
    assert hist.lr[-1] < 0.03 * 1e-2
    flat = train(model, gibbs.batches(8, seed=1), 3, lr=1e-3, schedule="constant", progress=False)
    assert flat.lr == [1e-3] * 3
    with pytest.raises(ValueError, match="cosine"):
        train(model, gibbs.batches(8, seed=1), 1, schedule="linear", progress=False)
    with pytest.raises(ValueError, match="lr_schedule"):
        Experiment(lr_schedule="linear")


def test_bring_your_own_tasks(gibbs):
    # A process of the user's own: a sine with random phase, inputs already in their box.
    g = torch.Generator().manual_seed(0)

    def tasks(n):
        out = []
        for _ in range(n):
            xc, xt = torch.rand(4, 10, 1, generator=g) * 2 - 1, torch.rand(4, 20, 1, generator=g) * 2 - 1
            phase = torch.rand(4, 1, 1, generator=g) * 6
            out.append(Task(xc, torch.sin(3 * xc + phase), xt, torch.sin(3 * xt + phase)))
        return out

    r = run(Experiment(steps=5, batch_size=4), train_tasks=tasks(3), test_tasks=tasks(2), progress=False)
    assert "oracle_loglik" not in r.metrics and r.metrics["loglik"] == r.metrics["loglik"]
    assert all(-1.01 < lo < -0.9 and 0.9 < hi < 1.01 for lo, hi in r.box)
    with pytest.raises(ValueError, match="empty"):
        run(Experiment(steps=1), train_tasks=tasks(1), test_tasks=[], progress=False)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(dataset="mnist"), "dataset = 'mnist'.*gibbs-1d"),
        (dict(model="unet"), "model = 'unet'.*conv, transformer, deepsets"),
        (dict(group="SO3"), "group = 'SO3'.*T\\+flip"),
        (dict(relaxation="magic"), "relaxation = 'magic'.*fixed-inputs"),
        (dict(strength=1.5), "strength = 1.5.*\\[0, 1\\]"),
        (dict(strength=-0.1), "strength"),
        (dict(model="deepsets", group="T"), "does not go with model 'deepsets'"),
        (dict(model="transformer", relaxation="relaxed-conv"), "relaxed-conv.*needs model 'conv'"),
        (dict(group="T+C4"), "T\\+C4"),
        (dict(model="transformer", relaxation="residual-pathway"), "residual-pathway.*needs model 'conv'"),
        (dict(device="tpu"), "device = 'tpu'.*auto, cpu, cuda"),
        (dict(steps=-1), "steps"),
    ],
)
def test_bad_configs_name_field_value_and_choices(kw, match):
    with pytest.raises(ValueError, match=match):
        Experiment(**kw)


def test_cli_run_and_list(tmp_path, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "gibbs-1d" in out and "fixed-inputs" in out and "T+flip" in out
    assert (
        main(
            [
                "run",
                "--steps",
                "3",
                "--test-tasks",
                "16",
                "--out",
                str(tmp_path / "cli"),
                "--no-progress",
                "--json",
            ]
        )
        == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert metrics == json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert load_run(tmp_path / "cli").experiment.steps == 3
    assert main(["run", "--group", "nonsense"]) == 2
    assert "choose one of" in capsys.readouterr().err


def test_only_strict_models_are_charged_the_symmetry_headroom():
    from workbench.runs import is_strict

    base = Experiment(dataset="mountain-1d", group="T", relaxation="fixed-inputs", strength=0.5)
    assert not is_strict(base)
    assert is_strict(base.replace(relaxation="strict"))
    assert is_strict(base.replace(strength=0.0))  # dropout p = 1: the fixed inputs never act
    assert is_strict(base.replace(n_fixed=0))
    assert not is_strict(base.replace(group="none"))
    # Free networks at every strength: nothing strict to charge the headroom to.
    for relaxation in ("augmentation", "symmetry-cloning"):
        assert not is_strict(base.replace(relaxation=relaxation, strength=0.0))
    # Symmetrisation at strength 0 is equivariant (the free model averaged over the group).
    assert is_strict(base.replace(relaxation="symmetrisation", strength=0.0))
