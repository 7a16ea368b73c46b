"""Dataset health: is a data folder honest enough to trust the curves trained on it?

`check(root, ...)` reports, for a folder of class subfolders (split or not, as `core.data.folders.scan` reads it):
- class balance per split and the distribution of image sizes; files that cannot be used (scan's reasons);
- duplicates: exact copies (same bytes: the lab's content hash, `core.data.manifest.file_digest`) and near
  copies (resized, recompressed, lightly cropped: a perceptual hash, `imagehash.phash`, within a Hamming
  distance), grouped, each member with its split; a group spanning splits is flagged as leakage (a test
  image the network has in effect trained on);
- likely label errors, ranked: every image's class probabilities predicted out of fold (5-fold cross-validated
  logistic regression on the global-average-pooled features of a pretrained base), scored by cleanlab
  (`cleanlab.filter.find_label_issues`, `cleanlab.rank.get_label_quality_scores`): the standard, published
  method (confident learning), not a home-made threshold.
TensorFlow is imported only for the label check (features); the rest needs Pillow, numpy and imagehash.
Never modifies the folder.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from core.data import folders, manifest

PHASH_SIZE = 8           # imagehash's default 64-bit pHash
NEAR_DISTANCE = 10       # Hamming distance (of 64) at or below which two images are near copies: on the 4000
                         # photos of cats_vs_dogs_small distinct photos are 12 or more apart (but for 2 pairs),
                         # a copy resized to 60% at JPEG quality 40 at most 2, also cropped 2% a side 8 at the 90th
                         # percentile, 3% a side 10; 5% crops are missed (scripts/calibrate_near_duplicates.py)
LABEL_IMAGE_SIZE = 128   # pixels the pretrained base sees for the label check
FOLDS = 5

Progress = Callable[[str, float], None]


def _items(dataset) -> list[dict]:
    """Every usable image as {"path", "split", "label"} (an unsplit folder's split is the seeded one a run makes)."""
    return [{"path": manifest.absolute(p), "split": split, "label": int(y)}
            for split, items in dataset.splits.items() for p, y in items]


def size_distribution(paths: list[str], bins: int = 8) -> dict:
    """Widths and heights of the images (read from their headers): range, median, and the commonest sizes."""
    sizes = []
    for p in paths:
        with Image.open(p) as img:
            sizes.append(img.size)
    w = np.array([s[0] for s in sizes])
    h = np.array([s[1] for s in sizes])
    common = Counter(f"{a}x{b}" for a, b in sizes).most_common(bins)
    return {"n": len(sizes), "width": {"min": int(w.min()), "median": float(np.median(w)), "max": int(w.max())},
            "height": {"min": int(h.min()), "median": float(np.median(h)), "max": int(h.max())},
            "smallest_side_under_150": int(np.sum(np.minimum(w, h) < 150)),
            "commonest": [{"size": s, "count": n} for s, n in common],
            "widths": w.tolist(), "heights": h.tolist()}


def perceptual_hashes(paths: list[str]) -> np.ndarray:
    """(N, PHASH_SIZE**2) booleans: each image's pHash (the DCT of its 64x64 grey thumbnail vs. the median)."""
    import imagehash
    out = np.zeros((len(paths), PHASH_SIZE * PHASH_SIZE), dtype=bool)
    for i, p in enumerate(paths):
        with Image.open(p) as img:
            out[i] = imagehash.phash(folders._to_rgb(img), hash_size=PHASH_SIZE).hash.ravel()
    return out


def near_pairs(bits: np.ndarray, max_distance: int = NEAR_DISTANCE, chunk: int = 1024) -> list[tuple[int, int, int]]:
    """Pairs (i, j, distance), i < j, whose hashes differ in at most `max_distance` bits."""
    signs = np.where(bits, 1.0, -1.0).astype(np.float32)
    n_bits = bits.shape[1]
    pairs = []
    for start in range(0, len(signs), chunk):
        dist = (n_bits - signs[start:start + chunk] @ signs.T) / 2  # Hamming distance from the dot product
        rows, cols = np.nonzero(dist <= max_distance)
        pairs += [(start + r, int(c), int(round(dist[r, c]))) for r, c in zip(rows, cols) if start + r < c]
    return pairs


def _groups(n: int, pairs) -> list[list[int]]:
    """Connected components (union-find) of the pairs, groups of two or more, each sorted."""
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    for i, j in pairs:
        parent[root(i)] = root(j)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root(i), []).append(i)
    return sorted((sorted(g) for g in members.values() if len(g) > 1), key=lambda g: g[0])


