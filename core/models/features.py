"""Feature extraction: run a frozen conv base once over decoded images and cache its outputs on disk.

The cache key holds everything that determines the features: the images' content and size, the
backbone, the weights (file content hash, "imagenet", or random with its seed), the preprocessing
and the precision. A second run on unchanged data reads the features back instead of recomputing.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from core.runs import store
from core.data.pipeline import _atomic_npy


def weights_identity(weights: str, seed: int) -> str:
    if weights == "imagenet":
        return "imagenet"
    if weights == "none":
        return f"random-seed{seed}"
    h = hashlib.sha1()
    with open(weights, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "file-" + h.hexdigest()[:16]


def extractor(base: keras.Model, preprocess: str) -> keras.Model:
    from core.models.networks import BackbonePreprocess
    inputs = keras.Input(base.input_shape[1:], name="image")
    return keras.Model(inputs, base(BackbonePreprocess(preprocess, name="preprocess")(inputs)))


def extract(model: keras.Model, images: np.ndarray, key: str, batch_size: int = 32,
            progress: Callable[[int], None] | None = None,
            forward: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Features of `images` (uint8 N,H,W,3) through `model`, cached under `key`, as a float32 memory map.

    `forward` (a `core.models.inference.FrozenPass` of `model`) computes them on the inference engine; by
    default `model.predict_on_batch` does."""
    path = store.home() / "cache" / "features" / f"{key}.npy"
    if path.exists():
        try:
            return np.load(path, mmap_mode="r")
        except (ValueError, OSError):
            path.unlink(missing_ok=True)
    shape = (len(images), *model.output_shape[1:])
    if forward is None:
        def forward(batch):
            return keras.ops.convert_to_numpy(model.predict_on_batch(batch))

    def fill(arr):
        for start in range(0, len(images), batch_size):
            batch = np.asarray(images[start:start + batch_size], dtype=np.float32)
            arr[start:start + len(batch)] = forward(batch)
            if progress:
                progress(start + len(batch))
    return _atomic_npy(path, shape, np.float32, fill)


def is_cached(key: str) -> bool:
    return (store.home() / "cache" / "features" / f"{key}.npy").exists()


def feature_key(images_key: str, backbone: str, weights_id: str, layer: str, image_size: int,
                preprocess: str, precision: str) -> str:
    raw = repr((images_key, backbone, weights_id, layer, image_size, preprocess, precision))
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


def cached_feature_files() -> list[Path]:
    return sorted((store.home() / "cache" / "features").glob("*.npy"))
