"""Shared fixtures: an isolated lab home per test, tiny generated image folders, the shared/ data."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data" / "cats_vs_dogs_small"
SHARED_WEIGHTS = SHARED / "weights"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh TUNELAB_HOME for one test."""
    path = tmp_path / "home"
    monkeypatch.setenv("TUNELAB_HOME", str(path))
    return path


def write_image(path: Path, label: int, rng: np.random.Generator, size=(40, 32)) -> None:
    """A tiny learnable image: class 0 bright on the left half, class 1 bright on the right."""
    w, h = size
    arr = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    half = slice(0, w // 2) if label == 0 else slice(w // 2, w)
    arr[:, half] = np.clip(arr[:, half].astype(int) + 170, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_folder(root: Path, per_class: dict[str, int], classes=("cats", "dogs"), seed=0) -> Path:
    """{split: n per class} -> root/split/class/*.png ; split "" means an unsplit folder."""
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for label, cls in enumerate(classes):
            for i in range(n):
                write_image(root / split / cls / f"{cls}.{i}.png", label, rng)
    return root


@pytest.fixture
def tiny_data(tmp_path):
    return make_folder(tmp_path / "tiny", {"train": 12, "validation": 6, "test": 4})


def poll_until(predicate, timeout: float = 180.0, poll: float = 0.05):
    """`predicate()`'s first truthy value, checked every `poll` seconds; AssertionError after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s")


def needs_shared(*parts):
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is absent (../shared is only beside the project "
                                                        f"on the lab's own machines)")


def cli(*args, home, check=True, timeout=600, env=None):
    env = dict(os.environ, TUNELAB_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "core", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def cli_here(*args, home):
    """`python -m core ARGS` run by `core.cli.main` in this process, without a new interpreter's TensorFlow start-up
    (for checks of what a command prints; tests of the real process use `cli`): returncode, stdout, stderr."""
    import contextlib
    import io

    from core.cli import main
    out, err, old = io.StringIO(), io.StringIO(), os.environ.get("TUNELAB_HOME")
    os.environ["TUNELAB_HOME"] = str(home)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exit_:  # argparse's own errors
                code = exit_.code
    finally:
        if old is None:
            os.environ.pop("TUNELAB_HOME", None)
        else:
            os.environ["TUNELAB_HOME"] = old
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


# -- a lab home with finished tiny runs (Inspect, Ladder, report tests) -------------------------------------------------

@pytest.fixture(scope="session")
def trained_lab(tmp_path_factory):
    """A lab home holding two finished tiny runs, trained once per session in this process:
    "scratch" (seed 0) and "scratch_aug" (seed 1), 48 px, 2 epochs, on a tiny_data-like folder, which is
    also the dataset in use."""
    import keras

    from core import settings
    from core.runs import store
    from core.config import RunSpec
    from core.runs.worker import run_worker
    root = tmp_path_factory.mktemp("trained")
    data = make_folder(root / "tiny", {"train": 12, "validation": 6, "test": 4})
    home = root / "home"
    ids = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUNELAB_HOME", str(home))
        for recipe, seed in (("scratch", 0), ("scratch_aug", 1)):
            spec = RunSpec.from_recipe(recipe, data=str(data), image_size=48, epochs=2, batch_size=8, seed=seed,
                                       name=f"tiny {recipe}")
            run_id = store.create_run(spec.to_dict(), spec.display_name(), recipe, None, spec.total_epochs)
            assert run_worker(run_id) == "finished", store.get_run(run_id)["error"]
            ids.append(run_id)
        settings.update(data=str(data))  # pages use the tiny folder, not the generated demo data
    keras.mixed_precision.set_global_policy("float32")  # the worker set the run's policy for this process
    return {"home": home, "data": data, "runs": ids}


@pytest.fixture
def lab_home(trained_lab, tmp_path, monkeypatch):
    """A private copy of `trained_lab`'s home as this test's TUNELAB_HOME (tests may change it)."""
    import shutil
    path = tmp_path / "home"
    shutil.copytree(trained_lab["home"], path)
    monkeypatch.setenv("TUNELAB_HOME", str(path))
    return path


def huge_png(side: int) -> bytes:
    """A valid black-and-white PNG of side x side pixels in a few kilobytes (a "decompression bomb" for the checks)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + bytes((side + 7) // 8)  # filter byte, then 1 bit per pixel
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# -- a throwaway PostgreSQL server for the run store's tests (issue 11) -------------------------------------------------

def _pg_bin(name: str) -> str | None:
    import glob
    import shutil
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A PostgreSQL server from Debian's package, in a temporary folder, on a loopback port; yields its base URL
    (postgresql://postgres@127.0.0.1:PORT). Skips when the binaries or the driver are absent."""
    import shutil
    import socket
    import tempfile
    pytest.importorskip("psycopg", reason="the PostgreSQL driver is not installed (pip install -r "
                                          "requirements-cluster.txt; .ci/run does it)")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL's initdb/pg_ctl are absent (apt-get install postgresql; .ci/run does it as root)")
    as_root = os.getuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    folder = Path(tempfile.mkdtemp(prefix="tunelab-pg-"))  # not under pytest's tmp: postgres must reach it
    data, sockets = folder / "data", folder / "sock"
    sockets.mkdir()
    if as_root:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60", "-o",
                    f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server):
    """A fresh, empty database on the throwaway server; yields its URL."""
    import uuid

    import psycopg
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    yield f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_home(request, home, monkeypatch):
    """A fresh lab home whose run store is SQLite, then (second parameter) a fresh PostgreSQL database."""
    if request.param == "postgresql":
        monkeypatch.setenv("TUNELAB_DB_URL", request.getfixturevalue("postgres_db"))
    else:
        monkeypatch.delenv("TUNELAB_DB_URL", raising=False)
    return home
