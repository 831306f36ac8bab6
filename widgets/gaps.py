"""Where the gap to the oracle goes, as one picture: each model's log-likelihood, then its learning
shortfall, the symmetry headroom (strict models only) and the Gaussian limit stacked up to the oracle.

Vertical lines mark the three ceilings: A the oracle, B the best Gaussian predictor, D the best
strictly equivariant Gaussian predictor. Datasets without ceilings (real data) show the
log-likelihoods alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import plotly.graph_objects as go

from workbench.runs import Run

#: Segment name -> (metric key, colour).
SEGMENTS = {
    "learning shortfall": ("learning_shortfall", "#fdae6b"),
    "symmetry headroom (strict only)": ("symmetry_headroom", "#9e9ac8"),
    "Gaussian limit": ("gaussian_limit", "#c7e9c0"),
}
CEILINGS = {
    "oracle_loglik": ("A: oracle", "#238b45", "solid"),
    "gaussian_loglik": ("B: best Gaussian", "#41ab5d", "dash"),
    "equivariant_loglik": ("D: best strictly equivariant", "#6a51a3", "dot"),
}


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def gap_figure(runs: Mapping[str, Run], labels: Mapping[str, str] | None = None) -> go.Figure:
    """Horizontal bars, one row per run: test log-likelihood and the split of its gap to the oracle."""
    labels = dict(labels or {})
    names = list(runs)
    rows = [labels.get(n, n) for n in names]
    metrics = [runs[n].metrics for n in names]
    fig = go.Figure()
    have_split = [all(_finite(m.get(k)) for k, _ in SEGMENTS.values()) for m in metrics]
    base = [m.get("loglik", math.nan) for m in metrics]
    for label, (key, colour) in SEGMENTS.items():
        xs = [m.get(key, math.nan) if ok else math.nan for m, ok in zip(metrics, have_split, strict=True)]
        if not any(_finite(x) for x in xs):
            continue
        fig.add_trace(
            go.Bar(
                y=rows,
                x=[max(x, 0.0) if _finite(x) else math.nan for x in xs],
                base=list(base),
                orientation="h",
                name=label,
                marker=dict(color=colour, line=dict(color="#555", width=0.5)),
                hovertemplate=f"{label}: %{{x:.3f}} nats/target<extra></extra>",
            )
        )
        base = [b + max(x, 0.0) if _finite(x) else b for b, x in zip(base, xs, strict=True)]
    lls = [m.get("loglik", math.nan) for m in metrics]
    fig.add_trace(
        go.Scatter(
            y=rows,
            x=lls,
            mode="markers+text",
            text=[f"{v:.3f}" if _finite(v) else "" for v in lls],
            textposition="middle left",
            marker=dict(size=12, color="#08519c", symbol="diamond"),
            name="test log-lik",
            hovertemplate="%{y}: %{x:.3f} nats/target<extra></extra>",
        )
    )
    for key, (label, colour, dash) in CEILINGS.items():
        vals = [m[key] for m in metrics if _finite(m.get(key))]
        if vals:
            v = vals[0]
            fig.add_vline(x=v, line=dict(color=colour, dash=dash, width=2))
            fig.add_trace(  # a legend entry for the line
                go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=colour, dash=dash), name=label)
            )
    xs = [v for v in lls if _finite(v)] + [m[k] for m in metrics for k in CEILINGS if _finite(m.get(k))]
    if xs:  # the range the values span, not from zero: differences of hundredths must show
        lo, hi = min(xs), max(xs)
        pad = 0.08 * (hi - lo) + 0.02
        fig.update_xaxes(range=[lo - 3 * pad, hi + pad])
    fig.update_layout(
        barmode="overlay",
        height=140 + 46 * len(rows),
        width=760,
        margin=dict(l=10, r=10, t=40, b=40),
        title=dict(
            text="test log-likelihood and where the gap to the oracle goes"
            if any(have_split)
            else "test log-likelihood (no exact ceilings for this dataset)",
            font=dict(size=13),
        ),
        xaxis_title="nats per target (higher is better)",
        yaxis=dict(automargin=True, autorange="reversed"),
        legend=dict(orientation="h", y=-0.3),
    )
    return fig
