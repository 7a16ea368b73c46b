"""A run's files: the one owner of every name in a run's folder, `home()/runs/<id>/`.

The folder holds the final models (`best.keras`, `last.keras`), the checkpoint after the latest epoch
(`ckpt-<epoch>-<kind>.keras`), the best model of each kind so far (`best-<kind>.keras`), the recorded
split (`split.json`), its run card (`run_card.json`), TensorBoard logs (`tb/`) and the worker's output (`worker.log`). Core code and the
pages ask this module for these paths; nothing else spells a run's file names. Imports neither
TensorFlow nor Streamlit.
"""
from __future__ import annotations

from pathlib import Path

from core.runs import store

MODELS = ("best", "last")               # the complete raw-pixel classifiers a finished or stopped run saves
KINDS = ("full", "head", "top")         # what a checkpoint holds (see `core.runs.callbacks.latest_checkpoint`)
_SUFFIX = ".keras"
_SPLIT = "split.json"
_RUN_CARD = "run_card.json"
_TENSORBOARD = "tb"
_WORKER_LOG = "worker.log"
TEMPORARY_GLOB = f"runs/*/.*.tmp{_SUFFIX}"  # half-written model files of dead workers, relative to home()


def folder(run_id: str) -> Path:
    """The run's folder (it exists once the run is created)."""
    return store.run_dir(run_id)


def model_name(which: str = "best") -> str:
    """The file name of a run's final model: "best.keras" or "last.keras"."""
    if which not in MODELS:
        raise ValueError(f"Unknown model {which!r}: choose one of {', '.join(MODELS)}.")
    return which + _SUFFIX


def model(run_id: str, which: str = "best") -> Path:
    """The path of the run's final model `which` ("best" or "last"), whether or not it exists yet."""
    return folder(run_id) / model_name(which)


def model_if_saved(run_id: str, which: str = "best") -> Path | None:
    """The run's final model `which`, or None when it has not been saved (yet)."""
    path = model(run_id, which)
    return path if path.is_file() else None


def model_stamp(run_id: str, which: str = "best") -> float:
    """The modification time of the run's model (caches keyed by it refresh when a resumed run re-saves it)."""
    return model(run_id, which).stat().st_mtime


def models_saved(run_id: str) -> list[Path]:
    """The run's final models, best then last."""
    return [model(run_id, which) for which in MODELS]


def download_name(run_id: str, which: str = "best") -> str:
    """The file name a downloaded model gets: "<run id>-best.keras"."""
    return f"{run_id}-{model_name(which)}"


def checkpoint(run_id: str, epoch: int, kind: str) -> Path:
    """The checkpoint written after `epoch` finished epochs, holding a model of `kind`."""
    if kind not in KINDS:
        raise ValueError(f"Unknown checkpoint kind {kind!r}: choose one of {', '.join(KINDS)}.")
    return folder(run_id) / f"ckpt-{epoch:04d}-{kind}{_SUFFIX}"


def checkpoints(run_id: str) -> list[Path]:
    """Every checkpoint in the run's folder (normally only the latest one is kept)."""
    return sorted(folder(run_id).glob(f"ckpt-*{_SUFFIX}"))


def checkpoint_epoch(path: Path) -> int:
    """The epoch count a checkpoint was written after."""
    return int(path.name.split("-")[1])


def best_of_kind(run_id: str, kind: str) -> Path:
    """The best model so far of one kind (the phase's own model, before it is assembled into a classifier)."""
    return folder(run_id) / f"best-{kind}{_SUFFIX}"


def bests_of_kind(run_id: str) -> list[tuple[Path, str]]:
    """[(path, kind)] of the run's best-<kind> models, oldest first: the last one holds the best epoch."""
    paths = sorted(folder(run_id).glob(f"best-*{_SUFFIX}"), key=lambda p: p.stat().st_mtime)
    return [(p, p.name[len("best-"):-len(_SUFFIX)]) for p in paths]


def split_manifest(run_id: str) -> Path:
    """The run's recorded split (`core.data.manifest`), written at its first start and never again."""
    return folder(run_id) / _SPLIT


def run_card(run_id: str) -> Path:
    """The run's card (`core.runs.runcard`): seed, determinism, library versions, data hash, precision."""
    return folder(run_id) / _RUN_CARD


EXPORT_SUFFIXES = {"keras": ".keras", "saved_model": "", "tflite": ".tflite", "tflite-int8": ".int8.tflite",
                   "onnx": ".onnx"}


def export(run_id: str, fmt: str) -> Path:
    """Where the Compare page writes the run's export in format `fmt` (`exports/model<suffix>`; a folder for
    a SavedModel)."""
    if fmt not in EXPORT_SUFFIXES:
        raise ValueError(f"Unknown export format {fmt!r}: choose one of {', '.join(EXPORT_SUFFIXES)}.")
    return folder(run_id) / "exports" / f"{'saved_model' if fmt == 'saved_model' else 'model'}{EXPORT_SUFFIXES[fmt]}"


def tensorboard(run_id: str) -> Path:
    """The run's TensorBoard log folder."""
    return folder(run_id) / _TENSORBOARD


def worker_log(run_id: str) -> Path:
    """The standard output and error of the run's worker processes (appended by each)."""
    return folder(run_id) / _WORKER_LOG
