"""Browser test of a class behind an authenticating proxy (issue 11): the dashboard in trusted-header mode, two
users in two browser contexts (Playwright's extra_http_headers stands in for the proxy), each seeing only their
own runs; a request without the header is refused in one sentence. An assignment: the teacher's Leaderboard page
in presentation mode (its screenshot goes to docs/screenshots/leaderboard.png) and a student's Train page opened
by the assignment's link, filled in and locked (nightly: `bash .ci/nightly -k leaderboard`; the default run checks
both with AppTest in tests/test_assignment_pages.py). Reuses tests/test_browser.py's fixtures.

The scores on the board are stored by this test for stand-in runs (nothing is trained here): the page only reads
the scores the worker records (`tests/test_assignments.py` checks that it records them).
"""
from __future__ import annotations

import pytest

from tests.conftest import make_folder
from tests.test_browser import (CHROMIUM, SCREENSHOTS, assert_no_exception, browser, server,  # noqa: F401
                                wait_idle)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: the browser tests drive Debian's "
                                                     f"Chromium (apt-get install chromium; .ci/run does it as root)"),
]
HEADER = "X-Tunelab-User"
SEEDED = {}  # the assignment's id, set by app_home
STUDENTS = (("amira", 0.94, 3), ("bruno", 0.91, 2), ("chen", 0.91, 1), ("dana", 0.88, 4), ("eli", 0.83, 1))


def _seed_assignment(root) -> str:
    """An assignment of ann's on a tiny folder (the dataset in use), with scored runs of five students."""
    from core import settings
    from core.runs import assignments, store
    data = make_folder(root / "data", {"train": 6, "validation": 3, "test": 3})
    settings.update(data=str(data))
    task = assignments.create("Week 3: augmentation", "scratch_aug", {"data": str(data), "epochs": 20,
                                                                      "image_size": 64, "augment": "lecture"}, user="ann")
    for student, best, runs in STUDENTS:
        for k in range(runs):
            accuracy = best - 0.04 * k
            run_id = store.create_run({"recipe": "scratch_aug"}, f"{student} try {runs - k}", "scratch_aug", None, 20,
                                      owner=student, assignment=task["id"])
            store.set_status(run_id, "finished")
            assignments.record_score(run_id, task["id"], {"accuracy": accuracy, "loss": 1 - accuracy, "n": 6})
    return task["id"]


@pytest.fixture(scope="module")
def app_home(tmp_path_factory):
    """A lab home with one finished run of alice's and one of bob's, and ann's assignment; the server trusts
    HEADER, and ann is the teacher."""
    from core.config import RunSpec
    from core.runs import store
    root = tmp_path_factory.mktemp("browser_class")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNELAB_HOME", str(home))
        mp.setenv("TUNELAB_TEACHERS", "ann")
        SEEDED["assignment"] = _seed_assignment(root)
        for owner in ("alice", "bob"):
            spec = RunSpec.from_recipe("scratch", image_size=48, epochs=2)
            run_id = store.create_run(spec.to_dict(), f"{owner}'s experiment", "scratch", None, 2, owner=owner)
            for epoch in (1, 2):
                store.record_epoch(run_id, epoch, "train", {"loss": 0.7, "accuracy": 0.6, "val_loss": 0.7,
                                                            "val_accuracy": 0.55 + epoch / 20, "seconds": 1.0})
            store.set_status(run_id, "finished")
    mp = pytest.MonkeyPatch()
    mp.setenv("TUNELAB_TRUSTED_USER_HEADER", HEADER)  # read by the server fixture when it starts
    mp.setenv("TUNELAB_TEACHERS", "ann")
    mp.setenv("TUNELAB_DATA_ROOTS", str(root))
    yield home
    mp.undo()


