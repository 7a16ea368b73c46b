"""Augmentation ablation: which transform of an augmentation configuration helps, measured by paired runs.

`ablation_specs` makes runs that differ only in augmentation: the configuration as it is ("all"), the
configuration with each enabled transform removed in turn ("without <transform>") and no augmentation
("none"), each over the same seeds (so the same split, initial weights and image order within a seed), on a
cheap recipe (feature extraction with augmentation on a frozen pretrained base, by default). `queue` submits
them with a shared tag `ablation:<group>`; `results` reads the finished runs back and computes, per transform
and seed, the change in final validation accuracy and loss when the transform is removed (paired with the
"all" run of the same seed), with the mean and spread over seeds and the runs behind each figure.
Imports neither Streamlit nor TensorFlow.
"""
from __future__ import annotations

import dataclasses
import statistics
import time

from core.config import RECIPES, RunSpec
from core.data.augment_config import AugmentConfig

# A transform of the ablation: its label and the AugmentConfig fields it sets (both shifts count as one).
TRANSFORMS: dict[str, tuple[str, ...]] = {
    "rotation": ("rotation_range",),
    "shift": ("width_shift_range", "height_shift_range"),
    "shear": ("shear_range",),
    "zoom": ("zoom_range",),
    "horizontal flip": ("horizontal_flip",),
    "vertical flip": ("vertical_flip",),
    "brightness": ("brightness_range",),
    "channel shift": ("channel_shift_range",),
}
DEFAULT_RECIPE = "feature_extraction_aug"
TAG = "ablation"


def enabled_transforms(cfg: AugmentConfig) -> list[str]:
    """The transforms of TRANSFORMS that `cfg` turns on, in the table's order."""
    default = AugmentConfig()
    return [name for name, fields in TRANSFORMS.items() if any(getattr(cfg, f) != getattr(default, f) for f in fields)]


def without(cfg: AugmentConfig, transform: str) -> AugmentConfig:
    """`cfg` with `transform` switched off (its fields at their defaults), everything else unchanged."""
    default = AugmentConfig()
    return dataclasses.replace(cfg, **{f: getattr(default, f) for f in TRANSFORMS[transform]})


def variants(cfg: AugmentConfig) -> list[tuple[str, AugmentConfig]]:
    """("all", cfg), ("without <t>", cfg minus t) for each enabled t, ("none", no augmentation)."""
    out = [("all", cfg)] + [(f"without {t}", without(cfg, t)) for t in enabled_transforms(cfg)]
    return out + [("none", dataclasses.replace(cfg, **{f: getattr(AugmentConfig(), f)
                                                       for fs in TRANSFORMS.values() for f in fs}))]


def ablation_specs(cfg: AugmentConfig, base: dict, seeds=(0, 1), recipe: str = DEFAULT_RECIPE,
                   group: str | None = None) -> tuple[str, list[tuple[str, int, RunSpec]]]:
    """(group, [(variant, seed, spec)]): the paired runs; `base` holds the other RunSpec values (data,
    backbone, weights, image_size, epochs...), the same for every run."""
    if not RECIPES[recipe].augments:
        raise ValueError(f"The recipe {recipe!r} never augments its images: choose one that does, such as "
                         f"{DEFAULT_RECIPE}, for an augmentation ablation.")
    if not enabled_transforms(cfg):
        raise ValueError("The augmentation configuration has no transform switched on: enable at least one "
                         "(or choose the lecture preset) to ablate it.")
    from core.runs.specs import build_spec
    group = group or time.strftime("%Y%m%d-%H%M%S")
    out = []
    for seed in seeds:
        for variant, aug in variants(cfg):
            values = {**base, "seed": seed, "augment": aug.to_dict(), "name": f"ablation {group} · {variant} · seed {seed}"}
            out.append((variant, seed, build_spec(recipe, values, check=not out)))
    return group, out


def queue(group: str, planned: list[tuple[str, int, RunSpec]]) -> list[str]:
    """Submit the runs (through the run queue), tagged with the group, variant and seed; their ids."""
    from core.runs import runner, store
    ids = []
    for variant, seed, spec in planned:
        run_id = runner.submit(spec)
        store.set_tags(run_id, [TAG, f"{TAG}:{group}", f"variant:{variant}", f"seed:{seed}"])
        ids.append(run_id)
    return ids


def groups(runs: list[dict]) -> list[str]:
    """The ablation groups among `runs`, newest first."""
    seen = []
    for run in sorted(runs, key=lambda r: r["created"], reverse=True):
        for tag in _tags(run):
            if tag.startswith(f"{TAG}:") and tag[len(TAG) + 1:] not in seen:
                seen.append(tag[len(TAG) + 1:])
    return seen


