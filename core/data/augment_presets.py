"""The named augmentation choices a run offers: the presets (configurations with their titles) and the engines.

A preset is an `AugmentConfig` (`core.data.augment_config`) with the values of a book's example, picked by
name (:func:`get_preset` returns a copy that is safe to modify). The engines are what can apply a
configuration in training (`core.data.augmenters` builds them). Imports neither Streamlit nor TensorFlow.
"""

from __future__ import annotations

import dataclasses

from core.data.augment_config import AugmentConfig

__all__ = ["ENGINES", "PRESETS", "PRESET_TITLES", "get_preset"]

# The engines that can apply a configuration in training (a run's `augment_engine`; `core.data.augmenters`):
# the lecture's ImageDataGenerator transform, or Keras 3's preprocessing layers built from the same parameters.
ENGINES: dict[str, str] = {
    "image_data_generator": "ImageDataGenerator (the lecture's)",
    "keras_layers": "Keras preprocessing layers",
}


PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    "lecture": AugmentConfig(
        rotation_range=40.0, width_shift_range=0.2, height_shift_range=0.2,
        shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
        fill_mode="nearest"),
    # 2nd edition: RandomFlip("horizontal"), RandomRotation(0.1) (0.1 of a
    # full turn = 36 degrees), RandomZoom(0.2).  Those layers fill with
    # "reflect" by default, so the preset does too.
    "second_edition": AugmentConfig(
        horizontal_flip=True, rotation_range=36.0, zoom_range=0.2,
        fill_mode="reflect"),
}

PRESET_TITLES: dict[str, str] = {
    "none": "No augmentation",
    "lecture": "Lecture (Deep Learning with Python, 1st ed.): rotate 40°, "
               "shift 0.2, shear 0.2°, zoom 0.2, horizontal flip",
    "second_edition": "Deep Learning with Python, 2nd ed.: horizontal flip, "
                      "rotate 36°, zoom 0.2",
}


def get_preset(name: str) -> AugmentConfig:
    """A fresh copy of ``PRESETS[name]`` (safe to modify)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name])
