# ruff: noqa: I001
"""`make bench`: run every ``bench/bench_*.py`` (``run(quick: bool) -> dict``), JSON under bench/results/.

Usage: ``python bench/run_bench.py [--quick] [NAME ...]`` (names without the ``bench_`` prefix).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

# workbench first: its thread defaults must be set before torch loads, as they are for users.
import workbench  # noqa: F401
import torch

HERE = Path(__file__).resolve().parent


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("names", nargs="*")
    p.add_argument("--quick", action="store_true", help="small budgets, to check the benchmarks run")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    files = sorted(HERE.glob("bench_*.py"))
    if args.names:
        files = [f for f in files if f.stem.removeprefix("bench_") in args.names]
    for f in files:
        name = f.stem.removeprefix("bench_")
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        result = _load(f).run(quick=args.quick)
        result["_meta"] = {
            "seconds": time.perf_counter() - t0,
            "quick": args.quick,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "machine": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }
        path = out_dir / f"{name}{'-quick' if args.quick else ''}.json"
        path.write_text(json.dumps(result, indent=2))
        print(json.dumps({k: v for k, v in result.items() if k != "_meta"}, indent=2)[:4000], flush=True)
        print(f"-> {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
