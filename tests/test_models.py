"""Networks: the lecture's parameter counts, freeze points, preprocessing, and weights errors."""
import keras
import numpy as np
import pytest

from core.models import networks
from core.config import RunSpec


def test_small_cnn_has_the_lectures_parameter_count():
    assert networks.small_cnn(150).count_params() == 3_453_121
    bn = networks.build_scratch(RunSpec.from_recipe("scratch_bn", image_size=150), 2)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in bn.layers)
    assert all(not layer.use_bias for layer in bn.layers if isinstance(layer, keras.layers.Conv2D))
    assert any(isinstance(layer, keras.layers.Dropout) for layer in bn.layers)


@pytest.mark.parametrize("shape, flatten, gap", [((4, 4, 512), 2_097_665, 131_585),      # VGG16 at 150 px
                                                 ((5, 5, 1280), 8_192_513, 328_193),    # MobileNetV2 at 160 px
                                                 ((5, 5, 2048), 13_107_713, 524_801)])  # ResNet50 at 160 px
def test_head_sizes_quoted_in_the_readme(shape, flatten, gap):
    assert networks.head(shape, 2, "flatten", 0.5).count_params() == flatten
    assert networks.head(shape, 2, "gap", 0.5).count_params() == gap


def test_vgg16_layer_table_matches_the_lecture():
    table = networks.layer_table("vgg16", "block5_conv1", 150)
    assert table["total_params"] == 14_714_688
    assert table["trainable_params"] == 7_079_424
    assert table["non_trainable_params"] == 14_714_688 - 7_079_424
    rows = {r["name"]: r for r in table["layers"]}
    assert rows["block5_pool"]["output_shape"] == [4, 4, 512]
    assert rows["block4_conv3"]["trainable"] is False and rows["block5_conv1"]["trainable"] is True
    assert networks.layer_table("vgg16", None, 150)["trainable_params"] == 0


def test_unknown_freeze_point_names_valid_ones():
    base = networks.conv_base("vgg16", "none", 48)
    with pytest.raises(ValueError, match="block5_conv1"):
        networks.freeze_from(base, "block9_conv1")


def test_batchnorm_stays_frozen_when_fine_tuning():
    base = networks.conv_base("mobilenet_v2", "none", 64)
    networks.freeze_from(base, "block_16_expand")
    bns = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and not any(layer.trainable for layer in bns)
    assert base.get_layer("block_16_expand").trainable and not base.get_layer("block_15_expand").trainable


@pytest.mark.parametrize("mode, module", [("caffe", keras.applications.vgg16), ("tf", keras.applications.mobilenet_v2)])
def test_preprocess_layer_matches_keras_applications(mode, module):
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = module.preprocess_input(x.copy())
    got = keras.ops.convert_to_numpy(networks.BackbonePreprocess(mode)(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)


def test_weights_errors_name_the_file(tmp_path):
    with pytest.raises(networks.WeightsError, match="does not exist"):
        networks.conv_base("vgg16", str(tmp_path / "missing.h5"), 48)
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"0" * 100)
    with pytest.raises(networks.WeightsError, match="is unreadable") as info:
        networks.conv_base("vgg16", str(bad), 48)
    assert str(bad) in str(info.value)


def test_weights_status_looks_in_the_keras_cache_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    from core.models import environment
    assert environment.weights_status("vgg16", is_online=False)["status"] == "missing"
    assert environment.weights_status("vgg16", is_online=True)["status"] == "downloadable"
    path = environment.imagenet_file("vgg16")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    assert environment.weights_status("vgg16", is_online=False)["status"] == "cached"
    assert environment.imagenet_file("mobilenet_v2", 160).name.endswith("_1.0_160_no_top.h5")
    assert environment.imagenet_file("mobilenet_v2", 150).name.endswith("_1.0_224_no_top.h5")


def test_saved_model_reloads_in_safe_mode(tmp_path):
    base = networks.conv_base("vgg16", "none", 32)
    full = networks.full_model(base, networks.head(base.output_shape[1:], 2, "gap", 0.5), "caffe")
    full.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(again.predict(x, verbose=0), full.predict(x, verbose=0), rtol=1e-5)


# ResNet50 (about 5 s a build) is checked nightly; a cut crossed by a skip connection is checked by default on
# MobileNetV2 (block_15_project).
RESNET50 = pytest.mark.nightly


@pytest.mark.parametrize("backbone, point", [("mobilenet_v2", "block_16_expand"),
                                             pytest.param("resnet50", "conv5_block1_1_conv", marks=RESNET50),
                                             ("vgg16", "block4_conv1")])
def test_freeze_table_counts_agree_with_keras(backbone, point):
    """The instant (TensorFlow-free) freeze table gives the counts Keras gives on the real model."""
    base = networks.conv_base(backbone, "none", 64)
    networks.freeze_from(base, point)
    expected = int(sum(np.prod(w.shape) for w in base.trainable_weights))
    table = networks.layer_table(backbone, point, 64)
    assert table["trainable_params"] == expected
    assert table["total_params"] == base.count_params()


def test_blocks_list_each_blocks_first_layer():
    from core.models.layer_table import blocks
    rows = [{"name": n} for n in ("block1_conv1", "block1_pool", "block2_conv1", "block2_pool")]
    assert blocks(rows) == [("block1", "block1_conv1"), ("block2", "block2_conv1")]


@pytest.mark.parametrize("backbone, point, splits", [("vgg16", "block5_conv1", True),
                                                      ("mobilenet_v2", "block_16_expand", True),
                                                      pytest.param("resnet50", "conv5_block1_1_conv", True,
                                                                   marks=RESNET50),
                                                      ("mobilenet_v2", "block_15_project", False)])
def test_split_at_reproduces_the_base(backbone, point, splits):
    base = networks.conv_base(backbone, "none", 64)
    split = networks.split_at(base, point)
    assert (split is not None) == splits
    if split:
        bottom, top = split
        x = np.random.default_rng(2).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
        np.testing.assert_allclose(top(bottom(x)), base(x), rtol=1e-4, atol=1e-4)
        assert top.layers[1].name == point or point in [layer.name for layer in top.layers]
