"""Comparing runs: the tables, CSV exports and parallel-coordinates figure behind the Compare page.

Pure functions from run-store rows (`store.list_runs()`) to pandas frames, CSV text and plotly
figures, so the page stays a thin layout and everything here is unit-tested without a browser.
Imports neither Streamlit nor TensorFlow.

Public API
----------
``RUN_COLUMNS``                 the columns of :func:`runs_frame`, in order.
``METRICS``                     the per-epoch metrics that can be overlaid.
``EPOCH_COLUMNS``               the columns of :func:`metrics_csv`.
``HYPER_COLUMNS``               the numeric dimensions of :func:`hyperparameters_frame`.
``runs_frame(rows, epochs_by_run=None)``  one row per run: configuration and headline numbers.
``metrics_csv(run_id)``         a run's epochs as CSV text.
``hyperparameters_frame(rows, epochs_by_run=None)``  numeric hyperparameters + best val acc.
``parallel_figure(frame)``      plotly parallel coordinates of that frame, coloured by best val acc.
``freeze_depth(layer_name)``    the block/stage number in a freeze-point layer name (0 if none).
``load_epochs(rows)``           {run id: store.epochs(run id)}, to pass as `epochs_by_run` below.
``default_overlay(rows, n=3, epochs_by_run=None)``  ids of the n newest runs that have epochs.
``overlay_series(rows, run_ids, epochs_by_run=None)``  {unique label: epoch rows} for `charts.overlay_figure`.
``failures(rows)``              the runs that failed (or were interrupted) with their error text.
``model_file(run_id)``          the run's best.keras path, or None when it is not there.
``model_missing_reason(run)``   one sentence on why a run has no best.keras yet.
"""
from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.runs import artifacts, store
from core.config import RECIPES, RunSpec

DASH = "–"
# The headline numbers come right after the name, so they are on screen without scrolling the table sideways.
RUN_COLUMNS = ("name", "best val acc", "final val acc", "best val loss", "final val loss", "epochs", "status",
               "recipe", "backbone", "weights", "freeze point", "augmentation", "image size", "duration (s)",
               "tags", "owner", "created", "id")
METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")
EPOCH_COLUMNS = ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
HYPER_COLUMNS = ("lr", "fine_tune_lr", "epochs total", "batch size", "image size", "dropout", "freeze depth",
                 "augmentation on", "best val acc")
NO_AUGMENT_RECIPES = ("scratch", "feature_extraction")


# -- helpers ------------------------------------------------------------------------------------------
def _spec(run: dict) -> RunSpec | None:
    """The run's RunSpec, or None when the stored spec cannot be read (e.g. from an older version)."""
    try:
        return RunSpec.from_dict(run.get("spec") or {})
    except (TypeError, ValueError, KeyError):
        return None


def _uses_backbone(run: dict) -> bool:
    recipe = RECIPES.get(run.get("recipe"))
    return recipe.uses_backbone if recipe else bool(run.get("backbone"))


def _values(rows: list[dict], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key) is not None and not _isnan(r[key])]


def _isnan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def load_epochs(rows: list[dict]) -> dict[str, list[dict]]:
    """{run id: its epoch rows} for every run in `rows` (one store read per run)."""
    return {r["id"]: store.epochs(r["id"]) for r in rows}


def _epochs_for(rows: list[dict], epochs_by_run: dict | None) -> dict[str, list[dict]]:
    epochs_by_run = epochs_by_run or {}
    return {r["id"]: epochs_by_run[r["id"]] if r["id"] in epochs_by_run else store.epochs(r["id"]) for r in rows}


def freeze_depth(layer_name: str | None) -> int:
    """The block number in a freeze point: block5_conv1 -> 5, block_16_expand -> 16,
    conv5_block1_1_conv (ResNet stage 5) -> 5; 0 when the name has none."""
    if not layer_name:
        return 0
    for pattern in (r"^block_?(\d+)", r"^conv(\d+)_block", r"block_?(\d+)"):
        match = re.search(pattern, layer_name)
        if match:
            return int(match.group(1))
    return 0


def augmentation_text(run: dict, spec: RunSpec | None = None) -> str:
    """The augmentation summary of a run; "none" when off or when the recipe never augments. Runs augmented by
    Keras preprocessing layers (`augment_engine`) say so."""
    spec = spec or _spec(run)
    if spec is None or spec.recipe in NO_AUGMENT_RECIPES or spec.augment.is_identity():
        return "none"
    return spec.augment.summary() + (" · Keras layers" if spec.augment_engine == "keras_layers" else "")


