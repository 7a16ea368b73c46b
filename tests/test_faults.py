"""Faults: workers killed at any moment, a full disk, an unwritable home, and submitters racing each other.

Kill tests use real detached workers and SIGKILL; after each kill `runner.kick()` must mark the run
interrupted, keep every finished epoch and the checkpoint to resume from, and `resume` must finish it.
"""
from __future__ import annotations

import errno
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import pytest

from core import settings
from core.runs import runner, store
from core.runs.callbacks import latest_checkpoint
from core.config import RunSpec
from core.runs.worker import run_worker
from tests.conftest import ROOT, cli, make_folder, poll_until

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


def _wait_for(predicate, timeout=120.0, poll=0.02):
    return poll_until(predicate, timeout, poll)


def _orphans(home: Path) -> list[Path]:
    return [*home.glob("runs/*/.*.tmp.keras"), *home.glob("cache/*/.*.tmp")]


def _kill(run_id: str) -> dict:
    """SIGKILL the run's worker, then let kick() find it dead; returns the run as kick left it."""
    pid = store.get_run(run_id)["pid"]
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not runner.pid_alive(pid))
    runner.kick()
    return store.get_run(run_id)


def _check_interrupted(run_id: str, epochs_before: int) -> int:
    """The run is interrupted with its finished epochs 1..k (k >= epochs_before) and checkpoint k kept."""
    run = store.get_run(run_id)
    assert run["status"] == "interrupted" and "resume" in run["error"], run
    done = [r["epoch"] for r in store.epochs(run_id)]
    assert done == list(range(1, len(done) + 1)) and len(done) >= epochs_before
    if done:
        assert latest_checkpoint(run_id, len(done)) is not None
    return len(done)


def _check_complete(run_id: str, total: int, home: Path) -> None:
    run = store.get_run(run_id)
    assert run["status"] == "finished", run["error"]
    rows = store.epochs(run_id)
    assert [r["epoch"] for r in rows] == list(range(1, total + 1))  # each epoch exactly once
    assert all(r[k] is not None for r in rows for k in METRICS)
    keras.models.load_model(store.run_dir(run_id) / "best.keras", safe_mode=True)
    assert not _orphans(home)


def test_kill_during_feature_extraction_then_resume(home, tmp_path):
    data = make_folder(tmp_path / "many", {"train": 110, "validation": 20})
    spec = RunSpec.from_recipe("feature_extraction", data=str(data), weights="none", image_size=64, epochs=2,
                               batch_size=32, head="gap")
    run_id = runner.submit(spec)
    _wait_for(lambda: store.get_run(run_id)["progress"].get("stage", "").startswith("extracting"))
    time.sleep(0.3)
    assert store.get_run(run_id)["progress"]["stage"].startswith("extracting")
    assert list(home.glob("cache/features/.*.tmp"))  # the half-written feature cache
    _kill(run_id)
    assert _check_interrupted(run_id, 0) == 0
    assert not _orphans(home)  # kick removed the dead worker's partial files
    runner.resume(run_id)
    assert runner.wait(run_id, poll=0.2)["status"] == "finished"
    _check_complete(run_id, 2, home)


@pytest.mark.nightly  # about 35 s; a real worker's kill and resume runs by default (tests/test_leases.py, frozen)
def test_random_kills_mid_epoch_and_while_checkpointing_lose_no_finished_epoch(home, tiny_data):
    """One run killed 5 times (first mid-epoch, then at random moments), resumed after each kill."""
    rng = random.Random(20240607)
    total = 20
    spec = RunSpec.from_recipe("scratch", data=str(tiny_data), image_size=48, epochs=total, batch_size=2)
    run_id = runner.submit(spec)
    kills = lost = during_checkpoint = mid_epoch = 0
    while kills < 5:
        def training():
            run = store.get_run(run_id)
            return run if run["status"] != "running" or run["progress"].get("stage") == "train" else None
        run = _wait_for(training)
        if kills == 0:  # the first kill: in the middle of an epoch after the first one (progress is written
            # every 0.5 s: on a fast CPU an epoch of 12 batches takes about that long, so batch 1 may be all it shows)
            run = _wait_for(lambda: (r := store.get_run(run_id))["epochs_done"] >= 1
                            and 1 <= r["progress"].get("batch", 0) < r["progress"].get("batches", 0) and r)
        else:
            time.sleep(rng.uniform(0.0, 1.2))
        if run["status"] != "running":
            break
        before = store.get_run(run_id)
        try:
            os.kill(before["pid"], signal.SIGKILL)
        except ProcessLookupError:
            break
        partial = list(store.run_dir(run_id).glob(".*.tmp.keras"))
        _wait_for(lambda pid=before["pid"]: not runner.pid_alive(pid))
        runner.kick()
        if store.get_run(run_id)["status"] == "finished":
            break
        kept = _check_interrupted(run_id, before["epochs_done"])
        lost += max(0, before["epochs_done"] - kept)
        during_checkpoint += bool(partial)
        mid_epoch += bool(before["progress"].get("batch"))
        kills += 1
        runner.resume(run_id)
    final = runner.wait(run_id, poll=0.2)
    assert final["status"] == "finished", final["error"]
    _check_complete(run_id, total, home)
    messages = [line["message"] for line in store.log_lines(run_id, 1000)]
    assert sum("interrupted" in m for m in messages) == kills >= 5
    assert any(m.startswith("resuming from ckpt-") for m in messages)
    assert lost == 0 and mid_epoch >= 1
    print(f"\nkilled and resumed {kills} times ({mid_epoch} mid-epoch, {during_checkpoint} while a model file "
          f"was being written), finished epochs lost: {lost}")


