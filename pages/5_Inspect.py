"""Inspect a trained run: its scores and mistakes on a split, the feature maps of any conv layer and a
Grad-CAM heatmap for one image, and where two runs disagree on the same images.

Layout and widgets only: the computations live in `core.analysis.inspection`, `core.analysis.gradcam` and `core.analysis.charts`;
results are cached per run and split (st.cache_data), the loaded model with st.cache_resource.
"""
import numpy as np
import streamlit as st
from PIL import Image

from core.analysis import charts, gradcam, inspection, report
from core.runs import artifacts
from core.data.folders import DataError, load_image
from pages.ui import all_runs, chart, escape_md, fmt_acc, image_upload, pick_run, setup

setup("Inspect", "🔍")
st.title("🔍 Inspect a trained model")
st.caption("What does a trained network get wrong, and what does it look at? Pick a finished run and one of its "
           "own validation or test splits (the images it was scored on, never the ones it trained on).")

SHOW = 224  # display size of single images


def stamp(run_id: str) -> float:
    """The model file's time stamp: a resumed and re-saved run gets fresh cache entries."""
    return artifacts.model_stamp(run_id)


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def model_for(run_id: str, model_stamp: float):
    return inspection.load_model(run_id)


@st.cache_data(show_spinner="Predicting every image of the split…", max_entries=16)
def result_for(run_id: str, split: str, model_stamp: float) -> dict:
    return inspection.split_result(run_id, split, model=model_for(run_id, model_stamp))


@st.cache_data(show_spinner="Predicting with the second run…", max_entries=16)
def result_on(other_id: str, other_stamp: float, run_id: str, split: str, model_stamp: float) -> dict:
    """Runs A and B on A's images that B did not train on ({"a", "b", "overlap"})."""
    return inspection.compare(result_for(run_id, split, model_stamp), other_id, model_for(other_id, other_stamp))


@st.cache_data(show_spinner=False, max_entries=16)
def conv_names(run_id: str, model_stamp: float) -> list[str]:
    return gradcam.conv_layers(model_for(run_id, model_stamp))


@st.cache_data(show_spinner="Computing feature maps…", max_entries=64)
def maps_for(run_id: str, model_stamp: float, image: np.ndarray, layer: str) -> np.ndarray:
    return gradcam.feature_maps(model_for(run_id, model_stamp), image, layer)


@st.cache_data(show_spinner="Computing Grad-CAM…", max_entries=64)
def cam_for(run_id: str, model_stamp: float, image: np.ndarray, layer: str) -> tuple[np.ndarray, np.ndarray]:
    return gradcam.grad_cam(model_for(run_id, model_stamp), image, layer)


@st.cache_data(show_spinner=False, max_entries=512)
def thumb(path: str, size: int = 160) -> np.ndarray:
    return load_image(path, size)


def big(image: np.ndarray, size: int = SHOW) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def gallery(cells: list[tuple[str, str]], per_row: int = 6) -> None:
    for start in range(0, len(cells), per_row):
        cols = st.columns(per_row)
        for col, (path, caption) in zip(cols, cells[start:start + per_row]):
            col.image(thumb(path), caption=caption, width="stretch")


def short(path: str) -> str:
    return "/".join(path.rsplit("/", 2)[-2:])


runs = inspection.inspectable(all_runs())
if not runs:
    st.info("No finished run with a saved model yet. Train one on the **Train** page (a few epochs of "
            "“Small CNN from scratch” at 64 px take a minute), then come back.")
    st.stop()

c1, c2 = st.columns([3, 1])
with c1:
    run = pick_run(runs, "inspect_run", "Run")
rid = run["id"]
try:
    splits = inspection.available_splits(rid)
    if not splits:
        raise DataError(f"Run {rid} recorded no validation or test images.")
    split = c2.radio("Split", splits, horizontal=True, key=f"inspect_split_{rid}")
    model_stamp = stamp(rid)
    result = result_for(rid, split, model_stamp)
except (DataError, FileNotFoundError, ValueError, OSError) as exc:
    st.error(f"Cannot inspect this run: {exc}")
    st.stop()
classes = result["classes"]
st.caption(f"Weights: {run['weights_used'] or '–'} · input {model_for(rid, model_stamp).input_shape[1]} px · "
           f"classes: {', '.join(classes)}")

# -- scores -------------------------------------------------------------------------------------------
st.header(f"How it does on the {split} images")
m1, m2, m3, m4 = st.columns(4)
m1.metric("Images", f"{result['n']:,}")
m2.metric("Accuracy", fmt_acc(result["accuracy"]))
m3.metric("Loss", f"{result['loss']:.4f}")
m4.metric("Wrong", f"{result['n'] - int(np.trace(result['confusion_matrix'])):,}")
if result["missing"]:
    st.warning(f"{result['missing']} {split} images of this run no longer exist and were left out.")
if result["overlap"]:
    st.warning(f"{result['overlap']} {split} images are also in this run's training split and were left out.")
left, right = st.columns([3, 2])
with left:
    chart(charts.confusion_figure(result["confusion_matrix"], classes), key="inspect_confusion",
          filename=f"{rid}-{split}-confusion")
with right:
    st.markdown("**Per class**", help="Recall: the share of the class's images the run recognised (a rare class "
                "with low recall is what class weights on the Train page address). Precision: the share of the "
                "images predicted as the class that are of it.")
    st.dataframe(result["per_class"], hide_index=True, column_config={
        "recall": st.column_config.ProgressColumn("recall", format="%.3f", min_value=0.0, max_value=1.0),
        "precision": st.column_config.ProgressColumn("precision", format="%.3f", min_value=0.0, max_value=1.0)})
    evaluation = {k: result[k] for k in ("split", "n", "accuracy", "loss", "classes", "confusion_matrix")}
    st.download_button("Download the run's report (HTML)", lambda: report.html_report(rid, evaluation),
                       file_name=f"{rid}-report.html", mime="text/html", key=f"inspect_report_{rid}",
                       on_click="ignore", help="Specification, metrics, curves and this evaluation on one page.")
    st.download_button("Download the run's report (Markdown)", lambda: report.markdown_report(rid, evaluation),
                       file_name=f"{rid}-report.md", mime="text/markdown", key=f"inspect_report_md_{rid}",
                       on_click="ignore")
    with st.expander("How to read a confusion matrix"):
        st.markdown("Each row is the true class, each column the predicted one; the diagonal holds the right "
                    "answers. A class whose row spreads off the diagonal is the one the model confuses, and the "
                    "column it spreads into is what it mistakes it for. Accuracy alone hides this: 0.9 can mean "
                    "“good at both” or “perfect at one, poor at the other”.")

st.subheader("The most confidently wrong images")
n_wrong = st.slider("How many", 4, 36, 12, step=4, key="inspect_n_wrong")
mistakes = inspection.confident_mistakes(result, n_wrong)
if mistakes:
    gallery([(m["path"], f"true {m['true']} · said {m['predicted']} {m['probability']:.2f}") for m in mistakes])
    st.caption("The probability the model gave its (wrong) answer: the surest mistakes first. Often they are "
               "unusual poses, crops or backgrounds, or images whose label is doubtful.")
else:
    st.success(f"No mistakes on these {result['n']} images.")

# -- one image ----------------------------------------------------------------------------------------
st.header("Look inside: one image")
size = int(model_for(rid, model_stamp).input_shape[1])
source = st.radio("Image", [f"From the {split} split", "Upload your own"], horizontal=True, key="inspect_source")
image, truth = None, None
if source == "Upload your own":
    image = image_upload("Image file", "inspect_upload", size)
else:
    pred = result["probs"].argmax(axis=1)
    order = list(range(result["n"]))
    index = st.selectbox(
        "Image", order, key=f"inspect_image_{rid}_{split}",
        format_func=lambda i: f"{'✓' if pred[i] == result['labels'][i] else '✗'} {short(result['paths'][i])}")
    try:
        image, truth = load_image(result["paths"][index], size), classes[result["labels"][index]]
    except (DataError, OSError, ValueError, Image.DecompressionBombError) as exc:
        st.error(escape_md(f"Cannot read that image: {exc}"))

names = conv_names(rid, model_stamp)
if image is not None and not names:
    st.warning("This model has no convolution layer to look into.")
