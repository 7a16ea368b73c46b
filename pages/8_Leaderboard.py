"""Leaderboard: a teacher's assignments, each student's best run scored on the held-out images, in type a projector
shows; teachers create (and delete) assignments here and get the link that fills the Train page.

The page only reads scores: the worker scores an assignment run on the held-out images when it finishes
(`core.analysis.leaderboard`)."""
import html

import streamlit as st

from core import settings
from core.analysis import leaderboard
from core.config import BACKBONES, RECIPES, RunSpec
from core.data.augment_presets import PRESET_TITLES, PRESETS
from core.data.folders import DataError
from core.runs import access, assignments
from pages.ui import current_dataset, escape_md, setup, user

setup("Leaderboard", "🏆")
st.title("🏆 Leaderboard")
me = user()
teacher = access.is_teacher(me)

BOARD_CSS = """<style>
table.board { width: 100%; border-collapse: collapse; font-size: 1.9rem; }
table.board th { font-size: 1.2rem; text-align: left; border-bottom: 3px solid #888; padding: 0.3em 0.6em; }
table.board td { padding: 0.35em 0.6em; border-bottom: 1px solid #ddd; }
table.board td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.board td.rank, table.board th { white-space: nowrap; }
table.board td.run { font-size: 1.1rem; color: #555; }
table.board tr.top td { font-weight: 700; }
</style>"""


def board_html(rows: list[dict]) -> str:
    """The ranking as an HTML table in large type (names escaped)."""
    medal = {1: "🥇", 2: "🥈", 3: "🥉"}
    body = "".join(
        f"<tr class='{'top' if r['rank'] == 1 else ''}'><td class='rank'>{medal.get(r['rank'], '')} {r['rank']}</td>"
        f"<td>{html.escape(r['student'])}</td><td class='run'>{html.escape(r['run'])}</td>"
        f"<td class='num'>{r['accuracy']:.3f}</td><td class='num'>{r['n']}</td></tr>" for r in rows)
    return (f"{BOARD_CSS}<table class='board'><tr><th>rank</th><th>student</th><th>run</th>"
            f"<th>held-out accuracy</th><th>images</th></tr>{body}</table>")


def student_link(assignment_id: str) -> None:
    """The link that opens the Train page filled in with the assignment, and its address to hand out."""
    st.page_link("pages/3_Train.py", label="Open the Train page for this assignment", icon="📈",
                 query_params={assignments.PARAM: assignment_id})
    st.caption("The link to hand out, after the lab's own address:")
    st.code(assignments.link(assignment_id), language=None)


if "board_created" in st.session_state:
    made = st.session_state.pop("board_created")
    st.session_state["board_assignment"] = made["id"]
    st.success(f"Saved the assignment **{escape_md(made['name'])}** ({len(made['heldout']['files'])} held-out "
               f"images: {escape_md(made['heldout']['source'])}). Students open its link:")
    student_link(made["id"])

tasks = assignments.list_all()
if not tasks:
    st.info("No assignments yet. " + ("Create one below." if teacher else
                                      "Your teacher creates them (TUNELAB_TEACHERS), then hands out the link."))
else:
    by_id = {t["id"]: t for t in tasks}
    wanted = st.query_params.get(assignments.PARAM)
    if st.session_state.get("board_assignment") not in by_id:
        st.session_state["board_assignment"] = wanted if wanted in by_id else tasks[-1]["id"]
    chosen = st.selectbox("Assignment", list(by_id)[::-1], key="board_assignment",
                          format_func=lambda i: f"{by_id[i]['name']} · {i}")
    result = leaderboard.board(chosen)
    task = by_id[chosen]
    st.header(task["name"])
    st.caption(f"Fixed: {escape_md(assignments.describe(task))}. Held out: {result['assignment']['heldout_images']} "
               f"images ({escape_md(task['heldout']['source'])}), left out of every student run; each finished run is "
               f"scored on them when it ends, and each student's best run is ranked.")
    if result["rows"]:
        st.markdown(board_html(result["rows"]), unsafe_allow_html=True)
    else:
        st.info("No finished run of this assignment has been scored yet.")
    if result["unscored"]:
        st.caption(f"{len(result['unscored'])} finished runs have no held-out score yet (their scoring failed, or "
                   f"they finished before it existed): `python -m core leaderboard {chosen}` scores them.")
    student_link(chosen)
    if teacher:
        with st.expander(f"Delete the assignment {task['name']}"):
            sure = st.checkbox("Yes: delete it and its scores (its runs and their files are kept)", key="board_sure")
            if st.button("Delete", key="board_delete", disabled=not sure):
                assignments.delete(chosen, user=me)
                st.rerun()  # the selection moves to another assignment

if teacher:
    st.divider()
    st.subheader("New assignment")
    st.caption("Every student run of it uses these values; students choose the rest (learning rate, batch size, "
               "seed…). A held-out test split is chosen now and left out of every student run.")
    recipe = st.selectbox("Recipe", list(RECIPES), key="assign_recipe", format_func=lambda r: RECIPES[r].title)
    info, defaults = RECIPES[recipe], RunSpec.from_recipe(recipe)
    meta = RunSpec.param
    with st.form("assign_form"):
        name = st.text_input("Assignment name", key="assign_name", placeholder="Week 3: fine-tuning")
        data = st.text_input(meta("data")["label"], key="assign_data", value=str(settings.load()["data"] or
                                                                                  current_dataset()[0]),
                             help=meta("data")["help"])
        c1, c2, c3, c4 = st.columns(4)
        values = {"data": data,
                  "epochs": int(c1.number_input(meta("epochs")["label"], value=defaults.epochs, step=1,
                                                key="assign_epochs", help=meta("epochs")["help"])),
                  "image_size": int(c2.number_input(f"{meta('image_size')['label']} (px)", value=defaults.image_size,
                                                    step=10, key="assign_image_size",
                                                    help=meta("image_size")["help"]))}
        presets = list(PRESETS) if info.augments else [info.defaults.get("augment", "none")]
        values["augment"] = c3.selectbox(meta("augment")["label"], presets, key="assign_augment",
                                         index=presets.index(info.defaults.get("augment", "none")),
                                         format_func=PRESET_TITLES.get, help=meta("augment")["help"])
        fraction = c4.number_input("Held-out fraction", min_value=0.05, max_value=0.45, value=0.1, step=0.05,
                                   key="assign_fraction", help="Of a folder without test/ images: the share of each "
                                                               "class held out (a folder with test/ holds those out).")
        if info.fine_tunes:
            values["fine_tune_epochs"] = int(c1.number_input(meta("fine_tune_epochs")["label"],
                                                             value=defaults.fine_tune_epochs, step=1,
                                                             key="assign_fine_tune_epochs"))
        if info.uses_backbone:
            model = settings.load()["model"]
            values["backbone"] = c2.selectbox(meta("backbone")["label"], list(BACKBONES), key="assign_backbone",
                                              index=list(BACKBONES).index(model.get("backbone", "vgg16")))
            values["weights"] = c3.text_input(meta("weights")["label"], value=model.get("weights", "imagenet"),
                                              key="assign_weights", help=meta("weights")["help"])
        saved = st.form_submit_button("Save the assignment", type="primary")
    if saved:
        try:
            with st.spinner("Checking the settings and choosing the held-out images…"):
                made = assignments.create(name, recipe, values, user=me, heldout_fraction=fraction, confine=True)
            st.session_state["board_created"] = made  # shown, and selected, at the top of the next run
            st.rerun()
        except (ValueError, DataError, RuntimeError, PermissionError) as exc:
            st.error(escape_md(f"Not saved: {exc}"))
