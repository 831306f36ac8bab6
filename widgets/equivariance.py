"""``EquivariancePanel(run)``: how far the model is from equivariant, against shift and rotation angle.

The numbers come from :func:`workbench.evaluate.orbit_error_vs_shift` and
:func:`~workbench.evaluate.orbit_error_vs_angle` on a few test tasks, for the model and (when it has
active fixed inputs) its strict component, which should sit at zero.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from workbench.data.registry import make_dataset
from workbench.evaluate import orbit_error_vs_angle, orbit_error_vs_shift
from workbench.maps import fixed_inputs_active
from workbench.runs import Run
from workbench.units import pretty

from .mainthread import drain, on_main
from .plotview import PlotView
from .sources import data_units

COLOURS = {"model": "#1f77b4", "strict": "#ff7f0e"}
NAMES = {"model": "model (fixed inputs on)", "strict": "strict component (fixed inputs off)"}


class EquivariancePanel(w.VBox):
    """Orbit error of ``run`` against shift (and rotation angle for rotation groups), plotted.

    ``strict``: also the strict component; ``n_tasks`` test tasks; ``shifts`` in model units
    (default: 7 up to 40% of the box's shorter side); ``angles`` in degrees. The Compute button works
    in a background thread with a progress bar; :meth:`compute` called from code waits for it.
    """

    def __init__(
        self,
        run: Run,
        *,
        strict: bool = True,
        n_tasks: int = 16,
        shifts: Sequence[float] | None = None,
        angles: Sequence[float] | None = None,
        seed: int = 0,
        compute: bool = True,
    ) -> None:
        self.n_tasks, self.seed, self.strict = int(n_tasks), int(seed), bool(strict)
        self._shifts, self._angles = shifts, angles
        self.results: dict[str, dict[str, xr.DataArray]] = {}
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.status = w.HTML("")
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="220px"))
        self.button = w.Button(description="Compute", icon="refresh")
        self.button.on_click(lambda _: self.compute(block=False))
        self.fig = PlotView()
        super().__init__([w.HBox([self.button, self.progress, self.status]), self.fig])
        self.add_class("aenp-equivariance")
        self.set_run(run)
        if compute:
            self.compute()

    def set_run(self, run: Run) -> None:
        """Show another run in the same widgets (its curves are computed on :meth:`compute`)."""
        if self.running:
            raise RuntimeError("the orbit errors are still being computed")
        self.run = run
        width = min(hi - lo for lo, hi in run.box)
        shifts = self._shifts
        default = [float(s) for s in np.linspace(0, 0.4 * width, 7)]
        self.shifts = list(shifts) if shifts is not None else default
        group = run.experiment.symmetry
        rotates = run.dim_x == 2 and group.rotations > 1
        angles = self._angles
        self.angles = (list(angles) if angles is not None else list(range(0, 361, 15))) if rotates else []
        self.components = ["model"] + (["strict"] if self.strict and fixed_inputs_active(run.model) else [])
        self.results = {}
        self.progress.value, self.progress.bar_style = 0, ""
        self.status.value = "press Compute (or open this tab): a few seconds to a minute"
        self.fig.replace(self._figure())

    @property
    def running(self) -> bool:
        """Whether a computation is under way."""
        return self._thread is not None and self._thread.is_alive()

    def _figure(self) -> go.Figure:
        cols = 2 if self.angles else 1
        titles = ["against shift"] + (["against rotation angle"] if self.angles else [])
        fig = make_subplots(rows=1, cols=cols, subplot_titles=titles)
        for c, axis in enumerate(["shift", "angle"][:cols], start=1):
            for comp in self.components:
                fig.add_trace(
                    go.Scatter(
                        name=NAMES[comp],
                        mode="lines+markers",
                        line=dict(color=COLOURS[comp]),
                        legendgroup=comp,
                        showlegend=c == 1,
                    ),
                    row=1,
                    col=c,
                )
            title = "shift (model units)" if axis == "shift" else "rotation angle (degrees)"
            fig.update_xaxes(title_text=title, row=1, col=c)
        units = pretty(data_units(self.run)) or "y units"
        fig.update_yaxes(title_text=f"orbit error [{units}]", row=1, col=1)
        exp = self.run.experiment
        fig.update_layout(
            height=340,
            width=420 * cols + 120,
            margin=dict(l=60, r=10, t=60, b=40),
            title=dict(
                text=f"orbit error |mu(g.x; g.D) - mu(x; D)|: {exp.model} / {exp.group} / {exp.relaxation}",
                font=dict(size=13),
            ),
            legend=dict(orientation="h", y=-0.25),
        )
        return fig

    def compute(self, block: bool = True) -> dict[str, dict[str, xr.DataArray]] | None:
        """Compute the curves on ``n_tasks`` test tasks and draw them; returns them by axis and component.

        ``block=False`` computes in a background thread (the progress bar moves) and returns None.
        """
        if self.running:
            if not block:
                return None
            self._thread.join()
        else:
            self.error = None
            self.button.disabled = True
            self.progress.max = len(self.components) * (len(self.shifts) + len(self.angles)) + 1
            self.progress.value, self.progress.bar_style = 0, ""
            self.status.value = "computing ..."
            self._thread = threading.Thread(target=self._work, name="aenp-orbit", daemon=True)
            self._thread.start()
            if not block:
                return None
            self._thread.join()
        drain()
        if self.error is not None:
            raise self.error
        return self.results

    def _tick(self, text: str) -> None:
        def update() -> None:
            self.progress.value = min(self.progress.value + 1, self.progress.max)
            self.status.value = text

        on_main(update)

    def _work(self) -> None:
        r = self.run
        try:
            tasks = make_dataset(r.experiment.dataset).test_set(
                self.n_tasks, batch_size=16, seed=10_000 + self.seed
            )
            self._tick(f"{self.n_tasks} test tasks drawn")
            out: dict[str, dict[str, xr.DataArray]] = {"shift": {}, "angle": {}}
            for comp in self.components:
                fixed = comp == "model"
                parts = []
                for s in self.shifts:
                    parts.append(orbit_error_vs_shift(r.model, tasks, r.box, [s], fixed_inputs=fixed))
                    self._tick(f"{comp}: shift {s:.2g}")
                out["shift"][comp] = xr.concat(parts, dim="shift")
                if self.angles:
                    parts = []
                    for a in self.angles:
                        parts.append(orbit_error_vs_angle(r.model, tasks, r.box, [a], fixed_inputs=fixed))
                        self._tick(f"{comp}: angle {a:g}°")
                    out["angle"][comp] = xr.concat(parts, dim="angle")
            self.results = out
            on_main(self._draw, out)
        except Exception as err:  # shown in the panel: a thread has nobody else to tell
            self.error = err
            on_main(self._failed, err)
        finally:
            on_main(setattr, self.button, "disabled", False)

    def _failed(self, err: BaseException) -> None:
        self.progress.bar_style = "danger"
        self.status.value = f"<span style='color:#b00020'>{type(err).__name__}: {err}</span>"

    def _draw(self, out: dict[str, dict[str, xr.DataArray]]) -> None:
        with self.fig.batch_update():
            i = 0
            for axis in ("shift", "angle"):
                for comp in self.components if out[axis] else []:
                    da = out[axis][comp]
                    self.fig.data[i].x, self.fig.data[i].y = da[axis].values, da.values
                    i += 1
        worst = max(float(da.max()) for curves in out.values() for da in curves.values())
        self.progress.value, self.progress.bar_style = self.progress.max, "success"
        self.status.value = f"{self.n_tasks} test tasks; largest orbit error {worst:.3g}"
