"""Sweeps on Dask (issue 15): a 16-run sweep with 1 and 2 workers, and the scheduler's overhead per run.

- ``wall_1_worker_s`` / ``wall_2_workers_s``: wall time of ``sweep`` (embedded LocalCluster started
  and closed inside, so worker start-up, torch import included) for 16 runs (gibbs-1d, conv,
  fixed-inputs; strength 0 and 0.5 x 8 seeds); ``speedup`` = 1 worker / 2 workers. On a 2-core
  machine the best is 2; start-up and a machine shared with other jobs take from it (the load
  average is recorded). ``startup_N_s``: starting N workers and loading torch in each, alone;
  ``speedup_after_startup`` divides the walls less those.
- ``overhead_per_run_s``: the same short runs through ``sweep`` on a warm 1-worker cluster (an
  output file, so each run is also saved and the Dataset rewritten; one sweep before, to warm this
  process too) against the same runs one by one in this process, difference divided by the runs:
  what the Dask path costs a run, with the per-sweep set-up (connect, first file) spread over them.
- ``roundtrip_ms_per_task``: submit + ``as_completed`` of no-op tasks on that cluster, per task.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def _noop(i: int) -> int:
    return i


def _warm() -> None:
    """What a worker loads before its first run: the workbench, torch, and torch._dynamo (AdamW)."""
    import torch._dynamo  # noqa: F401

    import workbench.runs  # noqa: F401


def run(quick: bool = False) -> dict:
    import torch
    from distributed import Client, LocalCluster, as_completed

    from workbench import Experiment
    from workbench.sweep import local_client, run_setting, sweep

    steps = 5 if quick else 100
    base = Experiment(
        dataset="gibbs-1d",
        model="conv",
        group="T",
        relaxation="fixed-inputs",
        steps=steps,
        batch_size=16,
        test_tasks=16 if quick else 64,
        device="cpu",
    )
    grid = {"strength": [0.0, 0.5], "seed": list(range(8))}
    out: dict = {"runs": 16, "steps": steps, "cpus": len(os.sched_getaffinity(0))}
    out["load_before"] = os.getloadavg()[0]
    for workers in (1, 2):
        # Start-up alone: the cluster and every worker importing what a run needs.
        t0 = time.perf_counter()
        with local_client(workers) as client:
            client.run(_warm)
        out[f"startup_{workers}_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = sweep(base, grid, workers=workers, progress=False)
        key = "wall_1_worker_s" if workers == 1 else "wall_2_workers_s"
        out[key] = time.perf_counter() - t0
        out[f"failed_{workers}"] = int((ds["status"].values != "done").sum())
    out["speedup"] = out["wall_1_worker_s"] / out["wall_2_workers_s"]
    work = [out["wall_1_worker_s"] - out["startup_1_s"], out["wall_2_workers_s"] - out["startup_2_s"]]
    out["speedup_after_startup"] = work[0] / work[1]

    # Overhead per run: short runs, warm worker vs this process (warmed by one run too).
    short = replace(base, steps=2, test_tasks=16)
    small = {"seed": list(range(8))}
    n = len(small["seed"])
    threads = torch.get_num_threads()
    run_setting(short)
    t0 = time.perf_counter()
    for seed in small["seed"]:
        run_setting(replace(short, seed=seed))
    in_process = time.perf_counter() - t0
    torch.set_num_threads(threads)
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
        tempfile.TemporaryDirectory() as tmp,
    ):
        # Warm the worker and this process's own first-time costs (netCDF writer, saving a run).
        sweep(short, {"seed": [100]}, client=client, out=Path(tmp) / "warm.nc", progress=False)
        t0 = time.perf_counter()
        sweep(short, small, client=client, out=Path(tmp) / "s.nc", progress=False)
        on_dask = time.perf_counter() - t0
        tasks = 200
        t0 = time.perf_counter()
        for f in as_completed([client.submit(_noop, i, pure=False) for i in range(tasks)]):
            f.result()
        out["roundtrip_ms_per_task"] = 1000 * (time.perf_counter() - t0) / tasks
    out["short_runs_in_process_s"] = in_process
    out["short_runs_on_dask_s"] = on_dask
    out["overhead_per_run_s"] = (on_dask - in_process) / n
    out["load_after"] = os.getloadavg()[0]
    return out
