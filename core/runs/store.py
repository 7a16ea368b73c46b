"""The run store: one SQLite database (WAL mode) holding every run, its epochs, progress and log (and the class's
assignments with their runs' held-out scores, `core.runs.assignments`); or, when
$TUNELAB_DB_URL is set, a PostgreSQL database with the same schema (`core.runs.pgstore`), which every node of
a cluster can share.

Everything the dashboard and the command line show about runs is read from here, and the training
worker is the only writer of a running run's epochs. Artifacts (models, checkpoints, TensorBoard logs)
live in the run's folder, `home()/runs/<id>/` (their names: `core.runs.artifacts`). Each call opens its
own short connection, so the store is safe to use from several processes and threads at once.

A run's `lease` column is the generation number of the worker allowed to write it
(`core.runs.lease`): the writing functions take `holding=<number>` and then check it in the same
transaction as the write, raising `LeaseLost` instead of writing when it has moved on.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from core.runs import access

STATUSES = ("queued", "running", "finished", "stopped", "failed", "interrupted")
ACTIVE = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    recipe TEXT NOT NULL,
    backbone TEXT,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    pid INTEGER,
    heartbeat REAL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    epochs_total INTEGER NOT NULL,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    weights_used TEXT,
    precision_used TEXT,
    info TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '[]',
    progress TEXT NOT NULL DEFAULT '{}',
    lease INTEGER NOT NULL DEFAULT 0,
    host TEXT,
    owner TEXT,
    published INTEGER NOT NULL DEFAULT 0,
    executor TEXT,
    node TEXT,
    assignment TEXT,
    requeues INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    phase TEXT NOT NULL,
    loss REAL, accuracy REAL, val_loss REAL, val_accuracy REAL, lr REAL, seconds REAL, trains TEXT,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS log (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    ts REAL NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_run ON log(run_id, ts);
CREATE TABLE IF NOT EXISTS assignments (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    created REAL NOT NULL,
    recipe TEXT NOT NULL,
    spec TEXT NOT NULL,
    heldout TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS heldout_scores (
    run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    assignment TEXT NOT NULL,
    accuracy REAL,
    loss REAL,
    n INTEGER NOT NULL,
    overlap INTEGER NOT NULL DEFAULT 0,
    missing INTEGER NOT NULL DEFAULT 0,
    scored REAL NOT NULL
);
"""
_ADDED_COLUMNS = (("lease", "INTEGER NOT NULL DEFAULT 0"), ("host", "TEXT"), ("owner", "TEXT"),
                  ("published", "INTEGER NOT NULL DEFAULT 0"), ("executor", "TEXT"),
                  ("node", "TEXT"), ("assignment", "TEXT"),
                  ("requeues", "INTEGER NOT NULL DEFAULT 0"))  # stores made before them get them
_ADDED_EPOCH_COLUMNS = (("trains", "TEXT"),)  # fine-tuning: {"head": rate, block: rate, ...} as JSON
_migrated: set[str] = set()


class LeaseLost(Exception):
    """A worker's write was refused: its run was taken over by a newer worker (see `core.runs.lease`)."""


def home() -> Path:
    """The lab's home folder: $TUNELAB_HOME, or ~/.tunelab (created; RuntimeError if it cannot be)."""
    path = Path(os.environ.get("TUNELAB_HOME") or Path.home() / ".tunelab").expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeError(f"Cannot create the lab's home folder {path} ({exc.strerror or exc}): set TUNELAB_HOME "
                           f"to a writable folder.") from exc
    return path


@contextmanager
def home_at(path: str | Path):
    """Within the block, the lab's home is `path` (tools that measure in a throwaway home, or read another's);
    the previous TUNELAB_HOME, or its absence, is restored after."""
    old = os.environ.get("TUNELAB_HOME")
    os.environ["TUNELAB_HOME"] = str(path)
    try:
        yield Path(path)
    finally:
        if old is None:
            os.environ.pop("TUNELAB_HOME", None)
        else:
            os.environ["TUNELAB_HOME"] = old


def db_url() -> str:
    """$TUNELAB_DB_URL (a PostgreSQL URL such as postgresql://lab@db.example.org/tunelab), or "" for SQLite."""
    url = os.environ.get("TUNELAB_DB_URL", "").strip()
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise RuntimeError(f"TUNELAB_DB_URL is {url!r}: give a PostgreSQL URL (postgresql://user@host:port/db), or "
                           f"unset it to use the embedded SQLite store.")
    return url


def backend() -> str:
    """"postgresql" when $TUNELAB_DB_URL is set, else "sqlite"."""
    return "postgresql" if db_url() else "sqlite"


