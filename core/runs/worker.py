"""The training worker: runs one stored run's recipe in this process, resuming from its last epoch.

Started by `core.runs.runner` as `python -m core worker RUN_ID` in its own process. Every recipe is a
Keras `fit` (with `RunRecorder`, `TensorBoard`), fed by `core.data.pipeline`; the frozen-base recipes
without augmentation train their head on features cached by `core.models.features`. A checkpoint is
written after every epoch, so a stop or a crash keeps every finished epoch and `resume` continues.
"""
from __future__ import annotations

import json
import threading
import time
import traceback

import keras
import numpy as np

from core.data import demo
from core.models import environment, features, networks, precision
from core.runs import store
from core.runs.callbacks import CheckpointError, ProgressReporter, RunRecorder, StopRequested, latest_checkpoint, save_atomic
from core.config import BACKBONES, RunSpec
from core.data.folders import DataError, scan
from core.data.pipeline import ImageBatches, decoded_images


def data_root(spec: RunSpec):
    return spec.data or demo.demo_dataset_path(store.home())


class Job:
    """One run's state while it trains: its spec, data, and where it stands."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.run = store.get_run(run_id)
        self.spec = RunSpec.from_dict(self.run["spec"])
        self.dir = store.run_dir(run_id)
        self.done = self.run["epochs_done"]
        self.best = {"val_accuracy": max([e["val_accuracy"] or 0 for e in store.epochs(run_id)], default=-1.0)}

    # -- data ----------------------------------------------------------------------------------
    def load_data(self) -> None:
        spec = self.spec
        ds = scan(data_root(spec), spec.val_fraction, spec.test_fraction, spec.seed)
        self.classes = ds.classes
        split_file = self.dir / "split.json"
        split_file.write_text(json.dumps({"root": str(ds.root), "classes": ds.classes, "splits": ds.splits}))
        if ds.skipped:
            store.log(self.run_id, f"{len(ds.skipped)} files skipped while scanning "
                                   f"(first: {ds.skipped[0]['path']}: {ds.skipped[0]['reason']})")
        self.arrays = {}
        for split in ("train", "validation"):
            paths = [p for p, _ in ds.splits[split]]
            labels = np.array([y for _, y in ds.splits[split]], dtype=np.int64)
            images, key = decoded_images(paths, spec.image_size, self._decode_progress(split))
            self.arrays[split] = (images, labels, key)
        store.update_run(self.run_id, info={"classes": ds.classes, "counts": ds.counts(), "presplit": ds.presplit,
                                            "data_root": str(ds.root), "skipped": len(ds.skipped)})
        store.log(self.run_id, "data: " + ", ".join(f"{s} {len(v)}" for s, v in ds.splits.items())
                  + f" images, classes {ds.classes}")

    def _decode_progress(self, split):
        def report(done, total):
            store.update_run(self.run_id, progress={"stage": f"decoding {split} images", "done": done,
                                                    "total": total, "time": time.time()})
        return report

    def batches(self, split: str, augment: bool) -> ImageBatches:
        images, labels, _ = self.arrays[split]
        train = split == "train"
        return ImageBatches(images, labels, self.spec.batch_size, shuffle=train,
                            augment=self.spec.augment if (train and augment) else None,
                            seed=self.spec.seed, epoch=self.done if train else 0)

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, model, phase: str, kind: str, end_epoch: int, train, val, **fit_kwargs) -> None:
        if self.done >= end_epoch:
            return
        steps = len(train) if hasattr(train, "__len__") else int(np.ceil(len(train[1]) / self.spec.batch_size))
        callbacks = [RunRecorder(self.run_id, phase, kind, self.best, steps),
                     keras.callbacks.TensorBoard(str(self.dir / "tb"), write_graph=False, profile_batch=0)]
        store.log(self.run_id, f"phase {phase}: epochs {self.done + 1}-{end_epoch}, "
                               f"{count(model.trainable_weights):,} trainable parameters")
        if isinstance(train, tuple):
            model.fit(train[0], train[1], validation_data=val, batch_size=self.spec.batch_size, epochs=end_epoch,
                      initial_epoch=self.done, callbacks=callbacks, verbose=0, shuffle=True, **fit_kwargs)
        else:
            model.fit(train, validation_data=val, epochs=end_epoch, initial_epoch=self.done,
                      callbacks=callbacks, verbose=0, **fit_kwargs)
        self.done = end_epoch

    def resume_model(self, build, kind_wanted: str):
        """The checkpoint after `self.done` epochs if there is one (and of the wanted kind), else `build()`."""
        found = latest_checkpoint(self.run_id, self.done) if self.done else None
        if found and found[1] == kind_wanted:
            store.log(self.run_id, f"resuming from {found[0].name}")
            return keras.models.load_model(found[0], safe_mode=True), True
        return build(), False

    # -- recipes -------------------------------------------------------------------------------
    def run_scratch(self) -> None:
        spec = self.spec
        model, loaded = self.resume_model(lambda: networks.build_scratch(spec, len(self.classes)), "full")
        if not loaded:
            networks.compile_model(model, spec.lr, len(self.classes))
        self.fit(model, "train", "full", spec.epochs, self.batches("train", spec.augmenting),
                 self.batches("validation", False))
        self.finalise(model)

    def run_backbone(self) -> None:
        spec, n = self.spec, len(self.classes)
        base = networks.conv_base(spec.backbone, spec.weights, spec.image_size, spec.seed)
        base.trainable = False
        pre = BACKBONES[spec.backbone].preprocess
        pooling = spec.resolved_head

        def new_head():
            return networks.head(base.output_shape[1:], n, pooling, spec.dropout)

        # Phase 1: classifier on the frozen base.
        if spec.augmenting:
            def build_full():
                full = networks.full_model(base, new_head(), pre)
                networks.compile_model(full, spec.lr, n)
                return full
            model, _ = self.resume_model(build_full, "full") if self.done <= spec.epochs else (None, False)
            if model is not None:
                self.fit(model, "head", "full", spec.epochs, self.batches("train", True),
                         self.batches("validation", False))
        else:
            head_model, loaded = self.resume_model(new_head, "head") if self.done <= spec.epochs else (None, False)
            if head_model is not None:
                if not loaded:
                    networks.compile_model(head_model, spec.lr, n)
                feats = {s: self.features(base, pre, s) for s in ("train", "validation")}
                self.fit(head_model, "head", "head", spec.epochs, (feats["train"], self.arrays["train"][1]),
                         (feats["validation"], self.arrays["validation"][1]))
                model = networks.full_model(base, head_model, pre)
            else:
                model = None
        if not spec.fine_tunes or spec.fine_tune_epochs == 0:
            self.finalise(model)
            return

        # Phase 2: unfreeze the top of the base and train on with a low learning rate.
        point = spec.resolved_freeze_from
        found = latest_checkpoint(self.run_id, self.done) if self.done > spec.epochs else None
        if found is None:  # starting phase 2: from phase 1's model (in memory or its checkpoint)
            if model is None:
                ckpt, kind = latest_checkpoint(self.run_id, self.done)
                model = self.assemble(keras.models.load_model(ckpt, safe_mode=True), kind)
            inner, head_model = model.get_layer(base.name), model.get_layer("head")
            networks.freeze_from(inner, point)
            split = None if spec.augmenting else networks.split_at(inner, point)
            if split is None:
                trained, kind = model, "full"
            else:  # no augmentation: the frozen bottom's output is computed once and cached
                bottom, top = split
                inputs = keras.Input(top.input_shape[1:], name="cut_features")
                trained, kind = keras.Model(inputs, head_model(top(inputs)), name="top_and_head"), "top"
            networks.compile_model(trained, spec.fine_tune_lr, n)
        else:
            trained, kind = keras.models.load_model(found[0], safe_mode=True), found[1]
            store.log(self.run_id, f"resuming fine-tuning from {found[0].name}")
        if kind == "top":
            fresh = networks.conv_base(spec.backbone, spec.weights, spec.image_size, spec.seed)
            networks.freeze_from(fresh, point)
            bottom, _ = networks.split_at(fresh, point)
            feats = {s: self.features(bottom, pre, s, cut=point) for s in ("train", "validation")}
            self.fit(trained, "fine_tune", kind, spec.total_epochs, (feats["train"], self.arrays["train"][1]),
                     (feats["validation"], self.arrays["validation"][1]))
        else:
            self.fit(trained, "fine_tune", kind, spec.total_epochs, self.batches("train", spec.augmenting),
                     self.batches("validation", False))
        self.finalise(self.assemble(trained, kind))

    def assemble(self, model, kind: str):
        """The complete raw-pixel classifier for a trained model of `kind` (full, head, or top)."""
        if kind == "full":
            return model
        spec = self.spec
        base = networks.conv_base(spec.backbone, spec.weights, spec.image_size, spec.seed)
        base.trainable = False
        head_model = model if kind == "head" else model.get_layer("head")
        if kind == "top":
            networks.freeze_from(base, spec.resolved_freeze_from)
            top = next(layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name != "head")
            for layer in top.layers:
                if layer.weights:
                    base.get_layer(layer.name).set_weights(layer.get_weights())
        return networks.full_model(base, head_model, BACKBONES[spec.backbone].preprocess)

    def features(self, base, pre: str, split: str, cut: str | None = None) -> np.ndarray:
        """Cached outputs of the frozen `base` (or of its bottom, up to the input of layer `cut`)."""
        images, _, images_key = self.arrays[split]
        spec = self.spec
        layer = f"input of {cut}" if cut else base.layers[-1].name
        key = features.feature_key(images_key, spec.backbone, features.weights_identity(spec.weights, spec.seed),
                                   layer, spec.image_size, pre, self.run["precision_used"])
        reporter = ProgressReporter(self.run_id, f"extracting {split} features" + (f" (below {cut})" if cut else ""),
                                    len(images))
        t0 = time.time()
        out = features.extract(features.extractor(base, pre), images, key, progress=reporter.report)
        store.log(self.run_id, f"{split} features {tuple(out.shape)}" + (f" below {cut}" if cut else "")
                  + f" in {time.time() - t0:.1f}s")
        return out

    def finalise(self, model) -> None:
        """Save the last and best models as complete raw-pixel classifiers."""
        if model is None:  # stopped, or resumed after the last epoch: build from the latest checkpoint
            found = latest_checkpoint(self.run_id, store.get_run(self.run_id)["epochs_done"])
            if found is None:
                return
            model = self.assemble(keras.models.load_model(found[0], safe_mode=True), found[1])
        save_atomic(model, self.dir / "last.keras")
        bests = sorted(self.dir.glob("best-*.keras"), key=lambda p: p.stat().st_mtime)
        if bests:  # the newest best-<kind> file holds the best epoch so far
            kind = bests[-1].stem.split("-", 1)[1]
            best = keras.models.load_model(bests[-1], safe_mode=True)
            save_atomic(self.assemble(best, kind), self.dir / "best.keras")
        store.log(self.run_id, f"saved last.keras and best.keras (best val_accuracy "
                               f"{self.best.get('val_accuracy', float('nan')):.4f})")


def distribution_strategy(run_id: str):
    """MirroredStrategy (data parallel, one replica per GPU) when several GPUs are present, else the default."""
    import tensorflow as tf
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        store.log(run_id, f"{len(gpus)} GPUs: training with tf.distribute.MirroredStrategy")
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def count(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def _heartbeat(run_id: str, stop: threading.Event) -> None:
    while not stop.wait(5.0):
        try:
            store.update_run(run_id, heartbeat=time.time())
        except Exception:
            pass


def run_worker(run_id: str) -> str:
    """Train run `run_id` to the end; returns its final status. Never raises for training errors."""
    import os
    stop = threading.Event()
    store.update_run(run_id, pid=os.getpid(), heartbeat=time.time(), started=time.time(), status="running",
                     error=None)
    threading.Thread(target=_heartbeat, args=(run_id, stop), daemon=True).start()
    status, error = "finished", None
    try:
        job = Job(run_id)
        policy = precision.apply(job.spec.precision)
        keras.utils.set_random_seed(job.spec.seed)
        store.update_run(run_id, precision_used=policy,
                         weights_used=environment.describe_weights(job.spec.weights) if job.spec.uses_backbone else
                         "random initialisation (trained from scratch)")
        job.run["precision_used"] = policy
        store.log(run_id, f"worker pid {os.getpid()}, precision {policy}, starting at epoch {job.done}")
        job.load_data()
        with distribution_strategy(run_id).scope():
            if job.spec.uses_backbone:
                job.run_backbone()
            else:
                job.run_scratch()
    except StopRequested:
        status = "stopped"
        job.finalise(None)
    except (DataError, networks.WeightsError, ValueError, CheckpointError) as exc:
        status, error = "failed", str(exc)
    except OSError as exc:  # disk full or unwritable while caching images or features, a file gone since the scan
        status, error = "failed", (f"Could not read or write {exc.filename or 'a file'} ({exc.strerror or exc}): "
                                   f"free some space or check permissions, then resume the run.")
        store.log(run_id, traceback.format_exc()[-3000:])
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        store.log(run_id, traceback.format_exc()[-3000:])
    finally:
        stop.set()
    store.set_status(run_id, status, error)
    store.update_run(run_id, stop_requested=0, progress={})
    store.log(run_id, f"run {status}" + (f": {error}" if error else ""))
    return status
