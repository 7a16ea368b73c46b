"""Benchmark: the lecture's reference code path against the engine's, in one process, on the same photos.

`python -m core bench [--data DIR] [--weights PATH] [--quick] [--json]` prints each figure and the
ratio between the two paths. The reference is the book's code: ImageDataGenerator(rescale=1/255)
.flow_from_directory, batch 20, `predict` / `fit` in float32. The engine is what runs use: images
decoded once in parallel into a cache, reduced precision where the hardware has it, features cached
by content, and fine-tuning that only runs the unfrozen top on cached features of the frozen bottom.

This module orchestrates the run and prints it; the measurements live beside it: `bench_setup` (what they share),
`bench_extraction`, `bench_ceiling`, `bench_epochs`, `bench_precision`, `bench_other`, and `bench_goals` (issue
12's goal table); `bench_doc` writes the page.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from core.tools.bench_ceiling import ceiling
from core.tools.bench_epochs import augmented_epochs, fine_tune_epochs
from core.tools.bench_extraction import engine_extraction, reference_extraction
from core.tools.bench_goals import goals
from core.tools.bench_other import peak_memory_mb, preview_ms
from core.tools.bench_precision import precision_cost
from core.tools.bench_setup import LECTURE_IMAGES, SHARED_DATA, SHARED_VGG, SIZE, subset


def run(data: str | None = None, weights: str | None = None, quick: bool = False, log=print) -> dict:
    from core.models import precision
    from core.runs import store
    root = Path(data) if data else (SHARED_DATA if SHARED_DATA.exists() else None)
    if root is None:
        from core.data import demo
        root = demo.demo_dataset_path(store.home())
    weights = weights or (str(SHARED_VGG) if SHARED_VGG.exists() else "none")
    policy = precision.resolve("auto")
    n = 40 if quick else 1000
    n_ft = 40 if quick else 400
    tmp = Path(tempfile.mkdtemp(prefix="tunelab-bench-"))
    try:
        with store.home_at(tmp / "home"):  # a cold cache: nothing from earlier runs is reused
            folder, paths, labels = subset(root, "train", n, tmp / "ref")
            result = {"machine": {**precision.host(), "policy": policy, "reason": precision.detect()[1]},
                      "data": str(root), "weights": Path(weights).name, "image_size": SIZE, "quick": quick}
            host = result["machine"]
            log(f"host: {host['cpu']}, {host['kind']} ({' '.join(host['isa'])}), {host['cores']} cores")
            log(f"data {root}, VGG16 weights {Path(weights).name}, {len(paths)} images at {SIZE} px, engine precision "
                f"{policy}")
            ref = reference_extraction(folder, weights, len(paths))
            eng = engine_extraction(paths, weights, policy)
            ceil, best_name, sustained = ceiling(paths, weights, log)
            result["ceilings"] = ceil
            result["feature_extraction"] = {
                "reference_images_per_s": ref["images_per_s"], "engine_images_per_s": eng["images_per_s"],
                "speedup": round(eng["images_per_s"] / ref["images_per_s"], 2), "pass": eng["pass"],
                "ceiling_images_per_s": sustained, "ceiling": best_name,
                "engine_pass": eng["lecture_pass"], "engine_pass_images_per_s": eng["lecture_pass_images_per_s"],
                "engine_pass_setup_s": eng["lecture_pass_setup_s"], "lecture_images": LECTURE_IMAGES,
                "engine_fraction_of_ceiling": round(eng["lecture_pass_images_per_s"] / sustained, 3),
                "engine_decode_s": eng["decode_s"], "images": len(paths)}
            result["repeat_extraction"] = {"first_s": eng["first_s"], "repeat_s": eng["repeat_s"],
                                           "speedup": round(eng["first_s"] / max(eng["repeat_s"], 1e-6), 1)}
            fe = result["feature_extraction"]
            log(f"feature extraction ({fe['pass']}): reference {fe['reference_images_per_s']} img/s, engine "
                f"{fe['engine_images_per_s']} img/s ({fe['speedup']}x)")
            log(f"the engine's frozen pass in a lecture-size run ({fe['engine_pass']}; {fe['engine_pass_setup_s']} s "
                f"once): {fe['engine_pass_images_per_s']} img/s; best bare forward ({best_name}) "
                f"{fe['ceiling_images_per_s']} img/s: {fe['engine_fraction_of_ceiling']:.0%} of it")
            rep = result["repeat_extraction"]
            log(f"repeated feature extraction: first {rep['first_s']} s, repeat {rep['repeat_s']} s "
                f"({rep['speedup']}x)")
            ft_folder, ft_paths, ft_labels = subset(root, "train", n_ft, tmp / "ft")
            ft = fine_tune_epochs(ft_folder, ft_paths, ft_labels, weights, policy, epochs=1 if quick else 2)
            ft["speedup"] = round(ft["reference_s_per_epoch"] / ft["engine_s_per_epoch"], 1)
            result["fine_tune_epoch"] = ft
            log(f"fine_tune epoch (no augmentation, {ft['images']} images, second epoch): reference "
                f"{ft['reference_s_per_epoch']} s, engine {ft['engine_s_per_epoch']} s ({ft['speedup']}x; one-off "
                f"extraction {ft['engine_one_off_extraction_s']} s)")
            aug = augmented_epochs(ft_folder, ft_paths, ft_labels, weights, policy, epochs=1 if quick else 2)
            result["augmented_epoch"] = aug
            log(f"feature extraction with augmentation, one epoch of {aug['images']} images: reference "
                f"{aug['fe_aug_reference_s']} s, engine {aug['fe_aug_engine_s']} s ({aug['fe_aug_speedup']}x); "
                f"fine-tuning "
                f"with augmentation, second epoch: reference {aug['ft_aug_reference_s_per_epoch']} s, engine "
                f"{aug['ft_aug_engine_s_per_epoch']} s ({aug['ft_aug_speedup']}x)")
            result["precision_cost"] = precision_cost(root, 200 if quick else 2000, 100 if quick else 1000, quick)
            log(f"validation accuracy ({result['precision_cost']['backbone']} features): " + ", ".join(
                f"{k} {v}" for k, v in result["precision_cost"].items() if k not in ("backbone", "weights")))
            result["goals"] = goals(result)
            result["preview_ms_9_copies"] = preview_ms(paths[0])
            log(f"augmentation preview, 9 copies at {SIZE} px: {result['preview_ms_9_copies']} ms")
            sizes = (20, 80) if quick else (500, 2000)
            mem = {str(k): peak_memory_mb(root, k, weights, tmp) for k in sizes}
            result["peak_memory_mb"] = mem
            log("peak memory of feature extraction: " + ", ".join(f"{k} images {v} MB" for k, v in mem.items()))
            return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(data=None, weights=None, quick=False, as_json=False, markdown_path=None) -> None:
    import contextlib
    t0 = time.time()
    if as_json:
        with contextlib.redirect_stdout(sys.stderr):  # Keras prints "Found N images..." to stdout
            result = run(data, weights, quick, log=lambda *a: None)
        print(json.dumps(result, indent=2))
    else:
        result = run(data, weights, quick, log=lambda m: print(m, flush=True))
    if markdown_path:
        from core.tools.bench_doc import markdown, record
        command = "python -m core bench" + (" --quick" if quick else "") + (f" --data {data}" if data else "") \
            + (f" --weights {weights}" if weights else "") + f" --markdown {markdown_path}"
        others = record(result, command, Path(markdown_path))
        Path(markdown_path).write_text(markdown(result, command, time.time() - t0, others))
        print(f"wrote {markdown_path}", file=sys.stderr if as_json else sys.stdout)
