"""Shared fixtures: an isolated lab home per test, tiny generated image folders, the shared/ data."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data" / "cats_vs_dogs_small"
SHARED_WEIGHTS = SHARED / "weights"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh TUNELAB_HOME for one test."""
    path = tmp_path / "home"
    monkeypatch.setenv("TUNELAB_HOME", str(path))
    return path


def write_image(path: Path, label: int, rng: np.random.Generator, size=(40, 32)) -> None:
    """A tiny learnable image: class 0 bright on the left half, class 1 bright on the right."""
    w, h = size
    arr = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    half = slice(0, w // 2) if label == 0 else slice(w // 2, w)
    arr[:, half] = np.clip(arr[:, half].astype(int) + 170, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_folder(root: Path, per_class: dict[str, int], classes=("cats", "dogs"), seed=0) -> Path:
    """{split: n per class} -> root/split/class/*.png ; split "" means an unsplit folder."""
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for label, cls in enumerate(classes):
            for i in range(n):
                write_image(root / split / cls / f"{cls}.{i}.png", label, rng)
    return root


@pytest.fixture
def tiny_data(tmp_path):
    return make_folder(tmp_path / "tiny", {"train": 12, "validation": 6, "test": 4})


def needs_shared(*parts):
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is absent (../shared is only beside the project "
                                                        f"on the lab's own machines)")


def cli(*args, home, check=True, timeout=600):
    env = dict(os.environ, TUNELAB_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "core", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc
