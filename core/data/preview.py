"""Augmentation previews: N augmented copies of one image, drawn exactly as training draws them.

Copy k is `augment_image(image, cfg, image_seed(seed, k, 0))`: the function and the seed scheme
that `core.data.pipeline.ImageBatches` uses for image position 0 of epoch k of a run with this seed.
"""
from __future__ import annotations

import numpy as np

from core.data.augment_config import AugmentConfig
from core.data.augment_seed import image_seed
from core.data.augment_transform import augment_image


def augmented_copies(image: np.ndarray, cfg: AugmentConfig, seed: int, n: int) -> list[tuple[np.ndarray, dict]]:
    """[(uint8 image, drawn parameters)] for copies 0..n-1."""
    out = []
    for k in range(n):
        pixels, params = augment_image(image, cfg, image_seed(seed, k, 0))
        out.append((np.clip(np.rint(pixels), 0, 255).astype(np.uint8), params))
    return out


def describe(params: dict) -> str:
    """The drawn transformation in a short line, e.g. "rot -12.3°, shift +5/-3 px, zoom 1.05×0.97, h-flip"."""
    parts = []
    if params.get("rotation_deg"):
        parts.append(f"rot {params['rotation_deg']:+.1f}°")
    if params.get("shift_x_px") or params.get("shift_y_px"):
        parts.append(f"shift {params.get('shift_x_px') or 0:+.0f}/{params.get('shift_y_px') or 0:+.0f} px")
    if params.get("shear_deg"):
        shear = params["shear_deg"]
        parts.append(f"shear {shear:+.2f}°" if abs(shear) < 1 else f"shear {shear:+.1f}°")
    zx, zy = params.get("zoom_x") or 1, params.get("zoom_y") or 1
    if zx != 1 or zy != 1:
        parts.append(f"zoom {zx:.2f}×{zy:.2f}")
    if params.get("flip_horizontal"):
        parts.append("h-flip")
    if params.get("flip_vertical"):
        parts.append("v-flip")
    if params.get("brightness") is not None:
        parts.append(f"bright ×{params['brightness']:.2f}")
    if params.get("channel_shift"):
        parts.append(f"ch-shift {params['channel_shift']:+.0f}")
    return ", ".join(parts) or "unchanged"
