"""Browser test of the Inspect and Ladder pages: the real dashboard in headless Chromium on finished tiny runs.

The lab home holds the session's two tiny from-scratch runs plus a feature-extraction run on a VGG16 base with
random weights (so the Inspect page goes through a nested pretrained base, and the ladder must warn that it is not
ImageNet). Checks that the confusion matrix, the feature maps and the Grad-CAM image render without an exception,
that presentation mode follows the user from page to page, and saves docs/screenshots/inspect.png and ladder.png.
Reuses the server, browser and page fixtures of tests/test_browser.py (with this module's `app_home`).
"""
from __future__ import annotations

import shutil

import pytest

from tests.test_browser import (CHROMIUM, SCREENSHOTS, VIEWPORT, assert_no_exception, browser, go,  # noqa: F401
                                page, report_page_times, server, wait_for, wait_idle, wait_rendered)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: the browser tests drive Debian's "
                                                     f"Chromium (apt-get install chromium; .ci/run does it as root)"),
]


@pytest.fixture(scope="module")
def app_home(trained_lab, tmp_path_factory):
    """A copy of the trained lab home, plus a finished feature-extraction run on a random-weights VGG16."""
    from core.runs import store
    from core.config import RunSpec
    from core.runs.worker import run_worker
    home = tmp_path_factory.mktemp("browser_inspect") / "home"
    shutil.copytree(trained_lab["home"], home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNELAB_HOME", str(home))
        spec = RunSpec.from_recipe("feature_extraction", data=str(trained_lab["data"]), weights="none",
                                   image_size=48, epochs=3, lr=1e-3, head="gap", name="tiny feature extraction")
        run_id = store.create_run(spec.to_dict(), spec.display_name(), spec.recipe, spec.backbone, spec.total_epochs)
        assert run_worker(run_id) == "finished", store.get_run(run_id)["error"]
    import keras
    keras.mixed_precision.set_global_policy("float32")
    return home


def shoot(pg, name: str, height: int) -> None:
    """A screenshot of a tall window (Streamlit scrolls inside its main container, not the page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pg.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    try:
        pg.wait_for_timeout(800)  # let the charts re-lay out
        pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    finally:
        pg.set_viewport_size(VIEWPORT)


def image_loaded(pg, caption_start: str) -> bool:
    """True when an st.image whose caption starts with `caption_start` has decoded pixels."""
    return pg.evaluate("""(start) => [...document.querySelectorAll('[data-testid="stImage"]')].some(el => {
        const cap = el.querySelector('[data-testid="stImageCaption"]');
        const img = el.querySelector('img');
        return cap && cap.innerText.trim().startsWith(start) && img && img.complete && img.naturalWidth > 0; })""",
                       caption_start)


def test_inspect_and_ladder_pages_render(server, page):
    pg = page
    # Enter by the home page, as a user would: a fresh server's first session opened on a sub-page's URL gets
    # Streamlit's old file-name navigation ("app", ...) in the sidebar instead of the app's st.navigation.
    pg.goto(server)
    home = pg.get_by_role("heading", name="Dataset in use")
    wait_rendered(pg, lambda: home.count() > 0, "the home page")
    go(pg, "Inspect", heading="Compare with another run")  # the whole page: loads TensorFlow and the model
    assert_no_exception(pg)
    run_box = pg.get_by_role("combobox", name="Run", exact=True).input_value()
    assert "tiny feature extraction" in run_box, run_box  # the newest run: VGG16 base nested in the model

    confusion = pg.locator(".js-plotly-plot").filter(has_text="predicted class")
    wait_for(pg, lambda: confusion.count() == 1, "the confusion matrix")
    assert "true class" in confusion.inner_text()
    confusion.hover()  # plotly shows its modebar on hover: PNG download on, no plotly logo
    wait_for(pg, lambda: confusion.locator(".modebar-btn[data-title='Download plot as a PNG']").count() == 1,
             "the chart's PNG download button")
    assert confusion.locator(".modebar-btn--logo").count() == 0
    wait_for(pg, lambda: image_loaded(pg, "Grad-CAM for"), "the Grad-CAM image")
    wait_for(pg, lambda: image_loaded(pg, "the first 16 of 64 channels of block1_conv1"), "the feature maps")
    assert pg.locator('[data-testid="stImage"]').count() >= 8  # mistakes gallery, image, Grad-CAM, maps
    assert_no_exception(pg)
    nav = pg.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Home" in nav and "Ladder" in nav, nav
    shoot(pg, "inspect", 3000)

    # presentation mode: switched on here, still on after moving to the Ladder page
    pg.get_by_text("Presentation mode").click()
    wait_for(pg, lambda: pg.evaluate("getComputedStyle(document.documentElement).fontSize") == "20px",
             "presentation mode's larger fonts")
    wait_idle(pg)
    go(pg, "Ladder", heading="The lecture's ladder")
    ladder_chart = pg.locator(".js-plotly-plot").filter(has_text="book (ImageNet VGG16)")
    wait_rendered(pg, lambda: ladder_chart.count() > 0, "the ladder chart")
    assert pg.evaluate("getComputedStyle(document.documentElement).fontSize") == "20px"
    assert pg.get_by_role("switch", name="Presentation mode").is_checked()
    pg.get_by_text("Presentation mode").click()
    wait_idle(pg)
    text = pg.locator('[data-testid="stMain"]').inner_text()
    assert "not Keras's ImageNet weights" in text
    chart_text = pg.locator(".js-plotly-plot").first.inner_text()
    assert "random init" in chart_text and "from scratch" in chart_text
    assert_no_exception(pg)
    shoot(pg, "ladder", 1800)
