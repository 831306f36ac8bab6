"""The gap-split chart (matplotlib) draws each model's gap to the oracle in the right pieces."""

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba

matplotlib.use("Agg")

from workbench.plot import GAP_COLOURS, gap_split  # noqa: E402

CEILINGS = {"oracle_loglik": -0.40, "gaussian_loglik": -0.45, "equivariant_loglik": -0.75}


def _metrics(loglik: float, strict: bool) -> dict[str, float]:
    headroom = CEILINGS["gaussian_loglik"] - CEILINGS["equivariant_loglik"] if strict else 0.0
    return CEILINGS | {"loglik": loglik, "symmetry_headroom": headroom}


def _pieces(fig, row: int) -> dict[str, tuple[float, float]]:
    """Bar pieces of one row as ``{part: (left, right)}``, found by their colours."""
    ax = fig.axes[0]
    colours = {to_rgba(c): part for part, c in GAP_COLOURS.items()}
    out = {}
    for patch in ax.patches:
        y = patch.get_y() + patch.get_height() / 2
        if abs(y - row) > 1e-9:
            continue
        part = colours[to_rgba(patch.get_facecolor()[:3] + (1.0,))]
        out[part] = (patch.get_x(), patch.get_x() + patch.get_width())
    return out


def test_a_strict_model_is_charged_the_headroom_and_a_relaxed_one_is_not():
    models = {
        "strict": [_metrics(-0.90, True), _metrics(-0.80, True)],
        "fixed inputs": _metrics(-0.60, False),
    }
    fig = gap_split(models)
    strict, relaxed = _pieces(fig, 0), _pieces(fig, 1)
    a, b, d = CEILINGS["oracle_loglik"], CEILINGS["gaussian_loglik"], CEILINGS["equivariant_loglik"]
    # Strict: from its mean (-0.85) up to D is learning, D..B is the symmetry headroom, B..A Gaussian.
    np.testing.assert_allclose(strict["learning_shortfall"], (-0.85, d))
    np.testing.assert_allclose(strict["symmetry_headroom"], (d, b))
    np.testing.assert_allclose(strict["gaussian_limit"], (b, a))
    # Relaxed: no headroom; its shortfall runs up to B.
    assert "symmetry_headroom" not in relaxed
    np.testing.assert_allclose(relaxed["learning_shortfall"], (-0.60, b))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["strict", "fixed inputs"]
    assert "2 seeds" in fig.axes[0].get_title()


def test_a_model_above_its_ceiling_gets_a_hatched_piece_and_no_shortfall():
    fig = gap_split({"lucky strict": _metrics(-0.70, True)})
    pieces = _pieces(fig, 0)
    assert "learning_shortfall" not in pieces
    np.testing.assert_allclose(pieces["beyond"], (CEILINGS["equivariant_loglik"], -0.70))
    np.testing.assert_allclose(pieces["symmetry_headroom"], (-0.70, CEILINGS["gaussian_loglik"]))


def test_metrics_without_ceilings_are_refused_with_the_missing_names():
    with pytest.raises(ValueError, match="equivariant_loglik"):
        gap_split({"colorado": {"loglik": -1.0, "oracle_loglik": -0.5, "gaussian_loglik": -0.6}})
