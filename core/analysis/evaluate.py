"""Score a trained run on a folder of class subfolders: accuracy, loss, confusion matrix."""
from __future__ import annotations

import keras
import numpy as np

from core.runs import store
from core.data.folders import DataError, scan
from core.data.pipeline import ImageBatches, decoded_images


def load_model(run_id: str, which: str = "best") -> keras.Model:
    path = store.run_dir(run_id) / f"{which}.keras"
    if not path.is_file():
        raise FileNotFoundError(f"Run {run_id} has no {which}.keras yet ({path}): it saves its models when it "
                                f"finishes or stops; resume it to finish.")
    from core.models import networks  # noqa: F401  (registers BackbonePreprocess for safe loading)
    return keras.models.load_model(path, safe_mode=True)


def predict_probs(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Class probabilities (N, n_classes) for uint8 images."""
    out = model.predict(ImageBatches(images, np.zeros(len(images)), batch_size), verbose=0)
    out = np.asarray(out, dtype=np.float64)
    return np.concatenate([1 - out, out], axis=1) if out.shape[1] == 1 else out


def score(labels, probs, classes: list[str]) -> dict:
    """Accuracy, loss, confusion matrix (rows: true class) and per-class accuracy of predictions."""
    labels, probs = np.asarray(labels, dtype=int), np.asarray(probs, dtype=np.float64)
    pred = probs.argmax(axis=1)
    k = max(len(classes), probs.shape[1])
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (labels, pred), 1)
    per_class = []
    for i, name in enumerate(classes):
        n = int(matrix[i].sum())
        per_class.append({"class": name, "images": n, "correct": int(matrix[i, i]),
                          "accuracy": float(matrix[i, i] / n) if n else None})
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)))) if len(labels) else None
    return {"n": int(len(labels)), "accuracy": float((pred == labels).mean()) if len(labels) else None,
            "loss": loss, "confusion_matrix": matrix.tolist(), "per_class": per_class}


def evaluate(run_id: str, data_dir: str, split: str | None = None, which: str = "best") -> dict:
    run = store.get_run(run_id)
    classes = run["info"].get("classes") or []
    ds = scan(data_dir)
    if split is None:
        split = next(s for s in ("test", "validation", "train") if s in ds.splits) if ds.presplit else "all"
    items = [it for s, v in ds.splits.items() for it in v] if split == "all" else ds.splits.get(split)
    if not items:
        raise DataError(f"{data_dir} has no {split} images; splits present: {', '.join(ds.splits)}.")
    if ds.classes != classes:
        raise DataError(f"{data_dir} has classes {ds.classes} but run {run_id} was trained on {classes}: "
                        f"use a folder with the same class folders.")
    model = load_model(run_id, which)
    size = model.input_shape[1]
    images, _ = decoded_images([p for p, _ in items], size)
    labels = np.array([y for _, y in items])
    scores = score(labels, predict_probs(model, images), classes)
    return {"run_id": run_id, "data": str(ds.root), "split": split, "classes": classes, **scores}
