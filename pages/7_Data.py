"""Data: is the dataset honest? Class balance, image sizes, unreadable files, duplicates across splits (leakage)
and likely label errors, each with a gallery to review, and a selection of files to leave out of future runs.

Layout and widgets only: the findings come from `core.analysis.health`, the exclusion list from
`core.data.exclusions` (the Train page passes it as the run's `exclude`; files are never deleted).
"""
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from core.analysis import health
from core.data import exclusions
from core.data.folders import DataError
from core.models.weights import WeightsError
from pages.ui import chart, current_dataset, escape_md, setup

setup("Data", "🩺")
st.title("🩺 Is the data honest?")
st.caption("The silent failures of small image sets: the same photo in training and test (the score then "
           "measures memory), mislabelled photos, and classes of very different sizes. Check the dataset in use, "
           "review each finding, and leave chosen files out of future runs.")

root, label = current_dataset()
st.markdown(f"Dataset: **{escape_md(label)}** (`{root}`)")  # a code span shows backslash escapes as typed

c1, c2, c3 = st.columns([1, 2, 1])
labels_on = c1.toggle("Check labels", value=True, key="data_labels",
                      help="Out-of-fold predictions of a logistic regression on a pretrained base's features, "
                           "scored by cleanlab (a minute or two for 4000 images on a CPU).")
weights = c2.text_input("MobileNetV2 weights", value="imagenet", key="data_weights",
                        help="imagenet (Keras's download, cached) or the path of a no-top MobileNetV2 weights file.")
run_check = c3.button("Check the dataset", type="primary", key="data_check")
if run_check:
    bar = st.progress(0.0, text="scanning")
    try:
        found = health.check(root, "mobilenet_v2" if labels_on else None, weights.strip() or "imagenet",
                             progress=lambda what, f: bar.progress(min(1.0, f), text=what))
        health.save(found)
    except WeightsError as exc:
        st.error(escape_md(f"Not checked: {exc}") + "  \nHere the label check's weights are the MobileNetV2 "
                 "weights field above: enter the path of a no-top MobileNetV2 weights file, or turn Check labels off "
                 "(the duplicate, size and balance checks need no weights).")
    except (DataError, ValueError, RuntimeError) as exc:
        st.error(escape_md(f"Not checked: {exc}"))
    bar.empty()

report = health.saved(root)
if report is None:
    st.info("No check of this dataset yet: press **Check the dataset**.")
    st.stop()

# -- balance and sizes ----------------------------------------------------------------------------------------------
st.subheader("Classes and image sizes")
left, right = st.columns(2)
with left:
    rows = [{"split": split, **counts, "total": sum(counts.values())} for split, counts in report["classes"].items()]
    st.dataframe(rows, hide_index=True)
    for split, counts in report["classes"].items():
        if counts and max(counts.values()) > 1.5 * max(1, min(counts.values())):
            st.warning(f"{split}: the largest class has {max(counts.values()) / max(1, min(counts.values())):.1f}x "
                       f"the images of the smallest; consider balanced class weights on the Train page.")
    if report["unreadable"]:
        st.warning(f"{len(report['unreadable'])} files cannot be used and are skipped:")
        st.dataframe(report["unreadable"], hide_index=True)
    else:
        st.caption("Every image file can be read.")
with right:
    sizes = report["image_sizes"]
    fig = go.Figure([go.Histogram(x=sizes["widths"], name="width", opacity=0.6),
                     go.Histogram(x=sizes["heights"], name="height", opacity=0.6)])
    fig.update_layout(barmode="overlay", height=260, margin=dict(t=30, b=30, l=40, r=10),
                      title=dict(text=f"{sizes['n']} images; {sizes['smallest_side_under_150']} with a side under "
                                      f"150 px", font=dict(size=13)), xaxis_title="pixels")
    chart(fig, key="data_sizes", filename="image-sizes")

excluded = exclusions.load(root)
chosen: set[str] = set(excluded.values())


def pick(path: str, key: str, where) -> None:
    """A checkbox that puts `path` in the exclusion selection."""
    if where.checkbox("exclude", value=path in chosen, key=key):
        chosen.add(path)
    else:
        chosen.discard(path)


def thumb(where, path: str, caption: str) -> None:
    if Path(path).is_file():
        where.image(path, caption=caption, width=150)
    else:
        where.caption(f"(gone) {caption}")


# -- duplicates -----------------------------------------------------------------------------------------------------
groups = report["duplicate_groups"]
st.subheader(f"Duplicates: {len(groups)} groups, {report['leakage']} across splits")
st.caption(f"Byte-identical files, and near copies (resized, recompressed, lightly cropped: a perceptual hash within "
           f"{health.NEAR_DISTANCE} bits of {health.PHASH_SIZE ** 2}). A group spanning splits is leakage: the "
           f"network is scored on a photo it trained on.")
for g, group in enumerate(groups[:40]):
    kind = "identical" if group["exact"] else f"near copies (distance {group['distance']})"
    head = ("🚩 LEAKAGE · " if group["leakage"] else "") + f"group {g + 1}: {kind}"
    with st.container(border=True):
        st.markdown(f"**{head}**")
        cols = st.columns(max(4, len(group["members"])))
        for i, m in enumerate(group["members"]):
            thumb(cols[i], m["path"], f"{m['split']}/{m['class']}/{Path(m['path']).name}")
            pick(m["path"], f"dup_{g}_{i}", cols[i])

# -- label errors ---------------------------------------------------------------------------------------------------
errors = report["suspected_label_errors"]
st.subheader(f"Suspected label errors: {len(errors)}")
st.caption(report["label_check"] + ". Ranked worst first; the score is the predicted probability of the given "
           "label (cleanlab's self-confidence): near 0, the features say it is the other class.")
n_show = st.slider("Show the first", 4, max(4, min(60, len(errors))), min(16, max(4, len(errors))), 4,
                   key="data_n_errors") if len(errors) > 4 else len(errors)
cols = st.columns(4)
for i, e in enumerate(errors[:n_show]):
    where = cols[i % 4]
    thumb(where, e["path"], f"#{i + 1} {e['split']}/{Path(e['path']).name}: given {e['given']}, looks like "
                            f"{e['suggested']} ({e['score']:.3f})")
    pick(e["path"], f"err_{i}", where)

# -- exclusion ------------------------------------------------------------------------------------------------------
st.subheader("Leave out of future runs")
st.markdown(f"**{len(chosen)}** files selected; **{len(excluded)}** excluded now. Runs started on the Train page "
            f"leave the excluded files out of every split and list them in their recorded split; the files stay "
            f"where they are.")
b1, b2, _ = st.columns([1, 1, 2])
if b1.button("Save the selection as the exclusion list", key="data_save"):
    exclusions.save(root, sorted(chosen))
    st.toast(f"{len(chosen)} files will be left out of future runs on this dataset")
    st.rerun()
if b2.button("Select every duplicate but one, and every suspect", key="data_suggest"):
    exclusions.save(root, health.excluded_paths(report))
    st.rerun()
if excluded:
    st.dataframe([{"file": p} for p in sorted(excluded.values())], hide_index=True, height=180)
