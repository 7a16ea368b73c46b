"""The lab's persistent settings (home()/settings.json): the dataset in use, the augmentation chosen
for training, the user's saved augmentation presets, and the model draft from the Model page.

Shared by every browser tab and kept across server restarts; written atomically. A home folder that
cannot be written (read-only, disk full) makes `update` raise RuntimeError naming it; nothing is half-written.
"""
from __future__ import annotations

import json
import threading

from core.runs import store
from core.atomic import replacing
from core.data.augment_config import AugmentConfig

_LOCK = threading.Lock()
DEFAULTS = {"data": None, "augment": None, "presets": {}, "model": {}}


def _path():
    return store.home() / "settings.json"


def load() -> dict:
    try:
        data = json.loads(_path().read_text())
    except (OSError, ValueError, RuntimeError):
        data = {}
    if not isinstance(data, dict):  # a hand-edited or damaged file: fall back to the defaults
        data = {}
    return {**DEFAULTS, **{k: v for k, v in data.items() if k in DEFAULTS}}


def update(**changes) -> dict:
    """Merge `changes` into the settings file and return the new settings."""
    unknown = set(changes) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    with _LOCK:
        data = {**load(), **changes}
        path = _path()
        try:
            with replacing(path) as tmp:
                tmp.write_text(json.dumps(data, indent=2))
        except OSError as exc:
            raise RuntimeError(f"Cannot save the lab's settings in {path.parent} ({exc.strerror or exc}): free some "
                               f"space or make the folder writable (or set TUNELAB_HOME to another folder).") from exc
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