# -- tables -------------------------------------------------------------------------------------------
def runs_frame(rows: list[dict], epochs_by_run: dict[str, list[dict]] | None = None) -> pd.DataFrame:
    """One row per run (columns `RUN_COLUMNS`). Epochs are read from the store unless given in
    `epochs_by_run` ({run id: store.epochs(run id)}). Numbers are NaN for runs without epochs."""
    nan = float("nan")
    all_epochs = _epochs_for(rows, epochs_by_run)
    records = []
    for run in rows:
        spec = _spec(run)
        eps = all_epochs[run["id"]]
        val_acc, val_loss = _values(eps, "val_accuracy"), _values(eps, "val_loss")
        last = eps[-1] if eps else {}
        fine_tune = spec is not None and spec.fine_tunes
        records.append({
            "id": run["id"],
            "name": run.get("name") or "",
            "recipe": run.get("recipe") or "",
            "backbone": (run.get("backbone") or (spec.backbone if spec else DASH)) if _uses_backbone(run) else DASH,
            "weights": run.get("weights_used") or DASH,
            "freeze point": spec.resolved_freeze_from if fine_tune else DASH,
            "augmentation": augmentation_text(run, spec),
            "image size": spec.image_size if spec else None,
            "epochs": f"{len(eps)}/{run.get('epochs_total') or 0}",
            "best val acc": max(val_acc) if val_acc else nan,
            "best val loss": min(val_loss) if val_loss else nan,
            "final val acc": nan if last.get("val_accuracy") is None else float(last["val_accuracy"]),
            "final val loss": nan if last.get("val_loss") is None else float(last["val_loss"]),
            "duration (s)": round(sum(r.get("seconds") or 0.0 for r in eps), 1) if eps else nan,
            "status": run.get("status") or "",
            "tags": ", ".join(run.get("tags") or []),
            "owner": run.get("owner") or DASH,
            "created": datetime.fromtimestamp(run["created"]) if run.get("created") else pd.NaT,
        })
    frame = pd.DataFrame.from_records(records, columns=list(RUN_COLUMNS))
    for col in ("image size", "best val acc", "best val loss", "final val acc", "final val loss", "duration (s)"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame["created"] = pd.to_datetime(frame["created"])
    return frame


def metrics_csv(run_id: str) -> str:
    """The run's epochs as CSV text with columns `EPOCH_COLUMNS` (just the header when it has none)."""
    frame = pd.DataFrame(store.epochs(run_id), columns=list(EPOCH_COLUMNS))
    return frame[list(EPOCH_COLUMNS)].to_csv(index=False)


def hyperparameters_frame(rows: list[dict], epochs_by_run: dict[str, list[dict]] | None = None) -> pd.DataFrame:
    """Per run with at least one epoch: "id", "name" and the numeric `HYPER_COLUMNS`.

    fine_tune_lr and freeze depth are 0 for runs that do not fine-tune; "augmentation on" is 0/1.
    """
    all_epochs = _epochs_for(rows, epochs_by_run)
    records = []
    for run in rows:
        eps = all_epochs[run["id"]]
        spec = _spec(run)
        if not eps or spec is None:
            continue
        fine_tune = spec.fine_tunes
        val_acc = _values(eps, "val_accuracy")
        records.append({
            "id": run["id"], "name": run.get("name") or run["id"],
            "lr": float(spec.lr),
            "fine_tune_lr": float(spec.fine_tune_lr) if fine_tune else 0.0,
            "epochs total": int(run.get("epochs_total") or spec.total_epochs),
            "batch size": int(spec.batch_size),
            "image size": int(spec.image_size),
            "dropout": float(spec.dropout),
            "freeze depth": freeze_depth(spec.resolved_freeze_from) if fine_tune else 0,
            "augmentation on": 0 if augmentation_text(run, spec) == "none" else 1,
            "best val acc": max(val_acc) if val_acc else float("nan"),
        })
    return pd.DataFrame.from_records(records, columns=["id", "name", *HYPER_COLUMNS])


def parallel_figure(frame: pd.DataFrame) -> go.Figure:
    """Parallel coordinates of `hyperparameters_frame(...)`, one line per run coloured by best val acc."""
    dims = [c for c in HYPER_COLUMNS if c in frame.columns]
    if frame.empty:
        fig = go.Figure()
        fig.add_annotation(text="No run has finished an epoch yet.", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        fig.update_layout(height=200)
        return fig
    fig = go.Figure(go.Parcoords(
        dimensions=[_axis(c, frame[c]) for c in dims],
        line=dict(color=frame["best val acc"], colorscale=px.colors.sequential.Viridis, showscale=True,
                  cmin=_accuracy_range(frame["best val acc"])[0], cmax=_accuracy_range(frame["best val acc"])[1],
                  colorbar=dict(title="best val acc", x=1.1))))
    fig.update_layout(height=440, margin=dict(t=80, b=40, l=70, r=150))
    return fig


def _accuracy_range(values: pd.Series) -> list[float]:
    """The accuracies' span widened to tenths inside [0, 1], never empty: 0.8 alone gives [0.7, 0.9]."""
    finite = values.dropna()
    if finite.empty:
        return [0.0, 1.0]
    low, high = math.floor(finite.min() * 10) / 10, math.ceil(finite.max() * 10) / 10
    if high - low < 0.1:
        low, high = low - 0.1, high + 0.1
    return [max(0.0, round(low, 1)), min(1.0, round(high, 1))]


def _axis(column: str, values: pd.Series) -> dict:
    """One parallel-coordinates axis. A setting that is the same for every run shows that one value, not a
    made-up span around it (plotly's default is -1..1 around 0); accuracies stay inside 0..1."""
    axis = dict(label=column.replace("_", " "), values=values)
    finite = values.dropna()
    whole = not finite.empty and bool((finite == finite.round()).all())
    if column == "best val acc":
        axis["range"] = _accuracy_range(values)
    elif not finite.empty and finite.min() == finite.max():
        value = float(finite.iloc[0])
        pad = abs(value) * 0.5 or 1.0
        axis.update(range=[value - pad, value + pad], tickvals=[value],
                    ticktext=[f"{value:g}" if not whole else f"{int(value)}"])
    elif whole and finite.nunique() <= 12:  # whole numbers (epochs, sizes, 0/1 flags): label the values run
        ticks = sorted(float(v) for v in finite.unique())
        axis.update(tickvals=ticks, ticktext=[f"{int(v)}" for v in ticks])
    elif whole:
        axis["tickformat"] = "d"
    return axis


# -- helpers for the page ----------------------------------------------------------------------------
def default_overlay(rows: list[dict], n: int = 3, epochs_by_run: dict[str, list[dict]] | None = None) -> list[str]:
    """Ids of the `n` newest runs that have at least one epoch (newest first)."""
    newest = sorted(rows, key=lambda r: r.get("created") or 0, reverse=True)
    out = []
    for run in newest:
        has = (len(epochs_by_run[run["id"]]) if epochs_by_run and run["id"] in epochs_by_run
               else run.get("epochs_done"))
        if has is None:
            has = len(store.epochs(run["id"]))
        if has:
            out.append(run["id"])
        if len(out) == n:
            break
    return out


def overlay_series(rows: list[dict], run_ids: list[str],
                   epochs_by_run: dict[str, list[dict]] | None = None) -> dict[str, list[dict]]:
    """{label: epoch rows} for the chosen runs, in `run_ids` order; labels are the run names, made unique
    with the id when two chosen runs share a name."""
    by_id = {r["id"]: r for r in rows}
    chosen = [by_id[i] for i in run_ids if i in by_id]
    names = [r.get("name") or r["id"] for r in chosen]
    all_epochs = _epochs_for(chosen, epochs_by_run)
    return {(name if names.count(name) == 1 else f"{name} ({run['id']})"): all_epochs[run["id"]]
            for name, run in zip(names, chosen)}


def failures(rows: list[dict]) -> list[dict]:
    """{"id", "name", "status", "error"} for each failed or interrupted run that has an error text."""
    return [{"id": r["id"], "name": r.get("name"), "status": r["status"], "error": r["error"]}
            for r in rows if r.get("status") in ("failed", "interrupted") and r.get("error")]


def model_file(run_id: str) -> Path | None:
    """The run's best.keras, or None when it does not exist (yet)."""
    return artifacts.model_if_saved(run_id, "best")


def model_missing_reason(run: dict) -> str:
    """Why a run has no best.keras, in one sentence."""
    status = run.get("status")
    if status in store.ACTIVE:
        return (f"This run is {status}: best.keras is saved when it finishes or is stopped "
                "(stopping it saves the best model so far).")
    if status == "failed":
        return "This run failed before a model was saved; see its error, fix the cause and resume it."
    if status == "stopped":
        return ("This run was stopped before it had a model to save (a run saves best.keras when it finishes "
                "or is stopped after at least one epoch); resume it to get one.")
    if status == "interrupted":
        return ("This run was interrupted (its worker died) before it could save best.keras; "
                "resume it and the model is saved when it finishes or is stopped.")
    if not run.get("epochs_done"):
        return "This run has no finished epoch, so there is no model to save."
    return "best.keras is missing from the run's folder (it may have been moved or deleted)."
