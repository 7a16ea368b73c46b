"""Tests of the augmentation modules (core.data.augment_*: table, presets, seeds, transform) and the export.

Images are small (48-64 px, square) so the whole file runs in seconds.
Directions are checked on real asymmetric images: a bright block on black.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading

import numpy as np
import pytest

from core.data.augment_config import AugmentConfig, param_table
from core.data.augment_generator import _affine_convention
from core.data.augment_presets import PRESET_TITLES, PRESETS, get_preset
from core.data.augment_seed import image_seed
from core.data.augment_transform import apply_rescale, augment_batch, augment_image
from core.data.augment_export import to_imagedatagenerator_code, to_json, to_keras_layers_code

pytestmark = pytest.mark.filterwarnings(
    "ignore:Please import `affine_transform`:DeprecationWarning")

PARAM_KEYS = {"rotation_deg", "shift_x_px", "shift_y_px", "shear_deg", "zoom_x", "zoom_y",
              "flip_horizontal", "flip_vertical", "brightness", "channel_shift"}


def block_image(size=48, rows=(4, 14), cols=(6, 16), value=255):
    img = np.zeros((size, size, 3), np.uint8)
    img[rows[0]:rows[1], cols[0]:cols[1]] = value
    return img


def textured(size=64, seed=0):
    return (np.random.RandomState(seed).rand(size, size, 3) * 255).astype(np.uint8)


def centroid(img):
    ys, xs = np.nonzero(np.asarray(img)[..., 0] > 127)
    assert len(ys), "block vanished"
    return ys.mean(), xs.mean()


def extent(img):
    ys, xs = np.nonzero(np.asarray(img)[..., 0] > 127)
    return ys.max() - ys.min() + 1, xs.max() - xs.min() + 1


def first_seed(cfg, img, pred, limit=200):
    for s in range(limit):
        out, p = augment_image(img, cfg, s)
        if pred(p):
            return out, p
    raise AssertionError("no seed satisfied the predicate")


# ---------------------------------------------------------------- determinism
def test_same_seed_gives_identical_pixels_regardless_of_history():
    img = textured()
    cfg = PRESETS["lecture"]
    a, pa = augment_image(img, cfg, 1234)
    np.random.seed(99)
    np.random.rand(17)
    augment_image(img, cfg, 7)                      # other calls in between
    augment_image(img, AugmentConfig(rotation_range=5), 1234)
    b, pb = augment_image(img, cfg, 1234)
    assert a.dtype == np.float32 and a.shape == img.shape
    assert np.array_equal(a, b)
    assert pa == pb


def test_global_numpy_rng_is_left_untouched():
    np.random.seed(5)
    expected = np.random.rand(3)
    np.random.seed(5)
    augment_image(textured(), PRESETS["lecture"], 42)
    assert np.array_equal(np.random.rand(3), expected)


def test_different_seeds_give_different_pixels():
    img = textured()
    cfg = PRESETS["lecture"]
    a, pa = augment_image(img, cfg, 1)
    b, pb = augment_image(img, cfg, 2)
    assert pa != pb
    assert np.abs(a - b).mean() > 5


def test_threads_get_the_same_pixels_as_serial_calls():
    img = textured(48)
    cfg = PRESETS["lecture"]
    serial = [augment_image(img, cfg, s)[0] for s in range(16)]
    results = [None] * 16

    def work(k):
        for s in range(k, 16, 4):
            results[s] = augment_image(img, cfg, s)[0]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(a, b) for a, b in zip(serial, results))


def test_identity_config_returns_image_exactly():
    img = textured()
    for cfg in (AugmentConfig(), AugmentConfig(brightness_range=(1.0, 1.0), fill_mode="wrap")):
        assert cfg.is_identity()
        out, p = augment_image(img, cfg, 3)
        assert out.dtype == np.float32
        assert np.array_equal(out, img.astype(np.float32))
        assert p["rotation_deg"] == 0.0 and p["zoom_x"] == 1.0 and p["flip_horizontal"] is False
    f = img.astype(np.float32) + 0.25
    out, _ = augment_image(f, AugmentConfig(), 0)
    assert np.array_equal(out, f) and out is not f


def test_is_identity_false_for_each_random_parameter():
    for kw in (dict(rotation_range=1), dict(width_shift_range=0.1), dict(height_shift_range=0.1),
               dict(shear_range=0.2), dict(zoom_range=0.1), dict(horizontal_flip=True),
               dict(vertical_flip=True), dict(brightness_range=(0.9, 1.1)),
               dict(channel_shift_range=10)):
        assert not AugmentConfig(**kw).is_identity(), kw


def test_uint8_and_float32_inputs_agree():
    img = textured()
    a, _ = augment_image(img, PRESETS["lecture"], 11)
    b, _ = augment_image(img.astype(np.float32), PRESETS["lecture"], 11)
    assert np.array_equal(a, b)


def test_rescale_is_not_applied_by_augment_image():
    img = np.full((32, 32, 3), 200, np.uint8)
    out, _ = augment_image(img, AugmentConfig(horizontal_flip=True), 0)
    assert out.max() == 200.0
    r = apply_rescale(out, PRESETS["lecture"])
    assert r.dtype == np.float32
    assert np.allclose(r, 200 / 255)


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        augment_image(np.zeros((8, 8)), PRESETS["lecture"], 0)
    with pytest.raises(ValueError):
        augment_image(np.zeros((8, 8, 3)), PRESETS["lecture"], -1)
    with pytest.raises(ValueError):
        augment_image(np.zeros((8, 8, 3)), PRESETS["lecture"], 2**32)


# ------------------------------------------------------------------ directions
def test_horizontal_flip_moves_top_left_block_to_top_right():
    img = block_image()
    cfg = AugmentConfig(horizontal_flip=True)
    out, p = first_seed(cfg, img, lambda p: p["flip_horizontal"])
    assert np.array_equal(out, img[:, ::-1].astype(np.float32))
    r, c = centroid(out)
    assert r < 24 and c > 24                     # top-right
    out, p = first_seed(cfg, img, lambda p: not p["flip_horizontal"])
    assert np.array_equal(out, img.astype(np.float32))


def test_vertical_flip_moves_top_left_block_to_bottom_left():
    img = block_image()
    out, p = first_seed(AugmentConfig(vertical_flip=True), img, lambda p: p["flip_vertical"])
    assert p["flip_horizontal"] is False
    r, c = centroid(out)
    assert r > 24 and c < 24


def test_width_shift_moves_content_horizontally_by_shift_x_px():
    # Keras 3's own ImageDataGenerator would move this block up/down (keras#17398);
    # augment_image must move it sideways, by the reported number of pixels.
    img = block_image(rows=(16, 28), cols=(18, 30))
    r0, c0 = centroid(img)
    cfg = AugmentConfig(width_shift_range=0.25, fill_mode="constant")
    seen_pos = seen_neg = False
    for seed in range(12):
        out, p = augment_image(img, cfg, seed)
        assert p["shift_y_px"] == 0.0
        assert abs(p["shift_x_px"]) <= 0.25 * 48
        r, c = centroid(out)
        assert abs(r - r0) < 0.5
        assert abs((c - c0) - p["shift_x_px"]) <= 1.0, (seed, p["shift_x_px"], c - c0)
        if p["shift_x_px"] > 2:
            seen_pos = True
            assert c > c0 + 1                     # > 0 means moved right
        if p["shift_x_px"] < -2:
            seen_neg = True
            assert c < c0 - 1
    assert seen_pos and seen_neg


def test_height_shift_moves_content_vertically_by_shift_y_px():
    img = block_image(rows=(16, 28), cols=(18, 30))
    r0, c0 = centroid(img)
    cfg = AugmentConfig(height_shift_range=0.25, fill_mode="constant")
    seen_pos = seen_neg = False
    for seed in range(12):
        out, p = augment_image(img, cfg, seed)
        assert p["shift_x_px"] == 0.0
        r, c = centroid(out)
        assert abs(c - c0) < 0.5
        assert abs((r - r0) - p["shift_y_px"]) <= 1.0, (seed, p["shift_y_px"], r - r0)
        seen_pos |= p["shift_y_px"] > 2           # > 0 means moved down
        seen_neg |= p["shift_y_px"] < -2
    assert seen_pos and seen_neg


def test_shift_convention_probe_is_consistent():
    conv = _affine_convention()
    assert {conv["col_key"], conv["row_key"]} == {"tx", "ty"}
    assert conv["col_sign"] in (-1, 1) and conv["row_sign"] in (-1, 1)


def test_positive_rotation_is_counter_clockwise_on_screen():
    # A block above the centre: a counter-clockwise turn moves it to the left.
    img = block_image(rows=(6, 14), cols=(20, 28))
    r0, c0 = centroid(img)
    cy = cx = (48 - 1) / 2
    cfg = AugmentConfig(rotation_range=90, fill_mode="constant")
    for want_positive in (True, False):
        out, p = first_seed(cfg, img, lambda p: (p["rotation_deg"] > 45) if want_positive
                            else (p["rotation_deg"] < -45))
        t = math.radians(p["rotation_deg"])
        # screen coordinates (x right, y down), counter-clockwise by t
        x = cx + (c0 - cx) * math.cos(t) + (r0 - cy) * math.sin(t)
        y = cy - (c0 - cx) * math.sin(t) + (r0 - cy) * math.cos(t)
        r, c = centroid(out)
        assert abs(r - y) < 1.5 and abs(c - x) < 1.5, (p["rotation_deg"], (r, c), (y, x))
        assert (c < cx) == want_positive


def test_zoom_above_one_zooms_out_per_axis():
    img = block_image(rows=(12, 36), cols=(12, 36))     # 24 x 24 centred block
    cfg = AugmentConfig(zoom_range=0.4, fill_mode="constant")
    out, p = first_seed(cfg, img, lambda p: abs(p["zoom_x"] - p["zoom_y"]) > 0.3)
    h, w = extent(out)
    assert abs(w - 24 / p["zoom_x"]) <= 1.5, (w, p)
    assert abs(h - 24 / p["zoom_y"]) <= 1.5, (h, p)
    assert 0.6 <= p["zoom_x"] <= 1.4 and 0.6 <= p["zoom_y"] <= 1.4


def test_lecture_shear_is_0_2_degrees_and_barely_changes_pixels():
    assert PRESETS["lecture"].shear_range == 0.2
    img = textured()
    small = AugmentConfig(shear_range=0.2)
    big = AugmentConfig(shear_range=20)
    d_small, d_big = [], []
    for seed in range(5):
        o1, p1 = augment_image(img, small, seed)
        o2, p2 = augment_image(img, big, seed)
        assert abs(p1["shear_deg"]) <= 0.2 and abs(p2["shear_deg"]) <= 20
        d_small.append(np.abs(o1 - img).mean())
        d_big.append(np.abs(o2 - img).mean())
    # A 0.2-degree shear moves a corner pixel of a 64-px image by about 0.1 px:
    # the lecture's shear is practically a no-op, a 20-degree one is not.
    assert max(d_small) < 0.1 * np.mean(d_big)
    assert min(d_big) > 20


def test_brightness_and_channel_shift_are_drawn_and_applied():
    img = np.full((32, 32, 3), 100, np.uint8)
    out, p = augment_image(img, AugmentConfig(brightness_range=(0.5, 0.6)), 0)
    assert 0.5 <= p["brightness"] <= 0.6
    assert out.mean() == pytest.approx(100 * p["brightness"], abs=1.0)
    img2 = textured(32)
    out, p = augment_image(img2, AugmentConfig(channel_shift_range=40), 0)
    assert -40 <= p["channel_shift"] <= 40 and p["brightness"] is None
    assert not np.array_equal(out, img2.astype(np.float32))


def test_params_dict_keys_and_types():
    cfg = AugmentConfig(rotation_range=10, width_shift_range=0.1, height_shift_range=0.1,
                        shear_range=5, zoom_range=0.1, horizontal_flip=True, vertical_flip=True,
                        brightness_range=(0.8, 1.2), channel_shift_range=10)
    for p in (augment_image(textured(32), cfg, 0)[1], augment_image(textured(32), AugmentConfig(), 0)[1]):
        assert set(p) == PARAM_KEYS
        for k in ("rotation_deg", "shift_x_px", "shift_y_px", "shear_deg", "zoom_x", "zoom_y"):
            assert type(p[k]) is float, k
        assert type(p["flip_horizontal"]) is bool and type(p["flip_vertical"]) is bool
        assert p["brightness"] is None or type(p["brightness"]) is float
        assert p["channel_shift"] is None or type(p["channel_shift"]) is float
        json.dumps(p)


def test_augment_batch_matches_augment_image():
    imgs = np.stack([textured(32, s) for s in range(3)])
    seeds = [image_seed(0, 1, i) for i in range(3)]
    batch = augment_batch(imgs, PRESETS["lecture"], seeds)
    assert batch.shape == imgs.shape and batch.dtype == np.float32
    for i in range(3):
        assert np.array_equal(batch[i], augment_image(imgs[i], PRESETS["lecture"], seeds[i])[0])
    with pytest.raises(ValueError):
        augment_batch(imgs, PRESETS["lecture"], seeds[:2])


def test_image_seed():
    s = image_seed(0, 0, 0)
    assert s == image_seed(0, 0, 0)
    seeds = {image_seed(7, e, i) for e in range(5) for i in range(200)}
    assert len(seeds) == 1000
    assert all(0 <= x < 2**32 - 1 for x in seeds)
    assert image_seed(1, 0, 0) != image_seed(0, 1, 0) != image_seed(0, 0, 1)
    with pytest.raises(ValueError):
        image_seed(-1, 0, 0)


# -------------------------------------------------------------- configuration
@pytest.mark.parametrize("kwargs, words", [
    (dict(rotation_range=-5), ["rotation_range", "0", "180"]),
    (dict(width_shift_range=0.8), ["width_shift_range", "0.5"]),
    (dict(height_shift_range=-0.1), ["height_shift_range"]),
    (dict(shear_range=90), ["shear_range", "45"]),
    (dict(zoom_range=1.0), ["zoom_range"]),
    (dict(fill_mode="mirror"), ["fill_mode", "nearest", "reflect", "wrap", "constant"]),
    (dict(cval=300), ["cval", "255"]),
    (dict(brightness_range=(1.2, 0.8)), ["brightness_range", "low <= high"]),
    (dict(brightness_range=(0.0, 1.0)), ["brightness_range"]),
    (dict(brightness_range=(-1.0, 1.0)), ["brightness_range"]),
    (dict(channel_shift_range=-1), ["channel_shift_range"]),
    (dict(rescale=0.0), ["rescale"]),
    (dict(horizontal_flip="yes"), ["horizontal_flip"]),
    (dict(rotation_range=float("nan")), ["rotation_range"]),
])
def test_validate_names_parameter_and_range(kwargs, words):
    with pytest.raises(ValueError) as e:
        AugmentConfig(**kwargs).validate()
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_from_dict_rejects_unknown_keys_and_round_trips():
    with pytest.raises(ValueError, match="rotaton_range"):
        AugmentConfig.from_dict({"rotaton_range": 40})
    with pytest.raises(ValueError, match="samplewise_center"):
        AugmentConfig.from_dict({"rotation_range": 40, "samplewise_center": True})
    with pytest.raises(ValueError, match="rotation_range"):
        AugmentConfig.from_dict({"rotation_range": 400})
    with pytest.raises(ValueError, match="horizontal_flip"):
        AugmentConfig.from_dict({"horizontal_flip": "true"})
    full = AugmentConfig(rotation_range=12.5, width_shift_range=0.1, height_shift_range=0.15,
                         shear_range=3, zoom_range=0.25, horizontal_flip=True, vertical_flip=True,
                         fill_mode="constant", cval=127, brightness_range=(0.7, 1.3),
                         channel_shift_range=30, rescale=1 / 127.5)
    for cfg in [*PRESETS.values(), full]:
        d = json.loads(json.dumps(cfg.to_dict()))
        back = AugmentConfig.from_dict(d)
        assert back == cfg
        assert back.to_dict() == cfg.to_dict()
    d = full.to_dict()
    assert d["brightness_range"] == [0.7, 1.3]
    assert AugmentConfig.from_dict(d).brightness_range == (0.7, 1.3)
    assert AugmentConfig.from_dict({"rotation_range": 40}) == AugmentConfig(rotation_range=40)
    assert json.loads(to_json(full)) == full.to_dict()


def test_presets():
    assert set(PRESETS) == {"none", "lecture", "second_edition"} == set(PRESET_TITLES)
    for name, cfg in PRESETS.items():
        cfg.validate()
        assert PRESET_TITLES[name]
    assert PRESETS["none"] == AugmentConfig() and PRESETS["none"].is_identity()
    lec = PRESETS["lecture"]
    assert (lec.rotation_range, lec.width_shift_range, lec.height_shift_range, lec.shear_range,
            lec.zoom_range, lec.horizontal_flip, lec.vertical_flip, lec.fill_mode) == (
        40, 0.2, 0.2, 0.2, 0.2, True, False, "nearest")
    assert lec.rescale == pytest.approx(1 / 255)
    se = PRESETS["second_edition"]
    assert se.horizontal_flip and se.rotation_range == 36 and se.zoom_range == 0.2
    assert se.shear_range == 0 and se.width_shift_range == 0
    assert lec.summary() == "rot 40°, shift 0.2/0.2, shear 0.2°, zoom 0.2, h-flip"
    assert PRESETS["none"].summary() == "none"
    copy = get_preset("lecture")
    copy.rotation_range = 1
    assert PRESETS["lecture"].rotation_range == 40


def test_param_table_covers_every_field_once_with_units():
    rows = param_table()
    names = [r["name"] for r in rows]
    fields = [f.name for f in dataclasses.fields(AugmentConfig)]
    assert names == fields and len(set(names)) == len(names)
    defaults = AugmentConfig().to_dict()
    for r in rows:
        assert set(r) >= {"name", "default", "label", "unit", "min", "max", "step", "help", "type"}
        assert isinstance(r["unit"], str) and r["label"] and r["help"]
        assert r["default"] == defaults[r["name"]]
        if r["type"] == "float":
            assert r["min"] < r["max"]
            assert r["min"] <= (r["default"] or 0) <= r["max"]
        if r["type"] == "bool":
            assert r["min"] is None and r["max"] is None and r["step"] is None
    by = {r["name"]: r for r in rows}
    assert by["rotation_range"]["unit"] == "degrees" and by["shear_range"]["unit"] == "degrees"
    assert by["width_shift_range"]["unit"] == "fraction of width"
    assert by["height_shift_range"]["unit"] == "fraction of height"
    assert set(by["fill_mode"]["options"]) == {"constant", "nearest", "reflect", "wrap"}
    # the lecture's 0.2-degree shear must be reachable on the slider
    assert by["shear_range"]["step"] <= 0.2
    json.dumps(rows)


# --------------------------------------------------------------------- export
FULL = AugmentConfig(rotation_range=20, width_shift_range=0.1, height_shift_range=0.15,
                     shear_range=10, zoom_range=0.2, horizontal_flip=True, vertical_flip=True,
                     fill_mode="constant", cval=128, brightness_range=(0.8, 1.2),
                     channel_shift_range=20)


@pytest.mark.parametrize("cfg", [PRESETS["none"], PRESETS["lecture"], PRESETS["second_edition"], FULL])
def test_imagedatagenerator_code_execs_to_matching_generator(cfg):
    code = to_imagedatagenerator_code(cfg)
    compile(code, "<idg>", "exec")
    assert "degrees" in code.lower()
    ns: dict = {}
    exec(code, ns)
    g = ns["train_datagen"]
    assert g.rotation_range == cfg.rotation_range
    assert g.width_shift_range == cfg.width_shift_range
    assert g.height_shift_range == cfg.height_shift_range
    assert g.shear_range == cfg.shear_range
    assert g.zoom_range == pytest.approx([1 - cfg.zoom_range, 1 + cfg.zoom_range])
    assert g.horizontal_flip == cfg.horizontal_flip and g.vertical_flip == cfg.vertical_flip
    assert g.fill_mode == cfg.fill_mode and g.cval == cfg.cval
    assert (None if g.brightness_range is None else tuple(g.brightness_range)) == cfg.brightness_range
    assert g.channel_shift_range == cfg.channel_shift_range
    assert g.rescale == pytest.approx(cfg.rescale)


def test_imagedatagenerator_code_has_only_non_default_arguments():
    code = to_imagedatagenerator_code(PRESETS["second_edition"])
    call = code[code.index("ImageDataGenerator(\n"):]
    args = [line.split("=")[0].strip() for line in call.splitlines()[1:-1]]
    assert args == ["rotation_range", "zoom_range", "horizontal_flip", "fill_mode", "rescale"]
    assert "rotation_range=36," in code and "rescale=1.0 / 255," in code


@pytest.mark.parametrize("cfg", [PRESETS["none"], PRESETS["lecture"], PRESETS["second_edition"], FULL])
def test_keras_layers_code_runs(cfg):
    import keras

    code, notes = to_keras_layers_code(cfg)
    compile(code, "<layers>", "exec")
    ns: dict = {}
    exec(code, ns)
    model = ns["data_augmentation"]
    assert isinstance(model, keras.Sequential)
    x = np.stack([textured(32, s) for s in range(2)]).astype("float32")
    y = np.asarray(model(x, training=True))
    assert y.shape == x.shape and np.isfinite(y).all()
    assert y.min() >= -1e-6 and y.max() <= 1 + 1e-6          # rescaled to 0-1
    y_inf = np.asarray(model(x, training=False))
    assert np.allclose(y_inf, x * cfg.rescale, atol=1e-6)    # layers only active in training
    assert notes and all(isinstance(n, str) and n for n in notes)
    assert any("training" in n for n in notes)


def test_keras_layers_match_config():

    code, notes = to_keras_layers_code(FULL)
    ns: dict = {}
    exec(code, ns)
    layers = ns["data_augmentation"].layers
    kinds = [type(layer).__name__ for layer in layers]
    assert kinds == ["RandomRotation", "RandomTranslation", "RandomShear", "RandomZoom",
                     "RandomBrightness", "RandomFlip", "RandomFlip", "RandomBrightness", "Rescaling"]
    rot, tr, sh, zoom, _, fh, fv, br, resc = layers
    assert rot.factor[1] == pytest.approx(20 / 360) and rot.fill_mode == "constant"
    assert rot.fill_value == 128
    assert (tr.height_lower, tr.height_upper) == pytest.approx((-0.15, 0.15))
    assert (tr.width_lower, tr.width_upper) == pytest.approx((-0.1, 0.1))
    assert sh.x_factor[1] == pytest.approx(math.tan(math.radians(10)), abs=1e-6)
    assert (zoom.height_lower, zoom.width_upper) == pytest.approx((-0.2, 0.2))
    assert (fh.mode, fv.mode) == ("horizontal", "vertical")
    assert br.factor == pytest.approx((-0.2, 0.2))
    assert resc.scale == pytest.approx(1 / 255)
    text = " ".join(notes)
    for word in ("horizontal_and_vertical", "reflect", "2*pi", "RandomShear", "zooms OUT",
                 "channel_shift_range", "ADDS"):
        assert word in text, word
    assert 'RandomFlip("horizontal")' in to_keras_layers_code(PRESETS["lecture"])[0]


def test_layer_zoom_sign_matches_imagedatagenerator():
    # The note claims RandomZoom(f > 0) zooms out, like ImageDataGenerator's zoom > 1.
    import keras

    img = block_image(rows=(12, 36), cols=(12, 36)).astype("float32")[None]
    layer = keras.layers.RandomZoom(height_factor=(0.5, 0.5), width_factor=(0.5, 0.5),
                                    fill_mode="constant", interpolation="nearest")
    h, w = extent(np.asarray(layer(img, training=True))[0])
    assert h < 24 and w < 24
    out, p = first_seed(AugmentConfig(zoom_range=0.4, fill_mode="constant"), img[0],
                        lambda p: p["zoom_x"] > 1.2 and p["zoom_y"] > 1.2)
    h, w = extent(out)
    assert h < 24 and w < 24
