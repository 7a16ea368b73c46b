"""Excluding images from a run (recorded in its split.json, files untouched) and balanced class weights."""
from __future__ import annotations

import json

import pytest

from core.config import RunSpec
from core.data import manifest
from core.runs import artifacts, store
from core.runs.worker import run_worker
from tests.conftest import make_folder


def test_a_run_leaves_out_excluded_images_records_them_and_keeps_the_files(home, tmp_path):
    data = make_folder(tmp_path / "d", {"train": 8, "validation": 4})
    victims = [data / "train" / "cats" / "cats.0.png", data / "validation" / "dogs" / "dogs.1.png"]
    hashes = [manifest.file_digest(p) for p in victims]
    spec = RunSpec.from_recipe("scratch", data=str(data), image_size=48, epochs=1, batch_size=8,
                               exclude=hashes, class_weight="balanced")
    run_id = store.create_run(spec.to_dict(), spec.display_name(), spec.recipe, None, spec.total_epochs)
    assert run_worker(run_id) == "finished", store.get_run(run_id)["error"]
    record = json.loads(artifacts.split_manifest(run_id).read_text())
    recorded = {row[3] for rows in record["splits"].values() for row in rows}
    assert not recorded & set(hashes)
    assert sorted(row[3] for row in record["excluded"]) == sorted(hashes)
    assert len(record["splits"]["train"]) == 15 and all(p.exists() for p in victims)
    logs = " ".join(line["message"] for line in store.log_lines(run_id))
    assert "2 images left out" in logs
    assert "class weights: cats 1.071, dogs 0.938" in logs   # 7 cats, 8 dogs left in train


def test_exclude_must_be_content_hashes_and_class_weight_a_known_choice():
    with pytest.raises(ValueError, match="exclude must be a list of content hashes"):
        RunSpec.from_recipe("scratch", exclude=["cats/cat.1.jpg"])
    with pytest.raises(ValueError, match="class_weight must be one of none, balanced"):
        RunSpec.from_recipe("scratch", class_weight="inverse")
    assert RunSpec.from_dict(RunSpec.from_recipe("scratch").to_dict()).exclude == []


def test_train_exclude_takes_files_folders_and_lists_and_the_split_records_them(home, tmp_path):
    from core.cli import parser
    from core.cli.common import spec_from_args
    from core.data.folders import scan
    data = make_folder(tmp_path / "d", {"train": 4, "validation": 2})
    one = data / "train" / "cats" / "cats.0.png"
    folder = data / "validation" / "dogs"
    listing = tmp_path / "bad.txt"
    listing.write_text("# mislabelled\n\nd/train/dogs/dogs.3.png\n")
    before = sorted(p.name for p in data.rglob("*.png"))
    args = parser().parse_args(["train", "--recipe", "scratch", "--data", str(data),
                                "--exclude", str(one), str(folder), str(listing)])
    spec = spec_from_args(args)
    chosen = [one, *folder.iterdir(), data / "train" / "dogs" / "dogs.3.png"]
    assert spec.exclude == sorted(manifest.file_digest(p) for p in chosen)
    record = manifest.build(scan(str(data)), exclude=spec.exclude)  # what the worker writes to split.json
    assert sorted(row[0] for row in record["excluded"]) == sorted(manifest.absolute(p) for p in chosen)
    assert sum(map(len, record["splits"].values())) == 12 - 4
    assert sorted(p.name for p in data.rglob("*.png")) == before  # nothing deleted


def test_train_exclude_of_a_missing_path_says_which_and_what_to_give(home, tmp_path):
    from core.cli import parser
    from core.cli.common import spec_from_args
    data = make_folder(tmp_path / "d", {"train": 2, "validation": 1})
    with pytest.raises(ValueError, match=r"Cannot exclude .*nope\.png: no such file or folder; give an image"):
        spec_from_args(parser().parse_args(["train", "--recipe", "scratch", "--data", str(data),
                                            "--exclude", str(tmp_path / "nope.png")]))
