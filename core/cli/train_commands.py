"""`ablate`, `train` and `lr-find`: queue runs of a recipe (or sweep its learning rate), with the flags of a run
specification on top of the recipe's defaults.
"""
from __future__ import annotations

import argparse
import json

from core.cli.common import add_command, add_spec_flags, cli_values, print_json, spec_from_args, wait_and_report


def cmd_ablate(a):
    from core.analysis import ablation
    from core.runs import runner
    if a.show:
        group = a.show if a.show != "latest" else next(iter(ablation.groups(runner.runs())), None)
        if group is None:
            raise ValueError("No ablation has been queued yet: run `python -m core ablate --data DIR` first.")
    else:
        from core.config import RunSpec
        cfg = RunSpec.from_recipe(a.recipe, augment=a.augment).augment
        base = {k: v for k, v in dict(data=a.data, backbone=a.backbone, weights=a.weights, image_size=a.image_size,
                                      epochs=a.epochs, batch_size=a.batch_size, lr=a.lr,
                                      augment_engine=a.augment_engine).items() if v is not None}
        group, planned = ablation.ablation_specs(cfg, base, tuple(a.seeds), a.recipe)
        ids = ablation.queue(group, planned)
        print(f"queued ablation {group}: {len(ids)} runs ({', '.join(sorted({v for v, _, _ in planned}))}; "
              f"seeds {' '.join(map(str, a.seeds))})", flush=True)
        if not a.wait:
            return
        for run_id in ids:
            runner.wait(run_id)
    res = ablation.results(group, runner.runs())
    if a.json:
        return print_json(res)
    print(ablation.text_table(res))


def cmd_train(a):
    from core.runs import runner
    if a.assignment:
        from core.runs import assignments
        run_id = assignments.submit(a.assignment, {**cli_values(a), "recipe": a.recipe})
    elif not a.recipe:
        raise ValueError("train needs --recipe (one of the recipes, see --help), or --assignment ID to train for an "
                         "assignment.")
    else:
        run_id = runner.submit(spec_from_args(a))
    if a.wait:
        print(f"queued run {run_id}", flush=True)
        return wait_and_report(run_id)
    print(run_id)


def cmd_lr_find(a):
    from core.config import RunSpec
    from core.runs import lr_find
    if a.spec_file:
        spec = RunSpec.from_dict(json.loads(open(a.spec_file).read()))
        spec.validate()
    elif a.recipe:
        spec = spec_from_args(a)
    else:
        raise ValueError("lr-find needs --recipe (with the flags of train) or --spec-file: give one.")
    result = lr_find.sweep(spec, a.batches, a.start, a.end)
    if a.out:
        from core.atomic import replacing
        from pathlib import Path
        with replacing(Path(a.out), suffix=".json") as tmp:
            Path(tmp).write_text(json.dumps(result))
    if a.json:
        return print_json(result)
    picks = result["suggestions"]
    print(f"{len(result['points'])} batches of {result['batch_size']} on {result['images']} training images, "
          f"training {result['trains']}")
    print(f"suggested learning rate: {picks['valley']:.3g} (valley); steepest descent at {picks['steepest']:.3g}; "
          f"the smoothed loss fell {picks['descent']:.1%} from its start")
    if not picks["clear"]:
        print("no clear descent: the loss hardly fell during the sweep, so the suggestion is a guess; sweep more "
              "batches (--batches) or keep the recipe's rate")


def register(sub) -> None:
    from core.analysis.ablation import DEFAULT_RECIPE
    from core.config import RECIPES, RunSpec
    s = add_command(sub, "ablate", cmd_ablate, "queue runs that differ only in augmentation (all transforms, each "
                                               "removed in turn, none) over a few seeds, and print the change in "
                                               "validation accuracy and loss when each transform is removed")
    s.add_argument("--recipe", default=DEFAULT_RECIPE, choices=list(RECIPES))
    s.add_argument("--augment", "--aug-file", dest="augment", default="lecture",
                   help="the configuration to ablate: a preset name or a JSON file (default: lecture)")
    s.add_argument("--data")
    s.add_argument("--backbone")
    s.add_argument("--weights")
    s.add_argument("--image-size", type=int)
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    engine = RunSpec.param("augment_engine")
    s.add_argument("--augment-engine", metavar="{" + ",".join(engine["options"]) + "}", help=engine["help"])
    s.add_argument("--wait", action="store_true", help="wait for every run, then print the figures")
    s.add_argument("--show", metavar="GROUP", help="print the figures of a queued ablation (latest: the newest)")
    s.add_argument("--json", action="store_true")

    s = add_command(sub, "train", cmd_train, "queue a run of a recipe (see --recipe); other flags override its "
                                             "defaults")
    add_spec_flags(s)
    s.add_argument("--assignment", metavar="ID", help="train for a teacher's assignment: its recipe, data and "
                                                      "budget, its held-out images left out")
    s.add_argument("--wait", action="store_true", help="print each epoch and a JSON summary at the end")

    s = add_command(sub, "lr-find", cmd_lr_find, "learning-rate range test on a recipe's model and data (flags of "
                                                 "train)")
    add_spec_flags(s)
    s.add_argument("--batches", type=int, default=100, help="batches in the sweep, one rate each (default 100)")
    s.add_argument("--start", type=float, default=1e-7, help="the first rate (default 1e-7)")
    s.add_argument("--end", type=float, default=1.0, help="the last rate (default 1)")
    s.add_argument("--spec-file", help=argparse.SUPPRESS)
    s.add_argument("--out", help=argparse.SUPPRESS)
    s.add_argument("--json", action="store_true", help="the points and suggested_lr as JSON")
