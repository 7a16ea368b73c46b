"""Hostile inputs: odd image folders, malicious zip uploads, wrong weights files, out-of-range parameters,
and paths outside the folders the dashboard may read. Every case is built here, from nothing."""
from __future__ import annotations

import ast
import io
import os
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import settings
from core.data import datasets
from core.runs import store
from core.config import RunSpec
from core.data.folders import DataError, check_image, load_image, scan
from tests.conftest import ROOT, cli, make_folder

# -- image folders ------------------------------------------------------------------------------------

def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def bomb_png(path: Path, side: int) -> None:
    """A real 1-bit PNG of side x side blank pixels, streamed: a few hundred KB that decode to side**2 pixels."""
    comp, row = zlib.compressobj(9), b"\0" * (1 + (side + 7) // 8)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


def jpeg_bytes(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    arr = np.random.default_rng(seed).integers(0, 255, (32, 40, 3), dtype=np.uint8)
    Image.fromarray(arr).save(buf, "JPEG")
    return buf.getvalue()


def hostile_folder(root: Path) -> tuple[dict[str, str], set[str]]:
    """Good cats/dogs plus every awkward kind of file; returns ({file name: expected skip reason}, used names)."""
    make_folder(root, {"": 8})
    cats, dogs = root / "cats", root / "dogs"
    bad = {"truncated.jpg": "unreadable", "corrupt.jpg": "unreadable|not an image", "zero.png": "0 bytes",
           "text.jpg": "not an image", "bomb.png": "decompression bomb", "big.png": "decompression bomb",
           "fifo.jpg": "not a regular file", "archive.zip": "extension (.zip)", "notes.txt": "extension (.txt)",
           "loop": "link loop", "up": "link loop", "birds": "no usable images", "stray.txt": "stray file",
           "stray.zip": "stray file"}
    good = jpeg_bytes()
    (cats / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (cats / "corrupt.jpg").write_bytes(good[:300] + bytes(np.random.default_rng(1).integers(0, 255, 2000,
                                                                                           dtype=np.uint8)))
    (cats / "zero.png").write_bytes(b"")
    (cats / "text.jpg").write_text("this is not a JPEG")
    bomb_png(cats / "bomb.png", 30000)   # 900 Mpx: above twice the limit, Pillow's own error
    bomb_png(dogs / "big.png", 7000)     # 49 Mpx: above the limit, Pillow's warning turned into a refusal
    os.mkfifo(cats / "fifo.jpg")         # would block a naive open()
    with zipfile.ZipFile(cats / "archive.zip", "w") as z:
        z.writestr("inner/cat.png", (cats / "cats.0.png").read_bytes())
    (dogs / "notes.txt").write_text("notes")
    (cats / "loop").symlink_to(cats)                 # a loop onto the class folder itself
    (cats / "up").symlink_to(root)                   # a loop onto the data root (would relabel dogs as cats)
    (root / "birds").mkdir()                         # an empty third class
    (root / "stray.txt").write_text("beside the class folders")
    (root / "stray.zip").write_bytes(b"PK")
    used = set()
    modes = {"alpha.png": Image.new("RGBA", (20, 16), (255, 0, 0, 0)),
             "gray.png": Image.new("L", (20, 16), 100),
             "la.png": Image.new("LA", (20, 16), (100, 255)),
             "cmyk.jpg": Image.new("CMYK", (20, 16), (0, 255, 0, 0)),
             "one.png": Image.new("RGB", (1, 1), (7, 8, 9)),
             "bilevel.bmp": Image.new("1", (20, 16), 1),
             "UPPER.JPG": Image.new("RGB", (20, 16), (10, 200, 10)),
             "upper.PNG": Image.new("RGB", (20, 16), (10, 10, 200)),
             "chat été 1.png": Image.new("RGB", (20, 16), (1, 2, 3))}
    for name, img in modes.items():
        img.save(cats / name)
        used.add(name)
    Image.fromarray(np.full((16, 20), 40000, dtype=np.uint16)).save(cats / "deep16.png")
    Image.fromarray(np.full((16, 20), 0.5, dtype=np.float32)).save(dogs / "float.tif")
    palette = Image.new("P", (20, 16), 0)
    palette.putpalette([255, 0, 0] * 256)
    palette.save(cats / "palette.gif", transparency=0)
    nested = dogs / "sous dossier ü" / "deeper"
    nested.mkdir(parents=True)
    Image.new("RGB", (20, 16), (50, 60, 70)).save(nested / "dog in nest.webp")
    used |= {"deep16.png", "float.tif", "palette.gif", "dog in nest.webp"}
    undecodable = os.fsencode(cats) + b"/caf\xe9.png"   # a Latin-1 file name: not valid UTF-8
    with open(undecodable, "wb") as f:
        Image.new("RGB", (20, 16), (9, 9, 9)).save(f, "PNG")
    used.add(os.fsdecode(b"caf\xe9.png"))
    return bad, used


def test_hostile_folder_uses_or_skips_every_file_with_its_reason(tmp_path):
    root = tmp_path / "hostile data"
    bad, used = hostile_folder(root)
    ds = scan(root)
    assert ds.classes == ["cats", "dogs"]  # the empty "birds" folder is not a class
    used_names = {Path(p).name for items in ds.splits.values() for p, _ in items}
    assert used <= used_names, used - used_names
    reasons = {Path(s["path"]).name: s["reason"] for s in ds.skipped}
    for name, words in bad.items():
        assert name in reasons and any(w in reasons[name] for w in words.split("|")), (name, reasons.get(name))
    assert not used_names & set(bad)
    labels = {Path(p).name: y for items in ds.splits.values() for p, y in items}
    assert all(labels[f"dogs.{i}.png"] == 1 for i in range(8))  # the link to the root did not relabel dogs
    assert sum(1 for n in labels if n.startswith("cats.")) == 8  # the loops added no duplicates
    for skipped in ds.skipped:
        skipped["path"].encode("utf-8")  # reports are printable even for undecodable names


def test_load_image_decodes_every_kind_scan_accepts(tmp_path):
    root = tmp_path / "kinds"
    _, used = hostile_folder(root)
    ds = scan(root)
    paths = {Path(p).name: p for items in ds.splits.values() for p, _ in items}
    for name in used:
        arr = load_image(paths[name], 12)
        assert arr.shape == (12, 12, 3) and arr.dtype == np.uint8, name
    px = {name: load_image(paths[name], 4)[1, 1].tolist() for name in used}
    assert px["alpha.png"] == [255, 255, 255] and px["palette.gif"] == [255, 255, 255]  # transparency on white
    assert px["deep16.png"] == [156] * 3            # 40000 / 257, not stretched to white
    assert px["float.tif"] == [128] * 3             # 0.5 of full scale, not truncated to black
    assert px["cmyk.jpg"][0] > 200 and px["cmyk.jpg"][1] < 60
    assert px["one.png"] == [7, 8, 9] and px["gray.png"] == [100] * 3


def test_check_image_and_load_image_refuse_an_oversized_image_without_decoding_it(tmp_path):
    path = tmp_path / "huge.png"
    bomb_png(path, 30000)
    assert path.stat().st_size < 300_000
    size, reason = check_image(path)
    assert size is None and "bomb" in reason
    with pytest.raises(Exception, match="pixels"):
        load_image(path, 8)


def test_training_on_a_hostile_folder_finishes_and_counts_the_skipped_files(home, tmp_path):
    from core.runs.worker import run_worker
    root = tmp_path / "hostile"
    hostile_folder(root)
    expected = len(scan(root).skipped)
    spec = RunSpec.from_recipe("scratch", data=str(root), image_size=48, epochs=1, batch_size=8)
    run_id = store.create_run(spec.to_dict(), "hostile", "scratch", None, 1)
    assert run_worker(run_id) == "finished", store.get_run(run_id)["error"]
    run = store.get_run(run_id)
    assert run["info"]["skipped"] == expected > 10 and run["info"]["classes"] == ["cats", "dogs"]
    assert any("files skipped while scanning" in line["message"] for line in store.log_lines(run_id))


def test_undecodable_file_names_are_reported_and_logged(home, tmp_path):
    root = make_folder(tmp_path / "latin1", {"": 3})
    with open(os.fsencode(root / "dogs") + b"/notes-\xe9t\xe9.txt", "wb") as f:
        f.write(b"not an image")
    (skipped,) = scan(root).skipped
    assert skipped["path"].endswith("notes-\ufffdt\ufffd.txt")  # printable, not a lone surrogate
    run_id = store.create_run({}, "names", "scratch", None, 1)
    store.log(run_id, "skipped " + os.fsdecode(b"caf\xe9.png"))  # a raw undecodable name cannot break the log
    store.set_status(run_id, "failed", os.fsdecode(b"bad \xff name"))
    assert store.log_lines(run_id)[-1]["message"] == "skipped caf\ufffd.png"
    assert store.get_run(run_id)["error"] == "bad \ufffd name"


@pytest.mark.parametrize("setup, words", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_text("x"), "is a file, not a folder"),
    (lambda p: p.mkdir(), "No usable images"),
    (lambda p: make_folder(p, {"": 3}, classes=("cats",)), "Only one class with images (cats)"),
    (lambda p: (make_folder(p, {"": 3}, classes=("cats",)), (p / "dogs").mkdir()), "Only one class with images"),
    (lambda p: (make_folder(p, {"": 1}), (p / "cats" / "x.txt").write_text("x")), "No class with enough images"),
    (lambda p: (p.mkdir(), Image.new("RGB", (8, 8)).save(p / "loose.png")), "one subfolder per class"),
])
def test_folders_that_cannot_work_are_refused_with_one_sentence(tmp_path, setup, words):
    path = tmp_path / "data"
    setup(path)
    with pytest.raises(DataError) as info:
        scan(path)
    message = str(info.value)
    assert words in message and str(path) in message and message.count(". ") == 0, message


def test_an_unsplit_class_with_one_image_is_left_out(tmp_path):
    root = make_folder(tmp_path / "d", {"": 5}, classes=("cats", "dogs", "owls"))
    for extra in list((root / "owls").iterdir())[1:]:
        extra.unlink()
    ds = scan(root)
    assert ds.classes == ["cats", "dogs"]
    assert any(s["path"].endswith("owls") and "only 1 usable image" in s["reason"] for s in ds.skipped)
    assert {y for items in ds.splits.values() for _, y in items} == {0, 1}


def test_presplit_stray_files_and_an_empty_train_class_are_reported(tmp_path):
    root = make_folder(tmp_path / "d", {"train": 3, "validation": 2}, classes=("cats", "dogs"))
    (root / "train" / "birds").mkdir()
    (root / "train" / "readme.md").write_text("x")
    ds = scan(root)
    assert ds.classes == ["cats", "dogs"] and ds.counts()["train"] == {"cats": 3, "dogs": 3}
    reasons = {Path(s["path"]).name: s["reason"] for s in ds.skipped}
    assert "no usable images in train/" in reasons["birds"] and "stray" in reasons["readme.md"]


# -- zip uploads ----------------------------------------------------------------------------------------

def _zip(members: dict[str, bytes], **symlinks: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        for name, target in symlinks.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, target)
    return buf.getvalue()


def _class_members(tmp_path: Path, prefix: str = "") -> dict[str, bytes]:
    src = make_folder(tmp_path / "zip-src", {"": 4})
    return {prefix + str(p.relative_to(src)): p.read_bytes() for p in sorted(src.rglob("*.png"))}


@pytest.fixture
def sandbox(home, tmp_path, monkeypatch):
    """A private temp dir for the tempfile module, and a snapshot function of everything outside uploads/."""
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    uploads = home / "datasets" / "uploads"
    uploads.mkdir(parents=True)

    def snapshot():
        watched = [tmp_path, systmp, home, uploads]
        return {str(w): sorted(os.listdir(w)) if w.exists() else None for w in watched}
    return snapshot


def _refused(snapshot, filename, data, words):
    before = snapshot()
    with pytest.raises(DataError) as info:
        datasets.extract_upload(filename, data)
    message = str(info.value)
    assert filename in message and all(w in message for w in words), message
    after = snapshot()
    assert after == before, (before, after)  # nothing written outside (and nothing left inside) uploads/
    return message


def test_a_good_upload_unpacks_and_nested_archives_are_skipped(sandbox, tmp_path):
    members = _class_members(tmp_path, "photos/")
    members["photos/cats/inner.zip"] = _zip({"x.png": b"123"})
    folder = datasets.extract_upload("my photos.zip", _zip(members))
    assert folder == store.home() / "datasets" / "uploads" / "my_photos"
    ds = scan(folder)
    assert ds.classes == ["cats", "dogs"]
    assert any(s["path"].endswith("inner.zip") and ".zip" in s["reason"] for s in ds.skipped)
    assert not (folder / "cats" / "x.png").exists()  # the inner archive was not unpacked


@pytest.mark.parametrize("kind", ["dotdot", "backslash", "absolute", "drive", "symlink"])
def test_escaping_members_are_refused(sandbox, tmp_path, kind):
    members = _class_members(tmp_path)
    evil = {"dotdot": "cats/../../../evil.png", "backslash": "..\\..\\evil.png",
            "absolute": str(tmp_path / "abs-evil.png"), "drive": "C:/evil.png"}
    links = {}
    if kind == "symlink":
        links["cats/link.png"] = "/etc/passwd"
    else:
        members[evil[kind]] = b"evil"
    words = ["symbolic link"] if kind == "symlink" else ["leaves its folder"]
    _refused(sandbox, f"{kind}.zip", _zip(members, **links), words)
    assert not list(tmp_path.rglob("*evil*"))


def test_a_zip_bomb_is_refused_before_anything_is_written(sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_UNPACKED_BYTES", 8 * 1024 ** 2)
    members = _class_members(tmp_path)
    members["cats/zeros.png"] = bytes(32 * 1024 ** 2)
    data = _zip(members)
    assert len(data) < 200_000  # 32 MiB declared from a small archive
    _refused(sandbox, "bomb.zip", data, ["expands to", "limit"])


def test_a_member_that_lies_about_its_size_is_refused(sandbox, tmp_path):
    data = bytearray(_zip({"cats/a.png": bytes(4 * 1024 ** 2), **_class_members(tmp_path)}))
    true_size = struct.pack("<I", 4 * 1024 ** 2)
    central = data.index(b"PK\x01\x02")
    for header, offset in ((0, 22), (central, 24)):  # uncompressed size in the local and central headers
        assert data[header + offset:header + offset + 4] == true_size
        data[header + offset:header + offset + 4] = struct.pack("<I", 100)
    _refused(sandbox, "liar.zip", bytes(data), ["not a readable zip archive"])


def test_encrypted_members_and_non_zip_files_are_refused(sandbox, tmp_path):
    data = bytearray(_zip(_class_members(tmp_path)))
    data[6] |= 1                                     # local header: "encrypted"
    data[data.index(b"PK\x01\x02") + 8] |= 1         # central directory too
    _refused(sandbox, "locked.zip", bytes(data), ["cannot be unpacked"])
    _refused(sandbox, "photo.zip", jpeg_bytes(), ["not a readable zip archive"])
    _refused(sandbox, "empty.zip", b"", ["not a readable zip archive"])


def test_colliding_member_paths_are_refused(sandbox, tmp_path):
    members = {**_class_members(tmp_path), "cats/x.png": b"a file", "cats/x.png/y.png": b"below a file"}
    _refused(sandbox, "collide.zip", _zip(members), ["same path"])


def test_a_second_upload_with_the_same_name_keeps_the_first(sandbox, tmp_path):
    first = datasets.extract_upload("photos.zip", _zip(_class_members(tmp_path)))
    before = sorted(p.name for p in first.rglob("*"))
    second = datasets.extract_upload("photos.zip", _zip(_class_members(tmp_path, "again/")))
    assert (first.name, second.name) == ("photos", "photos-2")
    assert sorted(p.name for p in first.rglob("*")) == before


def test_an_archive_without_class_folders_is_refused_by_its_name(sandbox):
    message = _refused(sandbox, "notes.zip", _zip({"readme.txt": b"hello"}), ["No usable images"])
    assert ".unpack-" not in message


def test_disk_full_while_unpacking_leaves_nothing_behind(sandbox, tmp_path, monkeypatch):
    import errno
    real_open = open

    class FullDisk:
        """A file whose writes fail as on a full disk (after the file was created)."""
        def __init__(self, f):
            self.f = f

        def write(self, _data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(datasets, "open", lambda path, mode="r", *a, **k: FullDisk(real_open(path, mode, *a, **k)),
                        raising=False)
    _refused(sandbox, "photos.zip", _zip(_class_members(tmp_path)), ["No space left on device", "free some space"])


# -- folders the dashboard may read ----------------------------------------------------------------------

def test_use_folder_is_confined_to_the_allowed_roots(home, tmp_path, monkeypatch):
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    inside = make_folder(allowed / "cats_dogs", {"": 3})
    make_folder(outside, {"": 3})
    (allowed / "sneaky").symlink_to(outside)
    monkeypatch.setenv("TUNELAB_DATA_ROOTS", os.pathsep.join([str(allowed), str(tmp_path / "missing-root")]))
    assert datasets.use_folder(str(inside)).classes == ["cats", "dogs"]
    assert settings.load()["data"] == str(inside)
    for path in (outside, allowed / "sneaky", allowed / ".." / "outside", "/etc"):
        with pytest.raises(DataError) as info:
            datasets.use_folder(str(path))
        assert str(path) in str(info.value) and "TUNELAB_DATA_ROOTS" in str(info.value)
    assert settings.load()["data"] == str(inside)  # refusals changed nothing
    weights = allowed / "w.weights.h5"
    weights.write_bytes(b"x")
    assert datasets.check_allowed(weights) == weights
    with pytest.raises(DataError, match="outside the folders"):
        datasets.check_allowed(outside / "w.weights.h5")


def test_default_roots_are_the_users_home_the_labs_home_and_shared(home, monkeypatch, tmp_path):
    monkeypatch.delenv("TUNELAB_DATA_ROOTS", raising=False)
    roots = datasets.allowed_roots()
    assert Path(os.path.realpath(Path.home())) in roots and Path(os.path.realpath(home)) in roots
    assert (Path(os.path.realpath(ROOT.parent / "shared")) in roots) == (ROOT.parent / "shared").is_dir()
    folder = datasets.extract_upload("up.zip", _zip(_class_members(tmp_path)))  # uploads are always usable
    assert datasets.use_folder(str(folder)).classes == ["cats", "dogs"]


# -- weights files and model files ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    import keras
    folder = tmp_path_factory.mktemp("weights")
    vgg = folder / "vgg16_32.weights.h5"
    keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3)).save_weights(vgg)
    mobile = folder / "mobilenet_v2_32.weights.h5"
    keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3)).save_weights(mobile)
    truncated = folder / "vgg16_half.weights.h5"
    data = vgg.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return {"vgg": vgg, "mobile": mobile, "truncated": truncated, "missing": folder / "missing.weights.h5"}


