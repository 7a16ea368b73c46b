"""`layers`, `scan` and `health`: look at a backbone or a data folder before any run (no run is queued).

`scan` and `health --no-labels` import no TensorFlow, so they answer in seconds.
"""
from __future__ import annotations

import sys

from core.cli.common import add_command, print_json


def cmd_layers(a):
    from core.models.networks import layer_table
    from core.config import BACKBONES
    if a.backbone not in BACKBONES:
        raise ValueError(f"Unknown backbone {a.backbone!r}: choose one of {', '.join(BACKBONES)}.")
    table = layer_table(a.backbone, a.freeze_from, a.image_size)
    if a.json:
        return print_json(table)
    print(f"{'layer':<24}{'type':<22}{'output shape':<18}{'params':>12}  trainable")
    for row in table["layers"]:
        shape = "x".join(str(d) for d in row["output_shape"])
        print(f"{row['name']:<24}{row['type']:<22}{shape:<18}{row['params']:>12,}  {'yes' if row['trainable'] else 'no'}")
    print(f"Total params: {table['total_params']:,}\nTrainable params: {table['trainable_params']:,}\n"
          f"Non-trainable params: {table['non_trainable_params']:,}")


def cmd_scan(a):
    from core.data.folders import scan
    report = scan(a.dir).report()
    if a.json:
        return print_json(report)
    print(f"{report['root']}: classes {', '.join(report['classes'])} "
          f"({'split into train/validation/test' if report['presplit'] else 'not split: a seeded split will be made'})")
    for split, counts in report["counts"].items():
        print(f"  {split:<11}" + "  ".join(f"{c}: {n}" for c, n in counts.items()))
    s = report["image_size"]
    print(f"  image sizes: width {s['min_width']}-{s['max_width']} (mean {s['mean_width']}), "
          f"height {s['min_height']}-{s['max_height']} (mean {s['mean_height']})")
    print(f"  skipped: {len(report['skipped'])}")
    for item in report["skipped"]:
        print(f"    {item['path']}: {item['reason']}")


def cmd_health(a):
    from core.analysis import health
    progress = None if a.json else (lambda what, f: print(f"  {f:4.0%} {what}", file=sys.stderr, flush=True))
    report = health.check(a.dir, None if a.no_labels else a.backbone, a.weights, a.image_size, progress)
    if a.json:
        return print_json({k: v for k, v in report.items() if k != "image_sizes"}
                          | {"image_sizes": {k: v for k, v in report["image_sizes"].items()
                                             if k not in ("widths", "heights")}})
    print(health.text_report(report, a.top))


def register(sub) -> None:
    s = add_command(sub, "layers", cmd_layers, "the conv base's layer table for a freeze point")
    s.add_argument("--backbone", default="vgg16")
    s.add_argument("--freeze-from", default=None, help="first trainable layer (default: none trainable)")
    s.add_argument("--image-size", type=int, default=150)
    s.add_argument("--json", action="store_true")

    s = add_command(sub, "scan", cmd_scan, "classes, counts and skipped files of a data folder", "dir")
    s.add_argument("--json", action="store_true")

    s = add_command(sub, "health", cmd_health, "class balance, image sizes, unreadable files, duplicates across "
                                               "splits and likely label errors of a data folder", "dir")
    s.add_argument("--backbone", default="mobilenet_v2", help="pretrained base whose features the label check uses")
    s.add_argument("--weights", default="imagenet", help="imagenet or the path of a no-top weights file")
    s.add_argument("--image-size", type=int, default=128, help="pixels the base sees for the label check")
    s.add_argument("--no-labels", action="store_true", help="skip the label check (no TensorFlow, seconds)")
    s.add_argument("--top", type=int, default=20, help="how many suspected label errors to print")
    s.add_argument("--json", action="store_true")
