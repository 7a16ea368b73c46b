"""Download, when online, the standard cats-vs-dogs subset and the backbones' ImageNet weights.

Offline, each download says so in one sentence and changes nothing: the archive is fetched and
unpacked in a temporary folder and moved into place only when complete.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from core.runs import store

DATASET_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"


class OfflineError(RuntimeError):
    pass


def dataset_dir() -> Path:
    return store.home() / "datasets" / "cats_and_dogs_filtered"


def prefetch_dataset(url: str | None = None, timeout: float = 20.0) -> Path:
    """The standard subset (2000 train / 1000 validation images) in the lab's home; downloads it once."""
    url = url or os.environ.get("TUNELAB_DATASET_URL", DATASET_URL)
    final = dataset_dir()
    if (final / "train").is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent) as tmp:
        zip_path = Path(tmp) / "data.zip"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(zip_path, "wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OfflineError(f"Could not download {url} ({reason}): this machine seems to be offline. "
                               f"Nothing was changed; use --data with a local folder or the built-in demo.") from exc
        from core.data.datasets import unpack_zip  # path, link, size and byte-count checks of uploads
        with zipfile.ZipFile(zip_path) as archive:
            unpack_zip(archive, Path(tmp, "x").resolve(), url)
        roots = [p for p in (Path(tmp) / "x").rglob("train") if p.is_dir()]
        if not roots:
            raise ValueError(f"The archive from {url} has no train/ folder.")
        os.replace(roots[0].parent, final)
    return final


def prefetch_weights(backbone: str, image_size: int = 224) -> Path:
    """Download (via Keras's standard loader) and cache a backbone's ImageNet weights."""
    from core.models.environment import imagenet_file
    from core.models.networks import WeightsError, conv_base
    try:
        conv_base(backbone, "imagenet", image_size)
    except WeightsError as exc:
        raise OfflineError(str(exc)) from exc
    return imagenet_file(backbone, image_size)
