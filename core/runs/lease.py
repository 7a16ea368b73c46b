"""One worker per run: the lease a worker holds on its run, its heartbeat, and fencing off stale workers.

A run's row carries `lease`, a generation number. A worker takes the next number when it starts
(`claim`: the queue takes it when it spawns the process and passes it on, so a worker started late
cannot take over from a newer one), and every write it makes afterwards goes through its `Lease`:
epochs, log lines, status, progress and heartbeats are checked in the same transaction as the write,
model files and the split record just before they replace the old ones (`Lease.check`). A write with
an old number raises `LeaseLost` instead of writing.

The queue (`core.runs.runner.kick`) declares a worker dead when its process is gone or its heartbeat
is older than `stale_after()` seconds (env `TUNELAB_HEARTBEAT_STALE_S`, default 120; workers beat every
`heartbeat_interval()`, a quarter of that and at most 5 s). It then moves the lease on (`fence`) and,
when the worker is a process on this machine, kills its process group (`kill_stale`) before marking
the run interrupted. A worker frozen (SIGSTOP, a laptop asleep, swapping) and woken after its run was
resumed elsewhere therefore finds its lease gone and exits without writing.
Imports neither TensorFlow nor Streamlit: a worker takes its lease before it loads TensorFlow.
"""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from core.runs import store
from core.runs.store import LeaseLost

DEFAULT_STALE_S = 120.0
MAX_INTERVAL_S = 5.0
EXIT_FENCED = 75  # a worker's exit status when it stopped because its lease was taken over

__all__ = ["EXIT_FENCED", "Lease", "LeaseLost", "claim", "fence", "heartbeat_interval", "host", "keep_alive",
           "kill_stale", "stale_after"]


def stale_after() -> float:
    """Seconds without a heartbeat after which a worker counts as dead ($TUNELAB_HEARTBEAT_STALE_S, default 120)."""
    text = os.environ.get("TUNELAB_HEARTBEAT_STALE_S", "").strip()
    if not text:
        return DEFAULT_STALE_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"TUNELAB_HEARTBEAT_STALE_S must be a number of seconds above 0 (got {text!r}): set it to "
                         f"e.g. 120, or unset it.")
    return value


def heartbeat_interval() -> float:
    """How often a worker writes its heartbeat: a quarter of the stale threshold, at most 5 s."""
    return min(stale_after() / 4, MAX_INTERVAL_S)


def host() -> str:
    """This machine's name, recorded with a worker so that only its own machine judges its pid or kills it."""
    return socket.gethostname()


@dataclass(frozen=True)
class Lease:
    """Run `run_id` held with generation `token`: the worker's only way to write to its run."""
    run_id: str
    token: int

    def check(self) -> None:
        """Raise LeaseLost if the run has been taken over (call just before replacing a file)."""
        with store.connect() as c:
            store.check_lease(c, self.run_id, self.token)

    def update(self, **fields) -> None:
        store.update_run(self.run_id, self.token, **fields)

    def progress(self, **progress) -> None:
        self.update(progress=progress)

    def log(self, message: str) -> None:
        store.log(self.run_id, message, holding=self.token)

    def record_epoch(self, epoch: int, phase: str, metrics: dict) -> None:
        store.record_epoch(self.run_id, epoch, phase, metrics, holding=self.token)

    def set_status(self, status: str, error: str | None = None) -> None:
        store.set_status(self.run_id, status, error, holding=self.token)


def claim(run_id: str, token: int | None = None) -> Lease:
    """Take run `run_id` for this process and mark it running, in one transaction.

    `token` is the number the queue reserved when it spawned this worker: if the lease has moved on
    since, LeaseLost. Without one (a worker started by hand or in-process) the next number is taken."""
    with store.connect(immediate=True) as c:
        row = c.execute("SELECT lease FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise ValueError(f"There is no run {run_id}: `python -m core runs` lists them.")
        if token is None:
            token = row["lease"] + 1
        else:
            store.check_lease(c, run_id, token)
        now = time.time()
        c.execute("UPDATE runs SET lease = ?, pid = ?, host = ?, heartbeat = ?, started = ?, status = 'running', "
                  "error = NULL WHERE id = ?", (token, os.getpid(), host(), now, now, run_id))
    return Lease(run_id, token)


def fence(c: sqlite3.Connection, run_id: str) -> int:
    """Move run `run_id`'s lease on inside the caller's transaction: its current worker can no longer write."""
    c.execute("UPDATE runs SET lease = lease + 1 WHERE id = ?", (run_id,))
    return c.execute("SELECT lease FROM runs WHERE id = ?", (run_id,)).fetchone()["lease"]


def keep_alive(lease: Lease, exit_when_fenced: bool = False) -> threading.Event:
    """Write the run's heartbeat every `heartbeat_interval()` seconds in a thread; set the returned event to stop.

    When the lease is lost the beating stops; with `exit_when_fenced` (a worker process) the process
    exits at once with EXIT_FENCED, whatever its other threads are doing, and writes nothing more."""
    stop, interval = threading.Event(), heartbeat_interval()

    def beat():
        while not stop.wait(interval):
            try:
                lease.update(heartbeat=time.time())
            except LeaseLost as exc:
                if exit_when_fenced:
                    exit_fenced(lease, exc)
                return
            except Exception:  # a busy or briefly unreadable store: the next beat tries again
                pass
    threading.Thread(target=beat, name=f"heartbeat {lease.run_id}", daemon=True).start()
    return stop


def exit_fenced(lease: Lease, reason: Exception | str) -> None:
    """End this worker process without writing to its run (one line on stderr, its own worker.log)."""
    sys.stderr.write(f"worker pid {os.getpid()} fenced: run {lease.run_id} lease {lease.token} was taken over "
                     f"({reason}); exiting without writing\n")
    sys.stderr.flush()
    os._exit(EXIT_FENCED)


def _command_line(pid: int) -> list[str] | None:
    """The arguments process `pid` was started with, or None when they cannot be read."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.parent.parent.is_dir():
        try:
            return [a for a in proc.read_bytes().decode("utf-8", "replace").split("\0") if a]
        except OSError:
            return None
    try:  # no /proc (macOS): ask ps
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.split() or None


def kill_stale(run_id: str, pid: int | None) -> bool:
    """SIGKILL the process group of run `run_id`'s worker `pid` if it is a worker of that run on this machine.

    The process's command line must be `... -m core worker RUN_ID` (so a reused pid, or a test or page
    running a worker in-process, is never killed); returns True if a signal was sent."""
    if not pid or pid == os.getpid() or not hasattr(signal, "SIGKILL"):
        return False
    args = _command_line(pid)
    if not args or "core" not in args or "worker" not in args or run_id not in args:
        return False
    try:
        if hasattr(os, "killpg") and os.getpgid(pid) == pid:  # spawned with start_new_session: its own group
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True
