"""Frozen forward passes on the inference engine: int8 agrees with float32, is converted once, and runs recipes."""
import numpy as np
import pytest

from core.config import RunSpec
from core.models import inference, precision
from core.runs import store
from tests.test_train import _submit_inline

pytest.importorskip("openvino")
pytest.importorskip("nncf")


def test_the_precision_choice_decides_each_frozen_pass(monkeypatch):
    monkeypatch.setattr(precision, "gpus", lambda: [])
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    assert precision.frozen_pass("float32") == "float32" and precision.resolve("float32") == "float32"
    assert precision.frozen_pass("auto") == "int8" and precision.resolve("auto") == "float32"
    assert precision.frozen_pass("int8") == "int8" and precision.resolve("int8") == "float32"
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert precision.frozen_pass("auto") == "bfloat16" and precision.resolve("auto") == "mixed_bfloat16"
    assert precision.frozen_pass("float32") == "float32"


def test_an_int8_pass_agrees_with_float32_and_is_converted_once(home):
    import keras
    from core.models import features, networks
    keras.mixed_precision.set_global_policy("float32")
    model = features.extractor(networks.conv_base("vgg16", "none", 32), "caffe")
    images = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3)).astype(np.float32)
    fast = inference.frozen_pass(model, "k1", "int8", images)
    assert (fast.engine, fast.precision) == ("openvino", "int8")
    exact = np.asarray(model.predict_on_batch(images))
    assert fast(images).shape == exact.shape and inference.cosine(fast(images), exact) > 0.99
    files = sorted(inference.cache_dir().glob("k1-*"))
    assert [p.name for p in files] == ["k1-float32.bin", "k1-float32.xml", "k1-int8.bin", "k1-int8.xml"]
    mtimes = [p.stat().st_mtime_ns for p in files]
    inference.frozen_pass(model, "k1", "int8", images)
    assert [p.stat().st_mtime_ns for p in files] == mtimes
    assert inference.frozen_pass(model, "k1", "float32").engine == "tensorflow"


def test_feature_extraction_with_augmentation_trains_its_head_on_int8_passes(home, tiny_data):
    spec = RunSpec.from_recipe("feature_extraction_aug", data=str(tiny_data), weights="none", image_size=32,
                               epochs=2, batch_size=8, head="gap", precision="int8")
    run_id = _submit_inline(spec)
    assert [r["phase"] for r in store.epochs(run_id)] == ["head", "head"]
    messages = [line["message"] for line in store.log_lines(run_id)]
    assert any(m.startswith("frozen pass") and "openvino int8" in m for m in messages), messages
    assert any("trainable" in m and m.startswith("phase head") and "131,585" in m for m in messages), messages
    assert (store.run_dir(run_id) / "best.keras").is_file()
    assert list((home / "cache" / "features").glob("*.npy"))  # validation features, cached by content
