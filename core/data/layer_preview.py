"""The same picture through Keras 3's preprocessing layers, beside ImageDataGenerator's transform.

`layer_copies` runs the very code `core.data.augment_export.to_keras_layers_code` exports (executed here, so the
preview shows what a user's copy of that code does) on one image, training=True, seeded, without its final
Rescaling (the pictures stay 0-255); `differences` names where the two disagree (the exporter's notes). The
ImageDataGenerator side is `core.data.preview.augmented_copies`, the transform training uses.
"""
from __future__ import annotations

import keras
import numpy as np

from core.data.augment import AugmentConfig
from core.data.augment_export import to_keras_layers_code


def pipeline(cfg: AugmentConfig, seed: int) -> keras.Sequential:
    """The exported keras.Sequential of preprocessing layers, without its Rescaling, its random draws seeded."""
    code, _ = to_keras_layers_code(cfg)
    keras.utils.set_random_seed(int(seed))
    scope: dict = {}
    exec(compile(code, "<keras layers export>", "exec"), scope)  # our own generated code, nothing from outside
    model = scope["data_augmentation"]
    return keras.Sequential([layer for layer in model.layers if not isinstance(layer, keras.layers.Rescaling)])


def layer_copies(image: np.ndarray, cfg: AugmentConfig, seed: int, n: int) -> list[np.ndarray]:
    """`n` augmented copies of `image` (H, W, 3 uint8) through the layers, as uint8."""
    model = pipeline(cfg, seed)
    batch = np.repeat(np.asarray(image, dtype=np.float32)[None], n, axis=0)
    if not model.layers:
        return [np.asarray(image, dtype=np.uint8)] * n
    out = keras.ops.convert_to_numpy(model(batch, training=True))
    return [np.clip(np.rint(x), 0, 255).astype(np.uint8) for x in out]


def differences(cfg: AugmentConfig) -> list[str]:
    """Sentences naming where the layers differ from ImageDataGenerator for `cfg`."""
    return to_keras_layers_code(cfg)[1]
