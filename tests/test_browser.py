"""The app in a real browser: JupyterLab + headless Chromium (Playwright), offline, on 127.0.0.1.

Opens ``00_start_here``, runs all cells, presses Train (a background run) and then checks what a
person sees, read from the charts themselves. On an idle machine with the app's default world
(``mountain-1d``): the Map tab's function plot has the model's mean, its strict component and the
exact oracle's mean, and a click adds a context point that changes the mean near it. On a machine
the test keeps busy, with Colorado: the Map tab has a heatmap with finite values and a colour bar
titled with the data's units, and a click changes the heatmap near the clicked point. Both: the
Compare chart has a point per trained model, the Equivariance chart has a curve, and after a page
reload all of it holds again. Skipped when Chromium or Playwright is missing. Screenshots go to
``out/browser/<load>/``.
"""

import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
]
#: User settings for the test's JupyterLab: no news or update pop-ups over the notebook, and every
#: cell rendered (the default windowing skips off-screen cells, which the browser cannot click).
SETTINGS = {
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "notebook-extension/tracker": {"windowingMode": "none"},
}

if not Path(CHROMIUM).exists() or importlib.util.find_spec("playwright") is None:
    pytest.skip(
        "browser test needs Chromium and Playwright; install with: "
        "apt-get install -y chromium && pip install playwright",
        allow_module_level=True,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The notebooks the test opens: the start notebook as shipped, and the same on Colorado (the map).
NOTEBOOKS = {"default": "00_start_here.ipynb", "colorado": "00_start_here_colorado.ipynb"}


def _notebook_copy(dest: Path) -> None:
    """00_start_here with ``fast = True`` (small test sets, so evaluation after Train is quick), as
    shipped and with ``dataset = "colorado-temperature"``."""
    nb = nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert "fast = False" in cell.source
    cell.source = cell.source.replace("fast = False", "fast = True")
    nbformat.write(nb, dest / NOTEBOOKS["default"])
    default = cell.source.split('dataset = "', 1)[1].split('"', 1)[0]
    assert default != "colorado-temperature", "the map variant below must differ from the default"
    cell.source = cell.source.replace(f'dataset = "{default}"', 'dataset = "colorado-temperature"')
    nbformat.write(nb, dest / NOTEBOOKS["colorado"])


def _wait_text(page, selector: str, text: str, timeout: float) -> None:
    """Wait until the first element matching ``selector`` shows ``text``."""
    page.wait_for_function(
        "([sel, text]) => (document.querySelector(sel)?.innerText || '').includes(text)",
        arg=[selector, text],
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a random port with a token, rooted in a temporary copy of the notebook."""
    tmp = tmp_path_factory.mktemp("lab")
    root, home = tmp / "root", tmp / "home"
    root.mkdir()
    _notebook_copy(root)
    for name, values in SETTINGS.items():
        path = home / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ)
    env.update(
        # Private config, data, workspaces and settings: nothing of the user's leaks in (a user
        # kernel named python3 would shadow the venv's one), no stale workspace is restored.
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        OMP_NUM_THREADS="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.getuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp / "jupyter.log", "w")  # closed in the teardown below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{(tmp / 'jupyter.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield url, token
    finally:
        proc.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _busy(n: int, seconds: float) -> list[subprocess.Popen]:
    """``n`` processes that spin for at most ``seconds`` (a loaded machine, bounded in time)."""
    code = f"import time\nt = time.time() + {seconds}\nwhile time.time() < t:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


#: What a plotly chart under ``sel`` shows: its traces (type, points, finite values) and colour bars.
PLOT_STATE = """
(sel) => {
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  if (!gd || !gd.data || !gd._fullLayout) return null;
  const row = (r) => (r && r.length !== undefined && typeof r !== 'string' ? Array.from(r) : [r]);
  const flat = (a) => (a ? Array.from(a).flatMap(row) : []);
  const traces = (gd._fullData || gd.data).map((t) => {
    const z = flat(t.z), y = flat(t.y), x = flat(t.x);
    return {
      type: t.type, name: t.name || '', visible: t.visible,
      nz: z.length, zfinite: z.filter((v) => v !== null && Number.isFinite(+v)).length,
      ny: y.length, yfinite: y.filter((v) => v !== null && Number.isFinite(+v)).length,
      xfinite: x.filter((v) => v !== null && Number.isFinite(+v)).length,
      colorbar: (t.colorbar && t.colorbar.title && t.colorbar.title.text) || '',
      colorscale: JSON.stringify(t.colorscale || null).slice(0, 60),
    };
  });
  const title = gd._fullLayout.title && gd._fullLayout.title.text;
  return {traces, title: title || ''};
}
"""

#: The heatmap's value at a page position (client pixels), read from the chart's own axes.
VALUE_AT = """
([sel, cx, cy]) => {
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  const drag = gd.querySelector('.nsewdrag');
  const b = drag.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const x = xa.range[0] + (cx - b.left) / b.width * (xa.range[1] - xa.range[0]);
  const y = ya.range[1] - (cy - b.top) / b.height * (ya.range[1] - ya.range[0]);
  const h = gd.data.find((t) => t.type === 'heatmap');
  const xs = Array.from(h.x), ys = Array.from(h.y);
  const near = (a, v) => a.reduce((bi, av, i) => (Math.abs(av - v) < Math.abs(a[bi] - v) ? i : bi), 0);
  const i = near(ys, y), j = near(xs, x);
  return {x, y, value: +h.z[i][j]};
}
"""


SHOTS = ROOT / "out" / "browser"


def _tab(page, title: str) -> None:
    page.locator(".aenp-workbench .lm-TabBar-tab", has_text=title).first.click()


def _wait_plot(page, sel: str, check: str, what: str, timeout: float) -> dict:
    """Wait until the chart under ``sel`` passes the JS predicate ``check(state)``; its state."""
    try:
        page.wait_for_function(
            f"(sel) => {{ const s = ({PLOT_STATE})(sel); return !!s && ({check})(s); }}",
            arg=sel,
            timeout=timeout,
        )
    except Exception as err:
        state = page.evaluate(PLOT_STATE, sel)
        raise AssertionError(f"{what}: chart {sel} never showed it; it shows {state}") from err
    return page.evaluate(PLOT_STATE, sel)


HEATMAP_OK = "(s) => s.traces.some((t) => t.type === 'heatmap' && t.zfinite > 100 && t.colorbar === UNITS)"
#: The 1-D view: the model's mean, its strict component and the exact oracle's mean, each a curve.
LINES_OK = (
    "(s) => ['mean (fixed inputs on)', 'strict component', 'GP oracle mean'].every("
    "(n) => s.traces.some((t) => t.name.startsWith(n) && t.type === 'scatter' && t.yfinite > 50))"
)
#: The 1-D mean's value at the x of a page position (client pixels), read from the chart's own axes.
MEAN_AT = """
([sel, cx, cy]) => {
  const gd = document.querySelector(sel + ' .js-plotly-plot');
  const b = gd.querySelector('.nsewdrag').getBoundingClientRect();
  const xa = gd._fullLayout.xaxis;
  const x = xa.range[0] + (cx - b.left) / b.width * (xa.range[1] - xa.range[0]);
  const t = gd.data.find((t) => t.name === 'mean (fixed inputs on)');
  const xs = Array.from(t.x);
  const i = xs.reduce((bi, v, k) => (Math.abs(v - x) < Math.abs(xs[bi] - x) ? k : bi), 0);
  return {x, value: +t.y[i]};
}
"""


def _check_charts(page, when: str, shots: Path, timeout: float, one_d: bool) -> None:
    """The map (a heatmap with units; 1-D: mean, strict and oracle curves), a click that changes it,
    Compare points, an Equivariance curve."""
    _tab(page, "Map")
    ok = LINES_OK if one_d else HEATMAP_OK.replace("UNITS", "'°C'")
    state = _wait_plot(page, ".aenp-map", ok, f"{when}: map", timeout)
    assert state["title"], state
    value_at = MEAN_AT if one_d else VALUE_AT
    drag = page.locator(".aenp-map .nsewdrag").first
    drag.scroll_into_view_if_needed()
    box = drag.bounding_box()
    cx, cy = box["x"] + 0.45 * box["width"], box["y"] + 0.55 * box["height"]
    before = page.evaluate(value_at, [".aenp-map", cx, cy])
    # Up to three clicks, as a person would click again: on a loaded machine a click that lands
    # while plotly is still re-rendering the chart after Train can be lost (seen in 1 of 3 clean
    # runs of the busy variant, never when idle). Each click gets a third of the time.
    for attempt in range(3):
        page.mouse.move(cx, cy)
        page.mouse.click(cx, cy)
        try:
            page.wait_for_function(
                f"(a) => Math.abs(({value_at})(a).value - {before['value']}) > 1e-4",
                arg=[".aenp-map", cx, cy],
                timeout=timeout / 3,
            )
            break
        except Exception as err:
            if attempt < 2:
                continue
            after = page.evaluate(value_at, [".aenp-map", cx, cy])
            raise AssertionError(
                f"{when}: the map did not change after 3 clicks: {before} -> {after}"
            ) from err
    page.screenshot(path=str(shots / f"{when}-map.png"), full_page=True)

    _tab(page, "Compare")
    # One point per trained model (only the trained run itself until "Train missing" is pressed).
    points = "(s) => s.traces.some((t) => t.name === 'test log-lik' && t.xfinite === 1 && t.ny === 1)"
    _wait_plot(page, ".aenp-compare", points, f"{when}: compare", timeout)
    page.screenshot(path=str(shots / f"{when}-compare.png"), full_page=True)

    _tab(page, "Equivariance")
    curve = "(s) => s.traces.some((t) => t.type === 'scatter' && t.yfinite >= 2)"
    _wait_plot(page, ".aenp-equivariance", curve, f"{when}: equivariance", timeout)
    page.screenshot(path=str(shots / f"{when}-equivariance.png"), full_page=True)


@pytest.mark.parametrize(("load", "notebook"), [("idle", "default"), ("busy", "colorado")])
def test_charts_show_data_after_train_and_after_reload(lab, load, notebook):
    from playwright.sync_api import sync_playwright

    url, token = lab
    shots = SHOTS / load
    shots.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    errors: list[str] = []
    t0 = time.perf_counter()
    timeout = 60_000 if load == "idle" else 150_000
    one_d = notebook == "default"  # the app's default world is 1-D (widgets.app.DEFAULT_DATASET)

    def phase(name: str) -> None:  # printed: pytest shows it when the test fails
        print(f"{time.perf_counter() - t0:6.1f} s  {name}", flush=True)

    # Four spinning processes on two cores: a shared JupyterHub or a laptop doing other work.
    busy = _busy(4, 400) if load == "busy" else []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 1100})
                # Every action waits as long as the chart checks: on a busy machine a reloaded page
                # can take longer than playwright's 30 s default to scroll a tab into view.
                page.set_default_timeout(timeout)
                page.on(
                    "request",
                    lambda req: (
                        outside.append(req.url)
                        if not req.url.startswith((url, "data:", "blob:", "about:"))
                        else None
                    ),
                )
                page.on(
                    "console",
                    lambda msg: (
                        errors.append(msg.text)
                        if msg.type == "error" and "widget" in msg.text.lower()
                        else None
                    ),
                )
                try:
                    # A workspace of its own, reset: the lab would otherwise restore the notebook an earlier
                    # test left open, and its (hidden) app would answer this test's selectors.
                    page.goto(f"{url}/lab/workspaces/{load}/tree/{NOTEBOOKS[notebook]}?reset&token={token}")
                    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=timeout)
                    page.locator(".jp-StatusBar-Widget", has_text="Idle").first.wait_for(timeout=timeout)
                    phase("kernel idle")
                    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
                    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
                    steps = page.locator(".aenp-steps input")
                    steps.wait_for(timeout=timeout)
                    phase("app shown")
                    steps.fill("5")
                    steps.press("Enter")
                    page.locator("button.aenp-train").click()
                    _wait_text(page, ".aenp-status", "done: 5 steps", 2 * timeout)
                    phase("trained")
                    _check_charts(page, "after-train", shots, timeout, one_d)
                    phase("charts after Train")
                    page.keyboard.press("Control+s")  # the reloaded page shows the saved outputs
                    page.wait_for_timeout(1500)
                    page.reload()
                    page.wait_for_selector(".aenp-workbench", timeout=timeout)
                    phase("reloaded")
                    _check_charts(page, "after-reload", shots, timeout, one_d)
                    phase("charts after reload")
                except Exception:
                    page.screenshot(path=str(shots / "failure.png"), full_page=True)
                    print(f"screenshots in {shots}")
                    raise
            finally:
                browser.close()
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    print(f"screenshots in {shots}")
    assert outside == [], f"requests left 127.0.0.1: {outside[:5]}"
    assert errors == [], f"widget errors in the browser console: {errors[:5]}"
