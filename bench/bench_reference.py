"""Side by side with the reference library: our ConvCNP and ``neuralprocesses``' on the same problem.

Ours: the default 1-D ``conv`` model (5 layers x 32 channels, kernel 9, 16 points per unit) timed as
in ``bench_core``. Theirs: ``reference_neuralprocesses.py`` run by ``.venv-ref/bin/python`` (``make
bench`` creates that environment: the same torch pin plus ``neuralprocesses``). Without it the
reference is reported as missing, not guessed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from workbench.threads import WAIT_VARS

HERE = Path(__file__).resolve().parent
REF_PYTHON = HERE.parent / ".venv-ref" / "bin" / "python"

sys.path.insert(0, str(HERE))
import bench_core  # noqa: E402


def run(quick: bool) -> dict:
    ours = bench_core.speed(torch.device("cpu"), 20 if quick else 100)["conv/T/strict"]
    out: dict = {"ours": {k: ours[k] for k in ("train_step_ms", "predict_512_ms")}}
    if not REF_PYTHON.exists():
        out["reference"] = {"missing": f"{REF_PYTHON} not found; `make bench` creates it"}
        return out
    proc = subprocess.run(
        [str(REF_PYTHON), str(HERE / "reference_neuralprocesses.py")],
        capture_output=True,
        text=True,
        timeout=1800,
        # The same OpenMP waiting as ours (workbench sets it on import), so neither side spins longer.
        env={"OMP_NUM_THREADS": "2", "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"}
        | {k: os.environ[k] for k in WAIT_VARS if k in os.environ},
    )
    if proc.returncode != 0:
        out["reference"] = {"error": proc.stderr[-2000:]}
        return out
    ref = json.loads(proc.stdout.strip().splitlines()[-1])
    out["reference"] = ref
    out["speedup_train"] = ref["train_step_ms"] / ours["train_step_ms"]
    out["speedup_predict"] = ref["predict_512_ms"] / ours["predict_512_ms"]
    return out
