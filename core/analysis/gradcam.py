"""Look inside a trained classifier: its conv layers, their feature maps, and Grad-CAM heatmaps.

Works on every model the lab saves: the small CNNs (conv layers at the top level) and the
pretrained-base classifiers (raw pixels -> BackbonePreprocess -> nested base -> nested "head").
`tap_model` builds one model from the raw-pixel input to any inner tensors: a nested model that
holds a wanted layer is turned into a multi-output model over its own graph (any DAG: VGG16,
MobileNetV2, ResNet50), and the outer chain of layers is replayed around it.

Grad-CAM (Selvaraju et al. 2017): the gradient of the class score with respect to a conv layer's
activations, averaged over space, weighs that layer's channels; the ReLU of the weighted sum is
where the network looked. The class score is the output layer's logit, not its probability, so a
saturated sigmoid (p = 1.0) still gives a heatmap.

Public API: `conv_layers`, `tap_model`, `feature_maps`, `feature_grid`, `grad_cam`, `overlay`,
`colormap`.
"""
from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from PIL import Image

CONV_TYPES = (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)
OUTPUT_LAYER = "predictions"


def _path(model: keras.Model, name: str) -> list | None:
    """The layers leading to the layer `name`, through nested models: [outer, ..., layer]."""
    for layer in model.layers:
        if layer.name == name:
            return [layer]
        if isinstance(layer, keras.Model):
            inner = _path(layer, name)
            if inner:
                return [layer] + inner
    return None


def conv_layers(model: keras.Model) -> list[str]:
    """Names of the convolution layers, in order, looking inside nested bases."""
    names = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            names += conv_layers(layer)
        elif isinstance(layer, CONV_TYPES):
            names.append(layer.name)
    return names


def _output_layer(model: keras.Model) -> layers.Dense | None:
    """The final Dense layer (sigmoid or softmax), found by name or as the last Dense."""
    path = _path(model, OUTPUT_LAYER)
    if path and isinstance(path[-1], layers.Dense):
        return path[-1]
    dense = [layer for layer in _flat(model) if isinstance(layer, layers.Dense)]
    return dense[-1] if dense else None


def _flat(model: keras.Model) -> list:
    out = []
    for layer in model.layers:
        out += _flat(layer) if isinstance(layer, keras.Model) else [layer]
    return out


def _tensor(model: keras.Model, layer, kind: str):
    """The input or output tensor of `layer` inside `model`'s own graph (a shared layer has one per graph)."""
    for nodes in getattr(model, "_nodes_by_depth", {}).values():
        for node in nodes:
            if node.operation is layer:
                tensors = node.input_tensors if kind == "input" else node.output_tensors
                return tensors[0]
    return getattr(layer, kind)


def _multi(model: keras.Model, wants: list[tuple[list, str]]) -> keras.Model:
    """keras.Model(model.input -> [model.output, *wanted tensors]); a want is (path, "input"|"output")."""
    if all(len(path) == 1 for path, _ in wants):
        tapped = [_tensor(model, path[0], kind) for path, kind in wants]
        return keras.Model(model.inputs, [*model.outputs, *tapped])
    # A wanted layer sits in a nested model: replay this model's chain of layers around it.
    x = inputs = keras.Input(model.input_shape[1:], name=f"{model.name}_input")
    found: dict[int, object] = {}
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        here = [(i, path, kind) for i, (path, kind) in enumerate(wants) if path[0] is layer]
        nested = [(i, path[1:], kind) for i, path, kind in here if len(path) > 1]
        for i, _, kind in here:
            if len(wants[i][0]) == 1 and kind == "input":
                found[i] = x
        if nested:
            outs = _multi(layer, [(p, k) for _, p, k in nested])(x)
            x = outs[0]
            found.update({i: t for (i, _, _), t in zip(nested, outs[1:])})
        else:
            x = layer(x)
        for i, _, kind in here:
            if len(wants[i][0]) == 1 and kind == "output":
                found[i] = x
    if len(found) != len(wants):
        raise ValueError(f"Could not reach every wanted layer of {model.name}.")
    return keras.Model(inputs, [x, *[found[i] for i in range(len(wants))]], name=f"{model.name}_tapped")


_TAPPED: "weakref.WeakKeyDictionary[keras.Model, dict]" = weakref.WeakKeyDictionary()


def tap_model(model: keras.Model, taps: list[tuple[str, str]]) -> keras.Model:
    """A model from raw pixels to [probabilities, *tapped tensors]; a tap is (layer name, "input"|"output").

    Built once per model and taps (rebuilding would add a graph node to the outer layers on every call).
    """
    key = tuple(map(tuple, taps))
    cached = _TAPPED.setdefault(model, {})
    if key not in cached:
        cached[key] = _build_taps(model, taps)
    return cached[key]


def _build_taps(model: keras.Model, taps) -> keras.Model:
    wants = []
    for name, kind in taps:
        path = _path(model, name)
        if path is None:
            raise ValueError(f"The model has no layer {name!r}; its conv layers are: "
                             f"{', '.join(conv_layers(model)) or 'none'}.")
        wants.append((path, kind))
    return _multi(model, wants)


