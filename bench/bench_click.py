"""Click benchmark: how long the map takes to redraw after a click, on CPU.

A Colorado fixed-inputs ConvCNP is trained briefly; ``MapView`` shows it on a 100 x 100 lon/lat grid.
Fifty clicks at random places (``MapView.add_observation``, what the click handler calls: one
``predict_map`` with the added stations, then the heatmap's z replaced in one batch update) are timed
one by one; the context grows by one station per click. Also timed: ``predict_map`` alone and the
figure update alone, and a click on the 1-D (gibbs-1d) view. Clicks are timed with one torch thread
and with the runner's thread count: on a busy 2-core machine a second thread per op can make each
click ten times slower, so both are worth seeing.
"""

from __future__ import annotations

import time

import numpy as np
import torch

import workbench
from widgets import MapView
from workbench import Experiment
from workbench.maps import predict_map

GRID = (np.linspace(36.55, 41.45, 100), np.linspace(-109.45, -101.05, 100))  # (lats, lons)


def _stats(times: list[float]) -> dict[str, float]:
    ms = 1e3 * np.asarray(times)
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "n": len(ms)}


def _timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _click_times(mv: MapView, n_clicks: int, seed: int) -> list[float]:
    """Time ``n_clicks`` clicks at random places of the map (after two warm-up clicks), then clear."""
    rng = np.random.default_rng(seed)
    lon0, lon1, lat0, lat1 = mv.layer.source.region
    points = np.c_[rng.uniform(lon0, lon1, n_clicks + 2), rng.uniform(lat0, lat1, n_clicks + 2)]
    for lon, lat in points[:2]:  # warm up (first calls allocate and fill caches)
        mv.add_observation(lon, lat, value=30.0)
    mv.clear()
    clicks = []
    for lon, lat in points[2:]:
        t0 = time.perf_counter()
        mv.add_observation(float(lon), float(lat), value=float(rng.uniform(10, 35)))
        clicks.append(time.perf_counter() - t0)
    mv.clear()
    return clicks


def colorado_clicks(steps: int, n_clicks: int) -> dict:
    """Train briefly, then time clicks, predict_map alone and the figure update alone."""
    exp = Experiment(
        dataset="colorado-temperature",
        model="conv",
        group="T",
        relaxation="fixed-inputs",
        steps=steps,
        test_tasks=32,
        device="cpu",
    )
    r = workbench.run(exp, progress=False)
    mv = MapView(r, grid=GRID)
    src = mv.layer.source
    out: dict = {
        "grid": f"{len(GRID[0])} x {len(GRID[1])}",
        "steps": steps,
        "n_stations": int(len(src.base.value)),
        "n_stations_after": int(len(src.base.value) + n_clicks),
    }
    runner = torch.get_num_threads()
    for threads in sorted({1, runner}):
        torch.set_num_threads(threads)
        clicks = _click_times(mv, n_clicks, seed=0)
        forward = _timed(lambda: predict_map(r, src.base, grid=GRID, sampler=src.sampler), 20)
        out[f"threads_{threads}"] = {
            "click": _stats(clicks),
            "predict_map": _stats(forward),
            "click_under_100ms": bool(np.median(clicks) < 0.1),
        }
    torch.set_num_threads(runner)
    z = np.asarray(mv.fig.data[0].z, dtype=float)
    rng = np.random.default_rng(2)

    def update() -> None:
        with mv.fig.batch_update():
            mv.layer.heat.z = z + 1e-3 * rng.standard_normal(z.shape)

    out["figure_update"] = _stats(_timed(update, 20))
    return out


def line_clicks(steps: int, n_clicks: int) -> dict:
    """Clicks on the 1-D view (gibbs-1d: model, strict component and the exact oracle at 400 points)."""
    r = workbench.run(
        Experiment(dataset="gibbs-1d", steps=steps, test_tasks=16, device="cpu"), progress=False
    )
    mv = MapView(r)
    out: dict = {"steps": steps, "points": len(mv.layer.source.x)}
    runner = torch.get_num_threads()
    rng = np.random.default_rng(1)
    for threads in sorted({1, runner}):
        torch.set_num_threads(threads)
        mv.add_observation(0.0, 0.0)
        mv.clear()
        clicks = _timed(lambda: mv.add_observation(float(rng.uniform(-2, 2)), float(rng.normal())), n_clicks)
        mv.clear()
        out[f"threads_{threads}"] = {"click": _stats(clicks)}
    torch.set_num_threads(runner)
    return out


def run(quick: bool) -> dict:
    steps = 5 if quick else 300
    n = 10 if quick else 50
    return {"colorado": colorado_clicks(steps, n), "gibbs-1d": line_clicks(steps, n)}