def _tags(run: dict) -> list[str]:
    return list(run.get("tags") or [])


def _tag_value(run: dict, key: str) -> str | None:
    return next((t[len(key) + 1:] for t in _tags(run) if t.startswith(key + ":")), None)


def _final(run_id: str) -> dict | None:
    from core.runs import store
    rows = [r for r in store.epochs(run_id) if r.get("val_accuracy") is not None]
    return {"val_accuracy": rows[-1]["val_accuracy"], "val_loss": rows[-1]["val_loss"]} if rows else None


def _order(variant: str | None) -> int:
    """all first, then the transforms in TRANSFORMS's order, none last."""
    names = ["all"] + [f"without {t}" for t in TRANSFORMS] + ["none"]
    return names.index(variant) if variant in names else len(names)


def results(group: str, runs: list[dict]) -> dict:
    """The ablation's figures: {"group", "runs": [{id, name, variant, seed, status, val_accuracy, val_loss}],
    "bars": [{"variant", "delta_acc", "delta_acc_sd", "delta_loss", "delta_loss_sd", "n", "per_seed", "run_ids"}],
    "all": {"val_accuracy", "val_loss", "n"}, "pending"}; a bar's delta is (variant - all), paired by seed,
    so a negative accuracy change means removing the transform hurt: the transform helps."""
    members = [r for r in runs if f"{TAG}:{group}" in _tags(r)]
    table = []
    for r in members:
        final = _final(r["id"]) if r["status"] == "finished" else None
        table.append({"id": r["id"], "name": r["name"], "variant": _tag_value(r, "variant"),
                      "seed": int(_tag_value(r, "seed") or 0), "status": r["status"],
                      "val_accuracy": final and final["val_accuracy"], "val_loss": final and final["val_loss"]})
    table.sort(key=lambda t: (t["seed"], _order(t["variant"])))
    base = {t["seed"]: t for t in table if t["variant"] == "all" and t["val_accuracy"] is not None}
    bars = []
    for variant in dict.fromkeys(t["variant"] for t in table if t["variant"] != "all"):
        pairs = [(t, base[t["seed"]]) for t in table
                 if t["variant"] == variant and t["val_accuracy"] is not None and t["seed"] in base]
        acc = [t["val_accuracy"] - b["val_accuracy"] for t, b in pairs]
        loss = [t["val_loss"] - b["val_loss"] for t, b in pairs]
        bars.append({"variant": variant, "n": len(pairs),
                     "delta_acc": statistics.fmean(acc) if acc else None,
                     "delta_acc_sd": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                     "delta_loss": statistics.fmean(loss) if loss else None,
                     "delta_loss_sd": statistics.stdev(loss) if len(loss) > 1 else 0.0,
                     "per_seed": [{"seed": t["seed"], "delta_acc": round(a, 4), "delta_loss": round(lo, 4)}
                                  for (t, _), a, lo in zip(pairs, acc, loss)],
                     "run_ids": [t["id"] for t, _ in pairs] + [b["id"] for _, b in pairs]})
    alls = [b["val_accuracy"] for b in base.values()]
    return {"group": group, "runs": table, "bars": bars,
            "all": {"val_accuracy": statistics.fmean(alls) if alls else None,
                    "val_loss": statistics.fmean([b["val_loss"] for b in base.values()]) if alls else None,
                    "n": len(alls)},
            "pending": sum(t["status"] in ("queued", "running") for t in table)}


def text_table(res: dict) -> str:
    """The figures as the command line prints them."""
    a = res["all"]
    lines = [f"ablation {res['group']}: {len(res['runs'])} runs, {res['pending']} still queued or running",
             f"  all transforms: final validation accuracy {a['val_accuracy']:.4f}, loss {a['val_loss']:.4f} "
             f"(mean of {a['n']} seeds)" if a["val_accuracy"] is not None else "  all transforms: no finished run yet",
             f"  {'removed':<24}{'d val acc':>10}{'sd':>8}{'d val loss':>12}{'sd':>8}{'seeds':>7}  per seed (acc)"]
    for b in res["bars"]:
        if b["delta_acc"] is None:
            lines.append(f"  {b['variant']:<24}{'(no finished pair yet)':>45}")
            continue
        lines.append(f"  {b['variant']:<24}{b['delta_acc']:>+10.4f}{b['delta_acc_sd']:>8.4f}{b['delta_loss']:>+12.4f}"
                     f"{b['delta_loss_sd']:>8.4f}{b['n']:>7}  " + " ".join(f"{p['delta_acc']:+.3f}" for p in b["per_seed"]))
    lines.append("  (d = the variant minus all transforms, paired by seed: a negative accuracy change means the "
                 "removed transform helps)")
    return "\n".join(lines)
