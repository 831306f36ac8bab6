"""AENP Workbench: approximately equivariant neural processes, headless library."""

# First, before anything can import torch: libgomp reads its thread settings once, when torch loads.
from workbench import threads as _threads

_threads.configure()

import importlib  # noqa: E402
from typing import Any  # noqa: E402

__all__ = ["Experiment", "Run", "Task", "get_group", "load_run", "run"]
__version__ = "0.1.0"

# Everything loads on first use, so that ``import workbench`` (and ``workbench --help``) does not pay
# for torch, cartopy or matplotlib; ``from workbench import run`` and ``workbench.plot.map(...)`` work
# as before. The function ``run`` lives in the module ``workbench.runs``: a module of the same name
# would shadow the function once imported.
_EXPORTS = {
    "Experiment": "workbench.config",
    "Run": "workbench.runs",
    "Task": "workbench.task",
    "get_group": "workbench.groups",
    "load_run": "workbench.runs",
    "run": "workbench.runs",
}
_LAZY = {"plot", "maps", "evaluate", "geo", "train", "data", "models", "nn", "runs", "style"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _LAZY:
        return importlib.import_module(f"workbench.{name}")
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_LAZY})
