"""AENP Workbench: approximately equivariant neural processes, headless library."""

import importlib
from typing import Any

from workbench.config import Experiment
from workbench.groups import get_group
from workbench.run import Run, load_run, run
from workbench.task import Task

__all__ = ["Experiment", "Run", "Task", "get_group", "load_run", "run"]
__version__ = "0.1.0"

# Heavier submodules (cartopy, matplotlib) load on first use: ``workbench.plot.map(...)`` works after a
# plain ``import workbench`` without making every import pay for them.
_LAZY = {"plot", "maps", "evaluate", "geo", "train", "data", "models", "nn"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"workbench.{name}")
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
