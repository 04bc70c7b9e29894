#!/usr/bin/env bash
# A venv beside the main one (which scripts/setup.sh makes), with this checkout's package (not editable):
#   bash scripts/venv.sh runtime [--window] [VENV]
#                            # default .venv-runtime: the base dependencies (as pyproject.toml's runtime table
#                            # changes them), no PyTorch: the live app with --backend onnx or trt, under 600 MB.
#                            # Headless OpenCV (the app runs --headless), as on a robot, a car or a Jetson;
#                            # --window: OpenCV's window build, for the overlay on a screen (a kiosk)
#   bash scripts/venv.sh serve [VENV]
#                            # default .venv-serve: nvidia-pytriton (Triton Inference Server with its Python
#                            # backend) for python -m serve; it needs numpy < 2 while the app pins numpy 2, so it
#                            # cannot be an extra of the same install
# Idempotent: the dependencies install once, the package is reinstalled every time.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: bash scripts/venv.sh runtime [--window] [VENV] | serve [VENV]" >&2; exit 2; }
KIND=${1:-}
[[ $KIND == runtime || $KIND == serve ]] || usage
shift
WINDOW=() VENV=
for arg in "$@"; do
  case $arg in
    --window) [[ $KIND == runtime ]] || usage; WINDOW=(--window) ;;
    -*) usage ;;
    *) [[ -z $VENV ]] || usage; VENV=$arg ;;
  esac
done
VENV=${VENV:-.venv-$KIND}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [[ $KIND == runtime ]]; then
  # The runtime's lists are deploy/jetson/runtime_deps.py's (pyproject.toml, [tool.dmd-realtime.runtime]): headless
  # OpenCV (--window: the table's window build), MediaPipe without its own requirements (opencv-contrib-python,
  # matplotlib). For the size on disk the venv has no pip and no setuptools (pip runs from $PYTHON with --python: pip
  # 22.3 or newer), nothing is byte-compiled ahead (Python writes the .pyc of what the app imports when it first
  # runs), and the files of the table's prune list go, the package's PyTorch-only weights among them (so the prune
  # follows the package). --no-warn-conflicts: MediaPipe's and this package's metadata name opencv-contrib-python,
  # on purpose not installed.
  "$PYTHON" -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (22, 3))' 2>/dev/null \
    || { echo "venv.sh: $PYTHON has no pip that takes --python (pip 22.3 or newer)" >&2; exit 2; }
  [[ -x $VENV/bin/python ]] || "$PYTHON" -m venv --without-pip "$VENV"
  "$VENV/bin/python" deploy/jetson/runtime_deps.py "${WINDOW[@]}" > "$VENV/runtime-requirements.txt"
  mapfile -t no_deps < <("$VENV/bin/python" deploy/jetson/runtime_deps.py --no-deps)
  other=$("$VENV/bin/python" deploy/jetson/runtime_deps.py --other-opencv "${WINDOW[@]}")
  if [[ -n $other ]]; then  # two OpenCV wheels share the cv2 folder: one uninstalled breaks the other
    echo "venv.sh: $VENV has $other, not this run's OpenCV (made with or without --window, or an older runtime" \
         "venv); remove it (rm -rf $VENV) and run this again" >&2
    exit 2
  fi
  PIP=("$PYTHON" -m pip --python "$VENV/bin/python")
  "${PIP[@]}" install -q --no-compile --no-warn-conflicts -r "$VENV/runtime-requirements.txt"
  "${PIP[@]}" install -q --no-compile --no-warn-conflicts --no-deps "${no_deps[@]}"
  "${PIP[@]}" install -q --no-compile --no-warn-conflicts --no-deps --force-reinstall .
  "$VENV/bin/python" deploy/jetson/runtime_deps.py --prune
else  # the server's engine: onnxruntime, and headless OpenCV for the engines' imports
  [[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "nvidia-pytriton==0.7.0" "numpy==1.26.4" "onnxruntime==1.32.0" \
    "opencv-python-headless==4.10.0.84"
  "$VENV/bin/python" -m pip install -q --no-deps --force-reinstall .
fi
echo "$KIND: ready ($VENV)"
