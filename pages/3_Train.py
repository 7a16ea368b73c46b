"""Train: start a recipe of the lecture, watch its curves live, stop or resume it; sweep freeze points."""
import streamlit as st

from core import settings
from core.analysis import charts
from core.data import datasets
from core.models import environment
from core.runs import monitor, runner
from core.data.augment import PRESET_TITLES, PRESETS
from core.config import BACKBONES, PRECISIONS, RECIPES, RunSpec
from core.data.folders import DataError
from pages.ui import all_runs, chart, fmt_acc, fmt_duration, pick_run, setup

setup("Train", "📈")
st.title("📈 Train")

recipe = st.selectbox("Recipe", list(RECIPES), key="train_recipe", format_func=lambda r: RECIPES[r].title)
info = RECIPES[recipe]
st.markdown(info.description)
if recipe == "scratch_bn":
    with st.expander("Why BatchNorm before ReLU, and why no bias in the convolution?"):
        st.markdown(
            "**BatchNormalization** rescales each channel of a batch to zero mean and unit variance, then applies "
            "a learned scale and shift. Placed **between the convolution and the ReLU**, it centres the values the "
            "ReLU sees, so about half of each channel stays active instead of dying or saturating, and gradients "
            "keep a healthy size through all the layers: training is faster and less sensitive to the learning "
            "rate. The convolution drops its **bias** (`use_bias=False`) because BatchNorm's shift does the same "
            "job: a bias would be subtracted away with the mean. (After the ReLU the normalised values would be cut "
            "at 0 again; the book's second edition puts BatchNorm before the activation, as here.)")
defaults = RunSpec.from_recipe(recipe)
model = settings.load()["model"]
lab_aug = settings.training_augment()

if info.uses_backbone:
    backbone = model.get("backbone", "vgg16")
    weights = model.get("weights", "imagenet")
    st.info(f"**Model:** {BACKBONES[backbone].title} · {environment.describe_weights(weights)} · head "
            f"{model.get('head', 'auto')} · dropout {model.get('dropout', 0.5)}"
            + (f" · fine-tuning from `{model.get('freeze_from') or BACKBONES[backbone].default_freeze_from}`"
               if recipe == "fine_tune" else ""))
    st.page_link("pages/2_Model.py", label="Change the backbone, weights or freeze point on the Model page", icon="🧱")

with st.form("train_form"):
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input("Epochs" + (" (phase 1: head)" if recipe == "fine_tune" else ""), 1, 10000,
                             defaults.epochs, key="train_epochs")
    lr = c2.number_input("Learning rate", 1e-7, 1.0, defaults.lr, format="%.0e", key="train_lr")
    batch = c3.number_input("Batch size", 1, 1024, defaults.batch_size, key="train_batch")
    size = c4.number_input("Image size (px)", 46 if not info.uses_backbone else 32, 512,
                           int(model.get("image_size", 150)) if info.uses_backbone else 150, 10, key="train_size")
    ft_epochs, ft_lr = 0, defaults.fine_tune_lr
    if recipe == "fine_tune":
        f1, f2, _, _ = st.columns(4)
        ft_epochs = f1.number_input("Fine-tuning epochs (phase 2)", 0, 10000, defaults.fine_tune_epochs,
                                    key="train_ft_epochs")
        ft_lr = f2.number_input("Fine-tuning learning rate", 1e-8, 1.0, defaults.fine_tune_lr, format="%.0e",
                                key="train_ft_lr")
    a1, a2, a3, a4 = st.columns(4)
    augment_options = ["recipe"] + (["lab"] if lab_aug else []) + [p for p in PRESETS]
    augment_labels = {"recipe": f"recipe default ({RECIPES[recipe].defaults.get('augment', 'none')})",
                      "lab": f"Augmentation page: {lab_aug.summary() if lab_aug else ''}", **PRESET_TITLES}
    augments = recipe not in ("scratch", "feature_extraction")
    augment = a1.selectbox("Augmentation", augment_options, key="train_augment", format_func=augment_labels.get,
                           disabled=not augments,
                           help="scratch and feature_extraction never augment (the lecture's baselines)")
    precision = a2.selectbox("Precision", PRECISIONS, key="train_precision",
                             help="auto: bfloat16 where the hardware computes it natively, else float32")
    seed = a3.number_input("Seed", 0, 2**31 - 1, 0, key="train_seed")
    name = a4.text_input("Run name", key="train_name", placeholder=defaults.display_name())
    started = st.form_submit_button("Start training", type="primary")

if started:
    overrides = dict(epochs=int(epochs), lr=float(lr), batch_size=int(batch), image_size=int(size),
                     seed=int(seed), precision=precision, name=name or None)
    if recipe == "fine_tune":
        overrides.update(fine_tune_epochs=int(ft_epochs), fine_tune_lr=float(ft_lr))
    if augments and augment != "recipe":
        overrides["augment"] = lab_aug.to_dict() if augment == "lab" else augment
    if info.uses_backbone:
        overrides.update(backbone=model.get("backbone", "vgg16"), weights=model.get("weights", "imagenet"),
                         head=model.get("head", "auto"), dropout=model.get("dropout", 0.5))
        if recipe == "fine_tune":
            overrides["freeze_from"] = model.get("freeze_from")
    data = settings.load()["data"]
    try:
        for path in (data, overrides.get("weights")):  # settings saved earlier may point anywhere
            if path and path not in ("imagenet", "none"):
                datasets.check_allowed(path)
        spec = RunSpec.from_recipe(recipe, data=data, **overrides)
        st.session_state["train_run"] = st.session_state["train_watch"] = runner.submit(spec)
        st.toast(f"Started {spec.display_name()}")
    except (ValueError, DataError, RuntimeError) as exc:
        st.error(str(exc))

