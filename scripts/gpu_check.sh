#!/usr/bin/env bash
# The fused kernels' CUDA tests, then the GPU benchmark, in one run on an NVIDIA GPU (about 8 minutes
# on an H200, mostly Triton and torch.compile compiling).
#   bash scripts/gpu_check.sh WINDOWS [OUT]
# WINDOWS: saved windows (main.py --save-windows); OUT: where the logs go (default out/gpu).
set -u -o pipefail
windows=${1:?usage: bash scripts/gpu_check.sh WINDOWS [OUT]}
out=${2:-out/gpu}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-16}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"
"$python" -c "import sys, torch, triton; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)" | tee -a "$out/gpu.txt"
timeout 150 "$python" -m pytest -q -p no:cacheprovider tests/engines/test_fused_kernels.py 2>&1 | tee "$out/tests.txt"
timeout 330 "$python" -m bench.model --device cuda --windows "$windows" --repeat 200 2>"$out/bench_stderr.txt" | tee "$out/bench.txt"
tail -n 5 "$out/bench_stderr.txt"
