"""Model: choose a pretrained convolutional base, its weights and a freeze point; see what trains."""
from pathlib import Path

import pandas as pd
import streamlit as st

from core import settings
from core.data import datasets
from core.models import environment, unfreezing
from core.analysis.charts import layer_params_figure
from core.config import ALL_FROZEN, BACKBONES, RunSpec, fine_tuning_spec, rate_text
from core.data.folders import DataError
from core.models.layer_table import blocks, freeze_table
from pages.ui import chart, escape_md, setup, weights_problem

setup("Model", "🧱")
st.title("🧱 Model: pretrained base and freeze point")


@st.cache_data(show_spinner="Building the convolutional base…")
def base_layers(backbone: str, image_size: int) -> list[dict]:
    from core.models.networks import base_layers as build  # TensorFlow is imported here, on first use only
    return build(backbone, image_size)


@st.cache_data(ttl=60, show_spinner=False)
def weights_status(backbone: str, image_size: int) -> dict:
    return environment.weights_status(backbone, image_size)


saved = settings.load()["model"]
c1, c2, c3 = st.columns(3)
keys = list(BACKBONES)
backbone = c1.selectbox("Backbone", keys, index=keys.index(saved.get("backbone", "vgg16")),
                        format_func=lambda k: BACKBONES[k].title, key="model_backbone")
image_size = c2.number_input("Image size (px)", min_value=BACKBONES[backbone].min_size, max_value=512,
                             value=int(saved.get("image_size", 150)), step=10, key="model_size",
                             help="The lecture uses 150×150. Larger sizes see more detail and cost more compute.")
status = weights_status(backbone, int(image_size))
choices = ["imagenet", "file", "none"]
saved_weights = saved.get("weights", "imagenet")
weights_kind = c3.radio("Weights", choices, horizontal=True, key="model_weights",
                        index=choices.index(saved_weights if saved_weights in ("imagenet", "none") else "file"),
                        format_func={"imagenet": "ImageNet", "file": "Local file", "none": "None (random)"}.get)
weights, problem = weights_kind, None
if weights_kind == "file":
    weights = st.text_input("Weights file (.h5 / .weights.h5, no top)", key="model_weights_path",
                            value=saved_weights if saved_weights not in ("imagenet", "none") else "").strip()
    if not weights:
        problem = "No weights file chosen: type the path of a weights file, or choose ImageNet or random weights."
    elif Path(weights).expanduser().exists():  # a path that does not exist is reported as such by the check
        try:
            datasets.check_allowed(weights)
        except DataError as exc:
            problem = str(exc)
if problem is None:
    problem = weights_problem(backbone, weights, int(image_size))
if problem:
    st.error(escape_md(problem))
elif weights_kind == "imagenet":
    note = {"cached": "✅ cached on this machine", "downloadable": "⬇️ will be downloaded on first use",
            "missing": "❌ not cached and this machine is offline"}[status["status"]]
    st.caption(f"ImageNet weights for {BACKBONES[backbone].title}: {note} (`{status['path']}`).")
elif weights_kind == "file":
    st.caption(f"✅ {escape_md(weights)} loads into {BACKBONES[backbone].title}.")

rows = base_layers(backbone, int(image_size))
block_list = blocks(rows)
names = [r["name"] for r in rows]
ALL_FROZEN_LABEL = "(none: all frozen)"
default_point = saved.get("freeze_from") if saved.get("backbone") == backbone else None
if default_point != ALL_FROZEN:
    default_point = default_point if default_point in names else BACKBONES[backbone].default_freeze_from

st.subheader("Freeze point")
p1, p2 = st.columns([1, 2])
by = p1.radio("Pick by", ["block", "layer"], horizontal=True, key="model_pick_by")
if by == "block":
    block_names = [b for b, _ in block_list] + [ALL_FROZEN_LABEL]
    first = {b: layer for b, layer in block_list}
    current_block = next((b for b, layer in block_list if layer == default_point), block_names[-1])
    chosen = p2.selectbox("First trainable block", block_names, index=block_names.index(current_block),
                          key=f"model_block_{backbone}")
    point = first.get(chosen)
else:
    options = names + [ALL_FROZEN_LABEL]
    chosen = p2.selectbox("First trainable layer", options,
                          index=options.index(ALL_FROZEN_LABEL if default_point == ALL_FROZEN else default_point),
                          key=f"model_layer_{backbone}")
    point = None if chosen == ALL_FROZEN_LABEL else chosen

