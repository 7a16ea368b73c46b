"""Browser tests of what a new user meets (issue 10), in the real dashboard in headless Chromium.

A huge or broken upload on the Augmentation page (one sentence naming the file, the page intact), weights the Model
page must refuse (a missing file is never saved as ImageNet; a file made for another backbone is named as such),
the fine-tuning charts (no plotly "new text", titles clear of the toolbar), presentation mode's metric sizes and no
Deploy button. The lab home uses a tiny data folder (no demo generation), an empty Keras cache, and holds one fake
finished fine-tuning run. Reuses the server, browser and page fixtures of tests/test_browser.py.
"""
from __future__ import annotations

import re

import pytest

from tests.conftest import huge_png, make_folder
from tests.test_browser import (CHROMIUM, assert_no_exception, browser, page, server, wait_for,  # noqa: F401
                                wait_idle)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: the browser tests drive Debian's "
                                                     f"Chromium (apt-get install chromium; .ci/run does it as root)"),
]
SHOTS = "/tmp"  # screenshots looked at by whoever runs these tests; not part of the docs


@pytest.fixture(scope="module")
def app_home(tmp_path_factory):
    """A lab home with a tiny dataset in use, a MobileNetV2 weights file, and one finished fine-tuning run."""
    import keras

    from core import settings
    from core.config import RunSpec
    from core.runs import store
    root = tmp_path_factory.mktemp("browser_ux")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNELAB_HOME", str(home))
        settings.update(data=str(make_folder(home / "data", {"train": 4, "validation": 2})))
        spec = RunSpec.from_recipe("fine_tune", weights="none", image_size=48, epochs=3, fine_tune_epochs=3)
        run_id = store.create_run(spec.to_dict(), "tiny fine-tuning", "fine_tune", "vgg16", 6)
        for epoch in range(1, 7):
            store.record_epoch(run_id, epoch, "head" if epoch <= 3 else "fine_tune",
                               {"loss": 1 / epoch, "accuracy": 0.5 + epoch / 20, "val_loss": 1.2 / epoch,
                                "val_accuracy": 0.5 + epoch / 25, "seconds": 1.0})
        store.set_status(run_id, "finished")
    (home / "weights").mkdir()
    keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3)).save_weights(
        home / "weights" / "mobilenet_v2_32.weights.h5")
    mp = pytest.MonkeyPatch()
    mp.setenv("KERAS_HOME", str(root / "keras"))  # for the server: no ImageNet weights cached
    yield home
    mp.undo()


def alerts(pg) -> str:
    return " | ".join(pg.locator('[data-testid="stAlert"]').all_inner_texts())


def open_page(pg, server, path: str) -> None:
    pg.goto(f"{server}/{path}")
    pg.locator("h1").first.wait_for(timeout=60_000)
    wait_idle(pg, timeout=120)


def test_a_huge_or_broken_upload_is_one_sentence_and_the_augmentation_page_stays_whole(server, page):
    pg = page
    open_page(pg, server, "Augmentation")
    pg.get_by_text("Upload your own", exact=True).click()
    wait_idle(pg)
    uploader = pg.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploader.set_input_files({"name": "huge.png", "mimeType": "image/png", "buffer": huge_png(9500)})
    wait_for(pg, lambda: "huge.png is too large" in alerts(pg), "the too-large sentence")
    wait_idle(pg)
    assert_no_exception(pg)
    assert pg.get_by_role("heading", name="Use it").count() == 1 and pg.get_by_role("tab").count() == 3
    uploader.set_input_files({"name": "notes.png", "mimeType": "image/png", "buffer": b"my notes, not a picture"})
    wait_for(pg, lambda: "notes.png is not an image the lab can read" in alerts(pg), "the not-an-image sentence")
    wait_idle(pg)
    assert_no_exception(pg)
    assert "UploadedFile" not in alerts(pg) and "file_id" not in alerts(pg)
    pg.screenshot(path=f"{SHOTS}/ux_augmentation_upload_refused.png")


