"""Run lifecycle: queue runs, start workers as detached processes, stop, resume, and spot dead workers.

There is no daemon: whoever submits, lists or finishes a run calls `kick()`, which (under the store's
write lock) marks runs whose worker died as `interrupted` and starts queued runs while fewer than
`max_concurrent()` are running. A worker's liveness is its pid plus the heartbeat it writes; a worker
whose heartbeat is stale is fenced off and, on this machine, killed first (`core.runs.lease`), so a run
never has two workers. Partial files a dead worker leaves (half-written models, image or feature
caches) are removed then.

The queue is fair between users (`core.runs.access` says who owns a run): a user runs at most
`TUNELAB_USER_MAX_RUNNING` runs and keeps at most `TUNELAB_USER_MAX_QUEUED` waiting, and a free slot goes
round-robin to the user with queued work whose last start is the oldest (`next_runs`). Each worker's
TensorFlow thread pools are sized to its share of the cores (`thread_env`).
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from core.runs import access, artifacts, lease, rayexec, store
from core.config import RunSpec

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RAY_PENDING = "ray"  # a run's host while Ray has not yet started its worker on a node


def _limit(name: str, default: int | None) -> int | None:
    """A positive whole number from environment variable `name` (unset or empty: `default`)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name} must be a whole number of runs, 1 or more (got {text!r}): set it to e.g. 2, or "
                         f"unset it.")
    return int(text)


def max_concurrent() -> int:
    """How many runs train at once on this lab ($TUNELAB_MAX_RUNS, default 1)."""
    return _limit("TUNELAB_MAX_RUNS", 1)


def user_max_running() -> int | None:
    """How many runs one user may have training at once ($TUNELAB_USER_MAX_RUNNING; unset: no own limit)."""
    return _limit("TUNELAB_USER_MAX_RUNNING", None)


def user_max_queued() -> int | None:
    """How many runs one user may have waiting in the queue ($TUNELAB_USER_MAX_QUEUED; unset: no limit)."""
    return _limit("TUNELAB_USER_MAX_QUEUED", None)