st.caption("Fine-tuning schedule (the fine-tuning recipe's phase 2; see each field's help):")
s1, s2, _ = st.columns(3)
schedule, fine_tuning = {}, fine_tuning_spec()
for column, name, cast in ((s1, "lr_block_ratio", float), (s2, "unfreeze_every", int)):
    meta = RunSpec.param(name)
    schedule[name] = cast(column.number_input(
        meta["label"] + (f" ({meta['unit']})" if meta["unit"] else ""), min_value=cast(meta["min"]),
        max_value=cast(meta["max"]), step=cast(meta["step"]), value=cast(saved.get(name, getattr(fine_tuning, name))),
        key=f"model_{name}", help=meta["help"]))

table = freeze_table(rows, point, backbone, int(image_size))
m1, m2, m3 = st.columns(3)
m1.metric("Total parameters", f"{table['total_params']:,}")
m2.metric("Trainable", f"{table['trainable_params']:,}")
m3.metric("Frozen", f"{table['non_trainable_params']:,}")

fine_tune_lr = fine_tuning.fine_tune_lr
plan = unfreezing.preview(names, point, fine_tune_lr, schedule["lr_block_ratio"], schedule["unfreeze_every"])
chart(layer_params_figure(table, plan), key="model_chart", filename=f"{backbone}-layers")
if point:
    st.dataframe(pd.DataFrame([{"block": p["block"], "learning rate": f"{p['rate']:.3g}",
                                "trains from fine-tuning epoch": p["phase_epoch"]}
                               for p in plan if p["rate"] is not None][::-1]), hide_index=True)
    st.caption(f"Rates for the fine-tuning recipe's rate {rate_text(fine_tune_lr)}; the Train page's fine-tuning "
               f"rate scales them all. A block whose epoch comes after the run's last fine-tuning epoch never trains.")
frame = pd.DataFrame([{**r, "output_shape": "×".join(map(str, r["output_shape"]))} for r in table["layers"]])
st.dataframe(frame, hide_index=True, height=320, column_config={
    "params": st.column_config.NumberColumn("parameters", format="localized"),
    "trainable": st.column_config.CheckboxColumn("trainable")})

st.subheader("Classifier head")
h1, h2 = st.columns(2)
heads = ["auto", "flatten", "gap"]
head = h1.radio("Input to the classifier", heads, index=heads.index(saved.get("head", "auto")), horizontal=True,
                key="model_head", format_func={"auto": f"auto ({BACKBONES[backbone].default_head})",
                                               "flatten": "Flatten (lecture)", "gap": "Global average pooling"}.get)
dropout = h2.slider("Dropout before the output", 0.0, 0.8, float(saved.get("dropout", 0.5)), 0.05, key="model_dropout")
st.caption("Head: Flatten or GlobalAveragePooling2D → Dense(256, relu) → Dropout → Dense(1, sigmoid). "
           "VGG16 defaults to Flatten as in the lecture; MobileNetV2 and ResNet50 to pooling, since flattening "
           "their 5×5×1280 / 5×5×2048 maps would give a head with millions of parameters for 2000 images.")

if st.button("Use this model for training", type="primary", key="model_use"):
    if problem:  # never save weights a run cannot load (nor put other weights in their place)
        st.error(escape_md(f"Not saved: {problem}"))
    else:
        settings.update(model={"backbone": backbone, "weights": weights, "image_size": int(image_size),
                               "freeze_from": point or ALL_FROZEN, "head": head, "dropout": dropout, **schedule})
        tuning = (f"fine-tuning from {point}" if point else
                  "every layer frozen (feature extraction; fine-tuning needs a first trainable layer)")
        st.success(escape_md(f"The Train page will use {BACKBONES[backbone].title}, "
                             f"{environment.describe_weights(weights)}, {image_size} px, {tuning}."))

with st.expander("Why freeze the base first, fine-tune only the top, and use a low learning rate?"):
    st.markdown(
        "- **Freeze first.** A new classifier starts from random weights: its first gradients are large and, "
        "flowing back into the pretrained base, would wreck the features it learned on ImageNet. So the base is "
        "frozen (`trainable = False`) while the head learns.\n"
        "- **Fine-tune only the top.** Early layers detect generic edges, colours and textures, useful for any "
        "image; the top block encodes specialised, ImageNet-specific parts. Adapting those few layers helps most, "
        "and with 2000 images unfreezing millions more parameters risks overfitting.\n"
        "- **Low learning rate** (1e-5). The unfrozen layers are already good; small steps adjust them without "
        "destroying what they know.\n"
        "- **BatchNorm layers stay frozen** (inference mode), so their statistics are not overwritten by tiny batches.")
