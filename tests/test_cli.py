"""The command line as users and outside checks call it: `python -m core ...` in a subprocess (`cli`), or, for what
a command prints, `core.cli.main` in this process (`cli_here`: no second TensorFlow start-up)."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SHARED_DATA, cli, cli_here, make_folder, needs_shared


def test_layers_json_is_the_lectures_table(home):
    table = json.loads(cli_here("layers", "--backbone", "vgg16", "--freeze-from", "block5_conv1", "--image-size", 150,
                           "--json", home=home).stdout)
    assert (table["total_params"], table["trainable_params"], table["non_trainable_params"]) == \
        (14_714_688, 7_079_424, 7_635_264)
    pool = next(layer for layer in table["layers"] if layer["name"] == "block5_pool")
    assert pool["output_shape"] == [4, 4, 512] and set(pool) == {"name", "type", "output_shape", "params",
                                                                 "trainable"}


def test_scan_json_reports_counts_and_skipped(home, tiny_data):
    (tiny_data / "train" / "cats" / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    report = json.loads(cli("scan", tiny_data, "--json", home=home).stdout)
    assert report["classes"] == ["cats", "dogs"]
    assert report["counts"]["validation"] == {"cats": 6, "dogs": 6}
    assert [s["path"].endswith("broken.jpg") for s in report["skipped"]] == [True]


@pytest.mark.parametrize("args, words", [
    (["scan", "/nonexistent/folder"], ["/nonexistent/folder", "does not exist"]),
    (["train", "--recipe", "scratch", "--data", "/nonexistent/folder"], ["/nonexistent/folder"]),
    (["train", "--recipe", "scratch", "--epochs", "0"], ["epochs must be between 1"]),
    (["train", "--recipe", "fine_tune", "--freeze-from", "block9_conv9"], ["block9_conv9", "block5_conv1"]),
    (["train", "--recipe", "feature_extraction", "--backbone", "alexnet"], ["alexnet", "vgg16"]),
    (["train", "--recipe", "feature_extraction", "--weights", "/nope/w.h5"], ["/nope/w.h5", "does not exist"]),
    (["layers", "--backbone", "vgg16", "--freeze-from", "nope"], ["nope"]),
    (["stop", "no-such-run"], ["no-such-run"]),
])
def test_bad_input_exits_non_zero_with_one_sentence(home, args, words):
    proc = cli_here(*args, home=home)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    message = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(message) == 1 and all(w in message[0] for w in words), proc.stderr


def test_one_class_and_empty_folders_are_refused(home, tmp_path):
    one = make_folder(tmp_path / "one", {"train": 3, "validation": 2}, classes=("cats",))
    (tmp_path / "empty").mkdir()
    for folder, words in ((one, "Only one class"), (tmp_path / "empty", "No usable images")):
        proc = cli("train", "--recipe", "scratch", "--data", folder, home=home, check=False)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr


def _train_wait_then_list(home, name, *args) -> tuple[dict, dict]:
    """`train --recipe scratch ... --wait` for 2 epochs at 48 px, then `runs --json`, both in real processes:
    (train's JSON summary, the run's row), each checked."""
    proc = cli("train", "--recipe", "scratch", *args, "--epochs", 2, "--image-size", 48, "--name", name, "--wait",
               home=home)
    lines = proc.stdout.strip().splitlines()
    assert [line.split()[1] for line in lines if line.startswith("epoch")] == ["1", "2"]
    result = json.loads(lines[-1])
    assert {"run_id", "status", "epochs_done", "best_val_acc", "final_val_acc", "final_val_loss",
            "seconds"} <= set(result)
    assert result["status"] == "finished" and result["epochs_done"] == 2
    runs = json.loads(cli("runs", "--json", home=home).stdout)
    assert runs[0]["name"] == name and runs[0]["epochs_total"] == 2 and runs[0]["status"] == "finished"
    assert {"id", "name", "recipe", "backbone", "status", "pid", "epochs_done", "epochs_total", "best_val_acc",
            "created", "owner", "started", "finished", "executor"} <= set(runs[0])
    return result, runs[0]


def test_train_wait_then_runs_export_evaluate(home, tiny_data, tmp_path):
    """The default-run twin of the demo-data walk below: tiny data, training and `runs` in real processes."""
    result, _ = _train_wait_then_list(home, "tiny run", "--data", tiny_data, "--batch-size", 8)
    assert cli_here("export", result["run_id"], tmp_path / "model.keras", home=home).returncode == 0
    assert (tmp_path / "model.keras").stat().st_size > 10_000
    scores = json.loads(cli_here("evaluate", result["run_id"], "--data", tiny_data, "--json", home=home).stdout)
    assert scores["split"] == "test" and scores["n"] == 8 and len(scores["confusion_matrix"]) == 2


@pytest.mark.nightly  # about 50 s (the generated demo data); the same walk on tiny data runs by default (above)
def test_train_wait_on_the_demo_data_then_runs_export_evaluate(home, tmp_path):
    result, _ = _train_wait_then_list(home, "demo run")
    cli("export", result["run_id"], tmp_path / "model.keras", home=home)
    assert (tmp_path / "model.keras").stat().st_size > 100_000
    demo = home / "datasets" / "demo"
    scores = json.loads(cli("evaluate", result["run_id"], "--data", demo, "--json", home=home).stdout)
    assert scores["split"] == "test" and scores["n"] == 500 and len(scores["confusion_matrix"]) == 2
    assert 0 <= scores["accuracy"] <= 1 and scores["loss"] > 0


def test_train_prints_the_run_id_last_and_stop_works(home, tiny_data):
    """A real worker stopped by `stop` after its first epoch ends at the next batch and keeps its epochs and models
    (also the default-run twin of tests/test_train.py's stop test)."""
    from core.runs import runner, store
    from tests.conftest import poll_until
    proc = cli("train", "--recipe", "scratch", "--data", tiny_data, "--image-size", 48, "--epochs", 300,
               "--batch-size", 2, home=home)
    run_id = proc.stdout.strip().splitlines()[-1]
    os.environ["TUNELAB_HOME"] = str(home)
    poll_until(lambda: store.get_run(run_id)["epochs_done"] >= 1, timeout=180, poll=0.2)
    assert cli("stop", run_id, home=home).stdout.strip().endswith(("stopping", "stopped"))
    final = runner.wait(run_id, poll=0.3)
    assert final["status"] == "stopped" and 1 <= final["epochs_done"] < 300
    assert (store.run_dir(run_id) / "last.keras").is_file() and (store.run_dir(run_id) / "best.keras").is_file()


def test_prefetch_offline_says_so_and_changes_nothing(home):
    env_url = "http://127.0.0.1:9/cats_and_dogs_filtered.zip"  # port 9 (discard): nothing listens
    env = dict(os.environ, TUNELAB_HOME=str(home), TUNELAB_DATASET_URL=env_url)
    proc = subprocess.run([sys.executable, "-m", "core", "prefetch"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "offline" in proc.stderr and "Nothing was changed" in proc.stderr
    assert not (home / "datasets" / "cats_and_dogs_filtered").exists()


@pytest.mark.nightly  # about 70 s; feature extraction on tiny data runs by default (tests/test_train.py)
@pytest.mark.slow
@needs_shared("weights", "mobilenet_v2_imagenet_notop.weights.h5")
def test_mobilenet_feature_extraction_on_the_real_photos(home):
    weights = SHARED_DATA.parent.parent / "weights" / "mobilenet_v2_imagenet_notop.weights.h5"
    proc = cli("train", "--recipe", "feature_extraction", "--backbone", "mobilenet_v2", "--weights", weights,
               "--data", SHARED_DATA, "--image-size", 160, "--epochs", 10, "--wait", home=home)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["best_val_acc"] >= 0.95, result
    scores = json.loads(cli("evaluate", result["run_id"], "--data", SHARED_DATA, "--json", home=home).stdout)
    assert scores["split"] == "test" and scores["accuracy"] >= 0.94


def test_prefetch_downloads_and_unpacks_from_a_local_server(home, tmp_path):
    """The download path end to end against a loopback HTTP server serving a small archive."""
    import functools
    import http.server
    import threading
    import zipfile
    data = make_folder(tmp_path / "cats_and_dogs_filtered", {"train": 2, "validation": 1})
    (tmp_path / "site").mkdir()
    with zipfile.ZipFile(tmp_path / "site" / "d.zip", "w") as z:
        for path in data.rglob("*.png"):
            z.write(path, path.relative_to(tmp_path))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = dict(os.environ, TUNELAB_HOME=str(home),
                   TUNELAB_DATASET_URL=f"http://127.0.0.1:{server.server_port}/d.zip")
        proc = subprocess.run([sys.executable, "-m", "core", "prefetch"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr
    final = home / "datasets" / "cats_and_dogs_filtered"
    assert len(list((final / "train" / "cats").glob("*.png"))) == 2 and (final / "validation" / "dogs").is_dir()
