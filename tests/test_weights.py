"""`core.models.weights.check_weights`: weights are checked before a run is queued (issue 10, defects 3 and 4).

Every refusal is one sentence in the dashboard's terms (no command-line advice), naming the weights and the fix;
nothing is downloaded (the download host is replaced by `weights.online`)."""
import os

import pytest

from core.models import weights
from core.models.weights import WeightsError, check_weights


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import keras
    folder = tmp_path_factory.mktemp("weights")
    mobile = folder / "mobilenet_v2_32.weights.h5"
    keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3)).save_weights(mobile)
    text = folder / "notes.weights.h5"
    text.write_text("not weights")
    return {"mobile": mobile, "text": text, "missing": folder / "missing.weights.h5"}


@pytest.fixture
def empty_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras" / "models"


def _sentence(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "--weights" not in text and "\n" not in text and text.endswith(".")
    return text


def test_imagenet_weights_not_cached_on_an_offline_machine_are_refused_with_the_page_fix(empty_keras_cache,
                                                                                          monkeypatch):
    monkeypatch.setattr(weights, "online", lambda: False)
    with pytest.raises(WeightsError) as info:
        check_weights("vgg16", "imagenet", 150)
    text = _sentence(info)
    assert text.startswith("ImageNet weights for VGG16 are not on this machine")
    assert "choose a local weights file on the Model page" in text


def test_imagenet_weights_that_can_be_downloaded_or_are_cached_pass(empty_keras_cache, monkeypatch):
    monkeypatch.setattr(weights, "online", lambda: True)
    check_weights("vgg16", "imagenet", 150)

    def no_network():
        raise AssertionError("a cached file needs no network check")
    monkeypatch.setattr(weights, "online", no_network)
    from core.models.environment import imagenet_file
    imagenet_file("mobilenet_v2", 160).parent.mkdir(parents=True, exist_ok=True)
    imagenet_file("mobilenet_v2", 160).write_bytes(b"cached")
    check_weights("mobilenet_v2", "imagenet", 160)


def test_random_weights_always_pass():
    check_weights("resnet50", "none", 64)
    check_weights("vgg16", None, 64)


def test_a_weights_file_that_does_not_exist_is_refused_naming_it(files):
    with pytest.raises(WeightsError) as info:
        check_weights("vgg16", str(files["missing"]), 150)
    assert _sentence(info).startswith(f"The weights file {files['missing']} does not exist")


def test_a_file_that_is_not_a_weights_file_is_refused(files):
    with pytest.raises(WeightsError) as info:
        check_weights("vgg16", str(files["text"]), 150)
    assert f"{files['text']} is unreadable" in _sentence(info)


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_a_weights_file_of_another_backbone_is_refused_in_one_sentence(files):
    with pytest.raises(WeightsError) as info:
        check_weights("vgg16", str(files["mobile"]), 150)
    text = _sentence(info)
    assert text.startswith(f"The weights file {files['mobile']} does not fit VGG16 without its top")
    assert "of the network's layers do not match the file, starting with block1_conv1" in text
    assert "keras.applications.VGG16(include_top=False)" in text


def test_a_matching_file_passes_and_is_checked_once_per_version(files):
    weights._file_problem.cache_clear()
    check_weights("mobilenet_v2", str(files["mobile"]), 96)
    check_weights("mobilenet_v2", str(files["mobile"]), 160)  # the image size does not change the answer
    assert weights._file_problem.cache_info().misses == 1
    stat = files["mobile"].stat()
    os.utime(files["mobile"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new version of the file
    check_weights("mobilenet_v2", str(files["mobile"]), 96)
    assert weights._file_problem.cache_info().misses == 2


def test_the_run_and_the_check_raise_the_same_error_class():
    from core.models import networks
    assert networks.WeightsError is WeightsError


def test_the_stored_signatures_are_the_ones_keras_gives_each_backbone():
    """weight_signatures.json is a copy of what Keras saves; after a Keras upgrade `python -m core.models.weights`
    rewrites it (a stale copy would only send every file through the slow check)."""
    from core.config import BACKBONES
    for backbone in BACKBONES:
        assert weights.stored_signature(backbone) == weights.keras_signature(backbone), backbone


def test_a_file_with_the_backbones_signature_is_checked_without_tensorflow(files, tmp_path):
    """The CLI queues a run without importing TensorFlow when the file is the backbone's own; another
    backbone's file still goes through Keras and is refused."""
    import subprocess
    import sys
    code = ("import sys; from core.models.weights import check_weights, WeightsError\n"
            f"check_weights('mobilenet_v2', {str(files['mobile'])!r}, 96)\n"
            "assert 'tensorflow' not in sys.modules, 'imported TensorFlow'\n"
            "try:\n"
            f"    check_weights('vgg16', {str(files['mobile'])!r}, 96)\n"
            "except WeightsError as e:\n"
            "    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "refused: The weights file" in out.stdout and "does not fit VGG16" in out.stdout
