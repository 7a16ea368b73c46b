"""Whole-process times, lecture against engine, for `feature_extraction` and `feature_extraction_aug` (issue 12).

    python -m core.tools.whole_process [--train 1000] [--validation 500] [--epochs 1] [--repeat 1] [--markdown PATH]
                                       [--json]

Each side is timed as a user meets it, from starting a fresh Python process to its end, on the same
class-balanced subset of ../shared's real photos (links in a temporary folder: the first N/2 of each class of
train and validation), with VGG16 weights from ../shared (`vgg16_hed_bsds500_notop`: speed does not depend on
the weights) at 150 px:

- the lecture: the book's code in a child process (`lecture_child`), in float32: `ImageDataGenerator(rescale=
  1/255).flow_from_directory(batch_size=20)` batches through `conv_base.predict`, then the Dense classifier
  fitted on the features (feature extraction); or `model.fit` of the frozen base under the classifier on the
  lecture's augmenting generator, with the validation generator (feature extraction with augmentation);
- the engine: `python -m core train --recipe ... --wait` in a fresh lab home (empty caches: decoding,
  conversion and every frozen pass included, its worker process too).

The four are run in the order lecture, engine, lecture, engine, after the photos were read once, so that the
disk cache favours neither. With `--repeat N` each recipe's pair runs N times, alternating, and each side keeps
its fastest (a shared VM's speed drifts by tens of percent within minutes, and a slowdown can only lengthen a
run); every time is kept beside it. Prints each time and ratio, with the host; `--markdown` writes them as a page.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "cats_vs_dogs_small"
VGG = SHARED / "weights" / "vgg16_hed_bsds500_notop.weights.h5"
SIZE, BATCH = 150, 20
RECIPES = ("feature_extraction", "feature_extraction_aug")


def subset(src: Path, dst: Path, n_train: int, n_validation: int) -> Path:
    """Links to the first n/2 images of each class of src's train and validation splits (nothing copied)."""
    for split, n in (("train", n_train), ("validation", n_validation)):
        for cls in sorted(d.name for d in (src / split).iterdir() if d.is_dir()):
            out = dst / split / cls
            out.mkdir(parents=True, exist_ok=True)
            for f in sorted((src / split / cls).iterdir())[:n // 2]:
                (out / f.name).symlink_to(f.resolve())
                f.read_bytes()  # into the disk cache, for both sides alike
    return dst


def lecture_child(recipe: str, data: str, weights: str, epochs: int) -> dict:
    """The book's code for `recipe` (float32, batch 20); returns its best validation accuracy."""
    import numpy as np
    import keras
    from tensorflow.keras.preprocessing.image import ImageDataGenerator
    from core.models.networks import conv_base
    base = conv_base("vgg16", weights, SIZE)
    train_dir, validation_dir = Path(data) / "train", Path(data) / "validation"
    rescale = ImageDataGenerator(rescale=1. / 255)

    def classifier():
        return [keras.layers.Flatten(), keras.layers.Dense(256, activation="relu"), keras.layers.Dropout(0.5),
                keras.layers.Dense(1, activation="sigmoid")]
    if recipe == "feature_extraction":
        def extract_features(directory):
            generator = rescale.flow_from_directory(directory, target_size=(SIZE, SIZE), batch_size=BATCH,
                                                    class_mode="binary")
            features = np.zeros((generator.samples, *base.output_shape[1:]), "float32")
            labels = np.zeros(generator.samples)
            for i in range(len(generator)):
                inputs_batch, labels_batch = generator[i]
                features[i * BATCH:(i + 1) * BATCH] = base.predict(inputs_batch, verbose=0)
                labels[i * BATCH:(i + 1) * BATCH] = labels_batch
            return features, labels
        train, validation = extract_features(train_dir), extract_features(validation_dir)
        model = keras.Sequential([keras.Input(base.output_shape[1:]), *classifier()])
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=2e-5), loss="binary_crossentropy",
                      metrics=["accuracy"])
        history = model.fit(*train, epochs=epochs, batch_size=BATCH, validation_data=validation, verbose=0)
    else:
        base.trainable = False
        model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), base, *classifier()])
        augmenting = ImageDataGenerator(rescale=1. / 255, rotation_range=40, width_shift_range=0.2,
                                        height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
                                        horizontal_flip=True, fill_mode="nearest")
        train = augmenting.flow_from_directory(train_dir, target_size=(SIZE, SIZE), batch_size=BATCH,
                                               class_mode="binary")
        validation = rescale.flow_from_directory(validation_dir, target_size=(SIZE, SIZE), batch_size=BATCH,
                                                 class_mode="binary")
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=2e-5), loss="binary_crossentropy",
                      metrics=["accuracy"])
        history = model.fit(train, epochs=epochs, validation_data=validation, verbose=0)
    return {"best_val_acc": round(float(max(history.history["val_accuracy"])), 4)}


