"""Atomic file replacement: write beside the target, then rename, so a reader or a crash never sees half a file.

The temporary name is `.<name>.<pid>.tmp<suffix>`; `core.runs.runner.remove_orphans` deletes those left by
processes that died mid-write.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def replacing(path: Path, suffix: str = ""):
    """Yield a temporary path beside `path`; on success it replaces `path`, on any failure it is removed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
