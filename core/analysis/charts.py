"""Plotly figures shared by the dashboard pages: training curves, layer parameters, comparisons,
confusion matrices and the lecture's ladder of accuracies.

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
            # Label the boundary once, on the accuracy chart; passing annotation_text=None would still add an
            # annotation without text, which plotly.js draws as its placeholder "new text".
            label = dict(annotation_text=f"{phase.replace('_', '-')} starts") if col == 1 else {}
            fig.add_vline(x=x, line=dict(color="gray", dash="dash"), row=1, col=col, **label)
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


LATER_COLOR, RATE_COLOR = "#f4a582", "#2ca02c"


def layer_params_figure(table: dict, plan: list[dict] | None = None) -> go.Figure:
    """Parameters per layer of a conv base, coloured frozen or trainable.

    With `plan` (`core.models.unfreezing.plan`: per block, its rate and the fine-tuning epoch it unfreezes at),
    each trainable layer also shows its block's learning rate (a line on a log axis at the right) and, for
    blocks that unfreeze later (gradual unfreezing), the fine-tuning epoch they start at, in a lighter colour."""
    from core.models.layer_table import block_of
    rows = [r for r in table["layers"] if r["params"] > 0]
    by_block = {p["block"]: p for p in plan or []}
    steps = [by_block.get(block_of(r["name"]), {}) if r["trainable"] else {} for r in rows]
    later = [bool(s.get("phase_epoch") and s["phase_epoch"] > 1) or (r["trainable"] and plan is not None and
                                                                     s.get("phase_epoch") is None)
             for r, s in zip(rows, steps)]
    colors = [FROZEN_COLOR if not r["trainable"] else LATER_COLOR if late else TRAINABLE_COLOR
              for r, late in zip(rows, later)]
    hover = [f"{block_of(r['name'])}" + (f"<br>learning rate {s['rate']:.3g}" if s.get("rate") else "")
             + (("<br>trains from fine-tuning epoch " + str(s["phase_epoch"])) if s.get("phase_epoch") else
                "<br>never unfreezes within the phase" if r["trainable"] and plan is not None else "")
             for r, s in zip(rows, steps)]
    seen, labels = set(), []  # "ep N" above the first layer of each block that unfreezes later
    for s in steps:
        late = s.get("phase_epoch") and s["phase_epoch"] > 1 and s["block"] not in seen
        labels.append(f"ep {s['phase_epoch']}" if late else "")
        seen.add(s.get("block"))
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=[r["name"] for r in rows], y=[r["params"] for r in rows], marker_color=colors,
                         customdata=hover, showlegend=False,
                         hovertemplate="%{x}<br>%{y:,} parameters<br>%{customdata}<extra></extra>"))
    for r, label in zip(rows, labels):
        if label:
            fig.add_annotation(x=r["name"], y=r["params"], text=label, showarrow=False, yanchor="bottom",
                               font=dict(size=11, color="#b2182b"))
    legend = [("frozen", FROZEN_COLOR), ("trainable", TRAINABLE_COLOR)]
    if plan is not None and any(later):
        legend = [("frozen", FROZEN_COLOR), ("trains from fine-tuning epoch 1", TRAINABLE_COLOR),
                  ("unfreezes later (gradual unfreezing)", LATER_COLOR)]
    for label, color in legend:
        fig.add_trace(go.Bar(x=[None], y=[None], marker_color=color, name=label))
    if plan is not None:  # the rate of each trainable layer, on a log axis at the right
        fig.add_trace(go.Scatter(x=[r["name"] for r in rows], y=[s.get("rate") for s in steps], mode="markers",
                                 marker=dict(color=RATE_COLOR, size=7), name="learning rate (right axis)",
                                 hovertemplate="%{x}: learning rate %{y:.3g}<extra></extra>"), secondary_y=True)
        fig.update_yaxes(type="log", title_text="learning rate", secondary_y=True, showgrid=False, tickformat=".0e",
                         title_standoff=4)
    fig.update_layout(height=400, margin=dict(t=60, b=120, l=60, r=90), bargap=0.15,
                      legend=dict(orientation="h", y=1.18), showlegend=True)
    fig.update_yaxes(title_text="parameters", secondary_y=False)
    fig.update_xaxes(tickangle=-60)
    return fig


def confusion_figure(matrix: list[list[int]], classes: list[str], title: str = "") -> go.Figure:
    """A confusion matrix as a heatmap: true class down, predicted class across, counts and row shares."""
    counts = [list(map(int, row)) for row in matrix]
    share = [[c / max(1, sum(row)) for c in row] for row in counts]
    text = [[f"{c}<br>({s:.0%})" for c, s in zip(row, srow)] for row, srow in zip(counts, share)]
    fig = go.Figure(go.Heatmap(z=share, x=list(classes), y=list(classes), text=text, texttemplate="%{text}",
                               colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="share of row"),
                               customdata=counts,
                               hovertemplate="true %{y}, predicted %{x}: %{customdata} images<extra></extra>"))
    fig.update_yaxes(title_text="true class", autorange="reversed", type="category")
    fig.update_xaxes(title_text="predicted class", side="top", type="category")
    fig.update_layout(title=title or None, height=max(320, 90 * len(classes) + 140),
                      margin=dict(t=90 if title else 60, b=30, l=80, r=20))
    return fig


BOOK_COLOR, LAB_VAL_COLOR, LAB_TEST_COLOR = "#9aa5b1", "#ff7f0e", "#2ca02c"


def ladder_figure(steps: list[dict], book_label: str = "book", test_acc: dict | None = None) -> go.Figure:
    """Grouped bars per lecture step: the book's published accuracy, this lab's validation and test accuracy.

    `steps` come from `core.analysis.ladder.ladder`; each lab bar is labelled with the weights its run used,
    and bars of runs without ImageNet weights where the book used them are hatched.
    """
    test_acc = test_acc or {}
    names = [s["short"] for s in steps]
    fig = go.Figure(go.Bar(x=names, y=[s["book"] for s in steps], name=book_label, marker_color=BOOK_COLOR,
                           text=[f"{s['book']:.2f}" for s in steps], textposition="outside",
                           hovertemplate="%{x}<br>" + book_label + ": %{y:.2f}<extra></extra>"))
    series = [("this lab: validation (best epoch)", LAB_VAL_COLOR, [s.get("val_acc") for s in steps])]
    if any(test_acc.get(s.get("run_id")) is not None for s in steps):
        series.append(("this lab: test", LAB_TEST_COLOR, [test_acc.get(s.get("run_id")) for s in steps]))
    for label, color, values in series:
        text = [f"{v:.2f} · {s['weights_short']}" if v is not None else "" for v, s in zip(values, steps)]
        fig.add_trace(go.Bar(
            x=names, y=values, name=label, marker_color=color, text=text, textposition="inside",
            textangle=-90, insidetextanchor="start", textfont=dict(color="black"),
            marker_pattern=dict(shape=["/" if s.get("imagenet") is False else "" for s in steps],
                                fillmode="overlay", fgcolor="white", fgopacity=0.7),
            customdata=[[s.get("name") or "–", s.get("weights") or "–"] for s in steps],
            hovertemplate="%{x}<br>" + label + ": %{y:.3f}<br>run %{customdata[0]}<br>weights: %{customdata[1]}"
                          "<extra></extra>"))
    if any(s.get("imagenet") is False for s in steps):
        fig.add_trace(go.Bar(x=[None], y=[None], name="hatched: weights not ImageNet (not comparable)",
                             marker=dict(color="white", line=dict(color="#555", width=1),
                                         pattern=dict(shape="/", fgcolor="#555"))))
    fig.update_layout(barmode="group", height=440, yaxis=dict(title="accuracy", range=[0, 1.15]),
                      margin=dict(t=40, b=40, l=60, r=20), legend=dict(orientation="h", y=-0.15),
                      uniformtext=dict(minsize=10, mode="show"))
    return fig


def lr_find_figure(result: dict) -> go.Figure:
    """The learning-rate range test: raw and smoothed loss against the rate on a log axis, with the suggested
    rate (and the other rule's) marked and named."""
    points = result["points"]
    lrs = [p["lr"] for p in points]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=lrs, y=[p["loss"] for p in points], mode="markers", name="loss per batch",
                             marker=dict(color=FROZEN_COLOR, size=4)))
    fig.add_trace(go.Scatter(x=lrs, y=[p["smoothed"] for p in points], mode="lines", name="smoothed loss",
                             line=dict(color=TRAIN_COLOR)))
    picks = result["suggestions"]
    for rule, color, dash in (("valley", TRAINABLE_COLOR, "solid"), ("steepest", VAL_COLOR, "dot")):
        chosen = " (suggested)" if rule == result["rule"] else ""
        fig.add_vline(x=picks[rule], line=dict(color=color, dash=dash),
                      annotation_text=f"{rule}{chosen}: {picks[rule]:.2g}", annotation_position="top left"
                      if rule == "valley" else "bottom right")
    smoothed = [p["smoothed"] for p in points]
    top = min(max(smoothed), 2 * smoothed[0]) if smoothed else 1
    fig.update_xaxes(type="log", title_text="learning rate (log scale)")
    fig.update_yaxes(title_text="training loss", range=[min(smoothed) * 0.95, top * 1.05] if smoothed else None)
    fig.update_layout(height=380, margin=dict(t=40, b=40, l=40, r=20), legend=dict(orientation="h", y=-0.25))
    return fig


