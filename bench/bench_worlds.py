"""Worlds benchmark (issue 9): does the fixed-inputs model beat strict and free models, with error bars?

For the synthetic worlds mountain-1d, noise-1d, mountain-2d, noise-2d (default strength, exact
ceilings A, B, D) and the real datasets colorado-temperature (test years) and us-terrain (east, out of
distribution), four models are trained for the same CPU budget per model (``CPU_BUDGET`` seconds,
one thread, the default recipe: AdamW 2e-3, warm-up, cosine over the steps that fit the budget), for
several seeds:

- ``transformer``: the non-equivariant model, a TNP with absolute positions (group none),
- ``conv-p0``: the ConvCNP with its fixed inputs always on (group none): the approximate model with p = 0,
- ``strict``: translation equivariant ConvCNP (group T, strict),
- ``fixed-inputs``: the approximately equivariant ConvCNP (group T, strength 0.5, so p = 0.5).

All models of a dataset are scored on the same test tasks (one ``test_set`` seed), so per-task
log-likelihoods are paired. For each seed s, the paired difference fixed - other is the mean over test
tasks of (fixed_s - other_s) per task, with its per-task standard error; over seeds we report the mean
of the per-seed differences and the standard error *over seeds* (std / sqrt(n_seeds), ddof 1), which
carries the seed-to-seed (training) variance as well as the test-set one. A comparison is called a
win when the mean over seeds exceeds 2 of those standard errors.

Real datasets use early stopping on their validation split (as bench_maps does). Runs go to a pool
of 2 processes, one torch thread each. Each run first times 30 steps of a throw-away copy
(``pool.steps_in_budget``) to set its number of steps, so its cosine schedule ends at the budget; a
CPU-time stop at 1.25 x the budget guards against a machine that gets busier.

``--lesson [DATASET ...]`` (issue 9): strict and fixed-inputs ConvCNPs, each with the grid placed on
the contexts only (the default) and on contexts and targets (``"all"``), 3 seeds, the same CPU budget
each (``LESSON_CPU`` seconds), scored on the same test tasks against ceilings A, B, D and D'
(``results/worlds-grid.json``). ``--grid-speed`` / ``--grid-speed-cpu``: the cost of each placement
on the bench shape, beside ``neuralprocesses``.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

SYNTHETIC = ["mountain-1d", "noise-1d", "mountain-2d", "noise-2d"]
REAL = ["colorado-temperature", "us-terrain"]
MODELS: dict[str, dict[str, Any]] = {
    "transformer": dict(model="transformer", group="none", relaxation="strict"),
    "conv-p0": dict(model="conv", group="none", relaxation="strict"),
    "strict": dict(model="conv", group="T", relaxation="strict"),
    "fixed-inputs": dict(model="conv", group="T", relaxation="fixed-inputs", strength=0.5),
}
#: What each model is, for tables (issue 9: comparators named for what they are).
LABELS = {
    "transformer": "none (transformer, absolute positions)",
    "conv-p0": "approximate, p = 0 (conv, fixed inputs always on)",
    "strict": "strict (conv, T)",
    "fixed-inputs": "fixed-inputs (conv, T, p = 0.5)",
}
#: The comparisons fixed-inputs is scored against; "none" in the issue's goal is the transformer.
OTHERS = ("strict", "transformer", "conv-p0")
#: CPU-seconds of training per model (the issue: about 2 CPU-minutes).
CPU_BUDGET = 120.0
BATCH = 16
TEST_SEED, VAL_SEED = 10_000, 20_000
RESULTS = Path(__file__).resolve().parent / "results"


def _test_tasks(name: str, n_test: int) -> list:
    from workbench.data.registry import make_dataset

    return make_dataset(name).test_set(n_test, batch_size=BATCH, seed=TEST_SEED)


def _ceilings_job(name: str, n_test: int, all_targets: bool = False) -> dict[str, Any]:
    """Ceilings A, B, D (and D' with ``all_targets``) of a synthetic world on the shared test tasks
    (per-task arrays as lists)."""
    import torch

    from workbench.ceilings import ceilings
    from workbench.data.registry import make_dataset

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    c = ceilings(make_dataset(name), _test_tasks(name, n_test), all_targets=all_targets)
    out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in c.items()}
    out["seconds"] = time.perf_counter() - t0
    return out


def _train_job(
    name: str,
    model_name: str,
    seed: int,
    steps: int,
    n_test: int,
    n_val: int,
    grid: str | None = None,
    cpu_budget: float | None = None,
    spec: dict[str, Any] | None = None,
    orbit_group: str | None = None,
) -> dict[str, Any]:
    """Train one model (one thread) and score it per task on the shared test tasks.

    ``spec``: the Experiment fields of the model (default ``MODELS[model_name]``); ``orbit_group``:
    also measure the orbit error to this group (``evaluate.orbit_error`` on 8 test batches).

    ``grid``: the ConvCNP's grid placement (``"context"``, ``"context:SPAN"`` or ``"all"``; None:
    the default).
    ``cpu_budget``: stop after this many CPU-seconds of training (``steps`` is then a cap)."""
    import torch

    from workbench import Experiment
    from workbench.data.registry import make_dataset
    from workbench.evaluate import delta_equiv, loglik_per_task
    from workbench.models import build_model
    from workbench.train import KeepBest, train

    torch.set_num_threads(1)
    sampler = make_dataset(name)
    test = sampler.test_set(n_test, batch_size=BATCH, seed=TEST_SEED)
    spec = MODELS[model_name] if spec is None else spec
    exp = Experiment(dataset=name, steps=steps, seed=seed, batch_size=BATCH, **spec)
    if cpu_budget is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from pool import steps_in_budget

        steps = steps_in_budget(exp, sampler, cpu_budget)
    torch.manual_seed(seed)
    model = build_model(exp, test[0].dim_x, test[0].dim_y, sampler.box)
    if grid is not None:
        centre, _, span = grid.partition(":")
        model.set_grid(centre, float(span) if span else None)
    callbacks, keep = [], None
    stop = threading.Event()
    if cpu_budget is not None:
        cpu_start = time.process_time()

        def out_of_time(step: int, loss: float) -> None:
            if time.process_time() - cpu_start >= 1.25 * cpu_budget:
                stop.set()

        callbacks.append(out_of_time)
    if name in REAL:
        val = sampler.validation_set(n_val, batch_size=BATCH, seed=VAL_SEED)
        keep = KeepBest(model, val, every=max(steps // 6, 1))
        callbacks.append(keep)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    hist = train(
        model,
        sampler.batches(BATCH, seed=seed),
        steps,
        lr=exp.lr,
        schedule=exp.lr_schedule,
        device="cpu",
        progress=False,
        callbacks=callbacks,
        stop=stop,
    )
    row: dict[str, Any] = {
        "train_seconds": time.perf_counter() - wall0,
        "train_cpu_seconds": time.process_time() - cpu0,
        "steps": hist.steps_done,
        "steps_planned": steps,
    }
    if keep is not None:
        row["best_step"] = keep.restore()
        row["val_loglik"] = keep.best
    per_task = loglik_per_task(model, test)
    row["loglik_per_task"] = per_task.tolist()
    row["loglik"] = float(per_task.mean())
    row["delta_equiv"] = delta_equiv(model, test)
    row["step_cpu_ms"] = 1e3 * row["train_cpu_seconds"] / max(row["steps"], 1)
    if orbit_group is not None:
        from workbench.evaluate import orbit_error
        from workbench.groups import get_group

        row["orbit_error"] = orbit_error(model, test[:8], get_group(orbit_group), sampler.box)
    return row


def _pool_map(jobs: list[tuple], workers: int, raw_path: Path) -> list[Any]:
    """Run ``(fn, *args)`` jobs in a spawn pool; results in job order, each also appended to ``raw_path``
    (JSON lines) as it arrives, so an interrupted run keeps what it trained."""
    ctx = multiprocessing.get_context("spawn")
    # run_bench loads this file without registering it: workers must import it by name to unpickle jobs.
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import bench_worlds as mod

    jobs = [(getattr(mod, fn.__name__), *args) for fn, *args in jobs]
    raw_path.parent.mkdir(exist_ok=True)
    raw_path.write_text("")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(fn, *args) for fn, *args in jobs]
        out = []
        for (fn, *args), f in zip(jobs, futures, strict=True):
            out.append(f.result())
            with raw_path.open("a") as fh:
                fh.write(json.dumps({"job": [fn.__name__, *args], "result": out[-1]}) + "\n")
            if fn.__name__ == "_train_job":
                r = out[-1]
                label = [*args[:3], *args[6:7]]
                print(
                    label,
                    round(r["loglik"], 4),
                    r["steps"],
                    f"{r['train_cpu_seconds']:.0f} CPU-s",
                    flush=True,
                )
            else:
                print("ceilings", args[0], f"{out[-1]['seconds']:.0f}s", flush=True)
    return out


def _paired(a: list[list[float]], b: list[list[float]]) -> dict[str, Any]:
    """Paired differences a - b per seed (mean over test tasks, per-task s.e.) and over seeds."""
    from workbench.ceilings import per_task_difference
    from workbench.evaluate import mean_se

    per_seed = [per_task_difference(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True)]
    mean, se = mean_se([m for m, _ in per_seed])
    return {
        "per_seed": [m for m, _ in per_seed],
        "per_seed_task_se": [s for _, s in per_seed],
        "mean": mean,
        "se_over_seeds": se,
        "z": mean / se if se and se > 0 else math.nan,
    }


def summarise_dataset(name: str, rows: dict[str, list[dict]], ceil: dict[str, Any] | None) -> dict[str, Any]:
    """Per-model mean ± s.e. over seeds, gap split and paired differences for one dataset."""
    from workbench.ceilings import gap_split
    from workbench.evaluate import mean_se

    out: dict[str, Any] = {"models": {}}
    if ceil is not None:
        for k in ("oracle_loglik", "gaussian_loglik", "equivariant_loglik", "symmetry_headroom"):
            out[k] = ceil[k]
        out["ceilings_seconds"] = ceil["seconds"]
    for model_name, runs in rows.items():
        m: dict[str, Any] = {"seeds": len(runs)}
        keys = ["loglik", "delta_equiv", "train_seconds", "train_cpu_seconds"]
        keys += ["val_loglik", "best_step"] if "val_loglik" in runs[0] else []
        if ceil is not None:
            for r in runs:
                r.update(gap_split({**ceil, "loglik": r["loglik"]}, strict=model_name == "strict"))
            keys += ["gaussian_limit", "symmetry_headroom", "learning_shortfall"]
        for k in keys:
            m[f"{k}_mean"], m[f"{k}_se"] = mean_se([r[k] for r in runs])
        m["loglik_per_seed"] = [r["loglik"] for r in runs]
        out["models"][model_name] = m
    fixed = [r["loglik_per_task"] for r in rows["fixed-inputs"]]
    for other in OTHERS:
        out[f"fixed_minus_{other}"] = _paired(fixed, [r["loglik_per_task"] for r in rows[other]])
    win = {o: out[f"fixed_minus_{o}"]["mean"] > 2 * out[f"fixed_minus_{o}"]["se_over_seeds"] for o in OTHERS}
    for o in OTHERS:
        out[f"fixed_beats_{o}_2se"] = bool(win[o])
    # The goal: ahead of strict and of the non-equivariant model (the transformer).
    out["fixed_beats_both_2se"] = bool(win["strict"] and win["transformer"])
    return out


def build(raw: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's JSON from raw job rows (``{"job": [fn, dataset, ...], "result": ...}``); a dataset
    is summarised only when all its models have the same number (>= 1) of seeds."""
    ceil = {r["job"][1]: r["result"] for r in raw if r["job"][0] == "_ceilings_job"}
    runs: dict[str, dict[str, list[dict]]] = {}
    for r in raw:
        if r["job"][0] == "_train_job":
            _, d, m, _seed, *_ = r["job"]
            runs.setdefault(d, {k: [] for k in MODELS})[m].append(r["result"])
    out = dict(meta)
    out["budget"] = {
        "cpu_seconds": meta.get("cpu_budget_seconds"),
        "note": "each run's steps set by timing 30 steps (pool.steps_in_budget) so that the cosine "
        "schedule ends at the CPU budget; steps and train_cpu_seconds per model record what it took",
    }
    out["labels"] = LABELS
    out["datasets"] = {}
    for d, rows in runs.items():
        counts = {len(v) for v in rows.values()}
        if len(counts) != 1 or 0 in counts:
            out.setdefault("incomplete", []).append(d)
            continue
        out["datasets"][d] = summarise_dataset(d, rows, ceil.get(d))
        for m, rs in rows.items():
            out["datasets"][d]["models"][m]["steps"] = [r["steps"] for r in rs]
    return out


