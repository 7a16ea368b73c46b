"""Frozen forward passes on the CPU's fastest correct engine: OpenVINO, float32 / bfloat16 / int8, else TensorFlow.

Training stays in Keras; what is frozen (the preprocessing and the conv base for feature extraction, with or
without augmentation, the frozen bottom for fine-tuning, a finished classifier for evaluation) only runs
forward, and an inference engine does that faster than TensorFlow on every CPU kind (`python -m core bench`
measures it beside TensorFlow on the host it runs on; `python -m core.tools.engine_choice` compares the
candidates). `frozen_pass(model, key, precision, calibration)` converts a Keras model once, quantizes it to int8
with NNCF on the run's own training images where asked, caches the result under `cache/engines/<key>` (the
same content key as the features it computes) and returns a callable mapping a float32 batch to numpy outputs.
Only int8 runs on OpenVINO (what "auto" asks for on every CPU: the fastest correct pass that
`python -m core.tools.engine_choice` measured on AMX and on AVX2-only hosts): float32 stays TensorFlow's own pass
(the lecture exactly), and bfloat16 is TensorFlow's. Where OpenVINO is not installed, on a GPU, or where int8's
outputs disagree with float32's (MobileNetV2's depthwise convolutions do), the callable is the Keras model's own
`predict_on_batch` in the training policy.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

PASS_PRECISIONS = ("float32", "bfloat16", "int8")
MIN_COSINE = 0.995  # int8 outputs agreeing less than this with float32 fall back to TensorFlow in the run's policy
CALIBRATION_IMAGES = 32
CHECK_IMAGES = 16  # of the calibration images, the ones int8 is compared with float32 on (float32 is the slow pass)


def engine_available() -> bool:
    """OpenVINO is installed and the run is on a CPU (on a GPU TensorFlow stays the path)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    from core.models import precision
    return not precision.gpus()


def _threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def float32_twin(model):
    """`model` rebuilt with every layer computing in float32 (its weights are float32 under any policy)."""
    import keras

    def plain(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy" or node.get("class_name") == "FloatDTypePolicy":
                return "float32"
            return {k: plain(v) for k, v in node.items()}
        return [plain(v) for v in node] if isinstance(node, list) else node
    if all(layer.dtype_policy.name == "float32" for layer in model._flatten_layers()):
        return model
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # for the layers whose config names no dtype
    try:
        twin = model.__class__.from_config(plain(model.get_config()))
    finally:
        keras.mixed_precision.set_global_policy(policy)
    twin.set_weights(model.get_weights())
    return twin


def to_openvino(model):
    """The Keras model, in float32, as an OpenVINO model with a dynamic batch (traced through tf.function)."""
    import openvino as ov
    import tensorflow as tf
    model = float32_twin(model)
    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="image")
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    return ov.convert_model(fn.get_concrete_function())


def quantize(ov_model, calibration: np.ndarray, batch: int = 8):
    """int8 after NNCF post-training quantization, calibrated on `calibration` (uint8 or float images).

    NNCF's bias correction is left out: it costs a second or more on 2 cores and, on VGG16 and MobileNetV2
    with ../shared's photos, left the outputs' agreement with float32 unchanged to three decimals."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    batches = [np.asarray(calibration[s:s + batch], dtype=np.float32) for s in range(0, len(calibration), batch)]
    return nncf.quantize(ov_model, nncf.Dataset(batches), subset_size=len(batches),
                         preset=nncf.QuantizationPreset.PERFORMANCE,
                         advanced_parameters=AdvancedQuantizationParameters(disable_bias_correction=True))


def compile_openvino(ov_model, pass_precision: str):
    """A compiled model for the CPU: float32 computes in f32 (OpenVINO would pick bf16 on AMX by itself)."""
    import openvino as ov
    hint = {"float32": "f32", "bfloat16": "bf16", "int8": "f32"}[pass_precision]
    config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_NUM_THREADS": _threads()}
    return ov.Core().compile_model(ov_model, "CPU", config)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


class FrozenPass:
    """A frozen model's forward pass: `pass_(batch)` -> numpy; `engine`, `precision` and `cosine` (its outputs'
    agreement with float32's where it was measured, else None) say what ran."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], engine: str, precision: str,
                 cosine: float | None = None):
        self.run, self.engine, self.precision, self.cosine = run, engine, precision, cosine
        self.int8_refused: float | None = None  # int8's cosine, where it was too low and this pass replaced it

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run(np.asarray(batch, dtype=np.float32))

    def describe(self) -> str:
        extra = f", cosine {self.cosine:.4f} to float32" if self.cosine is not None else ""
        if self.int8_refused is not None:
            extra += f" (int8 refused: cosine {self.int8_refused:.4f} to float32)"
        return f"{self.engine} {self.precision}{extra}"


def keras_pass(model) -> FrozenPass:
    import keras
    policy = keras.mixed_precision.global_policy().name
    return FrozenPass(lambda x: keras.ops.convert_to_numpy(model.predict_on_batch(x)).astype(np.float32),
                      "tensorflow", "float32" if policy == "float32" else policy.replace("mixed_", ""))


def cache_dir() -> Path:
    from core.runs import store
    return store.home() / "cache" / "engines"