def _batch(image: np.ndarray) -> tf.Tensor:
    return tf.convert_to_tensor(np.asarray(image, dtype=np.float32)[None])


def feature_maps(model: keras.Model, image: np.ndarray, layer: str) -> np.ndarray:
    """The activations of `layer` for one raw RGB image (H, W, 3, 0-255): (h, w, channels) float32."""
    _, maps = tap_model(model, [(layer, "output")])(_batch(image), training=False)
    return np.asarray(tf.cast(maps, tf.float32))[0]


def feature_grid(maps: np.ndarray, n: int = 16, cols: int = 8, cell: int = 64, gap: int = 2) -> np.ndarray:
    """The first `n` channels of (h, w, C) maps as one uint8 RGB grid, each channel scaled to its own range."""
    n = max(1, min(n, maps.shape[-1]))
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    grid = np.full((rows * (cell + gap) - gap, cols * (cell + gap) - gap, 3), 255, dtype=np.uint8)
    for k in range(n):
        channel = maps[..., k].astype(np.float64)
        lo, hi = channel.min(), channel.max()
        scaled = (channel - lo) / (hi - lo) if hi > lo else np.zeros_like(channel)
        tile = colormap(scaled)
        tile = np.asarray(Image.fromarray(tile).resize((cell, cell), Image.NEAREST))
        r, c = divmod(k, cols)
        grid[r * (cell + gap):r * (cell + gap) + cell, c * (cell + gap):c * (cell + gap) + cell] = tile
    return grid


def grad_cam(model: keras.Model, image: np.ndarray, layer: str | None = None,
             class_index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(heatmap, probabilities) for one raw RGB image; the heatmap has the image's height and width,
    values in [0, 1], for class `class_index` (default: the predicted class) at conv layer `layer`
    (default: the last conv layer)."""
    layer = layer or (conv_layers(model) or [None])[-1]
    if layer is None:
        raise ValueError("The model has no convolution layer: Grad-CAM needs one.")
    dense = _output_layer(model)
    taps = [(layer, "output")] + ([(dense.name, "input")] if dense is not None else [])
    tapped = tap_model(model, taps)
    with tf.GradientTape() as tape:
        out = tapped(_batch(image), training=False)
        probs, conv = tf.cast(out[0], tf.float32), out[1]  # conv may be bfloat16 (mixed precision)
        if dense is not None:
            logits = tf.matmul(tf.cast(out[2], tf.float32), tf.cast(dense.kernel, tf.float32)) \
                + tf.cast(dense.bias, tf.float32)
        else:
            logits = tf.math.log(tf.clip_by_value(probs, 1e-7, 1.0))
        p = np.asarray(probs)[0]
        p = np.array([1 - p[0], p[0]]) if p.shape[0] == 1 else p
        c = int(np.argmax(p)) if class_index is None else int(class_index)
        score = (logits[:, 0] if c == 1 else -logits[:, 0]) if logits.shape[-1] == 1 else logits[:, c]
    grads = tape.gradient(score, conv)
    if grads is None:
        raise ValueError(f"The prediction does not depend on layer {layer!r}.")
    grads, conv = tf.cast(grads, tf.float32), tf.cast(conv, tf.float32)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * conv, axis=-1))[0].numpy()
    height, width = np.asarray(image).shape[:2]
    cam = np.asarray(Image.fromarray(cam.astype(np.float32)).resize((width, height), Image.BILINEAR))
    cam = np.clip(cam, 0, None)
    top = cam.max()
    return (cam / top if top > 0 else np.zeros_like(cam)).astype(np.float32), p


# Anchor colours of a perceptual "inferno"-like map, from 0 (dark) to 1 (bright yellow).
_ANCHORS = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                     [245, 125, 21], [250, 193, 39], [252, 255, 164]], dtype=np.float64)


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB through an inferno-like colour map (no matplotlib needed)."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0, 1) * (len(_ANCHORS) - 1)
    lo = np.floor(v).astype(int).clip(0, len(_ANCHORS) - 2)
    t = (v - lo)[..., None]
    return (_ANCHORS[lo] * (1 - t) + _ANCHORS[lo + 1] * t).round().astype(np.uint8)


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5, size: int | None = None) -> np.ndarray:
    """The heatmap in colour over the image (uint8 RGB), both resized to `size` px if given."""
    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    heat = Image.fromarray(colormap(heatmap))
    if size:
        img, heat = img.resize((size, size), Image.BILINEAR), heat.resize((size, size), Image.BILINEAR)
    weight = alpha * np.clip(np.asarray(Image.fromarray((heatmap * 255).astype(np.uint8)).resize(
        img.size, Image.BILINEAR), dtype=np.float64) / 255 * 1.5 + 0.2, 0, 1)[..., None]
    out = np.asarray(img, dtype=np.float64) * (1 - weight) + np.asarray(heat, dtype=np.float64) * weight
    return out.round().astype(np.uint8)
