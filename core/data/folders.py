"""Image folders: find the classes and splits, check every file, and load images the one way the lab does.

A data folder has one subfolder per class, either already split (`train/`, `validation/`, optional
`test/`, each holding the class folders) or not split (then a stratified, seeded split is made).
`scan` decodes every candidate file the way `load_image` will; what cannot be used (unreadable, empty,
oversized, not an image, folder link loops, class folders without usable images) is skipped and reported
with its reason, and a folder that cannot work is refused with one sentence (DataError).
`load_image` is the single decoder used by training, evaluation and the dashboard's previews; `decode_upload`
is the dashboard's one path for an uploaded image (the same decoding, errors as one sentence).
"""
from __future__ import annotations

import io
import os
import random
import stat
import warnings
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


def _shown(path) -> str:
    """`path` as printable text (bytes that are not UTF-8 shown as U+FFFD), for reports and the run store."""
    return os.fsencode(str(path)).decode("utf-8", "replace")


def _to_8bit(arr: np.ndarray, sixteen_bit: bool) -> np.ndarray:
    """One channel of 16-bit, 32-bit or float samples as 0-255: 16-bit by 1/257, floats in [0, 1] by 255."""
    is_float = arr.dtype.kind == "f"
    arr = np.nan_to_num(arr.astype(np.float64))
    top = float(arr.max()) if arr.size else 0.0
    if sixteen_bit or 255 < top <= 65535:
        arr = arr / 257.0
    elif top > 65535:
        arr = arr * (255.0 / top)
    elif is_float and top <= 1.0:
        arr = arr * 255.0
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode as RGB: transparency composited on white, 16-bit and float images scaled, not clipped."""
    if img.mode.startswith(("I", "F")):
        return Image.fromarray(_to_8bit(np.asarray(img), img.mode.startswith("I;16"))).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        out = Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return img.convert("RGB")


def _over_limit(size: tuple[int, int]) -> str | None:
    width, height = size
    if width * height > MAX_PIXELS:
        return f"too large ({width}x{height} pixels; the limit is {MAX_PIXELS:,})"
    return None


def check_image(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """Decode `path` the way `load_image` does (small); returns ((width, height), None) or (None, reason)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file"
        if info.st_size == 0:
            return None, "empty file (0 bytes)"
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                size = img.size
                if reason := _over_limit(size):
                    return None, reason
                img.draft("RGB", (64, 64))
                img.load()  # decodes the whole file: truncated or corrupt data fails here
                _to_rgb(img.crop((0, 0, min(img.width, 64), min(img.height, 64)))).resize((8, 8), Image.BILINEAR)
        return size, None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return None, f"refused as a possible decompression bomb ({exc})"
    except Image.UnidentifiedImageError:
        return None, "not an image Pillow can read"
    except (OSError, SyntaxError, ValueError, TypeError, MemoryError) as exc:
        return None, f"unreadable image ({exc})"


def _pixels(img: Image.Image, size: int) -> np.ndarray:
    if img.format == "JPEG":
        img.draft("RGB", (size, size))
    return np.asarray(_to_rgb(img).resize((size, size), Image.BILINEAR), dtype=np.uint8)


def load_image(path: str | os.PathLike, size: int) -> np.ndarray:
    """Decode any image file to an RGB (size, size, 3) uint8 array (alpha composited on white)."""
    with Image.open(path) as img:
        if reason := _over_limit(img.size):
            raise DataError(f"{_shown(path)} is {reason}.")
        return _pixels(img, size)


UPLOAD_TYPES = sorted(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)  # what an image uploader accepts


