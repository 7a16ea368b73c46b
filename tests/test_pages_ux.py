"""AppTest checks of what a new user meets (issue 10): weights refused on the Model page, the Home path box, the
Augmentation page's first load, Markdown in run names, rename, Stop feedback, the Ladder's weights warning."""
import re

import pytest
from streamlit.testing.v1 import AppTest

from core import settings
from core.runs import store
from tests.conftest import ROOT, make_folder


@pytest.fixture
def small_home(home, tmp_path, monkeypatch):
    """A lab home whose dataset is a tiny folder, so pages do not generate the demo data."""
    monkeypatch.setenv("TUNELAB_DATA_ROOTS", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("core.models.weights.online", lambda: False)
    monkeypatch.setattr("core.models.environment.online", lambda timeout=1.5: False)
    data = make_folder(tmp_path / "data", {"train": 4, "validation": 2})
    settings.update(data=str(data))
    return home


def run_page(path: str, timeout: float = 120) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=timeout)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(markdown: str) -> str:
    """Markdown source as the reader sees it (backslash escapes and zero-width spaces removed)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u200b", "")


def errors(at: AppTest) -> str:
    return " | ".join(shown(e.value) for e in at.error)


def test_a_missing_weights_file_is_never_saved_as_imagenet(small_home, tmp_path):
    settings.update(model={"backbone": "vgg16", "weights": "none"})
    at = run_page("pages/2_Model.py")
    at.radio(key="model_weights").set_value("file").run()
    missing = tmp_path / "nowhere" / "x.h5"
    at.text_input(key="model_weights_path").input(str(missing)).run()
    assert "does not exist" in errors(at)
    at.button(key="model_use").click().run()
    assert not at.success, [s.value for s in at.success]
    assert "Not saved" in errors(at)
    assert settings.load()["model"]["weights"] == "none"  # unchanged: neither the missing file nor ImageNet


def test_imagenet_weights_an_offline_machine_cannot_get_are_refused_with_the_reason(small_home):
    settings.update(model={"backbone": "vgg16", "weights": "none"})
    at = run_page("pages/2_Model.py")
    at.radio(key="model_weights").set_value("imagenet").run()
    assert "choose a local weights file on the Model page" in errors(at)
    at.button(key="model_use").click().run()
    assert "Not saved: ImageNet weights for VGG16 are not on this machine" in errors(at)
    assert settings.load()["model"]["weights"] == "none"


def test_a_first_visit_shows_progress_while_the_demo_data_is_generated(home, monkeypatch):
    """Issue 10, defect 6: the Home page says what it is doing instead of showing nothing for 25 s."""
    from streamlit.delta_generator import DeltaGenerator
    shown_progress, progress = [], DeltaGenerator.progress

    def recording(self, value, text=None):
        shown_progress.append((value, text))
        return progress(self, value, text=text)

    monkeypatch.setattr(DeltaGenerator, "progress", recording)
    monkeypatch.setattr("core.data.demo.DEMO_COUNTS", {"train": 3, "validation": 2, "test": 1})
    at = run_page("app.py")
    assert {m.label: m.value for m in at.metric}["train"] == "6 images"
    assert shown_progress and shown_progress[-1][0] == 1.0
    assert all("demo data" in text for _, text in shown_progress)
    assert not at.get("progress")  # gone once the data is there


def _finished_run(name: str, status: str = "finished", error: str | None = None) -> str:
    from core.config import RunSpec
    run_id = store.create_run(RunSpec.from_recipe("scratch", epochs=1).to_dict(), name, "scratch", None, 1)
    store.record_epoch(run_id, 1, "head", {"loss": 0.7, "accuracy": 0.5, "val_loss": 0.7, "val_accuracy": 0.5})
    store.set_status(run_id, status, error)
    return run_id


HOSTILE = "**big** [click](http://example.com) :red[alarm] <b>x</b> $x$"


def test_run_names_are_shown_literally_in_messages_not_as_markdown(small_home):
    """In a shared class lab a run name must not turn into bold text, links, colours or HTML (issue 10)."""
    failed = _finished_run(HOSTILE, "failed", "no images found")
    at = run_page("pages/4_Compare.py")
    message = next(e.value for e in at.error if "no images found" in e.value and failed in e.value)
    assert "**big**" not in message and "[click](" not in message and ":red[" not in message
    assert shown(message).startswith(f"**{HOSTILE}**")  # the page's own bold, around the literal name
    at.text_input(key=f"compare_name_{failed}").set_value(HOSTILE + " 2").run()
    at.button(key=f"compare_rename_{failed}").click().run()
    flash = at.success[0].value
    assert "**big**" not in flash and shown(flash) == f"Renamed run {failed} to “{HOSTILE} 2”."


def test_renaming_a_run_sends_its_new_name_to_the_run_picker_at_once(small_home):
    run_id = _finished_run("old name")
    at = run_page("pages/4_Compare.py")
    at.text_input(key=f"compare_name_{run_id}").set_value("new name").run()
    at.button(key=f"compare_rename_{run_id}").click().run()
    picker = at.selectbox(key="compare_manage_run")
    assert picker.proto.set_value and picker.proto.raw_value == f"new name · finished · {run_id}"


def _folder_box(at: AppTest, path: str) -> AppTest:
    at.radio(key="data_source").set_value("A folder on this machine").run()
    return at.text_input(key="data_path").input(path).run()


def test_home_folder_box_whitespace_disables_the_button(small_home):
    at = _folder_box(run_page("app.py"), "   ")
    assert at.button(key="use_folder").disabled


def test_home_folder_box_says_a_missing_folder_does_not_exist_wherever_it_is(small_home):
    at = _folder_box(run_page("app.py"), "/no/such/folder")  # outside the allowed folders too
    at.button(key="use_folder").click().run()
    assert "The folder /no/such/folder does not exist" in errors(at) and "outside" not in errors(at)


def test_home_folder_box_points_from_a_parent_folder_to_the_split_dataset_inside(small_home, tmp_path):
    make_folder(tmp_path / "parent" / "cats_vs_dogs_small", {"train": 3, "validation": 2})
    at = _folder_box(run_page("app.py"), f"  {tmp_path / 'parent'} ")
    at.button(key="use_folder").click().run()
    assert f"{tmp_path / 'parent' / 'cats_vs_dogs_small'} holds a split dataset" in errors(at)
    assert "use that folder" in errors(at)


def test_stop_says_stopping_until_the_worker_has_stopped(small_home, monkeypatch):
    """Issue 10: after Stop the page showed "running" and the Stop button for 4-20 s, with no sign it was heard."""
    import os
    import time
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)
    run_id = _finished_run("busy")
    store.update_run(run_id, status="running", pid=os.getpid(), heartbeat=time.time())
    at = run_page("pages/3_Train.py")
    assert "running" in {m.label: m.value for m in at.metric}["Status"]
    at.button(key=f"stop_{run_id}").click().run()
    assert store.get_run(run_id)["stop_requested"] == 1
    at.run()  # the fragment's own rerun, which AppTest does not replay
    assert {m.label: m.value for m in at.metric}["Status"] == "⏹️ stopping…"
    assert not [b for b in at.button if b.key == f"stop_{run_id}"]
    assert "stopping at the end of this batch" in at.get("progress")[0].proto.text


def test_the_ladders_weights_warning_follows_the_current_selection(small_home):
    """Issue 10: the warning described the last submitted choice of the form, not what the user had selected."""
    at = run_page("pages/6_Ladder.py")
    warnings = " | ".join(shown(w.value) for w in at.warning)
    assert "ImageNet weights for VGG16 are not on this machine" in warnings  # offline, nothing cached
    at.selectbox(key="ladder_weights").set_value("none").run()
    warnings = " | ".join(shown(w.value) for w in at.warning)
    assert "Random weights" in warnings and "ImageNet weights for VGG16" not in warnings
    at.selectbox(key="ladder_backbone").set_value("mobilenet_v2").run()
    at.selectbox(key="ladder_weights").set_value("imagenet").run()
    assert "ImageNet weights for MobileNetV2 are not on this machine" in " | ".join(shown(w.value) for w in at.warning)


@pytest.mark.parametrize("page, key, setup", [
    ("pages/1_Augmentation.py", "aug_upload", lambda at: at.radio(key="aug_source").set_value("Upload your own")),
    ("pages/5_Inspect.py", "inspect_upload", lambda at: at.radio(key="inspect_source").set_value("Upload your own")),
])
def test_both_image_uploaders_refuse_bad_files_in_one_sentence_naming_the_file(request, page, key, setup):
    """Issue 10, defects 2 and 10: one upload path for every page; no traceback, no UploadedFile(...) internals."""
    from tests.conftest import huge_png
    request.getfixturevalue("lab_home" if "Inspect" in page else "small_home")
    at = run_page(page)
    setup(at).run()
    for name, data, words in (("huge.png", huge_png(9500), "is too large"),
                              ("notes.png", b"my notes", "is not an image the lab can read")):
        uploader, = at.get("file_uploader")
        assert key in uploader.proto.id
        uploader.set_value((name, data, "image/png")).run()
        assert not at.exception, [e.value for e in at.exception]
        assert f"{name} {words}" in errors(at) and "UploadedFile" not in errors(at)
