"""Notebooks benchmark: wall time of every ``notebooks/*.ipynb`` under papermill.

Each notebook runs in a fresh kernel in a temporary folder, with ``fast=True`` (the parameters the
tests use) and, unless ``quick``, with its default parameters (the full teaching run: thousands of
training steps, so this takes a long time on a CPU). The metrics each notebook records are kept
beside its time, so a slow-down and a change in results show up together.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import papermill as pm
from papermill.exceptions import PapermillExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _execute(path: Path, fast: bool) -> dict[str, Any]:
    """Run one notebook; its wall time in seconds and the metrics it recorded (or the error)."""
    with tempfile.TemporaryDirectory(prefix="aenp-bench-nb-") as tmp:
        folder = Path(tmp)
        declared = pm.inspect_notebook(str(path))
        parameters: dict[str, Any] = {"metrics_path": str(folder / "metrics.json")}
        if fast:
            parameters["fast"] = True
        if "results_path" in declared:
            parameters["results_path"] = str(folder / "results.nc")
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(path),
                str(folder / path.name),
                parameters=parameters,
                kernel_name="python3",
                language="python",
                progress_bar=False,
                cwd=str(folder),
            )
        except PapermillExecutionError as err:
            return {"seconds": time.perf_counter() - t0, "error": f"{err.ename}: {err.evalue}"}
        seconds = time.perf_counter() - t0
        metrics = json.loads((folder / "metrics.json").read_text())
        return {"seconds": seconds, "metrics": metrics}


def run(quick: bool) -> dict:
    out: dict[str, Any] = {"notebooks": [p.stem for p in NOTEBOOKS]}
    for path in NOTEBOOKS:
        row = {"fast": _execute(path, fast=True)}
        print(path.stem, "fast", round(row["fast"]["seconds"], 1), "s", flush=True)
        if not quick:
            row["defaults"] = _execute(path, fast=False)
            print(path.stem, "defaults", round(row["defaults"]["seconds"], 1), "s", flush=True)
        out[path.stem] = row
    out["fast_total_seconds"] = sum(out[p.stem]["fast"]["seconds"] for p in NOTEBOOKS)
    return out
