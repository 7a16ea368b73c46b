"""Serving a class: owners, teachers, published runs, the fair queue and per-user limits (issue 11)."""
from __future__ import annotations

import json
import os
import sqlite3

import pytest

from conftest import cli
from core.config import RunSpec
from core.runs import access, runner, store


@pytest.fixture
def fake_workers(home, monkeypatch):
    """kick() "starts" workers that are this test process (alive, never writing); returns the start order."""
    started = []

    def spawn(run_id, token):
        started.append(run_id)
        return os.getpid()
    monkeypatch.setattr(runner, "_spawn", spawn)
    monkeypatch.setenv("TUNELAB_MAX_RUNS", "1")
    return started


def _submit(user: str) -> str:
    return runner.submit(RunSpec.from_recipe("scratch", epochs=1, image_size=48), user=user)


def _finish(run_id: str) -> None:
    store.set_status(run_id, "finished")
    runner.kick()


def test_with_one_slot_bobs_run_starts_before_alices_third(fake_workers):
    alice = [_submit("alice") for _ in range(3)]
    bob = _submit("bob")
    assert fake_workers == [alice[0]]
    while len(fake_workers) < 4:
        _finish(fake_workers[-1])
    assert fake_workers.index(bob) < fake_workers.index(alice[2])
    assert fake_workers == [alice[0], bob, alice[1], alice[2]]


def test_the_queue_goes_round_robin_across_three_users(fake_workers):
    order = [("alice", _submit("alice")) for _ in range(3)] + [("bob", _submit("bob")) for _ in range(2)] + \
        [("carol", _submit("carol"))]
    owner = dict((rid, user) for user, rid in order)
    while len(fake_workers) < len(order):
        _finish(fake_workers[-1])
    assert [owner[r] for r in fake_workers] == ["alice", "bob", "carol", "alice", "bob", "alice"]


def test_a_user_at_the_running_limit_waits_while_others_start(fake_workers, monkeypatch):
    monkeypatch.setenv("TUNELAB_MAX_RUNS", "3")
    monkeypatch.setenv("TUNELAB_USER_MAX_RUNNING", "1")
    alice = [_submit("alice") for _ in range(2)]
    bob = _submit("bob")
    assert fake_workers == [alice[0], bob] and store.get_run(alice[1])["status"] == "queued"


def test_a_user_at_the_queued_limit_is_refused_in_one_sentence(fake_workers, monkeypatch):
    monkeypatch.setenv("TUNELAB_USER_MAX_QUEUED", "2")
    for _ in range(3):  # the first starts; two wait
        _submit("alice")
    with pytest.raises(ValueError, match=r"alice already has 2 runs waiting .*TUNELAB_USER_MAX_QUEUED is 2"):
        _submit("alice")
    _submit("bob")  # the limit is per user


def test_a_bad_limit_is_named_with_its_fix(monkeypatch):
    monkeypatch.setenv("TUNELAB_USER_MAX_RUNNING", "two")
    with pytest.raises(ValueError, match="TUNELAB_USER_MAX_RUNNING must be a whole number"):
        runner.user_max_running()


def test_concurrent_workers_share_the_cores_between_the_slots():
    assert runner.thread_env(cores=16, slots=4)["TF_NUM_INTRAOP_THREADS"] == "4"
    assert runner.thread_env(cores=2, slots=4)["TF_NUM_INTRAOP_THREADS"] == "1"
    assert runner.thread_env(cores=16, slots=1)["TF_NUM_INTEROP_THREADS"] == "2"


def test_every_run_records_its_owner_and_students_see_their_own_and_published_runs(fake_workers, monkeypatch):
    monkeypatch.setenv("TUNELAB_TEACHERS", "teacher")
    a, b, t = _submit("alice"), _submit("bob"), _submit("teacher")
    assert store.get_run(a)["owner"] == "alice"
    assert {r["id"] for r in runner.runs("alice")} == {a}
    assert {r["id"] for r in runner.runs("teacher")} == {a, b, t}
    store.set_published(t, True, user="teacher")
    assert {r["id"] for r in runner.runs("bob")} == {b, t}
    with pytest.raises(PermissionError, match="Only a teacher can publish a run, and bob is not one"):
        store.set_published(b, True, user="bob")


