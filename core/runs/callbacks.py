"""Keras callbacks that connect a training run to the run store.

`RunRecorder` writes each finished epoch's checkpoint (atomically), then its metrics, so the store
never claims an epoch whose checkpoint is missing (a failed write raises `CheckpointError`); it reports
batch progress and turns a stop request into `StopRequested` at the next batch. `ProgressReporter` does
the same for predict loops.
"""
from __future__ import annotations

import time
from pathlib import Path

import keras

from core.runs import store
from core.atomic import replacing


class StopRequested(Exception):
    """Raised inside fit/predict when the run's stop flag is set."""


class CheckpointError(RuntimeError):
    """A model file could not be written (disk full, read-only folder); the message names the file."""


def save_atomic(model: keras.Model, path: Path) -> None:
    """Write `model` to `path` through a temporary file, so `path` is always complete or absent."""
    try:
        with replacing(path, suffix=".keras") as tmp:
            model.save(tmp)
    except OSError as exc:
        raise CheckpointError(f"Could not write {path} ({exc.strerror or exc}): free some space or make "
                              f"{path.parent} writable, then resume the run (its finished epochs are kept).") from exc


def checkpoint_path(run_id: str, epoch: int, kind: str) -> Path:
    return store.run_dir(run_id) / f"ckpt-{epoch:04d}-{kind}.keras"


def latest_checkpoint(run_id: str, epoch: int) -> tuple[Path, str] | None:
    """The checkpoint written after `epoch` finished epochs, and its kind.

    Kinds: "full" (the whole raw-pixel model), "head" (the classifier on cached base features),
    "top" (the unfrozen top of the base plus the classifier, on cached features of the frozen bottom).
    """
    for kind in ("full", "head", "top"):
        path = checkpoint_path(run_id, epoch, kind)
        if path.is_file():
            return path, kind
    return None


class _Throttled:
    def __init__(self, run_id: str, every: float = 0.5):
        self.run_id, self.every, self._last = run_id, every, 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            return True
        return False

    def check_stop(self) -> None:
        run = store.get_run(self.run_id)
        if run and run["stop_requested"]:
            raise StopRequested()


class RunRecorder(keras.callbacks.Callback):
    """Checkpoint, record and report one training phase of a run."""

    def __init__(self, run_id: str, phase: str, kind: str, best: dict, steps: int):
        super().__init__()
        self.run_id, self.phase, self.kind, self.best, self.steps = run_id, phase, kind, best, steps
        self.throttle = _Throttled(run_id)

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.throttle.due():
            store.update_run(self.run_id, progress={"stage": "train", "phase": self.phase, "epoch": self.epoch + 1,
                                                    "batch": batch + 1, "batches": self.steps,
                                                    "epoch_started": self.started, "time": time.time()})
            self.throttle.check_stop()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        done = epoch + 1
        save_atomic(self.model, checkpoint_path(self.run_id, done, self.kind))
        val_acc = logs.get("val_accuracy")
        if val_acc is not None and val_acc > self.best.get("val_accuracy", -1.0):
            self.best.update(val_accuracy=float(val_acc), epoch=done)
            save_atomic(self.model, store.run_dir(self.run_id) / f"best-{self.kind}.keras")
        logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        logs["seconds"] = time.time() - self.started
        store.record_epoch(self.run_id, done, self.phase, logs)
        store.log(self.run_id, f"epoch {done} [{self.phase}] " + " ".join(
            f"{k}={logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs)
            + f" ({logs['seconds']:.1f}s)")
        for old in store.run_dir(self.run_id).glob("ckpt-*.keras"):
            if int(old.name.split("-")[1]) < done:
                old.unlink(missing_ok=True)


class ProgressReporter(keras.callbacks.Callback):
    """Batch progress of a predict loop (feature extraction), and stop requests."""

    def __init__(self, run_id: str, stage: str, total: int):
        super().__init__()
        self.run_id, self.stage, self.total = run_id, stage, total
        self.throttle = _Throttled(run_id)
        self.started = time.time()

    def report(self, done: int) -> None:
        if self.throttle.due() or done == self.total:
            store.update_run(self.run_id, progress={"stage": self.stage, "done": done, "total": self.total,
                                                    "started": self.started, "time": time.time()})
            self.throttle.check_stop()
