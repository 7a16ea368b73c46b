"""A training run's state and data in the worker: its split, decoded images, batches, and frozen passes.

`JobData` is what a worker's `core.runs.phases.Job` trains on: the split the run recorded at its first start
(`core.data.manifest`, never rewritten; the folder is scanned and split only then), its training and
validation images decoded once (`core.data.pipeline`), the batches each epoch gets, balanced class weights,
and the outputs of what is frozen, which only runs forward (`core.models.inference`): cached once by
`core.models.features` without augmentation, and with augmentation each epoch's augmented batches passed
through the frozen layers, in the frozen-pass precision chosen for the images the whole run passes.
The phases themselves (building, compiling, fitting, resuming) are in `core.runs.phases`.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from core.config import BACKBONES, RunSpec
from core.data import demo, manifest
from core.data.folders import DataError, scan
from core.data.pipeline import ImageBatches, decoded_images
from core.models import features, inference, precision
from core.runs import artifacts, store
from core.runs.callbacks import ProgressReporter
from core.runs.lease import Lease


def data_root(spec: RunSpec) -> str:
    """The run's data folder made absolute (a relative one against the current folder), or the demo data."""
    return str(Path(spec.data).expanduser().resolve()) if spec.data else str(demo.demo_dataset_path(store.home()))


class JobData:
    """One run's state while it trains (its spec, lease, and where it stands) and the data it trains on."""

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

    def class_weights(self) -> dict[int, float]:
        """Balanced class weights of the training split: n / (classes x count of the class)."""
        labels = self.arrays["train"][1]
        counts = np.bincount(labels, minlength=len(self.classes))
        weights = {i: float(len(labels) / (len(self.classes) * c)) for i, c in enumerate(counts) if c}
        self.lease.log("class weights: " + ", ".join(f"{self.classes[i]} {w:.3f}" for i, w in weights.items()))
        return weights

    # -- frozen passes -------------------------------------------------------------------------
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
