#!/usr/bin/env bash
# The server's venv (default .venv-serve): nvidia-pytriton (Triton Inference Server with its Python backend),
# which needs numpy < 2 while the app pins numpy 2, so it cannot be an extra of the same install; onnxruntime
# and headless OpenCV for the engine; this checkout's package without its dependencies. Idempotent. Usage:
#   bash scripts/serve_venv.sh [VENV]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-serve}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q "nvidia-pytriton==0.7.0" "numpy==1.26.4" "onnxruntime==1.32.0" \
  "opencv-python-headless==4.10.0.84"
"$VENV/bin/python" -m pip install -q --no-deps --force-reinstall .
echo "serve: ready ($VENV)"
