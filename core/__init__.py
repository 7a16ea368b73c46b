"""Fine-Tuning Lab engine (no UI code): what a run is, and the subpackages that carry it out.

- `core.config`: `RunSpec` (everything that determines a run) and the `RECIPES` / `BACKBONES` tables.
- `core.runs`: the run store, the queue and its workers, the training worker, live progress.
- `core.data`: image folders and splits, the decoded-image pipeline, augmentation, datasets.
- `core.models`: bases and weights, heads, freeze points, precision, cached frozen features.
- `core.analysis`: evaluation, inspection, Grad-CAM, comparisons, the ladder, charts and reports.
- `core.tools`: the benchmark.
- `core.cli`: `python -m core ...`; `core.settings`: the dashboard's saved choices; `core.atomic`: atomic writes.
"""
