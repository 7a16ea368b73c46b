"""The images a user chose to leave out of future runs on a data folder (the Data page's selection).

Kept per data folder in home()/exclusions/<folder key>.json as {content hash: path}: the Train page passes the
hashes as a run's `exclude`, and the worker leaves those images out when it records the run's split (listed
under "excluded" in split.json). A file is never deleted or moved; a hash keeps finding the image under another
name. `from_paths` turns the command line's `--exclude` arguments (images, folders, lists of paths) into the same
hashes. Imports neither TensorFlow nor Streamlit.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from core.atomic import replacing
from core.data import manifest
from core.runs import store


def _path(root: str | os.PathLike) -> Path:
    key = hashlib.sha1(manifest.absolute(root).encode()).hexdigest()[:16]
    return store.home() / "exclusions" / f"{key}.json"


def load(root: str | os.PathLike | None) -> dict[str, str]:
    """{content hash: path} excluded for `root` (empty when none, or no folder)."""
    if not root:
        return {}
    try:
        data = json.loads(_path(root).read_text())
        return {str(k): str(v) for k, v in data.get("files", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def save(root: str | os.PathLike, paths: list[str]) -> dict[str, str]:
    """Record `paths` (files under `root`) as the folder's exclusion list, replacing the previous one."""
    files = {manifest.file_digest(p): manifest.absolute(p) for p in paths}
    path = _path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        tmp.write_text(json.dumps({"root": manifest.absolute(root), "files": files}, indent=1))
    return files


def hashes(root: str | os.PathLike | None) -> list[str]:
    """The sorted content hashes to pass as a run's `exclude`."""
    return sorted(load(root))


def from_paths(paths: list[str | os.PathLike]) -> list[str]:
    """The sorted content hashes of the images named by `paths`: an image file, a folder (every image below it),
    or a text file listing such paths, one a line (blank lines and lines starting with # ignored; relative paths
    against the list's folder). Reads the files, never changes them."""
    from core.data.folders import IMAGE_EXTENSIONS
    found: dict[str, str] = {}

    def add(path: Path, listed_in: Path | None = None) -> None:
        if not path.exists():
            where = f" (listed in {listed_in})" if listed_in else ""
            raise ValueError(f"Cannot exclude {path}{where}: no such file or folder; give an image, a folder of "
                             f"images or a text file listing them.")
        if path.is_dir():
            for image in manifest.image_files(path):
                found[manifest.file_digest(image)] = image
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            found[manifest.file_digest(path)] = manifest.absolute(path)
        elif listed_in is None and path.suffix.lower() in (".txt", ".lst", ".list", ""):
            for line in path.read_text(errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    entry = Path(line).expanduser()
                    add(entry if entry.is_absolute() else path.parent / entry, path)
        else:
            raise ValueError(f"Cannot exclude {path}: it is neither an image ({', '.join(sorted(IMAGE_EXTENSIONS))}), "
                             f"a folder, nor a text file listing paths (.txt); give one of those.")
    for p in paths:
        add(Path(p).expanduser())
    return sorted(found)
