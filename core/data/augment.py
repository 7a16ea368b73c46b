"""Data augmentation for Fine-Tuning Lab: the configuration and THE transform.

The transform is Keras's legacy ``ImageDataGenerator`` (imported from
``tensorflow.keras.preprocessing.image``; ``keras.preprocessing.image`` has no
``ImageDataGenerator`` in Keras 3), so every parameter means exactly what it
means in Chollet's lecture (Deep Learning with Python, ch. 5).  The training
input pipeline and the dashboard preview both call :func:`augment_image`, so
the pixels a student previews are the pixels the network is trained on.

Public API
----------
``AugmentConfig``       dataclass of ImageDataGenerator arguments; its field
                        metadata is the single source of truth of the
                        parameter table (see :func:`param_table`).
``PRESETS`` / ``PRESET_TITLES`` / ``get_preset(name)``
``param_table()``       one dict per field, for building UI widgets.
``image_seed(base_seed, epoch, index)``  deterministic per-image seed.
``augment_image(image, cfg, seed)``      -> (float32 image 0-255, drawn params)
``augment_batch(images, cfg, seeds)``    -> float32 batch 0-255
``apply_rescale(images, cfg)``           -> images * cfg.rescale (float32)

What was found empirically in Keras 3.15 (``keras.src.legacy.preprocessing``)
---------------------------------------------------------------------------
* ``get_random_transform`` draws ``tx`` from ``height_shift_range`` (times the
  height) and ``ty`` from ``width_shift_range`` (times the width), but since
  Keras' ``apply_affine_transform`` swaps the matrix axes ("M' = PMP"),
  ``tx`` moves the content HORIZONTALLY and ``ty`` VERTICALLY, each by minus
  its value (tx = -3 moves the content 3 px to the right).  So a plain
  Keras 3 ``ImageDataGenerator(width_shift_range=...)`` shifts images up and
  down - the known bug keras-team/keras#17398, tf-keras#310.  The lecture's
  Keras 2.0 shifted the documented way, so :func:`augment_image` routes the
  width draw to the parameter that really moves columns and the height draw
  to the one that moves rows.  The routing is decided by a one-off probe
  (:func:`_affine_convention`), so it stays right if Keras fixes the bug.
  ``shift_x_px > 0`` means the content moved right, ``shift_y_px > 0`` down
  (exactly so when the shift is the only transform; combined with a
  rotation the shift happens in the rotated frame, as in Keras).
* The same axis swap makes ``zx`` scale columns (``zoom_x``) and ``zy`` rows,
  and makes a positive ``theta`` rotate the picture COUNTER-CLOCKWISE as
  displayed.  ``rotation_deg`` is reported in that convention
  (positive = counter-clockwise on screen).  Positive ``shear_deg`` slides
  the rows above the centre to the left and those below to the right.
* A side effect of that swap: the pivot of rotation/shear/zoom is the true
  centre only for SQUARE images (for an H x W image Keras pivots about
  row (W-1)/2, column (H-1)/2).  The lab's images are square; non-square
  images get Keras' off-centre pivot unchanged.
* ``get_random_transform(seed=...)`` calls ``np.random.seed`` (global RNG).
  :func:`augment_image` does the draw under a lock and restores the global
  RNG state afterwards, so results depend only on (image, cfg, seed) and
  other users of ``np.random`` are not disturbed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

# Keras' legacy apply_affine_transform calls scipy.ndimage.interpolation.affine_transform,
# which warns on every image; silence exactly that message.
warnings.filterwarnings(
    "ignore", message=r"Please import `affine_transform` from the `scipy.ndimage` namespace",
    category=DeprecationWarning)

__all__ = [
    "AugmentConfig",
    "FILL_MODES",
    "ENGINES",
    "PRESETS",
    "PRESET_TITLES",
    "get_preset",
    "param_table",
    "image_seed",
    "augment_image",
    "augment_batch",
    "apply_rescale",
]

FILL_MODES: tuple[str, ...] = ("constant", "nearest", "reflect", "wrap")

# The engines that can apply a configuration in training (a run's `augment_engine`; `core.data.augmenters`):
# the lecture's ImageDataGenerator transform, or Keras 3's preprocessing layers built from the same parameters.
ENGINES: dict[str, str] = {
    "image_data_generator": "ImageDataGenerator (the lecture's)",
    "keras_layers": "Keras preprocessing layers",
}


def _meta(label: str, unit: str, lo: Any, hi: Any, step: Any, help: str,
          type: str, options: Sequence[str] | None = None) -> dict:
    """Field metadata: label/unit/min/max/step/help (+ type, options)."""
    return {
        "label": label,
        "unit": unit,
        "min": lo,
        "max": hi,
        "step": step,
        "help": help,
        "type": type,
        "options": list(options) if options is not None else None,
    }


@dataclass
class AugmentConfig:
    """ImageDataGenerator's augmentation arguments, with the lecture's meaning.

    The metadata ``min``/``max`` of a numeric field is also its valid range
    (checked by :meth:`validate`).  ``rescale`` is not applied by
    :func:`augment_image`; see :func:`apply_rescale`.
    """

    rotation_range: float = field(default=0.0, metadata=_meta(
        "Rotation", "degrees", 0.0, 180.0, 1.0,
        "Rotate each picture by a random angle in [-r, +r] degrees (lecture: 40).",
        "float"))
    width_shift_range: float = field(default=0.0, metadata=_meta(
        "Horizontal shift", "fraction of width", 0.0, 0.5, 0.01,
        "Shift left/right by up to this fraction of the width (lecture: 0.2).",
        "float"))
    height_shift_range: float = field(default=0.0, metadata=_meta(
        "Vertical shift", "fraction of height", 0.0, 0.5, 0.01,
        "Shift up/down by up to this fraction of the height (lecture: 0.2).",
        "float"))
    shear_range: float = field(default=0.0, metadata=_meta(
        "Shear", "degrees", 0.0, 45.0, 0.1,
        "Shear angle in DEGREES drawn from [-s, +s]; the lecture's 0.2 is a "
        "0.2-degree shear today, practically invisible (radians in 2017's Keras 2.0).",
        "float"))
    zoom_range: float = field(default=0.0, metadata=_meta(
        "Zoom", "x", 0.0, 0.5, 0.01,
        "Zoom factor drawn from [1-z, 1+z] per axis; above 1 zooms OUT "
        "(lecture: 0.2).",
        "float"))
    horizontal_flip: bool = field(default=False, metadata=_meta(
        "Horizontal flip", "", None, None, None,
        "Mirror left-right with probability 1/2 (lecture: on - a cat facing "
        "left is still a cat).",
        "bool"))
    vertical_flip: bool = field(default=False, metadata=_meta(
        "Vertical flip", "", None, None, None,
        "Turn upside down with probability 1/2 (off in the lecture: photos "
        "have an up).",
        "bool"))
    fill_mode: str = field(default="nearest", metadata=_meta(
        "Fill mode", "", None, None, None,
        "How pixels moved in from outside the picture are filled "
        "(lecture: nearest).",
        "choice", FILL_MODES))
    cval: float = field(default=0.0, metadata=_meta(
        "Fill value", "pixel value", 0.0, 255.0, 1.0,
        "Value (0-255) of the filled pixels when fill mode is constant.",
        "float"))
    brightness_range: tuple[float, float] | None = field(default=None, metadata=_meta(
        "Brightness", "x", 0.1, 2.0, 0.05,
        "Multiply brightness by a factor drawn from [low, high]; None = off "
        "(not used in the lecture).",
        "range"))
    channel_shift_range: float = field(default=0.0, metadata=_meta(
        "Channel shift", "pixel value", 0.0, 255.0, 1.0,
        "Add one random value in [-c, +c] to all channels (0-255 units; "
        "not used in the lecture).",
        "float"))
    rescale: float = field(default=1.0 / 255, metadata=_meta(
        "Rescale", "x", 0.0, 1.0, None,
        "Multiplier applied after augmenting (lecture: 1/255); pretrained "
        "backbones use their own preprocess_input instead.",
        "float"))

    def __post_init__(self) -> None:
        # Accept lists (JSON) for the only tuple-valued field.
        if isinstance(self.brightness_range, list):
            self.brightness_range = tuple(self.brightness_range)

    # ---------------------------------------------------------------- dicts
    def to_dict(self) -> dict:
        """JSON-serialisable dict of all fields (brightness_range: list/None)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "brightness_range":
                v = None if v is None else [float(v[0]), float(v[1])]
            elif isinstance(v, (bool, np.bool_)):
                v = bool(v)
            elif isinstance(v, str):
                v = str(v)
            else:
                v = float(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "AugmentConfig":
        """Build and validate a config; unknown keys raise ValueError.

        Missing keys take their defaults; lists are accepted for
        brightness_range.
        """
        if not isinstance(d, dict):
            raise ValueError(f"AugmentConfig.from_dict expects a dict, got {type(d).__name__}")
        kinds = {f.name: f.metadata["type"] for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in d if k not in kinds)
        if unknown:
            raise ValueError(
                f"unknown AugmentConfig key(s): {', '.join(unknown)} "
                f"(known: {', '.join(kinds)})")
        kwargs: dict[str, Any] = {}
        for name, v in d.items():
            kind = kinds[name]
            if kind == "float":
                if not _is_number(v):
                    raise ValueError(f"{name} must be a number, got {v!r}")
                kwargs[name] = float(v)
            elif kind == "bool":
                if not isinstance(v, (bool, np.bool_)):
                    raise ValueError(f"{name} must be true or false, got {v!r}")
                kwargs[name] = bool(v)
            elif kind == "choice":
                if not isinstance(v, str):
                    raise ValueError(f"{name} must be a string, got {v!r}")
                kwargs[name] = v
            else:  # range
                if v is None:
                    kwargs[name] = None
                elif (isinstance(v, (list, tuple)) and len(v) == 2
                      and all(_is_number(x) for x in v)):
                    kwargs[name] = (float(v[0]), float(v[1]))
                else:
                    raise ValueError(
                        f"{name} must be null or a pair [low, high], got {v!r}")
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    # ----------------------------------------------------------- validation
    def validate(self) -> "AugmentConfig":
        """Raise ValueError naming the parameter and its valid range; return self."""
        for f in dataclasses.fields(self):
            m = f.metadata
            v = getattr(self, f.name)
            kind = m["type"]
            if kind == "float":
                lo, hi, unit = m["min"], m["max"], m["unit"]
                if f.name == "rescale":
                    if not _is_number(v) or not math.isfinite(v) or not 0 < v <= hi:
                        raise ValueError(
                            f"rescale must be a number with 0 < rescale <= {hi:g}, got {v!r}")
                    continue
                if not _is_number(v) or not math.isfinite(v) or not lo <= v <= hi:
                    raise ValueError(
                        f"{f.name} must be between {lo:g} and {hi:g} {unit}, got {v!r}")
            elif kind == "bool":
                if not isinstance(v, (bool, np.bool_)):
                    raise ValueError(f"{f.name} must be True or False, got {v!r}")
            elif kind == "choice":
                if v not in m["options"]:
                    raise ValueError(
                        f"{f.name} must be one of {', '.join(m['options'])}, got {v!r}")
            else:  # brightness_range
                if v is None:
                    continue
                lo, hi = m["min"], m["max"]
                ok = (isinstance(v, (tuple, list)) and len(v) == 2
                      and all(_is_number(x) and math.isfinite(x) for x in v))
                if not ok or v[0] <= 0 or not lo <= v[0] <= v[1] <= hi:
                    raise ValueError(
                        f"{f.name} must be None or (low, high) with "
                        f"{lo:g} <= low <= high <= {hi:g} (brightness factors, > 0), got {v!r}")
        return self

    # --------------------------------------------------------------- helpers
    def is_identity(self) -> bool:
        """True when no random transform could change the image."""
        return (self.rotation_range == 0 and self.width_shift_range == 0
                and self.height_shift_range == 0 and self.shear_range == 0
                and self.zoom_range == 0 and not self.horizontal_flip
                and not self.vertical_flip and self.channel_shift_range == 0
                and (self.brightness_range is None
                     or tuple(self.brightness_range) == (1.0, 1.0)))

    def summary(self) -> str:
        """Short human text, e.g. 'rot 40°, shift 0.2/0.2, shear 0.2°, zoom 0.2, h-flip'."""
        parts: list[str] = []
        if self.rotation_range:
            parts.append(f"rot {self.rotation_range:g}°")
        if self.width_shift_range or self.height_shift_range:
            parts.append(f"shift {self.width_shift_range:g}/{self.height_shift_range:g}")
        if self.shear_range:
            parts.append(f"shear {self.shear_range:g}°")
        if self.zoom_range:
            parts.append(f"zoom {self.zoom_range:g}")
        if self.horizontal_flip:
            parts.append("h-flip")
        if self.vertical_flip:
            parts.append("v-flip")
        if (self.brightness_range is not None
                and tuple(self.brightness_range) != (1.0, 1.0)):
            lo, hi = self.brightness_range
            parts.append(f"brightness {lo:g}-{hi:g}")
        if self.channel_shift_range:
            parts.append(f"channel shift {self.channel_shift_range:g}")
        if not parts:
            return "none"
        if self.fill_mode != "nearest":
            fill = f"fill {self.fill_mode}"
            if self.fill_mode == "constant":
                fill += f" {self.cval:g}"
            parts.append(fill)
        return ", ".join(parts)

    def _generator_key(self) -> tuple:
        """Hashable key of everything the generator depends on (not rescale)."""
        br = None if self.brightness_range is None else (
            float(self.brightness_range[0]), float(self.brightness_range[1]))
        return (float(self.rotation_range), float(self.width_shift_range),
                float(self.height_shift_range), float(self.shear_range),
                float(self.zoom_range), bool(self.horizontal_flip),
                bool(self.vertical_flip), str(self.fill_mode), float(self.cval),
                br, float(self.channel_shift_range))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_))


PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    "lecture": AugmentConfig(
        rotation_range=40.0, width_shift_range=0.2, height_shift_range=0.2,
        shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
        fill_mode="nearest"),
    # 2nd edition: RandomFlip("horizontal"), RandomRotation(0.1) (0.1 of a
    # full turn = 36 degrees), RandomZoom(0.2).  Those layers fill with
    # "reflect" by default, so the preset does too.
    "second_edition": AugmentConfig(
        horizontal_flip=True, rotation_range=36.0, zoom_range=0.2,
        fill_mode="reflect"),
}

PRESET_TITLES: dict[str, str] = {
    "none": "No augmentation",
    "lecture": "Lecture (Deep Learning with Python, 1st ed.): rotate 40°, "
               "shift 0.2, shear 0.2°, zoom 0.2, horizontal flip",
    "second_edition": "Deep Learning with Python, 2nd ed.: horizontal flip, "
                      "rotate 36°, zoom 0.2",
}


def get_preset(name: str) -> AugmentConfig:
    """A fresh copy of ``PRESETS[name]`` (safe to modify)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name])


def param_table() -> list[dict]:
    """One row per AugmentConfig field, built from the field metadata.

    Keys: name, default (JSON-friendly), label, unit, min, max, step, help,
    type ("float", "bool", "choice" or "range" = optional (low, high) pair),
    options (choices for "choice", else None).
    """
    defaults = AugmentConfig().to_dict()
    rows = []
    for f in dataclasses.fields(AugmentConfig):
        m = f.metadata
        rows.append({
            "name": f.name,
            "default": defaults[f.name],
            "label": m["label"],
            "unit": m["unit"],
            "min": m["min"],
            "max": m["max"],
            "step": m["step"],
            "help": m["help"],
            "type": m["type"],
            "options": list(m["options"]) if m["options"] is not None else None,
        })
    return rows


# ------------------------------------------------------------------ seeding
def image_seed(base_seed: int, epoch: int, index: int) -> int:
    """Deterministic, well-mixed seed in [0, 2**32 - 1) for one image.

    ``index`` is the image's position in the epoch's order or its file index
    (the caller decides).  Arguments must be non-negative integers.
    """
    vals = []
    for name, v in (("base_seed", base_seed), ("epoch", epoch), ("index", index)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        vals.append(int(v))
    state = np.random.SeedSequence(vals).generate_state(1, dtype=np.uint32)[0]
    return int(state) % (2**32 - 1)


# ------------------------------------------------------------ the transform
_RNG_LOCK = threading.Lock()


@functools.lru_cache(maxsize=64)
def _generator(key: tuple):
    """ImageDataGenerator for a config key (no rescale: that is separate)."""
    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    (rot, wsr, hsr, shear, zoom, hflip, vflip, fill, cval, br, chs) = key
    return ImageDataGenerator(
        rotation_range=rot, width_shift_range=wsr, height_shift_range=hsr,
        shear_range=shear, zoom_range=zoom, horizontal_flip=hflip,
        vertical_flip=vflip, fill_mode=fill, cval=cval,
        brightness_range=None if br is None else list(br),
        channel_shift_range=chs, rescale=None)


@functools.lru_cache(maxsize=1)
def _affine_convention() -> dict:
    """Probe which ImageDataGenerator shift parameter moves which axis.

    Returns {"col_key", "col_sign", "row_key", "row_sign", "swapped"}:
    content moves right by ``col_sign * params[col_key]`` pixels and down by
    ``row_sign * params[row_key]``.  ``swapped`` is True when ``tx`` (the
    first matrix coordinate, also the one ``zx`` scales) is the column axis,
    as in Keras 3.15.
    """
    gen = _generator(AugmentConfig(fill_mode="constant")._generator_key())
    probe = np.zeros((9, 9, 1), np.float32)
    probe[4, 4, 0] = 1.0
    moves = {}
    for key in ("tx", "ty"):
        out = gen.apply_transform(probe, {key: 2.0})
        r, c = np.unravel_index(int(np.argmax(out[..., 0])), out.shape[:2])
        dr, dc = int(r) - 4, int(c) - 4
        if abs(dr) + abs(dc) != 2 or (dr and dc):
            raise RuntimeError(f"unexpected ImageDataGenerator shift behaviour for {key}")
        moves[key] = ("col", dc // 2) if dc else ("row", dr // 2)
    col_key = "tx" if moves["tx"][0] == "col" else "ty"
    row_key = "ty" if col_key == "tx" else "tx"
    if moves[row_key][0] != "row":
        raise RuntimeError("ImageDataGenerator tx and ty move the same axis")
    return {"col_key": col_key, "col_sign": moves[col_key][1],
            "row_key": row_key, "row_sign": moves[row_key][1],
            "swapped": col_key == "tx"}


_NEUTRAL_PARAMS = {
    "rotation_deg": 0.0, "shift_x_px": 0.0, "shift_y_px": 0.0, "shear_deg": 0.0,
    "zoom_x": 1.0, "zoom_y": 1.0, "flip_horizontal": False,
    "flip_vertical": False, "brightness": None, "channel_shift": None,
}


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def augment_image(image: np.ndarray, cfg: AugmentConfig, seed: int) -> tuple[np.ndarray, dict]:
    """Randomly transform one image exactly as ImageDataGenerator would.

    ``image``: (H, W, C) array of pixel values 0-255 (float32; uint8 and
    other dtypes are converted).  Returns the transformed float32 image,
    still on the 0-255 scale (rescale is NOT applied), and the drawn
    parameters: rotation_deg (positive = counter-clockwise on screen),
    shift_x_px (> 0: content moved right), shift_y_px (> 0: moved down),
    shear_deg, zoom_x / zoom_y (> 1 zooms out along that axis),
    flip_horizontal, flip_vertical, brightness (factor or None),
    channel_shift (value added or None).  Same (image, cfg, seed) ->
    bit-identical output.
    """
    arr = np.asarray(image)
    if arr.ndim != 3:
        raise ValueError(f"image must be an (H, W, C) array, got shape {arr.shape}")
    arr = arr.astype(np.float32, copy=True)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    if cfg.is_identity():
        return arr, dict(_NEUTRAL_PARAMS)

    gen = _generator(cfg._generator_key())
    conv = _affine_convention()
    with _RNG_LOCK:
        state = np.random.get_state()
        try:
            raw = gen.get_random_transform(arr.shape, seed=int(seed))
        finally:
            np.random.set_state(state)

    # ImageDataGenerator: tx ~ height_shift_range * H, ty ~ width_shift_range * W.
    width_px = float(raw["ty"])
    height_px = float(raw["tx"])
    params = dict(raw)
    params[conv["col_key"]] = width_px   # width draw moves columns
    params[conv["row_key"]] = height_px  # height draw moves rows
    out = gen.apply_transform(arr, params)
    out = np.asarray(out, dtype=np.float32)

    theta = float(raw["theta"])
    zx, zy = float(raw["zx"]), float(raw["zy"])
    drawn = {
        "rotation_deg": theta if conv["swapped"] else -theta,
        "shift_x_px": conv["col_sign"] * width_px + 0.0,
        "shift_y_px": conv["row_sign"] * height_px + 0.0,
        "shear_deg": float(raw["shear"]),
        "zoom_x": zx if conv["swapped"] else zy,
        "zoom_y": zy if conv["swapped"] else zx,
        "flip_horizontal": bool(raw["flip_horizontal"]),
        "flip_vertical": bool(raw["flip_vertical"]),
        "brightness": _opt_float(raw["brightness"]),
        "channel_shift": _opt_float(raw["channel_shift_intensity"]),
    }
    return out, drawn


def augment_batch(images, cfg: AugmentConfig, seeds: Sequence[int]) -> np.ndarray:
    """Apply :func:`augment_image` to each image with its seed; float32 0-255."""
    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ValueError(f"images must be an (N, H, W, C) array, got shape {images.shape}")
        items = list(images)
    else:
        items = list(images)
    seeds = list(seeds)
    if len(seeds) != len(items):
        raise ValueError(f"got {len(items)} images but {len(seeds)} seeds")
    if not items:
        shape = images.shape[1:] if isinstance(images, np.ndarray) else (0, 0, 3)
        return np.zeros((0, *shape), np.float32)
    return np.stack([augment_image(img, cfg, s)[0] for img, s in zip(items, seeds)])


def apply_rescale(images, cfg: AugmentConfig) -> np.ndarray:
    """``images * cfg.rescale`` as float32 (the lecture's rescale=1/255)."""
    return np.asarray(images, dtype=np.float32) * np.float32(cfg.rescale)