def ablation_figure(res: dict) -> go.Figure:
    """Two panels of bars, one bar per removed transform (and "none"): the change in final validation accuracy
    and in validation loss against all transforms, mean over seeds with the standard deviation as error bars.
    Green bars mark transforms whose removal made the run worse (they help), red ones transforms whose removal
    made it better; each bar's
    hover names the runs behind it (`res` from `core.analysis.ablation.results`)."""
    bars = [b for b in res["bars"] if b["delta_acc"] is not None]
    names = [b["variant"] for b in bars]
    runs = {r["id"]: r for r in res["runs"]}
    hover = ["<br>".join(f"{runs[i]['name']} ({i})" for i in b["run_ids"]) for b in bars]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Δ validation accuracy when removed",
                                                        "Δ validation loss when removed"))
    for col, key in ((1, "acc"), (2, "loss")):
        values = [b[f"delta_{key}"] for b in bars]
        helps = [(v < 0) if key == "acc" else (v > 0) for v in values]  # removing it made things worse
        colors = ["#2ca02c" if h else "#d62728" for h in helps]
        fig.add_trace(go.Bar(
            x=names, y=values, marker_color=colors, showlegend=False,
            error_y=dict(type="data", array=[b[f"delta_{key}_sd"] for b in bars], visible=True),
            text=[f"{v:+.3f}" for v in values], textposition="outside", customdata=hover,
            hovertemplate="%{x}: %{y:+.4f}<br>runs:<br>%{customdata}<extra></extra>"), row=1, col=col)
        fig.add_hline(y=0, line_color="#555", row=1, col=col)
    n = max((b["n"] for b in bars), default=0)
    base = res["all"]
    title = (f"Augmentation ablation {res['group']}: all transforms reach {base['val_accuracy']:.3f} "
             f"(mean of {base['n']} seeds); bars: mean ± sd over {n} seeds; green: the transform helps" if base["val_accuracy"] is not None
             else f"Augmentation ablation {res['group']}")
    fig.update_layout(height=420, title=dict(text=title, font=dict(size=14)), margin=dict(t=80, b=40, l=60, r=20))
    return fig
