"""The app in a real browser: JupyterLab + headless Chromium (Playwright), offline, on 127.0.0.1.

Opens ``00_start_here``, runs all cells, types a small step count, presses Train, waits for the run,
clicks on the map and checks that the posterior redrew with the added observation. Skipped when
Chromium or Playwright is missing.
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


def _notebook_copy(dest: Path) -> None:
    """00_start_here with ``fast = True``: small test sets, so evaluation after Train is quick."""
    nb = nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert "fast = False" in cell.source
    cell.source = cell.source.replace("fast = False", "fast = True")
    nbformat.write(nb, dest / "00_start_here.ipynb")


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


def test_train_and_click_on_the_map_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, token = lab
    outside: list[str] = []
    t0 = time.perf_counter()

    def phase(name: str) -> None:  # printed: pytest shows it when the test fails
        print(f"{time.perf_counter() - t0:6.1f} s  {name}", flush=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.on(
                "request",
                lambda req: (
                    outside.append(req.url)
                    if not req.url.startswith((url, "data:", "blob:", "about:"))
                    else None
                ),
            )
            try:
                page.goto(f"{url}/lab/tree/00_start_here.ipynb?token={token}")
                page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60_000)
                phase("notebook open")
                # Run All before the kernel is connected would do nothing.
                page.locator(".jp-StatusBar-Widget", has_text="Idle").first.wait_for(timeout=60_000)
                phase("kernel idle")
                page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
                page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

                steps = page.locator(".aenp-steps input")
                steps.wait_for(timeout=90_000)
                phase("app shown")
                steps.fill("5")
                steps.press("Enter")
                page.locator("button.aenp-train").click()
                status = page.locator(".aenp-status")
                _wait_text(page, ".aenp-status", "done: 5 steps", 90_000)
                phase("trained")
                assert "test log-lik" in status.inner_text()

                drag = page.locator(".aenp-map .nsewdrag").first
                drag.wait_for(timeout=30_000)
                drag.scroll_into_view_if_needed()
                box = drag.bounding_box()
                x, y = box["x"] + 0.45 * box["width"], box["y"] + 0.5 * box["height"]
                page.mouse.move(x, y)  # plotly reports a click on the point it hovers
                page.wait_for_timeout(300)
                page.mouse.click(x, y)
                _wait_text(page, ".aenp-obs", "added observations: 1", 30_000)
                phase("map redrawn after the click")
                page.screenshot(path=str(tmp_path / "workbench.png"), full_page=True)
                assert page.locator(".aenp-obs").inner_text().startswith("added observations: 1")
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                raise
        finally:
            browser.close()
    assert outside == [], f"requests left 127.0.0.1: {outside[:5]}"
