"""Check that requirements.txt resolves to binary wheels on the platforms students use, not only on this one.

pip's `--platform` picks wheels for another platform but evaluates environment markers against the machine
it runs on, so each requirement's marker is evaluated here for the target (with `packaging`), and the lines
that apply go to `pip install --dry-run --only-binary=:all: --platform ...`. Prints one line per platform;
exits non-zero if any does not resolve. Run by .ci/run; needs the package registry.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
# name: (pip --platform tags, marker environment of that platform)
TARGETS = {
    "Linux x86-64": (["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_27_x86_64", "manylinux_2_28_x86_64"],
                     {"sys_platform": "linux", "platform_machine": "x86_64", "platform_system": "Linux"}),
    "macOS arm64": (["macosx_12_0_arm64", "macosx_14_0_arm64"],
                    {"sys_platform": "darwin", "platform_machine": "arm64", "platform_system": "Darwin"}),
    "Linux arm64": (["manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_27_aarch64",
                     "manylinux_2_28_aarch64"],
                    {"sys_platform": "linux", "platform_machine": "aarch64", "platform_system": "Linux"}),
    "Windows x86-64": (["win_amd64"], {"sys_platform": "win32", "platform_machine": "AMD64",
                                       "platform_system": "Windows"}),
}


def requirement_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            lines += requirement_lines(path.parent / line[3:].strip())
        elif line:
            lines.append(line)
    return lines


def for_platform(lines: list[str], env: dict) -> list[str]:
    """The requirements that apply on the platform `env`, without their markers."""
    chosen = []
    for line in lines:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"python_version": "3.11", **env}):
            req.marker = None
            chosen.append(str(req))
    return chosen


def main() -> int:
    lines = requirement_lines(ROOT / "requirements.txt")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, (tags, env) in TARGETS.items():
            reqs = Path(tmp) / "requirements.txt"
            reqs.write_text("\n".join(for_platform(lines, env)) + "\n")
            cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--only-binary=:all:",
                   "--python-version", "3.11", "--implementation", "cp", "--target", str(Path(tmp) / "target"),
                   "-r", str(reqs)] + [arg for tag in tags for arg in ("--platform", tag)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            tf = next(r for r in for_platform(lines, env) if r.startswith("tensorflow"))
            if proc.returncode:
                failed += 1
                errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
                print(f"requirements on {name}: DO NOT RESOLVE ({'; '.join(errors)[:500]})")
            else:
                print(f"requirements on {name}: resolve ({tf})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
