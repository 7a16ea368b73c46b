"""The learning-rate range test (fastai's lr_find, keras#8891): sweep the rate exponentially over a bounded
number of batches on a run's real model and data, smooth the loss, and suggest a rate with the rule named.

`sweep(spec)` builds what the run's first phase trains (the small CNN; on a pretrained base, the classifier
on the frozen base, fed its outputs, or the whole model when the recipe augments), trains one batch per
rate from `start` to `end` and stops once the smoothed loss explodes. Nothing is stored: the sweep's model
is thrown away. `suggest` applies fastai's two rules: "valley" (the middle of the longest stretch where
the loss keeps falling; the suggestion) and "steepest" (where the smoothed loss falls fastest on the log
axis); when the loss never falls by `CLEAR_DESCENT` of its start, the result says the suggestion is not
clear (a from-scratch CNN on 2000 photos barely moves in 100 batches). `launch` runs a sweep in its own process (`python -m core lr-find --spec-file`), for the dashboard.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.config import BACKBONES, RunSpec

CLEAR_DESCENT = 0.05  # the smoothed loss must fall by 5% of its start for a suggestion to mean anything
BATCHES = 100  # the default sweep length: enough points for a curve, a few seconds to minutes on a CPU


def smooth(losses: list[float], beta: float = 0.98) -> list[float]:
    """Exponential moving average with bias correction, as fastai smooths the range test's losses."""
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** i))
    return out