def run(
    quick: bool, datasets: list[str] | None = None, cpu_budget: float = CPU_BUDGET, tag: str = ""
) -> dict:
    """The benchmark (``quick``: 2 seeds, 2 CPU-seconds per model, mountain-1d and colorado-temperature).

    ``datasets`` picks some of the worlds; ``tag`` names the raw file (``worlds-raw-TAG.jsonl``).
    Jobs go dataset by dataset, so an interrupted run leaves whole datasets (``--from-raw``).
    """
    workers = 2
    seeds = [0, 1] if quick else [0, 1, 2]
    order = ["mountain-1d", "noise-1d", *REAL, "mountain-2d", "noise-2d"]
    datasets = datasets or (["mountain-1d", "colorado-temperature"] if quick else order)
    n_test, n_val = (32, 32) if quick else (256, 128)
    budget = 2.0 if quick else cpu_budget
    jobs: list[tuple] = [(_ceilings_job, d, n_test) for d in datasets if d in SYNTHETIC]
    jobs += [
        (_train_job, d, m, s, 100_000, n_test, n_val, None, budget)
        for d in datasets
        for s in seeds
        for m in MODELS
    ]
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    raw_path = RESULTS / f"worlds-raw{'-quick' if quick else ''}{'-' + tag if tag else ''}.jsonl"
    results = _pool_map(jobs, workers, raw_path)
    raw = [{"job": [j[0].__name__, *j[1:]], "result": r} for j, r in zip(jobs, results, strict=True)]
    meta = _meta(seeds, n_test, n_val, workers, time.perf_counter() - t0, load0)
    return build(raw, {**meta, "cpu_budget_seconds": budget})


