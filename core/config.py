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

from core.data.augment import PRESETS, AugmentConfig, get_preset


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
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
HEADS = ("auto", "flatten", "gap")


def _augment_field():
    return field(default_factory=AugmentConfig)


@dataclass
class RunSpec:
    """Everything that determines a run. JSON-serialisable; stored verbatim with the run."""
    recipe: str = "scratch"
    name: str = ""
    data: str | None = None            # folder of class subfolders (split or not); None = built-in demo data
    backbone: str = "vgg16"
    weights: str = "imagenet"          # "imagenet", "none", or a path to a weights file
    image_size: int = 150
    epochs: int = 30                   # for fine_tune: phase 1 (head) epochs
    fine_tune_epochs: int = 0          # fine_tune only: phase 2 epochs
    freeze_from: str | None = None     # fine_tune: first trainable layer (None = the backbone's default)
    batch_size: int = 20
    lr: float = 1e-4
    fine_tune_lr: float = 1e-5
    dropout: float = 0.0
    head: str = "auto"                 # classifier input on a backbone: "flatten", "gap" or per-backbone "auto"
    augment: AugmentConfig = _augment_field()
    seed: int = 0
    precision: str = "auto"
    val_fraction: float = 0.2          # only used when the data folder is not split yet
    test_fraction: float = 0.1

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
        """Raise ValueError with one sentence naming the bad parameter and its valid range."""
        def need(ok, msg):
            if not ok:
                raise ValueError(msg)
        need(self.recipe in RECIPES, f"Unknown recipe {self.recipe!r}: choose one of {', '.join(RECIPES)}.")
        need(self.backbone in BACKBONES,
             f"Unknown backbone {self.backbone!r}: choose one of {', '.join(BACKBONES)}.")
        minimum = BACKBONES[self.backbone].min_size if self.uses_backbone else SMALL_CNN_MIN_SIZE
        need(minimum <= self.image_size <= 1024,
             f"image_size must be between {minimum} and 1024 pixels (got {self.image_size}).")
        need(1 <= self.epochs <= 10000, f"epochs must be between 1 and 10000 (got {self.epochs}).")
        need(0 <= self.fine_tune_epochs <= 10000,
             f"fine_tune_epochs must be between 0 and 10000 (got {self.fine_tune_epochs}).")
        need(1 <= self.batch_size <= 4096, f"batch_size must be between 1 and 4096 (got {self.batch_size}).")
        for name in ("lr", "fine_tune_lr"):
            value = getattr(self, name)
            need(0 < value <= 1, f"{name} must be greater than 0 and at most 1 (got {value}).")
        need(0 <= self.dropout < 1, f"dropout must be in [0, 1) (got {self.dropout}).")
        need(self.head in HEADS, f"head must be one of {', '.join(HEADS)} (got {self.head!r}).")
        need(self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r}).")
        need(0 < self.val_fraction < 0.5 and 0 <= self.test_fraction < 0.5,
             "val_fraction must be in (0, 0.5) and test_fraction in [0, 0.5).")
        need(self.weights in ("imagenet", "none") or bool(self.weights),
             "weights must be 'imagenet', 'none' or the path of a weights file.")
        self.augment.validate()

    def display_name(self) -> str:
        return self.name or f"{self.recipe} · {self.backbone if self.uses_backbone else 'cnn'}"
