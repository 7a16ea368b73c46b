"""Export an augmentation configuration as code or JSON.

* :func:`to_imagedatagenerator_code` - the lecture's way: a
  ``tensorflow.keras.preprocessing.image.ImageDataGenerator(...)`` call
  (variable ``train_datagen``) with the non-default arguments plus rescale.
* :func:`to_keras_layers_code` - the Keras 3 way: a ``keras.Sequential`` of
  preprocessing layers (variable ``data_augmentation``), with sentences saying
  where the layers do not do exactly what ImageDataGenerator does.  Checked
  against the layers' signatures and code in Keras 3.15.
* :func:`to_json` - the configuration as pretty JSON (``AugmentConfig.to_dict``).

All generated code is valid Python that runs as is.
"""

from __future__ import annotations

import json
import math

from core.data.augment_config import AugmentConfig

__all__ = ["to_imagedatagenerator_code", "to_keras_layers_code", "to_json"]


def _num(v: float) -> str:
    """Python literal of a float; whole numbers without '.0' (40, not 40.0)."""
    v = float(v)
    if v.is_integer():
        return str(int(v))
    return repr(v)


def _rescale_literal(r: float) -> str:
    if math.isclose(r, 1.0 / 255, rel_tol=1e-12):
        return "1.0 / 255"
    if math.isclose(r, 1.0 / 127.5, rel_tol=1e-12):
        return "1.0 / 127.5"
    return repr(float(r))


def to_imagedatagenerator_code(cfg: AugmentConfig) -> str:
    """Python source creating ``train_datagen = ImageDataGenerator(...)``."""
    cfg.validate()
    d = AugmentConfig()
    args: list[str] = []
    if cfg.rotation_range != d.rotation_range:
        args.append(f"rotation_range={_num(cfg.rotation_range)},  # degrees")
    if cfg.width_shift_range != d.width_shift_range:
        args.append(f"width_shift_range={float(cfg.width_shift_range)!r},  # fraction of width")
    if cfg.height_shift_range != d.height_shift_range:
        args.append(f"height_shift_range={float(cfg.height_shift_range)!r},  # fraction of height")
    if cfg.shear_range != d.shear_range:
        args.append(f"shear_range={_num(cfg.shear_range)},  # DEGREES")
    if cfg.zoom_range != d.zoom_range:
        args.append(f"zoom_range={float(cfg.zoom_range)!r},  # zoom drawn from [1-z, 1+z]; > 1 zooms out")
    if cfg.horizontal_flip != d.horizontal_flip:
        args.append(f"horizontal_flip={bool(cfg.horizontal_flip)},")
    if cfg.vertical_flip != d.vertical_flip:
        args.append(f"vertical_flip={bool(cfg.vertical_flip)},")
    if cfg.fill_mode != d.fill_mode:
        args.append(f"fill_mode={cfg.fill_mode!r},")
    if cfg.cval != d.cval:
        args.append(f"cval={_num(cfg.cval)},")
    if cfg.brightness_range != d.brightness_range:
        lo, hi = cfg.brightness_range
        args.append(f"brightness_range=({float(lo)!r}, {float(hi)!r}),")
    if cfg.channel_shift_range != d.channel_shift_range:
        args.append(f"channel_shift_range={_num(cfg.channel_shift_range)},  # pixel values (0-255)")
    args.append(f"rescale={_rescale_literal(cfg.rescale)},")

    lines = [
        "from tensorflow.keras.preprocessing.image import ImageDataGenerator",
        "",
        f"# Augmentation: {cfg.summary()}",
        "# Note: shear_range is an angle in DEGREES since Keras 2.1.3 (keras-team/keras#8868), so",
        "# shear_range=0.2 is a 0.2-degree shear that barely changes the pixels (the book's",
        "# Keras 2.0 read it as 0.2 radians, about 11.5 degrees).",
    ]
    if cfg.width_shift_range or cfg.height_shift_range:
        lines += [
            "# Caution: Keras 3's legacy ImageDataGenerator applies width_shift_range vertically and",
            "# height_shift_range horizontally (keras-team/keras#17398). Fine-Tuning Lab shifts the",
            "# documented way; swap the two values to get the same shifts from this code on Keras 3.",
        ]
    lines.append("train_datagen = ImageDataGenerator(")
    lines += [f"    {a}" for a in args]
    lines.append(")")
    return "\n".join(lines) + "\n"


