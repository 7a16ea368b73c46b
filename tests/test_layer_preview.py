"""Keras preprocessing layers beside ImageDataGenerator: same image, same directions, differences named."""
from __future__ import annotations

import numpy as np

from core.data.augment_config import AugmentConfig
from core.data.layer_preview import differences, layer_copies
from core.data.preview import augmented_copies
from tests.conftest import SHARED_DATA, needs_shared


def _filled_rows_and_columns(img: np.ndarray) -> tuple[int, int]:
    black = img.max(axis=2) == 0
    return int(black.all(axis=1).sum()), int(black.all(axis=0).sum())


def test_a_horizontal_shift_moves_columns_in_both_pipelines():
    white = np.full((40, 60, 3), 255, dtype=np.uint8)
    cfg = AugmentConfig(width_shift_range=0.3, fill_mode="constant", cval=0.0)
    for name, copies in (("layers", layer_copies(white, cfg, 3, 6)),
                         ("ImageDataGenerator", [c for c, _ in augmented_copies(white, cfg, 3, 6)])):
        rows, cols = zip(*map(_filled_rows_and_columns, copies))
        assert max(cols) > 0 and max(rows) == 0, (name, rows, cols)  # filled columns, never rows


@needs_shared("data", "cats_vs_dogs_small")
def test_a_real_photo_flipped_horizontally_by_the_layers_is_its_mirror_image():
    from core.data.folders import load_image
    photo = load_image(next((SHARED_DATA / "train" / "cats").iterdir()), 64)
    assert not np.array_equal(photo, photo[:, ::-1])  # asymmetric
    copies = layer_copies(photo, AugmentConfig(horizontal_flip=True), 0, 8)
    kinds = {"same" if np.array_equal(c, photo) else "mirror" if np.array_equal(c, photo[:, ::-1]) else "other"
             for c in copies}
    assert kinds == {"same", "mirror"}  # left-right only: never upside down, as ImageDataGenerator


def test_the_differences_name_rotation_as_a_fraction_of_a_turn_and_the_fill_default():
    notes = " ".join(differences(AugmentConfig(rotation_range=40, zoom_range=0.2, horizontal_flip=True)))
    assert "fraction of a full turn" in notes and '"reflect"' in notes and "horizontal_and_vertical" in notes


def test_augmentation_page_shows_both_pipelines_and_names_the_differences(home, tmp_path, monkeypatch):
    from core import settings
    from tests.conftest import make_folder
    from tests.test_pages import run_page
    monkeypatch.setenv("TUNELAB_DATA_ROOTS", str(tmp_path))
    settings.update(data=str(make_folder(tmp_path / "data", {"train": 4, "validation": 2})))
    at = run_page("pages/1_Augmentation.py")
    at.toggle(key="aug_keras").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(m.value for m in at.markdown)
    assert "Keras preprocessing layers" in text and "fraction of a full turn" in text
