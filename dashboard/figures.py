"""Plotly figures of the dashboard, from the plain values of :mod:`dashboard.data` (no store access here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from dashboard.data import RoundPoint

TEMPLATE = "plotly_white"
LABELS = {
    "formation_energy_per_atom": "formation energy (eV/atom)",
    "e_above_hull": "energy above hull (eV/atom)",
}


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        height=340,
        legend={"orientation": "h", "y": -0.25},
    )
    if x == "round":
        fig.update_xaxes(dtick=1)
    return fig


def empty(message: str) -> go.Figure:
    """A blank figure that says why it is blank."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 14, "color": "#666"}, x=0.5, y=0.5)
    fig.update_layout(
        template=TEMPLATE, xaxis={"visible": False}, yaxis={"visible": False}, height=300, margin={"t": 30}
    )
    return fig


def best_so_far(points: Sequence[RoundPoint]) -> go.Figure:
    """Lowest energy above hull found so far, and the best of each round, per round."""
    xs = [p.round for p in points]
    fig = go.Figure()
    fig.add_scatter(x=xs, y=[p.best_so_far for p in points], mode="lines+markers", name="best so far")
    fig.add_scatter(x=xs, y=[p.new_best for p in points], mode="markers", name="best of the round", opacity=0.6)
    fig.add_hline(y=0.0, line_dash="dot", line_color="#999")
    return _layout(fig, "Most stable candidate so far", "round", "energy above hull (eV/atom)")


def hits_per_round(points: Sequence[RoundPoint], threshold: float) -> go.Figure:
    """New near-hull hits per round (bars) and in total (lines), all and novel ones only (not a known material: the
    stable, unique, novel count); replay campaigns: targets found."""
    xs = [p.round for p in points]
    fig = go.Figure()
    fig.add_bar(x=xs, y=[p.hits for p in points], name=f"hits this round (E_hull ≤ {threshold:g})")
    fig.add_bar(x=xs, y=[p.novel_hits for p in points], name="novel hits this round")
    fig.add_scatter(x=xs, y=[p.hits_cumulative for p in points], mode="lines+markers", name="hits so far")
    fig.add_scatter(
        x=xs, y=[p.novel_hits_cumulative for p in points], mode="lines+markers", name="novel hits so far (S.U.N.)"
    )
    if any(p.targets_found is not None for p in points):
        fig.add_scatter(x=xs, y=[p.targets_found for p in points], mode="lines+markers", name="targets found (replay)")
    return _layout(fig, "Hits per round", "round", "candidates")


def model_error(points: Sequence[RoundPoint]) -> go.Figure:
    """Mean absolute error of the model's predictions for each round's batch against the oracle (eV/atom): whether
    the surrogate is learning."""
    fig = go.Figure()
    names = sorted({n for p in points for n in p.errors})
    for name in names:
        xs, ys, ns = [], [], []
        for p in points:
            values = p.errors.get(name, [])
            if values:
                xs.append(p.round)
                ys.append(sum(abs(m - t) for m, _, t in values) / len(values))
                ns.append(len(values))
        fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=LABELS.get(name, name), text=[f"n = {n}" for n in ns])
    if not names:
        return empty("no predictions to compare yet: a round needs a model (round 1 on)")
    return _layout(fig, "Model error on each round's new evaluations", "round", "MAE (eV/atom)")


def calibration(points: Sequence[RoundPoint]) -> go.Figure:
    """Share of oracle values within k predicted standard deviations of the mean, against what a Gaussian expects."""
    values = [v for p in points for vs in p.errors.values() for v in vs if v[1] > 0]
    if not values:
        return empty("no predictions with an uncertainty to compare yet")
    z = sorted(abs(t - m) / s for m, s, t in values)
    ks = [0.25 * i for i in range(1, 13)]
    observed = [sum(v <= k for v in z) / len(z) for k in ks]
    expected = [math.erf(k / math.sqrt(2)) for k in ks]
    fig = go.Figure()
    fig.add_scatter(x=expected, y=observed, mode="lines+markers", name=f"observed (n = {len(z)})", text=ks)
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="ideal", line={"dash": "dot", "color": "#999"})
    return _layout(fig, "Calibration of the predicted uncertainty", "expected coverage", "observed coverage")


def property_scatter(rows: Sequence[dict[str, Any]], color: str = "round") -> go.Figure:
    """Band gap of the relaxed structure (eV) against energy above hull (eV/atom), one point per evaluated
    candidate, coloured by ``color`` ('round' or 'band_gap_std'); points carry their candidate id."""
    points = [r for r in rows if r.get("e_above_hull") is not None and r.get("band_gap") is not None]
    if not points:
        return empty("no evaluated candidate with both an energy above hull and a band gap yet")
    colour_values = [r.get(color) if r.get(color) is not None else 0.0 for r in points]
    fig = go.Figure(
        go.Scattergl(
            x=[r["e_above_hull"] for r in points],
            y=[r["band_gap"] for r in points],
            mode="markers",
            customdata=[r["id"] for r in points],
            text=[f"{r['formula']} (round {r['round']})" for r in points],
            hovertemplate="%{text}<br>E_hull %{x:.3f} eV/atom<br>gap %{y:.2f} eV<extra></extra>",
            marker={
                "color": colour_values,
                "colorscale": "Viridis",
                "showscale": True,
                "size": 9,
                "colorbar": {"title": "round" if color == "round" else "gap ± (eV)"},
            },
        )
    )
    fig.update_layout(dragmode="select")
    return _layout(
        fig, "Band gap vs energy above hull (drag to select)", "energy above hull (eV/atom)", "band gap (eV)"
    )


def parity(values: dict[str, list[tuple[float, float, float]]], title: str) -> go.Figure:
    """Predicted mean (with ± std bars) against the oracle's value, per outcome (eV/atom)."""
    if not any(values.values()):
        return empty("no predictions next to oracle values for this model")
    fig = go.Figure()
    lo, hi = math.inf, -math.inf
    for name, triples in values.items():
        if not triples:
            continue
        truth = [t for _, _, t in triples]
        mean = [m for m, _, _ in triples]
        lo, hi = min(lo, *truth, *mean), max(hi, *truth, *mean)
        fig.add_scatter(
            x=truth,
            y=mean,
            mode="markers",
            name=LABELS.get(name, name),
            error_y={"type": "data", "array": [s for _, s, _ in triples], "visible": True},
        )
    fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line={"dash": "dot", "color": "#999"})
    return _layout(fig, title, "oracle (eV/atom)", "predicted (eV/atom)")


def energy_curve(trajectory: Sequence[float], fmax: float | None = None) -> go.Figure:
    """Energy per atom at each relaxation step (eV/atom)."""
    if not trajectory:
        return empty("no relaxation trajectory recorded for this evaluation")
    fig = go.Figure()
    fig.add_scatter(x=list(range(len(trajectory))), y=list(trajectory), mode="lines+markers", name="energy")
    title = "Relaxation" + (f" (fmax {fmax:g} eV/Å)" if fmax else "")
    return _layout(fig, title, "optimizer step", "energy (eV/atom)")