@pytest.mark.filterwarnings("ignore:Skipping nested container")
@pytest.mark.parametrize("which, backbone, size, words", [
    ("missing", "vgg16", 32, "does not exist"),
    ("truncated", "vgg16", 32, "truncated"),
    ("mobile", "vgg16", 32, "does not fit VGG16"),
    ("vgg", "mobilenet_v2", 32, "does not fit MobileNetV2"),
])
def test_wrong_weights_files_raise_a_weights_error_naming_the_file(weight_files, which, backbone, size, words):
    from core.models.networks import WeightsError, conv_base
    with pytest.raises(WeightsError) as info:
        conv_base(backbone, str(weight_files[which]), size)
    assert str(weight_files[which]) in str(info.value) and words in str(info.value)


def test_conv_base_weights_do_not_depend_on_the_input_size(weight_files):
    """A no-top base is convolutional only: weights saved at 32 px fit the same network at 64 px."""
    from core.models.networks import conv_base
    base = conv_base("vgg16", str(weight_files["vgg"]), 64)
    assert base.output_shape[1:] == (2, 2, 512)


def _dotted(node) -> str:
    return f"{_dotted(node.value)}.{node.attr}" if isinstance(node, ast.Attribute) else getattr(node, "id", "?")


def test_every_model_file_is_loaded_in_safe_mode():
    """Every Keras load_model call in the engine and the dashboard passes safe_mode=True (no code in model files)."""
    calls = []
    for path in [*ROOT.glob("core/**/*.py"), *ROOT.glob("pages/**/*.py"), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("keras", "tensorflow")):
                assert "load_model" not in [a.name for a in node.names], f"{path.name}:{node.lineno}: import keras"
            if isinstance(node, ast.Call) and _dotted(node.func).endswith(("models.load_model", "saving.load_model")):
                safe = [k.value for k in node.keywords if k.arg == "safe_mode"]
                calls.append((path.name, node.lineno, bool(safe) and getattr(safe[0], "value", None) is True))
    assert calls and all(ok for *_, ok in calls), calls


