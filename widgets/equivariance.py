"""``EquivariancePanel(run)``: how far the model is from equivariant, against shift and rotation angle.

The numbers come from :func:`workbench.evaluate.orbit_error_vs_shift` and
:func:`~workbench.evaluate.orbit_error_vs_angle` on a few test tasks, for the model and (when it has
active fixed inputs) its strict component, which should sit at zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import xarray as xr
from plotly.subplots import make_subplots

from workbench.data.registry import make_dataset
from workbench.evaluate import orbit_error_vs_angle, orbit_error_vs_shift
from workbench.groups import get_group
from workbench.maps import fixed_inputs_active
from workbench.run import Run

COLOURS = {"model": "#1f77b4", "strict": "#ff7f0e"}
NAMES = {"model": "model (fixed inputs on)", "strict": "strict component (fixed inputs off)"}


class EquivariancePanel(w.VBox):
    """Orbit error of ``run`` against shift (and rotation angle for rotation groups), plotted.

    ``strict``: also the strict component; ``n_tasks`` test tasks; ``shifts`` in model units
    (default: 7 up to 40% of the box's shorter side); ``angles`` in degrees.
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
        self.run = run
        self.n_tasks, self.seed = int(n_tasks), int(seed)
        width = min(hi - lo for lo, hi in run.box)
        self.shifts = (
            list(shifts) if shifts is not None else [float(s) for s in np.linspace(0, 0.4 * width, 7)]
        )
        group = get_group(run.experiment.group)
        rotates = run.dim_x == 2 and group.rotations > 1
        self.angles = (list(angles) if angles is not None else list(range(0, 361, 15))) if rotates else []
        self.components = ["model"] + (["strict"] if strict and fixed_inputs_active(run.model) else [])
        self.results: dict[str, dict[str, xr.DataArray]] = {}
        self.status = w.HTML("press Compute (a few seconds)")
        self.button = w.Button(description="Compute", icon="refresh")
        self.button.on_click(lambda _: self.compute())
        self.fig = self._figure()
        super().__init__([w.HBox([self.button, self.status]), self.fig])
        self.add_class("aenp-equivariance")
        if compute:
            self.compute()

    def _figure(self) -> go.FigureWidget:
        cols = 2 if self.angles else 1
        titles = ["against shift"] + (["against rotation angle"] if self.angles else [])
        fig = go.FigureWidget(make_subplots(rows=1, cols=cols, subplot_titles=titles))
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
        fig.update_yaxes(title_text="orbit error (y units)", row=1, col=1)
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

    def compute(self) -> dict[str, dict[str, xr.DataArray]]:
        """Compute the curves on ``n_tasks`` test tasks and draw them; returns them by axis and component."""
        self.status.value = "computing ..."
        r = self.run
        tasks = make_dataset(r.experiment.dataset).test_set(
            self.n_tasks, batch_size=16, seed=10_000 + self.seed
        )
        out: dict[str, dict[str, xr.DataArray]] = {"shift": {}, "angle": {}}
        for comp in self.components:
            fixed = comp == "model"
            out["shift"][comp] = orbit_error_vs_shift(r.model, tasks, r.box, self.shifts, fixed_inputs=fixed)
            if self.angles:
                out["angle"][comp] = orbit_error_vs_angle(
                    r.model, tasks, r.box, self.angles, fixed_inputs=fixed
                )
        self.results = out
        with self.fig.batch_update():
            i = 0
            for axis in ("shift", "angle"):
                for comp in self.components if out[axis] else []:
                    da = out[axis][comp]
                    self.fig.data[i].x, self.fig.data[i].y = da[axis].values, da.values
                    i += 1
        worst = max(float(da.max()) for curves in out.values() for da in curves.values())
        self.status.value = f"{self.n_tasks} test tasks; largest orbit error {worst:.3g}"
        return out
