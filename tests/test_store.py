"""The SQLite run store: runs, epochs, logs, and concurrent writers."""
import threading

from core.runs import store


def test_run_round_trip(home):
    run_id = store.create_run({"recipe": "scratch"}, "my run", "scratch", None, 3)
    store.record_epoch(run_id, 1, "train", {"loss": 0.7, "accuracy": 0.5, "val_loss": 0.69, "val_accuracy": 0.55,
                                            "lr": 1e-4, "seconds": 2.0})
    store.log(run_id, "hello")
    run = store.get_run(run_id)
    assert run["status"] == "queued" and run["epochs_done"] == 1 and run["spec"] == {"recipe": "scratch"}
    assert store.epochs(run_id)[0]["val_accuracy"] == 0.55
    assert store.log_lines(run_id)[-1]["message"] == "hello"
    assert store.list_runs()[0]["best_val_acc"] == 0.55
    assert store.find_run(run_id[:10])["id"] == run_id
    store.delete_run(run_id)
    assert store.get_run(run_id) is None and store.epochs(run_id) == []


def test_wal_mode_and_concurrent_writers(home):
    run_id = store.create_run({}, "x", "scratch", None, 400)
    errors = []

    def writer(offset):
        try:
            for i in range(100):
                store.record_epoch(run_id, offset + i, "train", {"loss": float(i)})
                store.update_run(run_id, heartbeat=float(i))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=writer, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.epochs(run_id)) == 400
    with store.connect() as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
