"""The lecture's ladder: its five steps in order, run here with a small budget or taken from finished runs,
beside the book's published accuracies, with the weights each run used stated plainly.

Layout and widgets only: which run fills which step, the book's figures and the warnings come from
`core.analysis.ladder`; the chart from `core.analysis.charts`; test accuracies from `core.analysis.inspection` (cached).
"""

import streamlit as st

from core import settings
from core.analysis import charts, inspection, ladder
from core.models import environment
from core.runs import artifacts, store
from core.config import BACKBONES, SMALL_CNN_MIN_SIZE, RunSpec
from core.data.folders import DataError
from pages.ui import all_runs, chart, escape_md, fmt_acc, refresh_page, setup, user, weights_problem

setup("Ladder", "🪜")
st.title("🪜 The lecture's ladder")
st.caption("Five steps, each fixing the previous one's weakness: a small CNN from scratch overfits; augmentation "
           "and dropout push it further; a network pretrained on ImageNet brings features 2000 photos cannot "
           "teach; training its classifier on augmented images helps again; fine-tuning its top block adapts the "
           "most specialised features. The grey bars are the book's published figures "
           f"({ladder.BOOK_CONDITIONS}).")


@st.cache_data(show_spinner="Scoring on the test split…", max_entries=32)
def test_accuracy(run_id: str, model_stamp: float) -> float | None:
    """The run's accuracy on its own recorded test split; None when it has none."""
    if "test" not in inspection.available_splits(run_id):
        return None
    return inspection.split_result(run_id, "test")["accuracy"]


runs = all_runs()
steps = ladder.ladder(runs)
filled = [s for s in steps if s["run_id"]]
with_test = st.toggle("Evaluate each run on its test split", value=True, key="ladder_test",
                      help="Runs each step's best model over its test images once (cached).")
test_acc = {}
if with_test:
    for s in filled:
        try:
            model_stamp = artifacts.model_stamp(s["run_id"])
            test_acc[s["run_id"]] = test_accuracy(s["run_id"], model_stamp)
        except (DataError, FileNotFoundError, OSError, ValueError) as exc:
            st.caption(escape_md(f"No test accuracy for {s['name']}: {exc}"))

chart(charts.ladder_figure(steps, ladder.BOOK_LABEL, test_acc), key="ladder_chart", filename="ladder")
for warning in ladder.warnings(steps):
    st.warning(warning, icon="⚠️")
if not filled:
    st.info("No step has a finished run yet: queue the ladder below, or train the recipes on the Train page.")

st.dataframe([{"step": s["short"], "run": s["name"] or "–", "weights": s["weights"] or "–",
               "image size": s["image_size"], "training images": s["train_images"],
               "best val acc": s["val_acc"], "test acc": test_acc.get(s["run_id"]), "book": s["book"],
               "in progress": f"{s['pending']['status']} ({s['pending']['id']})" if s["pending"] else ""}
              for s in steps], hide_index=True, column_config={
    "best val acc": st.column_config.NumberColumn(format="%.3f"),
    "test acc": st.column_config.NumberColumn(format="%.3f"),
    "book": st.column_config.NumberColumn(format="%.2f")})
st.caption("A step shows the newest finished run of its recipe tagged “ladder” (the runs queued here are), or "
           "else the newest finished run of that recipe. Tag runs on the Compare page to choose them.")

pending = [s["pending"]["id"] for s in steps if s["pending"]]
if pending:
    @st.fragment(run_every=5.0)
    def watch(ids: list[str]) -> None:
        rows = [store.get_run(i) for i in ids]
        if any(r is None or r["status"] not in store.ACTIVE for r in rows):
            refresh_page()  # a step finished (or failed): redraw the ladder
        st.info("In progress: " + " · ".join(f"{escape_md(r['name'])} ({r['status']}, {r['epochs_done']}/{r['epochs_total']} "
                                             f"epochs)" for r in rows))
    watch(pending)

