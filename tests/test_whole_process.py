"""Whole-process times, lecture against engine (issue 12): the subset both sides read, the page, and a tiny run."""
import json
import os
import subprocess
import sys

import pytest

from core.tools import whole_process


def test_the_subset_links_half_of_each_count_per_class_and_copies_nothing(tiny_data, tmp_path):
    out = whole_process.subset(tiny_data, tmp_path / "sub", 4, 2)
    for split, per_class in (("train", 2), ("validation", 1)):
        for cls in ("cats", "dogs"):
            files = sorted((out / split / cls).iterdir())
            assert len(files) == per_class and all(f.is_symlink() for f in files)
            assert files[0].resolve() == sorted((tiny_data / split / cls).iterdir())[0].resolve()


def test_the_page_names_the_host_the_command_and_every_figure():
    result = {"host": {"cpu": "Some CPU", "kind": "AMX", "isa": ["amx_bf16"], "cores": 2},
              "load_average_before": 0.1, "load_average_after": 0.3, "train": 1000, "validation": 500,
              "epochs": 1, "weights": "w.h5", "image_size": 150,
              **{r: {"lecture": {"seconds": 91.5, "best_val_acc": 0.8}, "engine": {
                  "seconds": 23.25, "best_val_acc": 0.81, "precision": "mixed_bfloat16",
                  "passes": "openvino int8, cosine 0.9998 to float32"}, "speedup": 3.94}
                 for r in whole_process.RECIPES}}
    other = json.loads(json.dumps(result))
    other.update(date="2026-11-28", host={**result["host"], "cpu": "Other CPU", "kind": "AVX2-only"})
    other["feature_extraction"]["speedup"] = 2.07
    text = whole_process.markdown(result, "python -m core.tools.whole_process --markdown x.md", [other])
    for needle in ("Some CPU", "**AMX**", "python -m core.tools.whole_process --markdown x.md", "91.5 s",
                   "23.25 s", "3.94x", "`feature_extraction_aug`", "0.8 / 0.81", "load average 0.1",
                   "openvino int8, cosine 0.9998", "Other CPU, **AVX2-only**, 2 cores (2026-11-28, load 0.1)", "2.07x"):
        assert needle in text, needle
    assert sum(line.startswith("| Other CPU") for line in text.splitlines()) == len(whole_process.RECIPES)


@pytest.mark.nightly  # four Python processes through VGG16 at 150 px: a minute or more
def test_a_tiny_whole_process_comparison_runs_both_sides_of_both_recipes(home):
    if not whole_process.DATA.is_dir():
        pytest.skip(f"{whole_process.DATA} is absent (../shared's real photos)")
    out = subprocess.run([sys.executable, "-m", "core.tools.whole_process", "--train", "4", "--validation", "4",
                          "--json"], cwd=whole_process.ROOT, capture_output=True, text=True, timeout=1800,
                         env=dict(os.environ, TUNELAB_HOME=str(home)))
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    for recipe in whole_process.RECIPES:
        assert result[recipe]["lecture"]["seconds"] > 0 and result[recipe]["engine"]["seconds"] > 0
        assert 0 <= result[recipe]["engine"]["best_val_acc"] <= 1


def test_repeated_runs_keep_each_sides_fastest_and_show_every_time(monkeypatch):
    """--repeat: each side reported by its fastest run (a slowdown only lengthens a run), every time listed."""
    times = iter([100.0, 50.0, 90.0, 60.0, 80.0, 45.0, 85.0, 40.0])  # FE: L E L E, then FE-aug: L E L E
    calls = []

    def side(name):
        def run(recipe, *args):
            calls.append((recipe, name))
            return {"seconds": next(times), "best_val_acc": 0.5, **({"precision": "float32", "passes": "x"}
                                                                    if name == "engine" else {})}
        return run
    monkeypatch.setattr(whole_process, "_lecture", side("lecture"))
    monkeypatch.setattr(whole_process, "_engine", side("engine"))
    monkeypatch.setattr(whole_process, "subset", lambda *a: None)
    result = whole_process.measure(4, 2, repeat=2, log=lambda m: None)
    assert [c[1] for c in calls] == ["lecture", "engine"] * 4  # alternating, recipe after recipe
    fe, aug = result["feature_extraction"], result["feature_extraction_aug"]
    assert (fe["lecture"]["seconds"], fe["engine"]["seconds"], fe["speedup"]) == (90.0, 50.0, 1.8)
    assert (aug["lecture"]["seconds"], aug["engine"]["seconds"], aug["speedup"]) == (80.0, 40.0, 2.0)
    assert fe["lecture"]["all_seconds"] == [100.0, 90.0] and aug["engine"]["all_seconds"] == [45.0, 40.0]
    result["load_average_after"] = 0
    text = whole_process.markdown(result, "cmd")
    assert "the fastest of 2 runs" in text and "90.0 s (fastest of 100.0, 90.0 s)" in text
