"""``ComparePanel``: the same experiment with no symmetry, strict symmetry and relaxed symmetry, side by side.

Given runs are shown at once; missing siblings are trained on demand (same steps, a background
thread, one after the other). A table lists test log-likelihoods (with the strict component's and the
GP oracle's where there is one); the plot shows, for 1-D data, the three predictive means on one
task with the oracle, and for 2-D data the log-likelihoods as bars.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go

import workbench
from workbench.config import Experiment
from workbench.run import Run

from .mainthread import drain, on_main
from .plotview import PlotView
from .sources import LineSource

COLOURS = {"none": "#7f7f7f", "strict": "#ff7f0e", "approximate": "#1f77b4"}
LAYOUT = dict(height=380, width=760, margin=dict(l=55, r=10, t=40, b=40))


def slot_of(exp: Experiment) -> str:
    """Which column a run belongs in: ``none``, ``strict`` or the name of its relaxation."""
    if exp.group == "none":
        return "none"
    return exp.relaxation


def siblings(exp: Experiment) -> dict[str, Experiment | str]:
    """The none / strict / approximate versions of ``exp`` (or, for one that cannot exist, why not)."""
    group = exp.group if exp.group != "none" else "T"
    approx = exp.relaxation if exp.group != "none" and exp.relaxation != "strict" else "fixed-inputs"
    strength = exp.strength if exp.relaxation == approx else 0.5
    wanted = {
        "none": dict(group="none", relaxation="strict"),
        "strict": dict(group=group, relaxation="strict"),
        approx: dict(group=group, relaxation=approx, strength=strength),
    }
    out: dict[str, Experiment | str] = {}
    for name, changes in wanted.items():
        try:
            out[name] = exp.replace(**changes)
        except ValueError as err:
            out[name] = str(err)
    return out


def _fmt(v: float | None) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.3f}"


class ComparePanel(w.VBox):
    """none / strict / approximate runs of one experiment: a log-likelihood table and a plot.

    Give ``run`` (its siblings are trained on demand), ``runs={"none": r1, "strict": r2,
    "fixed-inputs": r3}``, or an ``experiment`` to train all three.
    """

    def __init__(
        self,
        run: Run | None = None,
        *,
        runs: Mapping[str, Run] | None = None,
        experiment: Experiment | None = None,
        seed: int = 0,
    ) -> None:
        self.seed = int(seed)
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.train_button = w.Button(description="Train missing", icon="play", button_style="success")
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="danger", disabled=True)
        self.train_button.on_click(lambda _: self.train_missing())
        self.stop_button.on_click(lambda _: self._stop.set())
        self.status = w.HTML("")
        self.table = w.HTML("")
        self.fig = PlotView(go.Figure(layout=LAYOUT))
        super().__init__([w.HBox([self.train_button, self.stop_button, self.status]), self.table, self.fig])
        self.add_class("aenp-compare")
        self.set_runs(run, runs=runs, experiment=experiment)

    def set_runs(
        self,
        run: Run | None = None,
        *,
        runs: Mapping[str, Run] | None = None,
        experiment: Experiment | None = None,
    ) -> None:
        """Compare another run (and its siblings) in the same widgets."""
        if self.running:
            raise RuntimeError("siblings are still training: press Stop first")
        given = dict(runs or {})
        if run is not None:
            given[slot_of(run.experiment)] = run
        if experiment is None:
            if not given:
                raise ValueError("ComparePanel needs a run, runs={...} or an experiment")
            experiment = next(iter(given.values())).experiment
        self.experiment = experiment
        self.plans = siblings(experiment)
        for name in given:
            self.plans.setdefault(name, given[name].experiment)
        self.runs: dict[str, Run] = given
        self.status.value = ""
        with self.fig.batch_update():
            self.fig.replace(go.Figure(layout=LAYOUT))
            self.refresh()

    @property
    def missing(self) -> list[str]:
        """Siblings that could be trained but are not there yet."""
        return [k for k, v in self.plans.items() if isinstance(v, Experiment) and k not in self.runs]

    @property
    def running(self) -> bool:
        """Whether siblings are training."""
        return self._thread is not None and self._thread.is_alive()

    def train_missing(self, block: bool = False) -> None:
        """Train the missing siblings (same steps) in a background thread; ``block=True`` waits."""
        if self.running or not self.missing:
            self.wait() if block else None
            return
        self._stop.clear()
        self.error = None
        self.train_button.disabled, self.stop_button.disabled = True, False
        self._thread = threading.Thread(target=self._work, name="aenp-compare", daemon=True)
        self._thread.start()
        if block:
            self.wait()

    def wait(self, timeout: float | None = None) -> dict[str, Run]:
        """Join the training thread; re-raise its error; the runs."""
        if self._thread is not None:
            self._thread.join(timeout)
        drain()
        if self.error is not None and not self.running:
            raise self.error
        return self.runs

    def _set_status(self, text: str) -> None:
        on_main(setattr, self.status, "value", text)

    def _work(self) -> None:
        try:
            for name in self.missing:
                if self._stop.is_set():
                    break
                exp = self.plans[name]
                self._set_status(f"training {name} ({exp.steps} steps) ...")
                r = workbench.run(exp, stop=self._stop, progress=False)
                on_main(self._add, name, r)
            self._set_status("stopped" if self._stop.is_set() else "done")
        except Exception as err:  # shown in the panel: a thread has nobody else to tell
            self.error = err
            self._set_status(f"<span style='color:#b00020'>{type(err).__name__}: {err}</span>")
        finally:
            on_main(self._idle)

    def _add(self, name: str, r: Run) -> None:
        self.runs[name] = r
        self.refresh()

    def _idle(self) -> None:
        self.train_button.disabled = not self.missing
        self.stop_button.disabled = True

    # --- drawing ----------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Redraw the table and the plot from the runs there are."""
        self.table.value = self._table()
        self.train_button.disabled = self.running or not self.missing
        if not self.running and not self.status.value:
            n = len(self.missing)
            self.status.value = f"{n} sibling(s) not trained yet: press Train missing" if n else ""
        if not self.runs:
            return
        first = next(iter(dict(self.runs).values()))
        if first.dim_x == 1:
            self._plot_curves()
        else:
            self._plot_bars()

    def _table(self) -> str:
        cols = ("run", "test log-lik", "strict log-lik", "oracle log-lik", "orbit error", "steps")
        head = "<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"
        rows = []
        for name, plan in self.plans.items():
            if name in self.runs:
                r = self.runs[name]
                m = r.metrics
                cells = [
                    _fmt(m.get("loglik")),
                    _fmt(m.get("loglik_strict")),
                    _fmt(m.get("oracle_loglik")),
                    _fmt(m.get("orbit_error")),
                    str(r.history.steps_done),
                ]
            elif isinstance(plan, Experiment):
                cells = ["not trained yet", "", "", "", str(plan.steps)]
            else:
                cells = [f"not available: {plan}", "", "", "", ""]
            rows.append(f"<tr><td><b>{name}</b></td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        style = "<style>.aenp-cmp td,.aenp-cmp th{padding:2px 10px;text-align:left}</style>"
        return f"{style}<table class='aenp-cmp'>{head}{''.join(rows)}</table>"

    def _colour(self, name: str) -> str:
        return COLOURS.get(name, COLOURS["approximate"])

    def _plot_curves(self) -> None:
        traces = []
        oracle_drawn = False
        for name, r in self.runs.items():
            src = LineSource(r, seed=self.seed)
            c = src.predict()
            if not oracle_drawn:
                traces.append(
                    go.Scatter(
                        x=src.base_x,
                        y=src.base_y,
                        mode="markers",
                        name="context",
                        marker=dict(color="black", size=7),
                    )
                )
                traces.append(
                    go.Scatter(
                        x=src.target_x,
                        y=src.target_y,
                        mode="markers",
                        name="held-out targets",
                        marker=dict(color="rgba(120,120,120,0.6)", size=4),
                    )
                )
                if "oracle_mean" in c:
                    traces.append(
                        go.Scatter(
                            x=src.x,
                            y=c["oracle_mean"],
                            name="GP oracle",
                            line=dict(color="#2ca02c", dash="dot", width=2.5),
                        )
                    )
                oracle_drawn = True
            traces.append(
                go.Scatter(x=src.x, y=c["mean"], name=f"{name}", line=dict(color=self._colour(name), width=2))
            )
        with self.fig.batch_update():
            self.fig.data = []
            self.fig.add_traces(traces)
            self.fig.layout.title = dict(text="predictive means on one test task", font=dict(size=13))
            self.fig.layout.xaxis.title, self.fig.layout.yaxis.title = "x", "y"

    def _plot_bars(self) -> None:
        names = list(self.runs)
        traces = []
        for key, label in (
            ("loglik", "test log-lik"),
            ("loglik_strict", "strict component"),
            ("oracle_loglik", "oracle"),
        ):
            ys = [self.runs[n].metrics.get(key, np.nan) for n in names]
            if any(math.isfinite(y) for y in ys):
                traces.append(go.Bar(x=names, y=ys, name=label))
        with self.fig.batch_update():
            self.fig.data = []
            self.fig.add_traces(traces)
            self.fig.layout.title = dict(
                text="test log-likelihood per target (higher is better)", font=dict(size=13)
            )
            self.fig.layout.barmode = "group"
            self.fig.layout.yaxis.title = "nats per target"
