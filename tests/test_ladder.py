"""The lecture's ladder: which run fills which step, the book's figures, the weights warnings, the page."""
import pytest
from streamlit.testing.v1 import AppTest

from core.analysis import charts, ladder
from core.runs import store
from core.config import RunSpec
from tests.conftest import ROOT

RANDOM = "random initialisation (no pretrained weights)"
IMAGENET = "ImageNet (Keras standard weights)"


def run(rid, recipe, created, status="finished", tags=(), best=0.5, weights=None, size=150, train=2000,
        backbone="vgg16"):
    uses = recipe.startswith(("feature", "fine"))
    return {"id": rid, "name": f"run {rid}", "recipe": recipe, "status": status, "created": created,
            "tags": list(tags), "best_val_acc": best, "spec": {"image_size": size},
            "weights_used": weights or ("random initialisation (trained from scratch)" if not uses else IMAGENET),
            "backbone": backbone if uses else None, "info": {"counts": {"train": {"cats": train // 2,
                                                                                 "dogs": train // 2}}}}


def test_book_figures_and_step_order():
    steps = ladder.ladder([])
    assert [s["recipe"] for s in steps] == ["scratch", "scratch_aug", "feature_extraction",
                                            "feature_extraction_aug", "fine_tune"]
    assert [s["book"] for s in steps] == [0.72, 0.82, 0.90, 0.96, 0.97]
    assert all(s["run_id"] is None and s["warning"] is None for s in steps)
    assert ladder.BOOK_LABEL == "book (ImageNet VGG16)"
    assert ladder.warnings(steps) == []


def test_newest_finished_run_fills_a_step_and_ladder_tags_win():
    runs = [run("a", "scratch", 1), run("b", "scratch", 2, best=0.6), run("c", "scratch", 3, status="failed"),
            run("d", "scratch_aug", 1, tags=["ladder"], best=0.7), run("e", "scratch_aug", 5, best=0.9),
            run("f", "scratch_aug", 6, status="running", tags=["ladder"]),
            run("g", "feature_extraction", 1, status="queued", tags=["ladder"])]
    steps = {s["recipe"]: s for s in ladder.ladder(runs)}
    assert steps["scratch"]["run_id"] == "b" and steps["scratch"]["val_acc"] == 0.6  # failed c is ignored
    assert steps["scratch"]["pending"] is None
    assert steps["scratch_aug"]["run_id"] == "d"  # tagged "ladder" beats the newer untagged e
    assert steps["scratch_aug"]["pending"] == {"id": "f", "status": "running"}
    assert steps["feature_extraction"]["run_id"] is None
    assert steps["feature_extraction"]["pending"] == {"id": "g", "status": "queued"}
    assert steps["scratch"]["imagenet"] is None and steps["scratch"]["weights_short"] == "from scratch"


def test_non_imagenet_weights_are_flagged_and_never_look_like_the_book():
    runs = [run("fe", "feature_extraction", 1, weights=RANDOM, size=64, train=24),
            run("ft", "fine_tune", 1, weights=IMAGENET, backbone="mobilenet_v2"),
            run("fa", "feature_extraction_aug", 1, weights="local file vgg16_notop.h5")]
    steps = {s["recipe"]: s for s in ladder.ladder(runs)}
    assert steps["feature_extraction"]["imagenet"] is False and steps["feature_extraction"]["weights_short"] == \
        "random init"
    assert "not Keras's ImageNet weights" in steps["feature_extraction"]["warning"]
    assert steps["feature_extraction_aug"]["imagenet"] is False
    assert steps["feature_extraction_aug"]["weights_short"] == "file vgg16_notop.h5"
    assert steps["fine_tune"]["imagenet"] is True and steps["fine_tune"]["warning"] is None
    text = " ".join(ladder.warnings(list(steps.values())))
    assert "64 px" in text and "24 training images" in text and "mobilenet_v2" in text
    fig = charts.ladder_figure(list(steps.values()), ladder.BOOK_LABEL, {"ft": 0.95})
    book, val, test, legend = fig.data
    assert legend.name.startswith("hatched: weights not ImageNet")
    assert book.name == "book (ImageNet VGG16)" and list(book.y) == [0.72, 0.82, 0.90, 0.96, 0.97]
    assert val.name.startswith("this lab") and test.name == "this lab: test"
    assert "random init" in val.text[2] and "ImageNet" in val.text[4] and val.text[0] == ""
    assert val.marker.pattern.shape[2] == "/" and val.marker.pattern.shape[4] == ""
    assert list(test.y)[4] == 0.95


def test_ladder_specs_and_queue(home, monkeypatch):
    specs = ladder.ladder_specs(epochs=2, image_size=48, weights="none")
    assert [s.recipe for s in specs] == [r for r, _ in ladder.STEPS]
    assert all(s.epochs == 2 and s.image_size == 48 for s in specs)
    assert specs[-1].fine_tune_epochs == 2 and specs[2].weights == "none" and specs[2].backbone == "vgg16"
    assert specs[0].name == "ladder 1 · from scratch"
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)
    ids = ladder.queue(specs[:2])
    assert [store.get_run(i)["tags"] for i in ids] == [["ladder"], ["ladder"]]
    steps = ladder.ladder(store.list_runs())
    assert steps[0]["pending"]["id"] == ids[0] and steps[0]["run_id"] is None
    with pytest.raises(ValueError, match="image_size"):
        ladder.ladder_specs(image_size=40)  # too small for the from-scratch CNN


def test_the_ladder_builds_its_runs_like_every_run_path_rules_included(home, tmp_path, monkeypatch):
    from tests.conftest import make_folder
    data = make_folder(tmp_path / "outside" / "data", {"train": 3, "validation": 2})
    monkeypatch.setenv("TUNELAB_DATA_ROOTS", str(tmp_path / "allowed"))
    with pytest.raises(ValueError, match="TUNELAB_DATA_ROOTS"):
        ladder.ladder_specs(epochs=1, image_size=48, data=str(data), weights="none", recipes=["scratch"],
                            confine=True)
    specs = ladder.ladder_specs(epochs=1, image_size=48, data=str(data), weights="none", recipes=["scratch"])
    assert [s.recipe for s in specs] == ["scratch"] and specs[0].data == str(data.resolve())


def test_ladder_page_shows_the_runs_warns_and_queues(lab_home, trained_lab, monkeypatch):
    fake = store.create_run(RunSpec.from_recipe("feature_extraction", weights="none", image_size=48).to_dict(),
                            "random fe", "feature_extraction", "vgg16", 30)
    store.update_run(fake, weights_used=RANDOM)
    store.record_epoch(fake, 1, "head", {"val_accuracy": 0.61, "val_loss": 0.7})
    store.set_status(fake, "finished")
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)
    monkeypatch.setenv("TUNELAB_DATA_ROOTS", str(trained_lab["data"].parent))  # the ladder obeys the path rules
    at = AppTest.from_file(str(ROOT / "pages/6_Ladder.py"), default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    fig = at.get("plotly_chart")[0].proto.spec
    assert "book (ImageNet VGG16)" in fig and "this lab: test" in fig and "random init" in fig
    assert any("not Keras's ImageNet weights" in w.value for w in at.warning)
    assert any("No test accuracy for random fe" in c.value for c in at.caption)  # it has no saved model
    at.number_input(key="ladder_epochs").set_value(1)
    at.number_input(key="ladder_size").set_value(48)
    at.selectbox(key="ladder_weights").set_value("none")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, [e.value for e in at.exception]
    queued = [r for r in store.list_runs() if r["status"] == "queued"]
    assert len(queued) == 5 and all(r["tags"] == ["ladder"] for r in queued)
    assert all(r["spec"]["epochs"] == 1 and r["spec"]["image_size"] == 48 for r in queued)
    assert any(i.value.startswith("In progress") for i in at.info)
