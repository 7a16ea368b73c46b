"""Reproducible runs: --deterministic, the run card, and "rerun this" (issue 14)."""
import pytest

from core.config import RunSpec
from core.runs import runcard, store
from core.runs.specs import rerun_spec
from core.runs.worker import run_worker


@pytest.fixture
def op_determinism_reset():
    """TensorFlow's op determinism is process-wide: switch it off again after the test."""
    yield
    from tensorflow.python.framework import config
    config.disable_op_determinism()


def _train(spec: RunSpec) -> str:
    run_id = store.create_run(spec.to_dict(), spec.display_name(), spec.recipe, spec.backbone, spec.total_epochs)
    assert run_worker(run_id) == "finished", store.get_run(run_id)["error"]
    return run_id


def test_two_deterministic_runs_of_the_same_spec_give_identical_epoch_metrics(home, tiny_data, op_determinism_reset):
    spec = RunSpec.from_recipe("scratch_aug", data=str(tiny_data), image_size=48, epochs=3, batch_size=8, seed=3,
                               deterministic=True)
    first = _train(spec)
    second = _train(rerun_spec(store.get_run(first)["spec"]))
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    metrics = [[tuple(row[k] for k in keys) for row in store.epochs(run)] for run in (first, second)]
    assert len(metrics[0]) == 3 and metrics[0] == metrics[1]
    cards = [runcard.read(run) for run in (first, second)]
    assert cards[0]["deterministic"] and cards[0]["seed"] == 3
    assert cards[0]["data_manifest_sha256"] == cards[1]["data_manifest_sha256"] is not None
    assert cards[0]["versions"]["keras"] and cards[0]["precision"] == store.get_run(first)["precision_used"]


def test_the_deterministic_flag_reaches_the_spec_and_its_absence_keeps_the_default():
    from core.cli import parser
    from core.cli.common import spec_from_args
    on = spec_from_args(parser().parse_args(["train", "--recipe", "scratch", "--deterministic"]))
    off = spec_from_args(parser().parse_args(["train", "--recipe", "scratch"]))
    assert on.deterministic is True and off.deterministic is False


def test_a_deterministic_value_that_is_not_true_or_false_is_refused_in_one_sentence():
    with pytest.raises(ValueError, match="deterministic must be true or false"):
        RunSpec.from_recipe("scratch", deterministic="yes")


def test_rerun_keeps_every_setting_and_marks_the_name():
    spec = RunSpec.from_recipe("scratch", epochs=4, lr=2e-4, seed=9, name="mine", deterministic=True)
    again = rerun_spec(spec.to_dict())
    assert again.name == "mine (rerun)"
    assert {**again.to_dict(), "name": "mine"} == spec.to_dict()
