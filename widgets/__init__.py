"""AENP Workbench front end: ipywidgets + plotly on top of the headless ``workbench`` library.

``Workbench()`` is the whole app in one cell; its parts work alone on a finished run:
``MapView(run)``, ``ComparePanel(run)``, ``EquivariancePanel(run)``, and ``Controls`` /
``TrainingPanel`` for an experiment. The library never imports this package.
"""

from widgets.app import Workbench
from widgets.compare import ComparePanel
from widgets.controls import Controls
from widgets.equivariance import EquivariancePanel
from widgets.mapview import MapView
from widgets.training import TrainingPanel

__all__ = ["ComparePanel", "Controls", "EquivariancePanel", "MapView", "TrainingPanel", "Workbench"]
