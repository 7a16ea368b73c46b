"""The training worker: runs one stored run's recipe in this process, resuming from its last epoch.

Started by `core.runs.runner` as `python -m core worker RUN_ID --lease N` in its own process. Every
recipe is a Keras `fit` (with `RunRecorder`, `TensorBoard`), fed by `core.data.pipeline` from the split
the run recorded at its first start (`core.data.manifest`, never rewritten); what is frozen only runs
forward (`core.models.inference`): without augmentation the head, or the unfrozen top, trains on outputs
cached by `core.models.features`, with augmentation on each epoch's augmented batches passed through the
frozen layers. A pretrained base
trains in the phases of keras-io's transfer-learning guide: `phase_head` (freeze the base, compile, fit
a new classifier), then, to fine-tune, `phase_fine_tune` (unfreeze the top of the base, recompile with a
low rate, fit again); each phase is "build or resume, compile, fit", with resuming behind
`resume_or_build`. Discriminative rates and gradual unfreezing fit phase 2 in segments, one per trainable set
(`core.models.unfreezing`, `core.models.discriminative`); each epoch records what trained at which rate.
A checkpoint is written after every epoch, so a stop or a crash keeps every finished epoch and `resume`
continues (within phase 2, in the segment of its next epoch). Every write goes through the worker's lease (`core.runs.lease`): a worker
whose run was taken over stops without writing.
"""
from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

import keras
import numpy as np

from core.config import BACKBONES, RunSpec
from core.data import demo, manifest
from core.data.folders import DataError, scan
from core.data.pipeline import ImageBatches, decoded_images
from core.models import environment, features, inference, networks, precision, unfreezing
from core.runs import artifacts, lease as leases, runcard, store
from core.runs.callbacks import (CheckpointError, ProgressReporter, RunRecorder, StopRequested, latest_checkpoint,
                                 save_atomic)
from core.runs.lease import Lease, LeaseLost


def data_root(spec: RunSpec) -> str:
    """The run's data folder made absolute (a relative one against the current folder), or the demo data."""
    return str(Path(spec.data).expanduser().resolve()) if spec.data else str(demo.demo_dataset_path(store.home()))


