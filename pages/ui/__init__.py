"""Streamlit helpers shared by the pages (page set-up, presentation mode, charts, run pickers, formatting,
the one image uploader, Markdown escaping of user text).

Lives inside `pages/` as a package, so Streamlit does not list it as a page; holds no model logic.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from core.data import datasets
from core.data.folders import UPLOAD_TYPES, decode_upload
from core.runs import access, store


PRESENTATION = "presentation"          # session_state key shared by every page: presentation mode on/off
PRESENTATION_PARAM = "present"         # ...and the query parameter that keeps it across reloads
PRESENTATION_CSS = """<style>
html { font-size: 20px; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.15rem; }
[data-testid="stMetricValue"], [data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p {
  font-size: 2.25rem; }  /* Streamlit's own size, scaled with the larger root font */
[data-testid="stMetricLabel"] [data-testid="stMarkdownContainer"] p { font-size: 1rem; }
h1 { font-size: 3rem !important; }
</style>"""


def setup(title: str, icon: str = "🧪") -> None:
    """Page config and the sidebar's presentation toggle, shared by every page; call once per page run."""
    _route_through_app()
    st.set_page_config(page_title=f"{title} · Fine-Tuning Lab", page_icon=icon, layout="wide")
    if PRESENTATION not in st.session_state:
        st.session_state[PRESENTATION] = st.query_params.get(PRESENTATION_PARAM) == "1"
    st.session_state["presentation_toggle"] = st.session_state[PRESENTATION]
    st.sidebar.toggle("Presentation mode", key="presentation_toggle", on_change=_presentation_changed,
                      help="Larger fonts and taller charts for a projector; kept across pages and reloads.")
    if presentation():
        if st.query_params.get(PRESENTATION_PARAM) != "1":
            st.query_params[PRESENTATION_PARAM] = "1"
        st.markdown(PRESENTATION_CSS, unsafe_allow_html=True)
    elif PRESENTATION_PARAM in st.query_params:
        del st.query_params[PRESENTATION_PARAM]
    try:
        store.list_runs()  # an unwritable home or a broken store: say so once, plainly, and stop
    except RuntimeError as exc:
        st.error(str(exc))
        st.stop()
    name = user()
    if access.identity_mode() != "local" or access.teachers():
        st.sidebar.caption(f"Signed in as **{escape_md(name)}**" + (" (teacher)" if access.is_teacher(name) else ""))
    if access.identity_mode() == "oidc":
        st.sidebar.button("Log out", key="logout", on_click=st.logout)


def _route_through_app() -> None:
    """Make a page opened straight by its URL go through app.py's `st.navigation` menu.

    A `pages/` folder beside the entry script is also Streamlit's legacy (v1) multipage layout. Streamlit leaves
    it on until some session runs `st.navigation`, for the whole server ("as soon as any session of your app
    executes st.navigation, your app will ignore the pages/ directory (across all sessions)"). So while no browser
    has opened the root URL yet, `/Leaderboard` or a teacher's `/Train?assignment=...` link runs the page file
    alone, app.py never runs, and the sidebar shows the file names ("app", no icons). There is no public switch,
    so this page turns that same switch off (`PagesManager.uses_pages_directory`, the class attribute
    `st.navigation` clears) and reruns: the rerun goes through app.py with the same page and query string. Once
    per session, so a Streamlit that stopped honouring the switch cannot loop; without that attribute it does
    nothing. AppTest of a lone page file (no pages/ beside it) never has the switch on.
    """
    if getattr(PagesManager, "uses_pages_directory", None) and not st.session_state.get("_routed_through_app"):
        st.session_state["_routed_through_app"] = True
        PagesManager.uses_pages_directory = False
        st.rerun()


def refresh_page() -> None:
    """Rerun the whole page from a polling fragment (a run ended: redraw, stop polling), unless the user has
    already asked for another run meanwhile.

    Streamlit folds rerun requests into one and keeps the newest request's page: a plain `st.rerun()` here,
    landing after a click on the menu that the running fragment has not yet yielded to, would bring the user
    back to this page and lose the click. A pending request reruns the script anyway (or, if it only reruns a
    fragment, the next poll tries again)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType
    requests = getattr(get_script_run_ctx(), "script_requests", None)
    if requests is not None and getattr(requests, "_state", None) == ScriptRequestType.RERUN:
        return
    st.rerun()


def user() -> str:
    """Who is using this page, by the lab's identity mode (`core.runs.access.identity_mode`); a page without a
    user (no trusted header, not logged in) shows why, or the login button, and stops."""
    try:
        mode = access.identity_mode()
        if mode == "header":
            name = access.header_user(st.context.headers)
            if name is None:
                st.error(f"This lab takes its user from the {access.trusted_header()} "
                         f"header, which this request does not carry: open it through the class's login proxy.")
                st.stop()
            return name
        if mode == "oidc":
            name = access.oidc_user(st.user.to_dict())
            if name is None:
                st.info("Log in to see and start your runs.")
                st.button("Log in", key="login", type="primary", on_click=st.login)
                st.stop()
            return name
        return access.current()
    except ValueError as exc:
        st.error(escape_md(exc))
        st.stop()


def _presentation_changed() -> None:
    st.session_state[PRESENTATION] = bool(st.session_state["presentation_toggle"])


def presentation() -> bool:
    """True while presentation mode is on (for every page of this session)."""
    return bool(st.session_state.get(PRESENTATION, False))


MODEBAR_HEIGHT = 60  # px kept free above a chart's titles for plotly's toolbar (the modebar)


def plotly_config(filename: str = "chart") -> dict:
    """The plotly modebar settings of every chart: "Download plot as a PNG" at twice the size, zoom, pan and
    reset (the buttons a lesson uses), no logo."""
    return {"displaylogo": False, "displayModeBar": True,
            "modeBarButtonsToRemove": ["select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d"],
            "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2}}


def clear_of_modebar(fig):
    """Make room above a figure's title and subplot titles, so the modebar (drawn in the figure's top corner)
    never covers them; figures without titles keep their margins."""
    titled = bool(fig.layout.title.text) or any(
        a.yref == "paper" and (a.y or 0) >= 1 for a in fig.layout.annotations)
    if titled and (fig.layout.margin.t or 0) < MODEBAR_HEIGHT:
        fig.update_layout(margin_t=MODEBAR_HEIGHT)
    return fig


def chart(fig, key: str | None = None, filename: str = "chart") -> None:
    """st.plotly_chart with the lab's modebar config; taller, with larger text, in presentation mode."""
    if presentation():  # Streamlit's chart theme sets the fonts: enlarge each kind of text explicitly
        fig.update_layout(height=int((fig.layout.height or 450) * 1.4), font_size=18, legend_font_size=18,
                          title_font_size=22, hoverlabel_font_size=18)
        fig.update_xaxes(tickfont_size=16, title_font_size=18)
        fig.update_yaxes(tickfont_size=16, title_font_size=18)
        fig.update_annotations(font_size=18)
    st.plotly_chart(clear_of_modebar(fig), key=key, config=plotly_config(filename))


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$&])")


