"""`runs`, `stop`, `resume`, `rename`, `tag`, `delete`, `publish` and `whoami`: list the run store and manage one
run, named by its id, a unique id prefix or its name. Only `resume --wait` loads TensorFlow (in the run's worker).
"""
from __future__ import annotations

from core.cli.common import add_command, print_json, wait_and_report
from core.runs import store


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
        return print_json(out)
    print(f"{'id':<23}{'owner':<12}{'recipe':<24}{'status':<12}{'epochs':>8}{'best val':>10}  name")
    for r in out:
        best = f"{r['best_val_acc']:.3f}" if r["best_val_acc"] is not None else "-"
        print(f"{r['id']:<23}{(r['owner'] or '-')[:11]:<12}{r['recipe']:<24}{r['status']:<12}"
              f"{r['epochs_done']:>3}/{r['epochs_total']:<4}{best:>10}  {r['name']}")


def cmd_stop(a):
    from core.runs import runner
    run = store.find_run(a.run)
    print(f"{run['id']}: {runner.stop(run['id'])}")


def cmd_resume(a):
    from core.runs import runner
    run = store.find_run(a.run)
    runner.resume(run["id"])
    if a.wait:
        return wait_and_report(run["id"])
    print(run["id"])


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


def register(sub) -> None:
    s = add_command(sub, "runs", cmd_runs, "list runs")
    s.add_argument("--json", action="store_true")
    add_command(sub, "stop", cmd_stop, "stop a run at its next batch", "run")
    s = add_command(sub, "resume", cmd_resume, "continue a stopped or interrupted run", "run")
    s.add_argument("--wait", action="store_true")
    add_command(sub, "rename", cmd_rename, "give a run another name (your own runs; a teacher's: any)", "run", "name")
    s = add_command(sub, "tag", cmd_tag, "set a run's tags (your own runs; a teacher's: any)", "run")
    s.add_argument("tags", nargs="*")
    add_command(sub, "delete", cmd_delete, "delete a run that is not running, with its files", "run")
    s = add_command(sub, "publish", cmd_publish, "teachers: show a run to every student (--undo: stop showing it)",
                    "run")
    s.add_argument("--undo", action="store_true")
    add_command(sub, "whoami", cmd_whoami, "the user this command line acts as (TUNELAB_USER, else the OS user)")