def _meta(seeds: list[int], n_test: int, n_val: int, workers: int, wall: float, load0: Any) -> dict[str, Any]:
    return {
        "seeds": seeds,
        "batch_size": BATCH,
        "recipe": "library defaults: AdamW lr 2e-3, 100-step warm-up, cosine to the end of the budget",
        "test_tasks": n_test,
        "val_tasks": n_val,
        "test_seed": TEST_SEED,
        "workers": workers,
        "threads_per_worker": 1,
        "wall_seconds": wall,
        "loadavg_start": list(load0),
        "loadavg_end": list(os.getloadavg()),
        "se": "paired differences: per seed, mean over the shared test tasks of the per-task difference; "
        "reported s.e. is over seeds (std ddof 1 / sqrt(n_seeds)); per-seed per-task s.e. also kept",
    }


def from_raw(path: Path, wall: float, load0: list[float]) -> dict[str, Any]:
    """Rebuild the JSON from an (interrupted) run's ``worlds-raw.jsonl`` (complete datasets only)."""
    raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    seeds = sorted({r["job"][3] for r in raw if r["job"][0] == "_train_job"})
    n_test = next(r["job"][5] for r in raw if r["job"][0] == "_train_job")
    meta = _meta(seeds, n_test, 128, 2, wall, load0)
    budget = next(r["job"][8] for r in raw if r["job"][0] == "_train_job")
    return build(raw, {**meta, "cpu_budget_seconds": budget})


