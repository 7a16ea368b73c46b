"""The hardware's ceiling for the bench: images/s of bare forward passes of VGG16's conv base over images already in
memory, in the engine's batches, and which of them the engine's frozen pass is set against.

`bare_forward` is the yardstick (`core.tools.engine_choice` ranks its candidates with it too); `ceilings` runs every
pass the bench quotes on a few batches to rank them; `ceiling` runs the fastest again over all the images the
engine's pass runs over, the figure the bench sets the engine against.
"""
from __future__ import annotations

import time

import numpy as np

from core.tools.bench_setup import CALIBRATION, EXTRACT_BATCH, SIZE, rate

CEILING_IMAGES = 128   # the ceiling's images: all of quick mode's 40, four full batches otherwise
CEILING_PASSES = 3


def bare_forward(forward, images: np.ndarray, passes: int = CEILING_PASSES) -> float:
    """The ceiling: images/s of the bare forward pass over `images` already in memory, in the engine's batches.

    One batch of every shape is run untimed (a new shape builds its kernels), then the best of `passes` timed
    passes is kept: a transient slowdown (another process, a shared host) can only make a pass slower, so the
    best pass estimates what the hardware can do, and the engine, which does this work plus decoding and
    caching, stays at or below it."""
    batches = [np.asarray(images[s:s + EXTRACT_BATCH], dtype="float32") for s in range(0, len(images), EXTRACT_BATCH)]
    for batch in {len(b): b for b in batches}.values():
        forward(batch)
    best = float("inf")
    for _ in range(passes):
        t0 = time.perf_counter()
        for batch in batches:
            forward(batch)
        best = min(best, time.perf_counter() - t0)
    return rate(sum(len(b) for b in batches), best)


def ceilings(paths: list[str], weights: str, engine: bool = True) -> tuple[dict, dict]:
    """images/s of every bare forward pass the bench quotes, on the same images in memory, in this run: TensorFlow
    float32, TensorFlow bfloat16 where native, the inference engine's float32, bfloat16 (where native) and int8
    (where installed); and each pass, to run it again."""
    import keras
    from core.data.pipeline import decoded_images
    from core.models import features, inference, precision
    from core.models.networks import conv_base
    images, key = decoded_images(paths[:CEILING_IMAGES], SIZE)
    out, passes = {}, {}
    policies = ["float32"] + (["mixed_bfloat16"] if precision.detect()[0] == "mixed_bfloat16" else [])
    for policy in policies:
        keras.mixed_precision.set_global_policy(policy)
        model = features.extractor(conv_base("vgg16", weights, SIZE), "caffe")
        name = f"tensorflow {policy.replace('mixed_', '')}"
        passes[name] = model.predict_on_batch
        out[name] = bare_forward(passes[name], images)
    keras.mixed_precision.set_global_policy("float32")
    if engine and inference.engine_available():
        model = features.extractor(conv_base("vgg16", weights, SIZE), "caffe")
        ov_model = inference.to_openvino(model)
        passes["openvino float32"] = inference.compile_openvino(ov_model, "float32")
        if len(policies) > 1:
            passes["openvino bfloat16"] = inference.compile_openvino(ov_model, "bfloat16")
        passes["openvino int8"] = inference.frozen_pass(model, f"bench-ceiling-{key}", "int8", images[:CALIBRATION])
        for name in ("openvino float32", "openvino bfloat16", "openvino int8"):
            if name in passes:
                out[name] = bare_forward(passes[name], images)
    return out, passes


def ceiling(paths: list[str], weights: str, log=print) -> tuple[dict, str, float]:
    """Every bare pass ranked on the first CEILING_IMAGES images, then the fastest again over all of `paths`:
    returns each pass's images/s, the fastest's name, and its images/s over all the images (the ceiling)."""
    from core.data.pipeline import decoded_images
    ceil, passes = ceilings(paths, weights)
    best_name = max(ceil, key=ceil.get)
    log("bare forward passes (best of %d over %d images in memory): " % (CEILING_PASSES, min(len(paths),
        CEILING_IMAGES)) + ", ".join(f"{k} {v} img/s" for k, v in ceil.items()))
    # the ceiling: the fastest of them again over all the images the engine's pass runs over (the same
    # memory traffic; a pass over a few batches that stay in the CPU's caches runs faster than any real one)
    sustained = bare_forward(passes[best_name], decoded_images(paths, SIZE)[0], passes=2)
    del passes
    log(f"{best_name} over all {len(paths)} images (best of 2): {sustained} img/s")
    return ceil, best_name, sustained
