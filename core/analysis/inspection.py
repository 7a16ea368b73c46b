"""What a trained run gets right and wrong: its recorded splits, predictions, scores and mistakes.

A run records the images of each split at its first start in `runs/<id>/split.json`
(`core.data.manifest`: absolute path, label, size and content hash of every image), so a run is always
inspected on its own validation and test images, even when its data folder was not split beforehand
or has changed since. An image whose content is in the run's training split is never scored as if it
were unseen: it is left out and counted (`overlap`), on the run's own splits (duplicate photos), on
another folder (`unseen_by`) and when a second run is compared on the first run's images (`compare`).
Scores come from `core.analysis.evaluate.score_items`, the one scoring path `evaluate` uses too.
Named `inspection` (not `inspect`) so it never shadows the standard library.

Public API: `INSPECT_SPLITS`, `inspectable`, `run_classes`, `available_splits`, `split_items`,
`training_digests`, `unseen_by`, `scorable_items`, `load_model`, `predict_items`, `split_result`,
`compare`, `restrict`, `confident_mistakes`, `disagreements`.
"""
from __future__ import annotations

import numpy as np

from core.runs import artifacts, store
from core.config import RunSpec
from core.data import manifest
from core.data.folders import DataError, scan

INSPECT_SPLITS = ("validation", "test")


def inspectable(runs: list[dict]) -> list[dict]:
    """The runs that have a best model and are not training: finished, or stopped with a saved model."""
    return [r for r in runs if r.get("status") in ("finished", "stopped") and artifacts.model_if_saved(r["id"])]


def _split_record(run_id: str) -> dict | None:
    return manifest.read(artifacts.split_manifest(run_id))


def run_classes(run_id: str) -> list[str]:
    """The class names the run was trained on (index = label)."""
    run = store.get_run(run_id) or {}
    record = _split_record(run_id) or {}
    return list((run.get("info") or {}).get("classes") or record.get("classes") or [])


def _rescan(run: dict) -> dict:
    """For a run older than split records: its splits rebuilt from its data folder, fractions and seed."""
    root = (run.get("info") or {}).get("data_root")
    if not root:
        raise DataError(f"Run {run['id']} has not recorded its data folder (it never loaded its data).")
    spec = RunSpec.from_dict(run["spec"])
    ds = scan(root, spec.val_fraction, spec.test_fraction, spec.seed)
    return {"root": str(ds.root), "classes": ds.classes, "splits": {s: [[p, y] for p, y in v] for s, v in
                                                                    ds.splits.items()}}


def _record(run_id: str) -> dict:
    """The run's split record; rebuilt from its folder only for runs made before the lab recorded splits."""
    record = _split_record(run_id)
    if record is not None:
        return record
    run = store.get_run(run_id)
    if run is None:
        raise DataError(f"There is no run {run_id}.")
    if (run.get("info") or {}).get("split_record"):
        raise DataError(f"Run {run_id}'s recorded split {artifacts.split_manifest(run_id)} is missing or damaged: "
                        f"restore it from a backup (rebuilding it from the folder could mix its training images "
                        f"into the scores).")
    return _rescan(run)


def available_splits(run_id: str) -> list[str]:
    """The run's validation and test splits that hold images, in that order."""
    splits = _record(run_id)["splits"]
    return [s for s in INSPECT_SPLITS if splits.get(s)]


def _present(run_id: str, record: dict, split: str) -> tuple[list[manifest.Entry], int]:
    """(the entries of `split` whose files are still as recorded, how many are not: gone, changed, damaged)."""
    found, damaged = manifest.entries(record, split)
    if not found and not damaged:
        raise DataError(f"Run {run_id} has no {split} images.")
    n_classes = len(record.get("classes") or []) or len(run_classes(run_id)) or None
    present = [e for e in found if e.label < (n_classes or e.label + 1) and e.state() == "present"]
    if not present:
        first = (record["splits"].get(split) or ["?"])[0]
        raise DataError(f"None of the {len(found) + damaged} {split} images of run {run_id} exist any more "
                        f"(first: {str(first)[:200]}): was its data folder moved or deleted?")
    return present, len(found) + damaged - len(present)