def frozen_passes(home: Path, run_id: str) -> str:
    """The engines and precisions of the run's frozen passes, from its log in lab home `home`."""
    from core.runs import store
    with store.home_at(home):
        said = [line["message"] for line in store.log_lines(run_id)]
    return "; ".join(dict.fromkeys(m.split(": ", 1)[1] for m in said if m.startswith("frozen pass of"))) or "none"


def _timed(command: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return seconds, proc.stdout


def measure(n_train: int = 1000, n_validation: int = 500, epochs: int = 1, log=print, repeat: int = 1) -> dict:
    """The whole-process times (and best validation accuracies) on a fresh subset, in one run: each recipe's
    lecture and engine `repeat` times, alternating, each side reported by its fastest run."""
    from core.models import precision
    host = precision.host()
    weights = str(VGG) if VGG.is_file() else "none"
    result = {"host": host, "load_average_before": round(os.getloadavg()[0], 2), "train": n_train,
              "validation": n_validation, "epochs": epochs, "weights": Path(weights).name, "image_size": SIZE,
              "repeat": repeat}
    log(f"host: {host['cpu']}, {host['kind']} ({' '.join(host['isa'])}), {host['cores']} cores; load average "
        f"{result['load_average_before']}")
    tmp = Path(tempfile.mkdtemp(prefix="tunelab-whole-"))
    try:
        data = subset(DATA, tmp / "data", n_train, n_validation)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
        for recipe in RECIPES:
            runs = {"lecture": [], "engine": []}
            for attempt in range(repeat):
                runs["lecture"].append(_lecture(recipe, data, weights, epochs, env))
                log(f"{recipe}: lecture {runs['lecture'][-1]['seconds']} s (best validation accuracy "
                    f"{runs['lecture'][-1]['best_val_acc']})")
                runs["engine"].append(_engine(recipe, data, weights, epochs, env, tmp / f"home-{recipe}-{attempt}"))
                e = runs["engine"][-1]
                log(f"{recipe}: engine {e['seconds']} s (best validation accuracy {e['best_val_acc']}, precision "
                    f"{e['precision']}, frozen passes {e['passes']})")
            lecture, engine = (min(runs[side], key=lambda r: r["seconds"]) for side in ("lecture", "engine"))
            if repeat > 1:
                for side, kept in (("lecture", lecture), ("engine", engine)):
                    kept["all_seconds"] = [r["seconds"] for r in runs[side]]
            ratio = round(lecture["seconds"] / engine["seconds"], 2)
            log(f"{recipe}: lecture {lecture['seconds']} s, engine {engine['seconds']} s"
                + (f" (the fastest of {repeat} each)" if repeat > 1 else "") + f": {ratio}x")
            result[recipe] = {"lecture": lecture, "engine": engine, "speedup": ratio}
        result["load_average_after"] = round(os.getloadavg()[0], 2)
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _lecture(recipe: str, data: Path, weights: str, epochs: int, env: dict) -> dict:
    code = ("import json, sys; from core.tools.whole_process import lecture_child; "
            "print(json.dumps(lecture_child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))")
    seconds, out = _timed([sys.executable, "-c", code, recipe, str(data), weights, str(epochs)], env)
    return {"seconds": round(seconds, 1), **json.loads(out.strip().splitlines()[-1])}


def _engine(recipe: str, data: Path, weights: str, epochs: int, env: dict, home: Path) -> dict:
    """`python -m core train --wait` in the fresh lab home `home`."""
    seconds, out = _timed([sys.executable, "-m", "core", "train", "--recipe", recipe, "--data", str(data),
                           "--weights", weights, "--image-size", str(SIZE), "--epochs", str(epochs),
                           "--batch-size", str(BATCH), "--wait"], dict(env, TUNELAB_HOME=str(home)))
    summary = json.loads(out.strip().splitlines()[-1])
    return {"seconds": round(seconds, 1), "best_val_acc": round(float(summary["best_val_acc"]), 4),
            "precision": summary["precision"], "passes": frozen_passes(home, summary["run_id"])}


def markdown(result: dict, command: str, others: list[dict] = ()) -> str:
    """The page: this run's host and set-up, then one row per recipe and host (this run first, then the latest
    kept run of each other CPU kind, `whole-process-results/<kind>.json` beside the page)."""
    host = result["host"]
    lines = ["# Whole-process times: the lecture's code against the engine", "",
             f"Written by `{command}` on {time.strftime('%Y-%m-%d')}; host: {host['cpu']}, **{host['kind']}** "
             f"({', '.join(host['isa'])}), {host['cores']} cores; load average {result['load_average_before']} "
             f"before, {result['load_average_after']} after.", "",
             f"{result['train']} training and {result['validation']} validation real photos "
             f"(`cats_vs_dogs_small`), VGG16 weights `{result['weights']}`, {result['image_size']} px, "
             f"{result['epochs']} epoch, batch {BATCH}; each side from starting its Python process to its end"
             + (f", the fastest of {result['repeat']} runs, alternating with the other side's"
                if result.get("repeat", 1) > 1 else "") + " "
             f"(`core/tools/whole_process.py` says what each runs). Rows of other hosts come from their own runs of "
             f"this command (date and load average in the row).", "",
             "| host | recipe | lecture | engine | ratio | best val. accuracy, lecture / engine |",
             "|---|---|---|---|---|---|"]
    for r in (result, *others):
        h = r["host"]
        cell = f"{h['cpu']}, **{h['kind']}**, {h['cores']} cores" + (
            f" ({r['date']}, load {r['load_average_before']})" if r.get("date") else "")
        for recipe in RECIPES:
            x = r[recipe]
            lines.append(f"| {cell} | `{recipe}` | {_seconds(x['lecture'])} | {_seconds(x['engine'])} "
                         f"({x['engine']['precision']}, frozen passes: {x['engine'].get('passes', 'not recorded')}) | "
                         f"{x['speedup']}x | {x['lecture']['best_val_acc']} / {x['engine']['best_val_acc']} |")
    return "\n".join(lines) + "\n"


def _seconds(side: dict) -> str:
    """"91.5 s", or with repeats "91.5 s (fastest of 91.5, 97.0 s)"."""
    runs = side.get("all_seconds")
    return f"{side['seconds']} s" + (f" (fastest of {', '.join(map(str, runs))} s)" if runs else "")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=1000)
    p.add_argument("--validation", type=int, default=500)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeat", type=int, default=1,
                   help="run each recipe's lecture and engine this many times, alternating; each side keeps its "
                        "fastest")
    p.add_argument("--markdown", help="write the figures as a Markdown page to this path")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if a.repeat < 1:
        p.error(f"--repeat {a.repeat}: run each side at least once")
    result = measure(a.train, a.validation, a.epochs, log=(lambda m: print(m, file=sys.stderr, flush=True))
                     if a.json else (lambda m: print(m, flush=True)), repeat=a.repeat)
    if a.json:
        print(json.dumps(result, indent=2))
    if a.markdown:
        command = "python -m core.tools.whole_process" + "".join(
            f" --{k} {v}" for k, v in (("train", a.train), ("validation", a.validation), ("epochs", a.epochs),
                                        ("repeat", a.repeat))
            if v != {"train": 1000, "validation": 500, "epochs": 1, "repeat": 1}[k]) + f" --markdown {a.markdown}"
        from core.tools.bench_doc import record
        others = record(result, command, Path(a.markdown), "whole-process-results", result["host"]["kind"])
        Path(a.markdown).write_text(markdown(result, command, others))
        print(f"wrote {a.markdown}", file=sys.stderr if a.json else sys.stdout)


if __name__ == "__main__":
    main()
