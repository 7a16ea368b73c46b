"""Assignments: run settings a teacher fixes for a class, with a held-out test split no student run trains on.

A teacher (`core.runs.access.teachers`) saves an assignment: a name and the RunSpec values every student run of
it uses (recipe, data folder, augmentation, a budget such as epochs and image size), checked by
`core.runs.specs.build_spec` and stored as a dict of RunSpec values (no table of parameters of its own). When it
is saved, a held-out set of the dataset's images is chosen and recorded with each file's path, label, size and
sha1 (the rows of `core.data.manifest`): the folder's test/ images when it has them, else a seeded, stratified
fraction of its images. A student run of the assignment (`build`, or `submit`) takes the teacher's values, its
own for the rest, and the held-out hashes in its `exclude` list, so the worker leaves those images out of every
split it records (split.json's "excluded"); `core.runs.runner.submit(spec, assignment=id)` refuses a spec that
changes a fixed value or does not leave the held-out images out. The worker scores a finished assignment run
on the held-out images (`core.analysis.leaderboard.score_run`) and stores the score here (`record_score`).

Stored in the run store (tables `assignments` and `heldout_scores`, SQLite or PostgreSQL alike).
Imports neither TensorFlow nor Streamlit.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from core.runs import access, store

HELDOUT_FRACTION = 0.1   # of a folder without test/ images: the share held out (per class, seeded)
NOT_FIXED = ("name", "exclude")  # RunSpec fields an assignment never fixes (a student's own name, own exclusions)
PARAM = "assignment"     # the Train page's query parameter: Train?assignment=<id>


def link(assignment_id: str) -> str:
    """The relative address of the Train page filled in with the assignment: "Train?assignment=<id>"."""
    return f"Train?{PARAM}={assignment_id}"


# -- the held-out split ------------------------------------------------------------------------------------------------

def choose_heldout(root: str, fraction: float = HELDOUT_FRACTION, seed: int = 0) -> dict:
    """The held-out images of the data folder `root`: {"root", "classes", "source", "files": [[path, label, size,
    sha1], ...]}. A folder with test/ images holds those out; any other folder `fraction` of each class's images
    (at least one, leaving two), chosen reproducibly from `seed`."""
    import os

    from core.data import manifest
    from core.data.folders import scan, stratified_split
    if not 0 < fraction < 0.5:
        raise ValueError(f"The held-out fraction must be between 0 and 0.5 (got {fraction:g}): e.g. 0.1 holds out a "
                         f"tenth of each class's images.")
    ds = scan(root)
    if ds.presplit and ds.splits.get("test"):
        items, source = ds.splits["test"], "the folder's test/ images"
    else:
        by_class: dict[int, list[str]] = {}
        for split_items in ds.splits.values():
            for path, label in split_items:
                by_class.setdefault(label, []).append(path)
        for label, paths in sorted(by_class.items()):
            if len(paths) < 3:
                raise ValueError(f"Class {ds.classes[label]} of {root} has only {len(paths)} images: a held-out "
                                 f"split needs at least 3 per class; add images or give a folder with test/.")
        # the folders' own stratified split: each class's share (at least one; under half, so two stay) held out
        items = stratified_split(by_class, fraction, 0.0, f"heldout:{seed}")["validation"]
        source = f"{fraction:.0%} of each class's images (seed {seed})"
    files = [[manifest.absolute(p), int(y), os.stat(p).st_size, manifest.file_digest(p)] for p, y in items]
    return {"root": manifest.absolute(ds.root), "classes": list(ds.classes), "source": source, "files": files}


def heldout_hashes(assignment: dict) -> list[str]:
    """The sorted content hashes of the assignment's held-out images."""
    return sorted({row[3] for row in assignment["heldout"]["files"]})


# -- saving, reading, deleting -----------------------------------------------------------------------------------------

def fixed_values(spec, given: dict) -> dict:
    """The RunSpec values an assignment fixes: those `given` (not None), as the checked `spec` holds them (paths
    absolute), the augmentation as its preset name when it is one; the data folder always (the demo data's path
    when none was given)."""
    from core.data.augment_presets import PRESETS
    from core.data.demo import demo_dataset_path
    stored = spec.to_dict()
    fixed = {k: stored[k] for k, v in given.items() if v is not None and k not in NOT_FIXED and k != "recipe"}
    if "augment" in fixed:
        name = next((p for p, cfg in PRESETS.items() if cfg.to_dict() == fixed["augment"]), None)
        fixed["augment"] = name or fixed["augment"]
    fixed["data"] = spec.data or str(demo_dataset_path(store.home()))
    return fixed


