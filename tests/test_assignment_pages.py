"""The assignment link fills the Train page, and the Leaderboard page (issue 11): AppTest by widget key."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core import settings
from core.runs import assignments, store
from tests.conftest import ROOT, make_folder


@pytest.fixture
def class_home(home, tmp_path, monkeypatch):
    """A lab home whose teacher is ann, with a tiny data folder the pages may read and one assignment on it."""
    monkeypatch.setenv("TUNELAB_DATA_ROOTS", str(tmp_path))
    monkeypatch.setenv("TUNELAB_TEACHERS", "ann")
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)  # store runs, start no worker
    data = make_folder(tmp_path / "data", {"train": 4, "validation": 2, "test": 2})
    settings.update(data=str(data))  # the dataset in use: the pages do not generate the demo data
    task = assignments.create("Week 1", "scratch_aug", {"data": str(data), "epochs": 3, "image_size": 48,
                                                         "augment": "lecture"}, user="ann")
    return task


def page(path: str, user: str, query: dict | None = None) -> AppTest:
    """`path` opened through app.py's navigation as `user`, with the address's query parameters `query`."""
    import os
    os.environ["TUNELAB_USER"] = user
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page(path)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(autouse=True)
def _restore_user(monkeypatch):
    monkeypatch.delenv("TUNELAB_USER", raising=False)


def test_the_assignment_link_fills_the_train_page_and_the_run_records_the_assignment(class_home):
    at = page("pages/3_Train.py", "bob", {"assignment": class_home["id"]})
    recipe = at.selectbox(key="train_recipe")
    assert recipe.value == "scratch_aug" and recipe.disabled
    epochs, size = at.number_input(key="train_scratch_aug_epochs"), at.number_input(key="train_scratch_aug_image_size")
    assert (epochs.value, epochs.disabled, size.value, size.disabled) == (3, True, 48, True)
    assert epochs.label.startswith("🔒") and "Fixed by the assignment." in epochs.help
    augment = at.selectbox(key="train_scratch_aug_augment")
    assert augment.value == "lecture" and augment.disabled
    assert not at.select_slider(key="train_scratch_aug_lr").disabled  # the student's own choice
    assert any("Assignment: Week 1" in i.value for i in at.info)
    at.select_slider(key="train_scratch_aug_lr").set_value(2e-4)
    at.button[0].click().run()  # the form's submit button
    assert not at.exception and not at.error, [e.value for e in at.error]
    [run] = store.list_runs()
    assert run["assignment"] == class_home["id"] and run["owner"] == "bob"
    assert (run["spec"]["epochs"], run["spec"]["image_size"], run["spec"]["lr"]) == (3, 48, 2e-4)
    assert set(assignments.heldout_hashes(class_home)) <= set(run["spec"]["exclude"])


def test_without_the_link_the_train_page_is_unlocked_and_a_bad_link_says_so(class_home):
    at = page("pages/3_Train.py", "bob", {"assignment": "nope"})
    assert any("No assignment matches 'nope'" in e.value.replace("\\", "") for e in at.error)
    assert not at.selectbox(key="train_recipe").disabled
    assert not at.number_input(key="train_scratch_epochs").disabled


def test_the_leaderboard_shows_the_best_run_per_student_and_only_a_teacher_gets_the_form(class_home):
    for owner, accuracy in (("bob", 0.5), ("bob", 0.75), ("cy", 1.0)):
        run_id = store.create_run({"recipe": "scratch"}, f"{owner} run", "scratch_aug", None, 3, owner=owner,
                                  assignment=class_home["id"])
        store.set_status(run_id, "finished")
        assignments.record_score(run_id, class_home["id"], {"accuracy": accuracy, "loss": 0.5, "n": 4})
    student = page("pages/8_Leaderboard.py", "bob")
    table = next(m.value for m in student.markdown if "<table class='board'>" in m.value)
    assert table.index("cy") < table.index("bob") and "0.750" in table and "0.500" not in table
    assert not [f for f in student.text_input if f.key == "assign_name"]
    assert f"Train?assignment={class_home['id']}" in [c.value for c in student.code]
    teacher = page("pages/8_Leaderboard.py", "ann")
    teacher.text_input(key="assign_name").set_value("Week 2")
    teacher.number_input(key="assign_epochs").set_value(2)
    teacher.number_input(key="assign_image_size").set_value(48)
    teacher.button(key="FormSubmitter:assign_form-Save the assignment").click().run()
    assert not teacher.exception and not teacher.error, [e.value for e in teacher.error]
    made = assignments.get("Week 2")
    assert made["spec"]["epochs"] == 2 and teacher.selectbox(key="board_assignment").value == made["id"]
    assert f"Train?assignment={made['id']}" in [c.value for c in teacher.code]
