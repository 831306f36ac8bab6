"""Markdown tables of the benchmark results: ``python bench/report.py`` prints them,
``python bench/report.py --readme`` rewrites the README's section between the bench markers.

Every number comes from a JSON file under ``bench/results/`` (written by ``make bench``); a missing
file is reported as missing, never filled in.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE.parent / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
#: What a single-seed quality table is, said where it is shown (a seed alone cannot rank models).
ONE_SEED = "one seed: an illustration, not an ordering of the models (3-seed comparisons: the worlds table)"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _meta(d: dict) -> str:
    m = d.get("_meta", {})
    return f"({m.get('date', '?')}, torch {m.get('torch', '?')}, {m.get('threads', '?')} threads)"


def speed(core: dict | None, ref: dict | None) -> list[str]:
    if core is None:
        return ["_core.json missing: run `make bench`_"]
    out = [
        f"**Speed on CPU** (`bench/results/core.json` {_meta(core)}; gibbs-1d, batch 16, N_c <= 64, N_t = 128)",
        "",
    ]
    out += ["| model | train step (ms) | steps/s | predict 512 points (ms) |", "|---|---|---|---|"]
    for key, row in core["speed_cpu"].items():
        if isinstance(row, dict):
            out.append(
                f"| {key} | {_f(row['train_step_ms'], 1)} | {_f(row['steps_per_second'], 0)} | "
                f"{_f(row['predict_512_ms'], 2)} |"
            )
    out += [
        "",
        f"Drawing one batch of gibbs-1d tasks: {_f(core['speed_cpu']['sample_batch_ms'], 1)} ms; peak memory "
        f"of the whole benchmark {_f(core.get('peak_rss_mb'), 0)} MB.",
    ]
    if ref is not None:
        r = ref.get("reference", {})
        if "train_step_ms" in r:
            out += [
                "",
                f"**Side by side with the reference library** (`bench/results/reference.json` {_meta(ref)}; "
                f"{r['library']}, kernel {r['kernel']}, same problem, same torch):",
                "",
                "| | train step (ms) | predict 512 points (ms) |",
                "|---|---|---|",
                f"| AENP Workbench `conv` | {_f(ref['ours']['train_step_ms'], 1)} | {_f(ref['ours']['predict_512_ms'], 2)} |",
                f"| neuralprocesses ConvCNP | {_f(r['train_step_ms'], 1)} | {_f(r['predict_512_ms'], 2)} |",
            ]
        else:
            out += ["", f"Reference library: {next(iter(r.values()), 'not measured')}"]
    return out


def gibbs(core: dict | None) -> list[str]:
    if core is None:
        return []
    q = core["quality_gibbs_1d"]
    out = [
        f"**gibbs-1d quality** (`core.json`; conv 5 x 32, {q['test_tasks']} fixed test tasks; "
        f"{ONE_SEED}; exact oracle {_f(q['oracle_loglik'])} nats/target):",
        "",
        "| model | steps | seconds | log-lik | strict component | gap to oracle |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in q["models"].items():
        for r in rows:
            out.append(
                f"| {name} | {r['steps']} | {_f(r['seconds'], 0)} | {_f(r['loglik'])} | "
                f"{_f(r['loglik_strict'])} | {_f(r['oracle_gap'])} |"
            )
    return out


def gibbs_cosine(cos: dict | None) -> list[str]:
    if cos is None:
        return []
    q = cos["quality_gibbs_1d"]
    out = [
        f'The same with `lr_schedule="cosine"` (`core-cosine.json` {_meta(cos)}), one finished run per budget; '
        f"{ONE_SEED}:",
        "",
        "| model | " + " | ".join(f"{b} steps" for b in q["budgets"]) + " |",
        "|---|" + "---|" * len(q["budgets"]),
    ]
    for name, rows in q["models"].items():
        out.append(f"| {name} | " + " | ".join(_f(r["loglik"]) for r in rows) + " |")
    return out


def rotations(rot: dict | None) -> list[str]:
    if rot is None:
        return []
    out = [
        f"**Rotations** (`bench/results/rotations.json` {_meta(rot)}): train step on gp-2d at equal channel budget",
        "",
    ]
    out += ["| group | train step (ms) | parameters |", "|---|---|---|"]
    for g, r in rot["speed_gp_2d"].items():
        out.append(f"| {g} | {_f(r['train_step_ms'], 0)} | {r['n_parameters']} |")
    q = rot["quality_gp_2d_anisotropic"]
    out += [
        "",
        f"gp-2d-anisotropic after {q['steps']} steps ({q['test_tasks']} test tasks, oracle "
        f"{_f(q['oracle_loglik'])}; {ONE_SEED}):",
        "",
        "| model | log-lik | gap to oracle | relative orbit error at 45 degrees (disc) |",
        "|---|---|---|---|",
    ]
    for name, r in q["models"].items():
        rel = r.get("relative_orbit_error_in_disc_by_angle", {}).get("45.0")
        out.append(f"| {name} | {_f(r['loglik'])} | {_f(r['oracle_gap'])} | {_f(rel)} |")
    return out


def maps(mp: dict | None) -> list[str]:
    if mp is None:
        return []
    out = [
        f"**Maps** (`bench/results/maps.json` {_meta(mp)}): {mp['steps']} steps, batch {mp['batch_size']}, "
        f"each model kept at its best validation step; test log-likelihood per target (validation in "
        f"brackets); {ONE_SEED}",
        "",
        "| dataset | none | strict | fixed-inputs | elevation as input | breaking vs elevation r | breaking vs truth r |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in mp.items():
        if not isinstance(d, dict) or "models" not in d:
            continue
        m = d["models"]
        cells = [
            f"{_f(m[k]['test_loglik'])} ({_f(m[k]['val_loglik'])})"
            for k in ("none", "strict", "fixed-inputs", "elevation-input")
        ]
        fx = m["fixed-inputs"]
        out.append(
            f"| {name} | {' | '.join(cells)} | {_f(fx.get('breaking_elevation_corr'), 2)} | "
            f"{_f(fx.get('breaking_truth_corr'), 2)} |"
        )
    out += ["", f"`datasets/` holds {_f(mp.get('datasets_dir_mb'), 1)} MB."]
    return out


def _pm(mean: float | None, se: float | None, digits: int = 3) -> str:
    return "-" if mean is None else f"{mean:.{digits}f} ± {_f(se, digits)}"


WORLD_MODELS = ("transformer", "conv-p0", "strict", "fixed-inputs")
WORLD_OTHERS = ("strict", "transformer", "conv-p0")


def worlds(w: dict | None, name: str) -> list[str]:
    """Tables of ``worlds.json``: four models, 3 seeds, paired differences, and each model's gap split."""
    if w is None:
        return []
    if "labels" not in w:  # the three-model table of an older run
        return [f"_`bench/results/{name}.json` predates the four-model worlds bench: rerun it_"]
    n = len(w["seeds"])
    labels = w["labels"]
    out = [
        f"**Worlds: fixed-inputs against strict, the transformer (none) and p = 0, {n} seeds** "
        f"(`bench/results/{name}.json` {_meta(w)}; `python bench/run_bench.py worlds`; "
        f"{_f(w['budget']['cpu_seconds'], 0)} CPU-seconds of training per model at 1 thread, "
        f"two runs side by side; the default recipe; batch {w['batch_size']}; {w['test_tasks']} shared "
        f"test tasks; real datasets kept at their best validation step). Models: "
        + "; ".join(f"**{k}** = {v}" for k, v in labels.items())
        + ". Log-likelihood per target, mean ± s.e. over seeds; fixed − other is the paired per-task "
        "difference, mean ± s.e. over seeds, **bold** where it exceeds 2 s.e.",
        "",
        "| dataset | headroom B − D | "
        + " | ".join(WORLD_MODELS)
        + " | "
        + " | ".join(f"fixed − {o}" for o in WORLD_OTHERS)
        + " |",
        "|---|---|" + "---|" * (len(WORLD_MODELS) + len(WORLD_OTHERS)),
    ]
    for ds, d in w["datasets"].items():
        m = d["models"]
        cells = [_pm(m[k]["loglik_mean"], m[k]["loglik_se"]) for k in WORLD_MODELS]
        diffs = []
        for other in WORLD_OTHERS:
            p = d[f"fixed_minus_{other}"]
            cell = _pm(p["mean"], p["se_over_seeds"])
            diffs.append(f"**{cell}**" if d[f"fixed_beats_{other}_2se"] else cell)
        out.append(f"| {ds} | {_f(d.get('symmetry_headroom'))} | {' | '.join(cells)} | {' | '.join(diffs)} |")
    out += [
        "",
        "Where each model's gap to the exact oracle goes (synthetic worlds, nats/target, mean over seeds): "
        "Gaussian limit A − B / symmetry headroom B − D (charged to strict models only) / learning "
        "shortfall; Δequiv is the mean change of the prediction when the fixed inputs are switched off; "
        "steps is the range over seeds that fitted the budget.",
        "",
        "| dataset | A | B | D | " + " | ".join(WORLD_MODELS) + " | Δequiv fixed-inputs | steps |",
        "|---|---|---|---|" + "---|" * len(WORLD_MODELS) + "---|---|",
    ]
    for ds, d in w["datasets"].items():
        m = d["models"]
        if "oracle_loglik" in d:
            split = [
                f"{_f(m[k]['gaussian_limit_mean'])} / {_f(m[k]['symmetry_headroom_mean'])} / "
                f"{_f(m[k]['learning_shortfall_mean'])}"
                for k in WORLD_MODELS
            ]
            ceil = [_f(d[k]) for k in ("oracle_loglik", "gaussian_loglik", "equivariant_loglik")]
        else:
            split = ["real data: no ceilings"] * len(WORLD_MODELS)
            ceil = ["-"] * 3
        steps = "; ".join(f"{k} {min(m[k]['steps'])}-{max(m[k]['steps'])}" for k in WORLD_MODELS)
        out.append(
            f"| {ds} | {' | '.join(ceil)} | {' | '.join(split)} | "
            f"{_pm(m['fixed-inputs']['delta_equiv_mean'], m['fixed-inputs']['delta_equiv_se'])} | {steps} |"
        )
    out += [
        "",
        f"Whole run: {_f(w['wall_seconds'] / 60, 1)} min on {w['workers']} processes x 1 thread "
        f"(load average {_f(w['loadavg_start'][0], 1)} at the start, {_f(w['loadavg_end'][0], 1)} at the end).",
    ]
    return out


