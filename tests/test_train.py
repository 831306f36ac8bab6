from __future__ import annotations

import pytest

from workbench.train import WARMUP_STEPS, _rate


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
