"""Train: start a recipe of the lecture, watch its curves live, stop or resume it; sweep freeze points."""
import streamlit as st

from core import settings
from core.analysis import charts
from core.config import ALL_FROZEN, BACKBONES, CLASS_WEIGHTS, PRECISIONS, RECIPES, RunSpec, rate_text
from core.data.augment_config import AugmentConfig
from core.data.augment_presets import ENGINES, PRESET_TITLES, PRESETS
from core.data import exclusions
from core.data.folders import DataError
from core.models import environment
from core.runs import assignments, monitor, runner, store
from core.runs.specs import build_spec
from pages.ui import (all_runs, chart, current_dataset, escape_md, fmt_acc, fmt_duration, pick_run, refresh_page,
                      setup, user)
from pages.ui import spec_form as form

setup("Train", "📈")
st.title("📈 Train")

task = None  # the assignment this page was opened for (Train?assignment=<id>, the link a teacher hands out)
if st.query_params.get(assignments.PARAM):
    try:
        task = assignments.get(st.query_params[assignments.PARAM])
    except (ValueError, RuntimeError) as exc:
        st.error(escape_md(f"{exc} The form below is not filled in."))
fixed = task["spec"] if task else {}
if task:
    st.session_state["train_recipe"] = task["recipe"]
    st.info(f"**Assignment: {escape_md(task['name'])}** (set by {escape_md(task['owner'])}). The fields marked 🔒 "
            f"are fixed: {escape_md(assignments.describe(task))}. Its {len(task['heldout']['files'])} held-out test "
            f"images ({escape_md(task['heldout']['source'])}) are left out of your run, and your finished runs are "
            f"scored on them for the leaderboard.")
    st.page_link("pages/8_Leaderboard.py", label="See the assignment's leaderboard", icon="🏆",
                 query_params={assignments.PARAM: task["id"]})

recipe = st.selectbox("Recipe", list(RECIPES), key="train_recipe", format_func=lambda r: RECIPES[r].title,
                      disabled=task is not None)
form.lock(recipe, fixed)
info = RECIPES[recipe]
st.markdown(info.description)
if info.batchnorm:
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
model_values = {}
if info.uses_backbone:
    model_values = {"backbone": model.get("backbone", "vgg16"), "weights": model.get("weights", "imagenet"),
                    "head": model.get("head", "auto"), "dropout": model.get("dropout", 0.5)}
    if info.fine_tunes:
        model_values["freeze_from"] = model.get("freeze_from")
    model_values.update({k: fixed[k] for k in model_values if k in fixed})  # an assignment's choice wins
    backbone = model_values["backbone"]
    st.info(f"**Model:** {BACKBONES[backbone].title} · {environment.describe_weights(model_values['weights'])} · "
            f"head {model_values['head']} · dropout {model_values['dropout']}"
            + (f" · fine-tuning from `{model_values['freeze_from'] or BACKBONES[backbone].default_freeze_from}`"
               if info.fine_tunes else ""))
    if info.fine_tunes and model_values["freeze_from"] == ALL_FROZEN:
        st.warning("The Model page's freeze point leaves every layer frozen: fine-tuning needs a first trainable "
                   "layer. Choose a block there, or pick a feature-extraction recipe.")
    if not {"backbone", "weights"} <= set(fixed):
        st.page_link("pages/2_Model.py", label="Change the backbone, weights or freeze point on the Model page",
                     icon="🧱")

