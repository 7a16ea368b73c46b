"""Print the pHash distances behind core.analysis.health.NEAR_DISTANCE: between distinct photos of a folder
(nearest neighbour) and between a photo and its resized/recompressed/cropped copies.

    .venv/bin/python scripts/calibrate_near_duplicates.py [DIR]   (default ../shared/data/cats_vs_dogs_small)
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.analysis import health  # noqa: E402
from core.data import folders  # noqa: E402

root = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parent.parent.parent / "shared" / "data"
                                                  / "cats_vs_dogs_small")
paths = [p for items in folders.scan(root).splits.values() for p, _ in items]
bits = health.perceptual_hashes(paths)
pairs = health.near_pairs(bits, max_distance=20)
nearest = np.full(len(paths), 99)
for i, j, d in pairs:
    nearest[i], nearest[j] = min(nearest[i], d), min(nearest[j], d)
print(f"{len(paths)} images; nearest other image's pHash distance (of 64): "
      + ", ".join(f"{t}: {int(np.sum(nearest <= t))} images" for t in (4, 8, 10, 12, 14)))


def copy_distance(path: str, crop: float, scale: float, quality: int) -> int:
    img = Image.open(path).convert("RGB")
    w, h = img.size
    img2 = img.crop((int(w * crop), int(h * crop), int(w * (1 - crop)), int(h * (1 - crop))))
    buf = io.BytesIO()
    img2.resize((int(img2.width * scale), int(img2.height * scale))).save(buf, "JPEG", quality=quality)
    a, b = health.perceptual_hashes([path]), None
    Path("/tmp/_calib.jpg").write_bytes(buf.getvalue())
    b = health.perceptual_hashes(["/tmp/_calib.jpg"])
    return int(np.sum(a != b))


for crop, scale, quality in ((0, .6, 40), (.02, .6, 40), (.03, 1, 90), (.05, 1, 90)):
    d = [copy_distance(p, crop, scale, quality) for p in paths[::len(paths) // 40][:40]]
    print(f"copy cropped {crop:.0%} a side, resized to {scale:.0%}, JPEG quality {quality}: distance median "
          f"{np.median(d):g}, 90th percentile {np.percentile(d, 90):g}, max {max(d)}")