def duplicate_groups(items: list[dict], progress: Progress | None = None) -> list[dict]:
    """Groups of exact or near copies: {"members": [{"path", "split", "class_index"}], "exact", "leakage",
    "distance"} (distance: the largest pHash distance between linked members, 0 for byte-identical ones)."""
    paths = [it["path"] for it in items]
    digests = [manifest.file_digest(p) for p in paths]
    if progress:
        progress("hashing images", 0.3)
    by_digest: dict[str, list[int]] = {}
    for i, d in enumerate(digests):
        by_digest.setdefault(d, []).append(i)
    exact = [(g[0], j) for g in by_digest.values() for j in g[1:]]
    near = near_pairs(perceptual_hashes(paths))
    distance = {}
    for i, j, d in near:
        distance[i] = max(distance.get(i, 0), d)
        distance[j] = max(distance.get(j, 0), d)
    groups = []
    for g in _groups(len(items), exact + [(i, j) for i, j, _ in near]):
        splits = {items[i]["split"] for i in g}
        groups.append({"members": [{"path": paths[i], "split": items[i]["split"], "class_index": items[i]["label"]}
                                   for i in g],
                       "exact": len({digests[i] for i in g}) == 1,
                       "leakage": len(splits) > 1,
                       "distance": max((distance.get(i, 0) for i in g), default=0)})
    groups.sort(key=lambda g: (not g["leakage"], not g["exact"], g["members"][0]["path"]))
    return groups


def pooled_features(paths: list[str], backbone: str, weights: str, image_size: int = LABEL_IMAGE_SIZE,
                    progress: Progress | None = None) -> np.ndarray:
    """(N, channels) global-average-pooled features of the frozen pretrained base (cached like a run's)."""
    from core.config import BACKBONES
    from core.data.pipeline import decoded_images
    from core.models import features, networks
    info = BACKBONES[backbone]
    images, images_key = decoded_images(paths, image_size)
    base = networks.conv_base(backbone, weights, image_size)
    key = features.feature_key(images_key, backbone, features.weights_identity(weights, 0), "output",
                               image_size, info.preprocess, "float32")
    report = (lambda done: progress("features of a pretrained base", 0.4 + 0.5 * done / len(paths))) if progress else None
    maps = features.extract(features.extractor(base, info.preprocess), images, key, progress=report)
    return np.asarray(maps, dtype=np.float32).mean(axis=(1, 2))