def click(ck: dict | None) -> list[str]:
    if ck is None:
        return []
    c = ck["colorado"]
    out = [
        f"**Map click to redrawn posterior** (`bench/results/click.json` {_meta(ck)}; Colorado, {c['grid']} grid, "
        f"50 clicks):",
        "",
        "| torch threads | click median (ms) | click p95 (ms) | predict_map median (ms) |",
        "|---|---|---|---|",
    ]
    for key in ("threads_1", "threads_2"):
        if key in c:
            t = c[key]
            out.append(
                f"| {key.split('_')[1]} | {_f(t['click']['median_ms'], 0)} | {_f(t['click']['p95_ms'], 0)} | "
                f"{_f(t['predict_map']['median_ms'], 0)} |"
            )
    return out


def notebooks(nb: dict | None, name: str) -> list[str]:
    if nb is None:
        return []
    out = [
        f"**Notebooks under papermill** (`bench/results/{name}.json` {_meta(nb)}):",
        "",
        "| notebook | fast (s) | defaults (s) |",
        "|---|---|---|",
    ]
    for name in nb["notebooks"]:
        row = nb[name]
        out.append(
            f"| {name} | {_f(row['fast']['seconds'], 0)} | {_f(row.get('defaults', {}).get('seconds'), 0)} |"
        )
    return out


