"""Scaling study (issue 14; notebook 06): test log-likelihood against training-set size and compute.

For mountain-1d (exact ceilings) and Colorado temperature, the methods of ``workbench.scaling.METHODS``
(none, none+augmentation, strict, fixed-inputs, residual-pathway), 3 seeds:

- data axis: ``STEPS`` steps on fixed pools of 2^6, 2^8, ..., 2^14 tasks (``Experiment.train_pool``),
- compute axis: the steps that fit 4, 12 and 36 CPU-seconds of one thread, on fresh tasks.

The Datasets go to ``results/scaling/DATASET_{data,compute}.nc`` (notebook 06 reads them with
``train = False``); ``results/scaling.json`` has the means ± s.e., the paired differences that answer
the three questions, the winners at each budget and the power-law fits.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = ["mountain-1d", "colorado-temperature"]
STEPS = 500
PAIRS = [
    ("strict", "none"),
    ("none+augmentation", "none"),
    ("strict", "none+augmentation"),
    ("fixed-inputs", "strict"),
    ("fixed-inputs", "none"),
    ("residual-pathway", "strict"),
    ("residual-pathway", "none"),
]


def _summary(ds: Any, dim: str) -> dict[str, Any]:
    from workbench import scaling

    mean = ds["loglik"].mean("seed")
    n = ds["loglik"].notnull().sum("seed")
    se = ds["loglik"].std("seed", ddof=1) / n**0.5
    x = [v.item() for v in ds[dim].values]
    out: dict[str, Any] = {dim: x, "methods": {}}
    for m in ds["method"].values:
        m = str(m)
        out["methods"][m] = {
            "loglik_mean": mean.sel({"method": m}).values.tolist(),
            "loglik_se": se.sel({"method": m}).values.tolist(),
        }
        if "steps_run" in ds:
            out["methods"][m]["steps"] = ds["steps_run"].sel({"method": m}).values.tolist()
    out["paired"] = {}
    for a, b in PAIRS:
        p = scaling.paired_over_seeds(ds, a, b)
        out["paired"][f"{a} - {b}"] = {
            "mean": p["mean"].values.tolist(),
            "se_over_seeds": p["se"].values.tolist(),
            "beyond_2se": [
                bool(abs(m) > 2 * s) for m, s in zip(p["mean"].values, p["se"].values, strict=True)
            ],
        }
    out["winners"] = scaling.winners(ds, dim)
    laws = scaling.power_laws(ds, dim)
    out["power_laws"] = {
        str(m): {k: laws[k].sel({"method": m}).item() for k in ("a", "b", "c", "r2", "r2_log", "holds")}
        for m in laws["method"].values
    }
    if "step_cpu_seconds" in ds:
        out["step_cpu_ms"] = {
            str(m): 1e3 * float(v)
            for m, v in zip(ds["method"].values, ds["step_cpu_seconds"].values, strict=True)
        }
    return out


def run(quick: bool) -> dict[str, Any]:
    """The study (``quick``: sizes 16 and 32, 4 steps, budgets 0.3 and 0.6 CPU-s, 2 seeds, 16 tasks)."""
    from workbench import scaling
    from workbench.sweep import local_client

    sizes = [16, 32] if quick else list(scaling.SIZES)
    budgets = [0.3, 0.6] if quick else list(scaling.BUDGETS)
    steps, seeds, n_test = (4, 2, 16) if quick else (STEPS, 3, 256)
    # A second process may take one dataset with its own settings (SCALING_DATASETS, SCALING_STEPS).
    steps = int(os.environ.get("SCALING_STEPS", steps))
    folder = RESULTS / ("scaling-quick" if quick else "scaling")
    folder.mkdir(parents=True, exist_ok=True)
    t0, load0 = time.perf_counter(), os.getloadavg()
    out: dict[str, Any] = {
        "sizes": sizes,
        "budgets": budgets,
        "steps": steps,
        "seeds": seeds,
        "test_tasks": n_test,
    }
    out["methods"] = scaling.METHODS
    out["datasets"] = {}
    client = local_client(2)
    try:
        for d in os.environ.get("SCALING_DATASETS", ",".join(DATASETS)).split(","):
            on = dict(seeds=seeds, test_tasks=n_test, client=client, progress=False)
            t = time.perf_counter()
            data = scaling.data_scaling(d, sizes=sizes, steps=steps, **on)
            data.to_netcdf(folder / f"{d}_data.nc")
            t_data = time.perf_counter() - t
            compute = scaling.compute_scaling(d, budgets=budgets, **on)
            compute.to_netcdf(folder / f"{d}_compute.nc")
            out["datasets"][d] = {
                "ceilings": scaling.ceilings_of(d, n_test),
                "steps": steps,
                "data": _summary(data, "n_tasks"),
                "compute": _summary(compute, "budget"),
                "wall_seconds": {"data": t_data, "compute": time.perf_counter() - t - t_data},
            }
            print(d, "done", f"{time.perf_counter() - t0:.0f}s", flush=True)
    finally:
        client.close()
    out["wall_seconds"] = time.perf_counter() - t0
    out["loadavg_start"], out["loadavg_end"] = list(load0), list(os.getloadavg())
    return out


def from_files(folder: Path = RESULTS / "scaling") -> dict[str, Any]:
    """The JSON from the study's netCDF files (e.g. when the run was stopped after some datasets)."""
    import xarray as xr

    from workbench import scaling

    out: dict[str, Any] = {"datasets": {}, "from_files": True}
    for d in DATASETS:
        axes = {a: folder / f"{d}_{a}.nc" for a in ("data", "compute")}
        if not axes["data"].exists():
            continue
        data = xr.load_dataset(axes["data"])
        out.update(
            sizes=[int(n) for n in data["n_tasks"].values],
            steps=int(data.attrs["steps"]),
            seeds=int(data.sizes["seed"]),
            test_tasks=int(data.sizes["task"]),
            methods=scaling.METHODS,
        )
        out["datasets"][d] = {
            "ceilings": scaling.ceilings_of(d, int(data.sizes["task"])),
            "steps": int(data.attrs["steps"]),
            "data": _summary(data, "n_tasks"),
        }
        if axes["compute"].exists():
            compute = xr.load_dataset(axes["compute"])
            out["budgets"] = [float(b) for b in compute["budget"].values]
            out["datasets"][d]["compute"] = _summary(compute, "budget")
        else:
            out.setdefault("missing", []).append(f"{d} compute axis (the run was stopped before it)")
    return out


if __name__ == "__main__":
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import workbench  # noqa: F401

    if sys.argv[1:2] == ["--one"]:
        # --one: run the study for $SCALING_DATASETS into results/scaling/ without writing the JSON
        # (rebuild it with --from-files once every dataset is there).
        res = run(quick=False)
        print(json.dumps({d: v["wall_seconds"] for d, v in res["datasets"].items()}))
    elif sys.argv[1:2] == ["--from-files"]:
        res = from_files()
        res["wall_seconds"] = float(sys.argv[2]) if len(sys.argv) > 2 else float("nan")
        import torch

        stamp = time.strftime(
            "%Y-%m-%d %H:%M",
            time.localtime(max(p.stat().st_mtime for p in (RESULTS / "scaling").glob("*.nc"))),
        )
        res["_meta"] = {
            "date": stamp,
            "torch": torch.__version__,
            "threads": 1,
            "built_from": "results/scaling/*.nc",
        }
        (RESULTS / "scaling.json").write_text(json.dumps(res, indent=2))
    else:
        print(__doc__)