def test_a_worker_dying_around_its_final_save_is_completed_by_resume(home, tiny_data, monkeypatch):
    spec = RunSpec.from_recipe("scratch", data=str(tiny_data), image_size=48, epochs=2, batch_size=8)
    run_id = store.create_run(spec.to_dict(), "final save", "scratch", None, 2)
    assert run_worker(run_id) == "finished"
    store.set_status(run_id, "interrupted")  # died after saving the final models, before saying so
    runner.resume(run_id)
    assert store.get_run(run_id)["status"] == "finished"
    for name in ("best.keras", "last.keras"):  # died after the last epoch, before saving the final models
        (store.run_dir(run_id) / name).unlink()
    store.set_status(run_id, "interrupted")
    monkeypatch.setattr(runner, "kick", lambda: None)  # the worker runs here, not as a detached process
    runner.resume(run_id)
    assert store.get_run(run_id)["status"] == "queued"
    assert run_worker(run_id) == "finished"
    _check_complete(run_id, 2, home)


def test_a_full_disk_while_checkpointing_fails_the_run_and_keeps_its_epochs(home, tiny_data, monkeypatch):
    real_save = keras.Model.save

    def save(self, path, *args, **kwargs):
        if "ckpt-0002" in str(path):
            Path(path).write_bytes(b"half a model")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(self, path, *args, **kwargs)
    monkeypatch.setattr(keras.Model, "save", save)
    spec = RunSpec.from_recipe("scratch", data=str(tiny_data), image_size=48, epochs=3, batch_size=8)
    run_id = store.create_run(spec.to_dict(), "full disk", "scratch", None, 3)
    assert run_worker(run_id) == "failed"
    run = store.get_run(run_id)
    assert "No space left on device" in run["error"] and "ckpt-0002" in run["error"] and "resume" in run["error"]
    assert [r["epoch"] for r in store.epochs(run_id)] == [1]  # the finished epoch is kept, epoch 2 not claimed
    assert not _orphans(home)
    with store.connect() as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    monkeypatch.setattr(keras.Model, "save", real_save)  # space freed: resume continues after epoch 1
    assert run_worker(run_id) == "finished"
    _check_complete(run_id, 3, home)


def _unwritable_home(kind: str, tmp_path: Path) -> Path:
    if kind == "under_a_file":
        (tmp_path / "a_file").write_text("x")
        return tmp_path / "a_file" / "home"
    if kind == "proc":
        if not Path("/proc/self").is_dir():
            pytest.skip("no /proc on this system")
        return Path("/proc/self")
    if os.geteuid() == 0:
        pytest.skip("root ignores permission bits; the other kinds cover an unwritable home")
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@pytest.mark.parametrize("kind", ["under_a_file", "proc", "chmod"])
def test_an_unwritable_home_gets_one_sentence_naming_the_folder(tmp_path, tiny_data, kind, monkeypatch):
    home = _unwritable_home(kind, tmp_path)
    for args in (["runs"], ["train", "--recipe", "scratch", "--data", tiny_data, "--image-size", 48, "--epochs", 1]):
        proc = cli(*args, home=home, check=False)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(errors) == 1, proc.stderr
        assert str(home) in errors[0] and "TUNELAB_HOME" in errors[0], errors[0]
    monkeypatch.setenv("TUNELAB_HOME", str(home))
    for call in (store.list_runs, lambda: settings.update(data=str(tiny_data))):
        with pytest.raises(RuntimeError, match=str(home)):
            call()


@pytest.mark.nightly  # about 21 s; tests/test_soak_class.py's eight concurrent students check the same by default
def test_simultaneous_submitters_lose_no_run_and_respect_the_limit(home, tiny_data, monkeypatch):
    monkeypatch.setenv("TUNELAB_MAX_RUNS", "1")
    env = dict(os.environ, TUNELAB_HOME=str(home), TUNELAB_MAX_RUNS="1", TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "core", "train", "--recipe", "scratch", "--data", str(tiny_data),
           "--image-size", "48", "--epochs", "2", "--batch-size", "8"]
    stop, peak, errors = threading.Event(), [0], []

    def sample():
        while not stop.is_set():
            try:
                with store.connect() as c:
                    peak[0] = max(peak[0], c.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0])
            except Exception as exc:  # the store does not exist for the first few milliseconds
                if "no such table" not in str(exc):
                    errors.append(repr(exc))
            time.sleep(0.01)
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]  # started together: they race to create the store and to start a worker
        outputs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        run_ids = [out.strip().splitlines()[-1] for out, _ in outputs]
        assert len(set(run_ids)) == 2
        finals = [runner.wait(run_id, poll=0.2) for run_id in run_ids]
    finally:
        stop.set()
        sampler.join()
    assert [f["status"] for f in finals] == ["finished"] * 2, [f["error"] for f in finals]
    assert sorted(r["id"] for r in store.list_runs()) == sorted(run_ids)
    assert all([r["epoch"] for r in store.epochs(run_id)] == [1, 2] for run_id in run_ids)
    assert peak[0] == 1 and not errors, (peak, errors)
    with sqlite3.connect(home / "runs.sqlite") as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
