from __future__ import annotations

import pytest
import torch

from workbench.train import WARMUP_STEPS, _rate, train


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_rates_warm_up_linearly_then_follow_the_schedule(schedule: str) -> None:
    """A long schedule ramps up over WARMUP_STEPS, peaks at lr, and the cosine ends near zero; a short
    one warms up over 5% of its steps; a resumed schedule (begin > 0) warms up from its own start."""
    lr, length = 2e-3, 4000
    rates = [_rate(schedule, lr, step, 0, length) for step in range(1, length + 1)]
    assert rates[0] == pytest.approx(lr / WARMUP_STEPS)
    assert all(a < b for a, b in zip(rates[: WARMUP_STEPS - 1], rates[1:WARMUP_STEPS], strict=True))
    assert max(rates) == pytest.approx(lr, rel=1e-2)
    if schedule == "cosine":
        assert rates[-1] < 1e-5 * lr and rates[length // 2] == pytest.approx(lr / 2, rel=0.05)
    else:
        assert rates[WARMUP_STEPS - 1 :] == [lr] * (length - WARMUP_STEPS + 1)
    short = [_rate(schedule, lr, step, 0, 40) for step in range(1, 41)]
    assert short[0] == pytest.approx(lr / 2) and short[1] == pytest.approx(lr, rel=0.01)
    assert _rate(schedule, lr, 501, 500, length) == pytest.approx(lr / WARMUP_STEPS)


def _model(seed: int = 0):
    from workbench import Experiment
    from workbench.models import build_model

    torch.manual_seed(seed)
    return build_model(Experiment(relaxation="strict"), 1, 1, ((-4.0, 4.0),))


def test_reading_the_loss_every_few_steps_changes_nothing_but_when(gibbs, tmp_path):
    """The GPU path (sync_every > 1), run on the CPU: the same weights, history and callback calls
    as reading the loss every step, and checkpoints at the same steps."""
    runs = {}
    for sync in (1, 4):
        model, heard = _model(), []
        hist = train(
            model,
            gibbs.batches(4, seed=0),
            10,
            device="cpu",
            progress=False,
            sync_every=sync,
            callbacks=[lambda step, loss, heard=heard: heard.append((step, loss))],
            checkpoint_path=tmp_path / f"s{sync}.pt",
            checkpoint_every=3,
        )
        runs[sync] = (model.state_dict(), hist, heard)
    (w1, h1, c1), (w4, h4, c4) = runs[1], runs[4]
    assert all(torch.equal(w1[k], w4[k]) for k in w1)
    assert h1.loss == h4.loss and h1.step == h4.step == list(range(1, 11)) and h1.lr == h4.lr
    assert c1 == c4 == list(zip(h1.step, h1.loss, strict=True))
    with pytest.raises(ValueError, match="sync_every"):
        train(_model(), gibbs.batches(4, seed=0), 1, device="cpu", progress=False, sync_every=0)


def test_a_diverging_run_read_late_still_keeps_a_finite_checkpoint(gibbs, tmp_path):
    from workbench.checkpoint import load_checkpoint
    from workbench.train import TrainingDiverged

    model = _model()
    ckpt = tmp_path / "c.pt"
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        train(
            model,
            gibbs.batches(4, seed=0),
            200,
            lr=1e6,
            schedule="constant",
            device="cpu",
            progress=False,
            sync_every=16,
            checkpoint_path=ckpt,
            checkpoint_every=2,
        )
    fresh = _model(1)
    fresh.load_state_dict(load_checkpoint(ckpt)["model"])
    task = next(gibbs.batches(4, seed=5))
    assert torch.isfinite(fresh.loglik(task)).all()


def test_mixed_precision_and_compile_give_the_same_training(gibbs):
    """bfloat16 autocast trains to about the same loss; a compiled loss (a backend that compiles fast
    on any machine) gives the eager results."""
    base = train(_model(), gibbs.batches(8, seed=0), 6, device="cpu", progress=False)
    amp = train(_model(), gibbs.batches(8, seed=0), 6, device="cpu", progress=False, amp=True)
    assert all(abs(a - b) < 0.05 * abs(b) + 0.02 for a, b in zip(amp.loss, base.loss, strict=True))
    assert amp.loss != base.loss  # it did run in lower precision
    model = _model()
    compiled = train(model, gibbs.batches(8, seed=0), 6, device="cpu", progress=False, compile="aot_eager")
    assert compiled.loss == pytest.approx(base.loss, rel=1e-4, abs=1e-5)


def test_the_training_loss_carries_the_relaxations_penalty(gibbs):
    """A residual-pathway model is trained on its log-likelihood plus its weight-decay prior."""
    from workbench import Experiment
    from workbench.models import build_model

    torch.manual_seed(0)
    model = build_model(Experiment(relaxation="residual-pathway", strength=0.5), 1, 1, gibbs.box)
    task = next(gibbs.batches(4, seed=0)).for_model(model)
    penalty = float(model.penalty().detach())
    assert penalty > 0
    torch.manual_seed(1)
    expected = float(-model.loglik(task).mean()) + penalty
    torch.manual_seed(1)
    hist = train(model, gibbs.batches(4, seed=0), 1, device="cpu", progress=False)
    assert hist.loss[0] == pytest.approx(expected, rel=1e-5)