if recipe == "fine_tune":
    with st.expander("Freeze-point sweep: fine-tune from several points and overlay the curves"):
        backbone = model.get("backbone", "vgg16")

        @st.cache_data(show_spinner="Reading the base's layers…")
        def layer_names(backbone: str, image_size: int) -> list[str]:
            from core.models.networks import base_layers
            return [r["name"] for r in base_layers(backbone, image_size)]

        names = layer_names(backbone, int(size))
        points = st.multiselect("Freeze points (first trainable layer)", names, key="sweep_points",
                                default=[n for n in ("block4_conv1", "block5_conv1", "block5_conv3") if n in names])
        if st.button("Queue the sweep", key="sweep_start", disabled=not points):
            ids = []
            for point in points:
                spec = RunSpec.from_recipe(
                    recipe, data=settings.load()["data"], backbone=backbone, weights=model.get("weights", "imagenet"),
                    head=model.get("head", "auto"), dropout=model.get("dropout", 0.5), image_size=int(size),
                    epochs=int(epochs), fine_tune_epochs=int(ft_epochs), lr=float(lr), fine_tune_lr=float(ft_lr),
                    batch_size=int(batch), seed=int(seed), precision=precision, freeze_from=point,
                    name=f"sweep · from {point}")
                ids.append(runner.submit(spec))
            st.session_state["sweep_runs"] = ids
            st.session_state["train_watch"] = ids[0]
            st.toast(f"Queued {len(ids)} runs; at most {runner.max_concurrent()} train at once.")

st.divider()
runs = all_runs()
if not runs:
    st.info("No runs yet: pick a recipe above and start one.")
    st.stop()
active = [r for r in runs if r["status"] in ("running", "queued")]
default_id = st.session_state.get("train_run") or (active[0]["id"] if active else None)
run = pick_run(runs, "train_watch", "Watching", default_id, with_status=False)


@st.fragment(run_every=2.0 if run["status"] in ("running", "queued") else None)
def live(run_id: str) -> None:
    snap = monitor.snapshot(run_id)
    r, rows = snap["run"], snap["epochs"]
    badge = {"running": "🟢 running", "queued": "⏳ queued", "finished": "✅ finished", "stopped": "⏹️ stopped",
             "failed": "❌ failed", "interrupted": "⚠️ interrupted"}[r["status"]]
    stopping = r["status"] == "running" and bool(r.get("stop_requested"))  # Stop clicked: the worker is finishing
    badge = "⏹️ stopping…" if stopping else badge
    vals = [e["val_accuracy"] for e in rows if e["val_accuracy"] is not None]
    m1, m2, m3, m4, m5 = st.columns([1.4, 1, 1, 1, 1])
    m1.metric("Status", badge)
    m2.metric("Epochs", f"{len(rows)}/{r['epochs_total']}")
    m3.metric("Best val accuracy", fmt_acc(max(vals) if vals else None))
    m4.metric("Time left", fmt_duration(snap["eta"]) if snap["eta"] is not None else "–")
    m5.metric("Precision", (r["precision_used"] or "–").replace("mixed_", ""))
    st.caption(f"Weights: {r['weights_used'] or '–'} · run `{r['id']}`")
    if r["status"] == "running":
        st.progress(snap["fraction"], text="stopping at the end of this batch; finished epochs are kept…" if stopping
                    else snap["label"] or "starting…")
    if r["error"]:
        (st.error if r["status"] == "failed" else st.warning)(r["error"])
    b1, b2, _ = st.columns([1, 1, 4])
    if r["status"] in ("running", "queued") and not stopping and b1.button("⏹ Stop", key=f"stop_{run_id}"):
        runner.stop(run_id)
        st.rerun(scope="fragment")
    if r["status"] in ("stopped", "interrupted", "failed") and len(rows) < r["epochs_total"] \
            and b2.button("▶ Resume", key=f"resume_{run_id}"):
        runner.resume(run_id)
        st.rerun()
    if rows:
        chart(charts.curves_figure(rows), key=f"curves_{run_id}", filename=f"{run_id}-curves")
        with st.expander("Why can the validation loss worsen while the accuracy improves?"):
            st.markdown(
                "Accuracy only asks whether each prediction falls on the right side of 0.5; the loss "
                "(binary cross-entropy) also measures **how confident** each prediction is. As a network starts "
                "to overfit it becomes more and more sure of itself: a few validation images it gets wrong with "
                "a probability near 0 or 1 cost a lot of loss (−log of a tiny number), even while a few more "
                "borderline images cross to the right side and the accuracy still rises. So the validation loss "
                "is the earlier warning of overfitting; it is also why the lecture saves the model of the best "
                "epoch, not the last one.")
    with st.expander("Log", expanded=r["status"] != "finished"):
        st.code("\n".join(line["message"] for line in snap["log"][-30:]) or "(empty)", language=None)
    if r["status"] not in ("running", "queued") and run["status"] in ("running", "queued"):
        st.rerun()  # the run ended: refresh the whole page once (stops the polling)


live(run["id"])

sweep = [r for r in runs if r["id"] in st.session_state.get("sweep_runs", [])]
if sweep:
    @st.fragment(run_every=3.0)
    def sweep_view(ids: list[str]) -> None:
        from core.runs import store
        series = {store.get_run(i)["name"]: store.epochs(i) for i in ids}
        st.subheader("Sweep: validation accuracy by freeze point")
        chart(charts.overlay_figure(series), key="sweep_chart", filename="freeze-point-sweep")
    sweep_view([r["id"] for r in sweep])