def split_items(run_id: str, split: str) -> tuple[list[tuple[str, int]], int]:
    """([(path, label)] of the run's `split` whose files are still there as recorded, number left out)."""
    present, missing = _present(run_id, _record(run_id), split)
    return [(e.path, e.label) for e in present], missing


def training_digests(run_id: str) -> set[str]:
    """The content hashes of the images run `run_id` trained on."""
    return manifest.training_digests(_record(run_id))


def unseen_by(run_id: str, items: list[tuple[str, int]], digests: list[str | None] | None = None
              ) -> tuple[list[tuple[str, int]], int]:
    """(the `items` whose content run `run_id` did not train on, how many were left out because it did).

    `digests` are the items' content hashes when known; otherwise the files are read."""
    trained = training_digests(run_id)
    digests = digests or [None] * len(items)
    kept = [item for item, d in zip(items, digests) if (d or _digest(item[0])) not in trained]
    return kept, len(items) - len(kept)


def _digest(path: str) -> str | None:
    try:
        return manifest.file_digest(path)
    except OSError:
        return None


def scorable_items(run_id: str, split: str) -> tuple[list[tuple[str, int]], int, int]:
    """([(path, label)] of the run's own `split` to score, number gone missing, number left out because the
    same image (by content) is also in the run's training split)."""
    record = _record(run_id)
    present, missing = _present(run_id, record, split)
    trained = manifest.training_digests(record)
    kept = [e for e in present if manifest.digest_of(e) not in trained]
    if not kept:
        raise DataError(f"All {len(present)} {split} images of run {run_id} are also in its training split: "
                        f"score it on another split or folder.")
    return [(e.path, e.label) for e in kept], missing, len(present) - len(kept)


def load_model(run_id: str):
    """The run's best model (raw RGB pixels in, class probabilities out)."""
    from core.analysis.evaluate import load_model as load
    return load(run_id, "best")


def predict_items(model, paths: list[str]) -> np.ndarray:
    """Class probabilities (N, n_classes) of the images at `paths`, decoded at the model's input size."""
    from core.analysis.evaluate import predict_paths
    return predict_paths(model, paths)


def split_result(run_id: str, split: str, model=None, items: list[tuple[str, int]] | None = None) -> dict:
    """Everything the Inspect page shows about a run on a split: paths, labels, probabilities and scores.

    Without `items`, the run's own recorded `split`, less the images gone missing (`missing`) and those
    also in its training split (`overlap`). `items` scores the run on given images instead (see `compare`).
    """
    from core.analysis.evaluate import score_items
    missing = overlap = 0
    if items is None:
        items, missing, overlap = scorable_items(run_id, split)
    model = model if model is not None else load_model(run_id)
    return {"run_id": run_id, "split": split, "missing": missing, "overlap": overlap,
            **score_items(model, items, run_classes(run_id))}


def restrict(result: dict, keep: list[int]) -> dict:
    """`result` (from `split_result`) on the images at positions `keep` only, scores recomputed."""
    from core.analysis.evaluate import score
    labels, probs = np.asarray(result["labels"])[keep], np.asarray(result["probs"])[keep]
    return {**result, "paths": [result["paths"][i] for i in keep], "labels": labels, "probs": probs,
            **score(labels, probs, result["classes"])}


def compare(a: dict, other_id: str, model=None) -> dict:
    """Run `other_id` scored on the images of result `a`, less those it trained on (by content).

    Returns {"a": `a` on the images both runs can be judged on, "b": the other run's result on them,
    "overlap": how many of `a`'s images were left out}; DataError when none is left."""
    items = list(zip(a["paths"], np.asarray(a["labels"]).tolist()))
    kept, overlap = unseen_by(other_id, items)
    if not kept:
        raise DataError(f"All {len(items)} {a['split']} images of run {a['run_id']} are in run {other_id}'s "
                        f"training split: pick another second run, or the other split.")
    keep_paths = {p for p, _ in kept}
    a_kept = a if not overlap else restrict(a, [i for i, p in enumerate(a["paths"]) if p in keep_paths])
    b = split_result(other_id, a["split"], model=model, items=kept)
    return {"a": a_kept, "b": b, "overlap": overlap}


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
