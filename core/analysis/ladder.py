"""The lecture's ladder: scratch -> augmentation -> feature extraction -> (+ augmentation) -> fine-tuning.

Which run fills which step: the newest finished run of the step's recipe tagged "ladder" if there is
one, else the newest finished run of that recipe. Each step carries the book's published figure
(Deep Learning with Python, ch. 5: 150 px images, 2000/1000/1000 cats and dogs, VGG16 with ImageNet
weights) beside the run's own numbers and, stated plainly, the weights the run used, so that a
ladder built with other weights is never mistaken for the book's.

Public API: `BOOK`, `LECTURE`, `book_text`, `BOOK_LABEL`, `BOOK_CONDITIONS`, `LADDER_TAG`, `STEPS`, `is_imagenet`,
`weights_short`, `ladder`, `warnings`, `ladder_specs`, `queue`.
"""
from __future__ import annotations

from core.runs import store
from core.config import RECIPES, RunSpec

LADDER_TAG = "ladder"
BOOK_LABEL = "book (ImageNet VGG16)"
BOOK_CONDITIONS = "150 px images, 2000 training / 1000 validation / 1000 test photos, VGG16 with ImageNet weights"
# Deep Learning with Python, 1st edition, section 5.2-5.3: the validation accuracy each step reaches.
BOOK = {"scratch": 0.72, "scratch_aug": 0.82, "feature_extraction": 0.90, "feature_extraction_aug": 0.96,
        "fine_tune": 0.97}
# Where the lecture quotes a different figure than the book (the lecture's slides: 0.84 with augmentation
# and dropout); shown beside the book's, never in its place.
LECTURE = {"scratch_aug": 0.84}


def book_text(recipe: str) -> str:
    """The book's figure for a step, with the lecture's where it differs: "0.82 (the lecture quotes 0.84)"."""
    text = f"{BOOK[recipe]:.2f}"
    return text + (f" (the lecture quotes {LECTURE[recipe]:.2f})" if recipe in LECTURE else "")
STEPS = (("scratch", "1 · from scratch"), ("scratch_aug", "2 · + augmentation"),
         ("feature_extraction", "3 · feature extraction"), ("feature_extraction_aug", "4 · + augmentation"),
         ("fine_tune", "5 · fine-tuning"))


def is_imagenet(weights_used: str | None) -> bool:
    """True when a run's recorded weights are Keras's ImageNet weights."""
    return bool(weights_used) and weights_used.lower().startswith("imagenet")


def weights_short(weights_used: str | None, uses_backbone: bool) -> str:
    """A bar label for the weights a run used: "ImageNet", "random init", "file x.h5" or "from scratch"."""
    if not uses_backbone:
        return "from scratch"
    if not weights_used:
        return "weights unknown"
    if is_imagenet(weights_used):
        return "ImageNet"
    if weights_used.startswith("random"):
        return "random init"
    return weights_used.replace("local ", "")


def _best(run: dict) -> float | None:
    if run.get("best_val_acc") is not None:
        return float(run["best_val_acc"])
    vals = [e["val_accuracy"] for e in store.epochs(run["id"]) if e["val_accuracy"] is not None]
    return max(vals) if vals else None


def _train_images(run: dict) -> int | None:
    counts = ((run.get("info") or {}).get("counts") or {}).get("train")
    return sum(counts.values()) if isinstance(counts, dict) else None