with st.form("train_form"):
    c1, c2, c3, c4 = st.columns(4)
    values = {
        "epochs": form.number(c1, recipe, "epochs", defaults, suffix=" (phase 1: head)" if info.fine_tunes else ""),
        "lr": form.rate(c2, recipe, "lr", defaults),
        "batch_size": form.number(c3, recipe, "batch_size", defaults),
        "image_size": form.number(c4, recipe, "image_size", defaults,
                                  default=int(model.get("image_size", 150)) if info.uses_backbone else None),
    }
    if info.fine_tunes:
        f1, f2, f3, f4 = st.columns(4)
        values["fine_tune_epochs"] = form.number(f1, recipe, "fine_tune_epochs", defaults)
        values["fine_tune_lr"] = form.rate(f2, recipe, "fine_tune_lr", defaults)
        values["lr_block_ratio"] = form.number(f3, recipe, "lr_block_ratio", defaults,
                                               default=float(model.get("lr_block_ratio", defaults.lr_block_ratio)))
        values["unfreeze_every"] = form.number(f4, recipe, "unfreeze_every", defaults,
                                               default=int(model.get("unfreeze_every", defaults.unfreeze_every)))
    a1, a2, a3, a4 = st.columns(4)
    augment_options = ["recipe"] + (["lab"] if lab_aug else []) + list(PRESETS)
    augment_labels = {"recipe": f"recipe default ({PRESET_TITLES.get(info.defaults.get('augment', 'none'))})",
                      "lab": f"Augmentation page: {lab_aug.summary() if lab_aug else ''}", **PRESET_TITLES}
    if isinstance(fixed.get("augment"), dict):  # the teacher's own settings, not a preset
        augment_options = ["assignment"]
        augment_labels["assignment"] = f"the assignment's: {AugmentConfig.from_dict(fixed['augment']).summary()}"
    augment = form.choice(a1, recipe, "augment", augment_options, "recipe", augment_labels.get,
                          disabled=not info.augments)
    if info.augments and augment != "recipe":
        values["augment"] = lab_aug.to_dict() if augment == "lab" else augment
    values["precision"] = form.choice(a2, recipe, "precision", list(PRECISIONS), "auto")
    values["seed"] = form.number(a3, recipe, "seed", defaults)
    values["name"] = form.text(a4, recipe, "name", placeholder=task["name"] if task else defaults.display_name()) or None
    w1, w2, w3, w4 = st.columns(4)
    values["class_weight"] = form.choice(w1, recipe, "class_weight", list(CLASS_WEIGHTS), "none")
    values["exclude"] = exclusions.hashes(fixed.get("data") or settings.load()["data"] or current_dataset()[0])
    w2.caption((f"{len(values['exclude'])} images left out (chosen on the Data page)" if values["exclude"] else
                "No images left out (choose some on the Data page)")
               + (f", and the assignment's {len(task['heldout']['files'])} held-out images" if task else ""))
    values["deterministic"] = form.flag(w3, recipe, "deterministic", defaults)
    values["augment_engine"] = form.choice(w4, recipe, "augment_engine", list(RunSpec.param("augment_engine")["options"]),
                                           defaults.augment_engine, ENGINES.get, disabled=not info.augments)
    if not info.augments:
        st.caption(f"{info.title} never augments: it is one of the lecture's baselines.")
    started = st.form_submit_button("Start training", type="primary")

values.update(model_values)
data = settings.load()["data"]
if started:
    try:
        if task:  # the assignment's fixed values replace the form's, its held-out images are left out
            run_id = assignments.submit(task["id"], values, user=user(), confine=True, strict=False)
        else:
            run_id = runner.submit(build_spec(recipe, {**values, "data": data}, confine=True), user=user())
        st.session_state["train_run"] = st.session_state["train_watch"] = run_id
        st.toast(f"Started {escape_md(store.get_run(run_id)['name'])}")
    except (ValueError, DataError, RuntimeError) as exc:
        st.error(escape_md(f"Not started: {exc}"))

