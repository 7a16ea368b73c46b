"""Browser tests: start the real dashboard (`streamlit run app.py`) and drive it with Playwright in headless Chromium.

One main-path walk (home -> augmentation -> model -> train a tiny run live -> compare) that saves a screenshot of each
page to docs/screenshots/, plus a smoke test that opens every page by its URL. Every page is checked for rendered
exceptions (`data-testid="stException"`). The lab uses the built-in demo data in a temporary TUNELAB_HOME.

Slow (about a minute and a half on two cores): deselect with `-m "not slow"`.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}
SHOT_VIEWPORT = {"width": 1400, "height": 1800}  # Streamlit scrolls inside its main container: shoot a tall window
SCREENSHOTS = ROOT / "docs" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: the browser tests drive Debian's "
                                                     f"Chromium (apt-get install chromium; .ci/run does it as root)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

# VGG16 at 150 px: block4 (1,180,160 + 2 x 2,359,808) + block5 (3 x 2,359,808) trainable from block4_conv1.
TRAINABLE_BLOCK5 = 7_079_424
TRAINABLE_BLOCK4 = 7_079_424 + 1_180_160 + 2 * 2_359_808  # 12,979,200 (`python -m core layers ... --json`)


# -- the server -------------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def log_tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no server log)"


def stop_workers(home: Path) -> None:
    """Stop the runs the app started (workers are detached processes) and kill any that outlive the request."""
    old = os.environ.get("TUNELAB_HOME")
    os.environ["TUNELAB_HOME"] = str(home)
    try:
        from core.runs import runner, store
        if not (home / "runs.sqlite").exists():
            return
        for run in store.list_runs():
            if run["status"] in ("running", "queued"):
                runner.stop(run["id"])
        deadline = time.time() + 20
        while time.time() < deadline and any(r["status"] == "running" and runner.pid_alive(r["pid"])
                                             for r in store.list_runs()):
            time.sleep(0.5)
        for run in store.list_runs():
            if run["status"] == "running" and runner.pid_alive(run["pid"]):
                for kill in (lambda pid: os.killpg(pid, signal.SIGKILL), lambda pid: os.kill(pid, signal.SIGKILL)):
                    try:
                        kill(run["pid"])
                        break
                    except OSError:
                        continue
    finally:
        if old is None:
            os.environ.pop("TUNELAB_HOME", None)
        else:
            os.environ["TUNELAB_HOME"] = old


@pytest.fixture(scope="module")
def app_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser") / "home"


@pytest.fixture(scope="module")
def server(app_home) -> str:
    """`streamlit run app.py` on a free port, in a fresh lab home; yields the base URL."""
    port = free_port()
    log = app_home.parent / "streamlit.log"
    env = dict(os.environ, TUNELAB_HOME=str(app_home), TF_CPP_MIN_LOG_LEVEL="3", TUNELAB_MAX_RUNS="1",
               PYTHONUNBUFFERED="1")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    url = f"http://localhost:{port}"
    try:
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{log_tail(log)}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"streamlit did not answer on {url}/_stcore/health within 60 s:\n{log_tail(log)}")
            time.sleep(0.5)
        yield url
    finally:
        stop_workers(app_home)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        stop_workers(app_home)  # a run started while the server was shutting down


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    context.close()


# -- page helpers -----------------------------------------------------------------------------------------------------

def assert_no_exception(pg) -> None:
    errors = pg.locator('[data-testid="stException"]')
    assert errors.count() == 0, "the page rendered an exception:\n" + "\n---\n".join(errors.all_inner_texts())


def wait_idle(pg, timeout: float = 60, quiet: float = 1.0) -> None:
    """Wait until the script has finished: no "running" status widget for `quiet` seconds in a row."""
    deadline = time.time() + timeout
    calm_since = None
    while True:
        if pg.locator('[data-testid="stStatusWidget"]').count():
            calm_since = None
        elif calm_since is None:
            calm_since = time.time()
        elif time.time() - calm_since >= quiet:
            return
        if time.time() > deadline:
            raise AssertionError(f"the page was still running after {timeout:.0f} s")
        pg.wait_for_timeout(200)


def wait_for(pg, condition, what: str, timeout: float = 60, poll: float = 0.5):
    """Poll `condition()` until it returns a truthy value; fail early if the page renders an exception."""
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert_no_exception(pg)
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        pg.wait_for_timeout(int(poll * 1000))


def metric(pg, label: str) -> str | None:
    """The value of the st.metric labelled `label`, or None while there is none."""
    m = pg.locator('[data-testid="stMetric"]').filter(
        has=pg.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))
    if m.count() != 1:
        return None
    try:
        return m.locator('[data-testid="stMetricValue"]').inner_text(timeout=2000).strip()
    except sync_api.Error:
        return None


def captions(pg) -> list[str]:
    return pg.locator('[data-testid="stImageCaption"]').all_inner_texts()


def choose(pg, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label`."""
    pg.get_by_role("combobox", name=label, exact=True).click()
    pg.get_by_role("option", name=option, exact=True).click()