def ladder(runs: list[dict]) -> list[dict]:
    """One dict per step, in the lecture's order: the book's figure and the run that fills the step (if any).

    Keys: recipe, title, short, book, run_id, name, val_acc (best validation accuracy), weights,
    weights_short, uses_backbone, imagenet (None for from-scratch steps), image_size, train_images,
    pending (the newest queued/running "ladder" run of the step, newer than the one shown), warning.
    """
    steps = []
    newest_first = sorted(runs, key=lambda r: r.get("created") or 0, reverse=True)
    for recipe, short in STEPS:
        mine = [r for r in newest_first if r.get("recipe") == recipe]
        finished = [r for r in mine if r.get("status") == "finished"]
        tagged = [r for r in finished if LADDER_TAG in (r.get("tags") or [])]
        run = (tagged or finished or [None])[0]
        active = [r for r in mine if r.get("status") in store.ACTIVE and LADDER_TAG in (r.get("tags") or [])
                  and (run is None or (r.get("created") or 0) > (run.get("created") or 0))]
        uses_backbone = RECIPES[recipe].uses_backbone
        step = {"recipe": recipe, "title": RECIPES[recipe].title, "short": short, "book": BOOK[recipe],
                "uses_backbone": uses_backbone, "run_id": None, "name": None, "val_acc": None, "weights": None,
                "weights_short": "", "imagenet": None, "image_size": None, "train_images": None,
                "backbone": None, "pending": ({"id": active[0]["id"], "status": active[0]["status"]}
                                              if active else None), "warning": None}
        if run is not None:
            spec = run.get("spec") or {}
            weights = run.get("weights_used")
            step.update(run_id=run["id"], name=run.get("name"), val_acc=_best(run), weights=weights,
                        weights_short=weights_short(weights, uses_backbone), image_size=spec.get("image_size"),
                        train_images=_train_images(run), backbone=run.get("backbone") if uses_backbone else None)
            if uses_backbone:
                step["imagenet"] = is_imagenet(weights)
                if not step["imagenet"]:
                    step["warning"] = (f"Step {short} ran on {weights or 'unrecorded weights'}, not Keras's ImageNet "
                                       f"weights: its accuracy is not comparable to the book's {BOOK[recipe]:.2f}.")
        steps.append(step)
    return steps


def warnings(steps: list[dict]) -> list[str]:
    """Plain sentences on what makes this ladder differ from the book's: weights, backbone, size, data."""
    out = [s["warning"] for s in steps if s["warning"]]
    backbones = sorted({s["backbone"] for s in steps if s["backbone"] and s["backbone"] != "vgg16"})
    if backbones:
        out.append(f"Some steps use {', '.join(backbones)} instead of the book's VGG16.")
    sizes = sorted({s["image_size"] for s in steps if s["image_size"] and s["image_size"] != 150})
    if sizes:
        out.append(f"Images of {', '.join(f'{n} px' for n in sizes)} instead of the book's 150 px.")
    counts = sorted({s["train_images"] for s in steps if s["train_images"] and s["train_images"] != 2000})
    if counts:
        out.append(f"{', '.join(map(str, counts))} training images instead of the book's 2000.")
    return out


def ladder_specs(epochs: int = 3, image_size: int = 64, data: str | None = None, backbone: str = "vgg16",
                 weights: str = "imagenet", batch_size: int = 20, seed: int = 0, recipes=None,
                 confine: bool = False) -> list[RunSpec]:
    """The steps (all five, or those of `recipes`) as checked run specifications with the same small budget:
    `epochs` per step (fine-tuning: `epochs` for the head, then `epochs` more for the top block), one image
    size, one dataset. Built by `build_spec` like every run (`confine=True` for the dashboard's path rules);
    the data folder and the weights are checked once for all steps."""
    from core.runs.specs import build_spec, check_spec
    specs = []
    for recipe, short in STEPS:
        if recipes is not None and recipe not in recipes:
            continue
        extra = dict(backbone=backbone, weights=weights) if RECIPES[recipe].uses_backbone else {}
        if RECIPES[recipe].fine_tunes:
            extra["fine_tune_epochs"] = epochs
        specs.append(build_spec(recipe, dict(data=data, epochs=epochs, image_size=image_size, batch_size=batch_size,
                                             seed=seed, name=f"ladder {short}", **extra), confine=confine, check=False))
    if specs:
        check_spec(specs[0])
        on_backbone = next((s for s in specs if s.uses_backbone), None)
        if on_backbone is not None:
            check_spec(on_backbone, data=False)
    return specs


def queue(specs: list[RunSpec], user: str | None = None) -> list[str]:
    """Submit the specs in order as `user`'s runs (default: the acting user), tagged "ladder"; they train one
    after another (TUNELAB_MAX_RUNS)."""
    from core.runs import runner
    ids = []
    for spec in specs:
        run_id = runner.submit(spec, user=user)
        store.set_tags(run_id, [LADDER_TAG], user=user)
        ids.append(run_id)
    return ids
