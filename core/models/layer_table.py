"""Freeze points on a conv base's layer list: which layers train, and how many parameters that is.

Pure functions over the rows `core.models.networks.base_layers` returns (no TensorFlow here), so the
dashboard can move the freeze point instantly. BatchNormalization layers stay frozen when the
layers around them are unfrozen, as Keras recommends for fine-tuning.
"""
from __future__ import annotations

import re

_MOBILENET_BLOCKS = ((re.compile(r"^(block_\d+)_"), r"\1"), (re.compile(r"^(expanded_conv)"), r"\1"),
                     (re.compile(r"^bn_(Conv1)$"), r"\1"), (re.compile(r"^(Conv_1)(_bn)?$"), r"\1"),
                     (re.compile(r"^out_relu$"), "Conv_1"))


def block_of(name: str) -> str:
    """The block a layer belongs to: "block5_conv1" -> "block5" (VGG16), "conv5_block1_1_conv" -> "conv5"
    (ResNet50), "block_16_expand" -> "block_16", "expanded_conv_project" -> "expanded_conv", "bn_Conv1" ->
    "Conv1", "out_relu" -> "Conv_1" (MobileNetV2's inverted residual blocks, its first and last convolutions)."""
    for pattern, block in _MOBILENET_BLOCKS:
        found = pattern.match(name)
        if found:
            return found.expand(block)
    return name.split("_")[0]


def blocks(rows: list[dict]) -> list[tuple[str, str]]:
    """(block, its first layer) in order, for picking a freeze point by block."""
    seen: dict[str, str] = {}
    for row in rows:
        seen.setdefault(block_of(row["name"]), row["name"])
    return list(seen.items())


def freeze_table(rows: list[dict], first_trainable: str | None, backbone: str = "", image_size: int = 0) -> dict:
    """The layer table with every layer from `first_trainable` on unfrozen (None: all frozen)."""
    names = [r["name"] for r in rows]
    if first_trainable is not None and first_trainable not in names:
        raise ValueError(f"Layer {first_trainable!r} is not in the {backbone or 'base'}; valid freeze points are its "
                         f"layer names, for example {', '.join(names[-6:])}.")
    trainable, out, count = False, [], 0
    for row in rows:
        trainable = trainable or row["name"] == first_trainable
        unfrozen = trainable and row["type"] != "BatchNormalization"
        count += row["trainable_when_unfrozen"] if unfrozen else 0
        out.append({"name": row["name"], "type": row["type"], "output_shape": row["output_shape"],
                    "params": row["params"], "trainable": unfrozen})
    total = sum(r["params"] for r in rows)
    return {"backbone": backbone, "image_size": image_size, "freeze_from": first_trainable, "total_params": total,
            "trainable_params": count, "non_trainable_params": total - count, "layers": out}
