"""Live-view helpers and figures: progress, time left, phase boundaries, parameter charts."""
from core.analysis import charts
from core.runs import monitor


def _rows(n, phase_change_at=None):
    return [{"epoch": i, "phase": "fine_tune" if phase_change_at and i >= phase_change_at else "head",
             "loss": 1.0 / i, "accuracy": 0.5 + i / 100, "val_loss": 1.1 / i, "val_accuracy": 0.5 + i / 120,
             "seconds": 10.0} for i in range(1, n + 1)]


def test_progress_fraction_for_training_and_extraction():
    assert monitor.progress_fraction({"stage": "train", "phase": "head", "epoch": 3, "batch": 25,
                                      "batches": 100})[0] == 0.25
    fraction, label = monitor.progress_fraction({"stage": "extracting train features", "done": 500, "total": 2000})
    assert fraction == 0.25 and "extracting train features: 500/2000" == label
    assert monitor.progress_fraction({}) == (0.0, "")


def test_eta_counts_remaining_epochs_minus_the_current_ones_elapsed_time():
    run = {"status": "running", "epochs_total": 5, "progress": {"stage": "train", "epoch": 3, "epoch_started": 100.0}}
    assert monitor.eta_seconds(run, _rows(2), now=104.0) == 3 * 10.0 - 4.0
    stale = {**run, "progress": {"stage": "train", "epoch": 2, "epoch_started": 0.0}}  # progress of a finished epoch
    assert monitor.eta_seconds(stale, _rows(2), now=104.0) == 30.0
    assert monitor.eta_seconds({**run, "status": "finished"}, _rows(2)) is None


def test_curves_mark_the_fine_tuning_boundary():
    rows = _rows(6, phase_change_at=4)
    assert charts.phase_boundaries(rows) == [(3.5, "fine_tune")]
    fig = charts.curves_figure(rows)
    assert len(fig.data) == 4  # training/validation x accuracy/loss
    assert any(shape.x0 == 3.5 for shape in fig.layout.shapes)


def test_layer_chart_colours_frozen_and_trainable():
    table = {"layers": [{"name": "a", "params": 10, "trainable": False}, {"name": "b", "params": 20, "trainable": True},
                        {"name": "pool", "params": 0, "trainable": True}]}
    fig = charts.layer_params_figure(table)
    assert list(fig.data[0].x) == ["a", "b"]
    assert list(fig.data[0].marker.color) == [charts.FROZEN_COLOR, charts.TRAINABLE_COLOR]


def test_every_annotation_of_a_fine_tuning_chart_has_a_text():
    """An annotation without text is drawn by plotly.js as its placeholder "new text" (issue 10, defect 7)."""
    fig = charts.curves_figure(_rows(6, phase_change_at=4))
    texts = [a.text for a in fig.layout.annotations]
    assert all(texts), texts
    assert "fine-tune starts" in texts


def test_layer_chart_shows_each_blocks_rate_and_the_epoch_it_unfreezes():
    from core.models import unfreezing
    names = ["block3_conv1", "block4_conv1", "block4_pool", "block5_conv1"]
    table = {"layers": [{"name": n, "params": 0 if "pool" in n else 10, "trainable": n != "block3_conv1"}
                        for n in names]}
    plan = unfreezing.plan(names, "block4_conv1", 1e-5, 2.0, 3, 1, 10)
    fig = charts.layer_params_figure(table, plan)
    rate = next(t for t in fig.data if t.name == "learning rate (right axis)")
    assert list(rate.x) == ["block3_conv1", "block4_conv1", "block5_conv1"]
    assert list(rate.y) == [None, 2.5e-6, 5e-6]  # frozen, then rates growing towards the head
    assert list(fig.data[0].marker.color) == [charts.FROZEN_COLOR, charts.LATER_COLOR, charts.TRAINABLE_COLOR]
    assert [(a.x, a.text) for a in fig.layout.annotations] == [("block4_conv1", "ep 4")]  # epoch 1 + 3
