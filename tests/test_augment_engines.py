"""Training with either augmentation engine: Keras preprocessing layers built from the run's parameters, the
pictures the preview shows, recorded in the run."""
import json

import keras
import numpy as np
import pytest

from core.config import RunSpec
from core.data.augment_config import AugmentConfig
from core.data.augment_presets import get_preset
from core.data.augmenters import LayersAugmenter, augmenter, keras_layers
from core.data.layer_preview import layer_copies
from core.data.pipeline import ImageBatches
from core.runs import store


def _asymmetric(n=1, size=32, seed=0) -> np.ndarray:
    """n images whose left and right halves differ (a bright left-top corner on noise)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, (n, size, size, 3)).astype(np.uint8)
    images[:, : size // 2, : size // 3] = 230
    return images


def test_the_lectures_augmentation_becomes_keras_layers_with_its_parameters():
    layers = {type(layer).__name__: layer.get_config() for layer in keras_layers(get_preset("lecture")).layers}
    assert set(layers) == {"RandomRotation", "RandomTranslation", "RandomShear", "RandomZoom", "RandomFlip"}
    assert layers["RandomRotation"]["factor"] in (40 / 360, (-40 / 360, 40 / 360))  # a fraction of a turn
    assert layers["RandomFlip"]["mode"] == "horizontal"
    assert (layers["RandomTranslation"]["height_factor"], layers["RandomTranslation"]["width_factor"]) == (0.2, 0.2)
    assert all(c["fill_mode"] == "nearest" for name, c in layers.items() if name != "RandomFlip")


def test_training_batches_through_the_layers_are_the_pictures_the_preview_shows():
    cfg = AugmentConfig(rotation_range=30, width_shift_range=0.2, zoom_range=0.2, horizontal_flip=True)
    images = _asymmetric(6)
    batches = ImageBatches(images, np.zeros(6), 3, shuffle=True, augment=cfg, seed=7, engine="keras_layers")
    for epoch in range(2):
        batches.on_epoch_begin()  # as Keras's fit does: an epoch that never began does not end
        x, _ = batches[0]
        first = images[batches.order[0]]
        shown = layer_copies(first, cfg, 7, 2)[epoch]
        assert np.abs(np.clip(np.rint(x[0]), 0, 255) - shown).max() <= 1, epoch  # the same transform
        assert not np.array_equal(shown, first)
        batches.on_epoch_end()


def test_the_same_seed_draws_the_same_batch_and_another_seed_another():
    engine = LayersAugmenter(AugmentConfig(rotation_range=40, zoom_range=0.3))
    images = _asymmetric(4).astype(np.float32)
    a, b, c = engine(images, [5, 0, 0, 0]), engine(images, [5, 0, 0, 0]), engine(images, [6, 0, 0, 0])
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_the_layers_flip_left_right_only_never_upside_down():
    image = _asymmetric(1)[0]
    engine = augmenter(AugmentConfig(horizontal_flip=True), "keras_layers")
    outs = [np.rint(engine(image[None].astype(np.float32), [s])[0]).astype(np.uint8) for s in range(12)]
    kinds = {"same" if np.array_equal(o, image) else "mirror" if np.array_equal(o, image[:, ::-1]) else "other"
             for o in outs}
    assert kinds == {"same", "mirror"}


def test_the_layers_keep_exact_pixels_under_a_bfloat16_run():
    cfg = AugmentConfig(width_shift_range=0.2)
    images = _asymmetric(2).astype(np.float32)
    plain = LayersAugmenter(cfg)(images, [3, 4])
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        engine = LayersAugmenter(cfg)
        assert all(layer.dtype_policy.name == "float32" for layer in engine.model.layers)
        assert np.array_equal(engine(images, [3, 4]), plain)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_an_unknown_engine_is_refused_in_one_sentence():
    with pytest.raises(ValueError, match="Unknown augmentation engine 'albumentations': choose one of"):
        augmenter(get_preset("lecture"), "albumentations")
    with pytest.raises(ValueError, match="augment_engine must be one of image_data_generator, keras_layers"):
        RunSpec.from_recipe("scratch_aug", augment_engine="tf_image")


def test_a_run_trains_with_the_keras_layers_engine_and_records_it(home, tiny_data, monkeypatch):
    from core.analysis.compare import runs_frame
    from core.data import augmenters
    from core.runs import runcard
    from core.runs.worker import run_worker
    calls = {"layers": 0, "generator": 0}
    real_call = augmenters.LayersAugmenter.__call__

    def counting(self, images, seeds):
        calls["layers"] += 1
        return real_call(self, images, seeds)
    monkeypatch.setattr(augmenters.LayersAugmenter, "__call__", counting)
    monkeypatch.setattr(augmenters, "augment_batch", lambda *a: calls.__setitem__("generator", 1))
    spec = RunSpec.from_recipe("scratch_aug", data=str(tiny_data), image_size=48, epochs=1, batch_size=8,
                               augment_engine="keras_layers")
    run_id = store.create_run(spec.to_dict(), spec.display_name(), spec.recipe, spec.backbone, spec.total_epochs)
    assert run_worker(run_id) == "finished", store.get_run(run_id)["error"]
    assert calls["layers"] >= 3 and calls["generator"] == 0  # 24 training images in batches of 8: the layers
    run = store.get_run(run_id)
    assert run["spec"]["augment_engine"] == "keras_layers"
    assert ("augmentation engine", "Keras preprocessing layers") in runcard.rows(runcard.read(run_id))
    assert runs_frame([run])["augmentation"][0].endswith("· Keras layers")


def test_the_engine_defaults_to_the_lectures_and_older_specs_read_as_it():
    old = RunSpec.from_recipe("scratch_aug").to_dict()
    del old["augment_engine"]
    assert RunSpec.from_dict(old).augment_engine == "image_data_generator"
    assert RunSpec().augment_engine == "image_data_generator"


def test_the_command_line_and_the_ablation_pass_the_engine_through(home, tiny_data):
    from core.analysis import ablation
    from core.cli import parser
    from core.cli.common import spec_from_args
    for command in (["train"], ["lr-find"]):
        args = parser().parse_args([*command, "--recipe", "scratch_aug", "--data", str(tiny_data),
                                    "--augment-engine", "keras_layers"])
        assert spec_from_args(args).augment_engine == "keras_layers"
    args = parser().parse_args(["ablate", "--augment-engine", "keras_layers"])
    assert args.augment_engine == "keras_layers"
    _, planned = ablation.ablation_specs(get_preset("lecture"), {"data": str(tiny_data), "weights": "none",
                                                                  "augment_engine": "keras_layers"}, seeds=(0,))
    assert {spec.augment_engine for _, _, spec in planned} == {"keras_layers"}
    assert json.loads(json.dumps(planned[0][2].to_dict()))["augment_engine"] == "keras_layers"


@pytest.mark.nightly
def test_feature_extraction_with_augmentation_runs_the_layers_through_the_frozen_pass(home, tiny_data, monkeypatch):
    """The 32 px twin on a pretrained-base recipe: augmented batches through the frozen pass, then the head."""
    from core.data import augmenters
    from core.runs.worker import run_worker
    calls = []
    real_call = augmenters.LayersAugmenter.__call__
    monkeypatch.setattr(augmenters.LayersAugmenter, "__call__", lambda self, x, s: calls.append(len(x)) or
                        real_call(self, x, s))
    spec = RunSpec.from_recipe("feature_extraction_aug", data=str(tiny_data), backbone="mobilenet_v2",
                               weights="none", image_size=32, epochs=2, batch_size=8, precision="float32",
                               augment_engine="keras_layers")
    run_id = store.create_run(spec.to_dict(), spec.display_name(), spec.recipe, spec.backbone, spec.total_epochs)
    assert run_worker(run_id) == "finished", store.get_run(run_id)["error"]
    assert sum(calls) >= 2 * 24 and len(store.epochs(run_id)) == 2
    assert store.get_run(run_id)["spec"]["augment_engine"] == "keras_layers"


@pytest.mark.nightly  # 9 s of page runs; the default twin: the flag built from the same metadata reaches the spec
def test_the_train_pages_engine_box_reaches_the_run_and_is_off_for_recipes_that_never_augment(home, tmp_path,
                                                                                              monkeypatch):
    from core import settings
    from tests.conftest import make_folder
    from tests.test_pages import run_page
    monkeypatch.setenv("TUNELAB_DATA_ROOTS", str(tmp_path))
    settings.update(data=str(make_folder(tmp_path / "data", {"train": 4, "validation": 2})))
    monkeypatch.setattr("core.runs.runner.kick", lambda: None)  # store the run, start no worker
    at = run_page("pages/3_Train.py")
    assert at.selectbox(key="train_scratch_augment_engine").disabled
    at.selectbox(key="train_recipe").set_value("scratch_aug").run()
    engine = at.selectbox(key="train_scratch_aug_augment_engine")
    assert not engine.disabled and engine.value == "image_data_generator"
    engine.set_value("keras_layers")
    at.number_input(key="train_scratch_aug_image_size").set_value(48)
    at.button(key="FormSubmitter:train_form-Start training").click().run()
    assert not at.exception and store.list_runs()[0]["spec"]["augment_engine"] == "keras_layers"