def thread_env(cores: int | None = None, slots: int | None = None) -> dict[str, str]:
    """TensorFlow thread-pool sizes for one worker: the cores divided among the `max_concurrent()` slots, so
    that concurrent runs share the machine instead of each starting a pool as large as the machine."""
    cores = cores or os.cpu_count() or 1
    share = max(1, cores // (slots or max_concurrent()))
    return {"TF_NUM_INTRAOP_THREADS": str(share), "TF_NUM_INTEROP_THREADS": str(min(2, share)),
            "OMP_NUM_THREADS": str(share)}


def next_runs(queued: list, running: list, free: int, last_start: dict[str, float] | None = None) -> list:
    """Which queued runs take the `free` slots: round-robin across users with queued work.

    `queued` rows (id, owner, created) oldest first; `running` rows (owner) of the runs running now;
    `last_start` {user: when their latest run started}. The user whose latest start is oldest goes first
    (a user who never started goes before all), each user's own runs in the order they were queued, and
    nobody above `user_max_running()`."""
    per_user_limit = user_max_running()
    running_by: dict[str, int] = {}
    last_start = dict(last_start or {})
    for r in running:
        running_by[r["owner"]] = running_by.get(r["owner"], 0) + 1
    waiting: dict[str, list] = {}
    for r in queued:
        waiting.setdefault(r["owner"], []).append(r)
    chosen = []
    while free > 0 and waiting:
        eligible = [u for u in waiting if per_user_limit is None or running_by.get(u, 0) < per_user_limit]
        if not eligible:
            break
        user = min(eligible, key=lambda u: (last_start.get(u, 0.0), waiting[u][0]["created"]))
        run = waiting[user].pop(0)
        if not waiting[user]:
            del waiting[user]
        chosen.append(run)
        running_by[user] = running_by.get(user, 0) + 1
        last_start[user] = time.time() + len(chosen)  # just started: to the back of the round
        free -= 1
    return chosen


def pid_alive(pid: int | None) -> bool:
    """True if `pid` is a live (non-zombie) process."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _spawn(run_id: str, token: int) -> int:
    """Start `python -m core worker RUN_ID --lease TOKEN` detached, in its own process group; returns its pid."""
    logfile = open(artifacts.worker_log(run_id), "ab")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
               TUNELAB_HOME=str(store.home()), TF_CPP_MIN_LOG_LEVEL="3", **thread_env())
    proc = subprocess.Popen([sys.executable, "-m", "core", "worker", run_id, "--lease", str(token)], cwd=PROJECT_ROOT,
                            env=env, stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
                            start_new_session=True)
    logfile.close()
    return proc.pid


def remove_orphans() -> int:
    """Delete the temporary files of dead processes (`.name.<pid>.tmp*` in run folders and caches)."""
    home, removed = store.home(), 0
    for pattern in (artifacts.TEMPORARY_GLOB, "cache/*/.*.tmp"):
        for path in home.glob(pattern):
            pid = re.search(r"\.(\d+)\.tmp", path.name)
            if pid and not pid_alive(int(pid.group(1))):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
    return removed


def _kill_stale_local_workers(now: float, stale_s: float, here: str) -> set[str]:
    """Kill this machine's stale workers before taking the store's write lock, reading without it.

    A worker stopped (SIGSTOP, a debugger) in the middle of one of its short writes keeps holding the
    store's lock: no one could fence it, and every writer would wait until it timed out. Killing it
    first, from a plain read, releases the lock. Returns the ids of the runs whose worker was killed."""
    with store.connect() as c:
        running = c.execute("SELECT id, pid, heartbeat, host FROM runs WHERE status = 'running'").fetchall()
    return {run["id"] for run in running
            if run["host"] in (None, here) and run["heartbeat"] is not None and now - run["heartbeat"] > stale_s
            and lease.kill_stale(run["id"], run["pid"])}


def kick() -> None:
    """Mark dead workers' runs interrupted, then start queued runs up to the concurrency limit.

    A worker is dead when its process on this machine is gone, or when its heartbeat is older than
    `lease.stale_after()` (a process stopped, asleep or swapping, or on another machine): then its lease
    is moved on, and a local worker process is killed, before the run is marked interrupted."""
    now, stale_s, here = time.time(), lease.stale_after(), lease.host()
    killed_first = _kill_stale_local_workers(now, stale_s, here)
    unplaced = []
    with store.connect(immediate=True) as c:
        running = c.execute("SELECT id, pid, heartbeat, host, owner, started, executor, node, requeues FROM runs "
                            "WHERE status = 'running'").fetchall()
        alive, died, live = 0, False, []
        for run in running:
            local = run["host"] in (None, here)
            pending = run["host"] == RAY_PENDING  # handed to Ray, not yet started on a node
            silent = None if run["heartbeat"] is None else now - run["heartbeat"]
            stale = silent is not None and silent > (rayexec.place_timeout() if pending else stale_s)
            if not stale and (pending or not local or pid_alive(run["pid"])):
                alive += 1
                live.append(run)
                continue
            lease.fence(c, run["id"])
            if pending:  # Ray never placed it: say why, and let no late actor start it (its lease moved on)
                error = rayexec.unplaced_error(run["id"], silent)
                c.execute("UPDATE runs SET status = 'failed', finished = ?, progress = '{}', error = ? WHERE id = ?",
                          (now, error, run["id"]))
                store.append_log(c, run["id"], error)
                unplaced.append(run["id"])
                continue
            if not stale:
                error, note = ("the worker process died (killed or crashed); resume continues from the last "
                               "finished epoch"), f"worker pid {run['pid']} is gone: run interrupted"
            else:
                killed = run["id"] in killed_first or (local and lease.kill_stale(run["id"], run["pid"]))
                error = (f"the worker sent no heartbeat for {silent:.0f} s (stopped, asleep or swapping): it was "
                         f"{'killed and ' if killed else ''}fenced off; resume continues from the last finished epoch")
                note = (f"worker pid {run['pid']}{'' if local else ' on ' + str(run['host'])} sent no heartbeat for "
                        f"{silent:.0f} s: {'killed, ' if killed else ''}lease moved on, run interrupted")
            c.execute("UPDATE runs SET status = 'interrupted', finished = ?, progress = '{}', error = ? WHERE id = ?",
                      (now, error, run["id"]))
            store.append_log(c, run["id"], note)
            if run["executor"] == "ray" and rayexec.executor() == "ray":
                _requeue_on_ray(c, run, now)  # its node died (or its worker with it): continue on another node
            died = True
        queued = c.execute("SELECT id, lease, owner, created FROM runs WHERE status = 'queued' "
                           "ORDER BY created").fetchall()
        last_start = {r["owner"]: r["last"] or 0.0 for r in c.execute(
            "SELECT owner, MAX(started) AS last FROM runs GROUP BY owner").fetchall()}
        for run in next_runs(queued, live, max(0, max_concurrent() - alive), last_start):
            token = run["lease"] + 1  # reserved for the worker spawned now: a later one fences it off
            executor = rayexec.executor()
            try:
                if executor == "ray":  # the actor records its node and the worker its pid when they start
                    rayexec.start(run["id"], token, thread_env())
                    pid, host, node = None, RAY_PENDING, None
                else:
                    pid, host, node = _spawn(run["id"], token), here, here
            except Exception as exc:  # noqa: BLE001 - an OSError here, or any error of Ray's client
                c.execute("UPDATE runs SET status = 'failed', error = ? WHERE id = ?",
                          (f"could not start the worker {'on Ray' if executor == 'ray' else 'process'}: {exc}",
                           run["id"]))
                continue
            c.execute("UPDATE runs SET status = 'running', pid = ?, host = ?, heartbeat = ?, started = ?, lease = ?, "
                      "executor = ?, node = ? WHERE id = ?", (pid, host, now, now, token, executor, node, run["id"]))
    for run_id in unplaced:
        rayexec.cancel(run_id)
    if died:
        remove_orphans()


def _requeue_on_ray(c, run, now: float) -> None:
    """Queue a Ray run whose node died again, to resume from its last checkpoint on another node, unless it has
    already been queued again `rayexec.max_retries()` times: then it is marked failed, saying so."""
    limit = rayexec.max_retries()
    if run["requeues"] >= limit:
        error = (f"Run {run['id']} lost its Ray node (last {run['node']}) {run['requeues'] + 1} times and was not "
                 f"queued again (TUNELAB_RAY_MAX_RETRIES is {limit}): check the cluster's nodes, then resume it, or "
                 f"raise the limit.")
        c.execute("UPDATE runs SET status = 'failed', error = ? WHERE id = ?", (error, run["id"]))
        store.append_log(c, run["id"], error)
        return
    c.execute("UPDATE runs SET status = 'queued', stop_requested = 0, finished = NULL, requeues = requeues + 1 "
              "WHERE id = ?", (run["id"],))
    store.append_log(c, run["id"], f"Ray node {run['node']} lost: queued again ({run['requeues'] + 1} of at most "
                                   f"{limit}), to resume from its last checkpoint on another node")


def submit(spec: RunSpec, user: str | None = None, assignment: str | None = None) -> str:
    """Validate `spec`, store it as a queued run of `user` (default: the acting user), and start it if a slot
    is free. Returns the run id. A user with `user_max_queued()` runs waiting is refused (ValueError).

    A relative data folder or weights file is made absolute here, against the submitter's current
    folder: the worker runs elsewhere, and the dashboard may read the run from anywhere. A run for an
    `assignment` (`core.runs.assignments`) must keep its fixed values and leave its held-out images out
    (ValueError otherwise); the run records the assignment's id."""
    user = access.acting(user)
    spec.validate()
    _check_queue_room(user)
    if spec.data:
        spec.data = absolute_path(spec.data)
    if spec.weights not in ("imagenet", "none") and Path(spec.weights).expanduser().exists():
        spec.weights = absolute_path(spec.weights)
    if assignment is not None:
        from core.runs import assignments
        task = assignments.get(assignment)
        assignments.check_run_spec(task, spec)
        assignment = task["id"]
    run_id = store.create_run(spec.to_dict(), spec.display_name(), spec.recipe,
                              spec.backbone if spec.uses_backbone else None, spec.total_epochs, owner=user,
                              assignment=assignment)
    store.log(run_id, f"queued: {spec.display_name()}")
    kick()
    return run_id


def _check_queue_room(user: str) -> None:
    """ValueError if `user` already has `user_max_queued()` runs waiting."""
    limit = user_max_queued()
    if limit is None:
        return
    with store.connect() as c:
        waiting = c.execute("SELECT COUNT(*) FROM runs WHERE owner = ? AND status = 'queued'", (user,)).fetchone()[0]
    if waiting >= limit:
        raise ValueError(f"{user} already has {waiting} runs waiting in the queue (TUNELAB_USER_MAX_QUEUED is "
                         f"{limit}): wait for one to start, or stop one, before queueing another.")


def _get_owned(c, run_id: str, action: str, user: str | None):
    run = c.execute("SELECT id, owner, status FROM runs WHERE id = ?", (run_id,)).fetchone()
    if run is None:
        raise ValueError(f"There is no run {run_id}: `python -m core runs` lists them.")
    access.require_owner(dict(run), action, user)
    return run


def stop(run_id: str, user: str | None = None) -> str:
    """Ask a running run to stop at its next batch (a queued one stops at once). Returns the new state.

    Only the run's owner or a teacher may stop it (PermissionError otherwise)."""
    with store.connect(immediate=True) as c:
        status = _get_owned(c, run_id, "stop", user)["status"]
        if status == "queued":
            c.execute("UPDATE runs SET status = 'stopped', finished = ? WHERE id = ?", (time.time(), run_id))
            return "stopped"
        if status == "running":
            c.execute("UPDATE runs SET stop_requested = 1 WHERE id = ?", (run_id,))
            return "stopping"
        return status


def absolute_path(path: str) -> str:
    """`path` with `~` expanded, absolute, its links and `..` resolved."""
    return str(Path(path).expanduser().resolve())


def resume(run_id: str, user: str | None = None) -> None:
    """Queue a stopped, interrupted or failed run again; it continues after its last finished epoch.

    The status is checked and changed in one transaction, so two resumes cannot both queue the run.
    A run that already has every epoch and its final models (its worker died just before saying so) is
    marked finished instead. Only the run's owner or a teacher may resume it (PermissionError otherwise)."""
    owner = store.get_run(run_id)
    if owner is not None:
        access.require_owner(owner, "resume", user)
        _check_queue_room(owner["owner"])
    with store.connect(immediate=True) as c:
        run = c.execute("SELECT status, epochs_total, (SELECT COUNT(*) FROM epochs e WHERE e.run_id = runs.id) "
                        "AS epochs_done FROM runs WHERE id = ?", (run_id,)).fetchone()
        if run is None:
            raise ValueError(f"There is no run {run_id}: `python -m core runs` lists them.")
        if run["status"] not in ("stopped", "interrupted", "failed"):
            raise ValueError(f"Run {run_id} is {run['status']}: only stopped, interrupted or failed runs can be "
                             f"resumed.")
        if run["epochs_done"] >= run["epochs_total"] and _models_saved(run_id):  # it died after its last save
            c.execute("UPDATE runs SET status = 'finished', error = NULL, finished = ? WHERE id = ?",
                      (time.time(), run_id))
            store.append_log(c, run_id, f"all {run['epochs_total']} epochs and the final models were already saved: "
                                        f"finished")
            return
        c.execute("UPDATE runs SET status = 'queued', stop_requested = 0, error = NULL, finished = NULL, requeues = 0 "
                  "WHERE id = ?", (run_id,))  # resumed by hand: Ray's re-queues count afresh
        store.append_log(c, run_id, f"resume requested after epoch {run['epochs_done']}")
    kick()


def _models_saved(run_id: str) -> bool:
    """True if best.keras and last.keras were written after the run's latest checkpoint (it was finalised)."""
    models = artifacts.models_saved(run_id)
    if not all(p.is_file() for p in models):
        return False
    checkpoints = [p.stat().st_mtime for p in artifacts.checkpoints(run_id)]
    return min(p.stat().st_mtime for p in models) >= max(checkpoints, default=0.0)


def runs(user: str | None = None) -> list[dict]:
    """The runs `user` (default: the acting user) may see, after bringing the queue up to date."""
    kick()
    return access.visible(store.list_runs(), user)


def wait(run_id: str, on_epoch=None, poll: float = 0.5) -> dict:
    """Block until the run leaves queued/running; `on_epoch(epoch_row)` is called for each new epoch."""
    seen = 0
    while True:
        run = store.get_run(run_id)
        rows = store.epochs(run_id)
        for row in rows[seen:]:
            if on_epoch:
                on_epoch(row)
        seen = len(rows)
        if run["status"] not in store.ACTIVE:
            return run
        kick()
        time.sleep(poll)


def summary(run_id: str) -> dict:
    """The headline numbers of a run."""
    run = store.get_run(run_id)
    rows = store.epochs(run_id)
    vals = [r["val_accuracy"] for r in rows if r["val_accuracy"] is not None]
    return {"run_id": run_id, "name": run["name"], "status": run["status"], "error": run["error"],
            "epochs_done": len(rows), "epochs_total": run["epochs_total"],
            "best_val_acc": max(vals) if vals else None, "final_val_acc": vals[-1] if vals else None,
            "final_val_loss": rows[-1]["val_loss"] if rows else None,
            "seconds": round(sum(r["seconds"] or 0 for r in rows), 1),
            "weights_used": run["weights_used"], "precision": run["precision_used"]}
