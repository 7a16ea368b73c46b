"""The augmentation parameter table: `AugmentConfig`, ImageDataGenerator's arguments with the lecture's meaning.

The field metadata of `AugmentConfig` (label, unit, min, max, step, help, type, options) is the single source
of truth of the parameter table: the pages build their widgets from :func:`param_table`, and the checks in
`core.data.augment_checks` read their ranges from it. The presets are in `core.data.augment_presets`, the
transform in `core.data.augment_transform`, the export as code in `core.data.augment_export`.
Imports neither Streamlit nor TensorFlow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from core.data.augment_checks import check, parse

__all__ = ["AugmentConfig", "FILL_MODES", "param_table"]

FILL_MODES: tuple[str, ...] = ("constant", "nearest", "reflect", "wrap")


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
        cfg = cls(**parse(cls, d))
        cfg.validate()
        return cfg

    # ----------------------------------------------------------- validation
    def validate(self) -> "AugmentConfig":
        """Raise ValueError naming the parameter and its valid range; return self."""
        check(self)
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
