"""A run's split is recorded once (paths, sizes, content hashes) and everything that scores a run reads it:
resume, `evaluate`, Inspect and run comparisons never score a run on images it trained on."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from core.analysis import inspection
from core.analysis.evaluate import evaluate
from core.config import RunSpec
from core.data import manifest
from core.data.folders import DataError, stratified_split
from core.runs import artifacts, runner, store
from core.runs.callbacks import RunRecorder, StopRequested
from core.runs.worker import run_worker
from tests.conftest import cli, cli_here, make_folder, poll_until


def _train_inline(data, epochs=1, seed=0, **overrides) -> str:
    spec = RunSpec.from_recipe("scratch", data=str(data), image_size=48, epochs=epochs, batch_size=8, seed=seed,
                               **overrides)
    run_id = store.create_run(spec.to_dict(), spec.display_name(), spec.recipe, None, spec.total_epochs)
    assert run_worker(run_id) == "finished", store.get_run(run_id)["error"]
    return run_id


def _sha1(path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def _wait_for(predicate, timeout=180.0, poll=0.1):
    return poll_until(predicate, timeout, poll)


@pytest.fixture
def unsplit(tmp_path):
    """An unsplit folder: 20 cats and 20 dogs (split 14/4/2 per class)."""
    return make_folder(tmp_path / "unsplit", {"": 20})


def test_the_split_is_recorded_with_absolute_paths_sizes_and_content_hashes_from_a_relative_folder(
        home, unsplit, monkeypatch):
    monkeypatch.chdir(unsplit.parent)
    run_id = _train_inline("unsplit")
    record = json.loads(artifacts.split_manifest(run_id).read_text())
    assert record["version"] == 2 and record["root"] == str(unsplit.resolve()) and record["classes"] == ["cats", "dogs"]
    rows = [row for split in ("train", "validation", "test") for row in record["splits"][split]]
    assert [len(record["splits"][s]) for s in ("train", "validation", "test")] == [28, 8, 4]
    assert sorted(Path(path) for path, *_ in rows) == sorted(unsplit.rglob("*.png"))  # every image once
    for path, label, size, digest in rows:
        assert Path(path).is_absolute() and size == os.path.getsize(path) and digest == _sha1(path)
        assert label == (0 if "/cats/" in path else 1)
    assert store.get_run(run_id)["info"]["data_root"] == str(unsplit.resolve())


def test_a_relative_data_folder_is_stored_absolute_when_submitted(home, unsplit, monkeypatch):
    monkeypatch.chdir(unsplit.parent)
    monkeypatch.setattr(runner, "kick", lambda: None)
    run_id = runner.submit(RunSpec.from_recipe("scratch", data="unsplit", image_size=48, epochs=1))
    assert store.get_run(run_id)["spec"]["data"] == str(unsplit.resolve())


def test_a_resume_keeps_the_recorded_split_when_files_disappear_and_appear(home, unsplit, monkeypatch):
    """Stopped after epoch 1; the folder then loses 5 images and gains 20; the resumed run trains on the
    recorded split less the 5, reports both changes, and never rewrites split.json."""
    original = RunRecorder.on_epoch_end

    def stop_after_first(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise StopRequested()
    monkeypatch.setattr(RunRecorder, "on_epoch_end", stop_after_first)
    spec = RunSpec.from_recipe("scratch", data=str(unsplit), image_size=48, epochs=3, batch_size=8)
    run_id = store.create_run(spec.to_dict(), "changing folder", "scratch", None, 3)
    assert run_worker(run_id) == "stopped"
    monkeypatch.setattr(RunRecorder, "on_epoch_end", original)
    path = artifacts.split_manifest(run_id)
    before, record = path.read_bytes(), json.loads(path.read_bytes())
    gone = [row[0] for row in record["splits"]["train"][:3] + record["splits"]["validation"][:2]]
    for name in gone:
        os.unlink(name)
    make_folder(unsplit.parent / "more", {"": 10}, seed=7)
    for i, extra in enumerate(sorted((unsplit.parent / "more").rglob("*.png"))):
        shutil.copy(extra, unsplit / extra.parent.name / f"new.{i}.png")
    # A fresh split of the folder as it is now would move images between the splits:
    files = {label: [str(p) for p in sorted((unsplit / cls).glob("*.png"))]
             for label, cls in enumerate(["cats", "dogs"])}
    rescan = {p for p, _ in stratified_split(files, 0.2, 0.1, 0)["train"]}
    recorded_train = {row[0] for row in record["splits"]["train"]}
    assert rescan - recorded_train  # (this is what the worker did before the split was recorded)

    assert run_worker(run_id) == "finished", store.get_run(run_id)["error"]
    assert path.read_bytes() == before
    run = store.get_run(run_id)
    assert sum(run["info"]["counts"]["train"].values()) == 28 - 3
    assert sum(run["info"]["counts"]["validation"].values()) == 8 - 2
    assert run["info"]["left_out"] == 5 and run["info"]["new_files"] == 20
    messages = [line["message"] for line in store.log_lines(run_id)]
    assert any(m.startswith("3 recorded train images no longer exist") for m in messages)
    assert any(m.startswith("2 recorded validation images no longer exist") for m in messages)
    assert any(m.startswith("20 image files added to the data folder since the run began are ignored")
               for m in messages)
    assert [r["epoch"] for r in store.epochs(run_id)] == [1, 2, 3]


@pytest.mark.nightly  # about 16 s with two real workers. By default: the same folder changes and resume in-process
# (test_a_resume_keeps_the_recorded_split_when_files_disappear_and_appear above), and a real worker killed after its
# first epoch and resumed to finish every epoch once (tests/test_leases.py's frozen worker killed by kick())
def test_a_killed_run_resumes_to_finished_with_its_split_record_byte_identical(home, tmp_path):
    """The real thing: a detached worker SIGKILLed after its first epoch, the folder changed, resume."""
    data = make_folder(tmp_path / "photos", {"": 30})
    spec = RunSpec.from_recipe("scratch", data=str(data), image_size=48, epochs=4, batch_size=2)
    run_id = runner.submit(spec)
    _wait_for(lambda: store.get_run(run_id)["epochs_done"] >= 1)
    pid, killed_after = store.get_run(run_id)["pid"], store.get_run(run_id)["epochs_done"]
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not runner.pid_alive(pid))
    runner.kick()
    assert store.get_run(run_id)["status"] == "interrupted"
    path = artifacts.split_manifest(run_id)
    before = path.read_bytes()
    record = json.loads(before)
    for row in record["splits"]["train"][:5]:
        os.unlink(row[0])
    make_folder(tmp_path / "extra", {"": 10}, seed=11)
    for i, extra in enumerate(sorted((tmp_path / "extra").rglob("*.png"))):
        shutil.copy(extra, data / extra.parent.name / f"added.{i}.png")
    runner.resume(run_id)
    final = runner.wait(run_id, poll=0.3)
    assert final["status"] == "finished", final["error"]
    assert path.read_bytes() == before
    assert [r["epoch"] for r in store.epochs(run_id)] == [1, 2, 3, 4]
    assert any("resuming from" in line["message"] for line in store.log_lines(run_id))
    info = store.get_run(run_id)["info"]
    assert info["left_out"] == 5 and info["new_files"] == 20
    print(f"\nkilled after epoch {killed_after}, 5 files removed and 20 added: finished with "
          f"{sum(info['counts']['train'].values())} of {len(record['splits']['train'])} recorded training images, "
          f"split.json identical ({len(before)} bytes)")


def test_evaluate_scores_the_runs_own_test_split_and_leaves_out_training_images_of_a_folder(home, unsplit):
    run_id = _train_inline(unsplit)
    own = json.loads(cli_here("evaluate", run_id, "--json", home=home).stdout)
    assert own["split"] == "test" and own["n"] == 4 and own["overlap_with_training"] == 0 and own["own_split"]
    assert {"split", "n", "accuracy", "loss", "confusion_matrix", "overlap_with_training"} <= set(own)
    assert sum(map(sum, own["confusion_matrix"])) == 4
    folder = evaluate(run_id, str(unsplit))
    assert folder["split"] == "all" and folder["overlap_with_training"] == 28 and folder["n"] == 12
    assert sum(map(sum, folder["confusion_matrix"])) == 12
    text = cli_here("evaluate", run_id, "--data", unsplit, home=home).stdout
    assert "left out 28 images whose content is in the run's training split" in text
    with pytest.raises(ValueError, match="--split must be validation or test"):
        evaluate(run_id, split="train")


def test_evaluate_finds_a_training_image_by_its_content_under_another_name(home, unsplit, tmp_path):
    run_id = _train_inline(unsplit)
    record = json.loads(artifacts.split_manifest(run_id).read_text())
    other = make_folder(tmp_path / "other", {"test": 3, "train": 3, "validation": 3}, seed=5)
    copied = [row[0] for row in record["splits"]["train"] if "/dogs/" in row[0]][:2]
    for i, path in enumerate(copied):
        shutil.copy(path, other / "test" / "dogs" / f"renamed.{i}.png")
    result = evaluate(run_id, str(other))
    assert result["split"] == "test" and result["overlap_with_training"] == 2 and result["n"] == 6
    for path in (other / "test").rglob("*.png"):  # every image the run trained on: nothing left to score
        path.unlink()
    for i, path in enumerate(copied):
        shutil.copy(path, other / "test" / "dogs" / f"renamed.{i}.png")
        shutil.copy(path, other / "test" / "cats" / f"renamed.{i}.png")
    with pytest.raises(DataError, match="All 4 test images .* are in run .* training split"):
        evaluate(run_id, str(other))


def test_an_old_split_record_without_hashes_is_still_read(home, unsplit):
    run_id = _train_inline(unsplit)
    path = artifacts.split_manifest(run_id)
    record = json.loads(path.read_text())
    path.write_text(json.dumps({"root": record["root"], "classes": record["classes"],
                                "splits": {s: [row[:2] for row in rows] for s, rows in record["splits"].items()}}))
    assert inspection.available_splits(run_id) == ["validation", "test"]
    assert evaluate(run_id)["n"] == 4
    assert evaluate(run_id, str(unsplit))["overlap_with_training"] == 28  # hashes computed from the files


def test_comparing_two_runs_leaves_out_the_images_the_second_run_trained_on(home, unsplit, tmp_path):
    first = _train_inline(unsplit)
    a = inspection.split_result(first, "validation")
    assert a["n"] == 8 and a["overlap"] == 0
    # run B trains on a folder holding copies (other names) of three of A's validation images
    b_data = make_folder(tmp_path / "b", {"train": 6, "validation": 3}, seed=3)
    for i, (path, label) in enumerate(zip(a["paths"][:3], a["labels"][:3])):
        shutil.copy(path, b_data / "train" / ["cats", "dogs"][label] / f"from_a.{i}.png")
    second = _train_inline(b_data, seed=1)
    pair = inspection.compare(a, second)
    assert pair["overlap"] == 3 and pair["b"]["n"] == pair["a"]["n"] == 5
    assert pair["a"]["paths"] == pair["b"]["paths"] == a["paths"][3:]
    assert inspection.disagreements(pair["a"], pair["b"])["counts"]["images"] == 5
    # every image of A's split in B's training split: refused
    for i, (path, label) in enumerate(zip(a["paths"][3:], a["labels"][3:])):
        shutil.copy(path, b_data / "train" / ["cats", "dogs"][label] / f"more_from_a.{i}.png")
    third = _train_inline(b_data, seed=2)
    with pytest.raises(DataError, match="All 8 validation images .* are in run .* training split"):
        inspection.compare(a, third)


def test_no_page_spells_a_run_file_name():
    pages = Path(__file__).resolve().parent.parent / "pages"
    for page in pages.rglob("*.py"):
        text = page.read_text()
        for name in (".keras", "split.json", "worker.log", "ckpt-"):
            assert name not in text, f"{page.name} spells {name}: ask core.runs.artifacts"


def test_manifest_write_once_never_replaces_a_record(tmp_path):
    path = tmp_path / "split.json"
    assert manifest.write_once(path, {"splits": {"train": [["a", 0]]}})
    assert not manifest.write_once(path, {"splits": {"train": [["b", 1]]}})
    assert json.loads(path.read_text())["splits"]["train"] == [["a", 0]]
    assert [p.name for p in tmp_path.iterdir()] == ["split.json"]  # no temporary file left


def test_counting_new_files_follows_folder_links_once_and_survives_link_loops(tmp_path):
    root = make_folder(tmp_path / "looped", {"": 2})
    (root / "cats" / "loop").symlink_to(root / "cats")
    (root / "cats" / "up").symlink_to(root)
    record = {"root": str(root), "splits": {"train": [[str(root / "cats" / "cats.0.png"), 0]]}}
    assert manifest.check(record).new == 3  # cats.1, dogs.0, dogs.1: each once
