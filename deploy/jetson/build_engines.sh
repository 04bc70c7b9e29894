#!/usr/bin/env bash
# Builds the TensorRT engine on the Jetson itself (an engine runs only on the GPU and TensorRT that built it):
# the ONNX export (python -m export onnx, with its parity gate) unless EXPORT already holds one, then
# python -m export trt and python -m export verify (the parity gate, on the engine).
#
#   bash deploy/jetson/build_engines.sh            # EXPORT=out/export, MAX_BATCH=4, PYTHON=.venv-jetson/bin/python
#
# The ONNX export needs torch (item 1 of issue 19, a runtime without torch, is not done yet): where the
# Jetson has no working torch, make it on the x86 machine (python -m export onnx --out out/export) and copy
# out/export over. Written for a Jetson; not run on one yet (README.md here says what was checked).
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-.venv-jetson/bin/python}
EXPORT=${EXPORT:-out/export}
MAX_BATCH=${MAX_BATCH:-4}  # the live app runs one window at a time; Triton on the device would want more

"$PYTHON" -c 'import tensorrt, torch; assert torch.cuda.is_available(), "torch sees no CUDA device"; print("build_engines: TensorRT", tensorrt.__version__, "on", torch.cuda.get_device_name())' \
  || { echo "build_engines: needs TensorRT and a CUDA torch in $PYTHON (deploy/jetson/setup_jetson.sh)" >&2; exit 2; }

if [[ -f $EXPORT/recognizer/model.onnx ]]; then
  echo "build_engines: using the ONNX export in $EXPORT"
else
  "$PYTHON" -m export onnx --out "$EXPORT"
fi
"$PYTHON" -m export trt --onnx "$EXPORT" --max-batch "$MAX_BATCH"
"$PYTHON" -m export verify "$EXPORT/recognizer/model.plan"
echo "build_engines: run with: $PYTHON main.py --backend trt --engine $EXPORT/recognizer/model.plan --device cuda"
