"""The fused back-end: ``--backend fused --device cuda``, the window as four Triton kernels.

The weights are packed once at load (``fused.weights``); each batch size gets its buffers and one
CUDA graph of its four launches (``fused.launch``), so a call is: copy the inputs in, replay, read
the outputs. ``precision`` picks the matrix products' arithmetic: ``float32`` (IEEE, the default),
``tf32``, ``float16`` or ``bfloat16`` operands with float32 accumulation.

The voice's reliability (``dmd_lite.recognizer``) is the one part outside the kernels: the voice
encoder runs once more in PyTorch for it, and the kernels answer each window with and without its
voice (a batch of 2B), and ``Recognizer.combine`` mixes the two and gives a face or a voice alone its
encoder's own answer (the face's from the window, the voice's from that run).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dmd_lite.recognizer import load_recognizer, with_and_without_voice
from realtime.core.backends import INPUTS, OUTPUTS
from realtime.engines.base import Engine
from realtime.engines.fused import require_cuda
from realtime.engines.fused.launch import FusedCall
from realtime.engines.fused.weights import pack
from realtime.engines.torch_engine import CapturedCall


class FusedEngine(Engine):
    """The recognizer as fused Triton kernels on CUDA, one CUDA graph per batch size."""

    name = "fused"

    def __init__(self, checkpoint: str | Path = "default", device: str = "cuda", precision: str = "float32",
                 cuda_graphs: bool = True) -> None:
        require_cuda(device)
        model, self.meta = load_recognizer(checkpoint, "cpu")
        super().__init__(model.spec)
        self.packed = pack(model, device, precision)
        self.model = model.to(device)  # for the voice encoder and ``combine``
        self.cuda_graphs = cuda_graphs
        self._calls: dict[int, FusedCall | CapturedCall] = {}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = with_and_without_voice(*(torch.from_numpy(inputs[n]) for n in INPUTS))
        batch = len(tensors[0])
        if batch not in self._calls:
            call = FusedCall(self.packed, batch, "cuda")
            self._calls[batch] = CapturedCall(call, tensors) if self.cuda_graphs else call
        call = self._calls[batch]
        if isinstance(call, CapturedCall):
            outputs = call(tensors)
        else:
            outputs = call(*(t.to("cuda").contiguous() for t in tensors))
        with torch.inference_mode():
            masks = {n: torch.from_numpy(inputs[n]).to("cuda") for n in ("visual_mask", "audio_mask", "text_mask")}
            voice, reliability = self.model.voice.encode(torch.from_numpy(inputs["audio"]).to("cuda"), masks["audio_mask"])
            visual = torch.from_numpy(inputs["visual"]).to("cuda")
            b = len(reliability)
            answer = self.model.combine([o[:b].to(reliability.dtype) for o in outputs],
                                        [o[b:].to(reliability.dtype) for o in outputs], reliability, visual, voice,
                                        masks["visual_mask"], masks["audio_mask"], masks["text_mask"])
        return {n: o.float().cpu().numpy() for n, o in zip(OUTPUTS, (*answer, reliability))}