def frozen_pass(model, key: str, pass_precision: str, calibration: np.ndarray | None = None,
                log: Callable[[str], None] | None = None) -> FrozenPass:
    """`model`'s forward pass on the engine in `pass_precision` (float32, bfloat16, int8), converted (and
    quantized on `calibration`, the run's own training images) once and cached under `key`.

    int8 whose outputs on CHECK_IMAGES calibration images agree less than MIN_COSINE with float32 falls back
    to the Keras model in its own policy (logged), as do the other precisions and a host without the engine."""
    if pass_precision not in PASS_PRECISIONS:
        raise ValueError(f"Frozen-pass precision {pass_precision!r} is not one of {', '.join(PASS_PRECISIONS)}: "
                         f"choose one of them.")
    if pass_precision != "int8" or not engine_available():
        return keras_pass(model)  # TensorFlow in the training policy: float32 is the lecture's own pass
    if calibration is None:
        raise ValueError("int8 needs calibration images (the run's own training images): pass some, or "
                         "choose float32 or bfloat16.")
    import openvino as ov
    from core.atomic import replacing
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    f32_path, q_path = folder / f"{key}-float32.xml", folder / f"{key}-int8.xml"
    if not f32_path.exists():
        _save(to_openvino(model), f32_path)
    f32 = ov.Core().read_model(f32_path)
    images = np.asarray(calibration[:CALIBRATION_IMAGES], dtype=np.float32)
    if not q_path.exists():
        _save(quantize(f32, images), q_path)
    fast = _compiled(ov.Core().read_model(q_path), pass_precision)
    check, checked = images[:CHECK_IMAGES], folder / f"{key}-int8.cosine"
    try:  # measured when the model was quantized: the same model on the same images agrees the same
        fast.cosine = float(checked.read_text())
    except (OSError, ValueError):
        exact = compile_openvino(f32, "float32")
        fast.cosine = min(cosine(exact(check[s:s + 8])[0], fast(check[s:s + 8])) for s in range(0, len(check), 8))
        with replacing(checked) as tmp:
            tmp.write_text(f"{fast.cosine:.6f}")
    if fast.cosine < MIN_COSINE:
        fallback = keras_pass(model)
        fallback.int8_refused = fast.cosine
        if log:
            log(f"int8 frozen pass agrees only {fast.cosine:.4f} (cosine) with float32 on {len(check)} training "
                f"images: running it on {fallback.engine} {fallback.precision}")
        return fallback
    return fast


def _compiled(ov_model, pass_precision: str) -> FrozenPass:
    compiled = compile_openvino(ov_model, pass_precision)
    request = compiled.create_infer_request()

    def run(x):
        return np.array(request.infer({0: x})[0], dtype=np.float32, copy=True)
    return FrozenPass(run, "openvino", pass_precision)


def _save(ov_model, path: Path) -> None:
    """Write the model's .xml/.bin atomically enough: the .xml (read first) is renamed into place last."""
    import openvino as ov
    tmp = path.with_name(path.stem + f".tmp{os.getpid()}.xml")
    ov.save_model(ov_model, tmp, compress_to_fp16=False)
    os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
    os.replace(tmp, path)


def feature_batches(batches, forward: FrozenPass, overlap: bool = True):
    """A Keras dataset of (frozen-pass outputs, labels) for each batch of `batches` (an ImageBatches, augmented
    or not): feature extraction with augmentation trains its head on these, and fine-tuning with augmentation
    its unfrozen top, epoch after epoch.

    With `overlap`, a producer thread augments the next batch while this one goes through the frozen pass
    (ImageDataGenerator's scipy transforms and the pass's TensorFlow or OpenVINO kernels release the GIL), and
    Keras's own prefetch runs both ahead of the training step. The outputs of the batches Keras probes for
    the dataset's signature before the epoch are kept, not computed twice (`scripts/profile_fe_aug.py` times
    each part)."""
    import keras
    from concurrent.futures import ThreadPoolExecutor

    probed = getattr(batches, "PROBED", 2)

    class FeatureBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.kept, self.ahead, self.served, self.begun = {}, {}, set(), False
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="augment") if overlap else None

        def __len__(self):
            return len(batches)

        def source(self, index):
            """batches[index], from the producer thread when it was asked ahead; then asks for the next one
            (Keras may shuffle the batches' order: each is still made once an epoch)."""
            self.served.add(index)
            pending = self.ahead.pop(index, None)
            item = pending.result() if pending is not None else batches[index]
            following = index + 1
            if self.pool is not None and following < len(self) and following not in self.served \
                    and following not in self.ahead:
                self.ahead[following] = self.pool.submit(batches.__getitem__, following)
            return item

        def __getitem__(self, index):
            if index in self.kept:
                return self.kept[index]
            x, y = self.source(index)
            out = forward(x), y
            if index < probed:
                self.kept[index] = out
            return out

        def on_epoch_begin(self):
            self.begun = True
            getattr(batches, "on_epoch_begin", lambda: None)()

        def on_epoch_end(self):
            if not self.begun:  # Keras's fit resets its iterator before the first epoch: no epoch ended
                return
            for pending in self.ahead.values():  # finish before the order changes under the producer
                pending.cancel() or pending.exception()
            self.kept, self.ahead, self.served, self.begun = {}, {}, set(), False
            batches.on_epoch_end()
    return FeatureBatches()
