"""Input pipeline: decode a split once into an on-disk image cache, then feed Keras from it.

Decoding JPEGs every epoch is what makes the lecture's pipeline slow on a CPU. Here each split is
decoded once, in parallel, to a uint8 array file keyed by the images' content and the size
(`home()/cache/images/`), and read back as a memory map, so memory does not grow with the data.
`ImageBatches` is a `keras.utils.PyDataset` over that array; when augmenting, it calls the run's augmentation
engine (`core.data.augmenters`: ImageDataGenerator's transform or Keras preprocessing layers) with per-image
seeds, the same engine and seeds the Augmentation page's preview shows.
"""
from __future__ import annotations

import hashlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from core.runs import store
from core.atomic import replacing
from core.data.augment_config import AugmentConfig
from core.data.augment_seed import image_seed
from core.data.augmenters import augmenter
from core.data.folders import load_image
from core.data.manifest import file_digest

DECODER_VERSION = "pil-bilinear-2"  # bump when load_image changes: cached arrays are keyed by it


def content_key(paths: list[str], *extra) -> str:
    """A hash of the files' bytes, their order and `extra` (size, decoder...)."""
    h = hashlib.sha1(repr(extra).encode())
    for path in paths:
        h.update(bytes.fromhex(file_digest(path)))
    return h.hexdigest()[:20]


def _atomic_npy(path: Path, shape, dtype, fill: Callable[[np.ndarray], None]) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        fill(arr)
        arr.flush()
        del arr
    return np.load(path, mmap_mode="r")


def decoded_images(paths: list[str], size: int,
                   progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, str]:
    """((N, size, size, 3) uint8 memory map of the decoded images, its content key); built once, cached."""
    key = content_key(paths, size, DECODER_VERSION)
    path = store.home() / "cache" / "images" / f"{key}.npy"
    if path.exists():
        try:
            return np.load(path, mmap_mode="r"), key
        except (ValueError, OSError):
            path.unlink(missing_ok=True)

    def fill(arr):
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            for i, img in enumerate(pool.map(lambda p: load_image(p, size), paths)):
                arr[i] = img
                if progress and (i % 50 == 0 or i == len(paths) - 1):
                    progress(i + 1, len(paths))
    return _atomic_npy(path, (len(paths), size, size, 3), np.uint8, fill), key


class ImageBatches(keras.utils.PyDataset):
    """Batches of (float32 images 0-255, labels) from a decoded array, optionally augmented.

    The order is reshuffled every epoch from (seed, epoch); image i of the epoch is augmented with
    `image_seed(seed, epoch, i)` by `engine` (`core.data.augment_presets.ENGINES`), so a resumed run sees exactly the
    batches it would have seen. Keras's `fit` builds the dataset's signature from its first PROBED batches, then
    ends an "epoch" that never began (it resets its iterator) before the first one: that end is ignored, and the
    probed batches are kept until the epoch ends rather than augmented twice.
    """
    PROBED = 2  # keras.src.trainers.data_adapters.data_adapter_utils.NUM_BATCHES_FOR_TENSOR_SPEC

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool = False,
                 augment: AugmentConfig | None = None, seed: int = 0, epoch: int = 0,
                 engine: str = "image_data_generator", **kwargs):
        super().__init__(**kwargs)
        self.images, self.labels = images, np.asarray(labels)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.augmenter = augmenter(augment, engine) if augment is not None and not augment.is_identity() else None
        self.begun = False  # set by Keras's on_epoch_begin: an epoch's end counts only after its beginning
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.kept = epoch, {}
        n = len(self.labels)
        self.order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, index: int):
        if index in self.kept:
            return self.kept[index]
        positions = np.arange(index * self.batch_size, min((index + 1) * self.batch_size, len(self.labels)))
        idx = self.order[positions]
        x = np.asarray(self.images[np.sort(idx)], dtype=np.float32)[np.argsort(np.argsort(idx))]
        if self.augmenter is not None:
            x = self.augmenter(x, [image_seed(self.seed, self.epoch, int(p)) for p in positions])
        out = x, self.labels[idx].astype(np.float32)
        if index < self.PROBED and self.augmenter is not None:
            self.kept[index] = out
        return out

    def on_epoch_begin(self) -> None:
        self.begun = True

    def on_epoch_end(self) -> None:
        if self.begun:
            self.begun = False
            self.set_epoch(self.epoch + 1)
