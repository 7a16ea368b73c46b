"""docs/benchmarks.md, written from `python -m core bench` results: every figure in it comes from a bench run.

`python -m core bench --markdown docs/benchmarks.md` measures, then writes the page: the host (CPU model,
kind, ISA flags, cores), the command, the date, and tables whose numbers are the result's own, with the
explanations worded around them. Each run's result is also kept beside the page (`bench-results/<kind>.json`,
one per CPU kind, the newest replacing the last of its kind), and the goals table lists every kind's, each row
naming its host. Nothing is typed in by hand.
"""
from __future__ import annotations

import datetime
import json
import platform
import re
from pathlib import Path


def record(result: dict, command: str, page: Path, folder: str = "bench-results", kind: str | None = None
           ) -> list[dict]:
    """Keep `result` as <folder>/<its CPU kind>.json beside `page` (with the command and the date); return the
    kept results of the other kinds. `kind` defaults to the bench result's own machine kind."""
    kept_in = page.parent / folder
    kept_in.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", (kind or result["machine"]["kind"]).lower()).strip("-")
    kept = {**result, "command": command, "date": datetime.date.today().isoformat()}
    (kept_in / f"{slug}.json").write_text(json.dumps(kept, indent=1) + "\n")
    return [json.loads(p.read_text()) for p in sorted(kept_in.glob("*.json")) if p.stem != slug]


def _host_cell(result: dict) -> str:
    m = result["machine"]
    return f"{m['cpu']}, **{m['kind']}**, {m['cores']} cores ({'quick' if result['quick'] else 'full'} run" + (
        f" of {result['date']}" if result.get("date") else "") + ")"


def _headroom(ceilings: dict) -> str:
    """What the fastest bare pass gains over TensorFlow float32's (the lecture's): the most any figure dominated by
    frozen passes can gain on this host, whatever the engine does around them."""
    fastest = max(ceilings, key=ceilings.get)
    if "tensorflow float32" not in ceilings or fastest == "tensorflow float32":
        return ""
    return (f" The fastest, {fastest}, is {ceilings[fastest] / ceilings['tensorflow float32']:.2f}x TensorFlow "
            f"float32's (the lecture's precision): about the most a figure whose time is mostly frozen passes can gain "
            f"here, beyond what the lecture's code loses around its passes.")


def _pct(x: float) -> str:
    return f"{x:.0%}"