def test_a_model_file_with_code_in_it_is_refused(home):
    import keras

    from core.analysis.evaluate import load_model
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    run_id = store.create_run({}, "lambda", "scratch", None, 1)
    model.save(store.run_dir(run_id) / "best.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        load_model(run_id)


# -- parameters out of range from the command line -----------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--recipe", "scratch", "--lr", "-0.001"], ["lr must be greater than 0 and at most 1", "-0.001"]),
    (["--recipe", "feature_extraction", "--image-size", "16"], ["image_size must be between 32 and 1024", "16"]),
    (["--recipe", "scratch", "--image-size", "40"], ["image_size must be between 46 and 1024", "40"]),
    (["--recipe", "fine_tune", "--fine-tune-epochs", "-1"], ["fine_tune_epochs must be between 0 and 10000"]),
    (["--recipe", "scratch_aug", "--dropout", "1.5"], ["dropout must be in [0, 1)", "1.5"]),
    (["--recipe", "scratch", "--batch-size", "0"], ["batch_size must be between 1 and 4096"]),
])
def test_out_of_range_parameters_are_refused_with_the_valid_range(home, args, words):
    proc = cli("train", *args, home=home, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(errors) == 1, proc.stderr
    assert all(w in errors[0] for w in words), errors[0]
    assert not (home / "runs.sqlite").exists() or not store.list_runs()  # nothing was queued
