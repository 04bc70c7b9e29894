#!/usr/bin/env bash
# Sets up the live app on a bare JetPack 6.x install (L4T r36.4, Ubuntu 22.04, Python 3.10, TensorRT 10.3):
# Ubuntu's and JetPack's packages (apt), then a venv made with --system-site-packages so that it sees
# JetPack's TensorRT Python bindings (python3-libnvinfer), then the runtime install (the project's base
# dependencies, no PyTorch) with cuda-python for --backend trt.
#
#   bash deploy/jetson/setup_jetson.sh
#
# Idempotent; VENV (default .venv-jetson) names the venv; WINDOW=1 takes the window build of OpenCV in
# place of the headless one (the overlay on a screen). The ONNX export the app runs is made where
# PyTorch is (python -m export onnx --out out/export) and copied over (README.md here). Written for a
# Jetson; not run on one yet (README.md here says what was checked).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${VENV:-.venv-jetson}
PYTHON=${PYTHON:-/usr/bin/python3}
CUDA_PYTHON=${CUDA_PYTHON:-cuda-python==12.6.2.post1}  # has a cp310 aarch64 wheel (README.md here)
WINDOW=${WINDOW:-0}
case $WINDOW in
  0) OPENCV_BUILD=() ;;
  1) OPENCV_BUILD=(--window) ;;
  *) echo "setup_jetson: WINDOW=$WINDOW: 1 (the window build of OpenCV) or 0 (headless, the default)" >&2; exit 2 ;;
esac

if [[ $(uname -m) != aarch64 ]]; then
  echo "setup_jetson: this is not a Jetson ($(uname -m), not aarch64); use scripts/setup.sh" >&2
  exit 2
fi
[[ -f /etc/nv_tegra_release ]] && echo "setup_jetson: $(head -n 1 /etc/nv_tegra_release)"

# the app's audio, GStreamer for --gst (NVIDIA's nvarguscamerasrc / nvvidconv come with JetPack's
# nvidia-l4t-gstreamer), PyGObject's build headers, TensorRT's Python bindings and the venv module
APT_PACKAGES=(python3-venv python3-dev python3-libnvinfer libportaudio2 libasound2-plugins
              gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
              gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 libgirepository1.0-dev libcairo2-dev pkg-config
              gcc v4l-utils)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=()
  [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
  echo "setup_jetson: installing system packages: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 10), sys.version' \
  || { echo "setup_jetson: JetPack 6's TensorRT bindings are built for Python 3.10; $PYTHON is not 3.10" >&2; exit 2; }
# found, not imported: a docker build has no GPU driver mounted
"$PYTHON" -c 'import importlib.util as u; assert u.find_spec("tensorrt"), "no tensorrt module"' \
  || { echo "setup_jetson: the system Python has no tensorrt module (apt-get install python3-libnvinfer)" >&2; exit 2; }

# --system-site-packages: the venv sees /usr/lib/python3/dist-packages/tensorrt (and GStreamer's gi, if present)
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv --system-site-packages "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip

# the runtime install: the base dependencies as pyproject.toml's runtime table changes them (no PyTorch; headless
# OpenCV, so the app runs --headless, or with WINDOW=1 the window build), PyGObject for --gst, the CUDA runtime's
# Python bindings for the TensorRT engine (the release of JetPack 6.1's CUDA 12.6); then MediaPipe without its own
# requirements (opencv-contrib-python and matplotlib, neither used), the table's prune list, the project itself
# (editable: the prune's package weights stay in the checkout). --no-warn-conflicts: MediaPipe's and the project's
# metadata name opencv-contrib-python, on purpose not installed (scripts/venv.sh runtime does the same)
mapfile -t deps < <("$VENV/bin/python" deploy/jetson/runtime_deps.py --extra gst "${OPENCV_BUILD[@]}")
mapfile -t no_deps < <("$VENV/bin/python" deploy/jetson/runtime_deps.py --no-deps)
# two OpenCV wheels share the cv2 folder (one uninstalled breaks the other): a venv made with the other WINDOW stops
# here (the venv's own packages, not the system's it sees)
other=$("$VENV/bin/python" deploy/jetson/runtime_deps.py --other-opencv "${OPENCV_BUILD[@]}")
if [[ -n $other ]]; then
  echo "setup_jetson: $VENV has $other, not this run's OpenCV (made with the other WINDOW); remove it" \
       "(rm -rf $VENV) and run this again" >&2
  exit 2
fi
"$VENV/bin/python" -m pip install -q --no-warn-conflicts "${deps[@]}" "$CUDA_PYTHON"
"$VENV/bin/python" -m pip install -q --no-warn-conflicts --no-deps "${no_deps[@]}"
"$VENV/bin/python" deploy/jetson/runtime_deps.py --prune
"$VENV/bin/python" -m pip install -q --no-warn-conflicts --no-deps -e .

"$VENV/bin/python" - <<'PY'
import importlib.util
found = {m: importlib.util.find_spec(m) is not None
         for m in ("tensorrt", "cuda", "cv2", "mediapipe", "onnxruntime", "gi")}
print("setup_jetson: in the venv:", ", ".join(f"{m} {'yes' if ok else 'NO'}" for m, ok in found.items()))
PY
echo "setup_jetson: ready ($VENV); next: copy an ONNX export to out/export, then bash deploy/jetson/build_engines.sh"
