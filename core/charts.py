"""Plotly figures shared by the dashboard pages: training curves, layer parameters, comparisons.

Pure functions from run-store rows to figures, so they are unit-tested without a browser.
"""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#ff7f0e"
FROZEN_COLOR, TRAINABLE_COLOR = "#9aa5b1", "#d62728"


def phase_boundaries(rows: list[dict]) -> list[tuple[int, str]]:
    """(epoch, new phase) wherever the phase changes, e.g. [(30.5, "fine_tune")]."""
    return [(rows[i]["epoch"] - 0.5, rows[i]["phase"]) for i in range(1, len(rows))
            if rows[i]["phase"] != rows[i - 1]["phase"]]


def curves_figure(rows: list[dict], title: str = "") -> go.Figure:
    """Accuracy and loss, training and validation, per epoch; phase changes marked."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Accuracy", "Loss"))
    epochs = [r["epoch"] for r in rows]
    for col, metric in ((1, "accuracy"), (2, "loss")):
        for prefix, label, color, dash in (("", "training", TRAIN_COLOR, "dot"), ("val_", "validation", VAL_COLOR,
                                                                                    "solid")):
            fig.add_trace(go.Scatter(x=epochs, y=[r[prefix + metric] for r in rows], mode="lines+markers",
                                     name=label, legendgroup=label, showlegend=col == 1,
                                     line=dict(color=color, dash=dash)), row=1, col=col)
        for x, phase in phase_boundaries(rows):
            fig.add_vline(x=x, line=dict(color="gray", dash="dash"), row=1, col=col,
                          annotation_text=f"{phase.replace('_', '-')} starts" if col == 1 else None)
    fig.update_xaxes(title_text="epoch", dtick=max(1, len(rows) // 10))
    fig.update_layout(title=title or None, height=380, margin=dict(t=60 if title else 40, b=40, l=40, r=20),
                      legend=dict(orientation="h", y=-0.2))
    return fig


def overlay_figure(series: dict[str, list[dict]], metric: str = "val_accuracy") -> go.Figure:
    """One line per run for `metric` (e.g. val_accuracy), for comparing runs or a freeze-point sweep."""
    fig = go.Figure()
    for name, rows in series.items():
        fig.add_trace(go.Scatter(x=[r["epoch"] for r in rows], y=[r[metric] for r in rows], mode="lines+markers",
                                 name=name))
    fig.update_layout(height=380, xaxis_title="epoch", yaxis_title=metric.replace("_", " "),
                      margin=dict(t=30, b=40, l=40, r=20), legend=dict(orientation="h", y=-0.25))
    return fig


def layer_params_figure(table: dict) -> go.Figure:
    """Parameters per layer of a conv base, coloured frozen or trainable."""
    rows = [r for r in table["layers"] if r["params"] > 0]
    fig = go.Figure(go.Bar(x=[r["name"] for r in rows], y=[r["params"] for r in rows],
                           marker_color=[TRAINABLE_COLOR if r["trainable"] else FROZEN_COLOR for r in rows],
                           hovertemplate="%{x}<br>%{y:,} parameters<extra></extra>", showlegend=False))
    for label, color in (("frozen", FROZEN_COLOR), ("trainable", TRAINABLE_COLOR)):
        fig.add_trace(go.Bar(x=[None], y=[None], marker_color=color, name=label))
    fig.update_layout(height=360, yaxis_title="parameters", margin=dict(t=30, b=120, l=60, r=20), bargap=0.15,
                      legend=dict(orientation="h", y=1.1), showlegend=True)
    fig.update_xaxes(tickangle=-60)
    return fig
