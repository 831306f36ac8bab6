"""How each map variable is drawn, in every figure: one table for the static maps of
:mod:`workbench.plot` (matplotlib) and the interactive heat maps of ``widgets.heatmap`` (plotly).

Colour maps are named as both libraries spell them (plotly takes matplotlib's names, ignoring case,
with ``_r`` for reversed); only ``elevation``'s is matplotlib's alone, because the app draws
elevation as contour lines, not as a heat map. tests/test_plotview.py checks both libraries know
every name they draw.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    """``title``: what the variable is, lower case (``{channel}``: the fixed-input channel);
    ``colours``: the colour map; ``centred``: a diverging map centred on zero."""

    title: str
    colours: str
    centred: bool = False

    def heading(self, channel: int = 0) -> str:
        """The title as a figure heading: filled in and capitalised."""
        text = self.title.format(channel=channel)
        return text[:1].upper() + text[1:]


#: Variable -> style, in the order a menu lists them.
STYLES: dict[str, Style] = {
    "mean": Style("predicted mean", "RdYlBu_r"),
    "std": Style("predictive standard deviation", "viridis"),
    "mean_strict": Style("strict component (fixed inputs off)", "RdYlBu_r"),
    "breaking": Style("symmetry breaking: mean - strict", "RdBu_r", centred=True),
    "fixed_inputs": Style("learned fixed input, channel {channel}", "PuOr_r", centred=True),
    "truth": Style("truth (noise-free)", "RdYlBu_r"),
    "breaking_truth": Style("true breaking term (lapse rate x elevation)", "RdBu_r", centred=True),
    "oracle_mean": Style("GP oracle: predictive mean", "RdYlBu_r"),
    "oracle_std": Style("GP oracle: predictive standard deviation", "viridis"),
    "elevation": Style("surface elevation", "gist_earth"),
}
