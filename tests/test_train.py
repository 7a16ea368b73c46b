"""Training runs end to end on tiny images: recipes, phases, feature cache, stop, kill and resume."""
import os
import signal
import time

import numpy as np
import pytest

from core.runs import runner, store
from core.config import RunSpec
from core.runs.worker import run_worker


def _submit_inline(spec: RunSpec) -> str:
    """Store a run and train it in this process (fast: no worker start-up)."""
    run_id = store.create_run(spec.to_dict(), spec.display_name(), spec.recipe, spec.backbone, spec.total_epochs)
    assert run_worker(run_id) == "finished", store.get_run(run_id)["error"]
    return run_id


def test_scratch_aug_run_records_epochs_and_artifacts(home, tiny_data):
    spec = RunSpec.from_recipe("scratch_aug", data=str(tiny_data), image_size=48, epochs=2, batch_size=8)
    run_id = _submit_inline(spec)
    run = store.get_run(run_id)
    rows = store.epochs(run_id)
    assert run["status"] == "finished" and [r["epoch"] for r in rows] == [1, 2]
    assert all(r["phase"] == "train" and r["val_accuracy"] is not None and r["lr"] > 0 for r in rows)
    folder = store.run_dir(run_id)
    assert (folder / "best.keras").is_file() and (folder / "last.keras").is_file()
    assert any((folder / "tb").rglob("events.out.tfevents*"))
    assert run["info"]["classes"] == ["cats", "dogs"]
    assert run["weights_used"].startswith("random")


def test_feature_extraction_learns_and_reuses_its_feature_cache(home, tiny_data):
    spec = RunSpec.from_recipe("feature_extraction", data=str(tiny_data), weights="none", image_size=32,
                               epochs=8, lr=1e-3, head="gap")
    first = _submit_inline(spec)
    cached = sorted((home / "cache" / "features").glob("*.npy"))
    assert len(cached) == 2  # train and validation
    mtimes = [p.stat().st_mtime_ns for p in cached]
    second = _submit_inline(RunSpec.from_recipe("feature_extraction", data=str(tiny_data), weights="none",
                                                image_size=32, epochs=1, lr=1e-3, head="flatten"))
    assert [p.stat().st_mtime_ns for p in sorted((home / "cache" / "features").glob("*.npy"))] == mtimes
    assert store.epochs(first)[-1]["accuracy"] > 0.6  # the left/right brightness task is learnable
    # "auto" keeps a pass over a few dozen images on TensorFlow: quantizing to int8 would cost more than it saves
    passes = [line["message"] for line in store.log_lines(first) if line["message"].startswith("frozen pass")]
    assert passes and all(": tensorflow " in m for m in passes), passes
    from core.analysis.evaluate import evaluate
    result = evaluate(second, str(tiny_data))
    assert result["split"] == "test" and result["n"] == 8 and np.sum(result["confusion_matrix"]) == 8


@pytest.mark.nightly  # about 10 s; the phases, rates and trainable counts are checked by default below
def test_fine_tune_records_both_phases_and_unfreezes_the_top_block(home, tiny_data):
    spec = RunSpec.from_recipe("fine_tune", data=str(tiny_data), weights="none", image_size=32, epochs=2,
                               fine_tune_epochs=2, augment="none", batch_size=8)
    run_id = _submit_inline(spec)
    assert [r["phase"] for r in store.epochs(run_id)] == ["head", "head", "fine_tune", "fine_tune"]
    assert [r["lr"] for r in store.epochs(run_id)] == pytest.approx([2e-5, 2e-5, 1e-5, 1e-5])
    plain = {"head": 1e-5, "block5": 1e-5}  # plain fine-tuning: one rate, every block from the freeze point
    assert [r["trains"] for r in store.epochs(run_id)] == [None, None, plain, plain]
    messages = [line["message"] for line in store.log_lines(run_id)]
    head_msg = next(m for m in messages if m.startswith("phase head"))
    tune_msg = next(m for m in messages if m.startswith("phase fine_tune"))
    # head: Flatten(1x1x512) -> Dense 256 -> Dense 1; fine-tune adds block5's three convolutions.
    head_params = 512 * 256 + 256 + 257
    assert f"{head_params:,} trainable" in head_msg
    assert f"{head_params + 3 * 2_359_808:,} trainable" in tune_msg


