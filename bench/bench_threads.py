"""Thread settings (issue 10, part 2) and CLI start-up (part 7).

Training steps/s of the default ConvCNP (gibbs-1d, conv/T/fixed-inputs, batch 16) on a quiet machine
and under a CPU load the benchmark makes itself (4 busy Python processes, killed after each
measurement), for torch's defaults ("old") and for ``workbench.threads``' defaults ("new"), with one
thread and with ``OMP_WAIT_POLICY=PASSIVE`` as references. Each setting runs in a fresh process,
because libgomp reads its environment when torch loads. Every quiet measurement records the load
average and the CPU time other processes used meanwhile, so a not-so-quiet machine is visible.

Also: wall time of ``workbench run --help`` (it must not load torch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRUB = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

#: name -> (extra environment, import workbench before torch?)
SETTINGS: dict[str, tuple[dict[str, str], bool]] = {
    "old": ({}, False),  # torch's defaults: libgomp initialised before workbench could act
    "new": ({}, True),  # `import workbench` first: workbench.threads' defaults
    "one-thread": ({"OMP_NUM_THREADS": "1"}, False),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, False),
    "spin-10000": ({"GOMP_SPINCOUNT": "10000"}, False),
}
BUSY = 4
#: A slice counts as idle when the other processes used fewer CPUs than this meanwhile.
IDLE = 0.25


def _cpu_busy_seconds() -> float:
    """CPU-seconds all CPUs have spent busy since boot (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _worker(workbench_first: bool) -> None:
    """Child process: build and warm up the model, then time a slice of steps per line on stdin."""
    if workbench_first:
        import workbench  # noqa: F401  (sets the thread defaults before torch loads)
    import torch

    from workbench.config import Experiment
    from workbench.data.registry import make_dataset
    from workbench.models import build_model
    from workbench.train import make_optimizer

    sampler = make_dataset("gibbs-1d")
    g = torch.Generator().manual_seed(0)
    tasks = [sampler.sample(16, g) for _ in range(8)]
    torch.manual_seed(0)
    model = build_model(Experiment(), 1, 1, sampler.box)
    opt = make_optimizer(model, 5e-4)
    model.train()

    def step(i: int) -> None:
        loss = -model.loglik(tasks[i % len(tasks)]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()

    for i in range(5):
        step(i)
    env = {k: os.environ[k] for k in SCRUB if k in os.environ}
    print(json.dumps({"threads": torch.get_num_threads(), "env": env}), flush=True)
    for line in sys.stdin:
        budget = float(line)
        load = os.getloadavg()[0]
        busy0, own0, t0 = _cpu_busy_seconds(), sum(os.times()[:2]), time.perf_counter()
        n = 0
        while n < 1 or time.perf_counter() - t0 < budget:
            step(n)
            n += 1
        wall = time.perf_counter() - t0
        others = (_cpu_busy_seconds() - busy0 - (sum(os.times()[:2]) - own0)) / wall
        print(json.dumps({"steps": n, "seconds": wall, "loadavg": load, "others": others}), flush=True)


def _wait_idle(until: float) -> None:
    """Wait (not past time ``until``) for a quarter second in which other processes leave the CPUs idle."""
    while time.perf_counter() < until:
        busy0 = _cpu_busy_seconds()
        time.sleep(0.25)
        if (_cpu_busy_seconds() - busy0) / 0.25 < IDLE:
            return


def _busy(seconds: float) -> list[subprocess.Popen]:
    # Each busy process also ends by itself, so nothing outlives the benchmark even if it is killed.
    code = f"import time\nt = time.time() + {seconds}\nwhile time.time() < t: pass"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(BUSY)]


def _summary(slices: list[dict]) -> dict:
    steps, seconds = sum(s["steps"] for s in slices), sum(s["seconds"] for s in slices)
    rates = sorted(s["steps"] / s["seconds"] for s in slices)
    idle = [s for s in slices if s["others"] < IDLE]
    idle_rate = sum(s["steps"] for s in idle) / sum(s["seconds"] for s in idle) if idle else None
    return {
        "idle_slices": len(idle),
        "idle_steps_per_second": None if idle_rate is None else round(idle_rate, 2),
        "steps_per_second": round(steps / seconds, 2),
        "slice_median_steps_per_second": round(rates[len(rates) // 2], 2),
        "steps": steps,
        "seconds": round(seconds, 2),
        "loadavg_1min_max": round(max(s["loadavg"] for s in slices), 2),
        "other_processes_cpus_mean": round(sum(s["others"] * s["seconds"] for s in slices) / seconds, 2),
    }


def measure(rounds: int, phases: list[tuple[str, float]], idle_wait: float) -> dict:
    """All settings at once, each in its own process, timed in alternating slices.

    ``phases``: (name, seconds per slice); phase "loaded" runs beside the busy processes. On a shared
    machine each quiet slice first waits for an idle moment, ``idle_wait`` seconds at most in all.
    The workers wait (blocked, using no CPU) while another one is timed; alternating short slices
    spreads any change in the machine's background load evenly over the settings.
    """
    base = {k: v for k, v in os.environ.items() if k not in SCRUB}
    procs: dict[str, subprocess.Popen] = {}
    busy: list[subprocess.Popen] = []
    out: dict = {}
    try:
        for name, (extra, first) in SETTINGS.items():
            env = {**base, **extra, "PYTHONPATH": str(ROOT)}
            cmd = [sys.executable, __file__, "--worker", str(int(first))]
            procs[name] = subprocess.Popen(
                cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
        info = {name: json.loads(p.stdout.readline()) for name, p in procs.items()}
        for phase, budget in phases:
            if phase == "loaded":
                # Bounded: enough for every slice of the loaded phase, plus a margin.
                busy = _busy(rounds * len(procs) * (budget + 10) + 30)
                time.sleep(1.0)  # let the busy processes take their share before timing
            slices: dict[str, list[dict]] = {name: [] for name in procs}
            names = list(procs)
            until = time.perf_counter() + (idle_wait if phase == "quiet" else 0.0)
            for r in range(rounds):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    _wait_idle(until)
                    procs[name].stdin.write(f"{budget}\n")
                    procs[name].stdin.flush()
                    slices[name].append(json.loads(procs[name].stdout.readline()))
            for name in procs:
                out.setdefault(name, dict(info[name]))[phase] = _summary(slices[name])
            for b in busy:
                b.kill()
            for b in busy:
                b.wait()
            busy = []
    finally:
        for b in busy:
            b.kill()
        for p in procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()
    return out


def help_seconds(repeats: int) -> dict:
    """Wall time of ``workbench run --help`` (median of ``repeats``) and whether it loaded torch."""
    code = (
        "import sys, contextlib, io\nfrom workbench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['run', '--help'])\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules)"
    )
    times, torch_loaded = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        torch_loaded = out.stdout.strip() == "True"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return {
        "run_help_seconds_median": round(sorted(times)[len(times) // 2], 3),
        "run_help_seconds": [round(t, 3) for t in times],
        "run_help_loads_torch": torch_loaded,
        "import_torch_seconds": round(time.perf_counter() - t0, 3),
    }


def run(quick: bool = False) -> dict:
    """Every setting quiet and loaded in alternating slices; then the CLI timing."""
    rounds, quiet_slice, loaded_slice = (1, 0.3, 0.3) if quick else (6, 0.75, 1.0)
    phases = [("quiet", quiet_slice), ("loaded", loaded_slice)]
    t0 = time.perf_counter()
    settings = measure(rounds, phases, idle_wait=1.0 if quick else 25.0)
    out: dict = {
        "model": "conv/T/fixed-inputs, gibbs-1d, batch 16 (the default Experiment)",
        "busy_processes": BUSY,
        "rounds": rounds,
        "slice_seconds": dict(phases),
        "idle_means": f"other processes used under {IDLE} CPUs during the slice",
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "settings": settings,
        "measure_seconds": round(time.perf_counter() - t0, 1),
    }
    others = max(s["quiet"]["other_processes_cpus_mean"] for s in settings.values())
    out["quiet_was_quiet"] = others < IDLE
    if not out["quiet_was_quiet"]:
        out["note"] = (
            f"other processes used {others:.2f} CPUs on average during the 'quiet' slices: the "
            "machine was shared, so the 'quiet' numbers are for a partly busy machine"
        )
    new, old, one = settings["new"], settings["old"], settings["one-thread"]
    rate = "steps_per_second"
    # "Quiet" is judged on the idle slices only; without any, the goal is not measured (None), and
    # the ratio on the machine as found is kept apart.
    idle = all(s["quiet"]["idle_slices"] for s in settings.values())
    idle_ratio = (
        new["quiet"]["idle_steps_per_second"] / old["quiet"]["idle_steps_per_second"] if idle else None
    )
    out["goals"] = {
        "quiet_idle_new_over_old": None if idle_ratio is None else round(idle_ratio, 3),
        "quiet_within_5_percent": None if idle_ratio is None else idle_ratio >= 0.95,
        "quiet_as_found_new_over_old": round(new["quiet"][rate] / old["quiet"][rate], 3),
        "loaded_new_over_one_thread": round(new["loaded"][rate] / one["loaded"][rate], 3),
        "loaded_at_most_2x_one_thread_time": new["loaded"][rate] >= 0.5 * one["loaded"][rate],
        "loaded_new_over_old": round(new["loaded"][rate] / old["loaded"][rate], 2),
    }
    out["cli"] = help_seconds(3 if quick else 5)
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _worker(sys.argv[2] == "1")
    else:
        print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
