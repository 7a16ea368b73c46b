"""The lecture's networks: the small CNNs, pretrained convolutional bases, classifier heads, freezing.

Every model built here takes raw RGB pixels (0-255) as input: the from-scratch networks start with
a Rescaling layer, pretrained bases with `BackbonePreprocess` (their own preprocess_input), so a saved
`.keras` model can be applied to images directly. Weights are "imagenet" (Keras's standard download,
cached in ~/.keras/models/), "none" (random), or the path of a weights file.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from core.config import BACKBONES, RECIPES, RunSpec
from core.models.layer_table import freeze_table
from core.models import discriminative, environment
from core.models.weights import WeightsError, imagenet_missing_message, load_weights_file  # noqa: F401 (re-exported)


@keras.saving.register_keras_serializable(package="tunelab")
class BackbonePreprocess(layers.Layer):
    """keras.applications preprocessing as a layer: "caffe" (RGB->BGR, ImageNet mean removed) or "tf" ([-1, 1])."""

    def __init__(self, mode: str = "caffe", **kwargs):
        kwargs.setdefault("dtype", "float32")  # exact preprocessing even under mixed precision
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, x):
        x = keras.ops.cast(x, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        mean = keras.ops.convert_to_tensor([103.939, 116.779, 123.68], dtype=self.compute_dtype)
        return x[..., ::-1] - mean

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def conv_base(backbone: str, weights: str, image_size: int, seed: int = 0) -> keras.Model:
    """The backbone's convolutional base (include_top=False) with the requested weights.

    Random weights ("none") are drawn from `seed`, so every base a run builds is the same network.
    """
    info = BACKBONES[backbone]
    app = getattr(keras.applications, info.app)
    kwargs = dict(include_top=False, input_shape=(image_size, image_size, 3))
    if weights in ("none", None):
        keras.utils.set_random_seed(seed)
        return app(weights=None, **kwargs)
    if weights == "imagenet":
        try:
            return app(weights="imagenet", **kwargs)
        except Exception as exc:  # download failed (offline), or a corrupt cache file
            cached = environment.imagenet_file(backbone, image_size)
            if not cached.is_file():
                raise WeightsError(imagenet_missing_message(backbone, image_size)) from exc
            raise WeightsError(f"The cached ImageNet weights file {cached} for {info.title} cannot be loaded "
                               f"({type(exc).__name__}: {str(exc)[:160]}): delete it so that it is downloaded "
                               f"again, or choose a local weights file on the Model page.") from exc
    model = app(weights=None, **kwargs)
    load_weights_file(model, backbone, Path(weights).expanduser())
    return model


def layer_names(base: keras.Model) -> list[str]:
    return [layer.name for layer in base.layers if not isinstance(layer, layers.InputLayer)]


def freeze_from(base: keras.Model, first_trainable: str | None) -> None:
    """Freeze every layer before `first_trainable`; that layer and all after it train. None freezes all."""
    names = layer_names(base)
    if first_trainable is not None and first_trainable not in names:
        blocks = sorted({n.split("_")[0] for n in names})
        raise ValueError(f"Layer {first_trainable!r} is not in {base.name}; valid freeze points are its layer "
                         f"names, for example {', '.join(names[-6:])} (blocks: {', '.join(blocks[:8])}...).")
    base.trainable = True
    trainable = False
    for layer in base.layers:
        if layer.name == first_trainable:
            trainable = True
        # BatchNorm layers stay frozen (inference mode) when fine-tuning, as Keras recommends.
        layer.trainable = trainable and not isinstance(layer, layers.BatchNormalization)


def train_only(part: keras.Model, names: set[str]) -> None:
    """Make exactly the layers of `part` named in `names` trainable (BatchNorm layers stay frozen, as in
    `freeze_from`); every other layer of `part` is frozen."""
    part.trainable = True
    for layer in part.layers:
        layer.trainable = layer.name in names and not isinstance(layer, layers.BatchNormalization)


def trainable_names(part: keras.Model) -> set[str]:
    """The names of `part`'s layers that train (the set `train_only` sets)."""
    return {layer.name for layer in part.layers if layer.trainable and not isinstance(layer, layers.InputLayer)}


def base_part(model: keras.Model) -> keras.Model:
    """The (part of the) conv base nested in a classifier: the whole base, or its top (kind "top")."""
    return next(layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name != "head")


