"""Make a small split dataset of links to the first N images per class of a split folder (nothing copied).

    .venv/bin/python scripts/make_subset.py SRC DST --train 200 --validation 100 [--test 100]
Used for the README's ablation and the discriminative-rates comparison on ../shared/data/cats_vs_dogs_small.
"""
from __future__ import annotations

import argparse
from pathlib import Path

p = argparse.ArgumentParser()
p.add_argument("src")
p.add_argument("dst")
p.add_argument("--train", type=int, default=200)
p.add_argument("--validation", type=int, default=100)
p.add_argument("--test", type=int, default=0, help="test images per class (default: no test split)")
a = p.parse_args()
for split, n in (("train", a.train), ("validation", a.validation), ("test", a.test)):
    if not n:
        continue
    for cls in sorted(d.name for d in (Path(a.src) / split).iterdir() if d.is_dir()):
        out = Path(a.dst) / split / cls
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted((Path(a.src) / split / cls).iterdir())[:n]:
            if not (out / f.name).exists():
                (out / f.name).symlink_to(f.resolve())
print(f"{a.dst}: {a.train} train, {a.validation} validation and {a.test} test images per class (links)")
