"""core.compare (tables, CSV, parallel coordinates) and the Compare page driven through AppTest."""
from __future__ import annotations

import io
import math
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from core.analysis import compare
from core.runs import store
from core.config import RunSpec

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "4_Compare.py")


def make_run(name: str, recipe: str = "scratch", history: list[tuple] = (), status: str = "finished",
             error: str | None = None, **overrides) -> str:
    """A run in the store with epochs [(phase, loss, acc, val_loss, val_acc, seconds), ...]."""
    spec = RunSpec.from_recipe(recipe, **{"epochs": max(len(history), 1), **overrides})
    run_id = store.create_run(spec.to_dict(), name, recipe, spec.backbone if spec.uses_backbone else None,
                              spec.total_epochs)
    for i, (phase, loss, acc, val_loss, val_acc, seconds) in enumerate(history, start=1):
        store.record_epoch(run_id, i, phase, dict(loss=loss, accuracy=acc, val_loss=val_loss, val_accuracy=val_acc,
                                                  lr=spec.lr, seconds=seconds))
    store.set_status(run_id, status, error)
    time.sleep(0.01)  # distinct `created` times
    return run_id


@pytest.fixture
def two_runs(home):
    a = make_run("baseline", "scratch", [("train", 0.69, 0.52, 0.68, 0.55, 2.04), ("train", 0.6, 0.66, 0.62, 0.64, 2.0),
                                          ("train", 0.5, 0.75, 0.63, 0.61, 2.0)])
    b = make_run("tuned", "fine_tune", [("head", 0.5, 0.8, 0.4, 0.85, 10.0), ("fine_tune", 0.3, 0.9, 0.35, 0.9, 12.5)],
                 epochs=1, fine_tune_epochs=1, weights="none", image_size=64)
    store.update_run(b, weights_used="random initialisation")
    store.set_tags(b, ["vgg", "best"])
    return a, b


# -- core.compare -------------------------------------------------------------------------------------
def test_runs_frame_columns_and_values(two_runs):
    a, b = two_runs
    frame = compare.runs_frame(store.list_runs()).set_index("id")
    assert list(compare.runs_frame(store.list_runs()).columns) == list(compare.RUN_COLUMNS)
    ra, rb = frame.loc[a], frame.loc[b]
    assert ra["backbone"] == "–" and ra["freeze point"] == "–" and ra["augmentation"] == "none"
    assert ra["epochs"] == "3/3"
    assert ra["best val acc"] == pytest.approx(0.64) and ra["best val loss"] == pytest.approx(0.62)
    assert ra["final val acc"] == pytest.approx(0.61) and ra["final val loss"] == pytest.approx(0.63)
    assert ra["duration (s)"] == pytest.approx(6.0)
    assert rb["backbone"] == "vgg16" and rb["freeze point"] == "block5_conv1"
    assert rb["weights"] == "random initialisation" and rb["image size"] == 64
    assert rb["augmentation"].startswith("rot 40°")
    assert rb["epochs"] == "2/2" and rb["tags"] == "best, vgg" and rb["status"] == "finished"
    assert rb["duration (s)"] == pytest.approx(22.5)
    for col in ("image size", "best val acc", "best val loss", "final val acc", "final val loss", "duration (s)"):
        assert pd.api.types.is_numeric_dtype(frame[col]), col
    assert pd.api.types.is_datetime64_any_dtype(frame["created"])


def test_runs_frame_no_epochs_and_augmentation_rules(home):
    empty = make_run("queued one", "scratch_aug", [], status="stopped")
    fe = make_run("fe", "feature_extraction", [("head", 1, 0.5, 1, 0.5, 1)], augment="lecture")
    frame = compare.runs_frame(store.list_runs()).set_index("id")
    assert frame.loc[empty, "epochs"] == "0/1"
    for col in ("best val acc", "best val loss", "final val acc", "final val loss", "duration (s)"):
        assert math.isnan(frame.loc[empty, col])
    assert frame.loc[empty, "augmentation"] != "none"      # scratch_aug augments
    assert frame.loc[fe, "augmentation"] == "none"         # feature_extraction never does, whatever its spec
    assert frame.loc[fe, "backbone"] == "vgg16" and frame.loc[fe, "freeze point"] == "–"
    assert list(compare.runs_frame([]).columns) == list(compare.RUN_COLUMNS)


