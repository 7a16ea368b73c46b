"""The dataset the lab uses: the built-in demo, a folder the user names, or an uploaded zip of class folders.

The choice is kept in the lab's settings, so every page and browser tab sees the same data.
Folders named in the dashboard must lie inside the allowed roots (`TUNELAB_DATA_ROOTS`, see
`allowed_roots`); the command line is not confined. Uploaded archives are unpacked only inside
home()/datasets/uploads/, member by member, refusing paths that leave it, links, encrypted or damaged
members, and archives that expand beyond a size limit (declared sizes and bytes actually written).
"""
from __future__ import annotations

import errno
import itertools
import os
import random
import re
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

from core import settings
from core.data import demo
from core.runs import store
from core.data.folders import DataError, Dataset, scan

MAX_UNPACKED_BYTES = 2 * 1024 ** 3
MAX_MEMBERS = 100_000
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def allowed_roots() -> list[Path]:
    """Folders whose contents the dashboard may read: $TUNELAB_DATA_ROOTS (os.pathsep-separated), or by
    default the user's home folder, the lab's home folder and the project's sibling ../shared if present."""
    raw = os.environ.get("TUNELAB_DATA_ROOTS")
    if raw:
        roots = [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
    else:
        roots = [Path.home(), store.home()]
        if (PROJECT_ROOT.parent / "shared").is_dir():
            roots.append(PROJECT_ROOT.parent / "shared")
    return [Path(os.path.realpath(p)) for p in roots]


def check_allowed(path: str | os.PathLike) -> Path:
    """`path` resolved (links followed) if it lies inside an allowed root; DataError naming it otherwise."""
    real = Path(os.path.realpath(Path(path).expanduser()))
    roots = allowed_roots()
    if any(real.is_relative_to(root) for root in roots):
        return real
    raise DataError(f"{path} is outside the folders the lab may read ({os.pathsep.join(map(str, roots))}): "
                    f"move it there, or allow its folder by adding it to TUNELAB_DATA_ROOTS "
                    f"(separated by {os.pathsep!r}) before starting the lab.")


def current(progress=None) -> tuple[Path, str]:
    """(folder, label) of the dataset in use; the demo data is generated on first use, once, while
    `progress(fraction, text)` (if given) is told how far it is (see `demo.make_demo_dataset`)."""
    chosen = settings.load()["data"]
    if chosen:
        return Path(chosen), chosen
    return demo.demo_dataset_path(store.home(), progress), "built-in demo data (drawn cats and dogs)"


def use_folder(path: str | None) -> Dataset | None:
    """Make `path` the dataset in use after checking it is allowed and can work (None: the demo data)."""
    if path is None:
        settings.update(data=None)
        return None
    if not Path(path).expanduser().exists():  # say so, rather than "outside the folders" for a typo
        raise DataError(f"The folder {path} does not exist: check the path (a folder with one subfolder per class, "
                        f"or with train/ and validation/).")
    real = check_allowed(path)
    ds = scan(real)
    settings.update(data=str(real))
    return ds


def _refuse(filename: str, why: str) -> DataError:
    return DataError(f"{filename} {why}: nothing was unpacked; upload a .zip of class folders.")


def _member_target(out: Path, filename: str, member: zipfile.ZipInfo) -> Path | None:
    """Where `member` goes under `out` (None: a folder entry); DataError for links and escaping paths."""
    name = member.filename.replace("\\", "/")
    if (member.external_attr >> 16) & 0o170000 == 0o120000:
        raise _refuse(filename, f"contains a symbolic link ({name}), which is not unpacked")
    if name.endswith("/"):
        return None
    parts = Path(name).parts
    dest = out.joinpath(*parts).resolve() if parts else out
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts or dest == out \
            or not dest.is_relative_to(out):
        raise _refuse(filename, f"contains a path that leaves its folder ({name})")
    return dest


def unpack_zip(archive: zipfile.ZipFile, out: Path, filename: str) -> None:
    """Copy every member below `out`, counting the bytes really written against MAX_UNPACKED_BYTES."""
    members = archive.infolist()
    limit = f"{MAX_UNPACKED_BYTES / 1024 ** 3:g} GiB"
    if len(members) > MAX_MEMBERS:
        raise _refuse(filename, f"has {len(members):,} members (the limit is {MAX_MEMBERS:,})")
    declared = sum(m.file_size for m in members)
    if declared > MAX_UNPACKED_BYTES:
        raise _refuse(filename, f"expands to {declared:,} bytes, more than the {limit} limit")
    out.mkdir()
    if declared > shutil.disk_usage(out).free:
        raise _refuse(filename, f"expands to {declared:,} bytes, more than the free space in {out.parent}")
    written = 0
    for member in members:
        dest = _member_target(out, filename, member)
        if dest is None:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as src, open(dest, "wb") as dst:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > MAX_UNPACKED_BYTES:
                    raise _refuse(filename, f"expands beyond the {limit} limit (its sizes are false)")
                dst.write(chunk)


def _move_to_free_name(src: Path, target_root: Path, stem: str) -> Path:
    """Rename `src` to target_root/stem, or stem-2, stem-3... : an earlier upload is never replaced."""
    for n in itertools.count(1):
        final = target_root / (stem if n == 1 else f"{stem}-{n}")
        if final.exists():
            continue
        try:
            os.rename(src, final)
            return final
        except OSError as exc:  # another upload took the name in the meantime
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise


def extract_upload(filename: str, data: bytes) -> Path:
    """Unpack an uploaded zip of class folders under home()/datasets/uploads/<name>/ and return it.

    Any refusal raises DataError with one sentence and leaves nothing behind; a name already taken by an
    earlier upload gets a suffix (-2, -3...), so runs trained on the earlier one keep their data."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(filename).stem).strip("._") or "upload"
    target_root = store.home() / "datasets" / "uploads"
    try:
        target_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target_root, prefix=".unpack-") as tmp:
            archive_path = Path(tmp) / "upload.zip"
            archive_path.write_bytes(data)
            out = Path(tmp, "out").resolve()
            try:
                with zipfile.ZipFile(archive_path) as archive:
                    unpack_zip(archive, out, filename)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as exc:
                raise _refuse(filename, f"is not a readable zip archive ({exc})") from exc
            except (NotImplementedError, RuntimeError) as exc:  # unsupported compression, encrypted members
                raise _refuse(filename, f"has members that cannot be unpacked ({exc})") from exc
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                raise _refuse(filename, f"has a file and a folder with the same path ({exc.filename})") from exc
            root = out
            entries = [p for p in out.iterdir() if not p.name.startswith(("__MACOSX", "."))]
            if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in ("train", "training"):
                sub = [p for p in entries[0].iterdir() if p.is_dir()]
                if sub and all(any(p.iterdir()) for p in sub):
                    root = entries[0]
            try:
                scan(root)  # refuse archives without usable class folders
            except DataError as exc:
                raise DataError(str(exc).replace(str(root), f"the archive {filename}")) from None
            final = _move_to_free_name(root, target_root, stem)
    except OSError as exc:
        raise DataError(f"Could not unpack {filename} into {target_root} ({exc.strerror or exc}): free some space "
                        f"or check that the folder is writable, then upload it again.") from exc
    return final


def sample_files(root: Path, n: int = 1, seed: int = 0, split: str = "train") -> list[str]:
    ds = scan(root)
    items = ds.splits.get(split) or next(iter(ds.splits.values()))
    return [p for p, _ in random.Random(seed).sample(items, min(n, len(items)))]