elif image is not None:
    cam_layer = st.selectbox("Grad-CAM layer", names, index=len(names) - 1, key=f"inspect_cam_layer_{rid}",
                             help="The last conv layer is the usual choice: the most semantic features, "
                                  "still with a spatial layout.")
    heatmap, probs = cam_for(rid, model_stamp, image, cam_layer)
    predicted = int(np.argmax(probs))
    p1, p2, p3 = st.columns(3)
    p1.metric("Prediction", classes[predicted], help="The class with the highest probability")
    p2.metric("Probability", f"{probs[predicted]:.3f}")
    p3.metric("True class", truth or "–", delta=None if truth is None else
              ("right" if truth == classes[predicted] else "wrong"),
              delta_color="normal" if truth == classes[predicted] else "inverse")
    i1, i2, i3 = st.columns(3)
    i1.image(big(image), caption=f"the image ({size}×{size} px, as the model sees it)", width="stretch")
    i2.image(gradcam.overlay(image, heatmap, size=SHOW), caption=f"Grad-CAM for “{classes[predicted]}” at {cam_layer}",
             width="stretch")
    i3.image(big(gradcam.colormap(heatmap)), caption="the heatmap alone (bright: most evidence)", width="stretch")
    with st.expander("How Grad-CAM works"):
        st.markdown("Grad-CAM asks: *which channels of a conv layer would raise the score of the predicted class, "
                    "and where are they active?* It takes the gradient of the class score with respect to the "
                    "layer's feature maps, averages it over the map to get one weight per channel, sums the maps "
                    "with those weights and keeps the positive part. Bright regions are where the evidence for the "
                    "class was found. A model that looks at the background, not the animal, has learned a "
                    "shortcut, which a good validation accuracy alone would not reveal.")

    st.subheader("Feature maps")
    f1, f2 = st.columns([2, 1])
    map_layer = f1.selectbox("Conv layer", names, key=f"inspect_map_layer_{rid}")
    maps = maps_for(rid, model_stamp, image, map_layer)
    channels = maps.shape[-1]
    n = f2.slider("Channels shown", 1, min(64, channels), min(16, channels), key=f"inspect_channels_{rid}")
    st.image(gradcam.feature_grid(maps, n, cols=8, cell=96), width="stretch",
             caption=f"the first {n} of {channels} channels of {map_layer} ({maps.shape[0]}×{maps.shape[1]} each, "
                     f"each scaled to its own range; dark: inactive)")
    with st.expander("What feature maps show"):
        st.markdown("Each channel of a conv layer is one learned filter slid over the image: bright where its pattern "
                    "is present. The first layers respond to edges, colours and simple textures and still look like "
                    "the picture; deeper layers are smaller, more abstract (an ear, an eye, fur) and many channels "
                    "stay dark for a given image. This is why the lower layers of a pretrained base transfer to a "
                    "new task and the top ones are worth fine-tuning.")

# -- two runs -----------------------------------------------------------------------------------------
st.header("Compare with another run on the same images")
others = [r for r in runs if r["id"] != rid]
if not others:
    st.info("Train a second run (for example feature extraction, then fine-tuning) to see where they disagree.")
    st.stop()
other = pick_run(others, "inspect_other", "Second run (B)")
try:
    pair = result_on(other["id"], stamp(other["id"]), rid, split, model_stamp)
    result_a, other_result = pair["a"], pair["b"]
    if other_result["classes"] != classes:
        raise ValueError(f"run B has classes {other_result['classes']}, run A {classes}")
    diff = inspection.disagreements(result_a, other_result, 24)
except (DataError, FileNotFoundError, ValueError, OSError) as exc:
    st.error(f"Cannot compare these runs: {exc}")
    st.stop()
counts = diff["counts"]
st.caption(f"A = {run['name']} ({fmt_acc(result_a['accuracy'])}), B = {other['name']} "
           f"({fmt_acc(other_result['accuracy'])}), both on run A's {counts['images']} {split} images.")
if pair["overlap"]:
    st.warning(f"{pair['overlap']} of run A's {split} images are in run B's training split and were left out.")
cols = st.columns(5)
for col, key in zip(cols, ("disagree", "both right", "only A right", "only B right", "both wrong")):
    col.metric(key.capitalize(), f"{counts[key]:,}")
if diff["items"]:
    gallery([(d["path"], f"true {d['true']} · A {d['a_predicted']} {d['a_probability']:.2f} "
                         f"{'✓' if d['a_right'] else '✗'} · B {d['b_predicted']} {d['b_probability']:.2f} "
                         f"{'✓' if d['b_right'] else '✗'}") for d in diff["items"]])
else:
    st.success("The two runs agree on every image.")
