"""A run's card: what it takes to reproduce it (seed, determinism, library versions, data, precision, host).

Written by the worker at each start (`write`) into the run's folder (`core.runs.artifacts.run_card`) and
read by the Compare page and `python -m core card RUN` (`read`). `determinism` switches a process to
reproducible training: Keras's seed (Python, NumPy, TensorFlow) plus TensorFlow's op determinism.
Imports TensorFlow only inside `determinism` and `write`.
"""
from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

from core.atomic import replacing
from core.data.augment_presets import ENGINES
from core.runs import artifacts

ENGINE_TEXT = {"none": "none (the run does not augment)", **ENGINES}
LIBRARIES = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "ml_dtypes", "protobuf")


def determinism(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and TensorFlow from `seed`; with `deterministic`, also make TensorFlow's ops
    deterministic (same inputs, same outputs, on this machine), which some ops pay for in speed."""
    import keras
    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()


def versions() -> dict[str, str]:
    """The installed versions of the libraries that decide a run's numbers (absent ones left out)."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def manifest_hash(path: Path) -> str | None:
    """The SHA-256 of the run's recorded split (split.json): equal hashes, the same images in the same splits."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def build(run_id: str, spec, precision_used: str) -> dict:
    """The card of run `run_id` as it starts now."""
    from core.models.precision import host
    machine = host()
    return {"run_id": run_id, "seed": spec.seed, "deterministic": bool(spec.deterministic),
            "augmentation_engine": spec.augment_engine if spec.augmenting else "none",
            "precision": precision_used, "versions": versions(),
            "data_manifest_sha256": manifest_hash(artifacts.split_manifest(run_id)),
            "host": {"cpu": machine["cpu"], "kind": machine["kind"], "cores": machine["cores"]}}


def write(run_id: str, card: dict, lease=None) -> Path:
    """Store `card` in the run's folder (complete or absent; only while `lease` is held)."""
    path = artifacts.run_card(run_id)
    with replacing(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(card, indent=2))
        if lease is not None:
            lease.check()
    return path


def read(run_id: str) -> dict | None:
    """The run's card, or None for a run started before cards existed (or not started yet)."""
    try:
        return json.loads(artifacts.run_card(run_id).read_text())
    except (OSError, ValueError):
        return None


def rows(card: dict) -> list[tuple[str, str]]:
    """The card as (what, value) rows for a table."""
    out = [("seed", str(card["seed"])),
           ("determinism", "TensorFlow op determinism on" if card["deterministic"] else "seeded only (not deterministic)"),
           ("augmentation engine", ENGINE_TEXT.get(card.get("augmentation_engine"), "not recorded")),
           ("precision", card["precision"]),
           ("data manifest SHA-256", card["data_manifest_sha256"] or "not recorded")]
    out += [(name, version) for name, version in card["versions"].items()]
    out.append(("host", f"{card['host']['cpu']} ({card['host']['kind']}, {card['host']['cores']} cores)"))
    return out
