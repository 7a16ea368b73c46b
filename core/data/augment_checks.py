"""Validation of augmentation settings against the parameter table: what `AugmentConfig.validate` and
`AugmentConfig.from_dict` (`core.data.augment_config`) run.

Every range, unit and option is read from the field metadata of `AugmentConfig`, so the limits a page's
widgets show are the limits enforced here; nothing about a parameter is written in this module. Errors are
one ValueError naming the parameter and its valid range. Imports neither Streamlit nor TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = ["check", "parse"]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_))


def parse(cls, d: dict) -> dict[str, Any]:
    """The keyword arguments of `cls` (AugmentConfig) from a JSON-style dict; unknown keys raise ValueError.

    Missing keys are left out (they take their defaults); lists are accepted for brightness_range.
    The values' ranges are not checked here: that is :func:`check`.
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
    return kwargs


def check(cfg) -> None:
    """Raise ValueError naming the first parameter of `cfg` (an AugmentConfig) outside its valid range."""
    for f in dataclasses.fields(cfg):
        m = f.metadata
        v = getattr(cfg, f.name)
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
