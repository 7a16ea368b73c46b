"""Command line over the engine: `python -m core COMMAND ...` (see `python -m core --help`).

Bad input ends with one sentence on stderr naming the thing and the fix, and a non-zero exit code.
TensorFlow is imported only by the commands that need it, so `runs`, `stop` and `scan` answer fast.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from core.runs import store


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def cmd_layers(a):
    from core.models.networks import layer_table
    from core.config import BACKBONES
    if a.backbone not in BACKBONES:
        raise ValueError(f"Unknown backbone {a.backbone!r}: choose one of {', '.join(BACKBONES)}.")
    table = layer_table(a.backbone, a.freeze_from, a.image_size)
    if a.json:
        return _print_json(table)
    print(f"{'layer':<24}{'type':<22}{'output shape':<18}{'params':>12}  trainable")
    for row in table["layers"]:
        shape = "x".join(str(d) for d in row["output_shape"])
        print(f"{row['name']:<24}{row['type']:<22}{shape:<18}{row['params']:>12,}  {'yes' if row['trainable'] else 'no'}")
    print(f"Total params: {table['total_params']:,}\nTrainable params: {table['trainable_params']:,}\n"
          f"Non-trainable params: {table['non_trainable_params']:,}")


def cmd_scan(a):
    from core.data.folders import scan
    report = scan(a.dir).report()
    if a.json:
        return _print_json(report)
    print(f"{report['root']}: classes {', '.join(report['classes'])} "
          f"({'split into train/validation/test' if report['presplit'] else 'not split: a seeded split will be made'})")
    for split, counts in report["counts"].items():
        print(f"  {split:<11}" + "  ".join(f"{c}: {n}" for c, n in counts.items()))
    s = report["image_size"]
    print(f"  image sizes: width {s['min_width']}-{s['max_width']} (mean {s['mean_width']}), "
          f"height {s['min_height']}-{s['max_height']} (mean {s['mean_height']})")
    print(f"  skipped: {len(report['skipped'])}")
    for item in report["skipped"]:
        print(f"    {item['path']}: {item['reason']}")


def cmd_health(a):
    from core.analysis import health
    progress = None if a.json else (lambda what, f: print(f"  {f:4.0%} {what}", file=sys.stderr, flush=True))
    report = health.check(a.dir, None if a.no_labels else a.backbone, a.weights, a.image_size, progress)
    if a.json:
        return _print_json({k: v for k, v in report.items() if k != "image_sizes"}
                           | {"image_sizes": {k: v for k, v in report["image_sizes"].items()
                                              if k not in ("widths", "heights")}})
    print(health.text_report(report, a.top))


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
        return _print_json(res)
    print(ablation.text_table(res))


def _spec_from_args(a):
    from core.config import RunSpec
    from core.runs.specs import build_spec
    values = {name: getattr(a, name) for name, meta in RunSpec.params().items() if meta["cli"]}
    if values.get("exclude"):  # files, folders or lists of paths -> the content hashes a run records
        from core.data.exclusions import from_paths
        values["exclude"] = from_paths(values["exclude"])
    return build_spec(a.recipe, values)  # the command line is not confined to TUNELAB_DATA_ROOTS


def _add_spec_flags(s: argparse.ArgumentParser) -> None:
    """One flag per RunSpec field, with the type, choices, range and help of the field's metadata."""
    from core.config import RunSpec, number_text
    for name, meta in RunSpec.params().items():
        if not meta["cli"]:
            continue
        flags = ["--" + name.replace("_", "-")] + (["--aug-file"] if name == "augment" else [])
        kwargs = {"dest": name, "help": meta["help"]}
        if meta["kind"] == "int":
            kwargs["type"] = int
        elif meta["kind"] in ("float", "lr"):
            kwargs["type"] = float
        elif meta["kind"] == "flag":
            kwargs["action"] = "store_const"  # None when absent: the recipe's default stays
            kwargs["const"] = True
        elif meta["kind"] == "choice":  # checked by RunSpec.validate, which says the same sentence everywhere
            kwargs["metavar"] = "{" + ",".join(meta["options"]) + "}"
        elif meta["kind"] == "hashes":  # images to leave out, named by path; recorded as content hashes
            kwargs["nargs"] = "+"
            kwargs["metavar"] = "FILE_OR_FOLDER"
        if meta["min"] is not None:
            unit = f" {meta['unit']}" if meta["unit"] else ""
            kwargs["help"] += f"; {number_text(meta['min'])} to {number_text(meta['max'])}{unit}"
        s.add_argument(*flags, **kwargs)


