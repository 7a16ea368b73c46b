"""What every `python -m core bench` measurement shares: the default photos and weights, the lecture's image size
and batch, the workload sizes of a lecture-size run, the class-balanced subset the lecture's code reads from a
folder, and the images/s figure. It measures nothing itself."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "cats_vs_dogs_small"
SHARED_VGG = Path(__file__).resolve().parents[3] / "shared" / "weights" / "vgg16_hed_bsds500_notop.weights.h5"
SIZE, BATCH = 150, 20

EXTRACT_BATCH = 32     # features.extract's batch, which the ceiling uses too
LECTURE_IMAGES = 3000  # images the lecture's feature extraction passes (2000 training, 1000 validation)
LECTURE_AUG_IMAGES = 2000 * 30 + 1000  # ... and its feature extraction with augmentation (30 epochs)
CALIBRATION = 32       # int8 calibration images (the run's own training images, as runs do)


def subset(root: Path, split: str, n: int, tmp: Path) -> tuple[Path, list[str], np.ndarray]:
    """A class-balanced subset of `split` linked into tmp/<split>/<class>/ (for flow_from_directory)."""
    from core.data.folders import scan
    ds = scan(root)
    items = ds.splits[split]
    per_class = max(1, n // len(ds.classes))
    chosen = []
    for label in range(len(ds.classes)):
        chosen += [it for it in items if it[1] == label][:per_class]
    folder = tmp / split
    for path, label in chosen:
        dest = folder / ds.classes[label] / Path(path).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.abspath(path), dest)
    ordered = sorted(chosen, key=lambda it: (it[1], Path(it[0]).name))  # flow_from_directory's order
    return folder, [p for p, _ in ordered], np.array([y for _, y in ordered])


def rate(n: int, seconds: float) -> float:
    """Images per second, to one decimal (infinite for a pass too short to time)."""
    return round(n / seconds, 1) if seconds > 0 else float("inf")
