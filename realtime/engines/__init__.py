"""Engines: one interface (``base.Engine``) and its back-ends, each a plug-in loaded only when chosen:
``torch_engine`` (PyTorch, eager or CUDA graphs), ``onnx_engine`` (onnxruntime, an export made by
``python -m export onnx``), ``trt_engine`` (TensorRT, a plan or an ONNX export to build one from),
``fused_engine`` (the window as fused Triton kernels on CUDA, parts in ``fused/``); ``remote_engine``
(a Triton Inference Server, one of the others answering when it does not).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from realtime.core.backends import BACKENDS
from realtime.engines.base import Engine

NO_TORCH = ("--backend {backend} needs PyTorch, which this install lacks (the runtime install): use --backend onnx "
            "--engine DIR with an export made by `python -m export onnx --out DIR` where PyTorch is, or install "
            "the training extra: pip install 'dmd-realtime[train]'")
NO_EXPORT = ("--backend onnx needs --engine DIR, an ONNX export of the recognizer: make one with "
             "`python -m export onnx --out DIR` (add --checkpoint for another model)")


def make_engine(backend: str = "torch", checkpoint: str | Path = "default", device: str = "cpu",
                threads: int | None = None, engine_file: str | Path | None = None, precision: str = "float32",
                server: str | None = None) -> Engine:
    """The engine for ``--backend``: ``torch`` (``checkpoint``); ``onnx`` (``engine_file``: an ONNX
    export folder or file; without one, a one-line ``ValueError`` naming the command that makes one);
    ``trt`` (``engine_file``: a TensorRT plan, or an ONNX export to build one from); ``fused``
    (``checkpoint`` on CUDA, ``precision`` its matrix arithmetic; without CUDA a one-line ``RuntimeError``).
    With ``server`` (grpc://HOST:PORT) the windows go to that Triton server, this engine answering
    while the server does not (``remote_engine``)."""
    local = _local_engine(backend, checkpoint, device, threads, engine_file, precision)
    if server is None:
        return local
    from realtime.engines.remote_engine import RemoteEngine

    return RemoteEngine(server, local)


def _local_engine(backend: str, checkpoint: str | Path, device: str, threads: int | None,
                  engine_file: str | Path | None, precision: str) -> Engine:
    """The engine of this machine that ``backend`` names (``make_engine``)."""
    if backend in ("torch", "fused") and importlib.util.find_spec("torch") is None:
        raise ValueError(NO_TORCH.format(backend=backend))
    if backend == "torch":
        from realtime.engines.torch_engine import TorchEngine

        return TorchEngine(checkpoint, device, threads)
    if backend == "onnx":
        import onnxruntime as ort

        from realtime.engines.onnx_engine import OnnxEngine, choose_providers

        choose_providers(device, ort.get_available_providers())  # no GPU provider: say so first
        if engine_file is None:
            raise ValueError(NO_EXPORT)
        return OnnxEngine(engine_file, device, threads)
    if backend == "trt":
        if engine_file is None:
            raise ValueError("--backend trt needs --engine FILE (a .plan from `python -m export trt`, or an ONNX export)")
        from realtime.engines.trt_engine import TrtEngine

        return TrtEngine(engine_file)
    if backend == "fused":
        from realtime.engines.fused import require_cuda

        require_cuda(device)  # before Triton and the weights load
        from realtime.engines.fused_engine import FusedEngine

        return FusedEngine(checkpoint, device, precision)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
