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


def pick_run(runs: list[dict], key: str, label: str = "Run", default_id: str | None = None,
             with_status: bool = True) -> dict | None:
    """A selectbox over runs (newest first); returns the chosen run row.

    `default_id` is selected when the box has no valid choice yet; set st.session_state[key] to a
    run id before this call to move the selection (e.g. to a run just started).
    """
    if not runs:
        return None
    runs = sorted(runs, key=lambda r: r["created"], reverse=True)
    ids = [r["id"] for r in runs]
    if st.session_state.get(key) not in ids:
        st.session_state[key] = default_id if default_id in ids else ids[0]
    by_id = {r["id"]: r for r in runs}
    chosen = st.selectbox(label, ids, key=key, format_func=lambda i: run_label(by_id[i]) if with_status else
                          f"{by_id[i]['name']} · {i}")
    return by_id[chosen]


def all_runs() -> list[dict]:
    from core import runner
    return runner.runs()


__all__ = ["setup", "fmt_acc", "fmt_duration", "fmt_time", "run_label", "pick_run", "all_runs", "store"]
