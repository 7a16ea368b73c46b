"""One worker per run: leases, heartbeats from the environment, fencing, and a frozen worker woken too late.

The frozen-worker tests use real detached workers, SIGSTOP and SIGCONT, with a stale threshold of 8 s.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import keras
import pytest

from core.data import manifest
from core.runs import artifacts, lease, runner, store
from core.runs.callbacks import save_atomic
from core.config import RunSpec
from tests.conftest import make_folder, poll_until

STALE_S = 8


def _wait_for(predicate, timeout=180.0, poll=0.05):
    return poll_until(predicate, timeout, poll)


def _run() -> str:
    return store.create_run({"recipe": "scratch"}, "leased", "scratch", None, 3)


def test_a_store_made_before_leases_gets_its_lease_and_host_columns(tmp_path, monkeypatch):
    home = tmp_path / "old"
    home.mkdir()
    with sqlite3.connect(home / "runs.sqlite") as c:  # the runs table as it was before leases
        c.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, recipe TEXT NOT NULL, backbone TEXT, "
                  "spec TEXT NOT NULL, status TEXT NOT NULL, error TEXT, pid INTEGER, heartbeat REAL, "
                  "created REAL NOT NULL, started REAL, finished REAL, epochs_total INTEGER NOT NULL, "
                  "stop_requested INTEGER NOT NULL DEFAULT 0, weights_used TEXT, precision_used TEXT, "
                  "info TEXT NOT NULL DEFAULT '{}', tags TEXT NOT NULL DEFAULT '[]', "
                  "progress TEXT NOT NULL DEFAULT '{}')")
        c.execute("INSERT INTO runs (id, name, recipe, spec, status, created, epochs_total) "
                  "VALUES ('old', 'old run', 'scratch', '{}', 'stopped', 0, 3)")
    monkeypatch.setenv("TUNELAB_HOME", str(home))
    run = store.get_run("old")
    assert run["lease"] == 0 and run["host"] is None and run["status"] == "stopped"
    held = lease.claim("old")
    assert held.token == 1 and store.get_run("old")["host"] == lease.host()


def test_a_fenced_workers_writes_are_refused_and_change_nothing(home, tmp_path):
    run_id = _run()
    old = lease.claim(run_id)
    old.record_epoch(1, "train", {"loss": 0.5})
    new = lease.claim(run_id)  # a second worker takes the run over
    assert new.token == old.token + 1
    before = (store.get_run(run_id), store.epochs(run_id), store.log_lines(run_id))
    writes = [lambda: old.update(heartbeat=1.0), lambda: old.progress(stage="train"), lambda: old.log("late"),
              lambda: old.record_epoch(1, "train", {"loss": 9.0}), lambda: old.record_epoch(2, "train", {}),
              lambda: old.set_status("finished"), old.check]
    for write in writes:
        with pytest.raises(lease.LeaseLost, match=f"no longer held by lease {old.token}"):
            write()
    assert (store.get_run(run_id), store.epochs(run_id), store.log_lines(run_id)) == before
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(lease.LeaseLost):
        save_atomic(model, artifacts.checkpoint(run_id, 2, "full"), old)
    with pytest.raises(lease.LeaseLost):
        manifest.write_once(artifacts.split_manifest(run_id), {"splits": {}}, old.check)
    assert sorted(p.name for p in artifacts.folder(run_id).iterdir()) == []  # no file, no temporary left
    new.record_epoch(2, "train", {"loss": 0.4})  # the new holder writes
    assert [r["epoch"] for r in store.epochs(run_id)] == [1, 2]


def test_a_worker_spawned_for_a_lease_that_moved_on_does_not_start(home):
    run_id = _run()
    with store.connect(immediate=True) as c:
        token = lease.fence(c, run_id)
        lease.fence(c, run_id)  # a newer worker was spawned since
    with pytest.raises(lease.LeaseLost):
        lease.claim(run_id, token)
    assert store.get_run(run_id)["status"] == "queued" and store.get_run(run_id)["pid"] is None


def test_the_stale_threshold_comes_from_the_environment_and_the_heartbeat_follows_it(monkeypatch):
    monkeypatch.delenv("TUNELAB_HEARTBEAT_STALE_S", raising=False)
    assert lease.stale_after() == 120 and lease.heartbeat_interval() == 5
    monkeypatch.setenv("TUNELAB_HEARTBEAT_STALE_S", "8")
    assert lease.stale_after() == 8 and lease.heartbeat_interval() == 2
    for bad in ("soon", "0", "-3", "nan"):
        monkeypatch.setenv("TUNELAB_HEARTBEAT_STALE_S", bad)
        with pytest.raises(ValueError, match=f"TUNELAB_HEARTBEAT_STALE_S must be .* \\(got '{bad}'\\)"):
            lease.stale_after()


def test_two_resumes_at_once_queue_the_run_once(home, monkeypatch):
    run_id = _run()
    for epoch in (1, 2, 3):
        store.record_epoch(run_id, epoch, "train", {"loss": 0.1})
    store.set_status(run_id, "interrupted")
    slow_check = runner._models_saved

    def models_saved(run_id):  # widen the window between reading the status and changing it
        time.sleep(0.5)
        return slow_check(run_id)
    monkeypatch.setattr(runner, "_models_saved", models_saved)
    monkeypatch.setattr(runner, "kick", lambda: None)
    outcomes = []

    def resume():
        try:
            runner.resume(run_id)
            outcomes.append("queued")
        except ValueError as exc:
            outcomes.append(str(exc))
    threads = [threading.Thread(target=resume) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["Run " + run_id + " is queued: only stopped, interrupted or failed runs can be "
                                "resumed.", "queued"]
    assert sum(line["message"].startswith("resume requested") for line in store.log_lines(run_id)) == 1


def test_a_stale_worker_is_only_killed_when_it_is_that_runs_worker_process(home):
    run_id = _run()
    assert not lease.kill_stale(run_id, os.getpid())  # an in-process worker (a test, a page): never killed
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "core", "worker"])
    try:
        assert not lease.kill_stale(run_id, other.pid)  # not a worker of this run (a reused pid, say)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


# -- real workers, frozen and woken ------------------------------------------------------------------------------------

def _start_frozen(home, tmp_path, monkeypatch, epochs=4):
    """A detached worker that has finished one epoch, then SIGSTOPped (stale after STALE_S seconds)."""
    monkeypatch.setenv("TUNELAB_HEARTBEAT_STALE_S", str(STALE_S))
    data = make_folder(tmp_path / "tiny", {"train": 12, "validation": 6})
    spec = RunSpec.from_recipe("scratch", data=str(data), image_size=48, epochs=epochs, batch_size=2)
    run_id = runner.submit(spec)
    _wait_for(lambda: 1 in _logged_epochs(run_id))  # the epoch's row is written first, then its log line
    run = store.get_run(run_id)
    os.kill(run["pid"], signal.SIGSTOP)
    return run_id, run


def _until_stale(run_id) -> None:
    """Wait until the frozen worker's last heartbeat is more than STALE_S old (state, not a fixed sleep: heartbeats
    come every STALE_S / 4, so the last one may be up to that old already when the worker is stopped)."""
    _wait_for(lambda: time.time() - store.get_run(run_id)["heartbeat"] > STALE_S + 0.5, timeout=STALE_S + 30, poll=0.2)


def _logged_epochs(run_id) -> list[int]:
    return [int(line["message"].split()[1]) for line in store.log_lines(run_id, 10000)
            if line["message"].startswith("epoch ")]


def test_a_frozen_worker_is_killed_and_fenced_and_its_run_finishes_with_every_epoch_once(home, tmp_path, monkeypatch):
    run_id, frozen = _start_frozen(home, tmp_path, monkeypatch)
    _until_stale(run_id)
    runner.kick()
    run = store.get_run(run_id)
    assert run["status"] == "interrupted" and "killed and fenced off" in run["error"]
    assert run["lease"] == frozen["lease"] + 1
    runner.resume(run_id)
    assert store.get_run(run_id)["pid"] != frozen["pid"]
    woken = time.monotonic()
    try:
        os.kill(frozen["pid"], signal.SIGCONT)
    except ProcessLookupError:
        pass
    _wait_for(lambda: not runner.pid_alive(frozen["pid"]), timeout=30)
    gone_after = time.monotonic() - woken
    final = runner.wait(run_id, poll=0.3)
    assert final["status"] == "finished", final["error"]
    assert [r["epoch"] for r in store.epochs(run_id)] == list(range(1, 5))
    assert sorted(_logged_epochs(run_id)) == list(range(1, 5))  # each epoch written once: no second writer
    print(f"\nfrozen worker pid {frozen['pid']} gone {gone_after:.1f} s after SIGCONT (killed when found stale)")


@pytest.mark.nightly  # about 26 s; a fenced worker's refused writes and a frozen worker killed run by default
def test_a_frozen_worker_that_cannot_be_killed_exits_without_writing_when_woken(home, tmp_path, monkeypatch):
    """A worker on another machine (here: its recorded host changed) is fenced, not killed; woken, it finds its
    lease gone at its next write and exits with EXIT_FENCED, writing nothing."""
    run_id, frozen = _start_frozen(home, tmp_path, monkeypatch)
    store.update_run(run_id, host="another-machine")
    _until_stale(run_id)
    runner.kick()
    run = store.get_run(run_id)
    assert run["status"] == "interrupted" and "fenced off" in run["error"] and "killed" not in run["error"]
    assert runner.pid_alive(frozen["pid"])  # still there, stopped
    runner.resume(run_id)
    _wait_for(lambda: store.get_run(run_id)["epochs_done"] >= frozen["epochs_done"] + 1)  # the new worker trains
    woken = time.monotonic()
    os.kill(frozen["pid"], signal.SIGCONT)
    _wait_for(lambda: not runner.pid_alive(frozen["pid"]), timeout=60)
    gone_after = time.monotonic() - woken
    final = runner.wait(run_id, poll=0.3)
    assert final["status"] == "finished", final["error"]
    assert [r["epoch"] for r in store.epochs(run_id)] == list(range(1, 5))
    assert sorted(_logged_epochs(run_id)) == list(range(1, 5))
    output = artifacts.worker_log(run_id).read_text()
    assert f"worker pid {frozen['pid']} fenced: run {run_id}" in output
    print(f"\nfenced worker pid {frozen['pid']} exited by itself {gone_after:.1f} s after SIGCONT")


def test_a_worker_frozen_while_holding_the_stores_write_lock_is_killed_before_the_lock_is_needed(home):
    """A worker stopped in the middle of one of its writes keeps SQLite's write lock: kick() must kill it from a
    plain read first, or it would wait for the lock (30 s) and fail, and so would every writer of the lab."""
    run_id = _run()
    code = ("import os, signal, sqlite3, sys; sys.stdin.readline(); "
            "c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN IMMEDIATE'); "
            "c.execute('UPDATE runs SET name = name'); print('held', flush=True); os.kill(os.getpid(), signal.SIGSTOP)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(home / "runs.sqlite"), "core", "worker", run_id],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        store.update_run(run_id, status="running", pid=holder.pid, host=lease.host(),
                         heartbeat=time.time() - 10 * lease.stale_after())
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "held"
        _wait_for(lambda: open(f"/proc/{holder.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "T")
        runner.kick()  # before the fix: "stayed locked by another process for 30 s"
        holder.wait(timeout=10)
        run = store.get_run(run_id)
        assert run["status"] == "interrupted" and "killed" in run["error"]
    finally:
        holder.kill()
        holder.wait()
