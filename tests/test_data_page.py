"""The Data page: a check of the dataset in use, its duplicates with their splits, and an exclusion list that the
Train page passes to the next run (AppTest, label check off so no TensorFlow)."""
import shutil

from core import settings
from core.data import exclusions, manifest
from core.runs import store
from tests.test_pages import run_page, small_home  # noqa: F401 (fixture)


def test_data_page_finds_a_leaked_copy_and_its_exclusion_reaches_the_next_run(small_home, monkeypatch):  # noqa: F811
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)
    data = settings.load()["data"]
    copy = f"{data}/validation/cats/copy.png"
    shutil.copyfile(f"{data}/train/cats/cats.0.png", copy)
    at = run_page("pages/7_Data.py")
    assert "No check of this dataset yet" in at.info[0].value
    at.toggle(key="data_labels").set_value(False)
    at.button(key="data_check").click().run()
    assert not at.exception, [e.value for e in at.exception]
    texts = " ".join(m.value for m in at.markdown)
    assert "LEAKAGE" in texts
    leak_boxes = [c for c in at.checkbox if c.key.startswith("dup_0_")]
    assert leak_boxes
    leak_boxes[-1].check().run()
    at.button(key="data_save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    saved = exclusions.load(data)
    assert len(saved) == 1
    at = run_page("pages/3_Train.py")
    at.number_input(key="train_scratch_image_size").set_value(48)
    at.button[0].click().run()
    run = store.list_runs()[-1]
    assert run["spec"]["exclude"] == sorted(saved)
    assert sorted(saved)[0] in {manifest.file_digest(copy), manifest.file_digest(f"{data}/train/cats/cats.0.png")}


def test_the_dataset_path_shows_as_typed_in_its_code_span(small_home):  # noqa: F811
    """A code span shows Markdown escapes literally: a folder named cats_vs_dogs must not read cats\\_vs\\_dogs."""
    data = settings.load()["data"]
    at = run_page("pages/7_Data.py")
    line = next(m.value for m in at.markdown if m.value.startswith("Dataset:"))
    assert f"(`{data}`)" in line  # the bold label before it is escaped: that Markdown renders


def test_missing_label_check_weights_point_at_the_data_pages_own_field(small_home):  # noqa: F811
    """A weights file that is not there: the error names it and says where on this page to fix it."""
    at = run_page("pages/7_Data.py")
    at.text_input(key="data_weights").set_value("/nowhere/mobilenet_v2.weights.h5")
    at.button(key="data_check").click().run()
    assert not at.exception, [e.value for e in at.exception]
    said = " ".join(e.value for e in at.error)
    assert "Not checked" in said and "/nowhere/mobilenet" in said and "MobileNetV2 weights field above" in said
