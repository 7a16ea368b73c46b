"""Browser test of a class behind an authenticating proxy (issue 11): the dashboard in trusted-header mode, two
users in two browser contexts (Playwright's extra_http_headers stands in for the proxy), each seeing only their
own runs; a request without the header is refused in one sentence. Reuses tests/test_browser.py's fixtures.
"""
from __future__ import annotations

import pytest

from tests.test_browser import CHROMIUM, assert_no_exception, browser, server, wait_idle  # noqa: F401

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: the browser tests drive Debian's "
                                                     f"Chromium (apt-get install chromium; .ci/run does it as root)"),
]
HEADER = "X-Tunelab-User"


@pytest.fixture(scope="module")
def app_home(tmp_path_factory):
    """A lab home with one finished run of alice's and one of bob's; the server trusts HEADER."""
    from core.config import RunSpec
    from core.runs import store
    home = tmp_path_factory.mktemp("browser_class") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNELAB_HOME", str(home))
        for owner in ("alice", "bob"):
            spec = RunSpec.from_recipe("scratch", image_size=48, epochs=2)
            run_id = store.create_run(spec.to_dict(), f"{owner}'s experiment", "scratch", None, 2, owner=owner)
            for epoch in (1, 2):
                store.record_epoch(run_id, epoch, "train", {"loss": 0.7, "accuracy": 0.6, "val_loss": 0.7,
                                                            "val_accuracy": 0.55 + epoch / 20, "seconds": 1.0})
            store.set_status(run_id, "finished")
    mp = pytest.MonkeyPatch()
    mp.setenv("TUNELAB_TRUSTED_USER_HEADER", HEADER)  # read by the server fixture when it starts
    mp.delenv("TUNELAB_TEACHERS", raising=False)
    yield home
    mp.undo()


def _compare_as(browser, server, user):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 1400},
                                  extra_http_headers={HEADER: user} if user else {})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    pg.goto(f"{server}/Compare")
    pg.locator("h1, [data-testid='stAlert']").first.wait_for(timeout=60_000)
    wait_idle(pg, timeout=120)
    assert_no_exception(pg)
    return context, pg


def test_two_users_behind_the_proxy_each_see_only_their_own_runs(browser, server):  # noqa: F811
    seen = {}
    for user in ("alice", "bob"):
        context, pg = _compare_as(browser, server, user)
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
