"""The one image-upload path (`core.data.folders.decode_upload`, shown by `pages.ui.image_upload`): every bad file
becomes one sentence naming the file (issue 10, defects 2 and 10), a good one decodes exactly as `load_image` does."""
import io

import numpy as np
import pytest
from PIL import Image

from core.data.folders import MAX_PIXELS, decode_upload, load_image
from tests.conftest import huge_png


def _png(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(arr).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("side", [9500, 12000])
def test_a_huge_upload_is_refused_as_too_large_in_one_sentence_naming_the_file(side):
    data = huge_png(side)
    assert len(data) < 100_000 and side * side > 2 * MAX_PIXELS  # Pillow itself raises DecompressionBombError
    image, error = decode_upload("huge.png", data, 150)
    assert image is None
    assert error.startswith("huge.png is too large") and error.count(". ") == 0 and error.endswith(".")


def test_an_upload_over_the_pixel_limit_but_under_pillows_error_is_refused_too():
    image, error = decode_upload("big.png", huge_png(7000), 150)  # 49 M pixels: Pillow only warns
    assert image is None and "big.png is too large (7000x7000 pixels" in error


@pytest.mark.parametrize("name, data, words", [
    ("notes.png", b"these are my notes, not a picture", "is not an image the lab can read"),
    ("empty.jpg", b"", "is empty (0 bytes)"),
])
def test_an_unusable_upload_names_the_file_and_the_reason_only(name, data, words):
    image, error = decode_upload(name, data, 150)
    assert image is None and error.startswith(f"{name} {words}")
    assert "UploadedFile" not in error and "BytesIO" not in error and "0x" not in error


def test_a_truncated_upload_is_damaged_not_a_traceback():
    data = _png(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    image, error = decode_upload("cut.png", data[: len(data) // 2], 32)
    assert image is None and error.startswith("cut.png is damaged or truncated")


def test_an_upload_is_named_by_its_file_name_not_a_path():
    _, error = decode_upload("../../etc/notes.png", b"text", 32)
    assert error.startswith("notes.png ")


def test_a_good_upload_decodes_exactly_as_load_image(tmp_path):
    arr = np.random.default_rng(1).integers(0, 255, (30, 50, 4), dtype=np.uint8)  # RGBA: composited on white
    (tmp_path / "a.png").write_bytes(_png(arr))
    image, error = decode_upload("a.png", (tmp_path / "a.png").read_bytes(), 24)
    assert error is None
    np.testing.assert_array_equal(image, load_image(tmp_path / "a.png", 24))
