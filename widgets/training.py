"""Train and Stop buttons, a progress bar and a live loss curve around ``workbench.run``.

Training runs in a background thread so the notebook stays responsive. The thread never touches a
widget itself: it posts each update to the kernel's main thread (:mod:`widgets.mainthread`), at most
every ``throttle`` seconds. Whatever happens (finish, Stop, an error), the buttons end in the same
idle state.
"""

from __future__ import annotations

import html
import math
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go

import workbench
from workbench.config import Experiment
from workbench.runs import METRICS, Run, experiment_record, run_name, settings_differ, unique_path
from workbench.units import pretty

from .controls import Controls
from .mainthread import drain, on_main
from .plotview import PlotView
from .sources import data_units

ExperimentSource = Experiment | Controls | Callable[[], Experiment]

#: Most points the loss curve sends to the browser (longer histories are thinned evenly).
MAX_CURVE_POINTS = 2000
#: Steps between the checkpoints of a run started from the panel (one is also written on Stop).
CHECKPOINT_EVERY = 200


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= MAX_CURVE_POINTS:
        return x, y
    idx = np.linspace(0, len(x) - 1, MAX_CURVE_POINTS).round().astype(int)
    return x[idx], y[idx]


def _smooth(y: np.ndarray) -> np.ndarray:
    """Running mean over ~2% of the steps: the trend through the noise of single batches."""
    k = max(1, len(y) // 50)
    if k == 1:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    out = np.empty_like(y)
    out[k - 1 :] = (c[k:] - c[:-k]) / k
    out[: k - 1] = c[1:k] / np.arange(1, k)
    return out


def _run_name(exp: Experiment, steps_done: int | None = None) -> str:
    """A folder name for a run (see :func:`workbench.runs.run_name`: the whole experiment decides it)."""
    return run_name(exp, steps_done)


def metrics_html(r: Run) -> str:
    """The run's metrics as a table with units from the data (°C, not "y units") and what each means."""
    units = pretty(data_units(r)) or "y units"
    rows = []
    known = [k for k in METRICS if k in r.metrics] + [k for k in r.metrics if k not in METRICS]
    for k in known:
        unit, meaning = METRICS.get(k, ("", ""))
        unit = units if unit == "y units" else unit
        v = r.metrics[k]
        rows.append(
            f"<tr title='{html.escape(meaning)}'><td>{html.escape(k)}</td>"
            f"<td style='text-align:right'>{v:.5g}</td><td>{html.escape(unit)}</td></tr>"
        )
    split = ""
    m = r.metrics
    if all(k in m for k in ("oracle_gap", "gaussian_limit", "symmetry_headroom", "learning_shortfall")):
        split = (
            f"<div><b>gap to the oracle {m['oracle_gap']:.3f}</b> = Gaussian limit "
            f"{m['gaussian_limit']:.3f} + symmetry headroom {m['symmetry_headroom']:.3f} + learning "
            f"shortfall {m['learning_shortfall']:.3f} nats/target (see the Compare tab)</div>"
        )
    table = "".join(rows)
    return (
        "<details class='aenp-metrics'><summary>test metrics (hover a row for its meaning)</summary>"
        f"<table style='font-size:85%'>{table}</table></details>{split}"
    )


class TrainingPanel(w.VBox):
    """Train / Stop, progress and a live loss curve for the experiment of ``source``.

    ``source`` is an :class:`Experiment`, the :class:`Controls` that describe one, or a function
    returning one. ``on_finish`` callbacks get the finished :class:`Run` (in the training thread).
    With ``save_dir`` every finished or stopped run is saved there (``load_run`` reads it back), each
    in a folder of its own named after the experiment (``-2``, ``-3`` when the name is taken);
    ``saved_to`` is its path. A run keeps a checkpoint (under ``save_dir/.checkpoints``, else the
    temp directory); after Stop, Train continues that run exactly when the settings are unchanged
    (``train(fresh=True)`` starts afresh).
    """

    def __init__(
        self,
        source: ExperimentSource,
        *,
        throttle: float = 0.2,
        on_start: Callable[[], None] | None = None,
        on_finish: Callable[[Run], None] | None = None,
        run_kwargs: dict[str, Any] | None = None,
        save_dir: str | Path | None = None,
    ) -> None:
        self._source = source
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.saved_to: Path | None = None
        self.throttle = float(throttle)
        self.run_kwargs = dict(run_kwargs or {})
        self._on_start = [on_start] if on_start else []
        self._on_finish = [on_finish] if on_finish else []
        self._on_end: list[Callable[[], None]] = []
        self.run: Run | None = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._steps: list[int] = []
        self._losses: list[float] = []
        self._last_draw = 0.0
        self._t0 = 0.0
        self._first: tuple[float, int] | None = None
        self._total = 0
        #: The stopped run Train continues: its settings, checkpoint and history.
        self._stopped: tuple[dict[str, Any], Path, Any] | None = None
        #: Seconds from pressing Train to the first loss point of the last run.
        self.first_point_seconds: float | None = None
        #: Seconds the evaluation after the last run took.
        self.eval_seconds: float | None = None
        self.eval_started = 0.0

        self.train_button = w.Button(description="Train", icon="play", button_style="success")
        self.train_button.add_class("aenp-train")
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="danger", disabled=True)
        self.stop_button.add_class("aenp-stop")
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="300px"))
        self.progress_label = w.Label("")
        self.eval_progress = w.IntProgress(
            value=0, min=0, max=1, description="evaluation", layout=w.Layout(width="260px", display="none")
        )
        self.eval_progress.add_class("aenp-eval")
        self.status = w.HTML("ready: press Train")
        self.status.add_class("aenp-status")
        self.metrics = w.HTML("")
        self.fig = PlotView(
            go.Figure(
                [
                    go.Scatter(name="loss per step", mode="lines", line=dict(width=1, color="#9ecae1")),
                    go.Scatter(name="running mean", mode="lines", line=dict(width=2, color="#08519c")),
                    go.Scatter(
                        name="test (fixed inputs on)", mode="markers", marker=dict(size=11, color="#d62728")
                    ),
                    go.Scatter(
                        name="test, strict component",
                        mode="markers",
                        marker=dict(size=11, symbol="diamond", color="#2ca02c"),
                    ),
                ],
                layout=dict(
                    height=260,
                    margin=dict(l=60, r=10, t=30, b=40),
                    title=dict(text="training loss", font=dict(size=13)),
                    xaxis_title="step",
                    yaxis_title="-log-lik per target (nats)",
                    legend=dict(orientation="h", y=-0.25),
                ),
            )
        )
        self.train_button.on_click(lambda _: self.train())
        self.stop_button.on_click(lambda _: self.stop())
        bar = w.HBox(
            [self.train_button, self.stop_button, self.progress, self.progress_label, self.eval_progress]
        )
        super().__init__([bar, self.status, self.fig, self.metrics])
        self.add_class("aenp-training")

    # --- public API -------------------------------------------------------------------------------

    @property
    def experiment(self) -> Experiment:
        """The experiment the next Train press will run."""
        src = self._source
        if isinstance(src, Experiment):
            return src
        if isinstance(src, Controls):
            return src.experiment
        return src()

    @property
    def running(self) -> bool:
        """Whether a training thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def add_on_start(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when training starts (e.g. to lock other widgets)."""
        self._on_start.append(callback)

    def add_on_finish(self, callback: Callable[[Run], None]) -> None:
        """Call ``callback(run)`` in the training thread after a run finished (also after Stop)."""
        self._on_finish.append(callback)

    def add_on_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` in the training thread whenever training ends, also after an error."""
        self._on_end.append(callback)

    def train(self, block: bool = False, fresh: bool = False) -> Run | None:
        """Start training in a background thread; ``block=True`` waits and re-raises a failure.

        After Stop, this continues the stopped run (same settings) from its checkpoint, unless ``fresh``.
        """
        if self.running:
            return self.wait() if block else None
        try:
            exp = self.experiment
        except ValueError as err:  # invalid settings: say so, start nothing
            self.error = err
            self._set_status(f"cannot train: {err}", error=True)
            if block:
                raise
            return None
        resume = None if fresh else self._continuable(exp)
        self.error, self.run = None, None
        self.first_point_seconds, self._first = None, None
        self._stop.clear()
        # A continued run keeps its curve so far.
        earlier = self._stopped[2] if resume is not None else None
        self._steps = list(earlier.step) if earlier is not None else []
        self._losses = list(earlier.loss) if earlier is not None else []
        self._stopped = None
        self._total = exp.steps
        self._t0 = time.perf_counter()
        self._last_draw = 0.0
        self.train_button.disabled = True
        self.stop_button.disabled = False
        done = self._steps[-1] if self._steps else 0
        self.progress.max, self.progress.value, self.progress.bar_style = max(exp.steps, 1), done, ""
        self.metrics.value = ""
        self.eval_progress.layout.display, self.eval_seconds = "none", None
        with self.fig.batch_update():
            for trace in self.fig.data:
                trace.x, trace.y = [], []
        what = f"{exp.model} / {exp.group} / {exp.relaxation} on {exp.dataset}"
        how = f"continuing from step {done}: " if resume is not None else "training "
        self._set_status(f"{how}{what} ...")
        try:
            for cb in self._on_start:
                cb()
            self._thread = threading.Thread(
                target=self._work, args=(exp, resume), name="aenp-train", daemon=True
            )
            self._thread.start()
        except Exception as err:  # nothing runs: put every widget back in its idle state
            self.error = err
            self._set_status(f"could not start: {type(err).__name__}: {err}", error=True)
            self._finish()
            raise
        return self.wait() if block else None

    def _continuable(self, exp: Experiment) -> Path | None:
        """The checkpoint of the stopped run that ``exp`` continues, if it does."""
        if self._stopped is None:
            return None
        settings, ckpt, history = self._stopped
        if history.steps_done >= exp.steps or not ckpt.is_file() or settings_differ(exp, settings):
            return None
        return ckpt

    def _checkpoint_file(self, exp: Experiment) -> Path:
        """A fresh checkpoint file for a run started here."""
        folder = self.save_dir / ".checkpoints" if self.save_dir is not None else Path(tempfile.gettempdir())
        return folder / f"{_run_name(exp)}-{uuid.uuid4().hex[:8]}.checkpoint.pt"

    def stop(self) -> None:
        """Ask training to stop after the current step; the run is still evaluated and kept."""
        if self.running:
            self._stop.set()
            self.stop_button.disabled = True
            self._set_status("stopping after this step, then evaluating ...")

    def wait(self, timeout: float | None = None, raise_error: bool = True) -> Run | None:
        """Join the training thread; re-raise its error (unless ``raise_error=False``); the run."""
        if self._thread is not None:
            self._thread.join(timeout)
        drain()  # the updates the thread posted, applied before the caller looks at the widgets
        if raise_error and self.error is not None and not self.running:
            raise self.error
        return self.run

    # --- the training thread ----------------------------------------------------------------------

    def _callback(self, step: int, loss: float) -> None:
        now = time.perf_counter()
        first = self._first is None
        if first:
            self._first = (now, step)
            self.first_point_seconds = now - self._t0
        self._steps.append(step)
        self._losses.append(loss)
        if now - self._last_draw >= self.throttle or step >= self._total or first:
            self._last_draw = now
            on_main(self._draw_progress)
            if step >= self._total or self._stop.is_set():
                self._set_status("evaluating on the test tasks ...")

    @property
    def steps_per_second(self) -> float:
        """Training speed since the first step (setup time excluded); 0 before two steps."""
        if len(self._steps) < 2 or self._first is None:
            return 0.0
        t, s = self._first
        return (self._steps[-1] - s) / max(time.perf_counter() - t, 1e-9)

    def _draw_progress(self) -> None:
        if not self._steps:
            return
        steps, losses = list(self._steps), list(self._losses)  # the thread keeps appending
        step, loss = steps[-1], losses[-1]
        rate = self.steps_per_second
        speed = f"  {rate:.3g} steps/s" if rate > 0 else ""
        self.progress.value = min(step, self.progress.max)
        self.progress_label.value = f"step {step}/{self._total}  loss {loss:.3f}{speed}"
        x, y = np.asarray(steps), np.asarray(losses)
        xs, ys = _thin(x, y)
        xm, ym = _thin(x, _smooth(y))
        with self.fig.batch_update():
            self.fig.data[0].x, self.fig.data[0].y = xs, ys
            self.fig.data[1].x, self.fig.data[1].y = xm, ym

    def _draw_evaluation(self, what: str, done: int, total: int) -> None:
        bar = self.eval_progress
        if done == 0:
            self.eval_started = time.perf_counter()
        bar.layout.display = ""
        bar.max, bar.value = total, done
        bar.bar_style = "success" if done >= total else "info"
        if done >= total:
            self.eval_seconds = time.perf_counter() - self.eval_started
            self._set_status(f"evaluated in {self.eval_seconds:.1f} s")
        else:
            self._set_status(f"evaluating on the test tasks: {what} ({done + 1}/{total}) ...")

    def _work(self, exp: Experiment, resume: Path | None) -> None:
        kwargs = dict(self.run_kwargs)
        ours = "checkpoint_path" not in kwargs  # the panel made the file, so it may delete it
        ckpt = resume or kwargs.pop("checkpoint_path", None) or self._checkpoint_file(exp)
        kwargs.setdefault("checkpoint_every", CHECKPOINT_EVERY)
        try:
            r = workbench.run(
                exp,
                callbacks=[self._callback],
                stop=self._stop,
                progress=False,
                on_evaluate=lambda what, done, total: on_main(self._draw_evaluation, what, done, total),
                checkpoint_path=ckpt,
                resume=resume,
                **kwargs,
            )
            on_main(self._draw_progress)
            on_main(self._show_result, r)
            self.run = r
            saved = self._save(r, exp)
            for cb in self._on_finish:
                cb(r)
            done = r.history.steps_done
            how = f"stopped at step {done} of {exp.steps}" if r.history.stopped else f"done: {done} steps"
            ll = r.metrics.get("loglik", math.nan)
            more = ""
            if r.history.stopped and done < exp.steps:
                self._stopped = (experiment_record(exp), Path(ckpt), r.history)
                more = f"; Train continues from step {done} (change a setting to start afresh)"
            elif ours:
                Path(ckpt).unlink(missing_ok=True)  # finished and saved: the checkpoint has done its job
            self._set_status(
                f"{how} in {r.history.seconds:.1f} s; test log-lik {ll:.3f} nats/target{saved}{more}"
            )
            on_main(setattr, self.progress, "bar_style", "warning" if r.history.stopped else "success")
        except Exception as err:  # shown in the panel: a thread has nobody else to tell
            self.error = err
            on_main(setattr, self.progress, "bar_style", "danger")
            self._set_status(f"{type(err).__name__}: {err}", error=True)
        finally:
            on_main(self._finish)

    def _save(self, r: Run, exp: Experiment) -> str:
        """Save ``r`` in a folder of its own under ``save_dir``; the status text saying where (or why not)."""
        if self.save_dir is None:
            return ""
        target = unique_path(self.save_dir / _run_name(exp, r.history.steps_done))
        try:
            self.saved_to = r.save(target)
        except OSError as err:  # the run is still in memory: say so rather than lose it
            return f"; NOT saved to {target} ({err}): the run is in .run, save it with .run.save(PATH)"
        return f"; saved to {self.saved_to}"

    def _finish(self) -> None:
        """The idle state: Train on, Stop off, and whoever locked widgets for the run unlocks them."""
        self.train_button.disabled = False
        self.stop_button.disabled = True
        for cb in self._on_end:
            try:
                cb()
            except Exception as err:  # one bad hook must not leave the others undone
                self._set_status(f"{type(err).__name__}: {err}", error=True)

    def _show_result(self, r: Run) -> None:
        m = r.metrics
        last = r.history.steps_done
        with self.fig.batch_update():
            if "loglik" in m:
                self.fig.data[2].x, self.fig.data[2].y = [last], [-m["loglik"]]
            if "loglik_strict" in m and r.model.has_fixed_inputs:
                self.fig.data[3].x, self.fig.data[3].y = [last], [-m["loglik_strict"]]
        self.metrics.value = metrics_html(r) if m else ""

    def _set_status(self, text: str, error: bool = False) -> None:
        colour = "#b00020" if error else "inherit"
        on_main(setattr, self.status, "value", f"<span style='color:{colour}'>{html.escape(text)}</span>")
