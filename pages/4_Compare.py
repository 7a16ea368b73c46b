"""Compare runs: a sortable table of every run, overlaid curves, hyperparameters in parallel coordinates,
and managing one run (rename, tag, delete, download its metrics and model).

Layout and widgets only: the tables, CSV and figures come from `core.analysis.compare` and `core.analysis.charts`.
"""
from pages.ui import all_runs, chart, escape_md, pick_run, setup, store, user

import streamlit as st

from core.analysis import charts, compare, report
from core.runs import access, artifacts, assignments, runcard, runner
from core.runs.specs import rerun_spec

setup("Compare runs", "📊")

st.title("📊 Compare runs")

flash = st.session_state.pop("compare_flash", None)
if flash:
    st.success(flash)

runs = all_runs()
if not runs:
    st.info("No runs yet. Start one on the **Train** page, or from a terminal with "
            "`python -m core train --recipe scratch` (add `--wait` to follow it there).")
    st.stop()

epochs_by_run = compare.load_epochs(runs)
by_id = {r["id"]: r for r in runs}

# -- all runs -----------------------------------------------------------------------------------------
st.subheader("All runs")
st.caption("Click a column header to sort. Accuracies and losses are on the validation set; "
           "“best” is the best epoch, “final” the last one.")
table = compare.runs_frame(runs, epochs_by_run)
acc_bar = dict(format="%.3f", min_value=0.0, max_value=1.0)
st.dataframe(
    table.sort_values("created", ascending=False),
    hide_index=True,
    width="stretch",
    column_config={
        "id": st.column_config.TextColumn("id", width="small"),
        "name": st.column_config.TextColumn("name", width="medium", pinned=True),
        "image size": st.column_config.NumberColumn("image size", format="%d px"),
        "best val acc": st.column_config.ProgressColumn("best val acc", **acc_bar),
        "final val acc": st.column_config.ProgressColumn("final val acc", **acc_bar),
        "best val loss": st.column_config.NumberColumn("best val loss", format="%.4f"),
        "final val loss": st.column_config.NumberColumn("final val loss", format="%.4f"),
        "duration (s)": st.column_config.NumberColumn("duration (s)", format="%.1f"),
        "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
    },
)

failed = compare.failures(runs)
if failed:
    with st.expander(f"Errors of failed or interrupted runs ({len(failed)})", expanded=True):
        for f in failed:
            st.error(f"**{escape_md(f['name'])}** (`{f['id']}`, {f['status']}): {escape_md(f['error'])}")

# -- overlay ------------------------------------------------------------------------------------------
st.subheader("Overlay learning curves")
with_epochs = [r for r in sorted(runs, key=lambda r: r["created"], reverse=True) if epochs_by_run[r["id"]]]
if not with_epochs:
    st.info("No run has finished an epoch yet: curves appear here after the first epoch.")
else:
    left, right = st.columns([3, 2])
    chosen = left.multiselect("Runs to overlay", [r["id"] for r in with_epochs],
                              default=compare.default_overlay(runs, 3, epochs_by_run),
                              format_func=lambda i: f"{by_id[i]['name']} · {i[-6:]}")
    metric = right.radio("Metric", compare.METRICS, horizontal=True,
                         format_func=lambda m: m.replace("_", " "))
    if chosen:
        chart(charts.overlay_figure(compare.overlay_series(runs, chosen, epochs_by_run), metric), key="compare_overlay",
              filename=f"overlay-{metric}")
    else:
        st.caption("Choose one or more runs to draw their curves.")

# -- hyperparameters ----------------------------------------------------------------------------------
hyper = compare.hyperparameters_frame(runs, epochs_by_run)
if len(hyper) >= 2:
    st.subheader("Hyperparameters and best validation accuracy")
    st.caption("One line per run with at least one epoch, coloured by its best validation accuracy. "
               "Drag along an axis to filter. Freeze depth is the block of the first trainable layer "
               "(fine-tuning only; 0 otherwise).")
    chart(compare.parallel_figure(hyper), key="compare_parallel", filename="hyperparameters")

# -- manage -------------------------------------------------------------------------------------------
st.subheader("Manage a run")
run = pick_run(runs, key="compare_manage_run")
rid = run["id"]
if run["status"] in ("failed", "interrupted") and run["error"]:
    st.error(f"This run {run['status']}: {escape_md(run['error'])}")

with st.expander("Run card: what it takes to reproduce this run", expanded=False):
    card = runcard.read(rid)
    if card is None:
        st.caption("No run card: the run was started before cards were recorded, or has not started yet.")
    else:
        st.table({"what": [r[0] for r in runcard.rows(card)], "value": [r[1] for r in runcard.rows(card)]})
    if st.button("Rerun this: a new run with the same specification", key=f"compare_rerun_{rid}"):
        try:
            new_id = runner.submit(rerun_spec(run["spec"]), user=user(),  # a rerun counts for the same assignment
                                   assignment=assignments.still_open(run.get("assignment")))
        except (ValueError, RuntimeError) as exc:
            st.error(escape_md(f"Not queued: {exc}"))
        else:
            st.session_state["compare_flash"] = f"Queued run {new_id}, a rerun of {rid}."
            st.rerun()

