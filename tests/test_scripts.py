"""The shell scripts under ``scripts/`` name files and modules of this repository that exist.

A script that runs once in a while (the GPU check gets a few minutes of a lent GPU) must not find out
there that a test file moved."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))
TOP = ("bench", "calibration", "deploy", "dmd_lite", "export", "realtime", "scripts", "serve", "tests")
FILE = re.compile(rf"\b(?:{'|'.join(TOP)})/[\w/.-]+\.(?:py|sh)\b")
MODULE = re.compile(rf"-m ((?:{'|'.join(TOP)})(?:\.\w+)*)")


def named(text: str) -> list[Path]:
    """The repository files a script's text names: paths, and what ``python -m`` runs of our packages."""
    modules = [Path(*m.split(".")) for m in MODULE.findall(text)]
    return [Path(p) for p in FILE.findall(text)] + [
        m.with_suffix(".py") if (ROOT / m.with_suffix(".py")).exists() else m / "__main__.py" for m in modules]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_path_a_script_names_exists(script: Path):
    missing = [str(p) for p in named(script.read_text()) if not (ROOT / p).exists()]
    assert not missing, f"{script.name} names what is not in the repository: {missing}"


def test_a_moved_file_is_caught():
    assert named("pytest tests/test_gone.py && python -m bench.model") == [
        Path("tests/test_gone.py"), Path("bench/model.py")]
    assert not (ROOT / "tests/test_gone.py").exists()
