"""Fine-Tuning Lab: the entry point (`streamlit run app.py`), its navigation and the home page.

Home: what the lab is for, the dataset in use, and the environment at a glance. This page never
imports TensorFlow, so it opens fast; the other pages live in pages/.
"""
import streamlit as st

from core.data import datasets, prefetch
from core.models import environment
from core.config import BACKBONES
from core.data.folders import DataError, scan
from pages.ui import current_dataset, escape_md, setup


@st.cache_data(ttl=30, show_spinner="Checking the dataset…")
def dataset_report(path: str) -> dict:
    return scan(path).report()


@st.cache_data(ttl=60, show_spinner=False)
def weights_table() -> list[dict]:
    is_online = environment.online()
    return [environment.weights_status(key, 224, is_online) for key in BACKBONES]


def home() -> None:
    """The home page."""
    setup("Home", "🧪")
    st.title("🧪 Fine-Tuning Lab")
    st.markdown(
        "Learn image augmentation, transfer learning and fine-tuning by replaying the classic small-data "
        "experiment of *Deep Learning with Python* (ch. 5): tell cats from dogs with 2000 training photos, "
        "first with a **small CNN from scratch**, then with **augmentation and dropout**, then by **feature "
        "extraction** on a pretrained VGG16, then by **fine-tuning** its top block.\n\n"
        "1. **Augmentation**: tune ImageDataGenerator's transformations on your own images.\n"
        "2. **Model**: choose a pretrained base and a freeze point, and see what trains.\n"
        "3. **Train**: start a recipe and watch its curves live; stop or resume it.\n"
        "4. **Compare**: put runs side by side, download metrics, models and one-page reports.\n"
        "5. **Inspect**: see what a trained model gets wrong, its feature maps and where it looks (Grad-CAM).\n"
        "6. **Ladder**: replay the lecture's five steps and set them beside the book's published accuracies.\n"
        "7. **Data**: find duplicates across splits and likely label errors, and leave them out.\n"
        "8. **Leaderboard**: a teacher's assignments, each student's best run scored on held-out images.")

    st.header("Dataset in use")
    try:
        root, label = current_dataset()
        report = dataset_report(str(root))
        counts = report["counts"]
        st.markdown(f"**{escape_md(label)}** — `{root}`")
        cols = st.columns(len(counts) + 1)
        for col, (split, per_class) in zip(cols, counts.items()):
            col.metric(split, f"{sum(per_class.values()):,} images",
                       help=", ".join(f"{c}: {n}" for c, n in per_class.items()))
        cols[-1].metric("classes", len(report["classes"]), help=", ".join(report["classes"]))
        if report["skipped"]:
            with st.expander(f"{len(report['skipped'])} files skipped"):
                st.dataframe(report["skipped"], hide_index=True)
    except (DataError, RuntimeError, OSError) as exc:
        st.error(escape_md(str(exc)))

    with st.expander("Change the dataset"):
        source = st.radio("Source", ["Built-in demo data", "A folder on this machine", "Upload a zip of class folders"],
                          horizontal=True, key="data_source")
        if source == "Built-in demo data":
            st.caption("Drawn cartoon cat and dog heads with random pose, size, colour, background, clutter and noise "
                       "(1000 training, 500 validation, 500 test images), generated on this machine.")
            if st.button("Use the demo data", key="use_demo"):
                datasets.use_folder(None)
                st.rerun()
        elif source == "A folder on this machine":
            st.caption("One subfolder per class (cats/, dogs/, …), either directly or inside train/, validation/ and "
                       "optionally test/. Unsplit folders get a seeded 70/20/10 split.")
            path = st.text_input("Folder path", key="data_path", placeholder="/home/me/data/cats_vs_dogs_small").strip()
            st.caption("Folders the lab may read: " + ", ".join(f"`{r}`" for r in datasets.allowed_roots())
                       + " (set TUNELAB_DATA_ROOTS before starting the lab to allow others).")
            if st.button("Use this folder", key="use_folder", disabled=not path):
                try:
                    ds = datasets.use_folder(path)
                    st.success(escape_md(f"Using {path}: classes {', '.join(ds.classes)}."))
                    st.rerun()
                except (DataError, RuntimeError) as exc:
                    st.error(escape_md(exc))
        else:
            upload = st.file_uploader("Zip of class folders", type=["zip"], key="data_zip")
            if upload is not None and st.button("Unpack and use", key="use_zip"):
                try:
                    folder = datasets.extract_upload(upload.name, upload.getvalue())
                    datasets.use_folder(str(folder))
                    st.rerun()
                except (DataError, RuntimeError) as exc:
                    st.error(escape_md(exc))
        if st.button("Download the standard cats-vs-dogs subset (online only, ~68 MB)", key="use_download"):
            try:
                with st.spinner("Downloading…"):
                    folder = prefetch.prefetch_dataset()
                datasets.use_folder(str(folder))
                st.rerun()
            except (prefetch.OfflineError, DataError, RuntimeError, ValueError) as exc:
                st.error(escape_md(exc))
        st.caption("The standard subset has 2000 training and 1000 validation images; `python -m core prefetch` "
                   "does the same from a terminal.")

    st.header("Environment")
    env = environment.summary()
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("TensorFlow", env["tensorflow"])
    c2.metric("Keras", env["keras"])
    c3.metric("Device", env["device"])
    c4.metric("Precision (auto)", env["auto_precision"].replace("mixed_", ""),
              help="CPUs with AMX or AVX512-BF16 compute bfloat16 natively, much faster than float32 (`python -m core "
                   "bench` measures by how much on this machine); elsewhere float32 is faster. Instructions found: "
                   + (", ".join(env["bf16_instructions"]) or "none"))

    st.subheader("Pretrained weights")
    badge = {"cached": "✅ cached", "downloadable": "⬇️ downloadable (online)", "missing": "❌ missing (offline)"}
    st.dataframe([{"backbone": w["title"], "ImageNet weights": badge[w["status"]], "size (MB)": w["size_mb"],
                   "cache file": w["path"]} for w in weights_table()], hide_index=True)
    st.caption("Without network, ImageNet weights cannot be downloaded: run `python -m core prefetch --weights vgg16` "
               "once while online, copy the files into `~/.keras/models/`, or choose **a local weights file** on the "
               "Model page (any `.h5`/`.weights.h5` saved from `keras.applications.<Model>(include_top=False)`). Every "
               "run records which weights it used.")


PAGES = [
    st.Page(home, title="Home", icon="🧪", default=True),
    st.Page("pages/1_Augmentation.py", title="Augmentation", icon="🎛️"),
    st.Page("pages/2_Model.py", title="Model", icon="🧱"),
    st.Page("pages/3_Train.py", title="Train", icon="📈"),
    st.Page("pages/4_Compare.py", title="Compare", icon="📊"),
    st.Page("pages/5_Inspect.py", title="Inspect", icon="🔍"),
    st.Page("pages/6_Ladder.py", title="Ladder", icon="🪜"),
    st.Page("pages/7_Data.py", title="Data", icon="🩺"),
    st.Page("pages/8_Leaderboard.py", title="Leaderboard", icon="🏆"),
]
st.navigation(PAGES).run()
