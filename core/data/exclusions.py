"""The images a user chose to leave out of future runs on a data folder (the Data page's selection).

Kept per data folder in home()/exclusions/<folder key>.json as {content hash: path}: the Train page passes the
hashes as a run's `exclude`, and the worker leaves those images out when it records the run's split (listed
under "excluded" in split.json). A file is never deleted or moved; a hash keeps finding the image under another
name. Imports neither TensorFlow nor Streamlit.
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
