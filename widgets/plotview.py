"""``PlotView``: a plotly chart as an anywidget whose whole figure is widget state.

plotly's ``FigureWidget`` syncs its figure once, when built, and sends every later change as a
message: a reloaded page draws the figure as it was built (default colours, no title, old data), and
every ``FigureWidget`` ships the 5 MB plotly.js bundle as its own state. Here the figure (a plain
``go.Figure`` built and changed with plotly's usual API) is serialised whole into one synced trait
after each change, with arrays as binary buffers, so what the page draws is always what the kernel
holds; plotly.js is sent once per page, when the first chart asks for it. Changes are applied on the
kernel's main thread (:mod:`widgets.mainthread`), whichever thread makes them.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import plotly
import plotly.graph_objects as go
import traitlets

from .mainthread import capture_loop, on_main

#: ``callback(x, y, click)``: the click's position in data coordinates and the whole message
#: (``trace``, ``point_x``, ``point_y``: the trace and point plotly hovered, if any).
ClickCallback = Callable[[float, float, dict], None]


@cache
def plotly_js() -> bytes:
    """plotly.min.js from the installed plotly package, wrapped so it always sets ``window.Plotly``."""
    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    # Hide AMD/CommonJS loaders a page may have: the UMD bundle then defines the global.
    head = b"(function(){var define=undefined,module=undefined,exports=undefined;\n"
    return head + src.read_bytes() + b"\n}).call(window);\n"


def _array(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a, dtype=np.float64)
    return {"__nd__": True, "dtype": "float64", "shape": list(a.shape), "buffer": memoryview(a.tobytes())}


def _is_numbers(v: Any) -> bool:
    return len(v) > 0 and all(
        x is None or (isinstance(x, (int, float, np.number)) and not isinstance(x, bool)) for x in v
    )


def _typed_array(v: dict) -> np.ndarray:
    """plotly's own base64 typed-array spec (``{"dtype", "bdata", "shape"}``) as a numpy array."""
    a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    shape = v.get("shape")
    if isinstance(shape, str):
        shape = [int(n) for n in shape.split(",")]
    return a.reshape(shape) if shape else a


def encode(v: Any) -> Any:
    """A plotly JSON value with numeric arrays as binary buffers and no NaN left in the JSON."""
    if isinstance(v, dict) and "bdata" in v and "dtype" in v:
        return _array(_typed_array(v))
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "fiu" and v.ndim <= 2:
            return _array(v)
        return encode(v.tolist())
    if isinstance(v, dict):
        return {k: encode(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        if _is_numbers(v):
            return _array(np.array([np.nan if x is None else x for x in v], dtype=np.float64))
        if v and all(isinstance(x, (list, tuple, np.ndarray)) for x in v):
            try:  # a 2-D numeric table (a heatmap's z given as lists)
                arr = np.array(v, dtype=np.float64)
            except (TypeError, ValueError):
                arr = None
            if arr is not None and arr.ndim == 2:
                return _array(arr)
        return [encode(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return encode(v.item())
    return v


class PlotView(anywidget.AnyWidget):
    """A plotly figure in the page; change it with ``with view.batch_update(): ...`` (or ``push()``).

    ``view.data``, ``view.layout``, ``add_traces`` and ``update_layout`` are those of the inner
    ``go.Figure`` (``view.figure_obj``). ``on_click(callback)`` gets clicks in data coordinates.
    """

    _esm = Path(__file__).with_name("plotview.js")
    figure = traitlets.Dict().tag(sync=True)

    def __init__(self, fig: go.Figure | dict | None = None, **kwargs: Any) -> None:
        capture_loop()
        super().__init__(**kwargs)
        self.figure_obj = go.Figure(fig) if fig is not None else go.Figure()
        self._clicks: list[ClickCallback] = []
        self._depth = 0
        self._template_src: Any = None
        self._template_state: dict[str, Any] | None = None
        self.on_msg(self._on_msg)
        self.push()

    # --- the figure -------------------------------------------------------------------------------

    @property
    def data(self) -> tuple:
        """The traces (plotly objects; change them inside :meth:`batch_update`)."""
        return self.figure_obj.data

    @data.setter
    def data(self, traces: Any) -> None:
        self.figure_obj.data = traces
        self._changed()

    @property
    def layout(self) -> go.Layout:
        """The layout (change it inside :meth:`batch_update`)."""
        return self.figure_obj.layout

    def add_traces(self, traces: Any, **kwargs: Any) -> None:
        """Add traces and redraw."""
        self.figure_obj.add_traces(traces, **kwargs)
        self._changed()

    def update_layout(self, **kwargs: Any) -> None:
        """Update the layout and redraw."""
        self.figure_obj.update_layout(**kwargs)
        self._changed()

    def replace(self, fig: go.Figure) -> None:
        """Show another figure in the same view (one widget per view, however often it changes)."""
        self.figure_obj = go.Figure(fig)
        self._changed()

    @contextmanager
    def batch_update(self) -> Iterator[None]:
        """Make several changes, then send the figure once."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            self._changed()

    def _changed(self) -> None:
        if self._depth == 0:
            self.push()

    def state(self) -> dict[str, Any]:
        """The figure as widget state: plotly JSON with arrays as buffers.

        The layout's template (plotly's default styling: thousands of small entries, most of the cost
        of serialising a figure) is encoded once per figure and reused while it stays the same.
        """
        fig = self.figure_obj
        props = fig.layout._props
        template = props.get("template")
        if template is not self._template_src:
            self._template_src = template
            self._template_state = encode(fig.layout.template.to_plotly_json()) if template else None
        layout = encode({k: v for k, v in props.items() if k != "template"})
        if self._template_state is not None:
            layout["template"] = self._template_state
        return {"data": [encode(t.to_plotly_json()) for t in fig.data], "layout": layout}

    def push(self) -> None:
        """Send the figure as it is now to every view of it (on the kernel's main thread)."""
        on_main(self.set_trait, "figure", self.state())

    # --- events -----------------------------------------------------------------------------------

    def on_click(self, callback: ClickCallback) -> None:
        """Call ``callback(x, y, click)`` when the plot is clicked (x, y in data coordinates)."""
        self._clicks.append(callback)

    def click(self, x: float, y: float, **point: Any) -> None:
        """Act as if the plot were clicked at (x, y) (what the browser sends; for tests and scripts)."""
        msg = {"type": "click", "x": x, "y": y, "trace": None, "point_x": None, "point_y": None} | point
        self._on_msg(self, msg, [])

    def _on_msg(self, _widget: Any, content: dict, buffers: list) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "need-plotly":
            self.send({"type": "plotly-js"}, buffers=[plotly_js()])
        elif kind == "click" and content.get("x") is not None and content.get("y") is not None:
            for cb in self._clicks:
                cb(float(content["x"]), float(content["y"]), content)
