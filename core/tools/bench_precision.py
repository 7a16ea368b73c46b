"""The bench's accuracy figure: what reduced precision costs, as the validation accuracy of the same
feature-extraction head (MobileNetV2 where its weights are in ../shared, VGG16 otherwise) trained on features
computed in float32 and in the precision a run of this size gets."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.tools.bench_setup import BATCH, CALIBRATION, SIZE


def precision_cost(root: Path, n_train: int, n_val: int, quick: bool) -> dict:
    """Validation accuracy of the same feature-extraction head in float32 and in reduced precision."""
    import keras
    from core.models import features, networks, precision
    from core.data.folders import scan
    from core.data.pipeline import decoded_images
    weights = root.parent.parent / "weights" / "mobilenet_v2_imagenet_notop.weights.h5"
    backbone, pre, pool, size = ("mobilenet_v2", "tf", "gap", 160) if weights.is_file() else \
        ("vgg16", "caffe", "flatten", SIZE)
    weights = str(weights) if weights.is_file() else "none"
    ds = scan(root)
    split = {s: ds.splits[s][:: max(1, len(ds.splits[s]) // n)] for s, n in (("train", n_train), ("validation", n_val))}
    out = {"backbone": backbone, "weights": Path(weights).name}
    from core.models import inference
    workload = sum(len(items) for items in split.values())  # the images a run of this size passes
    choices = {"float32": ("float32", "float32"),
               "auto": (precision.resolve("auto"), precision.frozen_pass("auto", workload))}
    for name, (policy, pass_precision) in choices.items():
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(0)
        model = features.extractor(networks.conv_base(backbone, weights, size), pre)
        data, forward = {}, None
        for s, items in split.items():
            images, key = decoded_images([p for p, _ in items], size)
            if forward is None:
                forward = inference.frozen_pass(model, f"bench-prec-{key}-{backbone}-{name}", pass_precision,
                                                images[:CALIBRATION])
            data[s] = (features.extract(model, images, f"bench-prec-{key}-{backbone}-{name}", forward=forward),
                       np.array([y for _, y in items]))
        out[f"{name}_pass"] = forward.describe()
        head = networks.head(data["train"][0].shape[1:], 2, pool, 0.5)
        networks.compile_model(head, 2e-5 if not quick else 1e-3, 2)
        hist = head.fit(*data["train"], validation_data=data["validation"], epochs=5 if quick else 30,
                        batch_size=BATCH, verbose=0)
        out[name] = round(float(max(hist.history["val_accuracy"])), 4)
    out["cost_points"] = round(100 * (out["float32"] - out["auto"]), 1)
    return out
