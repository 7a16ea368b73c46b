"""The built-in demo dataset: cartoon cat and dog heads, drawn deterministically from a seed.

The lab replays Chollet's cats-vs-dogs small-data experiment but cannot ship photos, so this module
paints a stand-in with numpy and Pillow, in the same folder layout (`train|validation|test/cats|dogs`).
The classes differ only in *shape*: a cat has a round face, pointed ears and whiskers; a dog a longer
face, a muzzle, floppy ears and a big nose. Fur and background colours, position, size, rotation,
aspect ratio, background clutter and noise come from the same distributions in both classes, so a
model must learn shapes: a small CNN trained from scratch overfits and profits from augmentation.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core.atomic import replacing

DEMO_COUNTS = {"train": 500, "validation": 250, "test": 250}   # images per class
CLASSES = {"cats": "cat", "dogs": "dog"}                         # folder name -> file name stem
MARKER = ".demo-complete"
_VERSION = 1          # bump when the drawing changes, so that stored datasets are regenerated
_SS = 2               # supersampling factor: draw at twice the size, then downscale (anti-aliasing)
_FUR = np.array([(30, 28, 28), (235, 232, 225), (130, 130, 135), (215, 130, 55), (120, 80, 45),
                 (228, 205, 160), (85, 70, 62), (180, 150, 110)], dtype=float)
_IRIS = np.array([(235, 235, 215), (195, 215, 80), (140, 195, 115), (190, 140, 60), (60, 45, 35)], float)


def _rgb(c) -> tuple:   # a colour Pillow accepts
    return tuple(int(v) for v in np.clip(np.round(c), 0, 255))


def _oval(cx, cy, rx, ry, angle=0.0, n=36) -> list:
    """Points of an ellipse (unit coordinates), optionally rotated by `angle` radians."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return list(zip(cx + c * x - s * y, cy + s * x + c * y))


