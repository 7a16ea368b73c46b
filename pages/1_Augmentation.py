"""Augmentation lab: tune ImageDataGenerator's parameters and see what training will feed."""
import streamlit as st

from core import settings
from core.analysis import ablation, charts
from core.data import datasets
from core.config import RunSpec
from core.data.augment_config import AugmentConfig, param_table
from core.data.augment_presets import ENGINES, PRESET_TITLES, PRESETS
from core.data.augment_export import to_imagedatagenerator_code, to_json, to_keras_layers_code
from core.data.folders import DataError, load_image
from core.data.preview import augmented_copies, describe
from pages.ui import all_runs, chart, current_dataset, escape_md, image_upload, setup

setup("Augmentation", "🎛️")
st.title("🎛️ Augmentation")
st.caption("Data augmentation generates more training data from the images you have, by random transformations "
           "that yield believable pictures. The model never sees the same picture twice, which fights overfitting. "
           "Only the training images are augmented: validation must measure the real task.")
with st.expander("Why augment only the training data?"):
    st.markdown(
        "- Augmentation is a **regulariser**: it shows the network new variants of the training images so it "
        "cannot memorise them, and must learn what stays the same (a cat turned, shifted or flipped is still a cat).\n"
        "- The **validation and test images measure the real task**: how well the model does on unmodified photos "
        "like the ones it will meet. Transforming them would change the question, make the measurement noisy "
        "from epoch to epoch, and hide overfitting.\n"
        "- In the lecture, only `train_datagen` has the random transformations; `test_datagen` only rescales "
        "(`ImageDataGenerator(rescale=1./255)`). The lab does the same: validation images are never transformed.\n"
        "- The transformed copies are still **strongly correlated** with the originals: augmentation cannot invent "
        "new information, so it reduces overfitting but does not remove it; dropout helps further.")

PARAMS = param_table()


def apply_config(cfg: AugmentConfig) -> None:
    """Put a configuration into the widgets."""
    st.session_state["aug_shear_loaded"] = cfg.shear_range  # a preset's own shear needs no warning
    for p in PARAMS:
        value = getattr(cfg, p["name"])
        if p["type"] == "range":
            st.session_state["aug_brightness_on"] = value is not None
            st.session_state["aug_brightness_range"] = tuple(value) if value else (0.8, 1.2)
        else:
            st.session_state[f"aug_{p['name']}"] = value


def on_preset() -> None:
    name = st.session_state["aug_preset"]
    user = settings.load()["presets"]
    apply_config(PRESETS[name] if name in PRESETS else AugmentConfig.from_dict(user[name]))


if "aug_rotation_range" not in st.session_state:
    apply_config(settings.training_augment() or PRESETS["lecture"])

left, right = st.columns([1, 2], gap="large")
with left:
    user_presets = settings.load()["presets"]
    st.selectbox("Preset", list(PRESETS) + list(user_presets), key="aug_preset", on_change=on_preset,
                 index=None, placeholder="Load a preset…",
                 format_func=lambda n: PRESET_TITLES.get(n, f"Saved: {n}"))
    values = {}
    for p in PARAMS:
        label = f"{p['label']} ({p['unit']})" if p["unit"] else p["label"]
        key = f"aug_{p['name']}"
        if p["type"] == "bool":
            values[p["name"]] = st.checkbox(label, key=key, help=p["help"])
        elif p["type"] == "choice":
            values[p["name"]] = st.selectbox(label, p["options"], key=key, help=p["help"])
        elif p["type"] == "range":
            on = st.checkbox(f"{label}: random brightness", key="aug_brightness_on", help=p["help"])
            rng = st.slider(label, p["min"], p["max"], key="aug_brightness_range", step=p["step"], disabled=not on)
            values[p["name"]] = tuple(rng) if on else None
        elif p["name"] == "rescale":
            values[p["name"]] = st.number_input(label, min_value=1e-6, max_value=1.0, key=key, format="%.6f",
                                                help=p["help"])
        elif p["name"] == "cval":
            values[p["name"]] = st.slider(label, p["min"], p["max"], key=key, step=p["step"], help=p["help"],
                                          disabled=values.get("fill_mode") != "constant")
        else:
            values[p["name"]] = st.slider(label, p["min"], p["max"], key=key, step=p["step"], help=p["help"])
    try:
        cfg = AugmentConfig(**values).validate()
    except ValueError as exc:
        st.error(escape_md(exc))
        st.stop()
    if 0 < cfg.shear_range < 2 and cfg.shear_range != st.session_state.get("aug_shear_loaded"):
        st.info(f"Shear is in degrees: {cfg.shear_range}° barely moves a pixel. The lecture's `shear_range=0.2` "
                "was read as radians (about 11.5°) by the Keras of 2017; try 10-15° to see that effect.")

