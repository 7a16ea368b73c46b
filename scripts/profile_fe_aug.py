"""Where one epoch of the engine's feature extraction with augmentation spends its time (issue 12).

    .venv/bin/python scripts/profile_fe_aug.py [--images 200] [--size 150] [--batch 20] [--repeats 2]

On ../shared's real photos (class-balanced, the first N of train) and VGG16 weights from ../shared (random
weights where absent: speed does not depend on them), in the host's precision, in a temporary lab home. Prints,
per component of the epoch, its seconds: decoding the JPEGs (once, cold cache), building the conv base,
ImageDataGenerator's augmentation of every batch, the frozen pass over the augmented batches, the head's
training steps on the features, and the whole `head.fit` epoch as runs do it (as first built, sequential, and overlapped by
`core.models.inference.feature_batches`'s producer thread), each `--repeats` times interleaved, so that a
loaded host slows both variants alike. Also the bare forward pass of the same images (no augmentation), and
what feature extraction on the engine spends beside its pass (decoding, a tail batch of a new shape): its share
of the bare-forward ceiling that `python -m core bench` reports.
Not a test: it asserts nothing and prints figures with the host.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"


def _before(batches, forward):
    """feature_batches as first built for issue 12: each batch augmented, then passed, in Keras's order."""
    import keras

    class FeatureBatches(keras.utils.PyDataset):
        def __len__(self):
            return len(batches)

        def __getitem__(self, index):
            x, y = batches[index]
            return forward(x), y

        def on_epoch_end(self):
            batches.on_epoch_end()
    return FeatureBatches()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--size", type=int, default=150)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--data", default=str(SHARED / "data" / "cats_vs_dogs_small"))
    a = p.parse_args()
    os.environ.setdefault("TUNELAB_HOME", tempfile.mkdtemp(prefix="tunelab-profile-"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import keras
    from core.data.augment_presets import PRESETS
    from core.data.augment_seed import image_seed
    from core.data.augment_transform import augment_batch
    from core.data.folders import scan
    from core.data.pipeline import ImageBatches, decoded_images
    from core.models import features, inference, networks, precision

    host = precision.host()
    print(f"host: {host['cpu']}, {host['kind']}, {host['cores']} cores; load average {os.getloadavg()[0]:.2f}")
    items = scan(a.data).splits["train"]
    chosen = []
    for label in (0, 1):
        chosen += [it for it in items if it[1] == label][:a.images // 2]
    paths, labels = [pth for pth, _ in chosen], np.array([y for _, y in chosen], np.float32)
    vgg = SHARED / "weights" / "vgg16_hed_bsds500_notop.weights.h5"
    weights = str(vgg) if vgg.is_file() else "none"
    policy = precision.apply("auto")
    pass_precision = precision.frozen_pass("auto")
    print(f"{len(paths)} images at {a.size} px, batch {a.batch}, policy {policy}, frozen pass {pass_precision}")

    t = time.perf_counter()
    images, key = decoded_images(paths, a.size)
    print(f"decode JPEGs once (cold cache, {os.cpu_count()} threads): {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    model = features.extractor(networks.conv_base("vgg16", weights, a.size), "caffe")
    print(f"build VGG16 conv base + load weights: {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    forward = inference.frozen_pass(model, f"profile-{key}", pass_precision, images[:32])
    forward(np.zeros((a.batch, a.size, a.size, 3), np.float32))
    print(f"frozen pass ready ({forward.describe()}), first batch: {time.perf_counter() - t:.2f} s")
    aug = PRESETS["lecture"]
    n_batches = -(-len(paths) // a.batch)

    def augmented(epoch):
        return [augment_batch(np.asarray(images[i * a.batch:(i + 1) * a.batch], np.float32), aug,
                              [image_seed(0, epoch, i * a.batch + j) for j in range(min(a.batch, len(paths) - i * a.batch))])
                for i in range(n_batches)]

    head = networks.head(model.output_shape[1:], 2, "flatten", 0.5)
    networks.compile_model(head, 2e-5, 2)
    feats0 = forward(np.asarray(images[:a.batch], np.float32))
    head.train_on_batch(feats0, labels[:a.batch])  # trace the step once
    rows: dict[str, list[float]] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        rows.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    def fit_epoch(variant: str):
        data = ImageBatches(images, labels, a.batch, shuffle=True, augment=aug)
        if variant == "before":  # issue 12's first version: no producer thread, the probed batches computed twice
            data.PROBED = 0
            head.fit(_before(data, forward), epochs=1, verbose=0)
        else:
            head.fit(inference.feature_batches(data, forward, overlap=variant == "overlapped"), epochs=1, verbose=0)

    def decode_again(paths, size):
        from concurrent.futures import ThreadPoolExecutor
        from core.data.folders import load_image
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            return list(pool.map(lambda pth: load_image(pth, size), paths))

    def tail_costs(n):
        """(seconds of a first call at a new batch shape `n`, unpadded; of the same batch padded to 32)."""
        batch = np.asarray(images[:n], np.float32)
        t0 = time.perf_counter()
        forward(batch)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        forward(np.concatenate([batch, np.zeros((32 - n, *batch.shape[1:]), np.float32)]))
        return first, time.perf_counter() - t0

    for r in range(a.repeats):
        batches = timed("augmentation (ImageDataGenerator, all batches)", lambda: augmented(r))
        feats = timed("frozen pass over the augmented batches", lambda: [forward(b) for b in batches])
        timed("head training steps on the features", lambda: [head.train_on_batch(f, labels[:len(f)]) for f in feats])
        timed("bare frozen pass, unaugmented images", lambda: [forward(np.asarray(images[i * a.batch:(i + 1) * a.batch],
                                                                                   np.float32)) for i in range(n_batches)])
        timed("extraction: decode the JPEGs again (cold, as cached)", lambda: decode_again(paths, a.size))
        timed("extraction: bare pass in batches of 32, warm shapes", lambda: [forward(np.asarray(
            images[s:s + 32], np.float32)) for s in range(0, len(paths) - len(paths) % 32 or len(paths), 32)])
        first, padded = tail_costs(8 + r)  # the full bench's tail: 1000 images = 31 x 32 + 8
        rows.setdefault("extraction: tail batch at a new shape, unpadded", []).append(first)
        rows.setdefault("extraction: the same tail batch padded to 32", []).append(padded)
        timed("head.fit epoch, before (sequential, probe twice)", lambda: fit_epoch("before"))
        timed("head.fit epoch, sequential (probed batches kept)", lambda: fit_epoch("sequential"))
        timed("head.fit epoch, overlapped (+ producer thread)", lambda: fit_epoch("overlapped"))
    print(f"per epoch of {len(paths)} images ({a.repeats} repeats, interleaved; min / max seconds):")
    for name, values in rows.items():
        print(f"  {name:52s} {min(values):7.2f} / {max(values):7.2f}")
    decode, bare = min(rows["extraction: decode the JPEGs again (cold, as cached)"]), \
        min(rows["extraction: bare pass in batches of 32, warm shapes"])
    first, padded = (min(rows[f"extraction: {k}"]) for k in ("tail batch at a new shape, unpadded",
                                                              "the same tail batch padded to 32"))
    print(f"feature extraction on the engine (decode, then pass): the pass is {bare / (decode + bare):.0%} of "
          f"decode + pass; with a tail batch at a new shape {bare / (decode + bare + first):.0%}, padded "
          f"{bare / (decode + bare + padded):.0%} (the tail's images counted as pass in neither)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
