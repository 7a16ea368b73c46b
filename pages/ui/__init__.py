"""Streamlit helpers shared by the pages (page set-up, run pickers, small formatting helpers).

Lives inside `pages/` as a package, so Streamlit does not list it as a page; holds no model logic.
"""
from __future__ import annotations

import time

import streamlit as st

from core import store


def setup(title: str, icon: str = "🧪") -> None:
    """Page config, shared by every page; call first."""
    st.set_page_config(page_title=f"{title} · Fine-Tuning Lab", page_icon=icon, layout="wide")


def fmt_acc(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def fmt_duration(seconds) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m {seconds % 60:02d}s"


def fmt_time(ts) -> str:
    return "–" if not ts else time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def run_label(run: dict) -> str:
    return f"{run['name']} · {run['status']} · {run['id']}"


def pick_run(runs: list[dict], key: str, label: str = "Run", default_id: str | None = None) -> dict | None:
    """A selectbox over runs (newest first); returns the chosen run row."""
    if not runs:
        return None
    runs = sorted(runs, key=lambda r: r["created"], reverse=True)
    ids = [r["id"] for r in runs]
    index = ids.index(default_id) if default_id in ids else 0
    chosen = st.selectbox(label, ids, index=index, key=key, format_func=lambda i: run_label(runs[ids.index(i)]))
    return runs[ids.index(chosen)]


def all_runs() -> list[dict]:
    from core import runner
    return runner.runs()


__all__ = ["setup", "fmt_acc", "fmt_duration", "fmt_time", "run_label", "pick_run", "all_runs", "store"]
