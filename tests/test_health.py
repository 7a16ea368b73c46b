"""Dataset health on a copy of real photos with injected problems: copies across splits (exact, resized and
recompressed, lightly cropped) and labels flipped by moving photos to the other class; all must be found."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_DATA, SHARED_WEIGHTS, cli, make_folder, needs_shared
from core.analysis import health

MOBILENET = SHARED_WEIGHTS / "mobilenet_v2_imagenet_notop.weights.h5"


def build_injected(root: Path, per_class: dict[str, int], n_exact: int, n_near: int, n_flip: int) -> dict:
    """Real photos copied into root/split/class, then problems injected; returns what was injected."""
    for split, n in per_class.items():
        for cls in ("cats", "dogs"):
            (root / split / cls).mkdir(parents=True)
            for src in sorted((SHARED_DATA / split / cls).iterdir())[:n]:
                shutil.copyfile(src, root / split / cls / src.name)
    train_cats = sorted((root / "train" / "cats").iterdir())
    train_dogs = sorted((root / "train" / "dogs").iterdir())
    injected = {"exact": [], "near": [], "flipped": []}
    for i, src in enumerate(train_dogs[:n_exact]):  # byte-identical copies in validation and test
        dst = root / ("validation" if i % 2 == 0 else "test") / "dogs" / f"copy_{src.name}"
        shutil.copyfile(src, dst)
        injected["exact"].append((str(src), str(dst)))
    for i, src in enumerate(train_cats[:n_near]):   # resized to 60%, recompressed, some cropped 2% a side
        img = Image.open(src).convert("RGB")
        w, h = img.size
        if i % 2:
            img = img.crop((int(w * .02), int(h * .02), int(w * .98), int(h * .98)))
        buf = io.BytesIO()
        img.resize((int(img.width * .6), int(img.height * .6))).save(buf, "JPEG", quality=40)
        dst = root / "validation" / "cats" / f"near_{src.stem}.jpg"
        dst.write_bytes(buf.getvalue())
        injected["near"].append((str(src), str(dst)))
    for src in train_cats[-n_flip:]:                 # cats moved into dogs/: their label is now wrong
        dst = root / "train" / "dogs" / f"moved_{src.name}"
        src.rename(dst)
        injected["flipped"].append(str(dst))
    return injected


def found(report: dict, injected: dict) -> dict:
    """How many injected pairs share a duplicate group (and are flagged as leakage), and the flipped files' ranks."""
    groups = [{m["path"] for m in g["members"]} | ({"leak"} if g["leakage"] else set()) for g in report["duplicate_groups"]]

    def in_leak_group(a, b):
        return any(a in g and b in g and "leak" in g for g in groups)
    ranked = [e["path"] for e in report["suspected_label_errors"]]
    return {"exact": sum(in_leak_group(a, b) for a, b in injected["exact"]),
            "near": sum(in_leak_group(a, b) for a, b in injected["near"]),
            "flipped_ranks": sorted(ranked.index(p) + 1 if p in ranked else 10**6
                                    for p in injected["flipped"])}


def check_found(report, injected, hits, tmp_root):
    print(f"\ninjected: {len(injected['exact'])} exact, {len(injected['near'])} near copies across splits, "
          f"{len(injected['flipped'])} flipped labels; found {hits['exact']} exact, {hits['near']} near; flipped "
          f"files rank {hits['flipped_ranks']} of {len(report['suspected_label_errors'])} suspected "
          f"({report['label_check']}); {len(report['duplicate_groups'])} duplicate groups in all")
    assert hits["exact"] == len(injected["exact"])
    assert hits["near"] == len(injected["near"])
    # most flipped files are flagged, and they dominate the top of the ranking (the real photos have genuine
    # label errors and ambiguous pictures of their own, which compete with them in a larger copy)
    n = len(injected["flipped"])
    flagged = [r for r in hits["flipped_ranks"] if r <= len(report["suspected_label_errors"])]
    assert len(flagged) >= 0.8 * n
    assert sum(r <= n for r in flagged) >= 0.5 * n
    assert report["classes"]["train"]["dogs"] > report["classes"]["train"]["cats"]


@needs_shared("data", "cats_vs_dogs_small")
@needs_shared("weights", "mobilenet_v2_imagenet_notop.weights.h5")
def test_health_finds_copies_across_splits_and_ranks_flipped_labels_first(tmp_path, home):
    root = tmp_path / "photos"
    injected = build_injected(root, {"train": 40, "validation": 12, "test": 8}, n_exact=3, n_near=4, n_flip=4)
    report = health.check(root, "mobilenet_v2", str(MOBILENET), image_size=96)
    check_found(report, injected, found(report, injected), root)


@pytest.mark.nightly
@needs_shared("data", "cats_vs_dogs_small")
@needs_shared("weights", "mobilenet_v2_imagenet_notop.weights.h5")
def test_health_on_a_larger_copy_finds_every_injected_problem(tmp_path, home):
    root = tmp_path / "photos"
    injected = build_injected(root, {"train": 300, "validation": 100, "test": 100}, n_exact=10, n_near=10, n_flip=15)
    report = health.check(root, "mobilenet_v2", str(MOBILENET), image_size=128)
    check_found(report, injected, found(report, injected), root)


def test_health_command_prints_json_with_classes_duplicates_and_no_label_check_without_backbone(tmp_path, home):
    root = make_folder(tmp_path / "tiny", {"train": 6, "validation": 3})
    shutil.copyfile(root / "train" / "cats" / "cats.0.png", root / "validation" / "cats" / "again.png")
    out = cli("health", str(root), "--no-labels", "--json", home=home).stdout
    report = json.loads(out)
    assert report["classes"]["validation"] == {"cats": 4, "dogs": 3}
    group = next(g for g in report["duplicates"] if any(m["path"].endswith("again.png") for m in g))
    assert {"cats.0.png", "again.png"} <= {Path(m["path"]).name for m in group}
    assert {m["split"] for m in group} == {"train", "validation"}
    assert report["suspected_label_errors"] == []


def test_near_pairs_finds_hashes_within_the_distance_only():
    bits = np.zeros((3, 64), dtype=bool)
    bits[1, :5] = True       # 5 bits from the first
    bits[2, :30] = True      # 30 bits away
    assert health.near_pairs(bits, max_distance=10) == [(0, 1, 5)]
