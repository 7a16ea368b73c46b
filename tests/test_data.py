"""Scanning data folders: layouts, splits, skipped files and refusals."""
import numpy as np
import pytest

from core.data.folders import DataError, load_image, scan, stratified_split
from tests.conftest import make_folder


def test_presplit_folder_counts(tiny_data):
    ds = scan(tiny_data)
    assert ds.presplit and ds.classes == ["cats", "dogs"]
    assert ds.counts() == {"train": {"cats": 12, "dogs": 12}, "validation": {"cats": 6, "dogs": 6},
                           "test": {"cats": 4, "dogs": 4}}
    assert ds.size_stats["min_width"] == 40 and ds.size_stats["max_height"] == 32


def test_unsplit_folder_is_split_stratified_and_seeded(tmp_path):
    root = make_folder(tmp_path / "flat", {"": 20})
    a, b, c = scan(root, 0.2, 0.1, seed=1), scan(root, 0.2, 0.1, seed=1), scan(root, 0.2, 0.1, seed=2)
    assert not a.presplit
    assert a.counts() == {"train": {"cats": 14, "dogs": 14}, "validation": {"cats": 4, "dogs": 4},
                          "test": {"cats": 2, "dogs": 2}}
    assert a.splits == b.splits and a.splits != c.splits
    all_files = [p for items in a.splits.values() for p, _ in items]
    assert len(all_files) == len(set(all_files)) == 40


def test_bad_files_are_skipped_with_reasons(tiny_data):
    cats = tiny_data / "train" / "cats"
    (cats / "empty.jpg").write_bytes(b"")
    (cats / "text.jpg").write_text("not an image")
    good = (cats / "cats.0.png").read_bytes()
    (cats / "truncated.png").write_bytes(good[: len(good) // 2])
    (cats / "notes.txt").write_text("hello")
    (tiny_data / "README").write_text("stray")
    ds = scan(tiny_data)
    reasons = {p.split("/")[-1]: r for p, r in ((s["path"], s["reason"]) for s in ds.skipped)}
    assert "0 bytes" in reasons["empty.jpg"]
    assert "not an image" in reasons["text.jpg"]
    assert "unreadable" in reasons["truncated.png"]
    assert "extension" in reasons["notes.txt"]
    assert "stray" in reasons["README"]
    assert ds.counts()["train"]["cats"] == 12


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "No usable images"),
    (lambda p: make_folder(p, {"train": 3, "validation": 2}, classes=("cats",)), "Only one class"),
    (lambda p: make_folder(p, {"train": 3}), "no validation"),
])
def test_unusable_folders_are_refused_with_one_sentence(tmp_path, setup, message):
    path = tmp_path / "data"
    setup(path)
    with pytest.raises(DataError, match=message) as info:
        scan(path)
    assert str(path) in str(info.value)


def test_load_image_converts_modes_to_rgb(tmp_path):
    from PIL import Image
    rgba = Image.new("RGBA", (30, 20), (255, 0, 0, 0))
    rgba.save(tmp_path / "a.png")
    Image.new("L", (30, 20), 128).save(tmp_path / "g.png")
    Image.new("CMYK", (30, 20), (0, 255, 0, 0)).save(tmp_path / "c.jpg")
    transparent = load_image(tmp_path / "a.png", 16)
    assert transparent.shape == (16, 16, 3) and transparent.dtype == np.uint8
    assert (transparent == 255).all()  # transparent pixels become white, not the hidden red
    assert (load_image(tmp_path / "g.png", 16) == 128).all()
    cmyk = load_image(tmp_path / "c.jpg", 16).astype(int)
    assert cmyk[..., 0].mean() > 200 and cmyk[..., 1].mean() < 60  # magenta-free CMYK -> red-ish RGB


def test_stratified_split_keeps_every_class_in_validation():
    splits = stratified_split({0: [f"a{i}" for i in range(3)], 1: [f"b{i}" for i in range(50)]}, 0.2, 0.0, 0)
    assert {y for _, y in splits["validation"]} == {0, 1}
