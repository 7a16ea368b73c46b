"""Soak: many short runs submitted from several threads while readers hammer the run store."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from core.runs import runner, store
from core.config import RunSpec

LIMIT, SUBMITTERS, RUNS_EACH, READERS = 2, 4, 2, 3


@pytest.mark.nightly  # about 50 s; tests/test_soak_class.py's eight students run by default
@pytest.mark.slow
def test_soak_short_runs_with_concurrent_readers(home, tiny_data, monkeypatch):
    monkeypatch.setenv("TUNELAB_MAX_RUNS", str(LIMIT))
    submitted: list[tuple[str, int]] = []
    done, errors, peak, reads = threading.Event(), [], [0], [0]
    lock = threading.Lock()

    def submit(worker: int) -> None:
        for j in range(RUNS_EACH):
            epochs = 1 + (worker + j) % 2
            spec = RunSpec.from_recipe("scratch", data=str(tiny_data), image_size=48, epochs=epochs, batch_size=8,
                                       name=f"soak {worker}.{j}")
            try:
                run_id = runner.submit(spec)
            except Exception as exc:
                errors.append(f"submit: {exc!r}")
                continue
            with lock:
                submitted.append((run_id, epochs))

    def read() -> None:
        while not done.is_set():
            try:
                runs = store.list_runs()
                peak[0] = max(peak[0], sum(r["status"] == "running" for r in runs))
                for run in runs:
                    store.epochs(run["id"])
                    store.log_lines(run["id"], 50)
                reads[0] += 1
            except Exception as exc:
                errors.append(f"read: {exc!r}")
            time.sleep(0.005)

    started = time.time()
    readers = [threading.Thread(target=read) for _ in range(READERS)]
    submitters = [threading.Thread(target=submit, args=(i,)) for i in range(SUBMITTERS)]
    for t in readers + submitters:
        t.start()
    try:
        for t in submitters:
            t.join()
        finals = {run_id: runner.wait(run_id, poll=0.3) for run_id, _ in submitted}
    finally:
        done.set()
        for t in readers:
            t.join()

    assert not errors, errors[:5]
    assert len(submitted) == SUBMITTERS * RUNS_EACH == len(store.list_runs())
    assert {run_id: f["status"] for run_id, f in finals.items()} == {run_id: "finished" for run_id, _ in submitted}
    for run_id, epochs in submitted:
        assert [r["epoch"] for r in store.epochs(run_id)] == list(range(1, epochs + 1))  # each epoch exactly once
    assert 1 <= peak[0] <= LIMIT
    with sqlite3.connect(home / "runs.sqlite") as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    print(f"\n{len(submitted)} runs in {time.time() - started:.0f}s, peak {peak[0]} running, {reads[0]} store sweeps")