with right:
    @st.cache_data(ttl=60, show_spinner=False)
    def samples(root: str, seed: int) -> list[str]:
        return datasets.sample_files(root, 24, seed)

    source = st.radio("Image", ["A training image", "Upload your own"], horizontal=True, key="aug_source")
    c1, c2, c3 = st.columns([2, 1, 1])
    n_copies = c2.slider("Copies", 1, 24, 8, key="aug_n")
    st.session_state.setdefault("aug_seed", 0)
    seed = c3.number_input("Seed", 0, 2**31 - 1, key="aug_seed", step=1)
    image = None
    if source == "Upload your own":
        image = image_upload("Image file", "aug_upload", 150, where=c1)
    else:
        try:
            root, _ = current_dataset()
            files = samples(str(root), 0)
            chosen = c1.selectbox("Training image", files, key="aug_file",
                                  format_func=lambda f: f.rsplit("/", 2)[-2] + "/" + f.rsplit("/", 1)[-1])
            image = load_image(chosen, 150)
        except (DataError, OSError, ValueError) as exc:
            st.error(escape_md(f"Cannot read that image: {exc}"))
    st.button("🎲 Re-roll", key="aug_reroll", help="Draw new random transformations (seed + 1)",
              on_click=lambda: st.session_state.update(aug_seed=st.session_state["aug_seed"] + 1))
    if image is not None:
        copies = augmented_copies(image, cfg, int(seed), n_copies)
        per_row = 5
        cells = [(image, "original")] + [(pixels, describe(params)) for pixels, params in copies]
        for start in range(0, len(cells), per_row):
            cols = st.columns(per_row)
            for col, (pixels, caption) in zip(cols, cells[start:start + per_row]):
                col.image(pixels, caption=caption, width="stretch")
        st.caption(f"150×150 px, as the networks see them. Copy k is what training with seed {seed} feeds at "
                   f"epoch k for the image at position 0: same function "
                   f"(`core.data.augment_transform.augment_image`), same seeds. "
                   f"Rescale ×{cfg.rescale:.6g} is applied after this, inside the model.")
        if st.toggle("Beside it: the same image through Keras preprocessing layers", key="aug_keras",
                     help="ImageDataGenerator is deprecated in favour of layers (RandomRotation, RandomZoom, ...); "
                          "this runs the exported layers code on the same image."):
            from core.data.layer_preview import differences, layer_copies
            k_copies = layer_copies(image, cfg, int(seed), min(n_copies, 4))
            g_copies = [pixels for pixels, _ in copies[:len(k_copies)]]
            gcol, kcol = st.columns(2, border=True)
            gcol.markdown("**ImageDataGenerator** (training's default engine)")
            kcol.markdown("**Keras preprocessing layers** (the exported code; the engine `keras_layers`)")
            for col, pictures in ((gcol, g_copies), (kcol, k_copies)):
                for cell, pixels in zip(col.columns(len(pictures)), pictures):
                    cell.image(pixels, width="stretch")
            st.caption("The same image and seed; copy k on each side is what training with that engine (the Train "
                       "page's Augmentation engine, `--augment-engine`) feeds at epoch k for the image at position 0. "
                       "The random draws differ between the two (each has its own generator): the conventions are "
                       "what to compare.")
            st.markdown("**What differs:**\n" + "\n".join(f"- {d}" for d in differences(cfg)))