def _head(label: str, rng: np.random.Generator, L: int) -> Image.Image:
    """One cat or dog head on a transparent L x L layer. Only the geometry depends on the label."""
    layer = Image.new("RGBA", (L, L), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    fur = _FUR[rng.integers(len(_FUR))] + rng.normal(0, 18, 3)
    accent = fur * 0.5 if rng.random() < 0.5 else fur + (255 - fur) * 0.5   # darker or lighter: ears
    accent = _rgb(accent + rng.normal(0, 12, 3))
    light = _rgb(fur + (255 - fur) * rng.uniform(0, 0.7))        # cat cheeks / dog muzzle
    fur = _rgb(fur)
    nose = _rgb(np.array((40, 30, 30) if rng.random() < 0.5 else (225, 140, 150)) + rng.normal(0, 15, 3))
    ink = (25, 20, 20) if rng.random() < 0.6 else (235, 235, 235)
    iris = _rgb(_IRIS[rng.integers(len(_IRIS))] + rng.normal(0, 12, 3))

    def j(s=0.025):   # shape jitter
        return rng.normal(0, s)

    def poly(pts, fill):
        d.polygon([(x * L, y * L) for x, y in pts], fill=fill)

    def line(pts, w=0.014):
        d.line([(x * L, y * L) for x, y in pts], fill=ink, width=max(1, round(w * L)))

    def eyes(y, dx):
        r = rng.uniform(0.045, 0.065)
        for s in (-1, 1):
            x = 0.5 + s * dx
            poly(_oval(x, y, r, r * rng.uniform(0.8, 1.1)), iris)
            poly(_oval(x, y, r * 0.55, r * 0.6), (15, 12, 12))
            poly(_oval(x + r * 0.25, y - r * 0.3, r * 0.18, r * 0.18), (250, 250, 250))

    if label == "cats":
        for s in (-1, 1):                                         # pointed triangular ears
            tip = (0.5 + s * (0.32 + j()), 0.04 + j(0.02))
            poly([(0.5 + s * 0.05, 0.32), tip, (0.5 + s * 0.40, 0.50)], fur)
            poly([(0.5 + s * 0.12, 0.34), (tip[0] - s * 0.03, tip[1] + 0.09), (0.5 + s * 0.33, 0.46)],
                 accent)
        poly(_oval(0.5, 0.6, 0.40, 0.35 + j(0.02)), fur)         # round face
        for s in (-1, 1):
            poly(_oval(0.5 + s * 0.07, 0.77, 0.085, 0.065), light)
        eyes(0.53 + j(0.01), 0.16)
        poly([(0.45, 0.69), (0.55, 0.69), (0.5, 0.745)], nose)    # small triangular nose
        line([(0.5, 0.745), (0.5, 0.79), (0.44, 0.83)])
        line([(0.5, 0.79), (0.56, 0.83)])
        for s in (-1, 1):                                         # whiskers
            for k in (-1, 0, 1):
                end = (0.5 + s * (0.47 + j()), 0.73 + 0.07 * k + j(0.015))
                line([(0.5 + s * 0.14, 0.77 + 0.02 * k), end], 0.01)
    else:
        poly(_oval(0.5, 0.43, 0.29, 0.36 + j(0.02)), fur)        # long face
        poly(_oval(0.5, 0.72, 0.19 + j(0.01), 0.16), light)       # muzzle
        for s in (-1, 1):                                         # floppy ears hanging down
            tilt = -s * (0.3 + j(0.08))                         # radians; bottoms splay outwards
            poly(_oval(0.5 + s * 0.3, 0.45 + j(0.02), 0.125, 0.3 + j(0.02), tilt), accent)
        eyes(0.38 + j(0.01), 0.12)
        poly(_oval(0.5, 0.64, 0.085, 0.055), nose)                # big round nose
        line([(0.5, 0.69), (0.5, 0.77)])
        line([(0.40, 0.76), (0.45, 0.79), (0.5, 0.77), (0.55, 0.79), (0.60, 0.76)])
    return layer


def _background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A linear gradient between two random colours, in a random direction (computed at 1/8 size)."""
    c0, c1 = rng.uniform(0, 255, (2, 3))
    a = rng.uniform(0, 2 * np.pi)
    sw, sh = -(-w // 8), -(-h // 8)
    t = np.cos(a) * np.arange(sw)[None, :] + np.sin(a) * np.arange(sh)[:, None]
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    small = Image.fromarray((c0 + (c1 - c0) * t[..., None]).astype(np.uint8), "RGB")
    return small.resize((w, h), Image.BILINEAR)


def _clutter(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int) -> None:
    """One distractor: an ellipse, a rectangle, a polyline or a random polygon."""
    col = _rgb(rng.uniform(0, 255, 3))
    x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.04, 0.2) * min(w, h)
    kind = rng.integers(4)
    if kind == 0:
        d.ellipse([x - r, y - r * rng.uniform(0.3, 1), x + r, y + r * rng.uniform(0.3, 1)], fill=col)
    elif kind == 1:
        d.rectangle([x - r, y - r * rng.uniform(0.2, 1), x + r * rng.uniform(0.2, 1), y + r], fill=col)
    elif kind == 2:
        pts = [(x, y)] + [tuple(rng.uniform(-2 * r, 2 * r, 2) + (x, y)) for _ in range(rng.integers(1, 4))]
        d.line(pts, fill=col, width=int(rng.integers(1, 4) * _SS))
    else:
        d.polygon([tuple(rng.uniform(-r, r, 2) + (x, y)) for _ in range(rng.integers(3, 7))], fill=col)


def draw_example(label: str, rng: np.random.Generator, size: int = 160) -> Image.Image:
    """One RGB demo image of class `label` ("cats" or "dogs"); its longer side is `size` pixels."""
    if label not in CLASSES:
        raise ValueError(f"label must be one of {sorted(CLASSES)}, not {label!r}")
    ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))   # width / height
    W, H = (size, max(1, round(size / ratio))) if ratio >= 1 else (max(1, round(size * ratio)), size)
    w, h = W * _SS, H * _SS
    canvas = _background(rng, w, h)
    d = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(1, 5)):
        _clutter(d, rng, w, h)
    s = np.sqrt(rng.uniform(0.4 ** 2, 0.8 ** 2)) * min(w, h)      # head size: area uniform, 40%-80%
    # The head draws from its own stream, so everything else is identical for both labels: one seed
    # gives a cat and a dog in the same scene, colours and pose.
    head = _head(label, np.random.default_rng(rng.integers(2 ** 63)), max(8, round(s)))
    head = head.resize((max(1, round(s * rng.uniform(0.85, 1.18))), max(8, round(s))), Image.BICUBIC)
    head = head.rotate(rng.uniform(-30, 30), resample=Image.BILINEAR, expand=True)
    cx = rng.uniform(min(s / 2, w / 2), max(w - s / 2, w / 2))
    cy = rng.uniform(min(s / 2, h / 2), max(h - s / 2, h / 2))
    canvas.paste(head, (round(cx - head.width / 2), round(cy - head.height / 2)), head)
    a = np.asarray(canvas.reduce(_SS), dtype=np.float32)
    a = (a - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-20, 20)   # contrast, brightness
    a += rng.normal(0, rng.uniform(2, 12), a.shape)                      # sensor noise
    return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "RGB")


def _is_complete(root: Path, params: dict) -> bool:
    try:
        return json.loads((root / MARKER).read_text()) == params
    except (OSError, ValueError):
        return False


def _params(counts, size, seed) -> tuple[dict, dict]:
    counts = {str(k): int(v) for k, v in (DEMO_COUNTS if counts is None else counts).items()}
    return counts, {"version": _VERSION, "seed": int(seed), "size": int(size), "counts": counts}


def is_ready(root, counts=None, size=160, seed=0) -> bool:
    """True if `root` holds the complete demo dataset for these parameters (nothing to generate or wait for)."""
    return _is_complete(Path(root), _params(counts, size, seed)[1])


def _progress_file(root: Path) -> Path:
    return root.parent / f".{root.name}.progress"


def _read_progress(root: Path) -> float:
    try:
        return min(1.0, max(0.0, float(_progress_file(root).read_text())))
    except (OSError, ValueError):
        return 0.0


def make_demo_dataset(root, counts=None, size=160, seed=0, progress=None) -> Path:
    """Write the demo dataset under `root` (train/validation/test x cats/dogs) and return its Path.

    Generated once: under a lock on `root`'s parent folder (other threads and processes asking for it meanwhile wait,
    then find it complete), in a sibling temporary folder renamed into place, so `root` never holds half a
    dataset; a dataset already there with the same parameters is kept as is. `progress(fraction, text)`, if
    given, is called while this call generates the data or waits for another one to (same fractions).
    """
    root = Path(root)
    counts, params = _params(counts, size, seed)
    if _is_complete(root, params):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(root.parent, os.O_RDONLY)  # the parent folder is the lock: no lock file to leave behind
    try:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:  # another page, tab or run is generating it: wait, showing its progress
                if progress:
                    done = _read_progress(root)
                    progress(done, f"Another page or run is generating the demo data (once): {done:.0%}")
                time.sleep(0.25)
        if not _is_complete(root, params):  # it may have been completed while we waited
            _generate(root, counts, params, size, progress)
    finally:
        os.close(lock)  # releases the lock
    return root


def _generate(root: Path, counts: dict, params: dict, size: int, progress) -> None:
    if root.exists() and not (root / MARKER).exists():   # refuse to delete a folder that is not ours
        foreign = set(os.listdir(root)) - set(counts) - set(DEMO_COUNTS)
        if foreign:
            raise FileExistsError(f"{root} holds files that are not a demo dataset: {sorted(foreign)[:3]}")
    total, done = 2 * sum(counts.values()), 0
    step = max(1, total // 100)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        for split, n in counts.items():
            for label, stem in CLASSES.items():
                folder = tmp / split / label
                folder.mkdir(parents=True)
                for i in range(n):   # each image is a pure function of (seed, split, class, index, size)
                    rng = np.random.default_rng([params["seed"], zlib.crc32(split.encode()),
                                                 list(CLASSES).index(label), i, params["size"]])
                    draw_example(label, rng, size).save(folder / f"{stem}.{i}.jpg", quality=90)
                    done += 1
                    if done % step == 0 or done == total:
                        _report(root, done / total, total, progress)
        (tmp / MARKER).write_text(json.dumps(params, sort_keys=True))
        os.chmod(tmp, 0o755)
        if root.exists():                                  # move the stale dataset aside, then swap
            trash = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
            os.replace(root, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):
            _progress_file(root).unlink()


def _report(root: Path, fraction: float, total: int, progress) -> None:
    """Share the fraction done with waiting callers (a small file beside `root`) and tell our own caller."""
    with contextlib.suppress(OSError):
        with replacing(_progress_file(root)) as tmp:
            tmp.write_text(f"{fraction:.4f}")
    if progress:
        progress(fraction, f"Generating the demo data ({total:,} drawn images, once): {fraction:.0%}")


def demo_dataset_path(home, progress=None) -> Path:
    """The default demo dataset under the lab's home folder, generated on first use (see make_demo_dataset)."""
    return make_demo_dataset(Path(home) / "datasets" / "demo", progress=progress)