def suggest(lrs: list[float], smoothed: list[float]) -> dict:
    """{"valley": rate, "steepest": rate}: fastai's valley rule (the suggestion) and steepest descent."""
    n = len(smoothed)
    if n < 4:
        raise ValueError(f"The sweep recorded only {n} points: give it more batches (--batches) or more images.")
    longest = [1] * n
    start, end = 0, 0
    for i in range(1, n):
        for j in range(i):
            if smoothed[i] < smoothed[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
        if longest[end] < longest[i]:
            end, start = i, max(0, i - longest[i])
    third = (end - start) / 3
    valley = start + int(third) + int(third / 2)
    lowest = int(np.argmin(smoothed))
    slopes = np.gradient(np.asarray(smoothed), np.log10(np.asarray(lrs)))
    skip = min(max(5, n // 10), max(0, lowest - 1))  # the moving average's first points are its warm-up
    steepest = skip + int(np.argmin(slopes[skip: max(skip + 1, lowest)]))  # before the lowest loss, not in the explosion
    descent = (smoothed[0] - smoothed[lowest]) / smoothed[0] if smoothed[0] else 0.0
    return {"valley": float(lrs[valley]), "steepest": float(lrs[steepest]), "descent": float(descent),
            "clear": bool(descent >= CLEAR_DESCENT)}


def sweep(spec: RunSpec, batches: int = BATCHES, start: float = 1e-7, end: float = 1.0, progress=None) -> dict:
    """The range test for `spec`'s first phase: {"points": [{lr, loss, smoothed}], "suggested_lr", "rule",
    "suggestions", "trains", "images"}. Uses at most `batches` x batch size training images of the
    recorded-to-be split (the same seeded split a run of `spec` gets)."""
    import keras

    from core.data.folders import scan
    from core.data.pipeline import ImageBatches, decoded_images
    from core.models import networks, precision
    from core.runs.job_data import data_root

    precision.apply(spec.precision)
    keras.utils.set_random_seed(spec.seed)
    ds = scan(data_root(spec), spec.val_fraction, spec.test_fraction, spec.seed)
    items = list(ds.splits["train"])
    if spec.exclude:  # the images a run of this spec would leave out (`--exclude`, the Data page's choice)
        from core.data.manifest import file_digest
        excluded = set(spec.exclude)
        items = [item for item in items if file_digest(item[0]) not in excluded]
    order = np.random.default_rng(spec.seed).permutation(len(items))[: batches * spec.batch_size]
    paths, labels = [items[i][0] for i in order], np.array([items[i][1] for i in order], dtype=np.int64)
    images, _ = decoded_images(paths, spec.image_size)
    n = len(ds.classes)
    if not spec.uses_backbone:
        model, trains = networks.build_scratch(spec, n), "the small CNN"
        data = ImageBatches(images, labels, spec.batch_size, shuffle=True,
                            augment=spec.augment if spec.augmenting else None, seed=spec.seed,
                            engine=spec.augment_engine)
    else:
        base = networks.conv_base(spec.backbone, spec.weights, spec.image_size, spec.seed)
        base.trainable = False
        head = networks.head(base.output_shape[1:], n, spec.resolved_head, spec.dropout)
        pre = BACKBONES[spec.backbone].preprocess
        if spec.augmenting:
            model, trains = networks.full_model(base, head, pre), "the classifier on the frozen base (augmented)"
            data = ImageBatches(images, labels, spec.batch_size, shuffle=True, augment=spec.augment, seed=spec.seed,
                                engine=spec.augment_engine)
        else:
            from core.models import features
            feats = features.extractor(base, pre).predict(images, batch_size=32, verbose=0)
            model, trains = head, "the classifier on the frozen base's outputs"
            data = ImageBatches(feats, labels, spec.batch_size, shuffle=True, seed=spec.seed)
    networks.compile_model(model, start, n)
    total = batches
    ratio = (end / start) ** (1 / max(1, total - 1))
    lrs, losses, best = [], [], math.inf
    step = 0
    while step < total:
        for i in range(len(data)):
            if step >= total:
                break
            lr = start * ratio ** step
            model.optimizer.learning_rate.assign(lr)
            x, y = data[i]
            loss = float(model.train_on_batch(x, y, return_dict=True)["loss"])
            lrs.append(lr)
            losses.append(loss)
            step += 1
            if progress is not None:
                progress(step, total)
            smoothed = smooth(losses)[-1]
            if not math.isfinite(loss) or (step > 10 and smoothed > 4 * best):
                step = total  # the loss exploded: the rest of the sweep says nothing
                break
            best = min(best, smoothed)
        data.on_epoch_end()
    smoothed = smooth(losses)
    picks = suggest(lrs, smoothed)
    return {"points": [{"lr": a, "loss": b, "smoothed": c} for a, b, c in zip(lrs, losses, smoothed)],
            "suggested_lr": float(f"{picks['valley']:.2g}"), "rule": "valley",  # two digits, as 1.1e-4
            "suggestions": picks, "trains": trains,
            "images": len(paths), "batch_size": spec.batch_size, "recipe": spec.recipe}


def launch(spec: RunSpec, folder: Path, batches: int = BATCHES) -> tuple[subprocess.Popen, Path]:
    """Start a sweep of `spec` in its own process; (the process, the JSON file its result will appear in)."""
    folder.mkdir(parents=True, exist_ok=True)
    spec_file, out = folder / "spec.json", folder / "result.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    out.unlink(missing_ok=True)
    log = open(folder / "lr_find.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "core", "lr-find", "--spec-file", str(spec_file), "--batches",
                             str(batches), "--out", str(out)], stdout=log, stderr=subprocess.STDOUT,
                            cwd=str(Path(__file__).resolve().parents[2]))
    return proc, out


def folder(token: str) -> Path:
    """Where a dashboard sweep keeps its spec, result and log: `home()/lr_find/<token>/`."""
    from core.runs import store
    return store.home() / "lr_find" / token


def outcome(proc: subprocess.Popen | None, out: Path) -> tuple[str, dict | str | None]:
    """("done", result), ("running", None) or ("failed", the log's last lines) of a launched sweep."""
    if out.is_file():
        return "done", json.loads(out.read_text())
    if proc is not None and proc.poll() is None:
        return "running", None
    log = out.with_name("lr_find.log")
    tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.is_file() else []
    return "failed", "\n".join(tail) or "the sweep's process ended without a result"
