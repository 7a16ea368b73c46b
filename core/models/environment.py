"""What this machine offers, found without importing TensorFlow or downloading anything.

Versions, GPU presence, the precision "auto" would pick, and for each backbone whether Keras's
ImageNet weights are in its cache (~/.keras/models/, or $KERAS_HOME/models/) and, if not, whether
the download site is reachable.
"""
from __future__ import annotations

import os
import socket
from importlib import metadata
from pathlib import Path

from core.config import BACKBONES
from core.models.precision import cpu_flags

WEIGHTS_HOST = ("storage.googleapis.com", 443)


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def imagenet_file(backbone: str, image_size: int = 224) -> Path:
    """Where Keras caches the backbone's ImageNet (no-top) weights."""
    rows = image_size if image_size in (96, 128, 160, 192, 224) else 224
    return keras_cache_dir() / BACKBONES[backbone].imagenet_file.format(rows=rows)


def online(timeout: float = 1.5) -> bool:
    """True if the weights' download host answers (one TCP connection, nothing downloaded)."""
    try:
        with socket.create_connection(WEIGHTS_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def weights_status(backbone: str, image_size: int = 224, is_online: bool | None = None) -> dict:
    """"cached", "downloadable" or "missing" for the backbone's ImageNet weights."""
    path = imagenet_file(backbone, image_size)
    if path.is_file() and path.stat().st_size > 0:
        status = "cached"
    else:
        status = "downloadable" if (online() if is_online is None else is_online) else "missing"
    return {"backbone": backbone, "title": BACKBONES[backbone].title, "status": status, "path": str(path),
            "cached": status == "cached", "size_mb": BACKBONES[backbone].imagenet_mb}


def describe_weights(weights: str) -> str:
    """A plain statement of which weights a run uses, stored with the run."""
    if weights == "imagenet":
        return "ImageNet (Keras standard weights)"
    if weights == "none":
        return "random initialisation (no pretrained weights)"
    return f"local file {Path(weights).name}"


def _version(*names: str) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def gpu_names() -> list[str]:
    """NVIDIA GPUs the driver reports (no TensorFlow import)."""
    root = Path("/proc/driver/nvidia/gpus")
    names = []
    if root.is_dir():
        for info in root.glob("*/information"):
            for line in info.read_text().splitlines():
                if line.startswith("Model:"):
                    names.append(line.split(":", 1)[1].strip())
    return names


def summary() -> dict:
    flags = cpu_flags()
    bf16 = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    gpus = gpu_names()
    if gpus:
        precision = "mixed_bfloat16 or mixed_float16 (decided by the GPU's compute capability)"
    else:
        precision = "mixed_bfloat16" if bf16 else "float32"
    return {"tensorflow": _version("tensorflow", "tensorflow-cpu"), "keras": _version("keras"),
            "device": ", ".join(gpus) if gpus else f"CPU ({os.cpu_count()} cores)", "gpus": gpus,
            "bf16_instructions": bf16, "auto_precision": precision}