def _open(browser, server, user, path, height=1300, ready="h1"):  # noqa: F811
    """A new browser context sending `user` in the trusted header (None: no header) on `path`, rendered: (context,
    page) once `ready` shows and the app is idle."""
    context = browser.new_context(viewport={"width": 1400, "height": height},
                                  extra_http_headers={HEADER: user} if user else {})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    pg.goto(f"{server}/{path}")
    pg.locator(ready).first.wait_for(timeout=60_000)
    wait_idle(pg, timeout=120)
    assert_no_exception(pg)
    return context, pg


def _compare_as(browser, server, user):  # noqa: F811
    """The Compare page as `user`: its heading, or the alert of a request the lab cannot identify."""
    return _open(browser, server, user, "Compare", height=1400, ready="h1, [data-testid='stAlert']")


def _menu(pg) -> list[str]:
    """The sidebar's page links as shown, icon and title ("🧪 Home"), top to bottom."""
    return [" ".join(link.split()) for link in pg.locator('[data-testid="stSidebarNavLink"]').all_inner_texts()]


def test_two_users_behind_the_proxy_each_see_only_their_own_runs(browser, server):  # noqa: F811
    seen = {}
    for user in ("alice", "bob"):
        context, pg = _compare_as(browser, server, user)
        if user == "alice":  # this module's fresh server has not shown its root URL yet: Streamlit's legacy
            menu = _menu(pg)  # pages/ mode would list "app", "Augmentation", ... without icons
            assert menu[:2] == ["🧪 Home", "🎛️ Augmentation"] and "🏆 Leaderboard" in menu and "app" not in menu, menu
        pg.screenshot(path=f"/tmp/class_compare_{user}.png", full_page=True)
        pg.get_by_text("Manage a run").wait_for()
        pg.get_by_role("combobox", name="Run", exact=True).click()  # the "Manage a run" picker
        options = pg.locator('[role="option"]').all_inner_texts()
        seen[user] = (options, pg.locator("body").inner_text())
        context.close()
    for user, other in (("alice", "bob"), ("bob", "alice")):
        options, text = seen[user]
        assert len(options) == 1 and options[0].startswith(f"{user}'s experiment"), options
        assert f"Signed in as {user}" in text and f"{other}'s experiment" not in text


def test_a_request_without_the_trusted_header_sees_no_runs_and_is_told_why(browser, server):  # noqa: F811
    context, pg = _compare_as(browser, server, None)
    text = pg.locator("body").inner_text()
    context.close()
    assert f"takes its user from the {HEADER} header, which this request does not carry" in text
    assert "experiment" not in text


@pytest.mark.nightly  # 15-25 s of browser; the default run's twins: tests/test_assignment_pages.py (AppTest)
def test_the_leaderboard_projects_each_students_best_run_and_the_link_fills_the_train_page(browser, server):  # noqa: F811
    link = f"Train?assignment={SEEDED['assignment']}"
    context, pg = _open(browser, server, "ann", f"Leaderboard?present=1&assignment={SEEDED['assignment']}")
    pg.locator("table.board").wait_for()
    pg.get_by_text(link).first.wait_for()
    wait_idle(pg, timeout=60)
    rows = pg.locator("table.board tr").all_inner_texts()
    pg.screenshot(path=str(SCREENSHOTS / "leaderboard.png"))
    text = pg.locator("body").inner_text()
    context.close()
    assert [r.split("\t")[1].strip() for r in rows[1:]] == [s for s, _, _ in STUDENTS]
    assert rows[2].split("\t")[0].strip().endswith("2") and rows[3].split("\t")[0].strip().endswith("2")  # a tie
    assert "New assignment" in text and link in text
    context, pg = _open(browser, server, "bruno", link)
    pg.get_by_text("Assignment: Week 3: augmentation").wait_for()
    pg.screenshot(path="/tmp/assignment_train_page.png", full_page=True)
    epochs = pg.locator('input[aria-label="🔒 Epochs"]')
    assert epochs.is_disabled() and epochs.input_value() == "20"
    context.close()
