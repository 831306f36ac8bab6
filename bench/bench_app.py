"""App feedback benchmark: what a person waits for after pressing Train, measured in-process.

The app's default experiment (Colorado, fixed inputs, early stopping, 256 test tasks) runs through
``TrainingPanel`` exactly as the Train button runs it (a background thread, updates posted to the
main thread). Timed: Train -> first loss point on the curve, the training speed the panel shows,
and the evaluation after training (the part the second progress bar follows). Also the size of what
one chart sends to the page: the figure state of the Colorado map (plotly.js goes once per page).
"""

from __future__ import annotations

import time

import numpy as np
from ipywidgets.widgets.widget import _remove_buffers

from widgets import MapView, Workbench
from widgets.plotview import plotly_js


def _state_bytes(view) -> int:
    import json

    state, _, buffers = _remove_buffers(view.get_state())
    return len(json.dumps(state)) + sum(len(b) for b in buffers)


def run(quick: bool) -> dict:
    steps = 20 if quick else 200
    repeats = 1 if quick else 3
    out: dict = {"runs": []}
    app = Workbench(save_dir=None)
    app.controls.steps.value = steps
    exp = app.controls.experiment
    out["experiment"] = {k: exp.to_dict()[k] for k in ("dataset", "steps", "validate_every", "test_tasks")}
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = app.train(block=True)
        p = app.training
        out["runs"].append(
            {
                "train_to_first_loss_s": p.first_point_seconds,
                "steps_per_second": r.metrics["steps_per_second"],
                "evaluation_s": p.eval_seconds,
                "train_to_tabs_filled_s": time.perf_counter() - t0,
                "eval_bar_steps": p.eval_progress.max,
            }
        )
    for key in ("train_to_first_loss_s", "steps_per_second", "evaluation_s", "train_to_tabs_filled_s"):
        out[f"median_{key}"] = float(np.median([r[key] for r in out["runs"]]))
    mv = app.map if isinstance(app.map, MapView) else None
    out["map_state_bytes"] = _state_bytes(mv.fig) if mv is not None else None
    out["plotly_js_bytes_once_per_page"] = len(plotly_js())
    return out
