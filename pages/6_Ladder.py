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
from core.config import BACKBONES, SMALL_CNN_MIN_SIZE
from core.data.folders import DataError
from pages.ui import all_runs, chart, fmt_acc, setup

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


@st.cache_data(ttl=60, show_spinner=False)
def weights_status(backbone: str, image_size: int) -> dict:
    return environment.weights_status(backbone, image_size)


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
            st.caption(f"No test accuracy for {s['name']}: {exc}")

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
            st.rerun()  # a step finished (or failed): redraw the ladder
        st.info("In progress: " + " · ".join(f"{r['name']} ({r['status']}, {r['epochs_done']}/{r['epochs_total']} "
                                             f"epochs)" for r in rows))
    watch(pending)

with st.expander("Why each step helps (and the numbers to expect)"):
    st.markdown(
        "1. **From scratch** (book: ~0.72): 2000 images are too few for 3.5M parameters; training accuracy reaches "
        "1.0 while validation stalls: overfitting.\n"
        "2. **+ augmentation and dropout** (~0.84): random transformations show new variants of each photo; dropout "
        "stops units from co-adapting. Overfitting comes much later.\n"
        "3. **Feature extraction** (~0.90): VGG16's convolutional base, trained on 1.4M ImageNet images, already "
        "knows edges, textures and animal parts; only a small classifier is trained on its outputs. Fast, but "
        "without augmentation it overfits quickly.\n"
        "4. **Feature extraction + augmentation** (~0.96): the frozen base inside the model sees augmented "
        "images every epoch; slow on a CPU, clearly better.\n"
        "5. **Fine-tuning** (~0.97): unfreeze the top block and train on with a tiny learning rate, adapting the "
        "most specialised features to cats and dogs.\n\n"
        "Smaller images, fewer epochs, other data or weights that are not ImageNet give lower numbers: the ladder "
        "states which weights each run used, and hatched bars mark runs whose weights are not ImageNet.")

st.subheader("Run the ladder")
model = settings.load()["model"]
with st.form("ladder_form"):
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input("Epochs per step", 1, 1000, 3, key="ladder_epochs",
                             help="Fine-tuning trains this many epochs for the head, then as many for the top block.")
    size = c2.number_input("Image size (px)", SMALL_CNN_MIN_SIZE, 512, 64, 2, key="ladder_size",
                           help="The book uses 150 px; 64 px keeps the five runs to minutes on a CPU.")
    keys = list(BACKBONES)
    backbone = c3.selectbox("Pretrained base", keys, index=keys.index(model.get("backbone", "vgg16")),
                            format_func=lambda k: BACKBONES[k].title, key="ladder_backbone")
    saved = model.get("weights", "imagenet")
    options = ["imagenet", "none"] + ([saved] if saved not in ("imagenet", "none") else [])
    weights = c4.selectbox("Weights", options, key="ladder_weights", format_func=environment.describe_weights)
    chosen = st.multiselect("Steps", [r for r, _ in ladder.STEPS], default=[r for r, _ in ladder.STEPS],
                            key="ladder_steps", format_func=dict(ladder.STEPS).get)
    submitted = st.form_submit_button("Queue the ladder", type="primary")
st.caption("The runs train one after another in the background (like any run: see them on the Train and Compare "
           "pages) and the chart fills in as each finishes. The dataset is the one chosen on the Home page.")

if weights == "imagenet":
    status = weights_status(backbone, int(size))
    if status["status"] == "missing":
        st.warning(f"ImageNet weights for {BACKBONES[backbone].title} are not cached and this machine is offline: "
                   f"the pretrained steps would fail. Prefetch them (`python -m core prefetch --weights {backbone}`) "
                   "or choose random weights, whose results the ladder will mark as not comparable to the book's.")
elif weights == "none":
    st.warning("Random weights: the pretrained steps learn from nothing but your images. Their bars will be marked "
               "“random init” and are not comparable to the book's ImageNet figures.")

if submitted:
    try:
        specs = [s for s in ladder.ladder_specs(int(epochs), int(size), settings.load()["data"], backbone, weights)
                 if s.recipe in chosen]
        ids = ladder.queue(specs)
        st.toast(f"Queued {len(ids)} ladder runs.")
        st.rerun()
    except (ValueError, DataError) as exc:
        st.error(str(exc))

st.caption("Book figures: " + ", ".join(f"{short} {ladder.BOOK[r]:.2f}" for r, short in ladder.STEPS)
           + f" — best validation accuracy, {ladder.BOOK_CONDITIONS}. This lab's best validation accuracy: "
           + ", ".join(f"{s['short']} {fmt_acc(s['val_acc'])}" for s in steps) + ".")
