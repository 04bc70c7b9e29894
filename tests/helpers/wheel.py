"""The project's wheel as a user gets it: built from a copy of the working tree's files (tracked and
untracked, not ignored), so the build's ``build/`` folder stays out of the repository; and a folder
outside the checkout to run an installed package from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import ROOT


def run(cmd: list[str], timeout: int = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def build_wheel(tmp: Path) -> Path:
    """The wheel built in ``tmp``; skips the test where git or the build backend is not at hand."""
    listed = run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT) if shutil.which("git") else None
    if listed is None or listed.returncode != 0:
        pytest.skip("git is needed to list the working tree's files")
    src = tmp / "src"
    for name in listed.stdout.splitlines():
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", str(src), "-w", str(tmp / "whl")])
    if built.returncode != 0:  # e.g. no network and no local index to fetch the build backend from
        pytest.skip(f"cannot build the wheel here: {built.stdout[-400:]}{built.stderr[-400:]}")
    assert "deprecat" not in (built.stdout + built.stderr).lower(), built.stdout + built.stderr
    wheels = list((tmp / "whl").glob("dmd_realtime-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def outside_the_checkout(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder outside the checkout (so an installed package, not the checkout's, is imported) and an
    environment for it: its own cache, no PYTHONPATH, no active venv."""
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": ""}
    env.pop("VIRTUAL_ENV", None)
    return outside, env
