"""THE augmentation transform: what training and the dashboard preview both call.

The training input pipeline and the dashboard preview both call :func:`augment_image`, so
the pixels a student previews are the pixels the network is trained on.  The generator it
draws from, and why the width draw is routed to the parameter that moves columns, are in
`core.data.augment_generator`; the configuration is `core.data.augment_config.AugmentConfig`.

``augment_image(image, cfg, seed)``      -> (float32 image 0-255, drawn params)
``augment_batch(images, cfg, seeds)``    -> float32 batch 0-255
``apply_rescale(images, cfg)``           -> images * cfg.rescale (float32)

ImageDataGenerator's ``get_random_transform(seed=...)`` calls ``np.random.seed``
(global RNG).  :func:`augment_image` does the draw under a lock and restores the
global RNG state afterwards, so results depend only on (image, cfg, seed) and
other users of ``np.random`` are not disturbed.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from core.data.augment_config import AugmentConfig
from core.data.augment_generator import _affine_convention, _generator

__all__ = ["augment_image", "augment_batch", "apply_rescale"]

_RNG_LOCK = threading.Lock()

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