def test_metrics_csv(two_runs):
    a, _ = two_runs
    frame = pd.read_csv(io.StringIO(compare.metrics_csv(a)))
    assert list(frame.columns) == list(compare.EPOCH_COLUMNS)
    assert frame["epoch"].tolist() == [1, 2, 3] and frame["val_accuracy"].tolist() == [0.55, 0.64, 0.61]
    empty = make_run("nothing", "scratch", [])
    assert compare.metrics_csv(empty).strip() == ",".join(compare.EPOCH_COLUMNS)


def test_hyperparameters_frame_and_figure(two_runs):
    a, b = two_runs
    make_run("no epochs", "scratch", [])
    frame = compare.hyperparameters_frame(store.list_runs()).set_index("id")
    assert set(frame.index) == {a, b}
    assert list(frame.columns) == ["name", *compare.HYPER_COLUMNS]
    assert frame.loc[b, "freeze depth"] == 5 and frame.loc[a, "freeze depth"] == 0
    assert frame.loc[b, "augmentation on"] == 1 and frame.loc[a, "augmentation on"] == 0
    assert frame.loc[b, "fine_tune_lr"] == pytest.approx(1e-5) and frame.loc[a, "fine_tune_lr"] == 0
    assert frame.loc[b, "epochs total"] == 2 and frame.loc[b, "image size"] == 64
    assert frame.loc[b, "best val acc"] == pytest.approx(0.9)
    fig = compare.parallel_figure(frame.reset_index())
    trace = fig.data[0]
    assert trace.type == "parcoords"
    assert [d.label for d in trace.dimensions][0] == "lr" and len(trace.dimensions) == len(compare.HYPER_COLUMNS)
    assert list(trace.line.color) == pytest.approx(list(frame.reset_index()["best val acc"]))
    assert compare.parallel_figure(compare.hyperparameters_frame([])).data == ()


def test_freeze_depth_and_helpers(two_runs):
    a, b = two_runs
    assert compare.freeze_depth("block5_conv1") == 5
    assert compare.freeze_depth("block_16_expand") == 16
    assert compare.freeze_depth("conv5_block1_1_conv") == 5
    assert compare.freeze_depth("flatten") == 0 and compare.freeze_depth(None) == 0
    rows = store.list_runs()
    assert compare.default_overlay(rows) == [b, a]
    series = compare.overlay_series(rows, [a, b])
    assert list(series) == ["baseline", "tuned"] and len(series["baseline"]) == 3
    store.rename_run(b, "baseline")
    assert list(compare.overlay_series(store.list_runs(), [a, b])) == [f"baseline ({a})", f"baseline ({b})"]
    assert compare.model_file(a) is None
    (store.run_dir(a) / "best.keras").write_bytes(b"model")
    assert compare.model_file(a) == store.run_dir(a) / "best.keras"
    assert "finishes or is stopped" in compare.model_missing_reason({"status": "running"})
    failed = make_run("broken", "scratch", [], status="failed", error="no images found")
    assert compare.failures(store.list_runs()) == [
        {"id": failed, "name": "broken", "status": "failed", "error": "no images found"}]


# -- the page -----------------------------------------------------------------------------------------
def app():
    from streamlit.testing.v1 import AppTest
    return AppTest.from_file(PAGE, default_timeout=30)


def by_label(widgets, label):
    found = [w for w in widgets if w.label == label]
    assert found, f"no widget labelled {label!r}"
    return found[0]


def test_page_empty_state(home):
    at = app().run()
    assert not at.exception
    assert any("python -m core train" in i.value for i in at.info)
    assert not at.dataframe


def test_page_lists_runs(two_runs):
    a, b = two_runs
    make_run("broken", "scratch", [], status="failed", error="no images found")
    at = app().run()
    assert not at.exception, at.exception
    shown = at.dataframe[0].value
    assert {a, b} <= set(shown["id"]) and {"baseline", "tuned"} <= set(shown["name"])
    assert any("no images found" in e.value for e in at.error)
    assert set(by_label(at.multiselect, "Runs to overlay").value) == {a, b}
    assert len(at.get("plotly_chart")) == 2   # overlay and parallel coordinates