def run_dir(run_id: str) -> Path:
    return home() / "runs" / run_id


@contextmanager
def connect(immediate: bool = False):
    """A short-lived connection; `immediate=True` takes the write lock at once (for read-modify-write).

    SQLite failures (read-only or full disk, a damaged file, a lock held too long) become RuntimeError
    naming the store file; errors raised by the caller's own code pass through unchanged.
    With $TUNELAB_DB_URL set, the connection is to that PostgreSQL database instead (no runs.sqlite)."""
    url = db_url()
    if url:
        from core.runs import pgstore
        with pgstore.connect(url, _SCHEMA, _ADDED_COLUMNS, access.os_user(), immediate,
                             added_epoch_columns=_ADDED_EPOCH_COLUMNS) as conn:
            yield conn
        return
    path = home() / "runs.sqlite"
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise _store_error(path, exc) from exc
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.executescript(_SCHEMA)
        _migrate(conn, path)
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise _store_error(path, exc) from exc
    finally:
        conn.close()


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Add the columns a store made by an older version lacks (once per store and process)."""
    if str(path) in _migrated:
        return
    for table, added in (("runs", _ADDED_COLUMNS), ("epochs", _ADDED_EPOCH_COLUMNS)):
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, kind in added:
            if name not in have:
                try:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as exc:  # another process added it a moment ago
                    if "duplicate column" not in str(exc):
                        raise
    # Runs made before owners were recorded belong to the operating-system user, the single-user default.
    if conn.execute("SELECT 1 FROM runs WHERE owner IS NULL LIMIT 1").fetchone():  # no write on a read-only store
        conn.execute("UPDATE runs SET owner = ? WHERE owner IS NULL", (access.os_user(),))
    _migrated.add(str(path))


def _store_error(path: Path, exc: sqlite3.Error) -> RuntimeError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return RuntimeError(f"The run store {path} stayed locked by another process for 30 s ({text}); try again.")
    return RuntimeError(f"Cannot use the run store {path} ({text}): check that its folder is writable and its "
                        f"disk not full, or set TUNELAB_HOME to another folder.")


def printable(text: str) -> str:
    """`text` safe to store: characters that are not valid Unicode (undecodable file names) replaced."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _row(row: sqlite3.Row | None) -> dict | None:
    if row is None:
        return None
    d = dict(row)
    for key in ("spec", "info", "tags", "progress"):
        d[key] = json.loads(d[key]) if d.get(key) else ({} if key != "tags" else [])
    return d


def create_run(spec_dict: dict, name: str, recipe: str, backbone: str | None, epochs_total: int,
               owner: str | None = None, assignment: str | None = None) -> str:
    """Store a queued run owned by `owner` (default: `access.current()`), made for `assignment` (an id of
    `core.runs.assignments`, or None); returns its id."""
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    with connect() as c:
        c.execute("INSERT INTO runs (id, name, recipe, backbone, spec, status, created, epochs_total, owner, "
                  "assignment) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                  (run_id, name, recipe, backbone, json.dumps(spec_dict), time.time(), epochs_total,
                   access.acting(owner), assignment))
    run_dir(run_id).mkdir(parents=True, exist_ok=True)
    return run_id


def get_run(run_id: str) -> dict | None:
    with connect() as c:
        row = _row(c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())
        if row:
            row["epochs_done"] = c.execute("SELECT COUNT(*) FROM epochs WHERE run_id = ?", (run_id,)).fetchone()[0]
    return row


def find_run(prefix: str) -> dict:
    """The run whose id (or unique id prefix, or name) is `prefix`; ValueError if none or ambiguous."""
    with connect() as c:
        ids = [r[0] for r in c.execute("SELECT id FROM runs WHERE id LIKE ? OR name = ?", (prefix + "%", prefix))]
    if len(ids) != 1:
        raise ValueError(f"No run matches {prefix!r}; `python -m core runs` lists them." if not ids else
                         f"{len(ids)} runs match {prefix!r}: give more of the id.")
    return get_run(ids[0])


def list_runs() -> list[dict]:
    with connect() as c:
        rows = [_row(r) for r in c.execute(
            "SELECT runs.*, (SELECT COUNT(*) FROM epochs e WHERE e.run_id = runs.id) AS epochs_done, "
            "(SELECT MAX(val_accuracy) FROM epochs e WHERE e.run_id = runs.id) AS best_val_acc "
            "FROM runs ORDER BY created")]
    return rows