def test_someone_elses_run_cannot_be_stopped_resumed_renamed_tagged_or_deleted(fake_workers, monkeypatch):
    monkeypatch.setenv("TUNELAB_TEACHERS", "teacher")
    run_id = _submit("alice")
    sentence = rf"Run {run_id} belongs to alice, not bob: only its owner or a teacher \(TUNELAB_TEACHERS\) can"
    for action, call in (("stop", lambda: runner.stop(run_id, user="bob")),
                         ("rename", lambda: store.rename_run(run_id, "mine", user="bob")),
                         ("tag", lambda: store.set_tags(run_id, ["x"], user="bob")),
                         ("delete", lambda: store.delete_run(run_id, user="bob"))):
        with pytest.raises(PermissionError, match=f"{sentence} {action} it"):
            call()
    assert store.get_run(run_id)["status"] == "running" and store.get_run(run_id)["name"] != "mine"
    assert runner.stop(run_id, user="teacher") == "stopping"  # a teacher manages every run
    store.set_status(run_id, "stopped")
    with pytest.raises(PermissionError, match=f"{sentence} resume it"):
        runner.resume(run_id, user="bob")
    runner.resume(run_id, user="alice")
    assert store.get_run(run_id)["status"] in ("queued", "running")


def test_the_command_line_acts_as_tunelab_user_and_refuses_bob_stopping_alices_run(home):
    store.create_run({"recipe": "scratch"}, "alice's", "scratch", None, 3, owner="alice")
    run_id = store.list_runs()[0]["id"]
    store.update_run(run_id, status="running", started=1.0)
    proc = cli("stop", run_id, home=home, check=False, env={"TUNELAB_USER": "bob"})
    assert proc.returncode != 0
    assert proc.stderr.strip() == (f"error: Run {run_id} belongs to alice, not bob: only its owner or a teacher "
                                   f"(TUNELAB_TEACHERS) can stop it.")
    rows = json.loads(cli("runs", "--json", home=home, env={"TUNELAB_USER": "alice"}).stdout)
    assert rows[0]["owner"] == "alice" and rows[0]["started"] == 1.0 and "finished" in rows[0]
    assert json.loads(cli("runs", "--json", home=home, env={"TUNELAB_USER": "bob"}).stdout) == []


def test_the_acting_user_is_tunelab_user_else_the_os_user(monkeypatch):
    monkeypatch.delenv("TUNELAB_USER", raising=False)
    assert access.current() == access.os_user()
    monkeypatch.setenv("TUNELAB_USER", "alice@example.org")
    assert access.current() == "alice@example.org"
    monkeypatch.setenv("TUNELAB_USER", "alice; rm -rf /")
    with pytest.raises(ValueError, match="TUNELAB_USER gave the user name"):
        access.current()


def test_a_store_made_before_owners_gives_its_runs_to_the_os_user(tmp_path, monkeypatch):
    home = tmp_path / "old"
    home.mkdir()
    with sqlite3.connect(home / "runs.sqlite") as c:  # the runs table as it was before owners
        c.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, recipe TEXT NOT NULL, backbone TEXT, "
                  "spec TEXT NOT NULL, status TEXT NOT NULL, error TEXT, pid INTEGER, heartbeat REAL, "
                  "created REAL NOT NULL, started REAL, finished REAL, epochs_total INTEGER NOT NULL, "
                  "stop_requested INTEGER NOT NULL DEFAULT 0, weights_used TEXT, precision_used TEXT, "
                  "info TEXT NOT NULL DEFAULT '{}', tags TEXT NOT NULL DEFAULT '[]', "
                  "progress TEXT NOT NULL DEFAULT '{}', lease INTEGER NOT NULL DEFAULT 0, host TEXT)")
        c.execute("INSERT INTO runs (id, name, recipe, spec, status, created, epochs_total) "
                  "VALUES ('old', 'old run', 'scratch', '{}', 'finished', 0, 3)")
    monkeypatch.setenv("TUNELAB_HOME", str(home))
    monkeypatch.delenv("TUNELAB_USER", raising=False)
    assert store.get_run("old")["owner"] == access.os_user() and not store.get_run("old")["published"]
    assert [r["id"] for r in runner.runs()] == ["old"]  # the single-user default sees it as before
