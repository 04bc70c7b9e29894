#!/usr/bin/env bash
# A venv beside the main one (which scripts/setup.sh makes), with this checkout's package (not editable):
#   bash scripts/venv.sh runtime [VENV]   # default .venv-runtime: the base dependencies only, no PyTorch: the
#                                         # live app with --backend onnx or trt, as a Jetson or a kiosk runs it
#   bash scripts/venv.sh serve [VENV]     # default .venv-serve: nvidia-pytriton (Triton Inference Server with its
#                                         # Python backend) for python -m serve; it needs numpy < 2 while the app
#                                         # pins numpy 2, so it cannot be an extra of the same install
# Idempotent: the dependencies install once, the package is reinstalled every time.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:-}
case $KIND in
  runtime | serve) ;;
  *) echo "usage: bash scripts/venv.sh runtime|serve [VENV]" >&2; exit 2 ;;
esac
VENV=${2:-.venv-$KIND}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
if [[ $KIND == runtime ]]; then
  "$VENV/bin/python" deploy/jetson/runtime_deps.py > "$VENV/runtime-requirements.txt"
  "$VENV/bin/python" -m pip install -q -r "$VENV/runtime-requirements.txt"
else  # the server's engine: onnxruntime, and headless OpenCV for the engines' imports
  "$VENV/bin/python" -m pip install -q "nvidia-pytriton==0.7.0" "numpy==1.26.4" "onnxruntime==1.32.0" \
    "opencv-python-headless==4.10.0.84"
fi
"$VENV/bin/python" -m pip install -q --no-deps --force-reinstall .
echo "$KIND: ready ($VENV)"