@pytest.mark.nightly  # about 15 s in a browser; tests/test_pages_ux.py checks the same refusal with AppTest by default
def test_a_missing_weights_file_is_refused_and_never_saved_as_imagenet(server, page):
    pg = page
    open_page(pg, server, "Model")
    pg.get_by_text("Local file", exact=True).click()
    wait_idle(pg)
    box = pg.get_by_label(re.compile("Weights file"))
    box.fill("/nonexistent/x.h5")
    box.press("Enter")
    wait_for(pg, lambda: "/nonexistent/x.h5 does not exist" in alerts(pg), "the missing-file sentence")
    wait_idle(pg)
    pg.get_by_role("button", name="Use this model for training").click()
    wait_for(pg, lambda: "Not saved" in alerts(pg), "the refusal")
    assert "Train page will use" not in alerts(pg)  # before: "The Train page will use VGG16, ImageNet…"
    assert_no_exception(pg)


@pytest.mark.nightly  # about 9 s in a browser; tests/test_weights.py refuses another backbone's file by default
def test_a_weights_file_made_for_another_backbone_is_named_before_training(server, page, app_home):
    pg = page
    open_page(pg, server, "Model")  # VGG16 by default
    pg.get_by_text("Local file", exact=True).click()
    wait_idle(pg)
    box = pg.get_by_label(re.compile("Weights file"))
    box.fill(str(app_home / "weights" / "mobilenet_v2_32.weights.h5"))
    box.press("Enter")
    wait_for(pg, lambda: "does not fit VGG16 without its top" in alerts(pg), "the mismatch sentence", timeout=120)
    text = alerts(pg)
    assert "layers do not match the file, starting with block1_conv1" in text and "--weights" not in text
    wait_idle(pg)
    pg.get_by_role("button", name="Use this model for training").click()
    wait_for(pg, lambda: "Not saved" in alerts(pg), "the refusal")
    assert_no_exception(pg)
    pg.screenshot(path=f"{SHOTS}/ux_model_weights_refused.png")


def test_fine_tuning_charts_show_no_new_text_and_their_titles_clear_of_the_toolbar(server, page):
    pg = page
    open_page(pg, server, "Train")
    chart = pg.locator(".js-plotly-plot").first
    chart.wait_for(timeout=60_000)
    wait_idle(pg)
    texts = chart.locator("text").evaluate_all("els => els.map(e => e.textContent)")
    assert "new text" not in texts and "fine-tune starts" in texts, texts
    modebar = chart.locator(".modebar").bounding_box()
    for title in ("Accuracy", "Loss"):
        box = chart.locator("text", has_text=re.compile(f"^{title}$")).first.bounding_box()
        overlaps = not (box["x"] + box["width"] <= modebar["x"] or modebar["x"] + modebar["width"] <= box["x"]
                        or box["y"] + box["height"] <= modebar["y"] or modebar["y"] + modebar["height"] <= box["y"])
        assert not overlaps, (title, box, modebar)
    assert_no_exception(pg)
    pg.screenshot(path=f"{SHOTS}/ux_train_fine_tuning_charts.png", full_page=True)


def test_presentation_mode_makes_metric_values_larger_not_smaller_and_there_is_no_deploy_button(server, page):
    pg = page
    size = ("e => parseFloat(getComputedStyle(e.querySelector('[data-testid=\"stMarkdownContainer\"] p') || e)"
            ".fontSize)")

    def metric_sizes():
        value = pg.locator('[data-testid="stMetricValue"]').first
        label = pg.locator('[data-testid="stMetricLabel"]').first
        value.wait_for(timeout=60_000)
        return value.evaluate(size), label.evaluate(size)

    open_page(pg, server, "Train")
    normal_value, normal_label = metric_sizes()
    open_page(pg, server, "Train?present=1")
    big_value, big_label = metric_sizes()
    assert big_value >= normal_value and big_value > big_label, (normal_value, big_value, big_label)
    assert pg.get_by_role("button", name="Deploy").count() == 0  # .streamlit/config.toml: toolbarMode "viewer"