def out_of_fold_probabilities(feats: np.ndarray, labels: np.ndarray, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Each image's class probabilities from a logistic regression that never saw it (stratified k-fold)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    folds = max(2, min(folds, int(np.bincount(labels).min())))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    return cross_val_predict(model, feats, labels, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                             method="predict_proba")


def label_issues(items: list[dict], classes: list[str], probs: np.ndarray) -> list[dict]:
    """cleanlab's label issues, worst first: {"path", "split", "given", "suggested", "score"} (score: cleanlab's
    self-confidence label quality, the predicted probability of the given label; lower is more suspect)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    labels = np.array([it["label"] for it in items])
    ranked = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(labels, probs, method="self_confidence")
    return [{"path": items[i]["path"], "split": items[i]["split"], "given": classes[labels[i]],
             "suggested": classes[int(np.argmax(probs[i]))], "score": round(float(quality[i]), 4)}
            for i in ranked]


def check(root: str | os.PathLike, backbone: str | None = "mobilenet_v2", weights: str | None = None,
          image_size: int = LABEL_IMAGE_SIZE, progress: Progress | None = None) -> dict:
    """The health report of a data folder (see the module docstring). `backbone=None` skips the label check;
    `weights` defaults to ImageNet's (as `--weights` in training: imagenet, or a no-top weights file)."""
    dataset = folders.scan(root)
    items = _items(dataset)
    if progress:
        progress("reading image sizes", 0.05)
    report = {"root": str(Path(root).expanduser()), "classes": dataset.counts(), "class_names": dataset.classes,
              "presplit": dataset.presplit, "image_sizes": size_distribution([it["path"] for it in items]),
              "unreadable": dataset.skipped}
    groups = duplicate_groups(items, progress)
    report["duplicate_groups"] = [{**g, "members": [{**m, "class": dataset.classes[m.pop("class_index")]}
                                                    for m in g["members"]]} for g in groups]
    report["duplicates"] = [[{"path": m["path"], "split": m["split"]} for m in g["members"]]
                            for g in report["duplicate_groups"]]
    report["leakage"] = sum(g["leakage"] for g in groups)
    report["suspected_label_errors"] = []
    report["label_check"] = "skipped (no backbone given)"
    if backbone:
        feats = pooled_features([it["path"] for it in items], backbone, weights or "imagenet", image_size, progress)
        probs = out_of_fold_probabilities(feats, np.array([it["label"] for it in items]))
        report["suspected_label_errors"] = label_issues(items, dataset.classes, probs)
        agree = float(np.mean(np.argmax(probs, 1) == np.array([it["label"] for it in items])))
        report["label_check"] = (f"{FOLDS}-fold logistic regression on {backbone} features "
                                 f"({weights or 'imagenet'}, {image_size} px): out-of-fold accuracy {agree:.3f}; "
                                 f"scored by cleanlab")
    if progress:
        progress("done", 1.0)
    return report


def _saved_path(root) -> Path:
    import hashlib
    from core.runs import store
    return store.home() / "health" / (hashlib.sha1(manifest.absolute(root).encode()).hexdigest()[:16] + ".json")


def save(report: dict) -> None:
    """Keep the report of its folder (the Data page shows the last one until it is run again)."""
    import json
    from core.atomic import replacing
    path = _saved_path(report["root"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(report))


def saved(root) -> dict | None:
    """The last saved report of `root`, or None."""
    import json
    try:
        return json.loads(_saved_path(root).read_text())
    except (OSError, ValueError):
        return None


def excluded_paths(report: dict, keep_first: bool = True) -> list[str]:
    """The files a user would most likely exclude: every duplicate but one per group (the first, in train when
    there is one) and every suspected label error; a starting point for the Data page's selection."""
    out = []
    for group in report.get("duplicate_groups", []):
        members = sorted(group["members"], key=lambda m: (m["split"] != "train", m["path"]))
        out += [m["path"] for m in (members[1:] if keep_first else members)]
    out += [e["path"] for e in report.get("suspected_label_errors", [])]
    return list(dict.fromkeys(out))


def text_report(report: dict, top: int = 20) -> str:
    """The report as the command line prints it."""
    lines = [f"{report['root']}: classes {', '.join(report['class_names'])}"]
    for split, counts in report["classes"].items():
        total = sum(counts.values())
        lines.append(f"  {split:<11}" + "  ".join(f"{c}: {n} ({n / total:.0%})" for c, n in counts.items()))
    s = report["image_sizes"]
    lines.append(f"  image sizes: width {s['width']['min']}-{s['width']['max']} (median {s['width']['median']:g}), "
                 f"height {s['height']['min']}-{s['height']['max']} (median {s['height']['median']:g}); "
                 f"{s['smallest_side_under_150']} with a side under 150 px")
    lines.append(f"  unreadable or skipped: {len(report['unreadable'])}")
    lines += [f"    {u['path']}: {u['reason']}" for u in report["unreadable"]]
    groups = report["duplicate_groups"]
    lines.append(f"  duplicate groups: {len(groups)} ({report['leakage']} across splits: leakage, "
                 f"{sum(g['exact'] for g in groups)} byte-identical)")
    for g in groups:
        kind = "exact" if g["exact"] else f"near (pHash distance {g['distance']})"
        lines.append(f"    {'LEAK ' if g['leakage'] else ''}{kind}: " +
                     ", ".join(f"{m['split']}/{m['class']}/{Path(m['path']).name}" for m in g["members"]))
    errors = report["suspected_label_errors"]
    lines.append(f"  suspected label errors: {len(errors)} ({report['label_check']})")
    lines += [f"    {i + 1:>3}. {e['split']}/{e['given']}/{Path(e['path']).name}: given {e['given']}, "
              f"looks like {e['suggested']} (label quality {e['score']:.3f})" for i, e in enumerate(errors[:top])]
    return "\n".join(lines)
