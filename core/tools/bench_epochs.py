"""The bench's training-epoch figures, the lecture's model.fit against the engine's: a fine-tuning epoch without
augmentation (the engine trains the unfrozen top on cached features of the frozen bottom), and epochs with the
lecture's augmentation, feature extraction and fine-tuning (the engine passes the augmented batches through its
frozen pass and trains only what is trainable in Keras)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from core.tools.bench_setup import BATCH, CALIBRATION, LECTURE_AUG_IMAGES, SIZE


def fine_tune_epochs(folder: Path, paths: list[str], labels: np.ndarray, weights: str, policy: str,
                     epochs: int = 2) -> dict:
    """Seconds per fine-tuning epoch (from the second on), no augmentation: reference vs engine."""
    import keras
    from tensorflow.keras.preprocessing.image import ImageDataGenerator
    from core.models import features, networks
    from core.data.pipeline import decoded_images

    def head_on(base):
        return networks.head(base.output_shape[1:], 2, "flatten", 0.5)

    keras.mixed_precision.set_global_policy("float32")
    base = networks.conv_base("vgg16", weights, SIZE)
    networks.freeze_from(base, "block5_conv1")
    ref = keras.Sequential([keras.Input((SIZE, SIZE, 3)), base, head_on(base)])
    networks.compile_model(ref, 1e-5, 2)
    gen = ImageDataGenerator(rescale=1 / 255).flow_from_directory(
        folder, target_size=(SIZE, SIZE), batch_size=BATCH, class_mode="binary")
    timer = _EpochTimer.make()
    ref.fit(gen, epochs=epochs, verbose=0, callbacks=[timer])
    reference = timer.times[-1]

    keras.mixed_precision.set_global_policy(policy)
    base = networks.conv_base("vgg16", weights, SIZE)
    networks.freeze_from(base, "block5_conv1")
    bottom, top = networks.split_at(base, "block5_conv1")
    images, key = decoded_images(paths, SIZE)
    t0 = time.perf_counter()
    feats = features.extract(features.extractor(bottom, "caffe"), images, f"bench-bottom-{key}-{policy}")
    extraction = time.perf_counter() - t0
    inputs = keras.Input(top.input_shape[1:])
    engine = keras.Model(inputs, head_on(base)(top(inputs)))
    networks.compile_model(engine, 1e-5, 2)
    timer = _EpochTimer.make()
    engine.fit(feats, labels, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[timer], shuffle=True)
    return {"reference_s_per_epoch": round(reference, 2), "engine_s_per_epoch": round(timer.times[-1], 3),
            "engine_one_off_extraction_s": round(extraction, 2), "images": len(paths)}


class _EpochTimer:
    @staticmethod
    def make():
        import keras

        class EpochTimer(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self.t0)
        return EpochTimer()


def augmented_epochs(folder: Path, paths: list[str], labels: np.ndarray, weights: str, policy: str,
                     epochs: int = 2) -> dict:
    """Seconds of one epoch with the lecture's augmentation, reference vs engine, each frozen pass in the precision
    a lecture-size run (30 or 100 epochs of 2000 images) gets: feature extraction with augmentation (the lecture:
    model.fit of base + head with the base frozen, model building included; the engine: augmented batches
    through the frozen pass, the head trained in Keras on them; decoding, conversion and calibration, which a
    run does once, timed apart) and fine-tuning with augmentation (block5 + head trainable, last epoch: the
    lecture in float32; the engine as runs do, the augmented batches through the frozen bottom's pass and
    block5 + head trained in its policy). `core.tools.whole_process` times small runs from start to end."""
    import keras
    from tensorflow.keras.preprocessing.image import ImageDataGenerator
    from core.data.augment_presets import PRESETS
    from core.data.pipeline import ImageBatches, decoded_images
    from core.models import features, inference, networks, precision
    aug = PRESETS["lecture"]

    def lecture_generator():
        return ImageDataGenerator(rescale=1 / 255, rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                                  shear_range=0.2, zoom_range=0.2, horizontal_flip=True).flow_from_directory(
            folder, target_size=(SIZE, SIZE), batch_size=BATCH, class_mode="binary")

    def lecture_model(point):
        keras.mixed_precision.set_global_policy("float32")
        base = networks.conv_base("vgg16", weights, SIZE)
        networks.freeze_from(base, point)
        model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), base,
                                  networks.head(base.output_shape[1:], 2, "flatten", 0.5)])
        networks.compile_model(model, 2e-5, 2)
        return model

    out = {"images": len(paths)}
    t0 = time.perf_counter()
    lecture_model(None).fit(lecture_generator(), epochs=1, verbose=0)
    out["fe_aug_reference_s"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    keras.mixed_precision.set_global_policy(policy)
    model = features.extractor(networks.conv_base("vgg16", weights, SIZE), "caffe")
    images, key = decoded_images(paths, SIZE)
    forward = inference.frozen_pass(model, f"bench-aug-{key}", precision.frozen_pass("auto", LECTURE_AUG_IMAGES),
                                    images[:CALIBRATION])
    out["fe_aug_engine_setup_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    head = networks.head(model.output_shape[1:], 2, "flatten", 0.5)
    networks.compile_model(head, 2e-5, 2)
    head.fit(inference.feature_batches(ImageBatches(images, labels, BATCH, shuffle=True, augment=aug), forward),
             epochs=1, verbose=0)
    out["fe_aug_engine_s"] = round(time.perf_counter() - t0, 2)

    timer = _EpochTimer.make()
    lecture_model("block5_conv1").fit(lecture_generator(), epochs=epochs, verbose=0, callbacks=[timer])
    out["ft_aug_reference_s_per_epoch"] = round(timer.times[-1], 2)
    keras.mixed_precision.set_global_policy(policy)  # as runs do: the augmented batches through the frozen
    base = networks.conv_base("vgg16", weights, SIZE)  # bottom's pass, block5 + head trained in Keras on them
    networks.freeze_from(base, "block5_conv1")
    bottom, top = networks.split_at(base, "block5_conv1")
    below = inference.frozen_pass(features.extractor(bottom, "caffe"), f"bench-aug-bottom-{key}",
                                  precision.frozen_pass("auto", LECTURE_AUG_IMAGES), images[:CALIBRATION])
    inputs = keras.Input(top.input_shape[1:])
    model = keras.Model(inputs, networks.head(base.output_shape[1:], 2, "flatten", 0.5)(top(inputs)))
    networks.compile_model(model, 1e-5, 2)
    timer = _EpochTimer.make()
    model.fit(inference.feature_batches(ImageBatches(images, labels, BATCH, shuffle=True, augment=aug), below),
              epochs=epochs, verbose=0, callbacks=[timer])
    out["ft_aug_engine_s_per_epoch"] = round(timer.times[-1], 2)
    out["fe_aug_speedup"] = round(out["fe_aug_reference_s"] / out["fe_aug_engine_s"], 2)
    out["ft_aug_speedup"] = round(out["ft_aug_reference_s_per_epoch"] / out["ft_aug_engine_s_per_epoch"], 2)
    out["pass"] = forward.describe()
    return out