def markdown(result: dict, command: str, seconds: float, others: list[dict] = ()) -> str:
    m, fe, rep, ft = result["machine"], result["feature_extraction"], result["repeat_extraction"], \
        result["fine_tune_epoch"]
    prec = result["precision_cost"]
    policies = ["float32", "auto"]
    reduced = [f"auto ({prec['auto_pass']})"]
    n_fe = fe.get("images", "the")
    aug, nth = result["augmented_epoch"], "1st" if result["quick"] else "2nd"
    lines = [
        "# Benchmarks",
        "",
        "`python -m core bench` runs, in one process and on the same photos, the lecture's reference code path and the",
        "engine's, and prints each figure with the ratio between them. The reference is the book's code:",
        "`ImageDataGenerator(rescale=1/255).flow_from_directory(..., batch_size=20)` feeding `conv_base.predict` /",
        "`model.fit` in float32. Each run starts from an empty cache in a temporary lab home.",
        "",
        f"This page was written by `{command}` on {datetime.date.today().isoformat()} "
        f"({seconds / 60:.1f} minutes); rerun it to measure your machine.",
        "",
        "## Host",
        "",
        f"- CPU: {m['cpu']}, **{m['kind']}** (flags: {', '.join(m['isa']) or 'none of avx2/avx512/amx'}), "
        f"{m['cores']} cores; Python {platform.python_version()}",
        f"- Engine precision: `{m['policy']}` ({m['reason']})",
        f"- Data: `{result['data']}`; VGG16 weights `{result['weights']}` (speed does not depend on the weights); "
        f"{result['image_size']} px",
        "",
        "## Issue 12's goals, on every CPU kind measured",
        "",
        "This run first, then the latest kept run of each other kind (`docs/bench-results/<kind>.json`, with the "
        "command that printed it); each goal is the issue's for that host's kind (CPUs with AVX512-BF16 or AMX, "
        "or the others).",
        "",
        "| host | figure | value | goal | met |",
        "|---|---|---|---|---|",
    ] + [f"| {_host_cell(r)} | {g['figure']} | {g['value']} | {g['goal']} | {'yes' if g['met'] else 'no'} |"
         for r in [result, *others] for g in r["goals"]] + [
        "",
        "Bare forward passes of VGG16's conv base (with its preprocessing; 150 px, batch 32, best of 3 passes over "
        "the same first 128 images in memory, to rank them; the ceiling below runs the fastest again over all the "
        "engine's images), computed in this run: "
        + ", ".join(f"{k} {v} img/s" for k, v in result["ceilings"].items()) + "." + _headroom(result["ceilings"]),
        "",
        "## Speed: the lecture's code path against the engine's",
        "",
        "| figure | reference | engine | ratio |",
        "|---|---|---|---|",
        f"| VGG16 feature extraction, {n_fe} images, cold cache (decoding included) | "
        f"{fe['reference_images_per_s']} img/s | {fe['engine_images_per_s']} img/s | {fe['speedup']}x |",
        f"| repeated feature extraction on unchanged data | first {rep['first_s']} s | repeat {rep['repeat_s']} s | "
        f"{rep['speedup']}x |",
        f"| `feature_extraction_aug`, one epoch of {aug['images']} images (the lecture's model building included) | "
        f"{aug['fe_aug_reference_s']} s | {aug['fe_aug_engine_s']} s (+ {aug['fe_aug_engine_setup_s']} s once: "
        f"decoding, conversion, calibration) | {aug['fe_aug_speedup']}x |",
        f"| fine-tuning with augmentation, {nth} epoch (block5 + head trainable) | "
        f"{aug['ft_aug_reference_s_per_epoch']} s | {aug['ft_aug_engine_s_per_epoch']} s | {aug['ft_aug_speedup']}x |",
        f"| `fine_tune` epoch without augmentation ({ft['images']} images, {nth} epoch, block5 + head trainable) | "
        f"{ft['reference_s_per_epoch']} s | {ft['engine_s_per_epoch']} s (+ {ft['engine_one_off_extraction_s']} s "
        f"once, to cache the frozen bottom) | {ft['speedup']}x |",
        "",
        "## The engine against the hardware's ceiling",
        "",
        "| engine's frozen pass (a lecture-size run's) | best bare forward pass (ceiling) | engine's share of the "
        "ceiling |",
        "|---|---|---|",
        f"| {fe['engine_pass_images_per_s']} img/s ({fe['engine_pass']}; {fe['engine_pass_setup_s']} s once to set "
        f"up) | {fe['ceiling_images_per_s']} img/s ({fe['ceiling']}) | {_pct(fe['engine_fraction_of_ceiling'])} |",
        f"| cold feature extraction of {n_fe} images, decoding included ({fe['pass']}) | "
        f"{fe['ceiling_images_per_s']} img/s | {_pct(fe['engine_images_per_s'] / fe['ceiling_images_per_s'])} |",
        "",
        "The ceiling is the fastest bare forward pass measured above, run again over all the images the engine's "
        "pass runs over (already decoded, in memory; the fastest of two timed passes after one batch of each shape "
        "untimed: a transient slowdown can only lengthen a pass): the conv base alone, in the engine's batches of "
        "32. The passes listed above ran over the first 128 images only, to rank them, and a pass over a few "
        "batches that stay in the CPU's caches runs faster than one over a thousand images. The engine's frozen pass is the one a run "
        f"of the lecture's size ({fe.get('lecture_images', 3000)} images) gets, run through the engine's own "
        "feature extraction (batches assembled from the decoded-image cache, features written to their memory-mapped "
        "file) over the same decoded images, the fastest of two passes; its one-off set-up (conversion, calibration, the check against float32) is "
        "timed apart. Cold extraction also decodes the JPEGs into the cache, in the precision a run of that many "
        "images gets (`precision.INT8_PAYS_AFTER`: below it int8's set-up costs more than it saves). The engine's "
        "pass and the ceiling run the same model over the same images at different minutes, so a share above 100% "
        "is the shared machine's speed drifting between them, not the engine beating the hardware.",
        "",
        f"## Accuracy cost of reduced precision ({prec['backbone']} features, weights `{prec['weights']}`)",
        "",
        "| " + " | ".join(f"validation accuracy, {p}" for p in policies) + " |",
        "|" + "---|" * len(policies),
        "| " + " | ".join(str(prec[p]) for p in policies) + " |",
        "",
        ("The same classifier head trained on features computed in float32 and in "
         + ", ".join(reduced) + "." if reduced else
         "This host has no native reduced precision, so the engine computes in float32 and there is nothing to "
         "compare."),
        "",
        "## Other figures",
        "",
        "| figure | value |",
        "|---|---|",
        f"| augmentation preview, 9 copies at {result['image_size']} px | {result['preview_ms_9_copies']} ms |",
    ] + [f"| peak memory of a fresh process extracting features of {k} images | {v} MB |"
         for k, v in result["peak_memory_mb"].items()] + [
        "",
        "## What the engine does",
        "",
        "- Images are decoded once, in parallel threads, into a content-keyed uint8 cache read back as a memory "
        "map; features are written batch by batch to a memory-mapped file, so memory does not grow with the data.",
        "- Frozen forward passes (feature extraction, with augmentation every epoch, the frozen bottom of "
        "fine-tuning) in the fastest correct precision: on a CPU, OpenVINO int8, quantized with NNCF on 32 of the "
        "run's training images and checked against float32 (`core.models.inference`; `python -m "
        "core.tools.engine_choice` measures every candidate), for a frozen model that passes enough images to win "
        "back that one-off cost; otherwise, on GPUs, and where int8 disagrees with float32 (MobileNetV2), "
        "TensorFlow in the training policy (bfloat16 where the CPU computes it natively). `--precision float32` is "
        "the lecture's float32 TensorFlow pass.",
        "- Features of a frozen base are cached under a key that holds everything that determines them: the images' "
        "bytes and order, the backbone, the weights, the layer, the size, the preprocessing and the precision.",
        "- Fine-tuning without augmentation computes the frozen bottom once; each epoch then runs only the unfrozen "
        "top and the head. With augmentation each epoch's augmented batches go through the frozen bottom's pass "
        "and only the unfrozen top and the head train in Keras; feature extraction with augmentation runs the "
        "frozen base as a frozen pass and trains only the head in Keras. A producer thread augments the next "
        "batch while the current one is passed (`scripts/profile_fe_aug.py` times each part of such an epoch).",
        "",
        "## Rerun",
        "",
        "```bash",
        ". .venv/bin/activate",
        "python -m core bench                                   # prints every figure",
        "python -m core bench --quick                           # about a minute (what the test suite runs)",
        "python -m core bench --markdown docs/benchmarks.md     # measures, then rewrites this page",
        "python -m core bench --data DIR --weights PATH --json",
        "```",
        "",
    ]
    return "\n".join(lines)
