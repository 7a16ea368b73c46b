"""`assignment` and `leaderboard`: the classroom's commands. A teacher creates or deletes an assignment (a fixed
recipe, data and budget, with held-out images); anyone lists them and reads an assignment's ranking.
"""
from __future__ import annotations

import sys

from core.cli.common import add_command, add_spec_flags, cli_values, print_json


def cmd_assignment(a):
    from core.runs import assignments
    if a.action == "create":
        if not a.name or not a.recipe:
            raise ValueError("assignment create needs a NAME and --recipe: e.g. `python -m core assignment create "
                             "'Week 3' --recipe fine_tune --epochs 5 --image-size 96`.")
        values = {k: v for k, v in cli_values(a).items() if v is not None}
        found = assignments.create(a.name, a.recipe, values, heldout_fraction=a.heldout_fraction,
                                   heldout_seed=a.heldout_seed)
        if a.json:
            return print_json({k: found[k] for k in ("id", "name", "owner", "recipe", "spec")}
                              | {"heldout_images": len(found["heldout"]["files"]), "link": assignments.link(found["id"])})
        print(f"assignment {found['id']}: {found['name']} ({assignments.describe(found)}); "
              f"{len(found['heldout']['files'])} held-out images ({found['heldout']['source']})")
        print(f"students open: {assignments.link(found['id'])}   (or: python -m core train --assignment {found['id']})")
        return
    if a.action == "delete":
        if not a.name:
            raise ValueError("assignment delete needs the assignment's id: `python -m core assignment list` lists them.")
        found = assignments.get(a.name)
        assignments.delete(found["id"])
        print(f"assignment {found['id']}: deleted (its runs are kept)")
        return
    rows = [{k: x[k] for k in ("id", "name", "owner", "created", "recipe", "spec")}
            | {"heldout_images": len(x["heldout"]["files"]), "heldout_source": x["heldout"]["source"],
               "link": assignments.link(x["id"])} for x in assignments.list_all()]
    if a.json:
        return print_json(rows)
    for x in rows:
        print(f"{x['id']}  {x['name']}  by {x['owner']}: {assignments.describe(x)}; {x['heldout_images']} held-out "
              f"images; {x['link']}")
    if not rows:
        print("no assignments yet (a teacher creates one: python -m core assignment create NAME --recipe R ...)")


def cmd_leaderboard(a):
    from core.analysis import leaderboard
    from core.runs import assignments
    found = assignments.get(a.assignment)
    if not a.no_score:  # finished runs the worker did not score (it failed, or they are older): score them here
        for run_id in leaderboard.unscored(found["id"]):
            try:
                leaderboard.score_run(run_id)
            except (ValueError, FileNotFoundError) as exc:
                print(f"run {run_id} not scored: {exc}", file=sys.stderr)
    result = leaderboard.board(found["id"])
    if a.json:
        return print_json(result)
    print(leaderboard.text_table(result))


def register(sub) -> None:
    s = add_command(sub, "assignment", cmd_assignment, "teachers: create or delete an assignment (fixed recipe, "
                                                       "data, budget; a held-out test split); anyone: list them")
    s.add_argument("action", choices=["create", "list", "delete"])
    s.add_argument("name", nargs="?", help="create: the assignment's name; delete: its id")
    add_spec_flags(s)
    s.add_argument("--heldout-fraction", type=float, default=0.1,
                   help="of a folder without test/ images, the share of each class held out (default 0.1)")
    s.add_argument("--heldout-seed", type=int, default=0, help="seeds the choice of held-out images (default 0)")
    s.add_argument("--json", action="store_true")

    s = add_command(sub, "leaderboard", cmd_leaderboard, "an assignment's ranking: each student's best finished "
                                                         "run, scored on the held-out images", "assignment")
    s.add_argument("--no-score", action="store_true", help="only read the stored scores (score nothing here)")
    s.add_argument("--json", action="store_true")