with st.expander("Find a learning rate: the range test (fastai's lr_find)"):
    st.caption("Trains one batch per rate, from 1e-7 up to 1 on a log scale, on this form's model and data "
               "(the first phase: on a pretrained base, the classifier), in its own process; the model is thrown "
               "away. The suggestion is the middle of the longest stretch where the loss keeps falling (valley).")
    if st.button("Run the range test", key="lr_find_start"):
        try:
            import uuid
            from core.runs import lr_find
            spec = build_spec(recipe, {**values, **model_values, "data": settings.load()["data"]}, confine=True)
            st.session_state["lr_find"] = (*lr_find.launch(spec, lr_find.folder(uuid.uuid4().hex[:12])), recipe)
        except (ValueError, DataError, RuntimeError) as exc:
            st.error(escape_md(f"Not started: {exc}"))

    def use_rate(rate: float, for_recipe: str) -> None:
        st.session_state[f"train_{for_recipe}_lr"] = rate
        form.remember(for_recipe, "lr", rate)

    from core.runs import lr_find
    sweeping = "lr_find" in st.session_state and lr_find.outcome(*st.session_state["lr_find"][:2])[0] == "running"

    @st.fragment(run_every=2.0 if sweeping else None)  # polls only while a range test runs
    def lr_find_view() -> None:
        if "lr_find" not in st.session_state:
            return
        proc, out, for_recipe = st.session_state["lr_find"]
        state, result = lr_find.outcome(proc, out)
        if state == "running":
            st.info("The range test is running…")
            return
        if sweeping:
            refresh_page()  # it ended: redraw the page once, which stops the polling
        if state == "failed":
            st.error(escape_md(f"The range test failed: {result}"))
            return
        picks = result["suggestions"]
        chart(charts.lr_find_figure(result), key="lr_find_chart", filename="lr-find")
        st.markdown(f"Suggested learning rate **{rate_text(result['suggested_lr'])}** (valley); steepest descent "
                    f"at {picks['steepest']:.2g}. {len(result['points'])} batches of {result['batch_size']} "
                    f"on {result['images']} training images, training {result['trains']}; the smoothed loss fell "
                    f"{picks['descent']:.1%}.")
        if not picks["clear"]:
            st.warning("No clear descent: the loss hardly fell during the sweep, so the suggestion is a guess. "
                       "Keep the recipe's rate, or sweep again with a larger batch or more images.")
        if st.button(f"Use this rate ({rate_text(result['suggested_lr'])})", key="lr_find_use", on_click=use_rate,
                     args=(result["suggested_lr"], for_recipe)):  # set before the form's widget exists in this run
            st.rerun()  # the form is outside this fragment: rerun the page to show it
    lr_find_view()

if info.fine_tunes:
    with st.expander("Freeze-point sweep: fine-tune from several points and overlay the curves"):
        @st.cache_data(show_spinner="Reading the base's layers…")
        def layer_names(backbone: str, image_size: int) -> list[str]:
            from core.models.networks import base_layers
            return [r["name"] for r in base_layers(backbone, image_size)]

        names = layer_names(backbone, values["image_size"])
        points = st.multiselect("Freeze points (first trainable layer)", names, key="sweep_points",
                                default=[n for n in ("block4_conv1", "block5_conv1", "block5_conv3") if n in names])
        st.caption("Each point is one run with the settings of the form above (augmentation included).")
        if st.button("Queue the sweep", key="sweep_start", disabled=not points):
            try:  # every spec is checked before any run is queued
                specs = [build_spec(recipe, {**values, "data": data, "freeze_from": point,
                                             "name": f"sweep · from {point}"}, confine=True) for point in points]
                ids = [runner.submit(spec, user=user()) for spec in specs]
                st.session_state["sweep_runs"] = ids
                st.session_state["train_watch"] = ids[0]
                st.toast(f"Queued {len(ids)} runs; at most {runner.max_concurrent()} train at once.")
            except (ValueError, DataError, RuntimeError) as exc:
                st.error(escape_md(f"Sweep not queued: {exc}"))

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
        (st.error if r["status"] == "failed" else st.warning)(escape_md(r["error"]))
    b1, b2, _ = st.columns([1, 1, 4])
    if r["status"] in ("running", "queued") and not stopping and b1.button("⏹ Stop", key=f"stop_{run_id}"):
        try:
            runner.stop(run_id, user=user())
        except PermissionError as exc:
            st.error(escape_md(exc))
        else:
            st.rerun(scope="fragment")
    if r["status"] in ("stopped", "interrupted", "failed") and len(rows) < r["epochs_total"] \
            and b2.button("▶ Resume", key=f"resume_{run_id}"):
        try:
            runner.resume(run_id, user=user())
        except (PermissionError, ValueError) as exc:
            st.error(escape_md(exc))
        else:
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
        refresh_page()  # the run ended: refresh the whole page once (stops the polling)


live(run["id"])

sweep = [r for r in runs if r["id"] in st.session_state.get("sweep_runs", [])]
if sweep:
    @st.fragment(run_every=3.0)
    def sweep_view(ids: list[str]) -> None:
        series = {store.get_run(i)["name"]: store.epochs(i) for i in ids}
        st.subheader("Sweep: validation accuracy by freeze point")
        chart(charts.overlay_figure(series), key="sweep_chart", filename="freeze-point-sweep")
    sweep_view([r["id"] for r in sweep])
