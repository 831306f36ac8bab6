"""One spelling of units and axis names for every figure (plotly in the app, matplotlib in plots)."""

from __future__ import annotations

#: CF unit strings -> how a reader sees them.
PRETTY = {
    "degC": "°C",
    "celsius": "°C",
    "K": "K",
    "1": "",
    "degrees_east": "°E",
    "degrees_north": "°N",
}

#: Axis titles for geographic coordinates.
AXIS_TITLES = {"lon": "longitude (°E)", "lat": "latitude (°N)", "x": "x", "y": "y"}


def pretty(units: str | None) -> str:
    """``degC`` -> ``°C``, ``1`` -> ``""``; anything else as it is."""
    u = "" if units is None else str(units)
    return PRETTY.get(u, u)


def axis_title(name: str) -> str:
    """The axis title for a coordinate name (``lon`` -> ``longitude (°E)``)."""
    return AXIS_TITLES.get(name, name)


def with_units(label: str, units: str | None) -> str:
    """``label [units]`` in readable units, or the label alone when there are none."""
    u = pretty(units)
    return f"{label} [{u}]" if u else label
