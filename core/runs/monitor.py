"""What a run is doing right now, for live views: its stage, progress fraction and time left."""
from __future__ import annotations

import time

from core.runs import store


def progress_fraction(progress: dict) -> tuple[float, str]:
    """(fraction of the current stage done, human label) from a run's progress record."""
    if not progress:
        return 0.0, ""
    if progress.get("stage") == "train":
        batches = max(1, progress.get("batches") or 1)
        done = progress.get("batch", 0)
        return min(1.0, done / batches), (f"epoch {progress.get('epoch')} [{progress.get('phase')}]: "
                                          f"batch {done}/{batches}")
    total = max(1, progress.get("total") or 1)
    done = progress.get("done", 0)
    return min(1.0, done / total), f"{progress.get('stage', 'working')}: {done}/{total}"


def eta_seconds(run: dict, rows: list[dict], now: float | None = None) -> float | None:
    """Seconds until the run ends, from the mean duration of its recent epochs; None when unknown."""
    if run["status"] != "running" or not rows:
        return None
    now = now or time.time()
    recent = [r["seconds"] for r in rows[-3:] if r["seconds"]]
    if not recent:
        return None
    per_epoch = sum(recent) / len(recent)
    remaining = max(0, run["epochs_total"] - len(rows))
    progress = run.get("progress") or {}
    current = progress.get("stage") == "train" and progress.get("epoch") == len(rows) + 1
    if current and progress.get("epoch_started"):
        elapsed = now - progress["epoch_started"]
        return max(0.0, remaining * per_epoch - min(elapsed, per_epoch))
    return remaining * per_epoch


def snapshot(run_id: str) -> dict:
    """Everything a live view shows about a run, read in one go."""
    run = store.get_run(run_id)
    rows = store.epochs(run_id)
    fraction, label = progress_fraction(run["progress"])
    return {"run": run, "epochs": rows, "fraction": fraction, "label": label, "eta": eta_seconds(run, rows),
            "log": store.log_lines(run_id, 60)}
