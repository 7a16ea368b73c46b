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
    assert precision.frozen_pass("auto") == "int8" and precision.resolve("auto") == "mixed_bfloat16"
    assert precision.frozen_pass("float32") == "float32"
    # int8 only for a model that passes enough images to win back its one-off cost, against the training policy
    for flags, policy, below in (({"avx2"}, "float32", "float32"), ({"avx2", "amx_bf16"}, "mixed_bfloat16",
                                                                     "bfloat16")):
        monkeypatch.setattr(precision, "cpu_flags", lambda flags=flags: frozenset(flags))
        enough = precision.INT8_PAYS_AFTER[policy]
        assert precision.frozen_pass("auto", enough) == "int8" and precision.frozen_pass("auto", None) == "int8"
        assert precision.frozen_pass("auto", enough - 1) == below
        assert precision.frozen_pass("int8", 1) == "int8" and precision.frozen_pass("float32", 10**6) == "float32"
    monkeypatch.setattr(precision, "gpus", lambda: ["GPU:0"])  # a GPU keeps TensorFlow in the training policy
    monkeypatch.setattr(precision, "detect", lambda: ("mixed_bfloat16", "GPU with compute capability 9.x"))
    assert precision.frozen_pass("auto") == "bfloat16" and precision.frozen_pass("int8") == "int8"


def test_a_onednn_isa_cap_lowers_the_cpu_kind_the_kernels_compute_as(monkeypatch):
    amx = frozenset({"sse4_2", "avx2", "avx_vnni", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})
    monkeypatch.setattr(precision, "_proc_flags", lambda: amx)
    monkeypatch.setattr(precision, "gpus", lambda: [])
    for cap, kind, policy in ((None, "AMX", "mixed_bfloat16"), ("avx2", "AVX2-only", "float32"),
                              ("AVX2_VNNI", "AVX2+VNNI", "float32"),
                              ("AVX512_CORE", "AVX-512", "float32"), ("AVX512_CORE_BF16", "AVX512-BF16",
                                                                       "mixed_bfloat16"), ("ALL", "AMX", "mixed_bfloat16")):
        if cap:
            monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        else:
            monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        assert precision.cpu_kind() == kind and precision.detect()[0] == policy, cap
        assert "sse4_2" in precision.cpu_flags()  # flags below every cap stay
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert precision.host()["kind"] == "AVX2-only (an AMX CPU capped by ONEDNN_MAX_CPU_ISA=AVX2)"
    assert precision.host()["isa"] == ["avx2"]
    assert precision.detect() == ("float32", "ONEDNN_MAX_CPU_ISA=AVX2 keeps the kernels off this CPU's bfloat16 "
                                             "instructions")


def test_an_int8_pass_agrees_with_float32_and_is_converted_once(home, monkeypatch):
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
    assert [p.name for p in files] == ["k1-float32.bin", "k1-float32.xml", "k1-int8.bin", "k1-int8.cosine",
                                       "k1-int8.xml"]
    assert float((inference.cache_dir() / "k1-int8.cosine").read_text()) == pytest.approx(fast.cosine, abs=1e-6)
    mtimes = [p.stat().st_mtime_ns for p in files]
    inference.frozen_pass(model, "k1", "int8", images)
    assert [p.stat().st_mtime_ns for p in files] == mtimes
    assert inference.frozen_pass(model, "k1", "float32").engine == "tensorflow"
    # int8 that agrees too little with float32 is replaced by TensorFlow in the training policy, and says so
    monkeypatch.setattr(inference, "MIN_COSINE", 1.01)
    said = []
    fallback = inference.frozen_pass(model, "k1", "int8", images, log=said.append)
    assert (fallback.engine, fallback.precision) == ("tensorflow", "float32")
    assert f"int8 refused: cosine {fast.cosine:.4f}" in fallback.describe()
    assert said == [f"int8 frozen pass agrees only {fast.cosine:.4f} (cosine) with float32 on 16 training images: "
                    f"running it on tensorflow float32"]


def test_feature_extraction_with_augmentation_trains_its_head_on_int8_passes(home, tiny_data, monkeypatch):
    """"auto" on a CPU: int8 once the base passes enough images (here: any), calibrated and checked."""
    monkeypatch.setattr(precision, "gpus", lambda: [])
    monkeypatch.setattr(precision, "INT8_PAYS_AFTER", {"float32": 1, "mixed_bfloat16": 1})
    spec = RunSpec.from_recipe("feature_extraction_aug", data=str(tiny_data), weights="none", image_size=32,
                               epochs=2, batch_size=8, head="gap", precision="auto")
    run_id = _submit_inline(spec)
    assert [r["phase"] for r in store.epochs(run_id)] == ["head", "head"]
    messages = [line["message"] for line in store.log_lines(run_id)]
    assert any(m.startswith("frozen pass") and "openvino int8" in m for m in messages), messages
    assert any("trainable" in m and m.startswith("phase head") and "131,585" in m for m in messages), messages
    assert (store.run_dir(run_id) / "best.keras").is_file()
    assert list((home / "cache" / "features").glob("*.npy"))  # validation features, cached by content
