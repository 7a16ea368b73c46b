"""The one spec builder: a form's values, command-line arguments or a Ladder step become a checked `RunSpec`.

Every way of starting a run (the Train page, its freeze-point sweep, the Ladder, `python -m core train`)
calls `build_spec`, so the same defaults, ranges, path rules and checks apply everywhere, and a run that
cannot work (a data folder without two usable classes, weights that are missing or belong to another
network, a freeze point the backbone does not have) is refused before it is queued, with one sentence.
Imports TensorFlow only to check a freeze point or a weights file.
"""
from __future__ import annotations

import functools
from pathlib import Path

from core.config import ALL_FROZEN, BACKBONES, RunSpec


def _absolute(path: str, confine: bool) -> str:
    """`path` resolved to an absolute path; inside TUNELAB_DATA_ROOTS when `confine` (DataError if not)."""
    if confine:
        from core.data.datasets import check_allowed
        return str(check_allowed(path))
    return str(Path(path).expanduser().resolve())


def build_spec(recipe: str, values: dict | None = None, *, confine: bool = False, check: bool = True) -> RunSpec:
    """A validated RunSpec: `recipe`'s lecture defaults with `values` on top (None means "the default").

    Paths (data folder, weights file) are stored absolute, so a run reads the same files whoever opens it
    from wherever; `confine=True` (the dashboard) also refuses paths outside TUNELAB_DATA_ROOTS.
    `check=True` scans the data folder and checks the weights and the freeze point, raising ValueError
    (DataError, WeightsError) with one sentence that names the problem and the fix."""
    values = {k: v for k, v in (values or {}).items() if v is not None}
    for key in ("data", "weights"):
        if isinstance(values.get(key), str) and not values[key].strip():
            values.pop(key)
    if values.get("data"):
        values["data"] = _absolute(values["data"], confine)
    if values.get("weights") not in (None, "imagenet", "none"):
        values["weights"] = _absolute(values["weights"], confine)
    spec = RunSpec.from_recipe(recipe, **values)
    if check:
        check_spec(spec)
    return spec


def check_spec(spec: RunSpec, data: bool = True) -> None:
    """Refuse a spec that cannot work: its data folder (unless `data=False`), weights and freeze point."""
    if data and spec.data is not None:
        from core.data.folders import scan
        scan(spec.data, spec.val_fraction, spec.test_fraction, spec.seed)  # DataError for unusable folders
    if not spec.uses_backbone:
        return
    if spec.fine_tunes and spec.freeze_from not in (None, ALL_FROZEN):
        names = _layer_names(spec.backbone, spec.image_size)
        if spec.freeze_from not in names:
            default = BACKBONES[spec.backbone].default_freeze_from
            raise ValueError(f"{BACKBONES[spec.backbone].title} has no layer {spec.freeze_from!r} to fine-tune from: "
                             f"choose one of its layers, for example its top block's {default} (`python -m core "
                             f"layers --backbone {spec.backbone}` lists them).")
    from core.models.weights import check_weights
    check_weights(spec.backbone, spec.weights, spec.image_size)


@functools.lru_cache(maxsize=8)
def _layer_names(backbone: str, image_size: int) -> tuple[str, ...]:
    from core.models.networks import base_layers
    return tuple(row["name"] for row in base_layers(backbone, image_size))


def rerun_spec(spec_dict: dict) -> RunSpec:
    """A new run's spec equal to a stored run's (`run["spec"]`), checked again through `build_spec`: "rerun this"."""
    values = dict(spec_dict)
    recipe = values.pop("recipe")
    if values.get("name"):
        values["name"] = f"{values['name']} (rerun)"
    return build_spec(recipe, values)
