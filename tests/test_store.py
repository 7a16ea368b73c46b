"""The run store, SQLite and PostgreSQL (`store_home` runs each test on both): runs, epochs, logs, concurrent writers."""
import os
import threading

from core.runs import store


def test_run_round_trip(store_home):
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


def test_wal_mode_and_concurrent_writers(store_home):
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
    if store.backend() == "sqlite":
        with store.connect() as c:
            assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    else:
        assert not (store_home / "runs.sqlite").exists()


def test_the_queue_leases_and_owners_behave_the_same_on_both_stores(store_home, monkeypatch):
    import os

    import pytest

    from core.config import RunSpec
    from core.runs import lease, runner
    started = []
    monkeypatch.setattr(runner, "_spawn", lambda run_id, token: started.append(run_id) or os.getpid())
    monkeypatch.setenv("TUNELAB_MAX_RUNS", "1")
    submit = lambda user: runner.submit(RunSpec.from_recipe("scratch", epochs=1, image_size=48), user=user)  # noqa
    alice = [submit("alice") for _ in range(3)]
    bob = submit("bob")
    for _ in range(3):
        store.set_status(started[-1], "finished")
        runner.kick()
    assert started == [alice[0], bob, alice[1], alice[2]]
    assert store.get_run(bob)["owner"] == "bob" and store.get_run(bob)["started"] > 1e9  # a full timestamp
    with pytest.raises(PermissionError, match="belongs to alice, not bob"):
        runner.stop(alice[2], user="bob")
    held = lease.claim(alice[2])
    with store.connect(immediate=True) as c:
        lease.fence(c, alice[2])
    with pytest.raises(store.LeaseLost):
        held.record_epoch(1, "train", {"loss": 0.5})
    assert store.epochs(alice[2]) == []
    store.record_epoch(bob, 1, "train", {"loss": 0.5})
    store.record_epoch(bob, 1, "train", {"loss": 0.25})  # written again: replaced, not doubled
    assert [e["loss"] for e in store.epochs(bob)] == [0.25]


def test_assignments_and_held_out_scores_behave_the_same_on_both_stores(store_home, tmp_path, monkeypatch):
    import pytest

    from conftest import make_folder
    from core.runs import assignments
    monkeypatch.setenv("TUNELAB_TEACHERS", "ann")
    data = make_folder(tmp_path / "data", {"train": 4, "validation": 2, "test": 2})
    made = assignments.create("Week 1", "scratch", {"data": str(data), "epochs": 2, "image_size": 48}, user="ann")
    assert made["spec"] == {"data": str(data), "epochs": 2, "image_size": 48}
    assert len(made["heldout"]["files"]) == 4 and made["heldout"]["source"] == "the folder's test/ images"
    assert assignments.get(made["id"][:4]) == assignments.get("Week 1") == assignments.list_all()[0]
    run_id = store.create_run({"recipe": "scratch"}, "bob's", "scratch", None, 2, owner="bob", assignment=made["id"])
    assert store.get_run(run_id)["assignment"] == made["id"]
    assignments.record_score(run_id, made["id"], {"accuracy": 0.5, "loss": 0.7, "n": 4})
    assignments.record_score(run_id, made["id"], {"accuracy": 0.75, "loss": 0.6, "n": 4})  # replaced, not doubled
    assert [(r["id"], r["accuracy"], r["n"]) for r in assignments.runs_with_scores(made["id"])] == [(run_id, 0.75, 4)]
    with pytest.raises(PermissionError, match="Only a teacher can delete an assignment, and bob is not one"):
        assignments.delete(made["id"], user="bob")
    assignments.delete(made["id"], user="ann")
    assert assignments.list_all() == []  # its scores went with it; its runs stay
    assert [(r["id"], r["accuracy"]) for r in assignments.runs_with_scores(made["id"])] == [(run_id, None)]
    with pytest.raises(ValueError, match="No assignment matches"):
        assignments.get(made["id"])


def test_a_store_made_before_per_epoch_trainable_blocks_gains_the_column_and_keeps_its_epochs(home):
    import sqlite3
    home.mkdir(parents=True)
    old = sqlite3.connect(home / "runs.sqlite")
    old.executescript(store._SCHEMA.replace(" trains TEXT,", ""))
    old.execute("INSERT INTO runs (id, name, recipe, spec, status, created, epochs_total) "
                "VALUES ('old', 'old', 'fine_tune', '{}', 'finished', 0, 2)")
    old.execute("INSERT INTO epochs (run_id, epoch, phase, loss) VALUES ('old', 1, 'head', 0.5)")
    old.commit()
    old.close()
    store._migrated.clear()
    store.record_epoch("old", 2, "fine_tune", {"loss": 0.4, "trains": {"head": 1e-5, "block5": 5e-6}})
    assert [(r["loss"], r["trains"]) for r in store.epochs("old")] == [(0.5, None), (0.4, {"head": 1e-5, "block5": 5e-6})]


def test_home_at_points_the_store_at_another_home_and_restores_the_previous_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELAB_HOME", str(tmp_path / "mine"))
    with store.home_at(tmp_path / "other") as other:
        assert store.home() == other == tmp_path / "other"
    assert store.home() == tmp_path / "mine"
    monkeypatch.delenv("TUNELAB_HOME")
    try:
        with store.home_at(tmp_path / "third"):
            raise RuntimeError("a failing measurement")
    except RuntimeError:
        pass
    assert "TUNELAB_HOME" not in os.environ
