"""The run specification and the recipe table: what a run is, with the lecture's defaults.

`RunSpec` is the one configuration object that flows unchanged from the command line or the
dashboard to the training worker and into the run store (as JSON). `RECIPES` is the single source
of truth for each recipe's description and default hyperparameters; `BACKBONES` for the backbones.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from core.data.augment_config import AugmentConfig
from core.data.augment_presets import ENGINES, PRESETS, get_preset


@dataclass(frozen=True)
class Backbone:
    """A keras.applications convolutional base and the facts the engine needs about it."""
    key: str
    title: str
    app: str                 # name in keras.applications
    preprocess: str          # "caffe" (BGR, mean-subtracted) or "tf" ([-1, 1])
    min_size: int            # smallest input size keras.applications accepts
    default_freeze_from: str  # first layer made trainable for fine-tuning
    default_head: str        # "flatten" or "gap" (see README: why per backbone)
    imagenet_file: str       # file name Keras caches under ~/.keras/models/ (notop); {rows} for MobileNetV2
    imagenet_mb: int


BACKBONES: dict[str, Backbone] = {
    "vgg16": Backbone("vgg16", "VGG16", "VGG16", "caffe", 32, "block5_conv1", "flatten",
                      "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", 56),
    "mobilenet_v2": Backbone("mobilenet_v2", "MobileNetV2", "MobileNetV2", "tf", 32, "block_16_expand",
                             "gap", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5", 9),
    "resnet50": Backbone("resnet50", "ResNet50", "ResNet50", "caffe", 32, "conv5_block1_1_conv", "gap",
                         "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", 90),
}


@dataclass(frozen=True)
class Recipe:
    """One experiment of the lecture: what it does, and its default hyperparameters."""
    key: str
    title: str
    description: str
    uses_backbone: bool      # a pretrained conv base (else the small CNN)
    defaults: dict
    augments: bool = True    # may train on augmented images (scratch and feature_extraction never do)
    fine_tunes: bool = False  # a second phase unfreezes the top of the base (fine_tune)
    batchnorm: bool = False  # the small CNN with BatchNorm before each ReLU (scratch_bn)
    dropout: bool = True     # the network has a Dropout layer before its dense layers


RECIPES: dict[str, Recipe] = {r.key: r for r in [
    Recipe("scratch", "Small CNN from scratch",
           "The lecture's baseline: four Conv2D(3x3)+MaxPooling blocks (32-64-128-128 filters), Flatten, "
           "Dense(512), a sigmoid output; trained from random weights with RMSprop. With 2000 images it "
           "overfits within a few epochs: training accuracy climbs towards 1.0 while validation stalls near 0.7.",
           False, dict(epochs=30, lr=1e-4, augment="none"), augments=False, dropout=False),
    Recipe("scratch_aug", "From scratch + augmentation + dropout",
           "The same network, fed randomly transformed copies of the training images (rotations, shifts, "
           "shear, zoom, flips) and with Dropout(0.5) before the dense layers. The model never sees the same "
           "picture twice, so overfitting comes much later and validation accuracy rises to about 0.8+.",
           False, dict(epochs=100, lr=1e-4, augment="lecture", dropout=0.5)),
    Recipe("scratch_bn", "From scratch with BatchNorm",
           "The BatchNorm variant: each Conv2D has no bias and is followed by BatchNormalization and then ReLU, "
           "with augmentation and dropout as in scratch_aug. Normalising activations lets gradients flow "
           "better and usually trains faster.",
           False, dict(epochs=100, lr=1e-4, augment="lecture", dropout=0.5), batchnorm=True),
    Recipe("feature_extraction", "Feature extraction (fast)",
           "Run the pretrained convolutional base once over all images, cache its outputs, and train only a "
           "small dense classifier (Dense 256 + Dropout 0.5) on them. Very fast, but no augmentation is possible "
           "because the base never sees the images again.",
           True, dict(epochs=30, lr=2e-5, augment="none", dropout=0.5), augments=False),
    Recipe("feature_extraction_aug", "Feature extraction + augmentation",
           "Put the frozen convolutional base inside the model, with the dense classifier on top, and train end "
           "to end on augmented images. Only the classifier's weights change, but every epoch runs the whole "
           "base: slow on a CPU, better accuracy.",
           True, dict(epochs=30, lr=2e-5, augment="lecture", dropout=0.5)),
    Recipe("fine_tune", "Fine-tuning the top block",
           "Phase 1 trains the classifier on the frozen base (an untrained classifier would send large gradients "
           "into the base and destroy what it learned). Phase 2 unfreezes the base from the chosen layer on "
           "(default: VGG16's block5) and trains on with a very low learning rate, adapting the most "
           "specialised features to the new task.",
           True, dict(epochs=30, fine_tune_epochs=100, lr=2e-5, fine_tune_lr=1e-5, augment="lecture",
                      dropout=0.5), fine_tunes=True),
]}

SMALL_CNN_MIN_SIZE = 46  # four 3x3 convs and 2x2 poolings need at least this many pixels
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16", "int8")
HEADS = ("auto", "flatten", "gap")
CLASS_WEIGHTS = ("none", "balanced")
AUGMENT_ENGINES = tuple(ENGINES)  # "image_data_generator" (the lecture's), "keras_layers"


ALL_FROZEN = "none"  # freeze_from value meaning "no layer of the base trains" (feature extraction)


def _param(label: str, help: str, kind: str, lo=None, hi=None, step=None, unit: str = "",
           options=None, cli: bool = True) -> dict:
    """Field metadata of a RunSpec parameter: what the page's widget, `validate()` and the CLI flag read.

    kind: "int", "float", "lr" (a rate on a log scale), "choice" (one of `options`), "text", "path", "flag"
    (on or off: a checkbox, a `--name` switch).
    `lo`/`hi` are the valid range (inclusive); `cli=False` for fields the command line does not set."""
    return {"label": label, "help": help, "kind": kind, "min": lo, "max": hi, "step": step, "unit": unit,
            "options": options, "cli": cli}


def number_text(value) -> str:
    """A range bound or value as people read it: whole numbers in full, others in %g (1e-05)."""
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1):
        return str(int(value))
    return f"{value:g}"


def rate_choices(lo: float, hi: float, current: float | None = None) -> list[float]:
    """Learning rates on a log scale from `lo` to `hi` (1, 2 and 5 times each power of ten), with `current`
    included exactly, so a widget stepping through them shows the value a run will use."""
    grid = {float(f"{m}e{e}") for e in range(-10, 2) for m in (1, 2, 5)}
    if current is not None:
        grid.add(float(current))
    return sorted(v for v in grid if lo <= v <= hi)


def rate_text(value: float) -> str:
    """A learning rate written exactly and short: 1e-4, 1.5e-4, 2e-5."""
    mantissa, exponent = f"{value:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _augment_field():
    return field(default_factory=AugmentConfig, metadata=_param(
        "Augmentation", "ImageDataGenerator settings for training images: a preset name (none, lecture, "
        "second_edition) or a JSON file", "augment"))


@dataclass
class RunSpec:
    """Everything that determines a run. JSON-serialisable; stored verbatim with the run.

    Each field's metadata (`_param`: label, unit, range, help) is the one table that the Train page's
    widgets, `validate()` and the command line's flags read, so they cannot disagree."""
    recipe: str = field(default="scratch", metadata=_param(
        "Recipe", "which experiment of the lecture", "choice", options=tuple(RECIPES), cli=False))
    name: str = field(default="", metadata=_param("Run name", "a name to find the run by (default: recipe · model)",
                                                  "text"))
    data: str | None = field(default=None, metadata=_param(
        "Data folder", "folder of class subfolders, split (train/validation[/test]) or not "
        "(default: the built-in demo data)", "path"))
    backbone: str = field(default="vgg16", metadata=_param(
        "Backbone", "the pretrained convolutional base", "choice", options=tuple(BACKBONES)))
    weights: str = field(default="imagenet", metadata=_param(
        "Weights", "imagenet, none (random), or the path of a no-top weights file for the backbone", "text"))
    image_size: int = field(default=150, metadata=_param(
        "Image size", "images are resized to this square size (the lecture: 150)", "int", 32, 1024, 10, "px"))
    epochs: int = field(default=30, metadata=_param(
        "Epochs", "passes over the training images (fine-tuning: of phase 1, the head)", "int", 1, 10000, 1))
    fine_tune_epochs: int = field(default=0, metadata=_param(
        "Fine-tuning epochs", "fine-tuning: epochs of phase 2, with the top of the base unfrozen", "int", 0, 10000, 1))
    freeze_from: str | None = field(default=None, metadata=_param(
        "Freeze point", "fine-tuning: the first layer that trains in phase 2 (default: the backbone's top "
        "block, block5_conv1 for VGG16)", "text"))
    batch_size: int = field(default=20, metadata=_param(
        "Batch size", "images per gradient step (the lecture: 20)", "int", 1, 1024, 1))
    lr: float = field(default=1e-4, metadata=_param(
        "Learning rate", "RMSprop's learning rate (fine-tuning: of phase 1)", "lr", 1e-7, 1.0))
    fine_tune_lr: float = field(default=1e-5, metadata=_param(
        "Fine-tuning learning rate", "fine-tuning: the learning rate of phase 2, low so the pretrained "
        "features change slowly (the lecture: 1e-5)", "lr", 1e-8, 1.0))
    dropout: float = field(default=0.0, metadata=_param(
        "Dropout", "fraction of the dense layer's inputs dropped while training", "float", 0.0, 0.9, 0.05))
    head: str = field(default="auto", metadata=_param(
        "Head", "the classifier's input on a backbone: flatten (the lecture's VGG16), gap (global average "
        "pooling) or auto (per backbone)", "choice", options=HEADS))
    augment: AugmentConfig = _augment_field()
    seed: int = field(default=0, metadata=_param(
        "Seed", "seeds the weights, the split of an unsplit folder, the order and the augmentation", "int",
        0, 2**31 - 1, 1))
    precision: str = field(default="auto", metadata=_param(
        "Precision", "auto: frozen passes in int8 on a CPU (OpenVINO, checked against float32), training in "
        "bfloat16 where the hardware computes it natively, else float32; int8: frozen passes in int8; "
        "float32: the lecture exactly", "choice",
        options=PRECISIONS))
    val_fraction: float = field(default=0.2, metadata=_param(
        "Validation fraction", "of an unsplit folder, the share held out for validation", "float", 0.01, 0.49, 0.01))
    test_fraction: float = field(default=0.1, metadata=_param(
        "Test fraction", "of an unsplit folder, the share held out for testing", "float", 0.0, 0.49, 0.01))
    deterministic: bool = field(default=False, metadata=_param(
        "Deterministic", "same seed, same machine, same metrics: Keras's seed plus TensorFlow's op determinism "
        "(slower on some ops)", "flag"))
    class_weight: str = field(default="none", metadata=_param(
        "Class weights", "none, or balanced: each training image's loss weighted by n / (classes x its class's "
        "count), so that a rare class counts as much as a common one", "choice", options=CLASS_WEIGHTS))
    exclude: list = field(default_factory=list, metadata=_param(
        "Excluded images", "images left out of every split, such as duplicates or mislabelled photos: chosen on "
        "the Data page, or named on the command line (images, folders of images, text files listing them); kept "
        "as content hashes (sha1) and listed under \"excluded\" in the run's split.json; no file is deleted",
        "hashes"))
    augment_engine: str = field(default="image_data_generator", metadata=_param(
        "Augmentation engine", "what applies the augmentation to training images: image_data_generator (the "
        "lecture's ImageDataGenerator) or keras_layers (Keras preprocessing layers built from the same "
        "parameters: RandomRotation, RandomTranslation, RandomShear, RandomZoom, RandomFlip; the Augmentation page "
        "shows both)", "choice", options=AUGMENT_ENGINES))
    lr_block_ratio: float = field(default=1.0, metadata=_param(
        "Rate ratio per block", "fine-tuning: discriminative learning rates; the classifier trains at the "
        "fine-tuning rate, the base's top block at that rate / ratio, the block below at rate / ratio², and so on "
        "down to the freeze point (1 = one rate for all, the lecture)", "float", 1.0, 100.0, 0.5))
    unfreeze_every: int = field(default=0, metadata=_param(
        "Unfreeze every", "fine-tuning: gradual unfreezing; phase 2 starts with only the base's top block "
        "trainable and one more block below it unfreezes every this many epochs, never below the freeze point "
        "(0 = every block from the freeze point trains from the start, the lecture)", "int", 0, 10000, 1,
        "epochs"))

    @staticmethod
    def param(name: str) -> dict:
        """The metadata of field `name` (label, help, kind, min, max, step, unit, options)."""
        return {f.name: f.metadata for f in dataclasses.fields(RunSpec)}[name]

    def bounds(self, name: str) -> tuple:
        """The valid (min, max) of numeric field `name` for this spec: the metadata's range, except that the
        smallest image size depends on the network (the small CNN needs 46 px)."""
        meta = self.param(name)
        if name == "image_size":
            lo = BACKBONES[self.backbone].min_size if self.uses_backbone else SMALL_CNN_MIN_SIZE
            return max(lo, meta["min"]), meta["max"]
        return meta["min"], meta["max"]

    @staticmethod
    def params() -> dict[str, dict]:
        return {f.name: dict(f.metadata) for f in dataclasses.fields(RunSpec)}

    @classmethod
    def from_recipe(cls, recipe: str, **overrides) -> "RunSpec":
        """The recipe's lecture defaults, with `overrides` (None values are ignored) on top."""
        if recipe not in RECIPES:
            raise ValueError(f"Unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}.")
        values = dict(RECIPES[recipe].defaults)
        values.update({k: v for k, v in overrides.items() if v is not None})
        aug = values.pop("augment", "none")
        if isinstance(aug, str):
            aug = get_preset(aug) if aug in PRESETS else AugmentConfig.from_dict(json.loads(Path(aug).read_text()))
        elif isinstance(aug, dict):
            aug = AugmentConfig.from_dict(aug)
        spec = cls(recipe=recipe, augment=aug, **values)
        spec.validate()
        return spec

    # -- derived values -------------------------------------------------------------------------
    @property
    def uses_backbone(self) -> bool:
        return RECIPES[self.recipe].uses_backbone

    @property
    def fine_tunes(self) -> bool:
        """True for a two-phase recipe (head, then the unfrozen top of the base)."""
        return RECIPES[self.recipe].fine_tunes

    @property
    def total_epochs(self) -> int:
        return self.epochs + (self.fine_tune_epochs if self.fine_tunes else 0)

    @property
    def resolved_freeze_from(self) -> str:
        return self.freeze_from or BACKBONES[self.backbone].default_freeze_from

    @property
    def resolved_head(self) -> str:
        return BACKBONES[self.backbone].default_head if self.head == "auto" else self.head

    @property
    def augmenting(self) -> bool:
        return RECIPES[self.recipe].augments and not self.augment.is_identity()

    # -- (de)serialisation and checks -------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["augment"] = self.augment.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"Unknown run specification keys: {', '.join(sorted(unknown))}.")
        d["augment"] = AugmentConfig.from_dict(d.get("augment") or {})
        return cls(**d)

    def validate(self) -> None:
        """Raise ValueError with one sentence naming the bad parameter and its valid range (from the metadata)."""
        def need(ok, msg):
            if not ok:
                raise ValueError(msg)
        for f in dataclasses.fields(self):
            meta, value = f.metadata, getattr(self, f.name)
            if meta["kind"] == "choice":
                need(value in meta["options"], f"{f.name} must be one of {', '.join(map(str, meta['options']))} "
                                               f"(got {value!r}).")
            elif meta["kind"] == "flag":
                need(isinstance(value, bool), f"{f.name} must be true or false (got {value!r}).")
            elif meta["kind"] in ("int", "float", "lr"):
                whole = meta["kind"] == "int"
                need(isinstance(value, int if whole else (int, float)) and not isinstance(value, bool),
                     f"{f.name} must be a {'whole ' if whole else ''}number (got {value!r}).")
                lo, hi = self.bounds(f.name)
                unit = f" {meta['unit']}" if meta["unit"] else ""
                need(lo <= value <= hi, f"{f.name} must be between {number_text(lo)} and {number_text(hi)}{unit} "
                                       f"(got {number_text(value)}).")
        need(isinstance(self.exclude, (list, tuple)) and all(
            isinstance(h, str) and len(h) == 40 and all(c in "0123456789abcdef" for c in h) for h in self.exclude),
             "exclude must be a list of content hashes (40 hexadecimal sha1 digits, as the Data page records "
             "them).")
        need(self.weights in ("imagenet", "none") or bool(self.weights),
             "weights must be 'imagenet', 'none' or the path of a weights file.")
        need(not (self.fine_tunes and self.freeze_from == ALL_FROZEN),
             "Fine-tuning needs a first trainable layer, but the freeze point leaves every layer frozen: choose a "
             "block or layer to unfreeze, or use a feature-extraction recipe (all frozen).")
        for name, plain in (("lr_block_ratio", 1.0), ("unfreeze_every", 0)):
            need(self.fine_tunes or getattr(self, name) == plain,
                 f"{name} only applies to fine-tuning ({', '.join(r.key for r in RECIPES.values() if r.fine_tunes)}), "
                 f"not to {self.recipe} (got {number_text(getattr(self, name))}): leave it at "
                 f"{number_text(plain)} or choose a fine-tuning recipe.")
        self.augment.validate()

    def display_name(self) -> str:
        return self.name or f"{self.recipe} · {self.backbone if self.uses_backbone else 'cnn'}"


def fine_tuning_spec() -> RunSpec:
    """The fine-tuning recipe's default spec (the Model page previews its phase 2 with these values)."""
    return RunSpec.from_recipe(next(r.key for r in RECIPES.values() if r.fine_tunes))
