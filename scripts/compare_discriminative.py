"""Discriminative rates + gradual unfreezing against plain two-phase fine-tuning: same data, same seeds.

    .venv/bin/python scripts/compare_discriminative.py [--data ../shared/data/cats_vs_dogs_small]
        [--weights ../shared/weights/mobilenet_v2_imagenet_notop.weights.h5] [--seeds 0 1 2]

Makes a subset of links (default 200/100/100 images per class for train/validation/test), then trains, per
seed, the fine_tune recipe twice in a throwaway lab home: plain (one rate for the head and every block from
the freeze point, all unfrozen at once) and with `--lr-block-ratio` and `--unfreeze-every`. Phase 1 (the
head) is the same in both. Prints each run's validation accuracy (best, last) and test accuracy of its last
and best models on the run's own test split, the means over seeds, and the host's CPU kind.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cats_vs_dogs_small"))
p.add_argument("--weights", default=str(ROOT.parent / "shared" / "weights" / "mobilenet_v2_imagenet_notop.weights.h5"))
p.add_argument("--backbone", default="mobilenet_v2")
p.add_argument("--per-class", type=int, nargs=3, default=(200, 100, 100), metavar=("TRAIN", "VAL", "TEST"))
p.add_argument("--image-size", type=int, default=96)
p.add_argument("--epochs", type=int, default=5, help="phase 1 (head) epochs")
p.add_argument("--fine-tune-epochs", type=int, default=10)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--fine-tune-lr", type=float, default=1e-4)
p.add_argument("--freeze-from", default="block_13_expand")
p.add_argument("--lr-block-ratio", type=float, default=2.6)
p.add_argument("--unfreeze-every", type=int, default=2)
p.add_argument("--augment", default="none", help="a preset; none keeps phase 2 on cached features (fast)")
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
a = p.parse_args()

work = Path(tempfile.mkdtemp(prefix="dlr_compare_"))
os.environ["TUNELAB_HOME"] = str(work / "home")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
subset = work / "data"
subprocess.run([sys.executable, str(ROOT / "scripts" / "make_subset.py"), a.data, str(subset), "--train",
                str(a.per_class[0]), "--validation", str(a.per_class[1]), "--test", str(a.per_class[2])], check=True)

from core.analysis.evaluate import evaluate  # noqa: E402 (after TUNELAB_HOME is set)
from core.models.precision import host  # noqa: E402
from core.runs import store  # noqa: E402
from core.runs.specs import build_spec  # noqa: E402
from core.runs.worker import run_worker  # noqa: E402

common = dict(data=str(subset), backbone=a.backbone, weights=a.weights, image_size=a.image_size, epochs=a.epochs,
              fine_tune_epochs=a.fine_tune_epochs, lr=a.lr, fine_tune_lr=a.fine_tune_lr, freeze_from=a.freeze_from,
              augment=a.augment, batch_size=20)
variants = {"plain two-phase": dict(lr_block_ratio=1.0, unfreeze_every=0),
            f"ratio {a.lr_block_ratio:g}, unfreeze every {a.unfreeze_every}": dict(
                lr_block_ratio=a.lr_block_ratio, unfreeze_every=a.unfreeze_every)}
results = {name: [] for name in variants}
for seed in a.seeds:
    for name, extra in variants.items():
        spec = build_spec("fine_tune", {**common, **extra, "seed": seed, "name": f"{name} · seed {seed}"})
        run_id = store.create_run(spec.to_dict(), spec.display_name(), spec.recipe, spec.backbone, spec.total_epochs)
        t0 = time.time()
        status = run_worker(run_id)
        if status != "finished":
            sys.exit(f"{name}, seed {seed}: {status}: {store.get_run(run_id)['error']}")
        rows = store.epochs(run_id)
        vals = [r["val_accuracy"] for r in rows]
        row = {"seed": seed, "head val": vals[a.epochs - 1], "best val": max(vals), "last val": vals[-1],
               "test last": evaluate(run_id, split="test", which="last")["accuracy"],
               "test best": evaluate(run_id, split="test", which="best")["accuracy"], "seconds": time.time() - t0}
        results[name].append(row)
        print(f"{name:32s} seed {seed}: " + "  ".join(f"{k} {v:.4f}" for k, v in row.items()
                                                     if k not in ("seed", "seconds")) + f"  ({row['seconds']:.0f} s)",
              flush=True)

machine = host()
print(f"\nfine_tune on {a.backbone} ({Path(a.weights).name}), {a.image_size} px, {a.per_class[0] * 2}/"
      f"{a.per_class[1] * 2}/{a.per_class[2] * 2} train/validation/test images, head {a.epochs} epochs at {a.lr:g}, "
      f"fine-tuning {a.fine_tune_epochs} epochs at {a.fine_tune_lr:g} from {a.freeze_from}, augment {a.augment}, "
      f"seeds {' '.join(map(str, a.seeds))}")
print(f"host: {machine['cpu']} ({machine['kind']}), {machine['cores']} cores")
keys = ("head val", "best val", "last val", "test last", "test best")
print(f"{'mean over seeds':32s} " + "  ".join(f"{k:>9s}" for k in keys))
for name, rows in results.items():
    print(f"{name:32s} " + "  ".join(f"{sum(r[k] for r in rows) / len(rows):9.4f}" for k in keys))
