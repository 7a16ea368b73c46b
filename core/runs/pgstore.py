"""The run store's PostgreSQL backend, used when $TUNELAB_DB_URL is set (`core.runs.store.connect` picks it).

Same schema and API as the embedded SQLite store, so every node of a cluster can share one run store:
`connect()` returns a connection whose `execute` takes the store's SQLite-style `?` placeholders and whose rows
answer both `row["name"]` and `row[0]`, like `sqlite3.Row`. A write transaction (`immediate=True`) takes one
transaction-scoped advisory lock first, so read-modify-write sections (the queue, resume, leases) are serialised
exactly as SQLite's single writer serialises them. Needs the psycopg driver (requirements-cluster.txt).
"""
from __future__ import annotations

import re
from contextlib import contextmanager

STORE_LOCK = 0x7475_6e65  # the advisory lock key of the run store's writers ("tune")
_PLACEHOLDER = re.compile(r"\?")


def pg_schema(sqlite_schema: str) -> list[str]:
    """The store's SQLite schema as PostgreSQL statements (timestamps and metrics in double precision)."""
    text = sqlite_schema.replace("REAL", "DOUBLE PRECISION").replace("INTEGER", "BIGINT")
    return [s.strip() for s in text.split(";") if s.strip()]


class Row:
    """One result row: by column name or position, and `dict(row)` gives {column: value}."""
    __slots__ = ("_names", "_values")

    def __init__(self, names, values):
        self._names, self._values = names, values

    def keys(self):
        return list(self._names)

    def __getitem__(self, key):
        return self._values[key] if isinstance(key, int) else self._values[self._names.index(key)]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)


def _row_factory(cursor):
    names = [d.name for d in cursor.description] if cursor.description else []
    return lambda values: Row(names, values)


class Connection:
    """A psycopg connection that speaks the store's SQL (`?` placeholders)."""

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql: str, params=()):
        return self._conn.execute(_PLACEHOLDER.sub("%s", sql), tuple(params))


def driver():
    try:
        import psycopg
    except ImportError as exc:
        raise RuntimeError("TUNELAB_DB_URL is set but the PostgreSQL driver is not installed: pip install -r "
                           "requirements-cluster.txt, or unset TUNELAB_DB_URL to use the embedded SQLite store.") from exc
    return psycopg


_ready: set[str] = set()


@contextmanager
def connect(url: str, schema: str, added_columns, owner_default: str, immediate: bool = False,
            added_epoch_columns=()):
    """A transaction on the PostgreSQL store at `url` (schema created and migrated once per process)."""
    psycopg = driver()
    where = re.sub(r"//[^@/]*@", "//", url)  # never show a password
    try:
        raw = psycopg.connect(url, row_factory=_row_factory, connect_timeout=30)
    except psycopg.Error as exc:
        raise RuntimeError(f"Cannot reach the run store {where} ({str(exc).strip()}): check TUNELAB_DB_URL and that "
                           f"the server is running.") from exc
    try:
        conn = Connection(raw)
        if url not in _ready:
            with raw.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(?)", (STORE_LOCK,))
                for statement in pg_schema(schema):
                    conn.execute(statement)
                for name, kind in added_columns:
                    conn.execute(f"ALTER TABLE runs ADD COLUMN IF NOT EXISTS {name} {pg_schema(kind)[0]}")
                for name, kind in added_epoch_columns:
                    conn.execute(f"ALTER TABLE epochs ADD COLUMN IF NOT EXISTS {name} {pg_schema(kind)[0]}")
                conn.execute("UPDATE runs SET owner = ? WHERE owner IS NULL", (owner_default,))
            _ready.add(url)
        with raw.transaction():
            if immediate:
                conn.execute("SELECT pg_advisory_xact_lock(?)", (STORE_LOCK,))
            yield conn
    except psycopg.Error as exc:
        raise RuntimeError(f"Cannot use the run store {where} ({str(exc).strip()}): check the server's log and "
                           f"TUNELAB_DB_URL.") from exc
    finally:
        raw.close()