class Job:
    """One run's state while it trains: its spec, data, lease, and where it stands."""

    def __init__(self, run_id: str, lease: Lease):
        self.run_id, self.lease = run_id, lease
        self.run = store.get_run(run_id)
        self.spec = RunSpec.from_dict(self.run["spec"])
        self.done = self.run["epochs_done"]
        self.best = {"val_accuracy": max([e["val_accuracy"] or 0 for e in store.epochs(run_id)], default=-1.0)}
        self.preprocess = BACKBONES[self.spec.backbone].preprocess

    # -- data ----------------------------------------------------------------------------------
    def load_data(self) -> None:
        """Decode the recorded training and validation images (those still there) for training."""
        record, changes = self.recorded_split()
        self.classes = list(record["classes"])
        self.arrays, counts = {}, {}
        for split in record["splits"]:
            entries = [e for e in manifest.entries(record, split)[0]
                       if e.state() == "present" and e.label < len(self.classes)]
            counts[split] = {c: sum(1 for e in entries if e.label == i) for i, c in enumerate(self.classes)}
            if split not in ("train", "validation"):
                continue
            if not entries:
                raise DataError(f"None of the recorded {split} images of run {self.run_id} exist any more "
                                f"(in {record.get('root')}): put the data folder back where it was, or start a new "
                                f"run on the data as it is now.")
            labels = np.array([e.label for e in entries], dtype=np.int64)
            images, key = decoded_images([e.path for e in entries], self.spec.image_size, self._decode_progress(split))
            self.arrays[split] = (images, labels, key)
        self.lease.update(info={"classes": self.classes, "counts": counts, "presplit": record.get("presplit"),
                                "data_root": record.get("root"), "skipped": len(record.get("skipped") or []),
                                "split_record": record.get("version", 1),
                                "left_out": sum(map(len, [*changes.missing.values(), *changes.changed.values()])),
                                "new_files": changes.new})
        self.lease.log("data: " + ", ".join(f"{s} {sum(c.values())}" for s, c in counts.items())
                       + f" images, classes {self.classes}")

    def recorded_split(self) -> tuple[dict, manifest.Check]:
        """(the split recorded at the run's first start, what changed in its folder since: logged); at the
        first start, the folder is scanned and split, and its record written."""
        path = artifacts.split_manifest(self.run_id)
        record = manifest.read(path)
        if record is not None:
            changes = manifest.check(record)
            self.lease.log(f"split as recorded at the run's first start ({path.name})")
            for message in changes.messages():
                self.lease.log(message)
            return record, changes
        if path.exists():
            raise DataError(f"Run {self.run_id}'s recorded split {path} cannot be read: restore the file, or start "
                            f"a new run on the same data.")
        spec = self.spec
        ds = scan(data_root(spec), spec.val_fraction, spec.test_fraction, spec.seed)
        if ds.skipped:
            self.lease.log(f"{len(ds.skipped)} files skipped while scanning "
                           f"(first: {ds.skipped[0]['path']}: {ds.skipped[0]['reason']})")
        record = manifest.build(ds, exclude=spec.exclude)
        if record["excluded"]:
            self.lease.log(f"{len(record['excluded'])} images left out as the run's exclude list asks")
        if not manifest.write_once(path, record, self.lease.check):
            return self.recorded_split()
        self.lease.log(f"split recorded in {path.name}: " + ", ".join(f"{s} {len(v)}" for s, v in
                                                                      record["splits"].items()) + " images")
        return record, manifest.Check({}, {}, 0)

    def _decode_progress(self, split):
        def report(done, total):
            self.lease.progress(stage=f"decoding {split} images", done=done, total=total, time=time.time())
        return report

    def batches(self, split: str, augment: bool) -> ImageBatches:
        images, labels, _ = self.arrays[split]
        train = split == "train"
        return ImageBatches(images, labels, self.spec.batch_size, shuffle=train,
                            augment=self.spec.augment if (train and augment) else None,
                            seed=self.spec.seed, epoch=self.done if train else 0, engine=self.spec.augment_engine)

    # -- fitting ---------------------------------------------------------------------------------
    def resume_or_build(self, build, kinds: tuple[str, ...] = ("full",), after: int = 0, what: str = ""):
        """(model, kind): the checkpoint after `self.done` epochs when it is of one of `kinds` and was written
        after epoch `after` (within the current phase), else `build()`, which returns (model, kind), compiled
        except in phase 2 (its segments compile)."""
        found = latest_checkpoint(self.run_id, self.done) if self.done > after else None
        if found and found[1] in kinds:
            self.lease.log(f"resuming {what}from {found[0].name}")
            return keras.models.load_model(found[0], safe_mode=True), found[1]
        return build()

    def fit(self, model, phase: str, kind: str, end_epoch: int, train, val, trains: dict | None = None,
            **fit_kwargs) -> None:
        if self.done >= end_epoch:
            return
        steps = len(train) if hasattr(train, "__len__") else int(np.ceil(len(train[1]) / self.spec.batch_size))
        callbacks = [RunRecorder(self.lease, phase, kind, self.best, steps, trains),
                     keras.callbacks.TensorBoard(str(artifacts.tensorboard(self.run_id)), write_graph=False,
                                                 profile_batch=0)]
        self.lease.log(f"phase {phase}: epochs {self.done + 1}-{end_epoch}, "
                       f"{count(model.trainable_weights):,} trainable parameters")
        if self.spec.class_weight == "balanced":
            fit_kwargs.setdefault("class_weight", self.class_weights())
        if isinstance(train, tuple):
            model.fit(train[0], train[1], validation_data=val, batch_size=self.spec.batch_size, epochs=end_epoch,
                      initial_epoch=self.done, callbacks=callbacks, verbose=0, shuffle=True, **fit_kwargs)
        else:
            model.fit(train, validation_data=val, epochs=end_epoch, initial_epoch=self.done,
                      callbacks=callbacks, verbose=0, **fit_kwargs)
        self.done = end_epoch

    def class_weights(self) -> dict[int, float]:
        """Balanced class weights of the training split: n / (classes x count of the class)."""
        labels = self.arrays["train"][1]
        counts = np.bincount(labels, minlength=len(self.classes))
        weights = {i: float(len(labels) / (len(self.classes) * c)) for i, c in enumerate(counts) if c}
        self.lease.log("class weights: " + ", ".join(f"{self.classes[i]} {w:.3f}" for i, w in weights.items()))
        return weights

    # -- recipes -------------------------------------------------------------------------------
    def run_scratch(self) -> None:
        """The small CNN: build or resume, compile, fit."""
        spec, n = self.spec, len(self.classes)

        def build():
            model = networks.build_scratch(spec, n)
            networks.compile_model(model, spec.lr, n)
            return model, "full"
        model, kind = self.resume_or_build(build)
        self.fit(model, "train", kind, spec.epochs, self.batches("train", spec.augmenting),
                 self.batches("validation", False))
        self.finalise(model)

    def run_backbone(self) -> None:
        """A pretrained base: a classifier on the frozen base, then (fine-tuning) the unfrozen top of the base."""
        base = self.frozen_base()
        model = self.phase_head(base)
        if self.spec.fine_tunes and self.spec.fine_tune_epochs:
            model = self.phase_fine_tune(base, model)
        self.finalise(model)

    def phase_head(self, base):
        """Phase 1, "freeze, compile, fit": a new classifier on the frozen base.

        The base runs once over the validation images, and over the training images when not augmenting;
        augmenting, every epoch's augmented training batches go through the frozen pass (the lecture's
        end-to-end model with a frozen base computes the same). Returns the complete classifier, or None when
        the run is already past this phase."""
        spec, n = self.spec, len(self.classes)
        if self.done > spec.epochs:
            return None
        if spec.augmenting and self.resumes_full_model():  # a run started before the head trained on passes
            model, kind = self.resume_or_build(None, ("full",))
            self.fit(model, "head", kind, spec.epochs, self.batches("train", True), self.batches("validation", False))
            return model

        def build_head():
            head = self.new_head(base)
            networks.compile_model(head, spec.lr, n)
            return head, "head"
        head, kind = self.resume_or_build(build_head, ("head",))
        train, val = self.frozen_inputs(base)
        self.fit(head, "head", kind, spec.epochs, train, val)
        return networks.full_model(base, head, self.preprocess)

    def phase_fine_tune(self, base, model):
        """Phase 2, "unfreeze, recompile with a low rate, fit": the top of the base with the classifier.

        Where the base is a chain at the freeze point only the unfrozen top trains, in Keras, on outputs of the
        frozen bottom (kind "top"): cached once without augmentation; augmenting, every epoch's augmented
        batches go through the bottom's frozen pass (the engine's precision, logged), which computes what the
        lecture's model computes below the freeze point (its BatchNorm layers run in inference mode anyway).
        With gradual unfreezing the phase is fitted in segments, one per trainable set, recompiled at each
        (`core.models.unfreezing`); a resumed run starts in the segment of its next epoch. Returns the complete
        classifier."""
        spec, point = self.spec, self.spec.resolved_freeze_from
        built = []  # empty when a phase-2 checkpoint was resumed (it comes compiled, with its optimizer's state)

        def build():
            built.append(True)
            return self.unfreeze(model if model is not None else self.model_from_checkpoint(), base.name)
        trained, kind = self.resume_or_build(build, ("full", "top"), after=spec.epochs, what="fine-tuning ")
        if kind == "top":
            train, val = self.frozen_inputs(self.frozen_bottom(point), cut=point)
        else:
            train, val = self.batches("train", spec.augmenting), self.batches("validation", False)
        names, compiled = networks.layer_names(base), not built
        for segment in unfreezing.segments(names, point, spec.fine_tune_lr, spec.lr_block_ratio, spec.unfreeze_every,
                                           spec.epochs, spec.fine_tune_epochs):
            if self.done >= segment.last:
                continue
            self.train_segment(trained, names, segment, compiled)
            self.fit(trained, "fine_tune", kind, segment.last, train, val, trains=segment.trains(spec.fine_tune_lr))
            compiled = True
        return self.assemble(trained, kind)

    def train_segment(self, trained, names: list[str], segment: unfreezing.Segment, compiled: bool) -> None:
        """Make `segment`'s blocks (and the head) the trainable set, and recompile with their rates, unless the
        model is `compiled` for phase 2 and already trains exactly that with those rates (so a checkpoint resumed
        mid-segment keeps its optimizer's state, as an uninterrupted run does)."""
        spec, point = self.spec, self.spec.resolved_freeze_from
        part = networks.base_part(trained)
        wanted = unfreezing.trainable_layers(names, point, segment.blocks)
        factors = unfreezing.layer_factors(names, point, spec.lr_block_ratio)
        before = networks.trainable_names(part)
        networks.train_only(part, wanted)
        optimizer = getattr(trained, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        same = (compiled and networks.trainable_names(part) == before
                and getattr(optimizer, "layer_factors", None) == (factors if spec.lr_block_ratio != 1 else None))
        if not same:
            networks.compile_model(trained, spec.fine_tune_lr, len(self.classes), factors)
        self.lease.log(f"fine-tuning epochs {max(segment.first, self.done + 1)}-{segment.last}: training "
                       f"{segment.describe(spec.fine_tune_lr)}" + ("" if same else " (recompiled)"))

    # -- the pieces the phases use ------------------------------------------------------------
    def frozen_base(self):
        spec = self.spec
        base = networks.conv_base(spec.backbone, spec.weights, spec.image_size, spec.seed)
        base.trainable = False
        return base

    def new_head(self, base):
        spec = self.spec
        return networks.head(base.output_shape[1:], len(self.classes), spec.resolved_head, spec.dropout)

    def unfreeze(self, model, base_name: str):
        """(model, kind) to fine-tune: `model`'s base trainable from the freeze point on, not compiled (each
        segment of phase 2 compiles it); kind "top" (the top of the base and the head, on the frozen bottom's
        outputs) where the base is a chain at the freeze point."""
        spec, point = self.spec, self.spec.resolved_freeze_from
        inner, head = model.get_layer(base_name), model.get_layer("head")
        networks.freeze_from(inner, point)
        split = networks.split_at(inner, point)
        if split is None:
            trained, kind = model, "full"
        else:  # the frozen bottom runs forward only, outside the trained model
            _, top = split
            inputs = keras.Input(top.input_shape[1:], name="cut_features")
            trained, kind = keras.Model(inputs, head(top(inputs)), name="top_and_head"), "top"
        return trained, kind

    def frozen_bottom(self, point: str):
        """A fresh base's frozen bottom, below layer `point` (its output is cached for the "top" kind)."""
        spec = self.spec
        fresh = networks.conv_base(spec.backbone, spec.weights, spec.image_size, spec.seed)
        networks.freeze_from(fresh, point)
        bottom, _ = networks.split_at(fresh, point)
        return bottom

    def frozen_inputs(self, base, cut: str | None = None):
        """(training inputs, (validation features, labels)) for what trains on the frozen `base`'s outputs (or its
        bottom's, below `cut`): without augmentation (train features, labels) from the feature cache; augmenting,
        every epoch's augmented batches through the frozen pass. Validation features are always cached."""
        if self.spec.augmenting:
            what = "the augmented training batches " + (f"below {cut}" if cut else "through the base")
            forward = self.frozen_forward(features.extractor(base, self.preprocess),
                                          self.feature_key(base, "train", cut), what, cut)
            train = inference.feature_batches(self.batches("train", True), forward)
        else:
            train = (self.features(base, self.preprocess, "train", cut), self.arrays["train"][1])
        return train, (self.features(base, self.preprocess, "validation", cut), self.arrays["validation"][1])

    def model_from_checkpoint(self):
        """The complete classifier from the checkpoint after `self.done` epochs."""
        found = latest_checkpoint(self.run_id, self.done)
        if found is None:
            raise CheckpointError(f"Run {self.run_id} has {self.done} finished epochs but no checkpoint of epoch "
                                  f"{self.done} in {artifacts.folder(self.run_id)}: start a new run.")
        return self.assemble(keras.models.load_model(found[0], safe_mode=True), found[1])

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
            for layer in networks.base_part(model).layers:
                if layer.weights:
                    base.get_layer(layer.name).set_weights(layer.get_weights())
        return networks.full_model(base, head_model, self.preprocess)

    def feature_key(self, base, split: str, cut: str | None = None) -> str:
        """The content key of `base`'s outputs on `split` (or of its bottom, below `cut`), in this run's precision."""
        images_key, spec = self.arrays[split if split in self.arrays else "train"][2], self.spec
        layer = f"input of {cut}" if cut else base.layers[-1].name
        return features.feature_key(images_key, spec.backbone, features.weights_identity(spec.weights, spec.seed),
                                    layer, spec.image_size, self.preprocess,
                                    f"{self.run['precision_used']}/{self.pass_precision(cut)}")

    def pass_precision(self, cut: str | None = None) -> str:
        """The precision of the frozen base's passes (or its bottom's, below `cut`) for the run's choice, given the
        images that model passes in the whole run: the validation split once, the training split once or,
        augmenting, every epoch of its phase (the head's epochs for the base, fine-tuning's for the bottom)."""
        spec = self.spec
        epochs = (spec.fine_tune_epochs if cut else spec.epochs) if spec.augmenting else 1
        images = len(self.arrays["train"][0]) * epochs + len(self.arrays["validation"][0])
        return precision.frozen_pass(spec.precision, images)

    def frozen_forward(self, model, key: str, what: str, cut: str | None = None) -> inference.FrozenPass:
        """`model`'s forward pass (the frozen base, or its bottom below `cut`) in the run's frozen-pass precision
        (int8 calibrated on its training images), logged as the pass of `what` with its engine and precision."""
        images = self.arrays["train"][0]
        calibration = images[::max(1, len(images) // inference.CALIBRATION_IMAGES)][:inference.CALIBRATION_IMAGES]
        forward = inference.frozen_pass(model, key, self.pass_precision(cut), calibration, log=self.lease.log)
        self.lease.log(f"frozen pass of {what}: {forward.describe()}")
        return forward

    def features(self, base, pre: str, split: str, cut: str | None = None) -> np.ndarray:
        """Cached outputs of the frozen `base` (or of its bottom, up to the input of layer `cut`)."""
        images = self.arrays[split][0]
        key = self.feature_key(base, split, cut)
        reporter = ProgressReporter(self.lease, f"extracting {split} features" + (f" (below {cut})" if cut else ""),
                                    len(images))
        t0 = time.time()
        model = features.extractor(base, pre)
        forward = None if features.is_cached(key) else self.frozen_forward(
            model, self.feature_key(base, "train", cut), f"the {split} images" + (f" below {cut}" if cut else ""), cut)
        out = features.extract(model, images, key, progress=reporter.report, forward=forward)
        self.lease.log(f"{split} features {tuple(out.shape)}" + (f" below {cut}" if cut else "")
                       + f" in {time.time() - t0:.1f}s")
        return out

    def resumes_full_model(self) -> bool:
        found = latest_checkpoint(self.run_id, self.done) if self.done > 0 else None
        return bool(found and found[1] == "full")

    def finalise(self, model) -> None:
        """Save the last and best models as complete raw-pixel classifiers (the best as a copy of the last when
        this process trained the last epoch and it was the best)."""
        trained_last = model is not None
        if model is None:  # stopped, or resumed after the last epoch: build from the latest checkpoint
            found = latest_checkpoint(self.run_id, store.get_run(self.run_id)["epochs_done"])
            if found is None:
                return
            model = self.assemble(keras.models.load_model(found[0], safe_mode=True), found[1])
        last = artifacts.model(self.run_id, "last")
        save_atomic(model, last, self.lease)
        bests = artifacts.bests_of_kind(self.run_id)
        if bests and trained_last and self.best.get("epoch") == store.get_run(self.run_id)["epochs_done"]:
            save_atomic(last, artifacts.model(self.run_id, "best"), self.lease)  # the last epoch is the best
        elif bests:  # the newest best-<kind> file holds the best epoch so far
            path, kind = bests[-1]
            best = keras.models.load_model(path, safe_mode=True)
            save_atomic(self.assemble(best, kind), artifacts.model(self.run_id, "best"), self.lease)
        self.lease.log(f"saved {artifacts.model_name('last')} and {artifacts.model_name('best')} (best val_accuracy "
                       f"{self.best.get('val_accuracy', float('nan')):.4f})")


def distribution_strategy(lease: Lease):
    """MirroredStrategy (data parallel, one replica per GPU) when several GPUs are present, else the default."""
    import tensorflow as tf
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        lease.log(f"{len(gpus)} GPUs: training with tf.distribute.MirroredStrategy")
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def count(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def run_worker(run_id: str, held: Lease | None = None) -> str:
    """Train run `run_id` to the end; returns its final status, or "fenced" when its lease was taken over
    (from then on nothing was written). Never raises for training errors.

    `held` is the lease a worker process took before loading TensorFlow, its heartbeat already beating;
    without it, the lease is claimed here and the heartbeat kept for the duration of the call."""
    beating = None
    if held is None:
        held = leases.claim(run_id)
        beating = leases.keep_alive(held)
    try:
        return _train(run_id, held)
    except LeaseLost:
        return "fenced"
    finally:
        if beating is not None:
            beating.set()


def score_heldout(run_id: str, lease: Lease) -> None:
    """Score a finished assignment run on the assignment's held-out images and store it, so the leaderboard only
    reads; a failure is logged (the run stays finished, `python -m core leaderboard` scores it later)."""
    from core.analysis import leaderboard
    lease.progress(stage="scoring on the assignment's held-out images", time=time.time())
    started = time.time()
    try:
        result = leaderboard.score_run(run_id, holding=lease.token)
    except LeaseLost:
        raise
    except Exception as exc:  # noqa: BLE001 - the training itself succeeded: keep it, say why there is no score
        lease.log(f"held-out scoring failed ({type(exc).__name__}: {exc}); `python -m core leaderboard` scores the "
                  f"run later")
        return
    lease.log(f"held-out score: accuracy {result['accuracy']:.4f} on {result['n']} images "
              f"({time.time() - started:.1f} s)")


def _train(run_id: str, lease: Lease) -> str:
    status, error, job = "finished", None, None
    try:
        job = Job(run_id, lease)
        policy = precision.apply(job.spec.precision)
        runcard.determinism(job.spec.seed, job.spec.deterministic)
        lease.update(precision_used=policy,
                     weights_used=environment.describe_weights(job.spec.weights) if job.spec.uses_backbone else
                     "random initialisation (trained from scratch)")
        job.run["precision_used"] = policy
        lease.log(f"worker pid {os.getpid()}, precision {policy}, starting at epoch {job.done}")
        job.load_data()
        runcard.write(run_id, runcard.build(run_id, job.spec, policy), lease)
        with distribution_strategy(lease).scope():
            if job.spec.uses_backbone:
                job.run_backbone()
            else:
                job.run_scratch()
    except LeaseLost:
        raise
    except StopRequested:
        status = "stopped"
        job.finalise(None)
    except (DataError, networks.WeightsError, ValueError, CheckpointError) as exc:
        status, error = "failed", str(exc)
    except OSError as exc:  # disk full or unwritable while caching images or features, a file gone since the scan
        status, error = "failed", (f"Could not read or write {exc.filename or 'a file'} ({exc.strerror or exc}): "
                                   f"free some space or check permissions, then resume the run.")
        lease.log(traceback.format_exc()[-3000:])
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        lease.log(traceback.format_exc()[-3000:])
    if status == "finished" and job.run.get("assignment"):
        score_heldout(run_id, lease)
    lease.set_status(status, error)
    lease.update(stop_requested=0, progress={})
    lease.log(f"run {status}" + (f": {error}" if error else ""))
    return status
