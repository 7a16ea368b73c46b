"""Score a trained run honestly: accuracy, loss, confusion matrix, on images it did not train on.

`evaluate(run)` scores the run's own recorded test split (else validation) from `runs/<id>/split.json`;
`evaluate(run, data_dir)` scores another folder's images, leaving out every image whose content is in
the run's training split and counting them (`overlap_with_training`). `score_items` is the one scoring
path, shared with the Inspect page (`core.analysis.inspection.split_result`).
"""
from __future__ import annotations

import keras
import numpy as np

from core.runs import artifacts, store
from core.data.folders import DataError, scan
from core.data.pipeline import ImageBatches, decoded_images


def load_model(run_id: str, which: str = "best") -> keras.Model:
    path = artifacts.model(run_id, which)
    if not path.is_file():
        raise FileNotFoundError(f"Run {run_id} has no {path.name} yet ({path}): it saves its models when it "
                                f"finishes or stops; resume it to finish.")
    from core.models import networks  # noqa: F401  (registers BackbonePreprocess for safe loading)
    return keras.models.load_model(path, safe_mode=True)


def predict_probs(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Class probabilities (N, n_classes) for uint8 images.

    Kept on TensorFlow in the saved model's own policy on purpose, not on the inference engine (issue 12):
    the scores must be the ones the run recorded while it trained (a run's validation accuracy and loss are
    reproduced to 1e-6 by `evaluate`, and the Inspect page sets them side by side), which an int8 pass would
    not give; and evaluation is one pass over a split, not one an epoch. A model trained in bfloat16 is
    scored in bfloat16, the speed the host allows."""
    out = model.predict(ImageBatches(images, np.zeros(len(images)), batch_size), verbose=0)
    out = np.asarray(out, dtype=np.float64)
    return np.concatenate([1 - out, out], axis=1) if out.shape[1] == 1 else out


def predict_paths(model: keras.Model, paths: list[str]) -> np.ndarray:
    """Class probabilities (N, n_classes) of the image files at `paths`, decoded at the model's input size."""
    images, _ = decoded_images(list(paths), int(model.input_shape[1]))
    return predict_probs(model, images)


def score(labels, probs, classes: list[str]) -> dict:
    """Accuracy, loss, confusion matrix (rows: true class) and per-class recall (the share of the class's images
    predicted as it) and precision (the share of the images predicted as the class that are of it)."""
    labels, probs = np.asarray(labels, dtype=int), np.asarray(probs, dtype=np.float64)
    pred = probs.argmax(axis=1)
    k = max(len(classes), probs.shape[1])
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (labels, pred), 1)
    per_class = []
    for i, name in enumerate(classes):
        n = int(matrix[i].sum())
        predicted = int(matrix[:, i].sum())
        per_class.append({"class": name, "images": n, "correct": int(matrix[i, i]),
                          "recall": float(matrix[i, i] / n) if n else None,
                          "precision": float(matrix[i, i] / predicted) if predicted else None})
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)))) if len(labels) else None
    return {"n": int(len(labels)), "accuracy": float((pred == labels).mean()) if len(labels) else None,
            "loss": loss, "confusion_matrix": matrix.tolist(), "per_class": per_class}


def score_items(model: keras.Model, items: list[tuple[str, int]], classes: list[str]) -> dict:
    """`model`'s predictions and scores on the images `items` ([(path, label)]): classes, paths, labels,
    probs, n, accuracy, loss, confusion_matrix, per_class."""
    paths, labels = [p for p, _ in items], np.array([y for _, y in items], dtype=int)
    probs = predict_paths(model, paths)
    if len(classes) != probs.shape[1]:  # a run record without its class names
        classes = [f"class {i}" for i in range(probs.shape[1])]
    return {"classes": list(classes), "paths": paths, "labels": labels, "probs": probs,
            **score(labels, probs, classes)}


def _folder_items(run_id: str, data_dir: str, split: str | None, classes: list[str]):
    """(split name, [(path, label)]) of the folder `data_dir`: `split` or its test (else validation, else
    train) split; "all" for a folder that is not split."""
    ds = scan(data_dir)
    if split is None:
        split = next(s for s in ("test", "validation", "train") if s in ds.splits) if ds.presplit else "all"
    items = [it for v in ds.splits.values() for it in v] if split == "all" else ds.splits.get(split)
    if not items:
        raise DataError(f"{data_dir} has no {split} images; splits present: {', '.join(ds.splits)}.")
    if ds.classes != classes:
        raise DataError(f"{data_dir} has classes {ds.classes} but run {run_id} was trained on {classes}: "
                        f"use a folder with the same class folders.")
    return split, str(ds.root), items


def evaluate(run_id: str, data_dir: str | None = None, split: str | None = None, which: str = "best") -> dict:
    """Scores of run `run_id`'s `which` model on images it did not train on.

    Without `data_dir`: the run's own recorded `split` (default test, else validation). With it: that
    folder's `split` (default test, else validation, else train; every image of an unsplit folder).
    Either way an image whose content is in the run's training split is left out and counted in
    `overlap_with_training`; `missing` counts recorded images no longer there."""
    from core.analysis import inspection
    run = store.get_run(run_id)
    if run is None:
        raise DataError(f"There is no run {run_id}: `python -m core runs` lists them.")
    classes = inspection.run_classes(run_id)
    missing = 0
    if data_dir is None:
        splits = inspection.available_splits(run_id)
        split = split or ("test" if "test" in splits else "validation")
        if split not in inspection.INSPECT_SPLITS:
            raise ValueError(f"A run is evaluated on images it did not train on: --split must be "
                             f"{' or '.join(inspection.INSPECT_SPLITS)} (got {split!r}), or give --data DIR.")
        items, missing, overlap = inspection.scorable_items(run_id, split)
        data = (run.get("info") or {}).get("data_root")
    else:
        split, data, items = _folder_items(run_id, data_dir, split, classes)
        items, overlap = inspection.unseen_by(run_id, items)
        if not items:
            raise DataError(f"All {overlap} {split} images of {data_dir} are in run {run_id}'s training split: "
                            f"evaluate the run on its own test split (without --data), or on a folder of other "
                            f"images.")
    scored = score_items(load_model(run_id, which), items, classes)
    return {"run_id": run_id, "data": data, "split": split, "own_split": data_dir is None,
            "classes": scored["classes"], "overlap_with_training": overlap, "missing": missing,
            **{k: scored[k] for k in ("n", "accuracy", "loss", "confusion_matrix", "per_class")}}
