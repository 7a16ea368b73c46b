"""Looking inside trained models: Grad-CAM, feature maps, split scores and mistakes, the Inspect page."""
import json

import keras
import numpy as np
import pytest
from keras import layers
from streamlit.testing.v1 import AppTest

from core.models import networks
from core.analysis import charts, gradcam, inspection
from core.runs import store
from core.data.folders import DataError
from tests.conftest import ROOT

SIZE = 32


# -- Grad-CAM on a network that must look at a bright square ----------------------------------------------------------

def square_image(rng, at=None, size=SIZE, side=8) -> np.ndarray:
    """Dark noise; with a bright square whose top-left corner is `at` (row, col) when given."""
    img = rng.integers(0, 70, (size, size, 3)).astype(np.uint8)
    if at is not None:
        r, c = at
        img[r:r + side, c:c + side] = 255
    return img


@pytest.fixture(scope="module")
def square_models():
    """(nested, flat) models sharing their layers, trained until the square's presence decides the class.

    nested mirrors the lab's pretrained classifiers: raw pixels -> preprocessing -> nested "base" -> nested "head".
    """
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n = 384
    labels = np.arange(n) % 2
    x = np.stack([square_image(rng, tuple(rng.integers(0, SIZE - 8, 2)) if y else None) for y in labels])
    rescale = layers.Rescaling(1 / 255, name="rescale")
    conv1 = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")
    pool = layers.MaxPooling2D(2, name="pool")
    conv2 = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")
    gap = layers.GlobalAveragePooling2D(name="gap")
    dense = layers.Dense(1, activation="sigmoid", name="predictions")
    base_in = keras.Input((SIZE, SIZE, 3))
    base = keras.Model(base_in, conv2(pool(conv1(base_in))), name="base")
    head_in = keras.Input(base.output_shape[1:])
    head = keras.Model(head_in, dense(gap(head_in)), name="head")
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    nested = keras.Model(inputs, head(base(rescale(inputs))), name="nested")
    flat_in = keras.Input((SIZE, SIZE, 3), name="image")
    flat = keras.Model(flat_in, dense(gap(conv2(pool(conv1(rescale(flat_in)))))), name="flat")
    nested.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy", metrics=["accuracy"])
    history = nested.fit(x.astype("float32"), labels, epochs=12, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.9, history.history
    return nested, flat


def peak(heatmap: np.ndarray) -> np.ndarray:
    return np.array(np.unravel_index(np.argmax(heatmap), heatmap.shape))


def test_grad_cam_has_the_images_size_and_follows_the_square(square_models):
    nested, _ = square_models
    rng = np.random.default_rng(1)
    peaks = []
    for at in ((3, 4), (20, 21)):
        img = square_image(rng, at)
        heatmap, probs = gradcam.grad_cam(nested, img)
        assert heatmap.shape == img.shape[:2] and heatmap.dtype == np.float32
        assert heatmap.min() >= 0 and heatmap.max() == pytest.approx(1.0)
        assert probs.argmax() == 1 and probs.shape == (2,) and probs.sum() == pytest.approx(1.0)
        centre = np.array(at) + 3.5
        assert np.linalg.norm(peak(heatmap) - centre) <= 6, (at, peak(heatmap))
        peaks.append(peak(heatmap))
    assert np.linalg.norm(peaks[0] - peaks[1]) > 12  # the heatmap moved with the square


def test_grad_cam_is_the_same_through_nested_models_and_on_a_flat_one(square_models):
    nested, flat = square_models
    img = square_image(np.random.default_rng(2), (10, 12))
    assert gradcam.conv_layers(nested) == gradcam.conv_layers(flat) == ["conv1", "conv2"]
    a, pa = gradcam.grad_cam(nested, img)
    b, pb = gradcam.grad_cam(flat, img)
    np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(pa, pb, atol=1e-5)
    early, _ = gradcam.grad_cam(nested, img, layer="conv1", class_index=0)
    assert early.shape == img.shape[:2] and 0 <= early.min() and early.max() <= 1


@pytest.mark.parametrize("backbone, first, last, first_shape, last_shape", [
    ("vgg16", "block1_conv1", "block5_conv3", (48, 48, 64), (3, 3, 512)),
    ("mobilenet_v2", "Conv1", "Conv_1", (24, 24, 32), (2, 2, 1280)),  # a DAG base (residual connections)
])
def test_pretrained_classifier_maps_and_heatmap(backbone, first, last, first_shape, last_shape):
    base = networks.conv_base(backbone, "none", 48)
    model = networks.full_model(base, networks.head(base.output_shape[1:], 2, "flatten", 0.5), "caffe")
    img = np.random.default_rng(3).integers(0, 256, (48, 48, 3)).astype(np.uint8)
    names = gradcam.conv_layers(model)
    assert names[0] == first and names[-1] == last
    probs, maps = gradcam.tap_model(model, [(last, "output")])(img[None].astype("float32"), training=False)
    np.testing.assert_allclose(np.asarray(probs), np.asarray(model(img[None].astype("float32"))), atol=1e-6)
    assert gradcam.feature_maps(model, img, first).shape == first_shape
    assert gradcam.feature_maps(model, img, last).shape == last_shape
    heatmap, _ = gradcam.grad_cam(model, img)
    assert heatmap.shape == (48, 48) and heatmap.min() >= 0 and heatmap.max() <= 1
    with pytest.raises(ValueError, match=first):
        gradcam.feature_maps(model, img, "no_such_layer")


def test_feature_grid_colormap_and_overlay():
    maps = np.random.default_rng(4).random((6, 5, 40)).astype(np.float32)
    maps[..., 1] = 0  # a dead channel does not divide by zero
    grid = gradcam.feature_grid(maps, n=10, cols=4, cell=20, gap=2)
    assert grid.dtype == np.uint8 and grid.shape == (3 * 22 - 2, 4 * 22 - 2, 3)  # 10 channels: 3 rows of 4
    assert gradcam.feature_grid(maps, n=500, cols=8, cell=10, gap=0).shape == (50, 80, 3)  # capped at 40 channels
    assert gradcam.colormap(np.array([0.0, 1.0])).tolist() == [[0, 0, 4], [252, 255, 164]]
    img = np.full((8, 8, 3), 128, np.uint8)
    out = gradcam.overlay(img, np.zeros((8, 8), np.float32), size=16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8


# -- scores, mistakes, disagreements ----------------------------------------------------------------------------------

def test_score_mistakes_and_disagreements_by_hand():
    classes = ["cats", "dogs"]
    labels = np.array([0, 0, 1, 1])
    a = {"paths": list("wxyz"), "labels": labels, "classes": classes,
         "probs": np.array([[0.9, 0.1], [0.2, 0.8], [0.05, 0.95], [0.7, 0.3]])}
    from core.analysis.evaluate import score
    s = score(labels, a["probs"], classes)
    assert s["accuracy"] == 0.5 and s["confusion_matrix"] == [[1, 1], [1, 1]]
    assert s["per_class"][0] == {"class": "cats", "images": 2, "correct": 1, "recall": 0.5, "precision": 0.5}
    assert s["loss"] == pytest.approx(-np.mean(np.log([0.9, 0.2, 0.95, 0.3])))
    wrong = inspection.confident_mistakes({**a, **s}, 5)
    assert [m["path"] for m in wrong] == ["x", "z"] and wrong[0]["predicted"] == "dogs"
    assert wrong[0]["probability"] == pytest.approx(0.8)
    b = {**a, "probs": np.array([[0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9]])}
    d = inspection.disagreements(a, b)
    assert d["counts"] == {"images": 4, "agree": 2, "disagree": 2, "both right": 2, "only A right": 0,
                           "only B right": 2, "both wrong": 0}
    assert {i["path"] for i in d["items"]} == {"x", "z"}
    with pytest.raises(ValueError, match="same images"):
        inspection.disagreements(a, {**b, "paths": list("abcd")})


def test_confusion_figure():
    fig = charts.confusion_figure([[3, 1], [0, 4]], ["cats", "dogs"])
    heat = fig.data[0]
    assert list(heat.x) == ["cats", "dogs"] and list(heat.y) == ["cats", "dogs"]
    assert heat.z[0] == (0.75, 0.25) or list(heat.z[0]) == [0.75, 0.25]
    assert heat.text[0][0].startswith("3") and heat.text[1][1].startswith("4")
    assert fig.layout.yaxis.title.text == "true class" and fig.layout.xaxis.title.text == "predicted class"


def test_split_result_matches_evaluate_on_the_runs_own_test_split(lab_home, trained_lab):
    from core.analysis.evaluate import evaluate
    run_id = trained_lab["runs"][0]
    assert inspection.available_splits(run_id) == ["validation", "test"]
    assert [r["id"] for r in inspection.inspectable(store.list_runs())] == trained_lab["runs"]
    result = inspection.split_result(run_id, "test")
    reference = evaluate(run_id, str(trained_lab["data"]), "test")
    assert result["n"] == reference["n"] == 8 and result["missing"] == 0
    assert result["accuracy"] == pytest.approx(reference["accuracy"])
    assert result["loss"] == pytest.approx(reference["loss"], rel=1e-5)
    assert result["confusion_matrix"] == reference["confusion_matrix"]
    other = inspection.split_result(trained_lab["runs"][1], "test",
                                    items=list(zip(result["paths"], result["labels"].tolist())))
    assert inspection.disagreements(result, other)["counts"]["images"] == 8


def test_split_items_skip_missing_files_and_refuse_when_all_are_gone(lab_home, trained_lab):
    run_id = trained_lab["runs"][0]
    path = store.run_dir(run_id) / "split.json"
    record = json.loads(path.read_text())
    real = record["splits"]["test"][0][0]
    record["splits"]["test"] += [["/nowhere/cats/gone.png", 0], [real, 7], [real], "junk", [None, "x"]]
    path.write_text(json.dumps(record))
    items, missing = inspection.split_items(run_id, "test")
    assert len(items) == 8 and missing == 5  # gone, a label beyond the classes, damaged entries
    record["splits"]["test"] = [["/nowhere/a.png", 0]]
    path.write_text(json.dumps(record))
    with pytest.raises(DataError, match="moved or deleted"):
        inspection.split_items(run_id, "test")
    path.unlink()  # a run that recorded its split never has it rebuilt from its folder (the split could differ)
    with pytest.raises(DataError, match="recorded split .* is missing"):
        inspection.available_splits(run_id)
    info = store.get_run(run_id)["info"]
    del info["split_record"]  # a run made before the lab recorded splits: rebuilt from its data folder
    store.update_run(run_id, info=info)
    assert inspection.available_splits(run_id) == ["validation", "test"]


# -- the page ---------------------------------------------------------------------------------------------------------

def run_inspect(timeout=180) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages/5_Inspect.py"), default_timeout=timeout)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_inspect_page_without_runs(home):
    at = run_inspect()
    assert "No finished run" in at.info[0].value


def test_inspect_page_scores_looks_inside_and_compares(lab_home, trained_lab):
    first, second = trained_lab["runs"]
    at = run_inspect()
    assert at.selectbox(key="inspect_run").value == second  # newest first
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "12" and "Prediction" in metrics and "Disagree" in metrics
    charts_ = at.get("plotly_chart")
    assert len(charts_) == 1 and json.loads(charts_[0].proto.config)["displaylogo"] is False
    assert "true class" in charts_[0].proto.spec
    captions = [c for el in at.get("image") for c in el.captions]
    assert any(c.startswith("Grad-CAM for") for c in captions)
    assert any("of 32 channels of conv1" in c for c in captions)  # the first conv layer, 16 of its 32 channels
    at.selectbox(key=f"inspect_map_layer_{second}").set_value("conv4").run()
    at.slider(key=f"inspect_channels_{second}").set_value(5).run()
    captions = [c for el in at.get("image") for c in el.captions]
    assert any(c.startswith("the first 5 of 128 channels of conv4") for c in captions)
    at.radio(key=f"inspect_split_{second}").set_value("test").run()
    assert {m.label: m.value for m in at.metric}["Images"] == "8"
    at.selectbox(key="inspect_run").set_value(first).run()
    assert not at.exception
    assert at.selectbox(key="inspect_other").value == second
    expanders = {e.label: e.proto.expanded for e in at.expander}
    assert expanders["How Grad-CAM works"] is False and expanders["What feature maps show"] is False
    labels = [b.label for b in at.get("download_button")]
    assert "Download the run's report (HTML)" in labels
