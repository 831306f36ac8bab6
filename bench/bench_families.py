# ruff: noqa: I001
"""Issue 12: training steps/s of every model family (the TE-TNP before and after its fast attention), task
sampling per batch, a prefetched task stream in ``train()``, and peak RSS of a training run.

- ``steps``: ms per training step (loss, backward, clip, AdamW) on pre-drawn gibbs-1d batches of 16, for
  every family and relaxation the library offers on 1-D data. The ``before`` rows are the transformer
  models with the attention formula used before issue 12 (``reference_forward`` of
  tests/test_attention.py; same weights, same outputs); the models are timed in alternating
  slices, so machine load hits all alike.
- ``sampling``: ms to draw one batch of 16 tasks (gibbs-1d, mountain-1d), inputs per task and shared.
- ``prefetch``: steps/s of ``workbench.train.train`` on the sampler's stream, plain and wrapped in
  ``workbench.data.prefetch.prefetch`` (sampling in a background thread; with torch's default thread
  count in that thread and with one thread), in alternating calls.
- ``peak_rss``: peak resident memory (VmHWM, MiB) of a fresh process that trains each family.

Run: ``python bench/run_bench.py [--quick] families`` (or ``python bench/bench_families.py [--quick]``,
the same), or with every benchmark by ``make bench``; writes ``bench/results/families*.json``. Timings
on a shared machine are noisy: the result records the load average; medians over slices are reported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# workbench first: its thread defaults must be set before torch loads, as they are for users.
import workbench  # noqa: F401
import torch

from workbench import Experiment
from workbench.data.prefetch import prefetch
from workbench.data.registry import make_dataset
from workbench.models import build_model
from workbench.nn.attention import Attention
from workbench.train import make_optimizer, train

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: (model, group, relaxation) on 1-D data: every family, strict and fixed inputs where offered.
FAMILIES = [
    ("conv", "T", "strict"),
    ("conv", "T", "fixed-inputs"),
    ("conv", "T", "relaxed-conv"),
    ("conv", "none", "strict"),
    ("transformer", "T", "strict"),
    ("transformer", "T", "fixed-inputs"),
    ("transformer", "none", "strict"),
    ("deepsets", "none", "strict"),
]


def _reference_forward():
    """The attention formula before issue 12, kept once, in tests/test_attention.py (its oracle)."""
    spec = importlib.util.spec_from_file_location("_test_attention", ROOT / "tests" / "test_attention.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_forward


reference_forward = _reference_forward()


FAST_FORWARD = Attention.forward


def _key(model: str, group: str, relaxation: str) -> str:
    return f"{model}/{group}/{relaxation}"


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def _machine() -> dict:
    return {"loadavg_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}


def step_speed(rounds: int, slice_steps: int) -> dict:
    """Median ms per training step of every family (and the TE-TNP's old attention), in alternating slices."""
    sampler = make_dataset("gibbs-1d")
    g = torch.Generator().manual_seed(0)
    tasks = [sampler.sample(16, g) for _ in range(8)]
    runs = {}
    for cfg in FAMILIES:
        versions = [("after", FAST_FORWARD)]
        if cfg[0] == "transformer":
            versions.append(("before", reference_forward))
        for version, forward in versions:
            torch.manual_seed(0)
            model = build_model(Experiment(model=cfg[0], group=cfg[1], relaxation=cfg[2]), 1, 1, sampler.box)
            runs[(_key(*cfg), version)] = (model, make_optimizer(model, 5e-4), forward)

    def step(model, opt, i: int) -> None:
        loss = -model.loglik(tasks[i % len(tasks)]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()

    times: dict = {k: [] for k in runs}
    load = [_machine()["loadavg_1min"]]
    try:
        for model, opt, forward in runs.values():
            Attention.forward = forward
            model.train()
            for i in range(2):
                step(model, opt, i)
        for r in range(rounds):
            keys = list(runs)
            keys = keys[r % len(keys) :] + keys[: r % len(keys)]
            for key in keys:
                model, opt, forward = runs[key]
                Attention.forward = forward
                t0 = time.perf_counter()
                for i in range(slice_steps):
                    step(model, opt, i)
                times[key].append((time.perf_counter() - t0) / slice_steps)
            load.append(_machine()["loadavg_1min"])
    finally:
        Attention.forward = FAST_FORWARD
    out: dict = {}
    for (name, version), ts in times.items():
        ms = 1e3 * _median(ts)
        out.setdefault(name, {})[version] = {
            "ms_per_step": round(ms, 2),
            "steps_per_second": round(1e3 / ms, 2),
            "slices_ms": [round(1e3 * t, 1) for t in ts],
        }
    for row in out.values():
        if "before" in row:
            row["speedup"] = round(row["before"]["ms_per_step"] / row["after"]["ms_per_step"], 2)
    plain = out[_key("transformer", "none", "strict")]["after"]["ms_per_step"]
    te = out[_key("transformer", "T", "fixed-inputs")]
    return {
        "batch": 16,
        "rounds": rounds,
        "slice_steps": slice_steps,
        "loadavg_1min": load,
        "families": out,
        "te_fixed_over_plain_tnp": {
            "before": round(te["before"]["ms_per_step"] / plain, 2),
            "after": round(te["after"]["ms_per_step"] / plain, 2),
        },
    }


def sampling(rounds: int, draws: int) -> dict:
    """Median ms to draw one batch of 16 tasks: with inputs per task (test sets, and training batches
    before issue 12) and shared by the batch (``sample_shared``, training batches now), interleaved."""
    out = {}
    for name in ("gibbs-1d", "mountain-1d"):
        sampler = make_dataset(name)
        g = torch.Generator().manual_seed(0)
        draw = {"per_task_inputs": sampler.sample, "shared_inputs": sampler.sample_shared}
        per: dict[str, list[float]] = {kind: [] for kind in draw}
        for kind in draw:
            draw[kind](16, g)
        for _ in range(rounds):
            for kind, fn in draw.items():
                t0 = time.perf_counter()
                for _ in range(draws):
                    fn(16, g)
                per[kind].append((time.perf_counter() - t0) / draws)
        out[name] = {
            kind: {
                "ms_per_batch": round(1e3 * _median(times), 2),
                "slices_ms": [round(1e3 * t, 2) for t in times],
            }
            for kind, times in per.items()
        }
    return out


def prefetch_speed(rounds: int, steps: dict[tuple[str, str, str], int]) -> dict:
    """Steps/s of ``train()`` on the gibbs-1d stream, plain vs prefetched, in alternating calls."""
    sampler = make_dataset("gibbs-1d")
    out = {}
    for cfg, n_steps in steps.items():
        torch.manual_seed(0)
        model = build_model(Experiment(model=cfg[0], group=cfg[1], relaxation=cfg[2]), 1, 1, sampler.box)
        train(model, sampler.batches(16, seed=99), 3, progress=False, device="cpu")  # warm-up
        # prefetch: the default (the producer keeps torch's thread count, 2 here); prefetch-1-thread:
        # a producer limited to one torch thread, leaving the cores to the training step.
        modes = {"plain": None, "prefetch": None, "prefetch-1-thread": 1}
        rates: dict = {mode: [] for mode in modes}
        for r in range(rounds):
            names = list(modes)
            for mode in names[r % len(names) :] + names[: r % len(names)]:
                stream = sampler.batches(16, seed=r)
                if mode != "plain":
                    stream = prefetch(stream, depth=2, threads=modes[mode])
                t0 = time.perf_counter()
                train(model, stream, n_steps, progress=False, device="cpu")
                rates[mode].append(n_steps / (time.perf_counter() - t0))
                if mode != "plain":
                    stream.close()
        plain = _median(rates["plain"])
        row: dict = {"steps_per_train_call": n_steps}
        for mode, values in rates.items():
            row[mode] = {
                "steps_per_second": round(_median(values), 2),
                "ratio_to_plain": round(_median(values) / plain, 3),
                "calls": [round(x, 2) for x in values],
            }
        out[_key(*cfg)] = row
    return out


_RSS_CHILD = """
import workbench, sys, torch
torch.set_num_threads(2)
from workbench import Experiment
from workbench.data.registry import make_dataset
from workbench.models import build_model
from workbench.train import train

def hwm_mb():
    # VmHWM: this process's own peak (ru_maxrss would include the parent's peak, inherited at fork).
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

model, group, relax, steps, version = sys.argv[1:6]
if version == "before":
    import importlib.util
    from workbench.nn.attention import Attention
    spec = importlib.util.spec_from_file_location("bench_families", sys.argv[6])
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    Attention.forward = bench.reference_forward
sampler = make_dataset("gibbs-1d")
before = hwm_mb()
torch.manual_seed(0)
m = build_model(Experiment(model=model, group=group, relaxation=relax), 1, 1, sampler.box)
train(m, sampler.batches(16, seed=0), int(steps), progress=False, device="cpu")
print(before, hwm_mb())
"""


def peak_rss(steps: int, configs: list[tuple[str, str, str]]) -> dict:
    """Peak RSS (MiB, VmHWM) of a fresh process training each family ``steps`` steps on gibbs-1d, batch 16.

    Transformers also with the attention before issue 12 (``before``).
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out: dict = {}
    for cfg in configs:
        versions = ["after", "before"] if cfg[0] == "transformer" else ["after"]
        for version in versions:
            proc = subprocess.run(
                [sys.executable, "-c", _RSS_CHILD, *cfg, str(steps), version, __file__],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            before, after = (float(v) for v in proc.stdout.split()[-2:])
            out.setdefault(_key(*cfg), {})[version] = {
                "peak_rss_mb": round(after, 1),
                "after_imports_mb": round(before, 1),
            }
    return out


def run(quick: bool = False) -> dict:
    """Every measurement; ``quick`` shrinks them to check that the benchmark runs."""
    t0 = time.perf_counter()
    result: dict = {"threads": torch.get_num_threads(), "machine_start": _machine()}
    result["sampling"] = sampling(3 if quick else 7, 5 if quick else 20)
    print("sampling", json.dumps(result["sampling"]), flush=True)
    result["steps"] = step_speed(1 if quick else 5, 1 if quick else 3)
    print("steps", json.dumps(result["steps"]["te_fixed_over_plain_tnp"]), flush=True)
    pf_steps = {("conv", "T", "fixed-inputs"): 5 if quick else 40}
    if not quick:
        pf_steps[("transformer", "T", "fixed-inputs")] = 10
    result["prefetch"] = prefetch_speed(2 if quick else 6, pf_steps)
    print("prefetch", json.dumps(result["prefetch"]), flush=True)
    result["peak_rss"] = peak_rss(3 if quick else 20, FAMILIES[1:2] if quick else FAMILIES)
    result["machine_end"] = _machine()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


if __name__ == "__main__":
    # Through run_bench, so the JSON gets the same "_meta" (threads, torch, date) as every benchmark.
    sys.path.insert(0, str(HERE))
    from run_bench import main

    sys.exit(main(["families", *sys.argv[1:]]))