#: The lesson check of the grid placement (issue 9): strict and fixed-inputs ConvCNPs, each trained
#: with the grid centred on the contexts only (the default) and on contexts and targets ("all"),
#: the same CPU budget each, scored against ceilings A, B, D and D'.
LESSON_MODELS = ["strict", "fixed-inputs"]
LESSON_GRIDS = os.environ.get("LESSON_GRIDS", "context,all").split(",")


def lesson(datasets: list[str], seeds: list[int], cpu_budget: float, n_test: int) -> dict[str, Any]:
    """``python bench/bench_worlds.py --lesson [DATASET ...]``: JSON to ``results/worlds-grid.json``
    (raw rows, one per finished job, to ``worlds-grid-raw.jsonl``; ``--lesson-from-raw`` rebuilds the
    JSON from them, e.g. after an interrupted run)."""
    jobs: list[tuple] = [(_ceilings_job, d, n_test, True) for d in datasets]
    jobs += [
        (_train_job, d, m, s, 100_000, n_test, 0, g, cpu_budget)
        for d in datasets
        for s in seeds
        for m in LESSON_MODELS
        for g in LESSON_GRIDS
    ]
    t0, load0 = time.perf_counter(), os.getloadavg()
    raw_name = os.environ.get("LESSON_OUT", "worlds-grid.json").replace(".json", "-raw.jsonl")
    results = _pool_map(jobs, 2, RESULTS / raw_name)
    raw = [{"job": [j[0].__name__, *j[1:]], "result": r} for j, r in zip(jobs, results, strict=True)]
    meta = _meta(seeds, n_test, 0, 2, time.perf_counter() - t0, load0)
    return summarise_lesson(raw, {**meta, "cpu_budget_seconds": cpu_budget})


