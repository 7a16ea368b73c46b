"""A run's one-page report, to hand out or archive: self-contained HTML (works offline) or Markdown.

The report holds the run's specification, its final and best metrics, the weights and precision it
used, its learning curves (HTML: an interactive plotly figure with plotly.js embedded, so no network
is needed to open it) and, when given, an evaluation on a split (accuracy, loss, confusion matrix).
Every text that comes from the run store (names, tags, paths) is escaped.

Public API: `summary`, `html_report`, `markdown_report`.
"""
from __future__ import annotations

import html
import time

from core.runs import store
from core.analysis.charts import curves_figure
from core.config import RECIPES, RunSpec


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if value == 0 or abs(value) >= 1e-3 else f"{value:.1e}"
    return str(value)


def summary(run_id: str) -> dict:
    """The run row, its spec (as display rows), its epochs and its headline metrics."""
    run = store.get_run(run_id)
    if run is None:
        raise ValueError(f"There is no run {run_id}.")
    rows = store.epochs(run_id)
    try:
        spec = RunSpec.from_dict(run["spec"])
        spec_rows = [(k, spec.augment.summary() if k == "augment" else v) for k, v in spec.to_dict().items()
                     if not (k == "augment" and not RECIPES[spec.recipe].augments)]
        spec_rows = [(k, "none" if k == "augment" and spec.augment.is_identity() else v) for k, v in spec_rows]
        spec_rows = [(k, f"{len(v)} images (listed in split.json)" if k == "exclude" else v) for k, v in spec_rows]
    except (TypeError, ValueError, KeyError):
        spec_rows = sorted((run.get("spec") or {}).items())
    val = [(r["val_accuracy"], r["epoch"]) for r in rows if r["val_accuracy"] is not None]
    losses = [(r["val_loss"], r["epoch"]) for r in rows if r["val_loss"] is not None]
    last = rows[-1] if rows else {}
    metrics = [
        ("epochs", f"{len(rows)}/{run['epochs_total']}"),
        ("best validation accuracy", f"{max(val)[0]:.4f} (epoch {max(val)[1]})" if val else "–"),
        ("lowest validation loss", f"{min(losses)[0]:.4f} (epoch {min(losses)[1]})" if losses else "–"),
        ("final validation accuracy", _fmt(last.get("val_accuracy"))),
        ("final validation loss", _fmt(last.get("val_loss"))),
        ("final training accuracy", _fmt(last.get("accuracy"))),
        ("final training loss", _fmt(last.get("loss"))),
        ("training time", f"{sum(r['seconds'] or 0 for r in rows):.1f} s"),
        ("weights", run.get("weights_used") or "–"),
        ("precision", run.get("precision_used") or "–"),
        ("classes", ", ".join((run.get("info") or {}).get("classes") or []) or "–"),
        ("data", (run.get("info") or {}).get("data_root") or "–"),
    ]
    recipe = RECIPES.get(run["recipe"])
    return {"run": run, "recipe_title": recipe.title if recipe else run["recipe"], "spec_rows": spec_rows,
            "metrics": metrics, "epochs": rows}


def _table(rows, head=("", "")) -> str:
    e = html.escape
    body = "".join(f"<tr><th>{e(str(k))}</th><td>{e(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table><thead><tr><th>{e(head[0])}</th><th>{e(head[1])}</th></tr></thead><tbody>{body}</tbody></table>"


def _confusion_html(evaluation: dict) -> str:
    e = html.escape
    classes = evaluation["classes"]
    head = "".join(f"<th>{e(c)}</th>" for c in classes)
    body = "".join(f"<tr><th>{e(c)}</th>" + "".join(f"<td>{n}</td>" for n in row) + "</tr>"
                   for c, row in zip(classes, evaluation["confusion_matrix"]))
    return (f"<h2>Evaluation on the {e(evaluation['split'])} split</h2>"
            f"<p>{evaluation['n']} images · accuracy <b>{evaluation['accuracy']:.4f}</b> · loss "
            f"{evaluation['loss']:.4f}</p><table><thead><tr><th>true \\ predicted</th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1000px;margin:2em auto;color:#222}
h1{margin-bottom:.2em}.meta{color:#666}table{border-collapse:collapse;margin:.5em 2em 1em 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}thead th{background:#f4f4f4}
.cols{display:flex;flex-wrap:wrap;align-items:flex-start}footer{color:#888;font-size:.85em;margin-top:2em}
"""


def html_report(run_id: str, evaluation: dict | None = None) -> str:
    """A self-contained HTML page (plotly.js embedded, opens offline) summarising the run."""
    s = summary(run_id)
    run, e = s["run"], html.escape
    curves = (curves_figure(s["epochs"]).to_html(full_html=False, include_plotlyjs=True,
                                                 config={"displaylogo": False})
              if s["epochs"] else "<p>No finished epoch yet.</p>")
    tags = ", ".join(run.get("tags") or []) or "none"
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(run["created"]))
    return (
        f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{e(run['name'])} · Fine-Tuning Lab report</title><style>{_STYLE}</style></head><body>"
        f"<h1>{e(run['name'])}</h1><p class=\"meta\">{e(s['recipe_title'])} · run {e(run['id'])} · "
        f"{e(run['status'])} · tags: {e(tags)} · created {e(created)}"
        f"</p>" + (f"<p><b>Error:</b> {e(run['error'])}</p>" if run.get("error") else "")
        + f"<div class=\"cols\"><div><h2>Results</h2>{_table(s['metrics'], ('metric', 'value'))}</div>"
        f"<div><h2>Specification</h2>{_table(s['spec_rows'], ('parameter', 'value'))}</div></div>"
        f"<h2>Learning curves</h2>{curves}"
        + (_confusion_html(evaluation) if evaluation else "")
        + f"<footer>Fine-Tuning Lab · report made {e(time.strftime('%Y-%m-%d %H:%M'))}</footer></body></html>\n")


def _md(value) -> str:
    return _fmt(value).replace("|", "\\|").replace("\n", " ")


def markdown_report(run_id: str, evaluation: dict | None = None) -> str:
    """The same report as Markdown (tables; the curves as a per-epoch table)."""
    s = summary(run_id)
    run = s["run"]
    lines = [f"# {_md(run['name'])}", "", f"{_md(s['recipe_title'])} · run `{run['id']}` · {run['status']}", "",
             "## Results", "", "| metric | value |", "|---|---|", *[f"| {k} | {_md(v)} |" for k, v in s["metrics"]],
             "", "## Specification", "", "| parameter | value |", "|---|---|",
             *[f"| {_md(k)} | {_md(v)} |" for k, v in s["spec_rows"]], "", "## Epochs", "",
             "| epoch | phase | loss | accuracy | val loss | val accuracy |", "|---|---|---|---|---|---|",
             *[f"| {r['epoch']} | {r['phase']} | {_fmt(r['loss'])} | {_fmt(r['accuracy'])} | {_fmt(r['val_loss'])} "
               f"| {_fmt(r['val_accuracy'])} |" for r in s["epochs"]]]
    if evaluation:
        classes = evaluation["classes"]
        lines += ["", f"## Evaluation on the {evaluation['split']} split", "",
                  f"{evaluation['n']} images · accuracy {evaluation['accuracy']:.4f} · loss {evaluation['loss']:.4f}",
                  "", "| true \\ predicted | " + " | ".join(map(_md, classes)) + " |",
                  "|---" * (len(classes) + 1) + "|",
                  *[f"| {_md(c)} | " + " | ".join(map(str, row)) + " |"
                    for c, row in zip(classes, evaluation["confusion_matrix"])]]
    return "\n".join(lines) + "\n"
