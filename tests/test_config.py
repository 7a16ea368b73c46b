"""Run specifications: the lecture's defaults, overrides, validation, JSON round trips."""
import json

import pytest

from core.data.augment_presets import PRESETS
from core.config import RECIPES, RunSpec


def test_recipes_carry_the_lectures_defaults():
    assert set(RECIPES) == {"scratch", "scratch_aug", "scratch_bn", "feature_extraction",
                            "feature_extraction_aug", "fine_tune"}
    scratch = RunSpec.from_recipe("scratch")
    assert (scratch.lr, scratch.batch_size, scratch.image_size, scratch.augment.is_identity()) == (1e-4, 20, 150, True)
    ft = RunSpec.from_recipe("fine_tune")
    assert (ft.lr, ft.fine_tune_lr, ft.backbone, ft.resolved_freeze_from) == (2e-5, 1e-5, "vgg16", "block5_conv1")
    assert ft.total_epochs == ft.epochs + ft.fine_tune_epochs
    assert RunSpec.from_recipe("feature_extraction").resolved_head == "flatten"
    assert RunSpec.from_recipe("feature_extraction", backbone="mobilenet_v2").resolved_head == "gap"
    assert RunSpec.from_recipe("scratch_aug").augment.rotation_range == 40


def test_overrides_and_json_round_trip():
    spec = RunSpec.from_recipe("fine_tune", epochs=2, fine_tune_epochs=3, freeze_from="block4_conv1", lr=None)
    assert (spec.epochs, spec.fine_tune_epochs, spec.lr) == (2, 3, 2e-5)
    again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    with pytest.raises(ValueError, match="bogus"):
        RunSpec.from_dict({**spec.to_dict(), "bogus": 1})


def test_changing_a_run_does_not_change_the_preset():
    spec = RunSpec.from_recipe("scratch_aug")
    spec.augment.rotation_range = 5
    assert PRESETS["lecture"].rotation_range == 40


@pytest.mark.parametrize("overrides, message", [
    (dict(epochs=0), "epochs must be between 1"),
    (dict(lr=-1e-4), "lr must be between 1e-07 and 1"),
    (dict(lr=0.0), "lr must be between"),
    (dict(batch_size=2048), "batch_size must be between 1 and 1024"),
    (dict(image_size=20), "image_size must be between 46 and 1024 px"),
    (dict(batch_size=0), "batch_size"),
    (dict(precision="fp8"), "precision must be one of"),
    (dict(backbone="alexnet"), "backbone must be one of vgg16"),
    (dict(epochs=2.5), "epochs must be a whole number"),
])
def test_out_of_range_values_are_refused_with_the_range(overrides, message):
    with pytest.raises(ValueError, match=message):
        RunSpec.from_recipe("scratch", **overrides)


def test_unknown_recipe():
    with pytest.raises(ValueError, match="choose one of scratch"):
        RunSpec.from_recipe("transformer")