def summarise_lesson(raw: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The lesson's JSON from raw rows: per (model, grid) mean ± s.e. over seeds, the difference to
    each ceiling, and paired differences (over the seeds both models have) ± s.e. over seeds."""
    from workbench.ceilings import per_task_difference
    from workbench.evaluate import mean_se

    ceil = {r["job"][1]: r["result"] for r in raw if r["job"][0] == "_ceilings_job"}
    out: dict[str, Any] = {**meta, "datasets": {}}
    for d, c in ceil.items():
        ref = {"A": c["oracle_per_task"], "B": c["gaussian_per_task"], "D": c["equivariant_per_task"]}
        if "equivariant_all_targets_per_task" in c:
            ref["D'"] = c["equivariant_all_targets_per_task"]
        entry: dict[str, Any] = {"ceilings": {k: float(np.mean(v)) for k, v in ref.items()}, "models": {}}
        per_task: dict[str, dict[int, np.ndarray]] = {}
        for r in raw:
            j, res = r["job"], r["result"]
            if j[0] != "_train_job" or j[1] != d:
                continue
            key = f"{j[2]}/{j[7]}"
            per_task.setdefault(key, {})[j[3]] = np.asarray(res["loglik_per_task"])
            m = entry["models"].setdefault(key, {"seeds": [], "loglik": [], "steps": [], "cpu_s": []})
            m["seeds"].append(j[3])
            m["loglik"].append(res["loglik"])
            m["steps"].append(res["steps"])
            m["cpu_s"].append(res["train_cpu_seconds"])
        for key, m in entry["models"].items():
            m["mean"], m["se_over_seeds"] = mean_se(m["loglik"])
            # Relative to each ceiling: mean over seeds of the paired per-task difference, s.e. over seeds.
            m["minus_ceiling"] = {
                k: mean_se([per_task_difference(x, v)[0] for x in per_task[key].values()])
                for k, v in ref.items()
            }
        grids = sorted({k.split("/")[1] for k in per_task}, key=lambda g: g != "context")
        pairs = [(f"fixed-inputs/{g}", f"strict/{g}") for g in grids]
        pairs += [(f"{m}/{g}", f"{m}/{grids[0]}") for g in grids[1:] for m in LESSON_MODELS]
        entry["paired"] = {}
        for a, b in pairs:
            common = sorted(set(per_task.get(a, {})) & set(per_task.get(b, {})))
            if len(common) >= 2:
                xs = [per_task[a][s].tolist() for s in common]
                entry["paired"][f"{a} - {b}"] = _paired(xs, [per_task[b][s].tolist() for s in common])
        out["datasets"][d] = entry
    path = RESULTS / os.environ.get("LESSON_OUT", "worlds-grid.json")
    path.write_text(json.dumps(out, indent=2))
    for d, e in out["datasets"].items():
        print(d, json.dumps(e["ceilings"]))
        for k, m in e["models"].items():
            print(f"  {k:<22} {m['mean']:.4f} ± {m['se_over_seeds']:.4f}  steps {m['steps']}")
            print(
                "    minus ceiling", {c: f"{v[0]:+.4f} ± {v[1]:.4f}" for c, v in m["minus_ceiling"].items()}
            )
        for k, p in e["paired"].items():
            print(f"  {k:<44} {p['mean']:+.4f} ± {p['se_over_seeds']:.4f}  per seed {p['per_seed']}")
    return out


def grid_speed(n: int = 60, rounds: int = 2, threads: int = 2, reference: bool = True) -> dict[str, Any]:
    """``python bench/bench_worlds.py --grid-speed``: ms per training step and per 512-point prediction
    of the bench ConvCNP (``bench_core.speed``'s shape, 2 threads) with each grid placement, and of
    ``neuralprocesses`` (``.venv-ref``) in between, in alternating rounds (the machine is shared).
    Also CPU ms per step (process time / steps), which a loaded machine disturbs less than wall
    time. ``--grid-speed-cpu``: one thread, ours only."""
    import subprocess

    import torch

    from workbench import Experiment
    from workbench.data.registry import make_dataset
    from workbench.models import build_model
    from workbench.train import make_optimizer

    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    from bench_core import _median_ms

    torch.set_num_threads(threads)
    sampler = make_dataset("gibbs-1d")
    g = torch.Generator().manual_seed(0)
    tasks = [sampler.sample(16, g) for _ in range(8)]
    ref_python = here.parent / ".venv-ref" / "bin" / "python"
    out: dict[str, list[dict[str, float]]] = {}
    for _ in range(rounds):
        for label in ("all", "context", "context:2"):
            torch.manual_seed(0)
            m = build_model(Experiment(model="conv", group="T", relaxation="strict"), 1, 1, sampler.box)
            centre, _, span = label.partition(":")
            m.set_grid(centre, float(span) if span else None)
            opt = make_optimizer(m, 5e-4)
            m.train()

            def step(i: int, m=m, opt=opt) -> None:
                loss = -m.loglik(tasks[i % len(tasks)]).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
                opt.step()

            for i in range(5):
                step(i)
            cpu0 = time.process_time()
            train_ms = _median_ms(step, n)
            train_cpu_ms = 1e3 * (time.process_time() - cpu0) / n
            m.eval()
            t = tasks[0].select(slice(0, 1))
            x = torch.linspace(-4, 4, 512).view(1, 512, 1)
            cpu0 = time.process_time()
            with torch.no_grad():
                pred_ms = _median_ms(lambda i, m=m, t=t, x=x: m(t.xc, t.yc, x, t.mask_c), n)
            pred_cpu_ms = 1e3 * (time.process_time() - cpu0) / n
            row = {
                "train_step_ms": train_ms,
                "predict_512_ms": pred_ms,
                "train_step_cpu_ms": train_cpu_ms,
                "predict_512_cpu_ms": pred_cpu_ms,
                "n_grid": m.n_grid,
            }
            out.setdefault(label, []).append(row)
            print(label, row, flush=True)
        if reference and ref_python.exists():
            proc = subprocess.run(
                [str(ref_python), str(here / "reference_neuralprocesses.py")],
                capture_output=True,
                text=True,
                timeout=1800,
                env={"OMP_NUM_THREADS": "2", "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"},
            )
            ref = json.loads(proc.stdout.strip().splitlines()[-1])
            out.setdefault("neuralprocesses", []).append(ref)
            print("neuralprocesses", ref, flush=True)
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    # workbench before torch: its thread defaults (set when torch loads) are the ones users get.
    import workbench  # noqa: F401

    if len(sys.argv) > 1 and sys.argv[1] == "--grid-speed":
        print(json.dumps(grid_speed()))
    elif len(sys.argv) > 1 and sys.argv[1] == "--grid-speed-cpu":
        print(json.dumps(grid_speed(n=40, rounds=2, threads=1, reference=False)))
    elif len(sys.argv) > 1 and sys.argv[1] == "--lesson-from-raw":
        rows = [json.loads(x) for x in (RESULTS / "worlds-grid-raw.jsonl").read_text().splitlines() if x]
        summarise_lesson(
            rows, {"from_raw": True, "cpu_budget_seconds": float(os.environ.get("LESSON_CPU", 60))}
        )
    elif len(sys.argv) > 1 and sys.argv[1] == "--lesson":
        # --lesson [DATASET ...]; env LESSON_CPU (CPU-seconds per model, 60), LESSON_TASKS (1024).
        names = sys.argv[2:] or ["mountain-1d", "noise-1d"]
        budget = float(os.environ.get("LESSON_CPU", 60))
        lesson(names, [0, 1, 2], budget, int(os.environ.get("LESSON_TASKS", 1024)))
    elif len(sys.argv) > 1 and sys.argv[1] == "--from-raw":
        # --from-raw WALL_SECONDS: rebuild results/worlds.json from an interrupted run's raw rows.
        res = from_raw(RESULTS / "worlds-raw.jsonl", float(sys.argv[2]), [math.nan] * 3)
        (RESULTS / "worlds.json").write_text(json.dumps(res, indent=2))
    else:
        print(__doc__)