PAGE_TIMES: dict[str, float] = {}  # page -> seconds from the click until it was rendered and idle
SLOW_PAGE_S = 30.0                   # a page slower than this is reported (a finding, measured, not a failure)
HUNG_S = 600.0                       # the app still running after this long is hung: fail


def app_running(pg) -> bool:
    """Streamlit's own "running" indicator: the script (or a fragment) is executing."""
    return pg.locator('[data-testid="stStatusWidget"]').count() > 0


def wait_rendered(pg, condition, what: str, idle_grace: float = 30.0, quiet: float = 1.0) -> float:
    """Wait until `condition()` holds and the app has been idle for `quiet` seconds, following the app's state
    rather than a fixed budget: while Streamlit says it is running, keep waiting (up to HUNG_S); once it has
    been idle for `idle_grace` seconds without `condition()`, fail. Returns the seconds until it was done."""
    t0 = time.time()
    idle_since = None
    while True:
        assert_no_exception(pg)
        running = app_running(pg)
        now = time.time()
        idle_since = None if running else (idle_since or now)
        if idle_since is not None and now - idle_since >= quiet and condition():
            return idle_since - t0
        if idle_since is not None and now - idle_since > idle_grace:
            raise AssertionError(f"the app was idle for {idle_grace:.0f} s but {what} never appeared")
        if now - t0 > HUNG_S:
            raise AssertionError(f"the app was still running after {HUNG_S:.0f} s waiting for {what}: hung")
        pg.wait_for_timeout(250)


def go(pg, title: str, heading: str | None = None) -> float:
    """Open a page from the sidebar navigation, as a user would (same session); wait until it has rendered
    (its `heading`, default `title`) and finished running. Records and returns how long that took."""
    pg.locator('[data-testid="stSidebarNav"] a', has_text=title).click()
    wanted = pg.get_by_role("heading", name=re.compile(heading or title))
    seconds = wait_rendered(pg, lambda: wanted.count() > 0, f"the {title} page's heading")
    PAGE_TIMES[title] = round(seconds, 1)
    if seconds > SLOW_PAGE_S:
        warnings.warn(f"the {title} page took {seconds:.0f} s to render after navigation (over {SLOW_PAGE_S:.0f} s)")
    return seconds


@pytest.fixture(scope="module", autouse=True)
def report_page_times(request):
    """Write how long each page took to render to test-artifacts/page_times-<module>.json and print it."""
    PAGE_TIMES.clear()
    yield
    if PAGE_TIMES:
        out = ROOT / "test-artifacts"
        out.mkdir(exist_ok=True)
        (out / f"page_times-{request.module.__name__.rsplit('.', 1)[-1]}.json").write_text(
            json.dumps(PAGE_TIMES, indent=2))
        print("\npage render times after navigation (s): " + ", ".join(f"{k} {v}" for k, v in PAGE_TIMES.items()))


