"""AENP Workbench: approximately equivariant neural processes, headless library."""

from workbench.config import Experiment
from workbench.groups import get_group
from workbench.run import Run, load_run, run
from workbench.task import Task

__all__ = ["Experiment", "Run", "Task", "get_group", "load_run", "run"]
__version__ = "0.1.0"
