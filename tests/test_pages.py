"""AppTest checks of each page's widgets and state changes (Compare has its own file)."""
import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from core import settings
from core.runs import store
from core.data.augment_presets import PRESET_TITLES, PRESETS
from tests.conftest import ROOT, make_folder


@pytest.fixture
def small_home(home, tmp_path, monkeypatch):
    """A lab home whose dataset is a tiny folder, so pages do not generate the demo data."""
    monkeypatch.setenv("TUNELAB_DATA_ROOTS", str(tmp_path))
    data = make_folder(tmp_path / "data", {"train": 4, "validation": 2})
    settings.update(data=str(data))
    return home


def run_page(path: str, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=timeout)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def plain(text: str) -> str:
    """Markdown a page escaped (pages.ui.escape_md) as the reader sees it."""
    return re.sub(r"\\(.)", r"\1", text)


def train_page(timeout: float = 60) -> AppTest:
    """The Train page opened through app.py's navigation (its links to other pages need it)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    at.switch_page("pages/3_Train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_home_shows_the_dataset_and_environment(small_home):
    at = run_page("app.py")
    text = " ".join(m.value for m in at.markdown)
    assert "data" in text
    assert [m.label for m in at.metric][:3] == ["train", "validation", "classes"]
    assert any(m.label == "TensorFlow" for m in at.metric)


def test_home_switches_to_a_folder_and_reports_a_bad_one(small_home, tmp_path):
    at = run_page("app.py")
    at.radio(key="data_source").set_value("A folder on this machine").run()
    at.text_input(key="data_path").input(str(tmp_path / "missing")).run()
    at.button(key="use_folder").click().run()
    assert any("does not exist" in e.value for e in at.error)
    other = make_folder(tmp_path / "other", {"train": 3, "validation": 2}, classes=("ants", "bees"))
    at.text_input(key="data_path").input(str(other)).run()
    at.button(key="use_folder").click().run()
    assert settings.load()["data"] == str(other)


def test_augmentation_grid_follows_the_widgets_and_use_for_training_saves(small_home):
    at = run_page("pages/1_Augmentation.py")
    assert at.slider(key="aug_rotation_range").value == PRESETS["lecture"].rotation_range
    assert len(at.get("image")) == 9  # original + 8 copies
    at.slider(key="aug_n").set_value(3).run()
    assert len(at.get("image")) == 4
    before = [img.proto.imgs[0].caption for img in at.get("image")]
    at.button(key="aug_reroll").click().run()
    assert at.number_input(key="aug_seed").value == 1
    assert [img.proto.imgs[0].caption for img in at.get("image")] != before
    at.slider(key="aug_rotation_range").set_value(90.0).run()
    at.button(key="aug_use").click().run()
    assert settings.training_augment().rotation_range == 90.0


def test_augmentation_presets_and_exports(small_home):
    at = run_page("pages/1_Augmentation.py")
    at.selectbox(key="aug_preset").set_value("none").run()
    assert at.slider(key="aug_rotation_range").value == 0 and at.checkbox(key="aug_horizontal_flip").value is False
    assert "unchanged" in at.get("image")[1].proto.imgs[0].caption
    at.selectbox(key="aug_preset").set_value("second_edition").run()
    assert at.slider(key="aug_rotation_range").value == 36
    code = [c.value for c in at.code]
    assert any("ImageDataGenerator(" in c for c in code) and any("RandomRotation" in c for c in code)
    assert json.loads(code[-1])["rotation_range"] == 36
    at.text_input(key="aug_preset_name").input("wide").run()
    at.button(key="aug_save").click().run()
    assert settings.load()["presets"]["wide"]["rotation_range"] == 36


def test_small_shear_explains_degrees_but_not_for_the_pages_own_default(small_home):
    at = run_page("pages/1_Augmentation.py")
    assert at.slider(key="aug_shear_range").value == 0.2  # the lecture preset, loaded on first visit
    assert not any("barely moves" in i.value for i in at.info)  # issue 10: no note about the page's own default
    at.slider(key="aug_shear_range").set_value(0.5).run()
    assert any("degrees" in i.value and "barely moves" in i.value for i in at.info)


def test_model_page_freeze_point_changes_the_trainable_count(small_home):
    at = run_page("pages/2_Model.py", timeout=120)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Total parameters"] == "14,714,688" and metrics["Trainable"] == "7,079,424"
    at.selectbox(key="model_block_vgg16").set_value("block4").run()
    assert {m.label: m.value for m in at.metric}["Trainable"] == f"{7_079_424 + 1_180_160 + 2 * 2_359_808:,}"
    at.number_input(key="model_lr_block_ratio").set_value(2.0)
    at.number_input(key="model_unfreeze_every").set_value(3).run()
    plan = at.dataframe[0].value  # the unfrozen blocks, top first: the rate and the epoch each starts training
    assert list(plan["block"]) == ["head", "block5", "block4"]
    assert list(plan["learning rate"]) == ["1e-05", "5e-06", "2.5e-06"]
    assert list(plan["trains from fine-tuning epoch"]) == [1, 1, 4]
    at.radio(key="model_weights").set_value("none").run()
    at.button(key="model_use").click().run()
    saved = settings.load()["model"]
    assert saved["freeze_from"] == "block4_conv1" and saved["weights"] == "none" and saved["backbone"] == "vgg16"
    assert (saved["lr_block_ratio"], saved["unfreeze_every"]) == (2.0, 3)


def test_all_frozen_on_the_model_page_is_kept_and_refused_for_fine_tuning(small_home, monkeypatch):
    """Issue 9: "(none: all frozen)" was saved as "the default freeze point", so fine-tuning silently used block5."""
    at = run_page("pages/2_Model.py", timeout=120)
    at.selectbox(key="model_block_vgg16").set_value("(none: all frozen)").run()
    assert {m.label: m.value for m in at.metric}["Trainable"] == "0"
    at.radio(key="model_weights").set_value("none").run()
    at.button(key="model_use").click().run()
    assert settings.load()["model"]["freeze_from"] == "none"
    at = run_page("pages/2_Model.py", timeout=120)  # the choice comes back as it was made
    assert at.selectbox(key="model_block_vgg16").value == "(none: all frozen)"
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)
    at = train_page(timeout=120)
    at.selectbox(key="train_recipe").set_value("fine_tune").run()
    assert any("leaves every layer frozen" in w.value for w in at.warning)
    at.number_input(key="train_fine_tune_image_size").set_value(48)
    at.button(key="FormSubmitter:train_form-Start training").click().run()
    assert any("needs a first trainable layer" in plain(e.value) for e in at.error) and store.list_runs() == []


def test_train_page_starts_a_run_and_refuses_bad_values(small_home, monkeypatch):
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)  # store the run, start no worker
    at = run_page("pages/3_Train.py")
    assert "No runs yet" in at.info[0].value
    at.number_input(key="train_scratch_image_size").set_value(48)
    at.number_input(key="train_scratch_epochs").set_value(2)
    at.button[0].click().run()  # the form's submit button
    assert not at.exception
    runs = store.list_runs()
    assert len(runs) == 1 and runs[0]["spec"]["epochs"] == 2 and runs[0]["spec"]["image_size"] == 48
    assert runs[0]["status"] == "queued"
    assert any(m.label == "Epochs" and m.value == "0/2" for m in at.metric)


@pytest.mark.parametrize("recipe", [pytest.param("scratch_aug", marks=pytest.mark.nightly),  # about 5 s a recipe:
                                    pytest.param("scratch_bn", marks=pytest.mark.nightly),  # two kinds by default,
                                    "feature_extraction",  # one that never augments,
                                    pytest.param("feature_extraction_aug", marks=pytest.mark.nightly),
                                    "fine_tune"])  # one that augments and fine-tunes
def test_choosing_a_recipe_fills_the_form_with_its_defaults(small_home, monkeypatch, recipe):
    from core.config import RECIPES, RunSpec
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)
    at = train_page()
    at.number_input(key="train_scratch_epochs").set_value(7)  # a scratch run with 7 epochs, then another recipe
    at.number_input(key="train_scratch_image_size").set_value(48)
    at.button[0].click().run()
    at.selectbox(key="train_recipe").set_value(recipe).run()
    assert not at.exception
    defaults = RunSpec.from_recipe(recipe)
    assert at.number_input(key=f"train_{recipe}_epochs").value == defaults.epochs
    assert at.select_slider(key=f"train_{recipe}_lr").value == defaults.lr
    augment = at.selectbox(key=f"train_{recipe}_augment")
    assert augment.value == "recipe" and augment.disabled == (not RECIPES[recipe].augments)
    preset = RECIPES[recipe].defaults["augment"]
    assert augment.format_func("recipe") == f"recipe default ({PRESET_TITLES[preset]})"
    assert (preset == "lecture") == (recipe in ("scratch_aug", "scratch_bn", "feature_extraction_aug", "fine_tune"))
    if RECIPES[recipe].fine_tunes:
        assert at.number_input(key="train_fine_tune_fine_tune_epochs").value == defaults.fine_tune_epochs
        assert at.select_slider(key="train_fine_tune_fine_tune_lr").value == defaults.fine_tune_lr
    schedule = [w.key for w in at.number_input if w.key.endswith(("_lr_block_ratio", "_unfreeze_every"))]
    assert schedule == ([f"train_{recipe}_lr_block_ratio", f"train_{recipe}_unfreeze_every"]
                        if RECIPES[recipe].fine_tunes else [])  # only fine-tuning has a phase 2 to schedule
    at.selectbox(key="train_recipe").set_value("scratch").run()  # the value typed for scratch comes back
    assert at.number_input(key="train_scratch_epochs").value == 7


def test_a_recipe_switch_starts_the_run_with_that_recipes_values(small_home, monkeypatch):
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)
    at = run_page("pages/3_Train.py")
    at.selectbox(key="train_recipe").set_value("scratch_aug").run()
    at.number_input(key="train_scratch_aug_image_size").set_value(48)
    at.button[0].click().run()
    spec = store.list_runs()[0]["spec"]
    assert spec["recipe"] == "scratch_aug" and spec["epochs"] == 100 and spec["lr"] == 1e-4
    assert spec["augment"]["rotation_range"] == 40 and spec["dropout"] == 0.5


def test_the_learning_rate_shows_exactly_the_value_the_run_uses(small_home, monkeypatch):
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)
    at = run_page("pages/3_Train.py")
    lr = at.select_slider(key="train_scratch_lr")
    options = [float(o) for o in lr.options]
    assert options == sorted(options) and 1e-4 in options
    assert options[options.index(1e-4) + 1] == 2e-4  # one step up is 2e-4 (a log scale), not 1e-2
    at.number_input(key="train_scratch_image_size").set_value(48)
    lr.set_value(5e-4)
    at.button[0].click().run()
    assert store.list_runs()[0]["spec"]["lr"] == 5e-4


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs must be between 1 and 10000"),
    ("batch_size", 5000, "batch_size must be between 1 and 1024"),
    ("image_size", 20, "image_size must be between 46 and 1024 px"),
])
def test_an_out_of_range_value_says_why_the_run_did_not_start(small_home, monkeypatch, field, value, message):
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)
    at = run_page("pages/3_Train.py")
    at.number_input(key=f"train_scratch_{field}").set_value(value)
    at.button[0].click().run()
    assert any(message in plain(e.value) and e.value.startswith("Not started") for e in at.error), \
        [e.value for e in at.error]
    assert store.list_runs() == []


def test_train_page_shows_a_failed_runs_error(small_home):
    from core.config import RunSpec
    spec = RunSpec.from_recipe("scratch", epochs=1)
    run_id = store.create_run(spec.to_dict(), "broken", "scratch", None, 1)
    store.set_status(run_id, "failed", "The data folder /x does not exist.")
    at = run_page("pages/3_Train.py")
    assert any("/x does not exist" in e.value for e in at.error)
    assert any(b.label == "▶ Resume" for b in at.button)


def test_home_download_offline_says_so_and_keeps_the_dataset(small_home, monkeypatch):
    monkeypatch.setenv("TUNELAB_DATASET_URL", "http://127.0.0.1:9/cats_and_dogs_filtered.zip")
    before = settings.load()["data"]
    at = run_page("app.py")
    at.button(key="use_download").click().run()
    assert any("offline" in e.value for e in at.error)
    assert settings.load()["data"] == before


def test_starting_a_run_switches_the_live_view_to_it(small_home, monkeypatch):
    from core.config import RunSpec
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)
    old = store.create_run(RunSpec.from_recipe("scratch", epochs=1).to_dict(), "old run", "scratch", None, 1)
    store.set_status(old, "finished")
    at = run_page("pages/3_Train.py")
    assert at.selectbox(key="train_watch").value == old
    at.number_input(key="train_scratch_image_size").set_value(48)
    at.button[0].click().run()
    new = next(r["id"] for r in store.list_runs() if r["id"] != old)
    assert at.selectbox(key="train_watch").value == new


def test_paths_outside_the_allowed_folders_are_refused_by_the_pages(small_home, tmp_path, monkeypatch):
    outside = tmp_path.parent / "elsewhere"
    outside.mkdir(exist_ok=True)
    weights = outside / "vgg.weights.h5"
    weights.write_bytes(b"x")
    at = run_page("pages/2_Model.py", timeout=120)
    at.radio(key="model_weights").set_value("file").run()
    at.text_input(key="model_weights_path").input(str(weights)).run()
    assert any("outside the folders the lab may read" in e.value for e in at.error)
    # A dataset saved in the settings before the folder was disallowed: the Train page refuses to start.
    settings.update(data=str(make_folder(outside / "data", {"train": 3, "validation": 2})))
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)
    at = run_page("pages/3_Train.py")
    at.number_input(key="train_scratch_image_size").set_value(48)
    at.button[0].click().run()
    assert any("TUNELAB_DATA_ROOTS" in plain(e.value) for e in at.error) and store.list_runs() == []


@pytest.mark.parametrize("page", ["app.py", "pages/3_Train.py", "pages/4_Compare.py"])
def test_an_unusable_home_folder_is_one_clear_error(tmp_path, monkeypatch, page):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TUNELAB_HOME", str(blocker / "home"))
    at = AppTest.from_file(str(ROOT / page), default_timeout=60)
    at.run()
    assert not at.exception
    assert any(str(blocker) in e.value for e in at.error)


def test_a_finished_range_test_shows_its_suggestion_and_use_this_rate_fills_the_form(small_home, tmp_path):
    """A sweep's result file (as `python -m core lr-find` writes it) on the Train page: the chart, the suggestion,
    and "Use this rate" puts the rate in the form (set in the button's callback, before the form's widget exists
    in that run). The nightly test below runs a real sweep from the page."""
    import numpy as np
    from core.runs.lr_find import smooth, suggest
    lrs = list(np.logspace(-7, 0, 40))
    losses = smooth([0.7 if lr < 1e-4 else 0.7 - 0.25 * (np.log10(lr) + 4) if lr < 1e-2 else 5.0 for lr in lrs], 0.5)
    picks = suggest(lrs, losses)
    out = tmp_path / "lr_find.json"
    out.write_text(json.dumps({"points": [{"lr": a, "loss": b, "smoothed": b} for a, b in zip(lrs, losses)],
                               "suggestions": picks, "rule": "valley", "suggested_lr": float(f"{picks['valley']:.2g}"),
                               "batch_size": 4, "images": 8, "trains": "the whole network"}))
    at = AppTest.from_file(str(ROOT / "pages/3_Train.py"), default_timeout=60)
    at.session_state["lr_find"] = (None, out, "scratch")
    at.run()
    assert any("Suggested learning rate" in m.value for m in at.markdown)
    use = next(b for b in at.button if b.label.startswith("Use this rate"))
    use.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["train_scratch_lr"] == pytest.approx(float(f"{picks['valley']:.2g}"))


@pytest.mark.nightly  # about 30 s (a real sweep in its own process); its twin above reads a finished sweep
def test_the_range_test_runs_from_the_train_page_and_its_rate_fills_the_form(small_home):
    """The lr-find view polls only while its sweep runs (a fragment polling for nothing reruns the page every
    2 s and can swallow a click on the menu); when the sweep ends the page shows the chart and the suggestion,
    and "Use this rate" puts it in the form."""
    import time
    at = run_page("pages/3_Train.py", timeout=120)
    at.button(key="lr_find_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    deadline = time.time() + 180
    while not any("Suggested learning rate" in m.value for m in at.markdown):
        assert time.time() < deadline, [i.value for i in at.info] + [e.value for e in at.error]
        assert not at.error, [e.value for e in at.error]
        time.sleep(1)
        at.run()
    use = next(b for b in at.button if b.label.startswith("Use this rate"))
    suggested = float(use.label.split("(")[1].rstrip(")"))
    use.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["train_scratch_lr"] == pytest.approx(suggested, rel=0.05)
