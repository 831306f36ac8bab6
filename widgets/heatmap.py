"""The 2-D map figure: a heatmap of one variable with elevation contours, borders and the context.

Everything that does not depend on the context (borders, contours, the training box) is drawn once;
a new observation only replaces the heatmap's ``z`` and the added-points trace in one batch update.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go

from workbench.style import STYLES
from workbench.units import axis_title, pretty

from .borders import LAYERS, border_lines
from .plotview import PlotView
from .sources import GeoSource, PlaneSource, Point, Snapshot

#: Line style of each border layer.
BORDER_STYLE = {
    "coastline": dict(color="#08306b", width=1.0),
    "countries": dict(color="black", width=1.2),
    "states": dict(color="#444444", width=0.8),
}

SOURCES = ("typed value", "nearest station", "current mean")


def elevation_levels(e: np.ndarray) -> tuple[float, float, float]:
    """(start, end, step) of round contour levels over the elevation range."""
    lo, hi = float(np.nanmin(e)), float(np.nanmax(e))
    step = 500.0 if hi - lo > 1500 else 250.0 if hi - lo > 600 else 100.0
    return math.ceil(lo / step) * step, hi, step


class HeatmapLayer:
    """A heatmap view of a :class:`GeoSource` or :class:`PlaneSource` that accepts added points."""

    sources = SOURCES

    def __init__(
        self,
        source: GeoSource | PlaneSource,
        variable: str = "mean",
        width: int = 720,
        view: PlotView | None = None,
    ) -> None:
        self.source = source
        self.added: list[Point] = []
        self.snap: Snapshot = source.predict()
        if variable not in self.variables:
            raise ValueError(
                f"variable = {variable!r} is not valid; choose one of: {', '.join(self.variables)}"
            )
        self.variable, self.channel = variable, 0
        self.fig = view if view is not None else PlotView()
        with self.fig.batch_update():
            self.fig.replace(self._build(width))
            self.heat, self.added_trace = self.fig.data[0], self.fig.data[-1]
            self.show(variable)

    # --- what can be shown ------------------------------------------------------------------------

    @property
    def variables(self) -> list[str]:
        """Variables this view can show (fixed inputs only when the model has some)."""
        have = set(self.snap.fields) | ({"fixed_inputs"} if len(self.snap.fixed_inputs) else set())
        return [k for k in STYLES if k in have]

    @property
    def n_channels(self) -> int:
        """Number of fixed-input channels."""
        return int(len(self.snap.fixed_inputs))

    def field(self, variable: str, channel: int = 0) -> np.ndarray:
        """The 2-D array ``[ny, nx]`` of a variable in the current prediction."""
        if variable == "fixed_inputs":
            return self.snap.fixed_inputs[channel]
        return self.snap.fields[variable]

    # --- the figure -------------------------------------------------------------------------------

    def _build(self, width: int) -> go.Figure:
        src = self.source
        geo = src.kind == "geo" and not src.planar
        xname, yname = ("lon", "lat") if geo else ("x", "y")
        unit = f" {pretty(src.units)}" if pretty(src.units) else ""
        if geo:
            hover = f"%{{x:.2f}}°E, %{{y:.2f}}°N<br>%{{z:.2f}}{unit}"
        else:
            hover = f"x %{{x:.2f}}, y %{{y:.2f}}<br>%{{z:.2f}}{unit}"
        heat = go.Heatmap(x=src.x, y=src.y, z=self.field(self.variable), colorbar=dict(thickness=14))
        if src.elevation is not None:
            heat.customdata = src.elevation
            hover += "<br>elevation %{customdata:.0f} m"
        heat.hovertemplate = hover + "<extra></extra>"
        traces: list = [heat]
        if src.elevation is not None and np.isfinite(src.elevation).any():
            start, end, step = elevation_levels(src.elevation)
            traces.append(
                go.Contour(
                    x=src.x,
                    y=src.y,
                    z=src.elevation,
                    contours=dict(start=start, end=end, size=step, coloring="lines"),
                    colorscale=[[0, "rgba(40,40,40,0.55)"], [1, "rgba(40,40,40,0.55)"]],
                    line=dict(width=0.8),
                    showscale=False,
                    hoverinfo="skip",
                    name=f"elevation every {step:.0f} m",
                )
            )
        if geo:
            for layer in reversed(LAYERS):
                lon, lat = border_lines(src.region, layer)
                if len(lon):
                    traces.append(
                        go.Scatter(
                            x=lon, y=lat, mode="lines", line=BORDER_STYLE[layer], hoverinfo="skip", name=layer
                        )
                    )
        if src.box_region is not None:
            x0, x1, y0, y1 = src.box_region
            traces.append(
                go.Scatter(
                    x=[x0, x1, x1, x0, x0],
                    y=[y0, y0, y1, y1, y0],
                    mode="lines",
                    line=dict(color="black", dash="dash", width=1.5),
                    hoverinfo="skip",
                    name="training box",
                )
            )
        cx, cy, cv = self.snap.context
        elev = src.base.elevation if src.kind == "geo" else None
        text = [
            f"observed {v:.2f}{unit}" + (f"<br>elevation {e:.0f} m" if elev is not None else "")
            for v, e in zip(cv, elev if elev is not None else cv, strict=True)
        ]
        traces.append(
            go.Scatter(
                x=cx,
                y=cy,
                mode="markers",
                marker=dict(size=6, color="white", line=dict(color="black", width=1)),
                text=text,
                hovertemplate="%{text}<extra>context</extra>",
                name="context",
            )
        )
        traces.append(
            go.Scatter(
                x=[],
                y=[],
                mode="markers",
                marker=dict(size=15, symbol="star", color="#ff00ff", line=dict(color="black", width=1)),
                hovertemplate=f"added %{{text}}{unit}<extra></extra>",
                name="added",
            )
        )
        x0, x1 = float(np.min(src.x)), float(np.max(src.x))
        y0, y1 = float(np.min(src.y)), float(np.max(src.y))
        ratio = 1.0 / math.cos(math.radians((y0 + y1) / 2)) if geo else 1.0
        plot_w = width - 170
        height = int(min(max(plot_w * ratio * (y1 - y0) / max(x1 - x0, 1e-9) + 110, 320), 760))
        layout = go.Layout(
            width=width,
            height=height,
            margin=dict(l=55, r=10, t=40, b=45),
            xaxis=dict(title=axis_title(xname), range=[x0, x1], constrain="domain", showgrid=False),
            yaxis=dict(
                title=axis_title(yname), range=[y0, y1], scaleanchor="x", scaleratio=ratio, showgrid=False
            ),
            legend=dict(orientation="h", y=-0.12),
            hovermode="closest",
            clickmode="event",
        )
        return go.Figure(traces, layout)

    def on_click(self, callback: Callable[[float, float], None]) -> None:
        """Call ``callback(x, y)`` with the clicked position (not the station under the pointer)."""
        self.fig.on_click(lambda x, y, _click: callback(x, y))

    # --- updates ----------------------------------------------------------------------------------

    def _title(self) -> str:
        n = len(self.added)
        more = f" + {n} added" if n else ""
        return f"{STYLES[self.variable].title.format(channel=self.channel)}: {self.source.label}{more}"

    def show(self, variable: str, channel: int = 0) -> None:
        """Show another variable (or fixed-input channel): new z, colour scale and title."""
        if variable not in self.variables:
            raise ValueError(
                f"variable = {variable!r} is not valid; choose one of: {', '.join(self.variables)}"
            )
        self.variable, self.channel = variable, int(channel)
        style = STYLES[variable]
        unit = "" if variable == "fixed_inputs" else pretty(self.source.units)
        with self.fig.batch_update():
            self.heat.z = self.field(variable, self.channel)
            self.heat.colorscale = style.colours
            self.heat.zmid = 0.0 if style.centred else None
            self.heat.colorbar.title = dict(text=unit)
            self.fig.layout.title = dict(text=self._title(), font=dict(size=13))

    def _redraw(self) -> None:
        self.snap = self.source.predict(self.added)
        a = np.asarray(self.added, dtype=np.float64).reshape(-1, 3)
        with self.fig.batch_update():
            self.heat.z = self.field(self.variable, self.channel)
            self.added_trace.x, self.added_trace.y = a[:, 0], a[:, 1]
            self.added_trace.text = [f"{v:.2f}" for v in a[:, 2]]
            self.fig.layout.title.text = self._title()

    def add(self, x: float, y: float, value: float) -> None:
        """Add an observation and redraw (a forward pass and a z update)."""
        self.added.append((float(x), float(y), float(value)))
        self._redraw()

    def clear(self) -> None:
        """Remove every added observation."""
        self.added = []
        self._redraw()

    def value_at(self, x: float, y: float, how: str, typed: float) -> float:
        """The value a click at (x, y) adds: typed, the nearest context station's, or the current mean."""
        if how == "typed value":
            return float(typed)
        if how == "nearest station":
            cx, cy, cv = self.snap.context
            if not len(cv):
                return float(typed)
            d = self.source.to_model(cx, cy) - self.source.to_model(x, y)
            return float(cv[np.argmin((d**2).sum(-1))])
        if how == "current mean":
            i = int(np.argmin(np.abs(np.asarray(self.source.y) - y)))
            j = int(np.argmin(np.abs(np.asarray(self.source.x) - x)))
            return float(self.snap.fields["mean"][i, j])
        raise ValueError(f"value source {how!r} is not valid; choose one of: {', '.join(self.sources)}")

    @property
    def default_value(self) -> float:
        """A starting value for the typed box: the context's mean, rounded."""
        cv = self.snap.context[2]
        return float(np.round(np.mean(cv), 1)) if len(cv) else 0.0