st.divider()
st.subheader("Use it")
u1, u2 = st.columns(2)
with u1:
    current = settings.training_augment()
    st.markdown(f"**Training uses:** {current.summary() if current else 'each recipe’s default'}")
    if st.button("Use for training", type="primary", key="aug_use",
                 help="The Train page will offer this configuration to the recipes that augment"):
        settings.update(augment=cfg.to_dict())
        st.success(f"Training will use: {cfg.summary()}")
with u2:
    name = st.text_input("Save as preset", key="aug_preset_name", placeholder="my preset")
    if st.button("Save preset", key="aug_save", disabled=not name):
        settings.save_preset(name, cfg)
        st.success(f"Saved preset “{escape_md(name)}”.")

tab1, tab2, tab3 = st.tabs(["ImageDataGenerator code", "Keras preprocessing layers", "JSON"])
with tab1:
    st.code(to_imagedatagenerator_code(cfg), language="python")
with tab2:
    code, differences = to_keras_layers_code(cfg)
    st.code(code, language="python")
    st.markdown("**Where the layers differ from ImageDataGenerator:**\n" + "\n".join(f"- {d}" for d in differences))
with tab3:
    st.code(to_json(cfg), language="json")
    st.download_button("Download JSON", to_json(cfg), "augmentation.json", "application/json", key="aug_download")

st.divider()
st.subheader("Which transform helps? An ablation")
st.caption(f"Paired runs that differ only in augmentation: this configuration, the same with each enabled "
           f"transform removed in turn, and none; same data, same split, same seeds, on "
           f"{ablation.DEFAULT_RECIPE} (a frozen pretrained MobileNetV2 under a small classifier, trained on "
           f"augmented images). A bar below zero on accuracy means removing the transform hurt: it helps.")
transforms = ablation.enabled_transforms(cfg)
with st.form("ablation_form"):
    f1, f2, f3, f4, f5 = st.columns(5)
    abl_epochs = f1.number_input("Epochs per run", 1, 100, 5, key="abl_epochs")
    abl_size = f2.number_input("Image size (px)", 32, 224, 96, step=8, key="abl_size")
    abl_seeds = f3.number_input("Seeds", 1, 10, 3, key="abl_seeds")
    abl_weights = f4.text_input("MobileNetV2 weights", "imagenet", key="abl_weights",
                                help="imagenet or the path of a no-top MobileNetV2 weights file")
    abl_engine = f5.selectbox("Augmentation engine", list(RunSpec.param("augment_engine")["options"]),
                              format_func=ENGINES.get, key="abl_engine", help=RunSpec.param("augment_engine")["help"])
    n_runs = (len(transforms) + 2) * int(abl_seeds)
    queued = st.form_submit_button(f"Queue {n_runs} runs ({', '.join(transforms) or 'no transform enabled'})",
                                   disabled=not transforms, key="abl_queue")
if queued:
    try:
        group, planned = ablation.ablation_specs(cfg, {"data": settings.load()["data"], "backbone": "mobilenet_v2",
                                                       "weights": abl_weights.strip() or "imagenet",
                                                       "image_size": int(abl_size), "epochs": int(abl_epochs),
                                                       "lr": 1e-4, "augment_engine": abl_engine},
                                                 tuple(range(int(abl_seeds))))
        ablation.queue(group, planned)
        st.toast(f"Queued ablation {group}: {len(planned)} runs")
    except (ValueError, DataError, RuntimeError) as exc:
        st.error(escape_md(f"Not queued: {exc}"))
runs = all_runs()
groups = ablation.groups(runs)
if groups:
    group = st.selectbox("Ablation", groups, key="abl_group")
    res = ablation.results(group, runs)
    if res["pending"]:
        st.info(f"{res['pending']} of {len(res['runs'])} runs still queued or running; the chart fills as they end.")
    if any(b["delta_acc"] is not None for b in res["bars"]):
        chart(charts.ablation_figure(res), key="abl_chart", filename=f"ablation-{group}")
    st.markdown("**The runs behind each bar** (a bar pairs each variant's run with the *all* run of the same seed; "
                "open any of them on the Compare or Inspect page by its name)")
    st.dataframe([{**r, "val_accuracy": r["val_accuracy"], "val_loss": r["val_loss"]} for r in res["runs"]],
                 hide_index=True, column_order=["variant", "seed", "status", "val_accuracy", "val_loss", "name", "id"])
