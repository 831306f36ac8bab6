"""``ComparePanel``: the same experiment with no symmetry, strict symmetry and relaxed symmetry, side by side.

Given runs are shown at once; missing siblings are trained on demand (same steps, a background
thread, one after the other). A table lists test log-likelihoods (with the strict component's and the
GP oracle's where there is one); the plot shows, for 1-D data, the three predictive means on one
task with the oracle, and for 2-D data the log-likelihoods as bars.
"""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Mapping

import ipywidgets as w
import plotly.graph_objects as go

import workbench
from workbench.config import Experiment
from workbench.runs import Run

from .gaps import gap_figure
from .mainthread import drain, on_main
from .plotview import PlotView
from .sources import LineSource

COLOURS = {"none": "#7f7f7f", "strict": "#ff7f0e", "approximate": "#1f77b4"}
#: Table columns from the metrics: log-likelihoods and the split of the gap to the oracle.
SPLIT = ("loglik", "loglik_strict", "learning_shortfall", "symmetry_headroom", "gaussian_limit")
LAYOUT = dict(height=380, width=760, margin=dict(l=55, r=10, t=40, b=40))


def slot_of(exp: Experiment) -> str:
    """Which row a run belongs in: ``none``, ``none-transformer``, ``strict`` or its relaxation."""
    if exp.symmetry.is_trivial:
        return "none-transformer" if exp.model == "transformer" else "none"
    return exp.relaxation


def label_of(slot: str, exp: Experiment | None = None) -> str:
    """What a row is, named for what it is (the free conv model is the approximate one with p = 0)."""
    if slot == "none":
        if exp is not None and exp.model == "conv":
            return "approximate, p = 0 (fixed inputs always on)"
        return f"free {exp.model if exp is not None else ''} (no symmetry)".replace("  ", " ")
    if slot == "none-transformer":
        return "non-equivariant transformer (absolute positions)"
    if slot == "strict":
        return "strictly equivariant"
    if slot == "fixed-inputs" and exp is not None:
        return f"approximate: fixed inputs, p = {1 - exp.strength:g}"
    return f"approximate: {slot}"


def siblings(exp: Experiment) -> dict[str, Experiment | str]:
    """The comparators of ``exp``: free, strict, approximate, and the non-equivariant transformer.

    Each is an experiment, or, for one that cannot exist with these settings, the reason why not.
    """
    free = exp.symmetry.is_trivial
    group = "T" if free else exp.group
    approx = exp.relaxation if not free and exp.relaxation != "strict" else "fixed-inputs"
    strength = exp.strength if exp.relaxation == approx else 0.5
    wanted = {
        "none": dict(group="none", relaxation="strict"),
        "strict": dict(group=group, relaxation="strict"),
        approx: dict(group=group, relaxation=approx, strength=strength),
    }
    if exp.model != "transformer":  # the paper's non-equivariant comparator is another architecture
        wanted["none-transformer"] = dict(model="transformer", group="none", relaxation="strict")
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
        #: Guards ``runs``: the training thread adds to it while the main thread may be drawing it.
        self._lock = threading.Lock()
        self.train_button = w.Button(description="Train missing", icon="play", button_style="success")
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="danger", disabled=True)
        self.train_button.on_click(lambda _: self.train_missing())
        self.stop_button.on_click(lambda _: self._stop.set())
        self.status = w.HTML("")
        self.table = w.HTML("")
        self.gaps = PlotView(go.Figure(layout=LAYOUT))
        self.fig = PlotView(go.Figure(layout=LAYOUT))
        self._box = w.Box([self.fig])
        buttons = w.HBox([self.train_button, self.stop_button, self.status])
        super().__init__([buttons, self.table, self.gaps, self._box])
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
        self._box.layout.display = ""
        with self.fig.batch_update(), self.gaps.batch_update():
            self.fig.replace(go.Figure(layout=LAYOUT))
            self.gaps.replace(go.Figure(layout=LAYOUT))
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
        with self._lock:
            self.runs[name] = r
        self.refresh()

    def _snapshot(self) -> dict[str, Run]:
        """A copy of the runs to draw from: ``runs`` may grow while a figure is being built."""
        with self._lock:
            return dict(self.runs)

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
        runs = self._snapshot()
        if not runs:
            return
        self._plot_gaps(runs)
        first = next(iter(runs.values()))
        if first.dim_x == 1:
            self._plot_curves(runs)
        else:  # the ladder above says it all for maps; no curves to draw
            self._box.layout.display = "none"

    def _table(self) -> str:
        cols = (
            "model",
            "test log-lik",
            "strict component",
            "learning shortfall",
            "symmetry headroom",
            "Gaussian limit",
            "orbit error",
            "steps",
        )
        head = "<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"
        rows = []
        runs = self._snapshot()
        for name, plan in self.plans.items():
            exp = runs[name].experiment if name in runs else plan if isinstance(plan, Experiment) else None
            label = html.escape(label_of(name, exp))
            if name in runs:
                r = runs[name]
                m = r.metrics
                keys = (
                    "loglik",
                    "loglik_strict",
                    "learning_shortfall",
                    "symmetry_headroom",
                    "gaussian_limit",
                )
                cells = [_fmt(m.get(k)) for k in keys]
                cells += [_fmt(m.get("orbit_error")), str(r.history.steps_done)]
            elif isinstance(plan, Experiment):
                cells = ["not trained yet", "", "", "", "", "", str(plan.steps)]
            else:
                cells = [f"not available: {html.escape(plan)}", "", "", "", "", "", ""]
            rows.append(f"<tr><td><b>{label}</b></td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        style = "<style>.aenp-cmp td,.aenp-cmp th{padding:2px 8px;text-align:left}</style>"
        note = "<div style='font-size:85%'>log-likelihoods and gaps in nats per target</div>"
        return f"{style}<table class='aenp-cmp'>{head}{''.join(rows)}</table>{note}"

    def _colour(self, name: str) -> str:
        return COLOURS.get(name, COLOURS["approximate"])

    def _plot_curves(self, runs: Mapping[str, Run]) -> None:
        traces = []
        oracle_drawn = False
        for name, r in runs.items():
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

    def _plot_gaps(self, runs: Mapping[str, Run]) -> None:
        runs = {n: runs[n] for n in self.plans if n in runs}
        labels = {n: label_of(n, r.experiment) for n, r in runs.items()}
        self.gaps.replace(gap_figure(runs, labels))
