"""A run's training phases in the worker: build or resume, compile, fit; then save the last and best models.

`Job` trains the data of its `core.runs.job_data.JobData` with Keras `fit` (with `RunRecorder`,
`TensorBoard`). The small CNN trains in one phase (`run_scratch`). A pretrained base trains in the phases
of keras-io's transfer-learning guide: `phase_head` (freeze the base, compile, fit a new classifier), then,
to fine-tune, `phase_fine_tune` (unfreeze the top of the base, recompile with a low rate, fit again); each
phase is "build or resume, compile, fit", with resuming behind `resume_or_build`. Discriminative rates and
gradual unfreezing fit phase 2 in segments, one per trainable set (`core.models.unfreezing`,
`core.models.discriminative`); each epoch records what trained at which rate. A checkpoint is written after
every epoch, so a stop or a crash keeps every finished epoch and `resume` continues (within phase 2, in the
segment of its next epoch). `finalise` saves complete raw-pixel classifiers, whatever kind trained.
"""
from __future__ import annotations

import keras
import numpy as np

from core.models import networks, unfreezing
from core.runs import artifacts, store
from core.runs.callbacks import CheckpointError, RunRecorder, latest_checkpoint, save_atomic
from core.runs.job_data import JobData


class Job(JobData):
    """One run's training: its phases on the data of `JobData`, and the models they leave."""

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
        point = self.spec.resolved_freeze_from
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


def count(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))
