"""A soak of the class queue: N simulated students submit, poll, stop and resume tiny runs against one lab at once.

`python -m core.tools.soak --users 20 --seconds 30` (in a throwaway TUNELAB_HOME; TUNELAB_DB_URL for PostgreSQL)
runs every student in its own thread against the real queue (`core.runs.runner`: submit, kick, stop, resume,
runs) and the real store with its leases; only the training is simulated: the queue's worker start is replaced
by a thread that claims the run's lease and writes an epoch every `--epoch-s` seconds through it, continuing
after the last finished epoch on resume. It prints one JSON object of figures and checks that no run was lost or
duplicated, no epoch row was written twice, the limits held at every look, and each student's first run started
within one queue round (before it, no other student started more than one run). Bounded by `--seconds`, plus
the time the last runs need to drain. Imports neither TensorFlow nor Streamlit.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from collections import Counter
from unittest import mock

from core.config import RunSpec
from core.runs import lease, runner, store


class Lab:
    """The simulated workers and what the soak saw."""

    def __init__(self, epoch_s: float, epochs: int):
        self.epoch_s, self.epochs = epoch_s, epochs
        self.lock = threading.Lock()
        self.writes: Counter = Counter()      # (run, epoch) -> times written
        self.starts: list[tuple[float, str, str]] = []  # (time, run, owner)
        self.worst = Counter()                # the largest counts seen at any look
        self.threads: list[threading.Thread] = []

    def spawn(self, run_id: str, token: int) -> int:
        owner = store.get_run(run_id)["owner"]
        with self.lock:
            self.starts.append((time.time(), run_id, owner))
        t = threading.Thread(target=self.work, args=(run_id, token), daemon=True)
        self.threads.append(t)
        t.start()
        return os.getpid()

    def work(self, run_id: str, token: int) -> None:
        try:
            held = lease.claim(run_id, token)
        except lease.LeaseLost:
            return
        try:
            done = len(store.epochs(run_id))
            for epoch in range(done + 1, self.epochs + 1):
                time.sleep(self.epoch_s)
                if store.get_run(run_id)["stop_requested"]:
                    held.set_status("stopped")
                    break
                held.record_epoch(epoch, "train", {"loss": 1 / epoch, "val_accuracy": 0.5})
                with self.lock:
                    self.writes[(run_id, epoch)] += 1
            else:
                held.set_status("finished")
        except lease.LeaseLost:
            return
        runner.kick()

    def look(self) -> None:
        """Record the running and queued counts now (total and per user)."""
        rows = store.list_runs()
        running = Counter(r["owner"] for r in rows if r["status"] == "running")
        queued = Counter(r["owner"] for r in rows if r["status"] == "queued")
        with self.lock:
            self.worst["running"] = max(self.worst["running"], sum(running.values()))
            self.worst["user_running"] = max(self.worst["user_running"], max(running.values(), default=0))
            self.worst["user_queued"] = max(self.worst["user_queued"], max(queued.values(), default=0))


def student(name: str, lab: Lab, until: float, seed: int, tally: Counter, mine: dict, first: dict) -> None:
    rng = random.Random(seed)
    spec = lambda: RunSpec.from_recipe("scratch", epochs=lab.epochs, image_size=48, name=f"{name} run")  # noqa: E731
    while time.time() < until:
        action = rng.random()
        try:
            if action < 0.35:
                t = time.time()
                run_id = runner.submit(spec(), user=name)
                first.setdefault(name, (t, run_id))
                mine[name].append(run_id)
                tally["submitted"] += 1
            elif action < 0.7:
                runner.runs(name)
                tally["polls"] += 1
            elif action < 0.8 and mine[name]:
                runner.stop(rng.choice(mine[name]), user=name)
                tally["stops"] += 1
            elif action < 0.9 and mine[name]:
                run_id = rng.choice(mine[name])
                if store.get_run(run_id)["status"] == "stopped" and len(store.epochs(run_id)) < lab.epochs:
                    runner.resume(run_id, user=name)
                    tally["resumes"] += 1
            else:
                others = [r for r in store.list_runs() if r["owner"] != name]
                if others:
                    try:
                        runner.stop(rng.choice(others)["id"], user=name)
                        tally["foreign_stop_allowed"] += 1
                    except PermissionError:
                        tally["foreign_stop_refused"] += 1
        except ValueError as exc:
            tally["refused_" + ("queue_limit" if "TUNELAB_USER_MAX_QUEUED" in str(exc) else "other")] += 1
        lab.look()
        time.sleep(rng.uniform(0.05, 0.3))


def soak(users: int = 20, seconds: float = 30, max_runs: int = 2, user_max_running: int = 1, user_max_queued: int = 2,
         epoch_s: float = 0.2, epochs: int = 3, seed: int = 0) -> dict:
    """Run the soak in the current TUNELAB_HOME / TUNELAB_DB_URL; returns its figures and `ok`."""
    env = {"TUNELAB_MAX_RUNS": str(max_runs), "TUNELAB_USER_MAX_RUNNING": str(user_max_running),
           "TUNELAB_USER_MAX_QUEUED": str(user_max_queued), "TUNELAB_TEACHERS": ""}
    lab, tally, first = Lab(epoch_s, epochs), Counter(), {}
    names = [f"student{i:02d}" for i in range(users)]
    mine = {n: [] for n in names}
    with mock.patch.dict(os.environ, env), mock.patch.object(runner, "_spawn", lab.spawn):
        t0 = time.time()
        until = t0 + seconds
        threads = [threading.Thread(target=student, args=(n, lab, until, seed + i, tally, mine, first))
                   for i, n in enumerate(names)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # drain: the runs still queued start and finish in turn
        deadline = time.time() + max(60, 4 * seconds)
        while any(r["status"] in store.ACTIVE for r in store.list_runs()) and time.time() < deadline:
            runner.kick()
            lab.look()
            time.sleep(0.1)
        for t in lab.threads:
            t.join(timeout=10)
        elapsed = time.time() - t0
    rows = store.list_runs()
    submitted = [rid for n in names for rid in mine[n]]
    starts_before_first, waits, withdrawn = [], [], 0
    for name, (_, run_id) in first.items():
        started = next((t for t, rid, _ in lab.starts if rid == run_id), None)
        # when it last entered the queue before starting: created (submit may wait for the store), or resumed
        # after its student stopped it while it waited
        t_submit = max([store.get_run(run_id)["created"]] + [
            line["ts"] for line in store.log_lines(run_id)
            if line["message"].startswith("resume requested") and (started is None or line["ts"] <= started)])
        if started is None:
            if store.get_run(run_id)["status"] == "stopped":  # the student stopped it while it waited
                withdrawn += 1
            else:
                starts_before_first.append(99)
            continue
        waits.append(started - t_submit)
        others = Counter(owner for t, rid, owner in lab.starts if t_submit <= t < started and owner != name)
        starts_before_first.append(max(others.values(), default=0))
    statuses = Counter(r["status"] for r in rows)
    figures = {
        "users": users, "seconds": round(elapsed, 1), "max_runs": max_runs, "user_max_running": user_max_running,
        "user_max_queued": user_max_queued, **{k: tally[k] for k in sorted(tally)},
        "runs_in_store": len(rows), "runs_lost": len(set(submitted) - {r["id"] for r in rows}),
        "runs_duplicated": len(submitted) - len(set(submitted)),
        "starts": len(lab.starts), "statuses": dict(statuses),
        "epoch_rows": sum(len(store.epochs(r["id"])) for r in rows),
        "epochs_written_twice": sum(1 for n in lab.writes.values() if n > 1),
        "max_running_seen": lab.worst["running"], "max_user_running_seen": lab.worst["user_running"],
        "max_user_queued_seen": lab.worst["user_queued"],
        "students_started": len(waits), "first_runs_stopped_by_their_student_before_starting": withdrawn,
        "first_run_wait_s_median": round(sorted(waits)[len(waits) // 2], 2) if waits else None,
        "first_run_wait_s_max": round(max(waits), 2) if waits else None,
        "max_other_starts_before_a_first_run": max(starts_before_first, default=0),
    }
    figures["ok"] = (figures["runs_lost"] == 0 and figures["runs_duplicated"] == 0
                     and figures["runs_in_store"] == len(submitted) and figures["epochs_written_twice"] == 0
                     and figures["max_running_seen"] <= max_runs and figures["max_user_running_seen"] <= user_max_running
                     and figures["max_user_queued_seen"] <= user_max_queued and len(waits) + withdrawn == len(first)
                     and figures["max_other_starts_before_a_first_run"] <= 1 and tally["foreign_stop_allowed"] == 0
                     and not any(r["status"] in store.ACTIVE for r in rows))
    return figures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.tools.soak", description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--max-runs", type=int, default=2)
    p.add_argument("--user-max-running", type=int, default=1)
    p.add_argument("--user-max-queued", type=int, default=2)
    p.add_argument("--epoch-s", type=float, default=0.2)
    p.add_argument("--epochs", type=int, default=3)
    a = p.parse_args(argv)
    if not os.environ.get("TUNELAB_HOME"):
        os.environ["TUNELAB_HOME"] = tempfile.mkdtemp(prefix="tunelab-soak-")
    figures = soak(a.users, a.seconds, a.max_runs, a.user_max_running, a.user_max_queued, a.epoch_s, a.epochs)
    print(json.dumps({"home": os.environ["TUNELAB_HOME"], "store": store.backend(), **figures}, indent=2))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