def decode_upload(name: str, data: bytes, size: int) -> tuple[np.ndarray | None, str | None]:
    """The one path for an uploaded image: decode `data` (the file called `name`) as `load_image` does.

    Returns (RGB (size, size, 3) uint8 array, None), or (None, one sentence naming the file, the reason and the
    fix) for anything unusable: empty, not an image, damaged or truncated, or too large (a possible
    decompression bomb is refused from its header, before any pixel is decoded). Never raises for bad content,
    and the sentence names only the file, never the upload's internals.
    """
    shown = _shown(Path(str(name)).name) or "The uploaded file"
    if not data:
        return None, f"{shown} is empty (0 bytes): upload an image file."
    too_large = (f"{shown} is too large (more than {MAX_PIXELS:,} pixels): upload a smaller image, "
                 f"for example one resized to 2000 pixels on its longer side.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused just below, with its size
            with Image.open(io.BytesIO(data)) as img:
                if reason := _over_limit(img.size):
                    return None, f"{shown} is {reason}: upload a smaller image."
                return _pixels(img, size), None
    except Image.DecompressionBombError:
        return None, too_large
    except Image.UnidentifiedImageError:
        return None, f"{shown} is not an image the lab can read: upload a JPEG, PNG, BMP, GIF, WebP or TIFF file."
    except (OSError, SyntaxError, ValueError, TypeError, EOFError) as exc:
        return None, f"{shown} is damaged or truncated ({exc}): upload it again, or choose another image."
    except MemoryError:
        return None, f"{shown} needs more memory to decode than this machine has free: upload a smaller image."


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _class_files(class_dir: Path, skipped: list[dict]) -> list[Path]:
    """Image files below `class_dir` (nested folders included, links followed once, loops refused)."""
    found, seen = [], set()
    top = Path(os.path.realpath(class_dir))

    def unreadable(exc: OSError) -> None:
        skipped.append({"path": _shown(exc.filename), "reason": f"unreadable folder ({exc.strerror})"})

    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True, onerror=unreadable):
        real = Path(os.path.realpath(dirpath))
        if real in seen or (real != top and top.is_relative_to(real)):
            skipped.append({"path": _shown(dirpath), "reason": "folder link loop, not followed again"})
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
                skipped.append({"path": _shown(path), "reason": f"not an image file extension ({path.suffix or 'none'})"})
    return found


def _split_folder(root: Path, split: str) -> Path | None:
    for alias in SPLIT_ALIASES[split]:
        if (root / alias).is_dir():
            return root / alias
    return None


