"""The chart widget and the main-thread rule behind the app's charts (no browser)."""

import asyncio
import json
import threading

import numpy as np
import plotly.graph_objects as go
import pytest
from ipywidgets.widgets.widget import _remove_buffers

import widgets.mainthread as mainthread
from widgets import MapView
from widgets.plotview import PlotView, encode, plotly_js
from workbench import Experiment, run


def _decode(state, buffers):
    """What the browser rebuilds from the widget state: buffers back in place, arrays as lists."""

    def walk(v):
        if isinstance(v, dict):
            if v.get("__nd__"):
                return np.frombuffer(v["buffer"], dtype=np.float64).reshape(v["shape"])
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    for path, buf in zip(state["paths"], buffers, strict=True):
        node = state["state"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = bytes(buf)
    return walk(state["state"])


def _page_state(view: PlotView) -> dict:
    """The state a (re)loaded page receives, through the same JSON a kernel sends."""
    state, paths, buffers = _remove_buffers(view.get_state())
    text = json.dumps(state, allow_nan=False)  # NaN would make the browser's JSON.parse fail
    return _decode({"state": json.loads(text), "paths": paths}, buffers)["figure"]


def test_the_page_state_is_the_current_figure_not_the_first_one():
    run_ = run(
        Experiment(dataset="colorado-temperature", steps=2, batch_size=4, test_tasks=8), progress=False
    )
    mv = MapView(run_, resolution=0.25)
    mv.show("breaking")
    fig = _page_state(mv.fig)
    heat = fig["data"][0]
    assert heat["type"] == "heatmap" and heat["zmid"] == 0
    assert heat["colorbar"]["title"]["text"] == "°C"
    assert fig["layout"]["title"]["text"].startswith("symmetry breaking")
    assert fig["layout"]["xaxis"]["title"]["text"] == "longitude (°E)"
    assert fig["layout"]["template"]["layout"]["font"]  # plotly's styling travels with the state
    z0 = np.array(heat["z"])
    assert z0.shape == np.shape(mv.layer.snap.fields["breaking"]) and np.isfinite(z0).any()
    mv.add_observation(-105.0, 39.0, value=40.0)
    z1 = np.array(_page_state(mv.fig)["data"][0]["z"])
    assert not np.allclose(z0, z1, equal_nan=True)  # a reloaded page draws the redrawn map


def test_arrays_travel_as_buffers_and_nan_never_reaches_json():
    fig = go.Figure(
        [go.Scatter(x=[0.0, None, 2.0], y=np.array([1.0, np.nan, 3.0])), go.Bar(x=["a", "b"], y=[1, 2])]
    )
    state = encode(fig.to_plotly_json())
    x = state["data"][0]["x"]
    assert x["__nd__"] and x["shape"] == [3]
    assert np.isnan(np.frombuffer(x["buffer"], dtype=np.float64)[1])
    assert state["data"][1]["x"] == ["a", "b"]  # categories stay text
    assert encode(float("nan")) is None and encode({"a": np.float32(2.5)}) == {"a": 2.5}


def test_plotly_js_is_sent_once_on_request_and_defines_the_global():
    view = PlotView(go.Figure())
    sent = []
    view.send = lambda content, buffers=None: sent.append((content, buffers))
    view._on_msg(view, {"type": "need-plotly"}, [])
    ((content, buffers),) = sent
    assert content == {"type": "plotly-js"} and buffers[0] is plotly_js()
    assert len(plotly_js()) > 1_000_000 and b"define=undefined" in plotly_js()[:200]
    assert "figure" in view.keys and len(view._esm) < 20_000  # no 5 MB bundle per chart


def test_clicks_report_the_position_in_data_coordinates():
    view = PlotView(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])))
    got = []
    view.on_click(lambda x, y, click: got.append((x, y, click["trace"])))
    view._on_msg(view, {"type": "click", "x": 0.3, "y": 1.2, "trace": 0}, [])
    view._on_msg(view, {"type": "click", "x": None, "y": 1.0}, [])  # nothing to add
    assert got == [(0.3, 1.2, 0)]


def test_updates_from_a_thread_run_on_the_main_thread_inside_a_kernel_loop():
    loop = asyncio.new_event_loop()
    ran_on = []

    async def main():
        mainthread.capture_loop()  # as a widget built in a notebook cell does
        worker = threading.Thread(
            target=lambda: mainthread.on_main(lambda: ran_on.append(threading.current_thread()))
        )
        worker.start()
        worker.join()
        assert ran_on == []  # queued, not run in the worker
        await asyncio.sleep(0.05)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        mainthread._loop = None
    assert ran_on == [threading.main_thread()]


def test_drain_runs_queued_updates_in_order_and_survives_a_failing_one(capsys):
    out = []
    mainthread._queue.extend([(out.append, (1,)), (lambda: 1 / 0, ()), (out.append, (2,))])
    mainthread.drain()
    assert out == [1, 2] and "ZeroDivisionError" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError):
        mainthread.on_main(lambda: 1 / 0)  # on the main thread it runs in place: errors surface


def test_one_style_table_serves_both_back_ends():
    import matplotlib

    from widgets import heatmap
    from workbench import plot
    from workbench.style import STYLES

    assert heatmap.STYLES is STYLES and plot.STYLES is STYLES
    for name, style in STYLES.items():
        matplotlib.colormaps[style.colours]  # a KeyError names an unknown colour map
        if name != "elevation":  # the app draws elevation as contours, not as a heat map
            go.Heatmap(colorscale=style.colours)
