"""The dataset the lab uses: the built-in demo, a folder the user names, or an uploaded zip of class folders.

The choice is kept in the lab's settings, so every page and browser tab sees the same data.
Uploaded archives are unpacked only inside home()/datasets/uploads/, member by member, refusing
paths that leave it, links, and archives that expand beyond a size limit.
"""
from __future__ import annotations

import random
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from core import demo, settings, store
from core.data import DataError, Dataset, scan

MAX_UNPACKED_BYTES = 2 * 1024 ** 3


def current() -> tuple[Path, str]:
    """(folder, label) of the dataset in use; the demo data is generated on first use."""
    chosen = settings.load()["data"]
    if chosen:
        return Path(chosen), chosen
    return demo.demo_dataset_path(store.home()), "built-in demo data (drawn cats and dogs)"


def use_folder(path: str | None) -> Dataset | None:
    """Make `path` the dataset in use after checking it can work (None: back to the demo data)."""
    if path is None:
        settings.update(data=None)
        return None
    ds = scan(Path(path).expanduser())
    settings.update(data=str(Path(path).expanduser().resolve()))
    return ds


def extract_upload(filename: str, data: bytes) -> Path:
    """Unpack an uploaded zip of class folders under home()/datasets/uploads/<name>/ and return it."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(filename).stem).strip("._") or "upload"
    target_root = store.home() / "datasets" / "uploads"
    target_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_root) as tmp:
        archive_path = Path(tmp) / "upload.zip"
        archive_path.write_bytes(data)
        try:
            archive = zipfile.ZipFile(archive_path)
        except zipfile.BadZipFile as exc:
            raise DataError(f"{filename} is not a zip archive ({exc}): upload a .zip of class folders.") from exc
        out = Path(tmp) / "out"
        total = 0
        with archive:
            for member in archive.infolist():
                name = member.filename
                if member.is_dir():
                    continue
                if (member.external_attr >> 16) & 0o170000 == 0o120000:
                    raise DataError(f"{filename} contains a symbolic link ({name}): links are not unpacked.")
                dest = (out / name).resolve()
                if name.startswith(("/", "\\")) or ".." in Path(name).parts or not str(dest).startswith(str(out.resolve())):
                    raise DataError(f"{filename} contains a path that leaves its folder ({name}): refused.")
                total += member.file_size
                if total > MAX_UNPACKED_BYTES:
                    raise DataError(f"{filename} expands to more than {MAX_UNPACKED_BYTES // 1024 ** 3} GiB: refused.")
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        root = out
        entries = [p for p in out.iterdir() if not p.name.startswith(("__MACOSX", "."))] if out.exists() else []
        if len(entries) == 1 and entries[0].is_dir() and not any(
                e.name in ("train", "training") for e in entries):
            sub = [p for p in entries[0].iterdir() if p.is_dir()]
            if sub and all(any(p.iterdir()) for p in sub):
                root = entries[0]
        scan(root)  # refuse archives without usable class folders
        final = target_root / stem
        if final.exists():
            shutil.rmtree(final)
        shutil.move(str(root), final)
    return final


def sample_files(root: Path, n: int = 1, seed: int = 0, split: str = "train") -> list[str]:
    ds = scan(root)
    items = ds.splits.get(split) or next(iter(ds.splits.values()))
    return [p for p, _ in random.Random(seed).sample(items, min(n, len(items)))]