def create(name: str, recipe: str, values: dict, user: str | None = None, heldout_fraction: float = HELDOUT_FRACTION,
           heldout_seed: int = 0, confine: bool = False) -> dict:
    """Save an assignment (teachers only, PermissionError otherwise): `values` are the RunSpec values every
    student run uses (None: not fixed), checked by `build_spec`; the held-out split is chosen now. Returns it."""
    from core.runs.specs import build_spec
    access.require_teacher("create an assignment", user)
    name = (name or "").strip()
    if not name:
        raise ValueError("An assignment needs a name (e.g. 'Week 3: fine-tuning'): give one.")
    spec = build_spec(recipe, values, confine=confine)
    fixed = fixed_values(spec, values)
    heldout = choose_heldout(fixed["data"], heldout_fraction, heldout_seed)
    row = {"id": "a" + uuid.uuid4().hex[:7], "name": name, "owner": access.acting(user), "created": time.time(),
           "recipe": recipe, "spec": fixed, "heldout": heldout}
    with store.connect() as c:
        c.execute("INSERT INTO assignments (id, name, owner, created, recipe, spec, heldout) VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (row["id"], name, row["owner"], row["created"], recipe, json.dumps(fixed), json.dumps(heldout)))
    return row


def _row(row) -> dict:
    d = dict(zip(row.keys(), row))
    d["spec"], d["heldout"] = json.loads(d["spec"]), json.loads(d["heldout"])
    return d


def list_all() -> list[dict]:
    """Every assignment, oldest first (with its held-out record)."""
    with store.connect() as c:
        return [_row(r) for r in c.execute("SELECT * FROM assignments ORDER BY created")]


def get(assignment_id: str) -> dict:
    """The assignment `assignment_id` (its id, a unique id prefix, or its name); ValueError if none or several."""
    key = (assignment_id or "").strip()
    with store.connect() as c:
        rows = [_row(r) for r in c.execute("SELECT * FROM assignments WHERE id = ? OR id LIKE ? OR name = ?",
                                            (key, key + "%", key))] if key else []
    exact = [r for r in rows if r["id"] == key]
    if exact or len(rows) == 1:
        return (exact or rows)[0]
    raise ValueError(f"No assignment matches {assignment_id!r}: `python -m core assignment list` lists them."
                     if not rows else f"{len(rows)} assignments match {assignment_id!r}: give its id.")


def still_open(assignment_id: str | None) -> str | None:
    """`assignment_id` if that assignment still exists, else None (a rerun of a run whose assignment was deleted
    is an ordinary run)."""
    if not assignment_id:
        return None
    with store.connect() as c:
        found = c.execute("SELECT id FROM assignments WHERE id = ?", (assignment_id,)).fetchone()
    return found[0] if found else None


def delete(assignment_id: str, user: str | None = None) -> None:
    """Remove an assignment and its scores (teachers only); its runs stay, with their recorded splits."""
    access.require_teacher("delete an assignment", user)
    found = get(assignment_id)
    with store.connect() as c:
        c.execute("DELETE FROM heldout_scores WHERE assignment = ?", (found["id"],))
        c.execute("DELETE FROM assignments WHERE id = ?", (found["id"],))


def describe(assignment: dict) -> str:
    """One line of what the assignment fixes: "fine_tune · epochs 5 · image_size 96 · augment lecture · data ..."."""
    spec = assignment["spec"]
    parts = [assignment["recipe"]] + [f"{k} {v if not isinstance(v, dict) else 'custom'}" for k, v in spec.items()
                                      if k != "data"]
    return " · ".join(parts) + f" · data {Path(spec['data']).name}"


# -- student runs ------------------------------------------------------------------------------------------------------

def _same(key: str, a, b) -> bool:
    """True if two values of RunSpec field `key` are the same (a preset name and its settings count as equal)."""
    if key == "augment":
        from core.data.augment_config import AugmentConfig
        from core.data.augment_presets import get_preset
        as_dict = lambda v: get_preset(v).to_dict() if isinstance(v, str) else AugmentConfig.from_dict(v).to_dict()  # noqa
        try:
            return as_dict(a) == as_dict(b)
        except (ValueError, TypeError, KeyError):
            return False
    if key in ("data", "weights") and isinstance(a, str) and isinstance(b, str):
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve() or a == b
    return a == b


def build(assignment: dict, values: dict | None = None, confine: bool = False, strict: bool = True):
    """The checked RunSpec of a student run of `assignment`: the student's `values` with the assignment's fixed
    values and recipe on top, and the held-out images added to its `exclude` list. ValueError (one sentence) if
    a value the student gave differs from a fixed one; `strict=False` (a form whose fixed fields show the
    assignment's values) lets the fixed values replace the student's silently."""
    from core.runs.specs import build_spec
    values = {k: v for k, v in (values or {}).items() if v is not None and (strict or k not in assignment["spec"])}
    recipe = values.pop("recipe", None) or assignment["recipe"]
    if recipe != assignment["recipe"] and strict:
        raise ValueError(f"The assignment {assignment['name']!r} fixes the recipe {assignment['recipe']}, not "
                         f"{recipe}: leave --recipe out, or set it to {assignment['recipe']}.")
    recipe = assignment["recipe"]
    for key, fixed in assignment["spec"].items():
        if key in values and not _same(key, values[key], fixed):
            raise ValueError(f"{key} is fixed at {fixed!r} by the assignment {assignment['name']!r} (got "
                             f"{values[key]!r}): leave it out, or set it to the assignment's value.")
    exclude = sorted(set(values.get("exclude") or []) | set(heldout_hashes(assignment)))
    name = values.get("name") or assignment["name"]
    return build_spec(recipe, {**values, **assignment["spec"], "exclude": exclude, "name": name}, confine=confine)


def check_run_spec(assignment: dict, spec) -> None:
    """ValueError unless `spec` (a RunSpec) keeps every value the assignment fixes and leaves every held-out image
    out: what `core.runs.runner.submit` checks before it queues an assignment run."""
    stored = spec.to_dict()
    if spec.recipe != assignment["recipe"]:
        raise ValueError(f"The assignment {assignment['name']!r} fixes the recipe {assignment['recipe']}, not "
                         f"{spec.recipe}: build the run with core.runs.assignments.build.")
    for key, fixed in assignment["spec"].items():
        if key == "data":
            if not _same(key, spec.data or "", fixed):
                raise ValueError(f"The assignment {assignment['name']!r} trains on {fixed}, not {spec.data}: build "
                                 f"the run with core.runs.assignments.build.")
        elif not _same(key, stored[key], fixed):
            raise ValueError(f"{key} is fixed at {fixed!r} by the assignment {assignment['name']!r} (the run has "
                             f"{stored[key]!r}): build the run with core.runs.assignments.build.")
    missing = set(heldout_hashes(assignment)) - set(spec.exclude)
    if missing:
        raise ValueError(f"The run would train on {len(missing)} held-out images of the assignment "
                         f"{assignment['name']!r}: build it with core.runs.assignments.build, which leaves them out.")


def submit(assignment_id: str, values: dict | None = None, user: str | None = None, confine: bool = False,
           strict: bool = True) -> str:
    """Queue a run of `user` (default: the acting user) for the assignment (`build`'s rules); returns the run id."""
    from core.runs import runner
    assignment = get(assignment_id)
    return runner.submit(build(assignment, values, confine, strict), user=user, assignment=assignment["id"])


# -- held-out scores ---------------------------------------------------------------------------------------------------

def record_score(run_id: str, assignment_id: str, result: dict, holding: int | None = None) -> None:
    """Store run `run_id`'s held-out score (`result`: accuracy, loss, n, overlap, missing), replacing an earlier one;
    a worker passes its lease (`holding`) and writes nothing once it has lost it."""
    with store.connect(immediate=holding is not None) as c:
        store.check_lease(c, run_id, holding)
        c.execute("INSERT INTO heldout_scores (run_id, assignment, accuracy, loss, n, overlap, missing, scored) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET assignment = excluded.assignment, "
                  "accuracy = excluded.accuracy, loss = excluded.loss, n = excluded.n, overlap = excluded.overlap, "
                  "missing = excluded.missing, scored = excluded.scored",
                  (run_id, assignment_id, result.get("accuracy"), result.get("loss"), int(result["n"]),
                   int(result.get("overlap", 0)), int(result.get("missing", 0)), time.time()))


def runs_with_scores(assignment_id: str) -> list[dict]:
    """The assignment's runs (every status), each with its held-out score columns (None when not scored)."""
    with store.connect() as c:
        rows = c.execute("SELECT r.id, r.name, r.owner, r.status, r.finished, r.epochs_total, s.accuracy, s.loss, "
                         "s.n, s.overlap, s.missing, s.scored FROM runs r LEFT JOIN heldout_scores s ON s.run_id = r.id "
                         "WHERE r.assignment = ? ORDER BY r.created", (assignment_id,)).fetchall()
    return [dict(zip(row.keys(), row)) for row in rows]
