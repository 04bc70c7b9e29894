"""The fused back-end's parts: ``kernels`` (the window as four Triton kernels), ``weights`` (the
recognizer packed for them once) and ``launch`` (buffers and the four launches of one batch).
This module itself loads neither Triton nor the weights."""

from __future__ import annotations

import torch

NO_CUDA = "--backend fused runs Triton kernels on an NVIDIA GPU: {why}; use --backend torch or onnx on this machine"


def require_cuda(device: str) -> None:
    """Raise a one-line ``RuntimeError`` unless ``device`` is cuda and PyTorch sees a CUDA device."""
    if device != "cuda":
        raise RuntimeError(NO_CUDA.format(why=f"--device is {device}, add --device cuda"))
    if not torch.cuda.is_available():
        raise RuntimeError(NO_CUDA.format(why="PyTorch sees no CUDA device here"))