def threads(th: dict | None, name: str) -> list[str]:
    if th is None:
        return []
    names = {
        "old": "torch defaults (spin 300k)",
        "new": "workbench defaults",
        "one-thread": "OMP_NUM_THREADS=1",
        "passive": "OMP_WAIT_POLICY=PASSIVE",
        "spin-10000": "GOMP_SPINCOUNT=10000",
    }
    out = [
        f"**Torch threads on a busy machine** (`bench/results/{name}.json` {_meta(th)}; {th['model']}; "
        f"training steps/s, each setting in its own process, timed in {th['rounds']} alternating slices; "
        f"loaded = {th['busy_processes']} busy processes on {th['usable_cpus']} CPUs):",
        "",
        "| setting | threads | quiet: as found | quiet: idle slices only | loaded | load avg | others' CPUs (quiet) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, row in th["settings"].items():
        env = " ".join(f"{k}={v}" for k, v in row["env"].items()) or "-"
        label = names.get(key, key) + (f" ({env})" if key == "new" else "")
        q, lo = row["quiet"], row["loaded"]
        prio = q.get("idle_steps_per_second")
        out.append(
            f"| {label} | {row['threads']} | {_f(q['steps_per_second'], 1)} | {_f(prio, 1)} | "
            f"{_f(lo['steps_per_second'], 1)} | {_f(q['loadavg_1min_max'], 1)} | {_f(q['other_processes_cpus_mean'], 2)} |"
        )
    if th.get("note"):
        out += ["", f"Note: {th['note']}."]
    cli = th.get("cli")
    if cli:
        out += [
            "",
            f"`workbench run --help`: {_f(cli['run_help_seconds_median'], 2)} s (torch loaded: "
            f"{'yes' if cli['run_help_loads_torch'] else 'no'}; `import torch` alone: "
            f"{_f(cli['import_torch_seconds'], 1)} s).",
        ]
    return out


def recipe(r: dict | None) -> list[str]:
    """Table of ``recipe.json``: training recipes at one CPU budget, 3 seeds, paired against the first."""
    if r is None:
        return []
    c = r["ceilings"]
    out = [
        f"**Training recipes on {r['dataset']}** (`bench/results/recipe.json` {_meta(r)}; "
        f"`python bench/bench_recipe.py`; strict ConvCNP, {r['budget_cpu_s']:g} CPU-s per run on "
        f"{r['threads_per_run']} thread, {len(r['seeds'])} seeds, {r['n_test_tasks']} shared test tasks). "
        f"Log-likelihood per target, mean ± s.e. over seeds; the gain is the paired per-task difference "
        f"against the first row, mean ± s.e. over seeds. D = {_f(c['equivariant_loglik'])}.",
        "",
        "| recipe | steps per seed | log-likelihood | gain over the first row |",
        "|---|---|---|---|",
    ]
    for name, e in r["recipes"].items():
        gain = e.get("minus_baseline")
        cell = "-" if gain is None else _pm(gain["mean"], gain["se"])
        steps = ", ".join(str(s) for s in e["steps"])
        out.append(f"| {name} | {steps} | {_pm(e['loglik'], e['se'])} | {cell} |")
    return out


def quality_time(q: dict | None, name: str) -> list[str]:
    """Table of ``quality_time*.json``: the curves' last points, the goal and the paired finals."""
    if q is None:
        return []
    c = q["ceilings"]
    d = c["equivariant_loglik"]
    out = [
        f"**Quality against time on {q['dataset']}** (`bench/results/{name}.json` {_meta(q)}; "
        f"{q['budget_cpu_s']:g} CPU-s per model and seed, {q.get('threads_per_run', 2)} thread(s) per "
        f"run, {q['n_seeds']} seeds, {q['n_test_tasks']} shared test tasks; figure `{name}.png`). "
        f"A = {_f(c['oracle_loglik'])}, B = {_f(c['gaussian_loglik'])}, D = {_f(d)}; goal D − 0.1 = "
        f"{_f(d - 0.1)}. Recipes: {'; '.join(f'{k}: {v}' for k, v in q.get('recipe', {}).items())}.",
        "",
        "| model | steps | log-likelihood at the end | below D | minus the reference, per seed |",
        "|---|---|---|---|---|",
    ]
    goals = q.get("goals", {})
    for model, m in q["models"].items():
        if "points" not in m:
            out.append(f"| {model} | - | did not run | - | - |")
            continue
        last = m["points"][-1]
        g = goals.get(model, {})
        ref = ", ".join(_pm(x["mean"], x["se"]) for x in g.get("minus_reference_final", [])) or "-"
        out.append(
            f"| {model} | {_f(last['steps'], 0)} | {_pm(last['loglik'], last['se'])} | "
            f"{_f(d - last['loglik'])} | {ref} |"
        )
    return out


def methods(m: dict | None, name: str) -> list[str]:
    """Table of ``methods.json``: every way to get or break the symmetry at one budget, 3 seeds."""
    if m is None:
        return []
    out = [
        f"**Methods side by side, {len(m['seeds'])} seeds** (`bench/results/{name}.json` {_meta(m)}; "
        f"`python bench/run_bench.py methods`; the ConvCNP with group T and strength {m['strength']} for "
        f"every method (`none`: group none), {_f(m['cpu_budget_seconds'], 0)} CPU-seconds of training per "
        "run at 1 thread, preparation included (symmetry cloning's teacher and clone); "
        f"{m['test_tasks']} shared test tasks; Colorado kept at its best validation step). Log-likelihood "
        "per target, mean ± s.e. over seeds; − strict and − none are paired per-task differences, mean "
        "± s.e. over seeds, **bold** beyond 2 s.e.; CPU ms/step is the run's CPU time over its steps; "
        "orbit error is the mean change of the predictive mean under random shifts (0 = exactly "
        "translation equivariant).",
        "",
        "| dataset | method | loglik | − strict | − none | learning shortfall | CPU ms/step | steps | orbit error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for ds, d in m["datasets"].items():
        for k, v in d["methods"].items():
            cells = []
            for base in ("strict", "none"):
                p = v.get(f"minus_{base}")
                if p is None:
                    cells.append("-")
                    continue
                cell = f"{p['mean']:+.3f} ± {p['se_over_seeds']:.3f}"
                cells.append(f"**{cell}**" if abs(p["mean"]) > 2 * p["se_over_seeds"] else cell)
            short = _f(v.get("learning_shortfall_mean")) if "learning_shortfall_mean" in v else "-"
            out.append(
                f"| {ds} | {k} | {_pm(v['loglik_mean'], v['loglik_se'])} | {cells[0]} | {cells[1]} | "
                f"{short} | {_f(v['step_cpu_ms_mean'], 0)} | {min(v['steps'])}-{max(v['steps'])} | "
                f"{_f(v['orbit_error_mean'])} |"
            )
    out += ["", f"Whole run: {_f(m['wall_seconds'] / 60, 1)} min on {m['workers']} processes x 1 thread."]
    if m.get("reruns"):
        out[-1] += (
            " Trained again after a change to their code (`python bench/bench_methods.py --rerun METHOD "
            "DATASET`, same jobs and seeds): " + ", ".join(m["reruns"]) + "."
        )
    return out


def scaling(s: dict | None, name: str) -> list[str]:
    """Tables of ``scaling.json``: log-likelihood against training-set size and compute, paired answers,
    winners and power laws."""
    if s is None:
        return []
    out = [
        f"**Scaling study (notebook 06), {s['seeds']} seeds** (`bench/results/{name}.json` {_meta(s)}; "
        "`python bench/run_bench.py scaling`; the Datasets are in `bench/results/scaling/`, which "
        "notebook 06 reads with `train = False`). Data axis: "
        + ", ".join(f"{d.get('steps', s['steps'])} steps on {ds}" for ds, d in s["datasets"].items())
        + " (batch 16) on a fixed pool of n tasks; compute axis: the steps that fit each CPU budget (one thread) on fresh tasks. "
        f"{s['test_tasks']} shared test tasks; mean ± s.e. over seeds; paired differences **bold** "
        "beyond 2 s.e.",
    ]
    for ds, d in s["datasets"].items():
        c = d.get("ceilings")
        if c:
            out += [
                "",
                f"*{ds}*: ceilings A = {_f(c['oracle_loglik'])}, D = {_f(c['equivariant_loglik'])} "
                f"(headroom B − D = {_f(c['symmetry_headroom'])}).",
            ]
        else:
            out += ["", f"*{ds}* (real data: no ceilings)."]
        for axis, dim, unit in (("data", "n_tasks", "tasks"), ("compute", "budget", "CPU-s")):
            if axis not in d:
                out += ["", f"*{ds}, {axis} axis: not run* (the study was stopped before it)."]
                continue
            a = d[axis]
            xs = a[dim]
            out += [
                "",
                f"| {ds}, {axis} | " + " | ".join(f"{x:g} {unit}" for x in xs) + " |",
                "|---|" + "---|" * len(xs),
            ]
            for k, v in a["methods"].items():
                out.append(
                    f"| {k} | "
                    + " | ".join(_pm(mu, se) for mu, se in zip(v["loglik_mean"], v["loglik_se"], strict=True))
                    + " |"
                )
            for k, p in a["paired"].items():
                cells = [
                    (f"**{mu:+.3f} ± {se:.3f}**" if b else f"{mu:+.3f} ± {se:.3f}")
                    for mu, se, b in zip(p["mean"], p["se_over_seeds"], p["beyond_2se"], strict=True)
                ]
                out.append(f"| {k} | " + " | ".join(cells) + " |")
            out.append(
                "| best (runner-up) | "
                + " | ".join(
                    f"{w['best']} ({w['runner_up']}, {w['margin']:+.3f} ± {w['se']:.3f})"
                    for w in a["winners"]
                )
                + " |"
            )
            laws = [
                f"{k} b = {_f(v['b'], 2)}, c = {_f(v['c'])}, R² (log-log) = {_f(v.get('r2_log'), 2)}"
                for k, v in a["power_laws"].items()
                if v["holds"]
            ]
            out += [
                "",
                f"Power laws `loglik = c − a {dim}^(−b)` that hold (every point below c, R² of log(c − loglik) against log x ≥ 0.9, ≥ 4 points): "
                + ("; ".join(laws) if laws else "none")
                + ".",
            ]
    out += ["", f"Whole run: {_f(s['wall_seconds'] / 60, 1)} min on 2 processes x 1 thread."]
    return out


def report() -> str:
    """All tables, as Markdown."""
    core = _load("core")
    parts = [
        speed(core, _load("reference")),
        gibbs(core),
        gibbs_cosine(_load("core-cosine")),
        recipe(_load("recipe")),
        quality_time(
            *next(((_load(n), n) for n in ("quality_time", "quality_time-120s") if _load(n)), (None, ""))
        ),
        rotations(_load("rotations")),
        maps(_load("maps")),
        worlds(
            *((_load("worlds"), "worlds") if _load("worlds") else (_load("worlds-quick"), "worlds-quick"))
        ),
        methods(
            *(
                (_load("methods"), "methods")
                if _load("methods")
                else (_load("methods-quick"), "methods-quick")
            )
        ),
        scaling(
            *(
                (_load("scaling"), "scaling")
                if _load("scaling")
                else (_load("scaling-quick"), "scaling-quick")
            )
        ),
        click(_load("click")),
        threads(
            *(
                (_load("threads"), "threads")
                if _load("threads")
                else (_load("threads-quick"), "threads-quick")
            )
        ),
        notebooks(
            *(
                (_load("notebooks"), "notebooks")
                if _load("notebooks")
                else (_load("notebooks-quick"), "notebooks-quick")
            )
        ),
    ]
    return "\n\n".join("\n".join(p) for p in parts if p)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--readme", action="store_true", help="rewrite the README's bench section")
    args = p.parse_args()
    text = report()
    if not args.readme:
        print(text)
        return
    readme = README.read_text()
    i, j = readme.index(START) + len(START), readme.index(END)
    README.write_text(readme[:i] + "\n" + text + "\n" + readme[j:])


if __name__ == "__main__":
    main()