@pytest.mark.nightly  # about 19 s (MobileNetV2); VGG16's augmented fine-tune runs by default (below)
def test_augmented_fine_tune_trains_end_to_end(home, tiny_data):
    spec = RunSpec.from_recipe("fine_tune", data=str(tiny_data), backbone="mobilenet_v2", weights="none",
                               image_size=32, epochs=1, fine_tune_epochs=1, batch_size=8)
    assert spec.augmenting
    run_id = _submit_inline(spec)
    assert [r["phase"] for r in store.epochs(run_id)] == ["head", "fine_tune"]


def _wait_for(predicate, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.nightly  # about 30 s; tests/test_leases.py kills a real worker after an epoch and resumes it by default
def test_killed_worker_is_interrupted_and_resume_finishes(home, tiny_data):
    spec = RunSpec.from_recipe("scratch", data=str(tiny_data), image_size=48, epochs=25, batch_size=2)
    run_id = runner.submit(spec)
    _wait_for(lambda: store.get_run(run_id)["epochs_done"] >= 2)
    os.kill(store.get_run(run_id)["pid"], signal.SIGKILL)
    run = _wait_for(lambda: (runner.kick(), store.get_run(run_id))[1] if not runner.pid_alive(
        store.get_run(run_id)["pid"]) else None)
    run = store.get_run(run_id)
    kept = run["epochs_done"]
    assert run["status"] == "interrupted" and 2 <= kept < 25
    runner.resume(run_id)
    final = runner.wait(run_id, poll=0.3)
    assert final["status"] == "finished", final["error"]
    rows = store.epochs(run_id)
    assert [r["epoch"] for r in rows] == list(range(1, 26))
    assert any("resuming from" in line["message"] for line in store.log_lines(run_id))


@pytest.mark.nightly  # about 9 s with a real worker; tests/test_cli.py's stop test checks the same by default
def test_stop_ends_a_run_at_the_next_batch_and_keeps_its_epochs(home, tiny_data):
    spec = RunSpec.from_recipe("scratch", data=str(tiny_data), image_size=48, epochs=200, batch_size=2)
    run_id = runner.submit(spec)
    _wait_for(lambda: store.get_run(run_id)["epochs_done"] >= 1)
    assert runner.stop(run_id) == "stopping"
    final = runner.wait(run_id, poll=0.3)
    assert final["status"] == "stopped" and 1 <= final["epochs_done"] < 200
    assert (store.run_dir(run_id) / "last.keras").is_file() and (store.run_dir(run_id) / "best.keras").is_file()


@pytest.mark.nightly  # about 17 s with two real workers; tests/test_class.py checks the one-slot queue by default
def test_queue_respects_the_concurrency_limit(home, tiny_data, monkeypatch):
    monkeypatch.setenv("TUNELAB_MAX_RUNS", "1")
    spec = RunSpec.from_recipe("scratch", data=str(tiny_data), image_size=48, epochs=2, batch_size=8)
    first, second = runner.submit(spec), runner.submit(spec)
    assert store.get_run(first)["status"] == "running"
    assert store.get_run(second)["status"] == "queued"
    assert runner.wait(second, poll=0.3)["status"] == "finished"
    assert store.get_run(first)["status"] == "finished"
    assert store.get_run(first)["finished"] <= store.get_run(second)["started"] + 1.0


def test_fine_tune_without_augmentation_caches_the_frozen_bottom_and_resumes(home, tiny_data, monkeypatch):
    """Phase 2 trains only the unfrozen top on cached features; a stop mid-phase resumes from its checkpoint."""
    from core.runs.callbacks import RunRecorder, StopRequested
    original = RunRecorder.on_epoch_end

    def stop_after_three(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch + 1 == 3:
            raise StopRequested()
    monkeypatch.setattr(RunRecorder, "on_epoch_end", stop_after_three)
    spec = RunSpec.from_recipe("fine_tune", data=str(tiny_data), weights="none", image_size=32, epochs=1,
                               fine_tune_epochs=3, augment="none", batch_size=8, precision="float32")
    run_id = store.create_run(spec.to_dict(), "ft", "fine_tune", "vgg16", spec.total_epochs)
    assert run_worker(run_id) == "stopped"
    assert store.get_run(run_id)["epochs_done"] == 3
    assert (store.run_dir(run_id) / "ckpt-0003-top.keras").is_file()
    assert (store.run_dir(run_id) / "best.keras").is_file()  # a stopped run still has its models
    monkeypatch.setattr(RunRecorder, "on_epoch_end", original)
    assert run_worker(run_id) == "finished"
    rows = store.epochs(run_id)
    assert [r["phase"] for r in rows] == ["head", "fine_tune", "fine_tune", "fine_tune"]
    assert [r["lr"] for r in rows] == pytest.approx([2e-5, 1e-5, 1e-5, 1e-5])
    messages = [line["message"] for line in store.log_lines(run_id)]
    head_params = 512 * 256 + 256 + 257  # Flatten(1x1x512) -> Dense 256 -> Dense 1
    assert f"{head_params:,} trainable" in next(m for m in messages if m.startswith("phase head"))
    assert any("below block5_conv1" in m for m in messages)
    assert any("resuming fine-tuning from ckpt-0003-top.keras" in m for m in messages)
    from core.analysis.evaluate import evaluate
    assert evaluate(run_id, str(tiny_data))["n"] == 8
    # The assembled raw-pixel model scores exactly what the top-on-cached-features model scored.
    last = evaluate(run_id, str(tiny_data), split="validation", which="last")
    assert last["accuracy"] == pytest.approx(rows[-1]["val_accuracy"], abs=1e-6)
    assert last["loss"] == pytest.approx(rows[-1]["val_loss"], rel=1e-3)


def test_augmented_fine_tune_trains_only_the_top_on_the_frozen_bottoms_passes(home, tiny_data, monkeypatch):
    """Fine-tuning with augmentation: each augmented batch goes through the frozen bottom's pass (logged with its
    precision) and Keras trains only block5 and the head (the assembled classifier is checked by the test above
    for the same "top" kind without augmentation)."""
    from core.models import inference
    calls = []
    original = inference.FrozenPass.__call__

    def counted(self, batch):
        calls.append(np.shape(batch))
        return original(self, batch)
    monkeypatch.setattr(inference.FrozenPass, "__call__", counted)
    spec = RunSpec.from_recipe("fine_tune", data=str(tiny_data), weights="none", image_size=32, epochs=1,
                               fine_tune_epochs=1, batch_size=8, precision="float32")
    assert spec.augmenting
    run_id = _submit_inline(spec)
    rows = store.epochs(run_id)
    assert [r["phase"] for r in rows] == ["head", "fine_tune"]
    messages = [line["message"] for line in store.log_lines(run_id)]
    tune_msg = next(m for m in messages if m.startswith("phase fine_tune"))
    assert f"{512 * 256 + 256 + 257 + 3 * 2_359_808:,} trainable" in tune_msg  # block5 and the head only
    assert "frozen pass of the augmented training batches below block5_conv1: tensorflow float32" in messages
    assert (store.run_dir(run_id) / "ckpt-0002-top.keras").is_file()
    # 24 training images in batches of 8: 3 augmented batches an epoch through each frozen pass, each once
    assert calls.count((8, 32, 32, 3)) == 3 + 3  # the head's epoch through the base, then one below block5
