#!/usr/bin/env bash
# Builds the TensorRT engine on the Jetson itself (an engine runs only on the GPU and TensorRT that built it)
# from the ONNX export in EXPORT (made where PyTorch is, `python -m export onnx --out out/export`, and copied
# here), then gates it: the app saves the demo's windows through the export (onnxruntime, CPU) and
# `python -m export verify --reference onnx` compares the engine's answers with the export's on them.
#
#   bash deploy/jetson/build_engines.sh            # EXPORT=out/export, MAX_BATCH=4, PYTHON=.venv-jetson/bin/python
#
# No PyTorch needed. Written for a Jetson; not run on one yet (README.md here says what was checked).
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-.venv-jetson/bin/python}
EXPORT=${EXPORT:-out/export}
MAX_BATCH=${MAX_BATCH:-4}  # the live app runs one window at a time; Triton on the device would want more

"$PYTHON" -c 'import tensorrt; print("build_engines: TensorRT", tensorrt.__version__)' \
  || { echo "build_engines: needs TensorRT in $PYTHON (deploy/jetson/setup_jetson.sh)" >&2; exit 2; }
if [[ ! -f $EXPORT/recognizer/model.onnx ]]; then
  echo "build_engines: no ONNX export in $EXPORT: make one where PyTorch is (python -m export onnx --out out/export) and copy it here" >&2
  exit 2
fi
"$PYTHON" -m export trt --onnx "$EXPORT" --max-batch "$MAX_BATCH"
"$PYTHON" main.py --demo --headless --as-fast-as-possible --no-asr --backend onnx --engine "$EXPORT" \
  --save-windows "$EXPORT/windows" --events "$EXPORT/windows/events.jsonl"
"$PYTHON" -m export verify "$EXPORT/recognizer/model.plan" --reference onnx --windows "$EXPORT/windows"
echo "build_engines: run with: $PYTHON main.py --backend trt --engine $EXPORT/recognizer/model.plan --device cuda"
