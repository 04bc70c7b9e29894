"""The package as a user installs it: a wheel built from the working tree (``helpers.wheel``) and
installed (not editable) into a fresh venv runs ``dmd-realtime --demo`` and ``python -m realtime``
from a folder outside the checkout, with the weights, face landmarker and demo clip found as package
data, and writes nothing into site-packages or the checkout. The big dependencies are not
reinstalled: a ``.pth`` file points the fresh venv at this interpreter's site-packages (whose
editable install of the project is not activated that way, so the wheel's copy is the one imported)."""

from __future__ import annotations

import json
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest
from helpers.paths import ROOT
from helpers.wheel import build_wheel, outside_the_checkout, run

pytestmark = pytest.mark.slow


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _git_status() -> str | None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    return run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT).stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns the venv folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(tmp)
    venv = tmp / "wv"
    made = run([sys.executable, "-m", "venv", str(venv)])
    if made.returncode != 0:
        pytest.skip(f"cannot make a venv here: {made.stderr[-400:]}")
    py = venv / "bin" / "python"
    purelib = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    inst = run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)])
    assert inst.returncode == 0, inst.stdout[-2000:] + inst.stderr[-2000:]
    (purelib / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # the deps, after the wheel
    return venv


def test_installed_demo_runs_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    py, script = installed / "bin" / "python", installed / "bin" / "dmd-realtime"
    site = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    outside, env = outside_the_checkout(tmp_path)
    where = run([str(py), "-c", "import realtime, dmd_lite; from realtime.core.resources import shipped, cache_dir;"
                  "print(realtime.__file__); print(dmd_lite.__file__); print(shipped('models/default'));"
                  "print(cache_dir('x'))"], cwd=outside, env=env)
    assert where.returncode == 0, where.stderr
    lines = where.stdout.split()
    assert all(Path(p).is_relative_to(site) for p in lines[:3]), lines  # the wheel's copy, not the checkout
    assert Path(lines[3]) == tmp_path / "cache" / "dmd-realtime" / "x"

    before_site, before_git = _files(site), _git_status()
    demo = run([str(script), "--demo", "--headless", "--no-asr", "--max-seconds", "3", "--log-level", "WARNING"],
               cwd=outside, env=env)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    out = outside / "dmd-realtime-demo"
    assert (out / "demo.mp4").stat().st_size > 10_000
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events, "no events written"
    helped = run([str(py), "-m", "realtime", "--help"], cwd=outside, env=env)
    assert helped.returncode == 0 and "--demo" in helped.stdout, helped.stderr
    assert _files(site) == before_site, sorted(_files(site) ^ before_site)[:20]
    assert _git_status() == before_git
