"""Assignments and the leaderboard (issue 11): a teacher's fixed settings, a held-out split no student run trains on
(by the run's recorded manifest), held-out scores written by the worker, each student's best run ranked."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import cli, make_folder
from core.analysis import leaderboard
from core.data import manifest
from core.runs import artifacts, assignments, runner, store


@pytest.fixture
def teacher(home, monkeypatch):
    monkeypatch.setenv("TUNELAB_TEACHERS", "ann")
    return "ann"


def _assignment(tmp_path, per_class=None, **values):
    data = make_folder(tmp_path / "data", per_class or {"": 10})
    return assignments.create("Week 1", "scratch", {"data": str(data), "epochs": 1, "image_size": 48, **values},
                              user="ann")


def test_the_worker_records_a_split_without_the_held_out_images_even_under_another_name(teacher, tmp_path,
                                                                                          monkeypatch):
    from core.runs import lease
    from core.runs.phases import Job
    task = _assignment(tmp_path)
    held = set(assignments.heldout_hashes(task))
    copy = tmp_path / "data" / "dogs" / "dogs.copy.png"  # a held-out photo copied among the others, after saving
    shutil.copy(next(row[0] for row in task["heldout"]["files"] if row[1] == 1), copy)
    monkeypatch.setattr(runner, "kick", lambda: None)
    run_id = assignments.submit(task["id"], {"seed": 2}, user="bob")
    record, _ = Job(run_id, lease.claim(run_id)).recorded_split()  # what the worker does at a run's first start
    assert manifest.read(artifacts.split_manifest(run_id)) == record
    recorded = {row[3] for rows in record["splits"].values() for row in rows}
    assert len(recorded) == 20 - 2 and not recorded & held
    assert str(copy) in {row[0] for row in record["excluded"]} and {row[3] for row in record["excluded"]} == held
    assert leaderboard.heldout_split_overlap(run_id, task) == 0


def test_the_worker_scores_a_finished_assignment_run_on_the_held_out_images(lab_home, trained_lab, monkeypatch):
    from core.runs import lease
    from core.runs.worker import score_heldout
    monkeypatch.setenv("TUNELAB_TEACHERS", "ann")
    task = assignments.create("Week 2", "scratch", {"data": str(trained_lab["data"]), "image_size": 48}, user="ann")
    run_id = trained_lab["runs"][0]  # trained on the folder's train/ images: the held-out test/ ones are unseen
    store.update_run(run_id, assignment=task["id"])
    held = lease.claim(run_id)
    score_heldout(run_id, held)  # what the worker calls when an assignment run finishes, before saying so
    held.set_status("finished")
    [row] = assignments.runs_with_scores(task["id"])
    assert (row["n"], row["overlap"], row["missing"]) == (8, 0, 0) and 0 <= row["accuracy"] <= 1
    assert any(line["message"].startswith(f"held-out score: accuracy {row['accuracy']:.4f} on 8 images (")
               for line in store.log_lines(run_id))
    assert leaderboard.board(task["id"])["rows"][0]["run_id"] == run_id


@pytest.mark.nightly
def test_a_student_run_never_trains_on_the_held_out_images_by_its_recorded_manifest(teacher, tmp_path, monkeypatch):
    from core.runs.worker import run_worker
    task = _assignment(tmp_path, augment="none")
    held = assignments.heldout_hashes(task)
    assert task["heldout"]["source"] == "10% of each class's images (seed 0)" and len(held) == 2
    # after the assignment was saved, someone copies a held-out photo under a new name among the training images
    copy = tmp_path / "data" / "cats" / "cats.copy.png"
    shutil.copy(next(row[0] for row in task["heldout"]["files"] if row[1] == 0), copy)
    monkeypatch.setattr(runner, "kick", lambda: None)
    run_id = assignments.submit(task["id"], {"batch_size": 8, "seed": 1}, user="bob")
    assert run_worker(run_id) == "finished", store.get_run(run_id)["error"]
    record = manifest.read(artifacts.split_manifest(run_id))
    trained_on = {row[3] for split in ("train", "validation") for row in record["splits"][split]}
    assert trained_on and not trained_on & set(held)
    assert {row[0] for row in record["excluded"]} >= {str(copy)} and {row[3] for row in record["excluded"]} == set(held)
    assert leaderboard.heldout_split_overlap(run_id, task) == 0
    scored = assignments.runs_with_scores(task["id"])  # the worker scored it on the held-out images when it finished
    assert [(r["id"], r["n"], r["overlap"]) for r in scored] == [(run_id, 2, 0)] and 0 <= scored[0]["accuracy"] <= 1
    board = leaderboard.board(task["id"])
    assert [(r["rank"], r["student"], r["run_id"]) for r in board["rows"]] == [(1, "bob", run_id)]


def test_a_run_that_changes_a_fixed_value_or_keeps_held_out_images_is_refused(teacher, tmp_path, monkeypatch):
    from core.runs.specs import build_spec
    task = _assignment(tmp_path)
    with pytest.raises(ValueError, match="epochs is fixed at 1 by the assignment 'Week 1' \\(got 3\\)"):
        assignments.build(task, {"epochs": 3})
    with pytest.raises(ValueError, match="fixes the recipe scratch, not fine_tune"):
        assignments.build(task, {"recipe": "fine_tune"})
    monkeypatch.setattr(runner, "kick", lambda: None)
    own = build_spec("scratch", {**task["spec"]})  # the fixed values, but the held-out images not left out
    with pytest.raises(ValueError, match="would train on 2 held-out images of the assignment 'Week 1'"):
        runner.submit(own, user="bob", assignment=task["id"])
    assert store.list_runs() == []
    spec = assignments.build(task, {"lr": 2e-4, "exclude": ["ab" * 20]})
    assert spec.lr == 2e-4 and spec.epochs == 1 and set(spec.exclude) == {"ab" * 20, *assignments.heldout_hashes(task)}


def _finished_run(task, owner, accuracy, loss=0.5, name="r"):
    run_id = store.create_run({"recipe": "scratch"}, name, "scratch", None, 1, owner=owner, assignment=task["id"])
    store.set_status(run_id, "finished")
    if accuracy is not None:
        assignments.record_score(run_id, task["id"], {"accuracy": accuracy, "loss": loss, "n": 2})
    return run_id


def test_the_leaderboard_ranks_each_students_best_run(teacher, tmp_path):
    task = _assignment(tmp_path)
    _finished_run(task, "bob", 0.5)
    bob_best = _finished_run(task, "bob", 1.0, name="bob's best")
    cy = _finished_run(task, "cy", 1.0, loss=0.2)
    dee = _finished_run(task, "dee", 0.5)
    _finished_run(task, "eve", None)  # finished, not scored yet
    stopped = store.create_run({"recipe": "scratch"}, "x", "scratch", None, 1, owner="fay", assignment=task["id"])
    assignments.record_score(stopped, task["id"], {"accuracy": 1.0, "loss": 0.1, "n": 2})
    store.set_status(stopped, "stopped")  # only finished runs are ranked
    board = leaderboard.board(task["id"])
    assert [(r["rank"], r["student"], r["run_id"]) for r in board["rows"]] == [
        (1, "cy", cy), (1, "bob", bob_best), (3, "dee", dee)]  # equal accuracy shares a rank; the lower loss first
    assert board["rows"][1]["runs_scored"] == 2 and len(board["unscored"]) == 1
    assert "   1  cy" in leaderboard.text_table(board)


def test_only_teachers_create_assignments_and_the_command_line_prints_the_leaderboard(teacher, tmp_path):
    data = make_folder(tmp_path / "data", {"train": 4, "validation": 2, "test": 2})
    args = ("assignment", "create", "Week 1", "--recipe", "scratch", "--data", data, "--epochs", "1",
            "--image-size", "48", "--json")
    refused = cli(*args, home=teacher and tmp_path / "home", check=False, env={"TUNELAB_USER": "bob"})
    assert refused.returncode != 0 and refused.stderr.strip() == (
        "error: Only a teacher can create an assignment, and bob is not one: add the name to TUNELAB_TEACHERS "
        "(comma-separated) where the lab is started.")
    made = json.loads(cli(*args, home=tmp_path / "home", env={"TUNELAB_USER": "ann"}).stdout)
    assert made["link"] == f"Train?assignment={made['id']}" and made["heldout_images"] == 4
    listed = json.loads(cli("assignment", "list", "--json", home=tmp_path / "home").stdout)
    assert [a["id"] for a in listed] == [made["id"]]
    board = json.loads(cli("leaderboard", made["id"], "--json", home=tmp_path / "home").stdout)
    assert board["rows"] == [] and board["assignment"]["heldout_images"] == 4


def test_a_rerun_counts_for_the_same_assignment_while_it_exists(teacher, tmp_path, monkeypatch):
    from core.runs.specs import rerun_spec
    task = _assignment(tmp_path)
    monkeypatch.setattr(runner, "kick", lambda: None)
    first = store.get_run(assignments.submit(task["id"], {"lr": 2e-4}, user="bob"))
    again = runner.submit(rerun_spec(first["spec"]), user="bob", assignment=assignments.still_open(first["assignment"]))
    assert store.get_run(again)["assignment"] == task["id"]  # what Compare's "Rerun this" does
    assignments.delete(task["id"], user="ann")
    assert assignments.still_open(first["assignment"]) is None
