"""Keras callbacks that connect a training run to the run store.

`RunRecorder` writes each finished epoch's checkpoint (atomically), then its metrics, so the store
never claims an epoch whose checkpoint is missing (a failed write raises `CheckpointError`); it reports
batch progress and turns a stop request into `StopRequested` at the next batch. `ProgressReporter` does
the same for predict loops. Every write goes through the worker's `core.runs.lease.Lease`, so a worker
whose run was taken over raises `LeaseLost` instead of writing.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import keras

from core.runs import artifacts, store
from core.runs.lease import Lease
from core.atomic import replacing


class StopRequested(Exception):
    """Raised inside fit/predict when the run's stop flag is set."""


class CheckpointError(RuntimeError):
    """A model file could not be written (disk full, read-only folder); the message names the file."""


def save_atomic(model: keras.Model | Path, path: Path, lease: Lease | None = None) -> None:
    """Write `model` (or copy the model file `model`) to `path` through a temporary file, so `path` is always
    complete or absent.

    With `lease`, the file replaces the old one only while the lease is held (else LeaseLost)."""
    try:
        with replacing(path, suffix=path.suffix) as tmp:
            if isinstance(model, Path):
                shutil.copyfile(model, tmp)
            else:
                model.save(tmp)
            if lease is not None:
                lease.check()
    except OSError as exc:
        raise CheckpointError(f"Could not write {path} ({exc.strerror or exc}): free some space or make "
                              f"{path.parent} writable, then resume the run (its finished epochs are kept).") from exc


def latest_checkpoint(run_id: str, epoch: int) -> tuple[Path, str] | None:
    """The checkpoint written after `epoch` finished epochs, and its kind.

    Kinds: "full" (the whole raw-pixel model), "head" (the classifier on cached base features),
    "top" (the unfrozen top of the base plus the classifier, on cached features of the frozen bottom).
    """
    for kind in artifacts.KINDS:
        path = artifacts.checkpoint(run_id, epoch, kind)
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
    """Checkpoint, record and report one training phase of a run, through the worker's lease."""

    def __init__(self, lease: Lease, phase: str, kind: str, best: dict, steps: int, trains: dict | None = None):
        super().__init__()
        self.lease, self.run_id = lease, lease.run_id
        self.phase, self.kind, self.best, self.steps = phase, kind, best, steps
        self.trains = trains  # fine-tuning: {"head": rate, block: rate, ...}, recorded with each epoch
        self.throttle = _Throttled(self.run_id)

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.throttle.due():
            self.lease.progress(stage="train", phase=self.phase, epoch=self.epoch + 1, batch=batch + 1,
                                batches=self.steps, epoch_started=self.started, time=time.time())
            self.throttle.check_stop()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        done = epoch + 1
        save_atomic(self.model, artifacts.checkpoint(self.run_id, done, self.kind), self.lease)
        val_acc = logs.get("val_accuracy")
        if val_acc is not None and val_acc > self.best.get("val_accuracy", -1.0):
            self.best.update(val_accuracy=float(val_acc), epoch=done)
            save_atomic(self.model, artifacts.best_of_kind(self.run_id, self.kind), self.lease)
        logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        logs["seconds"] = time.time() - self.started
        logs["trains"] = self.trains
        self.lease.record_epoch(done, self.phase, logs)
        self.lease.log(f"epoch {done} [{self.phase}] " + " ".join(
            f"{k}={logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs)
            + f" ({logs['seconds']:.1f}s)")
        for old in artifacts.checkpoints(self.run_id):
            if artifacts.checkpoint_epoch(old) < done:
                old.unlink(missing_ok=True)


class ProgressReporter(keras.callbacks.Callback):
    """Batch progress of a predict loop (feature extraction), and stop requests."""

    def __init__(self, lease: Lease, stage: str, total: int):
        super().__init__()
        self.lease, self.stage, self.total = lease, stage, total
        self.throttle = _Throttled(lease.run_id)
        self.started = time.time()

    def report(self, done: int) -> None:
        if self.throttle.due() or done == self.total:
            self.lease.progress(stage=self.stage, done=done, total=self.total, started=self.started,
                                time=time.time())
            self.throttle.check_stop()
