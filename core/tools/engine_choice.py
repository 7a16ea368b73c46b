"""Which inference engine runs the frozen passes: every candidate measured on this host, by the same yardstick.

`python -m core.tools.engine_choice [--data DIR] [--weights PATH] [--images N]` runs VGG16's conv base (with its
preprocessing) at 150 px in batches of 32 through TensorFlow float32 and bfloat16 (where native), OpenVINO
float32, bfloat16 and int8 (NNCF, 32 calibration images from the training split) and ONNX Runtime float32
(tf2onnx), and prints for each: images/s (best of 3 passes over the same images in memory), conversion
seconds, and the cosine similarity of its features to TensorFlow float32's on validation images; then what int8
costs a run once (conversion, quantization and its check) and after how many images it has paid for itself
against TensorFlow in the host's training policy. Candidates whose package is not installed are reported as such. It is tooling: nothing in a run depends on it.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from core.tools.bench_ceiling import bare_forward

SIZE, BATCH = 150, 32


def _images(root, split: str, n: int) -> np.ndarray:
    from core.data.folders import scan
    from core.data.pipeline import decoded_images
    items = scan(root).splits[split]
    items = items[:: max(1, len(items) // n)][:n]
    return np.asarray(decoded_images([p for p, _ in items], SIZE)[0], dtype=np.float32)


def measure(root, weights: str, n: int = 64, log=print) -> dict:
    import keras
    from core.models import features, inference, networks, precision
    calib, check = _images(root, "train", inference.CALIBRATION_IMAGES), _images(root, "validation", n)
    batches = [check[s:s + BATCH] for s in range(0, len(check), BATCH)]
    out = {"host": precision.host(), "images": len(check), "candidates": {}}

    def record(name, fn, convert_s, reference=None):
        feats = np.concatenate([fn(b) for b in batches])
        rate = bare_forward(fn, check)  # the bench's ceiling: same batches of 32, best of 3 passes
        row = {"images_per_s": rate, "convert_s": round(convert_s, 1),
               "cosine_to_tf_float32": round(inference.cosine(feats, reference), 5) if reference is not None else 1.0}
        out["candidates"][name] = row
        log(f"{name}: {rate} img/s, conversion {row['convert_s']} s, cosine {row['cosine_to_tf_float32']}")
        return feats

    keras.mixed_precision.set_global_policy("float32")
    model = features.extractor(networks.conv_base("vgg16", weights, SIZE), "caffe")
    ref = record("tensorflow float32", lambda x: np.asarray(model.predict_on_batch(x)), 0)
    if "amx_bf16" in precision.cpu_flags() or "avx512_bf16" in precision.cpu_flags():
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        bf = features.extractor(networks.conv_base("vgg16", weights, SIZE), "caffe")
        record("tensorflow bfloat16", lambda x: np.asarray(bf.predict_on_batch(x), dtype=np.float32), 0, ref)
        keras.mixed_precision.set_global_policy("float32")
    try:
        t0 = time.perf_counter()
        ov_model = inference.to_openvino(model)
        convert = time.perf_counter() - t0
        for p in ("float32", "bfloat16") if precision.detect()[0] == "mixed_bfloat16" else ("float32",):
            c = inference.compile_openvino(ov_model, p)
            record(f"openvino {p}", lambda x, c=c: c(x)[0], convert, ref)
        t0 = time.perf_counter()
        q = inference.quantize(ov_model, calib)
        c = inference.compile_openvino(q, "int8")
        record("openvino int8 (NNCF, 32 calibration images)", lambda x: c(x)[0], convert + time.perf_counter() - t0,
               ref)
        out["int8_break_even"] = break_even(model, calib, out["candidates"], log)
    except ImportError as exc:
        log(f"openvino/nncf not installed: {exc}")
    try:
        import onnxruntime as ort
        import tensorflow as tf
        import tf2onnx
        t0 = time.perf_counter()
        spec = [tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="image")]
        fn = tf.function(lambda x: model(x, training=False), input_signature=spec)
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=17)
        options = ort.SessionOptions()
        options.intra_op_num_threads = inference._threads()
        session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        record("onnxruntime float32 (tf2onnx)", lambda x: session.run(None, {name: x})[0],
               time.perf_counter() - t0, ref)
    except ImportError as exc:
        log(f"onnxruntime/tf2onnx not installed: {exc}")
    return out


def break_even(model, calib: np.ndarray, candidates: dict, log=print) -> dict:
    """What a run pays once for int8 (conversion, quantization, the check against float32, saving: timed through
    `inference.frozen_pass` in a temporary lab home) and after how many images its faster pass has won that back
    against TensorFlow in the host's training policy: the figure behind `precision.INT8_PAYS_AFTER`."""
    import tempfile
    from core.models import inference, precision
    from core.runs import store
    policy = precision.detect()[0].replace("mixed_", "")
    with tempfile.TemporaryDirectory() as home, store.home_at(home):
        t0 = time.perf_counter()
        inference.frozen_pass(model, "break-even", "int8", calib)
        setup = time.perf_counter() - t0
    tf_rate = candidates[f"tensorflow {policy}"]["images_per_s"]
    int8_rate = candidates["openvino int8 (NNCF, 32 calibration images)"]["images_per_s"]
    saved = 1 / tf_rate - 1 / int8_rate
    images = round(setup / saved) if saved > 0 else None
    log(f"int8 setup as a run pays it: {setup:.1f} s; pays off after {images} images against tensorflow {policy}"
        if images else f"int8 setup {setup:.1f} s; int8 is not faster than tensorflow {policy} here")
    return {"setup_s": round(setup, 1), "against": f"tensorflow {policy}", "images": images,
            "policy": precision.detect()[0]}


def main(argv=None) -> None:
    from core.tools.bench_setup import SHARED_DATA, SHARED_VGG
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED_DATA))
    parser.add_argument("--weights", default=str(SHARED_VGG) if SHARED_VGG.exists() else "none")
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args(argv)
    from core.models import precision
    h = precision.host()
    print(f"host: {h['cpu']}, {h['kind']} ({' '.join(h['isa'])}), {h['cores']} cores", flush=True)
    print(json.dumps(measure(args.data, args.weights, args.images, log=lambda m: print(m, flush=True)), indent=2))


if __name__ == "__main__":
    main()