def split_at(base: keras.Model, first_trainable: str) -> tuple[keras.Model, keras.Model] | None:
    """(bottom, top) with top(bottom(x)) == base(x), cut at the input of `first_trainable`.

    None when the graph is not a chain there (a skip connection crosses the cut), so the frozen
    bottom cannot be computed once and cached.
    """
    cut = base.get_layer(first_trainable).input
    if isinstance(cut, (list, tuple)):
        return None
    try:
        top = keras.Model(cut, base.output, name=f"{base.name}_top")
    except ValueError:
        return None
    return keras.Model(base.input, cut, name=f"{base.name}_bottom"), top


def base_layers(backbone: str, image_size: int = 150) -> list[dict]:
    """The conv base's layers: name, type, output shape, parameters, parameters that train when unfrozen."""
    base = conv_base(backbone, "none", image_size)
    rows = []
    for layer in base.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        unfrozen = 0 if isinstance(layer, layers.BatchNormalization) else \
            int(sum(np.prod(w.shape) for w in layer.trainable_weights))
        rows.append({"name": layer.name, "type": type(layer).__name__, "output_shape": list(layer.output.shape[1:]),
                     "params": layer.count_params(), "trainable_when_unfrozen": unfrozen})
    return rows


def layer_table(backbone: str, freeze_point: str | None = None, image_size: int = 150) -> dict:
    """The layer table for a freeze point, counting the conv base alone (see core.models.layer_table)."""
    return freeze_table(base_layers(backbone, image_size), freeze_point, backbone, image_size)


def output_layer(n_classes: int) -> layers.Layer:
    """Sigmoid unit for two classes, softmax otherwise; float32 so mixed precision stays stable."""
    if n_classes == 2:
        return layers.Dense(1, activation="sigmoid", dtype="float32", name="predictions")
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name="predictions")


def small_cnn(image_size: int, n_classes: int = 2, dropout: float = 0.0, batchnorm: bool = False,
              rescale: float = 1 / 255) -> keras.Model:
    """The lecture's convnet: Conv 32-64-128-128 (3x3) + 2x2 max-pooling, Dense 512."""
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(rescale, name="rescale")(inputs)
    for i, filters in enumerate((32, 64, 128, 128), start=1):
        if batchnorm:
            x = layers.Conv2D(filters, 3, use_bias=False, name=f"conv{i}")(x)
            x = layers.BatchNormalization(name=f"bn{i}")(x)
            x = layers.Activation("relu", name=f"relu{i}")(x)
        else:
            x = layers.Conv2D(filters, 3, activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(512, activation="relu", name="dense")(x)
    return keras.Model(inputs, output_layer(n_classes)(x), name="small_cnn")


def head(input_shape, n_classes: int, pooling: str, dropout: float) -> keras.Model:
    """The densely connected classifier on top of a conv base: Flatten or GAP, Dense 256, Dropout."""
    inputs = keras.Input(input_shape, name="features")
    x = layers.Flatten(name="flatten")(inputs) if pooling == "flatten" else \
        layers.GlobalAveragePooling2D(name="gap")(inputs)
    x = layers.Dense(256, activation="relu", name="dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, output_layer(n_classes)(x), name="head")


def full_model(base: keras.Model, head_model: keras.Model, preprocess: str) -> keras.Model:
    """Raw pixels -> backbone preprocessing -> conv base -> head, as one model."""
    inputs = keras.Input(base.input_shape[1:], name="image")
    x = BackbonePreprocess(preprocess, name="preprocess")(inputs)
    x = base(x)
    return keras.Model(inputs, head_model(x), name=f"{base.name}_classifier")


def build_scratch(spec: RunSpec, n_classes: int) -> keras.Model:
    return small_cnn(spec.image_size, n_classes, dropout=spec.dropout if RECIPES[spec.recipe].dropout else 0.0,
                     batchnorm=RECIPES[spec.recipe].batchnorm, rescale=spec.augment.rescale)


def loss_for(n_classes: int) -> str:
    return "binary_crossentropy" if n_classes == 2 else "sparse_categorical_crossentropy"


def compile_model(model: keras.Model, lr: float, n_classes: int, layer_factors: dict | None = None) -> None:
    """RMSprop at `lr`; with `layer_factors` ({layer: factor}, fine-tuning), a rate of lr x factor per layer."""
    model.compile(optimizer=discriminative.optimizer(lr, layer_factors), loss=loss_for(n_classes),
                  metrics=["accuracy"])
