"""Data: image folders and their splits, the decoded-image pipeline, augmentation and datasets.

Modules: `folders` (scan a folder of class subfolders, split it, the lab's one image decoder),
`manifest` (a run's recorded split: paths, sizes, content hashes), `pipeline` (decode once into a cache,
feed Keras); augmentation: `augment_config` (`AugmentConfig`, ImageDataGenerator's parameters as one table),
`augment_checks` (its validation against that table), `augment_presets` (named configurations, engines),
`augment_seed` (the per-image seed rule), `augment_generator` (the cached ImageDataGenerator and its axis probe),
`augment_transform` (the seeded transform that training and the preview share), `augmenters` (the engines that
apply it in training: ImageDataGenerator's transform or Keras preprocessing layers), `augment_export` (that
configuration as code), `preview`, `layer_preview`; `demo` (the built-in drawn dataset), `datasets` (the dataset
in use, uploads), `prefetch` (downloads when online).

The folder API is importable from here: `from core.data import scan, load_image, DataError`.
"""
from core.data.folders import SPLITS, DataError, Dataset, check_image, load_image, scan, stratified_split

__all__ = ["SPLITS", "DataError", "Dataset", "check_image", "load_image", "scan", "stratified_split"]
