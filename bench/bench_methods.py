"""Methods benchmark (issue 14): every way to get or break the symmetry, side by side.

On a synthetic world with a known symmetry headroom (mountain-1d, exact ceilings A, B, D) and on
Colorado temperature (test years, early stopping on the validation years), each method is trained for
the same CPU budget (``CPU_BUDGET`` seconds of one thread, preparation included: symmetry cloning's
teacher and clone are paid from it), 3 seeds, and scored on the same test tasks:

- log-likelihood per target, mean ± s.e. over seeds, and paired per-task differences against
  ``strict`` and against ``none`` (s.e. over seeds; a win is more than 2 s.e.),
- the CPU-milliseconds per training step (the whole run's CPU time over its data steps),
- the orbit error to the world's group T (mean ``|mu(g.x; g.D) - mu(x; D)|`` over random shifts:
  0 for an exactly equivariant model), and the gap split where the ceilings are known.

Every method is the ConvCNP (5 x 32 body at the defaults) with group T and strength 0.5, so the
comparison is of the method, not the network; ``none`` is the same network with group none (free,
its fixed inputs always on). Runs go to 2 processes of one thread; the raw rows stream to
``results/methods-raw.jsonl`` so an interrupted run keeps what it trained.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_worlds as worlds  # noqa: E402

DATASETS = ["mountain-1d", "colorado-temperature"]
STRENGTH = 0.5
METHODS: dict[str, dict[str, Any]] = {
    "none": dict(model="conv", group="none", relaxation="strict"),
    "strict": dict(model="conv", group="T", relaxation="strict"),
    **{
        r: dict(model="conv", group="T", relaxation=r, strength=STRENGTH)
        for r in (
            "fixed-inputs",
            "relaxed-conv",
            "residual-pathway",
            "augmentation",
            "symmetrisation",
            "symmetry-cloning",
        )
    },
}
#: CPU-seconds of training per run.
CPU_BUDGET = 60.0
BASELINES = ("strict", "none")


def summarise(name: str, rows: dict[str, list[dict]], ceil: dict[str, Any] | None) -> dict[str, Any]:
    """Per method: mean ± s.e. over seeds of log-likelihood, step time, orbit error (and the gap split);
    paired differences against each baseline."""
    from workbench.ceilings import gap_split
    from workbench.evaluate import mean_se

    out: dict[str, Any] = {"methods": {}}
    if ceil is not None:
        for k in ("oracle_loglik", "gaussian_loglik", "equivariant_loglik", "symmetry_headroom"):
            out[k] = ceil[k]
    for method, runs in rows.items():
        m: dict[str, Any] = {"seeds": len(runs), "steps": [r["steps"] for r in runs]}
        keys = ["loglik", "step_cpu_ms", "orbit_error", "train_cpu_seconds"]
        if ceil is not None:
            for r in runs:
                r.update(gap_split({**ceil, "loglik": r["loglik"]}, strict=method == "strict"))
            keys += ["gaussian_limit", "symmetry_headroom", "learning_shortfall"]
        for k in keys:
            m[f"{k}_mean"], m[f"{k}_se"] = mean_se([r[k] for r in runs])
        for base in BASELINES:
            if base != method:
                p = worlds._paired(
                    [r["loglik_per_task"] for r in runs], [r["loglik_per_task"] for r in rows[base]]
                )
                m[f"minus_{base}"] = p
                m[f"beats_{base}_2se"] = bool(p["mean"] > 2 * p["se_over_seeds"])
        out["methods"][method] = m
    return out


def build(raw: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON from raw rows; a dataset is summarised once every method has the same seeds."""
    ceil = {r["job"][1]: r["result"] for r in raw if r["job"][0] == "_ceilings_job"}
    runs: dict[str, dict[str, list[dict]]] = {}
    for r in raw:
        if r["job"][0] == "_train_job":
            runs.setdefault(r["job"][1], {m: [] for m in METHODS})[r["job"][2]].append(r["result"])
    out = {**meta, "methods": METHODS, "datasets": {}}
    for d, rows in runs.items():
        if len({len(v) for v in rows.values()}) != 1 or not rows["strict"]:
            out.setdefault("incomplete", []).append(d)
            continue
        out["datasets"][d] = summarise(d, rows, ceil.get(d))
    return out