with st.expander("Why each step helps (and the numbers to expect)"):
    st.markdown(
        f"1. **From scratch** (book: {ladder.book_text('scratch')}): 2000 images are too few for 3.5M parameters; training accuracy reaches "
        "1.0 while validation stalls: overfitting.\n"
        f"2. **+ augmentation and dropout** (book: {ladder.book_text('scratch_aug')}): random transformations show new variants of each photo; dropout "
        "stops units from co-adapting. Overfitting comes much later.\n"
        f"3. **Feature extraction** (book: {ladder.book_text('feature_extraction')}): VGG16's convolutional base, trained on 1.4M ImageNet images, already "
        "knows edges, textures and animal parts; only a small classifier is trained on its outputs. Fast, but "
        "without augmentation it overfits quickly.\n"
        f"4. **Feature extraction + augmentation** (book: {ladder.book_text('feature_extraction_aug')}): the frozen base inside the model sees augmented "
        "images every epoch; slow on a CPU, clearly better.\n"
        f"5. **Fine-tuning** (book: {ladder.book_text('fine_tune')}): unfreeze the top block and train on with a tiny learning rate, adapting the "
        "most specialised features to cats and dogs.\n\n"
        "Smaller images, fewer epochs, other data or weights that are not ImageNet give lower numbers: the ladder "
        "states which weights each run used, and hatched bars mark runs whose weights are not ImageNet.")

st.subheader("Run the ladder")
model = settings.load()["model"]
c1, c2, c3, c4 = st.columns(4)
epochs = c1.number_input("Epochs per step", RunSpec.param("epochs")["min"], RunSpec.param("epochs")["max"], 3,
                         key="ladder_epochs",
                         help="Fine-tuning trains this many epochs for the head, then as many for the top block.")
size = c2.number_input("Image size (px)", SMALL_CNN_MIN_SIZE, RunSpec.param("image_size")["max"], 64, 2,
                       key="ladder_size",
                       help="The book uses 150 px; 64 px keeps the five runs to minutes on a CPU.")
keys = list(BACKBONES)
backbone = c3.selectbox("Pretrained base", keys, index=keys.index(model.get("backbone", "vgg16")),
                        format_func=lambda k: BACKBONES[k].title, key="ladder_backbone")
saved = model.get("weights", "imagenet")
options = ["imagenet", "none"] + ([saved] if saved not in ("imagenet", "none") else [])
weights = c4.selectbox("Weights", options, key="ladder_weights", format_func=environment.describe_weights)
chosen = st.multiselect("Steps", [r for r, _ in ladder.STEPS], default=[r for r, _ in ladder.STEPS],
                        key="ladder_steps", format_func=dict(ladder.STEPS).get)

# The warning follows the current selection (these widgets are not in a form, so it never lags behind).
problem = weights_problem(backbone, weights, int(size))
if problem:
    st.warning(escape_md(f"The pretrained steps would fail with these weights. {problem}"))
elif weights == "none":
    st.warning("Random weights: the pretrained steps learn from nothing but your images. Their bars will be marked "
               "“random init” and are not comparable to the book's ImageNet figures.")
elif weights != "imagenet":
    st.warning(escape_md(f"{environment.describe_weights(weights).capitalize()}: the ladder marks the pretrained "
                         f"steps' bars as not ImageNet, so they are not compared with the book's figures."))

if st.button("Queue the ladder", type="primary", key="ladder_queue", disabled=not chosen):
    try:
        specs = ladder.ladder_specs(int(epochs), int(size), settings.load()["data"], backbone, weights,
                                    recipes=chosen, confine=True)
        ids = ladder.queue(specs, user=user())
        st.toast(f"Queued {len(ids)} ladder runs.")
        st.rerun()
    except (ValueError, DataError) as exc:
        st.error(escape_md(exc))
st.caption("The runs train one after another in the background (like any run: see them on the Train and Compare "
           "pages) and the chart fills in as each finishes. The dataset is the one chosen on the Home page.")

st.caption("Book figures (Deep Learning with Python, 1st edition, ch. 5): "
           + ", ".join(f"{short} {ladder.book_text(r)}" for r, short in ladder.STEPS)
           + f" — best validation accuracy, {ladder.BOOK_CONDITIONS}. This lab's best validation accuracy: "
           + ", ".join(f"{s['short']} {fmt_acc(s['val_acc'])}" for s in steps) + ".")
