"""The augmentation engines training can use, in one place: ImageDataGenerator's transform or Keras's layers.

A run's `augment_engine` (`core.data.augment_presets.ENGINES`) picks one; `augmenter(cfg, engine)` returns a callable
mapping a float32 batch (N, H, W, 3, 0-255) and one seed per image to the augmented batch, which
`core.data.pipeline.ImageBatches` calls for every training batch (and so the frozen-pass feature extraction with
augmentation, which reads those batches). Both engines are built from the same `AugmentConfig`:

* "image_data_generator": `core.data.augment_transform.augment_batch`, each image with its own seed (the lecture's).
* "keras_layers": `keras_layers(cfg)`, the keras.Sequential that the Augmentation page's export writes
  (`core.data.augment_export.to_keras_layers_code`, executed here: RandomRotation with the degrees as a
  fraction of a turn, RandomTranslation, RandomShear, RandomZoom, RandomFlip("horizontal"), fill_mode
  "nearest" as ImageDataGenerator's...), without its Rescaling, computing in float32 whatever the run's
  precision. The layers draw for a whole batch, so a batch is seeded with the seed of its first image
  (`seed_layers`): a resumed run sees the same batches, and the first image of a batch gets what a batch of
  that image alone gets with that seed, which is what the preview (`core.data.layer_preview`) shows.
"""
from __future__ import annotations

import threading
from typing import Callable, Sequence

import keras
import numpy as np

from core.data.augment_config import AugmentConfig
from core.data.augment_presets import ENGINES
from core.data.augment_transform import augment_batch
from core.data.augment_export import to_keras_layers_code

Augmenter = Callable[[np.ndarray, Sequence[int]], np.ndarray]


def keras_layers(cfg: AugmentConfig) -> keras.Sequential:
    """The exported keras.Sequential of preprocessing layers for `cfg`, without its Rescaling, in float32.

    The one builder of the layers: training with the "keras_layers" engine and the preview both call it."""
    code, _ = to_keras_layers_code(cfg)
    scope: dict = {}
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # pixels stay exact under a bfloat16 run's policy
    try:
        exec(compile(code, "<keras layers export>", "exec"), scope)  # our own generated code, nothing from outside
    finally:
        keras.mixed_precision.set_global_policy(policy)
    model = scope["data_augmentation"]
    return keras.Sequential([layer for layer in model.layers if not isinstance(layer, keras.layers.Rescaling)],
                            name="data_augmentation")


def seed_layers(model: keras.Sequential, seed: int) -> None:
    """Set every random layer's generator from `seed` (each layer its own stream), so the next call draws the
    same transforms for the same seed."""
    for i, layer in enumerate(model.layers):
        generators = [getattr(layer, "generator", None), *getattr(layer, "_backend_generators", {}).values()]
        start = int(np.random.SeedSequence([int(seed), i]).generate_state(1, dtype=np.uint32)[0] >> 1)
        for generator in filter(None, generators):
            generator.state.assign(np.array([start, 0], dtype=generator.state.dtype))


class LayersAugmenter:
    """Keras preprocessing layers as an engine: `(batch, seeds) -> batch`, the batch seeded by `seeds[0]`.

    `compiled` runs the layers as one tf.function (training: faster than eager, `scripts/bench_augment_engines.py`
    prints both; the same draws, pixels equal to float rounding); the preview runs them eagerly (no tracing for
    a configuration it shows once)."""

    def __init__(self, cfg: AugmentConfig, compiled: bool = False):
        self.model = keras_layers(cfg)
        self._lock = threading.Lock()  # the generators' state is shared: one batch at a time
        self._call = lambda x: self.model(x, training=True)
        if compiled and self.model.layers:
            import tensorflow as tf
            self._call = tf.function(self._call, reduce_retracing=True)

    def __call__(self, images: np.ndarray, seeds: Sequence[int]) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if not self.model.layers or not len(images):
            return images
        with self._lock:
            seed_layers(self.model, int(seeds[0]))
            return keras.ops.convert_to_numpy(self._call(images)).astype(np.float32)


def augmenter(cfg: AugmentConfig, engine: str = "image_data_generator") -> Augmenter:
    """The engine `engine` applying `cfg`: a callable (float32 batch 0-255, one seed per image) -> batch."""
    if engine == "keras_layers":
        return LayersAugmenter(cfg, compiled=True)
    if engine == "image_data_generator":
        return lambda images, seeds: augment_batch(images, cfg, seeds)
    raise ValueError(f"Unknown augmentation engine {engine!r}: choose one of {', '.join(ENGINES)}.")
