"""``MapView(run)``: the prediction over the map (or the line), and a click adds an observation.

Geographic datasets get a lon/lat heatmap with borders and elevation contours; 2-D synthetic data an
x/y heatmap; 1-D data a function plot. A click calls :meth:`MapView.add_observation`: one forward
pass with the extra point in the context, then the figure's arrays are replaced in place.
"""

from __future__ import annotations

import time
from typing import Any

import ipywidgets as w

from workbench.data.base import GeoSampler
from workbench.data.registry import make_dataset
from workbench.runs import Run

from .heatmap import HeatmapLayer
from .lines import LineLayer
from .plotview import PlotView
from .sources import GeoSource, LineSource, PlaneSource


def make_layer(
    run: Run,
    context: Any = None,
    grid: Any = None,
    resolution: float | None = None,
    seed: int = 0,
    variable: str = "mean",
    view: PlotView | None = None,
) -> HeatmapLayer | LineLayer:
    """The view that fits the run's data: lon/lat map, x/y map or 1-D curves (drawn into ``view``)."""
    if run.dim_x == 1:
        return LineLayer(LineSource(run, seed=seed), view=view)
    if isinstance(make_dataset(run.experiment.dataset), GeoSampler):
        return HeatmapLayer(GeoSource(run, context, grid, resolution), variable, view=view)
    return HeatmapLayer(PlaneSource(run, seed=seed), variable, view=view)


class MapView(w.VBox):
    """Prediction, uncertainty, breaking field and fixed inputs of ``run``; click to add observations.

    ``context``: the map's context (see :func:`workbench.maps.predict`; default: the dataset's);
    ``grid``/``resolution``: the map grid; ``seed`` picks the test task of synthetic datasets.
    :meth:`set_run` shows another run in the same widgets (the chart is built once per view).
    """

    def __init__(
        self,
        run: Run,
        *,
        context: Any = None,
        grid: Any = None,
        resolution: float | None = None,
        seed: int = 0,
        variable: str = "mean",
    ) -> None:
        self.fig = PlotView()
        self.fig.on_click(lambda x, y, _click: self._on_click(x, y))
        self.last_update_ms: float | None = None
        self.variable = w.Dropdown(description="show", layout=w.Layout(width="300px"))
        self.channel = w.IntSlider(min=0, max=0, description="channel", layout=w.Layout(width="300px"))
        self.source = w.Dropdown(description="click adds", layout=w.Layout(width="260px"))
        self.source.tooltip = "where the value of a clicked observation comes from"
        self.value = w.FloatText(description="value", layout=w.Layout(width="180px"))
        self.clear_button = w.Button(description="Clear added", icon="eraser")
        self.info = w.HTML("")
        self.info.add_class("aenp-obs")
        self.clear_button.on_click(lambda _: self.clear())
        self._top = w.HBox([self.variable, self.channel])
        row = w.HBox([self.source, self.value, self.clear_button])
        box = w.Box([self.fig])
        box.add_class("aenp-map")
        super().__init__([self._top, row, box, self.info])
        self.add_class("aenp-mapview")
        self.set_run(run, context=context, grid=grid, resolution=resolution, seed=seed, variable=variable)
        self.variable.observe(self._on_variable, names="value")
        self.channel.observe(self._on_variable, names="value")

    def set_run(
        self,
        run: Run,
        *,
        context: Any = None,
        grid: Any = None,
        resolution: float | None = None,
        seed: int = 0,
        variable: str = "mean",
    ) -> None:
        """Show ``run`` in this view: a new prediction, the same chart and controls."""
        self.run = run
        self.layer = make_layer(run, context, grid, resolution, seed, variable, view=self.fig)
        lay = self.layer
        self._setting = True
        try:
            self.variable.options = lay.variables or ["curves"]
            if lay.variables:
                self.variable.value = getattr(lay, "variable", lay.variables[0])
            self.channel.max = max(lay.n_channels - 1, 0)
            self.channel.value = 0
            if tuple(self.source.options) != tuple(lay.sources):
                self.source.options = list(lay.sources)
                self.source.value = lay.sources[0]
            self.value.value = lay.default_value
        finally:
            self._setting = False
        self.last_update_ms = None
        self.info.value = self._info()
        self._sync_visibility()

    # --- public API -------------------------------------------------------------------------------

    @property
    def n_added(self) -> int:
        """How many observations the user added."""
        return len(self.layer.added)

    def add_observation(self, x: float, y: float, value: float | None = None) -> float:
        """Add an observation at (lon, lat) (1-D: at x, height y) and redraw; returns the value used.

        ``value=None`` takes it from the "click adds" choice (typed value, nearest station, current
        mean, or for 1-D the clicked height).
        """
        if value is None:
            value = self.layer.value_at(x, y, self.source.value, self.value.value)
        t0 = time.perf_counter()
        self.layer.add(x, y, value)
        self.last_update_ms = 1e3 * (time.perf_counter() - t0)
        self.info.value = self._info()
        return float(value)

    def clear(self) -> None:
        """Remove the added observations and redraw with the original context."""
        self.layer.clear()
        self.info.value = self._info()

    def show(self, variable: str, channel: int = 0) -> None:
        """Show a variable (``mean``, ``std``, ``mean_strict``, ``breaking``, ``fixed_inputs``, ...)."""
        if variable == "fixed_inputs":
            self.channel.value = int(channel)
        self.variable.value = variable

    # --- events -----------------------------------------------------------------------------------

    def _info(self) -> str:
        ms = f" (redrawn in {self.last_update_ms:.0f} ms)" if self.last_update_ms is not None else ""
        return f"added observations: {self.n_added}{ms}"

    def _on_click(self, x: float, y: float) -> None:
        try:
            self.add_observation(x, y)
        except Exception as err:  # a click handler has nobody to raise to: say it in the view
            self.info.value = f"<span style='color:#b00020'>could not add ({x:.2f}, {y:.2f}): {err}</span>"

    def _on_variable(self, change: dict) -> None:
        if getattr(self, "_setting", False):
            return
        if self.layer.variables:
            self.layer.show(self.variable.value, self.channel.value)
        self._sync_visibility()

    def _sync_visibility(self) -> None:
        lay = self.layer
        self._top.layout.display = "" if lay.variables else "none"
        self.variable.layout.display = "" if lay.variables else "none"
        show_channel = bool(lay.variables) and self.variable.value == "fixed_inputs"
        self.channel.layout.display = "" if show_channel else "none"