def run(quick: bool) -> dict[str, Any]:
    """The benchmark (``quick``: 2 seeds, 3 CPU-seconds per run, 32 test tasks)."""
    seeds = [0, 1] if quick else [0, 1, 2]
    n_test, n_val = (32, 32) if quick else (256, 128)
    budget = 3.0 if quick else float(os.environ.get("METHODS_CPU", CPU_BUDGET))
    jobs: list[tuple] = [(worlds._ceilings_job, d, n_test) for d in DATASETS if d in worlds.SYNTHETIC]
    jobs += [
        (worlds._train_job, d, m, s, 100_000, n_test, n_val, None, budget, METHODS[m], "T")
        for d in DATASETS
        for s in seeds
        for m in METHODS
    ]
    t0, load0 = time.perf_counter(), os.getloadavg()
    raw_path = worlds.RESULTS / f"methods-raw{'-quick' if quick else ''}.jsonl"
    results = worlds._pool_map(jobs, 2, raw_path)
    raw = [{"job": [j[0].__name__, *j[1:]], "result": r} for j, r in zip(jobs, results, strict=True)]
    meta = worlds._meta(seeds, n_test, n_val, 2, time.perf_counter() - t0, load0)
    return build(raw, {**meta, "cpu_budget_seconds": budget, "strength": STRENGTH})


def from_raw(path: Path) -> dict[str, Any]:
    """Rebuild the JSON from an (interrupted) run's raw rows."""
    import json

    raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    seeds = sorted({r["job"][3] for r in raw if r["job"][0] == "_train_job"})
    budget = next(r["job"][8] for r in raw if r["job"][0] == "_train_job")
    meta = worlds._meta(seeds, 256, 128, 2, float("nan"), [float("nan")] * 3)
    return build(raw, {**meta, "cpu_budget_seconds": budget, "strength": STRENGTH, "from_raw": True})


def table(result: dict[str, Any]) -> str:
    """Markdown: one row per method and dataset."""
    lines = [
        "| dataset | method | loglik | − strict | − none | CPU ms/step | orbit error |",
        "|---|---|---|---|---|---|---|",
    ]
    for d, e in result["datasets"].items():
        for m, v in e["methods"].items():

            def diff(base: str, v=v) -> str:
                if f"minus_{base}" not in v:
                    return "-"
                p = v[f"minus_{base}"]
                s = f"{p['mean']:+.3f} ± {p['se_over_seeds']:.3f}"
                return f"**{s}**" if abs(p["mean"]) > 2 * p["se_over_seeds"] else s

            lines.append(
                f"| {d} | {m} | {v['loglik_mean']:.3f} ± {v['loglik_se']:.3f} | {diff('strict')} | "
                f"{diff('none')} | {v['step_cpu_ms_mean']:.0f} | {v['orbit_error_mean']:.3f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    import json

    sys.path.insert(0, str(HERE.parent))
    import workbench  # noqa: F401

    if sys.argv[1:2] == ["--rerun"]:
        # --rerun METHOD DATASET: train that method's seeds again (after a change to its code) and
        # replace its rows in results/methods-raw.jsonl; then rebuild results/methods.json from it.
        method, dataset = sys.argv[2], sys.argv[3]
        path = worlds.RESULTS / "methods-raw.jsonl"
        raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        kept = [r for r in raw if not (r["job"][0] == "_train_job" and r["job"][1:3] == [dataset, method])]
        old = [r["job"] for r in raw if r not in kept]
        jobs = [(worlds._train_job, *j[1:]) for j in old]
        fresh = worlds._pool_map(jobs, 2, worlds.RESULTS / f"methods-raw-rerun-{method}-{dataset}.jsonl")
        kept += [{"job": j, "result": r, "rerun": True} for j, r in zip(old, fresh, strict=True)]
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        sys.argv[1:] = ["--from-raw"]
    if sys.argv[1:2] == ["--from-raw"]:
        res = from_raw(worlds.RESULTS / "methods-raw.jsonl")
        done = worlds.RESULTS / "methods.json"
        if done.exists():  # keep the whole run's record (wall time, load) from the bench itself
            first = json.loads(done.read_text())
            for k in ("wall_seconds", "loadavg_start", "loadavg_end", "_meta"):
                if k in first:
                    res[k] = first[k]
        res["reruns"] = sorted(
            {
                f"{r['job'][2]} on {r['job'][1]}"
                for r in map(json.loads, (worlds.RESULTS / "methods-raw.jsonl").read_text().splitlines())
                if r.get("rerun")
            }
        )
        done.write_text(json.dumps(res, indent=2))
        print(table(res))
    else:
        print(__doc__)
