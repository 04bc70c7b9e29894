#!/usr/bin/env bash
# The runtime install: a venv (default .venv-runtime) with this checkout's package (not editable) and its
# base dependencies only, no PyTorch: the live app with --backend onnx or trt, as a Jetson or a kiosk runs it.
# Idempotent: the dependencies install once, the package is reinstalled every time. Usage:
#   bash scripts/runtime_venv.sh [VENV]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-runtime}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" deploy/jetson/runtime_deps.py > "$VENV/runtime-requirements.txt"
"$VENV/bin/python" -m pip install -q -r "$VENV/runtime-requirements.txt"
"$VENV/bin/python" -m pip install -q --no-deps --force-reinstall .
echo "runtime: ready ($VENV)"
