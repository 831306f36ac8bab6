"""``Workbench()``: the whole app in one cell: controls and training on top, then result tabs."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from workbench.config import Experiment
from workbench.runs import Run

from .compare import ComparePanel
from .controls import Controls
from .equivariance import EquivariancePanel
from .mainthread import on_main
from .mapview import MapView
from .training import TrainingPanel

TABS = ("Map", "Compare", "Equivariance")

#: The app's first experiment: a world where breaking translation symmetry buys about 0.3 nats per
#: target (exact ceilings) and the relaxed model shows it after about a minute on 2 CPU cores.
DEFAULT_DATASET = "mountain-1d"
DEFAULT_STEPS = 2000


class Workbench(w.VBox):
    """Pick an experiment, train it, then look at its map, its siblings and its equivariance.

    ``experiment``: the starting settings (default: ``mountain-1d``, where the symmetry's cost is known
    and large, with the paper's fixed inputs);
    ``run``: a finished run to show at once; ``map_kwargs`` go to :class:`MapView`; every trained
    (or stopped) run is saved under ``save_dir`` (``None``: not saved).
    """

    def __init__(
        self,
        experiment: Experiment | None = None,
        *,
        run: Run | None = None,
        map_kwargs: dict[str, Any] | None = None,
        save_dir: str | Path | None = "runs",
    ) -> None:
        exp = experiment or (
            run.experiment
            if run is not None
            else Experiment(dataset=DEFAULT_DATASET, steps=DEFAULT_STEPS, test_tasks=256)
        )
        self.map_kwargs = dict(map_kwargs or {})
        self.controls = Controls(exp)
        self.training = TrainingPanel(self.controls, save_dir=save_dir)
        self.training.add_on_start(lambda: self.controls.set_busy(True))
        # The training thread finishes the run; the tabs are filled on the kernel's main thread.
        self.training.add_on_finish(lambda r: on_main(self.show_run, r))
        self.training.add_on_end(lambda: self.controls.set_busy(False))
        self.map: MapView | None = None
        self.compare: ComparePanel | None = None
        self.equivariance: EquivariancePanel | None = None
        self.run: Run | None = None
        hint = "<i>Train a model (or pass <code>run=...</code>) to fill this tab.</i>"
        self.tabs = w.Tab(children=[w.VBox([w.HTML(hint)]) for _ in TABS])
        for i, title in enumerate(TABS):
            self.tabs.set_title(i, title)
        self.tabs.observe(self._on_tab, names="selected_index")
        title = w.HTML("<h3 style='margin:4px 0'>AENP Workbench: where does the symmetry break?</h3>")
        super().__init__([title, self.controls, self.training, self.tabs])
        self.add_class("aenp-workbench")
        if run is not None:
            self.show_run(run)

    # --- public API -------------------------------------------------------------------------------

    def train(self, block: bool = False, fresh: bool = False) -> Run | None:
        """Press Train (after Stop it continues the stopped run unless ``fresh``); ``block=True`` waits
        for the run (and re-raises a failure)."""
        return self.training.train(block=block, fresh=fresh)

    def stop(self) -> None:
        """Press Stop: training ends after this step and the run is still evaluated."""
        self.training.stop()

    def wait(self, timeout: float | None = None) -> Run | None:
        """Wait for training (and the tabs) to finish."""
        return self.training.wait(timeout)

    def show_run(self, run: Run) -> None:
        """Fill the tabs for ``run`` (each tab on its own: one failing does not blank the others).

        Each tab's panel is built once, for the first run, and shows later runs in place.
        """
        self.run = run
        makers: list[tuple[str, Callable[[], w.Widget], Callable[[Any], None]]] = [
            ("map", lambda: MapView(run, **self.map_kwargs), lambda p: p.set_run(run, **self.map_kwargs)),
            ("compare", lambda: ComparePanel(run), lambda p: p.set_runs(run)),
            # Computed when its tab is first opened: the map should not wait for it.
            (
                "equivariance",
                lambda: EquivariancePanel(run, compute=False),
                lambda p: p.set_run(run),
            ),
        ]
        for i, (name, make, update) in enumerate(makers):
            panel = getattr(self, name)
            try:
                if panel is None:
                    panel = make()
                else:
                    update(panel)
            except Exception as err:  # keep the app usable; say what went wrong in the tab
                panel = None
                self.tabs.children[i].children = [
                    w.HTML(f"<span style='color:#b00020'>{html.escape(str(err))}</span>")
                ]
            else:
                if tuple(self.tabs.children[i].children) != (panel,):
                    self.tabs.children[i].children = [panel]
            setattr(self, name, panel)
        if self.tabs.selected_index == TABS.index("Equivariance"):
            self._compute_equivariance()
        else:
            self.tabs.selected_index = 0

    def _compute_equivariance(self) -> None:
        panel = self.equivariance
        if panel is not None and not panel.results and not panel.running:
            panel.compute(block=False)

    def _on_tab(self, change: dict) -> None:
        if change["new"] == TABS.index("Equivariance"):
            self._compute_equivariance()
