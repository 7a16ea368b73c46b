"""The same picture through Keras 3's preprocessing layers, beside ImageDataGenerator's transform.

`layer_copies` runs the layers that training with `augment_engine="keras_layers"` uses
(`core.data.augmenters.keras_layers`: the very code `core.data.augment_export.to_keras_layers_code` exports,
executed, without its final Rescaling, so the pictures stay 0-255) on one image: copy k is drawn with
`image_seed(seed, k, 0)`, what that engine feeds at epoch k for the image at position 0 of a run with this seed,
as the ImageDataGenerator side (`core.data.preview.augmented_copies`) does for its engine. `differences` names
where the two disagree (the exporter's notes).
"""
from __future__ import annotations

import numpy as np

from core.data.augment_config import AugmentConfig
from core.data.augment_seed import image_seed
from core.data.augment_export import to_keras_layers_code
from core.data.augmenters import LayersAugmenter


def layer_copies(image: np.ndarray, cfg: AugmentConfig, seed: int, n: int) -> list[np.ndarray]:
    """`n` augmented copies of `image` (H, W, 3 uint8) through the layers, as uint8."""
    engine = LayersAugmenter(cfg)
    batch = np.asarray(image, dtype=np.float32)[None]
    return [np.clip(np.rint(engine(batch, [image_seed(int(seed), k, 0)])[0]), 0, 255).astype(np.uint8)
            for k in range(n)]


def differences(cfg: AugmentConfig) -> list[str]:
    """Sentences naming where the layers differ from ImageDataGenerator for `cfg`."""
    return to_keras_layers_code(cfg)[1]