def _wait_and_report(run_id: str) -> int:
    from core.runs import runner

    def on_epoch(row):
        parts = [f"{k}={row[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if row[k] is not None]
        print(f"epoch {row['epoch']} [{row['phase']}] " + " ".join(parts) + f" ({row['seconds']:.1f}s)", flush=True)
    run = runner.wait(run_id, on_epoch)
    result = runner.summary(run_id)
    if run["status"] == "failed":
        print(f"run failed: {run['error']}", file=sys.stderr)
    print(json.dumps(result), flush=True)
    return 0 if run["status"] == "finished" else 1


def _cli_values(a) -> dict:
    """The RunSpec values given on the command line (None: not given)."""
    from core.config import RunSpec
    return {name: getattr(a, name) for name, meta in RunSpec.params().items() if meta["cli"]}


def cmd_train(a):
    from core.runs import runner
    if a.assignment:
        from core.runs import assignments
        run_id = assignments.submit(a.assignment, {**_cli_values(a), "recipe": a.recipe})
    elif not a.recipe:
        raise ValueError("train needs --recipe (one of the recipes, see --help), or --assignment ID to train for an "
                         "assignment.")
    else:
        run_id = runner.submit(_spec_from_args(a))
    if a.wait:
        print(f"queued run {run_id}", flush=True)
        return _wait_and_report(run_id)
    print(run_id)


def cmd_lr_find(a):
    from core.config import RunSpec
    from core.runs import lr_find
    if a.spec_file:
        spec = RunSpec.from_dict(json.loads(open(a.spec_file).read()))
        spec.validate()
    elif a.recipe:
        spec = _spec_from_args(a)
    else:
        raise ValueError("lr-find needs --recipe (with the flags of train) or --spec-file: give one.")
    result = lr_find.sweep(spec, a.batches, a.start, a.end)
    if a.out:
        from core.atomic import replacing
        from pathlib import Path
        with replacing(Path(a.out), suffix=".json") as tmp:
            Path(tmp).write_text(json.dumps(result))
    if a.json:
        return _print_json(result)
    picks = result["suggestions"]
    print(f"{len(result['points'])} batches of {result['batch_size']} on {result['images']} training images, "
          f"training {result['trains']}")
    print(f"suggested learning rate: {picks['valley']:.3g} (valley); steepest descent at {picks['steepest']:.3g}; "
          f"the smoothed loss fell {picks['descent']:.1%} from its start")
    if not picks["clear"]:
        print("no clear descent: the loss hardly fell during the sweep, so the suggestion is a guess; sweep more "
              "batches (--batches) or keep the recipe's rate")


def cmd_runs(a):
    from core.runs import runner
    rows = runner.runs()
    out = [{"id": r["id"], "name": r["name"], "owner": r["owner"], "published": bool(r["published"]),
            "recipe": r["recipe"], "backbone": r["backbone"],
            "status": r["status"], "pid": r["pid"], "epochs_done": r["epochs_done"],
            "epochs_total": r["epochs_total"], "best_val_acc": r["best_val_acc"], "created": r["created"],
            "started": r["started"], "finished": r["finished"], "host": r["host"],
            "executor": r["executor"] or "local", "node": r["node"], "assignment": r["assignment"],
            "weights_used": r["weights_used"], "error": r["error"]} for r in rows]
    if a.json:
        return _print_json(out)
    print(f"{'id':<23}{'owner':<12}{'recipe':<24}{'status':<12}{'epochs':>8}{'best val':>10}  name")
    for r in out:
        best = f"{r['best_val_acc']:.3f}" if r["best_val_acc"] is not None else "-"
        print(f"{r['id']:<23}{(r['owner'] or '-')[:11]:<12}{r['recipe']:<24}{r['status']:<12}"
              f"{r['epochs_done']:>3}/{r['epochs_total']:<4}{best:>10}  {r['name']}")


def cmd_rename(a):
    run = store.find_run(a.run)
    store.rename_run(run["id"], a.name)
    print(f"{run['id']}: renamed to {a.name.strip()}")


def cmd_tag(a):
    run = store.find_run(a.run)
    store.set_tags(run["id"], a.tags)
    print(f"{run['id']}: tags {', '.join(sorted({t.strip() for t in a.tags if t.strip()})) or '(none)'}")


def cmd_delete(a):
    run = store.find_run(a.run)
    store.delete_run(run["id"])
    print(f"{run['id']}: deleted")


def cmd_publish(a):
    run = store.find_run(a.run)
    store.set_published(run["id"], not a.undo)
    print(f"{run['id']}: {'no longer ' if a.undo else ''}published to the class")


def cmd_whoami(a):
    from core.runs import access
    print(f"{access.current()}{' (teacher)' if access.is_teacher() else ''}")


def cmd_stop(a):
    from core.runs import runner
    run = store.find_run(a.run)
    print(f"{run['id']}: {runner.stop(run['id'])}")


def cmd_resume(a):
    from core.runs import runner
    run = store.find_run(a.run)
    runner.resume(run["id"])
    if a.wait:
        return _wait_and_report(run["id"])
    print(run["id"])


def cmd_export(a):
    from core.runs import exports
    run = store.find_run(a.run)
    report = exports.export(run["id"], a.path, a.format, a.which)
    if a.json:
        return _print_json(report)
    print(f"wrote {a.path} ({a.format}, {report['size_bytes'] / 1e6:.2f} MB)\n{report['preprocessing']}")
    print(f"parity on the run's {report['split']} split ({report['images']} images): classes agree "
          f"{report['class_agreement']:.2%}, max |probability difference| {report['max_abs_prob_diff']:.2e} "
          f"(against the float32 Keras model: {report['class_agreement_float32']:.2%}, "
          f"{report['max_abs_prob_diff_float32']:.2e}), "
          f"accuracy {report['accuracy_export']:.4f} (Keras {report['accuracy_keras']:.4f}); single-image latency "
          f"{report['latency_ms_median']:.2f} ms (median, {report['host']} host)")


def cmd_evaluate(a):
    from core.analysis.evaluate import evaluate
    run = store.find_run(a.run)
    result = evaluate(run["id"], a.data, a.split, a.which)
    if a.json:
        return _print_json(result)
    where = "the run's own recorded" if result["own_split"] else f"{result['data']}'s"
    print(f"{result['n']} images ({where} {result['split']} split): accuracy {result['accuracy']:.4f}, "
          f"loss {result['loss']:.4f}")
    if result["overlap_with_training"]:
        print(f"left out {result['overlap_with_training']} images whose content is in the run's training split")
    if result["missing"]:
        print(f"left out {result['missing']} recorded images that no longer exist or changed")
    print("confusion matrix (rows: true, columns: predicted): " + ", ".join(result["classes"]))
    for cls, row in zip(result["classes"], result["confusion_matrix"]):
        print(f"  {cls:<12}" + " ".join(f"{n:>6}" for n in row))


def cmd_assignment(a):
    from core.runs import assignments
    if a.action == "create":
        if not a.name or not a.recipe:
            raise ValueError("assignment create needs a NAME and --recipe: e.g. `python -m core assignment create "
                             "'Week 3' --recipe fine_tune --epochs 5 --image-size 96`.")
        values = {k: v for k, v in _cli_values(a).items() if v is not None}
        found = assignments.create(a.name, a.recipe, values, heldout_fraction=a.heldout_fraction,
                                   heldout_seed=a.heldout_seed)
        if a.json:
            return _print_json({k: found[k] for k in ("id", "name", "owner", "recipe", "spec")}
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
        return _print_json(rows)
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
        return _print_json(result)
    print(leaderboard.text_table(result))


def cmd_prefetch(a):
    from core.data import prefetch
    if a.weights:
        for backbone in a.weights:
            print(f"{backbone}: {prefetch.prefetch_weights(backbone, a.image_size)}")
    if a.weights and not a.dataset:
        return
    print(f"dataset: {prefetch.prefetch_dataset()}")


def cmd_bench(a):
    from core.tools import bench
    bench.main(a.data, a.weights, a.quick, a.json, a.markdown)


def _size_thread_pools() -> None:
    """Apply the queue's share of the cores (TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS) before any op runs."""
    intra, inter = os.environ.get("TF_NUM_INTRAOP_THREADS"), os.environ.get("TF_NUM_INTEROP_THREADS")
    if not (intra or inter):
        return
    import tensorflow as tf
    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(int(intra))
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(int(inter))


def cmd_worker(a):
    from core.runs import lease
    try:
        held = lease.claim(a.run, a.lease)  # before TensorFlow loads, so that the heartbeat starts at once
    except lease.LeaseLost as exc:
        print(f"worker for run {a.run} not started: {exc}", file=sys.stderr)
        return lease.EXIT_FENCED
    beating = lease.keep_alive(held, exit_when_fenced=True)
    _size_thread_pools()
    from core.runs.runner import kick
    from core.runs.worker import run_worker
    status = run_worker(a.run, held)
    beating.set()
    if status == "fenced":  # taken over by a newer worker: end without writing (not even kick's bookkeeping)
        print(f"worker pid {os.getpid()} fenced: run {a.run} was taken over; exiting without writing",
              file=sys.stderr)
        return lease.EXIT_FENCED
    kick()
    return 0 if status in ("finished", "stopped") else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="Fine-Tuning Lab engine.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("layers", help="the conv base's layer table for a freeze point")
    s.add_argument("--backbone", default="vgg16")
    s.add_argument("--freeze-from", default=None, help="first trainable layer (default: none trainable)")
    s.add_argument("--image-size", type=int, default=150)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_layers)

    s = sub.add_parser("scan", help="classes, counts and skipped files of a data folder")
    s.add_argument("dir")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_scan)

    from core.config import RECIPES
    s = sub.add_parser("health", help="class balance, image sizes, unreadable files, duplicates across splits "
                                      "and likely label errors of a data folder")
    s.add_argument("dir")
    s.add_argument("--backbone", default="mobilenet_v2", help="pretrained base whose features the label check uses")
    s.add_argument("--weights", default="imagenet", help="imagenet or the path of a no-top weights file")
    s.add_argument("--image-size", type=int, default=128, help="pixels the base sees for the label check")
    s.add_argument("--no-labels", action="store_true", help="skip the label check (no TensorFlow, seconds)")
    s.add_argument("--top", type=int, default=20, help="how many suspected label errors to print")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_health)

    s = sub.add_parser("ablate", help="queue runs that differ only in augmentation (all transforms, each removed "
                                      "in turn, none) over a few seeds, and print the change in validation "
                                      "accuracy and loss when each transform is removed")
    from core.analysis.ablation import DEFAULT_RECIPE
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
    from core.config import RunSpec
    engine = RunSpec.param("augment_engine")
    s.add_argument("--augment-engine", metavar="{" + ",".join(engine["options"]) + "}", help=engine["help"])
    s.add_argument("--wait", action="store_true", help="wait for every run, then print the figures")
    s.add_argument("--show", metavar="GROUP", help="print the figures of a queued ablation (latest: the newest)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_ablate)

    s = sub.add_parser("train", help="queue a run of a recipe (see --recipe); other flags override its defaults")
    s.add_argument("--recipe", choices=list(RECIPES))
    _add_spec_flags(s)
    s.add_argument("--assignment", metavar="ID", help="train for a teacher's assignment: its recipe, data and "
                                                      "budget, its held-out images left out")
    s.add_argument("--wait", action="store_true", help="print each epoch and a JSON summary at the end")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("lr-find", help="learning-rate range test on a recipe's model and data (flags of train)")
    s.add_argument("--recipe", choices=list(RECIPES))
    _add_spec_flags(s)
    s.add_argument("--batches", type=int, default=100, help="batches in the sweep, one rate each (default 100)")
    s.add_argument("--start", type=float, default=1e-7, help="the first rate (default 1e-7)")
    s.add_argument("--end", type=float, default=1.0, help="the last rate (default 1)")
    s.add_argument("--spec-file", help=argparse.SUPPRESS)
    s.add_argument("--out", help=argparse.SUPPRESS)
    s.add_argument("--json", action="store_true", help="the points and suggested_lr as JSON")
    s.set_defaults(func=cmd_lr_find)

    s = sub.add_parser("runs", help="list runs")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_runs)

    for name, func, text in (("stop", cmd_stop, "stop a run at its next batch"),
                             ("resume", cmd_resume, "continue a stopped or interrupted run")):
        s = sub.add_parser(name, help=text)
        s.add_argument("run")
        if name == "resume":
            s.add_argument("--wait", action="store_true")
        s.set_defaults(func=func)

    s = sub.add_parser("rename", help="give a run another name (your own runs; a teacher's: any)")
    s.add_argument("run")
    s.add_argument("name")
    s.set_defaults(func=cmd_rename)

    s = sub.add_parser("tag", help="set a run's tags (your own runs; a teacher's: any)")
    s.add_argument("run")
    s.add_argument("tags", nargs="*")
    s.set_defaults(func=cmd_tag)

    s = sub.add_parser("delete", help="delete a run that is not running, with its files")
    s.add_argument("run")
    s.set_defaults(func=cmd_delete)

    s = sub.add_parser("publish", help="teachers: show a run to every student (--undo: stop showing it)")
    s.add_argument("run")
    s.add_argument("--undo", action="store_true")
    s.set_defaults(func=cmd_publish)

    s = sub.add_parser("whoami", help="the user this command line acts as (TUNELAB_USER, else the OS user)")
    s.set_defaults(func=cmd_whoami)

    s = sub.add_parser("assignment", help="teachers: create or delete an assignment (fixed recipe, data, budget; "
                                          "a held-out test split); anyone: list them")
    s.add_argument("action", choices=["create", "list", "delete"])
    s.add_argument("name", nargs="?", help="create: the assignment's name; delete: its id")
    s.add_argument("--recipe", choices=list(RECIPES))
    _add_spec_flags(s)
    s.add_argument("--heldout-fraction", type=float, default=0.1,
                   help="of a folder without test/ images, the share of each class held out (default 0.1)")
    s.add_argument("--heldout-seed", type=int, default=0, help="seeds the choice of held-out images (default 0)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_assignment)

    s = sub.add_parser("leaderboard", help="an assignment's ranking: each student's best finished run, scored on "
                                           "the held-out images")
    s.add_argument("assignment")
    s.add_argument("--no-score", action="store_true", help="only read the stored scores (score nothing here)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_leaderboard)

    s = sub.add_parser("export", help="write a run's model to PATH in a deployable format, with a parity report "
                                      "on its own test split")
    s.add_argument("run")
    s.add_argument("path")
    s.add_argument("--format", default="keras", choices=["keras", "saved_model", "tflite", "tflite-int8", "onnx"])
    s.add_argument("--which", choices=["best", "last"], default="best")
    s.add_argument("--json", action="store_true", help="the parity report as JSON")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("evaluate", help="score a run on its own test split, or on a folder of class subfolders "
                                        "(leaving out the images it trained on)")
    s.add_argument("run")
    s.add_argument("--data", help="a folder of class subfolders (default: the run's own recorded split)")
    s.add_argument("--split", help="validation or test of the run's own split; with --data also train "
                                   "(default: test if present, else validation)")
    s.add_argument("--which", choices=["best", "last"], default="best")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("prefetch", help="download the cats-vs-dogs subset (and --weights) when online")
    s.add_argument("--weights", nargs="*", help="also cache ImageNet weights for these backbones")
    s.add_argument("--dataset", action="store_true", help="with --weights: also fetch the dataset")
    s.add_argument("--image-size", type=int, default=224)
    s.set_defaults(func=cmd_prefetch)

    s = sub.add_parser("bench", help="the lecture's pipeline against the engine's, on the same photos")
    s.add_argument("--data", help="default: ../shared/data/cats_vs_dogs_small if present, else the demo data")
    s.add_argument("--weights", help="VGG16 weights (default: ../shared's VGG16-HED file if present, else none)")
    s.add_argument("--quick", action="store_true", help="small samples, about a minute")
    s.add_argument("--markdown", metavar="PATH", help="also write the results as a Markdown page (docs/benchmarks.md)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("worker", help=argparse.SUPPRESS)
    s.add_argument("run")
    s.add_argument("--lease", type=int, help="the lease number the queue reserved for this worker")
    s.set_defaults(func=cmd_worker)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one sentence, no traceback, for every expected kind of bad input
        from core.data.folders import DataError
        expected = (ValueError, FileNotFoundError, DataError, RuntimeError, PermissionError)
        if not isinstance(exc, expected):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