def to_keras_layers_code(cfg: AugmentConfig) -> tuple[str, list[str]]:
    """Keras 3 preprocessing layers equivalent to ``cfg`` and the differences.

    Returns (source defining ``data_augmentation = keras.Sequential([...])``,
    list of sentences on where the layers differ from ImageDataGenerator).
    Layer order follows ImageDataGenerator: geometry, channel shift, flips,
    brightness, rescale.
    """
    cfg.validate()
    layers: list[str] = []
    notes: list[str] = [
        "The preprocessing layers are only active in training (model.fit, or calling them with "
        "training=True); at inference they pass images through unchanged. ImageDataGenerator "
        "augments whatever it generates, so it must not be used for validation or test data.",
    ]
    fill = f'fill_mode="{cfg.fill_mode}"'
    if cfg.fill_mode == "constant":
        fill += f", fill_value={_num(cfg.cval)}"
    geometric = 0

    if cfg.rotation_range:
        layers.append(f"keras.layers.RandomRotation(factor={_num(cfg.rotation_range)} / 360, {fill}),")
        geometric += 1
        notes.append(
            f"RandomRotation's factor is a fraction of a full turn (2*pi), not degrees: "
            f"rotation_range={_num(cfg.rotation_range)} becomes factor={_num(cfg.rotation_range)} / 360 "
            f"= {cfg.rotation_range / 360:.4f}; both rotate by a random angle in "
            f"[-{_num(cfg.rotation_range)}, +{_num(cfg.rotation_range)}] degrees.")
    if cfg.width_shift_range or cfg.height_shift_range:
        layers.append(
            f"keras.layers.RandomTranslation(height_factor={float(cfg.height_shift_range)!r}, "
            f"width_factor={float(cfg.width_shift_range)!r}, {fill}),")
        geometric += 1
        notes.append(
            "RandomTranslation takes the same fractions as width_shift_range/height_shift_range, "
            "but height comes first: RandomTranslation(height_factor, width_factor). Keras 3's own "
            "legacy ImageDataGenerator applies width_shift_range vertically (keras-team/keras#17398); "
            "the layer, like Fine-Tuning Lab, shifts horizontally.")
    if cfg.shear_range:
        x_factor = math.tan(math.radians(cfg.shear_range))
        layers.append(
            f"keras.layers.RandomShear(x_factor={round(x_factor, 6)!r}, {fill}),"
            f"  # tan({_num(cfg.shear_range)} degrees)")
        geometric += 1
        notes.append(
            "keras.layers.RandomShear exists in Keras 3.15 but means something else: its x_factor is a "
            "horizontal displacement per pixel of height (the tangent of the shear angle, at most 1, "
            "i.e. 45 degrees) instead of an angle in degrees, and it shears about the TOP edge, so the "
            "content also slides sideways by up to x_factor x height; ImageDataGenerator shears by an "
            "angle about the image centre (and squeezes the height by cos(angle)). The code uses "
            f"x_factor = tan({_num(cfg.shear_range)} degrees) = {x_factor:.6f}"
            + (" - practically no shear, as in the lecture." if cfg.shear_range < 1 else "."))
    if cfg.zoom_range:
        z = float(cfg.zoom_range)
        layers.append(f"keras.layers.RandomZoom(height_factor={z!r}, width_factor={z!r}, {fill}),")
        geometric += 1
        notes.append(
            f"RandomZoom(f) scales by 1 + f, so f > 0 zooms OUT - the same direction as "
            f"ImageDataGenerator, where zoom_range={z!r} draws a zoom in [{1 - z:g}, {1 + z:g}] and > 1 "
            "zooms out (the sign conventions agree; ImageDataGenerator just adds the 1). Both factors "
            "are written so height and width are drawn independently as in ImageDataGenerator; "
            "with width_factor=None RandomZoom would keep the aspect ratio.")
    if cfg.channel_shift_range:
        c = float(cfg.channel_shift_range)
        layers.append(
            f"keras.layers.RandomBrightness(factor={round(c / 255, 6)!r}, value_range=(0, 255)),"
            f"  # approximates channel_shift_range={_num(c)}")
        notes.append(
            "channel_shift_range has no layer equivalent. ImageDataGenerator adds ONE random value in "
            f"[-{_num(c)}, +{_num(c)}] to all channels and clips to the image's own min/max, which is "
            f"an additive brightness change; RandomBrightness(factor={c / 255:.4f}) (a delta of "
            "factor x 255) is the closest layer, but it clips to 0-255 instead.")
    if cfg.horizontal_flip:
        layers.append('keras.layers.RandomFlip("horizontal"),')
    if cfg.vertical_flip:
        layers.append('keras.layers.RandomFlip("vertical"),')
    if cfg.horizontal_flip or cfg.vertical_flip:
        notes.append(
            'RandomFlip\'s default mode is "horizontal_and_vertical", so the mode is written explicitly.')
    if cfg.horizontal_flip and cfg.vertical_flip:
        notes.append(
            'RandomFlip("horizontal_and_vertical") draws ONE coin for both axes (it flips both or '
            "neither, i.e. a 180-degree turn); ImageDataGenerator flips each axis independently, so "
            "two separate RandomFlip layers are written.")
    if cfg.brightness_range is not None:
        lo, hi = (float(x) for x in cfg.brightness_range)
        f_lo, f_hi = round(lo - 1.0, 6), round(hi - 1.0, 6)
        layers.append(
            f"keras.layers.RandomBrightness(factor=({f_lo!r}, {f_hi!r}), value_range=(0, 255)),"
            f"  # approximates brightness_range=({lo!r}, {hi!r})")
        notes.append(
            "Brightness differs: ImageDataGenerator's brightness_range multiplies every pixel by a "
            f"factor in [{lo:g}, {hi:g}] (PIL ImageEnhance.Brightness, rounding to whole values); "
            "RandomBrightness ADDS factor x 255 to every pixel and clips to 0-255. "
            f"factor=({f_lo:g}, {f_hi:g}) matches only for white pixels; darker pixels change more "
            "with the layer.")
    if geometric:
        notes.append(
            'The geometric layers\' default fill_mode is "reflect" (RandomTranslation\'s docstring says '
            '"constant", but its signature default is "reflect"), ImageDataGenerator\'s is "nearest"; '
            f'fill_mode="{cfg.fill_mode}" is therefore written on every geometric layer'
            + (f" with fill_value={_num(cfg.cval)} (cval)." if cfg.fill_mode == "constant" else "."))
    if geometric > 1:
        notes.append(
            "ImageDataGenerator combines rotation, shift, shear and zoom into one affine resampling per "
            "image; each layer resamples again (bilinear), so the layers blur the image slightly more.")
    layers.append(f"keras.layers.Rescaling({_rescale_literal(cfg.rescale)}),")
    notes.append(
        "Rescaling is ImageDataGenerator's rescale and stays last, after the brightness layers, which "
        "expect 0-255 values. For a pretrained backbone use its own preprocess_input instead.")
    if cfg.is_identity():
        notes.append("No random augmentation is configured; only the rescaling remains.")

    lines = [
        "import keras",
        "",
        f"# Augmentation: {cfg.summary()}",
        "data_augmentation = keras.Sequential(",
        "    [",
    ]
    lines += [f"        {layer}" for layer in layers]
    lines += [
        "    ],",
        '    name="data_augmentation",',
        ")",
    ]
    return "\n".join(lines) + "\n", notes


def to_json(cfg: AugmentConfig) -> str:
    """Pretty JSON of ``cfg.to_dict()``."""
    return json.dumps(cfg.to_dict(), indent=2)
