"""The 1-D view: context points, predictive mean with a +-2 std band, the strict component, the oracle.

Plotly only reports clicks on data, so an invisible heatmap under the curves catches clicks anywhere
in the plot: the click's (x, height) becomes a new context point.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go

from workbench.maps import fixed_inputs_active

from .plotview import PlotView
from .sources import LineSource, Point

SOURCES = ("clicked height", "typed value", "current mean")

#: Cells of the invisible click catcher (x by y).
CATCHER = (240, 100)


class LineLayer:
    """A function plot of a :class:`LineSource` that accepts added context points."""

    sources = SOURCES
    variables: list[str] = []
    n_channels = 0

    def __init__(self, source: LineSource, width: int = 760, view: PlotView | None = None) -> None:
        self.source = source
        self.added: list[Point] = []
        self.curves = source.predict()
        self.has_oracle = "oracle_mean" in self.curves
        self.fig = view if view is not None else PlotView()
        with self.fig.batch_update():
            self.fig.replace(self._build(width))
            self._draw()

    def _y_range(self) -> tuple[float, float]:
        c, s = self.curves, self.source
        parts = [c["mean"] - 2 * c["std"], c["mean"] + 2 * c["std"], s.base_y, s.target_y]
        if self.has_oracle:
            parts += [c["oracle_mean"] - 2 * c["oracle_std"], c["oracle_mean"] + 2 * c["oracle_std"]]
        v = np.concatenate(parts)
        lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
        pad = 0.15 * (hi - lo) + 0.1
        return lo - pad, hi + pad

    def _build(self, width: int) -> go.Figure:
        s = self.source
        y0, y1 = self._y_range()
        catcher = go.Heatmap(
            x=np.linspace(s.x[0], s.x[-1], CATCHER[0]),
            y=np.linspace(y0, y1, CATCHER[1]),
            z=np.zeros(CATCHER[::-1], dtype=np.uint8),
            opacity=0.0,
            showscale=False,
            hoverinfo="none",
            name="click to add a context point",
        )
        band = dict(mode="lines", line=dict(width=0), hoverinfo="skip")
        traces = [
            catcher,
            go.Scatter(name="oracle -2 std", showlegend=False, **band),
            go.Scatter(name="GP oracle +-2 std", fill="tonexty", fillcolor="rgba(44,160,44,0.15)", **band),
            go.Scatter(name="model -2 std", showlegend=False, **band),
            go.Scatter(name="model +-2 std", fill="tonexty", fillcolor="rgba(31,119,180,0.2)", **band),
            go.Scatter(name="GP oracle mean", mode="lines", line=dict(color="#2ca02c", dash="dot", width=2)),
            go.Scatter(
                name="strict component (fixed inputs off)",
                mode="lines",
                line=dict(color="#ff7f0e", dash="dash", width=2),
            ),
            go.Scatter(name="mean (fixed inputs on)", mode="lines", line=dict(color="#1f77b4", width=2.5)),
            go.Scatter(
                x=s.target_x,
                y=s.target_y,
                name="held-out targets",
                mode="markers",
                marker=dict(size=4, color="rgba(120,120,120,0.6)"),
            ),
            go.Scatter(
                x=s.base_x, y=s.base_y, name="context", mode="markers", marker=dict(size=7, color="black")
            ),
            go.Scatter(
                x=[],
                y=[],
                name="added",
                mode="markers",
                marker=dict(size=14, symbol="star", color="#ff00ff", line=dict(color="black", width=1)),
            ),
        ]
        layout = go.Layout(
            width=width,
            height=420,
            margin=dict(l=55, r=10, t=40, b=40),
            xaxis=dict(title="x", range=[s.x[0], s.x[-1]]),
            yaxis=dict(title="y", range=[y0, y1]),
            hovermode="closest",
            clickmode="event",
            legend=dict(orientation="h", y=-0.15),
        )
        fig = go.Figure(traces, layout)
        if not fixed_inputs_active(s.run.model):
            fig.data[6].name = "strict component (= the mean: no active fixed inputs)"
        if not self.has_oracle:  # e.g. a sampler without an exact posterior
            for i in (1, 2, 5):
                fig.data[i].visible = False
        return fig

    def _draw(self) -> None:
        c, x, d = self.curves, self.source.x, self.fig.data
        a = np.asarray(self.added, dtype=np.float64).reshape(-1, 3)
        with self.fig.batch_update():
            if self.has_oracle:
                d[1].x, d[1].y = x, c["oracle_mean"] - 2 * c["oracle_std"]
                d[2].x, d[2].y = x, c["oracle_mean"] + 2 * c["oracle_std"]
                d[5].x, d[5].y = x, c["oracle_mean"]
            d[3].x, d[3].y = x, c["mean"] - 2 * c["std"]
            d[4].x, d[4].y = x, c["mean"] + 2 * c["std"]
            d[6].x, d[6].y = x, c["mean_strict"]
            d[7].x, d[7].y = x, c["mean"]
            d[10].x, d[10].y = a[:, 0], a[:, 2]
            n = len(self.added)
            more = f" + {n} added" if n else ""
            self.fig.layout.title = dict(
                text=f"{self.source.label}{more}: click to add a context point", font=dict(size=13)
            )

    def on_click(self, callback: Callable[[float, float], None]) -> None:
        """Call ``callback(x, height)`` with the clicked position, anywhere in the plot."""
        self.fig.on_click(lambda x, y, _click: callback(x, y))

    def show(self, variable: str, channel: int = 0) -> None:
        """Nothing to switch: the 1-D view shows every curve at once."""

    def add(self, x: float, y: float, value: float) -> None:
        """Add a context point (x, value) and redraw."""
        self.added.append((float(x), float(y), float(value)))
        self.curves = self.source.predict(self.added)
        self._draw()

    def clear(self) -> None:
        """Remove every added point."""
        self.added = []
        self.curves = self.source.predict()
        self._draw()

    def value_at(self, x: float, y: float, how: str, typed: float) -> float:
        """The height of a point added at x: where clicked, typed, or the current mean."""
        if how == "clicked height":
            return float(y)
        if how == "typed value":
            return float(typed)
        if how == "current mean":
            return float(np.interp(x, self.source.x, self.curves["mean"]))
        raise ValueError(f"value source {how!r} is not valid; choose one of: {', '.join(self.sources)}")

    @property
    def default_value(self) -> float:
        """A starting value for the typed box."""
        return 0.0