col_name, col_tags = st.columns(2)
with col_name:
    new_name = st.text_input("Name", value=run["name"], key=f"compare_name_{rid}")
    if st.button("Rename", key=f"compare_rename_{rid}"):
        try:
            store.rename_run(rid, new_name, user=user())
        except (ValueError, PermissionError) as exc:
            st.error(escape_md(exc))
        else:
            st.session_state["compare_flash"] = f"Renamed run {rid} to “{escape_md(new_name.strip())}”."
            st.rerun()
with col_tags:
    new_tags = st.text_input("Tags (comma-separated)", value=", ".join(run["tags"]), key=f"compare_tags_{rid}")
    if st.button("Save tags", key=f"compare_save_tags_{rid}"):
        try:
            store.set_tags(rid, new_tags.split(","), user=user())
        except PermissionError as exc:
            st.error(escape_md(exc))
        else:
            st.session_state["compare_flash"] = f"Saved the tags of run {rid}."
            st.rerun()

if access.is_teacher(user()):
    shown = st.toggle("Published: every student sees this run", value=bool(run["published"]),
                      key=f"compare_publish_{rid}")
    if shown != bool(run["published"]):
        store.set_published(rid, shown, user=user())
        st.rerun()
elif access.identity_mode() != "local" or access.teachers():  # a class: say whose run it is
    st.caption(f"Owner: {escape_md(run['owner'] or '–')}" + (" · published by a teacher" if run["published"] else ""))

col_csv, col_model = st.columns(2)
with col_csv:
    st.download_button("Download metrics (CSV)", compare.metrics_csv(rid), file_name=f"{rid}-metrics.csv",
                       mime="text/csv", key=f"compare_csv_{rid}", on_click="ignore")
    st.download_button("Download the run's report (HTML, opens offline)", lambda: report.html_report(rid),
                       file_name=f"{rid}-report.html", mime="text/html", key=f"compare_report_{rid}",
                       on_click="ignore", help="One page: specification, final and best metrics, learning curves.")
    st.download_button("Download the run's report (Markdown)", lambda: report.markdown_report(rid),
                       file_name=f"{rid}-report.md", mime="text/markdown", key=f"compare_report_md_{rid}",
                       on_click="ignore")
with col_model:
    model = compare.model_file(rid)
    if model is not None:
        st.download_button(f"Download model {model.name} ({model.stat().st_size / 1e6:.1f} MB)", model.read_bytes,
                           file_name=artifacts.download_name(rid), mime="application/octet-stream",
                           key=f"compare_model_{rid}", on_click="ignore")
    else:
        st.caption(f"No saved model to download. {compare.model_missing_reason(run)}")

with st.expander("Export for deployment, with a parity report on the run's own test split"):
    from core.runs import exports
    fmt = st.selectbox("Format", exports.FORMATS, key=f"compare_export_format_{rid}",
                       help="keras; saved_model (TensorFlow Serving); tflite and tflite-int8 (phones, LiteRT); "
                            "onnx (ONNX Runtime, browsers)")
    if compare.model_file(rid) is None:
        st.caption(f"No saved model to export. {compare.model_missing_reason(run)}")
    elif st.button("Export and check", key=f"compare_export_{rid}"):
        with st.spinner(f"Converting to {fmt} and checking it on the run's test images…"):
            try:
                st.session_state[f"compare_export_report_{rid}"] = exports.export(
                    rid, artifacts.export(rid, fmt), fmt)
            except (ValueError, RuntimeError, OSError) as exc:
                st.error(escape_md(f"Not exported: {exc}"))
    done = st.session_state.get(f"compare_export_report_{rid}")
    if done:
        rows = exports.report_rows(done)
        st.table({"what": [r[0] for r in rows], "value": [r[1] for r in rows]})
        data, filename = exports.download(done["path"])
        st.download_button(f"Download {filename}", data, file_name=f"{rid}-{filename}",
                           mime="application/octet-stream", key=f"compare_export_download_{rid}", on_click="ignore")

with st.container(border=True):
    st.markdown("**Delete this run**: its epochs, log, checkpoints and models are removed for good.")
    confirm = st.checkbox("Yes, delete this run and its files", key=f"compare_confirm_{rid}")
    if st.button("Delete run", key=f"compare_delete_{rid}", type="primary"):
        if not confirm:
            st.warning("Tick the confirmation box first.")
        else:
            try:
                store.delete_run(rid, user=user())
            except (ValueError, PermissionError) as exc:
                st.error(escape_md(exc))
            else:
                st.session_state.pop("compare_manage_run", None)
                st.session_state["compare_flash"] = f"Deleted run {rid} ({escape_md(run['name'])})."
                st.rerun()