def screenshot(pg, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pg.set_viewport_size(SHOT_VIEWPORT)
    try:
        pg.wait_for_timeout(600)  # let the charts re-lay out
        pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    finally:
        pg.set_viewport_size(VIEWPORT)


# -- the tests --------------------------------------------------------------------------------------------------------

def test_main_path_augment_model_train_compare(server, page, app_home):
    pg = page

    # 1. Home: the demo data is generated on first use, then counted.
    pg.goto(server)
    PAGE_TIMES["Home (generates the demo data)"] = round(wait_rendered(
        pg, lambda: (metric(pg, "train") or "").endswith("images"), "the dataset's counts"), 1)
    assert metric(pg, "train") == "1,000 images" and metric(pg, "validation") == "500 images"
    assert "built-in demo data" in pg.locator('[data-testid="stMain"]').inner_text()
    assert_no_exception(pg)
    screenshot(pg, "home")

    # 2. Augmentation: the grid of augmented copies follows the rotation slider and the seed.
    go(pg, "Augmentation")
    wait_for(pg, lambda: len(captions(pg)) == 9, "the 9 images of the grid")
    wait_idle(pg)
    first = captions(pg)
    assert first[0] == "original" and all(c.startswith("rot ") for c in first[1:]), first
    rotation = pg.locator('[data-testid="stSlider"]').filter(has_text="Rotation")
    assert "40.00" in rotation.inner_text()  # the lecture's preset
    rotation.locator('input[type="range"], [role="slider"]').first.focus()
    for _ in range(5):
        pg.keyboard.press("ArrowRight")
    rotated = wait_for(pg, lambda: (c := captions(pg)) != first and len(c) == 9 and c,
                       "the captions to follow the rotation slider")
    assert "45.00" in rotation.inner_text()
    assert rotated[1:] != first[1:]
    wait_idle(pg)
    rotated = captions(pg)
    seed = pg.get_by_role("spinbutton", name="Seed", exact=True)  # (the ablation section has "Seeds")
    seed.fill("7")
    seed.press("Enter")
    reseeded = wait_for(pg, lambda: (c := captions(pg)) != rotated and len(c) == 9 and c,
                        "the captions to follow the seed")
    assert reseeded[0] == "original" and reseeded[1:] != rotated[1:]
    wait_idle(pg)
    assert_no_exception(pg)
    screenshot(pg, "augmentation")

    # 2b. Beside it: the same image through Keras preprocessing layers (training's other engine), differences named.
    toggle = pg.get_by_text("Beside it: the same image through Keras preprocessing layers")
    toggle.click()
    main = pg.locator('[data-testid="stMain"]')
    wait_for(pg, lambda: "What differs" in main.inner_text(), "the side-by-side preview and its differences")
    wait_idle(pg)
    assert "fraction of a full turn" in main.inner_text() and "Keras preprocessing layers" in main.inner_text()
    assert_no_exception(pg)
    toggle.evaluate("e => e.scrollIntoView({block: 'center'})")  # the grid above, the differences below
    screenshot(pg, "augmentation_keras_layers")

    # 3. Model: moving the freeze point from block5 to block4 unfreezes block4's parameters.
    go(pg, "Model")
    wait_for(pg, lambda: metric(pg, "Trainable"), "the parameter counts (builds VGG16)", timeout=150)
    assert metric(pg, "Total parameters") == "14,714,688"
    assert metric(pg, "Trainable") == f"{TRAINABLE_BLOCK5:,}"
    wait_idle(pg, timeout=60)
    choose(pg, "First trainable block", "block4")
    wait_for(pg, lambda: metric(pg, "Trainable") == f"{TRAINABLE_BLOCK4:,}",
             f"Trainable to become {TRAINABLE_BLOCK4:,}", timeout=60)
    assert metric(pg, "Frozen") == f"{14_714_688 - TRAINABLE_BLOCK4:,}"
    wait_idle(pg)
    assert_no_exception(pg)
    screenshot(pg, "model")

    # 4. Train: a tiny from-scratch run, watched live until its first epoch and curves, then stopped.
    go(pg, "Train")
    pg.get_by_text("No runs yet").wait_for()
    wait_idle(pg)
    choose(pg, "Recipe", "Small CNN from scratch")
    wait_idle(pg)
    form = pg.locator('[data-testid="stForm"]')
    form.locator('[data-testid="stNumberInput"]').filter(has_text="Epochs").locator("input").fill("3")
    form.locator('[data-testid="stNumberInput"]').filter(has_text="Image size").locator("input").fill("48")
    form.get_by_role("button", name="Start training").click()

    def first_epoch_and_curves():
        status = metric(pg, "Status") or ""
        assert "failed" not in status and "interrupted" not in status, \
            pg.locator('[data-testid="stMain"]').inner_text()[-3000:]
        done = re.fullmatch(r"(\d+)/3", metric(pg, "Epochs") or "")
        charts = pg.locator('[data-testid="stPlotlyChart"], .js-plotly-plot').count()
        return done is not None and int(done.group(1)) >= 1 and charts > 0

    wait_for(pg, first_epoch_and_curves, "the first epoch and its curves", timeout=180, poll=1.0)
    try:  # for the screenshot only: curves read better with two points
        wait_for(pg, lambda: (metric(pg, "Epochs") or "0/3") != "1/3", "a second epoch", timeout=30, poll=1.0)
    except AssertionError:
        pass
    caption = pg.locator('[data-testid="stCaptionContainer"]').filter(has_text="· run ").first.inner_text()
    run_id = re.search(r"run\s+(\S+)\s*$", caption).group(1)
    screenshot(pg, "train")
    stop = pg.get_by_role("button", name="⏹ Stop")
    if "running" in (metric(pg, "Status") or "") and stop.count():
        try:
            stop.click(timeout=5000)
        except sync_api.Error:
            pass  # the run finished in between: the button went away
    # the page redraws once when the run has ended and stops polling: wait for that (the app idle longer than
    # the live view's 2 s poll), as a user reads the result before moving on
    wait_rendered(pg, lambda: re.search(r"stopped|finished", metric(pg, "Status") or ""),
                  "the run to stop or finish", idle_grace=90, quiet=2.5)
    assert_no_exception(pg)

    # 5. Compare: the run is listed (the table is a canvas: read the DOM widgets that name runs).
    go(pg, "Compare", heading="Manage a run")
    managed = pg.get_by_role("combobox", name="Run", exact=True).input_value()
    assert run_id in managed and "scratch" in managed, managed
    assert re.search(r"· (stopped|finished) ·", managed), managed
    overlay = pg.locator('[data-testid="stMultiSelect"]').filter(has_text="Runs to overlay").inner_text()
    assert run_id[-6:] in overlay and "scratch" in overlay, overlay
    assert_no_exception(pg)
    screenshot(pg, "compare")

    # The run store agrees with what the form asked for.
    os.environ["TUNELAB_HOME"], old = str(app_home), os.environ.get("TUNELAB_HOME")
    try:
        from core.runs import store
        run = store.get_run(run_id)
    finally:
        if old is None:
            os.environ.pop("TUNELAB_HOME")
        else:
            os.environ["TUNELAB_HOME"] = old
    assert run["recipe"] == "scratch" and run["spec"]["epochs"] == 3 and run["spec"]["image_size"] == 48
    assert run["status"] in ("stopped", "finished")


# About 4 s a page. Pages that another default browser test already opens by URL in a fresh session, checking for a
# rendered exception, are nightly here: Home (the main path above starts at the server's root URL), Augmentation
# (tests/test_browser_ux.py's huge-upload test), Train (test_browser_ux.py's chart and presentation-mode tests),
# Compare (tests/test_browser_class.py's two users).
@pytest.mark.parametrize("path, heading", [pytest.param("", "Fine-Tuning Lab", marks=pytest.mark.nightly),
                                           pytest.param("Augmentation", "Augmentation", marks=pytest.mark.nightly),
                                           ("Model", "Model"),
                                           pytest.param("Train", "Train", marks=pytest.mark.nightly),
                                           pytest.param("Compare", "Compare runs", marks=pytest.mark.nightly),
                                           ("Data", "Is the data honest"), ("Leaderboard", "Leaderboard")])
def test_every_page_opens_by_url_without_an_exception(server, page, path, heading):
    page.goto(f"{server}/{path}")
    wanted = page.get_by_role("heading", name=re.compile(heading))
    PAGE_TIMES[f"{heading} (opened by URL)"] = round(wait_rendered(page, lambda: wanted.count() > 0,
                                                                   f"the {heading} heading"), 1)
    assert_no_exception(page)


@pytest.mark.nightly  # about 22 s in a browser; tests/test_pages.py checks every recipe's defaults with AppTest by default
def test_choosing_a_recipe_fills_the_train_form_with_its_defaults(server, page):
    """Issue: switching recipe kept the previous recipe's epochs and learning rate, which the run then used."""
    from core.config import RECIPES, RunSpec, rate_text
    from core.data.augment_presets import PRESET_TITLES
    pg = page
    pg.goto(server)
    wait_rendered(pg, lambda: pg.get_by_role("heading", name="Dataset in use").count() > 0, "the home page")
    go(pg, "Train")
    form = pg.locator('[data-testid="stForm"]')
    shots = ROOT / "test-artifacts" / "train-recipes"
    shots.mkdir(parents=True, exist_ok=True)
    for recipe, info in RECIPES.items():
        choose(pg, "Recipe", info.title)
        defaults = RunSpec.from_recipe(recipe)
        epochs = form.locator('[data-testid="stNumberInput"]').filter(has_text="Epochs").first.locator("input")
        wait_rendered(pg, lambda: epochs.count() and epochs.input_value() == str(defaults.epochs),
                      f"{recipe}'s {defaults.epochs} epochs in the form")
        rate = form.locator('[data-testid="stSlider"]').filter(has_text="Learning rate").first.inner_text()
        assert rate_text(defaults.lr) in rate, (recipe, rate)
        augment = form.get_by_role("combobox", name="Augmentation", exact=True)
        preset = PRESET_TITLES[info.defaults["augment"]]
        assert preset in augment.input_value() or preset in form.inner_text(), (recipe, augment.input_value())
        if info.fine_tunes:
            ft = form.locator('[data-testid="stNumberInput"]').filter(has_text="Fine-tuning epochs").locator("input")
            assert ft.input_value() == str(defaults.fine_tune_epochs)
        assert_no_exception(pg)
        pg.set_viewport_size(SHOT_VIEWPORT)
        pg.screenshot(path=str(shots / f"{recipe}.png"))
        pg.set_viewport_size(VIEWPORT)