def test_page_rename_and_tag(two_runs):
    a, b = two_runs
    at = app().run()
    assert by_label(at.selectbox, "Run").value == b   # newest first
    by_label(at.text_input, "Name").set_value("renamed run")
    by_label(at.button, "Rename").click()
    at.run()
    assert not at.exception, at.exception
    assert store.get_run(b)["name"] == "renamed run"
    assert "renamed run" in set(at.dataframe[0].value["name"])
    by_label(at.text_input, "Tags (comma-separated)").set_value(" x, y ,, x")
    by_label(at.button, "Save tags").click()
    at.run()
    assert not at.exception, at.exception
    assert store.get_run(b)["tags"] == ["x", "y"]
    by_label(at.selectbox, "Run").set_value(a)
    at.run()
    assert by_label(at.text_input, "Name").value == "baseline"
    by_label(at.text_input, "Name").set_value("   ")
    by_label(at.button, "Rename").click()
    at.run()
    assert store.get_run(a)["name"] == "baseline"
    assert any("cannot be empty" in e.value for e in at.error)


def test_page_delete_needs_confirmation(two_runs):
    a, b = two_runs
    at = app().run()
    by_label(at.button, "Delete run").click()
    at.run()
    assert store.get_run(b) is not None
    assert any("confirmation" in w.value for w in at.warning)
    by_label(at.checkbox, "Yes, delete this run and its files").check()
    by_label(at.button, "Delete run").click()
    at.run()
    assert not at.exception, at.exception
    assert store.get_run(b) is None and not store.run_dir(b).exists()
    assert set(at.dataframe[0].value["id"]) == {a}
    assert by_label(at.selectbox, "Run").value == a


def test_page_refuses_to_delete_a_running_run(home):
    run_id = make_run("busy", "scratch", [("train", 0.7, 0.5, 0.7, 0.5, 1.0)], status="finished")
    store.update_run(run_id, status="running", pid=os.getpid(), heartbeat=time.time())
    at = app().run()
    by_label(at.checkbox, "Yes, delete this run and its files").check()
    by_label(at.button, "Delete run").click()
    at.run()
    assert not at.exception, at.exception
    assert store.get_run(run_id) is not None
    assert any("stop it before deleting" in e.value for e in at.error)
    assert any("finishes or is stopped" in c.value for c in at.caption)


def test_page_offers_the_model_when_it_exists(two_runs):
    a, b = two_runs
    (store.run_dir(b) / "best.keras").write_bytes(b"x" * 1000)
    at = app().run()
    assert not at.exception, at.exception
    labels = [d.proto.label for d in at.get("download_button")]
    assert "Download metrics (CSV)" in labels
    assert any(label.startswith("Download model best.keras") for label in labels)


def test_compare_imports_neither_tensorflow_nor_streamlit():
    import subprocess
    import sys
    code = ("import sys, core.analysis.compare; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'streamlit')]; print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_parallel_axes_of_constant_settings_and_accuracy_are_sensible():
    """Issue 10: a setting every run shares showed a -1..1 span; one accuracy autoscaled to -0.5..1.5."""
    import pandas as pd
    frame = pd.DataFrame([{"id": i, "name": f"run {i}", "lr": lr, "fine_tune_lr": 0.0, "epochs total": 30,
                           "batch size": 20, "image size": 150, "dropout": 0.0, "freeze depth": 0,
                           "augmentation on": 0, "best val acc": 0.8} for i, lr in enumerate((1e-4, 2e-5))])
    axes = {d.label: d for d in compare.parallel_figure(frame).data[0].dimensions}
    for label, value in (("batch size", 20), ("dropout", 0), ("fine tune lr", 0)):
        assert list(axes[label].tickvals) == [value] and list(axes[label].ticktext) == [f"{value:g}"], label
    assert axes["best val acc"].range == (0.7, 0.9)
    assert axes["lr"].range is None  # a setting that varies keeps plotly's own span
    frame.loc[1, "augmentation on"] = 1
    flags = {d.label: d for d in compare.parallel_figure(frame).data[0].dimensions}["augmentation on"]
    assert list(flags.ticktext) == ["0", "1"]  # whole numbers are labelled by their values, not 0, 0, 1, 1
    line = compare.parallel_figure(frame).data[0].line
    assert 0 <= line.cmin < 0.8 < line.cmax <= 1


def test_the_accuracy_columns_come_right_after_the_name():
    """Issue 10: at 1400 px the accuracies were off-screen to the right of eight other columns."""
    assert compare.RUN_COLUMNS[:3] == ("name", "best val acc", "final val acc")
