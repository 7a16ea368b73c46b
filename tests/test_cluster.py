"""Outgrowing one machine (issue 11): a run trained end to end with the PostgreSQL run store (TUNELAB_DB_URL).

The store's own behaviour on PostgreSQL (runs, epochs, queue, leases, owners) is checked in the default run by
tests/test_store.py (`store_home`); the end-to-end training here is nightly for time.
"""
from __future__ import annotations

import json

import pytest

from conftest import cli


@pytest.mark.nightly
def test_with_a_postgresql_store_a_run_trains_is_listed_and_no_sqlite_file_appears(home, tiny_data, postgres_db):
    env = {"TUNELAB_DB_URL": postgres_db, "TUNELAB_USER": "alice"}
    proc = cli("train", "--recipe", "scratch", "--data", tiny_data, "--epochs", "2", "--image-size", "48",
               "--batch-size", "8", "--wait", home=home, env=env, timeout=900)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["epochs_done"] == 2
    rows = json.loads(cli("runs", "--json", home=home, env=env).stdout)
    assert [(r["id"], r["owner"], r["status"]) for r in rows] == [(summary["run_id"], "alice", "finished")]
    assert not (home / "runs.sqlite").exists() and (home / "runs" / summary["run_id"] / "best.keras").is_file()
