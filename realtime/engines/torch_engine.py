"""The PyTorch back-end: ``--backend torch`` (the default)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dmd_lite.recognizer import load_recognizer
from realtime.core.backends import INPUTS, OUTPUTS
from realtime.engines.base import Engine


class TorchEngine(Engine):
    """The recognizer in PyTorch (eager), on CPU or CUDA.

    On CUDA a batch of one window launches hundreds of small kernels, so by default each batch
    size is captured once as a CUDA graph and replayed: one launch per call, the same kernels."""

    name = "torch"

    def __init__(self, checkpoint: str | Path = "default", device: str = "cpu", threads: int | None = None,
                 cuda_graphs: bool = True) -> None:
        if threads:
            torch.set_num_threads(threads)
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda: no CUDA device is visible to PyTorch; use --device cpu")
        self.device = device
        self.cuda_graphs = cuda_graphs and device == "cuda"
        self._graphs: dict[int, CapturedCall] = {}
        self.model, self.meta = load_recognizer(checkpoint, device)
        super().__init__(self.model.spec)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            tensors = [torch.from_numpy(inputs[n]) for n in INPUTS]
            if self.cuda_graphs:
                batch = len(tensors[0])
                if batch not in self._graphs:
                    self._graphs[batch] = CapturedCall(self.model, tensors)
                outputs = self._graphs[batch](tensors)
            else:
                outputs = self.model(*(t.to(self.device) for t in tensors))
        return {n: o.float().cpu().numpy() for n, o in zip(OUTPUTS, outputs)}


class CapturedCall:
    """One CUDA graph of ``model`` (a module, or any call of tensors that returns tensors) for inputs of
    one shape: copy in, replay, read the outputs."""

    def __init__(self, model: Callable[..., tuple[torch.Tensor, ...]], example: list[torch.Tensor]) -> None:
        self.inputs = [t.to("cuda") for t in example]  # static buffers the graph reads
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the capture: allocations, kernel choices, caches
            for _ in range(3):
                model(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = model(*self.inputs)  # static buffers the graph writes

    def __call__(self, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        for buffer, t in zip(self.inputs, tensors):
            buffer.copy_(t)
        self.graph.replay()
        return self.outputs
