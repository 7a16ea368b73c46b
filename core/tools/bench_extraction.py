"""The bench's feature-extraction figures: the book's `extract_features` (ImageDataGenerator batches through
`conv_base.predict`, float32) against the engine's extraction, cold and repeated, and the engine's frozen pass alone
as a run of the lecture's size gets it (the figure set against the ceiling in `core.tools.bench_ceiling`)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from core.tools.bench_setup import BATCH, CALIBRATION, EXTRACT_BATCH, LECTURE_IMAGES, SIZE, rate


def reference_extraction(folder: Path, weights: str, n: int) -> dict:
    """The book's extract_features: ImageDataGenerator batches through conv_base.predict, float32."""
    import keras
    from tensorflow.keras.preprocessing.image import ImageDataGenerator
    from core.models.networks import conv_base
    keras.mixed_precision.set_global_policy("float32")
    base = conv_base("vgg16", weights, SIZE)
    gen = ImageDataGenerator(rescale=1 / 255).flow_from_directory(
        folder, target_size=(SIZE, SIZE), batch_size=BATCH, class_mode="binary", shuffle=False)
    base.predict(next(gen)[0], verbose=0)  # build and warm up, as any second call would be
    gen.reset()
    t0, done = time.perf_counter(), 0
    for inputs, _ in gen:
        base.predict(inputs, verbose=0)
        done += len(inputs)
        if done >= n:
            break
    return {"images_per_s": rate(done, time.perf_counter() - t0), "images": done}


def engine_extraction(paths: list[str], weights: str, policy: str) -> dict:
    """The engine's extraction, cold (decoding into the image cache included) in the pass a run of this many
    images gets, then its frozen pass alone as a run of the lecture's size gets it (over the decoded images,
    through `features.extract`; its one-off conversion timed apart): the figure set against the ceiling."""
    import keras
    from core.data.pipeline import decoded_images
    from core.models import features
    from core.models.networks import conv_base
    from core.models import inference, precision
    keras.mixed_precision.set_global_policy(policy)
    model = features.extractor(conv_base("vgg16", weights, SIZE), "caffe")
    # build and warm up with one batch of its own size, as the reference was with one of its batches of 20
    model.predict_on_batch(np.zeros((EXTRACT_BATCH, SIZE, SIZE, 3), "float32"))
    t0 = time.perf_counter()
    images, key = decoded_images(paths, SIZE)
    decoded = time.perf_counter() - t0
    forward = inference.frozen_pass(model, f"bench-{key}", precision.frozen_pass("auto", len(paths)),
                                    images[:CALIBRATION])
    feats = features.extract(model, images, f"bench-{key}-{policy}", batch_size=EXTRACT_BATCH, forward=forward)
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    images, key = decoded_images(paths, SIZE)
    features.extract(model, images, f"bench-{key}-{policy}", batch_size=EXTRACT_BATCH)
    repeat = time.perf_counter() - t1
    t2 = time.perf_counter()
    lecture = inference.frozen_pass(model, f"bench-lecture-{key}", precision.frozen_pass("auto", LECTURE_IMAGES),
                                    images[:CALIBRATION])
    setup = time.perf_counter() - t2
    for shape in {len(images[s:s + EXTRACT_BATCH]) for s in range(0, len(images), EXTRACT_BATCH)}:
        lecture(images[:shape])  # a new batch shape builds its kernels: warmed once, as the ceiling's are
    pass_s = float("inf")
    for attempt in range(2):  # the fastest of two, as the ceiling is: a transient slowdown only lengthens a pass
        t3 = time.perf_counter()
        features.extract(model, images, f"bench-lecture-{key}-pass{attempt}", batch_size=EXTRACT_BATCH,
                         forward=lecture)
        pass_s = min(pass_s, time.perf_counter() - t3)
    return {"images_per_s": rate(len(paths), first), "decode_s": round(decoded, 2), "first_s": round(first, 2),
            "repeat_s": round(repeat, 4), "feature_shape": list(feats.shape[1:]), "pass": forward.describe(),
            "lecture_pass": lecture.describe(), "lecture_pass_images_per_s": rate(len(paths), pass_s),
            "lecture_pass_setup_s": round(setup, 2)}
