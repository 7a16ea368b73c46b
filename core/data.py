"""Image folders: find the classes and splits, check every file, and load images the one way the lab does.

A data folder has one subfolder per class, either already split (`train/`, `validation/`, optional
`test/`, each holding the class folders) or not split (then a stratified, seeded split is made).
`scan` opens every candidate file; what cannot be used is skipped and reported with its reason.
`load_image` is the single decoder used by training, evaluation and the dashboard's previews.
"""
from __future__ import annotations

import os
import random
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {"train": ("train", "training"), "validation": ("validation", "val", "valid"), "test": ("test",)}
MAX_PIXELS = 40_000_000  # larger images are refused as possible decompression bombs
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False


class DataError(ValueError):
    """A data folder that cannot be used; the message says which folder, why, and what to do."""


@dataclass
class Dataset:
    root: Path
    classes: list[str]
    splits: dict[str, list[tuple[str, int]]]   # split -> [(file path, class index)]
    skipped: list[dict] = field(default_factory=list)
    presplit: bool = True
    size_stats: dict = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        return {split: {c: sum(1 for _, y in items if y == i) for i, c in enumerate(self.classes)}
                for split, items in self.splits.items()}

    def report(self) -> dict:
        return {"root": str(self.root), "classes": self.classes, "presplit": self.presplit,
                "counts": self.counts(), "image_size": self.size_stats, "skipped": self.skipped}


def check_image(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """Open and decode `path` cheaply; returns ((width, height), None) or (None, reason)."""
    try:
        if path.stat().st_size == 0:
            return None, "empty file (0 bytes)"
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                size = img.size
                if size[0] * size[1] > MAX_PIXELS:
                    return None, f"too large ({size[0]}x{size[1]} pixels; the limit is {MAX_PIXELS:,})"
                img.draft("RGB", (64, 64))
                img.load()
        return size, None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return None, f"refused as a possible decompression bomb ({exc})"
    except Image.UnidentifiedImageError:
        return None, "not an image Pillow can read"
    except (OSError, SyntaxError, ValueError) as exc:
        return None, f"unreadable image ({exc})"


def load_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """Decode any image file to an RGB (size, size, 3) uint8 array (alpha composited on white)."""
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("RGB", (size, size))
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            img = Image.new("RGB", rgba.size, (255, 255, 255))
            img.paste(rgba, mask=rgba.getchannel("A"))
        elif img.mode == "I;16" or img.mode.startswith("I"):
            arr = np.asarray(img, dtype=np.float64)
            img = Image.fromarray((arr / max(arr.max(), 1) * 255).astype(np.uint8)).convert("RGB")
        else:
            img = img.convert("RGB")
        return np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _class_files(class_dir: Path, skipped: list[dict]) -> list[Path]:
    """Image files below `class_dir` (nested folders included, links followed once, loops refused)."""
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            skipped.append({"path": dirpath, "reason": "folder link loop, not followed again"})
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith("."):
                continue
            if _is_image_name(path):
                found.append(path)
            else:
                skipped.append({"path": str(path), "reason": f"not an image file extension ({path.suffix or 'none'})"})
    return found


def _split_folder(root: Path, split: str) -> Path | None:
    for alias in SPLIT_ALIASES[split]:
        if (root / alias).is_dir():
            return root / alias
    return None


def _subdirs(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def stratified_split(files_by_class: dict[int, list[str]], val_fraction: float, test_fraction: float,
                     seed: int) -> dict[str, list[tuple[str, int]]]:
    """Split each class's files with the same fractions, reproducibly from `seed`."""
    splits = {s: [] for s in SPLITS}
    for label, files in sorted(files_by_class.items()):
        files = sorted(files)
        random.Random(f"{seed}:{label}").shuffle(files)
        n_val = max(1, round(len(files) * val_fraction))
        n_test = round(len(files) * test_fraction) if test_fraction else 0
        splits["validation"] += [(f, label) for f in files[:n_val]]
        splits["test"] += [(f, label) for f in files[n_val:n_val + n_test]]
        splits["train"] += [(f, label) for f in files[n_val + n_test:]]
    return {s: items for s, items in splits.items() if items}


def scan(root: str | os.PathLike, val_fraction: float = 0.2, test_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """Find classes and splits under `root`, check every image, and split unsplit folders."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"The data folder {root} does not exist: give the path of a folder with one subfolder per class.")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder: give a folder with one subfolder per class.")
    skipped: list[dict] = []
    train_dir = _split_folder(root, "train")
    presplit = train_dir is not None
    if presplit:
        classes = _subdirs(train_dir)
        split_dirs = {s: d for s in SPLITS if (d := _split_folder(root, s)) is not None}
    else:
        classes = _subdirs(root)
        split_dirs = {"all": root}
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        if entry.is_file() and not entry.name.startswith("."):
            skipped.append({"path": str(entry), "reason": "stray file beside the class folders, ignored"})

    files: dict[str, dict[int, list[str]]] = {}
    widths, heights = [], []
    for split, split_dir in split_dirs.items():
        files[split] = {}
        for label, cls in enumerate(classes):
            class_dir = split_dir / cls
            if not class_dir.is_dir():
                continue
            for path in _class_files(class_dir, skipped):
                size, reason = check_image(path)
                if reason:
                    skipped.append({"path": str(path), "reason": reason})
                    continue
                widths.append(size[0])
                heights.append(size[1])
                files[split].setdefault(label, []).append(str(path))
        if presplit:
            for extra in _subdirs(split_dir):
                if extra not in classes:
                    skipped.append({"path": str(split_dir / extra),
                                    "reason": "class folder not present in train/, ignored"})

    counts = Counter(label for per_split in files.values() for label, fs in per_split.items() for _ in fs)
    usable = [c for i, c in enumerate(classes) if counts.get(i)]
    if not classes or not counts:
        raise DataError(f"No usable images found in {root}: it needs one subfolder per class "
                        f"(for example cats/ and dogs/), each holding image files.")
    if len(usable) < 2:
        raise DataError(f"Only one class with images ({', '.join(usable)}) found in {root}: "
                        f"a classifier needs at least two class folders with images.")
    if presplit:
        if "validation" not in files or not any(files["validation"].values()):
            raise DataError(f"{root} has a train/ folder but no validation/ images: add validation/<class>/ "
                            f"folders, or put the class folders directly under {root} to have them split.")
        splits = {s: [(f, label) for label, fs in sorted(per.items()) for f in fs] for s, per in files.items()}
        splits = {s: items for s, items in splits.items() if items}
    else:
        splits = stratified_split(files["all"], val_fraction, test_fraction, seed)
    stats = {}
    if widths:
        stats = {"min_width": min(widths), "max_width": max(widths), "mean_width": round(float(np.mean(widths)), 1),
                 "min_height": min(heights), "max_height": max(heights),
                 "mean_height": round(float(np.mean(heights)), 1), "n": len(widths)}
    return Dataset(root, classes, splits, skipped, presplit, stats)
