"""An assignment's leaderboard: each finished student run scored on the held-out images, each student's best ranked.

`score_run` scores one run's best model on its assignment's held-out images (`core.runs.assignments`) through
`core.analysis.evaluate.score_items`, the lab's one scoring path, leaving out (and counting) any image whose
content is in the run's recorded training split, and stores the score; the worker calls it when an assignment
run finishes, so the Leaderboard page only reads. `board` ranks the stored scores: each student's best run
(held-out accuracy, then lower loss, then the earlier finish), ties sharing a rank. Imports TensorFlow only to
score (`score_run`), never Streamlit.
"""
from __future__ import annotations

import os

from core.data import manifest
from core.data.folders import DataError
from core.runs import artifacts, assignments, store


def heldout_split_overlap(run_id: str, assignment: dict) -> int:
    """How many of the assignment's held-out images (by content) are in run `run_id`'s recorded training or
    validation split: 0 for every run built by `assignments.build`. DataError when the run has no split record."""
    record = manifest.read(artifacts.split_manifest(run_id))
    if record is None:
        raise DataError(f"Run {run_id} has no recorded split ({artifacts.split_manifest(run_id).name}): it never "
                        f"loaded its data, so it cannot be scored.")
    held = set(assignments.heldout_hashes(assignment))
    seen = set()
    for split in ("train", "validation"):
        found, _ = manifest.entries(record, split)
        seen |= {d for d in map(manifest.digest_of, found) if d}
    return len(held & seen)


def score_run(run_id: str, holding: int | None = None) -> dict:
    """Score run `run_id`'s best model on its assignment's held-out images and store it (`holding`: the worker's
    lease). Returns {"run_id", "assignment", "n", "accuracy", "loss", "overlap", "missing"}."""
    from core.analysis.evaluate import load_model, score_items
    run = store.get_run(run_id)
    if run is None or not run.get("assignment"):
        raise ValueError(f"Run {run_id} was not made for an assignment: only assignment runs are scored on a "
                         f"held-out split (`python -m core evaluate {run_id}` scores it on its own test split).")
    assignment = assignments.get(run["assignment"])
    record = manifest.read(artifacts.split_manifest(run_id))
    if record is None:
        raise DataError(f"Run {run_id} has no recorded split: it never loaded its data, so it cannot be scored.")
    classes = list(record["classes"])
    if classes != assignment["heldout"]["classes"]:
        raise DataError(f"Run {run_id} was trained on classes {classes}, the held-out images are of "
                        f"{assignment['heldout']['classes']}: it cannot be scored on them.")
    trained = manifest.training_digests(record)
    rows = assignment["heldout"]["files"]
    present = [row for row in rows if os.path.isfile(row[0])]
    items = [(row[0], int(row[1])) for row in present if row[3] not in trained]
    if not items:
        raise DataError(f"None of the {len(rows)} held-out images of {assignment['name']!r} can be scored (gone "
                        f"from {assignment['heldout']['root']}, or trained on): put the data folder back.")
    scored = score_items(load_model(run_id, "best"), items, classes)
    result = {"run_id": run_id, "assignment": assignment["id"], "n": scored["n"], "accuracy": scored["accuracy"],
              "loss": scored["loss"], "overlap": len(present) - len(items), "missing": len(rows) - len(present)}
    assignments.record_score(run_id, assignment["id"], result, holding)
    return result


def unscored(assignment_id: str) -> list[str]:
    """The ids of the assignment's finished runs that have no held-out score yet."""
    return [r["id"] for r in assignments.runs_with_scores(assignment_id)
            if r["status"] == "finished" and r["scored"] is None]


def board(assignment_id: str) -> dict:
    """The leaderboard, read from the store (nothing is scored here): {"assignment", "rows": [{"rank", "student",
    "run_id", "run", "accuracy", "loss", "n", "runs_scored"}], "unscored": [run ids], "runs": n}, best first."""
    assignment = assignments.get(assignment_id)
    runs = assignments.runs_with_scores(assignment["id"])
    best: dict[str, dict] = {}
    counts: dict[str, int] = {}
    for r in runs:
        if r["status"] != "finished" or r["accuracy"] is None:
            continue
        counts[r["owner"]] = counts.get(r["owner"], 0) + 1
        key = (-r["accuracy"], r["loss"] if r["loss"] is not None else float("inf"), r["finished"] or 0.0)
        if r["owner"] not in best or key < best[r["owner"]]["_key"]:
            best[r["owner"]] = {**r, "_key": key}
    ordered = sorted(best.values(), key=lambda r: r["_key"])
    rows, rank = [], 0
    for i, r in enumerate(ordered):
        if i == 0 or r["accuracy"] != ordered[i - 1]["accuracy"]:
            rank = i + 1
        rows.append({"rank": rank, "student": r["owner"], "run_id": r["id"], "run": r["name"],
                     "accuracy": r["accuracy"], "loss": r["loss"], "n": r["n"], "runs_scored": counts[r["owner"]]})
    return {"assignment": {k: assignment[k] for k in ("id", "name", "owner", "recipe", "spec")}
            | {"heldout_source": assignment["heldout"]["source"], "heldout_images": len(assignment["heldout"]["files"])},
            "rows": rows, "unscored": unscored(assignment["id"]), "runs": len(runs)}


def text_table(result: dict) -> str:
    """The leaderboard as the command line prints it."""
    a = result["assignment"]
    lines = [f"{a['name']} ({a['id']}): held-out {a['heldout_images']} images, {a['heldout_source']}",
             f"{'rank':>4}  {'student':<20}{'held-out acc':>13}{'images':>8}  run"]
    for r in result["rows"]:
        lines.append(f"{r['rank']:>4}  {r['student'][:19]:<20}{r['accuracy']:>13.4f}{r['n']:>8}  {r['run']} "
                     f"({r['run_id']})")
    if not result["rows"]:
        lines.append("  (no finished run scored yet)")
    if result["unscored"]:
        lines.append(f"{len(result['unscored'])} finished runs not scored yet")
    return "\n".join(lines)
