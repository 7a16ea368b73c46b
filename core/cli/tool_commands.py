"""`prefetch` and `bench`: tooling around the lab rather than one run: cache the dataset and ImageNet weights while
online, and time the lecture's input pipeline against the engine's (`core.tools.bench`).
"""
from __future__ import annotations

from core.cli.common import add_command


def cmd_prefetch(a):
    from core.data import prefetch
    if a.weights:
        for backbone in a.weights:
            print(f"{backbone}: {prefetch.prefetch_weights(backbone, a.image_size)}")
    if a.weights and not a.dataset:
        return
    print(f"dataset: {prefetch.prefetch_dataset()}")


def cmd_bench(a):
    from core.tools import bench
    bench.main(a.data, a.weights, a.quick, a.json, a.markdown)


def register(sub) -> None:
    s = add_command(sub, "prefetch", cmd_prefetch, "download the cats-vs-dogs subset (and --weights) when online")
    s.add_argument("--weights", nargs="*", help="also cache ImageNet weights for these backbones")
    s.add_argument("--dataset", action="store_true", help="with --weights: also fetch the dataset")
    s.add_argument("--image-size", type=int, default=224)

    s = add_command(sub, "bench", cmd_bench, "the lecture's pipeline against the engine's, on the same photos")
    s.add_argument("--data", help="default: ../shared/data/cats_vs_dogs_small if present, else the demo data")
    s.add_argument("--weights", help="VGG16 weights (default: ../shared's VGG16-HED file if present, else none)")
    s.add_argument("--quick", action="store_true", help="small samples, about a minute")
    s.add_argument("--markdown", metavar="PATH", help="also write the results as a Markdown page (docs/benchmarks.md)")
    s.add_argument("--json", action="store_true")
