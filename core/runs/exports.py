"""Exports that prove themselves: a run's model in the formats phones, browsers and servers load, each
checked against the Keras model on the run's own test split.

`export(run_id, path, fmt)` writes `keras`, `saved_model` (a TensorFlow SavedModel folder), `tflite`
(float32), `tflite-int8` (weights and activations int8, calibrated on training images; float input and
output) or `onnx` (tf2onnx from the SavedModel's serving function), and returns a parity report: predicted
classes agreeing with the Keras model, the largest absolute probability difference, the file size and the
median single-image latency on this machine, on the test split recorded in the run's `split.json`
(the validation split when it has none). The exported model is the run's raw-pixel classifier in float32:
the lab augments in its input pipeline, so no augmentation layer is in it (any Random* layer would be
refused), and the preprocessing is inside (`PREPROCESSING` states it); resizing to the run's image size
(bilinear, as `core.data.folders.load_image`) stays with the caller.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from core.config import BACKBONES, RunSpec

FORMATS = ("keras", "saved_model", "tflite", "tflite-int8", "onnx")
CALIBRATION_IMAGES = 100  # training images the int8 converter measures activation ranges on
LATENCY_CALLS = 30


def preprocessing(spec: RunSpec, size: int) -> str:
    """What the exported model expects and does to its input, in one sentence."""
    inside = (f"{BACKBONES[spec.backbone].title}'s preprocess_input ({BACKBONES[spec.backbone].preprocess} mode)"
              if spec.uses_backbone else f"rescaling by {spec.augment.rescale:g}")
    return (f"input: float32 RGB pixels 0-255, shape (batch, {size}, {size}, 3), resized to {size} x {size} "
            f"(bilinear) by the caller; inside the model: {inside}; output: the probability of "
            f"class 1 (sigmoid) for two classes, else softmax probabilities.")


def float32_model(model):
    """`model` rebuilt with every layer in float32 (a mixed-precision run's bfloat16 layers do not convert),
    refusing augmentation layers, which an exported classifier must not contain."""
    import keras

    def walk(node):
        if isinstance(node, dict):
            if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and "config" in node:
                return {**node, "config": {**node["config"], "name": "float32"}}
            if node.get("class_name", "").startswith("Random"):
                raise ValueError(f"The model contains the augmentation layer {node['config'].get('name')!r}: "
                                 f"export a model without augmentation layers (the lab augments in its pipeline).")
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node
    config = walk(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def _saved_model(model, folder: Path) -> Path:
    model.export(str(folder), format="tf_saved_model", verbose=False)
    return folder


def _tflite(saved: Path, int8: bool, calibration: np.ndarray | None) -> bytes:
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i:i + 1].astype(np.float32)]
                                                     for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def _onnx(saved: Path, path: Path, size: int) -> None:
    import tensorflow as tf
    import tf2onnx
    loaded = tf.saved_model.load(str(saved))  # held: the signature's variables live as long as this object
    spec = (tf.TensorSpec((None, size, size, 3), tf.float32, name="image"),)
    fn = tf.function(lambda x: list(loaded.signatures["serving_default"](x).values())[0], input_signature=spec)
    tf2onnx.convert.from_function(fn, input_signature=spec, opset=17, output_path=str(path))


def predictor(path: Path, fmt: str):
    """A function images -> probabilities (n, outputs) running the exported file in its own runtime."""
    if fmt == "keras":
        import keras
        model = keras.models.load_model(path, safe_mode=True)
        return lambda x: np.asarray(model.predict_on_batch(x), dtype=np.float32)
    if fmt == "saved_model":
        import tensorflow as tf
        loaded = tf.saved_model.load(str(path))  # held by the closure, or the signature's variables are freed
        return lambda x: np.asarray(list(loaded.signatures["serving_default"](tf.constant(x)).values())[0],
                                    dtype=np.float32)
    if fmt in ("tflite", "tflite-int8"):
        try:  # LiteRT, TensorFlow Lite's successor (tf.lite.Interpreter is deprecated since TF 2.20)
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf
            Interpreter = tf.lite.Interpreter
        interp = Interpreter(model_path=str(path))
        interp.allocate_tensors()
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

        def run(x):
            rows = []
            for image in x:  # the interpreter's input is one image; resizing per call is slower
                interp.set_tensor(inp["index"], image[None].astype(np.float32))
                interp.invoke()
                rows.append(interp.get_tensor(out["index"])[0])
            return np.asarray(rows, dtype=np.float32)
        return run
    import onnxruntime
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: np.asarray(session.run(None, {name: x.astype(np.float32)})[0], dtype=np.float32)


def size_bytes(path: Path) -> int:
    path = Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def classes_of(probs: np.ndarray) -> np.ndarray:
    return (probs[:, 0] > 0.5).astype(int) if probs.shape[1] == 1 else probs.argmax(axis=1)


def check_images(run_id: str, size: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(images, labels, split name) of the run's recorded test split (validation when it has none)."""
    from core.data import manifest
    from core.data.pipeline import decoded_images
    from core.runs import artifacts
    record = manifest.read(artifacts.split_manifest(run_id))
    if record is None:
        raise FileNotFoundError(f"Run {run_id} has no recorded split (split.json): parity is checked on the run's "
                                f"own test images, so export a run that has started.")
    split = "test" if record["splits"].get("test") else "validation"
    found = [e for e in manifest.entries(record, split)[0] if e.state() == "present"]
    images, _ = decoded_images([e.path for e in found], size)
    return np.asarray(images, dtype=np.float32), np.array([e.label for e in found]), split


def calibration_images(run_id: str, size: int) -> np.ndarray:
    from core.data import manifest
    from core.data.pipeline import decoded_images
    from core.runs import artifacts
    record = manifest.read(artifacts.split_manifest(run_id))
    found = [e for e in manifest.entries(record, "train")[0] if e.state() == "present"]
    pick = np.random.default_rng(0).permutation(len(found))[:CALIBRATION_IMAGES]
    return np.asarray(decoded_images([found[i].path for i in sorted(pick)], size)[0], dtype=np.float32)


def download(path: Path) -> tuple[bytes, str]:
    """(bytes, file name) to download an export: a SavedModel folder as a zip."""
    path = Path(path)
    if not path.is_dir():
        return path.read_bytes(), path.name
    import io
    import zipfile
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(path.rglob("*")):
            if p.is_file():
                zf.write(p, Path(path.name) / p.relative_to(path))
    return buffer.getvalue(), path.name + ".zip"


def report_rows(report: dict) -> list[tuple[str, str]]:
    """A parity report as (what, value) rows for a table."""
    return [("format", report["format"]), ("checked on", f"the run's {report['split']} split, {report['images']} images"),
            ("classes agree with the Keras model", f"{report['class_agreement']:.2%}"),
            ("max |probability difference|", f"{report['max_abs_prob_diff']:.2e}"),
            ("the same against the float32 Keras model", f"{report['class_agreement_float32']:.2%}, "
                                                         f"{report['max_abs_prob_diff_float32']:.2e}"),
            ("accuracy (export / Keras)", f"{report['accuracy_export']:.4f} / {report['accuracy_keras']:.4f}"),
            ("size", f"{report['size_bytes'] / 1e6:.2f} MB"),
            ("single-image latency (median)", f"{report['latency_ms_median']:.2f} ms on this {report['host']} host"),
            ("reference", report["reference"]), ("preprocessing", report["preprocessing"])]


def export(run_id: str, path: str | Path, fmt: str = "keras", which: str = "best") -> dict:
    """Write run `run_id`'s model `which` to `path` in format `fmt`; returns its parity report."""
    import keras

    from core.models import networks  # noqa: F401 (registers BackbonePreprocess for loading)
    from core.runs import artifacts, store
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    run = store.get_run(run_id)
    source = artifacts.model(run_id, which)
    if not source.is_file():
        raise FileNotFoundError(f"Run {run_id} has no {source.name} ({run['status']}); finish or resume it first.")
    spec = RunSpec.from_dict(run["spec"])
    trained = keras.models.load_model(source, safe_mode=True)  # the reference: as trained, in its precision
    model = float32_model(trained)
    size = int(model.input_shape[1])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        if fmt == "keras":
            model.save(path)
        elif fmt == "saved_model":
            _saved_model(model, path)
        else:
            saved = _saved_model(model, Path(tmp) / "saved")
            if fmt == "onnx":
                _onnx(saved, path, size)
            else:
                calib = calibration_images(run_id, size) if fmt == "tflite-int8" else None
                path.write_bytes(_tflite(saved, fmt == "tflite-int8", calib))
    return parity(run_id, trained, model, path, fmt, size) | {
        "preprocessing": preprocessing(spec, size), "which": which,
        "reference": f"{source.name} as trained ({run['precision_used'] or 'float32'}); exported in float32"}


def parity(run_id: str, reference, float32_reference, path: Path, fmt: str, size: int) -> dict:
    """The exported file against the Keras model on the run's own test split: against the model as trained
    (in its precision: what the lab's evaluation saw) and against its float32 rebuild (the converter's own
    fidelity; a bfloat16-trained model differs from any float32 export where a probability is near 0.5)."""
    images, labels, split = check_images(run_id, size)
    expected = np.asarray(reference.predict(images, batch_size=32, verbose=0), dtype=np.float32)
    expected32 = np.asarray(float32_reference.predict(images, batch_size=32, verbose=0), dtype=np.float32)
    run = predictor(path, fmt)
    got = np.concatenate([run(images[i:i + 32]) for i in range(0, len(images), 32)])
    run(images[:1])  # warm up before timing
    times = []
    for i in range(LATENCY_CALLS):
        t0 = time.perf_counter()
        run(images[i % len(images)][None])
        times.append(time.perf_counter() - t0)
    from core.models.precision import host
    return {"run_id": run_id, "format": fmt, "path": str(path), "split": split, "images": len(images),
            "class_agreement": float(np.mean(classes_of(got) == classes_of(expected))),
            "max_abs_prob_diff": float(np.max(np.abs(got - expected))),
            "class_agreement_float32": float(np.mean(classes_of(got) == classes_of(expected32))),
            "max_abs_prob_diff_float32": float(np.max(np.abs(got - expected32))),
            "accuracy_keras": float(np.mean(classes_of(expected) == labels)),
            "accuracy_export": float(np.mean(classes_of(got) == labels)),
            "size_bytes": size_bytes(path), "latency_ms_median": float(np.median(times) * 1000),
            "host": host()["kind"]}
