"""Browser test of an assignment (issue 11): the teacher's Leaderboard page in presentation mode (its screenshot goes to
docs/screenshots/leaderboard.png) and a student's Train page opened by the assignment's link, filled in and locked.
Users come from a trusted header, as behind the class's login proxy. Reuses tests/test_browser.py's fixtures.

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


@pytest.fixture(scope="module")
def app_home(tmp_path_factory):
    """A lab home with ann as teacher, one assignment on a tiny folder, and scored runs of five students."""
    from core import settings
    from core.runs import assignments, store
    root = tmp_path_factory.mktemp("browser_board")
    home, data = root / "home", make_folder(root / "data", {"train": 6, "validation": 3, "test": 3})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNELAB_HOME", str(home))
        mp.setenv("TUNELAB_TEACHERS", "ann")
        settings.update(data=str(data))
        task = assignments.create("Week 3: augmentation", "scratch_aug", {"data": str(data), "epochs": 20,
                                                                          "image_size": 64, "augment": "lecture"},
                                  user="ann")
        for student, best, runs in STUDENTS:
            for k in range(runs):
                accuracy = best - 0.04 * k
                run_id = store.create_run({"recipe": "scratch_aug"}, f"{student} try {runs - k}", "scratch_aug", None,
                                          20, owner=student, assignment=task["id"])
                store.set_status(run_id, "finished")
                assignments.record_score(run_id, task["id"], {"accuracy": accuracy, "loss": 1 - accuracy, "n": 6})
    mp = pytest.MonkeyPatch()
    mp.setenv("TUNELAB_TRUSTED_USER_HEADER", HEADER)  # read by the server fixture when it starts
    mp.setenv("TUNELAB_TEACHERS", "ann")
    mp.setenv("TUNELAB_DATA_ROOTS", str(root))
    SEEDED["assignment"] = task["id"]
    yield home
    mp.undo()


def _open(browser, server, user, path):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 1300}, extra_http_headers={HEADER: user})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    pg.goto(f"{server}/{path}")
    pg.locator("h1").first.wait_for(timeout=60_000)
    wait_idle(pg, timeout=120)
    assert_no_exception(pg)
    return context, pg


def test_the_leaderboard_projects_each_students_best_run_and_the_link_fills_the_train_page(browser, server,  # noqa: F811
                                                                                           app_home):
    context, pg = _open(browser, server, "ann", f"Leaderboard?present=1&assignment={SEEDED['assignment']}")
    pg.locator("table.board").wait_for()
    pg.get_by_text(f"Train?assignment={SEEDED['assignment']}").first.wait_for()
    wait_idle(pg, timeout=60)
    rows = pg.locator("table.board tr").all_inner_texts()
    pg.screenshot(path=str(SCREENSHOTS / "leaderboard.png"))
    text = pg.locator("body").inner_text()
    context.close()
    assert [r.split("\t")[1].strip() for r in rows[1:]] == [s for s, _, _ in STUDENTS]
    assert rows[2].split("\t")[0].strip().endswith("2") and rows[3].split("\t")[0].strip().endswith("2")  # a tie
    assert "New assignment" in text and f"Train?assignment={SEEDED['assignment']}" in text
    context, pg = _open(browser, server, "bruno", f"Train?assignment={SEEDED['assignment']}")
    pg.get_by_text("Assignment: Week 3: augmentation").wait_for()
    pg.screenshot(path="/tmp/assignment_train_page.png", full_page=True)
    epochs = pg.locator('input[aria-label="🔒 Epochs"]')
    assert epochs.is_disabled() and epochs.input_value() == "20"
    context.close()
