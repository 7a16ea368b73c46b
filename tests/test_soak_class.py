"""The class soak (issue 11, core/tools/soak.py): simulated students submitting, polling, stopping and resuming at
once against the real queue and store. The default run has 8 students for 3 s; nightly, 20 for 20 s on SQLite and
on PostgreSQL (the figures are printed: run with -s)."""
from __future__ import annotations

import json

import pytest

from core.tools import soak


def test_eight_students_at_once_lose_no_run_write_no_epoch_twice_and_keep_the_limits(home):
    figures = soak.soak(users=8, seconds=3, max_runs=2, user_max_running=1, user_max_queued=2, epoch_s=0.1)
    assert figures["runs_lost"] == 0 and figures["runs_duplicated"] == 0 and figures["epochs_written_twice"] == 0
    assert figures["max_running_seen"] <= 2 and figures["max_user_running_seen"] <= 1
    assert figures["max_user_queued_seen"] <= 2 and figures.get("foreign_stop_allowed", 0) == 0
    assert figures["ok"], figures


@pytest.mark.nightly
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_twenty_students_for_twenty_seconds(home, backend, request, monkeypatch):
    if backend == "postgresql":
        monkeypatch.setenv("TUNELAB_DB_URL", request.getfixturevalue("postgres_db"))
    figures = soak.soak(users=20, seconds=20)
    print(json.dumps({"store": backend, **figures}))
    assert figures["ok"], figures
