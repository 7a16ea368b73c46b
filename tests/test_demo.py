"""Tests of the built-in demo dataset generator (core/demo.py): layout, determinism, atomicity, fairness."""
import hashlib
import json
import time

import numpy as np
import pytest
from PIL import Image

from core.data import demo
from core.data.demo import DEMO_COUNTS, draw_example, make_demo_dataset

SMALL = {"train": 4, "validation": 3, "test": 2}


def _images(root):
    return sorted(p for p in root.rglob("*.jpg"))


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in _images(root)}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("a") / "demo", counts=SMALL, size=48, seed=3)


def test_default_counts():
    assert DEMO_COUNTS == {"train": 500, "validation": 250, "test": 250}


def test_layout_and_counts(small):
    for split, n in SMALL.items():
        for folder, stem in (("cats", "cat"), ("dogs", "dog")):
            names = sorted(p.name for p in (small / split / folder).iterdir())
            assert names == sorted(f"{stem}.{i}.jpg" for i in range(n))
    assert sorted(p.name for p in small.iterdir()) == sorted([*SMALL, ".demo-complete"])
    assert json.loads((small / ".demo-complete").read_text())["counts"] == SMALL
    assert not [p for p in small.parent.iterdir() if p.name != "demo"]   # no temp folder left behind


def test_images_are_rgb_jpegs_with_the_requested_longer_side(small):
    shapes = set()
    for path in _images(small):
        with Image.open(path) as img:
            assert img.format == "JPEG" and img.mode == "RGB"
            assert max(img.size) == 48
            assert 0.74 <= img.width / img.height <= 1.35
            shapes.add(img.size)
    assert len(shapes) > 1   # sizes vary like real photos


def test_deterministic_and_seed_dependent(small, tmp_path):
    again = make_demo_dataset(tmp_path / "b", counts=SMALL, size=48, seed=3)
    assert _digests(again) == _digests(small)
    other = make_demo_dataset(tmp_path / "c", counts=SMALL, size=48, seed=4)
    same = set(_digests(other).values()) & set(_digests(small).values())
    assert not same


def test_draw_example_is_a_pure_function_of_the_generator():
    a = draw_example("dogs", np.random.default_rng(11), 64)
    b = draw_example("dogs", np.random.default_rng(11), 64)
    assert a.mode == "RGB" and max(a.size) == 64
    assert np.array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError):
        draw_example("cows", np.random.default_rng(0))


def test_splits_share_no_images(small):
    digests = _digests(small)
    by_split = {s: {d for k, d in digests.items() if k.startswith(s + "/")} for s in SMALL}
    assert sum(len(v) for v in by_split.values()) == len(digests) == 2 * sum(SMALL.values())
    assert not by_split["train"] & by_split["validation"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["validation"] & by_split["test"]


def test_second_call_keeps_the_files(small):
    before = {p: p.stat().st_mtime_ns for p in _images(small)}
    marker = (small / ".demo-complete").stat().st_mtime_ns
    assert make_demo_dataset(str(small), counts=SMALL, size=48, seed=3) == small
    assert {p: p.stat().st_mtime_ns for p in _images(small)} == before
    assert (small / ".demo-complete").stat().st_mtime_ns == marker


def test_different_parameters_regenerate(tmp_path):
    root = make_demo_dataset(tmp_path / "d", counts={"train": 2}, size=48, seed=0)
    root = make_demo_dataset(root, counts={"train": 3, "test": 1}, size=40, seed=0)
    assert len(_images(root)) == 8
    assert all(max(Image.open(p).size) == 40 for p in _images(root))
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_partial_folder_without_marker_is_regenerated(tmp_path):
    root = tmp_path / "demo"
    (root / "train" / "cats").mkdir(parents=True)
    (root / "train" / "cats" / "cat.0.jpg").write_bytes(b"truncated")
    make_demo_dataset(root, counts=SMALL, size=48, seed=3)
    assert len(_images(root)) == 2 * sum(SMALL.values())
    Image.open(root / "train" / "cats" / "cat.0.jpg").load()
    assert (root / ".demo-complete").exists()


def test_interrupted_generation_leaves_nothing_at_root(tmp_path, monkeypatch):
    calls = []

    def failing(label, rng, size=160):
        calls.append(label)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return Image.new("RGB", (size, size))

    monkeypatch.setattr(demo, "draw_example", failing)
    with pytest.raises(KeyboardInterrupt):
        make_demo_dataset(tmp_path / "demo", counts=SMALL, size=48)
    assert list(tmp_path.iterdir()) == []   # neither a half dataset nor a temp folder


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        make_demo_dataset(tmp_path, counts=SMALL, size=48)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_demo_dataset_path(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(demo, "make_demo_dataset", lambda root, **kwargs: seen.append(root) or root)
    assert demo.demo_dataset_path(str(tmp_path)) == tmp_path / "datasets" / "demo"
    assert seen == [tmp_path / "datasets" / "demo"]


def test_colour_does_not_separate_the_classes():
    """Mean RGB over 40 images per class agrees to a few levels of 255: the task is about shape.

    Both classes are drawn from the same 40 seeds; draw_example gives the head its own random stream,
    so scene, colours and pose match and only what the class changes can move the means.
    """
    means = {label: np.mean([np.asarray(draw_example(label, np.random.default_rng([5, k]), 48), float)
                             .mean((0, 1)) for k in range(40)], axis=0) for label in ("cats", "dogs")}
    assert np.abs(means["cats"] - means["dogs"]).max() < 6


def test_both_classes_paint_with_the_same_colours():
    """For one head seed, a cat and a dog use exactly the same set of colours: only the shapes differ."""
    for k in range(10):
        colours = {}
        for label in ("cats", "dogs"):
            layer = np.asarray(demo._head(label, np.random.default_rng([7, k]), 120)).reshape(-1, 4)
            colours[label] = {tuple(c) for c in np.unique(layer[layer[:, 3] == 255, :3], axis=0)}
        assert colours["cats"] == colours["dogs"]
        assert len(colours["cats"]) >= 5


def test_two_concurrent_generators_make_one_dataset_and_neither_fails(tmp_path, monkeypatch):
    """Home, Augmentation and a run asking for the demo data at once (issue 10, defect 5): drawn once, complete."""
    import threading
    drawn, draw = [], demo.draw_example

    def slow_draw(label, rng, size=160):
        drawn.append(label)
        time.sleep(0.02)  # keeps the first generator busy while the second one arrives
        return draw(label, rng, size)

    monkeypatch.setattr(demo, "draw_example", slow_draw)
    root, start, results = tmp_path / "datasets" / "demo", threading.Barrier(2), []

    def generate():
        start.wait()
        try:
            results.append(make_demo_dataset(root, counts=SMALL, size=32))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            results.append(exc)

    threads = [threading.Thread(target=generate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [root, root]
    assert len(drawn) == 2 * sum(SMALL.values())  # generated once, not twice
    assert len(_images(root)) == 2 * sum(SMALL.values()) and demo.is_ready(root, counts=SMALL, size=32)
    assert sorted(p.name for p in root.parent.iterdir()) == ["demo"]  # no temp folder, lock or progress file


def test_generation_reports_its_progress_and_a_waiter_sees_it(tmp_path):
    root, seen = tmp_path / "demo", []
    make_demo_dataset(root, counts=SMALL, size=32, progress=lambda fraction, text: seen.append((fraction, text)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 2
    assert "Generating the demo data" in seen[0][1]
    seen.clear()
    make_demo_dataset(root, counts=SMALL, size=32, progress=lambda *a: seen.append(a))
    assert seen == []  # ready: nothing to show
