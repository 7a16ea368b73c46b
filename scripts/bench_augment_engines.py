"""Print how long each augmentation engine takes for one training batch (the lecture's augmentation, batch 20).

Times `core.data.augmenters.augmenter(cfg, engine)` on the batches `core.data.pipeline.ImageBatches` feeds, in
this process, after a warm-up batch; median of N batches. Figures depend on the CPU and on what else runs.

    .venv/bin/python scripts/bench_augment_engines.py [--size 150] [--batch 20] [--batches 20] [DIR]
    (default DIR: ../shared/data/cats_vs_dogs_small when present, else random pixels)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.data.augment_presets import ENGINES, get_preset  # noqa: E402
from core.data.augment_seed import image_seed  # noqa: E402
from core.data.augmenters import augmenter  # noqa: E402
from core.models.precision import host  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("dir", nargs="?", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "data"
                                                  / "cats_vs_dogs_small"))
parser.add_argument("--size", type=int, default=150)
parser.add_argument("--batch", type=int, default=20)
parser.add_argument("--batches", type=int, default=20)
a = parser.parse_args()

if Path(a.dir).is_dir():
    from core.data.folders import load_image, scan
    paths = [p for p, _ in scan(a.dir).splits["train"][: a.batch]]
    images, source = np.stack([load_image(p, a.size) for p in paths]).astype(np.float32), a.dir
else:
    images = np.random.default_rng(0).uniform(0, 255, (a.batch, a.size, a.size, 3)).astype(np.float32)
    source = "random pixels"
cfg = get_preset("lecture")
machine = host()
print(f"{machine['cpu']} ({machine['kind']}, {machine['cores']} cores); {a.batch} images of {a.size} px from "
      f"{source}; augmentation: {cfg.summary()}")
from core.data.augmenters import LayersAugmenter  # noqa: E402
candidates = [(engine, title, augmenter(cfg, engine)) for engine, title in ENGINES.items()]
candidates.append(("keras_layers, eager", "(the preview's way: no tf.function)", LayersAugmenter(cfg)))
for engine, title, run in candidates:
    run(images, [image_seed(0, 0, i) for i in range(len(images))])  # warm-up (builds the layers' functions)
    times = []
    for b in range(a.batches):
        t0 = time.perf_counter()
        run(images, [image_seed(0, b + 1, i) for i in range(len(images))])
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1000
    print(f"  {engine:<22}{title:<40}{ms:8.1f} ms per batch  ({ms / len(images):.2f} ms per image, "
          f"median of {a.batches})")