def check_lease(c: sqlite3.Connection, run_id: str, holding: int | None) -> None:
    """Raise LeaseLost unless run `run_id`'s lease is still `holding` (None: no check, not a worker)."""
    if holding is None:
        return
    row = c.execute("SELECT lease FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None or row["lease"] != holding:
        raise LeaseLost(f"Run {run_id} is no longer held by lease {holding} (now "
                        f"{'deleted' if row is None else row['lease']}): a newer worker owns it.")


def update_run(run_id: str, holding: int | None = None, **fields) -> None:
    for key in ("info", "tags", "progress"):
        if key in fields and not isinstance(fields[key], str):
            fields[key] = json.dumps(fields[key])
    sets = ", ".join(f"{k} = ?" for k in fields)
    with connect(immediate=holding is not None) as c:
        check_lease(c, run_id, holding)
        c.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))


def set_status(run_id: str, status: str, error: str | None = None, holding: int | None = None) -> None:
    assert status in STATUSES, status
    fields = {"status": status, "error": None if error is None else printable(error)}
    if status in ("finished", "stopped", "failed", "interrupted"):
        fields["finished"] = time.time()
    update_run(run_id, holding, **fields)


def record_epoch(run_id: str, epoch: int, phase: str, metrics: dict, holding: int | None = None) -> None:
    """Store a finished epoch's metrics; `metrics["trains"]` (fine-tuning) is {"head": rate, block: rate, ...}."""
    keys = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
    trains = json.dumps(metrics["trains"]) if metrics.get("trains") else None
    with connect(immediate=holding is not None) as c:
        check_lease(c, run_id, holding)
        c.execute("INSERT INTO epochs (run_id, epoch, phase, " + ", ".join(keys) + ", trains) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, epoch) DO UPDATE SET "
                  "phase = excluded.phase, trains = excluded.trains, "
                  + ", ".join(f"{k} = excluded.{k}" for k in keys),
                  (run_id, epoch, phase, *[None if metrics.get(k) is None else float(metrics[k]) for k in keys],
                   trains))


def epochs(run_id: str) -> list[dict]:
    """A run's epochs in order: metrics, and "trains" ({"head": rate, block: rate, ...} or None)."""
    with connect() as c:
        rows = [dict(r) for r in c.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,))]
    for row in rows:
        row["trains"] = json.loads(row["trains"]) if row.get("trains") else None
    return rows


def append_log(c: sqlite3.Connection, run_id: str, message: str) -> None:
    """Add a line to the run's log inside the caller's transaction `c`."""
    c.execute("INSERT INTO log (run_id, ts, message) VALUES (?, ?, ?)", (run_id, time.time(), printable(message)))


def log(run_id: str, message: str, holding: int | None = None) -> None:
    with connect(immediate=holding is not None) as c:
        check_lease(c, run_id, holding)
        append_log(c, run_id, message)


def log_lines(run_id: str, limit: int = 200) -> list[dict]:
    with connect() as c:
        rows = c.execute("SELECT ts, message FROM log WHERE run_id = ? ORDER BY ts DESC LIMIT ?", (run_id, limit))
        return [dict(r) for r in reversed(rows.fetchall())]


def _owned(run_id: str, action: str, user: str | None) -> dict:
    """Run `run_id`, if `user` (default: the acting user) may `action` it; ValueError/PermissionError if not."""
    run = get_run(run_id)
    if run is None:
        raise ValueError(f"There is no run {run_id}: `python -m core runs` lists them.")
    access.require_owner(run, action, user)
    return run


def rename_run(run_id: str, name: str, user: str | None = None) -> None:
    if not name.strip():
        raise ValueError("A run's name cannot be empty.")
    _owned(run_id, "rename", user)
    update_run(run_id, name=name.strip())


def set_tags(run_id: str, tags: list[str], user: str | None = None) -> None:
    _owned(run_id, "tag", user)
    update_run(run_id, tags=sorted({t.strip() for t in tags if t.strip()}))


def set_published(run_id: str, published: bool, user: str | None = None) -> None:
    """Show run `run_id` to every student (or stop showing it); teachers only."""
    access.require_teacher("publish a run", user)
    _owned(run_id, "publish", user)
    update_run(run_id, published=int(bool(published)))


def delete_run(run_id: str, user: str | None = None) -> None:
    """Remove a run that is not running, with its epochs, log and folder (its owner or a teacher only)."""
    run = get_run(run_id)
    if run:
        access.require_owner(run, "delete", user)
    if run and run["status"] == "running":
        raise ValueError(f"Run {run_id} is running: stop it before deleting it.")
    import shutil
    with connect() as c:
        c.execute("DELETE FROM runs WHERE id = ?", (run_id,))
    shutil.rmtree(run_dir(run_id), ignore_errors=True)
