"""AENP Workbench: approximately equivariant neural processes, headless library."""

# First, before anything can import torch: libgomp reads its thread settings once, when torch loads.
from workbench import threads as _threads

_threads.configure()

import importlib  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
from typing import Any  # noqa: E402

__all__ = ["Experiment", "Run", "Task", "get_group", "load_run", "run"]
__version__ = "0.1.0"

# Everything loads on first use, so that ``import workbench`` (and ``workbench --help``) does not pay
# for torch, cartopy or matplotlib; ``from workbench import run`` and ``workbench.plot.map(...)`` work
# as before.
_EXPORTS = {
    "Experiment": "workbench.config",
    "Run": "workbench.run",
    "Task": "workbench.task",
    "get_group": "workbench.groups",
    "load_run": "workbench.run",
    "run": "workbench.run",
}
_LAZY = {"plot", "maps", "evaluate", "geo", "train", "data", "models", "nn"}


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # ``workbench.run`` names both a submodule and the package's main function. Importing the
        # submodule (``from workbench.run import Run``) sets the package attribute to the module;
        # keep the function there, as the eager imports of old did.
        if name == "run" and isinstance(value, types.ModuleType):
            value = value.run
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
