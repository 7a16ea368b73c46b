"""Weights checked before a run is queued: are the chosen weights there, loadable, and made for the backbone?

`check_weights(backbone, weights, image_size)` raises `WeightsError` with one sentence in the dashboard's terms
when a run on those weights would fail: ImageNet weights that are not cached in ~/.keras/models/ on a machine
that cannot reach the download site (decided without downloading anything: a cache-file check, then one short
TCP connection), or a local file that does not exist, is not a weights file, or whose layers do not match the
backbone. A local file is loaded into the backbone exactly as a run loads it (`load_weights_file`, which
`core.models.networks.conv_base` uses too); the result is cached by file, size and modification time.

A Keras 3 weights file whose variables have exactly the paths and shapes of the backbone's own (its signature,
stored in weight_signatures.json by `python -m core.models.weights`, and checked against Keras by the tests)
passes without TensorFlow: `python -m core train` then queues a run in a fraction of a second instead of
importing TensorFlow first. Any other file (legacy .h5, another network, a damaged one) is loaded by Keras, which
names what does not fit.
"""
from __future__ import annotations

import functools
import json
import re
import warnings
from pathlib import Path

from core.config import BACKBONES
from core.models import environment

ONLINE_TIMEOUT_S = 2.0
SIGNATURES = Path(__file__).with_name("weight_signatures.json")


class WeightsError(ValueError):
    """A weights choice that cannot be used; the message names the weights, the reason and the fix."""


def online() -> bool:
    """True if the ImageNet download host answers within ONLINE_TIMEOUT_S (tests replace this function)."""
    return environment.online(timeout=ONLINE_TIMEOUT_S)


def imagenet_cached(backbone: str, image_size: int) -> bool:
    path = environment.imagenet_file(backbone, image_size)
    return path.is_file() and path.stat().st_size > 0


def imagenet_missing_message(backbone: str, image_size: int) -> str:
    """The sentence for ImageNet weights that are neither cached nor downloadable."""
    return (f"ImageNet weights for {BACKBONES[backbone].title} are not on this machine "
            f"({environment.imagenet_file(backbone, image_size)}) and it cannot reach the download site: choose a "
            f"local weights file on the Model page, or copy the file into {environment.keras_cache_dir()}.")


def check_weights(backbone: str, weights: str | None, image_size: int) -> None:
    """Raise WeightsError (one sentence) unless a run of `backbone` at `image_size` px can load `weights`.

    `weights` is "imagenet", "none" (or None: random initialisation, always fine) or the path of a weights file.
    """
    if backbone not in BACKBONES:
        raise WeightsError(f"Unknown backbone {backbone!r}: choose one of {', '.join(BACKBONES)}.")
    if weights in (None, "none"):
        return
    if weights == "imagenet":
        if imagenet_cached(backbone, image_size) or online():
            return
        raise WeightsError(imagenet_missing_message(backbone, image_size))
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(_missing_file(path, backbone))
    info = path.stat()
    problem = _file_problem(backbone, str(path.resolve()), info.st_mtime_ns, info.st_size)
    if problem:
        raise WeightsError(problem.replace(str(path.resolve()), str(path)))


@functools.lru_cache(maxsize=64)
def _file_problem(backbone: str, path: str, mtime_ns: int, size: int) -> str | None:
    """None if the file loads into the backbone, else the sentence; cached per file version."""
    expected = stored_signature(backbone)
    if expected and file_signature(Path(path)) == expected:
        return None  # the backbone's own variables, path for path and shape for shape: Keras loads it
    import keras
    info = BACKBONES[backbone]
    # A base without its top is convolutional only: its weights do not depend on the input size, so the
    # smallest size the network accepts checks a file for every size, at the lowest cost.
    model = getattr(keras.applications, info.app)(weights=None, include_top=False,
                                                  input_shape=(max(info.min_size, 32),) * 2 + (3,))
    try:
        load_weights_file(model, backbone, Path(path))
    except WeightsError as exc:
        return str(exc)
    return None


def file_signature(path: Path) -> dict[str, list[int]] | None:
    """{variable path: shape} of a Keras 3 weights file (None for another format or an unreadable file)."""
    import h5py
    found: dict[str, list[int]] = {}
    try:
        with h5py.File(path, "r") as f:
            if "layers" not in f:
                return None
            f["layers"].visititems(lambda name, obj: found.__setitem__(name, list(obj.shape))
                                   if isinstance(obj, h5py.Dataset) else None)
    except OSError:
        return None
    return found


@functools.lru_cache(maxsize=1)
def _signatures() -> dict:
    try:
        return json.loads(SIGNATURES.read_text())
    except (OSError, ValueError):
        return {}


def stored_signature(backbone: str) -> dict[str, list[int]] | None:
    return _signatures().get(backbone)


def keras_signature(backbone: str) -> dict[str, list[int]]:
    """The signature Keras gives the backbone's base without its top (saved with random weights, then read)."""
    import tempfile
    import keras
    info = BACKBONES[backbone]
    model = getattr(keras.applications, info.app)(weights=None, include_top=False,
                                                  input_shape=(max(info.min_size, 32),) * 2 + (3,))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{backbone}.weights.h5"
        model.save_weights(path)
        return file_signature(path)


def write_signatures() -> None:
    """Store every backbone's signature in weight_signatures.json (after a Keras upgrade changes them)."""
    SIGNATURES.write_text(json.dumps({b: keras_signature(b) for b in BACKBONES}, separators=(",", ":"),
                                     sort_keys=True) + "\n")
    _signatures.cache_clear()


def _missing_file(path: Path, backbone: str) -> str:
    return (f"The weights file {path} does not exist: choose an existing {BACKBONES[backbone].title} weights file "
            f"saved without the top (.h5 or .weights.h5), or ImageNet or random weights.")


def load_weights_file(model, backbone: str, path: Path) -> None:
    """Load the weights file `path` into `model` (a `backbone` base built with weights=None); WeightsError with
    one sentence when the file is missing, is not an HDF5 weights file, or does not fit the backbone."""
    info = BACKBONES[backbone]
    if not path.is_file():
        raise WeightsError(_missing_file(path, backbone))
    try:
        import h5py
        with h5py.File(path, "r"):
            pass
    except OSError as exc:
        raise WeightsError(f"The weights file {path} is unreadable (truncated, or not an HDF5 weights file): copy "
                           f"it again, or choose another file.") from exc
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Skipping nested container")
            model.load_weights(str(path))
    except Exception as exc:  # Keras says it in many ways: turn it into one sentence
        raise WeightsError(f"The weights file {path} does not fit {info.title} without its top "
                           f"({_keras_reason(exc)}): choose a file saved from "
                           f"keras.applications.{info.app}(include_top=False).") from exc


def _keras_reason(exc: Exception) -> str:
    """Keras's loading error as a short clause, e.g. "13 of its layers do not match, starting with block1_conv1"."""
    text = str(exc)
    count = re.search(r"A total of (\d+) objects could not be loaded", text)
    layer = re.search(r"Layer '([^']+)'", text)
    if count:
        return (f"{count.group(1)} of the network's layers do not match the file"
                + (f", starting with {layer.group(1)}" if layer else "") + "; it was saved from another network")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:160].rstrip(" .:")


if __name__ == "__main__":
    write_signatures()
    print(f"wrote {SIGNATURES}")
