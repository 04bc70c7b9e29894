"""The runtime runs on Python 3.10, JetPack 6's: checked statically with vermin, and compiled by a
real Python 3.10 where one is installed (only 3.11 runs the tests)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers.paths import ROOT

SOURCES = ("realtime", "dmd_lite", "export", "calibration", "main.py")  # what a deployment installs and runs
OLDEST = "3.10"


def test_vermin_finds_nothing_newer_than_python_3_10():
    # --exclude long: torch's Tensor.long(), which vermin takes for Python 2's long
    vermin = Path(sys.executable).with_name("vermin")  # its console script, beside this interpreter
    result = subprocess.run([str(vermin), "--no-tips", "--violations", f"-t={OLDEST}-",
                             "--eval-annotations", "--exclude", "long", *SOURCES],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Minimum required versions: {OLDEST}" in result.stdout or "~2, ~3" in result.stdout, result.stdout


def test_a_real_python_3_10_compiles_every_source_file():
    pyenv = os.path.expanduser(os.environ.get("PYENV_ROOT", "~/.pyenv"))
    found = [shutil.which(f"python{OLDEST}"), *sorted(glob.glob(f"{pyenv}/versions/{OLDEST}.*/bin/python{OLDEST}"))]
    working = [p for p in found if p and subprocess.run([p, "-c", "pass"], capture_output=True).returncode == 0]
    if not working:
        pytest.skip(f"no working python{OLDEST} here (on PATH or under pyenv)")
    python = working[0]
    files = [str(p) for s in SOURCES for p in ([ROOT / s] if s.endswith(".py") else sorted((ROOT / s).rglob("*.py")))]
    code = "import sys\nfor f in sys.argv[1:]:\n    compile(open(f, encoding='utf-8').read(), f, 'exec')\n"
    result = subprocess.run([python, "-c", code, *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_package_declares_python_3_10():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={OLDEST}"
