"""The ImageDataGenerator behind the lab's transform: one cached generator per configuration, and the probe of
which of its shift parameters moves which axis.

The transform is Keras's legacy ``ImageDataGenerator`` (imported from
``tensorflow.keras.preprocessing.image``; ``keras.preprocessing.image`` has no
``ImageDataGenerator`` in Keras 3), so every parameter means exactly what it
means in Chollet's lecture (Deep Learning with Python, ch. 5).  This module only
builds it (:func:`_generator`) and probes its axes (:func:`_affine_convention`);
`core.data.augment_transform` draws and applies the transform.  Imports TensorFlow
only when the first generator is built.

What was found empirically in Keras 3.15 (``keras.src.legacy.preprocessing``)
---------------------------------------------------------------------------
* ``get_random_transform`` draws ``tx`` from ``height_shift_range`` (times the
  height) and ``ty`` from ``width_shift_range`` (times the width), but since
  Keras' ``apply_affine_transform`` swaps the matrix axes ("M' = PMP"),
  ``tx`` moves the content HORIZONTALLY and ``ty`` VERTICALLY, each by minus
  its value (tx = -3 moves the content 3 px to the right).  So a plain
  Keras 3 ``ImageDataGenerator(width_shift_range=...)`` shifts images up and
  down - the known bug keras-team/keras#17398, tf-keras#310.  The lecture's
  Keras 2.0 shifted the documented way, so `core.data.augment_transform.augment_image` routes the
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
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from core.data.augment_config import AugmentConfig

# Keras' legacy apply_affine_transform calls scipy.ndimage.interpolation.affine_transform,
# which warns on every image; silence exactly that message.
warnings.filterwarnings(
    "ignore", message=r"Please import `affine_transform` from the `scipy.ndimage` namespace",
    category=DeprecationWarning)


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
