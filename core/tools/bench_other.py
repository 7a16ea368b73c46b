"""The figures under "Other figures" on the bench's page: how long the augmentation preview takes to draw 9 copies,
and the peak memory (RSS) of a fresh process extracting features of n images through the engine's path."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from core.tools.bench_setup import SIZE


def preview_ms(path: str) -> float:
    from core.data.augment_presets import PRESETS
    from core.data.folders import load_image
    from core.data.preview import augmented_copies
    image = load_image(path, SIZE)
    augmented_copies(image, PRESETS["lecture"], 0, 9)  # first call builds the generator
    t0 = time.perf_counter()
    for i in range(5):
        augmented_copies(image, PRESETS["lecture"], i, 9)
    return round((time.perf_counter() - t0) / 5 * 1000, 1)


def peak_memory_mb(root: Path, n: int, weights: str, home: Path) -> float:
    """Peak RSS of a fresh process extracting features of `n` images (the engine's path)."""
    code = ("import resource, sys; from pathlib import Path; from core.tools import bench_other; "
            "bench_other._memory_child(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    env = dict(os.environ, TUNELAB_HOME=str(home / f"mem{n}"), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code, str(root), str(n), weights], env=env, capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parents[2], timeout=1800)
    if proc.returncode:
        raise RuntimeError(f"memory probe failed: {proc.stderr[-500:]}")
    return round(int(proc.stdout.split()[-1]) / 1024, 1)


def _memory_child(root: Path, n: int, weights: str) -> None:
    from core.models import features, networks, precision
    from core.data.folders import scan
    from core.data.pipeline import decoded_images
    precision.apply("auto")
    items = scan(root).splits["train"]
    paths = [p for p, _ in (items * (n // len(items) + 1))[:n]]
    images, key = decoded_images(paths, SIZE)
    features.extract(features.extractor(networks.conv_base("vgg16", weights, SIZE), "caffe"), images, f"mem-{key}")