def _subdirs(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX")))


def _stray_files(folder: Path, skipped: list[dict]) -> None:
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and not entry.name.startswith("."):
            skipped.append({"path": _shown(entry), "reason": "stray file beside the class folders, ignored"})


def stratified_split(files_by_class: dict[int, list[str]], val_fraction: float, test_fraction: float,
                     seed: int | str) -> dict[str, list[tuple[str, int]]]:
    """Split each class's files with the same fractions, reproducibly from `seed`."""
    splits = {s: [] for s in SPLITS}
    for label, files in sorted(files_by_class.items()):
        files = sorted(files)
        random.Random(f"{seed}:{label}").shuffle(files)
        n_val = max(1, round(len(files) * val_fraction))
        n_test = min(round(len(files) * test_fraction), len(files) - n_val - 1) if test_fraction else 0
        splits["validation"] += [(f, label) for f in files[:n_val]]
        splits["test"] += [(f, label) for f in files[n_val:n_val + n_test]]
        splits["train"] += [(f, label) for f in files[n_val + n_test:]]
    return {s: items for s, items in splits.items() if items}


def _keep_classes(classes: list[str], files: dict, presplit: bool, class_root: Path,
                  skipped: list[dict]) -> tuple[list[str], dict]:
    """Leave out (and report) classes without enough usable images; renumber the labels of the others."""
    source = files["train" if presplit else "all"]
    minimum = 1 if presplit else 2  # an unsplit class needs one image to train on and one to validate
    kept = []
    for label, cls in enumerate(classes):
        n = len(source.get(label, []))
        if n >= minimum:
            kept.append(label)
            continue
        where = "in train/ " if presplit else ""
        reason = (f"no usable images {where}(the class is left out)" if n == 0 else
                  "only 1 usable image: a class needs at least 2 to be split (the class is left out)")
        skipped.append({"path": _shown(class_root / cls), "reason": reason})
    new = {old: i for i, old in enumerate(kept)}
    files = {split: {new[label]: fs for label, fs in per.items() if label in new} for split, per in files.items()}
    return [classes[i] for i in kept], files


def _dataset_inside(root: Path) -> Path | None:
    """The first subfolder of `root` laid out as a split dataset (train/ and validation/ folders), if any."""
    for name in _subdirs(root):
        sub = root / name
        if _split_folder(sub, "train") is not None and _split_folder(sub, "validation") is not None:
            return sub
    return None


def scan(root: str | os.PathLike, val_fraction: float = 0.2, test_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """Find classes and splits under `root`, check every image, and split unsplit folders."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"The data folder {_shown(root)} does not exist: give the path of a folder with one "
                        f"subfolder per class.")
    if not root.is_dir():
        raise DataError(f"{_shown(root)} is a file, not a folder: give a folder with one subfolder per class.")
    skipped: list[dict] = []
    train_dir = _split_folder(root, "train")
    presplit = train_dir is not None
    files: dict[str, dict[int, list[str]]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    try:
        if presplit:
            classes = _subdirs(train_dir)
            split_dirs = {s: d for s in SPLITS if (d := _split_folder(root, s)) is not None}
        else:
            classes = _subdirs(root)
            split_dirs = {"all": root}
        _stray_files(root, skipped)
        for split, split_dir in split_dirs.items():
            files[split] = {}
            for label, cls in enumerate(classes):
                if not (split_dir / cls).is_dir():
                    continue
                for path in _class_files(split_dir / cls, skipped):
                    size, reason = check_image(path)
                    if reason:
                        skipped.append({"path": _shown(path), "reason": reason})
                        continue
                    sizes[str(path)] = size
                    files[split].setdefault(label, []).append(str(path))
            if presplit:
                _stray_files(split_dir, skipped)
                skipped += [{"path": _shown(split_dir / extra), "reason": "class folder not present in train/, ignored"}
                            for extra in _subdirs(split_dir) if extra not in classes]
    except OSError as exc:
        raise DataError(f"The data folder {_shown(root)} cannot be read ({exc.strerror}: {_shown(exc.filename)}): "
                        f"check its permissions.") from exc

    if not classes or not any(fs for per in files.values() for fs in per.values()):
        raise DataError(f"No usable images found in {_shown(root)}: it needs one subfolder per class "
                        f"(for example cats/ and dogs/), each holding image files.")
    classes, files = _keep_classes(classes, files, presplit, train_dir if presplit else root, skipped)
    if len(classes) < 2:
        found = f"Only one class with images ({classes[0]})" if classes else "No class with enough images"
        inside = _dataset_inside(root)
        if inside is not None:  # the user named the folder above a dataset
            raise DataError(f"{found} found in {_shown(root)}, but {_shown(inside)} holds a split dataset "
                            f"(train/ and validation/): use that folder.")
        raise DataError(f"{found} found in {_shown(root)}: a classifier needs at least two class folders "
                        f"with images (see `python -m core scan` for the files that were skipped).")
    if presplit:
        if "validation" not in files or not any(files["validation"].values()):
            raise DataError(f"{_shown(root)} has a train/ folder but no validation/ images: add "
                            f"validation/<class>/ folders, or put the class folders directly under it to have "
                            f"them split.")
        splits = {s: [(f, label) for label, fs in sorted(per.items()) for f in fs] for s, per in files.items()}
        splits = {s: items for s, items in splits.items() if items}
    else:
        splits = stratified_split(files["all"], val_fraction, test_fraction, seed)
    used = [sizes[f] for items in splits.values() for f, _ in items]
    widths, heights = [w for w, _ in used], [h for _, h in used]
    stats = {"min_width": min(widths), "max_width": max(widths), "mean_width": round(float(np.mean(widths)), 1),
             "min_height": min(heights), "max_height": max(heights),
             "mean_height": round(float(np.mean(heights)), 1), "n": len(widths)}
    return Dataset(root, classes, splits, skipped, presplit, stats)
