"""The lab's persistent settings (home()/settings.json): the dataset in use, the augmentation chosen
for training, the user's saved augmentation presets, and the model draft from the Model page.

Shared by every browser tab and kept across server restarts; written atomically.
"""
from __future__ import annotations

import json
import os
import threading

from core import store
from core.augment import AugmentConfig

_LOCK = threading.Lock()
DEFAULTS = {"data": None, "augment": None, "presets": {}, "model": {}}


def _path():
    return store.home() / "settings.json"


def load() -> dict:
    try:
        data = json.loads(_path().read_text())
    except (OSError, ValueError):
        data = {}
    return {**DEFAULTS, **{k: v for k, v in data.items() if k in DEFAULTS}}


def update(**changes) -> dict:
    """Merge `changes` into the settings file and return the new settings."""
    unknown = set(changes) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    with _LOCK:
        data = {**load(), **changes}
        tmp = _path().with_name(f".settings.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, tmp.with_name("settings.json"))
    return data


def training_augment() -> AugmentConfig | None:
    """The augmentation chosen on the Augmentation page for training, if any."""
    raw = load()["augment"]
    return AugmentConfig.from_dict(raw) if raw else None


def save_preset(name: str, cfg: AugmentConfig) -> None:
    name = name.strip()
    if not name:
        raise ValueError("Give the preset a name.")
    cfg.validate()
    update(presets={**load()["presets"], name: cfg.to_dict()})


def delete_preset(name: str) -> None:
    update(presets={k: v for k, v in load()["presets"].items() if k != name})
