"""A run's recorded split: every image of every split, with its absolute path, byte size and content hash.

The worker writes it at a run's first start (`write_once` never replaces a file that is there) and
everything that needs the run's images afterwards reads it: resuming, `evaluate`, the Inspect page,
the Ladder and run comparisons. So a folder that changes after a run began cannot move images between
its splits: files that disappeared (or changed size) are reported and left out, new files are ignored
and counted. The content hash finds an image a run trained on under any name, in any folder.
Imports neither TensorFlow nor Streamlit.

Format, version 2: {"version": 2, "root", "classes", "presplit", "skipped": [path, ...],
"splits": {split: [[path, label, size, sha1], ...]}, "excluded": [[path, label, size, sha1], ...]} (the
images left out by the run's `exclude` list; absent in records written before it existed). Version-1 records ([path, label] entries and no
"version") stay readable; their hashes are computed from the files when asked for.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

VERSION = 2
_CHUNK = 1 << 20


def file_digest(path: str | os.PathLike) -> str:
    """The sha1 of a file's bytes, in hex (the lab's content hash, also behind the decoded-image cache keys)."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def absolute(path: str | os.PathLike) -> str:
    """`path` made absolute against the current folder, `~` expanded, `..` and links of its folders resolved."""
    path = Path(path).expanduser()
    return str(path.parent.resolve() / path.name)


@dataclass(frozen=True)
class Entry:
    """One recorded image: where it was, its class index, and (version 2) its size and content hash."""
    path: str
    label: int
    size: int | None = None
    digest: str | None = None

    def state(self) -> str:
        """"present", "missing" (no such file) or "changed" (its size differs from the recorded one)."""
        try:
            info = os.stat(self.path)
        except OSError:
            return "missing"
        return "changed" if self.size is not None and info.st_size != self.size else "present"


def build(dataset, digest: Callable[[str], str] = file_digest, exclude=()) -> dict:
    """The record of a scanned `core.data.folders.Dataset` (every file is read once, for its hash).

    Images whose content hash is in `exclude` are left out of every split and listed under "excluded"
    (same rows as a split's); the files themselves are never touched."""
    exclude = set(exclude)
    splits, excluded = {}, []
    for split, items in dataset.splits.items():
        rows = []
        for path, label in items:
            path = absolute(path)
            row = [path, int(label), os.stat(path).st_size, digest(path)]
            (excluded if row[3] in exclude else rows).append(row)
        splits[split] = rows
    return {"version": VERSION, "root": absolute(dataset.root), "classes": list(dataset.classes),
            "presplit": bool(dataset.presplit), "skipped": [s["path"] for s in dataset.skipped], "splits": splits,
            "excluded": excluded}


def write_once(path: Path, record: dict, before_commit: Callable[[], None] | None = None) -> bool:
    """Write `record` to `path` unless a file is there already; True if this call wrote it.

    The file appears complete or not at all (written beside it, then hard-linked into place, which
    fails rather than replaces). `before_commit` runs just before it appears (a lease check)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(record))
        if before_commit is not None:
            before_commit()
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive creation still never replaces
            try:
                with open(path, "x") as f:
                    f.write(tmp.read_text())
            except FileExistsError:
                return False
        return True
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def read(path: Path) -> dict | None:
    """The record at `path`, or None when there is none or it is not a split record."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("splits"), dict):
        return None
    return record


def entries(record: dict, split: str) -> tuple[list[Entry], int]:
    """(the readable entries of `split`, the number of damaged ones) in a record of either version."""
    good, damaged = [], 0
    for item in record.get("splits", {}).get(split) or []:
        try:
            path, label = str(item[0]), int(item[1])
            size = int(item[2]) if len(item) > 2 and item[2] is not None else None
            digest = str(item[3]) if len(item) > 3 and item[3] else None
        except (TypeError, ValueError, IndexError, KeyError):
            damaged += 1
            continue
        if label < 0:
            damaged += 1
            continue
        good.append(Entry(path, label, size, digest))
    return good, damaged


def digest_of(entry: Entry) -> str | None:
    """The entry's content hash: recorded (version 2), else computed from the file; None if it is unreadable."""
    if entry.digest:
        return entry.digest
    try:
        return file_digest(entry.path)
    except OSError:
        return None


def training_digests(record: dict) -> set[str]:
    """The content hashes of the images in the record's training split."""
    found, _ = entries(record, "train")
    return {d for d in map(digest_of, found) if d}


@dataclass
class Check:
    """How a data folder compares with a run's record of it."""
    missing: dict[str, list[str]]   # split -> recorded files that no longer exist
    changed: dict[str, list[str]]   # split -> recorded files whose size changed
    new: int                        # image files in the folder the record does not know (ignored)

    def messages(self) -> list[str]:
        """One sentence per finding, for the run's log."""
        out = []
        for what, found in (("no longer exist", self.missing), ("changed since the run began", self.changed)):
            for split, paths in found.items():
                if paths:
                    out.append(f"{len(paths)} recorded {split} images {what} and are left out "
                               f"(first: {paths[0]})")
        if self.new:
            out.append(f"{self.new} image files added to the data folder since the run began are ignored "
                       f"(the recorded split is kept)")
        return out


def check(record: dict) -> Check:
    """Compare the record with its folder now: what disappeared, changed, or is new."""
    missing, changed, known = {}, {}, set(record.get("skipped") or [])
    known.update(row[0] for row in record.get("excluded") or [])
    for split in record.get("splits", {}):
        found, _ = entries(record, split)
        known.update(e.path for e in found)
        states = [(e.path, e.state()) for e in found]
        missing[split] = [p for p, s in states if s == "missing"]
        changed[split] = [p for p, s in states if s == "changed"]
    return Check(missing, changed, sum(1 for path in image_files(record.get("root") or "") if path not in known))


def image_files(root: str | os.PathLike) -> list[str]:
    """Every file with an image extension below `root` (absolute paths, hidden names left out)."""
    from core.data.folders import IMAGE_EXTENSIONS
    if not root or not os.path.isdir(root):
        return []
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        folder = str(Path(dirpath).resolve())  # the way `absolute` writes a recorded path
        if folder in seen:  # a folder link loop (or a second link to a folder already listed)
            dirnames[:] = []
            continue
        seen.add(folder)
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "__MACOSX"))]
        found += [os.path.join(folder, n) for n in filenames
                  if not n.startswith(".") and os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
    return found