_AUTOLINK = re.compile(r"(?i)(://|www\.|@)")  # what GitHub-flavoured Markdown turns into links after escaping


def escape_md(text) -> str:
    """`text` (a run name, a file name, an error naming them) shown literally inside Markdown: no bold, links,
    colours (`:red[...]`), emoji codes, HTML or LaTeX. Every page escapes user text it puts into Markdown.

    Bare URLs and e-mail addresses are linked by the renderer even when escaped: an invisible zero-width space
    inside "://", "www." and "@" keeps them plain text."""
    text = _AUTOLINK.sub(lambda m: m.group(1)[0] + "\u200b" + m.group(1)[1:], str(text))
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


@st.cache_data(max_entries=8, show_spinner="Reading the image…")
def _decoded(file_id: str, name: str, size: int, _data: bytes) -> tuple[np.ndarray | None, str | None]:
    return decode_upload(name, _data, size)


def image_upload(label: str, key: str, size: int, where=None) -> np.ndarray | None:
    """The pages' one image uploader: an RGB (size, size, 3) array, or None (nothing uploaded, or an unusable
    file, which is then explained in one sentence naming the file; never a traceback or the upload's internals)."""
    where = where or st
    upload = where.file_uploader(label, type=UPLOAD_TYPES, key=key)
    if upload is None:
        return None
    image, error = _decoded(upload.file_id, upload.name, size, upload.getvalue())
    if error:
        where.error(escape_md(error))
    return image


@st.cache_data(ttl=60, show_spinner="Checking the weights…")
def _weights_problem(backbone: str, weights: str, image_size: int, stamp: int | None) -> str | None:
    from core.models.weights import WeightsError, check_weights
    try:
        check_weights(backbone, weights, image_size)
    except WeightsError as exc:
        return str(exc)
    return None


def weights_problem(backbone: str, weights: str, image_size: int) -> str | None:
    """None if a run can load these weights, else the sentence saying why not; cached per weights file version."""
    try:
        stamp = Path(weights).expanduser().stat().st_mtime_ns if weights not in ("imagenet", "none") else None
    except OSError:
        stamp = None
    return _weights_problem(backbone, weights, int(image_size), stamp)


def current_dataset() -> tuple[Path, str]:
    """`datasets.current()` for a page: while the demo data is generated on first use (by this page, or another
    page, tab or run at the same time), a progress bar says so instead of a silent, empty page."""
    slot = st.empty()
    try:
        return datasets.current(progress=lambda fraction, text: slot.progress(fraction, text=text))
    finally:
        slot.empty()


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
    labels = {i: run_label(by_id[i]) if with_status else f"{by_id[i]['name']} · {i}" for i in ids}
    # The browser keeps showing the label it was sent with the selection. When the chosen run's label changes
    # (renamed, or its status moved on), set the selection again so that the new label is sent at once.
    if st.session_state.get(f"{key}__label") not in (None, labels[st.session_state[key]]):
        st.session_state[key] = st.session_state[key]
    chosen = st.selectbox(label, ids, key=key, format_func=labels.get)
    st.session_state[f"{key}__label"] = labels[chosen]
    return by_id[chosen]


def all_runs() -> list[dict]:
    """The runs this page's user may see (their own and published ones; a teacher's: all)."""
    from core.runs import runner
    return runner.runs(user())


__all__ = ["setup", "user", "presentation", "plotly_config", "clear_of_modebar", "chart", "escape_md", "image_upload", "current_dataset", "fmt_acc",
           "fmt_duration", "fmt_time", "run_label", "pick_run", "all_runs", "store"]
