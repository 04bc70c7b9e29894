"""The package as a user installs it: a wheel built from the working tree (a copy, so the build's
``build/`` folder stays out of the repository) and installed (not editable) into a fresh venv runs
``dmd-realtime --demo`` and ``python -m realtime`` from a folder outside the checkout, with the weights,
face landmarker and demo clip found as package data, and writes nothing into site-packages or the
checkout. The big dependencies are not reinstalled: a ``.pth`` file points the fresh venv at this
interpreter's site-packages (whose editable install of the project is not activated that way, so the
wheel's copy is the one imported)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _git_status() -> str | None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    return _run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT).stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns the venv folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    listed = _run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT) if shutil.which("git") else None
    if listed is None or listed.returncode != 0:
        pytest.skip("git is needed to list the working tree's files")
    src = tmp / "src"
    for name in listed.stdout.splitlines():
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", str(src), "-w", str(tmp / "whl")])
    if built.returncode != 0:  # e.g. no network and no local index to fetch the build backend from
        pytest.skip(f"cannot build the wheel here: {built.stdout[-400:]}{built.stderr[-400:]}")
    assert "deprecat" not in (built.stdout + built.stderr).lower(), built.stdout + built.stderr
    wheels = list((tmp / "whl").glob("dmd_realtime-*.whl"))
    assert len(wheels) == 1
    venv = tmp / "wv"
    made = _run([sys.executable, "-m", "venv", str(venv)])
    if made.returncode != 0:
        pytest.skip(f"cannot make a venv here: {made.stderr[-400:]}")
    py = venv / "bin" / "python"
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    inst = _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", str(wheels[0])])
    assert inst.returncode == 0, inst.stdout[-2000:] + inst.stderr[-2000:]
    (purelib / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # the deps, after the wheel
    return venv


def test_installed_demo_runs_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    py, script = installed / "bin" / "python", installed / "bin" / "dmd-realtime"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    outside = tmp_path / "outside"
    outside.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": ""}
    env.pop("VIRTUAL_ENV", None)
    where = _run([str(py), "-c", "import realtime, dmd_lite; from realtime.core.resources import shipped, cache_dir;"
                  "print(realtime.__file__); print(dmd_lite.__file__); print(shipped('models/default'));"
                  "print(cache_dir('x'))"], cwd=outside, env=env)
    assert where.returncode == 0, where.stderr
    lines = where.stdout.split()
    assert all(Path(p).is_relative_to(site) for p in lines[:3]), lines  # the wheel's copy, not the checkout
    assert Path(lines[3]) == tmp_path / "cache" / "dmd-realtime" / "x"

    before_site, before_git = _files(site), _git_status()
    run = _run([str(script), "--demo", "--headless", "--no-asr", "--max-seconds", "3", "--log-level", "WARNING"],
               cwd=outside, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    out = outside / "dmd-realtime-demo"
    assert (out / "demo.mp4").stat().st_size > 10_000
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events, "no events written"
    helped = _run([str(py), "-m", "realtime", "--help"], cwd=outside, env=env)
    assert helped.returncode == 0 and "--demo" in helped.stdout, helped.stderr
    assert _files(site) == before_site, sorted(_files(site) ^ before_site)[:20]
    assert _git_status() == before_git
