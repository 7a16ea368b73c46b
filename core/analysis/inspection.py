"""What a trained run gets right and wrong: its recorded splits, predictions, scores and mistakes.

A run records the images it was trained and validated on in `runs/<id>/split.json`
({"root", "classes", "splits": {split: [[path, label], ...]}}), so a run is always inspected on its
own validation and test images, even when its data folder was not split beforehand. Scores use the
same definitions as `core.analysis.evaluate.evaluate` (accuracy, mean cross-entropy, confusion matrix with
true classes as rows). Named `inspection` (not `inspect`) so it never shadows the standard library.

Public API: `INSPECT_SPLITS`, `inspectable`, `run_classes`, `available_splits`, `split_items`,
`load_model`, `predict_items`, `score`, `split_result`, `confident_mistakes`, `disagreements`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.runs import store
from core.config import RunSpec
from core.data.folders import DataError, scan

INSPECT_SPLITS = ("validation", "test")


def inspectable(runs: list[dict]) -> list[dict]:
    """The runs that have a best.keras and are not training: finished, or stopped with a saved model."""
    return [r for r in runs if r.get("status") in ("finished", "stopped")
            and (store.run_dir(r["id"]) / "best.keras").is_file()]


def _split_record(run_id: str) -> dict | None:
    try:
        record = json.loads((store.run_dir(run_id) / "split.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("splits"), dict):
        return None
    return record


def run_classes(run_id: str) -> list[str]:
    """The class names the run was trained on (index = label)."""
    run = store.get_run(run_id) or {}
    record = _split_record(run_id) or {}
    return list((run.get("info") or {}).get("classes") or record.get("classes") or [])


def _rescan(run_id: str) -> dict[str, list[tuple[str, int]]]:
    """The run's splits rebuilt from its data folder, its split fractions and its seed."""
    run = store.get_run(run_id)
    if run is None:
        raise DataError(f"There is no run {run_id}.")
    root = (run.get("info") or {}).get("data_root")
    if not root:
        raise DataError(f"Run {run_id} has not recorded its data folder (it never loaded its data).")
    spec = RunSpec.from_dict(run["spec"])
    return scan(root, spec.val_fraction, spec.test_fraction, spec.seed).splits


def _all_splits(run_id: str) -> dict[str, list]:
    record = _split_record(run_id)
    return record["splits"] if record else _rescan(run_id)


def available_splits(run_id: str) -> list[str]:
    """The run's validation and test splits that hold images, in that order."""
    splits = _all_splits(run_id)
    return [s for s in INSPECT_SPLITS if splits.get(s)]


def split_items(run_id: str, split: str) -> tuple[list[tuple[str, int]], int]:
    """([(path, label)] of the run's `split` whose files still exist, number of files gone missing)."""
    items = _all_splits(run_id).get(split) or []
    if not items or not isinstance(items, list):
        raise DataError(f"Run {run_id} has no {split} images.")
    n_classes = len(run_classes(run_id)) or None
    present = []
    for item in items:
        try:
            path, label = str(item[0]), int(item[1])
        except (TypeError, ValueError, IndexError, KeyError):
            continue  # a damaged record entry counts as missing
        if Path(path).is_file() and 0 <= label < (n_classes or label + 1):
            present.append((path, label))
    if not present:
        raise DataError(f"None of the {len(items)} {split} images of run {run_id} exist any more "
                        f"(first: {str(items[0])[:200]}): was its data folder moved or deleted?")
    return present, len(items) - len(present)


def load_model(run_id: str):
    """The run's best model (raw RGB pixels in, class probabilities out)."""
    from core.analysis.evaluate import load_model as load
    return load(run_id, "best")


def predict_items(model, paths: list[str]) -> np.ndarray:
    """Class probabilities (N, n_classes) of the images at `paths`, decoded at the model's input size."""
    from core.analysis.evaluate import predict_probs
    from core.data.pipeline import decoded_images
    images, _ = decoded_images(list(paths), int(model.input_shape[1]))
    return predict_probs(model, images)


def split_result(run_id: str, split: str, model=None, items: list[tuple[str, int]] | None = None) -> dict:
    """Everything the Inspect page shows about a run on a split: paths, labels, probabilities and scores.

    `items` lets another run's model be scored on the same images (for comparing two runs).
    """
    missing = 0
    if items is None:
        items, missing = split_items(run_id, split)
    model = model if model is not None else load_model(run_id)
    classes = run_classes(run_id)
    paths, labels = [p for p, _ in items], np.array([y for _, y in items], dtype=int)
    probs = predict_items(model, paths)
    from core.analysis.evaluate import score
    if len(classes) != probs.shape[1]:  # a run record without its class names
        classes = [f"class {i}" for i in range(probs.shape[1])]
    return {"run_id": run_id, "split": split, "classes": classes, "paths": paths, "labels": labels,
            "probs": probs, "missing": missing, **score(labels, probs, classes)}


def confident_mistakes(result: dict, n: int = 12) -> list[dict]:
    """The `n` wrong predictions the model was surest of: path, true and predicted class, probability."""
    probs, labels, classes = result["probs"], np.asarray(result["labels"]), result["classes"]
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != labels)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:n]
    return [{"path": result["paths"][i], "true": classes[labels[i]], "predicted": classes[pred[i]],
             "probability": float(probs[i, pred[i]]), "true_probability": float(probs[i, labels[i]])}
            for i in wrong]


def disagreements(a: dict, b: dict, n: int = 12) -> dict:
    """Where two runs' predictions on the same images differ: counts and the `n` surest disagreements.

    Both results must come from `split_result` on the same items (pass `items` for the second run).
    """
    if list(a["paths"]) != list(b["paths"]):
        raise ValueError("The two results are not on the same images: score the second run on the first "
                         "run's items (split_result(..., items=...)).")
    labels = np.asarray(a["labels"])
    pa, pb = a["probs"].argmax(axis=1), b["probs"].argmax(axis=1)
    ra, rb = pa == labels, pb == labels
    counts = {"images": int(len(labels)), "agree": int((pa == pb).sum()), "disagree": int((pa != pb).sum()),
              "both right": int((ra & rb).sum()), "only A right": int((ra & ~rb).sum()),
              "only B right": int((~ra & rb).sum()), "both wrong": int((~ra & ~rb).sum())}
    differ = np.flatnonzero(pa != pb)
    margin = np.abs(a["probs"][differ, pa[differ]] - b["probs"][differ, pa[differ]])
    differ = differ[np.argsort(-margin, kind="stable")][:n]
    classes = a["classes"]
    items = [{"path": a["paths"][i], "true": classes[labels[i]], "a_predicted": classes[pa[i]],
              "a_probability": float(a["probs"][i, pa[i]]), "b_predicted": classes[pb[i]],
              "b_probability": float(b["probs"][i, pb[i]]), "a_right": bool(ra[i]), "b_right": bool(rb[i])}
             for i in differ]
    return {"counts": counts, "items": items}
