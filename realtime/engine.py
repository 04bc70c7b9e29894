"""Engines: the one interface the app (and the export parity gates) use to run the recognizer.

An engine maps a batch of named input arrays (``dmd_lite.recognizer.INPUTS``) to named output
arrays (``OUTPUTS``); ``infer`` wraps that for one live ``Window``. Back-ends differ only in
``run``: PyTorch here, onnxruntime and TensorRT in ``export``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from dmd_lite.recognizer import INPUTS, OUTPUTS

from .backends import BACKENDS
from .errors import NonFiniteOutputError
from .feature_spec import FeatureSpec
from .window import Window

if TYPE_CHECKING:
    import torch

    from .expression import ExpressionModel


@dataclass(frozen=True)
class Inference:
    """The model's answer for one window."""

    t_end: float  # the window's end on the shared clock
    probabilities: np.ndarray  # (K,) in the spec's label order, sums to 1
    valence: float  # -1 (negative) .. 1 (positive)
    edges_homo: np.ndarray  # (6,) GD-Unit edge weights, gd_unit.EDGE_NAMES order
    edges_hetero: np.ndarray  # (6,)
    present: tuple[str, ...]  # modalities with at least one present step
    model_ms: float  # time spent in ``run``


def window_batch(windows: Sequence[Window]) -> dict[str, np.ndarray]:
    """Stack windows into the engine's named inputs (batch first, contiguous)."""
    return {name: np.ascontiguousarray(np.stack([getattr(w, name) for w in windows])) for name in INPUTS}


class Engine(ABC):
    """A loaded model that answers batches of windows."""

    name: str  # the back-end, as ``--backend`` spells it

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    @abstractmethod
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Named inputs (B, ...) -> named outputs (B, ...) as float32 numpy arrays."""

    def expression_encoder(self) -> ExpressionModel | Literal["shipped"]:
        """What the face front-end should run its expression CNN with: ``"shipped"`` (the PyTorch
        CNN in ``models/``) unless the back-end brings its own (an export's)."""
        return "shipped"

    def infer(self, window: Window) -> Inference:
        """The model's answer for ``window``; ``NonFiniteOutputError`` when any output has NaN or inf."""
        start = time.perf_counter()
        out = self.run(window_batch([window]))
        ms = (time.perf_counter() - start) * 1000.0
        bad = [n for n in OUTPUTS if not np.isfinite(out[n][0]).all()]
        if bad:
            raise NonFiniteOutputError(f"the {self.name} engine's {', '.join(bad)} for the window ending at "
                                       f"{window.t_end:.2f} s had NaN or infinity; the model or its inputs are broken")
        return Inference(window.t_end, out["probabilities"][0], float(out["valence"][0]), out["edges_homo"][0],
                         out["edges_hetero"][0], window.modalities_present, ms)


class TorchEngine(Engine):
    """The recognizer in PyTorch (eager), on CPU or CUDA.

    On CUDA a batch of one window launches hundreds of small kernels, so by default each batch
    size is captured once as a CUDA graph and replayed: one launch per call, the same kernels."""

    name = "torch"

    def __init__(self, checkpoint: str | Path = "default", device: str = "cpu", threads: int | None = None,
                 cuda_graphs: bool = True) -> None:
        import torch

        from dmd_lite.recognizer import load_recognizer

        if threads:
            torch.set_num_threads(threads)
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda: no CUDA device is visible to PyTorch; use --device cpu")
        self._torch = torch
        self.device = device
        self.cuda_graphs = cuda_graphs and device == "cuda"
        self._graphs: dict[int, CapturedCall] = {}
        self.model, self.meta = load_recognizer(checkpoint, device)
        super().__init__(self.model.spec)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
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
    """One CUDA graph of ``model`` for inputs of one shape: copy in, replay, read the outputs."""

    def __init__(self, model: torch.nn.Module, example: list[torch.Tensor]) -> None:
        import torch

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


def make_engine(backend: str = "torch", checkpoint: str | Path = "default", device: str = "cpu",
                threads: int | None = None, engine_file: str | Path | None = None) -> Engine:
    """The engine for ``--backend``: ``torch``; ``onnx`` (``engine_file``: an ONNX export folder or
    file; without one, an export of ``checkpoint`` cached under ``runs/export_cache/``); ``trt``
    (``engine_file``: a TensorRT plan, or an ONNX export to build one from). The back-ends other
    than torch live in ``export``."""
    if backend == "torch":
        return TorchEngine(checkpoint, device, threads)
    if backend == "onnx":
        import onnxruntime as ort

        from export.artifacts import cached_export
        from export.onnx_engine import OnnxEngine, choose_providers

        choose_providers(device, ort.get_available_providers())  # no GPU provider: say so before any export
        return OnnxEngine(engine_file or cached_export(checkpoint), device, threads)
    if backend == "trt":
        if engine_file is None:
            raise ValueError("--backend trt needs --engine FILE (a .plan from `python -m export trt`, or an ONNX export)")
        from export.tensorrt import TrtEngine

        return TrtEngine(engine_file)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
